"""Evaluation of detectors, diagnosers and time-to-failure models: metrics and plots.

The metric functions are pure and take plain arrays:

- **Point scores** count rows: precision ``TP / (TP + FP)``, recall ``TP / (TP + FN)`` and
  ``F1 = 2 TP / (2 TP + FP + FN)`` (0 where a denominator is 0).
- **Alarm episodes**: an operator sees alarms, not rows. An episode is a run of consecutive
  alarming rows; runs separated by less than ``merge_gap_s`` are one episode (a chattering
  alarm is one alarm).
- **False alarms per asset-month**: episodes on healthy assets divided by the monitored time in
  months of ``MONTH_S`` (365.25 / 12 days).
- **Lead time**: how long before an event (functional failure, a conventional threshold alarm) the
  first alarm at or after the fault onset came, in s; NaN when there was no such alarm.
- **Confusion matrix** of class labels, as a table (rows true, columns predicted).
- **Interval coverage**: the share of true values inside ``[low, high]``.

The plots use matplotlib with the Agg backend, imported inside the functions, write a PNG to a
given path and return the path: a score timeline with its threshold, the fault onset and the
functional failure; a precision-recall curve; a confusion matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from pumptwin.twin.errors import PumptwinError

MONTH_S = 365.25 / 12.0 * 86_400.0
"""One month, s (a twelfth of a Julian year: 30.44 days)."""


class EvaluationError(PumptwinError, ValueError):
    """Invalid evaluation input; the message names the value."""


@dataclass(frozen=True, slots=True)
class PointScores:
    """Row-wise detection scores.

    Attributes:
        tp: Anomalous rows flagged.
        fp: Normal rows flagged.
        fn: Anomalous rows missed.
        tn: Normal rows not flagged.
        precision: ``tp / (tp + fp)`` (0 if nothing flagged).
        recall: ``tp / (tp + fn)`` (0 if nothing anomalous).
        f1: ``2 tp / (2 tp + fp + fn)`` (0 if both are 0).
    """

    tp: int
    fp: int
    fn: int
    tn: int
    precision: float
    recall: float
    f1: float


def _bool(values: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise EvaluationError(f"{name} must be 1-d, got shape {arr.shape}")
    if arr.dtype == bool:
        return arr
    if arr.dtype.kind not in "iuf" or not np.isin(arr, [0, 1]).all():
        raise EvaluationError(f"{name} must hold booleans or 0/1, got values such as {np.unique(arr)[:5].tolist()}")
    return arr.astype(bool)


def point_scores(y_true: ArrayLike, y_pred: ArrayLike) -> PointScores:
    """Precision, recall and F1 of row-wise alarms.

    Args:
        y_true: True anomaly flag per row (bool or 0/1).
        y_pred: Alarm per row (bool or 0/1).

    Returns:
        The counts and scores.

    Raises:
        EvaluationError: Lengths differ or values are not boolean.
    """
    t, p = _bool(y_true, "y_true"), _bool(y_pred, "y_pred")
    if t.shape != p.shape:
        raise EvaluationError(f"y_true has {t.size} rows, y_pred {p.size}")
    tp = int(np.sum(t & p))
    fp = int(np.sum(~t & p))
    fn = int(np.sum(t & ~p))
    tn = int(np.sum(~t & ~p))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    return PointScores(tp, fp, fn, tn, precision, recall, f1)


def _timestamps(ts: ArrayLike | pd.Series | pd.DatetimeIndex) -> pd.DatetimeIndex:
    index = pd.DatetimeIndex(pd.to_datetime(ts, utc=True))
    if index.hasnans:
        raise EvaluationError("timestamps must not be missing")
    if not index.is_monotonic_increasing:
        raise EvaluationError("timestamps must be in increasing order")
    return index


def alarm_episodes(
    ts: ArrayLike | pd.Series | pd.DatetimeIndex, alarm: ArrayLike, merge_gap_s: float = 0.0
) -> pd.DataFrame:
    """Alarm episodes of one asset: runs of alarming rows, close runs merged.

    Args:
        ts: Row timestamps in increasing order (UTC).
        alarm: Alarm per row (bool or 0/1).
        merge_gap_s: Runs whose gap (from the last alarming row of one to the first of the next)
            is at most this many seconds form one episode; 0 merges nothing.

    Returns:
        One row per episode: ``start`` and ``end`` (timestamps of its first and last alarming
        row) and ``rows`` (alarming rows in it).

    Raises:
        EvaluationError: Lengths differ, unordered timestamps or a negative gap.
    """
    index = _timestamps(ts)
    a = _bool(alarm, "alarm")
    if a.size != len(index):
        raise EvaluationError(f"{len(index)} timestamps for {a.size} alarms")
    if merge_gap_s < 0:
        raise EvaluationError(f"merge_gap_s={merge_gap_s} must be >= 0")
    padded = np.concatenate([[False], a, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    starts, stops = edges[::2], edges[1::2] - 1
    episodes: list[list[int]] = []
    for s, e in zip(starts, stops, strict=True):
        if episodes and (index[s] - index[episodes[-1][1]]).total_seconds() <= merge_gap_s:
            episodes[-1][1] = int(e)
            episodes[-1][2] += int(e - s + 1)
        else:
            episodes.append([int(s), int(e), int(e - s + 1)])
    return pd.DataFrame(
        {
            "start": pd.DatetimeIndex([index[s] for s, _, _ in episodes], tz="UTC"),
            "end": pd.DatetimeIndex([index[e] for _, e, _ in episodes], tz="UTC"),
            "rows": np.array([n for _, _, n in episodes], dtype=np.int64),
        }
    )


def false_alarms_per_asset_month(n_episodes: int, monitored_s: float) -> float:
    """Alarm episodes per asset-month.

    Args:
        n_episodes: Episodes counted on healthy assets.
        monitored_s: Total monitored time summed over those assets, s.

    Returns:
        Episodes per ``MONTH_S`` of one asset's monitoring.

    Raises:
        EvaluationError: A negative count or non-positive monitored time.
    """
    if n_episodes < 0 or not monitored_s > 0:
        raise EvaluationError(f"need n_episodes >= 0 and monitored_s > 0, got {n_episodes}, {monitored_s}")
    return n_episodes / (monitored_s / MONTH_S)


def first_alarm(
    ts: ArrayLike | pd.Series | pd.DatetimeIndex,
    alarm: ArrayLike,
    after: pd.Timestamp | None = None,
    *,
    new_only: bool = False,
) -> pd.Timestamp | None:
    """Time of the first alarming row at or after ``after``.

    Args:
        ts: Row timestamps in increasing order (UTC).
        alarm: Alarm per row.
        after: Earliest time counted (e.g. the fault onset); None counts every row.
        new_only: Count only alarms that begin at or after ``after``: the rows of an alarm that
            was already standing on the row before are skipped (a false alarm that happens to
            last into a fault is not a warning of it).

    Returns:
        The timestamp, or None if no row alarms.

    Raises:
        EvaluationError: Lengths differ or unordered timestamps.
    """
    index = _timestamps(ts)
    a = _bool(alarm, "alarm")
    if a.size != len(index):
        raise EvaluationError(f"{len(index)} timestamps for {a.size} alarms")
    if new_only:
        a = a & ~np.concatenate([[False], a[:-1]])
    if after is not None:
        a = a & (index >= pd.Timestamp(after))
    hits = np.flatnonzero(a)
    return None if hits.size == 0 else pd.Timestamp(index[hits[0]])


def lead_time_s(alarm_ts: pd.Timestamp | None, event_ts: pd.Timestamp | None) -> float:
    """How long an alarm came before an event, s (negative if after it).

    Args:
        alarm_ts: Time of the alarm, or None (no alarm).
        event_ts: Time of the event, or None (no event).

    Returns:
        ``event_ts - alarm_ts`` in s; NaN if either is missing.
    """
    if alarm_ts is None or event_ts is None or pd.isna(alarm_ts) or pd.isna(event_ts):
        return float("nan")
    return float((pd.Timestamp(event_ts) - pd.Timestamp(alarm_ts)).total_seconds())


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, labels: Sequence[str] | None = None) -> pd.DataFrame:
    """Counts of true (rows) against predicted (columns) classes.

    Args:
        y_true: True class per row.
        y_pred: Predicted class per row.
        labels: Class order; default the sorted union of both.

    Returns:
        Integer table indexed by true class, columns by predicted class.

    Raises:
        EvaluationError: Lengths differ.
    """
    t = np.asarray(y_true).astype(str)
    p = np.asarray(y_pred).astype(str)
    if t.shape != p.shape:
        raise EvaluationError(f"y_true has {t.size} rows, y_pred {p.size}")
    names = [str(x) for x in labels] if labels is not None else sorted(set(t.tolist()) | set(p.tolist()))
    pos = {name: i for i, name in enumerate(names)}
    counts = np.zeros((len(names), len(names)), dtype=np.int64)
    for a, b in zip(t, p, strict=True):
        if a in pos and b in pos:
            counts[pos[a], pos[b]] += 1
    return pd.DataFrame(counts, index=pd.Index(names, name="true"), columns=pd.Index(names, name="predicted"))


def interval_coverage(y: ArrayLike, low: ArrayLike, high: ArrayLike) -> float:
    """Share of true values inside their closed interval ``[low, high]``.

    Args:
        y: True values.
        low: Lower ends.
        high: Upper ends.

    Returns:
        The fraction covered, in [0, 1].

    Raises:
        EvaluationError: Lengths differ or no values.
    """
    y_a, lo, hi = (np.asarray(v, dtype=np.float64) for v in (y, low, high))
    if not (y_a.shape == lo.shape == hi.shape) or y_a.size == 0:
        raise EvaluationError(f"need non-empty arrays of one shape, got {y_a.shape}, {lo.shape}, {hi.shape}")
    return float(np.mean((y_a >= lo) & (y_a <= hi)))


# --------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------


def _pyplot():  # noqa: ANN202 - the matplotlib.pyplot module
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_score_timeline(
    ts: ArrayLike | pd.Series | pd.DatetimeIndex,
    score: ArrayLike,
    threshold: float,
    path: str | Path,
    *,
    onset: pd.Timestamp | None = None,
    failure: pd.Timestamp | None = None,
    title: str = "",
) -> Path:
    """Anomaly score over time with the alarm threshold, fault onset and functional failure.

    Args:
        ts: Row timestamps (UTC).
        score: Score per row (higher is more abnormal).
        threshold: Alarm threshold on the score.
        path: PNG file to write.
        onset: Fault onset, marked by a dashed line.
        failure: Functional failure, marked by a solid line.
        title: Plot title.

    Returns:
        The path written.

    Raises:
        EvaluationError: Lengths differ.
    """
    index = pd.DatetimeIndex(pd.to_datetime(ts, utc=True))
    s = np.asarray(score, dtype=np.float64)
    if s.shape != (len(index),):
        raise EvaluationError(f"{len(index)} timestamps for score of shape {s.shape}")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.5))
    try:
        ax.plot(index, s, lw=0.8, color="tab:blue", label="score")
        ax.axhline(threshold, color="tab:red", lw=1.0, ls=":", label="threshold")
        above = s > threshold
        if above.any():
            ax.scatter(index[above], s[above], s=4, color="tab:red", zorder=3, label="alarm")
        if onset is not None:
            ax.axvline(pd.Timestamp(onset), color="tab:orange", ls="--", lw=1.0, label="fault onset")
        if failure is not None:
            ax.axvline(pd.Timestamp(failure), color="black", lw=1.2, label="functional failure")
        ax.set_xlabel("time (UTC)")
        ax.set_ylabel("score")
        ax.set_title(title)
        ax.legend(loc="upper left", fontsize=8)
        fig.autofmt_xdate()
        fig.tight_layout()
        return _save(fig, path)
    finally:
        plt.close(fig)


def plot_precision_recall(y_true: ArrayLike, score: ArrayLike, path: str | Path, *, title: str = "") -> Path:
    """Precision-recall curve of a score against true anomaly flags, with its average precision.

    Args:
        y_true: True anomaly flag per row.
        score: Score per row (higher is more abnormal).
        path: PNG file to write.
        title: Plot title.

    Returns:
        The path written.

    Raises:
        EvaluationError: Lengths differ, or no anomalous row.
    """
    from sklearn.metrics import average_precision_score, precision_recall_curve

    t = _bool(y_true, "y_true")
    s = np.asarray(score, dtype=np.float64)
    if s.shape != t.shape:
        raise EvaluationError(f"y_true has {t.size} rows, score {s.size}")
    if not t.any():
        raise EvaluationError("a precision-recall curve needs at least one anomalous row")
    precision, recall, _ = precision_recall_curve(t, s)
    ap = average_precision_score(t, s)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4))
    try:
        ax.step(recall, precision, where="post", color="tab:blue", label=f"AP = {ap:.3f}")
        ax.axhline(t.mean(), color="grey", ls=":", lw=1.0, label="chance")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_title(title)
        ax.legend(loc="lower left", fontsize=8)
        fig.tight_layout()
        return _save(fig, path)
    finally:
        plt.close(fig)


def plot_confusion_matrix(matrix: pd.DataFrame, path: str | Path, *, title: str = "") -> Path:
    """Confusion matrix as a heat map with counts, rows normalised for the colour.

    Args:
        matrix: Table from `confusion_matrix` (rows true, columns predicted).
        path: PNG file to write.
        title: Plot title.

    Returns:
        The path written.

    Raises:
        EvaluationError: Not a square table.
    """
    counts = np.asarray(matrix, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:  # noqa: PLR2004 - a matrix
        raise EvaluationError(f"confusion matrix must be square, got shape {counts.shape}")
    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    plt = _pyplot()
    n = counts.shape[0]
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * n, 0.8 + 0.7 * n))
    try:
        ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
        for i in range(n):
            for j in range(n):
                ax.text(
                    j,
                    i,
                    f"{int(counts[i, j])}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if share[i, j] > 0.5 else "black",  # noqa: PLR2004 - contrast
                )
        ax.set_xticks(range(n), [str(c) for c in matrix.columns], rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(n), [str(c) for c in matrix.index], fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title)
        fig.tight_layout()
        return _save(fig, path)
    finally:
        plt.close(fig)


def _save(fig: object, path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=100)  # type: ignore[attr-defined]
    return out
