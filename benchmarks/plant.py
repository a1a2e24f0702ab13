"""Benchmark: the plant simulator producing a month of 1-minute data for 20 stations x 3 pumps.

``python -m benchmarks.plant`` runs the shipped ``fleet_month`` scenario (10 copies of the
reference pipeline: stations PS01..PS20, 60 pumps with 15 tags each, 20 station ambient tags and
100 line meters; every degradation mode somewhere in the fleet; default sensor realism) for 30
days at 60 s steps, builds the readings table (``tag, ts, value, quality``) and prints rows,
seconds and rows/s. The figures are written to ``<PUMPTWIN_HOME>/bench/plant.json``. The target
is under 60 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import time
from pathlib import Path
from typing import Any

from pumptwin.plant.scenario import shipped_scenario
from pumptwin.plant.simulator import Plant

TARGET_S = 60.0


def run(lines: int, days: float, step_s: float, seed: int) -> dict[str, Any]:
    """Simulate the fleet and build its readings table; return the figures."""
    scenario = shipped_scenario("fleet_month")
    scenario = dataclasses.replace(
        scenario,
        lines=lines,
        duration_s=days * 86_400.0,
        step_s=step_s,
        seed=seed,
        faults=tuple(f for f in scenario.faults if _line_of(f.target) <= lines),
    )
    t0 = time.perf_counter()
    plant = Plant(scenario)
    t1 = time.perf_counter()
    plant.advance(scenario.n_steps * step_s)
    t2 = time.perf_counter()
    readings = plant.read_tags()
    t3 = time.perf_counter()
    rows = len(readings)
    seconds = t3 - t0
    return {
        "scenario": scenario.name,
        "lines": lines,
        "stations": len(plant.registry.stations),
        "pumps": len(plant.registry.pumps),
        "tags": len(plant.registry.tags),
        "days": days,
        "step_s": step_s,
        "steps": scenario.n_steps,
        "rows": rows,
        "seconds": seconds,
        "rows_per_s": rows / seconds,
        "build_s": t1 - t0,
        "simulate_s": t2 - t1,
        "frame_s": t3 - t2,
        "hydraulic_states_solved": plant.hydraulics.solved,
        "hydraulic_states_not_converged": plant.hydraulics.not_converged,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "target_s": TARGET_S,
    }


def _line_of(target: str) -> int:
    """Line number of a fault target (``PSnn`` stations come two to a reference line)."""
    head = target.split(".", 1)[0]
    if head.startswith("LINE"):
        return int(head[4:])
    return (int(head[2:]) + 1) // 2


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the figures and write the JSON; exit 1 if the target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=10, help="copies of the reference pipeline (2 stations each)")
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--step", type=float, default=60.0, help="time step in s")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    from pumptwin.flows.settings import get_settings

    result = run(args.lines, args.days, args.step, args.seed)
    print(
        f"plant: {result['stations']} stations x {result['pumps'] // result['stations']} pumps,"
        f" {result['tags']} tags, {result['days']:g} days at {result['step_s']:g} s:"
        f" {result['rows']:,} rows in {result['seconds']:.1f} s = {result['rows_per_s']:,.0f} rows/s"
        f" (simulate {result['simulate_s']:.1f} s, table {result['frame_s']:.1f} s,"
        f" peak RSS {result['peak_rss_mb']:,.0f} MB)"
    )
    report = {
        "benchmark": "plant",
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.processor(),
            "python": platform.python_version(),
        },
        "result": result,
    }
    out_dir = Path(get_settings().bench_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / "plant.json"
    out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"wrote {out}")
    return 0 if result["seconds"] < TARGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
