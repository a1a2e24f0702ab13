"""Benchmark: the batched solver against EPANET 2.2's toolkit on the same random scenarios, core for core.

``python -m benchmarks.hydraulics`` (or ``make bench-hydraulics``) draws random
steady-state scenarios (pump speeds and statuses, demands, leak emitters, tank
levels) on Net3, on the reference pipeline and on Net6 (3,323 junctions, read from
wntr's copy; ``--scenarios-large`` of them, by default a tenth as many) and solves them, to the same
accuracy, with (a) the batched solver and (b) EPANET's toolkit called directly
(file opened once, values changed in memory, see `benchmarks.epanet_reference`).
Like is compared with like:

* per core: the batched solver on one thread against one EPANET process;
* on N cores (``--cores``, default every core): N threads against N EPANET
  processes, each solving a disjoint contiguous part of the scenarios, their
  loops started together; the time is from the first loop's start to the last
  one's end;
* EPANET's time is reported twice: the Python-driven loop (ctypes set calls,
  EN_initH + EN_runH, reading the results) and the time inside EN_initH and
  EN_runH alone (solver only);
* N threads against one EPANET process, the figure this benchmark used to
  lead with, is kept as a labelled extra.

EPANET is timed cold-started (``--epanet-start cold``, the default):
``EN_initH(10)`` restarts every scenario from EPANET's initial flows, as the
batched solver does. ``--epanet-start warm`` times ``EN_initH(0)`` instead, each
scenario starting from the previous one's solution; the start not timed is run
once per repeat as an extra and its deviation reported. Every timed result is
checked: EPANET's against a cold-started EPANET solve of the same scenario,
ours against that same EPANET solve, on every scenario. A run whose timed
results differ by more than 0.01 m of head or 0.1 % / 0.001 L/s of flow
reports it and exits 1. The batched solver is cold-started too (EPANET's initial
flows for every scenario; no warm start). The figures are written to
``<PUMPTWIN_HOME>/bench/hydraulics.json``. The target, 20x EPANET's toolkit loop per
core and 30x on every core, is reported, not enforced: a miss prints "target missed"
on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numba
import numpy as np

from benchmarks.epanet_reference import (
    EpanetResult,
    ScenarioSet,
    random_scenarios,
    solve_scenarios,
    solve_scenarios_parallel,
)
from pumptwin.twin.hydraulic.eps import initial_batch
from pumptwin.twin.hydraulic.io import load_network, reference_pipeline_path
from pumptwin.twin.hydraulic.solver import (
    CLOSED,
    OPEN,
    BatchResult,
    HydraulicModel,
    ScenarioBatch,
    compile_network,
    solve_batch,
)

STAGNANT_M3S = 1e-6
"""Nodes whose every link carries less than this (m3/s) in EPANET's solution have no defined head."""
HEAD_TOL_M = 0.01
FLOW_TOL_M3S = 1e-6
FLOW_TOL_REL = 1e-3
TARGET_SPEEDUP = 20.0
"""The project's goal: scenarios/s against EPANET's toolkit loop, per core (reported, not enforced)."""
TARGET_SPEEDUP_ALL_CORES = 30.0
"""The goal on every core: N threads against N EPANET processes (reported, not enforced)."""
PUMPTWIN_START = "cold: every scenario from EPANET's initial flows (no warm start)"
"""How each scenario of the batched solver starts."""
FIRST_EPANET_ERROR = 100
"""EN_runH codes from this one up are errors; 1 means the solve did not converge, 2-6 are other warnings."""
START_CALL = {
    "cold": "EN_initH(10) before every scenario, which restarts from EPANET's initial flows",
    "warm": "EN_initH(0) before every scenario, which starts from the previous scenario's solution",
}
"""How a timed EPANET scenario starts (``--epanet-start``)."""


def wntr_network(name: str) -> Path:
    """Path of one of the EPANET example networks shipped inside wntr."""
    import wntr

    return Path(wntr.__file__).parent / "library" / "networks" / name


def to_batch(model: HydraulicModel, scenarios: ScenarioSet) -> ScenarioBatch:
    """The batch that poses the same problems as ``scenarios`` does to EPANET (values in SI, by id)."""
    n = scenarios.n
    batch = initial_batch(model, 1).take(np.zeros(n, np.int64))  # time 0 is the same for every row
    nj = model.n_junctions
    if scenarios.junction_demand_m3s:
        cols = [model.node_index[jid] for jid in scenarios.junction_demand_m3s]
        batch.demand_m3s[:, cols] = np.column_stack(list(scenarios.junction_demand_m3s.values()))
    if scenarios.emitter_coeff:
        cols = [model.node_index[jid] for jid in scenarios.emitter_coeff]
        batch.emitter_coeff[:, cols] = np.column_stack(list(scenarios.emitter_coeff.values()))
    for rid, values in scenarios.reservoir_head_m.items():
        batch.fixed_head_m[:, model.node_index[rid] - nj] = values
    for tid, values in scenarios.tank_level_m.items():
        i = model.node_index[tid]
        batch.fixed_head_m[:, i - nj] = model.elevation_m[i] + values
    pump_of = {pid: i for i, pid in enumerate(model.pump_ids)}
    for pid, values in scenarios.pump_speed.items():
        batch.pump_speed[:, pump_of[pid]] = values
        batch.link_status[:, model.link_index[pid]] = np.where(values > 0, OPEN, CLOSED)  # EPANET: speed opens
    for lid, is_open in scenarios.link_open.items():
        batch.link_status[:, model.link_index[lid]] = np.where(is_open, OPEN, CLOSED)
    valve_of = {vid: i for i, vid in enumerate(model.valve_ids)}
    for vid, values in scenarios.valve_setting.items():
        batch.valve_setting[:, valve_of[vid]] = values
    return batch


def deviations(
    model: HydraulicModel, ours: BatchResult, ref_head: np.ndarray, ref_flow: np.ndarray
) -> dict[str, float]:
    """Largest head (m) and flow deviations between two solutions of the same scenarios.

    Heads of stagnant nodes (every incident link below 1e-6 m3/s in the reference)
    are excluded and counted; closed links, which EPANET reports with zero flow,
    are compared by our flow.
    """
    incident = np.zeros((ref_flow.shape[0], model.n_nodes))
    np.maximum.at(incident.T, model.link_n1, np.abs(ref_flow).T)
    np.maximum.at(incident.T, model.link_n2, np.abs(ref_flow).T)
    live = incident >= STAGNANT_M3S
    dh = np.where(live, np.abs(ours.head_m - ref_head), 0.0)
    dq = np.abs(ours.flow_m3s - ref_flow)
    rel = dq / np.maximum(np.abs(ref_flow), STAGNANT_M3S * 1e3)
    flow_ok = (dq <= FLOW_TOL_M3S) | (dq <= FLOW_TOL_REL * np.abs(ref_flow))
    return {
        "max_head_dev_m": float(dh.max()),
        "max_flow_dev_m3s": float(dq.max()),
        "max_flow_dev_rel": float(rel.max()),
        "flows_outside_tolerance": int((~flow_ok).sum()),
        "heads_outside_tolerance": int((dh > HEAD_TOL_M).sum()),
        "scenarios_outside_tolerance": int(((dh > HEAD_TOL_M).any(axis=1) | (~flow_ok).any(axis=1)).sum()),
        "stagnant_nodes_excluded": int((~live).sum()),
    }


def epanet_figures(res: EpanetResult) -> dict[str, float]:
    """Speed of one timed EPANET run: the Python-driven loop and the solver inside it.

    Args:
        res: A timed run (its ``elapsed_s``, ``solver_s`` and ``set_s``, in s).

    Returns:
        ``scen_per_s`` over the whole loop (set calls, EN_initH + EN_runH, reading the results),
        ``solver_only_scen_per_s`` over the time inside EN_initH and EN_runH alone, and the
        fractions of the loop's time spent in the set calls (``set_calls_share``), in the solver
        (``solver_share``) and in the rest: reading the results and the loop itself (``read_share``).
    """
    n = res.head_m.shape[0]
    set_share, solver_share = res.set_s / res.elapsed_s, res.solver_s / res.elapsed_s
    return {
        "scen_per_s": n / res.elapsed_s,
        "solver_only_scen_per_s": n / res.solver_s,
        "set_calls_share": set_share,
        "solver_share": solver_share,
        "read_share": 1.0 - set_share - solver_share,
    }


def best_of(runs: list[dict[str, float]]) -> dict[str, float]:
    """Best of repeated timings: the fastest loop with its time shares, and the fastest solver-only time."""
    if not runs:
        raise ValueError("no runs")
    fastest = max(runs, key=lambda r: r["scen_per_s"])
    return {**fastest, "solver_only_scen_per_s": max(r["solver_only_scen_per_s"] for r in runs)}


def worst(checks: list[dict[str, float]]) -> dict[str, float]:
    """The worst of several checks of the same scenarios: the largest value of each figure."""
    if not checks:
        raise ValueError("no checks")
    return {k: max(c[k] for c in checks) for k in checks[0]}


def within_tolerance(check: dict[str, float]) -> bool:
    """True when a check found no head and no flow outside tolerance."""
    return check["heads_outside_tolerance"] == 0 and check["flows_outside_tolerance"] == 0


def ratios(rates: dict[str, float]) -> dict[str, float]:
    """Speed ratios, pumptwin over EPANET, from a row's rates (scenarios/s).

    ``ratio_per_core``: one thread against one EPANET process (its Python-driven loop);
    ``ratio_per_core_vs_solver_only``: the same against EPANET's solver-only time;
    ``ratio_parallel`` and ``ratio_parallel_vs_solver_only``: N threads against N EPANET
    processes (when both ran); ``ratio_threads_vs_1proc``: N threads against one process, not
    like for like, kept only as an extra.
    """
    out = {
        "ratio_per_core": rates["pumptwin_1thread_scen_per_s"] / rates["epanet_1proc_scen_per_s"],
        "ratio_per_core_vs_solver_only": (
            rates["pumptwin_1thread_scen_per_s"] / rates["epanet_1proc_solver_only_scen_per_s"]
        ),
    }
    if "pumptwin_parallel_scen_per_s" in rates:
        out["ratio_threads_vs_1proc"] = rates["pumptwin_parallel_scen_per_s"] / rates["epanet_1proc_scen_per_s"]
    if "epanet_parallel_scen_per_s" in rates and "pumptwin_parallel_scen_per_s" in rates:
        out["ratio_parallel"] = rates["pumptwin_parallel_scen_per_s"] / rates["epanet_parallel_scen_per_s"]
        out["ratio_parallel_vs_solver_only"] = (
            rates["pumptwin_parallel_scen_per_s"] / rates["epanet_parallel_solver_only_scen_per_s"]
        )
    return out


def run_network(  # noqa: PLR0913
    label: str,
    path: Path,
    n: int,
    seed: int,
    accuracy: float,
    *,
    repeats: int = 1,
    cores: int = 1,
    epanet_start: str = "cold",
) -> dict[str, Any]:
    """Benchmark one network: both solvers on the same n scenarios, best of ``repeats`` timings.

    Per repeat: EPANET in one process started as ``epanet_start`` says, then started the other
    way (an extra), then in ``cores`` processes; the batched solver on one thread, then on
    ``cores`` threads. Every timed result is checked against a cold-started EPANET solve of every
    scenario; the checks are the worst over the repeats.
    """
    if epanet_start not in START_CALL:
        raise ValueError(f"epanet_start must be one of {sorted(START_CALL)}")
    model = compile_network(load_network(path))
    scenarios = random_scenarios(path, n, seed)
    trials = model.network.options.trials
    solve_batch(model, to_batch(model, ScenarioSet(n=1)), accuracy=accuracy)  # compile / load the kernel
    ref = solve_scenarios(path, scenarios, accuracy=accuracy, trials=trials, init_flows=True)
    node_cols = [ref.node_ids.index(i) for i in model.node_ids]
    link_cols = [ref.link_ids.index(i) for i in model.link_ids]
    ref_head, ref_flow = ref.head_m[:, node_cols], ref.flow_m3s[:, link_cols]

    def check(res: BatchResult) -> dict[str, float]:
        return deviations(model, res, ref_head, ref_flow)

    cold = epanet_start == "cold"
    epanet_1: list[dict[str, float]] = []
    epanet_n: list[dict[str, float]] = []
    other_rate: list[float] = []
    ours_rate: dict[int, list[float]] = {1: [], cores: []}
    checks_epanet: list[dict[str, float]] = []
    checks_ours: list[dict[str, float]] = []
    checks_warm: list[dict[str, float]] = []
    max_threads = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]
    for _ in range(repeats):
        res = solve_scenarios(path, scenarios, accuracy=accuracy, trials=trials, init_flows=cold)
        epanet_1.append(epanet_figures(res))
        checks_epanet.append(check(_as_result(res, node_cols, link_cols)))
        extra = solve_scenarios(path, scenarios, accuracy=accuracy, trials=trials, init_flows=not cold)
        other_rate.append(n / extra.elapsed_s)
        checks_warm.append(check(_as_result(extra if cold else res, node_cols, link_cols)))
        if cores > 1:
            res = solve_scenarios_parallel(path, scenarios, cores, accuracy=accuracy, trials=trials, init_flows=cold)
            epanet_n.append(epanet_figures(res))
            checks_epanet.append(check(_as_result(res, node_cols, link_cols)))
        for threads, timings in ours_rate.items():
            numba.set_num_threads(threads)
            t0 = time.perf_counter()
            ours = solve_batch(model, to_batch(model, scenarios), accuracy=accuracy)
            timings.append(n / (time.perf_counter() - t0))
            checks_ours.append(check(ours))
    numba.set_num_threads(max_threads)

    one = best_of(epanet_1)
    rates = {
        "epanet_1proc_scen_per_s": one["scen_per_s"],
        "epanet_1proc_solver_only_scen_per_s": one["solver_only_scen_per_s"],
        "pumptwin_1thread_scen_per_s": max(ours_rate[1]),
    }
    if cores > 1:
        par = best_of(epanet_n)
        rates |= {
            "epanet_parallel_scen_per_s": par["scen_per_s"],
            "epanet_parallel_solver_only_scen_per_s": par["solver_only_scen_per_s"],
            "pumptwin_parallel_scen_per_s": max(ours_rate[cores]),
        }
    check_ours, check_epanet, check_warm = worst(checks_ours), worst(checks_epanet), worst(checks_warm)
    codes, counts = np.unique(ref.code, return_counts=True)
    return {
        "network": label,
        "scenarios": n,
        "accuracy": accuracy,
        "junctions": model.n_junctions,
        "links": model.n_links,
        "pumps": len(model.pump_link),
        "repeats": repeats,
        "cores": cores,
        "epanet_start": epanet_start,
        "epanet_start_call": START_CALL[epanet_start],
        **rates,
        "epanet_1proc_set_calls_share": one["set_calls_share"],
        "epanet_1proc_solver_share": one["solver_share"],
        "epanet_1proc_read_share": one["read_share"],
        f"epanet_{'warm' if cold else 'cold'}_1proc_scen_per_s": max(other_rate),
        **ratios(rates),
        "pumptwin_start": PUMPTWIN_START,
        "target_met_per_core": ratios(rates)["ratio_per_core"] >= TARGET_SPEEDUP,
        "target_met_all_cores": ratios(rates).get("ratio_parallel", 0.0) >= TARGET_SPEEDUP_ALL_CORES,
        "pumptwin_converged": int(ours.converged.sum()),
        "pumptwin_mean_iterations": float(ours.iterations.mean()),
        "epanet_converged": int(((ref.code != 1) & (ref.code < FIRST_EPANET_ERROR)).sum()),
        "epanet_mean_iterations": float(ref.iterations[ref.iterations >= 0].mean()) if n else 0.0,
        "epanet_codes": {str(c): int(k) for c, k in zip(codes, counts, strict=True)},
        "check_pumptwin_vs_epanet_cold": check_ours,
        "check_epanet_timed_vs_cold": check_epanet,
        "check_epanet_warm_vs_cold": check_warm,
        "timed_results_within_tolerance": within_tolerance(check_ours) and within_tolerance(check_epanet),
        **check_ours,
        "epanet_warm_vs_cold_max_head_dev_m": check_warm["max_head_dev_m"],
    }


def _as_result(res: EpanetResult, node_cols: list[int], link_cols: list[int]) -> BatchResult:
    """An EPANET result in our node and link order, shaped as a `BatchResult` for `deviations`."""
    n = res.head_m.shape[0]
    return BatchResult(
        head_m=res.head_m[:, node_cols],
        flow_m3s=res.flow_m3s[:, link_cols],
        status=np.zeros((n, len(link_cols)), np.int64),
        emitter_flow_m3s=np.zeros((n, 0)),
        fixed_inflow_m3s=np.zeros((n, 0)),
        iterations=np.zeros(n, np.int64),
        relative_error=np.zeros(n),
        flag=np.zeros(n, np.int64),
    )


def _rate(value: float) -> str:
    return f"{value:9,.0f}/s"


def _check_line(what: str, check: dict[str, float]) -> str:
    return (
        f"  {what}: max dH {check['max_head_dev_m']:.1e} m, max dQ {check['max_flow_dev_m3s']:.1e} m3/s"
        f" ({check['max_flow_dev_rel']:.1e} rel); outside tolerance: {check['heads_outside_tolerance']} heads,"
        f" {check['flows_outside_tolerance']} flows in {check['scenarios_outside_tolerance']} scenarios"
    )


def format_row(row: dict[str, Any]) -> str:
    """The printed table of one network's row."""
    cold = row["epanet_start"] == "cold"
    other = "warm" if cold else "cold"
    k = row["cores"]
    lines = [
        f"{row['network']} ({row['scenarios']} scenarios, accuracy {row['accuracy']:g}, best of {row['repeats']};"
        f" EPANET timed {row['epanet_start']}-started: {row['epanet_start_call']};"
        f" pumptwin {row['pumptwin_start']})",
        f"  per core      pumptwin 1 thread  {_rate(row['pumptwin_1thread_scen_per_s'])}"
        f" | EPANET 1 process   {_rate(row['epanet_1proc_scen_per_s'])} loop,"
        f" {_rate(row['epanet_1proc_solver_only_scen_per_s'])} solver only"
        f" (loop time: set calls {100 * row['epanet_1proc_set_calls_share']:.0f} %,"
        f" solver {100 * row['epanet_1proc_solver_share']:.0f} %,"
        f" reading results {100 * row['epanet_1proc_read_share']:.0f} %)"
        f" | x{row['ratio_per_core']:.1f} loop, x{row['ratio_per_core_vs_solver_only']:.1f} solver only",
    ]
    if "ratio_parallel" in row:
        lines.append(
            f"  {k} cores       pumptwin {k} threads {_rate(row['pumptwin_parallel_scen_per_s'])}"
            f" | EPANET {k} processes {_rate(row['epanet_parallel_scen_per_s'])} loop,"
            f" {_rate(row['epanet_parallel_solver_only_scen_per_s'])} solver only"
            f" | x{row['ratio_parallel']:.1f} loop, x{row['ratio_parallel_vs_solver_only']:.1f} solver only"
        )
    if "ratio_threads_vs_1proc" in row:
        lines.append(
            f"  extra, not like for like: pumptwin {k} threads against 1 EPANET process"
            f" x{row['ratio_threads_vs_1proc']:.1f}"
        )
    lines += [
        f"  extra, not timed above: EPANET {other}-started, 1 process {_rate(row[f'epanet_{other}_1proc_scen_per_s'])}",
        _check_line("EPANET warm-started against cold-started", row["check_epanet_warm_vs_cold"]),
        _check_line("checked: timed EPANET against cold-started EPANET", row["check_epanet_timed_vs_cold"]),
        _check_line("checked: timed pumptwin against cold-started EPANET", row["check_pumptwin_vs_epanet_cold"]),
        f"  converged: pumptwin {row['pumptwin_converged']}, EPANET {row['epanet_converged']} of {row['scenarios']}"
        f" (EPANET codes {row['epanet_codes']})",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the tables and write the JSON; exit 1 if a timed result is outside tolerance."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=4000, help="random scenarios per network")
    parser.add_argument(
        "--scenarios-large",
        type=int,
        default=None,
        help="random scenarios on Net6 (3,323 junctions; default: a tenth of --scenarios); 0 skips it",
    )
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--accuracy", type=float, default=1e-6, help="convergence limit for both solvers")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many timed runs")
    max_threads = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]
    parser.add_argument(
        "--cores",
        type=int,
        default=min(os.cpu_count() or 1, max_threads),
        help="threads and EPANET processes for the all-core comparison (default: every core)",
    )
    parser.add_argument(
        "--epanet-start",
        choices=sorted(START_CALL),
        default="cold",
        help="how each timed EPANET scenario starts: cold EN_initH(10) (default) or warm EN_initH(0)",
    )
    args = parser.parse_args(argv)
    if args.scenarios_large is None:
        args.scenarios_large = args.scenarios // 10
    if args.scenarios < 1 or args.scenarios_large < 0 or args.repeats < 1 or not 1 <= args.cores <= max_threads:
        parser.error(f"need --scenarios >= 1, --scenarios-large >= 0, --repeats >= 1 and 1 <= --cores <= {max_threads}")
    from pumptwin.flows.settings import get_settings

    settings = get_settings()
    networks = [
        ("Net3", wntr_network("Net3.inp"), args.scenarios),
        ("reference pipeline", reference_pipeline_path(), args.scenarios),
        ("Net6", wntr_network("Net6.inp"), args.scenarios_large),
    ]
    rows = []
    for label, path, n in networks:
        if n < 1:
            continue
        row = run_network(
            label,
            path,
            n,
            args.seed,
            args.accuracy,
            repeats=args.repeats,
            cores=args.cores,
            epanet_start=args.epanet_start,
        )
        rows.append(row)
        print(format_row(row))
    report = {
        "benchmark": "hydraulics",
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.processor(),
            "python": platform.python_version(),
        },
        "epanet_start": args.epanet_start,
        "tolerance": {"head_m": HEAD_TOL_M, "flow_m3s": FLOW_TOL_M3S, "flow_rel": FLOW_TOL_REL},
        "target_speedup": TARGET_SPEEDUP,
        "target_speedup_all_cores": TARGET_SPEEDUP_ALL_CORES,
        "pumptwin_start": PUMPTWIN_START,
        "results": rows,
    }
    out = settings.bench_dir / "hydraulics.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(f"wrote {out}")
    for r in rows:
        met = "met" if r["target_met_per_core"] else "missed"
        line = f"target x{TARGET_SPEEDUP:.0f} per core on {r['network']}: x{r['ratio_per_core']:.1f}, {met}"
        if "ratio_parallel" in r:
            met_all = "met" if r["target_met_all_cores"] else "missed"
            line += f"; x{TARGET_SPEEDUP_ALL_CORES:.0f} on {r['cores']} cores: x{r['ratio_parallel']:.1f}, {met_all}"
        print(line)
    missed = [
        r["network"]
        for r in rows
        if not r["target_met_per_core"] or ("ratio_parallel" in r and not r["target_met_all_cores"])
    ]
    if missed:
        print(
            f"target missed (x{TARGET_SPEEDUP:.0f} per core, x{TARGET_SPEEDUP_ALL_CORES:.0f} on every core, against"
            f" EPANET's toolkit loop) on {', '.join(missed)}",
            file=sys.stderr,
        )
    bad = [r["network"] for r in rows if not r["timed_results_within_tolerance"]]
    if bad:
        print(f"FAILED: timed results outside tolerance on {', '.join(bad)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
