"""Benchmark: surge analysis by the method of characteristics, speed against real time and surge figures.

``python -m benchmarks.transients`` runs a 50 km crude line (five 10 km pipes of 0.6 m, rising
from 50 m to a 175 m high point at km 30 and falling to 130 m; two pumps on the reference
pipeline's PC1/EF1 curves from a 60 m suction; delivery at 200 m head; MAOP 3.1 MPa for the
first 20 km, 2.5 MPa after) through two events, each for 600 s of simulated time at a 1 km
and a 100 m grid:

* ``pump_trip``: both pumps trip at 5 s (no surge protection); the delivery holds its head;
* ``valve_closure``: the pumps keep running and a delivery valve (K = 20) closes linearly in
  20 s from 5 s.

It prints simulated seconds per wall second (x real time) for each grid and the surge figures
(max and min head, max pressure against 110 % of MAOP, column separation), then runs the
packaged reference pipeline's PS1 trip (PS1 discharge to PS2 suction) and PS2 trip (PS2
discharge to the terminal) once at a 1 km grid and prints their surge tables. The figures
are written to ``<PUMPTWIN_HOME>/bench/transients.json``. The target is at least 100x real
time at a 1 km-or-finer grid; the exit status is 1 when a grid misses it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import time
from pathlib import Path
from typing import Any

from pumptwin.twin.hydraulic.io import load_network
from pumptwin.twin.hydraulic.network import FLUIDS
from pumptwin.twin.hydraulic.pumps import fit_efficiency_curve, fit_head_curve
from pumptwin.twin.surge.transients import (
    PipeElasticity,
    PumpStation,
    Reach,
    Reservoir,
    TransientCase,
    TransientLine,
    TransientResult,
    Valve,
    korteweg_wave_speed_m_s,
    line_from_network,
    simulate,
)

TARGET_X_REAL_TIME = 100.0
PROFILE_M = (50.0, 80.0, 120.0, 175.0, 150.0, 130.0)
"""Elevations at km 0, 10, ..., 50 of the synthetic line, in m."""


def synthetic_cases() -> dict[str, TransientCase]:
    """The 50 km line with its pump trip and valve closure cases."""
    crude = FLUIDS["crude"]
    net = load_network()
    diameter = 0.6
    wave = korteweg_wave_speed_m_s(diameter, diameter / 50.0, crude.density_kg_m3, 1.5e9)
    reaches = tuple(
        Reach(
            10_000.0,
            diameter,
            wave,
            PROFILE_M[i],
            PROFILE_M[i + 1],
            roughness_m=4.5e-5,
            maop_pa=3.1e6 if i < 2 else 2.5e6,  # noqa: PLR2004 - first two pipes are the heavy wall
            name=f"S{i + 1}",
        )
        for i in range(5)
    )
    line = TransientLine(
        reaches,
        density_kg_m3=crude.density_kg_m3,
        vapour_pressure_pa=crude.vapour_pressure_pa,
        kinematic_viscosity_m2_s=crude.kinematic_viscosity_m2_s,
        name="synthetic-50km",
    )
    station = PumpStation(
        suction_head_m=60.0,
        head_curve=fit_head_curve(net.curve("PC1")),
        efficiency_curve=fit_efficiency_curve(net.curve("EF1")),
        n_running=2,
    )
    return {
        "pump_trip": TransientCase(line, dataclasses.replace(station, trip_time_s=5.0), Reservoir(200.0)),
        "valve_closure": TransientCase(
            line, station, Valve(200.0, 20.0, closure_start_s=5.0, closure_time_s=20.0, exponent=1.0)
        ),
    }


def _figures(res: TransientResult) -> dict[str, Any]:
    """Grid and surge figures of a run; NaN (no such event) becomes None so the JSON stays strict."""
    s = {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in res.summary().items()}
    return {
        "steady_flow_m3s": res.steady_flow_m3s,
        "dt_s": res.dt_s,
        "nodes": int(res.x_m.size),
        "max_wave_speed_adjustment": res.max_wave_speed_adjustment,
        **s,
    }


def run_synthetic(duration_s: float, grids_m: list[float], repeat: int) -> list[dict[str, Any]]:
    """Time each event at each grid (best of ``repeat``); return one row per run."""
    rows = []
    for event, case in synthetic_cases().items():
        for grid_m in grids_m:
            best, res = float("inf"), None
            for _ in range(repeat):
                t0 = time.perf_counter()
                res = simulate(case, duration_s, max_reach_m=grid_m)
                best = min(best, time.perf_counter() - t0)
            assert res is not None
            rows.append(
                {
                    "event": event,
                    "grid_m": grid_m,
                    "duration_s": duration_s,
                    "steps": int(res.time_s.size - 1),
                    "wall_s": best,
                    "x_real_time": duration_s / best,
                    **_figures(res),
                }
            )
    return rows


def run_reference(duration_s: float, grid_m: float) -> list[dict[str, Any]]:
    """PS1 and PS2 trips on the packaged reference pipeline; their surge tables."""
    net = load_network()
    out = []
    for start, end, label in (("PS1-D", "PS2-S", "PS1 trip"), ("PS2-D", "TERMINAL", "PS2 trip")):
        case = line_from_network(net, start, end, elasticity=PipeElasticity(), trip_time_s=5.0)
        t0 = time.perf_counter()
        res = simulate(case, duration_s, max_reach_m=grid_m)
        wall = time.perf_counter() - t0
        out.append(
            {
                "case": label,
                "path": f"{start} -> {end}",
                "grid_m": grid_m,
                "duration_s": duration_s,
                "wall_s": wall,
                "x_real_time": duration_s / wall,
                **_figures(res),
                "surge_table": res.surge_table(),
            }
        )
    return out


def _print_synthetic(rows: list[dict[str, Any]]) -> None:
    print(
        f"{'event':<14}{'grid m':>8}{'steps':>8}{'wall s':>9}{'x real':>9}{'max H m':>10}{'min H m':>10}"
        f"{'max p MPa':>11}{'margin MPa':>12}{'>110% MAOP':>12}{'col. sep.':>11}{'first sep s':>12}"
    )
    for r in rows:
        print(
            f"{r['event']:<14}{r['grid_m']:>8.0f}{r['steps']:>8}{r['wall_s']:>9.3f}{r['x_real_time']:>9.0f}"
            f"{r['max_head_m']:>10.1f}{r['min_head_m']:>10.1f}{r['max_pressure_mpa']:>11.3f}"
            f"{r['min_surge_margin_mpa']:>12.3f}{r['surge_violation']!s:>12}{r['column_separation']!s:>11}"
            f"{_fmt(r['first_column_separation_s']):>12}"
        )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _print_reference(ref: dict[str, Any]) -> None:
    print(
        f"\nreference pipeline, {ref['case']} ({ref['path']}), {ref['duration_s']:g} s at {ref['grid_m']:g} m:"
        f" {ref['wall_s']:.3f} s wall ({ref['x_real_time']:.0f}x real time), steady flow"
        f" {ref['steady_flow_m3s']:.4f} m3/s"
    )
    cols = [
        ("pipe", 10),
        ("from_km", 8),
        ("to_km", 7),
        ("max_head_m", 11),
        ("min_head_m", 11),
        ("max_pressure_mpa", 17),
        ("min_pressure_mpa", 17),
        ("maop_mpa", 9),
        ("surge_margin_mpa", 17),
        ("surge_violation", 16),
        ("column_separation", 18),
        ("first_column_separation_s", 26),
    ]
    print("".join(f"{name:>{w}}" for name, w in cols))
    for row in ref["surge_table"]:
        print("".join(f"{'-' if row[name] is None else row[name]!s:>{w}}" for name, w in cols))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the figures and write the JSON; exit 1 if a grid misses the target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0, help="simulated time in s")
    parser.add_argument("--grids", type=float, nargs="+", default=[1000.0, 100.0], help="reach lengths in m")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per case (best is kept)")
    args = parser.parse_args(argv)
    from pumptwin.flows.settings import get_settings

    t0 = time.perf_counter()
    rows = run_synthetic(args.duration, args.grids, args.repeat)
    _print_synthetic(rows)
    refs = run_reference(args.duration, 1000.0)
    for ref in refs:
        _print_reference(ref)
    total = time.perf_counter() - t0
    met = all(r["x_real_time"] >= TARGET_X_REAL_TIME for r in rows if r["grid_m"] <= 1000.0)  # noqa: PLR2004
    print(f"\ntarget >= {TARGET_X_REAL_TIME:g}x real time at 1 km or finer: {'met' if met else 'MISSED'}")
    report = {
        "benchmark": "transients",
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.processor(),
            "python": platform.python_version(),
        },
        "target_x_real_time": TARGET_X_REAL_TIME,
        "target_met": met,
        "total_wall_s": total,
        "synthetic": rows,
        "reference": refs,
    }
    out_dir = Path(get_settings().bench_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / "transients.json"
    out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"wrote {out}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
