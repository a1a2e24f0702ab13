"""Small pieces of the early-warning benchmark: the DCS alarm scheme, cases, seed sets, scoring, summary."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from benchmarks import early_warning as ew
from pumptwin.models.monitoring import SOURCE_FEATURES

T0 = pd.Timestamp("2024-03-01", tz="UTC")


def readings(tag: str, values: list[float], qualities: list[str] | None = None) -> pd.DataFrame:
    n = len(values)
    return pd.DataFrame(
        {
            "tag": [tag] * n,
            "ts": pd.date_range(T0, periods=n, freq="60s"),
            "value": values,
            "quality": qualities or ["good"] * n,
        }
    )


def _level(limit: float = 4.5, direction: int = 1, deadband: float = 0.5, delay_s: float = 60.0) -> ew.AlarmLevel:
    return ew.AlarmLevel("VIB_DE_RMS", limit, direction, deadband, delay_s, ew.ALARM)


def test_level_needs_the_limit_held_through_the_on_delay():
    t = np.arange(8) * 60.0
    v = np.array([1.0, 5.0, 1.0, 5.0, 5.0, 5.0, 5.0, 5.0])
    # a single sample beyond never alarms; a run raises once it has lasted the delay
    assert ew.level_active(t, v, _level(delay_s=60.0)).tolist() == [False] * 4 + [True] * 4
    assert ew.level_active(t, v, _level(delay_s=180.0)).tolist() == [False] * 6 + [True] * 2
    # a delay shorter than the sampling still needs two samples
    assert ew.level_active(t, v, _level(delay_s=1.0)).tolist() == [False] * 4 + [True] * 4
    assert ew.level_active(t[:0], v[:0], _level()).size == 0


def test_level_clears_only_past_the_deadband():
    t = np.arange(7) * 60.0
    v = np.array([5.0, 5.0, 4.2, 4.6, 3.9, 4.2, 5.0])
    active = ew.level_active(t, v, _level(deadband=0.5, delay_s=60.0))
    # 4.2 lies inside the deadband (4.0..4.5): the alarm stands; 3.9 clears it; 5.0 alone does not re-raise
    assert active.tolist() == [False, True, True, True, False, False, False]
    no_band = ew.level_active(t, v, _level(deadband=0.0, delay_s=60.0))
    assert no_band.tolist() == [False, True, False, False, False, False, False]


def test_low_level_alarms_on_falling_values():
    t = np.arange(6) * 60.0
    v = np.array([0.8, 0.25, 0.2, 0.3, 0.34, 0.4])
    active = ew.level_active(t, v, _level(limit=0.28, direction=-1, deadband=0.05, delay_s=15.0))
    assert active.tolist() == [False, False, True, True, False, False]


def test_dcs_levels_cover_every_tag_type_with_alarm_below_trip():
    levels = ew.dcs_levels(rated_current_a=100.0, npshr_bep_m=10.0, pressure_head_m=8.0, density_kg_m3=850.0)
    by_name = {lv.name: lv for lv in levels}
    assert by_name["VIB_DE_RMS high alarm"].limit == 4.5 and by_name["VIB_DE_RMS high trip"].limit == 7.1
    assert by_name["BRG_NDE_TEMP high alarm"].limit < by_name["BRG_NDE_TEMP high trip"].limit
    assert by_name["MOTOR_WINDING_TEMP high alarm"].limit < by_name["MOTOR_WINDING_TEMP high trip"].limit
    assert by_name["MOTOR_CURRENT high alarm"].limit == pytest.approx(105.0)
    assert {"STRAINER_DP high alarm", "SEAL_LEAK high alarm"} <= set(by_name)
    low_alarm, low_trip = by_name["SUCT_PRESS low alarm"], by_name["SUCT_PRESS low trip"]
    # NPSHa = 1.1 x 10 m = 11 m: 3 m above the pressure head, 850 kg/m3 -> 0.25 bar g
    assert low_alarm.limit == pytest.approx(3.0 * 850.0 * 9.80665 / 1e5)
    assert low_trip.limit < low_alarm.limit and low_alarm.direction == -1
    assert not [lv for lv in ew.dcs_levels(float("nan"), float("nan"), 8.0, 850.0) if "SUCT" in lv.measure]


def _tags(pump: str, measure: str, values: list[float], qualities: list[str] | None = None) -> pd.DataFrame:
    return readings(f"{pump}.{measure}", values, qualities)


def test_dcs_timeline_first_alarm_trip_and_episodes():
    levels = ew.dcs_levels(100.0, 10.0, 8.0, 850.0)
    table = pd.concat(
        [
            _tags("PS01.P1", "VIB_DE_RMS", [1.0, 1.0, 5.0, 5.0, 5.0, 8.0, 8.0, 1.0, 1.0, 1.0]),
            _tags("PS01.P1", "STRAINER_DP", [0.1, 0.4, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]),  # a spike
            _tags("PS01.P1", "SEAL_LEAK", [0.1] * 8 + [12.0, 12.0], ["good"] * 8 + ["bad", "bad"]),
            _tags("PS01.P2", "VIB_DE_RMS", [9.0] * 10),  # another pump
        ]
    )
    tl = ew.dcs_timeline(table, "PS01.P1", levels)
    assert len(tl.ts) == 10
    minute = pd.Timedelta(minutes=1)
    assert ew.first_raise(tl, T0) == (T0 + 3 * minute, "VIB_DE_RMS high alarm")
    assert ew.first_raise(tl, T0, priority=ew.TRIP) == (T0 + 6 * minute, "VIB_DE_RMS high trip")
    trip = T0 + 90 * pd.Timedelta(seconds=1)
    assert ew.first_raise(tl, T0, trips=[trip]) == (trip, ew.TRIP)
    # an alarm standing at `after` is not a new alarm
    assert ew.first_raise(tl, T0 + 4 * minute, priority=ew.ALARM) == (None, "")
    # only the fault's tags: the vibration alarm does not point at a seal failure
    assert ew.first_raise(tl, T0, measures=ew.FAULT_MEASURES["seal_failure"]) == (None, "")
    assert ew.first_raise(tl, T0, measures=ew.FAULT_MEASURES["bearing_wear"])[1] == "VIB_DE_RMS high alarm"
    assert ew.dcs_episodes(tl, T0) == 1 and ew.dcs_episodes(tl, T0 + 4 * minute) == 0
    assert ew.dcs_episodes(tl, T0, priority=ew.TRIP) == 1
    assert tl.standing().sum() == 4 and tl.standing(ew.TRIP).sum() == 1


def test_cases_cover_every_mode_and_seed_with_lives_in_range():
    modes = [m.value for m in ew.PUMP_MODES]
    cs = ew.cases(modes, [1, 2, 3])
    assert len(cs) == 18
    assert {(c.mode, c.seed) for c in cs} == {(m, s) for m in modes for s in (1, 2, 3)}
    assert all(ew.LIFE_RANGE_S[0] - 3600 <= c.life_s <= ew.LIFE_RANGE_S[1] + 3600 for c in cs)
    assert {c.target for c in cs} == set(ew.DUTY_PUMPS)
    assert ew.cases(modes, [1]) == ew.cases(modes, [1])
    sc = ew.fault_scenario(cs[0])
    (fault,) = sc.faults
    assert fault.onset_s == ew.ONSET_S and fault.failure_s == ew.ONSET_S + cs[0].life_s
    assert sc.lines == 1 and sc.step_s == 60.0
    assert sc.duration_s == fault.failure_s + ew.AFTER_FAILURE_S


def _features(days: float, fault_pump: str | None = None, onset_day: float = 7.0) -> pd.DataFrame:
    """`pump_features`-like rows of the duty pumps: healthy levels, small noise, a seal leak growing on one."""
    n = int(days * 144)
    frames = []
    for i, pump in enumerate(ew.DUTY_PUMPS):
        rng = np.random.default_rng(i)
        f = pd.DataFrame({c: 1.0 + 0.01 * rng.normal(size=n) for c in SOURCE_FEATURES})
        f["brg_nde_temp_c_mean_24h"] += 40.0
        f["winding_temp_c_mean_24h"] += 80.0
        if pump == fault_pump:
            grow = np.clip((np.arange(n) / 144 - onset_day) / 3.0, 0.0, 1.0)
            f["seal_leak_l_h_mean_24h"] += 20.0 * grow
        f.insert(0, "event_timestamp", pd.date_range(T0, periods=n, freq="10min"))
        f.insert(0, "pump_id", pump)
        f["running_frac_1h"] = 1.0
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


def test_score_run_trains_the_production_detector_per_pump_and_scores_after_training():
    scored = ew.score_run(_features(12.0, "PS01.P2"), ew.DUTY_PUMPS, T0, ew.VARIANTS["pump"])
    assert set(scored) == set(ew.DUTY_PUMPS)
    train_end = T0 + pd.Timedelta(seconds=ew.TRAIN_END_S)
    for pump, s in scored.items():
        assert (s["ts"] >= train_end).all() and len(s) == 6 * 144
        assert s["alarm"].any() == (pump == "PS01.P2")
    warn = ew.first_alarm(scored["PS01.P2"]["ts"], scored["PS01.P2"]["alarm"].to_numpy(), after=T0)
    assert T0 + pd.Timedelta(days=7) < warn < T0 + pd.Timedelta(days=10)


def _result(mode: str, lead_f: float, lead_a: float | None, detected: bool = True) -> dict:
    """A case result: ``lead_a`` is the warning's lead before the first DCS alarm (None: the DCS never alarmed)."""
    return {
        "mode": mode,
        "detected": detected,
        "lead_before_failure_h": lead_f if detected else math.nan,
        "dcs_alarm": None if lead_a is None else "x",
        "dcs_alarm_reason": "" if lead_a is None else "VIB_DE_RMS high alarm",
        "dcs_alarm_before_failure_h": math.nan if lead_a is None else 5.0,
        "lead_before_dcs_alarm_h": math.nan if lead_a is None or not detected else lead_a,
        "dcs_trip": None if lead_a is None else "x",
        "lead_before_dcs_trip_h": math.nan if lead_a is None or not detected else lead_a + 5.0,
        "before_dcs_alarm": detected and (lead_a is None or lead_a > 0),
        "false_episodes_pre_onset": 0,
        "monitored_pre_onset_s": 86_400.0,
        "false_episodes_other_pumps": 1,
        "monitored_other_pumps_s": 3 * 86_400.0,
        "dcs_false_episodes_pre_onset": 1,
        "dcs_false_episodes_other_pumps": 0,
        "dcs_watched_pre_onset_s": 86_400.0,
        "dcs_watched_other_pumps_s": 3 * 86_400.0,
    }


def test_summary_keeps_misses_and_cases_the_dcs_never_alarmed():
    results = [
        _result("bearing_wear", 100.0, 90.0),
        _result("bearing_wear", 50.0, 10.0),
        _result("cavitation", 30.0, None),
        _result("cavitation", 0.0, None, detected=False),
    ]
    healthy = [
        {"episodes_total": 1, "monitored_s": 10 * ew.MONTH_S, "dcs_episodes_total": 3, "dcs_trip_episodes_total": 1,
         "dcs_watched_s": 10 * ew.MONTH_S}
    ]  # fmt: skip
    s = ew.summarise(results, healthy)
    bearing = s["per_mode"]["bearing_wear"]
    assert bearing["lead_before_dcs_alarm_h"]["median"] == 50.0 and bearing["lead_before_dcs_trip_h"]["median"] == 55.0
    assert bearing["dcs_alarm_reasons"] == {"VIB_DE_RMS high alarm": 2}
    cav = s["per_mode"]["cavitation"]
    assert cav["detected"] == 1 and cav["detection_rate"] == 0.5
    assert cav["dcs_never_alarmed"] == 2 and cav["before_dcs_alarm"] == 1
    assert cav["lead_before_failure_when_dcs_never_alarmed_h"]["n"] == 1
    assert s["overall"]["lead_before_failure_h"]["median"] == 50.0  # of 100, 50, 30
    fa, dcs = s["false_alarms"], s["dcs_false_alarms"]
    assert fa["healthy_runs"]["per_asset_month"] == pytest.approx(0.1)
    assert fa["healthy_pumps_in_faulty_runs"]["episodes"] == 4
    assert dcs["healthy_runs"]["per_asset_month"] == pytest.approx(0.3)
    assert dcs["healthy_runs_trips"]["episodes"] == 1 and dcs["healthy_pumps_in_faulty_runs"]["episodes"] == 4
    assert s["targets"]["false_alarms_met"]
    assert not s["targets"]["every_fault_before_dcs_alarm"]  # one fault missed
    assert ew.summarise(results[:3], healthy)["targets"]["every_fault_before_dcs_alarm"]
    late = [_result("bearing_wear", 100.0, -2.0)]  # warned after the DCS alarm
    assert not ew.summarise(late, healthy)["targets"]["every_fault_before_dcs_alarm"]
    assert not ew.summarise(late, healthy)["targets"]["median_lead_met"]


def test_median_lead_counts_a_missed_fault_as_no_lead():
    warned = [_result("bearing_wear", 100.0, lead) for lead in (30.0, 40.0, 50.0)]
    assert ew.median_lead_with_misses_h(warned) == 40.0
    missed = _result("seal_failure", 0.0, 10.0, detected=False)
    assert ew.median_lead_with_misses_h([*warned, missed]) == 35.0
    assert ew.median_lead_with_misses_h([missed, missed, warned[0]]) == -math.inf
    assert ew.median_lead_with_misses_h([_result("cavitation", 100.0, None)]) is None
    healthy = [{"episodes_total": 0, "monitored_s": 30 * 86_400.0}]
    targets = ew.summarise([*warned, missed], healthy)["targets"]
    assert targets["median_lead_met"] and not targets["every_fault_before_dcs_alarm"]
    targets = ew.summarise([warned[0], missed, missed], healthy)["targets"]
    assert not targets["median_lead_met"]


def test_every_pump_mode_has_the_tags_that_point_at_it():
    assert set(ew.FAULT_MEASURES) == {m.value for m in ew.PUMP_MODES}
    measures = {lv.measure for lv in ew.dcs_levels(100.0, 10.0, 8.0, 850.0)}
    assert all(set(tags) <= measures for tags in ew.FAULT_MEASURES.values())


def test_seed_sets_are_disjoint_and_the_report_set_is_large_enough():
    design, report = ew.SEED_SETS["design"], ew.SEED_SETS["report"]
    assert not set(design[0]) & set(report[0]) and not set(design[1]) & set(report[1])
    assert len(report[0]) >= 10 and len(report[1]) >= 10
    assert not (set(report[0]) | set(design[0])) & (set(report[1]) | set(design[1]))


def test_spread_ignores_missing_values():
    assert ew.spread([1.0, math.nan, 3.0])["median"] == 2.0
    assert ew.spread([math.nan])["n"] == 0


def test_drift_can_be_turned_off_for_the_diagnostic_run():
    assert ew.healthy_scenario(5, 10.0, drift=False).sensors.drift_fraction == 0.0
    assert ew.healthy_scenario(5, 10.0).sensors.drift_fraction > 0.0
    case = ew.cases(["seal_failure"], [1])[0]
    assert ew.fault_scenario(case, drift=False).sensors.drift_fraction == 0.0
