"""Tests for `twin.metrics` on the reference pipeline: pressures, MAOP margins and pump operating points.

Every expected value is computed here by hand from the solution (heads, flows) and the curves in the
.inp and .yaml files: rho g (h - z) for pressures, an own least-squares fit of the efficiency curve, an
own quadratic through the three NPSHr points.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from pumptwin.twin.hydraulic.eps import simulate
from pumptwin.twin.hydraulic.io import load_network
from pumptwin.twin.hydraulic.metrics import LineMetrics, PumpMetrics, line_metrics, pump_assets, pump_metrics
from pumptwin.twin.hydraulic.solver import CLOSED, HydraulicModel, base_batch, compile_network, solve_batch

G = 9.80665
RHO = 850.0  # crude, from reference_pipeline.yaml
P_ATM = 101_325.0
P_VAP = 30_000.0
RUNNING = ["PS1-P1", "PS1-P2", "PS2-P1", "PS2-P2"]
STANDBY = ["PS1-P3", "PS2-P3"]


@pytest.fixture(scope="module")
def model() -> HydraulicModel:
    return compile_network(load_network())


@pytest.fixture(scope="module")
def solution(model: HydraulicModel) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Heads, flows, statuses and speeds of two scenarios: the file's state and every pump at 0.9 speed."""
    batch = base_batch(model, 2)
    batch.pump_speed[1] *= 0.9
    res = solve_batch(model, batch, accuracy=1e-8)
    assert res.converged.all()
    return res.head_m, res.flow_m3s, res.status, batch.pump_speed


@pytest.fixture(scope="module")
def pumps(model: HydraulicModel, solution: tuple[np.ndarray, ...]) -> PumpMetrics:
    head, flow, status, speed = solution
    return pump_metrics(model, pump_assets(model), head, flow, status, speed)


@pytest.fixture(scope="module")
def line(model: HydraulicModel, solution: tuple[np.ndarray, ...]) -> LineMetrics:
    return line_metrics(model, solution[0])


def efficiency_by_hand(model: HydraulicModel) -> tuple[np.ndarray, float]:
    """Cubic eta = a q + b q^2 + c q^3 through the origin fitted to EF1, and its best-efficiency flow."""
    curve = model.network.curve("EF1")
    q, eta = np.array(curve.x), np.array(curve.y)
    assert eta.max() == pytest.approx(0.84)  # the file's 84 % as a fraction
    coef, *_ = np.linalg.lstsq(np.column_stack([q, q**2, q**3]), eta, rcond=None)
    a, b, c = coef
    roots = np.roots([3 * c, 2 * b, a]).real  # d eta / dq = 0
    bep = min(r for r in roots if r > 0 and 2 * b + 6 * c * r < 0)
    return coef, float(bep)


def npshr_by_hand(model: HydraulicModel) -> np.ndarray:
    """Quadratic NPSHr = a + b q + c q^2 through the three NPSHR1 points (ascending powers)."""
    curve = model.network.curve("NPSHR1")
    coef = np.linalg.solve(np.vander(np.array(curve.x), 3, increasing=True), np.array(curve.y))
    assert coef[0] >= 0  # the fit's a >= 0 bound is not active
    return coef


def test_pressure_in_pa_from_heads(model: HydraulicModel, solution: tuple[np.ndarray, ...], line: LineMetrics) -> None:
    head = solution[0]
    assert model.network.fluid.density_kg_m3 == RHO
    expected = (head - model.elevation_m) * RHO * G
    np.testing.assert_allclose(line.pressure_pa, expected, rtol=1e-12)
    i = model.node_index["PS1-D"]
    assert line.pressure_pa[0, i] == pytest.approx((head[0, i] - 52.0) * 850.0 * 9.80665)
    assert line.pressure_pa[0, model.node_index["ORIGIN"]] == 0.0  # a reservoir without elevation sits at its head


def test_maop_margins_on_every_pipe(model: HydraulicModel, line: LineMetrics) -> None:
    pipes = model.network.pipes
    assert np.isfinite(line.maop_pa).all()  # the sidecar gives every segment an MAOP
    for k, pipe in enumerate(pipes):
        p = line.pressure_pa[:, [model.node_index[pipe.start], model.node_index[pipe.end]]].max(axis=1)
        np.testing.assert_allclose(line.pipe_max_pressure_pa[:, k], p, rtol=1e-12)
        np.testing.assert_allclose(line.maop_margin_pa[:, k], pipe.maop_pa - p, rtol=1e-12, atol=1e-6)
    k = [p.id for p in pipes].index("L000-005")
    assert line.maop_pa[k] == 3.1e6
    assert line.maop_margin_pa[0, k] == pytest.approx(3.1e6 - line.pressure_pa[0, model.node_index["PS1-D"]])
    assert (line.maop_margin_pa > 0).all()  # the design point respects every MAOP
    discharge = [k, [p.id for p in pipes].index("L060-065")]
    assert (line.maop_margin_pa[1, discharge] > line.maop_margin_pa[0, discharge]).all()  # slower pumps
    suction = [p.id for p in pipes].index("SUC1")
    assert line.maop_margin_pa[1, suction] < line.maop_margin_pa[0, suction]  # less flow, less suction loss


def test_running_pumps_and_head_gain(
    model: HydraulicModel, solution: tuple[np.ndarray, ...], pumps: PumpMetrics
) -> None:
    head, flow, status, _ = solution
    ids = list(model.pump_ids)
    for pid in RUNNING:
        i = ids.index(pid)
        pump = model.network.link(pid)
        k = model.link_index[pid]
        assert pumps.running[:, i].all()
        np.testing.assert_allclose(pumps.flow_m3s[:, i], flow[:, k])
        gain = head[:, model.node_index[pump.end]] - head[:, model.node_index[pump.start]]
        np.testing.assert_allclose(pumps.head_m[:, i], gain, rtol=1e-12)
    for pid in STANDBY:
        i = ids.index(pid)
        assert (status[:, model.link_index[pid]] <= CLOSED).all()
        assert not pumps.running[:, i].any()
        assert (pumps.shaft_power_w[:, i] == 0).all() and (pumps.percent_bep[:, i] == 0).all()
        assert not pumps.in_por[:, i].any()


def test_percent_bep_por_and_efficiency_by_hand(model: HydraulicModel, pumps: PumpMetrics) -> None:
    (a, b, c), bep = efficiency_by_hand(model)
    peak = bep * (a + b * bep + c * bep**2)
    assert 0.25 < bep < 0.32 and 0.83 < peak < 0.86  # the EF1 points peak near 280 L/s, 84 %
    ids = list(model.pump_ids)
    for row, s in enumerate((1.0, 0.9)):
        for pid in RUNNING:
            i = ids.index(pid)
            q = pumps.flow_m3s[row, i]
            pct = 100.0 * q / (s * bep)  # the BEP moves with speed (affinity)
            assert pumps.percent_bep[row, i] == pytest.approx(pct, rel=1e-9)
            assert pumps.in_por[row, i] == (70.0 <= pct <= 120.0)
            x = q / s
            assert pumps.efficiency[row, i] == pytest.approx(x * (a + b * x + c * x * x), rel=1e-9)
    assert pumps.in_por[0, ids.index("PS1-P1")]  # the design point is near the BEP


def test_power_and_specific_energy_by_hand(model: HydraulicModel, pumps: PumpMetrics) -> None:
    ids = list(model.pump_ids)
    for pid in RUNNING:
        i = ids.index(pid)
        q, h, eta = pumps.flow_m3s[:, i], pumps.head_m[:, i], pumps.efficiency[:, i]
        hydraulic = RHO * G * q * h
        np.testing.assert_allclose(pumps.hydraulic_power_w[:, i], hydraulic, rtol=1e-12)
        np.testing.assert_allclose(pumps.shaft_power_w[:, i], hydraulic / eta, rtol=1e-12)
        kwh_per_m3 = RHO * G * h / eta / 3.6e6
        np.testing.assert_allclose(pumps.specific_energy_kwh_m3[:, i], kwh_per_m3, rtol=1e-9)
    i = ids.index("PS1-P1")
    assert 0.5e6 < pumps.shaft_power_w[0, i] < 2e6  # about 300 L/s against about 320 m of crude
    assert (pumps.shaft_power_w[1] <= pumps.shaft_power_w[0]).all()  # slower pumps draw less


def test_npsh_margin_by_hand(model: HydraulicModel, solution: tuple[np.ndarray, ...], pumps: PumpMetrics) -> None:
    head = solution[0]
    n0, n1, n2 = npshr_by_hand(model)
    ids = list(model.pump_ids)
    suction_pipe = {"PS1-S": 0.762, "PS2-S": 0.660}  # SUC1 and L055-060, mm in the .inp
    for row, s in enumerate((1.0, 0.9)):
        for pid in RUNNING:
            i = ids.index(pid)
            suction = model.network.link(pid).start
            q = pumps.flow_m3s[row, i]
            j = model.node_index[suction]
            v = q / (math.pi * suction_pipe[suction] ** 2 / 4)
            npsha = head[row, j] - model.elevation_m[j] + (P_ATM - P_VAP) / (RHO * G) + v * v / (2 * G)
            x = q / s
            npshr = s**2 * (n0 + n1 * x + n2 * x * x)
            assert pumps.npsh_available_m[row, i] == pytest.approx(npsha, rel=1e-9)
            assert pumps.npsh_required_m[row, i] == pytest.approx(npshr, rel=1e-6)
            assert pumps.npsh_margin_m[row, i] == pytest.approx(npsha - npshr, rel=1e-6)
            assert pumps.npsh_margin_m[row, i] > 0


def test_metrics_accept_eps_results(model: HydraulicModel) -> None:
    """The (T, B, ...) arrays of a steady `simulate` give the same metrics as a direct solve."""
    out = simulate(model, duration_s=0, accuracy=1e-8)
    speed = base_batch(model).pump_speed
    direct = solve_batch(model, base_batch(model), accuracy=1e-8)
    a = pump_metrics(model, pump_assets(model), out.head_m[0], out.flow_m3s[0], out.status[0], speed)
    b = pump_metrics(model, pump_assets(model), direct.head_m, direct.flow_m3s, direct.status, speed)
    np.testing.assert_allclose(a.shaft_power_w, b.shaft_power_w, rtol=1e-9)
    np.testing.assert_allclose(
        line_metrics(model, out.head_m[0]).maop_margin_pa,
        line_metrics(model, direct.head_m).maop_margin_pa,
        rtol=1e-9,
        atol=1e-3,
    )
