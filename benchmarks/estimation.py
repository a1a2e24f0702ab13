"""Benchmark: the twin's wear estimate against the plant's hidden truth, at the deployment's cadence.

``python -m benchmarks.estimation`` simulates the shipped ``impeller_wear`` scenario (PS02.P2's
impeller wears over 28 days), folds its readings into the calibration in 15-minute windows (the
``twin-sync`` schedule) with `twin.estimation.update_calibration`, which never sees the truth,
and compares afterwards, window by window, the estimated wear of the worn pump with the truth
from `Plant.ground_truth`. Reported: windows after the fault is halfway and how many of them are
within 10 % of the truth (the target: all), the worst and mean relative error there, the final
estimate with its standard deviation against the truth, the largest wear estimated on a healthy
pump, the line's friction multiplier, and the update time per window. The twin's own condition
models (`twin.health.condition`) are checked against the plant's richer, hidden physics on the
healthy running pumps, in every window after the first day: the vibration excess over the learnt
baseline (zero for a perfect model; the state's alarm is at 2 mm/s), the drift of the bearing
rise over its reference (alarm at 25 %) and the baseline's residual. Figures go to
``<PUMPTWIN_HOME>/bench/estimation.json``.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pumptwin.flows.settings import get_settings
from pumptwin.plant.scenario import shipped_scenario
from pumptwin.plant.simulator import Plant
from pumptwin.twin.health.estimation import TwinCalibration, update_calibration
from pumptwin.twin.hydraulic.io import load_network

WINDOW = "15min"
WORN = "PS02.P2"
TOLERANCE = 0.10
SETTLE = pd.Timedelta(days=1)
"""Condition figures start once the baselines have a day of history."""


def run() -> dict[str, Any]:
    """Simulate, fold in 15-minute windows, compare with the truth; return the figures."""
    scenario = shipped_scenario("impeller_wear")
    fault = scenario.faults[0]
    t0 = time.perf_counter()
    plant = Plant(scenario)
    readings = plant.run()
    simulate_s = time.perf_counter() - t0
    network = load_network()
    cal: TwinCalibration | None = None
    ends, wear, update_s = [], [], []
    excess, drift, noise = [], [], []
    for _, window in readings.groupby(readings["ts"].dt.floor(WINDOW), sort=True):
        t = time.perf_counter()
        cal = update_calibration(cal, window, plant.registry, network)
        update_s.append(time.perf_counter() - t)
        ends.append(cal.ts)
        wear.append(cal.pump(WORN).impeller_wear.value)
        if cal.ts is not None and cal.ts - scenario.start >= SETTLE:
            for name, p in cal.pumps.items():
                if name != WORN and p.running_fraction > 0 and np.isfinite(p.vib_excess_de_mm_s):
                    excess.append(abs(p.vib_excess_de_mm_s))
                    drift.append(abs(p.thermal_drift_de))
                    noise.append(p.vib_de.noise_mm_s / p.vib_de_mm_s)
    assert cal is not None
    truth = plant.ground_truth().pumps
    worn = truth[truth["asset"] == WORN].set_index("ts")["impeller_wear"].sort_index()
    onset = scenario.start + pd.Timedelta(seconds=fault.onset_s)
    halfway = onset + pd.Timedelta(seconds=(fault.failure_s - fault.onset_s) / 2)
    half_window = pd.Timedelta(WINDOW) / 2
    errors = []
    for end, w in zip(ends, wear, strict=True):
        mid = end - half_window
        if mid < halfway:
            continue
        true = float(worn.asof(mid))
        errors.append(abs(w - true) / true)
    err = np.asarray(errors)
    final = cal.pump(WORN)
    healthy = [abs(p.impeller_wear.value) for name, p in cal.pumps.items() if name != WORN and p.n_samples > 0]
    line = next(iter(cal.lines.values()))
    return {
        "benchmark": "estimation",
        "scenario": scenario.name,
        "window": WINDOW,
        "windows": len(ends),
        "windows_after_halfway": int(err.size),
        "within_10pct": int((err <= TOLERANCE).sum()),
        "worst_error_pct": float(100 * err.max()),
        "mean_error_pct": float(100 * err.mean()),
        "final_wear": final.impeller_wear.value,
        "final_wear_sd": final.impeller_wear.sd,
        "final_truth": float(worn.iloc[-1]),
        "final_efficiency_loss": final.efficiency_loss.value,
        "max_healthy_wear": max(healthy),
        "friction_multiplier": line.friction_multiplier.value,
        "friction_multiplier_sd": line.friction_multiplier.sd,
        "healthy_vib_excess_max_mm_s": float(np.max(excess)),
        "healthy_vib_excess_mean_mm_s": float(np.mean(excess)),
        "healthy_vib_residual_max_pct": float(100 * np.nanmax(noise)),
        "healthy_thermal_drift_max_pct": float(100 * np.nanmax(drift)),
        "update_ms_mean": 1e3 * float(np.mean(update_s)),
        "update_ms_p95": 1e3 * float(np.quantile(update_s, 0.95)),
        "simulate_s": simulate_s,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
    }


def main() -> int:
    """Run the benchmark, print and save its figures; exit 1 when a window misses the target."""
    report = run()
    print(f"estimation on {report['scenario']!r}, {report['windows']} windows of {WINDOW}")
    print(
        f"wear of {WORN} after halfway: {report['within_10pct']}/{report['windows_after_halfway']} windows within 10 %"
        f" (worst {report['worst_error_pct']:.1f} %, mean {report['mean_error_pct']:.2f} %)"
    )
    print(
        f"final: {report['final_wear']:.5f} +- {report['final_wear_sd']:.5f} against {report['final_truth']:.5f};"
        f" efficiency loss {report['final_efficiency_loss']:.4f}; healthy at most {report['max_healthy_wear']:.5f}"
    )
    print(
        f"healthy pumps: vibration excess at most {report['healthy_vib_excess_max_mm_s']:.2f} mm/s"
        f" (mean {report['healthy_vib_excess_mean_mm_s']:.3f}), baseline residual at most"
        f" {report['healthy_vib_residual_max_pct']:.1f} %,"
        f" bearing drift at most {report['healthy_thermal_drift_max_pct']:.1f} %"
    )
    print(
        f"friction multiplier {report['friction_multiplier']:.4f} +- {report['friction_multiplier_sd']:.4f};"
        f" update {report['update_ms_mean']:.0f} ms mean, {report['update_ms_p95']:.0f} ms p95 per window"
    )
    out = Path(get_settings().bench_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "estimation.json").write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    print(f"wrote {out / 'estimation.json'}")
    return 0 if report["within_10pct"] == report["windows_after_halfway"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
