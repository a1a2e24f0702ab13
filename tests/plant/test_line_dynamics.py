"""The slow-transient line simulator against closed forms: Darcy, line pack, wave travel, mass balance."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pumptwin.plant.line_dynamics import (
    InitialConditions,
    LeakSpec,
    LineDynamicsError,
    LineSpec,
    MeterSpec,
    Operation,
    PumpStation,
    build_grid,
    simulate_line,
    start_stop_operations,
)

G = 9.80665
PROFILE = ((0.0, 50.0), (12_000.0, 85.0), (25_000.0, 70.0), (38_000.0, 110.0), (50_000.0, 95.0))


def swamee_jain(q: float, d: float, eps: float, nu: float) -> float:
    """Darcy friction factor for turbulent flow, written out independently."""
    v = q / (math.pi * d * d / 4.0)
    re = v * d / nu
    return 0.25 / math.log10(eps / d / 3.7 + 5.74 / re**0.9) ** 2


def darcy_dp(line: LineSpec, q: float) -> float:
    """Friction pressure drop over the whole line, in Pa."""
    v = q / line.area_m2
    f = swamee_jain(q, line.diameter_m, line.roughness_m, line.kinematic_viscosity_m2_s)
    return f * line.length_m / line.diameter_m * line.density_kg_m3 * v * v / 2.0


@pytest.mark.parametrize("profile", [((0.0, 50.0), (50_000.0, 50.0)), PROFILE])
def test_steady_pressure_drop_is_darcy_plus_elevation(profile: tuple[tuple[float, float], ...]) -> None:
    line = LineSpec(profile=profile)
    pump = PumpStation()
    run = simulate_line(line, 60.0, pump=pump, meters=MeterSpec.ideal(), dt_s=5.0)
    tr = run.truth.iloc[-1]
    q = tr["flow_in_m3s"]
    dz = profile[-1][1] - profile[0][1]
    expected = darcy_dp(line, q) + line.density_kg_m3 * G * dz
    assert tr["pressure_0_pa"] - tr["pressure_4_pa"] == pytest.approx(expected, rel=1e-6)
    assert tr["flow_out_m3s"] == pytest.approx(q, rel=1e-9)
    # the inlet sits on the pump curve at speed 0.9
    head = 0.81 * pump.shutoff_head_m - pump.r_s2_m5 * q * q
    assert tr["pressure_0_pa"] == pytest.approx(pump.suction_pressure_pa + line.density_kg_m3 * G * head, rel=1e-6)


def test_line_pack_change_matches_compressibility() -> None:
    line = LineSpec(length_m=10_000.0, profile=((0.0, 0.0), (10_000.0, 0.0)), segment_m=500.0)
    dp = 1.0e6
    run = simulate_line(
        line,
        1800.0,
        initial=InitialConditions(valve_opening=0.0, inlet_pressure_pa=1.0e6),
        operations=[Operation(10.0, inlet_pressure_pa=1.0e6 + dp, ramp_s=60.0)],
        meters=MeterSpec.ideal(pressure_positions_m=(0.0, 5_000.0, 10_000.0)),
        inlet="pressure",
        dt_s=1.0,
    )
    volume_in = float(run.truth["flow_in_m3s"].sum() * 5.0)
    expected = line.area_m2 * line.length_m * dp / (line.density_kg_m3 * line.wave_speed_m_s**2)
    assert volume_in == pytest.approx(expected, rel=1e-3)
    # as mass: rho * V * dp / (rho a^2)
    mass = line.density_kg_m3 * volume_in
    assert mass == pytest.approx(line.area_m2 * line.length_m * dp / line.wave_speed_m_s**2, rel=1e-3)
    assert run.truth["pressure_2_pa"].iloc[-1] == pytest.approx(1.0e6 + dp, rel=1e-4)


def test_wave_reaches_the_far_end_after_l_over_a() -> None:
    line = LineSpec(
        length_m=10_000.0, profile=((0.0, 0.0), (10_000.0, 0.0)), segment_m=100.0, kinematic_viscosity_m2_s=1e-6
    )
    run = simulate_line(
        line,
        30.0,
        initial=InitialConditions(valve_opening=0.0, inlet_pressure_pa=1.0e6),
        operations=[Operation(2.0, inlet_pressure_pa=1.5e6)],
        meters=MeterSpec.ideal(sample_s=0.1, pressure_positions_m=(0.0, 10_000.0)),
        inlet="pressure",
        dt_s=0.1,
        theta=0.5,
    )
    far = run.truth["pressure_1_pa"]
    # at the closed end the wave doubles: 1.0 -> 2.0 MPa; its mid-rise marks the arrival
    arrival = float(far.index[np.argmax(far.to_numpy() > 1.5e6)]) - 2.0
    assert arrival == pytest.approx(line.length_m / line.wave_speed_m_s, rel=0.05)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    speed=st.floats(0.6, 1.0),
    leak_km=st.floats(1.0, 9.0),
    size=st.floats(0.005, 0.2),
    stop_at=st.floats(100.0, 400.0),
)
def test_mass_is_conserved(speed: float, leak_km: float, size: float, stop_at: float) -> None:
    line = LineSpec(length_m=10_000.0, profile=((0.0, 20.0), (4_000.0, 60.0), (10_000.0, 30.0)), segment_m=500.0)
    pump = PumpStation(shutoff_head_m=200.0, r_s2_m5=300.0)
    run = simulate_line(
        line,
        900.0,
        pump=pump,
        initial=InitialConditions(pump_speed=speed),
        operations=[
            Operation(stop_at, pump_speed=0.0, ramp_s=30.0),
            Operation(stop_at + 40, valve_opening=0.2, ramp_s=60),
        ],
        leak=LeakSpec(leak_km * 1e3, 50.0, size),
        meters=MeterSpec.ideal(sample_s=5.0, pressure_positions_m=(0.0, 10_000.0)),
        dt_s=1.0,
    )
    tr = run.truth
    net = (tr["flow_in_m3s"] - tr["flow_out_m3s"] - tr["leak_m3s"]).iloc[1:].sum() * 5.0
    assert net == pytest.approx(tr["line_pack_m3"].iloc[-1] - tr["line_pack_m3"].iloc[0], abs=1e-9)


def test_leak_takes_its_share_of_flow_at_its_node() -> None:
    line = LineSpec(profile=PROFILE)
    run = simulate_line(line, 1200.0, leak=LeakSpec(21_300.0, 300.0, 0.02), meters=MeterSpec.ideal(), dt_s=1.0)
    tr = run.truth
    assert run.leak_node_position_m == pytest.approx(21_300.0)
    assert tr["leak_m3s"].loc[:295].max() == 0.0
    at_onset = tr["leak_m3s"].loc[305.0]
    assert at_onset == pytest.approx(0.02 * tr["flow_in_m3s"].loc[295.0], rel=0.02)
    assert run.leak_area_m2 > 0
    # steady again: inflow - outflow = leak
    last = tr.iloc[-1]
    assert last["flow_in_m3s"] - last["flow_out_m3s"] == pytest.approx(last["leak_m3s"], rel=1e-3)


def test_start_stop_check_valve_and_restart() -> None:
    line = LineSpec(profile=PROFILE)
    ops = start_stop_operations(300.0, 2_000.0, speed=0.9)
    run = simulate_line(line, 4_000.0, operations=ops, meters=MeterSpec.ideal(), dt_s=2.5)
    tr = run.truth
    q0 = tr["flow_in_m3s"].iloc[0]
    assert tr["flow_in_m3s"].loc[600:1900].abs().max() == 0.0  # check valve holds, no reverse flow
    assert tr["flow_out_m3s"].loc[800:1900].abs().max() < 1e-3 * q0  # valve shut
    assert tr["flow_in_m3s"].iloc[-1] == pytest.approx(q0, rel=1e-3)
    assert tr["line_pack_m3"].loc[1500] < tr["line_pack_m3"].iloc[0]


def test_meters_add_bounded_errors_and_repeat_with_seed() -> None:
    line = LineSpec(profile=PROFILE)
    meters = MeterSpec()
    a = simulate_line(line, 3_600.0, meters=meters, dt_s=2.5, seed=3, meter_seed=9)
    b = simulate_line(line, 3_600.0, meters=meters, dt_s=2.5, seed=3, meter_seed=9)
    c = simulate_line(line, 3_600.0, meters=meters, dt_s=2.5, seed=4, meter_seed=9)
    assert a.readings.equals(b.readings)
    assert a.meter_bias == c.meter_bias
    assert not a.readings.equals(c.readings)
    assert abs(a.meter_bias["in_frac"]) <= meters.flow_bias_frac
    rel = a.readings["flow_in_m3s"] / a.truth["flow_in_m3s"] - 1.0
    assert abs(rel.mean()) < 0.004
    assert 0.0005 < rel.std() < 0.002
    assert set(a.readings.columns) >= {"flow_in_m3s", "flow_out_m3s", "pressure_0_pa", "temperature_in_c"}
    steps = np.unique(np.round(a.readings["pressure_2_pa"].to_numpy() / meters.pressure_quantum_pa, 6) % 1)
    assert np.allclose(steps, 0.0)


def test_grid_contains_transmitters_and_leak() -> None:
    line = LineSpec(segment_m=1_000.0)
    nodes = build_grid(line, (0.0, 12_345.0, 50_000.0))
    assert 12_345.0 in nodes
    assert nodes[0] == 0.0 and nodes[-1] == line.length_m
    assert np.all(np.diff(nodes) > 200.0)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: simulate_line(LineSpec(), 100.0, dt_s=2.0), "multiple"),
        (lambda: simulate_line(LineSpec(), 100.0, leak=LeakSpec(60_000.0)), "leak position_m"),
        (lambda: simulate_line(LineSpec(), -1.0), "duration_s"),
        (lambda: simulate_line(LineSpec(), 100.0, inlet="tank"), "inlet"),
        (lambda: LineSpec(profile=((0.0, 1.0), (40_000.0, 2.0))), "span"),
        (lambda: Operation(10.0, valve_opening=2.0), "valve_opening"),
        (lambda: LeakSpec(1_000.0, size_frac=0.0), "size_frac"),
        (lambda: MeterSpec(pressure_positions_m=(0.0, 0.0)), "increase"),
    ],
)
def test_bad_input_names_the_value(build: object, match: str) -> None:
    with pytest.raises(LineDynamicsError, match=match):
        build()  # type: ignore[operator]
