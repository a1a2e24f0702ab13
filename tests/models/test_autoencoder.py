"""The windowed convolutional autoencoder detector on tiny synthetic sensor series."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from pumptwin.models.autoencoder import AutoencoderError, WindowAutoencoder, sliding_windows


def correlated(n: int, seed: int) -> np.ndarray:
    """Four sensors: two driven by a common load, plus independent noise (one row per sample)."""
    rng = np.random.default_rng(seed)
    load = rng.normal(size=n)
    return np.column_stack(
        [load + 0.3 * rng.normal(size=n), 2 * load + 0.3 * rng.normal(size=n), rng.normal(size=(n, 2))]
    )


def tiny(**kw: Any) -> WindowAutoencoder:
    params = {"window": 8, "hidden": 6, "latent": 3, "epochs": 15, "patience": 4, "random_state": 0, **kw}
    return WindowAutoencoder(**params)


@pytest.fixture(scope="module")
def fitted() -> WindowAutoencoder:
    return tiny().fit(correlated(400, 1))


def test_sliding_windows_are_causal_and_padded():
    Z = np.arange(10.0).reshape(5, 2)
    w = sliding_windows(Z, 3)
    assert w.shape == (5, 3, 2)
    np.testing.assert_array_equal(w[0], [[0, 1], [0, 1], [0, 1]])  # first row repeated
    np.testing.assert_array_equal(w[4], Z[2:5])  # rows 2..4 end at row 4
    # a later row never enters an earlier window
    Z2 = Z.copy()
    Z2[4] = 99.0
    np.testing.assert_array_equal(sliding_windows(Z2, 3)[:4], w[:4])


@pytest.mark.parametrize("fault", ["step", "drift", "variance"])
def test_flags_injected_faults(fitted, fault):
    test = correlated(300, 2)
    ramp = np.linspace(0, 1, 150)
    if fault == "step":
        test[150:, 2] += 5.0
    elif fault == "drift":
        test[150:, 1] += 8.0 * ramp
    else:
        test[150:, 3] *= 4.0
    pred = fitted.predict(test) == -1
    late = pred[225:] if fault == "drift" else pred[160:]
    assert late.mean() > 0.8
    assert pred[:150].mean() < 0.1


def test_false_alarm_rate_on_healthy_rows_near_calibration(fitted):
    # threshold at the 99 % quantile of held-out training errors: fresh healthy rows alarm rarely
    far = (fitted.predict(correlated(1000, 3)) == -1).mean()
    assert far < 0.05


def test_sign_convention_matches_pca_detector(fitted):
    test = correlated(200, 4)
    test[100:, 0] += 6.0
    s, d, p = fitted.score_samples(test), fitted.decision_function(test), fitted.predict(test)
    np.testing.assert_allclose(d, s + 1.0)
    np.testing.assert_array_equal(p == -1, d < 0)  # min_run=1: predict is the sign
    assert s[150:].mean() < s[:100].mean()  # lower is more abnormal


def test_reproducible_and_seed_matters():
    train, test = correlated(200, 5), correlated(100, 6)
    a = tiny(epochs=4).fit(train).score_samples(test)
    b = tiny(epochs=4).fit(train).score_samples(test)
    c = tiny(epochs=4, random_state=1).fit(train).score_samples(test)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_early_stopping_keeps_best_epoch():
    det = tiny(epochs=40, patience=2, learning_rate=0.05).fit(correlated(200, 7))
    assert det.n_epochs_ <= 40
    assert det.validation_loss_[det.best_epoch_ - 1] == det.validation_loss_.min()
    if det.n_epochs_ < 40:
        assert det.n_epochs_ - det.best_epoch_ == 2


def test_pickle_round_trip_holds_no_torch_objects(fitted):
    import cloudpickle

    test = correlated(50, 8)
    blob = pickle.dumps(fitted)
    assert b"torch" not in blob
    for restored in (pickle.loads(blob), cloudpickle.loads(cloudpickle.dumps(fitted))):
        np.testing.assert_array_equal(restored.score_samples(test), fitted.score_samples(test))


def test_restores_torch_thread_count(fitted):
    import torch

    before = torch.get_num_threads()
    fitted.score_samples(correlated(20, 9))
    assert torch.get_num_threads() == before


def test_bad_input(fitted):
    X = correlated(100, 10)
    X[5, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        tiny().fit(X)
    with pytest.raises(ValueError, match="features"):
        fitted.predict(correlated(20, 11)[:, :3])
    with pytest.raises(ValueError, match="sample"):
        tiny().fit(correlated(3, 12))
    with pytest.raises(AutoencoderError, match="window=0"):
        tiny(window=0).fit(correlated(50, 13))
    with pytest.raises(AutoencoderError, match="validation_fraction"):
        tiny(validation_fraction=1.0).fit(correlated(50, 13))


_WINDOWED = {
    "check_methods_subset_invariance": "windowed detector: a row's score depends on earlier rows",
    "check_methods_sample_order_invariance": "windowed detector: a row's score depends on earlier rows",
}


@parametrize_with_checks(
    [WindowAutoencoder(window=4, hidden=4, latent=2, epochs=1, batch_size=64)],
    expected_failed_checks=lambda est: _WINDOWED,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
