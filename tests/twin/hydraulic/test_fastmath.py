"""The kernels' branch-free log, exp and power against libm."""

from __future__ import annotations

import math

import numba as nb
import numpy as np
import pytest

from pumptwin.twin.hydraulic._fastmath import TINY, fexp, flog, fpow


@nb.njit(cache=False)
def _apply(kind: int, x: np.ndarray, a: float) -> np.ndarray:  # pragma: no cover - compiled
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        if kind == 0:
            out[i] = flog(x[i])
        elif kind == 1:
            out[i] = fexp(x[i])
        else:
            out[i] = fpow(x[i], a)
    return out


def test_log_matches_libm_from_tiny_to_huge() -> None:
    x = np.exp(np.random.default_rng(1).uniform(-690.0, 690.0, 20_000))
    x = np.concatenate([x, [1.0, 2.0, 0.5, math.sqrt(2.0), 1e-300, 1e300]])
    ours = _apply(0, x, 0.0)
    assert np.max(np.abs(ours - np.log(x))) <= 1e-15 * np.maximum(np.abs(np.log(x)), 1.0).max()
    assert _apply(0, np.array([1.0]), 0.0)[0] == 0.0


def test_exp_matches_libm_and_holds_the_double_range() -> None:
    t = np.random.default_rng(2).uniform(-700.0, 700.0, 20_000)
    np.testing.assert_allclose(_apply(1, t, 0.0), np.exp(t), rtol=5e-14)
    assert _apply(1, np.array([0.0]), 0.0)[0] == 1.0
    big, small = _apply(1, np.array([1e4, -1e4]), 0.0)
    assert math.isfinite(big) and big > 1e307
    assert 0.0 < small < 1e-300


@pytest.mark.parametrize("a", [0.852, 1.0, -0.9, 0.5 - 1.0, 2.0 - 1.9, 1.0 / 1.852])
def test_pow_matches_libm_over_the_flows_a_network_carries(a: float) -> None:
    q = np.geomspace(1e-12, 1e2, 5_000)
    np.testing.assert_allclose(_apply(2, q, a), q**a, rtol=2e-14)


def test_pow_of_zero_is_the_power_of_tiny() -> None:
    assert _apply(2, np.array([0.0]), 0.852)[0] == pytest.approx(TINY**0.852, rel=1e-13)
    assert _apply(2, np.array([0.0]), 0.852)[0] < 1e-160
