"""Tests for `twin.whatif` on the reference pipeline: directional what-ifs, targets, leaks and bad ids."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pumptwin.twin.health.condition import MachineCondition, predicted_bearing_c, predicted_vibration_mm_s
from pumptwin.twin.hydraulic.io import load_network
from pumptwin.twin.hydraulic.network import Junction, Network, NetworkError, Pipe, Reservoir, Valve, ValveType
from pumptwin.twin.hydraulic.solver import HydraulicModel, compile_network
from pumptwin.twin.whatif.assess import SurgeFindings, assess
from pumptwin.twin.whatif.engine import WhatIf, WhatIfResult, build_batch, evaluate
from pumptwin.twin.whatif.limits import IsoZones, Limits
from pumptwin.twin.whatif.path import main_path
from pumptwin.twin.whatif.report import Violation

THROUGHPUT = "DEL"
"""The delivery pipe into the terminal: the pipeline's throughput."""
LEAK_C = 5e-3
"""Leak emitter coefficient (m3/s per m^0.5): about 100 L/s at 400 m of head."""


@pytest.fixture(scope="module")
def model() -> HydraulicModel:
    return compile_network(load_network())


@pytest.fixture(scope="module")
def result(model: HydraulicModel) -> WhatIfResult:
    scenarios = [
        WhatIf("base"),
        WhatIf("speed -10 %", speed_factor=0.9),
        WhatIf("PS2-P2 off", pumps_off=("PS2-P2",)),
        WhatIf("start PS1-P3", pumps_on=("PS1-P3",)),
        WhatIf("throughput +10 %", throughput_factor=1.1, throughput_link=THROUGHPUT),
        WhatIf("leak at KP080", leaks={"KP080": LEAK_C}),
    ]
    res = evaluate(model, scenarios)
    assert res.converged.all()
    return res


def row(res: WhatIfResult, name: str) -> int:
    return [s.name for s in res.scenarios].index(name)


def throughput(model: HydraulicModel, res: WhatIfResult, name: str) -> float:
    return float(res.flow_m3s[row(res, name), model.link_index[THROUGHPUT]])


def discharge_pressure(model: HydraulicModel, res: WhatIfResult, name: str, node: str = "PS1-D") -> float:
    return float(res.line.pressure_pa[row(res, name), model.node_index[node]])


def test_base_is_the_networks_own_state(model: HydraulicModel, result: WhatIfResult) -> None:
    base = row(result, "base")
    assert result.pumps.running[base].sum() == 4
    assert 0.5 < throughput(model, result, "base") < 0.7  # two duty pumps, about 585 L/s
    assert result.leak_m3s[base].sum() == 0


def test_speed_minus_10_percent_lowers_throughput_and_discharge_pressure(
    model: HydraulicModel, result: WhatIfResult
) -> None:
    assert throughput(model, result, "speed -10 %") < throughput(model, result, "base")
    assert discharge_pressure(model, result, "speed -10 %") < discharge_pressure(model, result, "base")
    assert discharge_pressure(model, result, "speed -10 %", "PS2-D") < discharge_pressure(
        model, result, "base", "PS2-D"
    )
    np.testing.assert_allclose(result.batch.pump_speed[row(result, "speed -10 %")], 0.9)


def test_a_pump_off_lowers_throughput(model: HydraulicModel, result: WhatIfResult) -> None:
    i = row(result, "PS2-P2 off")
    assert throughput(model, result, "PS2-P2 off") < throughput(model, result, "base")
    assert not result.pumps.running[i, list(model.pump_ids).index("PS2-P2")]
    assert result.pumps.running[i].sum() == 3


def test_starting_the_standby_pump_raises_ps1_discharge_pressure(model: HydraulicModel, result: WhatIfResult) -> None:
    i = row(result, "start PS1-P3")
    assert result.pumps.running[i, list(model.pump_ids).index("PS1-P3")]
    assert discharge_pressure(model, result, "start PS1-P3") > discharge_pressure(model, result, "base")
    assert throughput(model, result, "start PS1-P3") > throughput(model, result, "base")


def test_throughput_target_is_met(model: HydraulicModel, result: WhatIfResult) -> None:
    target = 1.1 * throughput(model, result, "base")
    assert throughput(model, result, "throughput +10 %") == pytest.approx(target, rel=5e-3)
    speeds = result.batch.pump_speed[row(result, "throughput +10 %")]
    assert (speeds > 1.0).all() and np.ptp(speeds) == pytest.approx(0.0)  # one common factor


def test_leak_produces_leak_flow_and_reduces_delivery(model: HydraulicModel, result: WhatIfResult) -> None:
    i = row(result, "leak at KP080")
    j = model.node_index["KP080"]
    leak = result.leak_m3s[i, j]
    pressure_head = result.head_m[i, j] - model.elevation_m[j]
    assert leak == pytest.approx(LEAK_C * math.sqrt(pressure_head), rel=1e-6)
    assert leak > 0.01
    assert result.leak_m3s[i].sum() == pytest.approx(leak)
    assert throughput(model, result, "leak at KP080") < throughput(model, result, "base")
    # Upstream of the leak the line carries more (lower back pressure), downstream less.
    k_up = model.link_index["L000-005"]
    assert result.flow_m3s[i, k_up] > result.flow_m3s[row(result, "base"), k_up]
    assert result.flow_m3s[i, k_up] - leak == pytest.approx(throughput(model, result, "leak at KP080"), abs=1e-6)


def test_summary_rows(model: HydraulicModel, result: WhatIfResult) -> None:
    rows = result.summary(model, THROUGHPUT)
    assert [r["scenario"] for r in rows] == [s.name for s in result.scenarios]
    base = rows[row(result, "base")]
    assert base["throughput_m3h"] == pytest.approx(throughput(model, result, "base") * 3600)
    assert base["pumps_running"] == 4
    leak = rows[row(result, "leak at KP080")]["leak_m3h"]
    assert isinstance(leak, float) and leak > 0
    assert all(isinstance(r["violations"], str) for r in rows)


def test_scenarios_are_independent_of_their_neighbours(model: HydraulicModel, result: WhatIfResult) -> None:
    """The leak solved alone gives what it gave in the batch."""
    alone = evaluate(model, [WhatIf("leak at KP080", leaks={"KP080": LEAK_C})])
    np.testing.assert_allclose(alone.head_m[0], result.head_m[row(result, "leak at KP080")], atol=1e-9)


@pytest.mark.parametrize(
    ("whatif", "name"),
    [
        (WhatIf("x", pumps_off=("NOPE",)), "NOPE"),
        (WhatIf("x", pumps_on=("NOPE",)), "NOPE"),
        (WhatIf("x", leaks={"NOPE": 0.01}), "NOPE"),
        (WhatIf("x", leaks={"ORIGIN": 0.01}), "ORIGIN"),
        (WhatIf("x", fixed_head_m={"NOPE": 10.0}), "NOPE"),
        (WhatIf("x", fixed_head_m={"KP010": 10.0}), "KP010"),
    ],
    ids=["pump-off", "pump-on", "leak", "leak-at-reservoir", "head", "head-at-junction"],
)
def test_unknown_ids_raise_network_error(model: HydraulicModel, whatif: WhatIf, name: str) -> None:
    with pytest.raises(NetworkError, match=name):
        build_batch(model, [whatif])
    with pytest.raises(NetworkError, match=name):
        evaluate(model, [WhatIf("ok"), whatif])


def test_unknown_throughput_link_raises_network_error(model: HydraulicModel) -> None:
    with pytest.raises(NetworkError, match="NOPE"):
        evaluate(model, [WhatIf("x", throughput_factor=1.1, throughput_link="NOPE")])


def test_invalid_what_ifs_are_rejected() -> None:
    with pytest.raises(NetworkError, match="'bad'"):
        WhatIf("bad", speed_factor=-0.1)
    with pytest.raises(NetworkError, match="'bad'"):
        WhatIf("bad", throughput_factor=1.1)  # no link
    with pytest.raises(NetworkError, match="'bad'"):
        WhatIf("bad", throughput_factor=0.0, throughput_link=THROUGHPUT)


def test_unreachable_throughput_target_is_an_error(model: HydraulicModel) -> None:
    with pytest.raises(NetworkError, match="out of reach"):
        evaluate(model, [WhatIf("too much", throughput_factor=3.0, throughput_link=THROUGHPUT)])


# --------------------------------------------------------------------------------------------
# Per-pump speeds, trips, link status, leak flows, fixed-head changes
# --------------------------------------------------------------------------------------------

LEAK_Q = 50.0 / 3600.0
DROP_M = 6.0


@pytest.fixture(scope="module")
def extended(model: HydraulicModel) -> WhatIfResult:
    scenarios = [
        WhatIf("base"),
        WhatIf("PS1-P1 at 0.9", pump_speed={"PS1-P1": 0.9}),
        WhatIf("trip PS2-P1", trips=("PS2-P1",)),
        WhatIf("leak flow", leak_flow_m3s={"KP090": LEAK_Q}),
        WhatIf("suction -6 m", fixed_head_delta_m={"ORIGIN": -DROP_M}),
        WhatIf("line cut", link_status={"L050-055": "CLOSED"}),
        WhatIf("too much", throughput_factor=3.0, throughput_link=THROUGHPUT),
        WhatIf("+10 %", throughput_factor=1.1, throughput_link=THROUGHPUT),
    ]
    return evaluate(model, scenarios, strict=False)


def test_main_path_of_the_reference_line(model: HydraulicModel) -> None:
    path = main_path(model)
    assert model.node_ids[path.source] == "ORIGIN"
    assert model.node_ids[path.delivery] == "TERMINAL"
    assert model.link_ids[path.delivery_link] == "DEL" and path.forward[-1]
    total = sum(p.length_m for p in model.network.pipes)  # the line is one series path
    assert path.chainage_m[-1] == pytest.approx(total)
    assert np.all(np.diff(path.chainage_m) >= 0)
    kp090 = path.nodes.index(model.node_index["KP090"])
    assert path.chainage_m[kp090] == pytest.approx(90_200.0)


def test_main_path_rejects_unknown_nodes(model: HydraulicModel) -> None:
    with pytest.raises(NetworkError, match="NOPE"):
        main_path(model, source="NOPE")


def test_per_pump_speed_changes_only_that_pump(model: HydraulicModel, extended: WhatIfResult) -> None:
    i = row(extended, "PS1-P1 at 0.9")
    np.testing.assert_allclose(extended.batch.pump_speed[i], [0.9, 1, 1, 1, 1, 1])  # standbys: closed at speed 1
    np.testing.assert_array_equal(extended.pumps.running[i], [True, True, False, True, True, False])
    assert throughput(model, extended, "PS1-P1 at 0.9") < throughput(model, extended, "base")


def test_trip_stops_the_pump(model: HydraulicModel, extended: WhatIfResult) -> None:
    i = row(extended, "trip PS2-P1")
    assert not extended.pumps.running[i, list(model.pump_ids).index("PS2-P1")]
    assert throughput(model, extended, "trip PS2-P1") < throughput(model, extended, "base")


def test_leak_given_as_flow_discharges_that_flow(model: HydraulicModel, extended: WhatIfResult) -> None:
    i = row(extended, "leak flow")
    assert extended.leak_m3s[i, model.node_index["KP090"]] == pytest.approx(LEAK_Q, rel=5e-3)
    up, down = model.link_index["L085-090"], model.link_index["L090-095"]
    assert extended.flow_m3s[i, up] - extended.flow_m3s[i, down] == pytest.approx(LEAK_Q, rel=5e-3)
    drop = throughput(model, extended, "base") - throughput(model, extended, "leak flow")
    assert 0.5 * LEAK_Q < drop < LEAK_Q  # upstream flow rises a little as back pressure falls


def test_fixed_head_change_lowers_npsh_margin_by_about_the_drop(model: HydraulicModel, extended: WhatIfResult) -> None:
    p1 = list(model.pump_ids).index("PS1-P1")
    base = extended.pumps.npsh_margin_m[row(extended, "base"), p1]
    low = extended.pumps.npsh_margin_m[row(extended, "suction -6 m"), p1]
    assert base - low == pytest.approx(DROP_M, rel=0.05)
    assert extended.batch.fixed_head_m[row(extended, "suction -6 m"), 0] == pytest.approx(64.0 - DROP_M)


def test_non_strict_evaluate_records_the_unreachable_target(extended: WhatIfResult) -> None:
    assert extended.failures[row(extended, "too much")] is not None
    assert extended.failures[row(extended, "base")] is None


def test_new_what_if_fields_are_validated(model: HydraulicModel) -> None:
    with pytest.raises(NetworkError, match="PS1-P1"):
        WhatIf("bad", pump_speed={"PS1-P1": -1.0})
    with pytest.raises(NetworkError, match="HALF"):
        WhatIf("bad", link_status={"L000-005": "HALF"})
    with pytest.raises(NetworkError, match="KP010"):
        WhatIf("bad", leak_flow_m3s={"KP010": -1.0})
    with pytest.raises(NetworkError, match="NOPE"):
        build_batch(model, [WhatIf("x", link_status={"NOPE": "CLOSED"})])
    with pytest.raises(NetworkError, match="is a pump"):
        build_batch(model, [WhatIf("x", link_status={"PS1-P1": "CLOSED"})])
    with pytest.raises(NetworkError, match="NOPE"):
        build_batch(model, [WhatIf("x", valve_setting={"NOPE": 1.0})])
    with pytest.raises(NetworkError, match="NOPE"):
        build_batch(model, [WhatIf("x", fixed_head_delta_m={"NOPE": 1.0})])


# --------------------------------------------------------------------------------------------
# Predicted condition
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vib", "zone"), [(0.5, "A"), (2.29, "A"), (2.3, "B"), (4.49, "B"), (4.5, "C"), (7.1, "D"), (20.0, "D")]
)
def test_iso_zones(vib: float, zone: str) -> None:
    assert IsoZones().zone(vib) == zone


@given(st.floats(min_value=0.0, max_value=50.0), st.floats(min_value=0.0, max_value=50.0))
def test_iso_zone_never_falls_as_vibration_rises(a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    assert IsoZones().zone(lo) <= IsoZones().zone(hi)


@given(st.floats(min_value=0.3, max_value=1.7), st.floats(min_value=0.5, max_value=1.1))
def test_predicted_condition_is_least_at_the_bep(ratio: float, speed: float) -> None:
    c = MachineCondition()
    at_bep = predicted_vibration_mm_s(speed, 1.0, math.inf, True, c)
    assert predicted_vibration_mm_s(speed, ratio, math.inf, True, c) >= at_bep - 1e-12
    assert predicted_bearing_c(speed, ratio, True, c, 25.0) >= predicted_bearing_c(speed, 1.0, True, c, 25.0) - 1e-12


def test_iso_zones_must_increase() -> None:
    with pytest.raises(NetworkError, match="ISO zones"):
        IsoZones(2.3, 2.0, 7.1)


def test_vibration_and_bearing_at_the_bep_match_the_twins_forms() -> None:
    c = MachineCondition(
        vibration_mm2_s2=(0.0, 0.25, 1.0, 40.0, 0.0, 0.0), bearing_rise_k=30.0, bearing_load_shape=(0.4, 0.6, 1.0)
    )
    # At the BEP the flow terms vanish: v^2 = 0.25 s^2 + s^4.
    s = 0.9
    expected = math.sqrt(0.25 * s * s + s**4)
    assert predicted_vibration_mm_s(s, 1.0, math.inf, True, c) == pytest.approx(expected)
    assert predicted_vibration_mm_s(s, 1.3, math.inf, True, c) > expected  # off BEP
    assert predicted_vibration_mm_s(s, 1.0, 0.9, True, c) > expected  # cavitating
    assert predicted_vibration_mm_s(s, 1.0, math.inf, False, c) < 0.1
    # rise = R (c0 s + c1 s^2) at the BEP.
    assert predicted_bearing_c(s, 1.0, True, c, 20.0) == pytest.approx(20.0 + 30.0 * (0.4 * s + 0.6 * s * s))
    assert predicted_bearing_c(s, 1.0, False, c, 20.0) == 20.0
    hot = MachineCondition(bearing_rise_k=66.0)
    assert predicted_bearing_c(1.0, 1.0, True, hot, 20.0) == pytest.approx(86.0)


def test_machine_condition_is_validated() -> None:
    with pytest.raises(ValueError, match="bearing_rise_k"):
        MachineCondition(bearing_rise_k=-1.0)


# --------------------------------------------------------------------------------------------
# Full results
# --------------------------------------------------------------------------------------------


def test_assess_reports_operating_points_and_profile(model: HydraulicModel, extended: WhatIfResult) -> None:
    report = assess(model, extended, ambient_c=20.0)
    base = report.outcome("base")
    assert base.status == "ok" and base.within_limits
    assert base.throughput_m3h == pytest.approx(throughput(model, extended, "base") * 3600)
    p1 = base.pumps[0]
    assert p1.pump == "PS1-P1" and p1.running and p1.in_por
    assert p1.vibration_zone in ("A", "B")  # a machine with no history: near the zone A/B boundary
    assert p1.npsh_margin_m == pytest.approx(p1.npsh_available_m - p1.npsh_required_m)
    assert p1.bearing_c > 20.0
    assert not base.pumps[2].running and base.pumps[2].flow_m3h == 0.0
    assert base.power_kw == pytest.approx(sum(p.shaft_power_kw for p in base.pumps))
    assert base.specific_energy_kwh_m3 == pytest.approx(base.power_kw / base.throughput_m3h)
    assert base.chainage_km[-1] == pytest.approx(120.5)
    assert base.profile_nodes[0] == "ORIGIN" and len(base.profile_pressure_mpa) == len(base.chainage_km)
    rho_g = model.network.fluid.density_kg_m3 * 9.80665
    j = base.profile_nodes.index("KP050")
    assert base.profile_pressure_mpa[j] == pytest.approx((base.profile_head_m[j] - 137.0) * rho_g / 1e6)
    assert base.min_maop_margin_mpa > 0


def test_limits_violated_are_named_with_their_values(model: HydraulicModel, extended: WhatIfResult) -> None:
    report = assess(model, extended)
    plus = report.outcome("+10 %")
    limits = {v.limit for v in plus.violations}
    assert {"SPEED", "MAOP"} <= limits  # 1.09 x rated > 1.05; 3.24 MPa > 3.1 MPa
    maop = next(v for v in plus.violations if v.limit == "MAOP")
    assert maop.value > maop.limit_value == pytest.approx(3.1)
    assert not plus.within_limits and not report.within_limits
    strict = assess(model, extended, limits=Limits(min_npsh_margin_m=100.0))
    assert any(v.limit == "NPSH" for v in strict.outcome("base").violations)


def test_failed_and_disconnected_scenarios_are_reported(model: HydraulicModel, extended: WhatIfResult) -> None:
    report = assess(model, extended)
    cut = report.outcome("line cut")
    assert cut.status == "disconnected" and not cut.within_limits
    assert report.outcome("too much").status == "infeasible"
    assert "out of reach" in report.outcome("too much").message
    assert report.outcome("base").status == "ok"


def test_report_tables(model: HydraulicModel, extended: WhatIfResult) -> None:
    import json

    report = assess(model, extended)
    frame = report.to_frame()
    assert list(frame.index) == [s.name for s in extended.scenarios]
    for col in ("throughput_m3h", "power_kw", "min_npsh_margin_m", "max_vibration_mm_s", "worst_zone", "violations"):
        assert col in frame.columns
    assert len(report.pumps_frame()) == len(extended.scenarios) * 6
    assert set(report.profile_frame()["scenario"]) == set(frame.index)
    md = report.to_markdown()
    assert md.count("\n| ") == len(extended.scenarios) + 1
    assert "ISO 10816-3" in md and "out of reach" in md
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["scenarios"][0]["pumps"][0]["pump"] == "PS1-P1"


def test_surge_check_hook_is_called_for_trips(model: HydraulicModel, extended: WhatIfResult) -> None:
    seen: list[str] = []

    def surge(m: HydraulicModel, sc: WhatIf, res: WhatIfResult, i: int) -> SurgeFindings:
        seen.append(sc.name)
        return SurgeFindings((Violation("SURGE", "PS2-D", 3.5, 3.41, "MPa"),), ("simulated",))

    report = assess(model, extended, surge_check=surge)
    assert seen == ["trip PS2-P1"]
    assert any(v.limit == "SURGE" for v in report.outcome("trip PS2-P1").violations)
    assert "simulated" in report.outcome("trip PS2-P1").notes


# --------------------------------------------------------------------------------------------
# Valves on a small line: reservoir - pipe - TCV - pipe - reservoir
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def valve_line() -> HydraulicModel:
    net = Network(
        name="valve line",
        junctions=(Junction("J1", 0.0), Junction("J2", 0.0)),
        reservoirs=(Reservoir("UP", 50.0), Reservoir("DOWN", 10.0)),
        pipes=(Pipe("P1", "UP", "J1", 1000.0, 0.3, 120.0), Pipe("P2", "J2", "DOWN", 1000.0, 0.3, 120.0)),
        valves=(Valve("V1", "J1", "J2", 0.3, ValveType.TCV, setting=0.0),),
    )
    return compile_network(net)


def test_throttling_and_closing_a_valve(valve_line: HydraulicModel) -> None:
    res = evaluate(
        valve_line,
        [
            WhatIf("open"),
            WhatIf("throttled", valve_setting={"V1": 50.0}),
            WhatIf("closed", link_status={"V1": "CLOSED"}),
        ],
    )
    k = valve_line.link_index["V1"]
    q_open, q_thr = res.flow_m3s[0, k], res.flow_m3s[1, k]
    assert 0 < q_thr < q_open
    # The TCV's loss is K v^2 / 2g: the head across it matches that closed form.
    v = q_thr / (math.pi * 0.3**2 / 4)
    dh = res.head_m[1, valve_line.node_index["J1"]] - res.head_m[1, valve_line.node_index["J2"]]
    assert dh == pytest.approx(50.0 * v * v / (2 * 9.80665), rel=0.02)
    assert abs(res.flow_m3s[2, k]) < 1e-6
    report = assess(valve_line, res)
    assert report.outcome("closed").status == "disconnected"
