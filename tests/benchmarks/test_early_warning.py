"""Small pieces of the early-warning benchmark: DCS threshold alarm, cases, input scaling, summary."""

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


def test_threshold_alarm_needs_consecutive_good_samples():
    vib = readings("PS01.P1.VIB_DE_RMS", [1.0, 8.0, 1.0, 7.0, 7.2, 9.0])
    ts, reason = ew.threshold_alarm(vib, "PS01.P1", {"VIB_DE_RMS": 7.1}, confirm=2)
    assert reason == "VIB_DE_RMS" and ts == T0 + pd.Timedelta(minutes=5)  # 7.0 < 7.1; 7.2 and 9.0 confirm
    ts1, _ = ew.threshold_alarm(vib, "PS01.P1", {"VIB_DE_RMS": 7.1}, confirm=1)
    assert ts1 == T0 + pd.Timedelta(minutes=1)
    bad = readings("PS01.P1.VIB_DE_RMS", [8.0, 8.0, 1.0], ["bad", "good", "good"])
    assert ew.threshold_alarm(bad, "PS01.P1", {"VIB_DE_RMS": 7.1}) == (None, "")


def test_threshold_alarm_takes_the_earliest_of_limits_and_trips():
    table = pd.concat(
        [
            readings("PS01.P1.BRG_DE_TEMP", [90.0, 96.0, 97.0, 98.0]),
            readings("PS01.P1.MOTOR_WINDING_TEMP", [150.0, 156.0, 157.0, 150.0]),
            readings("PS01.P2.BRG_DE_TEMP", [99.0, 99.0, 99.0, 99.0]),  # another pump
        ]
    )
    limits = {"BRG_DE_TEMP": 95.0, "MOTOR_WINDING_TEMP": 155.0}
    ts, reason = ew.threshold_alarm(table, "PS01.P1", limits)
    assert ts == T0 + pd.Timedelta(minutes=2)
    assert reason in {"BRG_DE_TEMP", "MOTOR_WINDING_TEMP"}
    trip = T0 + pd.Timedelta(seconds=30)
    assert ew.threshold_alarm(table, "PS01.P1", limits, trips=[trip]) == (trip, "trip")
    assert ew.threshold_alarm(table.iloc[:0], "PS01.P1", limits, trips=[trip]) == (trip, "trip")


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


def _result(mode: str, lead_f: float, lead_t: float | None, detected: bool = True) -> dict:
    return {
        "mode": mode,
        "detected": detected,
        "lead_before_failure_h": lead_f if detected else math.nan,
        "threshold_alarm": None if lead_t is None else "x",
        "lead_before_threshold_h": math.nan if lead_t is None or not detected else lead_t,
        "threshold_before_failure_h": 0.0 if lead_t is not None else math.nan,
        "false_episodes_pre_onset": 0,
        "monitored_pre_onset_s": 86_400.0,
        "false_episodes_other_pumps": 1,
        "monitored_other_pumps_s": 3 * 86_400.0,
    }


def test_summary_keeps_misses_and_never_fired_thresholds():
    results = [
        _result("bearing_wear", 100.0, 90.0),
        _result("bearing_wear", 50.0, 10.0),
        _result("cavitation", 30.0, None),
        _result("cavitation", 0.0, None, detected=False),
    ]
    healthy = [{"episodes_total": 1, "monitored_s": 10 * ew.MONTH_S}]
    s = ew.summarise(results, healthy)
    assert s["per_mode"]["bearing_wear"]["lead_before_threshold_h"]["median"] == 50.0
    cav = s["per_mode"]["cavitation"]
    assert cav["detected"] == 1 and cav["detection_rate"] == 0.5
    assert cav["threshold_never_fired"] == 2
    assert cav["lead_before_failure_when_threshold_never_fired_h"]["n"] == 1
    assert s["overall"]["lead_before_failure_h"]["median"] == 50.0  # of 100, 50, 30
    fa = s["false_alarms"]
    assert fa["healthy_runs"]["per_asset_month"] == pytest.approx(0.1)
    assert fa["healthy_pumps_in_faulty_runs"]["episodes"] == 4
    assert s["targets"]["false_alarms_met"] and s["targets"]["lead_met"]


def test_spread_ignores_missing_values():
    assert ew.spread([1.0, math.nan, 3.0])["median"] == 2.0
    assert ew.spread([math.nan])["n"] == 0


def test_drift_can_be_turned_off_for_the_diagnostic_run():
    assert ew.healthy_scenario(5, 10.0, drift=False).sensors.drift_fraction == 0.0
    assert ew.healthy_scenario(5, 10.0).sensors.drift_fraction > 0.0
    case = ew.cases(["seal_failure"], [1])[0]
    assert ew.fault_scenario(case, drift=False).sensors.drift_fraction == 0.0
