"""``pumptwin solve``: negative pressures flagged as EPANET does, bad durations and oversized runs refused."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pumptwin.flows import solve_steps
from pumptwin.flows.cli import app
from pumptwin.twin.hydraulic.inp import parse_inp
from pumptwin.twin.hydraulic.network import NetworkError
from pumptwin.twin.hydraulic.solver import compile_network

IMPOSSIBLE = """[JUNCTIONS]
 J1 0 0
 J2 0 {demand}
[RESERVOIRS]
 R1 10
[PIPES]
 P1 R1 J1 1000 100 100
 P2 J1 J2 1000 100 100
[PATTERNS]
 D 1 {peak} 1
[OPTIONS]
 UNITS LPS
 PATTERN D
[TIMES]
 DURATION 2:00
[END]
"""
"""A reservoir 10 m up feeding J2 through 2 km of 100 mm pipe; J1 has no demand."""


def inp(tmp_path: Path, demand_lps: float, peak: float = 1.0) -> Path:
    path = tmp_path / "line.inp"
    path.write_text(IMPOSSIBLE.format(demand=demand_lps, peak=peak))
    return path


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.setenv("PUMPTWIN_HOME", str(tmp_path / "home"))
    return CliRunner()


def test_a_possible_demand_solves_without_warnings(tmp_path: Path) -> None:
    report = solve_steps.solve_file(inp(tmp_path, 1.0), duration_s=0.0, accuracy=1e-6)
    assert report["warnings"] == [] and report["negative_pressure_nodes"] == {}
    assert report["source_encoding"] == "utf-8"
    assert solve_steps.exit_code(report) == 0
    assert "converged" in solve_steps.describe(report) and "warning" not in solve_steps.describe(report)


def test_an_impossible_demand_is_flagged_at_the_junction_with_demand(tmp_path: Path) -> None:
    report = solve_steps.solve_file(inp(tmp_path, 5000.0), duration_s=0.0, accuracy=1e-6)
    assert report["converged"] is True
    # Only J2 has a demand: J1's pressure is negative too, but EPANET's warning names junctions with demand.
    assert report["nodes"]["J1"]["pressure_m"] < 0
    assert list(report["negative_pressure_nodes"]) == ["J2"]
    worst = report["negative_pressure_nodes"]["J2"]
    assert worst == {"pressure_m": report["nodes"]["J2"]["pressure_m"], "time_s": 0}
    assert len(report["warnings"]) == 1 and report["warnings"][0].startswith("Negative pressures at 1 node")
    assert solve_steps.exit_code(report) == 1
    text = solve_steps.describe(report)
    assert "NOT PHYSICAL" in text and "warning: Negative pressures at 1 node" in text and "J2 -" in text
    json.dumps(report, allow_nan=False)


def test_an_extended_period_names_the_worst_time(tmp_path: Path) -> None:
    # 1 L/s is possible; the pattern's second hour asks 3000 times as much.
    report = solve_steps.solve_file(inp(tmp_path, 1.0, peak=3000.0), duration_s=2 * 3600.0, accuracy=1e-6)
    assert report["times_s"] == [0, 3600, 7200]
    assert report["negative_pressure_nodes"]["J2"]["time_s"] == 3600
    assert report["nodes"]["J2"]["pressure_m"][0] > 0 and report["nodes"]["J2"]["pressure_m"][2] > 0
    assert "J2 " in report["warnings"][0] and "at 1:00:00" in report["warnings"][0]


RULES = """[RULES]
RULE SECOND-MAIN
IF SYSTEM TIME >= 1:00
AND JUNCTION J1 PRESSURE ABOVE 1
THEN PIPE P3 STATUS IS OPEN
[END]
"""


def test_an_extended_period_applies_rule_based_controls(tmp_path: Path) -> None:
    """A second main, closed in the file, that a rule opens after the first hour carries flow from then on."""
    path = inp(tmp_path, 1.0)
    text = path.read_text().replace(
        " P2 J1 J2 1000 100 100\n", " P2 J1 J2 1000 100 100\n P3 J1 J2 1000 100 100 0 CLOSED\n"
    )
    path.write_text(text.replace("[END]\n", RULES))
    report = solve_steps.solve_file(path, duration_s=2 * 3600.0, accuracy=1e-6)
    assert report["times_s"] == [0, 3600, 7200]
    flow = report["links"]["P3"]["flow_m3s"]
    assert flow[0] == 0.0 and flow[1] > 0.0 and flow[2] > 0.0
    assert report["warnings"] == []


def test_pressure_driven_demand_is_flagged_only_where_it_would_deliver_less(tmp_path: Path) -> None:
    """J2 has 9.13 m of pressure at 1 L/s: no shortfall against 5 m required, one against 12 m."""
    path = inp(tmp_path, 1.0)
    text = path.read_text()
    path.write_text(text.replace(" PATTERN D\n", " PATTERN D\n DEMAND MODEL PDA\n REQUIRED PRESSURE 5\n"))
    report = solve_steps.solve_file(path, duration_s=0.0, accuracy=1e-6)
    assert report["warnings"] == [] and report["converged"]
    path.write_text(text.replace(" PATTERN D\n", " PATTERN D\n DEMAND MODEL PDA\n REQUIRED PRESSURE 12\n"))
    (warning,) = solve_steps.solve_file(path, duration_s=0.0, accuracy=1e-6)["warnings"]
    assert warning.startswith("The file asks for pressure-driven demand (DEMAND MODEL PDA), solved here demand-driven")
    assert "1 junction with demand falls below its required pressure 12 m (J2 9.129 m)" in warning


def test_solve_exits_1_when_the_result_is_not_physical(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    result = runner.invoke(app, ["solve", str(inp(tmp_path, 5000.0)), "--json", str(out)])
    assert result.exit_code == 1, result.output
    assert "warning: Negative pressures at 1 node" in result.output
    assert json.loads(out.read_text())["negative_pressure_nodes"]["J2"]["pressure_m"] < 0
    assert runner.invoke(app, ["solve", str(inp(tmp_path, 1.0))]).exit_code == 0


@pytest.mark.parametrize("duration_h", ["-1", "nan", "inf"])
def test_a_bad_duration_exits_2(runner: CliRunner, tmp_path: Path, duration_h: str) -> None:
    result = runner.invoke(app, ["solve", str(inp(tmp_path, 1.0)), "--duration-h", duration_h])
    assert result.exit_code == 2, result.output
    assert "duration" in result.output and "must be a finite number" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("duration_s", [-3600.0, math.nan, math.inf])
def test_solve_file_refuses_a_bad_duration(tmp_path: Path, duration_s: float) -> None:
    with pytest.raises(NetworkError, match="duration must be a finite number of seconds >= 0"):
        solve_steps.solve_file(inp(tmp_path, 1.0), duration_s=duration_s, accuracy=1e-6)


def test_a_run_too_large_for_memory_is_refused_naming_estimate_and_limit(tmp_path: Path) -> None:
    path = inp(tmp_path, 1.0)
    with pytest.raises(NetworkError, match=r"line\.inp: 1e\+09 h in 1000000001 reporting times") as info:
        solve_steps.solve_file(path, duration_s=1e9 * 3600, accuracy=1e-6, max_memory_mb=4096)
    assert "above the limit of 4096 MB (PUMPTWIN_TWIN_MAX_MEMORY_MB)" in str(info.value)


def test_the_memory_limit_is_read_from_the_settings(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUMPTWIN_TWIN_MAX_MEMORY_MB", "0.001")
    result = runner.invoke(app, ["solve", str(inp(tmp_path, 1.0)), "--duration-h", "2"])
    assert result.exit_code == 2, result.output
    assert "above the limit of 0.001 MB" in result.output


def test_the_estimate_is_linear_in_reporting_times() -> None:
    model = compile_network(parse_inp(IMPOSSIBLE.format(demand=1.0, peak=1.0)))
    one, ten = solve_steps.report_bytes(model, 1), solve_steps.report_bytes(model, 10)
    assert ten == 10 * one
    assert math.isclose(solve_steps.report_bytes(model, 1_000_000), 1e6 * one)
