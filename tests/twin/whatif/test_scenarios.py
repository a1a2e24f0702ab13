"""Tests for `twin.scenarios`: parsing values and files, clear errors, each action's effect on the reference line."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pumptwin.twin.hydraulic.io import load_network
from pumptwin.twin.hydraulic.network import Network
from pumptwin.twin.hydraulic.solver import compile_network
from pumptwin.twin.surge import transients
from pumptwin.twin.units import G_M_S2
from pumptwin.twin.whatif.report import PumpPoint, WhatIfReport
from pumptwin.twin.whatif.scenarios import (
    BASE_NAME,
    LeakSpec,
    RuptureSpec,
    ScenarioError,
    ScenarioSpec,
    SpeedChange,
    line_context,
    parse_flow,
    parse_flow_change,
    parse_location,
    parse_pressure_pa,
    parse_scenarios,
    parse_speed,
    read_scenarios,
    resolve,
    run_scenarios,
    scenario_from_flags,
    transient_surge_check,
)

EXAMPLES = Path(__file__).parents[3] / "twin" / "whatif_scenarios"
LEAK_M3H = 50.0
DROP_BAR = 0.5


# --------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("50 m3/h", (50 / 3600, None)),
        ("14 L/s", (0.014, None)),
        ("0.01m3/s", (0.01, None)),
        (36, (0.01, None)),
        ("2%", (None, 0.02)),
    ],
)
def test_parse_flow(text: object, expected: tuple[float | None, float | None]) -> None:
    q, frac = parse_flow(text, "x")
    assert (q is None) == (expected[0] is None) and (frac is None) == (expected[1] is None)
    assert (q or frac) == pytest.approx(expected[0] or expected[1])


@pytest.mark.parametrize(("text", "factor"), [("+10%", 1.1), ("-5 %", 0.95), ("10%", 1.1)])
def test_parse_flow_change(text: str, factor: float) -> None:
    assert parse_flow_change(text, "x")[0] == pytest.approx(factor)


@given(st.floats(min_value=-99.0, max_value=500.0, allow_nan=False))
def test_parse_flow_change_is_one_plus_percent(pct: float) -> None:
    factor, flow = parse_flow_change(f"{pct:+.6f}%", "x")
    assert flow is None and factor == pytest.approx(1.0 + pct / 100.0, abs=1e-8)


@given(st.floats(min_value=0.0, max_value=1e4, allow_nan=False), st.sampled_from(["m3/h", "L/s", "m3/s"]))
def test_parse_flow_units_scale_linearly(x: float, unit: str) -> None:
    q, frac = parse_flow(f"{x!r} {unit}", "x")
    scale = {"m3/h": 1 / 3600, "L/s": 1e-3, "m3/s": 1.0}[unit]
    assert frac is None and q == pytest.approx(x * scale)


def test_parse_flow_change_target() -> None:
    assert parse_flow_change("3600 m3/h", "x") == (None, pytest.approx(1.0))


@pytest.mark.parametrize(("text", "pa"), [("0.5 bar", 5e4), (0.5, 5e4), ("50kPa", 5e4), ("0.05 MPa", 5e4)])
def test_parse_pressure(text: object, pa: float) -> None:
    assert parse_pressure_pa(text, "x") == pytest.approx(pa)


def test_parse_speed_and_location() -> None:
    assert parse_speed("P", "1400rpm", "x") == SpeedChange("P", rpm=1400.0)
    assert parse_speed("P", 0.9, "x") == SpeedChange("P", factor=0.9)
    assert parse_location("90", "x") == (None, 90.0)
    assert parse_location("12.5km", "x") == (None, 12.5)
    assert parse_location("KP090", "x") == ("KP090", None)


@pytest.mark.parametrize(
    ("fn", "value", "match"),
    [
        (parse_flow, "50 gallons", "unknown flow unit"),
        (parse_flow, "-3 m3/h", ">= 0"),
        (parse_flow, "lots", "expected a number"),
        (parse_flow_change, "10", "in %"),
        (parse_flow_change, "-100%", "leaves no flow"),
        (parse_pressure_pa, "3 psi", "unknown pressure unit"),
        (parse_location, "12 miles", "in km"),
        (parse_flow, True, "expected a number"),
    ],
)
def test_bad_values_name_the_value(fn: object, value: object, match: str) -> None:
    with pytest.raises(ScenarioError, match=match):
        fn(value, "where")  # type: ignore[operator]


def test_bad_speed_names_target() -> None:
    with pytest.raises(ScenarioError, match="'P'"):
        parse_speed("P", -1, "x")
    with pytest.raises(ScenarioError, match="unknown speed unit"):
        parse_speed("P", "10Hz", "x")


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def test_parse_a_full_scenario() -> None:
    data = {
        "version": 1,
        "rated_speed_rpm": {"PS1-P1": 1490},
        "ambient_c": 30,
        "scenarios": [
            {
                "name": "all of it",
                "flow": "+10%",
                "speed": {"PS2": 0.95, "PS1-P1": "1400rpm"},
                "stop": "PS2-P2",
                "start": ["PS1-P3"],
                "standby": ["PS2-P1"],
                "trip": ["PS1-P2"],
                "links": {"L050-055": "closed"},
                "valves": {"V1": 12.5, "V2": "open"},
                "demand_factor": 1.2,
                "demand": {"KP050": "100 m3/h"},
                "fixed_heads": {"TERMINAL": 120},
                "suction_drop": "0.5 bar",
                "leak": [{"km": 90, "size": "50 m3/h"}, {"node": "KP050", "size": "2%"}],
                "rupture": {"km": 100, "area_fraction": 0.5},
            }
        ],
    }
    parsed = parse_scenarios(data, "f.yaml")
    assert parsed.rated_speed_rpm == {"PS1-P1": 1490.0} and parsed.ambient_c == 30.0
    (s,) = parsed.scenarios
    assert s.flow_factor == pytest.approx(1.1)
    assert SpeedChange("PS1-P1", rpm=1400.0) in s.speeds
    assert s.stop == ("PS2-P2",) and s.trip == ("PS1-P2",) and s.standby == ("PS2-P1",)
    assert s.links == {"L050-055": "CLOSED", "V2": "OPEN"} and s.valves == {"V1": 12.5}
    assert s.demand_m3s["KP050"] == pytest.approx(100 / 3600)
    assert s.suction_drop_pa == pytest.approx(5e4)
    assert s.leaks == (LeakSpec(None, 90.0, 50 / 3600, None), LeakSpec("KP050", None, None, 0.02))
    assert s.ruptures == (RuptureSpec(None, 100.0, 0.5),)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"scenarios": [{"name": "a"}]}, "missing key 'version'"),
        ({"version": 2, "scenarios": [{"name": "a"}]}, "version 2 is not supported"),
        ({"version": 1, "scenario": []}, "unknown key 'scenario'"),
        ({"version": 1, "scenarios": []}, "non-empty list"),
        ({"version": 1, "scenarios": [{"flow": "+1%"}]}, "scenario 1: needs a 'name'"),
        ({"version": 1, "scenarios": [{"name": "a", "speeed": 1}]}, r"scenario 1 \('a'\): unknown key 'speeed'"),
        ({"version": 1, "scenarios": [{"name": "a", "flow": "fast"}]}, "'a'.*flow.*'fast'"),
        ({"version": 1, "scenarios": [{"name": "a", "speed": {"P1": "9 Hz"}}]}, r"speed\.P1"),
        ({"version": 1, "scenarios": [{"name": "a", "links": {"L1": "ajar"}}]}, r"links\.L1.*'ajar'"),
        ({"version": 1, "scenarios": [{"name": "a", "leak": {"km": 1, "node": "J", "size": 1}}]}, "exactly one"),
        ({"version": 1, "scenarios": [{"name": "a", "leak": {"km": 1}}]}, "needs a 'size'"),
        ({"version": 1, "scenarios": [{"name": "a", "leak": {"km": 1, "size": 1, "x": 2}}]}, "unknown key 'x'"),
        ({"version": 1, "scenarios": [{"name": "a", "rupture": {"km": 1, "area_fraction": 2}}]}, "area_fraction"),
        ({"version": 1, "scenarios": [{"name": "a", "stop": 3}]}, "stop: expected an id"),
        ({"version": 1, "scenarios": [{"name": "a"}, {"name": "a"}]}, "used twice"),
        ({"version": 1, "scenarios": [{"name": BASE_NAME}]}, "reserved"),
        ({"version": 1, "rated_speed_rpm": 0, "scenarios": [{"name": "a"}]}, "rated_speed_rpm"),
        ({"version": 1, "scenarios": ["a"]}, "expected a mapping"),
    ],
)
def test_file_errors_name_the_key(data: dict[str, object], match: str) -> None:
    with pytest.raises(ScenarioError, match=match):
        parse_scenarios(data, "f.yaml")


def test_read_scenarios_from_files(tmp_path: Path) -> None:
    good = tmp_path / "s.yaml"
    good.write_text("version: 1\nscenarios:\n  - name: slower\n    speed: {all: 0.9}\n")
    assert read_scenarios(good).scenarios[0].speeds == (SpeedChange("all", factor=0.9),)
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nscenarios: [\n")
    with pytest.raises(ScenarioError, match="bad.yaml: not valid YAML"):
        read_scenarios(bad)
    with pytest.raises(ScenarioError, match="no such scenario file"):
        read_scenarios(tmp_path / "none.yaml")


def test_shipped_examples_parse() -> None:
    files = sorted(EXAMPLES.glob("*.yaml"))
    assert files
    for f in files:
        assert read_scenarios(f).scenarios


def test_flags_make_one_scenario() -> None:
    assert scenario_from_flags() is None
    s = scenario_from_flags(
        flow="+10%", speed=["PS1-P1=1400rpm"], stop=["PS2-P2"], leak=["90=50m3/h"], suction_drop="0.5"
    )
    assert s is not None
    assert s.name == "flow +10%, speed PS1-P1=1400rpm, stop PS2-P2, leak 90=50m3/h, suction drop 0.5"
    assert s.leaks == (LeakSpec(None, 90.0, 50 / 3600, None),)
    with pytest.raises(ScenarioError, match="--speed"):
        scenario_from_flags(speed=["PS1-P1"])
    with pytest.raises(ScenarioError, match="--leak"):
        scenario_from_flags(leak=["=5"])


# --------------------------------------------------------------------------------------------
# Effects on the reference line, one batch
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def network() -> Network:
    return load_network()


@pytest.fixture(scope="module")
def report(network: Network) -> WhatIfReport:
    specs = [
        ScenarioSpec("flow +10%", flow_factor=1.1),
        ScenarioSpec("flow 2000 m3/h", flow_m3s=2000 / 3600),
        ScenarioSpec("stop PS2-P2", stop=("PS2-P2",)),
        ScenarioSpec("stop PS2-P2, flow -10%", stop=("PS2-P2",), flow_factor=0.9),
        ScenarioSpec("leak", leaks=(LeakSpec(km=90.0, flow_m3s=LEAK_M3H / 3600),)),
        ScenarioSpec("leak 2 %", leaks=(LeakSpec(node="KP050", fraction=0.02),)),
        ScenarioSpec("suction drop", suction_drop_pa=DROP_BAR * 1e5),
        ScenarioSpec("standby", standby=("PS1-P1",)),
        ScenarioSpec("rpm", speeds=(SpeedChange("PS1-P1", rpm=1400.0),)),
        ScenarioSpec("station", speeds=(SpeedChange("PS2", factor=0.9),)),
        ScenarioSpec("trip", trip=("PS2-P1",)),
        ScenarioSpec("rupture", ruptures=(RuptureSpec(km=100.0),)),
        ScenarioSpec("closed", links={"L050-055": "CLOSED"}),
        ScenarioSpec("back pressure", fixed_head_m={"TERMINAL": 140.0}),
    ]
    return run_scenarios(network, specs, ambient_c=20.0)


def thr(report: WhatIfReport, name: str) -> float:
    return report.outcome(name).throughput_m3h


def pump(report: WhatIfReport, name: str, pid: str) -> PumpPoint:
    return next(p for p in report.outcome(name).pumps if p.pump == pid)


def test_base_case_comes_first(report: WhatIfReport) -> None:
    assert report.outcomes[0].name == BASE_NAME and report.outcomes[0].within_limits


def test_flow_change_meets_its_target(report: WhatIfReport) -> None:
    assert thr(report, "flow +10%") == pytest.approx(1.10 * thr(report, BASE_NAME), rel=5e-3)
    assert thr(report, "flow 2000 m3/h") == pytest.approx(2000.0, rel=5e-3)


def test_flow_target_is_relative_to_the_base_case_whatever_else_changes(report: WhatIfReport) -> None:
    assert thr(report, "stop PS2-P2, flow -10%") == pytest.approx(0.9 * thr(report, BASE_NAME), rel=5e-3)
    assert thr(report, "stop PS2-P2, flow -10%") > thr(report, "stop PS2-P2")


def test_stopping_a_pump_lowers_flow(report: WhatIfReport) -> None:
    assert thr(report, "stop PS2-P2") < 0.9 * thr(report, BASE_NAME)
    assert not pump(report, "stop PS2-P2", "PS2-P2").running


def test_leak_lowers_downstream_flow_by_about_its_size(report: WhatIfReport) -> None:
    leak = report.outcome("leak")
    assert leak.leak_m3h == pytest.approx(LEAK_M3H, rel=5e-3)
    assert any("KP090" in n and "90.200" in n for n in leak.notes)
    drop = thr(report, BASE_NAME) - leak.throughput_m3h
    assert 0.5 * LEAK_M3H < drop < LEAK_M3H
    # Upstream flow = pump flow; downstream flow = upstream minus the leak.
    ps1 = sum(p.flow_m3h for p in leak.pumps if p.station == "PS1")
    assert ps1 - leak.throughput_m3h == pytest.approx(LEAK_M3H, rel=5e-3)
    assert report.outcome("leak 2 %").leak_m3h == pytest.approx(0.02 * thr(report, BASE_NAME), rel=5e-3)


def test_suction_drop_lowers_npsh_margin_by_dp_over_rho_g(report: WhatIfReport, network: Network) -> None:
    dh = DROP_BAR * 1e5 / (network.fluid.density_kg_m3 * G_M_S2)
    base = pump(report, BASE_NAME, "PS1-P1").npsh_margin_m
    low = pump(report, "suction drop", "PS1-P1").npsh_margin_m
    assert base - low == pytest.approx(dh, rel=0.05)


def test_standby_swaps_pumps(report: WhatIfReport) -> None:
    assert not pump(report, "standby", "PS1-P1").running and pump(report, "standby", "PS1-P3").running
    assert thr(report, "standby") == pytest.approx(thr(report, BASE_NAME), rel=1e-6)  # identical pumps


def test_speeds_in_rpm_and_per_station(report: WhatIfReport) -> None:
    assert pump(report, "rpm", "PS1-P1").speed == pytest.approx(1400 / 1480)
    assert pump(report, "rpm", "PS1-P1").speed_rpm == pytest.approx(1400)
    assert pump(report, "rpm", "PS1-P2").speed == pytest.approx(1.0)
    station = report.outcome("station")
    assert [p.speed for p in station.pumps if p.station == "PS2" and p.running] == pytest.approx([0.9, 0.9])
    assert thr(report, "station") < thr(report, BASE_NAME)


def test_trip_is_a_stop_in_steady_state(report: WhatIfReport) -> None:
    assert not pump(report, "trip", "PS2-P1").running
    assert thr(report, "trip") < thr(report, BASE_NAME)


def test_rupture_is_an_orifice_of_the_bore(report: WhatIfReport, network: Network) -> None:
    out = report.outcome("rupture")
    j = out.profile_nodes.index("KP100")
    head_m = out.profile_head_m[j] - out.elevation_m[j]
    c = 0.6 * math.pi * 0.66**2 / 4 * math.sqrt(2 * G_M_S2)
    assert out.leak_m3h == pytest.approx(c * math.sqrt(max(head_m, 0.0)) * 3600, rel=1e-3)
    assert out.leak_m3h > 0.2 * thr(report, BASE_NAME)
    assert out.profile_pressure_mpa[j] < 0.5 * report.outcomes[0].profile_pressure_mpa[j]


def test_closed_line_is_reported_not_raised(report: WhatIfReport) -> None:
    assert report.outcome("closed").status == "disconnected"
    assert not report.within_limits


def test_back_pressure_lowers_flow(report: WhatIfReport) -> None:
    assert thr(report, "back pressure") < thr(report, BASE_NAME)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        (ScenarioSpec("x", stop=("NOPE",)), "stop: pump 'NOPE'"),
        (ScenarioSpec("x", standby=("PS1-P1", "PS1-P2")), "PS1-P2' has no stopped pump"),
        (ScenarioSpec("x", speeds=(SpeedChange("PS9", factor=1.0),)), "'PS9' is no pump, station"),
        (ScenarioSpec("x", leaks=(LeakSpec(km=500.0, flow_m3s=0.01),)), "km 500 is outside"),
        (ScenarioSpec("x", leaks=(LeakSpec(node="ORIGIN", flow_m3s=0.01),)), "'ORIGIN' is not a junction"),
        (ScenarioSpec("x", links={"NOPE": "CLOSED"}), "link 'NOPE'"),
        (ScenarioSpec("x", fixed_head_m={"NOPE": 1.0}), "node 'NOPE'"),
    ],
)
def test_resolution_errors_name_the_culprit(network: Network, spec: ScenarioSpec, match: str) -> None:
    ctx = line_context(compile_network(network))
    with pytest.raises(ScenarioError, match=match):
        resolve(spec, ctx)


def test_transient_surge_check_simulates_the_tripped_station(network: Network) -> None:
    check = transient_surge_check(duration_s=40.0)
    report = run_scenarios(network, [ScenarioSpec("trip", trip=("PS1-P1",))], surge_check=check)
    out = report.outcome("trip")
    assert any("station trip at PS1-D" in n and "PS1-D->PS2-S" in n for n in out.notes)
    direct = transients.simulate(transients.line_from_network(network, "PS1-D", "PS2-S", trip_time_s=1.0), 40.0)
    limits = {v.limit for v in out.violations}
    assert ("COLUMN SEPARATION" in limits) == bool(direct.column_separation.any())
    assert ("SURGE" in limits) == bool(direct.surge_violation.any())
    assert report.outcomes[0].notes == ()  # no trip in the base case, no check
