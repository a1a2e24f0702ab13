"""The twin's own condition models: recovery of known parameters, fits of other processes, physical shape."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pumptwin.twin.assets import build_registry
from pumptwin.twin.health.condition import (
    DATASHEET_BEARING_RISE_K,
    GENERIC_BEARING_LOAD,
    GENERIC_VIBRATION,
    ISO_AB_MM_S,
    ConditionError,
    MachineCondition,
    RlsFit,
    VibrationBaseline,
    bearing_features,
    bearing_load,
    bearing_prior,
    bearing_shape,
    cavitation_factor,
    predicted_bearing_c,
    predicted_vibration_mm_s,
    rated_current_a,
    seal_features,
    seal_leak_l_h,
    strainer_dp_pa,
    vibration_features,
    vibration_mm_s,
)
from pumptwin.twin.hydraulic.io import load_network


def grid(n: int = 12, slowest: float = 0.7) -> tuple[np.ndarray, np.ndarray]:
    """Operating points over speeds ``slowest``-1.05 and flow ratios 0.5-1.4."""
    s, r = np.meshgrid(np.linspace(slowest, 1.05, n), np.linspace(0.5, 1.4, n))
    return s.ravel(), r.ravel()


def other_vibration(s: np.ndarray, r: np.ndarray) -> np.ndarray:
    """A process unlike the twin's polynomial: rational excitation, asymmetric, plus a rotor resonance."""
    x = (r - 1.0) / 0.3 * np.where(r < 1.0, 1.4, 1.0)
    hyd = 1.2 * s**2 * x * x / (1.0 + x * x / 6.0)
    amp = 1.0 / np.sqrt((1.0 - (s / 1.5) ** 2) ** 2 + (0.3 * s / 1.5) ** 2)
    return np.sqrt((0.9 * s**2) ** 2 + (0.5 * s) ** 2 + hyd**2 + (0.6 * s**2 * (amp - 1.0)) ** 2)


def test_vibration_coefficients_recovered_from_their_own_form() -> None:
    s, r = grid(slowest=0.3)  # a wide speed range separates the floor, s^2 and s^4 terms
    truth = np.array([0.0, 0.4, 0.9, 6.0, -4.0, 20.0])
    v = np.sqrt(vibration_features(s, r) @ truth)
    base = VibrationBaseline().folded(s, r, v, 1.0)
    np.testing.assert_allclose(base.coefficients(), truth, rtol=0.02, atol=0.02)  # the ridge's small bias
    np.testing.assert_allclose(base.predict_mm_s(s, r), v, rtol=1e-2)


def test_vibration_form_fits_another_process_within_a_few_percent() -> None:
    s, r = grid()
    v = other_vibration(s, r)
    base = VibrationBaseline().folded(s, r, v, 1.0)
    rel = np.abs(base.predict_mm_s(s, r) / v - 1.0)
    assert float(np.median(rel)) < 0.05
    assert float(np.max(rel)) < 0.2
    held_out_s, held_out_r = np.array([0.8, 0.95, 1.0]), np.array([0.75, 1.1, 0.9])
    rel_out = base.predict_mm_s(held_out_s, held_out_r) / other_vibration(held_out_s, held_out_r) - 1.0
    assert np.all(np.abs(rel_out) < 0.05)


def test_narrow_history_keeps_the_prior_where_data_say_nothing() -> None:
    """At one speed the s^2 and s^4 terms are not separable: the ridge keeps the fit sane off that speed."""
    rng = np.random.default_rng(0)
    r = rng.uniform(0.8, 1.2, 400)
    s = np.full_like(r, 0.95)
    v = other_vibration(s, r)
    base = VibrationBaseline().folded(s, r, v, 1.0)
    np.testing.assert_allclose(base.predict_mm_s(s, r), v, rtol=0.03)
    slower = float(base.predict_mm_s(0.7, 1.0)[0])
    assert 0.5 * float(other_vibration(np.array([0.7]), np.array([1.0]))[0]) < slower < float(v.max())


def test_forgetting_follows_a_changed_machine() -> None:
    s, r = grid(8)
    before = np.sqrt(vibration_features(s, r) @ np.array([0.0, 0.3, 1.0, 5.0, 0.0, 0.0]))
    after = 1.5 * before
    base = VibrationBaseline().folded(s, r, before, 1.0)
    for _ in range(40):
        base = base.folded(s, r, after, 0.8)
    np.testing.assert_allclose(base.predict_mm_s(s, r), after, rtol=0.01)


def test_generic_machine_is_iso_zone_a_at_the_bep_and_30_percent_more_at_the_por_edge() -> None:
    at_bep = float(vibration_mm_s(1.0, 1.0, GENERIC_VIBRATION))
    assert at_bep == pytest.approx(ISO_AB_MM_S)
    assert float(vibration_mm_s(1.0, 0.7, GENERIC_VIBRATION)) == pytest.approx(1.3 * ISO_AB_MM_S)
    assert predicted_bearing_c(1.0, 1.0, True, MachineCondition(), 20.0) == pytest.approx(
        20.0 + DATASHEET_BEARING_RISE_K
    )


@settings(max_examples=60, deadline=None)
@given(
    speed=st.floats(0.5, 1.1),
    ratio=st.floats(0.3, 1.7),
    step=st.floats(0.01, 0.3),
    ambient=st.floats(-10.0, 40.0),
)
def test_predictions_are_monotone_where_physics_says(speed: float, ratio: float, step: float, ambient: float) -> None:
    """Least at the BEP, rising away from it and with speed; hotter with speed, load and ambient."""
    c = MachineCondition()
    v = predicted_vibration_mm_s(speed, ratio, math.inf, True, c)
    assert v >= predicted_vibration_mm_s(speed, 1.0, math.inf, True, c) - 1e-12
    farther = ratio + step if ratio >= 1.0 else ratio - step
    assert predicted_vibration_mm_s(speed, farther, math.inf, True, c) >= v - 1e-12
    assert predicted_vibration_mm_s(speed + step, ratio, math.inf, True, c) > v
    t = predicted_bearing_c(speed, ratio, True, c, ambient)
    assert predicted_bearing_c(speed + step, ratio, True, c, ambient) > t
    assert predicted_bearing_c(speed, farther, True, c, ambient) >= t - 1e-12
    assert predicted_bearing_c(speed, ratio, True, c, ambient + step) > t
    assert predicted_vibration_mm_s(speed, ratio, 1.0, True, c) > v  # cavitating
    assert predicted_vibration_mm_s(speed, ratio, 1.5, True, c) == pytest.approx(v)
    assert predicted_vibration_mm_s(speed, ratio, math.inf, False, c) == 0.0
    assert predicted_bearing_c(speed, ratio, False, c, ambient) == ambient


def test_cavitation_penalty_starts_at_the_margin_ratio() -> None:
    f = cavitation_factor(np.array([2.0, 1.3, 1.0, 0.65, np.nan, np.inf]))
    np.testing.assert_allclose(f, [1.0, 1.0, 1.0 + 2.0 * (1.0 - 1.0 / 1.3), 2.0, 1.0, 1.0])


def test_excess_adds_in_root_sum_square_and_scales_with_speed() -> None:
    c = MachineCondition(vibration_excess_mm_s=3.0)
    base = predicted_vibration_mm_s(1.0, 1.0, math.inf, True, MachineCondition())
    assert predicted_vibration_mm_s(1.0, 1.0, math.inf, True, c) == pytest.approx(math.hypot(base, 3.0))


def test_bearing_shape_recovered_from_its_own_form() -> None:
    s, r = grid()
    rise, shape = 33.0, (0.3, 0.7, 2.0)
    y = rise * bearing_load(s, r, shape)
    fit = RlsFit.empty(3).folded(bearing_features(s, r), y, 1.0, bearing_prior(rise))
    got = bearing_shape(fit, rise)
    np.testing.assert_allclose(got, shape, rtol=0.02)  # the ridge's small bias
    assert float(fit.coefficients(bearing_prior(rise))[:2].sum()) == pytest.approx(rise, rel=2e-3)


def test_bearing_form_fits_a_power_law_process() -> None:
    """The plant-like s^1.5 load with radial load is not in the twin's family; the fit stays within 2 %."""
    s, r = grid()
    y = 36.0 * s**1.5 * (0.6 + 0.4 * (1.0 + 1.5 * (r - 1.0) ** 2))
    fit = RlsFit.empty(3).folded(bearing_features(s, r), y, 1.0, bearing_prior(40.0))
    shape = bearing_shape(fit, 40.0)
    pred = float(fit.coefficients(bearing_prior(40.0))[:2].sum()) * bearing_load(s, r, shape)
    assert float(np.max(np.abs(pred / y - 1.0))) < 0.02
    assert bearing_shape(RlsFit.empty(3)) == GENERIC_BEARING_LOAD


def test_seal_line_and_strainer() -> None:
    p = np.linspace(0.5, 4.0, 30)
    leak = 0.4 + 0.15 * p
    fit = RlsFit.empty(2).folded(seal_features(p), leak, 1.0, (0.0, 0.0))
    np.testing.assert_allclose(seal_leak_l_h(fit, [1.0, 3.0]), [0.55, 0.85], rtol=1e-3)
    assert fit.noise < 1e-3
    np.testing.assert_allclose(strainer_dp_pa(5e4, np.array([-0.1, 0.0, 0.3])), [0.0, 0.0, 4500.0])


def test_rated_current_from_the_nameplate() -> None:
    spec = build_registry(load_network(), 1).pumps[0]
    current = rated_current_a(spec)
    expect = (
        spec.motor_rated_w / spec.motor_efficiency / (math.sqrt(3) * spec.motor_voltage_v * spec.motor_power_factor)
    )
    assert current == pytest.approx(expect)


def test_condition_is_validated() -> None:
    with pytest.raises(ConditionError, match="vibration_mm2_s2"):
        MachineCondition(vibration_mm2_s2=(1.0, 2.0))
    with pytest.raises(ConditionError, match="bearing_rise_k"):
        MachineCondition(bearing_rise_k=-1.0)
    with pytest.raises(ConditionError, match="bearing_load_shape"):
        MachineCondition(bearing_load_shape=(0.5, 0.5, math.nan))
    with pytest.raises(ConditionError, match="info"):
        RlsFit((0.0,) * 3, (0.0, 0.0))
