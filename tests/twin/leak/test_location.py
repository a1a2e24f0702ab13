"""Leak location from the change of the pressure profile: closed forms against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from pumptwin.twin.leak.detection import (
    LineModel,
    NoiseModel,
    fit_kinked_profile,
    head_profile_residual,
    locate_leak_absolute,
    profile_misfit,
)
from pumptwin.twin.leak.location import _Means
from pumptwin.twin.units import G_M_S2

X = np.array([0.0, 12_500.0, 25_000.0, 37_500.0, 50_000.0])
SD = np.full(5, 0.025)


def kinked(x_leak: float, a: float, s_u: float, s_d: float) -> np.ndarray:
    return a - s_u * np.minimum(X, x_leak) - s_d * np.maximum(X - x_leak, 0.0)


@pytest.mark.parametrize("x_leak", [3_000.0, 12_500.0, 19_000.0, 31_000.0, 46_000.0])
def test_exact_profile_gives_the_kink(x_leak: float) -> None:
    s_u, s_d = 4e-5, -4e-5
    dh = kinked(x_leak, -0.6, s_u, s_d)
    x = fit_kinked_profile(X, dh, SD, (s_u, s_d), (2e-6, 2e-6))
    assert x == pytest.approx(x_leak, abs=1.0)
    assert profile_misfit(np.array([x_leak]), X, dh, SD, (s_u, s_d), (2e-6, 2e-6))[0] == pytest.approx(0.0, abs=1e-9)


def test_closed_form_matches_a_fine_grid_on_noisy_data() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        x_leak = float(rng.uniform(0.0, 50_000.0))
        s_u, s_d = 4e-5, -4e-5
        dh = kinked(x_leak, -0.6, s_u, s_d) + rng.normal(0.0, 0.025, 5)
        prior = (s_u * (1 + rng.normal(0, 0.05)), s_d * (1 + rng.normal(0, 0.05)))
        grid = np.linspace(0.0, 50_000.0, 50_001)
        misfit = profile_misfit(grid, X, dh, SD, prior, (2e-6, 2e-6))
        x = fit_kinked_profile(X, dh, SD, prior, (2e-6, 2e-6))
        best = profile_misfit(np.array([x]), X, dh, SD, prior, (2e-6, 2e-6))[0]
        assert best <= misfit.min() + 1e-9
        assert abs(x - grid[int(np.argmin(misfit))]) <= 2.0


def test_intermediate_transmitters_confine_a_slope_error_to_the_leak_segment() -> None:
    # the flow meters overstate the downstream slope change by 20 %; precise heads pull the kink back
    x_leak, s_u, s_d = 30_000.0, 4e-5, -4e-5
    dh = kinked(x_leak, -0.6, s_u, s_d)
    wrong = (s_u, 1.2 * s_d)
    with_heads = fit_kinked_profile(X, dh, SD, wrong, (2e-6, 2e-6))
    ends_only = fit_kinked_profile(X[[0, -1]], dh[[0, -1]], SD[[0, -1]], wrong, (2e-6, 2e-6))
    assert abs(with_heads - x_leak) < 0.5 * abs(ends_only - x_leak)
    assert abs(ends_only - x_leak) > 1_000.0


def test_head_profile_residual_is_zero_on_the_calibrated_profile() -> None:
    scales, offsets = np.array([1.1, 0.9, 1.0, 1.2]), np.array([0.3, -0.2, 0.0, 0.1])
    slope = np.array([0.004, 0.005])
    drop = slope[:, None] * (np.diff(X) * scales)[None, :] + offsets[None, :]
    head = 400.0 - np.concatenate([np.zeros((2, 1)), np.cumsum(drop, axis=1)], axis=1)
    assert np.allclose(head_profile_residual(X, head, slope, scales, offsets), 0.0, atol=1e-9)
    bumped = head.copy()
    bumped[:, 3] += 0.5
    assert np.allclose(head_profile_residual(X, bumped, slope, scales, offsets)[:, 3], 0.5)


@pytest.mark.parametrize("x_leak", [6_000.0, 21_000.0, 44_000.0])
def test_absolute_location_closed_form(x_leak: float) -> None:
    line = LineModel(50_000.0, 0.508, profile=((0.0, 50.0), (25_000.0, 90.0), (50_000.0, 70.0)))
    q_in, q_out = 0.32, 0.3168
    s_in, s_out = float(line.friction_slope(q_in)), float(line.friction_slope(q_out))
    h_leak = 300.0
    heads = np.where(x_leak >= X, h_leak + s_in * (x_leak - X), h_leak - s_out * (X - x_leak))
    rg = line.density_kg_m3 * G_M_S2
    p = (heads - np.array([line.elevation_m(float(x)) for x in X])) * rg
    means = _Means(q_in, q_out, float(p[0]), float(p[-1]), q_in - q_out, tuple(float(v) for v in p))
    noise = NoiseModel(
        0.0,
        0.0,
        (1e-4,),
        (0.0,),
        (3.0,),
        (10.0,),
        segment_friction_scale=(1.0,) * 4,
        segment_head_offset_m=(0.0,) * 4,
        head_model_sd_m=(0.03,) * 5,
    )
    assert locate_leak_absolute(line, tuple(X), means, noise, 1e-4) == pytest.approx(x_leak, abs=1.0)
    # without the segment calibration there is nothing to fit against
    bare = NoiseModel(0.0, 0.0, (1e-4,), (0.0,), (3.0,), (10.0,))
    assert np.isnan(locate_leak_absolute(line, tuple(X), means, bare, 1e-4))
