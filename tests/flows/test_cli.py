"""Tests for the `pumptwin` command line (`flows.cli:app`) through Typer's CliRunner, in-process."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
import wntr
from typer.testing import CliRunner

from pumptwin.flows.cli import app
from pumptwin.twin.hydraulic.inp import read_inp

NET1 = Path(wntr.__file__).parent / "library" / "networks" / "Net1.inp"


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[CliRunner]:
    """A runner with PUMPTWIN_HOME in tmp_path; variables the CLI sets with setdefault are restored after."""
    monkeypatch.setenv("PUMPTWIN_HOME", str(tmp_path / "home"))
    with mock.patch.dict(os.environ):
        yield CliRunner()


def command_names() -> list[str]:
    return [c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands]  # type: ignore[union-attr]


def test_app_help_lists_every_command(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    assert "solve" in command_names()
    for name in command_names():
        assert name in result.output


@pytest.mark.parametrize("name", command_names())
def test_help_of_every_command(runner: CliRunner, name: str) -> None:
    result = runner.invoke(app, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_solve_net1_writes_every_node_and_link(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "out" / "net1.json"
    result = runner.invoke(app, ["solve", str(NET1), "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "converged" in result.output and str(out) in result.output
    report = json.loads(out.read_text())
    net = read_inp(NET1)
    assert set(report["nodes"]) == {n.id for n in net.nodes}
    assert set(report["links"]) == {link.id for link in net.links}
    assert report["converged"] is True and report["times_s"] == [0]
    assert (tmp_path / "home").is_dir()


def test_solve_extended_period(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "eps.json"
    result = runner.invoke(app, ["solve", str(NET1), "--duration-h", "2", "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["times_s"] == [0, 3600, 7200]
    assert len(report["links"]["9"]["flow_m3s"]) == 3


def test_missing_file_exits_2_naming_it(runner: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "no_such_network.inp"
    result = runner.invoke(app, ["solve", str(missing)])
    assert result.exit_code == 2
    assert "no_such_network.inp" in result.output
    assert "Traceback" not in result.output


def test_broken_inp_exits_2_naming_the_file(runner: CliRunner, tmp_path: Path) -> None:
    broken = tmp_path / "broken_net.inp"
    broken.write_text("[JUNCTIONS]\n J1 0 10\n[RESERVOIRS]\n R1 50\n[PIPES]\n P1 R1 J9 100 200 100\n[END]\n")
    result = runner.invoke(app, ["solve", str(broken)])
    assert result.exit_code == 2
    assert "broken_net.inp" in result.output and "J9" in result.output
    assert "Traceback" not in result.output


def test_no_arguments_shows_help(runner: CliRunner) -> None:
    result = runner.invoke(app, [])
    assert "Usage" in result.output


# --------------------------------------------------------------------------------------------
# pumptwin whatif
# --------------------------------------------------------------------------------------------


def test_whatif_within_limits_exits_0_and_writes_results(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "wi"
    result = runner.invoke(app, ["whatif", "--speed", "all=0.95", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "| base case |" in result.output and "speed all=0.95" in result.output
    for name in ("whatif.json", "whatif.md", "whatif.csv", "pump_curves.png", "pressure_profile.png"):
        assert (out / name).is_file(), name
    data = json.loads((out / "whatif.json").read_text())
    assert [s["scenario"] for s in data["scenarios"]] == ["base case", "speed all=0.95"]
    assert data["within_limits"] is True


def test_whatif_violation_exits_1_with_json(runner: CliRunner, tmp_path: Path) -> None:
    scenarios = tmp_path / "s.yaml"
    scenarios.write_text("version: 1\nscenarios:\n  - name: more\n    flow: +10%\n")
    result = runner.invoke(app, ["whatif", "--file", str(scenarios), "--json"])
    assert result.exit_code == 1, result.output
    data = json.loads(result.output)
    more = data["scenarios"][1]
    assert more["scenario"] == "more" and {v["limit"] for v in more["violations"]} >= {"MAOP", "SPEED"}
    runs = list((tmp_path / "home" / "whatif").iterdir())  # default folder under PUMPTWIN_HOME
    assert len(runs) == 1 and (runs[0] / "whatif.json").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stop", "NOPE"], "pump 'NOPE' does not exist"),
        (["--flow", "fast"], "--flow"),
        (["--leak", "500=10m3/h"], "km 500 is outside"),
        (["--file", "no_such.yaml"], "no_such.yaml: no such scenario file"),
        (["--network", "no_such.inp"], "no_such.inp"),
    ],
)
def test_whatif_bad_input_exits_2(runner: CliRunner, tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["whatif", *args, "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_whatif_out_replaces_an_earlier_whatif_and_refuses_other_folders(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "wi"
    for _ in range(2):  # the second run replaces the first one's files
        result = runner.invoke(app, ["whatif", "--speed", "all=0.95", "--out", str(out)])
        assert result.exit_code == 0, result.output
    (out / "notes.txt").write_text("not a what-if's")
    refused = runner.invoke(app, ["whatif", "--speed", "all=0.95", "--out", str(out)])
    assert refused.exit_code == 2, refused.output
    assert "holds other files than a what-if's ('notes.txt')" in refused.output
    assert (out / "notes.txt").read_text() == "not a what-if's"


def test_solve_json_refuses_a_folder_before_solving(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pumptwin.flows.solve_steps.solve_file", mock.Mock(side_effect=AssertionError("solved")))
    result = runner.invoke(app, ["solve", str(NET1), "--json", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert result.stderr == f"error: --json '{tmp_path}' is a folder; give a file name, e.g. '{tmp_path}/out.json'\n"


def test_whatif_surge_flag_simulates_trips(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["whatif", "--trip", "PS1-P1", "--surge", "--json", "--out", str(tmp_path / "o")])
    assert result.exit_code == 1, result.output  # the trip overloads PS1-P2 (POR, NPSH)
    trip = json.loads(result.output)["scenarios"][1]
    assert any("station trip at PS1-D" in n for n in trip["notes"])


# --------------------------------------------------------------------------------------------
# One error handler: every PumptwinError ends a command with exit 2 and one line
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "module", "name", "error"),
    [
        (["solve", str(NET1)], "pumptwin.flows.solve_steps", "solve_file", "NetworkError"),
        (["ingest", "data.csv"], "pumptwin.flows.ingest_steps", "read_source", "SourceError"),
        (["features"], "pumptwin.flows.build_features_steps", "compute_features", "FeatureError"),
        (["score"], "pumptwin.flows.score_steps", "score_fleet", "StoreError"),
        (["sync"], "pumptwin.flows.twin_sync_steps", "sync_twin", "SyncError"),
        (["whatif"], "pumptwin.flows.what_if_steps", "run_whatif", "ScenarioError"),
        (["train", "--family", "anomaly"], "pumptwin.flows.train_steps", "train_family", "TrainingError"),
        (["demo"], "pumptwin.flows.demo", "run", "PlantError"),
    ],
)
def test_every_command_turns_a_project_error_into_exit_2(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, args: list[str], module: str, name: str, error: str
) -> None:
    import importlib

    from pumptwin.twin.errors import PumptwinError

    kind = type(error, (PumptwinError, ValueError), {})

    def fail(*_: object, **__: object) -> None:
        raise kind(f"{error}: bad value\nnamed here")

    monkeypatch.setattr(importlib.import_module(module), name, fail)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert f"error: {error}: bad value named here\n" in result.output  # one line
    assert "Traceback" not in result.output


def test_project_errors_share_one_base_and_keep_value_error() -> None:
    from pumptwin.features.store import StoreError
    from pumptwin.models.registry import RegistryError as ModelRegistryError
    from pumptwin.plant.simulator import PlantError
    from pumptwin.twin.assets import RegistryError
    from pumptwin.twin.errors import PumptwinError
    from pumptwin.twin.health.estimation import EstimationError
    from pumptwin.twin.hydraulic.network import NetworkError
    from pumptwin.twin.whatif.scenarios import ScenarioError

    kinds = (StoreError, ModelRegistryError, PlantError, RegistryError, EstimationError, NetworkError, ScenarioError)
    for kind in kinds:
        assert issubclass(kind, PumptwinError) and issubclass(kind, ValueError), kind


def test_ingest_of_an_unknown_simulator_scenario_exits_2(runner: CliRunner) -> None:
    result = runner.invoke(app, ["ingest", "simulator:no_such_scenario"])
    assert result.exit_code == 2, result.output
    assert "no shipped scenario 'no_such_scenario'" in result.output
    assert "Traceback" not in result.output


def test_ingest_from_the_historian_without_its_settings_exits_2(runner: CliRunner) -> None:
    result = runner.invoke(app, ["ingest", "pi:PS01.*"])
    assert result.exit_code == 2, result.output
    assert "PUMPTWIN_HISTORIAN__URL" in result.output
    assert "Traceback" not in result.output


def test_approve_refuses_a_malformed_speed_before_asking_prefect(runner: CliRunner) -> None:
    result = runner.invoke(app, ["approve", "line1-x", "--approver", "A. Operator", "--speed", "PS01.P1:0.9"])
    assert result.exit_code == 2, result.output
    assert "PUMP=RELATIVE_SPEED" in result.output


def test_approve_refuses_an_empty_approver(runner: CliRunner) -> None:
    result = runner.invoke(app, ["approve", "line1-x", "--approver", "  "])
    assert result.exit_code == 2, result.output
    assert "approver" in result.output


def test_approve_without_a_paused_run_exits_2(runner: CliRunner) -> None:
    with mock.patch("pumptwin.flows.implement_steps.find_paused_run", return_value=None) as find:
        result = runner.invoke(app, ["approve", "line1-x", "--approver", "A. Operator", "--reject"])
    find.assert_called_once_with("line1-x")
    assert result.exit_code == 2, result.output
    assert "no paused run waits for request 'line1-x'" in result.output


def test_approve_sends_the_form_answer_to_the_paused_run(runner: CliRunner) -> None:
    run_id = "7c1f9a52-0000-4000-8000-000000000001"
    with (
        mock.patch("pumptwin.flows.implement_steps.find_paused_run", return_value=run_id),
        mock.patch("pumptwin.flows.implement_steps.answer_request") as answer,
    ):
        result = runner.invoke(
            app,
            ["approve", "line1-x", "--approver", "A. Operator", "--comment", "ok", "--speed", "PS01.P1=0.93"],
        )
    assert result.exit_code == 0, result.output
    (sent_id, sent), _ = answer.call_args
    assert sent_id == run_id
    assert sent["approve"] is True and sent["approver"] == "A. Operator" and sent["comment"] == "ok"
    assert 0.93 in sent.values()
    assert "approved line1-x" in result.output
