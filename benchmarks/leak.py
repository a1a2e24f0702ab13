"""Benchmark: leak detection on a 50 km liquid line, with API RP 1130 style figures.

``python -m benchmarks.leak`` uses the slow-transient line simulator
(`pumptwin.plant.line_dynamics`) as the plant and `twin.leak` as the detector. For each of
``--meter-sets`` independent sets of meters (each set keeps its fixed biases in every run):

1. **Training** (leak-free, 7 days, its own noise seed, 8 shutdowns plus speed and delivery
   pressure changes). The noise model and every threshold come from this run only.
2. **Reliability**: 30 days, another noise seed, no leak, 12-14 start/stops plus speed and
   delivery-pressure changes at random times; every alarm is a false alarm (the monitor is
   reset after each).
3. **Sensitivity**: leaks of 0.25, 0.5, 1, 2 and 5 % of flow at 5 positions and ``--seeds``
   noise seeds, each at a random steady speed, opening 1 h into the run ("steady"); leaks of 1
   and 2 % opening 2 min after a speed change ("after_speed_change") and in a shut-in line
   (sized on the design flow, "shut_in"). Time to alarm; a miss when no alarm within 2 h.
4. **Accuracy**: location error (km) and rate error (% of the true leak flow) 15 min after the
   alarm (not defined in a shut-in line, which has no flow and ends depressurised).

Two detectors are scored on the same data: ``exact`` (the twin's line model equals the
simulator's) and ``mismatch`` (wave speed 5 % high, roughness 1.5x; calibration and training
must absorb it).

The meters have repeatability 0.1 % of reading, fixed bias up to 0.25 % of reading plus 0.05 %
of span, a slow drift of 0.03 % (6 h correlation), 2 kPa pressure noise, 5 s sampling. Targets:
1 % detected within 10 min, 0.5 % within 60 min, no false alarm in 30 days, location within
2 km (1 % leaks). Figures are written to ``<PUMPTWIN_HOME>/bench/leak.json``; the exit status
is 1 when the ``exact`` detector misses a target.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pumptwin.plant.line_dynamics import (
    InitialConditions,
    LeakSpec,
    LineRun,
    LineSpec,
    MeterSpec,
    Operation,
    simulate_line,
    start_stop_operations,
)
from pumptwin.twin.leak.detection import (
    LeakConfig,
    LeakMonitor,
    LineModel,
    MeterLayout,
    fit_noise_model,
    monitor_frame,
    summarise_alarm,
)

LINE = LineSpec(profile=((0.0, 50.0), (12_000.0, 85.0), (25_000.0, 70.0), (38_000.0, 110.0), (50_000.0, 95.0)))
METER_SEED = 2026
DT_S = 2.5
SIZES = (0.0025, 0.005, 0.01, 0.02, 0.05)
POSITIONS_M = (5_000.0, 15_000.0, 25_000.0, 35_000.0, 45_000.0)
LEAK_START_S = 3600.0
HORIZON_S = 7200.0
ESTIMATE_AFTER_S = 900.0
TRAIN_DAYS = 7.0
VARIANTS = ("exact", "mismatch")
KINDS = ("steady", "after_speed_change", "shut_in")
TARGETS = {"detect_1pct_min": 10.0, "detect_0p5pct_min": 60.0, "false_alarms_30d": 0, "location_km": 2.0}


def random_operations(days: float, rng: np.random.Generator, start_stops: int) -> list[Operation]:
    """Random schedule: ``start_stops`` shutdowns of 1-6 h, speed and delivery-pressure changes."""
    horizon = days * 86_400.0
    ops: list[Operation] = []
    slots = np.sort(rng.uniform(0.05, 0.95, size=start_stops)) * horizon
    busy: list[tuple[float, float]] = []
    for t in slots:
        if busy and t < busy[-1][1] + 3600.0:
            continue
        down = rng.uniform(1.0, 6.0) * 3600.0
        speed = float(rng.uniform(0.8, 1.0))
        ops += start_stop_operations(float(t), float(t + down), speed=speed)
        busy.append((float(t), float(t + down + 600.0)))
    for _ in range(int(2 * start_stops)):
        t = float(rng.uniform(0.02, 0.98) * horizon)
        if any(a - 1800.0 <= t <= b + 1800.0 for a, b in busy):
            continue
        if rng.uniform() < 0.6:  # noqa: PLR2004
            ops.append(Operation(t, pump_speed=float(rng.uniform(0.75, 1.0)), ramp_s=float(rng.uniform(30, 180))))
        else:
            ops.append(Operation(t, delivery_pressure_pa=float(rng.uniform(3e5, 9e5)), ramp_s=120.0))
    return sorted(ops, key=lambda o: o.t_s)


def _config(positions: tuple[float, ...], variant: str) -> LeakConfig:
    """Detector configuration; ``"mismatch"`` gives the twin a wave speed 5 % high and roughness 1.5x."""
    a_scale, e_scale = (1.05, 1.5) if variant == "mismatch" else (1.0, 1.0)
    line = LineModel(
        LINE.length_m,
        LINE.diameter_m,
        LINE.roughness_m * e_scale,
        LINE.wave_speed_m_s * a_scale,
        LINE.density_kg_m3,
        LINE.kinematic_viscosity_m2_s,
        LINE.profile,
    )
    return LeakConfig(line, MeterLayout.numbered(positions))


def count_alarms(config: LeakConfig, readings: pd.DataFrame, chunk_s: float = 3600.0) -> list[float]:
    """Alarm times (s) over a run, resetting the monitor after each alarm."""
    monitor = LeakMonitor(config)
    t = readings.index.to_numpy(dtype=np.float64)
    alarms: list[float] = []
    for a in np.arange(t[0], t[-1] + chunk_s, chunk_s):
        part = readings[(t >= a) & (t < a + chunk_s)]
        if not len(part):
            continue
        status = monitor.update(part)
        if status.alarm:
            alarms.append(status.alarm_time_s)
            monitor.reset()
    return alarms


@dataclass(frozen=True)
class _LeakRun:
    """A simulated leak case: what it is and the plant's output."""

    kind: str
    size: float
    position_m: float
    seed: int
    speed: float
    result: LineRun


def _leak_runs(meter_seed: int, seeds: int, rng: np.random.Generator) -> list[_LeakRun]:
    """Steady leaks (sizes x positions x seeds) and leaks that open during operations."""
    runs = []
    for size in SIZES:
        for pos in POSITIONS_M:
            for seed in range(seeds):
                speed = float(rng.uniform(0.8, 1.0))
                result = simulate_line(
                    LINE,
                    LEAK_START_S + HORIZON_S,
                    initial=InitialConditions(pump_speed=speed),
                    leak=LeakSpec(pos, LEAK_START_S, size),
                    dt_s=DT_S,
                    seed=100 + seed,
                    meter_seed=meter_seed,
                )
                runs.append(_LeakRun("steady", size, pos, seed, speed, result))
    # a leak opening 2 min after a speed change, and one opening in a shut-in line (1 % of design flow)
    for size in (0.01, 0.02):
        for pos in (10_000.0, 40_000.0):
            for seed in range(seeds):
                speed = float(rng.uniform(0.85, 1.0))
                ops = [Operation(LEAK_START_S - 120.0, pump_speed=speed - 0.1, ramp_s=60.0)]
                result = simulate_line(
                    LINE,
                    LEAK_START_S + HORIZON_S,
                    initial=InitialConditions(pump_speed=speed),
                    operations=ops,
                    leak=LeakSpec(pos, LEAK_START_S, size),
                    dt_s=DT_S,
                    seed=200 + seed,
                    meter_seed=meter_seed,
                )
                runs.append(_LeakRun("after_speed_change", size, pos, seed, speed, result))
                shut = start_stop_operations(LEAK_START_S - 3600.0, 100 * 3600.0)
                result = simulate_line(
                    LINE,
                    LEAK_START_S + HORIZON_S,
                    operations=shut,
                    leak=LeakSpec(pos, LEAK_START_S, size),
                    dt_s=DT_S,
                    seed=300 + seed,
                    meter_seed=meter_seed,
                )
                runs.append(_LeakRun("shut_in", size, pos, seed, 0.0, result))
    return runs


def _score(config: LeakConfig, case: _LeakRun, meter_set: int) -> dict[str, Any]:
    """Time to alarm, location and rate errors of one leak case."""
    frame = monitor_frame(config, case.result.readings)
    summary = summarise_alarm(frame, ESTIMATE_AFTER_S)
    true_rate = float(case.result.truth["leak_m3s"].iloc[-1])
    detected = math.isfinite(summary.alarm_time_s) and summary.alarm_time_s >= LEAK_START_S
    early = math.isfinite(summary.alarm_time_s) and summary.alarm_time_s < LEAK_START_S
    loc = abs(summary.leak_position_m - case.result.leak_node_position_m) / 1e3
    rate = 100 * (summary.leak_rate_m3s - true_rate) / true_rate if true_rate > 0 else math.nan
    return {
        "kind": case.kind,
        "meter_set": meter_set,
        "size_pct": 100 * case.size,
        "position_km": case.position_m / 1e3,
        "seed": case.seed,
        "speed": case.speed,
        "detected": detected,
        "alarm_before_leak": early,
        "time_to_alarm_min": (summary.alarm_time_s - LEAK_START_S) / 60.0 if detected else None,
        "location_error_km": loc if detected and math.isfinite(loc) else None,
        "rate_error_pct": rate if detected and math.isfinite(rate) else None,
    }


def _table(cases: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """Per leak size: detections, time to alarm, location and rate errors (median and worst)."""
    table = []
    for size in sorted({c["size_pct"] for c in cases if c["kind"] == kind}):
        rows = [c for c in cases if c["kind"] == kind and c["size_pct"] == size]
        hit = [c for c in rows if c["detected"]]
        tta = [c["time_to_alarm_min"] for c in hit if c["time_to_alarm_min"] is not None]
        loc = [c["location_error_km"] for c in hit if c["location_error_km"] is not None]
        rate = [abs(c["rate_error_pct"]) for c in hit if c["rate_error_pct"] is not None]
        table.append(
            {
                "kind": kind,
                "size_pct": size,
                "runs": len(rows),
                "detected": len(hit),
                "false_before_leak": sum(1 for c in rows if c["alarm_before_leak"]),
                "tta_median_min": float(np.median(tta)) if tta else None,
                "tta_max_min": float(np.max(tta)) if tta else None,
                "loc_err_median_km": float(np.median(loc)) if loc else None,
                "loc_err_max_km": float(np.max(loc)) if loc else None,
                "rate_err_median_pct": float(np.median(rate)) if rate else None,
                "rate_err_max_pct": float(np.max(rate)) if rate else None,
            }
        )
    return table


def run(days: float, seeds: int, start_stops: int, meter_sets: int) -> dict[str, Any]:
    """Per meter set: train, then reliability, sensitivity and accuracy for both detector variants."""
    t0 = time.perf_counter()
    out: dict[str, Any] = {"variants": {}, "meter_sets": meter_sets}
    for variant in VARIANTS:
        out["variants"][variant] = {"noise_models": [], "reliability": [], "cases": []}
    timing = {"simulate": 0.0, "monitor": 0.0}
    for meter_set in range(meter_sets):
        meter_seed = METER_SEED + meter_set
        rng = np.random.default_rng(7 + meter_set)
        ts = time.perf_counter()
        train_ops = random_operations(TRAIN_DAYS, rng, 8)
        train = simulate_line(
            LINE, TRAIN_DAYS * 86_400.0, operations=train_ops, dt_s=DT_S, seed=1 + 10 * meter_set, meter_seed=meter_seed
        )
        ops = random_operations(days, rng, start_stops)
        n_stops = sum(1 for o in ops if o.pump_speed == 0.0)
        long_run = simulate_line(
            LINE, days * 86_400.0, operations=ops, dt_s=DT_S, seed=2 + 10 * meter_set, meter_seed=meter_seed
        )
        leak_runs = _leak_runs(meter_seed, seeds, rng)
        timing["simulate"] += time.perf_counter() - ts
        tm = time.perf_counter()
        for variant in VARIANTS:
            record = out["variants"][variant]
            config = _config(train.pressure_positions_m, variant)
            noise = fit_noise_model(config, train.readings)
            config = LeakConfig(config.line, config.meters, noise=noise)
            record["noise_models"].append(dataclasses.asdict(noise))
            alarms = count_alarms(config, long_run.readings)
            record["reliability"].append(
                {
                    "meter_set": meter_set,
                    "days": days,
                    "shutdowns": n_stops,
                    "operations": len(ops),
                    "false_alarms": len(alarms),
                    "alarm_times_s": alarms,
                }
            )
            record["cases"] += [_score(config, case, meter_set) for case in leak_runs]
        timing["monitor"] += time.perf_counter() - tm
    for variant in VARIANTS:
        record = out["variants"][variant]
        record["tables"] = {kind: _table(record["cases"], kind) for kind in KINDS}
    timing["total"] = time.perf_counter() - t0
    out["seconds"] = timing
    out["line"] = {
        "length_km": LINE.length_m / 1e3,
        "diameter_m": LINE.diameter_m,
        "transmitters_km": [x / 1e3 for x in MeterSpec().pressure_positions_m],
    }
    out["targets"] = TARGETS
    return out


def _fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table and write the JSON; exit 1 if a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=30.0, help="length of the leak-free reliability run")
    parser.add_argument("--seeds", type=int, default=3, help="noise seeds per leak size and position")
    parser.add_argument("--start-stops", type=int, default=14, help="shutdowns scheduled in the reliability run")
    parser.add_argument(
        "--meter-sets", type=int, default=4, help="independent sets of meters (each trained on its own)"
    )
    args = parser.parse_args(argv)
    from pumptwin.flows.settings import get_settings

    result = run(args.days, args.seeds, args.start_stops, args.meter_sets)
    heads = ("leak %", "det", "tta med", "tta max", "loc med km", "loc max km", "rate med %", "rate max %")
    met: dict[str, bool] = {}
    for variant, record in result["variants"].items():
        rel = record["reliability"]
        print(
            f"[{variant}] reliability: {len(rel)} x {rel[0]['days']:g} days,"
            f" {sum(r['shutdowns'] for r in rel)} shutdowns, {sum(r['operations'] for r in rel)} operations"
            f" -> {sum(r['false_alarms'] for r in rel)} false alarms"
        )
        for kind, table in record["tables"].items():
            print(f"[{variant}] {kind} leaks")
            print(" ".join(f"{h:>10}" for h in heads))
            for row in table:
                print(
                    f"{row['size_pct']:>10.2f} {str(row['detected']) + '/' + str(row['runs']):>10}"
                    f" {_fmt(row['tta_median_min']):>10} {_fmt(row['tta_max_min']):>10}"
                    f" {_fmt(row['loc_err_median_km'], '.2f'):>10} {_fmt(row['loc_err_max_km'], '.2f'):>10}"
                    f" {_fmt(row['rate_err_median_pct']):>10} {_fmt(row['rate_err_max_pct']):>10}"
                )
        by = {row["size_pct"]: row for row in record["tables"]["steady"]}
        met[f"{variant}.detect_1pct_10min"] = by[1.0]["detected"] == by[1.0]["runs"] and (
            by[1.0]["tta_max_min"] or math.inf
        ) <= float(TARGETS["detect_1pct_min"])
        met[f"{variant}.detect_0p5pct_60min"] = by[0.5]["detected"] == by[0.5]["runs"] and (
            by[0.5]["tta_max_min"] or math.inf
        ) <= float(TARGETS["detect_0p5pct_min"])
        met[f"{variant}.no_false_alarm"] = sum(r["false_alarms"] for r in rel) == 0
        met[f"{variant}.location_2km_at_1pct"] = (by[1.0]["loc_err_max_km"] or math.inf) <= float(
            TARGETS["location_km"]
        )
    secs = result["seconds"]
    print(f"seconds: {', '.join(f'{k} {v:.1f}' for k, v in secs.items())}")
    result["targets_met"] = met
    print("targets met: " + ", ".join(f"{k}={v}" for k, v in met.items()))
    report = {
        "benchmark": "leak",
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "result": result,
    }
    out_dir = Path(get_settings().bench_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / "leak.json"
    out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"wrote {out}")
    return 0 if all(v for k, v in met.items() if k.startswith("exact.")) else 1


if __name__ == "__main__":
    raise SystemExit(main())
