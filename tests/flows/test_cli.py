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

from flows.cli import app
from twin.inp import read_inp

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
