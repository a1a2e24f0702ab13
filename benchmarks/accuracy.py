"""Accuracy against EPANET 2.2: steady states and 24 h extended periods, node by node.

``python -m benchmarks.accuracy`` (``make bench-accuracy``) solves Net1, Net3 and ky10 (shipped
with wntr) and the reference pipeline with our solver (accuracy 1e-6) and with EPANET 2.2 through
wntr's ``EpanetSimulator`` (accuracy 1e-8, 500 trials), compares every node head, link flow and
tank level at every reporting time, prints a markdown table and writes
``<PUMPTWIN_HOME>/bench/accuracy.json``. Heads of stagnant nodes (every incident link below
1e-6 m3/s in EPANET's solution) are excluded and counted.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.hydraulics import FLOW_TOL_M3S, FLOW_TOL_REL, HEAD_TOL_M, STAGNANT_M3S, wntr_network
from pumptwin.twin.hydraulic.eps import simulate
from pumptwin.twin.hydraulic.io import load_network, reference_pipeline_path
from pumptwin.twin.hydraulic.solver import compile_network

DAY_S = 86_400
TANK_LEVEL_TOL_M = 0.05


def compare(label: str, path: Path, duration_s: int) -> dict[str, Any]:
    """Deviations between our solution and EPANET's for one network and duration."""
    import wntr

    model = compile_network(load_network(path))
    ours = simulate(model, duration_s=duration_s, accuracy=1e-6)
    wn = wntr.network.WaterNetworkModel(str(path))
    wn.options.time.duration = duration_s
    wn.options.hydraulic.accuracy = 1e-8
    wn.options.hydraulic.trials = 500
    with tempfile.TemporaryDirectory() as tmp:
        res = wntr.sim.EpanetSimulator(wn).run_sim(file_prefix=str(Path(tmp) / "run"))
    times = list(ours.times_s)
    ref_h = res.node["head"][list(model.node_ids)].loc[times].to_numpy()
    ref_q = res.link["flowrate"][list(model.link_ids)].loc[times].to_numpy()
    h, q = ours.head_m[:, 0], ours.flow_m3s[:, 0]
    incident = np.zeros_like(ref_h)
    np.maximum.at(incident.T, model.link_n1, np.abs(ref_q).T)
    np.maximum.at(incident.T, model.link_n2, np.abs(ref_q).T)
    live = incident >= STAGNANT_M3S
    dq = np.abs(q - ref_q)
    tanks = [model.node_index[t.id] for t in model.network.tanks]
    return {
        "network": label,
        "nodes": model.n_nodes,
        "links": model.n_links,
        "times": len(times),
        "max_head_dev_m": float(np.abs(h - ref_h)[live].max()),
        "max_flow_dev_m3s": float(dq.max()),
        "flows_within_tolerance": bool(((dq <= FLOW_TOL_M3S) | (dq <= FLOW_TOL_REL * np.abs(ref_q))).all()),
        "max_tank_level_dev_m": float(np.abs(h[:, tanks] - ref_h[:, tanks]).max()) if tanks else None,
        "stagnant_node_times": int((~live).sum()),
    }


def main() -> int:
    """Print the table, write the JSON; exit 1 if a tolerance is missed."""
    from pumptwin.flows.settings import get_settings

    settings = get_settings()
    cases = [
        ("Net1", wntr_network("Net1.inp"), 0),
        ("Net3", wntr_network("Net3.inp"), 0),
        ("ky10", wntr_network("ky10.inp"), 0),
        ("reference pipeline", reference_pipeline_path(), 0),
        ("Net1, 24 h", wntr_network("Net1.inp"), DAY_S),
        ("Net3, 24 h", wntr_network("Net3.inp"), DAY_S),
    ]
    rows = [compare(*case) for case in cases]
    print(
        "| network | nodes / links | times | max head dev. (m) | max flow dev. (m3/s) | flows in tolerance |"
        " max tank level dev. (m) | stagnant node-times |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        tank = "-" if r["max_tank_level_dev_m"] is None else f"{r['max_tank_level_dev_m']:.1e}"
        print(
            f"| {r['network']} | {r['nodes']} / {r['links']} | {r['times']} | {r['max_head_dev_m']:.1e} |"
            f" {r['max_flow_dev_m3s']:.1e} | {'all' if r['flows_within_tolerance'] else 'NOT all'} | {tank} |"
            f" {r['stagnant_node_times']} |"
        )
    out = settings.bench_dir / "accuracy.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "accuracy", "results": rows}, indent=1))
    print(f"wrote {out}")
    ok = all(
        r["max_head_dev_m"] <= HEAD_TOL_M
        and r["flows_within_tolerance"]
        and (r["max_tank_level_dev_m"] is None or r["max_tank_level_dev_m"] <= TANK_LEVEL_TOL_M)
        for r in rows
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
