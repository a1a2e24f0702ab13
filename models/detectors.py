"""Multivariate statistical anomaly detectors for pump sensor data (scikit-learn estimators).

`PcaT2QDetector` is the classical process-monitoring baseline: standardise each sensor on a
fault-free training stretch, project on the principal components that explain most of its
variance, and watch two statistics, Hotelling's T-squared (distance inside the model plane) and Q,
the squared prediction error (SPE, distance off the plane). Both are smoothed over a short causal
window, divided by thresholds calibrated on the training rows, and combined by their maximum; an
alarm is raised where the combined ratio exceeds 1 and is held only when it persists.

Nothing is specific to a fault: a leak, a closed valve, rotor imbalance, cavitation or hot water
move some sensors (or their correlations) away from the training operating point, and T-squared
and Q see any such move. Rows are read in time order; scores at a row depend on that row and the
rows before it (causal smoothing), never on later rows.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(400, 4))
    >>> det = PcaT2QDetector().fit(X)
    >>> shifted = X[:100] + np.array([0.0, 0.0, 6.0, 0.0])
    >>> bool((det.predict(shifted) == -1).mean() > 0.9)
    True
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils.validation import check_is_fitted, validate_data


def causal_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over ``window`` rows (fewer at the start), along axis 0.

    Args:
        values: 1-d or 2-d array, rows in time order.
        window: Rows averaged, at least 1.

    Returns:
        Array of the same shape.
    """
    if window <= 1:
        return np.asarray(values, dtype=float)
    v = np.asarray(values, dtype=float)
    csum = np.cumsum(v, axis=0)
    out = csum.copy()
    out[window:] = csum[window:] - csum[:-window]
    counts = np.minimum(np.arange(1, len(v) + 1), window).astype(float)
    if v.ndim > 1:
        counts = counts.reshape(-1, *([1] * (v.ndim - 1)))
    return out / counts


def lagged_difference(values: np.ndarray, lag: int) -> np.ndarray:
    """Change of each column over the last ``lag`` rows (against the first row at the start), along axis 0.

    A slow state (a water or bearing temperature drifting with ambient and operating hours) is
    better watched through its rate of change than through its level against a short training
    stretch: the level of a healthy pump drifts, a fault (hot water, a failing bearing) shows as a
    change faster than that drift.

    Args:
        values: 1-d or 2-d array, rows in time order.
        lag: Rows between the compared values, at least 1.

    Returns:
        ``values[t] - values[max(t - lag, 0)]``, the same shape.

    Raises:
        ValueError: When ``lag`` is below 1.
    """
    if lag < 1:
        raise ValueError(f"lag={lag} must be at least 1")
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return v.copy()
    past = np.concatenate([np.repeat(v[:1], min(lag, len(v)), axis=0), v[:-lag]], axis=0)[: len(v)]
    return v - past


def hold_persistent(alarm: np.ndarray, min_run: int) -> np.ndarray:
    """Keep only alarms that last at least ``min_run`` consecutive rows (the whole run is kept).

    Args:
        alarm: Boolean alarms in time order.
        min_run: Shortest run kept, in rows.

    Returns:
        Boolean array of the same length.
    """
    a = np.asarray(alarm, dtype=bool)
    if min_run <= 1 or a.size == 0:
        return a
    padded = np.concatenate([[False], a, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(int)))
    out = np.zeros_like(a)
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        if stop - start >= min_run:
            out[start:stop] = True
    return out


class ThresholdAlarmMixin:
    """Alarm boundary and labels of a detector whose ``score_samples`` is minus a statistic over its threshold.

    The detectors of this package score a row by its statistic (T-squared and Q, a reconstruction
    error, a CUSUM, a fused ensemble score) divided by the statistic's alarm threshold, negated so
    that lower is more abnormal. A row lies beyond the boundary where ``score_samples < -1``, and an
    alarm is such a crossing that persists ``min_run`` rows. Subclasses define ``score_samples`` and
    set ``offset_ = -1`` and ``min_run``.
    """

    offset_: float
    min_run: int

    def score_samples(self, X: ArrayLike) -> np.ndarray:
        """Normality of each row (minus the statistic over its threshold); defined by each detector."""
        raise NotImplementedError

    def decision_function(self, X: ArrayLike) -> np.ndarray:
        """Signed distance to the alarm boundary: negative where the threshold is exceeded.

        Args:
            X: Rows in time order.

        Returns:
            ``1 - statistic / threshold`` per row.
        """
        return self.score_samples(X) - self.offset_

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Label rows: -1 for an anomaly (a threshold crossing that persists ``min_run`` rows), 1 for normal.

        Args:
            X: Rows in time order.

        Returns:
            Labels in scikit-learn's outlier convention.
        """
        alarm = hold_persistent(np.asarray(self.score_samples(X)) < -1.0, self.min_run)
        return np.where(alarm, -1, 1)


class PcaT2QDetector(ThresholdAlarmMixin, OutlierMixin, BaseEstimator):
    """PCA T-squared + Q (SPE) detector with thresholds calibrated on fault-free training rows.

    Args:
        n_components: Principal components kept: an int, or a float in (0, 1) for the smallest
            number that explains that fraction of the training variance.
        smooth: Rows of the causal moving average applied to the standardised sensors before
            projection (1 disables it).
        score_smooth: Rows of the causal moving average applied to T-squared and Q.
        quantile: Quantile of each smoothed training statistic taken as its threshold.
        margin: Factor on the thresholds (above 1 trades missed alarms for fewer false ones).
        min_run: Rows an alarm must persist to be kept.
        scale_floor: Lower bound on each sensor's scale, as a fraction of its mean absolute
            training level: a sensor that barely moved in training (a slowly drifting
            temperature) is not judged against its tiny training spread. 0.02 is a 2 %
            tolerance, about a sensor's accuracy class.

    Attributes:
        mean_: Per-sensor training mean.
        scale_: Per-sensor training scale (standard deviation, floored).
        components_: Principal axes kept, shape (n_components_, n_features_in_).
        explained_variance_: Variance along each kept axis.
        n_components_: Number of axes kept.
        t2_threshold_: Threshold of smoothed T-squared.
        q_threshold_: Threshold of smoothed Q.
        n_features_in_: Number of sensors seen in `fit`.
        offset_: ``decision_function = score_samples - offset_`` (always -1: a ratio of 1 is the boundary).
    """

    def __init__(
        self,
        n_components: int | float = 0.9,
        smooth: int = 1,
        score_smooth: int = 1,
        quantile: float = 0.99,
        margin: float = 1.0,
        min_run: int = 1,
        scale_floor: float = 0.0,
    ) -> None:
        self.n_components = n_components
        self.smooth = smooth
        self.score_smooth = score_smooth
        self.quantile = quantile
        self.margin = margin
        self.min_run = min_run
        self.scale_floor = scale_floor

    def _check_params(self) -> None:
        if isinstance(self.n_components, float) and not 0 < self.n_components <= 1:
            raise ValueError(f"n_components={self.n_components}: a float must lie in (0, 1]")
        if isinstance(self.n_components, int) and self.n_components < 1:
            raise ValueError(f"n_components={self.n_components}: an int must be at least 1")
        if self.smooth < 1 or self.score_smooth < 1 or self.min_run < 1:
            raise ValueError("smooth, score_smooth and min_run must be at least 1")
        if not 0 < self.quantile <= 1:
            raise ValueError(f"quantile={self.quantile} must lie in (0, 1]")
        if self.margin <= 0 or self.scale_floor < 0:
            raise ValueError("margin must be positive and scale_floor non-negative")

    def fit(self, X: ArrayLike, y: object = None) -> PcaT2QDetector:
        """Learn the normal operating point and calibrate both thresholds on ``X``.

        Args:
            X: Fault-free training rows in time order, shape (n_samples, n_features).
            y: Ignored.

        Returns:
            The fitted detector.
        """
        self._check_params()
        X = np.asarray(validate_data(self, X, dtype=np.float64, ensure_min_samples=2))
        self.mean_ = X.mean(axis=0)
        std = X.std(axis=0, ddof=1)
        floor = self.scale_floor * np.abs(self.mean_)
        self.scale_ = np.maximum(np.maximum(std, floor), 1e-12)
        Z = causal_mean((X - self.mean_) / self.scale_, self.smooth)
        Zc = Z - Z.mean(axis=0)
        _, s, vt = np.linalg.svd(Zc, full_matrices=False)
        var = s**2 / max(len(Z) - 1, 1)
        if isinstance(self.n_components, float):
            ratio = np.cumsum(var) / max(var.sum(), 1e-300)
            k = int(np.searchsorted(ratio, self.n_components - 1e-12) + 1)
        else:
            k = int(self.n_components)
        k = max(1, min(k, vt.shape[0]))
        self.n_components_ = k
        self.components_ = vt[:k]
        self.explained_variance_ = np.maximum(var[:k], 1e-12)
        self.center_ = Z.mean(axis=0)
        t2, q = self._statistics(Z)
        self.t2_threshold_ = max(float(np.quantile(t2, self.quantile)), 1e-12) * self.margin
        self.q_threshold_ = max(float(np.quantile(q, self.quantile)), 1e-12) * self.margin
        self.offset_ = -1.0
        return self

    def _statistics(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Smoothed T-squared and Q of standardised, smoothed rows ``Z``."""
        Zc = Z - self.center_
        scores = Zc @ self.components_.T
        t2 = np.sum(scores**2 / self.explained_variance_, axis=1)
        resid = Zc - scores @ self.components_
        q = np.sum(resid**2, axis=1)
        return causal_mean(t2, self.score_smooth), causal_mean(q, self.score_smooth)

    def _ratio(self, X: ArrayLike) -> np.ndarray:
        check_is_fitted(self)
        X = np.asarray(validate_data(self, X, dtype=np.float64, reset=False))
        Z = causal_mean((X - self.mean_) / self.scale_, self.smooth)
        t2, q = self._statistics(Z)
        return np.maximum(t2 / self.t2_threshold_, q / self.q_threshold_)

    def score_samples(self, X: ArrayLike) -> np.ndarray:
        """Normality of each row: minus the larger of T-squared and Q over their thresholds.

        Args:
            X: Rows in time order.

        Returns:
            Scores, lower is more abnormal; below -1 is beyond a threshold.
        """
        return -self._ratio(X)


def skab_detector() -> PcaT2QDetector:
    """The detector configuration reported on SKAB (one general setting for every file and fault)."""
    return PcaT2QDetector(n_components=0.9, smooth=5, quantile=0.99, margin=1.0, min_run=20, scale_floor=0.02)
