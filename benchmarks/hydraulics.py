"""Benchmark: the batched solver against EPANET 2.2's toolkit on the same random scenarios.

``python -m benchmarks.hydraulics`` (or ``make bench-hydraulics``) draws random
steady-state scenarios (pump speeds and statuses, demands, leak emitters, tank
levels) on Net3 and on the reference pipeline, solves them with (a) the
batched solver and (b) EPANET's toolkit called directly (file opened once,
values changed in memory, see `benchmarks.epanet_reference`), both to the same
accuracy, and prints scenarios/s for each, the ratio and the largest deviation.
The figures are written to ``<PUMPTWIN_HOME>/bench/hydraulics.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numba
import numpy as np

from benchmarks.epanet_reference import EpanetResult, ScenarioSet, random_scenarios, solve_scenarios
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
TARGET_SPEEDUP = 10.0


def wntr_network(name: str) -> Path:
    """Path of one of the EPANET example networks shipped inside wntr."""
    import wntr

    return Path(wntr.__file__).parent / "library" / "networks" / name


def to_batch(model: HydraulicModel, scenarios: ScenarioSet) -> ScenarioBatch:
    """The batch that poses the same problems as ``scenarios`` does to EPANET (values in SI, by id)."""
    n = scenarios.n
    batch = initial_batch(model, n)
    nj = model.n_junctions
    for jid, values in scenarios.junction_demand_m3s.items():
        batch.demand_m3s[:, model.node_index[jid]] = values
    for jid, values in scenarios.emitter_coeff.items():
        batch.emitter_coeff[:, model.node_index[jid]] = values
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
        "stagnant_nodes_excluded": int((~live).sum()),
    }


def run_network(label: str, path: Path, n: int, seed: int, accuracy: float) -> dict[str, Any]:
    """Benchmark one network: both solvers on the same n scenarios.

    EPANET is timed as it runs fastest (each scenario starts from the previous
    one's flows). Deviations are measured against EPANET started from its own
    initial flows in every scenario, the same start as ours, so that a pump
    balanced exactly at its shut-off head resolves the same way in both.
    """
    model = compile_network(load_network(path))
    scenarios = random_scenarios(path, n, seed)
    trials = model.network.options.trials
    solve_batch(model, to_batch(model, ScenarioSet(n=1)), accuracy=accuracy)  # compile / load the kernel
    timed = solve_scenarios(path, scenarios, accuracy=accuracy, trials=trials)
    ref = solve_scenarios(path, scenarios, accuracy=accuracy, trials=trials, init_flows=True)
    rates = {}
    max_threads = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]
    for threads in sorted({1, max_threads}):
        numba.set_num_threads(threads)
        t0 = time.perf_counter()
        ours = solve_batch(model, to_batch(model, scenarios), accuracy=accuracy)
        rates[threads] = n / (time.perf_counter() - t0)
    node_cols = [ref.node_ids.index(i) for i in model.node_ids]
    link_cols = [ref.link_ids.index(i) for i in model.link_ids]
    dev = deviations(model, ours, ref.head_m[:, node_cols], ref.flow_m3s[:, link_cols])
    epanet_path = deviations(
        model, _as_result(timed, node_cols, link_cols), ref.head_m[:, node_cols], ref.flow_m3s[:, link_cols]
    )
    threads = max(rates)
    return {
        "network": label,
        "scenarios": n,
        "accuracy": accuracy,
        "junctions": model.n_junctions,
        "links": model.n_links,
        "pumps": len(model.pump_link),
        "epanet_scen_per_s": n / timed.elapsed_s,
        "pumptwin_scen_per_s": rates[threads],
        "threads": threads,
        "pumptwin_1thread_scen_per_s": rates[1],
        "speedup": rates[threads] * timed.elapsed_s / n,
        "speedup_1thread": rates[1] * timed.elapsed_s / n,
        "pumptwin_converged": int(ours.converged.sum()),
        "epanet_converged": int((ref.code == 0).sum()) if ref.code.size else n,
        "pumptwin_mean_iterations": float(ours.iterations.mean()),
        **dev,
        "epanet_warm_vs_cold_max_head_dev_m": epanet_path["max_head_dev_m"],
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


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table and write the JSON; exit 1 if a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=4000, help="random scenarios per network")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--accuracy", type=float, default=1e-6, help="convergence limit for both solvers")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many timed runs")
    args = parser.parse_args(argv)
    from pumptwin.flows.settings import get_settings

    settings = get_settings()
    networks = [("Net3", wntr_network("Net3.inp")), ("reference pipeline", reference_pipeline_path())]
    rows = []
    for label, path in networks:
        runs = [run_network(label, path, args.scenarios, args.seed, args.accuracy) for _ in range(args.repeats)]
        best = max(runs, key=lambda r: r["pumptwin_scen_per_s"])
        best["epanet_scen_per_s"] = max(r["epanet_scen_per_s"] for r in runs)
        best["speedup"] = best["pumptwin_scen_per_s"] / best["epanet_scen_per_s"]
        best["pumptwin_1thread_scen_per_s"] = max(r["pumptwin_1thread_scen_per_s"] for r in runs)
        best["speedup_1thread"] = best["pumptwin_1thread_scen_per_s"] / best["epanet_scen_per_s"]
        rows.append(best)
        print(
            f"{label:20s} EPANET {best['epanet_scen_per_s']:7.0f}/s | pumptwin {best['threads']} threads"
            f" {best['pumptwin_scen_per_s']:7.0f}/s x{best['speedup']:.1f}, 1 thread"
            f" {best['pumptwin_1thread_scen_per_s']:7.0f}/s x{best['speedup_1thread']:.1f}"
            f" | max dH {best['max_head_dev_m']:.2e} m"
            f"  max dQ {best['max_flow_dev_m3s']:.2e} m3/s ({best['max_flow_dev_rel']:.1e} rel)"
            f"  outside tol: {best['heads_outside_tolerance']} heads, {best['flows_outside_tolerance']} flows"
        )
    report = {
        "benchmark": "hydraulics",
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.processor(),
            "python": platform.python_version(),
        },
        "target_speedup": TARGET_SPEEDUP,
        "results": rows,
    }
    out = settings.bench_dir / "hydraulics.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(f"wrote {out}")
    ok = all(
        r["speedup"] >= TARGET_SPEEDUP and r["heads_outside_tolerance"] == 0 and r["flows_outside_tolerance"] == 0
        for r in rows
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
