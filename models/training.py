"""Training and evaluation of the three model families on a labelled fleet feature frame.

A labelled frame is a point-in-time-correct training set (`features.store.training_set`) with the
labels of `features.labels.pump_labels`: keys ``pump_id``, ``event_timestamp``, feature columns,
``anomaly`` (0/1), ``mode`` (``healthy`` or a failure mode), ``ttf_s`` and ``failed``.

The frame is split in time (`time_split`): the models learn from the training window and are
judged on the later held-out window, the way they will be used. Each family returns a
`FamilyResult` with the fitted model, its parameters, held-out metrics, plots, an input example
and an ``evaluate`` function that scores any model of the family on the same held-out window;
the promotion gate (`models.registry.promote_if_better`) runs it on the challenger and on the
champion so both are judged on identical data.

- ``anomaly``: `models.fleet.FleetDetector` over the production pump detector of
  `models.monitoring` (a CUSUM on drift-aware, tolerance-scaled physics inputs, optionally with
  the convolutional autoencoder, in a `models.ensemble.CalibratedEnsemble`), trained per pump on
  a baseline chosen without fault labels, as a field team would (`baseline_mask`: the first week
  after commissioning or after the last repair, less the day the 24 h windows fill, robustly
  trimmed), and calibrated
  to ``target_far``; the same detector the early-warning benchmark measures. The labels only judge
  it. Gate metric: point F1 of the persistent alarms on the held-out rows.
- ``diagnosis``: `models.diagnosis.FailureModeClassifier` on every feature. Gate metric: macro F1
  over the classes of the held-out window.
- ``ttf``: `models.ttf.TimeToFailureRegressor` on rows of developing faults. Gate metric: median
  absolute error in hours (lower is better).

Nothing here reads settings or talks to MLflow: flows pass a `TrainConfig` in and hand the results
to `models.registry`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from pumptwin.models.evaluation import (
    MONTH_S,
    alarm_episodes,
    confusion_matrix,
    interval_coverage,
    plot_confusion_matrix,
    plot_precision_recall,
    plot_score_timeline,
    point_scores,
)
from pumptwin.models.monitoring import SOURCE_FEATURES
from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.safety import child_path
from pumptwin.twin.units import HOUR_S

if TYPE_CHECKING:
    from pumptwin.models.fleet import FleetDetector
    from pumptwin.models.monitoring import MonitorConfig

KEYS = ("pump_id", "event_timestamp")
LABELS = ("anomaly", "mode", "ttf_s", "failed")
HEALTHY = "healthy"

ANOMALY_FEATURES = SOURCE_FEATURES
"""`pump_features` columns the pump detector reads (`models.monitoring`)."""
"""Feature columns the anomaly detector reads (`models.monitoring.SOURCE_FEATURES`)."""
RUNNING_COLUMN = "running_frac_1h"
MERGE_GAP_S = 6 * HOUR_S
"""Alarm runs closer than this are one episode when counting false alarms."""


class TrainingError(PumptwinError, ValueError):
    """The labelled frame cannot train a family (missing columns, too few rows); names the cause."""


@dataclass(frozen=True)
class TrainConfig:
    """Training settings (the flows build it from the settings object).

    Attributes:
        target_far: Row-wise false-alarm rate the anomaly threshold is calibrated to.
        min_run: Rows an anomaly must persist to alarm.
        seed: Seed of every model.
        train_fraction: Share of the frame's time span used for training.
        warmup_s: Rows this soon after a pump's first feature row are not trained on: their
            long-window (24 h) statistics are still filling, s.
        baseline_s: Length of each pump's healthy baseline window for the anomaly detector,
            after the warm-up that follows commissioning or the last repair (`baseline_mask`), s;
            with the day of warm-up, the pump's first week.
        trim: Baseline rows with a detector input further than this many scale units
            (``max(1.4826 MAD, tolerance)``) from the window's median are left out.
        autoencoder: Add the PyTorch autoencoder to the pump detector as a second member
            (`models.monitoring.build_pump_detector`). Off by default: in
            ``benchmarks.early_warning --autoencoder`` (on the design seeds) it raised false
            alarms on healthy runs from 0 to about 3 per asset-month.
        max_threshold_raise: Largest factor a pump's alarm threshold is raised by so that rows
            a person confirmed healthy (rejected false alarms) stop alarming
            (`models.fleet.FleetDetector.accept_healthy`); 1 learns nothing from them.
        confirmed_weight: Weight of a row a person confirmed healthy in the diagnosis model's
            training, against 1 for the others (`train_diagnosis`).
    """

    target_far: float = 0.005
    min_run: int = 6
    seed: int = 7
    train_fraction: float = 0.6
    autoencoder: bool = False
    warmup_s: float = 86_400.0
    baseline_s: float = 6 * 86_400.0
    trim: float = 6.0
    max_threshold_raise: float = 2.0
    confirmed_weight: float = 5.0


@dataclass(frozen=True)
class TimeSplit:
    """Training window [train_start, train_end) and held-out window [heldout_start, heldout_end]."""

    train_start: pd.Timestamp
    train_end: pd.Timestamp
    heldout_start: pd.Timestamp
    heldout_end: pd.Timestamp

    @property
    def window(self) -> str:
        """The held-out window as text, the key under which gate decisions are compared."""
        return f"{self.heldout_start.isoformat()}/{self.heldout_end.isoformat()}"


@dataclass
class FamilyResult:
    """A trained family: the model, what it was trained with, and how it did on the held-out window.

    Attributes:
        family: ``anomaly``, ``diagnosis`` or ``ttf``.
        model: The fitted estimator.
        params: Parameters to log.
        metrics: Held-out metrics.
        plots: Plot name -> PNG path.
        input_example: A few input rows (the model's signature is inferred from them).
        gate_metric: Name of the metric the promotion gate compares.
        higher_is_better: Direction of the gate metric.
        evaluate: Scores any model of this family on the held-out window (the gate metric).
        train_rows: Rows the model learnt from.
        heldout_rows: Rows it was judged on.
    """

    family: str
    model: BaseEstimator
    params: dict[str, Any]
    metrics: dict[str, float]
    plots: dict[str, Path]
    input_example: pd.DataFrame
    gate_metric: str
    higher_is_better: bool
    evaluate: Callable[[Any], float]
    train_rows: int
    heldout_rows: int
    notes: list[str] = field(default_factory=list)


def check_labelled(frame: pd.DataFrame) -> None:
    """Raise `TrainingError` unless ``frame`` has the keys and labels of a labelled feature frame."""
    missing = [c for c in (*KEYS, *LABELS) if c not in frame.columns]
    if missing:
        raise TrainingError(f"labelled frame lacks column(s) {missing}")
    if frame.empty:
        raise TrainingError("labelled frame is empty")


def time_split(ts: pd.Series, train_fraction: float) -> TimeSplit:
    """Split the time span of ``ts`` at ``train_fraction`` of its length.

    Raises:
        TrainingError: ``train_fraction`` outside (0, 1) or fewer than two distinct times.
    """
    if not 0 < train_fraction < 1:
        raise TrainingError(f"train_fraction={train_fraction} must lie in (0, 1)")
    first, last = ts.min(), ts.max()
    if pd.isna(first) or first == last:
        raise TrainingError("the frame spans a single instant: nothing to split into train and held-out windows")
    cut = first + (last - first) * train_fraction
    return TimeSplit(first, cut, cut, last)


def _train_part(frame: pd.DataFrame, split: TimeSplit) -> pd.DataFrame:
    return frame[frame["event_timestamp"] < split.train_end]


def _heldout_part(frame: pd.DataFrame, split: TimeSplit) -> pd.DataFrame:
    return frame[frame["event_timestamp"] >= split.heldout_start]


def _example(frame: pd.DataFrame, columns: Sequence[str], n: int = 5) -> pd.DataFrame:
    return frame[list(columns)].head(n).reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Anomaly detection
# --------------------------------------------------------------------------------------------


def monitor_config(config: TrainConfig) -> MonitorConfig:
    """The pump detector's settings from the training settings."""
    from pumptwin.models.monitoring import MonitorConfig

    return MonitorConfig(
        target_far=config.target_far, min_run=config.min_run, autoencoder=config.autoencoder, seed=config.seed
    )


def anomaly_template(config: TrainConfig) -> BaseEstimator:
    """The pump detector each pump's model is cloned from (`models.monitoring.build_pump_detector`).

    With ``config.autoencoder`` the convolutional autoencoder joins the drift-aware CUSUM as a
    second member of the calibrated ensemble (either may alarm).
    """
    from pumptwin.models.monitoring import build_pump_detector

    return build_pump_detector(monitor_config(config))


def anomaly_detector(config: TrainConfig) -> FleetDetector:
    """The unfitted fleet anomaly detector: per-pump clones of `anomaly_template` on the monitoring inputs."""
    from pumptwin.models.fleet import FleetDetector
    from pumptwin.models.monitoring import DETECTOR_COLUMNS, add_detector_inputs

    return FleetDetector(
        anomaly_template(config), DETECTOR_COLUMNS, running_column=RUNNING_COLUMN, inputs=add_detector_inputs
    )


def baseline_mask(
    frame: pd.DataFrame,
    baseline_s: float,
    warmup_s: float,
    restarts: pd.DataFrame | None = None,
    trim: float = 6.0,
) -> np.ndarray:
    """Rows a pump's healthy baseline is learnt from, chosen without fault labels.

    As a field team would: per pump, its current life starts at its first feature row
    (commissioning) or at its latest repair or replacement in ``restarts`` that lies within the
    frame; the baseline is the rows from ``warmup_s`` (the long windows filling) to
    ``warmup_s + baseline_s`` after that start. The window is then robustly trimmed: a row with a
    detector input (`models.monitoring.detector_inputs`) further than ``trim`` scale units
    (``max(1.4826 MAD, tolerance)``) from the pump's window median is left out (a transient, a
    stuck or spiking instrument).

    Args:
        frame: Feature rows of any pumps (``pump_id``, ``event_timestamp``, the monitoring source
            features and `RUNNING_COLUMN`).
        baseline_s: Length of the baseline window, s.
        warmup_s: Rows this soon after the start are skipped, s.
        restarts: ``pump_id, ts`` of repairs and replacements, or None.
        trim: Scale units beyond which a row is trimmed (inf keeps every row).

    Returns:
        Bool array aligned with ``frame``'s rows.

    Raises:
        TrainingError: A non-positive ``baseline_s``, a negative ``warmup_s`` or a non-positive ``trim``.
    """
    from pumptwin.models.monitoring import INPUTS, MAD_TO_STD, detector_inputs

    if not baseline_s > 0 or warmup_s < 0 or not trim > 0:
        raise TrainingError(f"need baseline_s > 0, warmup_s >= 0 and trim > 0; got {baseline_s}, {warmup_s}, {trim}")
    if frame.empty:
        return np.zeros(0, dtype=bool)
    ts = pd.to_datetime(frame["event_timestamp"], utc=True)
    pump = frame["pump_id"].astype(str)
    start = ts.groupby(pump).transform("min")
    if restarts is not None and len(restarts):
        r = pd.DataFrame({"pump_id": restarts["pump_id"].astype(str), "ts": pd.to_datetime(restarts["ts"], utc=True)})
        r = r[r["ts"] <= ts.max()]
        latest = r.groupby("pump_id")["ts"].max()
        restart = pump.map(latest)
        start = pd.Series(np.where(restart.notna() & (restart > start), restart, start), index=frame.index)
        start = pd.to_datetime(start, utc=True)
    since_s = (ts - start).dt.total_seconds().to_numpy()
    window = (since_s >= warmup_s) & (since_s < warmup_s + baseline_s)
    if not np.isfinite(trim):
        return np.asarray(window, dtype=bool)
    inputs = detector_inputs(frame)[list(INPUTS)].to_numpy(dtype=float)
    tolerance = np.array([s.tolerance for s in INPUTS.values()])
    keep = window.copy()
    for name in pump[window].unique():
        rows = np.flatnonzero(window & (pump.to_numpy() == name))
        x = inputs[rows]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an input without a value in the window
            median = np.nanmedian(x, axis=0)
            mad = np.nanmedian(np.abs(x - median), axis=0)
        scale = np.maximum(MAD_TO_STD * np.nan_to_num(mad), tolerance)
        with np.errstate(invalid="ignore"):
            far = np.abs(x - median) > trim * scale  # NaN inputs (no sister running) are not outliers
        keep[rows[far.any(axis=1)]] = False
    return keep


def anomaly_metrics(scored: pd.DataFrame, labels: pd.DataFrame) -> dict[str, float]:
    """Held-out metrics of fleet alarms against the labels.

    Args:
        scored: `models.fleet.FleetDetector.score` output for the held-out rows.
        labels: The same rows' ``anomaly`` and ``failed`` labels (same order).

    Returns:
        ``f1``, ``precision``, ``recall`` (point-wise over scored rows that are not past
        failure), ``false_alarms_per_asset_month`` (alarm episodes on rows with no fault
        developing), ``monitored_asset_months`` and ``scored_rows``.
    """
    ok = scored["score"].notna().to_numpy() & ~labels["failed"].astype(bool).to_numpy()
    truth = labels["anomaly"].to_numpy()[ok].astype(bool)
    alarm = scored["alarm"].to_numpy()[ok]
    scores = point_scores(truth, alarm)
    healthy = scored[ok & (labels["anomaly"].to_numpy() == 0)]
    episodes = 0
    monitored_s = 0.0
    for _, group in healthy.groupby("pump_id"):
        rows = group.sort_values("event_timestamp")
        episodes += len(alarm_episodes(rows["event_timestamp"], rows["alarm"].to_numpy(), MERGE_GAP_S))
        steps = rows["event_timestamp"].diff().dt.total_seconds().dropna()
        monitored_s += float(steps.median() * len(rows)) if len(steps) else 0.0
    months = monitored_s / MONTH_S
    return {
        "f1": float(scores.f1),
        "precision": float(scores.precision),
        "recall": float(scores.recall),
        "false_alarms_per_asset_month": float(episodes / months) if months > 0 else float("nan"),
        "monitored_asset_months": float(months),
        "scored_rows": float(ok.sum()),
    }


def train_anomaly(
    frame: pd.DataFrame,
    split: TimeSplit,
    config: TrainConfig,
    plot_dir: Path,
    restarts: pd.DataFrame | None = None,
    healthy_windows: pd.DataFrame | None = None,
) -> FamilyResult:
    """Fit the fleet anomaly detector on each pump's label-free baseline; judge it on the held-out window.

    The baseline rows (`baseline_mask`) are chosen from the training window by time since
    commissioning or repair only: the fault labels judge the detector, they never pick its rows.
    Stretches a person confirmed healthy (``healthy_windows``, from rejected false alarms) where
    the detector alarmed then become their pump's new normal: its model is fitted again on them,
    and a threshold that still alarms there is raised, up to ``config.max_threshold_raise``
    (`models.fleet.FleetDetector.accept_healthy`). Adding them to the old baseline would not do:
    its robust fit barely moves for a day of a new normal among a week of old. A label is
    operator knowledge available when training, so it counts wherever it falls (the held-out
    window included); the metrics ``healthy_windows``, ``pumps_rebaselined`` and
    ``thresholds_raised`` say how much was learnt.

    Args:
        frame: Labelled feature frame.
        split: Training and held-out windows.
        config: Training settings.
        plot_dir: Folder for the plots.
        restarts: Repairs and replacements ``pump_id, ts`` (from maintenance records), or None.
        healthy_windows: ``pump_id, start, end`` confirmed healthy, or None.

    Raises:
        TrainingError: Missing feature columns or too few baseline rows.
    """
    from pumptwin.models.fleet import FleetError
    from pumptwin.models.monitoring import describe

    check_labelled(frame)
    missing = [c for c in (*ANOMALY_FEATURES, RUNNING_COLUMN) if c not in frame.columns]
    if missing:
        raise TrainingError(f"anomaly features missing from the frame: {missing}")
    frame = frame.sort_values(list(KEYS), kind="stable").reset_index(drop=True)
    train = _train_part(frame, split).reset_index(drop=True)
    healthy = train[baseline_mask(train, config.baseline_s, config.warmup_s, restarts, config.trim)]
    detector = anomaly_detector(config)
    try:
        detector.fit(healthy)
    except FleetError as exc:
        raise TrainingError(f"anomaly detector: {exc}") from exc
    windows = healthy_windows if healthy_windows is not None else pd.DataFrame(columns=["pump_id", "start", "end"])
    try:
        raised = detector.accept_healthy(frame, windows, max_raise=config.max_threshold_raise)
    except FleetError as exc:
        raise TrainingError(f"confirmed healthy windows: {exc}") from exc
    heldout_mask = (frame["event_timestamp"] >= split.heldout_start).to_numpy()

    def evaluate(model: Any) -> float:  # noqa: ANN401 - any fleet detector
        # causal detectors carry state: score the whole frame, judge the held-out rows
        scored = model.score(frame)[heldout_mask].reset_index(drop=True)
        return anomaly_metrics(scored, frame[heldout_mask].reset_index(drop=True))["f1"]

    scored_all = detector.score(frame)
    scored = scored_all[heldout_mask].reset_index(drop=True)
    held = frame[heldout_mask].reset_index(drop=True)
    metrics = anomaly_metrics(scored, held)
    plots = _anomaly_plots(scored_all, frame, plot_dir)
    return FamilyResult(
        family="anomaly",
        model=detector,
        params={
            "features": list(ANOMALY_FEATURES),
            "detector": describe(monitor_config(config)),
            "target_far": config.target_far,
            "min_run": config.min_run,
            "autoencoder": config.autoencoder,
            "seed": config.seed,
            "pumps_with_own_model": len(detector.pumps_),
            "max_threshold_raise": config.max_threshold_raise,
            "threshold_raised_by_pump": {k: round(v, 4) for k, v in sorted(raised.items())},
            "rebaselined_rows_by_pump": dict(sorted(detector.rebaselined_.items())),
        },
        metrics={
            **metrics,
            "healthy_windows": float(len(windows)),
            "pumps_rebaselined": float(len(detector.rebaselined_)),
            "thresholds_raised": float(len(raised)),
        },
        plots=plots,
        input_example=_example(healthy, (*KEYS, RUNNING_COLUMN, *ANOMALY_FEATURES)),
        gate_metric="f1",
        higher_is_better=True,
        evaluate=evaluate,
        train_rows=len(healthy),
        heldout_rows=len(held),
    )


def _anomaly_plots(scored: pd.DataFrame, frame: pd.DataFrame, plot_dir: Path) -> dict[str, Path]:
    """Score timelines of up to three pumps with faults (else the most alarming), PR curve, confusion."""
    plot_dir.mkdir(parents=True, exist_ok=True)
    plots: dict[str, Path] = {}
    faulty = frame.loc[frame["anomaly"] == 1, "pump_id"].unique().tolist()
    if not faulty:
        faulty = scored.groupby("pump_id")["score"].max().sort_values(ascending=False).index[:1].tolist()
    for pump in faulty[:3]:
        rows = (frame["pump_id"] == pump).to_numpy() & scored["score"].notna().to_numpy()
        if not rows.any():
            continue
        lab = frame[rows]
        onset = lab.loc[lab["anomaly"] == 1, "event_timestamp"].min()
        failure = lab.loc[lab["failed"].astype(bool), "event_timestamp"].min()
        name = f"score_timeline_{pump.replace('.', '_')}"
        plots[name] = plot_score_timeline(
            lab["event_timestamp"],
            scored.loc[rows, "score"].to_numpy(),
            1.0,
            child_path(plot_dir, f"{name}.png", what="pump id"),
            onset=None if pd.isna(onset) else onset,
            failure=None if pd.isna(failure) else failure,
            title=f"{pump}: anomaly score (1 = alarm threshold)",
        )
    ok = scored["score"].notna().to_numpy() & ~frame["failed"].astype(bool).to_numpy()
    truth = frame["anomaly"].to_numpy()[ok].astype(int)
    if 0 < truth.sum() < truth.size:
        plots["precision_recall"] = plot_precision_recall(
            truth, scored["score"].to_numpy()[ok], plot_dir / "precision_recall.png", title="anomaly score"
        )
    matrix = confusion_matrix(
        np.where(truth == 1, "fault", "normal"),
        np.where(scored["alarm"].to_numpy()[ok], "fault", "normal"),
        labels=["normal", "fault"],
    )
    plots["confusion_matrix"] = plot_confusion_matrix(matrix, plot_dir / "confusion_matrix.png", title="alarms")
    return plots


# --------------------------------------------------------------------------------------------
# Failure-mode diagnosis
# --------------------------------------------------------------------------------------------


def feature_matrix_columns(frame: pd.DataFrame) -> list[str]:
    """Numeric feature columns of a labelled frame (everything but keys and labels)."""
    skip = {*KEYS, *LABELS}
    return [c for c in frame.columns if c not in skip and pd.api.types.is_numeric_dtype(frame[c])]


def _macro_f1(truth: np.ndarray, pred: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(truth, pred, average="macro", zero_division=0))


def train_diagnosis(
    frame: pd.DataFrame,
    split: TimeSplit,
    config: TrainConfig,
    plot_dir: Path,
    healthy_windows: pd.DataFrame | None = None,
) -> FamilyResult:
    """Fit the failure-mode classifier on running rows of the training window; judge it on the held-out.

    Rows past functional failure are left out (the pump is down or tripped). Rows a person
    confirmed healthy (``healthy_windows``, from rejected false alarms) and labelled healthy are
    trained on wherever they fall, weighing ``config.confirmed_weight``: the model learns the
    pattern it took for a fault; they are left out of the held-out judgement, which they would
    flatter. A fault record over the same rows wins (its rows keep their mode and weight). The
    metric ``confirmed_healthy_rows`` counts them.

    Raises:
        TrainingError: Fewer than two classes in the training window.
    """
    from pumptwin.models.diagnosis import HEALTHY, FailureModeClassifier
    from pumptwin.models.fleet import rows_in_windows

    check_labelled(frame)
    columns = feature_matrix_columns(frame)
    usable = frame[~frame["failed"].astype(bool)]
    if RUNNING_COLUMN in usable.columns:
        usable = usable[usable[RUNNING_COLUMN] >= 0.5]  # noqa: PLR2004 - a pump that ran most of the hour
    confirmed = rows_in_windows(usable, healthy_windows) & (usable["mode"] == HEALTHY).to_numpy()
    early = (usable["event_timestamp"] < split.train_end).to_numpy()
    train = usable[early | confirmed]
    weight = np.where(confirmed[early | confirmed], config.confirmed_weight, 1.0)
    held = _heldout_part(usable[~confirmed], split)
    if train["mode"].nunique() < 2:  # noqa: PLR2004 - a classifier needs two classes
        classes = list(train["mode"].unique())
        raise TrainingError(f"diagnosis needs at least two classes in the training window, got {classes}")
    model = FailureModeClassifier(random_state=config.seed).fit(
        train[columns].astype(float), train["mode"], sample_weight=weight
    )

    def evaluate(m: Any) -> float:  # noqa: ANN401 - any classifier of the family
        return _macro_f1(held["mode"].to_numpy(), np.asarray(m.predict(held[columns].astype(float))))

    pred = np.asarray(model.predict(held[columns].astype(float))) if len(held) else np.array([])
    truth = held["mode"].to_numpy()
    accuracy = float((pred == truth).mean()) if len(held) else float("nan")
    plot_dir.mkdir(parents=True, exist_ok=True)
    labels = sorted(set(truth) | set(pred))
    plots = {}
    if labels:
        matrix = confusion_matrix(truth, pred, labels=labels)
        plots["confusion_matrix"] = plot_confusion_matrix(
            matrix, plot_dir / "diagnosis_confusion.png", title="failure mode"
        )
    return FamilyResult(
        family="diagnosis",
        model=model,
        params={"features": len(columns), "classes": list(model.classes_), "seed": config.seed},
        metrics={
            "macro_f1": _macro_f1(truth, pred) if len(held) else float("nan"),
            "accuracy": accuracy,
            "heldout_classes": float(len(set(truth))),
            "confirmed_healthy_rows": float(confirmed.sum()),
        },
        plots=plots,
        input_example=_example(train, columns),
        gate_metric="macro_f1",
        higher_is_better=True,
        evaluate=evaluate,
        train_rows=len(train),
        heldout_rows=len(held),
    )


# --------------------------------------------------------------------------------------------
# Time to failure
# --------------------------------------------------------------------------------------------


def train_ttf(frame: pd.DataFrame, split: TimeSplit, config: TrainConfig, plot_dir: Path) -> FamilyResult:
    """Fit time to failure with an interval on rows of developing faults; judge it on the held-out window.

    Raises:
        TrainingError: Too few rows of developing faults in the training window.
    """
    from pumptwin.models.ttf import TimeToFailureRegressor, TtfError

    check_labelled(frame)
    columns = feature_matrix_columns(frame)
    developing = frame[(frame["anomaly"] == 1) & ~frame["failed"].astype(bool) & frame["ttf_s"].gt(0)]
    train = _train_part(developing, split)
    held = _heldout_part(developing, split)
    if len(train) < 50:  # noqa: PLR2004 - fewer rows than a quantile model can learn an interval from
        raise TrainingError(f"time to failure needs rows of developing faults to learn from; got {len(train)}")
    groups = train["pump_id"].astype(str) + "|" + train["mode"].astype(str)
    notes = []
    if groups.nunique() < 2:  # noqa: PLR2004 - one history cannot be held out whole
        notes.append("one fault history only: the interval is calibrated on held-out rows of that same history")
    try:
        model = TimeToFailureRegressor(random_state=config.seed).fit(
            train[columns].astype(float),
            train["ttf_s"].to_numpy(float),
            groups=groups.to_numpy() if groups.nunique() >= 2 else None,  # noqa: PLR2004
        )
    except TtfError as exc:
        raise TrainingError(f"time to failure: {exc}") from exc

    def evaluate(m: Any) -> float:  # noqa: ANN401 - any regressor of the family
        if held.empty:
            return float("nan")
        pred = np.asarray(m.predict(held[columns].astype(float)), dtype=float)
        return float(np.median(np.abs(pred - held["ttf_s"].to_numpy(float))) / HOUR_S)

    metrics = {"median_abs_error_h": evaluate(model) if len(held) else float("nan")}
    plots: dict[str, Path] = {}
    if len(held):
        low, med, high = model.predict_interval(held[columns].astype(float))
        metrics["interval_coverage"] = float(interval_coverage(held["ttf_s"].to_numpy(float), low, high))
        metrics["nominal_coverage"] = float(1.0 - model.alpha)
        plots["ttf"] = _plot_ttf(held, med, low, high, plot_dir / "ttf.png")
    return FamilyResult(
        family="ttf",
        model=model,
        params={"features": len(columns), "alpha": model.alpha, "seed": config.seed},
        metrics=metrics,
        plots=plots,
        input_example=_example(train, columns),
        gate_metric="median_abs_error_h",
        higher_is_better=False,
        evaluate=evaluate,
        train_rows=len(train),
        heldout_rows=len(held),
        notes=notes,
    )


def _plot_ttf(held: pd.DataFrame, med: np.ndarray, low: np.ndarray, high: np.ndarray, path: Path) -> Path:
    """Predicted time to failure with its interval against the truth, held-out rows in time order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    order = np.argsort(held["event_timestamp"].to_numpy())
    fig, ax = plt.subplots(figsize=(8, 3.5))
    try:
        x = np.arange(len(order))
        ax.fill_between(x, low[order] / HOUR_S, high[order] / HOUR_S, alpha=0.3, label="interval")
        ax.plot(x, med[order] / HOUR_S, lw=1.0, label="predicted (median)")
        ax.plot(x, held["ttf_s"].to_numpy(float)[order] / HOUR_S, "k.", ms=2, label="true")
        ax.set_xlabel("held-out rows of developing faults (time order)")
        ax.set_ylabel("time to failure (h)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path
