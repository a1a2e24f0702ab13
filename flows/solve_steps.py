"""Wiring for ``pumptwin solve``: read a network file, solve it, describe the result.

Before it runs, `solve_file` checks the duration and the time steps and estimates the memory of
the results (reporting times x (nodes + links) x the arrays kept, plus the report built from them);
a run above ``max_memory_mb`` is refused with a `NetworkError` naming the estimate and the limit.
After it runs, the report carries EPANET's warning of negative pressures at junctions with demand
(``warnings``, ``negative_pressure_nodes``): the demand cannot be delivered there, so the result is
not physical and `exit_code` is 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pumptwin.twin.hydraulic.eps import (
    NEGATIVE_PRESSURE_TOLERANCE_M,
    NegativePressure,
    check_memory,
    negative_pressures,
    pressures_below,
    result_bytes,
    run_times,
    simulate,
)
from pumptwin.twin.hydraulic.io import load_network, solution_to_dict
from pumptwin.twin.hydraulic.solver import HydraulicModel, compile_network
from pumptwin.twin.units import HOUR_S

REPORT_BYTES_PER_VALUE = 96
"""Memory of one reported value, bytes: a Python float in a list, the metric arrays behind it, its JSON text."""
PUMP_VALUES = 12
"""Values reported per pump and reporting time (speed, head gain, % of BEP, efficiency, powers, NPSH...)."""
PIPE_VALUES = 2
"""Values reported per pipe and reporting time (highest pressure, MAOP margin)."""
WARNINGS_SHOWN = 5
"""Junctions named in the negative-pressure warning (the worst first)."""
MEMORY_SETTING = "PUMPTWIN_TWIN_MAX_MEMORY_MB"
"""The setting that holds the memory limit, named in the refusal."""


def report_bytes(model: HydraulicModel, n_times: int) -> int:
    """Estimated memory of solving and reporting ``n_times`` reporting times of ``model``, bytes.

    The result arrays (`twin.hydraulic.eps.result_bytes`) plus the report: per reporting time a
    head and a pressure per node, a flow and a status per link, `PUMP_VALUES` per pump and
    `PIPE_VALUES` per pipe, each at `REPORT_BYTES_PER_VALUE`.
    """
    values = 2 * model.n_nodes + 2 * model.n_links + PUMP_VALUES * len(model.pump_link)
    values += PIPE_VALUES * len(model.network.pipes)
    return result_bytes(model, n_times) + n_times * values * REPORT_BYTES_PER_VALUE


def solve_file(path: Path, *, duration_s: float, accuracy: float, max_memory_mb: float = 4096.0) -> dict[str, Any]:
    """Solve the network in ``path`` over ``duration_s`` seconds (0 = steady state) and return the report.

    Args:
        path: EPANET ``.inp`` file (its sidecar ``.yaml`` applies).
        duration_s: Simulated time, s (finite, >= 0; 0 gives the steady state).
        accuracy: Convergence limit of each solve.
        max_memory_mb: Largest estimated memory of the run, MB.

    Returns:
        `solution_to_dict`'s report plus ``source_encoding``, ``warnings`` (text) and
        ``negative_pressure_nodes`` ({junction: {pressure_m, time_s}}, worst first).

    Raises:
        NetworkError: An unreadable file, a bad duration or time step, or a run above the memory limit.
    """
    model = compile_network(load_network(path))
    times = run_times(model, duration_s)
    n_t = times.n_report_times
    check_memory(
        report_bytes(model, n_t),
        max_memory_mb,
        f"{path.name}: {duration_s / HOUR_S:g} h in {n_t} reporting times x ({model.n_nodes} nodes + "
        f"{model.n_links} links)",
        MEMORY_SETTING,
    )
    result = simulate(model, duration_s=duration_s, accuracy=accuracy)
    report = solution_to_dict(model, result)
    low = negative_pressures(model, result)
    report["source_encoding"] = model.network.source_encoding
    report["warnings"] = [negative_pressure_warning(low, steady=n_t == 1)] if low else []
    opts = model.network.options
    if opts.demand_model == "PDA":
        short = pressures_below(model, result, opts.required_pressure_m - NEGATIVE_PRESSURE_TOLERANCE_M)
        report["warnings"] += (
            [pressure_driven_warning(short, opts.required_pressure_m, steady=n_t == 1)] if short else []
        )
    report["negative_pressure_nodes"] = {n.node: {"pressure_m": n.pressure_m, "time_s": n.time_s} for n in low}
    return report


def pressure_driven_warning(short: list[NegativePressure], required_m: float, *, steady: bool) -> str:
    """Where the file's pressure-driven demand (PDA) would deliver less than the demand solved here."""
    shown = ", ".join(
        f"{n.node} {n.pressure_m:.4g} m" + ("" if steady else f" at {_clock(n.time_s)}") for n in short[:WARNINGS_SHOWN]
    )
    more = f" and {len(short) - WARNINGS_SHOWN} more" if len(short) > WARNINGS_SHOWN else ""
    return (
        f"The file asks for pressure-driven demand (DEMAND MODEL PDA), solved here demand-driven: {len(short)} "
        f"junction{'s' if len(short) > 1 else ''} with demand {'fall' if len(short) > 1 else 'falls'} below its "
        f"required pressure {required_m:.4g} m "
        f"({shown}{more}), where EPANET would deliver less than the demand, so its flows and heads differ"
    )


def negative_pressure_warning(low: list[NegativePressure], *, steady: bool) -> str:
    """EPANET's warning, with the worst junctions and their pressures (and times in an extended period)."""
    shown = ", ".join(
        f"{n.node} {n.pressure_m:.4g} m" + ("" if steady else f" at {_clock(n.time_s)}") for n in low[:WARNINGS_SHOWN]
    )
    more = f" and {len(low) - WARNINGS_SHOWN} more" if len(low) > WARNINGS_SHOWN else ""
    return (
        f"Negative pressures at {len(low)} node{'s' if len(low) > 1 else ''} (junctions with demand): "
        f"{shown}{more}; "
        "the demand cannot be delivered there, the result is not physical"
    )


def _clock(time_s: int) -> str:
    return f"{time_s // 3600}:{time_s // 60 % 60:02d}:{time_s % 60:02d}"


def exit_code(report: dict[str, Any]) -> int:
    """0 for a converged, physical solution; 1 when it did not converge or carries a warning."""
    return 0 if report["converged"] and not report.get("warnings") else 1


def describe(report: dict[str, Any]) -> str:
    """A few lines summarising a solution report: size, period, convergence, then each warning."""
    n_t = len(report["times_s"])
    state = "converged" if report["converged"] else "DID NOT CONVERGE"
    if report.get("warnings"):
        state += ", NOT PHYSICAL"
    period = "steady state" if n_t == 1 else f"{n_t} reporting times"
    head = f"{report['network']}: {len(report['nodes'])} nodes, {len(report['links'])} links, {period}, {state}"
    return "\n".join([head, *(f"warning: {w}" for w in report.get("warnings", []))])
