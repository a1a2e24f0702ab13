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
    from flows.settings import get_settings

    settings = get_settings()
    from flows import hydraulics_job
    from twin.network import NetworkError

    try:
        report = hydraulics_job.solve_file(
            network, duration_s=duration_h * 3600.0, accuracy=accuracy or settings.twin.accuracy
        )
    except NetworkError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(hydraulics_job.describe(report))
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
    from flows.settings import get_settings

    settings = get_settings()
    from flows.ingest_job import read_source, store_source

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
    from flows.settings import get_settings

    settings = get_settings()
    from flows import demo as demo_job

    code = demo_job.run(settings, network)
    sys.stdout.flush()
    raise typer.Exit(code)


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
    from flows.settings import get_settings

    get_settings()
    from benchmarks.skab import main as skab_main

    args = ["--data", str(data)] + (["--out", str(out)] if out is not None else [])
    raise typer.Exit(skab_main(args))


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    main()
