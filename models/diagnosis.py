"""Failure-mode diagnosis: which degradation mode a pump's feature row shows (scikit-learn estimator).

`FailureModeClassifier` classifies feature rows (rolling sensor statistics and physics residuals
of one pump at one time) as ``healthy`` or as one of the pump degradation modes it was trained on
(`pumptwin.plant.health.PUMP_MODES`: bearing wear, impeller wear, cavitation, seal failure, motor
overheating, strainer clog). It standardises every feature on the training rows (mean and
standard deviation, missing values ignored) and fits a histogram gradient-boosting classifier with
class weights inversely proportional to class frequency, so the rare late stages of a fault weigh
as much as the long healthy stretches. Missing features (a sensor dropout, a rolling window not
yet full) are allowed: the trees route NaN to the side learnt in training. The seed is fixed, so
the same data gives the same model.

`top_deviations` explains a prediction cheaply: the features of a row furthest from the healthy
training rows, in healthy standard deviations. It is not a Shapley attribution, but it names the
sensors a reliability engineer would look at first (a bearing fault shows in DE vibration and
bearing temperature, a clogged strainer in the strainer differential pressure).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(0, 1, (60, 3)), rng.normal(0, 1, (60, 3)) + [4, 0, 0]])
    >>> y = np.array(["healthy"] * 60 + ["bearing_wear"] * 60)
    >>> clf = FailureModeClassifier(max_iter=20).fit(X, y)
    >>> clf.predict([[4.0, 0.0, 0.0]]).tolist()
    ['bearing_wear']
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import Tags
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from pumptwin.twin.errors import PumptwinError

HEALTHY = "healthy"
"""Class label of rows without a developing fault."""


class DiagnosisError(PumptwinError, ValueError):
    """Invalid diagnosis parameters or input; the message names the value."""


class FailureModeClassifier(ClassifierMixin, BaseEstimator):
    """Healthy-or-mode classifier on standardised feature rows (histogram gradient boosting).

    Args:
        max_iter: Boosting iterations (trees per class).
        learning_rate: Shrinkage of each tree.
        max_leaf_nodes: Leaves per tree.
        min_samples_leaf: Fewest training rows in a leaf.
        l2_regularization: L2 penalty on leaf values.
        class_weight: ``"balanced"`` (weights inversely proportional to class frequency) or
            ``None`` (every row weighs 1), or a dict of weights per class.
        random_state: Seed of the booster (binning subsample, feature order).

    Attributes:
        classes_: Class labels, sorted.
        mean_: Per-feature training mean (NaN ignored).
        scale_: Per-feature training standard deviation (NaN ignored, at least 1e-12).
        healthy_center_: Mean standardised row of the ``healthy`` class (zeros if absent).
        healthy_scale_: Standard deviation of the standardised healthy rows (ones if absent).
        model_: The fitted `HistGradientBoostingClassifier`.
        n_iter_: Boosting iterations run.
        n_features_in_: Number of features seen in `fit`.
    """

    def __init__(
        self,
        max_iter: int = 200,
        learning_rate: float = 0.1,
        max_leaf_nodes: int = 31,
        min_samples_leaf: int = 20,
        l2_regularization: float = 0.0,
        class_weight: str | dict[object, float] | None = "balanced",
        random_state: int = 0,
    ) -> None:
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.class_weight = class_weight
        self.random_state = random_state

    def _check_params(self) -> None:
        if self.max_iter < 1 or self.max_leaf_nodes < 2 or self.min_samples_leaf < 1:  # noqa: PLR2004 - a tree splits at least once
            raise DiagnosisError(
                f"max_iter={self.max_iter}, max_leaf_nodes={self.max_leaf_nodes}, "
                f"min_samples_leaf={self.min_samples_leaf}: need >= 1, >= 2 and >= 1"
            )
        if not self.learning_rate > 0 or self.l2_regularization < 0:
            raise DiagnosisError(
                f"learning_rate={self.learning_rate} must be > 0 and l2_regularization={self.l2_regularization} >= 0"
            )
        if not (self.class_weight in ("balanced", None) or isinstance(self.class_weight, dict)):
            raise DiagnosisError(f"class_weight={self.class_weight!r}: use 'balanced', None or a dict class -> weight")

    def __sklearn_tags__(self) -> Tags:
        """Declare that missing values are accepted."""
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> FailureModeClassifier:
        """Standardise the features and fit the booster.

        Args:
            X: Feature rows, shape (n_samples, n_features); NaN allowed.
            y: Class per row: ``healthy`` or a mode name.
            sample_weight: Weight per row on top of the class weights (None: 1 each), e.g. more
                for rows a person confirmed (a rejected false alarm).

        Returns:
            The fitted classifier.

        Raises:
            DiagnosisError: Bad parameters.
        """
        from sklearn.ensemble import HistGradientBoostingClassifier

        self._check_params()
        X_arr, y_arr = validate_data(self, X, y, dtype=np.float64, ensure_all_finite="allow-nan")
        check_classification_targets(y_arr)
        X_arr = np.asarray(X_arr, dtype=np.float64)
        self.mean_, self.scale_ = _nan_moments(X_arr)
        Z = (X_arr - self.mean_) / self.scale_
        healthy = np.asarray(y_arr == HEALTHY) if np.asarray(y_arr).dtype.kind in "OUS" else np.zeros(len(Z), bool)
        if healthy.sum() >= 2:  # noqa: PLR2004 - a spread needs two rows
            self.healthy_center_, self.healthy_scale_ = _nan_moments(Z[healthy])
        else:
            self.healthy_center_ = np.zeros(Z.shape[1])
            self.healthy_scale_ = np.ones(Z.shape[1])
        self.model_ = HistGradientBoostingClassifier(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            class_weight=self.class_weight,
            early_stopping=False,
            random_state=self.random_state,
        ).fit(Z, y_arr, sample_weight=None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64))
        self.classes_ = self.model_.classes_
        self.n_iter_ = int(self.model_.n_iter_)
        return self

    def _standardise(self, X: ArrayLike) -> np.ndarray:
        check_is_fitted(self)
        X_arr = validate_data(self, X, dtype=np.float64, reset=False, ensure_all_finite="allow-nan")
        return (np.asarray(X_arr, dtype=np.float64) - self.mean_) / self.scale_

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class probabilities per row.

        Args:
            X: Feature rows; NaN allowed.

        Returns:
            Array (n_samples, n_classes) in the order of ``classes_``.
        """
        Z = self._standardise(X)
        return np.asarray(self.model_.predict_proba(Z))

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Most probable class per row.

        Args:
            X: Feature rows; NaN allowed.

        Returns:
            Labels drawn from ``classes_``.
        """
        proba = self.predict_proba(X)
        return np.asarray(self.classes_[np.argmax(proba, axis=1)])


def _nan_moments(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column mean and standard deviation ignoring NaN (0 and 1 for an all-NaN column)."""
    finite = np.isfinite(X)
    n = finite.sum(axis=0)
    filled = np.where(finite, X, 0.0)
    mean = np.divide(filled.sum(axis=0), n, out=np.zeros(X.shape[1]), where=n > 0)
    sq = np.where(finite, (X - mean) ** 2, 0.0).sum(axis=0)
    var = np.divide(sq, n - 1, out=np.ones(X.shape[1]), where=n > 1)
    return mean, np.maximum(np.sqrt(var), 1e-12)


def top_deviations(
    classifier: FailureModeClassifier, X: ArrayLike, feature_names: Sequence[str], k: int = 3
) -> list[list[tuple[str, float]]]:
    """The ``k`` features of each row furthest from the healthy training rows.

    Args:
        classifier: A fitted classifier.
        X: Feature rows.
        feature_names: Names of the columns of ``X``.
        k: Features per row.

    Returns:
        Per row, ``(feature, z)`` pairs sorted by ``|z|`` descending, where ``z`` is the row's
        distance from the healthy mean in healthy standard deviations (NaN features skipped).

    Raises:
        DiagnosisError: ``k < 1`` or a name count that does not match the features.
    """
    if k < 1:
        raise DiagnosisError(f"k={k} must be at least 1")
    Z = classifier._standardise(X)
    if len(feature_names) != Z.shape[1]:
        raise DiagnosisError(f"{len(feature_names)} feature names for {Z.shape[1]} features")
    dev = (Z - classifier.healthy_center_) / classifier.healthy_scale_
    out: list[list[tuple[str, float]]] = []
    for row in dev:
        order = np.argsort(-np.nan_to_num(np.abs(row), nan=-1.0))
        picked = [j for j in order if np.isfinite(row[j])][:k]
        out.append([(str(feature_names[j]), float(row[j])) for j in picked])
    return out
