"""Tests of the method-of-characteristics surge solver against closed forms."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pumptwin.twin.hydraulic.io import load_network
from pumptwin.twin.hydraulic.pumps import EfficiencyCurve, HeadCurve
from pumptwin.twin.surge.transients import (
    DeadEnd,
    PipeElasticity,
    PumpStation,
    Reach,
    Reservoir,
    TransientCase,
    TransientError,
    TransientLine,
    Valve,
    discretise,
    korteweg_wave_speed_m_s,
    line_from_network,
    simulate,
)

G = 9.80665


def _area(d: float) -> float:
    return math.pi * d * d / 4.0


def _valve_case(
    *,
    wave: float = 1000.0,
    length: float = 1000.0,
    diameter: float = 0.5,
    friction: float = 0.0,
    k_valve: float = 2.0 * G * 50.0,
    t0: float | None = 0.5,
    tc: float = 0.0,
    maop_pa: float | None = None,
) -> TransientCase:
    """Reservoir (200 m) - one pipe - valve to 150 m: 1 m/s when frictionless with the default K."""
    reach = Reach(length, diameter, wave, 0.0, 0.0, friction_factor=friction, maop_pa=maop_pa, name="P1")
    valve = Valve(150.0, k_valve, closure_start_s=t0, closure_time_s=tc)
    return TransientCase(TransientLine((reach,)), Reservoir(200.0), valve)


def _swamee_jain(re: float, rel: float) -> float:
    return 0.25 / math.log10(rel / 3.7 + 5.74 / re**0.9) ** 2


# ------------------------------------------------------------------------------ closed forms


def test_instantaneous_closure_gives_joukowsky_rise() -> None:
    case = _valve_case()
    res = simulate(case, 3.0, max_reach_m=50.0)
    v0 = res.steady_flow_m3s / _area(0.5)
    assert v0 == pytest.approx(1.0, rel=1e-9)  # sqrt(2 g 50 / K) with K = 2 g 50
    joukowsky = 1000.0 * v0 / G
    rise = res.head_max_m[-1] - res.steady_head_m[-1]
    assert rise == pytest.approx(joukowsky, rel=0.01)
    assert not res.column_separation.any()


@settings(max_examples=12, deadline=None)
@given(wave=st.floats(300.0, 1400.0), velocity=st.floats(0.2, 1.5))
def test_joukowsky_holds_for_any_wave_speed_and_velocity(wave: float, velocity: float) -> None:
    k_valve = 2.0 * G * 50.0 / velocity**2
    case = _valve_case(wave=wave, k_valve=k_valve, t0=0.0)
    res = simulate(case, 1.5 * 1000.0 / wave, max_reach_m=100.0)
    rise = res.head_max_m[-1] - res.steady_head_m[-1]
    assert rise == pytest.approx(wave * velocity / G, rel=0.01)


def test_nearly_frictionless_closure_is_within_one_percent_of_joukowsky() -> None:
    case = _valve_case(friction=0.005, length=2000.0)
    res = simulate(case, 2.0, max_reach_m=50.0)
    v0 = res.steady_flow_m3s / _area(0.5)
    rise = res.head_max_m[-1] - res.steady_head_m[-1]
    assert abs(rise / (1000.0 * v0 / G) - 1.0) < 0.01


def test_wave_returns_at_two_l_over_a_and_period_is_four_l_over_a() -> None:
    t0, length, wave = 0.5, 1000.0, 1000.0
    case = _valve_case(t0=t0, length=length, wave=wave)
    res = simulate(case, 20.0, max_reach_m=20.0, probes_m=[0.0, 500.0, 1000.0])
    h0 = res.steady_head_m[-1]
    dev = res.probe_head_m[:, 2] - h0
    after = res.time_s >= t0
    first_low = res.time_s[after & (dev < -1.0)][0]
    assert first_low == pytest.approx(t0 + 2.0 * length / wave, abs=1.5 * res.dt_s)
    # Mid-line sees the rise L / (2a) after closure.
    mid_rise = res.time_s[res.probe_head_m[:, 1] - res.steady_head_m[res.steady_head_m.size // 2] > 1.0][0]
    assert mid_rise == pytest.approx(t0 + 0.5 * length / wave, abs=1.5 * res.dt_s)
    # Period from upward crossings of the steady head at the valve.
    sign = np.sign(dev[after])
    ups = res.time_s[after][1:][(sign[:-1] <= 0) & (sign[1:] > 0)]
    period = float(np.mean(np.diff(ups)))
    assert period == pytest.approx(4.0 * length / wave, rel=0.01)
    # The reservoir end holds its head.
    assert np.allclose(res.probe_head_m[:, 0], 200.0)


def test_steady_state_holds_without_an_event_and_matches_darcy_weisbach() -> None:
    nu = 1.0e-6
    reaches = (
        Reach(3000.0, 0.6, 1100.0, 10.0, 40.0, roughness_m=4.5e-5, name="A"),
        Reach(2000.0, 0.5, 1000.0, 40.0, 25.0, roughness_m=4.5e-5, name="B"),
        Reach(1500.0, 0.4, 950.0, 25.0, 5.0, roughness_m=1e-4, name="C"),
    )
    line = TransientLine(reaches, density_kg_m3=1000.0, kinematic_viscosity_m2_s=nu)
    k_valve = 5.0
    case = TransientCase(line, Reservoir(120.0), Valve(60.0, k_valve))
    res = simulate(case, 200.0, max_reach_m=100.0)
    assert res.time_s.size > 1000
    assert np.max(np.abs(res.head_max_m - res.steady_head_m)) < 1e-8
    assert np.max(np.abs(res.head_min_m - res.steady_head_m)) < 1e-8
    assert np.allclose(res.probe_flow_m3s, res.steady_flow_m3s, rtol=1e-10)
    # Independent Darcy-Weisbach: head drop per pipe and the valve loss.
    q = res.steady_flow_m3s
    ends = [int(np.flatnonzero(res.pipe_of_node == i)[-1]) for i in range(3)]
    starts = [0, *ends[:-1]]
    for r, a, b in zip(reaches, starts, ends, strict=True):
        v = q / _area(r.diameter_m)
        f = _swamee_jain(v * r.diameter_m / nu, r.roughness_m / r.diameter_m)
        drop = f * r.length_m / r.diameter_m * v * v / (2.0 * G)
        assert res.steady_head_m[a] - res.steady_head_m[b] == pytest.approx(drop, rel=1e-9)
    v_end = q / _area(0.4)
    assert res.steady_head_m[-1] - 60.0 == pytest.approx(k_valve * v_end**2 / (2.0 * G), rel=1e-9)


def test_running_pump_station_stays_steady() -> None:
    line = TransientLine((Reach(8000.0, 0.5, 1000.0, 0.0, 30.0, friction_factor=0.015, name="L"),))
    station = PumpStation(5.0, HeadCurve(200.0, 800.0, 2.0), EfficiencyCurve(5.0, -8.0), n_running=2)
    res = simulate(TransientCase(line, station, Reservoir(100.0)), 60.0, max_reach_m=200.0)
    q = res.steady_flow_m3s
    assert 5.0 + 200.0 - 800.0 * (q / 2) ** 2 == pytest.approx(res.steady_head_m[0], abs=1e-9)
    assert np.max(np.abs(res.head_max_m - res.steady_head_m)) < 1e-7
    assert np.max(np.abs(res.head_min_m - res.steady_head_m)) < 1e-7
    assert res.pump_speed is not None
    assert np.all(res.pump_speed == 1.0)


def test_slow_closure_surges_much_less_than_joukowsky() -> None:
    two_l_over_a = 2.0
    fast = simulate(_valve_case(tc=0.5 * two_l_over_a), 30.0, max_reach_m=50.0)
    slow = simulate(_valve_case(tc=20.0 * two_l_over_a), 60.0, max_reach_m=50.0)
    joukowsky = 1000.0 * 1.0 / G
    assert fast.head_max_m[-1] - fast.steady_head_m[-1] == pytest.approx(joukowsky, rel=0.02)
    slow_rise = slow.head_max_m[-1] - slow.steady_head_m[-1]
    assert 0 < slow_rise < 0.25 * joukowsky


def test_dead_end_holds_the_upstream_head() -> None:
    line = TransientLine((Reach(1000.0, 0.3, 1200.0, 0.0, 10.0, friction_factor=0.02),))
    res = simulate(TransientCase(line, Reservoir(50.0), DeadEnd()), 10.0, max_reach_m=100.0)
    assert res.steady_flow_m3s == 0.0
    assert np.allclose(res.head_max_m, 50.0)
    assert np.allclose(res.head_min_m, 50.0)


# ------------------------------------------------------------------------------ pump trip


def _trip_case(inertia: float) -> TransientCase:
    """Pump at 0 m lifting over a high point (80 m at km 6) to a reservoir at 100 m."""
    reaches = (
        Reach(6000.0, 0.5, 1000.0, 0.0, 80.0, friction_factor=0.015, name="rise"),
        Reach(4000.0, 0.5, 1000.0, 80.0, 60.0, friction_factor=0.015, name="fall"),
    )
    line = TransientLine(reaches, density_kg_m3=998.0, vapour_pressure_pa=2339.0)
    station = PumpStation(
        5.0, HeadCurve(220.0, 700.0, 2.0), EfficiencyCurve(5.0, -8.0), n_running=2, inertia_kg_m2=inertia
    )
    return TransientCase(line, dataclasses.replace(station, trip_time_s=2.0), Reservoir(100.0))


def test_pump_trip_separates_the_column_at_the_high_point() -> None:
    res = simulate(_trip_case(inertia=10.0), 120.0, max_reach_m=100.0)
    assert res.pump_speed is not None
    assert res.pump_speed[-1] < 0.1
    assert np.all(np.diff(res.pump_speed) <= 1e-12)
    high = int(np.argmin(np.abs(res.x_m - 6000.0)))
    assert res.column_separation[high]
    assert not res.column_separation[-1]
    assert res.time_column_separation_s[high] > 2.0
    # Clamped at vapour pressure, never below.
    assert res.pressure_min_pa.min() >= res.vapour_pressure_pa - 1e-6
    assert res.pressure_min_pa[high] == pytest.approx(res.vapour_pressure_pa, abs=1e-3)
    # Envelope sane.
    assert np.all(res.head_min_m <= res.steady_head_m + 1e-9)
    assert np.all(res.head_max_m >= res.steady_head_m - 1e-9)
    assert res.summary()["column_separation"] is True


def test_heavy_flywheel_prevents_column_separation() -> None:
    res = simulate(_trip_case(inertia=5.0e4), 60.0, max_reach_m=100.0)
    assert not res.column_separation.any()
    assert res.summary()["column_separation"] is False


# ------------------------------------------------------------------------------ MAOP


def test_surge_above_110_percent_of_maop_is_flagged() -> None:
    maop = 2.0e6  # 204 m of water; steady about 170-200 m, surge to about 300 m
    res = simulate(_valve_case(maop_pa=maop), 3.0, max_reach_m=50.0)
    rho_g = 998.2 * G
    expected = rho_g * (res.head_max_m - res.elevation_m) > 1.1 * maop
    assert expected.any()
    assert not expected.all()
    assert np.array_equal(res.surge_violation, expected)
    assert np.allclose(res.surge_margin_pa, 1.1 * maop - res.pressure_max_pa)
    rows = res.surge_table()
    assert rows[0]["surge_violation"] is True
    assert res.summary()["surge_violation"] is True


def test_no_violation_without_maop_breach() -> None:
    res = simulate(_valve_case(maop_pa=5.0e6), 3.0, max_reach_m=50.0)
    assert not res.surge_violation.any()
    assert res.summary()["min_surge_margin_mpa"] > 0


# ------------------------------------------------------------------------------ grid and wave speed


def test_grid_adjusts_wave_speeds_within_tolerance() -> None:
    line = TransientLine((Reach(1000.0, 0.5, 1000.0), Reach(777.0, 0.4, 1234.0), Reach(2500.0, 0.6, 980.0)))
    grid = discretise(line, max_reach_m=100.0, wave_speed_tolerance=0.01)
    assert grid.max_wave_speed_adjustment <= 0.01
    given = np.array([r.wave_speed_m_s for r in line.reaches])[grid.reach_pipe]
    assert np.all(np.abs(grid.wave_speed_m_s / given - 1.0) <= 0.01 + 1e-12)
    assert np.allclose(grid.reach_length_m, grid.wave_speed_m_s * grid.dt_s)  # Courant number 1
    assert grid.x_m[-1] == pytest.approx(4277.0)


def test_korteweg_wave_speed_matches_the_closed_form() -> None:
    k, rho, d, e, young, nu = 2.19e9, 998.2, 0.5, 0.01, 207e9, 0.3
    expected = math.sqrt(k / rho) / math.sqrt(1.0 + (1 - nu * nu) * k * d / (young * e))
    assert korteweg_wave_speed_m_s(d, e, rho, k, young, 1 - nu * nu) == pytest.approx(expected, rel=1e-12)
    assert 1000.0 < expected < 1400.0


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"length_m": 0.0}, "length"),
        ({"length_m": -5.0}, "length"),
        ({"wave_speed_m_s": 0.0}, "wave speed"),
        ({"wave_speed_m_s": -100.0}, "wave speed"),
        ({"diameter_m": 0.0}, "diameter"),
        ({"friction_factor": -0.01}, "friction"),
    ],
)
def test_bad_reach_is_rejected(kwargs: dict[str, float], word: str) -> None:
    base: dict[str, Any] = {"length_m": 100.0, "diameter_m": 0.3, "wave_speed_m_s": 1000.0}
    with pytest.raises(TransientError, match=word):
        Reach(**{**base, **kwargs})


@pytest.mark.parametrize("dt", [0.0, -0.1, math.nan])
def test_bad_time_step_is_rejected(dt: float) -> None:
    with pytest.raises(TransientError, match="time step"):
        simulate(_valve_case(), 1.0, dt_s=dt)


def test_bad_duration_and_mismatched_time_step_are_rejected() -> None:
    with pytest.raises(TransientError, match="duration"):
        simulate(_valve_case(), 0.0)
    with pytest.raises(TransientError, match="wave speed"):
        simulate(_valve_case(), 1.0, dt_s=0.3)  # 1000 m / (1000 m/s x 0.3 s) is not a whole number
    with pytest.raises(TransientError, match="probe"):
        simulate(_valve_case(), 1.0, probes_m=[2000.0])
    with pytest.raises(TransientError, match="line"):
        TransientLine(())
    with pytest.raises(TransientError, match="closure time"):
        Valve(0.0, 1.0, closure_start_s=0.0, closure_time_s=-1.0)


# ------------------------------------------------------------------------------ twin network


def test_reference_pipeline_starts_in_the_twins_steady_state() -> None:
    from pumptwin.twin.hydraulic.solver import base_batch, compile_network, solve_batch

    net = load_network()
    model = compile_network(net)
    sol = solve_batch(model, base_batch(model))
    case = line_from_network(net, "PS1-D", "PS2-S", trip_time_s=5.0)
    assert isinstance(case.upstream, PumpStation)
    assert case.upstream.n_running == 2
    assert len(case.line.reaches) == 12
    expected_a = korteweg_wave_speed_m_s(0.66, 0.66 / 50.0, 850.0, 1.5e9)
    assert case.line.reaches[0].wave_speed_m_s == pytest.approx(expected_a)
    res = simulate(case, 60.0, max_reach_m=5000.0)
    link = model.link_index["L000-005"]
    assert res.steady_flow_m3s == pytest.approx(sol.flow_m3s[0, link], rel=1e-6)
    for i, node in enumerate(["PS1-D", "KP005", "KP010", "KP015"]):
        assert res.steady_head_m[i] == pytest.approx(sol.head_m[0, model.node_index[node]], abs=1e-4)
    assert res.head_min_m[0] < res.steady_head_m[0] - 50.0  # the trip drops the discharge head
    rows = res.surge_table()
    assert [r["pipe"] for r in rows][:2] == ["L000-005", "L005-010"]
    assert rows[0]["maop_mpa"] == pytest.approx(3.1)


def test_network_path_must_be_a_chain() -> None:
    net = load_network()
    with pytest.raises(TransientError, match="chain"):
        line_from_network(net, "PS1-D", "TERMINAL")  # crosses PS2's pumps, not pipes
    with pytest.raises(TransientError, match="Young"):
        PipeElasticity(youngs_modulus_pa=0.0)


def test_rundown_against_a_shut_check_valve_follows_the_closed_form() -> None:
    """At zero flow P = rho g h0 s^3 / a (eta = a q), so I w^2 s ds/dt = -P gives s = 1 / (1 + c t)."""
    rho, h0, a_eff, inertia, rpm = 998.0, 200.0, 5.0, 10.0, 1480.0
    line = TransientLine((Reach(2000.0, 0.5, 1000.0, friction_factor=0.0),), density_kg_m3=rho)
    station = PumpStation(
        5.0, HeadCurve(h0, 800.0, 2.0), EfficiencyCurve(a_eff, -8.0), inertia_kg_m2=inertia, trip_time_s=0.0
    )
    res = simulate(TransientCase(line, station, DeadEnd()), 10.0, max_reach_m=100.0)
    omega = rpm * 2.0 * math.pi / 60.0
    c = rho * G * h0 / (a_eff * inertia * omega**2)
    assert res.pump_speed is not None
    expected = np.maximum(1.0 / (1.0 + c * res.time_s), 0.01)
    assert np.allclose(res.pump_speed, expected, rtol=1e-9)
    assert np.allclose(res.head_max_m, 5.0 + h0)  # the shut check valve holds the line
