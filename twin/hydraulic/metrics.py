"""Derived quantities of a hydraulic solution: margins, operating points, power and energy.

Functions of (compiled network, solution arrays) in the manner of WNTR's
``metrics``: pressure along each line against MAOP, NPSH available and margin at
each pump, operating point as a percentage of the best-efficiency flow and
whether it lies in the preferred operating region (70-120 % of BEP), hydraulic
and shaft power and specific energy. All arrays have a leading scenario axis B.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pumptwin.twin.hydraulic.network import Network, Pump
from pumptwin.twin.hydraulic.pumps import (
    POR_FRACTIONS,
    EfficiencyCurve,
    NpshrCurve,
    fit_efficiency_curve,
    fit_npshr_curve,
    npsh_available_m,
)
from pumptwin.twin.hydraulic.solver import CLOSED, CUSTOM, FloatArray, HydraulicModel
from pumptwin.twin.units import G_M_S2

DEFAULT_EFFICIENCY = 0.75
"""Efficiency assumed for a pump without an efficiency curve (EPANET's global default)."""


@dataclass(frozen=True)
class PumpAssets:
    """Per-pump curves beyond the head curve: efficiency (or a constant), NPSHr and BEP flow (m3/s)."""

    efficiency: tuple[EfficiencyCurve | None, ...]
    npshr: tuple[NpshrCurve | None, ...]
    bep_flow_m3s: FloatArray
    suction_diameter_m: FloatArray


def pump_assets(model: HydraulicModel) -> PumpAssets:
    """Fit each pump's efficiency and NPSHr curves and find its BEP flow.

    Without an efficiency curve, the BEP is taken at the head curve's design
    point (the single point of a 1-point curve, the middle of a 3-point curve,
    the middle of a multi-point curve's range).
    """
    net = model.network
    eff: list[EfficiencyCurve | None] = []
    npshr: list[NpshrCurve | None] = []
    bep = np.zeros(len(net.pumps))
    suction = np.zeros(len(net.pumps))
    for i, pump in enumerate(net.pumps):
        e = fit_efficiency_curve(net.curve(pump.efficiency_curve)) if pump.efficiency_curve else None
        eff.append(e)
        npshr.append(fit_npshr_curve(net.curve(pump.npshr_curve)) if pump.npshr_curve else None)
        bep[i] = e.bep_flow_m3s() if e is not None else _design_flow(net, pump, model, i)
        suction[i] = _suction_diameter(net, pump)
    return PumpAssets(tuple(eff), tuple(npshr), bep, suction)


def _design_flow(net: Network, pump: Pump, model: HydraulicModel, i: int) -> float:
    if pump.head_curve is None:
        return float("nan")
    xs = net.curve(pump.head_curve).x
    if model.pump_kind[i] == CUSTOM:
        return 0.5 * (xs[0] + xs[-1])
    return float(model.pump_q0[i])


def _suction_diameter(net: Network, pump: Pump) -> float:
    diameters = [p.diameter_m for p in net.pipes if pump.start in (p.start, p.end)]
    return max(diameters) if diameters else float("nan")


@dataclass
class PumpMetrics:
    """Operating points of every pump, arrays of shape (B, n_pumps), SI units.

    Attributes:
        running: Pump on and passing flow.
        flow_m3s, head_m, speed: Operating point (head gain in m, relative speed).
        percent_bep: Flow as % of the BEP flow at the running speed.
        in_por: Inside the preferred operating region (70-120 % of BEP).
        efficiency: Pump efficiency (fraction).
        hydraulic_power_w, shaft_power_w: rho g q h and hydraulic / efficiency, in W.
        specific_energy_kwh_m3: Shaft energy per volume pumped, in kWh/m3.
        npsh_available_m, npsh_required_m, npsh_margin_m: NPSH at the suction, in m.
    """

    running: NDArray[np.bool_]
    flow_m3s: FloatArray
    head_m: FloatArray
    speed: FloatArray
    percent_bep: FloatArray
    in_por: NDArray[np.bool_]
    efficiency: FloatArray
    hydraulic_power_w: FloatArray
    shaft_power_w: FloatArray
    specific_energy_kwh_m3: FloatArray
    npsh_available_m: FloatArray
    npsh_required_m: FloatArray
    npsh_margin_m: FloatArray


@dataclass
class LineMetrics:
    """Pressures against limits, arrays with a leading scenario axis B.

    Attributes:
        pressure_pa: (B, n_nodes) gauge pressure at each node, Pa.
        pipe_max_pressure_pa: (B, n_pipes) higher of the two end pressures, Pa.
        maop_pa: (n_pipes,) MAOP of each pipe (NaN where none is set), Pa.
        maop_margin_pa: (B, n_pipes) MAOP minus the maximum pressure, Pa (negative: exceeded).
        min_pressure_pa: (B, n_nodes) same as pressure (kept for profile plots), Pa.
    """

    pressure_pa: FloatArray
    pipe_max_pressure_pa: FloatArray
    maop_pa: FloatArray
    maop_margin_pa: FloatArray


def line_metrics(model: HydraulicModel, head_m: FloatArray) -> LineMetrics:
    """Gauge pressures and MAOP margins for heads ``head_m`` (B, n_nodes) in m."""
    net = model.network
    rho_g = net.fluid.density_kg_m3 * G_M_S2
    pressure = (head_m - model.elevation_m) * rho_g
    npipe = len(net.pipes)
    n1 = model.link_n1[:npipe]
    n2 = model.link_n2[:npipe]
    pmax = np.maximum(pressure[:, n1], pressure[:, n2])
    maop = np.array([np.nan if p.maop_pa is None else p.maop_pa for p in net.pipes], dtype=np.float64)
    return LineMetrics(pressure, pmax, maop, maop - pmax)


def pump_metrics(
    model: HydraulicModel,
    assets: PumpAssets,
    head_m: FloatArray,
    flow_m3s: FloatArray,
    status: NDArray[np.int64],
    pump_speed: FloatArray,
) -> PumpMetrics:
    """Operating point, power, energy and NPSH of every pump.

    Args:
        model: Compiled network.
        assets: From `pump_assets`.
        head_m: (B, n_nodes) heads in m.
        flow_m3s: (B, n_links) flows in m3/s.
        status: (B, n_links) link status codes.
        pump_speed: (B, n_pumps) relative speeds.
    """
    net = model.network
    k = model.pump_link
    q = flow_m3s[:, k]
    running = (status[:, k] > CLOSED) & (pump_speed > 0) & (q > 0)
    s = np.where(pump_speed > 0, pump_speed, 1.0)
    head = head_m[:, model.link_n2[k]] - head_m[:, model.link_n1[k]]
    bep = assets.bep_flow_m3s * s
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(running, 100.0 * q / bep, 0.0)
    in_por = running & (pct >= 100 * POR_FRACTIONS[0]) & (pct <= 100 * POR_FRACTIONS[1])
    eff = np.full(q.shape, DEFAULT_EFFICIENCY)
    npshr = np.full(q.shape, np.nan)
    for i in range(len(net.pumps)):
        e = assets.efficiency[i]
        x = np.maximum(q[:, i], 0.0) / s[:, i]  # homologous flow at rated speed (affinity)
        if e is not None:
            eff[:, i] = x * (e.a + e.b * x + e.c * x * x)
        n = assets.npshr[i]
        if n is not None:
            npshr[:, i] = np.maximum(s[:, i] ** 2 * (n.a_m + n.b * x + n.c * x * x), 0.0)
    eff = np.clip(eff, 0.01, 1.0)
    rho_g = net.fluid.density_kg_m3 * G_M_S2
    hyd = np.where(running, rho_g * q * np.abs(head), 0.0)  # past run-out the pump still takes power (EPANET)
    shaft = hyd / eff
    with np.errstate(divide="ignore", invalid="ignore"):
        spec = np.where(running, shaft / q / 3.6e6, 0.0)
    suction_p = head_m[:, model.link_n1[k]] - model.elevation_m[model.link_n1[k]]
    area = np.pi * assets.suction_diameter_m**2 / 4.0
    velocity = np.where(np.isfinite(area), q / np.where(np.isfinite(area), area, 1.0), 0.0)
    npsha = npsh_available_m(
        suction_p, velocity, net.atmospheric_pressure_pa, net.fluid.vapour_pressure_pa, net.fluid.density_kg_m3
    )
    return PumpMetrics(
        running=running,
        flow_m3s=q,
        head_m=head,
        speed=pump_speed,
        percent_bep=pct,
        in_por=in_por,
        efficiency=eff,
        hydraulic_power_w=hyd,
        shaft_power_w=shaft,
        specific_energy_kwh_m3=spec,
        npsh_available_m=npsha,
        npsh_required_m=npshr,
        npsh_margin_m=npsha - npshr,
    )
