"""SKAB, the Skoltech Anomaly Benchmark: our pump anomaly detector under SKAB's own protocol.

``pumptwin bench skab --data DIR --out predictions.csv`` (`make bench-skab`) reads
every labelled file in the folders under DIR (not ``anomaly-free``) and, for every setting of a
small general grid (`GRID`), fits one detector per file on its first 400 rows and predicts the
rest. The setting is chosen by leave-one-group-out over the folders: each folder is scored with
the setting that scores best on the other folders (best NAB standard with FAR <= 10 %), and the
held-out figures pooled over every file are the headline. Beside it, the setting chosen and
scored on all files is printed as the in-sample figure, which is optimistic. Healthy rows of
``anomaly-free`` (cut into segments as long as a labelled file, each trained on its first 400
rows) give the false-alarm rate of the chosen settings on a stretch with no fault.

It prints point-wise F1, FAR and MAR and the NAB scores of the standard, LowFP and LowFN profiles,
writes every scored row's held-out ``file, datetime, anomaly, changepoint`` to the CSV and the
figures to ``<PUMPTWIN_HOME>/bench/skab.json`` (the command writes them; this module computes).
Exit code 0 when the headline meets every target
(F1 >= 0.85 with FAR <= 10 %, NAB standard >= 35), 1 when it misses one, 2 on an error such as a
missing data folder. Monitoring runs on: the scored rows follow the training rows, so causal
features and smoothing carry the training rows' history into them. The data are read where they
lie (GPL-3.0; never copied into the project).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from pumptwin.models.detectors import lagged_difference
from pumptwin.models.ensemble import CalibratedEnsemble, skab_ensemble
from pumptwin.models.skab import (
    ANOMALY_FREE,
    FEATURES,
    TARGETS,
    TRAIN_ROWS,
    LogoResult,
    SkabFile,
    SkabResult,
    group_of,
    leave_one_group_out,
    load_skab,
    missed_targets,
    point_scores,
    prediction_table,
    read_skab_csv,
    select_in_sample,
)

THERMAL: tuple[str, ...] = ("Temperature", "Thermocouple")
"""Slow thermal states, watched through their change over `THERMAL_LAG_S` rather than their level."""

THERMAL_LAG_S = 10
"""Rows (s at 1 Hz) over which the thermal channels' change is taken."""

TARGET_FARS: tuple[float, ...] = (0.02, 0.05, 0.1)
"""Row-wise false-alarm budgets of the calibrated threshold in the grid."""

MIN_RUNS: tuple[int, ...] = (10, 20, 40)
"""Alarm persistence, in rows, in the grid."""

SMOOTHS: tuple[int, ...] = (5, 10, 20)
"""Causal smoothing of the standardised sensors, in rows, in the grid."""

HEALTHY_SEGMENT_ROWS = 1150
"""Rows of each ``anomaly-free`` segment, about the length of a labelled file."""

EXIT_MET, EXIT_MISSED, EXIT_ERROR = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Setting:
    """One detector setting of the grid: the arguments of `skab_ensemble`."""

    target_far: float
    min_run: int
    smooth: int

    @property
    def name(self) -> str:
        """Short name, such as ``far0.1-run20-smooth10``."""
        return f"far{self.target_far:g}-run{self.min_run}-smooth{self.smooth}"

    def ensemble(self) -> CalibratedEnsemble:
        """A fresh, unfitted detector with this setting."""
        return skab_ensemble(target_far=self.target_far, min_run=self.min_run, smooth=self.smooth)


def grid() -> dict[str, Setting]:
    """The settings tried: every combination of `TARGET_FARS`, `MIN_RUNS` and `SMOOTHS`.

    Returns:
        The settings by name, in a stable order.
    """
    settings = (Setting(*combo) for combo in itertools.product(TARGET_FARS, MIN_RUNS, SMOOTHS))
    return {s.name: s for s in settings}


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


def predict_grid(files: Sequence[SkabFile], settings: Mapping[str, Setting]) -> dict[str, list[np.ndarray]]:
    """Predictions of every file under every setting (each file's detector trains on its own first rows).

    Args:
        files: The split files.
        settings: The settings by name.

    Returns:
        Per setting name, per file, the 0/1 predictions of the scored rows.
    """
    return {name: [predict_file(f, s.ensemble()) for f in files] for name, s in settings.items()}


def healthy_segments(data: Path, rows: int = HEALTHY_SEGMENT_ROWS) -> list[SkabFile]:
    """The ``anomaly-free`` recording cut into segments of ``rows``, split like a labelled file.

    Args:
        data: The SKAB data folder.
        rows: Rows per segment; the remainder at the end is dropped.

    Returns:
        Segments named ``anomaly-free/<i>`` with every scored row labelled normal; none when the
        folder holds no file.
    """
    segments = []
    for path in sorted((data / ANOMALY_FREE).glob("*.csv")):
        df = read_skab_csv(path).assign(anomaly=0, changepoint=0)
        for i in range(len(df) // rows):
            part = df.iloc[i * rows : (i + 1) * rows]
            name = f"{ANOMALY_FREE}/{path.stem}/{i}"
            segments.append(SkabFile(name, part.iloc[:TRAIN_ROWS][list(FEATURES)], part.iloc[TRAIN_ROWS:]))
    return segments


def healthy_far_pct(segments: Sequence[SkabFile], setting: Setting) -> float | None:
    """Point-wise false-alarm rate (%) of one setting on healthy segments; None without segments."""
    if not segments:
        return None
    predictions = [predict_file(s, setting.ensemble()) for s in segments]
    return point_scores([s.test["anomaly"].to_numpy() for s in segments], predictions).far_pct


def figures_of(result: SkabResult) -> dict[str, float | int]:
    """Point-wise counts and figures and the NAB scores of one result, flat."""
    p = result.points
    return {
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
    }


def logo_figures(logo: LogoResult) -> dict[str, Any]:
    """The pooled held-out figures and, per fold, the chosen setting and its two scores."""
    return {
        **figures_of(logo.pooled),
        "folds": [
            {
                "held_out": fold.held_out,
                "chosen": fold.chosen,
                "selection": figures_of(fold.selection),
                "held_out_figures": figures_of(fold.held_out_result),
            }
            for fold in logo.folds
        ],
    }


def run(data: Path, out: Path | None) -> dict[str, Any]:
    """Run the protocol on ``data`` with leave-one-group-out selection; write the held-out predictions to ``out``.

    Args:
        data: The SKAB data folder.
        out: CSV of every scored row's held-out prediction, or None.

    Returns:
        The figures: the leave-one-group-out headline (also flat at the top level), the in-sample
        figure, the healthy false-alarm rates and the targets missed.

    Raises:
        FileNotFoundError: When ``data`` is not a folder or holds no labelled file.
        ValueError: With fewer than two groups or a malformed file.
    """
    t0 = time.perf_counter()
    if not data.is_dir():
        raise FileNotFoundError(f"SKAB data folder {data} not found (it should hold valve1/, valve2/, anomaly-free/)")
    files = load_skab(data)
    settings = grid()
    predictions = predict_grid(files, settings)
    logo = leave_one_group_out(files, predictions, TARGETS.far_pct)
    chosen_all, in_sample = select_in_sample(files, predictions, TARGETS.far_pct)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        prediction_table(files, logo.predictions).to_csv(out, index=False)
    segments = healthy_segments(data)
    chosen = [fold.chosen for fold in logo.folds] + [chosen_all]
    healthy = {name: healthy_far_pct(segments, settings[name]) for name in dict.fromkeys(chosen)}
    missed = missed_targets(logo.pooled)
    return {
        "benchmark": "skab",
        "data": str(data),
        "files": [f.name for f in files],
        "groups": sorted({group_of(f.name) for f in files}),
        "scored_rows": int(sum(len(f.test) for f in files)),
        "detector": "skab_ensemble(target_far, min_run, smooth): PCA T-squared + Q, calibrated threshold",
        "features": f"{', '.join(FEATURES)}; {', '.join(THERMAL)} as their change over {THERMAL_LAG_S} rows",
        "grid": {name: asdict(s) for name, s in settings.items()},
        "rule": f"best NAB standard with FAR <= {TARGETS.far_pct:g} % on the selection files; ties: F1, grid order",
        "targets": {"f1": TARGETS.f1, "far_pct": TARGETS.far_pct, "nab_standard": TARGETS.nab_standard},
        "headline": "leave_one_group_out",
        **figures_of(logo.pooled),
        "leave_one_group_out": logo_figures(logo),
        "in_sample": {
            "chosen": chosen_all,
            "note": "chosen and scored on the same files: optimistic",
            **figures_of(in_sample),
        },
        "healthy_far_pct": healthy,
        "healthy_segments": len(segments),
        "missed": missed,
        "met": not missed,
        "seconds": time.perf_counter() - t0,
    }


def _line(f: Mapping[str, Any]) -> str:
    return (
        f"F1 {f['f1']:.3f}  FAR {f['far_pct']:.2f} %  MAR {f['mar_pct']:.2f} %  NAB standard {f['nab_standard']:.2f}"
        f"  LowFP {f['nab_low_fp']:.2f}  LowFN {f['nab_low_fn']:.2f}"
    )


def report(figures: Mapping[str, Any]) -> str:
    """The figures as printed: headline, folds, in-sample, healthy false alarms and the targets."""
    logo, ins = figures["leave_one_group_out"], figures["in_sample"]
    lines = [
        f"SKAB: {len(figures['files'])} files in groups {', '.join(figures['groups'])},"
        f" {figures['scored_rows']:,} scored rows, {len(figures['grid'])} settings",
        f"setting rule: {figures['rule']}",
        "leave-one-group-out (headline):",
    ]
    for fold in logo["folds"]:
        sel, held = fold["selection"], fold["held_out_figures"]
        lines.append(
            f"  {fold['held_out']} held out: chose {fold['chosen']} (on the others: F1 {sel['f1']:.3f}"
            f" FAR {sel['far_pct']:.2f} % NAB {sel['nab_standard']:.2f}) -> F1 {held['f1']:.3f}"
            f" FAR {held['far_pct']:.2f} % NAB {held['nab_standard']:.2f}"
        )
    lines.append(f"  pooled: {_line(logo)}")
    lines.append(f"in-sample (chosen on all files, optimistic): {ins['chosen']}")
    lines.append(f"  {_line(ins)}")
    healthy = {k: v for k, v in figures["healthy_far_pct"].items() if v is not None}
    if healthy:
        far = ", ".join(f"{k} {v:.1f} %" for k, v in healthy.items())
        lines.append(f"FAR on {figures['healthy_segments']} anomaly-free segments: {far}")
    t = figures["targets"]
    goal = f"F1 >= {t['f1']:.2f} with FAR <= {t['far_pct']:g} %, NAB standard >= {t['nab_standard']:g}"
    verdict = "met" if figures["met"] else "MISSED: " + "; ".join(figures["missed"])
    lines.append(f"targets ({goal}) on the headline: {verdict}")
    return "\n".join(lines)
