"""Pump physics: head, efficiency and NPSH-required curves, affinity laws, degradation and combinations.

Units are SI: flow in m3/s, head in m, power in W, pressure in Pa, density in
kg/m3; speed is relative to rated (1.0 = rated) unless a name says rpm. Flow and
head arguments take scalars or numpy arrays (vectorised; scalars give numpy
scalars). Invalid input raises `twin.network.NetworkError` naming the curve or pump.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt
from scipy.optimize import brentq, least_squares, lsq_linear

from pumptwin.twin.hydraulic.network import Curve, Network, NetworkError
from pumptwin.twin.units import ATMOSPHERIC_PRESSURE_PA, G_M_S2, WATER_DENSITY_KG_M3, WATER_VAPOUR_PRESSURE_PA

FloatArray = npt.NDArray[np.float64]
Points = Sequence[tuple[float, float]] | Curve
"""Manufacturer points (flow m3/s, value) or a `twin.network.Curve` (its id names the fit)."""
EPANET_SHUTOFF_FACTOR = 1.33334
"""EPANET's single-point rule: shutoff head = 1.33334 x design head, max flow = 2 x design flow (-)."""
POR_FRACTIONS = (0.7, 1.2)
"""Preferred operating region as fractions of the best-efficiency flow (-)."""
_EFF_FLOOR = 0.01
_TINY = 1e-12
_THREE_POINTS = 3
_CUBIC_MIN_POINTS = 4


def _arr(x: npt.ArrayLike) -> FloatArray:
    """Return ``x`` as a float64 array."""
    return np.asarray(x, dtype=np.float64)


def _check_speed(speed: float, what: str) -> None:
    """Reject a non-finite or non-positive relative speed."""
    if not (math.isfinite(speed) and speed > 0):
        raise NetworkError(f"{what}: relative speed must be a finite number > 0, got {speed}")


def _flows(flow_m3s: npt.ArrayLike, what: str) -> FloatArray:
    """Return flows as an array, rejecting negative or non-finite ones."""
    q = _arr(flow_m3s)
    if not np.all(np.isfinite(q)) or np.any(q < 0):
        raise NetworkError(f"{what}: flows must be finite and >= 0 m3/s")
    return q


def _points(points: Points, kind: str, name: str) -> tuple[str, FloatArray, FloatArray]:
    """Validate (flow, value) points; return the curve name, flows and values."""
    if isinstance(points, Curve):
        name, points = points.id, points.points
    if len(points) < 1:
        raise NetworkError(f"{kind} {name!r}: needs at least one (flow, value) point")
    xy = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if not np.all(np.isfinite(xy)):
        raise NetworkError(f"{kind} {name!r}: non-finite value in points {list(points)}")
    if np.any(xy < 0):
        raise NetworkError(f"{kind} {name!r}: flows and values must be >= 0, got {list(points)}")
    return name, xy[:, 0], xy[:, 1]


@dataclass(frozen=True, slots=True)
class HeadCurve:
    """EPANET power-form head curve h = h0 - r q^n at rated speed.

    Attributes:
        h0_m: Shutoff head at rated speed, in m (> 0).
        r: Coefficient, in m / (m3/s)^n (> 0).
        n: Flow exponent (-), > 0.
        name: Curve or pump id used in error messages.
    """

    h0_m: float
    r: float
    n: float
    name: str = "head"

    def __post_init__(self) -> None:
        """Check that h0, r and n are finite and positive."""
        for label, value in (("h0", self.h0_m), ("r", self.r), ("n", self.n)):
            if not (math.isfinite(value) and value > 0):
                raise NetworkError(f"head curve {self.name!r}: {label} must be a finite number > 0, got {value}")

    def head_m(self, flow_m3s: npt.ArrayLike, speed: float = 1.0) -> FloatArray:
        """Head in m at flow q (m3/s, >= 0) and relative speed s by affinity: s^2 h0 - r s^(2-n) q^n."""
        q = _flows(flow_m3s, f"head curve {self.name!r}")
        _check_speed(speed, f"head curve {self.name!r}")
        return speed * speed * self.h0_m - self.r * math.pow(speed, 2.0 - self.n) * q**self.n

    def shutoff_head_m(self, speed: float = 1.0) -> float:
        """Head at zero flow, s^2 h0, in m."""
        return speed * speed * self.h0_m

    def max_flow_m3s(self, speed: float = 1.0) -> float:
        """Flow at zero head, s (h0 / r)^(1/n), in m3/s."""
        return speed * math.pow(self.h0_m / self.r, 1.0 / self.n)

    def flow_at_head_m3s(self, head_m: npt.ArrayLike, speed: float = 1.0) -> FloatArray:
        """Flow in m3/s delivered against a head in m (exact inverse); 0 at or above shutoff."""
        _check_speed(speed, f"head curve {self.name!r}")
        rise = np.maximum(speed * speed * self.h0_m - _arr(head_m), 0.0)
        return np.power(rise / (self.r * math.pow(speed, 2.0 - self.n)), 1.0 / self.n)


def _three_point(name: str, h0: float, p1: tuple[float, float], p2: tuple[float, float]) -> HeadCurve:
    """EPANET 2.2's exact power fit (``powercurve``) through (0, h0), p1 and p2."""
    (q1, h1), (q2, h2) = p1, p2
    if not (h0 > h1 > h2 and 0 < q1 < q2):
        raise NetworkError(f"head curve {name!r}: the 3-point power fit needs h0 > h1 > h2 and 0 < q1 < q2")
    n = math.log((h0 - h2) / (h0 - h1)) / math.log(q2 / q1)
    return HeadCurve(float(h0), float((h0 - h1) / q1**n), float(n), name)


def _least_squares_head(q: FloatArray, h: FloatArray, name: str, n_bounds: tuple[float, float]) -> HeadCurve:
    """Least-squares fit of h0 - r q^n on normalised flow and head, with n in ``n_bounds``."""
    q_ref, h_ref = float(q.max()), float(h.max())
    if q_ref <= 0 or h_ref <= 0:
        raise NetworkError(f"head curve {name!r}: needs a point with flow > 0 and one with head > 0")
    x, y = q / q_ref, h / h_ref
    a0, b0 = np.linalg.lstsq(np.column_stack([np.ones_like(x), -(x**2)]), y, rcond=None)[0]
    guess = [max(float(a0), float(y.max()), 1e-6), max(float(b0), 1e-3), min(max(2.0, n_bounds[0]), n_bounds[1])]

    def residuals(p: FloatArray) -> FloatArray:
        return _arr(p[0] - p[1] * np.power(x, p[2]) - y)

    fit = least_squares(residuals, guess, bounds=([_TINY, _TINY, n_bounds[0]], [np.inf, np.inf, n_bounds[1]]))
    h0, r, n = (float(v) for v in fit.x)
    return HeadCurve(h0 * h_ref, r * h_ref / q_ref**n, n, name)


def fit_head_curve(points: Points, name: str = "head") -> HeadCurve:
    """Fit a power-form head curve to manufacturer points, the way EPANET does where it can.

    One point: EPANET's single-point rule (h0 = 1.33334 h1, max flow 2 q1, n about 2).
    Three points starting at zero flow: EPANET's exact 3-point power fit.
    Otherwise: least squares (scipy) for h0, r and n with n in [1, 3].

    Args:
        points: (flow m3/s, head m) pairs with increasing flow, or a network `Curve`.
        name: Curve id for error messages (a `Curve`'s own id wins).

    Returns:
        The fitted curve at rated speed.

    Raises:
        NetworkError: No points, non-finite or negative values, flows that do
            not increase, or a head that rises with flow.
    """
    name, q, h = _points(points, "head curve", name)
    if np.any(np.diff(q) <= 0):
        raise NetworkError(f"head curve {name!r}: flows must strictly increase, got {q.tolist()}")
    if np.any(np.diff(h) > 0):
        raise NetworkError(f"head curve {name!r}: head rises with flow ({h.tolist()} m); a pump curve must fall")
    if q.size == 1:
        q1, h1 = float(q[0]), float(h[0])
        if q1 <= 0 or h1 <= 0:
            raise NetworkError(f"head curve {name!r}: a single design point needs flow > 0 and head > 0")
        return _three_point(name, EPANET_SHUTOFF_FACTOR * h1, (q1, h1), (2.0 * q1, 0.0))
    if q.size == _THREE_POINTS and q[0] == 0.0:
        return _three_point(name, float(h[0]), (float(q[1]), float(h[1])), (float(q[2]), float(h[2])))
    return _least_squares_head(q, h, name, (1.0, 3.0))


@dataclass(frozen=True, slots=True)
class EfficiencyCurve:
    """Efficiency eta(q) = a q + b q^2 + c q^3 at rated speed, a fraction peaking in (0, 1].

    Attributes:
        a: Coefficient in 1/(m3/s), > 0.
        b: Coefficient in 1/(m3/s)^2.
        c: Coefficient in 1/(m3/s)^3 (0 for the quadratic form).
        name: Curve or pump id used in error messages.
    """

    a: float
    b: float
    c: float = 0.0
    name: str = "efficiency"

    def __post_init__(self) -> None:
        """Check the curve has a best-efficiency point with a peak in (0, 1]."""
        what = f"efficiency curve {self.name!r}"
        if not all(math.isfinite(v) for v in (self.a, self.b, self.c)) or self.a <= 0:
            raise NetworkError(f"{what}: coefficients must be finite with a > 0")
        if self._rated_bep() is None:
            raise NetworkError(f"{what}: efficiency never peaks, so there is no best-efficiency point")
        if not 0 < self.peak_efficiency <= 1:
            raise NetworkError(f"{what}: peak efficiency {self.peak_efficiency:.4f} is outside (0, 1]")

    def _rated_bep(self) -> float | None:
        """Flow in m3/s of the first maximum at rated speed, or None."""
        a, b, c = self.a, self.b, self.c
        if c == 0.0:
            return -a / (2.0 * b) if b < 0 else None
        disc = 4.0 * b * b - 12.0 * a * c
        roots = [(-2.0 * b + sign * math.sqrt(max(disc, 0.0))) / (6.0 * c) for sign in (1.0, -1.0)]
        maxima = [x for x in roots if disc > 0 and x > 0 and 2.0 * b + 6.0 * c * x < 0]
        return min(maxima) if maxima else None

    @property
    def peak_efficiency(self) -> float:
        """Best efficiency (fraction), the same at every speed."""
        x = self._rated_bep() or 0.0
        return x * (self.a + self.b * x + self.c * x * x)

    def efficiency(self, flow_m3s: npt.ArrayLike, speed: float = 1.0) -> FloatArray:
        """Efficiency (fraction, clipped to [0, 1]) at flow q in m3/s and speed s, by affinity eta_rated(q / s)."""
        _check_speed(speed, f"efficiency curve {self.name!r}")
        x = _arr(flow_m3s) / speed
        return np.clip(x * (self.a + self.b * x + self.c * x * x), 0.0, 1.0)

    def _eta_per_flow(self, q: FloatArray, speed: float) -> FloatArray:
        """Return eta / q in 1/(m3/s): finite at q = 0, with eta floored at 1% past the BEP."""
        x = q / speed
        poly = self.a + self.b * x + self.c * x * x
        floored = np.maximum(x * poly, _EFF_FLOOR) / np.maximum(q, _TINY)
        return np.where(x <= self.bep_flow_m3s(), poly / speed, floored)

    def bep_flow_m3s(self, speed: float = 1.0) -> float:
        """Best-efficiency flow in m3/s at relative speed s (s x the rated BEP flow)."""
        return speed * (self._rated_bep() or 0.0)

    def preferred_operating_region(self, speed: float = 1.0) -> tuple[float, float]:
        """Preferred operating region (low, high) in m3/s: 0.7 and 1.2 x the BEP flow at the speed."""
        bep = self.bep_flow_m3s(speed)
        return POR_FRACTIONS[0] * bep, POR_FRACTIONS[1] * bep

    def percent_of_bep(self, flow_m3s: npt.ArrayLike, speed: float = 1.0) -> FloatArray:
        """Flow (m3/s) as a percentage of the BEP flow at the speed (%)."""
        _check_speed(speed, f"efficiency curve {self.name!r}")
        return 100.0 * _arr(flow_m3s) / self.bep_flow_m3s(speed)


def fit_efficiency_curve(points: Points, name: str = "efficiency") -> EfficiencyCurve:
    """Least-squares fit of eta = a q + b q^2 (+ c q^3 from 4 points) through the origin.

    Args:
        points: (flow m3/s, efficiency fraction in [0, 1]) pairs, or a network `Curve`.
        name: Curve id for error messages (a `Curve`'s own id wins).

    Returns:
        The fitted curve at rated speed.

    Raises:
        NetworkError: Bad points, fewer than two with flow > 0, or no peak in (0, 1].
    """
    name, q, eta = _points(points, "efficiency curve", name)
    if np.any(eta > 1):
        raise NetworkError(f"efficiency curve {name!r}: efficiencies must be fractions in [0, 1], got {eta.tolist()}")
    if np.count_nonzero(q > 0) < 2:  # noqa: PLR2004 - two coefficients need two points
        raise NetworkError(f"efficiency curve {name!r}: needs at least two points with flow > 0")
    degree = 3 if q.size >= _CUBIC_MIN_POINTS else 2
    q_ref = float(q.max())
    x = q / q_ref
    coef = np.linalg.lstsq(np.column_stack([x**k for k in range(1, degree + 1)]), eta, rcond=None)[0]
    a, b, *c = (float(coef[k - 1]) / q_ref**k for k in range(1, degree + 1))
    return EfficiencyCurve(a, b, c[0] if c else 0.0, name)


def hydraulic_power_w(
    flow_m3s: npt.ArrayLike, head_m: npt.ArrayLike, density_kg_m3: float = WATER_DENSITY_KG_M3
) -> FloatArray:
    """Hydraulic power rho g q h in W, for flow in m3/s, head in m and density in kg/m3."""
    return density_kg_m3 * G_M_S2 * _arr(flow_m3s) * _arr(head_m)


def shaft_power_w(hydraulic_w: npt.ArrayLike, efficiency: npt.ArrayLike) -> FloatArray:
    """Shaft power in W: hydraulic power (W) / efficiency (fraction in (0, 1]).

    Raises:
        NetworkError: An efficiency outside (0, 1].
    """
    eta = _arr(efficiency)
    if np.any(eta <= 0) or np.any(eta > 1):
        raise NetworkError(f"shaft power: efficiency must be in (0, 1], got {eta}")
    return _arr(hydraulic_w) / eta


def specific_energy_kwh_m3(shaft_power_w: npt.ArrayLike, flow_m3s: npt.ArrayLike) -> FloatArray:
    """Specific energy in kWh/m3: shaft power (W) / flow (m3/s) / 3.6e6.

    Raises:
        NetworkError: A flow that is not > 0.
    """
    q = _arr(flow_m3s)
    if np.any(q <= 0):
        raise NetworkError("specific energy: flow must be > 0 m3/s")
    return _arr(shaft_power_w) / q / 3.6e6


@dataclass(frozen=True, slots=True)
class NpshrCurve:
    """NPSH required at rated speed, a + b q + c q^2 in m (clipped at 0).

    Attributes:
        a_m: Value at zero flow in m, >= 0.
        b: Coefficient in m/(m3/s).
        c: Coefficient in m/(m3/s)^2.
        name: Curve or pump id used in error messages.
    """

    a_m: float
    b: float = 0.0
    c: float = 0.0
    name: str = "npshr"

    def __post_init__(self) -> None:
        """Check the coefficients are finite and a >= 0."""
        if not all(math.isfinite(v) for v in (self.a_m, self.b, self.c)) or self.a_m < 0:
            raise NetworkError(f"NPSHr curve {self.name!r}: coefficients must be finite with a >= 0")

    def npshr_m(self, flow_m3s: npt.ArrayLike, speed: float = 1.0) -> FloatArray:
        """NPSH required in m at flow q (m3/s) and relative speed s, by affinity s^2 NPSHr_rated(q / s)."""
        _check_speed(speed, f"NPSHr curve {self.name!r}")
        x = _arr(flow_m3s) / speed
        return np.maximum(speed * speed * (self.a_m + self.b * x + self.c * x * x), 0.0)


def fit_npshr_curve(points: Points, name: str = "npshr") -> NpshrCurve:
    """Least-squares NPSHr fit with a >= 0: constant (1 point), a + c q^2 (2) or a + b q + c q^2 (3+).

    Args:
        points: (flow m3/s, NPSHr m) pairs, or a network `Curve`.
        name: Curve id for error messages (a `Curve`'s own id wins).

    Returns:
        The fitted curve at rated speed.
    """
    name, q, y = _points(points, "NPSHr curve", name)
    q_ref = float(q.max()) or 1.0
    powers = [0] if q.size == 1 else [0, 2] if q.size == 2 else [0, 1, 2]  # noqa: PLR2004 - point counts
    low = [0.0] + [-np.inf] * (len(powers) - 1)
    fit = lsq_linear(np.column_stack([(q / q_ref) ** k for k in powers]), y, bounds=(low, np.inf))
    coef = {k: float(v) / q_ref**k for k, v in zip(powers, fit.x, strict=True)}
    return NpshrCurve(max(coef[0], 0.0), coef.get(1, 0.0), coef.get(2, 0.0), name)


def npsh_available_m(
    suction_pressure_head_m: npt.ArrayLike,
    velocity_m_s: npt.ArrayLike,
    atmospheric_pressure_pa: float = ATMOSPHERIC_PRESSURE_PA,
    vapour_pressure_pa: float = WATER_VAPOUR_PRESSURE_PA,
    density_kg_m3: float = WATER_DENSITY_KG_M3,
) -> FloatArray:
    """NPSH available at the suction, p_gauge_head + (p_atm - p_vap) / (rho g) + v^2 / (2 g), in m.

    Args:
        suction_pressure_head_m: Gauge pressure head at the suction, in m of fluid.
        velocity_m_s: Mean velocity at the suction, in m/s.
        atmospheric_pressure_pa: Absolute atmospheric pressure, in Pa.
        vapour_pressure_pa: Absolute vapour pressure of the fluid, in Pa.
        density_kg_m3: Fluid density, in kg/m3 (> 0).

    Returns:
        NPSHa in m.
    """
    if not density_kg_m3 > 0:
        raise NetworkError(f"NPSH available: density must be > 0 kg/m3, got {density_kg_m3}")
    v = _arr(velocity_m_s)
    pressure_m = (atmospheric_pressure_pa - vapour_pressure_pa) / (density_kg_m3 * G_M_S2)
    return _arr(suction_pressure_head_m) + pressure_m + v * v / (2.0 * G_M_S2)


@dataclass(frozen=True, slots=True)
class Degradation:
    """Wear state of a pump.

    Attributes:
        impeller_wear: Loss w of effective impeller diameter, D' = (1 - w) D, in [0, 0.5].
        efficiency_loss: Efficiency is multiplied by (1 - loss); loss in [0, 0.5].
        recirculation_m3s: Internal recirculation flow in m3/s, >= 0.
    """

    impeller_wear: float = 0.0
    efficiency_loss: float = 0.0
    recirculation_m3s: float = 0.0

    def __post_init__(self) -> None:
        """Check the ranges."""
        for label, value in (("impeller wear", self.impeller_wear), ("efficiency loss", self.efficiency_loss)):
            if not (math.isfinite(value) and 0 <= value <= 0.5):  # noqa: PLR2004 - documented limit
                raise NetworkError(f"degradation: {label} must be in [0, 0.5], got {value}")
        if not (math.isfinite(self.recirculation_m3s) and self.recirculation_m3s >= 0):
            raise NetworkError(f"degradation: recirculation must be >= 0 m3/s, got {self.recirculation_m3s}")


def degrade(curve: HeadCurve, degradation: Degradation) -> HeadCurve:
    """Power-form head curve of a degraded pump, for solvers that need h0 - r q^n.

    Wear w gives h0' = (1-w)^2 h0 and r' = r (1-w)^(2-n) (diameter affinity).
    Recirculation q_r shifts the curve, h(q) = h_worn(q + q_r), and that shape
    is refitted by least squares over 0..its max flow.

    Args:
        curve: Clean head curve at rated speed.
        degradation: The wear state.

    Returns:
        The degraded curve at rated speed.

    Raises:
        NetworkError: Recirculation at or above the worn pump's max flow.
    """
    k = 1.0 - degradation.impeller_wear
    worn = HeadCurve(k * k * curve.h0_m, curve.r * math.pow(k, 2.0 - curve.n), curve.n, curve.name)
    q_r = degradation.recirculation_m3s
    if q_r == 0:
        return worn
    if (q_max := worn.max_flow_m3s() - q_r) <= 0:
        raise NetworkError(f"head curve {curve.name!r}: recirculation {q_r} m3/s exceeds the worn max flow")
    q = np.linspace(0.0, q_max, 41)
    return _least_squares_head(q, worn.head_m(q + q_r), curve.name, (min(1.0, curve.n), max(3.0, curve.n)))


class PumpCurve(Protocol):
    """A falling pump or station curve: what `operating_point`, `series` and `parallel` accept."""

    @property
    def name(self) -> str:
        """Id used in error messages."""

    def head_m(self, flow_m3s: npt.ArrayLike, speed: float = 1.0) -> FloatArray:
        """Head in m at flow in m3/s and relative speed."""

    def shutoff_head_m(self, speed: float = 1.0) -> float:
        """Head in m at zero flow."""

    def flow_at_head_m3s(self, head_m: npt.ArrayLike, speed: float = 1.0) -> FloatArray:
        """Flow in m3/s at a head in m (0 at or above shutoff)."""


def _bisect_falling(
    f: Callable[[FloatArray], FloatArray], target: FloatArray, lo: FloatArray, hi: FloatArray
) -> FloatArray:
    """Solve f(x) = target elementwise on [lo, hi] for a non-increasing f (vectorised bisection)."""
    lo, hi = np.broadcast_arrays(lo, hi, target)[:2]
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        above = f(mid) > target
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
        if np.all(hi - lo <= 1e-13 * np.maximum(np.abs(hi), 1.0)):
            break
    return 0.5 * (lo + hi)


def operating_point(
    curve: PumpCurve, system_static_head_m: float, system_k: float, speed: float = 1.0
) -> tuple[float, float]:
    """Duty point of a pump or station against the system curve h = hs + k q^2, by brentq.

    Args:
        curve: A `HeadCurve`, `PumpModel` or `CombinedCurve`.
        system_static_head_m: Static head hs in m.
        system_k: System resistance k in m/(m3/s)^2, >= 0.
        speed: Relative speed (-).

    Returns:
        (flow in m3/s, head in m) at the intersection.

    Raises:
        NetworkError: Bad system values, or no intersection (static head above shutoff).
    """
    hs, k = system_static_head_m, system_k
    if not (math.isfinite(hs) and math.isfinite(k) and k >= 0):
        raise NetworkError(f"pump {curve.name!r}: system static head must be finite and k >= 0, got {hs}, {k}")

    def gap(q: float) -> float:
        return float(curve.head_m(q, speed)) - hs - k * q * q

    if gap(0.0) < 0:
        raise NetworkError(
            f"pump {curve.name!r}: no intersection with the system curve; static head {hs} m is above "
            f"the shutoff head {curve.shutoff_head_m(speed):.4g} m at speed {speed}"
        )
    q_hi = float(curve.flow_at_head_m3s(min(hs, 0.0), speed))
    q = 0.0 if gap(0.0) == 0 else float(brentq(gap, 0.0, q_hi, xtol=1e-14))
    return q, float(curve.head_m(q, speed))


@dataclass(frozen=True, slots=True)
class PumpModel:
    """A pump: clean curves at rated speed, wear state and speed limits.

    Wear w acts as an effective speed s (1 - w) on head; efficiency is multiplied
    by (1 - loss); head, efficiency, power and NPSHr are taken at the internal
    flow q + q_r for a net delivered flow q.

    Attributes:
        name: Pump id.
        head_curve: Clean head curve at rated speed.
        efficiency_curve: Clean efficiency curve at rated speed.
        npshr_curve: NPSH-required curve at rated speed, if known.
        degradation: Wear state.
        rated_speed_rpm: Rated speed in rpm.
        min_speed: Minimum relative speed (-), > 0.
        max_speed: Maximum relative speed (-), >= min_speed.
    """

    name: str
    head_curve: HeadCurve
    efficiency_curve: EfficiencyCurve
    npshr_curve: NpshrCurve | None = None
    degradation: Degradation = field(default_factory=Degradation)
    rated_speed_rpm: float = 1480.0
    min_speed: float = 0.5
    max_speed: float = 1.2

    def __post_init__(self) -> None:
        """Check speeds and that the degraded pump still delivers flow at max speed."""
        if not (math.isfinite(self.rated_speed_rpm) and self.rated_speed_rpm > 0):
            raise NetworkError(f"pump {self.name!r}: rated speed must be > 0 rpm, got {self.rated_speed_rpm}")
        if not (math.isfinite(self.max_speed) and 0 < self.min_speed <= self.max_speed):
            raise NetworkError(f"pump {self.name!r}: needs 0 < min speed <= max speed")
        if self.max_flow_m3s(self.max_speed) <= 0:
            raise NetworkError(f"pump {self.name!r}: recirculation exceeds the max flow; the pump delivers nothing")

    def _head_speed(self, speed: float) -> float:
        """Check the speed is within limits; return the effective head speed s (1 - w)."""
        if not self.min_speed <= speed <= self.max_speed:
            raise NetworkError(f"pump {self.name!r}: speed {speed} outside [{self.min_speed}, {self.max_speed}]")
        return speed * (1.0 - self.degradation.impeller_wear)

    def speed_rpm(self, speed: float = 1.0) -> float:
        """Shaft speed in rpm for a relative speed."""
        return speed * self.rated_speed_rpm

    def head_m(self, flow_m3s: npt.ArrayLike, speed: float = 1.0) -> FloatArray:
        """Delivered head in m at net flow in m3/s and relative speed, degradation included."""
        q = _flows(flow_m3s, f"pump {self.name!r}")
        return self.head_curve.head_m(q + self.degradation.recirculation_m3s, self._head_speed(speed))

    def shutoff_head_m(self, speed: float = 1.0) -> float:
        """Head in m at zero net flow."""
        return float(self.head_m(0.0, speed))

    def max_flow_m3s(self, speed: float = 1.0) -> float:
        """Net flow in m3/s at zero head."""
        return max(self.head_curve.max_flow_m3s(self._head_speed(speed)) - self.degradation.recirculation_m3s, 0.0)

    def flow_at_head_m3s(self, head_m: npt.ArrayLike, speed: float = 1.0) -> FloatArray:
        """Net flow in m3/s delivered against a head in m; 0 at or above shutoff."""
        q = self.head_curve.flow_at_head_m3s(head_m, self._head_speed(speed))
        return np.maximum(q - self.degradation.recirculation_m3s, 0.0)

    def efficiency(self, flow_m3s: npt.ArrayLike, speed: float = 1.0) -> FloatArray:
        """Overall efficiency (fraction) at net flow q in m3/s: q / (q + q_r) x eta(q + q_r, s) x (1 - loss)."""
        self._head_speed(speed)
        q = _flows(flow_m3s, f"pump {self.name!r}")
        q_int = q + self.degradation.recirculation_m3s
        share = np.divide(q, q_int, out=np.zeros_like(q_int), where=q_int > 0)
        return share * self.efficiency_curve.efficiency(q_int, speed) * (1.0 - self.degradation.efficiency_loss)

    def shaft_power_w(
        self, flow_m3s: npt.ArrayLike, speed: float = 1.0, density_kg_m3: float = WATER_DENSITY_KG_M3
    ) -> FloatArray:
        """Shaft power in W at net flow (m3/s), relative speed and density (kg/m3).

        P = rho g (q + q_r) h / eta(q + q_r), with the delivered head h clipped at
        0; finite at zero flow, with the efficiency floored at 1% past runout.
        """
        q_int = _flows(flow_m3s, f"pump {self.name!r}") + self.degradation.recirculation_m3s
        head = np.maximum(self.head_m(flow_m3s, speed), 0.0)
        per_flow = self.efficiency_curve._eta_per_flow(q_int, speed) * (1.0 - self.degradation.efficiency_loss)
        return density_kg_m3 * G_M_S2 * head / per_flow

    def npshr_m(self, flow_m3s: npt.ArrayLike, speed: float = 1.0) -> FloatArray:
        """NPSH required in m at net flow (m3/s) and relative speed, taken at q + q_r.

        Raises:
            NetworkError: The pump has no NPSHr curve.
        """
        if self.npshr_curve is None:
            raise NetworkError(f"pump {self.name!r}: has no NPSHr curve")
        self._head_speed(speed)
        return self.npshr_curve.npshr_m(
            _flows(flow_m3s, f"pump {self.name!r}") + self.degradation.recirculation_m3s, speed
        )

    def operating_point_against(
        self, system_static_head_m: float, system_k: float, speed: float = 1.0
    ) -> tuple[float, float]:
        """Duty point (flow m3/s, head m) against h = hs + k q^2; see `operating_point`."""
        return operating_point(self, system_static_head_m, system_k, speed)


@dataclass(frozen=True, slots=True)
class CombinedCurve:
    """Pumps in series (heads add at one flow) or in parallel (flows add at one head); callable as `head_m`.

    Attributes:
        members: Curves combined (`HeadCurve`, `PumpModel` or `CombinedCurve`).
        counts: Running units of each member (>= 0, at least one running).
        arrangement: ``"series"`` or ``"parallel"``.
        name: Station id used in error messages.
    """

    members: tuple[PumpCurve, ...]
    counts: tuple[int, ...]
    arrangement: Literal["series", "parallel"]
    name: str = "station"

    def __post_init__(self) -> None:
        """Check members, counts and arrangement."""
        if not self.members or len(self.counts) != len(self.members):
            raise NetworkError(f"station {self.name!r}: needs one or more curves and one count per curve")
        if any(c < 0 for c in self.counts) or sum(self.counts) < 1:
            raise NetworkError(f"station {self.name!r}: counts must be >= 0 with at least one running")
        if self.arrangement not in ("series", "parallel"):
            raise NetworkError(f"station {self.name!r}: unknown arrangement {self.arrangement!r}")

    def _running(self) -> list[tuple[PumpCurve, int]]:
        return [(m, c) for m, c in zip(self.members, self.counts, strict=True) if c > 0]

    def __call__(self, flow_m3s: npt.ArrayLike, speed: float = 1.0) -> FloatArray:
        """Combined head in m at total flow in m3/s; same as `head_m`."""
        return self.head_m(flow_m3s, speed)

    def head_m(self, flow_m3s: npt.ArrayLike, speed: float = 1.0) -> FloatArray:
        """Combined head in m at total flow in m3/s and relative speed (parallel: numerical inversion)."""
        q = _flows(flow_m3s, f"station {self.name!r}")
        if self.arrangement == "series":
            return sum((c * m.head_m(q, speed) for m, c in self._running()), np.zeros_like(q))
        lo = np.max([m.head_m(q, speed) for m, _ in self._running()], axis=0)  # h* >= every member's h(q)
        return _bisect_falling(lambda h: self.flow_at_head_m3s(h, speed), q, lo, _arr(self.shutoff_head_m(speed)))

    def shutoff_head_m(self, speed: float = 1.0) -> float:
        """Combined head in m at zero flow."""
        if self.arrangement == "series":
            return float(sum(c * m.shutoff_head_m(speed) for m, c in self._running()))
        return float(max(m.shutoff_head_m(speed) for m, _ in self._running()))

    def flow_at_head_m3s(self, head_m: npt.ArrayLike, speed: float = 1.0) -> FloatArray:
        """Total flow in m3/s at a head in m (series: numerical inversion); 0 at or above shutoff."""
        h = _arr(head_m)
        if self.arrangement == "parallel":
            return sum((c * m.flow_at_head_m3s(h, speed) for m, c in self._running()), np.zeros_like(h))
        hi = np.full_like(h, max(float(m.flow_at_head_m3s(0.0, speed)) for m, _ in self._running()))
        for _ in range(64):  # negative heads lie beyond the max flow: widen until bracketed
            if not np.any(short := self.head_m(hi, speed) > h):
                break
            hi = np.where(short, 2.0 * hi, hi)
        q = _bisect_falling(lambda x: self.head_m(x, speed), h, np.zeros_like(h), hi)
        return np.where(h >= self.shutoff_head_m(speed), 0.0, q)

    def max_flow_m3s(self, speed: float = 1.0) -> float:
        """Total flow in m3/s at zero head."""
        return float(self.flow_at_head_m3s(0.0, speed))


def series(*curves: PumpCurve, counts: Sequence[int] | None = None, name: str = "station") -> CombinedCurve:
    """Pumps in series: heads add at the same flow; ``counts`` gives running units per curve (default 1 each)."""
    return CombinedCurve(tuple(curves), tuple(counts or [1] * len(curves)), "series", name)


def parallel(*curves: PumpCurve, counts: Sequence[int] | None = None, name: str = "station") -> CombinedCurve:
    """Pumps in parallel: flows add at the same head, e.g. ``parallel(curve, counts=[3])`` for 3 identical pumps."""
    return CombinedCurve(tuple(curves), tuple(counts or [1] * len(curves)), "parallel", name)


def degraded_points(
    points: Sequence[tuple[float, float]], degradation: Degradation, shutoff_head_m: float | None = None
) -> tuple[tuple[float, float], ...]:
    """Manufacturer head points (m3/s, m) of a worn pump, mapped homologously.

    Wear maps (q, h) to ((1-w) q, (1-w)^2 h) (diameter affinity); recirculation
    q_r lowers the delivered flow to (1-w) q - q_r. A point that would fall below
    zero delivered flow becomes the new shut-off point (0, ``shutoff_head_m``),
    which the caller evaluates on the worn curve at q_r.

    Raises:
        NetworkError: When fewer than one point keeps a positive delivered flow.
    """
    k = 1.0 - degradation.impeller_wear
    out: list[tuple[float, float]] = []
    for q, h in points:
        delivered = k * q - degradation.recirculation_m3s
        if delivered > 0:
            out.append((delivered, k * k * h))
        elif q == 0 and shutoff_head_m is not None:
            out.append((0.0, shutoff_head_m))
    if not any(q > 0 for q, _ in out):
        raise NetworkError("degradation: recirculation leaves no point with positive delivered flow")
    return tuple(out)


def apply_degradation(network: Network, wear: Mapping[str, Degradation]) -> Network:
    """The network with the head and efficiency curves of worn pumps replaced.

    Each worn pump gets its own curves (ids ``<curve>@<pump>``): head points mapped
    by `degraded_points`; efficiency at delivered flow q becomes
    eta(q + q_r) q / (q + q_r) (1 - loss), since the shaft also drives the
    recirculated flow.

    Args:
        network: Network with clean curves.
        wear: Degradation by pump id.

    Raises:
        NetworkError: An unknown pump id, or a pump without a head curve.
    """
    pumps = {p.id: p for p in network.pumps}
    curves = list(network.curves)
    new_pumps = []
    for pump in network.pumps:
        d = wear.get(pump.id)
        if d is None:
            new_pumps.append(pump)
            continue
        if pump.head_curve is None:
            raise NetworkError(f"pump {pump.id!r}: a constant-power pump has no curve to degrade")
        head = network.curve(pump.head_curve)
        clean = fit_head_curve(head.points, head.id)
        k = 1.0 - d.impeller_wear
        shutoff = float(k * k * clean.head_m(d.recirculation_m3s / k))
        curves.append(Curve(f"{head.id}@{pump.id}", degraded_points(head.points, d, shutoff), head.kind))
        eff_id = pump.efficiency_curve
        if eff_id is not None:
            eff = network.curve(eff_id)
            q_r = d.recirculation_m3s
            pts = tuple(
                (q, eta * q / (q + q_r) * (1.0 - d.efficiency_loss))
                for q, eta in ((k * qq - q_r, e) for qq, e in eff.points)
                if q > 0
            )
            eff_id = f"{eff.id}@{pump.id}"
            curves.append(Curve(eff_id, pts, eff.kind))
        new_pumps.append(replace(pump, head_curve=f"{head.id}@{pump.id}", efficiency_curve=eff_id))
    unknown = set(wear) - set(pumps)
    if unknown:
        raise NetworkError(f"degradation: pumps {sorted(unknown)} do not exist")
    return replace(network, pumps=tuple(new_pumps), curves=tuple(curves))
