"""The PCA T-squared + Q detector and its helpers against injected faults and bad input."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pumptwin.models.detectors import PcaT2QDetector, lagged_difference


def correlated(n: int, seed: int) -> np.ndarray:
    """Four sensors: two driven by a common load, plus independent noise (one row per sample)."""
    rng = np.random.default_rng(seed)
    load = rng.normal(size=n)
    return np.column_stack(
        [load + 0.3 * rng.normal(size=n), 2 * load + 0.3 * rng.normal(size=n), rng.normal(size=(n, 2))]
    )


def test_lagged_difference_by_hand():
    x = np.array([1.0, 2.0, 4.0, 7.0, 11.0])
    np.testing.assert_allclose(lagged_difference(x, 2), [0.0, 1.0, 3.0, 5.0, 7.0])
    np.testing.assert_allclose(lagged_difference(x[:2], 5), [0.0, 1.0])  # shorter than the lag
    np.testing.assert_allclose(lagged_difference(np.arange(6.0).reshape(3, 2), 1), [[0, 0], [2, 2], [2, 2]])
    with pytest.raises(ValueError, match="lag=0"):
        lagged_difference(x, 0)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=60), st.integers(1, 20), st.floats(-1e3, 1e3))
def test_lagged_difference_ignores_level_and_is_causal(values, lag, level):
    x = np.array(values)
    d = lagged_difference(x, lag)
    np.testing.assert_allclose(lagged_difference(x + level, lag), d, atol=1e-9)
    np.testing.assert_allclose(lagged_difference(x[: len(x) // 2], lag), d[: len(x) // 2])


@pytest.mark.parametrize("fault", ["step", "drift", "variance"])
def test_flags_injected_faults(fault):
    det = PcaT2QDetector(n_components=2, smooth=5, score_smooth=5, min_run=3).fit(correlated(400, 1))
    test = correlated(300, 2)
    if fault == "step":
        test[150:, 2] += 5.0
    elif fault == "drift":
        test[150:, 1] += np.linspace(0, 8.0, 150)
    else:
        test[150:, 3] *= 4.0
    pred = det.predict(test) == -1
    late = pred[225:] if fault == "drift" else pred[160:]
    assert late.mean() > (0.7 if fault == "variance" else 0.8)
    # the first rows are skipped: the causal mean averages fewer rows there, so it is noisier
    assert pred[10:150].mean() < 0.05


def test_false_alarm_rate_near_training_quantile():
    det = PcaT2QDetector(n_components=2, quantile=0.95).fit(correlated(2000, 3))
    far = (det.predict(correlated(4000, 4)) == -1).mean()
    # T-squared and Q each exceed their 95 % quantile on about 5 % of rows: their union on up to 10 %
    assert 0.04 < far < 0.12


def test_pickle_round_trip():
    det = PcaT2QDetector(smooth=5).fit(correlated(300, 5))
    test = correlated(50, 6)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(det)).score_samples(test), det.score_samples(test))


def test_bad_input():
    X = correlated(100, 7)
    X[3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        PcaT2QDetector().fit(X)
    det = PcaT2QDetector().fit(correlated(100, 8))
    with pytest.raises(ValueError, match="features"):
        det.predict(correlated(10, 9)[:, :3])
    with pytest.raises(ValueError, match="sample"):
        PcaT2QDetector().fit(correlated(1, 10))
