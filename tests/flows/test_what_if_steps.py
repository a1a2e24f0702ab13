"""The one what-if path (`flows.what_if_steps.run_whatif`) and its callers: the CLI, the flow and twin-sync."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from unittest import mock

import pandas as pd
import pytest
import wntr
from typer.testing import CliRunner

from pumptwin.flows import what_if_steps
from pumptwin.flows.cli import app
from pumptwin.flows.settings import Settings
from pumptwin.flows.twin_store import state_paths
from pumptwin.flows.what_if import whatif_flags
from pumptwin.flows.what_if_steps import FOLDER_SUFFIX_BYTES, new_run_folder, run_whatif, twin_basis
from pumptwin.twin.assets import build_registry
from pumptwin.twin.health.estimation import initial_calibration
from pumptwin.twin.health.io import write_calibration
from pumptwin.twin.hydraulic.io import load_network
from pumptwin.twin.surge import transients
from pumptwin.twin.times import STAMP_FORMAT

NET1 = Path(wntr.__file__).parent / "library" / "networks" / "Net1.inp"
CALIBRATED_AT = pd.Timestamp("2024-03-02T06:00:00Z")


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """PUMPTWIN_HOME in tmp_path; variables the CLI sets with setdefault are restored after."""
    monkeypatch.setenv("PUMPTWIN_HOME", str(tmp_path / "home"))
    with mock.patch.dict(os.environ):
        yield tmp_path / "home"


@pytest.fixture
def calibrated(home: Path) -> Settings:
    """A home holding a saved calibration (the prior, timed at `CALIBRATED_AT`) of the reference pipeline."""
    settings = Settings(home=home)
    cal = replace(initial_calibration(build_registry(load_network())), ts=CALIBRATED_AT)
    write_calibration(cal, state_paths(settings)["calibration"])
    return settings


def cli_json(args: list[str]) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["whatif", *args, "--json"])
    assert result.exit_code in (0, 1), result.output
    data: dict[str, Any] = json.loads(result.output)
    return data


def test_cli_and_flow_form_give_the_same_report(home: Path, tmp_path: Path) -> None:
    cli = cli_json(["--flow", "-10%", "--speed", "PS2-P2=0.95", "--ambient-c", "12", "--out", str(tmp_path / "a")])
    flags = whatif_flags(flow_change_pct=-10, speeds={"PS2-P2": 0.95})
    run = run_whatif(Settings(home=home), flags=flags, ambient_c=12.0, out=tmp_path / "b", plots=False)
    assert json.loads(run.paths["json"].read_text()) == cli
    assert (tmp_path / "a" / "whatif.md").read_text() == run.paths["markdown"].read_text()
    assert [s["scenario"] for s in cli["scenarios"]] == ["base case", "flow -10%, speed PS2-P2=0.95"]


def test_ambient_of_zero_degc_is_used(home: Path, tmp_path: Path) -> None:
    warm = tmp_path / "warm.yaml"
    warm.write_text("version: 1\nambient_c: 30\nscenarios:\n  - name: a\n    flow: -5%\n")
    frozen = tmp_path / "frozen.yaml"
    frozen.write_text("version: 1\nambient_c: 0\nscenarios:\n  - name: a\n    flow: -5%\n")
    assert cli_json(["--file", str(frozen), "--out", str(tmp_path / "f")])["ambient_c"] == 0.0
    given = cli_json(["--file", str(warm), "--ambient-c", "0", "--out", str(tmp_path / "g")])
    assert given["ambient_c"] == 0.0
    hot = cli_json(["--file", str(warm), "--out", str(tmp_path / "h")])
    assert hot["ambient_c"] == 30.0
    cold, warm_c = (s["scenarios"][0]["max_bearing_c"] for s in (given, hot))
    assert cold == pytest.approx(warm_c - 30.0)  # the bearings run 30 K cooler in air at 0 degC


def test_scenario_file_rated_speed_reaches_the_surge_check(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[float] = []
    real = transients.line_from_network

    def spy(*args: Any, **kwargs: Any) -> Any:  # noqa: ANN401 - passes through
        seen.append(kwargs["rated_speed_rpm"])
        return real(*args, **kwargs)

    monkeypatch.setattr(transients, "line_from_network", spy)
    spec = tmp_path / "trip.yaml"
    spec.write_text("version: 1\nrated_speed_rpm: 1185\nscenarios:\n  - name: trip\n    trip: [PS1-P1]\n")
    run = run_whatif(Settings(home=home), file=spec, surge=True, out=tmp_path / "o", plots=False)
    assert seen == [1185.0]
    assert any("station trip at" in n for n in run.report.outcome("trip").notes)
    seen.clear()
    run_whatif(Settings(home=home), file=spec, surge=True, rated_speed_rpm=990.0, out=tmp_path / "p", plots=False)
    assert seen == [990.0]  # the command line's rated speed wins over the file's


def test_default_folders_are_stamped_in_utc(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")  # UTC+14: a local stamp would be a day ahead
    time.tzset()
    try:
        before = pd.Timestamp.now(tz="UTC").floor("s")
        run = run_whatif(Settings(home=home), flags={"flow": "-5%"}, plots=False)
        after = pd.Timestamp.now(tz="UTC")
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert run.folder.parent == Settings(home=home).whatif_dir
    stamp, suffix = run.folder.name.split("-")
    stamped = pd.Timestamp(pd.to_datetime(stamp, format=STAMP_FORMAT)).tz_localize("UTC")
    assert before <= stamped <= after
    assert len(suffix) == 2 * FOLDER_SUFFIX_BYTES


def test_two_runs_in_the_same_instant_get_their_own_folders(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(what_if_steps, "utc_stamp", lambda: "20260301T120000000000Z")  # a clock that stands still
    first = run_whatif(Settings(home=home), flags={"flow": "-5%"}, plots=False)
    second = run_whatif(Settings(home=home), flags={"flow": "+5%"}, plots=False)
    assert first.folder != second.folder
    assert first.folder.name.startswith("20260301T120000000000Z-")
    assert "-5%" in first.paths["markdown"].read_text()  # the first run's files are still its own
    assert "+5%" in second.paths["markdown"].read_text()


def test_a_taken_folder_name_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(what_if_steps, "utc_stamp", lambda: "20260301T120000000000Z")
    suffixes = iter(["aaaaaa", "aaaaaa", "bbbbbb"])
    monkeypatch.setattr(what_if_steps.secrets, "token_hex", lambda _: next(suffixes))
    first = new_run_folder(tmp_path / "runs")
    (first / "whatif.md").write_text("first")
    second = new_run_folder(tmp_path / "runs")
    assert (first.name, second.name) == ("20260301T120000000000Z-aaaaaa", "20260301T120000000000Z-bbbbbb")
    assert (first / "whatif.md").read_text() == "first"
    monkeypatch.setattr(what_if_steps.secrets, "token_hex", lambda _: "aaaaaa")
    with pytest.raises(FileExistsError, match="no free run folder"):
        new_run_folder(tmp_path / "runs", attempts=3)


def test_cli_reports_the_as_built_network_without_a_calibration(home: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["whatif", "--flow", "-5%", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "ran on: as-built network (no calibration), line 1" in result.output
    assert json.loads((tmp_path / "o" / "whatif.json").read_text())["twin"] == "as-built network (no calibration)"


def test_cli_reports_the_calibrated_twin_and_its_time(calibrated: Settings, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["whatif", "--flow", "-5%", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "ran on: calibrated twin (calibration of 2024-03-02T06:00:00+00:00), line 1" in result.output
    as_built = runner.invoke(app, ["whatif", "--flow", "-5%", "--as-built", "--out", str(tmp_path / "p")])
    assert "ran on: as-built network (calibration not asked for)" in as_built.output
    other = runner.invoke(app, ["whatif", "--network", str(NET1), "--out", str(tmp_path / "q")])
    assert "as-built network (the calibration is of the configured network, not Net1.inp)" in other.output


def test_twin_basis_phrases() -> None:
    assert twin_basis(None) == "as-built network (no calibration)"
    local = pd.Timestamp("2024-03-02T07:00:00+01:00")
    assert twin_basis(local) == "calibrated twin (calibration of 2024-03-02T06:00:00+00:00)"


@pytest.mark.slow
def test_cli_and_flow_write_the_same_report(home: Path, tmp_path: Path) -> None:
    from prefect.testing.utilities import prefect_test_harness

    from pumptwin.flows.what_if import what_if

    cli = cli_json(["--flow", "-10%", "--stop", "PS2-P1", "--ambient-c", "0", "--out", str(tmp_path / "a")])
    with prefect_test_harness(server_startup_timeout=120):
        asked = what_if(flow_change_pct=-10, stop=["PS2-P1"], ambient_c=0.0)
    assert json.loads((Path(asked["folder"]) / "whatif.json").read_text()) == cli
    assert asked["twin"] == cli["twin"] == "as-built network (no calibration)"
    assert Path(asked["folder"]).parent == Settings(home=home).whatif_dir


TINY_LINE = """[JUNCTIONS]
 J1 0 0
[RESERVOIRS]
 UP 50
 DOWN 40
[PIPES]
 P1 UP J1 1000 300 100
 P2 J1 DOWN 1000 300 100
[OPTIONS]
 UNITS LPS
[END]
"""
"""Two reservoirs joined through J1: at zero pressure J1 can leak about 1580 m3/h."""


def test_a_leak_the_line_cannot_feed_is_reported_and_exits_1(home: Path, tmp_path: Path) -> None:
    network = tmp_path / "tiny.inp"
    network.write_text(TINY_LINE)
    result = CliRunner().invoke(
        app, ["whatif", "--network", str(network), "--leak", "J1=5000m3/h", "--out", str(tmp_path / "o"), "--json"]
    )
    assert result.exit_code == 1, result.output
    scenario = json.loads(result.output)["scenarios"][1]
    assert scenario["status"] == "leak not reachable"
    assert scenario["leak_requested_m3h"] == pytest.approx(5000.0)
    assert 1000.0 < scenario["leak_m3h"] < 2000.0
    assert scenario["leaks"][0]["achieved_m3h"] == pytest.approx(scenario["leak_m3h"])
    assert "5000 m3/h requested" in scenario["message"] and "at most at J1" in scenario["message"]
    assert "leak not reachable: 5000 m3/h requested" in (tmp_path / "o" / "whatif.md").read_text()
    fine = CliRunner().invoke(
        app, ["whatif", "--network", str(network), "--leak", "J1=500m3/h", "--out", str(tmp_path / "p"), "--json"]
    )
    assert fine.exit_code == 0, fine.output
    assert json.loads(fine.output)["scenarios"][1]["leak_m3h"] == pytest.approx(500.0, rel=1e-3)


# --- integrity -----------------------------------------------------------------------------------


def assess_reference_line(settings: Settings) -> float:
    """Write an assessment of two features of the reference line; returns F-61's safe pressure, MPa.

    F-61 (1 km below PS2's discharge) may take 1 % more than the base case puts on it, so the base
    case keeps it and a 3 % higher flow does not; F-30 has room to spare.
    """
    from pumptwin.twin.integrity.line import integrity_limits, pressure_at_features
    from pumptwin.twin.integrity.store import write_assessed

    base = run_whatif(settings, [], plots=False, out=settings.home / "probe", integrity=False).report.outcomes[0]
    rows = pd.DataFrame(
        {
            "feature_id": ["F-61", "F-30"],
            "chainage_m": [61_200.0, 30_200.0],
            "safe_pa": [1.0, 1.0],
            "pipe_id": ["a", "b"],
        }
    )
    limits = integrity_limits(rows)  # in chainage order
    at = pressure_at_features(limits, base.chainage_km, base.profile_pressure_mpa)
    rows["safe_pa"] = [1.01 * at[1] * 1e6, 1.5 * at[0] * 1e6]  # rows F-61, F-30; limits F-30, F-61
    rows["pipe_id"] = ["L060-065", "L030-035"]
    write_assessed(rows, settings.integrity_dir, 1)
    return float(rows["safe_pa"][0]) / 1e6


def test_without_an_assessment_the_report_says_integrity_was_not_checked(home: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["whatif", "--flow", "-5%", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "integrity not checked (no ILI assessment)" in result.output
    data = json.loads((tmp_path / "o" / "whatif.json").read_text())
    assert data["integrity_check"] == "integrity not checked (no ILI assessment)"
    assert data["integrity"] is None and data["derating"] is None
    assert "Integrity not checked (no ILI assessment)." in (tmp_path / "o" / "whatif.md").read_text()


def test_the_cli_checks_the_assessed_features_and_reports_the_derating(home: Path, tmp_path: Path) -> None:
    settings = Settings(home=home)
    safe_mpa = assess_reference_line(settings)
    data = cli_json(["--flow", "+3%", "--out", str(tmp_path / "o")])
    assert data["integrity"]["features"] == 2 and data["integrity"]["margin"] == settings.integrity.margin
    assert data["integrity_check"].startswith("integrity checked: 2 features from ")
    assert "assessed_line01.parquet (written 20" in data["integrity_check"]
    base, more = data["scenarios"]
    assert not [v for v in base["violations"] if v["limit"] == "INTEGRITY"]
    (v,) = [v for v in more["violations"] if v["limit"] == "INTEGRITY"]
    assert v["where"] == "F-61 (L060-065, 61.2 km)" and v["limit_value"] == pytest.approx(safe_mpa)
    derating = data["derating"]
    assert derating["binding_feature"] == "F-61 (L060-065, 61.2 km)"
    assert base["throughput_m3h"] < derating["throughput_m3h"] < more["throughput_m3h"]
    md = (tmp_path / "o" / "whatif.md").read_text()
    assert "## Integrity" in md and "derated throughput" in md and "INTEGRITY F-61 (L060-065, 61.2 km)" in md
    result = CliRunner().invoke(app, ["whatif", "--flow", "+3%", "--out", str(tmp_path / "p")])
    assert result.exit_code == 1 and "integrity checked: 2 features" in result.output
    off = CliRunner().invoke(app, ["whatif", "--flow", "+3%", "--no-integrity", "--out", str(tmp_path / "q")])
    assert off.exit_code == 0, off.output
    assert "integrity not checked (not asked for)" in off.output


def test_the_margin_setting_scales_the_safe_pressures(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    safe_mpa = assess_reference_line(Settings(home=home))
    monkeypatch.setenv("PUMPTWIN_INTEGRITY_MARGIN", "0.9")
    run = run_whatif(Settings(home=home), [], plots=False, out=tmp_path / "o")
    base = run.report.outcomes[0]
    (v,) = [v for v in base.violations if v.limit == "INTEGRITY"]
    assert v.limit_value == pytest.approx(0.9 * safe_mpa) and not run.report.within_limits
    assert "against 90 % of their safe pressure" in run.to_markdown()
