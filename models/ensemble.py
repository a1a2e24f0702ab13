"""Ensemble of anomaly detectors with an alarm threshold calibrated to a target false-alarm rate.

`CalibratedEnsemble` fits each member detector on the first rows of a fault-free training
stretch and holds the last ``calibration_fraction`` of it out. On those held-out healthy rows it

1. normalises each member: its anomaly score (``-score_samples``, higher is more abnormal) is
   divided by the member's own ``1 - target_far`` quantile on the held-out rows (from
   `calibrate_threshold`), so that every member crosses 1 on about the same fraction of healthy
   rows whatever its units;
2. fuses the normalised scores by their maximum (any member may raise the alarm) or their mean
   (members must agree);
3. sets the alarm threshold with `calibrate_threshold` so that the fused score exceeds it on at
   most ``target_far`` of the held-out rows. Held-out scores tied at the threshold all stay below
   it and none lies on it, so recomputing the same rows (another batch size, another rounding)
   cannot push tied rows over it and the calibrated rate holds.

An alarm is a threshold crossing that persists ``min_run`` rows. Row-wise, the false-alarm rate
on healthy rows like the held-out ones is then at most about ``target_far`` (the persistence
filter lowers it further). With ``refit=True`` the members are then refitted on all training
rows and keep the calibrated scales: each member's score is already a ratio to a threshold it
sets on its own training rows, so the scales carry over while the members see more of the
healthy operating range. `CalibratedEnsemble.contributions` gives each member's share of every
row's score for explanations. Rows are read in time order; members may be causal or windowed,
so scores of a row may depend on earlier rows.

Example:
    >>> import numpy as np
    >>> from models.detectors import PcaT2QDetector
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(400, 4))
    >>> ens = CalibratedEnsemble([PcaT2QDetector()], target_far=0.01).fit(X)
    >>> bool((ens.predict(X[:100] + 6.0) == -1).mean() > 0.9)
    True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, OutlierMixin, clone
from sklearn.utils.validation import check_is_fitted, validate_data

from pumptwin.models.detectors import PcaT2QDetector, ThresholdAlarmMixin
from pumptwin.twin.errors import PumptwinError


class EnsembleError(PumptwinError, ValueError):
    """Bad parameters or input for the ensemble or its calibration."""


MIN_ROWS = 2
"""Fewest rows to fit the members on, and fewest held out to calibrate on."""

FUSIONS = ("max", "mean")
"""How normalised member scores combine: ``max`` (any member alarms) or ``mean`` (they average)."""


TIE_RTOL = 1e-9
"""Scores closer than this fraction of the largest score magnitude count as tied at the threshold."""


def calibrate_threshold(scores: ArrayLike, target_far: float) -> float:
    """An alarm threshold that at most ``target_far`` of healthy ``scores`` exceed, clear of every score.

    The ``ceil((1 - target_far) n)``-th smallest of the ``n`` scores is the smallest observed score
    that meets the target. Scores tied with it (within ``TIE_RTOL`` of the largest score magnitude)
    all stay below the threshold, which lies halfway between the highest of them and the next
    higher score (or just above the highest score when there is none). No calibration score lies
    on the threshold, so rounding in a later recomputation of the same rows cannot move one of
    them across it, and ``mean(scores > threshold) <= target_far`` holds on the calibration scores
    whatever the ties.

    Args:
        scores: Anomaly scores of healthy rows (higher is more abnormal), finite.
        target_far: Target false-alarm rate, a fraction in [0, 1).

    Returns:
        The threshold.

    Raises:
        EnsembleError: When ``scores`` is empty or not finite, or ``target_far`` is outside [0, 1).
    """
    s = np.sort(np.asarray(scores, dtype=float).ravel())
    if s.size == 0:
        raise EnsembleError("calibrate_threshold needs at least one score")
    if not np.all(np.isfinite(s)):
        raise EnsembleError(f"calibrate_threshold got {int(np.sum(~np.isfinite(s)))} non-finite scores")
    if not 0 <= target_far < 1:
        raise EnsembleError(f"target_far={target_far} must lie in [0, 1)")
    k = int(np.ceil((1.0 - target_far) * s.size - 1e-9))
    order_statistic = s[max(k, 1) - 1]
    tol = TIE_RTOL * float(np.max(np.abs(s)))
    above = s[s > order_statistic + tol]
    top_tied = float(s[s <= order_statistic + tol][-1])
    # the least float above the tied scores, for a tolerance that underflows to 0 (subnormal scores);
    # all-zero scores keep their threshold at 0
    clear = float(np.nextafter(top_tied, np.inf)) if tol == 0 and np.any(s != 0) else top_tied
    if above.size == 0:
        return max(top_tied + tol, clear)
    return max(top_tied + (float(above[0]) - top_tied) / 2.0, clear)


class CalibratedEnsemble(ThresholdAlarmMixin, OutlierMixin, BaseEstimator):
    """Fuse detectors' normalised scores and alarm at a threshold calibrated to ``target_far``.

    Members are scikit-learn outlier detectors whose ``score_samples`` is lower for more abnormal
    rows (`models.detectors.PcaT2QDetector`, `models.autoencoder.WindowAutoencoder`,
    `models.residual.ResidualCusumDetector`, or sklearn's own); they are cloned, never modified.

    Args:
        detectors: Member detectors (unfitted templates).
        target_far: Target fraction of healthy rows above the threshold.
        min_run: Rows an alarm must persist to be kept.
        fusion: ``"max"`` or ``"mean"`` of the normalised member scores.
        calibration_fraction: Last fraction of the training rows held out for calibration.
        refit: After calibration, refit the members on all training rows (their scores are
            ratios to thresholds calibrated on their own training rows, so the calibration
            carries over); otherwise keep the members fitted on the first rows only.
        min_scale: Floor of each member's scale. Members whose score is already a ratio to a
            boundary of their own (every detector in `models`: 1 is their own threshold) take
            1.0, so a member that stayed quiet on every held-out row (a CUSUM at 0) is judged
            against its own boundary rather than against a vanishing scale that would turn any
            later non-zero score into a huge alarm. The default only guards a division by zero.
        min_threshold: Floor of the fused alarm threshold, in normalised units (1.0 with
            ``min_scale=1.0`` and ``fusion="max"``: no alarm below every member's own boundary).

    Attributes:
        detectors_: Fitted clones of the members.
        scales_: Per member, its ``1 - target_far`` anomaly-score quantile on the held-out rows,
            at least ``min_scale``.
        threshold_: Alarm threshold of the fused normalised score, at least ``min_threshold``.
        n_features_in_: Number of sensors seen in `fit`.
        offset_: Always -1: ``score_samples`` is minus the fused score over ``threshold_``.
    """

    def __init__(
        self,
        detectors: Sequence[BaseEstimator] = (),
        target_far: float = 0.01,
        min_run: int = 1,
        fusion: str = "max",
        calibration_fraction: float = 0.25,
        refit: bool = False,
        min_scale: float = 1e-12,
        min_threshold: float = 1e-12,
    ) -> None:
        self.detectors = detectors
        self.target_far = target_far
        self.min_run = min_run
        self.fusion = fusion
        self.calibration_fraction = calibration_fraction
        self.refit = refit
        self.min_scale = min_scale
        self.min_threshold = min_threshold

    def _check_params(self) -> None:
        if len(self.detectors) == 0:
            raise EnsembleError("detectors is empty: the ensemble needs at least one member")
        if not 0 < self.target_far < 1:
            raise EnsembleError(f"target_far={self.target_far} must lie in (0, 1)")
        if int(self.min_run) != self.min_run or self.min_run < 1:
            raise EnsembleError(f"min_run={self.min_run} must be an integer of at least 1")
        if self.fusion not in FUSIONS:
            raise EnsembleError(f"fusion={self.fusion!r} must be one of {FUSIONS}")
        if not 0 < self.calibration_fraction < 1:
            raise EnsembleError(f"calibration_fraction={self.calibration_fraction} must lie in (0, 1)")
        if not self.min_scale > 0 or not self.min_threshold > 0:
            raise EnsembleError(f"min_scale={self.min_scale} and min_threshold={self.min_threshold} must be positive")

    def fit(self, X: ArrayLike, y: object = None) -> CalibratedEnsemble:
        """Fit the members on the first rows of ``X`` and calibrate on the held-out last rows.

        Args:
            X: Fault-free rows in time order, shape (n_samples, n_features).
            y: Ignored.

        Returns:
            The fitted ensemble.

        Raises:
            EnsembleError: On bad parameters; ValueError on NaN, infinite values or too few rows.
        """
        self._check_params()
        X = np.asarray(validate_data(self, X, dtype=np.float64, ensure_min_samples=8))
        n_cal = max(MIN_ROWS, int(round(self.calibration_fraction * len(X))))
        if len(X) - n_cal < MIN_ROWS:
            raise EnsembleError(f"{len(X)} training rows leave too few to fit after {n_cal} calibration rows")
        self.detectors_ = [clone(d).fit(X[:-n_cal]) for d in self.detectors]
        # Members are scored over all training rows so causal members carry their history into
        # the calibration rows, as they do when monitoring.
        raw = self._member_scores(X)[-n_cal:]
        scales = [max(calibrate_threshold(col, self.target_far), self.min_scale) for col in raw.T]
        self.scales_ = np.array(scales)
        fused = self._fuse(raw / self.scales_)
        self.threshold_ = max(calibrate_threshold(fused, self.target_far), self.min_threshold)
        if self.refit:
            self.detectors_ = [clone(d).fit(X) for d in self.detectors]
        self.offset_ = -1.0
        return self

    def _member_scores(self, X: np.ndarray) -> np.ndarray:
        """Anomaly score (``-score_samples``, clipped at 0) of each member, shape (n, n_members)."""
        cols = [np.maximum(-np.asarray(d.score_samples(X), dtype=float), 0.0) for d in self.detectors_]
        return np.column_stack(cols)

    def _fuse(self, normalised: np.ndarray) -> np.ndarray:
        return normalised.max(axis=1) if self.fusion == "max" else normalised.mean(axis=1)

    def _normalised(self, X: ArrayLike) -> np.ndarray:
        check_is_fitted(self)
        X = np.asarray(validate_data(self, X, dtype=np.float64, reset=False))
        return self._member_scores(X) / self.scales_

    def contributions(self, X: ArrayLike) -> np.ndarray:
        """Each member's normalised score over the alarm threshold, per row.

        With ``fusion="max"`` a row alarms where any column exceeds 1 and the largest column names
        the member that raised it; with ``"mean"`` the columns average to the fused ratio.

        Args:
            X: Rows in time order.

        Returns:
            Array of shape (n_samples, n_members).
        """
        return self._normalised(X) / self.threshold_

    def score_samples(self, X: ArrayLike) -> np.ndarray:
        """Normality of each row: minus the fused normalised score over the alarm threshold.

        Args:
            X: Rows in time order.

        Returns:
            Scores, lower is more abnormal; below -1 is beyond the threshold.
        """
        return -self._fuse(self._normalised(X)) / self.threshold_


def skab_ensemble(target_far: float = 0.1, min_run: int = 20, smooth: int = 10) -> CalibratedEnsemble:
    """A SKAB setting: one general configuration for every file and fault.

    PCA T-squared + Q on sensors standardised with a 2 % scale floor and smoothed over ``smooth``
    rows, the alarm threshold calibrated to a ``target_far`` row-wise false-alarm budget on the
    held-out last quarter of the training rows, alarms kept when they last ``min_run`` rows.
    `benchmarks.skab` chooses among a small grid of these by leave-one-group-out.

    Args:
        target_far: Row-wise false-alarm budget on the held-out healthy rows.
        min_run: Rows an alarm must persist to be kept.
        smooth: Rows of the causal moving average of the standardised sensors.

    Returns:
        An unfitted ensemble.
    """
    member = PcaT2QDetector(n_components=0.9, smooth=smooth, scale_floor=0.02)
    return CalibratedEnsemble([member], target_far=target_far, min_run=min_run, refit=True)
