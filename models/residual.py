"""Sequential change detection on physics residuals: robust standardisation and two-sided CUSUM.

A physics residual is a measured quantity minus what the twin expects of it at the current
operating point: head minus the pump curve's head at the measured flow and speed, shaft power
minus the curve's power, efficiency minus the curve's efficiency, a vibration ratio (bearing RMS
over its healthy level). On a healthy pump each residual wanders around a constant; a fault moves
one or more of them (a leak the head residual, wear the efficiency residual, imbalance the
vibration ratio, cavitation head and vibration together).

`ResidualCusumDetector` standardises each residual column robustly on fault-free training rows,
``z = (r - median) / (1.4826 MAD)``, and runs Page's two-sided CUSUM on it:

    S+_t = max(0, S+_{t-1} + z_t - k),    S-_t = max(0, S-_{t-1} - z_t - k),

which accumulates evidence of a persistent shift larger than ``k`` standardised units in either
direction and forgets noise. Each column's statistic ``max(S+, S-)`` is divided by its own
threshold, a quantile of the statistic over the training rows (so autocorrelated residuals get a
wider threshold than white ones), never below ``min_threshold``; the row's score is the largest ratio, and
`ResidualCusumDetector.contributions` returns every column's ratio, naming the residual that
raised an alarm. The statistic is causal: a row's value depends on it and the rows before it.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> healthy = rng.normal(size=(400, 3))
    >>> det = ResidualCusumDetector().fit(healthy)
    >>> faulty = rng.normal(size=(200, 3)) + np.array([0.0, 1.5, 0.0])
    >>> int(det.contributions(faulty)[-1].argmax())
    1
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from pumptwin.models.detectors import ThresholdAlarmMixin
from pumptwin.twin.errors import PumptwinError

MAD_TO_STD = 1.4826
"""Factor from the median absolute deviation to the standard deviation of a normal distribution."""


class ResidualError(PumptwinError, ValueError):
    """Bad parameters or input for `ResidualCusumDetector`."""


def two_sided_cusum(z: np.ndarray, k: float) -> np.ndarray:
    """Page's two-sided CUSUM of standardised series, column by column, started at 0.

    Args:
        z: Standardised values in time order, shape (n_samples, n_columns).
        k: Reference value (allowance), in standardised units: half the shift to detect.

    Returns:
        ``max(S+, S-)`` per row and column, the same shape as ``z``.
    """
    up = np.zeros(z.shape[1])
    down = np.zeros(z.shape[1])
    out = np.empty_like(z, dtype=float)
    for t, row in enumerate(z):
        up = np.maximum(0.0, up + row - k)
        down = np.maximum(0.0, down - row - k)
        out[t] = np.maximum(up, down)
    return out


class ResidualCusumDetector(ThresholdAlarmMixin, OutlierMixin, BaseEstimator):
    """Two-sided CUSUM per residual column, thresholds calibrated on fault-free training rows.

    Scores follow `models.detectors.PcaT2QDetector`: ``score_samples`` is minus the largest
    column ratio (statistic over threshold), ``decision_function = score_samples + 1`` is negative
    beyond a threshold, ``predict`` gives -1 where one persists ``min_run`` rows.

    Args:
        k: CUSUM allowance in robust standard deviations (0.5 tunes it to a shift of one).
        quantile: Quantile of each column's training statistic taken as its threshold.
        margin: Factor on the thresholds.
        min_threshold: Lower bound on every threshold, in standardised units (guards a column
            whose training statistic stayed near zero). On a short training stretch the quantile
            is noisy (the statistic is autocorrelated); the classical ``h = 5`` with ``k = 0.5``
            (an in-control average run length of about 465 rows on white noise) is then a
            sound floor.
        min_run: Rows an alarm must persist to be kept.
        scale_floor: Lower bound on each column's scale, in the column's units (a residual
            known to within a sensor's accuracy is not judged against a smaller spread).

    Attributes:
        center_: Per-column training median.
        scale_: Per-column robust scale (1.4826 MAD, floored).
        thresholds_: Per-column threshold of the CUSUM statistic.
        n_features_in_: Number of residual columns seen in `fit`.
        feature_names_in_: Column names, when `fit` was given a DataFrame.
        offset_: Always -1 (a ratio of 1 is the boundary).
    """

    def __init__(
        self,
        k: float = 0.5,
        quantile: float = 0.99,
        margin: float = 1.0,
        min_threshold: float = 1.0,
        min_run: int = 1,
        scale_floor: float = 1e-9,
    ) -> None:
        self.k = k
        self.quantile = quantile
        self.margin = margin
        self.min_threshold = min_threshold
        self.min_run = min_run
        self.scale_floor = scale_floor

    def _check_params(self) -> None:
        if self.k < 0:
            raise ResidualError(f"k={self.k} must be non-negative")
        if not 0 < self.quantile <= 1:
            raise ResidualError(f"quantile={self.quantile} must lie in (0, 1]")
        if self.margin <= 0 or self.min_threshold <= 0 or self.scale_floor <= 0:
            raise ResidualError(
                f"margin={self.margin}, min_threshold={self.min_threshold} and"
                f" scale_floor={self.scale_floor} must be positive"
            )
        if int(self.min_run) != self.min_run or self.min_run < 1:
            raise ResidualError(f"min_run={self.min_run} must be an integer of at least 1")

    def fit(self, X: ArrayLike, y: object = None) -> ResidualCusumDetector:
        """Robustly standardise each residual on fault-free rows and calibrate its threshold.

        Args:
            X: Residual columns of healthy rows in time order, shape (n_samples, n_columns).
            y: Ignored.

        Returns:
            The fitted detector.

        Raises:
            ResidualError: On bad parameters; ValueError on NaN, infinite values or too few rows.
        """
        self._check_params()
        X = np.asarray(validate_data(self, X, dtype=np.float64, ensure_min_samples=3))
        self.center_ = np.median(X, axis=0)
        mad = np.median(np.abs(X - self.center_), axis=0)
        self.scale_ = np.maximum(MAD_TO_STD * mad, self.scale_floor)
        stat = two_sided_cusum((X - self.center_) / self.scale_, self.k)
        self.thresholds_ = np.maximum(np.quantile(stat, self.quantile, axis=0) * self.margin, self.min_threshold)
        self.offset_ = -1.0
        return self

    def contributions(self, X: ArrayLike) -> np.ndarray:
        """Each residual's CUSUM statistic over its threshold, per row (above 1: it alarms).

        Args:
            X: Residual columns in time order, the columns seen in `fit`.

        Returns:
            Array of shape (n_samples, n_columns).
        """
        check_is_fitted(self)
        X = np.asarray(validate_data(self, X, dtype=np.float64, reset=False))
        return two_sided_cusum((X - self.center_) / self.scale_, self.k) / self.thresholds_

    def score_samples(self, X: ArrayLike) -> np.ndarray:
        """Normality of each row: minus the largest residual ratio.

        Args:
            X: Residual columns in time order.

        Returns:
            Scores, lower is more abnormal; below -1 is beyond a threshold.
        """
        return -self.contributions(X).max(axis=1)
