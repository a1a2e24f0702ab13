"""Calibrated ensemble of detectors and its threshold calibration, on tiny synthetic series."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.ensemble import IsolationForest
from sklearn.utils.estimator_checks import parametrize_with_checks

from pumptwin.models.autoencoder import WindowAutoencoder
from pumptwin.models.detectors import PcaT2QDetector
from pumptwin.models.ensemble import (
    TIE_RTOL,
    CalibratedEnsemble,
    EnsembleError,
    calibrate_threshold,
    skab_ensemble,
)
from pumptwin.models.residual import ResidualCusumDetector


def correlated(n: int, seed: int) -> np.ndarray:
    """Four sensors: two driven by a common load, plus independent noise (one row per sample)."""
    rng = np.random.default_rng(seed)
    load = rng.normal(size=n)
    return np.column_stack(
        [load + 0.3 * rng.normal(size=n), 2 * load + 0.3 * rng.normal(size=n), rng.normal(size=(n, 2))]
    )


def members() -> list:
    return [
        PcaT2QDetector(n_components=2),
        ResidualCusumDetector(),
        WindowAutoencoder(window=4, hidden=4, latent=2, epochs=6, random_state=0),
    ]


@pytest.fixture(scope="module")
def fitted() -> CalibratedEnsemble:
    return CalibratedEnsemble(members(), target_far=0.02).fit(correlated(800, 1))


# --- calibrate_threshold ------------------------------------------------------------------------


def test_threshold_by_hand():
    scores = np.arange(1.0, 11.0)  # 1..10
    assert calibrate_threshold(scores, 0.1) == 9.5  # one score (10) of ten exceeds it; halfway from 9 to 10
    assert calibrate_threshold(scores, 0.25) == 8.5  # two exceed 8.5; below 8 three would
    assert calibrate_threshold(scores, 0.0) == pytest.approx(10.0 + 1e-8)  # just above the highest score


def test_ties_at_the_threshold_stay_below_it():
    # half the scores are 0, 40 % are 1, 10 % are 2: the 90th of 100 is a 1, tied with 39 others
    scores = np.repeat([0.0, 1.0, 2.0], [50, 40, 10])
    thr = calibrate_threshold(scores, 0.1)
    assert thr == 1.5  # every tied score is below the threshold, none lies on it
    # the same rows scored again with rounding one unit in the last place higher keep the target
    assert np.mean(np.nextafter(scores, np.inf) > thr) == pytest.approx(0.1)
    # scores that differ by rounding only count as one tie
    near = np.concatenate([np.repeat(1.0, 9), [1.0 + 1e-15, 3.0]])  # the 9th of 11 is a 1.0
    assert calibrate_threshold(near, 0.2) == pytest.approx(2.0)
    assert calibrate_threshold(np.zeros(5), 0.1) == 0.0
    # a tie tolerance that underflows to 0 (subnormal scores) still puts the threshold above the score
    assert calibrate_threshold(np.array([5e-324]), 0.0) > 5e-324


@settings(max_examples=60, deadline=None)
@given(
    st.one_of(
        st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=200),
        st.lists(st.integers(-3, 3).map(float), min_size=1, max_size=200),  # many exact ties
    ),
    st.floats(0, 0.99),
)
def test_threshold_meets_target_and_is_smallest(values, far):
    s = np.array(values)
    thr = calibrate_threshold(s, far)
    assert np.mean(s > thr) <= far + 1e-12
    # the smallest observed score that meets the target, found by brute force
    cut = min(v for v in np.unique(s) if np.mean(s > v) <= far)
    assert np.mean(s >= cut) > far or cut == s.min()  # any lower threshold would break the target
    tol = TIE_RTOL * np.abs(s).max()
    between = s[(s >= cut) & (s < thr)]
    assert np.all(between - cut <= tol)  # only scores tied with the cut lie under the threshold above it
    if np.abs(s).max() > 0:
        assert np.all(s != thr)  # no score lies on the threshold


def test_threshold_rejects_bad_input():
    with pytest.raises(EnsembleError, match="at least one"):
        calibrate_threshold([], 0.1)
    with pytest.raises(EnsembleError, match="non-finite"):
        calibrate_threshold([1.0, np.nan], 0.1)
    with pytest.raises(EnsembleError, match="target_far=1.5"):
        calibrate_threshold([1.0], 1.5)


# --- the ensemble ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["step", "drift", "variance"])
def test_flags_injected_faults(fitted, fault):
    test = correlated(300, 2)
    if fault == "step":
        test[150:, 2] += 5.0
    elif fault == "drift":
        test[150:, 1] += np.linspace(0, 8.0, 150)
    else:
        test[150:, 3] *= 4.0
    pred = fitted.predict(test) == -1
    assert (pred[225:] if fault == "drift" else pred[170:]).mean() > 0.8
    assert pred[:150].mean() < 0.1


def test_false_alarm_rate_near_target():
    far = {}
    for target in (0.02, 0.1):
        ens = CalibratedEnsemble([PcaT2QDetector(n_components=2), IsolationForest(random_state=0)], target_far=target)
        ens.fit(correlated(2000, 3))
        far[target] = (ens.predict(correlated(4000, 4)) == -1).mean()
        assert 0.25 * target < far[target] < 2.5 * target
    assert far[0.02] < far[0.1]


def test_persistence_lowers_false_alarms():
    train, test = correlated(800, 5), correlated(2000, 6)
    one = CalibratedEnsemble([PcaT2QDetector()], target_far=0.05).fit(train)
    held = CalibratedEnsemble([PcaT2QDetector()], target_far=0.05, min_run=3).fit(train)
    assert (held.predict(test) == -1).mean() < (one.predict(test) == -1).mean()


def test_contributions_name_the_member_and_fusions(fitted):
    test = correlated(300, 7)
    test[150:, 3] += 1.0  # a persistent one-sigma shift: the CUSUM accumulates it, row-wise T2 barely moves
    contrib = fitted.contributions(test)
    assert contrib.shape == (300, 3)
    np.testing.assert_allclose(-contrib.max(axis=1), fitted.score_samples(test))
    late = contrib[200:]
    assert np.median(late[:, 1]) > 1.0
    assert np.mean(late.argmax(axis=1) == 1) > 0.9
    mean = CalibratedEnsemble(members(), target_far=0.02, fusion="mean").fit(correlated(800, 1))
    np.testing.assert_allclose(-mean.contributions(test).mean(axis=1), mean.score_samples(test))


def test_sign_convention(fitted):
    test = correlated(200, 8)
    test[100:, 2] += 6.0
    s, d, p = fitted.score_samples(test), fitted.decision_function(test), fitted.predict(test)
    np.testing.assert_allclose(d, s + 1.0)
    np.testing.assert_array_equal(p == -1, d < 0)


def test_refit_uses_all_rows_and_members_are_not_modified():
    train = correlated(400, 9)
    template = PcaT2QDetector(n_components=2)
    a = CalibratedEnsemble([template], refit=False).fit(train)
    b = CalibratedEnsemble([template], refit=True).fit(train)
    assert not hasattr(template, "mean_")
    np.testing.assert_allclose(a.detectors_[0].mean_, train[:300].mean(axis=0))
    np.testing.assert_allclose(b.detectors_[0].mean_, train.mean(axis=0))


def test_reproducible_and_pickles(fitted):
    test = correlated(100, 10)
    again = CalibratedEnsemble(members(), target_far=0.02).fit(correlated(800, 1))
    np.testing.assert_array_equal(again.score_samples(test), fitted.score_samples(test))
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.score_samples(test), fitted.score_samples(test))


def test_bad_input(fitted):
    X = correlated(100, 11)
    X[7, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        CalibratedEnsemble([PcaT2QDetector()]).fit(X)
    with pytest.raises(ValueError, match="features"):
        fitted.predict(correlated(20, 12)[:, :2])
    with pytest.raises(ValueError, match="sample"):
        CalibratedEnsemble([PcaT2QDetector()]).fit(correlated(5, 13))
    with pytest.raises(EnsembleError, match="empty"):
        CalibratedEnsemble([]).fit(correlated(50, 14))
    with pytest.raises(EnsembleError, match="fusion='median'"):
        CalibratedEnsemble([PcaT2QDetector()], fusion="median").fit(correlated(50, 14))


def test_skab_ensemble_is_one_general_setting():
    ens = skab_ensemble()
    assert ens.target_far == 0.1 and ens.min_run == 20
    assert ens.fit(correlated(400, 15)).threshold_ > 0


# The SKAB setting smooths over earlier rows and drops alarms shorter than min_run rows.
_CAUSAL_PERSISTENT = {
    "check_methods_subset_invariance": "causal smoothing: a row's score depends on earlier rows",
    "check_methods_sample_order_invariance": "causal smoothing: a row's score depends on earlier rows",
    "check_outliers_fit_predict": "persistence filter: short alarms are dropped by predict",
    "check_outliers_train": "persistence filter: short alarms are dropped by predict",
}


@parametrize_with_checks(
    [CalibratedEnsemble([PcaT2QDetector(n_components=2)]), skab_ensemble()],
    expected_failed_checks=lambda est: _CAUSAL_PERSISTENT if est.min_run > 1 else {},
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


class Quantised(OutlierMixin, BaseEstimator):
    """A stateless member whose anomaly score is the first sensor's magnitude: whole numbers tie."""

    def fit(self, X, y=None):
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def score_samples(self, X):
        return -np.abs(np.asarray(X, dtype=float)[:, 0])


def test_rows_tied_at_the_threshold_keep_the_calibrated_false_alarm_rate():
    # sensor 0 takes the values 0..3 in turn: a quarter of the rows tie at each level
    X = np.column_stack([np.tile(np.arange(4.0), 100), np.zeros(400)])
    ens = CalibratedEnsemble([Quantised()], target_far=0.3).fit(X)
    held_out = X[-100:]
    assert (ens.predict(held_out) == -1).mean() <= 0.3
    # the same rows scored again with rounding one unit in the last place higher: a threshold on
    # a tied score would let the quarter of rows on it through (50 % false alarms)
    rounded = np.column_stack([np.nextafter(held_out[:, 0], np.inf), held_out[:, 1]])
    assert (ens.predict(rounded) == -1).mean() == pytest.approx(0.25)


def test_a_member_quiet_on_every_held_out_row_is_judged_against_its_own_boundary():
    # A CUSUM with a large allowance stays at 0 on healthy rows: its held-out quantile is 0.
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 2))
    template = ResidualCusumDetector(k=5.0, min_threshold=1.0)
    later = X[:50] + np.array([0.0, 5.05])  # the CUSUM grows by 0.05 per row: ratio 0.05..2.5
    ratio = -template.fit(X[:300]).score_samples(later)
    floored = CalibratedEnsemble([template], target_far=0.01, min_scale=1.0, min_threshold=1.0).fit(X)
    assert floored.scales_[0] == 1.0 and floored.threshold_ == 1.0
    np.testing.assert_allclose(-floored.score_samples(later), ratio)  # alarm exactly at the member's boundary
    unfloored = CalibratedEnsemble([template], target_far=0.01).fit(X)
    assert unfloored.scales_[0] == pytest.approx(1e-12)
    assert (-unfloored.score_samples(later)).max() > 1e9  # the flaw the floor removes
    with pytest.raises(EnsembleError, match="min_scale"):
        CalibratedEnsemble([template], min_scale=0.0).fit(X)
