"""Wiring for ``pumptwin bench``: run a quality benchmark that ships with the package, print and record it."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from pumptwin.flows.settings import get_settings


def skab(data: Path, out: Path | None) -> int:
    """Run SKAB's protocol (`pumptwin.models.skab_benchmark`), print it, write ``bench/skab.json``.

    Args:
        data: SKAB data folder (holds ``valve1/``, ``valve2/``, ``anomaly-free/``).
        out: CSV for every scored row's held-out prediction, or None.

    Returns:
        0 when the headline meets every target, 1 when it misses one, 2 on an error (a missing
        folder, a single group), with the message on standard error.
    """
    from pumptwin.models.skab_benchmark import EXIT_ERROR, EXIT_MET, EXIT_MISSED, report, run

    settings = get_settings()
    try:
        figures = run(data, out)
    except (OSError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        return EXIT_ERROR
    typer.echo(report(figures))
    if out is not None:
        typer.echo(f"wrote {out}")
    path = Path(settings.bench_dir) / "skab.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=1))
    typer.echo(f"wrote {path}  ({figures['seconds']:.1f} s)")
    return EXIT_MET if figures["met"] else EXIT_MISSED
