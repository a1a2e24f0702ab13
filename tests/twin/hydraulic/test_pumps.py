"""Tests for `twin.pumps`: curves and fits against closed forms, affinity laws, degradation and stations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pumptwin.twin.hydraulic.network import Curve, Demand, Junction, Network, NetworkError, Pipe, Pump, Reservoir
from pumptwin.twin.hydraulic.pumps import (
    Degradation,
    EfficiencyCurve,
    HeadCurve,
    NpshrCurve,
    PumpModel,
    apply_degradation,
    degrade,
    fit_efficiency_curve,
    fit_head_curve,
    fit_npshr_curve,
    hydraulic_power_w,
    npsh_available_m,
    operating_point,
    parallel,
    series,
    shaft_power_w,
    specific_energy_kwh_m3,
)

G = 9.80665
RHO = 998.2
CURVE = HeadCurve(100.0, 2000.0, 2.0, "P1")
"""h = 100 - 2000 q^2: shutoff 100 m, max flow sqrt(0.05) m3/s."""
EFF = EfficiencyCurve(16.0, -80.0, name="P1")
"""eta = 16 q - 80 q^2: BEP at 0.1 m3/s with peak 0.8."""


def closed_form_head(h0: float, r: float, n: float, q: float, s: float) -> float:
    """Affinity-scaled power curve written out independently: h = s^2 h0 - r s^(2-n) q^n."""
    return float(s**2 * h0 - r * s ** (2 - n) * q**n)


def pump(degradation: Degradation | None = None) -> PumpModel:
    """The test pump P1 with an NPSHr curve 2 + 300 q^2 (m)."""
    return PumpModel("P1", CURVE, EFF, NpshrCurve(2.0, 0.0, 300.0, "P1"), degradation or Degradation())


@pytest.mark.parametrize("speed", [0.6, 0.85, 1.0, 1.15])
def test_head_matches_closed_form_and_affinity(speed: float) -> None:
    """Head equals the closed form, and homologous points obey q2/q1 = s, h2/h1 = s^2."""
    c = HeadCurve(120.0, 1500.0, 1.8)
    for q in (0.0, 0.05, 0.1, 0.15):
        assert c.head_m(q, speed) == pytest.approx(closed_form_head(120.0, 1500.0, 1.8, q, speed))
        assert c.head_m(speed * q, speed) == pytest.approx(speed**2 * c.head_m(q))
    assert c.max_flow_m3s(speed) == pytest.approx(speed * (120.0 / 1500.0) ** (1 / 1.8))
    assert c.shutoff_head_m(speed) == pytest.approx(120.0 * speed**2)
    assert c.flow_at_head_m3s(c.head_m(0.07, speed), speed) == pytest.approx(0.07)


@pytest.mark.parametrize("speed", [0.5, 0.8, 1.2])
def test_pump_affinity_laws_flow_head_power(speed: float) -> None:
    """At homologous points q2 = s q1: head ratio s^2, same efficiency, power ratio s^3."""
    p, q1 = pump(), np.array([0.02, 0.08, 0.1, 0.16])
    q2 = speed * q1
    np.testing.assert_allclose(p.head_m(q2, speed) / p.head_m(q1), speed**2)
    np.testing.assert_allclose(p.efficiency(q2, speed), p.efficiency(q1))
    np.testing.assert_allclose(p.shaft_power_w(q2, speed) / p.shaft_power_w(q1), speed**3)
    assert p.speed_rpm(speed) == pytest.approx(1480.0 * speed)


def test_three_point_fit_is_exact() -> None:
    """EPANET's 3-point power fit passes through all three points with its documented exponent."""
    pts = [(0.0, 100.0), (0.1, 85.0), (0.25, 30.0)]
    c = fit_head_curve(pts, "P3")
    np.testing.assert_allclose(c.head_m([q for q, _ in pts]), [h for _, h in pts], rtol=1e-12)
    assert c.h0_m == 100.0
    assert c.n == pytest.approx(math.log(70.0 / 15.0) / math.log(2.5))
    known = fit_head_curve([(0.0, 120.0), (0.05, closed_form_head(120, 1500, 1.8, 0.05, 1)), (0.2, 44.0)])
    assert known.head_m(0.2) == pytest.approx(44.0)


def test_three_point_fit_recovers_known_curve() -> None:
    """Points sampled from h = 100 - 2000 q^2 give back h0 = 100, r = 2000, n = 2."""
    c = fit_head_curve([(0.0, 100.0), (0.1, 80.0), (0.2, 20.0)])
    assert (c.h0_m, c.r, c.n) == pytest.approx((100.0, 2000.0, 2.0))


def test_single_point_rule_on_epanet_net1_pump() -> None:
    """Net1's pump 9 (1500 gpm at 250 ft) gets h0 = 1.33334 h1, max flow 2 q1 and n = 2."""
    q1, h1 = 1500 * 0.003785411784 / 60, 250 * 0.3048
    c = fit_head_curve(Curve("1", ((q1, h1),)))
    assert c.name == "1"
    assert c.h0_m == pytest.approx(1.33334 * h1, rel=1e-12)
    assert c.h0_m == pytest.approx(101.6005, abs=1e-4)
    assert c.max_flow_m3s() == pytest.approx(2 * q1, rel=1e-9)
    assert c.n == pytest.approx(2.0, abs=1e-4)
    assert c.head_m(q1) == pytest.approx(h1)


def test_least_squares_fit_recovers_curve_and_bounds_exponent() -> None:
    """Five points off h = 90 - 800 q^2.5 are recovered; an exponent of 4 is held at the bound 3."""
    qs = np.array([0.02, 0.1, 0.2, 0.3, 0.4])
    c = fit_head_curve(list(zip(qs, 90 - 800 * qs**2.5, strict=True)))
    assert (c.h0_m, c.n) == pytest.approx((90.0, 2.5), rel=1e-5)
    assert c.r == pytest.approx(800.0, rel=1e-4)
    steep = fit_head_curve(list(zip(qs, 90 - 3000 * qs**4, strict=True)))
    assert 1.0 <= steep.n <= 3.0 + 1e-12


def test_operating_point_by_hand() -> None:
    """h = 100 - 2000 q^2 against 40 + 1000 q^2 meets at q = sqrt(60 / 3000), h = 60."""
    q, h = pump().operating_point_against(40.0, 1000.0)
    assert q == pytest.approx(math.sqrt(60 / 3000), rel=1e-10)
    assert h == pytest.approx(60.0)
    assert operating_point(CURVE, 40.0, 1000.0) == pytest.approx((q, h))
    q_s, _ = pump().operating_point_against(40.0, 1000.0, speed=0.9)
    assert q_s == pytest.approx(math.sqrt((81 - 40) / 3000), rel=1e-10)


def test_no_intersection_names_pump() -> None:
    """A static head above the shutoff head has no duty point."""
    with pytest.raises(NetworkError, match="pump 'P1': no intersection"):
        pump().operating_point_against(120.0, 1000.0)


def test_bep_and_preferred_operating_region() -> None:
    """eta = 16 q - 80 q^2 peaks at 0.8 at 0.1 m3/s; the POR is 70-120% of that, scaled by speed."""
    assert EFF.bep_flow_m3s() == pytest.approx(0.1)
    assert EFF.peak_efficiency == pytest.approx(0.8)
    assert EFF.preferred_operating_region() == pytest.approx((0.07, 0.12))
    assert EFF.preferred_operating_region(0.8) == pytest.approx((0.056, 0.096))
    assert EFF.percent_of_bep(0.08, 0.8) == pytest.approx(100.0)
    assert EFF.efficiency(0.08, 0.8) == pytest.approx(0.8)


def test_efficiency_fits() -> None:
    """Least squares through the origin recovers a quadratic (3 points) and a cubic (4+ points)."""
    quad = fit_efficiency_curve([(0.05, 0.6), (0.1, 0.8), (0.15, 0.6)])
    assert (quad.a, quad.b, quad.c) == pytest.approx((16.0, -80.0, 0.0))
    qs = np.array([0.0, 0.05, 0.1, 0.15, 0.2])
    cubic = fit_efficiency_curve(list(zip(qs, 12 * qs - 40 * qs**2 - 20 * qs**3, strict=True)))
    assert (cubic.a, cubic.b, cubic.c) == pytest.approx((12.0, -40.0, -20.0))
    assert cubic.bep_flow_m3s() == pytest.approx((-80 + math.sqrt(80**2 + 4 * 60 * 12)) / 120)


def test_power_and_specific_energy() -> None:
    """rho g q h, shaft = hydraulic / eta, kWh/m3 = P / q / 3.6e6; the pump model agrees."""
    hyd = hydraulic_power_w(0.1, 80.0)
    assert hyd == pytest.approx(RHO * G * 0.1 * 80.0)
    shaft = shaft_power_w(hyd, 0.8)
    assert shaft == pytest.approx(hyd / 0.8)
    assert specific_energy_kwh_m3(shaft, 0.1) == pytest.approx(RHO * G * 80.0 / 0.8 / 3.6e6)
    assert pump().shaft_power_w(0.1) == pytest.approx(shaft)
    assert pump().shaft_power_w(0.0) == pytest.approx(RHO * G * 100.0 / 16.0)  # limit rho g h0 / a
    assert pump().shaft_power_w(0.1, density_kg_m3=850.0) == pytest.approx(shaft * 850.0 / RHO)


def test_npsh_required_and_available() -> None:
    """NPSHr fits exactly through three points and scales as s^2 NPSHr(q / s); NPSHa by formula."""
    n = fit_npshr_curve([(0.0, 2.0), (0.1, 4.0), (0.2, 11.0)])
    np.testing.assert_allclose(n.npshr_m([0.0, 0.1, 0.2]), [2.0, 4.0, 11.0])
    assert n.npshr_m(0.08, 0.8) == pytest.approx(0.64 * 4.0)
    assert fit_npshr_curve([(0.1, 3.0), (0.2, 6.0)]).npshr_m(0.0) == pytest.approx(2.0)
    assert pump().npshr_m(0.1) == pytest.approx(5.0)
    expected = 5.0 + (101_325.0 - 2_339.0) / (RHO * G) + 2.0**2 / (2 * G)
    assert npsh_available_m(5.0, 2.0, 101_325.0, 2_339.0, RHO) == pytest.approx(expected)


def test_degradation_lowers_head_and_efficiency_monotonically() -> None:
    """More wear, efficiency loss or recirculation never raises head or efficiency."""
    q = np.array([0.02, 0.06, 0.1])
    levels = [0.0, 0.05, 0.1, 0.2]
    for kind in ("impeller_wear", "efficiency_loss", "recirculation_m3s"):
        models = [pump(Degradation(**{kind: x})) for x in levels]
        heads = np.array([m.head_m(q) for m in models])
        effs = np.array([m.efficiency(q) for m in models])
        assert np.all(np.diff(heads, axis=0) <= 1e-12), kind
        assert np.all(np.diff(effs, axis=0) <= 1e-12), kind
    assert pump(Degradation(efficiency_loss=0.1)).efficiency(0.1) == pytest.approx(0.72)


def test_degrade_matches_model() -> None:
    """Wear follows diameter affinity exactly; the recirculation refit stays close to the exact shift."""
    worn = degrade(CURVE, Degradation(impeller_wear=0.1))
    assert (worn.h0_m, worn.r, worn.n) == pytest.approx((81.0, 2000.0, 2.0))
    deg = Degradation(impeller_wear=0.1, recirculation_m3s=0.02)
    fitted, exact = degrade(CURVE, deg), pump(deg)
    q = np.linspace(0.0, exact.max_flow_m3s(), 9)
    np.testing.assert_allclose(fitted.head_m(q), exact.head_m(q), atol=0.01 * CURVE.h0_m)


def test_series_and_parallel_of_identical_pumps() -> None:
    """Parallel: same head at twice (three times) the flow; series: twice the head at the same flow."""
    q = np.array([0.0, 0.05, 0.1, 0.2])
    np.testing.assert_allclose(parallel(CURVE, CURVE).head_m(2 * q), CURVE.head_m(q), atol=1e-9)
    np.testing.assert_allclose(parallel(CURVE, counts=[3])(3 * q), CURVE.head_m(q), atol=1e-9)
    np.testing.assert_allclose(series(CURVE, CURVE).head_m(q), 2 * CURVE.head_m(q))
    np.testing.assert_allclose(series(CURVE, CURVE).flow_at_head_m3s(2 * CURVE.head_m(q)), q, atol=1e-9)
    assert series(CURVE, counts=[2]).flow_at_head_m3s(250.0) == 0.0
    assert parallel(CURVE, CURVE).max_flow_m3s() == pytest.approx(2 * CURVE.max_flow_m3s())
    # 100 - 2000 (q/2)^2 = 40 + 1000 q^2  ->  q = sqrt(60 / 1500)
    q_op, h_op = operating_point(parallel(pump(), pump()), 40.0, 1000.0)
    assert (q_op, h_op) == pytest.approx((math.sqrt(60 / 1500), 80.0))


def test_parallel_of_different_pumps() -> None:
    """Flows add at a common head; a pump whose shutoff is below the head delivers nothing."""
    small = HeadCurve(80.0, 1000.0, 1.8, "P2")
    station = parallel(CURVE, small)
    for h in (90.0, 60.0, 20.0):
        q = float(CURVE.flow_at_head_m3s(h) + small.flow_at_head_m3s(h))
        assert station.head_m(q) == pytest.approx(h)
    assert station.flow_at_head_m3s(90.0) == pytest.approx(CURVE.flow_at_head_m3s(90.0))
    assert station.shutoff_head_m() == 100.0


heads = st.builds(
    HeadCurve,
    st.floats(10.0, 500.0),
    st.floats(10.0, 1e5),
    st.floats(1.0, 3.0),
)
speeds = st.floats(0.5, 1.2)


@settings(max_examples=60, deadline=None)
@given(heads, speeds, st.lists(st.floats(0.0, 1.5), min_size=2, max_size=20))
def test_head_never_rises_with_flow(curve: HeadCurve, speed: float, fractions: list[float]) -> None:
    """Property: head is non-increasing in flow at any speed."""
    q = np.sort(np.array(fractions) * curve.max_flow_m3s(speed))
    assert np.all(np.diff(curve.head_m(q, speed)) <= 1e-9 * curve.h0_m)


@settings(max_examples=60, deadline=None)
@given(
    heads,
    speeds,
    st.tuples(st.floats(0.0, 1.0), st.floats(0.3, 0.8), st.floats(0.3, 0.95)),
    st.tuples(st.floats(0.0, 0.5), st.floats(0.0, 0.5), st.floats(0.0, 0.5)),
)
def test_power_is_non_negative(
    curve: HeadCurve, speed: float, shape: tuple[float, float, float], wear: tuple[float, float, float]
) -> None:
    """Property: shaft power is finite and >= 0, and head does not rise with flow, for any degraded pump."""
    fraction, bep_fraction, peak = shape
    q_bep = bep_fraction * curve.max_flow_m3s()
    eff = EfficiencyCurve(2 * peak / q_bep, -peak / q_bep**2)
    deg = Degradation(wear[0], wear[1], wear[2] * curve.max_flow_m3s(0.5 * (1 - wear[0])))
    model = PumpModel("H", curve, eff, degradation=deg)
    q = np.array([0.0, fraction, 1.0, 1.5]) * model.max_flow_m3s(speed)
    power = model.shaft_power_w(q, speed)
    assert np.all(np.isfinite(power))
    assert np.all(power >= 0)
    assert np.all(np.diff(model.head_m(q, speed)) <= 1e-9 * curve.h0_m)


@settings(max_examples=60, deadline=None)
@given(heads, speeds, st.floats(0.0, 1.0))
def test_speed_scaling_is_consistent(curve: HeadCurve, speed: float, fraction: float) -> None:
    """Property: h(s q, s) = s^2 h(q, 1), max flow scales by s, two in parallel give h at twice the flow."""
    q = fraction * curve.max_flow_m3s()
    assert curve.head_m(speed * q, speed) == pytest.approx(speed**2 * curve.head_m(q), abs=1e-9 * curve.h0_m)
    assert curve.max_flow_m3s(speed) == pytest.approx(speed * curve.max_flow_m3s())
    assert parallel(curve, curve).head_m(2 * q, speed) == pytest.approx(curve.head_m(q, speed), abs=1e-9 * curve.h0_m)


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ([], "head curve 'bad': needs at least one"),
        ([(0.0, 50.0), (0.1, 60.0)], "head curve 'bad': head rises with flow"),
        ([(-0.1, 50.0), (0.1, 40.0)], "head curve 'bad': flows and values must be >= 0"),
        ([(0.0, math.nan), (0.1, 40.0)], "head curve 'bad': non-finite"),
        ([(0.1, 50.0), (0.1, 40.0)], "head curve 'bad': flows must strictly increase"),
        ([(0.0, 50.0), (0.1, 50.0), (0.2, 10.0)], "head curve 'bad': the 3-point power fit"),
    ],
)
def test_bad_head_points_name_the_curve(points: list[tuple[float, float]], message: str) -> None:
    """Bad manufacturer points raise a NetworkError that names the curve."""
    with pytest.raises(NetworkError, match=message):
        fit_head_curve(points, "bad")


def test_other_bad_inputs() -> None:
    """Invalid curves, efficiencies, wear, speeds and stations are rejected with the element named."""
    with pytest.raises(NetworkError, match="head curve 'X': h0 must be"):
        HeadCurve(-1.0, 1.0, 2.0, "X")
    with pytest.raises(NetworkError, match="head curve 'P1': flows must be finite and >= 0"):
        CURVE.head_m([0.1, -0.1])
    with pytest.raises(NetworkError, match="efficiency curve 'E': efficiencies must be fractions"):
        fit_efficiency_curve([(0.1, 0.5), (0.2, 1.5)], "E")
    with pytest.raises(NetworkError, match="efficiency curve 'E': needs at least two points"):
        fit_efficiency_curve([(0.0, 0.0), (0.2, 0.5)], "E")
    with pytest.raises(NetworkError, match="efficiency curve 'E': efficiency never peaks"):
        EfficiencyCurve(1.0, 1.0, name="E")
    with pytest.raises(NetworkError, match="degradation: impeller wear"):
        Degradation(impeller_wear=0.6)
    with pytest.raises(NetworkError, match="pump 'P1': speed 1.5 outside"):
        pump().head_m(0.1, 1.5)
    with pytest.raises(NetworkError, match="pump 'P1': recirculation exceeds"):
        pump(Degradation(recirculation_m3s=1.0))
    with pytest.raises(NetworkError, match="station 'S': needs one or more curves"):
        parallel(CURVE, counts=[1, 1], name="S")
    with pytest.raises(NetworkError, match="shaft power: efficiency"):
        shaft_power_w(1000.0, 0.0)


# --- degradation applied to a network ----------------------------------------------------------


def _one_pump_network(points: tuple[tuple[float, float], ...]) -> Network:
    return Network(
        name="one pump",
        junctions=(Junction("J", 0.0, (Demand(0.0),)),),
        reservoirs=(Reservoir("R1", 10.0), Reservoir("R2", 60.0)),
        pipes=(Pipe("P1", "J", "R2", 1000.0, 0.3, 120.0),),
        pumps=(Pump("PU", "R1", "J", head_curve="H", efficiency_curve="E"),),
        curves=(Curve("H", points), Curve("E", ((0.05, 0.5), (0.1, 0.75), (0.15, 0.8), (0.2, 0.7)), "EFFICIENCY")),
    )


def test_apply_degradation_without_wear_keeps_the_curves() -> None:
    net = _one_pump_network(((0.0, 100.0), (0.1, 80.0), (0.2, 40.0)))
    worn = apply_degradation(net, {"PU": Degradation()})
    assert worn.curve(worn.pumps[0].head_curve or "").points == net.curve("H").points
    assert np.ravel(worn.curve(worn.pumps[0].efficiency_curve or "").points) == pytest.approx(
        np.ravel(net.curve("E").points)
    )


def test_apply_degradation_maps_points_by_diameter_affinity() -> None:
    net = _one_pump_network(((0.0, 100.0), (0.1, 80.0), (0.2, 40.0)))
    worn = apply_degradation(net, {"PU": Degradation(impeller_wear=0.1, efficiency_loss=0.05)})
    pump = worn.pumps[0]
    assert pump.head_curve == "H@PU" and pump.efficiency_curve == "E@PU"
    assert np.ravel(worn.curve("H@PU").points) == pytest.approx([0.0, 81.0, 0.09, 64.8, 0.18, 32.4])
    assert [e for _, e in worn.curve("E@PU").points] == pytest.approx([0.475, 0.7125, 0.76, 0.665])
    assert net.curve("H").points == ((0.0, 100.0), (0.1, 80.0), (0.2, 40.0))  # the input is untouched


def test_recirculation_lowers_delivered_flow_and_efficiency() -> None:
    net = _one_pump_network(((0.0, 100.0), (0.1, 80.0), (0.2, 40.0)))
    worn = apply_degradation(net, {"PU": Degradation(recirculation_m3s=0.02)})
    q, h = zip(*worn.curve("H@PU").points, strict=True)
    assert q[0] == 0.0 and h[0] < 100.0  # the pump now recirculates at shut-off
    assert q[1:] == pytest.approx((0.08, 0.18))
    eff = worn.curve("E@PU").points
    assert eff[0] == pytest.approx((0.03, 0.5 * 0.03 / 0.05))


def test_apply_degradation_rejects_unknown_pumps() -> None:
    net = _one_pump_network(((0.0, 100.0), (0.1, 80.0), (0.2, 40.0)))
    with pytest.raises(NetworkError, match="do not exist"):
        apply_degradation(net, {"nope": Degradation()})
