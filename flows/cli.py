"""The ``pumptwin`` command line: one Typer app whose commands call flows or core functions.

Settings are built once per command (``PUMPTWIN_*`` environment variables) and
the offline environment is applied before numba or prefect are imported.

Errors are handled in one place (`CommandGroup.invoke`): a `twin.errors.PumptwinError` (bad input
named in its message) or an `OSError` (a file that cannot be read or written) ends any command
with exit code 2 and a one-line ``error: ...`` on stderr, without a traceback.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.units import DAY_S, HOUR_S

BAD_INPUT_EXIT = 2
"""Exit code of a command stopped by bad input (a `PumptwinError` or an `OSError`)."""


def one_line(exc: BaseException) -> str:
    """An error's message on one line (line breaks become spaces)."""
    return " ".join(str(exc).split()) or type(exc).__name__


class CommandGroup(TyperGroup):
    """The app's command group: turns project and file errors of every command into exit code 2."""

    def invoke(self, ctx: Any) -> Any:  # noqa: ANN401 - Typer's click context; whatever the command returns
        """Run the command; a `PumptwinError` or `OSError` prints ``error: <message>`` and exits 2."""
        try:
            return super().invoke(ctx)
        except (PumptwinError, OSError) as exc:
            typer.echo(f"error: {one_line(exc)}", err=True)
            raise typer.Exit(BAD_INPUT_EXIT) from exc


app = typer.Typer(
    cls=CommandGroup,
    help="pumptwin: a digital twin for pipeline pump stations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.command()
def solve(
    network: Annotated[Path, typer.Argument(help="EPANET .inp file (a .yaml sidecar beside it is applied).")],
    json_out: Annotated[Path | None, typer.Option("--json", help="Write heads, pressures and flows here.")] = None,
    duration_h: Annotated[
        float, typer.Option("--duration-h", help="Extended-period length in hours; 0 = steady.")
    ] = 0.0,
    accuracy: Annotated[float | None, typer.Option(help="Convergence limit (sum|dq|/sum|q|).")] = None,
) -> None:
    """Solve a network's steady state (or an extended period) and report every node and link."""
    from pumptwin.flows.settings import get_settings

    settings = get_settings()
    from pumptwin.flows import solve_steps

    report = solve_steps.solve_file(
        network, duration_s=duration_h * HOUR_S, accuracy=accuracy if accuracy is not None else settings.twin.accuracy
    )
    typer.echo(solve_steps.describe(report))
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report, indent=1))
        typer.echo(f"wrote {json_out}")
    if not report["converged"]:
        raise typer.Exit(1)


@app.command()
def ingest(
    source: Annotated[str, typer.Argument(help="File or folder (CSV/Parquet), simulator:SCENARIO, or pi:NAME_FILTER.")],
    start: Annotated[datetime | None, typer.Option(help="Window start (UTC); default everything.")] = None,
    end: Annotated[datetime | None, typer.Option(help="Window end (UTC, exclusive).")] = None,
    full: Annotated[bool, typer.Option("--full", help="Store every row, not only rows past the watermarks.")] = False,
) -> None:
    """Ingest a source into the raw store: validate, store good rows, quarantine the rest.

    Exit code 0 when every row was stored, 1 when rows were quarantined or files refused, 2 on error.
    """
    from pumptwin.flows.settings import get_settings

    settings = get_settings()
    from pumptwin.flows.ingest_steps import read_source, store_source

    report = store_source(read_source(source, settings, start, end), settings, incremental=not full)
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
    file: Annotated[Path | None, typer.Option("--file", help="Scenario file (YAML, schema version 1).")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Folder for the table, JSON and plots; default <home>/whatif/<UTC time>.")
    ] = None,
    json_stdout: Annotated[bool, typer.Option("--json", help="Print the full results as JSON, not the table.")] = False,
    ambient_c: Annotated[
        float | None, typer.Option("--ambient-c", help="Ambient temperature, degC; default the file's, else 25.")
    ] = None,
    rated_rpm: Annotated[
        float | None, typer.Option("--rated-rpm", help="Rated pump speed for rpm values and the surge check.")
    ] = None,
    surge: Annotated[
        bool, typer.Option("--surge", help="Simulate surge (method of characteristics) for scenarios with trips.")
    ] = False,
    line: Annotated[int, typer.Option(help="Which line's calibration to apply, 1-based.")] = 1,
    as_built: Annotated[
        bool, typer.Option("--as-built", help="Solve the as-built network, not the calibrated twin.")
    ] = False,
) -> None:
    """Simulate what-if scenarios in one batch on the calibrated twin: operating points, pressures, margins, energy.

    Runs on the calibrated twin when the twin has been synchronised (``pumptwin sync``), else on the
    as-built network, and says which. Exit code 0 when every scenario stays within its limits, 1
    when one violates a limit (or does not solve), 2 on bad input.
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
    )
    if json_stdout:
        typer.echo(json.dumps(whatif_dict(run.report, twin=run.twin, line=run.line), indent=1))
    else:
        typer.echo(run.report.to_markdown())
        typer.echo(f"ran on: {run.twin}, line {run.line}")
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


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    main()
