"""The ``pumptwin`` command line: one Typer app whose commands call flows or core functions.

Settings are built once per command (``PUMPTWIN_*`` environment variables) and
the offline environment is applied before numba or prefect are imported.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="pumptwin: a digital twin for pipeline pump stations.", no_args_is_help=True, pretty_exceptions_enable=False
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
    from pumptwin.twin.hydraulic.network import NetworkError

    try:
        report = solve_steps.solve_file(
            network, duration_s=duration_h * 3600.0, accuracy=accuracy or settings.twin.accuracy
        )
    except NetworkError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
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

    try:
        report = store_source(read_source(source, settings, start, end), settings, incremental=not full)
    except (OSError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
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
        Path | None, typer.Option(help="Folder for the table, JSON and plots; default <home>/whatif/<time>.")
    ] = None,
    json_stdout: Annotated[bool, typer.Option("--json", help="Print the full results as JSON, not the table.")] = False,
    ambient_c: Annotated[float | None, typer.Option("--ambient-c", help="Ambient temperature, degC.")] = None,
    rated_rpm: Annotated[float | None, typer.Option("--rated-rpm", help="Rated pump speed for rpm values.")] = None,
    surge: Annotated[
        bool, typer.Option("--surge", help="Simulate surge (method of characteristics) for scenarios with trips.")
    ] = False,
) -> None:
    """Simulate what-if scenarios in one batch: operating points, pressures, margins, condition, energy.

    Exit code 0 when every scenario stays within its limits, 1 when one violates a limit (or does
    not solve), 2 on bad input.
    """
    from pumptwin.flows.settings import get_settings

    settings = get_settings()
    from pumptwin.twin.hydraulic.io import load_network
    from pumptwin.twin.hydraulic.network import NetworkError
    from pumptwin.twin.whatif.plots import plot_pressure_profile, plot_pump_curves
    from pumptwin.twin.whatif.scenarios import (
        DEFAULT_RATED_RPM,
        ScenarioError,
        read_scenarios,
        run_scenarios,
        scenario_from_flags,
        transient_surge_check,
    )

    try:
        net = load_network(network or settings.twin.network)
        flags = scenario_from_flags(
            flow=flow,
            speed=speed or (),
            stop=stop or (),
            start=start or (),
            standby=standby or (),
            trip=trip or (),
            leak=leak or (),
            suction_drop=suction_drop,
        )
        loaded = read_scenarios(file) if file is not None else None
        specs = ([] if loaded is None else list(loaded.scenarios)) + ([flags] if flags is not None else [])
        rated = rated_rpm or (loaded.rated_speed_rpm if loaded is not None else DEFAULT_RATED_RPM)
        ambient = ambient_c if ambient_c is not None else (loaded.ambient_c if loaded and loaded.ambient_c else 25.0)
        report = run_scenarios(
            net,
            specs,
            rated_speed_rpm=rated,
            ambient_c=ambient,
            source=loaded.source if loaded else None,
            delivery=loaded.delivery if loaded else None,
            accuracy=settings.twin.accuracy,
            surge_check=transient_surge_check(rated_speed_rpm=rated_rpm or DEFAULT_RATED_RPM) if surge else None,
        )
    except (NetworkError, ScenarioError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    from pumptwin.twin.hydraulic.solver import compile_network

    folder = out or settings.home / "whatif" / datetime.now().strftime("%Y%m%dT%H%M%S")
    folder.mkdir(parents=True, exist_ok=True)
    data = report.to_dict()
    (folder / "whatif.json").write_text(json.dumps(data, indent=1))
    (folder / "whatif.md").write_text(report.to_markdown())
    report.to_frame().to_csv(folder / "whatif.csv")
    plot_pump_curves(compile_network(net), report, folder / "pump_curves.png")
    plot_pressure_profile(report, folder / "pressure_profile.png")
    typer.echo(json.dumps(data, indent=1) if json_stdout else report.to_markdown())
    if not json_stdout:
        typer.echo(f"results: {folder}")
    raise typer.Exit(0 if report.within_limits else 1)


@app.command()
def sync(
    window_s: Annotated[float, typer.Option("--window-s", help="Windows the readings are folded in, s.")] = 900.0,
    history_s: Annotated[
        float, typer.Option("--history-s", help="How far back the first synchronisation reads, s.")
    ] = 7 * 86_400.0,
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

    try:
        report = sync_twin(settings, now=now, window_s=window_s, history_s=history_s)
    except (OSError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
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

    try:
        build = store_features(settings, compute_features(settings, start, end))
    except (OSError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
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
        raise typer.Exit(2)
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
        Path | None, typer.Option(help="CSV of every scored row: file, datetime, anomaly, changepoint.")
    ] = None,
) -> None:
    """Score the anomaly detector on SKAB with SKAB's protocol: F1, FAR, MAR and the NAB scores."""
    from pumptwin.flows.settings import get_settings

    get_settings()
    from benchmarks.skab import main as skab_main

    args = ["--data", str(data)] + (["--out", str(out)] if out is not None else [])
    raise typer.Exit(skab_main(args))


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    main()
