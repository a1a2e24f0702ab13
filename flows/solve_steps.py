"""Wiring for ``pumptwin solve``: read a network file, solve it, describe the result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pumptwin.twin.hydraulic.eps import simulate
from pumptwin.twin.hydraulic.io import load_network, solution_to_dict
from pumptwin.twin.hydraulic.solver import compile_network


def solve_file(path: Path, *, duration_s: float, accuracy: float) -> dict[str, Any]:
    """Solve the network in ``path`` over ``duration_s`` seconds (0 = steady state) and return the report."""
    model = compile_network(load_network(path))
    return solution_to_dict(model, simulate(model, duration_s=duration_s, accuracy=accuracy))


def describe(report: dict[str, Any]) -> str:
    """A few lines summarising a solution report."""
    n_t = len(report["times_s"])
    state = "converged" if report["converged"] else "DID NOT CONVERGE"
    period = "steady state" if n_t == 1 else f"{n_t} reporting times"
    return f"{report['network']}: {len(report['nodes'])} nodes, {len(report['links'])} links, {period}, {state}"
