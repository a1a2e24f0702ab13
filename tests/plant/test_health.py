"""Health physics: closed forms re-derived here, invariants as Hypothesis properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pumptwin.plant.health import (
    HealthError,
    HealthInputs,
    HealthParams,
    HealthState,
    VibrationShape,
    advance,
    bearing_rise_k,
    cavitation_head_drop,
    cavitation_intensity,
    health_params_for,
    motor_input,
    readings,
    recirculation_knee,
    resonance_amplification,
    severity,
    steady_state,
    step,
    vibration_rms_mm_s,
    winding_rise_k,
)
from pumptwin.twin.assets import build_registry
from pumptwin.twin.hydraulic.network import Network


@pytest.fixture(scope="module")
def params(network: Network) -> HealthParams:
    reg = build_registry(network)
    return health_params_for(reg.pumps, np.random.default_rng(0))


def inputs(p: int, **over: object) -> HealthInputs:
    base: dict[str, object] = {
        "running": np.ones(p, bool),
        "speed": np.full(p, 0.95),
        "flow_ratio": np.ones(p),
        "shaft_power_w": np.full(p, 8e5),
        "npsh_ratio": np.full(p, 2.0),
        "suction_pressure_pa": np.full(p, 1e5),
        "ambient_c": np.full(p, 20.0),
        "bearing_de": np.zeros(p),
        "bearing_nde": np.zeros(p),
        "impeller_wear": np.zeros(p),
        "seal_damage_m3s": np.zeros(p),
        "cooling_loss": np.zeros(p),
    }
    base.update(over)
    return HealthInputs(**base)  # type: ignore[arg-type]


def test_time_constants_are_tens_of_minutes(params: HealthParams) -> None:
    assert 30 * 60 <= params.tau_bearing_s <= 60 * 60
    assert 30 * 60 <= params.tau_winding_s <= 60 * 60


def test_thermal_lag_matches_closed_form(params: HealthParams) -> None:
    """A pump started cold: T(t) = T_ss + (T0 - T_ss) exp(-t / tau), reaching 63.2 % of the rise at tau."""
    u = inputs(params.size)
    target = steady_state(u, params)
    state = HealthState.at_ambient(np.full(params.size, 20.0))
    dt = 60.0
    n = round(3 * params.tau_bearing_s / dt)
    temps = []
    for _ in range(n):
        state = step(state, u, params, dt)
        temps.append(state.bearing_de_c)
    t = dt * np.arange(1, n + 1)[:, None]
    tau = params.tau_bearing_s
    expected = target.bearing_de_c + (20.0 - target.bearing_de_c) * np.exp(-t / tau)
    np.testing.assert_allclose(np.array(temps), expected, rtol=1e-10)
    i = round(tau / dt) - 1  # the step nearest tau
    at_tau = np.array(temps)[i]
    np.testing.assert_allclose(
        (at_tau - 20.0) / (target.bearing_de_c - 20.0), 1 - math.exp(-dt * (i + 1) / tau), rtol=1e-9
    )
    assert np.all(target.bearing_de_c - np.array(temps)[-1] < 0.06 * (target.bearing_de_c - 20.0))


def test_advance_equals_repeated_steps(params: HealthParams) -> None:
    rng = np.random.default_rng(1)
    k, p = 50, params.size
    u = inputs(
        p,
        speed=rng.uniform(0.7, 1.05, (k, p)),
        flow_ratio=rng.uniform(0.5, 1.3, (k, p)),
        shaft_power_w=rng.uniform(2e5, 9e5, (k, p)),
        running=rng.random((k, p)) > 0.2,
        ambient_c=rng.uniform(0, 30, (k, p)),
        npsh_ratio=np.full((k, p), 2.0),
        suction_pressure_pa=np.full((k, p), 1e5),
        bearing_de=np.zeros((k, p)),
        bearing_nde=np.zeros((k, p)),
        impeller_wear=np.zeros((k, p)),
        seal_damage_m3s=np.zeros((k, p)),
        cooling_loss=rng.uniform(0, 0.5, (k, p)),
    )
    s0 = HealthState.at_ambient(np.full(p, 10.0))
    starts, final = advance(s0, u, params, 30.0)
    state = s0
    for i in range(k):
        np.testing.assert_allclose(starts.winding_c[i], state.winding_c, rtol=1e-12)
        np.testing.assert_allclose(starts.bearing_de_c[i], state.bearing_de_c, rtol=1e-12)
        state = step(state, u.at(i), params, 30.0)
    np.testing.assert_allclose(final.bearing_nde_c, state.bearing_nde_c, rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    imbalance=st.floats(0.1, 3.0),
    misalignment=st.floats(0.0, 3.0),
    hydraulic=st.floats(0.2, 3.0),
    speed=st.floats(0.6, 1.1),
    damage=st.floats(0.0, 1.0),
)
def test_vibration_is_least_at_bep(
    imbalance: float, misalignment: float, hydraulic: float, speed: float, damage: float
) -> None:
    ratio = np.linspace(0.3, 1.6, 131)
    v = vibration_rms_mm_s(speed, ratio, True, imbalance, misalignment, hydraulic, damage, 0.0)
    assert abs(ratio[np.argmin(v)] - 1.0) < 0.015
    assert v[0] > v[np.argmin(v)] and v[-1] > v[np.argmin(v)]


def test_vibration_rises_with_defects_and_speed() -> None:
    base = vibration_rms_mm_s(1.0, 1.0, True, 1.0, 0.5, 1.0, 0.0, 0.0)
    assert vibration_rms_mm_s(1.0, 1.0, True, 1.0, 0.5, 1.0, 1.0, 0.0) > 7.0  # ISO zone D
    assert vibration_rms_mm_s(1.0, 1.0, True, 1.0, 0.5, 1.0, 0.0, 1.0) > base + 2.0
    assert vibration_rms_mm_s(0.7, 1.0, True, 1.0, 0.5, 1.0, 0.0, 0.0) < base
    assert vibration_rms_mm_s(1.0, 1.0, False, 1.0, 0.5, 1.0, 1.0, 1.0) < 0.1


@settings(max_examples=60, deadline=None)
@given(
    shaft=st.floats(0.0, 2e6),
    rated=st.floats(1e5, 2e6),
    eff=st.floats(0.85, 0.98),
    pf=st.floats(0.7, 0.95),
)
def test_motor_power_is_physical(shaft: float, rated: float, eff: float, pf: float) -> None:
    power, current = motor_input(shaft, rated, eff, pf, 6600.0)
    assert power >= shaft >= 0
    assert current >= 0
    if shaft == 0:
        assert power == 0 and current == 0


def test_motor_has_rated_efficiency_at_rated_load() -> None:
    power, current = motor_input(1e6, 1e6, 0.96, 0.88, 6600.0)
    assert 1e6 / power == pytest.approx(0.96)
    assert current == pytest.approx(power / (math.sqrt(3) * 6600 * 0.88))


def test_winding_heats_with_cooling_loss() -> None:
    rise = winding_rise_k(np.array([0.8, 0.8, 0.8]), np.array([0.0, 0.35, 0.7]), 75.0)
    assert np.all(np.diff(rise) > 0)
    assert 20 + rise[2] > 155  # class F insulation limit exceeded at full loss of cooling


def test_cavitation_curves() -> None:
    r = np.linspace(0.2, 2.0, 181)
    drop = cavitation_head_drop(r)
    assert np.all(np.diff(drop) <= 1e-15)
    assert cavitation_head_drop(1.0) == pytest.approx(0.03)  # NPSH3
    assert cavitation_head_drop(1.3) == 0 and cavitation_intensity(1.3) == 0
    assert cavitation_intensity(0.5) == 1


@settings(max_examples=40, deadline=None)
@given(onset=st.floats(0, 1e6), length=st.floats(1.0, 1e6), law=st.sampled_from(["linear", "exponential", "step"]))
def test_severity_laws(onset: float, length: float, law: str) -> None:
    failure = onset + length
    t = np.linspace(onset - length, failure + length, 301)
    s = severity(t, onset, failure, law)  # type: ignore[arg-type]
    assert np.all(np.diff(s) >= 0)
    assert np.all(s[t < onset] == 0)
    assert np.all(s[t >= failure] == 1)
    assert s.min() >= 0 and s.max() <= 1


def test_exponential_law_accelerates() -> None:
    assert severity(50.0, 0.0, 100.0, "exponential") < 0.2
    with pytest.raises(HealthError):
        severity(1.0, 10.0, 5.0, "linear")
    with pytest.raises(HealthError):
        severity(1.0, 0.0, 5.0, "sudden")  # type: ignore[arg-type]


def test_faults_show_in_readings(params: HealthParams) -> None:
    p = params.size
    healthy = readings(HealthState.at_ambient(np.full(p, 20.0)), inputs(p), params)
    worn = readings(
        HealthState.at_ambient(np.full(p, 20.0)),
        inputs(p, bearing_de=np.ones(p), seal_damage_m3s=np.full(p, 60e-3 / 3600), npsh_ratio=np.full(p, 0.9)),
        params,
    )
    assert np.all(worn.vib_de_mm_s > healthy.vib_de_mm_s + 5)
    assert np.all(worn.vib_nde_mm_s > healthy.vib_nde_mm_s)
    assert np.all(worn.seal_leak_m3s * 3.6e6 > 50)
    assert np.all(worn.cavitation > 0.5)
    hot = steady_state(inputs(p, bearing_de=np.ones(p)), params)
    cool = steady_state(inputs(p), params)
    assert np.all(hot.bearing_de_c > cool.bearing_de_c + 20)


def test_priors_are_wide_and_per_pump(params: HealthParams) -> None:
    """Every machine gets its own constants, including forms the twin does not model."""
    assert np.ptp(params.critical_speed) > 0 and np.all(params.critical_speed >= 1.3)
    assert np.all((params.recirculation_onset > 0.4) & (params.recirculation_onset < 0.75))
    assert np.all(params.low_flow_asymmetry >= 1.0)
    assert np.ptp(params.bearing_speed_exponent) > 0
    with pytest.raises(HealthError, match="damping"):
        HealthParams(
            **{**{f: getattr(params, f) for f in params.__dataclass_fields__}, "damping": params.damping * 0 + 1.5}
        )


def test_resonance_grows_towards_the_critical_speed() -> None:
    shape = VibrationShape(resonance_mm_s=1.0, critical_speed=1.4, damping=0.1)
    speeds = np.linspace(0.6, 1.3, 15)
    with_res = vibration_rms_mm_s(speeds, 1.0, True, 1.0, 0.5, 1.0, 0.0, 0.0, shape=shape)
    without = vibration_rms_mm_s(speeds, 1.0, True, 1.0, 0.5, 1.0, 0.0, 0.0)
    ratio = with_res / without
    assert np.all(np.diff(ratio) > 0)  # the bump grows as the speed nears the critical speed
    assert resonance_amplification(1.4, 1.4, 0.1) == pytest.approx(5.0)  # 1 / (2 zeta) at resonance


def test_low_flow_is_rougher_than_run_out() -> None:
    """Recirculation below its onset and the asymmetric excitation: 40 % below BEP vibrates more than 40 % above."""
    shape = VibrationShape(recirculation_mm_s=0.8, recirculation_onset=0.65, low_flow_asymmetry=1.4)
    low, high = vibration_rms_mm_s(1.0, np.array([0.6, 1.4]), True, 1.0, 0.5, 1.0, 0.0, 0.0, shape=shape)
    assert low > high
    assert recirculation_knee(0.7, 0.65) == 0 and recirculation_knee(0.55, 0.65) == pytest.approx(1.0)


def test_bearing_rise_couples_to_ambient_and_damage_nonlinearly() -> None:
    cold = bearing_rise_k(1.0, 1.0, 0.0, 36.0, ambient_c=0.0, ambient_coupling_per_k=0.005)
    warm = bearing_rise_k(1.0, 1.0, 0.0, 36.0, ambient_c=35.0, ambient_coupling_per_k=0.005)
    assert cold == pytest.approx(36.0 * 1.1) and warm == pytest.approx(36.0 * 0.925)
    d = np.array([0.0, 0.25, 0.5, 1.0])
    rise = bearing_rise_k(1.0, 1.0, d, 36.0, damage_gain=1.5, damage_exponent=3.0)
    np.testing.assert_allclose(rise / 36.0, 1.0 + 1.5 * d**3)
    low = bearing_rise_k(1.0, 0.6, 0.0, 36.0, low_flow_asymmetry=1.5)
    high = bearing_rise_k(1.0, 1.4, 0.0, 36.0, low_flow_asymmetry=1.5)
    assert low > high > 36.0
