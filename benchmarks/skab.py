"""SKAB, the Skoltech Anomaly Benchmark: our pump anomaly detector under SKAB's own protocol.

``pumptwin bench skab --data DIR --out predictions.csv`` (or ``python -m benchmarks.skab``) reads
every labelled file in the folders under DIR (not ``anomaly-free``), fits one detector per file on
its first 400 rows, predicts the rest, prints point-wise F1, FAR and MAR and the NAB scores of the
standard, LowFP and LowFN profiles, writes every scored row's ``file, datetime, anomaly,
changepoint`` to the CSV and the figures to ``<PUMPTWIN_HOME>/bench/skab.json``. Monitoring runs
on: the scored rows follow the training rows, so causal features and smoothing carry the training
rows' history into them. The data are read where they lie (GPL-3.0; never copied into the project).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from pumptwin.models.detectors import lagged_difference
from pumptwin.models.ensemble import skab_ensemble
from pumptwin.models.skab import FEATURES, SkabFile, load_skab, prediction_table, score_predictions

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "skab"


THERMAL: tuple[str, ...] = ("Temperature", "Thermocouple")
"""Slow thermal states, watched through their change over `THERMAL_LAG_S` rather than their level."""

THERMAL_LAG_S = 10
"""Rows (s at 1 Hz) over which the thermal channels' change is taken."""


def skab_features(rows: pd.DataFrame) -> np.ndarray:
    """Detector inputs of consecutive rows: every sensor, the thermal ones as their 10-row change.

    Args:
        rows: Sensor columns of one file, rows in time order.

    Returns:
        Array of shape (n_rows, len(FEATURES)), columns in `FEATURES` order.
    """
    X = rows[list(FEATURES)].to_numpy(dtype=float).copy()
    idx = [FEATURES.index(c) for c in THERMAL]
    X[:, idx] = lagged_difference(X[:, idx], THERMAL_LAG_S)
    return X


def predict_file(f: SkabFile, detector: BaseEstimator) -> np.ndarray:
    """Fit ``detector`` on a file's training rows and return 0/1 predictions of its scored rows.

    The detector scores the training and scored rows as one series, so causal features and
    smoothing see the rows before each scored row; only the scored rows' labels are returned.
    """
    cols = list(FEATURES)
    X = skab_features(pd.concat([f.train[cols], f.test[cols]]))
    n = len(f.train)
    detector.fit(X[:n])
    return (np.asarray(detector.predict(X))[n:] == -1).astype(int)


def run(data: Path, out: Path | None) -> dict[str, Any]:
    """Run the protocol on ``data``; write the predictions to ``out`` when given; return the figures."""
    t0 = time.perf_counter()
    files = load_skab(data)
    predictions = [predict_file(f, skab_ensemble()) for f in files]
    result = score_predictions(files, predictions)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        prediction_table(files, predictions).to_csv(out, index=False)
    p = result.points
    return {
        "benchmark": "skab",
        "data": str(data),
        "files": [f.name for f in files],
        "scored_rows": int(sum(len(f.test) for f in files)),
        "detector": repr(skab_ensemble()),
        "features": f"{', '.join(FEATURES)}; {', '.join(THERMAL)} as their change over {THERMAL_LAG_S} rows",
        "f1": p.f1,
        "far_pct": p.far_pct,
        "mar_pct": p.mar_pct,
        "tp": p.tp,
        "fp": p.fp,
        "fn": p.fn,
        "tn": p.tn,
        "nab_standard": result.nab["standard"],
        "nab_low_fp": result.nab["low_fp"],
        "nab_low_fn": result.nab["low_fn"],
        "seconds": time.perf_counter() - t0,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the figures and write the predictions and ``bench/skab.json``."""
    parser = argparse.ArgumentParser(description=(__doc__ or "SKAB").splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="SKAB data folder (holds valve1/, ...)")
    parser.add_argument("--out", type=Path, default=None, help="CSV of every scored row's prediction")
    args = parser.parse_args(argv)
    from pumptwin.flows.settings import get_settings

    settings = get_settings()
    figures = run(args.data, args.out)
    print(f"SKAB: {len(figures['files'])} files, {figures['scored_rows']:,} scored rows")
    print(f"F1 {figures['f1']:.3f}  FAR {figures['far_pct']:.2f} %  MAR {figures['mar_pct']:.2f} %")
    print(
        f"NAB standard {figures['nab_standard']:.2f}  LowFP {figures['nab_low_fp']:.2f}"
        f"  LowFN {figures['nab_low_fn']:.2f}"
    )
    if args.out is not None:
        print(f"wrote {args.out}")
    path = Path(settings.bench_dir) / "skab.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
