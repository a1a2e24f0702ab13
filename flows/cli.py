"""The ``pumptwin`` command line: one Typer app whose commands call flows or core functions.

Settings are built once per command (``PUMPTWIN_*`` environment variables) and
the offline environment is applied before numba or prefect are imported.

Exit codes, the same for every command, so a scheduler can act on them:

* 0: everything stored, every scenario within its limits;
* 1: rows quarantined, limits violated, a solve that did not converge;
* 2: an error: one line ``error: ...`` on stderr and no traceback. Bad input (a
  `twin.errors.PumptwinError`), a file that cannot be read or written (`OSError`), a file that is
  not UTF-8, invalid ``PUMPTWIN_*`` settings, running out of memory, and any unexpected error
  (``internal error: ...``; its traceback goes to ``<home>/logs/<UTC stamp>.log``). Click's usage
  errors (an unknown option, a value of the wrong type) also end with 2, in Click's format;
* 130: interrupted (Ctrl-C), with one line and no traceback.

Errors are handled in one place, `CommandGroup`: its `invoke` covers every command, their option
parsing and callbacks, and the sub-apps; its `main` covers the app's own options.

Output paths: ``solve --json FILE`` replaces an existing file (written beside it, then renamed) and
refuses a folder; ``whatif --out FOLDER`` refuses a file, and refuses a folder that holds anything
but the files of an earlier what-if (which it then replaces).
"""

from __future__ import annotations

import json
import math
import os
import sys
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.safety import printable, replace_text, shorten
from pumptwin.twin.units import DAY_S, HOUR_S

BAD_INPUT_EXIT = 2
"""Exit code of a command stopped by an error (bad input, a file, memory, or an internal error)."""

INTERRUPTED_EXIT = 130
"""Exit code of a command stopped with Ctrl-C (128 + SIGINT, as shells report it)."""

ERROR_LIMIT = 600
"""Most characters of an error message printed on the terminal."""

PATH_LIMIT = 240
"""Most characters of a path shown in a message."""

_CLI_SIGNALS = (typer.TyperException, typer.Exit, typer.Abort)
"""Click's and Typer's own exits and usage errors: they pass through with their own exit codes."""


class OptionError(PumptwinError, ValueError):
    """A command-line option with a value the command cannot use; the message names the option."""


def one_line(exc: BaseException) -> str:
    """An error's message on one line (line breaks become spaces), printable and bounded."""
    text = printable(" ".join(str(exc).split()) or type(exc).__name__)
    return text if len(text) <= ERROR_LIMIT else f"{text[: ERROR_LIMIT - 3]}..."


def _os_error(exc: OSError) -> str:
    """An `OSError` as ``<file>: <reason>`` when it names a file, else its message."""
    if exc.strerror and exc.filename is not None:
        files = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
        return one_line(OSError(f"{printable(files)}: {exc.strerror}"))
    return one_line(exc)


def _not_utf8(exc: UnicodeDecodeError, file: object = None) -> str:
    """A decoding error as a message naming the file (when known) and the first bad byte."""
    what = f"{printable(str(file))} is" if file is not None else "a file is"
    byte = exc.object[exc.start : exc.start + 1].hex() if isinstance(exc.object, bytes | bytearray) else "?"
    return f"{what} not UTF-8 text (byte 0x{byte} at position {exc.start}); save it as UTF-8"


def _invalid_model(exc: Any) -> str:  # noqa: ANN401 - a pydantic ValidationError
    """A pydantic validation error on one line: each field, its problem and the value given."""
    parts = [
        f"{'.'.join(str(p) for p in e.get('loc', ())) or 'value'}: {e.get('msg', 'invalid')}"
        + (f" (got {shorten(e['input'])})" if "input" in e and not isinstance(e["input"], dict) else "")
        for e in exc.errors()[:3]
    ]
    more = f"; and {exc.error_count() - 3} more" if exc.error_count() > 3 else ""  # noqa: PLR2004 - shown errors
    hint = "; check the PUMPTWIN_* variables" if str(exc.title).endswith("Settings") else ""
    return one_line(ValueError(f"invalid {exc.title}: {'; '.join(parts)}{more}{hint}"))


def _log_folder() -> Path:
    """``<home>/logs``: the settings' home, or the default home when the settings cannot be built."""
    from pumptwin.flows.settings import Settings

    try:
        home = Settings().home
    except Exception:  # noqa: BLE001 - invalid settings must not hide the error being logged
        home = Path(Settings.model_fields["home"].default)
    return home / "logs"


def write_error_log(exc: BaseException, argv: Sequence[str] | None = None) -> Path:
    """Write an unexpected error's full traceback to ``<home>/logs/<UTC stamp>.log``.

    Args:
        exc: The error.
        argv: The command line that failed (default `sys.argv`).

    Returns:
        The log file.

    Raises:
        OSError: When the log cannot be written.
    """
    folder = _log_folder()
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%fZ')}-{os.getpid()}.log"
    command = " ".join(argv if argv is not None else sys.argv)
    with log.open("a", encoding="utf-8") as out:
        out.write(f"command: {command}\n\n")
        out.write("".join(traceback.format_exception(exc)))
    return log


def _internal_error(exc: BaseException) -> str:
    """The one-line message of an unexpected error, naming the log that holds its traceback."""
    try:
        where = f"details in {write_error_log(exc)}"
    except OSError as log_error:
        where = f"no log written: {_os_error(log_error)}"
    return f"internal error: {type(exc).__name__}: {one_line(exc)} ({where})"


def describe_error(exc: BaseException, command: str = "pumptwin") -> str:
    """The one-line message of any failure of a command (without the ``error:`` prefix).

    Args:
        exc: What the command raised.
        command: The command, e.g. ``pumptwin solve``, for messages that name it.

    Returns:
        The message: the error's own for project errors, a clear one for files, memory and
        settings, and ``internal error: ...`` (traceback logged) for anything unexpected.
    """
    from pydantic import ValidationError

    if isinstance(exc, PumptwinError):
        return one_line(exc)
    if isinstance(exc, UnicodeDecodeError):
        return _not_utf8(exc)
    if isinstance(exc, OSError):
        return _os_error(exc)
    if isinstance(exc, MemoryError):
        return f"out of memory while running {command}; try a smaller window, duration or chunk"
    if isinstance(exc, ValidationError):
        return _invalid_model(exc)
    return _internal_error(exc)


class CommandGroup(TyperGroup):
    """The app's command group: ends every failure of every command with one line and exit code 2."""

    def invoke(self, ctx: Any) -> Any:  # noqa: ANN401 - Typer's click context; whatever the command returns
        """Run the command (parsing its options included); a failure prints ``error: <message>`` and exits 2.

        Click's usage errors and exits pass through; Ctrl-C prints ``error: interrupted`` and exits 130.
        """
        try:
            return super().invoke(ctx)
        except _CLI_SIGNALS:
            raise
        except KeyboardInterrupt as exc:
            typer.echo("error: interrupted", err=True)
            raise typer.Exit(INTERRUPTED_EXIT) from exc
        except Exception as exc:  # noqa: BLE001 - the one place every failure becomes exit code 2
            command = " ".join(p for p in (ctx.command_path, ctx.invoked_subcommand) if p)
            typer.echo(f"error: {describe_error(exc, command)}", err=True)
            raise typer.Exit(BAD_INPUT_EXIT) from exc

    def main(  # noqa: PLR0913 - Click's signature
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,  # noqa: ANN401 - Click's context settings
    ) -> Any:  # noqa: ANN401 - whatever the command returns
        """Run the app; a failure outside any command (the app's own options) also ends with one line and 2."""
        try:
            return super().main(args, prog_name, complete_var, standalone_mode, windows_expand_args, **extra)
        except _CLI_SIGNALS:
            raise
        except Exception as exc:  # noqa: BLE001 - the one place every failure becomes exit code 2
            typer.echo(f"error: {describe_error(exc, prog_name or 'pumptwin')}", err=True)
            if standalone_mode:
                sys.exit(BAD_INPUT_EXIT)
            return BAD_INPUT_EXIT


# --- option checks: Typer callbacks that refuse a value before the command starts --------------


def _option(param: typer.CallbackParam) -> str:
    """The option's longest name, e.g. ``--duration-h``."""
    return max(param.opts, key=len) if param.opts else str(param.name)


def _path(path: Path) -> str:
    """A path from the command line for a message: quoted, printable, bounded."""
    return shorten(str(path), limit=PATH_LIMIT)


def non_negative(param: typer.CallbackParam, value: float | None) -> float | None:
    """Option callback: refuse NaN, infinities and negative numbers.

    Raises:
        OptionError: The value is not finite or is below 0.
    """
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise OptionError(f"{_option(param)} must be a finite number >= 0, got {shorten(value)}")
    return value


def positive(param: typer.CallbackParam, value: float | None) -> float | None:
    """Option callback: refuse NaN, infinities, zero and negative numbers.

    Raises:
        OptionError: The value is not finite or is not above 0.
    """
    if value is not None and not (math.isfinite(value) and value > 0):
        raise OptionError(f"{_option(param)} must be a finite number > 0, got {shorten(value)}")
    return value


def finite(param: typer.CallbackParam, value: float | None) -> float | None:
    """Option callback: refuse NaN and infinities.

    Raises:
        OptionError: The value is not finite.
    """
    if value is not None and not math.isfinite(value):
        raise OptionError(f"{_option(param)} must be a finite number, got {shorten(value)}")
    return value


def output_file(param: typer.CallbackParam, value: Path | None) -> Path | None:
    """Option callback for a file the command writes: refuse a folder (an existing file is replaced).

    Raises:
        OptionError: The path is a folder.
    """
    if value is not None and value.is_dir():
        example = _path(value / "out.json")
        raise OptionError(f"{_option(param)} {_path(value)} is a folder; give a file name, e.g. {example}")
    return value


def result_folder(param: typer.CallbackParam, value: Path | None) -> Path | None:
    """Option callback for the what-if folder: refuse a file, and a folder with other files than a what-if's.

    Raises:
        OptionError: The path is a file, or a folder that holds anything but an earlier what-if's files.
    """
    if value is None or not value.exists():
        return value
    if not value.is_dir():
        raise OptionError(f"{_option(param)} {_path(value)} is a file; give a new or empty folder")
    from pumptwin.flows.what_if_steps import OUTPUT_FILES

    outputs = set(OUTPUT_FILES.values())
    others = sorted(p.name for p in value.iterdir() if p.name not in outputs or not p.is_file())
    if others:
        raise OptionError(
            f"{_option(param)} {_path(value)} holds other files than a what-if's "
            f"({shorten(', '.join(others))}); give a new or empty folder"
        )
    return value


def utf8_file(param: typer.CallbackParam, value: Path | None) -> Path | None:
    """Option callback for a text file the command reads: refuse one that is not UTF-8.

    A missing file passes; the command names it in its own message.

    Raises:
        OptionError: The file is not UTF-8 text.
    """
    if value is not None and value.is_file():
        try:
            value.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise OptionError(f"{_option(param)} {_not_utf8(exc, value)}") from exc
    return value


def utc_time(value: datetime | None) -> datetime | None:
    """Option callback for a window's end: a time without a zone is UTC, as the options' help says."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


app = typer.Typer(
    cls=CommandGroup,
    help="pumptwin: a digital twin for pipeline pump stations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.command()
def solve(
    network: Annotated[Path, typer.Argument(help="EPANET .inp file (a .yaml sidecar beside it is applied).")],
    json_out: Annotated[
        Path | None,
        typer.Option(
            "--json",
            help="Write heads, pressures and flows to this file (an existing file is replaced).",
            callback=output_file,
        ),
    ] = None,
    duration_h: Annotated[
        float,
        typer.Option("--duration-h", help="Extended-period length in hours (>= 0); 0 = steady.", callback=non_negative),
    ] = 0.0,
    accuracy: Annotated[
        float | None, typer.Option(help="Convergence limit (sum|dq|/sum|q|), > 0.", callback=positive)
    ] = None,
) -> None:
    """Solve a network's steady state (or an extended period) and report every node and link.

    Exit code 0 for a converged, physical solution, 1 when it did not converge or is not physical
    (negative pressures at junctions with demand), 2 on bad input.
    """
    from pumptwin.flows.settings import get_settings

    settings = get_settings()
    from pumptwin.flows import solve_steps

    report = solve_steps.solve_file(
        network,
        duration_s=duration_h * HOUR_S,
        accuracy=accuracy if accuracy is not None else settings.twin.accuracy,
        max_memory_mb=settings.twin.max_memory_mb,
    )
    typer.echo(solve_steps.describe(report))
    if json_out is not None:
        replace_text(json_out, json.dumps(report, indent=1))
        typer.echo(f"wrote {json_out}")
    raise typer.Exit(solve_steps.exit_code(report))


@app.command()
def ingest(
    source: Annotated[str, typer.Argument(help="File or folder (CSV/Parquet), simulator:SCENARIO, or pi:NAME_FILTER.")],
    start: Annotated[
        datetime | None, typer.Option(help="Window start (UTC); default everything.", callback=utc_time)
    ] = None,
    end: Annotated[datetime | None, typer.Option(help="Window end (UTC, exclusive).", callback=utc_time)] = None,
    full: Annotated[
        bool, typer.Option("--full", help="pi: sources: read from --start, not from the watermarks.")
    ] = False,
) -> None:
    """Ingest a source into the raw store: validate, store good rows, quarantine the rest.

    Every row read is stored or found already stored, however old: the watermarks only decide where
    a pi: read starts. Exit code 0 when every row was stored (or was an exact duplicate), 1 when
    rows were quarantined or files refused, 2 on error.
    """
    from pumptwin.flows.settings import get_settings

    settings = get_settings()
    from pumptwin.flows.ingest_steps import read_source, store_source

    report = store_source(read_source(source, settings, start, end, incremental=not full), settings)
    typer.echo(report.to_markdown())
    typer.echo(f"raw store: {settings.raw_dir}   validation reports: {settings.validation_dir}")
    raise typer.Exit(0 if report.clean else 1)


@app.command()
def demo(
    network: Annotated[Path | None, typer.Option(help="Network file; default the reference pipeline.")] = None,
) -> None:
    """Run the main job on the embedded default: solve the reference pipeline and its what-ifs."""
    from pumptwin.flows.settings import get_settings

    settings = get_settings()
    from pumptwin.flows import demo as demo_job

    code = demo_job.run(settings, network)
    sys.stdout.flush()
    raise typer.Exit(code)


@app.command()
def whatif(  # noqa: PLR0913 - one parameter per command-line option
    network: Annotated[Path | None, typer.Option(help="Network file; default the configured or reference one.")] = None,
    flow: Annotated[str | None, typer.Option(help="Throughput change: +10%, -5% or a target like 2300m3/h.")] = None,
    speed: Annotated[
        list[str] | None, typer.Option(help="PUMP=1400rpm, STATION=0.9 or all=0.9 (factor on the current speed).")
    ] = None,
    stop: Annotated[list[str] | None, typer.Option(help="Pump to stop.")] = None,
    start: Annotated[list[str] | None, typer.Option(help="Pump to start.")] = None,
    standby: Annotated[list[str] | None, typer.Option(help="Pump to stop; a stopped pump beside it starts.")] = None,
    trip: Annotated[list[str] | None, typer.Option(help="Pump that trips (steady state after the trip).")] = None,
    leak: Annotated[
        list[str] | None, typer.Option(help="KM=SIZE or NODE=SIZE, e.g. 90=50m3/h or KP090=2% (of throughput).")
    ] = None,
    suction_drop: Annotated[
        str | None, typer.Option("--suction-drop", help="Suction pressure drop at the source: bar, or 50kPa.")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="Scenario file (YAML, UTF-8, schema version 1).", callback=utf8_file)
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder for the table, JSON and plots: new, empty or an earlier what-if's (replaced); "
            "default a new <home>/whatif/<UTC time>-<random suffix>.",
            callback=result_folder,
        ),
    ] = None,
    json_stdout: Annotated[bool, typer.Option("--json", help="Print the full results as JSON, not the table.")] = False,
    ambient_c: Annotated[
        float | None,
        typer.Option("--ambient-c", help="Ambient temperature, degC; default the file's, else 25.", callback=finite),
    ] = None,
    rated_rpm: Annotated[
        float | None,
        typer.Option("--rated-rpm", help="Rated pump speed for rpm values and the surge check.", callback=positive),
    ] = None,
    surge: Annotated[
        bool, typer.Option("--surge", help="Simulate surge (method of characteristics) for scenarios with trips.")
    ] = False,
    line: Annotated[int, typer.Option(help="Which line's calibration to apply, 1-based.", min=1)] = 1,
    as_built: Annotated[
        bool, typer.Option("--as-built", help="Solve the as-built network, not the calibrated twin.")
    ] = False,
    integrity: Annotated[
        bool,
        typer.Option(
            "--integrity/--no-integrity",
            help="Check pressures against the safe pressures of the line's ILI assessment (when one exists).",
        ),
    ] = True,
) -> None:
    """Simulate what-if scenarios in one batch on the calibrated twin: operating points, pressures, margins, energy.

    Runs on the calibrated twin when the twin has been synchronised (``pumptwin sync``), else on the
    as-built network, and says which. With the line's integrity assessment (``<home>/integrity``),
    every scenario's pressure is checked against each assessed feature's safe pressure and the
    derating is reported; without one the report says integrity was not checked. Exit code 0 when
    every scenario stays within its limits, 1 when one violates a limit (a feature's safe pressure
    included), does not solve, is not physical (negative pressures) or cannot reach its leak, 2 on
    bad input.
    """
    from pumptwin.flows.settings import get_settings

    settings = get_settings()
    from pumptwin.flows.what_if_steps import run_whatif, whatif_dict

    flags = {
        "flow": flow,
        "speed": speed or [],
        "stop": stop or [],
        "start": start or [],
        "standby": standby or [],
        "trip": trip or [],
        "leak": leak or [],
        "suction_drop": suction_drop,
    }
    run = run_whatif(
        settings,
        flags=flags,
        file=file,
        network=network,
        line=line,
        calibrated=not as_built,
        ambient_c=ambient_c,
        rated_speed_rpm=rated_rpm,
        surge=surge,
        out=out,
        integrity=integrity,
    )
    if json_stdout:
        typer.echo(json.dumps(whatif_dict(run.report, twin=run.twin, line=run.line, integrity=run.integrity), indent=1))
    else:
        typer.echo(run.report.to_markdown())
        typer.echo(f"ran on: {run.twin}, line {run.line}")
        typer.echo(run.integrity)
        typer.echo(f"results: {run.folder}")
    raise typer.Exit(0 if run.report.within_limits else 1)


@app.command()
def sync(
    window_s: Annotated[float, typer.Option("--window-s", help="Windows the readings are folded in, s.")] = 900.0,
    history_s: Annotated[
        float, typer.Option("--history-s", help="How far back the first synchronisation reads, s.")
    ] = 7 * DAY_S,
    now: Annotated[
        datetime | None, typer.Option(help="End of the window and time of the state (UTC); default the newest reading.")
    ] = None,
) -> None:
    """Synchronise the twin with the raw store: calibrate, assess health, save and print the state.

    Exit code 0 when every asset is normal or on watch, 1 when one is in warning or alarm, 2 on
    bad input (unreadable saved state, malformed readings).
    """
    from pumptwin.flows.settings import get_settings

    settings = get_settings()
    from pumptwin.flows.twin_sync_steps import sync_twin

    report = sync_twin(settings, now=now, window_s=window_s, history_s=history_s)
    typer.echo(report.to_markdown())
    raise typer.Exit(1 if report.attention else 0)


@app.command()
def cycle(  # noqa: PLR0913 - one parameter per command-line option
    source: Annotated[
        str, typer.Argument(help="Folder of per-station files (historian export), a file, pi: or simulator:SCENARIO.")
    ],
    start: Annotated[datetime, typer.Option(help="Window start (UTC).", callback=utc_time)],
    end: Annotated[
        datetime | None, typer.Option(help="Window end (UTC, exclusive); default start + 1 h.", callback=utc_time)
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Run again a window already completed.")] = False,
    plots: Annotated[bool, typer.Option("--plots", help="Draw the what-ifs' and recommendations' plots.")] = False,
) -> None:
    """Run one cycle over a window on the settings' task runner (PUMPTWIN_RUNNER_KIND, _ADDRESS, _WORKERS).

    Ingest and validate per station, features, scores, the twin's synchronisation, then the what-ifs
    and recommendations of the lines on alert. Exit code 0, 2 on error.
    """
    from pumptwin.flows.settings import get_settings

    settings = get_settings()
    from pumptwin.flows.cycle import cycle as cycle_flow
    from pumptwin.flows.runner import with_runner

    summary = with_runner(cycle_flow, settings)(source=source, start=start, end=end, force=force, plots=plots)
    typer.echo(json.dumps(summary, indent=1, default=str))


@app.command()
def features(
    start: Annotated[datetime | None, typer.Option(help="Window start (UTC); default everything.")] = None,
    end: Annotated[datetime | None, typer.Option(help="Window end (UTC, exclusive).")] = None,
) -> None:
    """Build per-pump features from the raw store into the feature store; print the build's summary."""
    from pumptwin.flows.settings import get_settings

    settings = get_settings()
    from pumptwin.flows.build_features_steps import compute_features, store_features

    build = store_features(settings, compute_features(settings, start, end))
    typer.echo(build.to_markdown())


@app.command()
def train(
    family: Annotated[
        list[str] | None, typer.Option(help="Model family to train (anomaly, diagnosis, ttf); default all.")
    ] = None,
) -> None:
    """Train, evaluate and register the model families, promoting a challenger that beats the champion."""
    from pumptwin.flows.settings import get_settings

    settings = get_settings()
    from pumptwin.flows.train_steps import FAMILIES, outcomes_markdown, train_family

    chosen = family or list(FAMILIES)
    unknown = sorted(set(chosen) - set(FAMILIES))
    if unknown:
        typer.echo(f"error: unknown model families {unknown}; choose from {list(FAMILIES)}", err=True)
        raise typer.Exit(BAD_INPUT_EXIT)
    typer.echo(outcomes_markdown([train_family(settings, f) for f in chosen]))


@app.command()
def score() -> None:
    """Score every pump's latest features with the champion models and write the scores for the twin."""
    from pumptwin.flows.settings import get_settings

    settings = get_settings()
    from pumptwin.flows.score_steps import score_fleet

    report = score_fleet(settings)
    typer.echo(report.to_markdown())
    if report.path is not None:
        typer.echo(f"scores: {report.path}")


@app.command()
def recommend(
    search: Annotated[
        bool, typer.Option("--search/--no-search", help="Also search the continuous pump speeds.")
    ] = True,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Draw the chosen action's what-if plots.")] = True,
) -> None:
    """Recommend the best action for every line with an active alert, with its evidence; print it.

    Exit code 0 when nothing needs doing beyond keeping on (and scheduling maintenance), 1 when an
    action is recommended, 2 on an error (no readable twin state, a bad setting).
    """
    from pumptwin.flows.settings import get_settings

    settings = get_settings()
    from pumptwin.flows.recommend_steps import recommend_lines

    report = recommend_lines(settings, search=search, plots=plots)
    typer.echo(report.to_markdown())
    if report.lines:
        typer.echo(report.message)
    raise typer.Exit(1 if report.attention else 0)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help='The question, e.g. "why is PS01.P1 in alarm?".')],
) -> None:
    """Answer an operator's question from the knowledge corpus and the twin's state, with citations."""
    from pumptwin.flows.settings import get_settings

    settings = get_settings()
    from pumptwin.flows.recommend_steps import ask_question

    if not question.strip():
        raise typer.BadParameter("the question is empty", param_hint="QUESTION")
    typer.echo(ask_question(settings, question).text)


@app.command()
def implement(
    line: Annotated[int, typer.Option(min=1, help="The line whose latest recommendation is implemented.")] = 1,
    recommendation: Annotated[
        Path | None,
        typer.Option(callback=utf8_file, help="A recommendation.json to implement instead of the line's latest."),
    ] = None,
) -> None:
    """Implement a line's recommendation inside the guardrails, or pause until a person approves it.

    Runs the Prefect flow ``implement``: automatic implementation when the policy allows it,
    otherwise the run waits for an answer in the Prefect UI (or from ``pumptwin approve``).
    Exit code 0 when the request ended implemented or needed no action, 1 otherwise.
    """
    from pumptwin.flows.implement import implement as implement_flow

    result = implement_flow(line=line, recommendation=str(recommendation) if recommendation else None)
    typer.echo(f"{result['request']}: {result['status']}: {result['message']}")
    for reason in result.get("reasons") or []:
        typer.echo(f"  - {reason}")
    raise typer.Exit(0 if result["status"] in ("implemented", "no_action") else 1)


@app.command()
def approve(  # noqa: PLR0913 - one parameter per command-line option
    request: Annotated[str, typer.Argument(help="The request id (shown in the approval artifact).")],
    approver: Annotated[str, typer.Option(help="Who answers (recorded in the audit log).")],
    reject: Annotated[bool, typer.Option("--reject", help="Reject instead of approving.")] = False,
    reason: Annotated[str, typer.Option(help='Why (e.g. "false alarm", which becomes a label).')] = "",
    comment: Annotated[str, typer.Option(help="A comment for the audit log.")] = "",
    speed: Annotated[
        list[str] | None, typer.Option(help="A modified speed, PUMP=RELATIVE (e.g. PS01.P1=0.93); repeatable.")
    ] = None,
) -> None:
    """Answer a paused ``implement`` run as the Prefect UI's form does (the flow re-checks every value)."""
    from pumptwin.flows.implement_steps import answer_request, find_paused_run, form_answer

    speeds: dict[str, float] = {}
    for item in speed or []:
        pump, _, value = item.partition("=")
        try:
            speeds[pump.strip()] = float(value)
        except ValueError:
            raise typer.BadParameter(f"expected PUMP=RELATIVE_SPEED, got {item!r}", param_hint="--speed") from None
    if not approver.strip():
        raise typer.BadParameter("the approver's name is empty", param_hint="--approver")
    run_id = find_paused_run(request)
    if run_id is None:
        typer.echo(f"error: no paused run waits for request {request!r} (answered, expired or unknown)", err=True)
        raise typer.Exit(BAD_INPUT_EXIT)
    answer_request(run_id, form_answer(not reject, approver, comment=comment, reason=reason, speeds=speeds))
    typer.echo(f"{'rejected' if reject else 'approved'} {request} (flow run {run_id}); the run re-checks and goes on")


@app.command()
def feedback(
    request: Annotated[str | None, typer.Option(help="Only this request; default every implemented one.")] = None,
    window: Annotated[float, typer.Option(callback=positive, help="Verification window after an action, s.")] = 3600.0,
    retrain: Annotated[bool, typer.Option("--retrain/--no-retrain", help="Retrain on new labels.")] = True,
    recalibrate: Annotated[bool, typer.Option("--recalibrate/--no-recalibrate", help="Re-sync the twin.")] = True,
) -> None:
    """Compare the plant's response to implemented actions with the twin's prediction, label and learn."""
    from pumptwin.flows.feedback import feedback as feedback_flow

    result = feedback_flow(request=request, window_s=window, retrain=retrain, recalibrate=recalibrate)
    typer.echo(result["message"])


@app.command()
def integrity(
    line: Annotated[int, typer.Option(min=1, help="Line inspected (names the files and the artifact).")] = 1,
    path: Annotated[
        Path | None, typer.Option(help="One ILI export (CSV or XLSX); default every export in the ILI folder.")
    ] = None,
) -> None:
    """Assess the newest in-line inspection of a line (B31G modified or DNV-RP-F101), growth and the dig list.

    Exit code 0 when the run was assessed, 1 when no export could be read (the reasons are printed).
    """
    from pumptwin.flows.integrity import integrity as integrity_flow

    result = integrity_flow(line=line, path=None if path is None else str(path))
    for refused in result["refused"]:
        typer.echo(f"refused {refused['file']}: {refused['reason']}")
    if result["assessed_run"] is None:
        typer.echo("no ILI run could be read; nothing assessed")
        raise typer.Exit(1)
    counts = ", ".join(f"{k} {v}" for k, v in result["counts"].items())
    typer.echo(f"line {line}: run {result['assessed_run']} assessed ({counts})")
    if result["growth"] is not None:
        g = result["growth"]
        typer.echo(f"growth since {g['from']} ({g['years']:.1f} years): {g['matched']} matched, {g['new']} new")
    if result["top"]:
        typer.echo(f"top of the dig list: {', '.join(result['top'])}")
    for kind, file in result["files"].items():
        typer.echo(f"{kind}: {file}")


@app.command()
def routes(
    now: Annotated[
        datetime | None, typer.Option(callback=utc_time, help="Latest acceptable route time (UTC); default now.")
    ] = None,
) -> None:
    """Admit the collectors' route files (vibration, thermography, visual), check the online sensors, fuse.

    Exit code 0 when every file was read, 1 when a file or row was quarantined (the reasons are printed).
    """
    from pumptwin.flows.inspection import inspection_ingest

    result = inspection_ingest(now=None if now is None else now.isoformat())
    typer.echo(result["message"])
    for flag in result["flags"]:
        typer.echo(f"sensor flag: {flag}")
    raise typer.Exit(1 if result["quarantined"] or any(f["error"] for f in result["files"]) else 0)


@app.command()
def rounds(
    now: Annotated[datetime | None, typer.Option(callback=utc_time, help="Time of the plan (UTC); default now")] = None,
) -> None:
    """Plan this week's condition-based inspection round and publish it; the other assets are left to the twin."""
    from pumptwin.flows.rounds import rounds as rounds_flow

    result = rounds_flow(now=None if now is None else now.isoformat())
    typer.echo(
        f"{result['key']}: {len(result['visits'])} assets to visit at {len(result['stations'])} stations, "
        f"{result['hours']:.1f} h; {len(result['covered'])} covered by the twin"
    )
    for i, asset in enumerate(result["visits"], 1):
        typer.echo(f"  {i}. {asset}")
    typer.echo(f"round: {result['paths']['markdown']}")


knowledge_app = typer.Typer(
    help="Index and evaluate the knowledge corpus the agents retrieve from.", no_args_is_help=True
)
app.add_typer(knowledge_app, name="knowledge")


@knowledge_app.command("index")
def knowledge_index() -> None:
    """Index the packaged corpus and the operator's documents (only what changed); report what was done.

    Exit code 0 when every file was indexed, 1 when a malformed file was skipped (named in the report).
    """
    from pumptwin.flows.settings import get_settings

    settings = get_settings()
    from pumptwin.flows.recommend_steps import index_knowledge, index_markdown, retrieval_config

    report = index_knowledge(settings)
    typer.echo(index_markdown(report, retrieval_config(settings).where))
    raise typer.Exit(1 if report.skipped else 0)


@knowledge_app.command("eval")
def knowledge_eval(
    split: Annotated[
        str | None, typer.Option(help="Score only the `tune`, `report` or `fresh` questions; default all.")
    ] = None,
    k: Annotated[int, typer.Option(min=1, max=100, help="Passages retrieved per question.")] = 5,
    questions: Annotated[
        list[Path] | None, typer.Option("--questions", help="Question files (YAML); default the packaged ones.")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the figures as JSON here.")] = None,
) -> None:
    """Score retrieval on the evaluation questions: recall@k, hit@k and MRR, dense, sparse and hybrid."""
    from pumptwin.flows.settings import get_settings

    settings = get_settings()
    from pumptwin.agents.evaluation import SPLITS
    from pumptwin.flows.recommend_steps import evaluate_knowledge

    if split not in (None, *SPLITS):
        raise typer.BadParameter(f"choose one of {', '.join(SPLITS)}, got {split!r}", param_hint="--split")
    report = evaluate_knowledge(settings, split=split, k=k, questions=questions or ())
    typer.echo(report.to_markdown())
    out = json_out or settings.bench_dir / "retrieval.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report.to_dict(), indent=1), encoding="utf-8")
    typer.echo(f"figures: {out}")


bench = typer.Typer(help="Public benchmarks.", no_args_is_help=True)
app.add_typer(bench, name="bench")


@bench.command("skab")
def bench_skab(
    data: Annotated[Path, typer.Option(help="SKAB data folder (its labelled subfolders are scored).")] = Path(
        "../shared/datasets/skab"
    ),
    out: Annotated[
        Path | None,
        typer.Option(help="CSV of every scored row's held-out prediction: file, datetime, anomaly, changepoint."),
    ] = None,
) -> None:
    """Score the anomaly detector on SKAB with SKAB's protocol: F1, FAR, MAR and the NAB scores.

    The detector setting is chosen by leave-one-group-out over the data folders (the headline);
    the setting chosen on all files is printed beside it as the optimistic in-sample figure.
    Exit code 0 when the headline meets the targets (F1 >= 0.85 with FAR <= 10 %, NAB standard
    >= 35), 1 when it misses one, 2 on an error such as a missing data folder.
    """
    from pumptwin.flows.bench_steps import skab

    raise typer.Exit(skab(data, out))


store_app = typer.Typer(help="Check, repair and compact the raw store.", no_args_is_help=True)
app.add_typer(store_app, name="store")


@store_app.command("check")
def store_check() -> None:
    """Read every partition and the watermarks of the raw store; list what cannot be read.

    Exit code 0 when everything is readable, 1 when something needs ``pumptwin store repair``.
    """
    from pumptwin.flows.settings import get_settings

    settings = get_settings()
    from pumptwin.flows.store_steps import check_store

    found = check_store(settings)
    typer.echo(found.to_markdown())
    raise typer.Exit(0 if found.ok else 1)


@store_app.command("repair")
def store_repair() -> None:
    """Move unreadable partitions to <raw>/_corrupt/, remove leftover temporary files, rebuild the watermarks."""
    from pumptwin.flows.settings import get_settings

    settings = get_settings()
    from pumptwin.flows.store_steps import repair_store

    typer.echo(repair_store(settings).to_markdown())


@store_app.command("compact")
def store_compact() -> None:
    """Merge each partition's appended files into one sorted file (bounded memory); print how many were merged."""
    from pumptwin.flows.settings import get_settings

    settings = get_settings()
    from pumptwin.flows.store_steps import compact_store

    typer.echo(f"compacted {compact_store(settings)} partitions of {settings.raw_dir}")


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    main()
