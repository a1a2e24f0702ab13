"""The twin's bridge: calibrated machine condition against the plant's closed forms, responses, windows."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pumptwin.plant.health import vibration_rms_mm_s
from pumptwin.twin.assets import Registry, build_registry
from pumptwin.twin.health.condition import (
    MachineCondition,
    RlsFit,
    bearing_features,
    bearing_prior,
    predicted_bearing_c,
    predicted_vibration_mm_s,
)
from pumptwin.twin.health.estimation import (
    Estimate,
    PumpEstimate,
    TwinCalibration,
    VibrationBaseline,
    initial_calibration,
)
from pumptwin.twin.health.state import TwinState, update_state
from pumptwin.twin.hydraulic.io import load_network
from pumptwin.twin.hydraulic.network import LinkStatus, Network
from pumptwin.twin.sync import (
    SyncError,
    alerted_lines,
    align_calibration,
    candidate_responses,
    fold_readings,
    machine_condition,
    machine_conditions,
    margins_frame,
    needs_attention,
    operating_network,
    vibration_excess_mm_s,
    windows,
)
from pumptwin.twin.whatif.scenarios import BASE_NAME, run_scenarios

T0 = pd.Timestamp("2024-03-02T00:00:00Z")


@pytest.fixture(scope="module")
def network() -> Network:
    return load_network()


@pytest.fixture(scope="module")
def registry(network: Network) -> Registry:
    return build_registry(network, 1)


def fitted_baseline(imbalance: float, misalignment: float, hydraulic: float, wear: float) -> VibrationBaseline:
    """The twin's baseline learnt from plant vibration (new bearing) over a grid of operating points."""
    s, r = (g.ravel() for g in np.meshgrid(np.linspace(0.7, 1.05, 8), np.linspace(0.6, 1.3, 8)))
    v = vibration_rms_mm_s(s, r, True, imbalance, misalignment, hydraulic, 0.0, 0.0, wear)
    return replace(VibrationBaseline().folded(s, r, v, 1.0), noise_mm_s=0.05)


def pump(**changes: object) -> PumpEstimate:
    base = PumpEstimate("PS01.P1", "PS1-P1", 1, Estimate(0.0, 0.001), Estimate(0.0, 0.01))
    return replace(base, **changes)  # type: ignore[arg-type]


def test_learnt_baseline_predicts_the_plants_vibration() -> None:
    """The twin's polynomial, learnt from the plant's (different) closed form, predicts it within a few percent."""
    imb, mis, hyd, wear = 0.8, 0.6, 1.3, 0.03
    cond = machine_condition(pump(vib_de=fitted_baseline(imb, mis, hyd, wear)))
    assert cond.vibration_mm2_s2 != MachineCondition().vibration_mm2_s2
    assert cond.vibration_excess_mm_s == 0.0
    for s, r in ((1.0, 1.0), (0.8, 0.7), (0.95, 1.2)):
        plant = float(vibration_rms_mm_s(s, r, True, imb, mis, hyd, 0.0, 0.0, wear))
        assert predicted_vibration_mm_s(s, r, math.inf, True, cond) == pytest.approx(plant, rel=0.05)


@given(v=st.floats(0.5, 10.0), share=st.floats(0.0, 0.9))
@settings(max_examples=40, deadline=None)
def test_vibration_excess_is_the_root_sum_square_above_the_baseline(v: float, share: float) -> None:
    excess = share * v
    est = pump(vib_de=fitted_baseline(0.9, 0.55, 1.1, 0.0), vib_de_mm_s=v, vib_excess_de_mm_s=excess)
    cond = machine_condition(est)
    assert math.hypot(v - excess, cond.vibration_excess_mm_s) == pytest.approx(v)
    assert vibration_excess_mm_s(v, -0.2) == 0.0 and vibration_excess_mm_s(math.nan, 1.0) == 0.0


def test_bearing_rise_is_the_current_estimate_with_its_learnt_shape() -> None:
    s, r = (g.ravel() for g in np.meshgrid(np.linspace(0.7, 1.05, 6), np.linspace(0.6, 1.3, 6)))
    y = 40.0 * (0.3 * s + 0.7 * s * s * (1.0 + 2.0 * (r - 1.0) ** 2))
    fit = RlsFit.empty(3).folded(bearing_features(s, r), y, 1.0, bearing_prior(40.0))
    est = pump(thermal_de=Estimate(52.0, 0.5), thermal_ref_de_k=40.0, bearing_de=fit)
    cond = machine_condition(est)
    assert cond.bearing_rise_k == 52.0  # a hotter bearing shows in the what-ifs
    np.testing.assert_allclose(cond.bearing_load_shape, (0.3, 0.7, 2.0), rtol=0.02)
    assert predicted_bearing_c(1.0, 1.0, True, cond, 20.0) == pytest.approx(72.0)


def test_unknown_condition_keeps_generic_defaults(registry: Registry, network: Network) -> None:
    cal = initial_calibration(registry)
    conds = machine_conditions(cal, registry, network)
    assert set(conds) == {p.id for p in network.pumps}
    assert all(c == MachineCondition() for c in conds.values())
    thin = pump(vib_de=fitted_baseline(2.0, 0.5, 1.0, 0.0), thermal_de=Estimate(30.0, 1.0))
    thin = replace(thin, vib_de=replace(thin.vib_de, weight=5.0))  # too few samples for a baseline
    cond = machine_condition(thin)
    assert cond.vibration_mm2_s2 == MachineCondition().vibration_mm2_s2
    assert cond.bearing_rise_k == 30.0
    assert cond.bearing_load_shape == MachineCondition().bearing_load_shape  # no shape learnt yet
    with pytest.raises(SyncError, match="PS1-P2"):
        machine_conditions(cal, registry, replace(network, pumps=network.pumps[:1]))


def state_with(registry: Registry, assets: dict[str, float], friction: float = 1.0) -> TwinState:
    cal = initial_calibration(registry)
    pumps = dict(cal.pumps)
    for name, wear in assets.items():
        pumps[name] = replace(pumps[name], impeller_wear=Estimate(wear, 0.001))
    lines = {1: replace(cal.lines[1], friction_multiplier=Estimate(friction, 0.01), flow_m3s=0.5, maop_margin=0.2)}
    return update_state(None, TwinCalibration(T0, pumps, lines, 1), None, T0)


def test_responses_for_a_worn_pump(registry: Registry, network: Network) -> None:
    state = state_with(registry, {"PS02.P2": 0.07})
    assert needs_attention(state)
    specs = candidate_responses(state, registry, network)
    names = [s.name for s in specs]
    assert names == [
        BASE_NAME,
        "PS02.P2: speed -5 %",
        "PS02.P2: speed -10 %",
        "PS02.P2: switch to standby",
        "PS02.P2: stop",
        "LINE01: throughput -10 %",
    ]
    assert specs[1].speeds[0].target == "PS2-P2" and specs[1].speeds[0].factor == 0.95
    assert specs[3].standby == ("PS2-P2",) and specs[4].stop == ("PS2-P2",)
    assert specs[5].flow_factor == pytest.approx(0.9)
    report = run_scenarios(network, specs, include_base=False)
    assert [o.name for o in report.outcomes] == names
    flows = {o.name: o.throughput_m3h for o in report.outcomes}
    assert flows["LINE01: throughput -10 %"] == pytest.approx(0.9 * flows[BASE_NAME], rel=0.01)
    assert flows["PS02.P2: stop"] < flows[BASE_NAME]


def test_responses_for_a_line_alert_and_none_without_alerts(registry: Registry, network: Network) -> None:
    assert [s.name for s in candidate_responses(state_with(registry, {}), registry, network)] == [BASE_NAME]
    state = state_with(registry, {}, friction=1.4)
    assert alerted_lines(state, registry) == [1]
    specs = candidate_responses(state, registry, network)
    assert [s.name for s in specs] == [BASE_NAME, "LINE01: throughput -10 %", "LINE01: stop PS1"]
    assert set(specs[-1].stop) == {"PS1-P1", "PS1-P2"}  # the running pumps; P3 is the standby
    assert candidate_responses(state, registry, network, line=2) == specs[:1]


def test_operating_network_follows_the_last_window(registry: Registry, network: Network) -> None:
    cal = initial_calibration(registry)
    assert operating_network(network, cal) is network  # nothing seen running yet
    pumps = dict(cal.pumps)
    pumps["PS01.P1"] = replace(pumps["PS01.P1"], running_fraction=0.0, n_samples=10)
    pumps["PS01.P3"] = replace(pumps["PS01.P3"], running_fraction=1.0, n_samples=10)
    pumps["PS02.P1"] = replace(pumps["PS02.P1"], running_fraction=0.9, n_samples=10)
    current = operating_network(network, replace(cal, pumps=pumps))
    status = {p.id: p.status for p in current.pumps}
    assert status["PS1-P1"] == LinkStatus.CLOSED and status["PS1-P3"] == LinkStatus.OPEN
    assert status["PS2-P1"] == LinkStatus.OPEN
    # an alarm on a pump that no longer runs offers no pump actions, only the line's
    worn = dict(pumps)
    worn["PS01.P1"] = replace(pumps["PS01.P1"], impeller_wear=Estimate(0.07, 0.001))
    state = update_state(None, replace(cal, ts=T0, pumps=worn), None, T0)
    names = [s.name for s in candidate_responses(state, registry, current)]
    assert names == [BASE_NAME, "LINE01: throughput -10 %"]


def test_windows_cover_the_span_and_reject_bad_lengths() -> None:
    a, b = pd.Timestamp("2024-03-01T00:00Z"), pd.Timestamp("2024-03-01T02:30Z")
    got = list(windows(a, b, 3600.0))
    assert [(x.hour, x.minute, y.hour, y.minute) for x, y in got] == [(0, 0, 1, 0), (1, 0, 2, 0), (2, 0, 2, 30)]
    assert list(windows(a, a, 60.0)) == []
    with pytest.raises(SyncError, match="-5"):
        list(windows(a, b, -5.0))


def test_empty_readings_leave_calibration_and_state(registry: Registry, network: Network) -> None:
    empty = pd.DataFrame(columns=["tag", "ts", "value", "quality"])
    state = state_with(registry, {"PS02.P2": 0.07})
    cal, same, n = fold_readings(None, empty, registry, network, 900.0, state=state)
    assert n == 0 and same is state and cal.ts is None and cal.n_updates == 0


def test_align_adds_prior_estimates_for_new_stations(network: Network) -> None:
    one = initial_calibration(build_registry(network, 1))
    two = build_registry(network, 2)
    aligned = align_calibration(replace(one, n_updates=3), two)
    assert set(aligned.pumps) == {p.name for p in two.pumps} and set(aligned.lines) == {1, 2}
    assert aligned.n_updates == 3
    same = replace(one, n_updates=3)
    assert align_calibration(same, build_registry(network, 1)) is same


def test_margins_table(registry: Registry) -> None:
    cal = initial_calibration(registry)
    pumps = dict(cal.pumps)
    pumps["PS01.P1"] = replace(pumps["PS01.P1"], npsh_margin_m=7.5, n_samples=3)
    lines = {1: replace(cal.lines[1], maop_margin=0.12, maop_element="PS1-D")}
    frame = margins_frame(replace(cal, pumps=pumps, lines=lines))
    assert frame.to_dict("records") == [
        {"asset": "PS01.P1", "margin": "npsh_margin", "value": 7.5, "unit": "m", "where": "PS1-P1"},
        {"asset": "LINE01", "margin": "maop_margin", "value": 0.12, "unit": "-", "where": "PS1-D"},
    ]


def test_scores_known_at_keeps_only_scores_computed_by_then():
    import pandas as pd

    from pumptwin.twin.sync import scores_known_at

    scores = pd.DataFrame(
        {
            "asset": ["PS01.P1", "PS01.P2"],
            "anomaly_score": [3.0, 0.2],
            "event_timestamp": pd.to_datetime(["2024-03-10T00:00Z", "2024-03-12T00:00Z"]),
        }
    )
    assert scores_known_at(scores, pd.Timestamp("2024-03-09T00:00Z")).empty
    assert list(scores_known_at(scores, pd.Timestamp("2024-03-11T00:00Z"))["asset"]) == ["PS01.P1"]
    assert len(scores_known_at(scores, pd.Timestamp("2024-03-12T00:00Z"))) == 2
    assert scores_known_at(scores.drop(columns="event_timestamp"), pd.Timestamp("2024-01-01T00:00Z")) is not None
    assert scores_known_at(None, pd.Timestamp("2024-01-01T00:00Z")) is None
