"""A slow-transient liquid pipeline: line pack, pump station, delivery valve, leak and field meters.

This is "the plant" for leak-detection studies: unlike the steady plant simulator, it carries the
compressibility of the liquid and pipe wall, so pressure changes fill or empty the line (line
pack) and flows at the two ends differ during transients, the way they do in the field.

Model (1-D, method of lines on a staggered grid). Nodes ``i = 0..N`` at chainage ``x_i`` carry
gauge pressure ``p_i`` (Pa); segments ``j`` between nodes ``j`` and ``j+1`` carry volumetric flow
``q_j`` (m3/s). With pipe area ``A``, density ``rho``, wave speed ``a`` and elevation ``z``:

* continuity at node ``i`` (volume ``V_i`` = half of each adjoining segment):
  ``V_i / (rho a^2) dp_i/dt = q_in - q_out - q_leak``;
* momentum in segment ``j`` (length ``L_j``):
  ``rho L_j / A dq_j/dt = p_j - p_{j+1} - rho g (z_{j+1} - z_j) - f L_j rho q|q| / (2 D A^2)``,
  with the Darcy friction factor ``f`` from Swamee-Jain (turbulent), 64/Re (laminar) and a
  linear blend between Re 2000 and 4000.

Time integration is the theta method (theta = 1: backward Euler, the default; 0.5: Crank-Nicolson)
with friction, pump, valve and leak laws linearised about the previous step (Picard for friction,
Newton for the others); the flows are eliminated so each step is one tridiagonal solve in the
pressures. The scheme is unconditionally stable, so 1-10 s steps on 0.5-1 km segments are fine;
steady states are exact (the linearisation is exact at a fixed point).

Boundaries: the inlet is a pump station (head ``s^2 h0 - r q^2`` at relative speed ``s`` over a
fixed suction pressure, with a check valve) or a fixed pressure; the outlet is a delivery valve
(``dp = K q|q| / opening^2``) into a fixed delivery pressure. A leak is an orifice to atmosphere,
``q = Cd A_L sqrt(2 p / rho)``, whose area is sized at its start so that it takes a given fraction
of the inlet flow at the leak's pressure then. The operations schedule ramps the pump speed, the
valve opening and the delivery pressure linearly.

Meters read the way field instruments do: flow meters report the average flow over each sample
period (as a flow computer does), with with a fixed bias (fraction of reading plus
fraction of span), a slow drift (Ornstein-Uhlenbeck), white repeatability noise and quantisation;
pressure transmitters with noise and quantisation; temperatures with noise. Density is taken as
constant (isothermal); temperature readings are reported but do not feed back.

Units are SI throughout: m, s, m3/s, Pa (gauge unless stated), kg/m3.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numba as nb
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.units import G_M_S2

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

_MIN_SEGMENTS = 2
_TOL = 1e-6


class LineDynamicsError(PumptwinError, ValueError):
    """Invalid line, pump, schedule, leak or meter data; the message names the bad value."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise LineDynamicsError(message)


def _positive(value: float, name: str) -> None:
    _check(math.isfinite(value) and value > 0, f"{name} must be a finite number > 0, got {value}")


@dataclass(frozen=True, slots=True)
class LineSpec:
    """The pipe and the liquid.

    Attributes:
        length_m: Line length, in m.
        diameter_m: Inside diameter, in m.
        roughness_m: Absolute wall roughness, in m.
        wave_speed_m_s: Pressure wave speed (liquid and wall elasticity), in m/s.
        density_kg_m3: Liquid density, in kg/m3.
        kinematic_viscosity_m2_s: Kinematic viscosity, in m2/s.
        profile: Elevation profile as (chainage m, elevation m) points, chainage increasing from 0
            to ``length_m``; linear in between.
        segment_m: Target segment length of the grid, in m.
    """

    length_m: float = 50_000.0
    diameter_m: float = 0.508
    roughness_m: float = 4.5e-5
    wave_speed_m_s: float = 1_000.0
    density_kg_m3: float = 850.0
    kinematic_viscosity_m2_s: float = 1.0e-5
    profile: tuple[tuple[float, float], ...] = ((0.0, 50.0), (50_000.0, 50.0))
    segment_m: float = 1_000.0

    def __post_init__(self) -> None:
        """Check positive sizes and a profile that spans the line in increasing chainage."""
        for name in ("length_m", "diameter_m", "wave_speed_m_s", "density_kg_m3", "kinematic_viscosity_m2_s"):
            _positive(getattr(self, name), f"line {name}")
        _positive(self.segment_m, "line segment_m")
        _check(
            math.isfinite(self.roughness_m) and self.roughness_m >= 0,
            f"line roughness_m must be >= 0, got {self.roughness_m}",
        )
        xs = np.array([p[0] for p in self.profile], dtype=np.float64)
        zs = np.array([p[1] for p in self.profile], dtype=np.float64)
        _check(len(xs) >= 2, f"line profile needs at least 2 points, got {len(xs)}")  # noqa: PLR2004
        _check(bool(np.all(np.isfinite(xs)) and np.all(np.isfinite(zs))), "line profile has a non-finite point")
        _check(bool(np.all(np.diff(xs) > 0)), f"line profile chainages must increase, got {xs.tolist()}")
        _check(
            abs(xs[0]) < _TOL and abs(xs[-1] - self.length_m) < _TOL,
            f"line profile must span 0..{self.length_m} m, got {xs[0]}..{xs[-1]}",
        )

    @property
    def area_m2(self) -> float:
        """Flow area, in m2."""
        return math.pi * self.diameter_m**2 / 4.0

    def elevation_m(self, x_m: FloatArray | float) -> FloatArray:
        """Elevation in m at chainage ``x_m`` (m), linear between profile points."""
        xs = np.array([p[0] for p in self.profile])
        zs = np.array([p[1] for p in self.profile])
        return np.asarray(np.interp(x_m, xs, zs), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class PumpStation:
    """Inlet pump station: head ``s^2 h0 - r q^2`` in m over a fixed suction pressure.

    Attributes:
        shutoff_head_m: Head at zero flow and rated speed, in m.
        r_s2_m5: Head-curve coefficient, in m / (m3/s)^2.
        suction_pressure_pa: Suction (gauge) pressure, in Pa.
        design_flow_m3s: A typical flow, in m3/s; it floors the linearisation near zero flow.
    """

    shutoff_head_m: float = 500.0
    r_s2_m5: float = 900.0
    suction_pressure_pa: float = 300_000.0
    design_flow_m3s: float = 0.35

    def __post_init__(self) -> None:
        """Check positive head, coefficient and design flow."""
        _positive(self.shutoff_head_m, "pump shutoff_head_m")
        _positive(self.r_s2_m5, "pump r_s2_m5")
        _positive(self.design_flow_m3s, "pump design_flow_m3s")
        _check(math.isfinite(self.suction_pressure_pa), "pump suction_pressure_pa must be finite")


@dataclass(frozen=True, slots=True)
class Operation:
    """A change in the operations schedule, ramped linearly over ``ramp_s`` from ``t_s``.

    Attributes:
        t_s: Start of the change, in s from the start of the run.
        pump_speed: New relative pump speed (0 = stopped), or None to keep it.
        valve_opening: New delivery-valve opening in 0..1 (0 = shut), or None to keep it.
        delivery_pressure_pa: New delivery (gauge) pressure in Pa, or None to keep it.
        inlet_pressure_pa: New inlet pressure in Pa (inlet mode ``"pressure"`` only), or None.
        ramp_s: Duration of the linear ramp, in s (0 = step).
    """

    t_s: float
    pump_speed: float | None = None
    valve_opening: float | None = None
    delivery_pressure_pa: float | None = None
    inlet_pressure_pa: float | None = None
    ramp_s: float = 0.0

    def __post_init__(self) -> None:
        """Check times, ramp and the ranges of the new values."""
        _check(math.isfinite(self.t_s) and self.t_s >= 0, f"operation t_s must be >= 0, got {self.t_s}")
        _check(math.isfinite(self.ramp_s) and self.ramp_s >= 0, f"operation ramp_s must be >= 0, got {self.ramp_s}")
        if self.pump_speed is not None:
            _check(0 <= self.pump_speed <= 1.5, f"operation pump_speed must be in 0..1.5, got {self.pump_speed}")  # noqa: PLR2004
        if self.valve_opening is not None:
            _check(0 <= self.valve_opening <= 1, f"operation valve_opening must be in 0..1, got {self.valve_opening}")
        for name in ("delivery_pressure_pa", "inlet_pressure_pa"):
            value = getattr(self, name)
            _check(value is None or math.isfinite(value), f"operation {name} must be finite, got {value}")


@dataclass(frozen=True, slots=True)
class InitialConditions:
    """The steady operating point the run starts from.

    Attributes:
        pump_speed: Relative pump speed (0 = stopped, line shut in).
        valve_opening: Delivery valve opening, 0..1.
        delivery_pressure_pa: Delivery (gauge) pressure, in Pa.
        inlet_pressure_pa: Inlet pressure for inlet mode ``"pressure"``, in Pa.
    """

    pump_speed: float = 0.9
    valve_opening: float = 1.0
    delivery_pressure_pa: float = 500_000.0
    inlet_pressure_pa: float = 3_000_000.0


@dataclass(frozen=True, slots=True)
class LeakSpec:
    """A leak: an orifice to atmosphere sized by the flow it takes when it opens.

    Attributes:
        position_m: Chainage of the leak, in m (0 < x < length).
        start_s: Time the leak opens, in s.
        size_frac: Leak flow as a fraction of the inlet flow at the leak's pressure when it opens
            (0.01 = 1 %; of the pump's design flow when the line is shut in); ignored when
            ``area_m2`` is given.
        area_m2: Orifice area in m2, or None to size it from ``size_frac``.
        discharge_coefficient: Orifice discharge coefficient Cd (-).
    """

    position_m: float
    start_s: float = 0.0
    size_frac: float = 0.01
    area_m2: float | None = None
    discharge_coefficient: float = 0.61

    def __post_init__(self) -> None:
        """Check position, start, size and Cd."""
        _check(
            math.isfinite(self.position_m) and self.position_m > 0,
            f"leak position_m must be > 0, got {self.position_m}",
        )
        _check(math.isfinite(self.start_s) and self.start_s >= 0, f"leak start_s must be >= 0, got {self.start_s}")
        _check(
            math.isfinite(self.size_frac) and 0 < self.size_frac < 1,
            f"leak size_frac must be in (0, 1), got {self.size_frac}",
        )
        if self.area_m2 is not None:
            _positive(self.area_m2, "leak area_m2")
        _positive(self.discharge_coefficient, "leak discharge_coefficient")


@dataclass(frozen=True, slots=True)
class MeterSpec:
    """Field instruments and their errors.

    Attributes:
        sample_s: Sampling period of every meter, in s (a whole number of time steps).
        pressure_positions_m: Chainages of the pressure transmitters, in m (inlet, block-valve
            sites, outlet).
        flow_span_m3s: Flow-meter span, in m3/s.
        flow_noise_frac: Repeatability: white noise, standard deviation as a fraction of reading.
        flow_bias_frac: Largest fixed bias as a fraction of reading; each meter draws one in +-.
        flow_bias_span_frac: Largest fixed offset as a fraction of span; each meter draws one in +-.
        flow_drift_frac: Standard deviation of the slow drift, as a fraction of reading.
        flow_drift_tau_s: Correlation time of the drift, in s.
        flow_quantum_m3s: Flow resolution, in m3/s.
        pressure_noise_pa: Pressure transmitter white noise (standard deviation), in Pa.
        pressure_quantum_pa: Pressure resolution, in Pa.
        temperature_c: Fluid temperature, in degrees C (reported only).
        temperature_noise_c: Temperature noise (standard deviation), in degrees C.
    """

    sample_s: float = 5.0
    pressure_positions_m: tuple[float, ...] = (0.0, 12_500.0, 25_000.0, 37_500.0, 50_000.0)
    flow_span_m3s: float = 0.6
    flow_noise_frac: float = 0.001
    flow_bias_frac: float = 0.0025
    flow_bias_span_frac: float = 0.0005
    flow_drift_frac: float = 0.0003
    flow_drift_tau_s: float = 6 * 3600.0
    flow_quantum_m3s: float = 1.0e-5
    pressure_noise_pa: float = 2_000.0
    pressure_quantum_pa: float = 100.0
    temperature_c: float = 25.0
    temperature_noise_c: float = 0.05

    def __post_init__(self) -> None:
        """Check positive period and span, non-negative error sizes and transmitter positions."""
        _positive(self.sample_s, "meters sample_s")
        _positive(self.flow_span_m3s, "meters flow_span_m3s")
        _positive(self.flow_drift_tau_s, "meters flow_drift_tau_s")
        for name in (
            "flow_noise_frac",
            "flow_bias_frac",
            "flow_bias_span_frac",
            "flow_drift_frac",
            "flow_quantum_m3s",
            "pressure_noise_pa",
            "pressure_quantum_pa",
            "temperature_noise_c",
        ):
            value = getattr(self, name)
            _check(math.isfinite(value) and value >= 0, f"meters {name} must be >= 0, got {value}")
        _check(len(self.pressure_positions_m) >= 2, "meters need at least 2 pressure transmitters")  # noqa: PLR2004
        _check(
            bool(np.all(np.diff(self.pressure_positions_m) > 0)),
            f"meters pressure_positions_m must increase, got {list(self.pressure_positions_m)}",
        )

    @classmethod
    def ideal(cls, sample_s: float = 5.0, pressure_positions_m: Sequence[float] | None = None) -> MeterSpec:
        """Meters without any error (for tests against closed forms)."""
        positions = tuple(pressure_positions_m) if pressure_positions_m is not None else cls().pressure_positions_m
        return cls(
            sample_s=sample_s,
            pressure_positions_m=positions,
            flow_noise_frac=0.0,
            flow_bias_frac=0.0,
            flow_bias_span_frac=0.0,
            flow_drift_frac=0.0,
            flow_quantum_m3s=0.0,
            pressure_noise_pa=0.0,
            pressure_quantum_pa=0.0,
            temperature_noise_c=0.0,
        )


@dataclass(frozen=True, slots=True)
class LineRun:
    """What a run produces.

    Attributes:
        readings: Meter readings, index ``t_s`` (s from the start): ``flow_in_m3s``,
            ``flow_out_m3s``, ``pressure_<k>_pa`` for each transmitter (k = 0.. in chainage order),
            ``temperature_in_c``, ``temperature_out_c``.
        truth: True values at the same times (flows averaged over the preceding sample period,
            pressures and line pack instantaneous): ``flow_in_m3s``, ``flow_out_m3s``, ``leak_m3s``,
            ``line_pack_m3`` (volume-equivalent line pack, sum of V_i p_i / (rho a^2)),
            ``pressure_<k>_pa``, ``pump_speed``, ``valve_opening``, ``delivery_pressure_pa``.
        pressure_positions_m: Chainages of the transmitters (grid nodes), in m.
        leak_area_m2: Leak orifice area in m2 (0 without a leak or before it opens).
        leak_node_position_m: Chainage of the grid node that carries the leak, in m (nan without).
        nodes_m: Chainages of the grid nodes, in m.
        meter_bias: Drawn fixed errors, ``{"in_frac", "out_frac", "in_span_m3s", "out_span_m3s"}``.
    """

    readings: pd.DataFrame
    truth: pd.DataFrame
    pressure_positions_m: tuple[float, ...]
    leak_area_m2: float
    leak_node_position_m: float
    nodes_m: FloatArray
    meter_bias: dict[str, float] = field(default_factory=dict)


def darcy_friction_factor(reynolds: FloatArray | float, relative_roughness: float) -> FloatArray:
    """Darcy friction factor (-): 64/Re below Re 2000, Swamee-Jain above 4000, linear in between.

    Args:
        reynolds: Reynolds number(s) (-), >= 0.
        relative_roughness: Roughness over diameter (-).
    """
    re = np.maximum(np.asarray(reynolds, dtype=np.float64), 1e-9)
    out = np.empty_like(re)
    for idx, value in np.ndenumerate(re):
        out[idx] = _friction(float(value), relative_roughness)
    return out


@nb.njit(nogil=True, cache=True)
def _swamee_jain(re: float, e: float) -> float:  # pragma: no cover - compiled
    y = math.log10(e / 3.7 + 5.74 / re**0.9)
    return float(0.25 / (y * y))


@nb.njit(nogil=True, cache=True)
def _friction(re: float, e: float) -> float:  # pragma: no cover - compiled
    if re < 2000.0:  # noqa: PLR2004
        return float(64.0 / max(re, 1e-9))
    if re > 4000.0:  # noqa: PLR2004
        return _swamee_jain(re, e)
    w = (re - 2000.0) / 2000.0
    return (1.0 - w) * 0.032 + w * _swamee_jain(4000.0, e)


@nb.njit(nogil=True, cache=True)
def _integrate(  # noqa: PLR0913, PLR0915, PLR0912, C901
    p: FloatArray,
    q: FloatArray,
    cap: FloatArray,
    mass: FloatArray,
    seg_len: FloatArray,
    grav: FloatArray,
    geo: FloatArray,
    pump: FloatArray,
    inlet_is_pump: bool,
    speed: FloatArray,
    valve: FloatArray,
    p_del: FloatArray,
    p_in: FloatArray,
    leak_node: int,
    leak_k0: float,
    leak_frac: float,
    leak_step: int,
    leak_qref: float,
    dt: float,
    theta: float,
    rec_every: int,
    rec_nodes: IntArray,
    out_flows: FloatArray,
    out_p: FloatArray,
) -> float:  # pragma: no cover - compiled
    """Advance ``len(speed)`` steps in place; record every ``rec_every`` steps; return the leak coefficient.

    Recorded flows are averages over the ``rec_every`` steps before the record (as a flow
    computer reports them); pressures and line pack are instantaneous.

    ``geo`` = (diameter, area, rel. roughness, viscosity, density, valve K at full opening);
    ``pump`` = (h0, r, suction pressure, flow floor). ``out_flows`` columns: q_in, q_out, leak,
    line pack.
    """
    n = p.shape[0]
    ns = n - 1
    diam, area, rel_e, nu, rho, kvalve = geo[0], geo[1], geo[2], geo[3], geo[4], geo[5]
    h0, rpump, p_suc, qfloor = pump[0], pump[1], pump[2], pump[3]
    rg = rho * G_M_S2
    b = np.empty(ns)
    c = np.empty(ns)
    lo = np.zeros(n)
    di = np.zeros(n)
    up = np.zeros(n)
    rhs = np.zeros(n)
    cp = np.zeros(n)
    dp = np.zeros(n)
    net_old = np.zeros(n)
    leak_k = leak_k0
    # net inflow of the initial state (zero at a steady state)
    q_in_old = q[0]
    q_out_old = q[ns - 1]
    for i in range(n):
        qi = q_in_old if i == 0 else q[i - 1]
        qo = q_out_old if i == ns else q[i]
        net_old[i] = qi - qo
    rec = 0
    acc_in = 0.0
    acc_out = 0.0
    acc_leak = 0.0
    n_steps = speed.shape[0]
    for k in range(n_steps):
        if k == leak_step and leak_node >= 0 and leak_k <= 0.0 and leak_frac > 0.0:
            pl = max(p[leak_node], 1.0)
            qref = abs(q_in_old) if abs(q_in_old) > 0.05 * leak_qref else leak_qref
            leak_k = leak_frac * qref / math.sqrt(pl)
        leak_on = leak_node >= 0 and k >= leak_step and leak_k > 0.0
        # momentum: q_j = b_j + c_j (p_j - p_{j+1})
        for j in range(ns):
            qa = abs(q[j])
            re = qa / area * diam / nu
            if re < 1.0:
                kf = 32.0 * nu * rho * seg_len[j] / (diam * diam * area)
            else:
                kf = _friction(re, rel_e) * seg_len[j] * rho * qa / (2.0 * diam * area * area)
            den = mass[j] / dt + kf
            b[j] = (mass[j] * q[j] / dt + (1.0 - theta) * (p[j] - p[j + 1]) - grav[j]) / den
            c[j] = theta / den
        # leak linearisation
        l0 = 0.0
        ld = 0.0
        if leak_on and p[leak_node] > 0.0:
            ps = max(p[leak_node], 1.0e4)
            l0 = 0.5 * leak_k * math.sqrt(ps)
            ld = 0.5 * leak_k / math.sqrt(ps)
        # inlet: q_in = a_in - g_in p_0 (pump) or Dirichlet
        s = speed[k]
        pump_open = inlet_is_pump and s > 0.0 and p_suc + rg * s * s * h0 > p[0]
        for attempt in range(2):
            a_in = 0.0
            g_in = 0.0
            if inlet_is_pump and pump_open:
                qs = max(q_in_old, qfloor)
                g_in = 1.0 / (2.0 * rg * rpump * qs)
                a_in = (p_suc + rg * (s * s * h0 + rpump * qs * qs)) * g_in
            # outlet: q_out = a_out + g_out p_N
            a_out = 0.0
            g_out = 0.0
            op = valve[k]
            if op > 1e-6:  # noqa: PLR2004
                kv = kvalve / (op * op)
                qs = max(abs(q_out_old), qfloor)
                g_out = 1.0 / (2.0 * kv * qs)
                a_out = (kv * q_out_old * abs(q_out_old) - p_del[k]) * g_out
            for i in range(n):
                ci = cap[i] / dt
                d = ci
                r_ = ci * p[i] + (1.0 - theta) * net_old[i]
                lo[i] = 0.0
                up[i] = 0.0
                if i > 0:
                    d += theta * c[i - 1]
                    lo[i] = -theta * c[i - 1]
                    r_ += theta * b[i - 1]
                if i < ns:
                    d += theta * c[i]
                    up[i] = -theta * c[i]
                    r_ -= theta * b[i]
                if i == leak_node and leak_on:
                    d += theta * ld
                    r_ -= theta * l0
                if i == 0:
                    d += theta * g_in
                    r_ += theta * a_in
                if i == ns:
                    d += theta * g_out
                    r_ -= theta * a_out
                di[i] = d
                rhs[i] = r_
            if not inlet_is_pump:
                di[0] = 1.0
                up[0] = 0.0
                rhs[0] = p_in[k]
            # Thomas algorithm
            cp[0] = up[0] / di[0]
            dp[0] = rhs[0] / di[0]
            for i in range(1, n):
                m = di[i] - lo[i] * cp[i - 1]
                cp[i] = up[i] / m
                dp[i] = (rhs[i] - lo[i] * dp[i - 1]) / m
            pn0 = dp[n - 1]
            # back substitution into a scratch pass: keep p until accepted
            rhs[n - 1] = pn0
            for i in range(n - 2, -1, -1):
                rhs[i] = dp[i] - cp[i] * rhs[i + 1]
            q_in_new = a_in - g_in * rhs[0] if inlet_is_pump else 0.0
            if inlet_is_pump and pump_open and q_in_new < 0.0 and attempt == 0:
                pump_open = False
                continue
            break
        # accept
        for i in range(n):
            dp[i] = p[i]  # old pressures
            p[i] = rhs[i]
        for j in range(ns):
            q[j] = b[j] + c[j] * (p[j] - p[j + 1])
        q_out_new = a_out + g_out * p[ns]
        # the linearised leak flow, the one the continuity equation used (mass is conserved exactly)
        leak_new = l0 + ld * p[leak_node] if leak_on else 0.0
        if not inlet_is_pump:
            # inflow from continuity at node 0
            storage = cap[0] * (p[0] - dp[0]) / dt
            outflow = q[0] + (leak_new if leak_node == 0 else 0.0)
            q_in_new = (storage - (1.0 - theta) * net_old[0]) / theta + outflow if theta > 0 else outflow
        for i in range(n):
            qi = q_in_new if i == 0 else q[i - 1]
            qo = q_out_new if i == ns else q[i]
            net_old[i] = qi - qo - (leak_new if i == leak_node else 0.0)
        q_in_old = q_in_new
        q_out_old = q_out_new
        acc_in += q_in_new
        acc_out += q_out_new
        acc_leak += leak_new
        if (k + 1) % rec_every == 0 and rec < out_flows.shape[0]:
            lp = 0.0
            for i in range(n):
                lp += cap[i] * p[i]
            out_flows[rec, 0] = acc_in / rec_every
            out_flows[rec, 1] = acc_out / rec_every
            out_flows[rec, 2] = acc_leak / rec_every
            out_flows[rec, 3] = lp
            acc_in = 0.0
            acc_out = 0.0
            acc_leak = 0.0
            for m_ in range(rec_nodes.shape[0]):
                out_p[rec, m_] = p[rec_nodes[m_]]
            rec += 1
    return leak_k


@dataclass(frozen=True, slots=True)
class _Grid:
    x: FloatArray
    cap: FloatArray
    mass: FloatArray
    seg_len: FloatArray
    grav: FloatArray
    geo: FloatArray


def build_grid(line: LineSpec, keep_m: Sequence[float] = ()) -> FloatArray:
    """Node chainages in m: a near-uniform grid of ``line.segment_m`` that contains ``keep_m`` exactly.

    Args:
        line: The line.
        keep_m: Chainages (m) that must be nodes (transmitters, a leak).
    """
    n = max(_MIN_SEGMENTS, math.ceil(line.length_m / line.segment_m))
    base = np.linspace(0.0, line.length_m, n + 1)
    keep = np.unique(np.clip(np.asarray(list(keep_m), dtype=np.float64), 0.0, line.length_m))
    if keep.size == 0:
        return base
    dx = line.length_m / n
    far = np.array([np.min(np.abs(keep - x)) > 0.3 * dx for x in base])
    far[0] = far[-1] = True
    nodes = np.unique(np.concatenate([base[far], keep]))
    return nodes


def _grid(line: LineSpec, nodes: FloatArray, valve_k: float) -> _Grid:
    area = line.area_m2
    seg = np.diff(nodes)
    vol = np.zeros(len(nodes))
    vol[:-1] += 0.5 * seg * area
    vol[1:] += 0.5 * seg * area
    rho = line.density_kg_m3
    cap = vol / (rho * line.wave_speed_m_s**2)
    z = line.elevation_m(nodes)
    geo = np.array(
        [line.diameter_m, area, line.roughness_m / line.diameter_m, line.kinematic_viscosity_m2_s, rho, valve_k]
    )
    return _Grid(nodes, cap, rho * seg / area, seg, rho * G_M_S2 * np.diff(z), geo)


def _schedule(
    initial: InitialConditions, operations: Sequence[Operation], times_s: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Pump speed, valve opening, delivery and inlet pressures at ``times_s`` from the ramped schedule."""
    names = ("pump_speed", "valve_opening", "delivery_pressure_pa", "inlet_pressure_pa")
    start = (initial.pump_speed, initial.valve_opening, initial.delivery_pressure_pa, initial.inlet_pressure_pa)
    ops = sorted(operations, key=lambda o: o.t_s)
    out = []
    for name, value0 in zip(names, start, strict=True):
        bx = [0.0]
        by = [value0]
        current = value0
        for op in ops:
            target = getattr(op, name)
            if target is None:
                continue
            t0 = max(op.t_s, bx[-1])
            bx.append(t0)
            by.append(current)
            bx.append(t0 + max(op.ramp_s, 1e-6))
            by.append(target)
            current = target
        out.append(np.interp(times_s, np.array(bx), np.array(by)))
    return out[0], out[1], out[2], out[3]


def steady_state(
    line: LineSpec,
    pump: PumpStation,
    initial: InitialConditions,
    nodes: FloatArray,
    *,
    inlet: str = "pump",
    valve_dp_pa: float = 100_000.0,
) -> tuple[FloatArray, FloatArray]:
    """Steady pressures (Pa, per node) and flows (m3/s, per segment) at the initial operating point.

    Found by marching the implicit scheme with long steps until it stops changing.
    """
    grid = _grid(line, nodes, _valve_k(pump, valve_dp_pa))
    z = line.elevation_m(nodes)
    rho = line.density_kg_m3
    p = initial.delivery_pressure_pa + rho * G_M_S2 * (z[-1] - z)
    q = np.zeros(len(nodes) - 1)
    n = 600
    speed = np.full(n, initial.pump_speed)
    valve = np.full(n, initial.valve_opening)
    pdel = np.full(n, initial.delivery_pressure_pa)
    pin = np.full(n, initial.inlet_pressure_pa)
    flows = np.zeros((1, 4))
    pres = np.zeros((1, 1))
    for dt in (5.0, 60.0, 600.0):
        _integrate(
            p, q, grid.cap, grid.mass, grid.seg_len, grid.grav, grid.geo, _pump_array(pump), inlet == "pump",
            speed, valve, pdel, pin, -1, 0.0, 0.0, -1, 1.0, dt, 1.0, n + 1, np.zeros(1, dtype=np.int64), flows, pres,
        )  # fmt: skip
    return p, q


def _valve_k(pump: PumpStation, valve_dp_pa: float) -> float:
    """Delivery-valve coefficient K (Pa s2/m6) that drops ``valve_dp_pa`` at the design flow, fully open."""
    return valve_dp_pa / pump.design_flow_m3s**2


def _pump_array(pump: PumpStation) -> FloatArray:
    return np.array([pump.shutoff_head_m, pump.r_s2_m5, pump.suction_pressure_pa, 0.02 * pump.design_flow_m3s])


def simulate_line(  # noqa: PLR0913, PLR0915
    line: LineSpec,
    duration_s: float,
    *,
    pump: PumpStation | None = None,
    initial: InitialConditions | None = None,
    operations: Sequence[Operation] = (),
    leak: LeakSpec | None = None,
    meters: MeterSpec | None = None,
    dt_s: float = 1.0,
    theta: float = 1.0,
    inlet: str = "pump",
    valve_dp_pa: float = 100_000.0,
    seed: int = 0,
    meter_seed: int | None = None,
) -> LineRun:
    """Simulate the line from a steady state and read its meters.

    Args:
        line: Pipe, liquid and elevation profile.
        duration_s: Simulated time, in s.
        pump: Inlet pump station (inlet mode ``"pump"``); default `PumpStation()`.
        initial: Steady starting point; default `InitialConditions()`.
        operations: Schedule of ramped changes.
        leak: A leak, or None.
        meters: Instruments; default `MeterSpec()`.
        dt_s: Time step, in s; ``meters.sample_s`` must be a whole number of steps.
        theta: Time weighting, 0.5 (Crank-Nicolson) to 1 (backward Euler).
        inlet: ``"pump"`` (pump station) or ``"pressure"`` (fixed inlet pressure from the schedule).
        valve_dp_pa: Pressure drop of the fully open delivery valve at the design flow, in Pa.
        seed: Seed of the meters' random noise and drift.
        meter_seed: Seed of the meters' fixed biases (the same physical meters across runs); None
            uses ``seed``.

    Returns:
        The readings, the truth and the grid (`LineRun`).

    Raises:
        LineDynamicsError: For a bad duration, step, theta, inlet mode, leak position or sampling.
    """
    pump = pump or PumpStation()
    initial = initial or InitialConditions()
    meters = meters or MeterSpec()
    _positive(duration_s, "duration_s")
    _positive(dt_s, "dt_s")
    _check(0.5 <= theta <= 1.0, f"theta must be in 0.5..1, got {theta}")  # noqa: PLR2004
    _check(inlet in ("pump", "pressure"), f"inlet must be 'pump' or 'pressure', got {inlet!r}")
    _positive(valve_dp_pa, "valve_dp_pa")
    ratio = meters.sample_s / dt_s
    rec_every = round(ratio)
    _check(
        rec_every >= 1 and abs(ratio - rec_every) < _TOL, f"sample_s {meters.sample_s} is not a multiple of dt_s {dt_s}"
    )
    positions = tuple(float(x) for x in meters.pressure_positions_m)
    _check(
        positions[0] >= 0 and positions[-1] <= line.length_m,
        f"pressure_positions_m must lie in 0..{line.length_m}, got {list(positions)}",
    )
    keep = list(positions)
    if leak is not None:
        _check(leak.position_m < line.length_m, f"leak position_m must be < {line.length_m}, got {leak.position_m}")
        keep.append(leak.position_m)
    nodes = build_grid(line, keep)
    grid = _grid(line, nodes, _valve_k(pump, valve_dp_pa))
    p, q = steady_state(line, pump, initial, nodes, inlet=inlet, valve_dp_pa=valve_dp_pa)
    n_steps = math.ceil(duration_s / dt_s / rec_every) * rec_every
    t_steps = dt_s * np.arange(1, n_steps + 1, dtype=np.float64)
    speed, valve, pdel, pin = _schedule(initial, operations, t_steps)
    rec_nodes = np.array([int(np.argmin(np.abs(nodes - x))) for x in positions], dtype=np.int64)
    n_rec = n_steps // rec_every
    flows = np.zeros((n_rec, 4))
    pres = np.zeros((n_rec, len(rec_nodes)))
    leak_node = -1
    leak_k0 = 0.0
    leak_frac = 0.0
    leak_step = -1
    rho = line.density_kg_m3
    if leak is not None:
        leak_node = int(np.argmin(np.abs(nodes - leak.position_m)))
        leak_step = max(0, math.ceil(leak.start_s / dt_s) - 1)
        if leak.area_m2 is not None:
            leak_k0 = leak.discharge_coefficient * leak.area_m2 * math.sqrt(2.0 / rho)
        else:
            leak_frac = leak.size_frac
    leak_k = _integrate(
        p, q, grid.cap, grid.mass, grid.seg_len, grid.grav, grid.geo, _pump_array(pump), inlet == "pump",
        speed, valve, pdel, pin, leak_node, leak_k0, leak_frac, leak_step, pump.design_flow_m3s, dt_s, theta,
        rec_every, rec_nodes, flows, pres,
    )  # fmt: skip
    t_rec = t_steps[rec_every - 1 :: rec_every][:n_rec]
    idx = pd.Index(t_rec, name="t_s")
    truth = pd.DataFrame(
        {"flow_in_m3s": flows[:, 0], "flow_out_m3s": flows[:, 1], "leak_m3s": flows[:, 2], "line_pack_m3": flows[:, 3]},
        index=idx,
    )
    for k in range(len(rec_nodes)):
        truth[f"pressure_{k}_pa"] = pres[:, k]
    sel = slice(rec_every - 1, None, rec_every)
    truth["pump_speed"] = speed[sel][:n_rec]
    truth["valve_opening"] = valve[sel][:n_rec]
    truth["delivery_pressure_pa"] = pdel[sel][:n_rec]
    bias_rng = np.random.default_rng(seed if meter_seed is None else meter_seed)
    readings, bias = read_meters(truth, meters, np.random.default_rng(seed), bias_rng)
    area = leak_k / (leak.discharge_coefficient * math.sqrt(2.0 / rho)) if leak is not None and leak_k > 0 else 0.0
    return LineRun(
        readings=readings,
        truth=truth,
        pressure_positions_m=tuple(float(nodes[i]) for i in rec_nodes),
        leak_area_m2=area,
        leak_node_position_m=float(nodes[leak_node]) if leak_node >= 0 else math.nan,
        nodes_m=nodes,
        meter_bias=bias,
    )


def read_meters(
    truth: pd.DataFrame, meters: MeterSpec, rng: np.random.Generator, bias_rng: np.random.Generator | None = None
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Field readings from true values: bias, drift, noise and quantisation.

    Args:
        truth: True values (columns as in `LineRun.truth`), index ``t_s`` in s, evenly sampled.
        meters: Instrument errors.
        rng: Random generator of noise and drift (seeded for repeatable readings).
        bias_rng: Random generator of the fixed biases; None uses ``rng``.

    Returns:
        The readings frame and the drawn fixed errors.
    """
    n = len(truth)
    out = pd.DataFrame(index=truth.index)
    bias: dict[str, float] = {}
    phi = math.exp(-meters.sample_s / meters.flow_drift_tau_s)
    bias_rng = bias_rng if bias_rng is not None else rng
    draws = bias_rng.uniform(-1.0, 1.0, size=4)
    for e, end in enumerate(("in", "out")):
        true = truth[f"flow_{end}_m3s"].to_numpy()
        b_rel = draws[2 * e] * meters.flow_bias_frac
        b_span = draws[2 * e + 1] * meters.flow_bias_span_frac * meters.flow_span_m3s
        bias[f"{end}_frac"] = b_rel
        bias[f"{end}_span_m3s"] = b_span
        drift = _ou(n, phi, meters.flow_drift_frac, rng)
        noise = rng.standard_normal(n) * meters.flow_noise_frac
        value = true * (1.0 + b_rel + drift + noise) + b_span * (np.abs(true) > 1e-3 * meters.flow_span_m3s)
        out[f"flow_{end}_m3s"] = _quantise(value, meters.flow_quantum_m3s)
    k = 0
    while f"pressure_{k}_pa" in truth:
        value = truth[f"pressure_{k}_pa"].to_numpy() + rng.standard_normal(n) * meters.pressure_noise_pa
        out[f"pressure_{k}_pa"] = _quantise(value, meters.pressure_quantum_pa)
        k += 1
    for end in ("in", "out"):
        out[f"temperature_{end}_c"] = _quantise(
            meters.temperature_c + rng.standard_normal(n) * meters.temperature_noise_c, 0.01
        )
    return out, bias


def _ou(n: int, phi: float, sigma: float, rng: np.random.Generator) -> FloatArray:
    """Stationary AR(1) series with lag-one correlation ``phi`` and standard deviation ``sigma``."""
    if sigma <= 0:
        return np.zeros(n)
    from scipy.signal import lfilter

    e = rng.standard_normal(n) * sigma * math.sqrt(1.0 - phi * phi)
    e[0] = rng.standard_normal() * sigma
    return np.asarray(lfilter([1.0], [1.0, -phi], e), dtype=np.float64)


def _quantise(value: FloatArray, quantum: float) -> FloatArray:
    return np.round(value / quantum) * quantum if quantum > 0 else value


def start_stop_operations(
    t_stop_s: float,
    t_start_s: float,
    *,
    speed: float = 0.9,
    pump_ramp_s: float = 60.0,
    valve_ramp_s: float = 120.0,
) -> list[Operation]:
    """A shutdown at ``t_stop_s`` (pump ramps down, then the delivery valve closes) and a restart.

    The restart at ``t_start_s`` opens the valve, then ramps the pump up to ``speed``.
    """
    _check(t_start_s > t_stop_s + pump_ramp_s + valve_ramp_s, "restart must follow the completed shutdown")
    return [
        Operation(t_stop_s, pump_speed=0.0, ramp_s=pump_ramp_s),
        Operation(t_stop_s + pump_ramp_s, valve_opening=0.0, ramp_s=valve_ramp_s),
        Operation(t_start_s, valve_opening=1.0, ramp_s=valve_ramp_s),
        Operation(t_start_s + 0.5 * valve_ramp_s, pump_speed=speed, ramp_s=2.0 * pump_ramp_s),
    ]
