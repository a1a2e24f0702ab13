"""Time to functional failure with a calibrated prediction interval (scikit-learn estimator).

`TimeToFailureRegressor` predicts, from a pump's feature row while a fault is developing, the time
left until the fault reaches functional failure (severity 1 in `pumptwin.plant.health`), in seconds.
It is trained only on rows where a fault is developing (finite, positive ``ttf_s`` labels from
`features.labels.pump_labels`): asking a healthy pump for its time to failure has no answer here,
that is the detector's job.

The model is conformalised quantile regression (CQR, Romano, Patterson and Candes, 2019):

1. The target is ``log(ttf_s)``: times to failure span minutes to weeks, and errors matter in
   proportion (a day's error means little three weeks out and a lot an hour out).
2. The training rows are split in two. On the proper training part three histogram
   gradient-boosting regressors with the pinball loss fit the ``alpha / 2``, ``0.5`` and
   ``1 - alpha / 2`` quantiles (10 %, 50 % and 90 % for ``alpha = 0.2``).
3. On the held-out calibration part, each row's conformity score is how far its true log time
   falls outside the raw interval, ``E = max(low - y, y - high)`` (negative inside). With ``n``
   calibration rows, ``q`` is the ``ceil((n + 1)(1 - alpha)) / n`` empirical quantile of ``E``,
   and the interval becomes ``[low - q, high + q]``. If calibration rows are exchangeable with new
   rows, the interval covers the truth with probability at least ``1 - alpha`` (and at most
   ``1 - alpha + 1 / (n + 1)``), whatever the quantile models learnt.

Rows of one run-to-failure history are strongly correlated, so pass ``groups`` (one id per
history) to `fit`: whole histories are then held out for calibration, and the coverage claim is
about new histories rather than new minutes of the histories already seen.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> ttf = rng.uniform(3600, 14 * 86400, 600)
    >>> X = np.c_[np.log(ttf) + rng.normal(0, 0.3, 600), rng.normal(size=600)]
    >>> model = TimeToFailureRegressor(max_iter=50).fit(X, ttf)
    >>> low, mid, high = model.predict_interval(X[:3])
    >>> bool(np.all((low <= mid) & (mid <= high)))
    True
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils import Tags
from sklearn.utils.validation import check_is_fitted, validate_data

from pumptwin.twin.errors import PumptwinError


class TtfError(PumptwinError, ValueError):
    """Invalid time-to-failure parameters or labels; the message names the value."""


class TimeToFailureRegressor(RegressorMixin, BaseEstimator):
    """Quantile gradient boosting on log time to failure with a split-conformal interval.

    Args:
        alpha: Miscoverage of the interval: ``1 - alpha`` is its nominal coverage (0.2 gives a
            10-90 % interval).
        calibration_fraction: Share of the rows (or of the groups) held out to calibrate.
        max_iter: Boosting iterations of each quantile model.
        learning_rate: Shrinkage of each tree.
        max_leaf_nodes: Leaves per tree.
        min_samples_leaf: Fewest rows in a leaf.
        random_state: Seed of the calibration split and the boosters.

    Attributes:
        low_model_: Regressor of the ``alpha / 2`` quantile of log time.
        median_model_: Regressor of the median of log time.
        high_model_: Regressor of the ``1 - alpha / 2`` quantile of log time.
        conformal_margin_: ``q``, the widening of the log interval learnt on the calibration rows.
        n_calibration_: Calibration rows used.
        n_features_in_: Number of features seen in `fit`.
    """

    def __init__(
        self,
        alpha: float = 0.2,
        calibration_fraction: float = 0.25,
        max_iter: int = 200,
        learning_rate: float = 0.05,
        max_leaf_nodes: int = 15,
        min_samples_leaf: int = 20,
        random_state: int = 0,
    ) -> None:
        self.alpha = alpha
        self.calibration_fraction = calibration_fraction
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.random_state = random_state

    def _check_params(self) -> None:
        if not 0 < self.alpha < 1:
            raise TtfError(f"alpha={self.alpha} must lie in (0, 1)")
        if not 0 < self.calibration_fraction < 1:
            raise TtfError(f"calibration_fraction={self.calibration_fraction} must lie in (0, 1)")
        if self.max_iter < 1 or self.max_leaf_nodes < 2 or self.min_samples_leaf < 1 or not self.learning_rate > 0:  # noqa: PLR2004 - a tree splits at least once
            raise TtfError(
                f"max_iter={self.max_iter}, max_leaf_nodes={self.max_leaf_nodes}, min_samples_leaf="
                f"{self.min_samples_leaf}, learning_rate={self.learning_rate}: need >= 1, >= 2, >= 1, > 0"
            )

    def __sklearn_tags__(self) -> Tags:
        """Declare missing values accepted and targets positive (times to failure)."""
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.target_tags.positive_only = True
        return tags

    def fit(self, X: ArrayLike, y: ArrayLike, groups: ArrayLike | None = None) -> TimeToFailureRegressor:
        """Fit the quantile models on one part of the rows and calibrate the interval on the other.

        Args:
            X: Feature rows of developing faults, shape (n_samples, n_features); NaN allowed.
            y: Time to functional failure of each row, s, finite and > 0.
            groups: Optional history id per row; whole histories are held out for calibration.

        Returns:
            The fitted regressor.

        Raises:
            TtfError: Bad parameters, a label that is not a finite positive time, or too few
                rows (or groups) to split.
        """
        self._check_params()
        y_raw = np.asarray(y, dtype=np.float64).ravel()
        bad = ~(np.isfinite(y_raw) & (y_raw > 0))
        if bad.any():
            raise TtfError(
                f"time to failure must be finite and > 0 s; row {int(np.flatnonzero(bad)[0])} has "
                f"{y_raw[bad][0]!r} (train only on rows where a fault is developing)"
            )
        X_arr, y_arr = validate_data(
            self, X, y, dtype=np.float64, ensure_all_finite="allow-nan", y_numeric=True, ensure_min_samples=4
        )
        X_arr = np.asarray(X_arr, dtype=np.float64)
        y_arr = np.asarray(y_arr, dtype=np.float64)
        calib = self._calibration_mask(len(y_arr), groups)
        log_y = np.log(y_arr)
        half = self.alpha / 2.0
        self.low_model_ = self._booster(half).fit(X_arr[~calib], log_y[~calib])
        self.median_model_ = self._booster(0.5).fit(X_arr[~calib], log_y[~calib])
        self.high_model_ = self._booster(1.0 - half).fit(X_arr[~calib], log_y[~calib])
        low, _, high = self._raw(X_arr[calib])
        self.conformal_margin_ = conformal_margin(log_y[calib], low, high, self.alpha)
        self.n_calibration_ = int(calib.sum())
        return self

    def _calibration_mask(self, n: int, groups: ArrayLike | None) -> np.ndarray:
        rng = np.random.default_rng(self.random_state)
        if groups is None:
            n_cal = min(max(1, round(self.calibration_fraction * n)), n - 1)
            mask = np.zeros(n, dtype=bool)
            mask[rng.permutation(n)[:n_cal]] = True
            return mask
        g = np.asarray(groups)
        if g.shape != (n,):
            raise TtfError(f"groups has shape {g.shape}; expected ({n},)")
        unique = np.unique(g)
        if unique.size < 2:  # noqa: PLR2004 - one group to fit, one to calibrate
            raise TtfError(f"need at least 2 groups to hold one out for calibration, got {unique.size}")
        n_cal = min(max(1, round(self.calibration_fraction * unique.size)), unique.size - 1)
        held = rng.permutation(unique)[:n_cal]
        return np.isin(g, held)

    def _booster(self, quantile: float):  # type: ignore[no-untyped-def]  # noqa: ANN202 - sklearn estimator
        from sklearn.ensemble import HistGradientBoostingRegressor

        return HistGradientBoostingRegressor(
            loss="quantile",
            quantile=quantile,
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            early_stopping=False,
            random_state=self.random_state,
        )

    def _raw(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Uncalibrated low, median and high log times, sorted so that low <= median <= high."""
        stacked = np.sort(
            np.vstack([self.low_model_.predict(X), self.median_model_.predict(X), self.high_model_.predict(X)]), axis=0
        )
        return stacked[0], stacked[1], stacked[2]

    def _validated(self, X: ArrayLike) -> np.ndarray:
        check_is_fitted(self)
        return np.asarray(validate_data(self, X, dtype=np.float64, reset=False, ensure_all_finite="allow-nan"))

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Median time to functional failure per row, s.

        Args:
            X: Feature rows; NaN allowed.

        Returns:
            Times in s.
        """
        return np.exp(self.median_model_.predict(self._validated(X)))

    def predict_interval(self, X: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Calibrated interval and median of the time to functional failure per row, s.

        Args:
            X: Feature rows; NaN allowed.

        Returns:
            ``(low, median, high)`` in s; ``low <= median <= high``, and the interval covers the
            truth with probability about ``1 - alpha``.
        """
        low, mid, high = self._raw(self._validated(X))
        q = self.conformal_margin_
        return np.exp(np.minimum(low - q, mid)), np.exp(mid), np.exp(np.maximum(high + q, mid))


def conformal_margin(y: ArrayLike, low: ArrayLike, high: ArrayLike, alpha: float) -> float:
    """Split-conformal widening of a quantile interval (CQR).

    Args:
        y: True values of the calibration rows.
        low: Lower interval ends on those rows.
        high: Upper interval ends on those rows.
        alpha: Target miscoverage in (0, 1).

    Returns:
        ``q``, the ``ceil((n + 1)(1 - alpha)) / n`` empirical quantile of
        ``max(low - y, y - high)``; infinite when ``n`` is too small for that level.

    Raises:
        TtfError: Mismatched lengths, no rows, or ``alpha`` outside (0, 1).
    """
    y_a, lo, hi = (np.asarray(v, dtype=np.float64) for v in (y, low, high))
    if not (y_a.shape == lo.shape == hi.shape) or y_a.size == 0:
        raise TtfError(
            f"calibration arrays must be non-empty and of one length, got {y_a.shape}, {lo.shape}, {hi.shape}"
        )
    if not 0 < alpha < 1:
        raise TtfError(f"alpha={alpha} must lie in (0, 1)")
    scores = np.sort(np.maximum(lo - y_a, y_a - hi))
    n = scores.size
    rank = math.ceil((n + 1) * (1.0 - alpha))
    if rank > n:
        return math.inf
    return float(scores[rank - 1])
