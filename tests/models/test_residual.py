"""Two-sided CUSUM on physics residuals, on tiny synthetic residual series."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.utils.estimator_checks import parametrize_with_checks

from pumptwin.models.residual import ResidualCusumDetector, ResidualError, two_sided_cusum

NAMES = ["head_residual_m", "power_residual_w", "efficiency_residual", "vibration_ratio"]


def residuals(n: int, seed: int) -> pd.DataFrame:
    """Healthy residual columns: zero-mean noise in each column's units, vibration ratio near 1.

    Example (seed 0, rounded):

        head_residual_m  power_residual_w  efficiency_residual  vibration_ratio
                   0.13             -13.2                0.006             1.09
    """
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "head_residual_m": 0.1 * rng.normal(size=n),
            "power_residual_w": 100.0 * rng.normal(size=n),
            "efficiency_residual": 0.01 * rng.normal(size=n),
            "vibration_ratio": 1.0 + 0.05 * rng.normal(size=n),
        }
    )


@pytest.fixture(scope="module")
def fitted() -> ResidualCusumDetector:
    return ResidualCusumDetector(min_threshold=5.0).fit(residuals(400, 1))


def test_cusum_against_hand_recursion():
    z = np.array([[1.0], [2.0], [-0.5], [-3.0], [0.0]])
    # k = 0.5: S+ = 0.5, 2.0, 1.0, 0.0, 0.0; S- = 0, 0, 0, 2.5, 2.0
    np.testing.assert_allclose(two_sided_cusum(z, 0.5)[:, 0], [0.5, 2.0, 1.0, 2.5, 2.0])


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-5, 5), min_size=1, max_size=40), st.floats(0, 2))
def test_cusum_is_non_negative_and_symmetric(values, k):
    z = np.array(values)[:, None]
    s = two_sided_cusum(z, k)
    assert np.all(s >= 0)
    np.testing.assert_allclose(s, two_sided_cusum(-z, k))


@pytest.mark.parametrize("fault", ["step", "drift", "variance"])
def test_flags_faults_and_names_the_residual(fitted, fault):
    test = residuals(300, 2)
    col = "efficiency_residual"
    if fault == "step":
        test.loc[150:, col] -= 0.015  # 1.5 standard deviations: wear lowers efficiency
    elif fault == "drift":
        test.loc[150:, col] -= np.linspace(0, 0.03, 150)
    else:
        test.loc[150:, col] *= 4.0
    pred = fitted.predict(test) == -1
    assert pred[200:].mean() > 0.8
    assert pred[:150].mean() < 0.1
    contrib = fitted.contributions(test)
    assert contrib.shape == (300, 4)
    alarming = contrib.max(axis=1) > 1.0
    assert np.all(contrib[alarming & (np.arange(300) >= 150)].argmax(axis=1) == NAMES.index(col))


def test_false_alarm_rate_on_healthy_rows_near_calibration(fitted):
    far = (fitted.predict(residuals(2000, 3)) == -1).mean()
    assert far < 0.05


def test_threshold_is_the_training_quantile_above_the_floor():
    train = residuals(400, 1)
    det = ResidualCusumDetector(quantile=0.9, min_threshold=1e-6).fit(train)
    z = (train.to_numpy() - np.median(train.to_numpy(), axis=0)) / det.scale_
    np.testing.assert_allclose(det.thresholds_, np.quantile(two_sided_cusum(z, 0.5), 0.9, axis=0))
    floored = ResidualCusumDetector(min_threshold=50.0).fit(train)
    np.testing.assert_array_equal(floored.thresholds_, 50.0)


def test_robust_to_outliers_in_training():
    train = residuals(400, 4)
    spiky = train.copy()
    spiky.iloc[::50, 0] += 5.0  # a few gross spikes barely move the median and MAD
    a, b = ResidualCusumDetector().fit(train), ResidualCusumDetector().fit(spiky)
    np.testing.assert_allclose(a.scale_[0], b.scale_[0], rtol=0.1)


def test_sign_convention_and_determinism(fitted):
    test = residuals(200, 5)
    test.loc[100:, "vibration_ratio"] += 0.2
    s, d, p = fitted.score_samples(test), fitted.decision_function(test), fitted.predict(test)
    np.testing.assert_allclose(d, s + 1.0)
    np.testing.assert_array_equal(p == -1, d < 0)
    again = ResidualCusumDetector(min_threshold=5.0).fit(residuals(400, 1)).score_samples(test)
    np.testing.assert_array_equal(s, again)


def test_pickle_round_trip(fitted):
    test = residuals(50, 6)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(fitted)).score_samples(test), fitted.score_samples(test))
    assert list(fitted.feature_names_in_) == NAMES


def test_bad_input(fitted):
    bad = residuals(50, 7)
    bad.iloc[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ResidualCusumDetector().fit(bad)
    with pytest.raises(ValueError, match="(?i)feature"):
        fitted.predict(residuals(20, 8).iloc[:, :3])
    with pytest.raises(ValueError, match="sample"):
        ResidualCusumDetector().fit(residuals(2, 9))
    with pytest.raises(ResidualError, match="k=-1"):
        ResidualCusumDetector(k=-1).fit(residuals(20, 9))


_CUSUM = {
    "check_methods_subset_invariance": "sequential test: a row's statistic accumulates earlier rows",
    "check_methods_sample_order_invariance": "sequential test: a row's statistic accumulates earlier rows",
}


@parametrize_with_checks([ResidualCusumDetector()], expected_failed_checks=lambda est: _CUSUM)
def test_sklearn_compatible(estimator, check):
    check(estimator)
