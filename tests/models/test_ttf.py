"""Time-to-failure regressor: interval coverage near nominal on synthetic data; conformal margin by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from pumptwin.models.evaluation import interval_coverage
from pumptwin.models.ttf import TimeToFailureRegressor, TtfError, conformal_margin


@pytest.fixture(autouse=True)
def _one_thread():
    """Boosting on one OpenMP thread: on a shared machine, thread contention costs more than it saves."""
    with threadpool_limits(limits=1):
        yield


def histories(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows whose first feature is a noisy health index of log time to failure; 20 rows a history."""
    rng = np.random.default_rng(seed)
    ttf = np.exp(rng.uniform(np.log(600.0), np.log(20 * 86_400.0), n))
    X = np.c_[np.log(ttf) + rng.normal(0.0, 0.4, n), rng.normal(size=n), rng.normal(size=n)]
    groups = np.arange(n) // 20
    return X, ttf, groups


def test_conformal_margin_by_hand():
    # Scores max(low - y, y - high): [-1, 2, 0.5, -0.5]; sorted [-1, -0.5, 0.5, 2].
    y = np.array([1.0, 5.0, 0.5, 2.0])
    low = np.array([0.0, 0.0, 1.0, 0.0])
    high = np.array([2.0, 3.0, 2.0, 2.5])
    assert conformal_margin(y, low, high, alpha=0.5) == 0.5  # rank ceil(5 * 0.5) = 3
    assert conformal_margin(y, low, high, alpha=0.25) == 2.0  # rank ceil(3.75) = 4
    assert conformal_margin(y, low, high, alpha=0.1) == math.inf  # rank 5 > 4 rows
    with pytest.raises(TtfError, match="alpha"):
        conformal_margin(y, low, high, alpha=1.0)


@pytest.mark.parametrize("alpha", [0.2, 0.5])
def test_interval_coverage_near_nominal_on_new_histories(alpha):
    X, y, groups = histories(2000, seed=0)
    X_new, y_new, _ = histories(2000, seed=1)
    model = TimeToFailureRegressor(alpha=alpha, max_iter=40, calibration_fraction=0.4).fit(X, y, groups=groups)
    low, mid, high = model.predict_interval(X_new)
    assert np.all(low <= mid) and np.all(mid <= high)
    coverage = interval_coverage(y_new, low, high)
    assert abs(coverage - (1 - alpha)) < 0.05
    np.testing.assert_allclose(model.predict(X_new), mid)
    # the median tracks the truth: within a factor 2 for most rows
    assert np.mean(np.abs(np.log(mid / y_new)) < np.log(2.0)) > 0.7


def test_calibration_widens_an_overconfident_interval():
    X, y, groups = histories(1500, seed=2)
    model = TimeToFailureRegressor(alpha=0.2, max_iter=40, min_samples_leaf=5).fit(X, y, groups=groups)
    low, _, high = model._raw(X[:200])
    lo_c, _, hi_c = model.predict_interval(X[:200])
    np.testing.assert_allclose(np.log(lo_c), np.minimum(low - model.conformal_margin_, np.log(model.predict(X[:200]))))
    assert model.n_calibration_ > 0


def test_reproducible():
    X, y, groups = histories(400, seed=3)
    a = TimeToFailureRegressor(max_iter=20).fit(X, y, groups=groups).predict_interval(X)
    b = TimeToFailureRegressor(max_iter=20).fit(X, y, groups=groups).predict_interval(X)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)


def test_rejects_rows_without_a_developing_fault():
    X, y, _ = histories(50, seed=4)
    y[7] = np.nan
    with pytest.raises(TtfError, match="row 7"):
        TimeToFailureRegressor(max_iter=5).fit(X, y)
    y[7] = -1.0
    with pytest.raises(TtfError, match="finite and > 0"):
        TimeToFailureRegressor(max_iter=5).fit(X, y)


def test_one_group_cannot_be_split():
    X, y, _ = histories(50, seed=5)
    with pytest.raises(TtfError, match="2 groups"):
        TimeToFailureRegressor(max_iter=5).fit(X, y, groups=np.zeros(50))
    with pytest.raises(TtfError, match="alpha"):
        TimeToFailureRegressor(alpha=0.0).fit(X, y)
