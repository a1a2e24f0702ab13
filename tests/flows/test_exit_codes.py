"""Exit codes a scheduler can trust: 0 done, 1 quarantined or limits violated, 2 an error in one line.

Each case runs `pumptwin` in-process and checks the exit code, a fragment of the message and that
no traceback reaches the terminal.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
import typer
import wntr
from typer.testing import CliRunner, Result

from pumptwin.flows.cli import BAD_INPUT_EXIT, INTERRUPTED_EXIT, CommandGroup, app
from pumptwin.twin.errors import PumptwinError

NET1 = str(Path(wntr.__file__).parent / "library" / "networks" / "Net1.inp")


@pytest.fixture
def tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A folder with the inputs of the cases; PUMPTWIN_HOME below it; the environment restored after."""
    monkeypatch.setenv("PUMPTWIN_HOME", str(tmp_path / "home"))
    (tmp_path / "folder").mkdir()
    (tmp_path / "existing.json").write_text("{}")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("keep me")
    (tmp_path / "previous").mkdir()
    (tmp_path / "previous" / "whatif.json").write_text("{}")
    (tmp_path / "latin1.yaml").write_bytes(b"version: 1\nscenarios:\n  - name: caf\xe9\n    flow: +1%\n")
    with mock.patch.dict(os.environ):
        yield tmp_path


def run(args: list[str], tmp: Path) -> Result:
    """Run `pumptwin` with ``{tmp}`` in the arguments replaced by the cases' folder."""
    return CliRunner().invoke(app, [a.replace("{tmp}", str(tmp)) for a in args])


CASES: list[tuple[list[str], int, str]] = [
    # solve: output path and the float options, checked before solving
    (["solve", NET1, "--json", "{tmp}/folder"], 2, "--json '{tmp}/folder' is a folder; give a file name"),
    (["solve", NET1, "--duration-h", "nan"], 2, "--duration-h must be a finite number >= 0, got nan"),
    (["solve", NET1, "--duration-h", "inf"], 2, "--duration-h must be a finite number >= 0, got inf"),
    (["solve", NET1, "--duration-h", "-1"], 2, "--duration-h must be a finite number >= 0, got -1.0"),
    (["solve", NET1, "--accuracy", "0"], 2, "--accuracy must be a finite number > 0, got 0.0"),
    (["solve", "{tmp}/no_such.inp"], 2, "no_such.inp"),
    # Click's own usage errors keep exit code 2
    (["solve", NET1, "--duration-h", "abc"], 2, "Invalid value for '--duration-h'"),
    (["solve"], 2, "Missing argument"),
    (["no-such-command"], 2, "No such command"),
    # whatif: output folder, scenario file and float options, checked before running
    (["whatif", "--out", "{tmp}/existing.json"], 2, "--out '{tmp}/existing.json' is a file"),
    (["whatif", "--out", "{tmp}/full"], 2, "holds other files than a what-if's ('notes.txt')"),
    (["whatif", "--out", "{tmp}/previous", "--stop", "NOPE"], 2, "pump 'NOPE' does not exist"),  # --out passed
    (["whatif", "--file", "{tmp}/latin1.yaml"], 2, "latin1.yaml is not UTF-8 text (byte 0xe9 at position 35)"),
    (["whatif", "--rated-rpm", "-1500"], 2, "--rated-rpm must be a finite number > 0"),
    (["whatif", "--ambient-c", "nan"], 2, "--ambient-c must be a finite number, got nan"),
    (["whatif", "--line", "0"], 2, "'--line'"),
    # ingest
    (["ingest", "pi:PS01.*"], 2, "PUMPTWIN_HISTORIAN__URL"),
    (["ingest", "simulator:no_such_scenario"], 2, "no shipped scenario 'no_such_scenario'"),
    # a sub-app's command
    (["bench", "skab", "--data", "{tmp}/no_such"], 2, "SKAB data folder"),
    # success
    (["solve", NET1, "--json", "{tmp}/existing.json"], 0, "wrote {tmp}/existing.json"),  # a file is replaced
]


@pytest.mark.parametrize(("args", "code", "fragment"), CASES, ids=[f"{i}-{c[0][0]}" for i, c in enumerate(CASES)])
def test_exit_code_and_message(tmp: Path, args: list[str], code: int, fragment: str) -> None:
    result = run(args, tmp)
    assert result.exit_code == code, result.output
    assert fragment.replace("{tmp}", str(tmp)) in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output
    if code == BAD_INPUT_EXIT and result.stderr.startswith("error: "):
        assert len(result.stderr.splitlines()) == 1, result.stderr


def test_solve_replaces_an_existing_json_file(tmp: Path) -> None:
    result = run(["solve", NET1, "--json", "{tmp}/existing.json"], tmp)
    assert result.exit_code == 0, result.output
    assert '"converged": true' in (tmp / "existing.json").read_text()
    assert sorted(p.name for p in tmp.iterdir() if p.name.startswith(".")) == []  # no temporary file left


def test_invalid_settings_exit_2_naming_the_setting(tmp: Path) -> None:
    os.environ["PUMPTWIN_HISTORIAN__TIMEOUT_S"] = "abc\x1b[2J"
    result = run(["solve", NET1], tmp)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: invalid Settings: historian.timeout_s: Input should be a valid number")
    assert "PUMPTWIN_*" in result.stderr and "\x1b" not in result.stderr
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.output


# --------------------------------------------------------------------------------------------
# Failures raised inside a command
# --------------------------------------------------------------------------------------------


def fail_solve(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    """Make `pumptwin solve` raise `error` from inside the command."""

    def fail(*_: object, **__: object) -> None:
        raise error

    monkeypatch.setattr("pumptwin.flows.solve_steps.solve_file", fail)


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (MemoryError(), "error: out of memory while running "),
        (
            UnicodeDecodeError("utf-8", b"ab\xff", 2, 3, "invalid start byte"),
            "error: a file is not UTF-8 text (byte 0xff at position 2)",
        ),
        (PermissionError(13, "Permission denied", "/srv/twin/net.inp"), "error: /srv/twin/net.inp: Permission denied"),
        (PumptwinError("x" * 10_000), "error: xxxx"),
        (PumptwinError("tag 'A\x1b[2J' is\nbad"), "error: tag 'A\\x1b[2J' is bad"),
    ],
)
def test_an_error_inside_a_command_exits_2_with_one_line(
    tmp: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException, message: str
) -> None:
    fail_solve(monkeypatch, error)
    result = run(["solve", NET1], tmp)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(message), result.stderr
    assert len(result.stderr.splitlines()) == 1 and len(result.stderr) < 700
    assert "\x1b" not in result.stderr and "Traceback" not in result.output


def test_out_of_memory_names_the_command_and_what_to_try(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fail_solve(monkeypatch, MemoryError())
    result = run(["solve", NET1], tmp)
    assert result.exit_code == 2
    assert "solve" in result.stderr and "try a smaller window" in result.stderr


def test_an_unexpected_error_is_one_line_and_its_traceback_is_logged(
    tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_solve(monkeypatch, KeyError("boom\x1b[31m"))
    result = run(["solve", NET1], tmp)
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert line.startswith("error: internal error: KeyError: 'boom\\x1b[31m' (details in ")
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.output
    logs = list((tmp / "home" / "logs").glob("*.log"))
    assert len(logs) == 1 and str(logs[0]) in line
    text = logs[0].read_text()
    assert "Traceback" in text and "KeyError: " in text and "in fail" in text  # where it was raised


def test_ctrl_c_exits_130_without_a_traceback(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fail_solve(monkeypatch, KeyboardInterrupt())
    result = run(["solve", NET1], tmp)
    assert result.exit_code == INTERRUPTED_EXIT
    assert result.stderr == "error: interrupted\n" and "Traceback" not in result.output


# --------------------------------------------------------------------------------------------
# Failures in option callbacks, parameter conversion and the app's own options
# --------------------------------------------------------------------------------------------


def small_app(error: Exception, *, where: str) -> typer.Typer:
    """An app on `CommandGroup` whose option callback (`where` = "command" or "app") raises `error`."""
    mini = typer.Typer(cls=CommandGroup, pretty_exceptions_enable=False)

    def refuse(value: int | None) -> int | None:
        if value is not None:
            raise error
        return value

    @mini.callback()
    def main(level: int | None = typer.Option(None, callback=refuse if where == "app" else None)) -> None:
        """The app."""

    @mini.command()
    def go(count: int | None = typer.Option(None, callback=refuse if where == "command" else None)) -> None:
        """A command."""
        typer.echo("went")

    return mini


@pytest.mark.parametrize(("where", "args"), [("command", ["go", "--count", "3"]), ("app", ["--level", "3", "go"])])
@pytest.mark.parametrize(
    ("error", "message"),
    [
        (PumptwinError("count 3 is too many"), "error: count 3 is too many"),
        (RuntimeError("converter broke"), "error: internal error: RuntimeError: converter broke (details in "),
    ],
)
def test_errors_in_option_callbacks_exit_2_with_one_line(
    tmp: Path, where: str, args: list[str], error: Exception, message: str
) -> None:
    result = CliRunner().invoke(small_app(error, where=where), args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(message), result.stderr
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.output
    assert "went" not in result.output


def test_usage_errors_of_a_small_app_keep_clicks_exit_2(tmp: Path) -> None:
    result = CliRunner().invoke(small_app(RuntimeError(), where="command"), ["go", "--count", "many"])
    assert result.exit_code == 2 and "Invalid value" in result.output and "Traceback" not in result.output


def test_the_console_command_prints_one_line_on_stderr(tmp: Path) -> None:
    command = [sys.executable, "-m", "pumptwin.flows.cli", "solve", NET1, "--duration-h", "inf"]
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy(), timeout=300, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr == "error: --duration-h must be a finite number >= 0, got inf\n"
    assert done.stdout == ""
