"""SKAB's evaluation protocol: loading, the per-file train split, point-wise and NAB scoring.

The Skoltech Anomaly Benchmark (github.com/waico/SKAB) records a water-circulation testbed with
a centrifugal pump at about 1 Hz. Its protocol, as implemented here:

- every labelled ``*.csv`` in the folders under the data root (not ``anomaly-free``); per file the
  first ``TRAIN_ROWS`` (400) rows train a detector and the remaining rows are scored;
- outlier detection, point-wise, with counts summed over all files:
  ``F1 = TP / (TP + (FP + FN) / 2)``, ``FAR = 100 FP / (FP + TN)``, ``MAR = 100 FN / (FN + TP)``;
- changepoint detection with NAB scoring: predicted changepoints are ``|diff(prediction)|`` with
  the first point equal to the first prediction; a 60 s window starts at every true changepoint
  (where it overlaps the next one, the next starts where this one ends); only the first predicted
  changepoint in a window scores, on a scaled sigmoid from ``A_tp`` at the window start to
  ``A_fp`` at its end; every predicted changepoint outside all windows scores ``A_fp``; every
  empty window scores ``A_fn``; ``score = 100 (S - null) / (perfect - null)`` over all files.

Choosing a detector setting among a few: `leave_one_group_out` scores each group (folder) with the
setting `select_setting` picks on the other groups (the best NAB standard score with FAR <= 10 %)
and pools the held-out figures; `select_in_sample` picks on every file and scores the same files,
an optimistic figure. `missed_targets` checks figures against `TARGETS`.

Reading the data is the caller's choice of folder; nothing happens at import.

Example:
    >>> files = load_skab(Path("../shared/datasets/skab"))  # doctest: +SKIP
    >>> f = files[0]
    >>> f.train.shape, f.test.columns[-2:].tolist()  # doctest: +SKIP
    ((400, 8), ['anomaly', 'changepoint'])
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

TRAIN_ROWS = 400
"""Rows at the start of every file that train the detector; the rest are scored."""

WINDOW_S = 60.0
"""Width of a NAB window, in s, starting at each true changepoint."""

FEATURES: tuple[str, ...] = (
    "Accelerometer1RMS",
    "Accelerometer2RMS",
    "Current",
    "Pressure",
    "Temperature",
    "Thermocouple",
    "Voltage",
    "Volume Flow RateRMS",
)
"""Sensor columns of every SKAB file (accelerations in g, current in A, pressure in bar,
temperatures in degC, voltage in V, flow in L/min)."""

LABELS: tuple[str, str] = ("anomaly", "changepoint")

ANOMALY_FREE = "anomaly-free"


@dataclass(frozen=True, slots=True)
class NabProfile:
    """Weights of one NAB application profile: reward of a true positive, cost of FP and FN."""

    name: str
    a_tp: float
    a_fp: float
    a_fn: float


NAB_PROFILES: tuple[NabProfile, ...] = (
    NabProfile("standard", 1.0, -0.11, -1.0),
    NabProfile("low_fp", 1.0, -0.22, -1.0),
    NabProfile("low_fn", 1.0, -0.11, -2.0),
)
"""SKAB's three profiles: standard, LowFP and LowFN."""


@dataclass(frozen=True, slots=True)
class SkabFile:
    """One labelled SKAB file split by the protocol.

    Attributes:
        name: Path relative to the data root, such as ``valve1/0.csv``.
        train: The first ``TRAIN_ROWS`` rows, sensor columns only, indexed by datetime.
        test: The remaining rows, sensor columns plus ``anomaly`` and ``changepoint`` (0/1 int).
    """

    name: str
    train: pd.DataFrame
    test: pd.DataFrame


@dataclass(frozen=True, slots=True)
class PointScores:
    """Point-wise outlier-detection figures summed over files (FAR and MAR in %)."""

    tp: int
    fp: int
    fn: int
    tn: int
    f1: float
    far_pct: float
    mar_pct: float


def read_skab_csv(path: Path) -> pd.DataFrame:
    """Read one SKAB file (``;``-separated, ``.`` decimal) indexed by its ``datetime`` column.

    Args:
        path: The ``.csv`` file.

    Returns:
        The sensor columns as float and, where present, ``anomaly`` and ``changepoint`` as int.
    """
    df = pd.read_csv(path, sep=";", parse_dates=["datetime"], index_col="datetime")
    for col in LABELS:
        if col in df.columns:
            df[col] = df[col].fillna(0).astype(int)
    return df


def labelled_files(root: Path) -> list[Path]:
    """Every labelled file in the folders under ``root`` (not ``anomaly-free``), in a stable order.

    Files sort by folder, then numerically by stem where the stem is a number.

    Args:
        root: The SKAB ``data`` folder.

    Returns:
        The paths.

    Raises:
        FileNotFoundError: When ``root`` holds no labelled file.
    """

    def key(p: Path) -> tuple[str, int, str]:
        return (p.parent.name, int(p.stem) if p.stem.isdigit() else -1, p.stem)

    paths = sorted(
        (p for p in root.glob("*/*.csv") if p.parent.name != ANOMALY_FREE),
        key=key,
    )
    if not paths:
        raise FileNotFoundError(f"no labelled SKAB file in the folders under {root}")
    return paths


def split_file(df: pd.DataFrame, name: str, train_rows: int = TRAIN_ROWS) -> SkabFile:
    """Split one file by the protocol: the first ``train_rows`` train, the rest are scored.

    Args:
        df: A file as read by `read_skab_csv`.
        name: Its name in reports.
        train_rows: Training rows at the start of the file.

    Returns:
        The split file.

    Raises:
        ValueError: When the file has no row left to score or lacks a label column.
    """
    missing = [c for c in LABELS if c not in df.columns]
    if missing:
        raise ValueError(f"{name}: missing label columns {missing}")
    if len(df) <= train_rows:
        raise ValueError(f"{name}: {len(df)} rows, none left after {train_rows} training rows")
    features = [c for c in df.columns if c not in LABELS]
    return SkabFile(name=name, train=df.iloc[:train_rows][features], test=df.iloc[train_rows:])


def load_skab(root: Path, train_rows: int = TRAIN_ROWS) -> list[SkabFile]:
    """Load and split every labelled file under ``root``.

    Args:
        root: The SKAB ``data`` folder (holding ``valve1/``, ``valve2/``, ...).
        train_rows: Training rows at the start of each file.

    Returns:
        One `SkabFile` per labelled file, named relative to ``root``.
    """
    return [split_file(read_skab_csv(p), p.relative_to(root).as_posix(), train_rows) for p in labelled_files(root)]


def changepoints_from_prediction(prediction: np.ndarray) -> np.ndarray:
    """Predicted changepoints: ``|diff(prediction)|``, with the first point equal to the first prediction.

    Args:
        prediction: Binary outlier predictions (0/1) of one file's scored rows.

    Returns:
        0/1 int array of the same length.
    """
    p = np.asarray(prediction, dtype=int)
    if p.size == 0:
        return p
    return np.concatenate([p[:1], np.abs(np.diff(p))])


def point_scores(true: Sequence[np.ndarray], predicted: Sequence[np.ndarray]) -> PointScores:
    """Point-wise F1, FAR and MAR with the confusion counts summed over files.

    Args:
        true: Per file, the true 0/1 anomaly labels.
        predicted: Per file, the 0/1 predictions, aligned with ``true``.

    Returns:
        The counts and figures (FAR and MAR in %; a figure with a zero denominator is 0).

    Raises:
        ValueError: When the lists or a pair of arrays differ in length.
    """
    if len(true) != len(predicted):
        raise ValueError("true and predicted must list the same files")
    tp = fp = fn = tn = 0
    for t, p in zip(true, predicted, strict=True):
        t_b, p_b = np.asarray(t).astype(bool), np.asarray(p).astype(bool)
        if t_b.shape != p_b.shape:
            raise ValueError(f"labels {t_b.shape} and predictions {p_b.shape} differ in shape")
        tp += int(np.sum(t_b & p_b))
        fp += int(np.sum(~t_b & p_b))
        fn += int(np.sum(t_b & ~p_b))
        tn += int(np.sum(~t_b & ~p_b))
    f1_den = tp + (fp + fn) / 2
    return PointScores(
        tp=tp,
        fp=fp,
        fn=fn,
        tn=tn,
        f1=tp / f1_den if f1_den else 0.0,
        far_pct=100.0 * fp / (fp + tn) if fp + tn else 0.0,
        mar_pct=100.0 * fn / (fn + tp) if fn + tp else 0.0,
    )


def nab_windows(true_cp_s: np.ndarray, window_s: float = WINDOW_S) -> list[tuple[float, float]]:
    """NAB windows of one file: ``window_s`` from each true changepoint, later windows cut by earlier ones.

    Where a window overlaps the next, the next starts where this one ends (its end is unchanged).

    Args:
        true_cp_s: Times of the true changepoints, in s, ascending.
        window_s: Window width, in s.

    Returns:
        ``(start_s, end_s)`` per true changepoint.
    """
    windows: list[tuple[float, float]] = []
    for t in np.sort(np.asarray(true_cp_s, dtype=float)):
        start, end = float(t), float(t) + window_s
        if windows and start < windows[-1][1]:
            start = min(windows[-1][1], end)
        windows.append((start, end))
    return windows


def nab_sigmoid(a_tp: float, a_fp: float, n: int = 1000) -> np.ndarray:
    """The scaled sigmoid that scores a detection across a window: ``A_tp`` at the start, ``A_fp`` at the end.

    Args:
        a_tp: Reward of a detection at the window start.
        a_fp: Score at the window end.
        n: Samples.

    Returns:
        ``y = (A_tp - A_fp)/2 * (-tanh(x)/tanh(pi/2)) + (A_tp - A_fp)/2 + A_fp`` over
        ``x = linspace(-pi/2, pi/2, n)``.
    """
    x = np.linspace(-math.pi / 2, math.pi / 2, n)
    half = (a_tp - a_fp) / 2
    return half * (-np.tanh(x) / math.tanh(math.pi / 2)) + half + a_fp


@dataclass(frozen=True, slots=True)
class NabCounts:
    """Raw NAB sums of one or more files: ``score`` (S), ``windows`` and the detections in them."""

    score: float
    windows: int
    detected: int
    outside: int


def nab_file(
    true_cp_s: np.ndarray,
    pred_cp_s: np.ndarray,
    profile: NabProfile,
    window_s: float = WINDOW_S,
) -> NabCounts:
    """Raw NAB score S of one file for one profile.

    A predicted changepoint belongs to the first window with ``start <= t <= end``; only the first
    one in a window scores ``y[min(int(1000 (t - start) / (end - start)), 999)]``, the others in that
    window score nothing; each one outside every window scores ``A_fp``; each empty window ``A_fn``.

    Args:
        true_cp_s: Times of true changepoints, in s.
        pred_cp_s: Times of predicted changepoints, in s.
        profile: The NAB weights.
        window_s: Window width, in s.

    Returns:
        The sums for this file.
    """
    windows = nab_windows(true_cp_s, window_s)
    y = nab_sigmoid(profile.a_tp, profile.a_fp)
    first: list[float | None] = [None] * len(windows)
    outside = 0
    for t in np.sort(np.asarray(pred_cp_s, dtype=float)):
        for i, (start, end) in enumerate(windows):
            if start <= t <= end:
                if first[i] is None:
                    first[i] = float(t)
                break
        else:
            outside += 1
    score = outside * profile.a_fp
    detected = 0
    for (start, end), t_first in zip(windows, first, strict=True):
        if t_first is None:
            score += profile.a_fn
            continue
        detected += 1
        width = end - start
        pos = int(1000 * (t_first - start) / width) if width > 0 else 0
        score += float(y[min(pos, 999)])
    return NabCounts(score=score, windows=len(windows), detected=detected, outside=outside)


def nab_score(
    true_cp_s: Sequence[np.ndarray],
    pred_cp_s: Sequence[np.ndarray],
    profile: NabProfile,
    window_s: float = WINDOW_S,
) -> float:
    """Normalised NAB score over files: ``100 (S - null) / (perfect - null)``.

    ``null = windows x A_fn`` and ``perfect = windows x A_tp``, with S and the windows summed over files.

    Args:
        true_cp_s: Per file, times of the true changepoints, in s.
        pred_cp_s: Per file, times of the predicted changepoints, in s.
        profile: The NAB weights.
        window_s: Window width, in s.

    Returns:
        The score: 100 is perfect, 0 is a detector that never fires.

    Raises:
        ValueError: When the lists differ in length or no file holds a true changepoint.
    """
    if len(true_cp_s) != len(pred_cp_s):
        raise ValueError("true and predicted changepoints must list the same files")
    total, windows = 0.0, 0
    for t, p in zip(true_cp_s, pred_cp_s, strict=True):
        counts = nab_file(t, p, profile, window_s)
        total += counts.score
        windows += counts.windows
    if windows == 0:
        raise ValueError("no true changepoint: the NAB score is undefined")
    null, perfect = windows * profile.a_fn, windows * profile.a_tp
    return 100.0 * (total - null) / (perfect - null)


def seconds(index: pd.Index) -> np.ndarray:
    """Times of a datetime index, in s since the epoch, as float."""
    dt = pd.DatetimeIndex(index)
    return np.asarray((dt - pd.Timestamp(0)).total_seconds(), dtype=float)


@dataclass(frozen=True, slots=True)
class SkabResult:
    """Figures of one run of the protocol: point-wise scores and NAB per profile name."""

    points: PointScores
    nab: dict[str, float]


def score_predictions(files: Sequence[SkabFile], predictions: Sequence[np.ndarray]) -> SkabResult:
    """Score per-file binary predictions of the scored rows with every SKAB figure.

    Args:
        files: The split files.
        predictions: Per file, 0/1 predictions for each row of ``file.test``.

    Returns:
        F1, FAR, MAR and the NAB score of each profile in `NAB_PROFILES`.
    """
    true = [f.test["anomaly"].to_numpy() for f in files]
    point = point_scores(true, predictions)
    true_cp = [seconds(f.test.index[f.test["changepoint"].to_numpy() == 1]) for f in files]
    pred_cp = [
        seconds(f.test.index[changepoints_from_prediction(p) == 1]) for f, p in zip(files, predictions, strict=True)
    ]
    nab = {prof.name: nab_score(true_cp, pred_cp, prof) for prof in NAB_PROFILES}
    return SkabResult(points=point, nab=nab)


def prediction_table(files: Sequence[SkabFile], predictions: Sequence[np.ndarray]) -> pd.DataFrame:
    """Every scored row's prediction, for independent scoring.

    Args:
        files: The split files.
        predictions: Per file, 0/1 predictions of ``file.test``.

    Returns:
        Columns ``file, datetime, anomaly, changepoint`` (predicted, 0/1 int).
    """
    parts = [
        pd.DataFrame(
            {
                "file": f.name,
                "datetime": f.test.index,
                "anomaly": np.asarray(p, dtype=int),
                "changepoint": changepoints_from_prediction(p),
            }
        )
        for f, p in zip(files, predictions, strict=True)
    ]
    return pd.concat(parts, ignore_index=True)


@dataclass(frozen=True, slots=True)
class Targets:
    """SKAB targets: point-wise F1 at a bounded false-alarm rate, and the standard NAB score."""

    f1: float = 0.85
    far_pct: float = 10.0
    nab_standard: float = 35.0


TARGETS = Targets()
"""F1 >= 0.85 with FAR <= 10 %, NAB (standard) >= 35."""

MIN_GROUPS = 2
"""Fewest groups (folders) leave-one-group-out selection needs: one held out, one to choose on."""


def missed_targets(result: SkabResult, targets: Targets = TARGETS) -> list[str]:
    """The targets a result misses, each as a short sentence.

    Args:
        result: Scored figures.
        targets: The targets.

    Returns:
        One line per missed target; empty when every target is met.
    """
    p, nab = result.points, result.nab["standard"]
    missed = []
    if p.f1 < targets.f1:
        missed.append(f"F1 {p.f1:.3f} < {targets.f1:.2f}")
    if p.far_pct > targets.far_pct:
        missed.append(f"FAR {p.far_pct:.2f} % > {targets.far_pct:.0f} %")
    if nab < targets.nab_standard:
        missed.append(f"NAB standard {nab:.2f} < {targets.nab_standard:.0f}")
    return missed


def group_of(name: str) -> str:
    """The group (folder) of a file name relative to the data root, such as ``valve1`` of ``valve1/0.csv``."""
    return name.split("/", 1)[0]


def select_setting(results: Mapping[str, SkabResult], max_far_pct: float = TARGETS.far_pct) -> str:
    """The fixed selection rule: the best NAB standard score among settings with FAR <= ``max_far_pct``.

    Ties go to the higher F1, then to the setting listed first. When no setting keeps the FAR
    bound, the one with the lowest FAR is chosen (ties again by NAB, F1, order).

    Args:
        results: Figures of each setting on the selection files, in a stable order.
        max_far_pct: Bound on the point-wise false-alarm rate, in %.

    Returns:
        The chosen setting's name.

    Raises:
        ValueError: When ``results`` is empty.
    """
    if not results:
        raise ValueError("select_setting needs at least one setting")
    names = list(results)

    def rank(name: str) -> tuple[float, float, float, int]:
        r = results[name]
        within = r.points.far_pct <= max_far_pct
        far_key = 0.0 if within else -r.points.far_pct
        return (far_key, r.nab["standard"], r.points.f1, -names.index(name))

    return max(names, key=rank)


@dataclass(frozen=True, slots=True)
class LogoFold:
    """One fold of leave-one-group-out selection.

    Attributes:
        held_out: The group scored in this fold.
        chosen: The setting chosen on the other groups.
        selection: The chosen setting's figures on the other groups.
        held_out_result: Its figures on the held-out group.
    """

    held_out: str
    chosen: str
    selection: SkabResult
    held_out_result: SkabResult


@dataclass(frozen=True, slots=True)
class LogoResult:
    """Leave-one-group-out selection: the folds and the held-out predictions pooled over them.

    Attributes:
        folds: One per group, in group order.
        pooled: Figures of every file scored with the setting chosen without its group.
        predictions: Per file (in the order given), the held-out predictions behind ``pooled``.
    """

    folds: tuple[LogoFold, ...]
    pooled: SkabResult
    predictions: tuple[np.ndarray, ...]


def _score_subset(files: Sequence[SkabFile], predictions: Sequence[np.ndarray], keep: Sequence[int]) -> SkabResult:
    return score_predictions([files[i] for i in keep], [predictions[i] for i in keep])


def select_in_sample(
    files: Sequence[SkabFile],
    predictions: Mapping[str, Sequence[np.ndarray]],
    max_far_pct: float = TARGETS.far_pct,
) -> tuple[str, SkabResult]:
    """Choose a setting on every file and score it on the same files (an optimistic figure).

    Args:
        files: The split files.
        predictions: Per setting, per file, 0/1 predictions of the scored rows.
        max_far_pct: FAR bound of `select_setting`, in %.

    Returns:
        The chosen setting and its figures.
    """
    results = {name: score_predictions(files, preds) for name, preds in predictions.items()}
    chosen = select_setting(results, max_far_pct)
    return chosen, results[chosen]


def leave_one_group_out(
    files: Sequence[SkabFile],
    predictions: Mapping[str, Sequence[np.ndarray]],
    max_far_pct: float = TARGETS.far_pct,
) -> LogoResult:
    """Choose the setting by leave-one-group-out: each group is scored with the setting chosen on the others.

    The detector trains on each file's own first rows, so a file's predictions under a setting do
    not depend on the other files and are computed once per setting; only the choice of setting
    moves between folds. Groups are the folders of the file names (`group_of`).

    Args:
        files: The split files.
        predictions: Per setting, per file, 0/1 predictions of the scored rows.
        max_far_pct: FAR bound of `select_setting`, in %.

    Returns:
        The folds and the held-out figures pooled over every file.

    Raises:
        ValueError: With fewer than two groups, or predictions not listing every file.
    """
    groups = sorted({group_of(f.name) for f in files})
    if len(groups) < MIN_GROUPS:
        raise ValueError(f"leave-one-group-out needs at least two groups (folders); found {groups}")
    for name, preds in predictions.items():
        if len(preds) != len(files):
            raise ValueError(f"setting {name!r}: {len(preds)} predictions for {len(files)} files")
    member = [group_of(f.name) for f in files]
    held: list[np.ndarray | None] = [None] * len(files)
    folds = []
    for group in groups:
        inside = [i for i, g in enumerate(member) if g == group]
        others = [i for i, g in enumerate(member) if g != group]
        results = {name: _score_subset(files, preds, others) for name, preds in predictions.items()}
        chosen = select_setting(results, max_far_pct)
        for i in inside:
            held[i] = np.asarray(predictions[chosen][i])
        folds.append(
            LogoFold(
                held_out=group,
                chosen=chosen,
                selection=results[chosen],
                held_out_result=_score_subset(files, predictions[chosen], inside),
            )
        )
    pooled_predictions = tuple(p for p in held if p is not None)
    return LogoResult(
        folds=tuple(folds), pooled=score_predictions(files, pooled_predictions), predictions=pooled_predictions
    )
