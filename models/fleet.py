"""Anomaly detection over a fleet: one calibrated detector per pump, on that pump's own history.

Detectors in `models` read one time series (rows in time order; their scores may depend on
earlier rows). A fleet's feature frame interleaves many pumps, each with its own baseline: the
same vibration is normal on one pump and high on another. `FleetDetector` therefore

1. keeps only rows where the pump ran through the whole short window (``running_column`` at
   least ``running_fraction``) and every detector feature is present: a stopped or starting pump
   has no meaningful physics residuals, and its rows are neither trained on nor scored;
2. fits a clone of the template detector per pump on that pump's rows, in time order;
3. falls back, for a pump with fewer than ``min_rows`` training rows (a standby that hardly ran),
   to a pooled clone fitted on every pump's rows, so every pump that runs is watched; the output
   says which model scored each row.

An optional ``inputs`` step derives the detector's columns from the feature frame before anything
else (`models.monitoring.add_detector_inputs`: temperature differences and the time axis of a
drift-aware baseline), so the fitted fleet detector scores the same feature frames it was
trained on, whatever columns its detector reads.

The template is usually a `models.ensemble.CalibratedEnsemble`, whose ``score_samples`` is minus
the fused score over its alarm threshold, so the fleet's ``score`` column is 1 at the threshold.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.utils.validation import check_is_fitted

from pumptwin.twin.errors import PumptwinError

POOLED = "pooled"
"""Model key of the pooled fallback detector."""
KEYS = ("pump_id", "event_timestamp")


def rows_in_windows(frame: pd.DataFrame, windows: pd.DataFrame | None) -> np.ndarray:
    """Rows of ``frame`` (``pump_id``, ``event_timestamp``) inside any of ``windows`` (``pump_id, start, end``, UTC)."""
    out = np.zeros(len(frame), dtype=bool)
    if windows is None or windows.empty or frame.empty:
        return out
    pump = frame["pump_id"].astype(str).to_numpy()
    ts = pd.to_datetime(frame["event_timestamp"], utc=True).reset_index(drop=True)
    for name, start, end in zip(
        windows["pump_id"].astype(str),
        pd.to_datetime(windows["start"], utc=True),
        pd.to_datetime(windows["end"], utc=True),
        strict=True,
    ):
        out |= (pump == name) & ((ts >= start) & (ts <= end)).to_numpy()
    return out


class FleetError(PumptwinError, ValueError):
    """Bad parameters or a frame the fleet detector cannot read; the message names the problem."""


class FleetDetector(BaseEstimator):
    """Per-pump clones of an outlier detector over a fleet feature frame.

    Args:
        detector: Unfitted template (a scikit-learn outlier detector with ``score_samples``,
            lower is more abnormal, and ``predict`` returning -1 for an anomaly).
        features: Feature columns the detector reads, in order.
        running_column: Column with the fraction of the window the pump ran.
        running_fraction: Rows below this running fraction are not trained on or scored.
        min_rows: Fewest usable rows for a pump's own model; below it the pooled model scores it.
        inputs: Optional function of the feature frame returning it with the ``features``
            columns added (a module-level function, so the fitted detector pickles); None reads
            ``features`` from the frame as it is.

    Attributes:
        models_: Fitted detectors by pump id, and `POOLED` for the fallback.
        pumps_: Pumps with their own model.
        n_train_rows_: Usable training rows per pump.
        raised_: Factor each pump's alarm threshold was raised by from confirmed healthy rows
            (`accept_healthy`; empty until then).
        rebaselined_: Pumps refitted on confirmed healthy rows, with the rows (`accept_healthy`).
    """

    def __init__(
        self,
        detector: BaseEstimator | None = None,
        features: Sequence[str] = (),
        running_column: str = "running_frac_1h",
        running_fraction: float = 0.99,
        min_rows: int = 100,
        inputs: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    ) -> None:
        self.detector = detector
        self.features = features
        self.running_column = running_column
        self.running_fraction = running_fraction
        self.min_rows = min_rows
        self.inputs = inputs

    def _check(self, frame: pd.DataFrame) -> None:
        if self.detector is None:
            raise FleetError("FleetDetector needs a template detector")
        if len(self.features) == 0:
            raise FleetError("FleetDetector needs at least one feature column")
        if not isinstance(frame, pd.DataFrame):
            raise FleetError(f"FleetDetector reads a feature frame (pandas DataFrame), not {type(frame).__name__}")
        missing = [c for c in (*KEYS, self.running_column, *self.features) if c not in frame.columns]
        if missing:
            raise FleetError(f"feature frame lacks column(s) {missing}")

    def _prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The frame with the detector's columns (through ``inputs``), checked."""
        if self.inputs is not None and isinstance(frame, pd.DataFrame):
            missing = [c for c in (*KEYS, self.running_column) if c not in frame.columns]
            if missing:
                raise FleetError(f"feature frame lacks column(s) {missing}")
            try:
                frame = self.inputs(frame)
            except (KeyError, ValueError) as exc:
                raise FleetError(f"feature frame: {exc}") from exc
        self._check(frame)
        return frame

    def usable(self, frame: pd.DataFrame) -> np.ndarray:
        """Rows that are trained on and scored: the pump ran the whole window, every feature present."""
        return self._usable(self._prepare(frame))

    def _usable(self, frame: pd.DataFrame) -> np.ndarray:
        running = frame[self.running_column].to_numpy(dtype=float, na_value=np.nan) >= self.running_fraction
        values = frame[list(self.features)].to_numpy(dtype=float, na_value=np.nan)
        return running & np.isfinite(values).all(axis=1)

    def fit(self, X: pd.DataFrame, y: object = None) -> FleetDetector:
        """Fit one detector per pump on its usable rows (all taken as healthy), plus the pooled fallback.

        Args:
            X: Feature frame of healthy operation: keys, running column and the features.
            y: Ignored.

        Returns:
            The fitted fleet detector.

        Raises:
            FleetError: Missing columns, or fewer than ``min_rows`` usable rows in the whole frame.
        """
        X = self._prepare(X)
        ok = self._usable(X)
        rows = X[ok].sort_values(list(KEYS), kind="stable")
        if len(rows) < self.min_rows:
            raise FleetError(f"only {len(rows)} usable training rows; the fleet detector needs {self.min_rows}")
        self.models_: dict[str, BaseEstimator] = {}
        self.n_train_rows_: dict[str, int] = {}
        for pump, group in rows.groupby("pump_id", sort=True):
            self.n_train_rows_[str(pump)] = len(group)
            if len(group) >= self.min_rows:
                self.models_[str(pump)] = clone(self.detector).fit(self._matrix(group))
        pooled = rows.sort_values("event_timestamp", kind="stable")
        self.models_[POOLED] = clone(self.detector).fit(self._matrix(pooled))
        self.pumps_ = sorted(p for p in self.models_ if p != POOLED)
        self.raised_: dict[str, float] = {}
        self.rebaselined_: dict[str, int] = {}
        return self

    def _matrix(self, frame: pd.DataFrame) -> np.ndarray:
        return frame[list(self.features)].to_numpy(dtype=np.float64)

    def score(self, X: pd.DataFrame) -> pd.DataFrame:
        """Score every row: the detector's anomaly score and its persistent alarm, per pump in time order.

        Args:
            X: Feature frame (any pumps, any order).

        Returns:
            In the input's row order: ``pump_id``, ``event_timestamp``, ``score`` (minus the
            detector's ``score_samples``; 1 is the alarm threshold of a `CalibratedEnsemble`; NaN
            where the row is not usable), ``alarm`` (bool) and ``model`` (the pump id or
            `POOLED`; empty where not scored).
        """
        check_is_fitted(self, "models_")
        X = self._prepare(X)
        ok = self._usable(X)
        score = np.full(len(X), np.nan)
        alarm = np.zeros(len(X), dtype=bool)
        model = np.full(len(X), "", dtype=object)
        pos = np.arange(len(X))
        frame = X.assign(_pos=pos)[ok].sort_values(list(KEYS), kind="stable")
        for pump, group in frame.groupby("pump_id", sort=False):
            key = str(pump) if str(pump) in self.models_ else POOLED
            detector = self.models_[key]
            matrix = self._matrix(group)
            idx = group["_pos"].to_numpy()
            score[idx] = -np.asarray(detector.score_samples(matrix), dtype=float)
            alarm[idx] = np.asarray(detector.predict(matrix)) == -1
            model[idx] = key
        return pd.DataFrame(
            {
                "pump_id": X["pump_id"].to_numpy(),
                "event_timestamp": X["event_timestamp"].reset_index(drop=True),
                "score": score,
                "alarm": alarm,
                "model": model,
            }
        )

    def accept_healthy(
        self, X: pd.DataFrame, windows: pd.DataFrame, *, max_raise: float = 2.0, headroom: float = 0.05
    ) -> dict[str, float]:
        """Learn from rows a person confirmed healthy (a rejected false alarm) so they stop alarming.

        ``X`` is scored as `score` scores it (the whole history, so causal detectors carry their
        state). For each pump that alarmed inside its ``windows``:

        1. with at least ``min_rows`` usable rows there, its model is fitted again on those rows
           alone: they are its new normal (a pump that ran on the pooled model gets its own);
        2. where it still alarms there (too few rows, or a short excursion rather than a new
           normal), its alarm threshold is multiplied by the largest score of those rows plus
           ``headroom`` (a share), at most ``max_raise``: a label cannot blind the detector, rows
           further out still alarm. ``score`` stays 1 at the threshold and ``predict``'s
           persistence rule holds (``threshold_`` of a `models.ensemble.CalibratedEnsemble`;
           a detector without one is only refitted).

        Args:
            X: Feature frame covering the windows (any pumps, any order).
            windows: ``pump_id, start, end`` (UTC): stretches confirmed healthy.
            max_raise: Largest factor on a pump's threshold (1: never raised).
            headroom: Share above the window's largest score the threshold is set to.

        Returns:
            The factor each pump's threshold was raised by (pumps whose threshold moved); the
            pumps refitted, with their rows, are in ``rebaselined_``, the factors also in ``raised_``.

        Raises:
            FleetError: Missing columns, or ``max_raise`` below 1 or a negative ``headroom``.
        """
        check_is_fitted(self, "models_")
        if not max_raise >= 1.0 or not headroom >= 0.0:
            raise FleetError(f"need max_raise >= 1 and headroom >= 0; got {max_raise}, {headroom}")
        missing = [c for c in ("pump_id", "start", "end") if c not in windows.columns]
        if missing:
            raise FleetError(f"healthy windows lack column(s) {missing}")
        self.raised_ = dict(getattr(self, "raised_", {}))
        self.rebaselined_ = dict(getattr(self, "rebaselined_", {}))
        if windows.empty:
            return {}
        prepared = self._prepare(X)  # the detector's inputs may read a pump's sisters: the whole frame
        usable = self._usable(prepared)
        alarm = self.score(X)["alarm"].to_numpy()
        moved: dict[str, float] = {}
        for name, group in windows.groupby(windows["pump_id"].astype(str)):
            inside = rows_in_windows(prepared, group) & usable
            if not alarm[inside].any():
                continue  # nothing alarmed there: no false alarm to learn from
            rows = prepared[inside].sort_values(list(KEYS), kind="stable")
            if len(rows) >= self.min_rows:
                self.models_[name] = clone(self.detector).fit(self._matrix(rows))
                self.pumps_ = sorted(p for p in self.models_ if p != POOLED)
                self.rebaselined_[name] = len(rows)
            model = self.models_.get(name)
            if name not in self.pumps_ or model is None or not hasattr(model, "threshold_"):
                continue
            scored = self.score(X)
            if not scored["alarm"].to_numpy()[inside].any():
                continue
            peak = float(np.nanmax(scored["score"].to_numpy()[inside]))
            factor = float(min(max_raise, max(1.0, peak * (1.0 + headroom))))
            if factor > 1.0:
                model.threshold_ = float(model.threshold_) * factor
                moved[name] = factor
                self.raised_[name] = self.raised_.get(name, 1.0) * factor
        return moved

    def score_samples(self, X: pd.DataFrame) -> np.ndarray:
        """Minus `score`'s ``score`` column (lower is more abnormal; NaN where a row is not scored)."""
        return -self.score(X)["score"].to_numpy()

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """-1 where a pump's detector alarms, 1 elsewhere (rows not scored are 1)."""
        return np.where(self.score(X)["alarm"].to_numpy(), -1, 1)
