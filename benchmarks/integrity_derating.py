"""Benchmark: the twin's integrity derating against a closed form, on synthetic lines with known features.

``python -m benchmarks.integrity_derating`` builds, per seed, a small line in code: a source reservoir,
one pump station, 3 to 6 pipes of random length (2-15 km), diameter (0.3-0.6 m), Hazen-Williams C
(100-140) and node elevation (0-80 m), and a delivery reservoir at a fixed head 20 m above the highest
node. It places 5 to 12 features at random chainages; one of them (the binding feature) gets a safe
pressure that the pressure at its chainage reaches at a known throughput Q*, drawn at 1.1 to 1.4
times the line's base flow; every other feature gets 5 to 50 % more than the pressure at its place
at Q*, so it is safe there. Half the seeds use a margin of 0.9 (the safe pressure is set to the
pressure at Q* over the margin).

The known Q* comes from a closed form, independently of `pumptwin.twin.integrity.line.derate`: with a
fixed-head delivery, the head at a feature is the delivery head plus the Hazen-Williams loss of the
pipe length downstream of it (EPANET's SI form h = 10.667 C^-1.852 d^-4.871 L q^1.852; the pipe of the
feature counted from the feature on), and its elevation is linear between the pipe's ends, so the
pressure at the feature at a flow q is known exactly and rises with q; Q* is the flow at which it
equals the usable safe pressure. The twin's derating (batched solves on a grid of common speed
factors on the pump, then bracket-and-refine) should find Q* within 1 % and name the binding feature.

Figures per seed: Q* and the derated throughput (m3/h), the relative error, whether the binding
feature was named, the time; and their summary. JSON under ``<PUMPTWIN_HOME>/bench/integrity_derating.json``.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.figures import write_figures
from pumptwin.twin.hydraulic.network import Curve, Junction, Network, Pipe, Pump, Reservoir
from pumptwin.twin.hydraulic.solver import base_batch, compile_network, solve_batch
from pumptwin.twin.integrity.line import derate, integrity_limits
from pumptwin.twin.units import G_M_S2, M3H_PER_M3S
from pumptwin.twin.whatif.path import main_path

DEFAULT_SEEDS = tuple(range(10))
"""Seeds run by default."""
TARGET = 0.01
"""Largest relative error of the derated throughput that meets the target."""
HW_SI = 4.727 * 0.3048 ** (4.871 - 3 * 1.852)
"""EPANET's SI Hazen-Williams constant (10.667): h = HW_SI L q^1.852 / (C^1.852 d^4.871)."""
HEADROOM_M = 20.0
"""Delivery head above the highest node, m."""
DESIGN_VELOCITY_M_S = 1.5
"""Velocity in the narrowest pipe at the design flow the pump is sized for, m/s."""


def hw_loss_m(q_m3s: float, length_m: float, diameter_m: float, c: float) -> float:
    """Hazen-Williams head loss, m."""
    return HW_SI * length_m * q_m3s**1.852 / (c**1.852 * diameter_m**4.871)


def synthetic_line(seed: int) -> tuple[Network, dict[str, Any]]:
    """A random single line (source, pump, 3-6 pipes, fixed-head delivery) and its geometry.

    Returns:
        The network and ``{"pipes": [(id, length_m, diameter_m, c, z_start_m, z_end_m)], "delivery_m": ..}``.
    """
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 7))
    lengths = rng.uniform(2000.0, 15000.0, n)
    diameters = rng.uniform(0.3, 0.6, n)
    cs = rng.uniform(100.0, 140.0, n)
    z = np.concatenate([[0.0], rng.uniform(0.0, 80.0, n - 1)])  # D at 0 m, then the inner nodes
    delivery = float(z.max() + HEADROOM_M)
    z_nodes = np.concatenate([z, [delivery]])  # the delivery reservoir's ground at its head
    q_design = DESIGN_VELOCITY_M_S * math.pi * float(diameters.min()) ** 2 / 4.0
    source = float(rng.uniform(10.0, 40.0))
    need = delivery - source + sum(hw_loss_m(q_design, *p) for p in zip(lengths, diameters, cs, strict=True))
    h0 = 1.3 * need
    b = (h0 - need) / q_design**2
    curve = ((0.0, h0), (q_design, need), (1.5 * q_design, h0 - b * (1.5 * q_design) ** 2))
    names = ["D", *[f"N{i}" for i in range(1, n)], "DEL"]
    pipes = tuple(
        Pipe(f"P{i + 1}", names[i], names[i + 1], float(lengths[i]), float(diameters[i]), float(cs[i]))
        for i in range(n)
    )
    net = Network(
        name=f"synthetic line {seed}",
        junctions=tuple(Junction(names[i], float(z[i])) for i in range(n)),
        reservoirs=(Reservoir("SRC", source, elevation_m=0.0), Reservoir("DEL", delivery, elevation_m=delivery)),
        pipes=pipes,
        pumps=(Pump("PU", "SRC", "D", head_curve="C1", station="PS", max_speed=1.2),),
        curves=(Curve("C1", curve),),
    )
    geometry = {
        "pipes": [
            (
                f"P{i + 1}",
                float(lengths[i]),
                float(diameters[i]),
                float(cs[i]),
                float(z_nodes[i]),
                float(z_nodes[i + 1]),
            )
            for i in range(n)
        ],
        "delivery_m": delivery,
    }
    return net, geometry


def pressure_closed_form_pa(geometry: dict[str, Any], chainage_m: float, q_m3s: float, rho_g: float) -> float:
    """Gauge pressure at a chainage at flow q, Pa: delivery head plus the loss downstream, minus the elevation."""
    head, start = geometry["delivery_m"], 0.0
    z = math.nan
    for _, length, diameter, c, z0, z1 in geometry["pipes"]:
        end = start + length
        if chainage_m < end:
            downstream = end - max(chainage_m, start)
            head += hw_loss_m(q_m3s, downstream, diameter, c)
            if chainage_m >= start:
                z = z0 + (z1 - z0) * (chainage_m - start) / length
        start = end
    return rho_g * (head - z)


def run_seed(seed: int) -> dict[str, Any]:
    """One synthetic line: the closed-form Q*, the twin's derating and its error."""
    net, geo = synthetic_line(seed)
    rng = np.random.default_rng(10_000 + seed)
    model = compile_network(net)
    rho_g = net.fluid.density_kg_m3 * G_M_S2
    q0 = float(solve_batch(model, base_batch(model)).flow_m3s[0, model.link_index["P1"]])
    q_star = float(rng.uniform(1.1, 1.4)) * q0
    margin = 0.9 if seed % 2 else 1.0
    total = sum(p[1] for p in geo["pipes"])
    n_feat = int(rng.integers(5, 13))
    chain = np.sort(rng.uniform(0.02 * total, 0.98 * total, n_feat))
    binding = int(rng.integers(n_feat))
    at_star = np.array([pressure_closed_form_pa(geo, float(x), q_star, rho_g) for x in chain])
    spare = rng.uniform(1.05, 1.5, n_feat)
    spare[binding] = 1.0
    starts = np.cumsum([0.0] + [p[1] for p in geo["pipes"]])
    pipe_of = [geo["pipes"][int(np.searchsorted(starts, x, side="right")) - 1][0] for x in chain]
    assessed = pd.DataFrame(
        {
            "feature_id": [f"ML-{seed:02d}-{i:02d}" for i in range(n_feat)],
            "chainage_m": chain,
            "safe_pa": at_star * spare / margin,
            "pipe_id": pipe_of,
        }
    )
    limits = integrity_limits(assessed, margin)
    t0 = time.perf_counter()
    d = derate(model, limits, path=main_path(model))
    seconds = time.perf_counter() - t0
    known = q_star * M3H_PER_M3S
    error = d.throughput_m3h / known - 1.0
    return {
        "seed": seed,
        "pipes": len(geo["pipes"]),
        "length_km": total / 1000.0,
        "features": n_feat,
        "margin": margin,
        "base_m3h": q0 * M3H_PER_M3S,
        "known_m3h": known,
        "derated_m3h": d.throughput_m3h,
        "error_pct": 100.0 * error,
        "binding_named": d.binding_feature.startswith(f"ML-{seed:02d}-{binding:02d} "),
        "first_limit": d.first_limit,
        "seconds": seconds,
    }


def run(seeds: tuple[int, ...] | list[int] = DEFAULT_SEEDS) -> dict[str, Any]:
    """Every seed's row and the summary: largest and mean absolute error (%), binding features named, time."""
    rows = [run_seed(int(s)) for s in seeds]
    errors = np.array([abs(r["error_pct"]) for r in rows])
    finite = np.isfinite(errors)
    summary = {
        "seeds": len(rows),
        "max_abs_error_pct": float(np.max(errors)) if finite.all() else math.inf,
        "mean_abs_error_pct": float(np.mean(errors[finite])) if finite.any() else math.nan,
        "binding_named": int(sum(r["binding_named"] for r in rows)),
        "mean_seconds": float(np.mean([r["seconds"] for r in rows])),
        "target_pct": 100.0 * TARGET,
    }
    summary["target_met"] = bool(finite.all() and summary["max_abs_error_pct"] <= 100.0 * TARGET)
    return {
        "benchmark": "integrity_derating",
        "known_throughput": "closed form: fixed-head delivery plus Hazen-Williams loss downstream of the feature",
        "rows": rows,
        "summary": summary,
    }


def markdown(record: dict[str, Any]) -> str:
    """The record as a markdown table and summary."""
    head = "| seed | pipes | km | features | margin | base m3/h | known m3/h | derated m3/h | error % | binding named |"
    lines = [head, "|" + "---:|" * 10]
    for r in record["rows"]:
        lines.append(
            f"| {r['seed']} | {r['pipes']} | {r['length_km']:.1f} | {r['features']} | {r['margin']:g} | "
            f"{r['base_m3h']:.1f} | {r['known_m3h']:.2f} | {r['derated_m3h']:.2f} | {r['error_pct']:+.2e} | "
            f"{r['binding_named']} |"
        )
    s = record["summary"]
    lines += [
        "",
        f"max |error| {s['max_abs_error_pct']:.2e} %, mean {s['mean_abs_error_pct']:.2e} % "
        f"(target {s['target_pct']:g} %), "
        f"binding feature named in {s['binding_named']}/{s['seeds']}, {s['mean_seconds']:.2f} s per derating: "
        f"target {'met' if s['target_met'] else 'missed'}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table and write the JSON; exit 1 when the target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", help=f"seeds (default {list(DEFAULT_SEEDS)})")
    parser.add_argument(
        "--out", type=Path, default=None, help="JSON file (default <bench_dir>/integrity_derating.json)"
    )
    args = parser.parse_args(argv)
    record = run(tuple(args.seeds) if args.seeds else DEFAULT_SEEDS)
    out = write_figures(record, "integrity_derating", args.out)
    print(markdown(record))
    print(f"wrote {out}")
    return 0 if record["summary"]["target_met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
