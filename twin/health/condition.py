"""The twin's own condition models: simple generic forms whose parameters each asset learns from its history.

The twin does not know how the plant's machines vibrate or heat; it knows the rated data of the
registry and the readings. Each model below is a generic form, linear in its parameters, fitted
per asset (per bearing where it matters) by recursive least squares with exponential forgetting
(`RlsFit`, information form: the forgotten sums of phi phi^T and phi y), or tracked as a scalar
random walk by a Kalman filter in `twin.health.pumps`. With s the shaft speed relative to rated
and r = q / q_BEP(s) the flow ratio at that speed:

- **Vibration** velocity RMS v (mm/s) of a bearing housing:
  v^2 = a0 + a1 s^2 + a2 s^4 + s^4 (a3 d^2 + a4 d^3 + a5 d^4), d = r - 1, a polynomial in s and
  the distance from the BEP (`vibration_features`); the odd term lets the low-flow side differ
  from run-out. An excess over the baseline (mm/s, root-sum-square, at rated speed) scales with s.
- **Cavitation** adds a generic penalty below the NPSH margin ratio NPSHa / NPSHr = 1.3 (the
  lower end of the margins ANSI/HI 9.6.1 recommends): v x (1 + 2 (1 - ratio / 1.3)).
- **Bearing temperature** rise over ambient, steady: rise = R L(s, r), with the friction-heat load
  L = c0 s + c1 s^2 (1 + c2 (r - 1)^2), c0 + c1 = 1, so L = 1 at rated speed and the BEP and R is
  the rise there (K). The shape (c0, c1, c2) is learnt by least squares of the rise on
  (s, s^2, s^2 (r - 1)^2) (`bearing_features`); R is tracked as rise / L.
- **Winding temperature** rise over ambient: rise = R_w (I / I_rated)^2 (copper loss), with
  I_rated from the motor's nameplate (`rated_current_a`); R_w is tracked as rise / (I / I_rated)^2.
- **Seal leakage** (L/h) linear in the seal chamber (suction) pressure: leak = b0 + b1 p (bar g).
- **Strainer** loss dP = k q^2 (Pa, q in m3/s); k is tracked over time, and its rise is clogging.

Before an asset has history the predictions fall back on what an operator knows of a new
machine (`generic_vibration_coefficients`, `DATASHEET_BEARING_RISE_K`, `GENERIC_BEARING_LOAD`):
vibration at the ISO 10816-3 zone A/B boundary at rated speed and the BEP, 30 % more at the
edge of the preferred operating region (the allowance API 610 gives outside it), and the API 610
limit of a 40 K bearing oil temperature rise. `MachineCondition` carries a pump's learnt (or
generic) parameters to the what-ifs, where `predicted_vibration_mm_s` and `predicted_bearing_c`
give the steady condition at an operating point.

All numbers are SI except where a name says otherwise (``_mm_s``, ``_k``, ``_c``, ``_bar``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pumptwin.twin.assets import PumpSpec
from pumptwin.twin.errors import PumptwinError

FloatArray = npt.NDArray[np.float64]

VIB_FEATURES = 6
"""Parameters of the vibration form (a0 ... a5)."""
BEARING_FEATURES = 3
"""Parameters of the bearing rise form (R c0, R c1, R c1 c2)."""
SEAL_FEATURES = 2
"""Parameters of the seal leak form (b0, b1)."""
ISO_AB_MM_S = 2.3
"""ISO 10816-3 zone A/B boundary of group 1 machines on rigid foundations, mm/s: a new machine
is commissioned inside zone A, so this is the most a new machine vibrates."""
OFF_BEP_ALLOWANCE = 0.3
"""Vibration allowed above its BEP value outside the preferred operating region (API 610: 30 %)."""
POR_HALF_WIDTH = 0.3
"""Distance |r - 1| from the BEP at which the allowance is reached (70 % of BEP flow)."""
DATASHEET_BEARING_RISE_K = 40.0
"""Bearing temperature rise over ambient at rated speed and the BEP, K (API 610 oil rise limit)."""
GENERIC_BEARING_LOAD = (0.5, 0.5, 1.0)
"""Friction-heat load shape (c0, c1, c2) of a bearing with no history."""
GENERIC_WINDING_RISE_K = 80.0
"""Winding rise at rated current, K: class B rise, used by insulation class F motors."""
NPSH_MARGIN_RATIO = 1.3
"""NPSHa / NPSHr below which the twin expects cavitation to add vibration."""
CAVITATION_GAIN = 2.0
"""Relative vibration added per unit (1 - ratio / 1.3) below the margin ratio."""
RIDGE = 1e-4
BEARING_STIFFNESS = (1.0, 1.0, 30.0)
"""Relative ridge of the bearing parameters: the radial term, seen only as far as the flow strays from
the BEP, keeps its prior unless the history spans a wide range of flows."""
MAX_RADIAL_GAIN = 4.0
"""Largest radial load growth c2 a learnt bearing shape may have (5 x the BEP load at 100 % off BEP)."""
VIB_STIFFNESS = (1e3, 1.0, 1.0, 1.0, 1.0, 1.0)
"""Relative ridge of the vibration parameters: the floor a0 keeps its prior (0) unless the data insist,
so that a history at one speed scales the speed terms rather than the floor."""
"""Ridge towards the prior, relative to each diagonal element of the information matrix."""


class ConditionError(PumptwinError, ValueError):
    """Invalid condition model parameters; the message names the value."""


def _f64(x: npt.ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


# --------------------------------------------------------------------------------------------
# Recursive least squares with forgetting
# --------------------------------------------------------------------------------------------


def rls_solve(
    info: Sequence[float], rhs: Sequence[float], prior: Sequence[float], stiffness: Sequence[float] | None = None
) -> FloatArray:
    """Coefficients of an information-form least squares, with a small ridge towards ``prior``.

    Solves (A + lambda K D) c = b + lambda K D c_prior with D = diag(A), K = diag(``stiffness``)
    and lambda = `RIDGE`, so that directions the data do not determine (a narrow operating range)
    stay near the prior whatever the scale of each regressor; a stiffer parameter moves less.

    Args:
        info: A = sum of phi phi^T, row-major (n^2 values).
        rhs: b = sum of phi y (n values).
        prior: c_prior (n values).
        stiffness: Relative ridge of each parameter (n values > 0; None: all 1).
    """
    n = len(rhs)
    a = _f64(info).reshape(n, n)
    diag = np.maximum(np.diag(a), 1e-12 * max(float(np.trace(a)), 1e-12))
    k = np.ones(n) if stiffness is None else _f64(stiffness)
    d = RIDGE * np.diag(k * diag)
    return np.asarray(np.linalg.solve(a + d, _f64(rhs) + d @ _f64(prior)), dtype=np.float64)


def rls_fold(
    info: Sequence[float], rhs: Sequence[float], weight: float, phi: FloatArray, y: FloatArray, forget: float
) -> tuple[tuple[float, ...], tuple[float, ...], float]:
    """Forget the old sums by ``forget`` in (0, 1], then add the rows ``phi`` (m, n) with targets ``y`` (m,).

    Returns:
        (info, rhs, weight) after the update; weight is the forgotten number of samples.
    """
    n = len(rhs)
    a = forget * _f64(info).reshape(n, n) + phi.T @ phi
    b = forget * _f64(rhs) + phi.T @ y
    return tuple(float(v) for v in a.ravel()), tuple(float(v) for v in b), forget * weight + float(len(y))


@dataclass(frozen=True, slots=True)
class RlsFit:
    """A least-squares fit y = phi . c kept as forgotten sums (information form).

    Attributes:
        info: Forgotten sum of phi phi^T, row-major (n^2 values).
        rhs: Forgotten sum of phi y (n values, unit of y).
        weight: Forgotten number of samples.
        noise: Root mean square residual, unit of y (NaN before any data).
    """

    info: tuple[float, ...]
    rhs: tuple[float, ...]
    weight: float = 0.0
    noise: float = math.nan

    def __post_init__(self) -> None:
        """Check the sizes agree and the weight is >= 0."""
        n = len(self.rhs)
        if n == 0 or len(self.info) != n * n:
            raise ConditionError(f"least-squares fit: {len(self.info)} info values do not match {n} parameters")
        if not (math.isfinite(self.weight) and self.weight >= 0):
            raise ConditionError(f"least-squares fit: weight must be >= 0, got {self.weight}")

    @classmethod
    def empty(cls, n: int) -> RlsFit:
        """A fit of ``n`` parameters with no data."""
        return cls((0.0,) * (n * n), (0.0,) * n)

    @property
    def n_features(self) -> int:
        """Number of parameters n."""
        return len(self.rhs)

    def coefficients(self, prior: Sequence[float], stiffness: Sequence[float] | None = None) -> FloatArray:
        """Fitted parameters (`rls_solve`); ``prior`` where there are no data."""
        if self.weight <= 0:
            return _f64(prior).copy()
        return rls_solve(self.info, self.rhs, prior, stiffness)

    def folded(
        self,
        phi: FloatArray,
        y: FloatArray,
        forget: float,
        prior: Sequence[float],
        stiffness: Sequence[float] | None = None,
    ) -> RlsFit:
        """The fit with rows ``phi`` and targets ``y`` added after forgetting; the noise is refreshed."""
        info, rhs, weight = rls_fold(self.info, self.rhs, self.weight, phi, y, forget)
        new = RlsFit(info, rhs, weight)
        resid = y - phi @ new.coefficients(prior, stiffness)
        noise = float(np.sqrt(np.mean(resid * resid))) if y.size else math.nan
        old = self.noise if math.isfinite(self.noise) else noise
        blended = math.sqrt(forget * old**2 + (1.0 - forget) * noise**2) if self.weight > 0 else noise
        return RlsFit(info, rhs, weight, blended)


# --------------------------------------------------------------------------------------------
# Vibration
# --------------------------------------------------------------------------------------------


def vibration_features(speed: npt.ArrayLike, flow_ratio: npt.ArrayLike) -> FloatArray:
    """Regressors of v^2 (n, 6): (1, s^2, s^4, s^4 d^2, s^4 d^3, s^4 d^4), d = r - 1."""
    s2 = np.atleast_1d(_f64(speed)) ** 2
    d = np.atleast_1d(_f64(flow_ratio)) - 1.0
    s2, d = np.broadcast_arrays(s2, d)
    s4 = s2 * s2
    d2 = d * d
    return np.column_stack([np.ones_like(s2), s2, s4, s4 * d2, s4 * d2 * d, s4 * d2 * d2])


def generic_vibration_coefficients(rated_mm_s: float = ISO_AB_MM_S) -> tuple[float, ...]:
    """(a0 ... a5) in (mm/s)^2 of a machine with no history.

    v = ``rated_mm_s`` at rated speed and the BEP, split evenly between a s^2 and a s^4 part
    (misalignment-like and imbalance-like), and (1 + `OFF_BEP_ALLOWANCE`) times that at
    |r - 1| = `POR_HALF_WIDTH`, from the quadratic term alone.
    """
    v2 = rated_mm_s * rated_mm_s
    a3 = ((1.0 + OFF_BEP_ALLOWANCE) ** 2 - 1.0) * v2 / POR_HALF_WIDTH**2
    return (0.0, 0.5 * v2, 0.5 * v2, a3, 0.0, 0.0)


GENERIC_VIBRATION = generic_vibration_coefficients()
"""Vibration coefficients of a machine with no history."""


@dataclass(frozen=True, slots=True)
class VibrationBaseline:
    """Recursive least squares of v^2 on `vibration_features`, in information form.

    Attributes:
        info: Forgotten sum of phi phi^T, row-major (36 values).
        rhs: Forgotten sum of phi v^2 (6 values, (mm/s)^2).
        weight: Forgotten number of samples.
        noise_mm_s: Root mean square residual of the RMS about the baseline, mm/s.
    """

    info: tuple[float, ...] = (0.0,) * (VIB_FEATURES * VIB_FEATURES)
    rhs: tuple[float, ...] = (0.0,) * VIB_FEATURES
    weight: float = 0.0
    noise_mm_s: float = math.nan

    def __post_init__(self) -> None:
        """Check the sizes."""
        if len(self.rhs) != VIB_FEATURES or len(self.info) != VIB_FEATURES * VIB_FEATURES:
            raise ConditionError(f"vibration baseline needs {VIB_FEATURES**2} info and {VIB_FEATURES} rhs values")

    def coefficients(self, prior: Sequence[float] = GENERIC_VIBRATION) -> FloatArray:
        """(a0 ... a5) in (mm/s)^2; the generic machine where there are no data."""
        if self.weight <= 0:
            return _f64(prior).copy()
        return rls_solve(self.info, self.rhs, prior, VIB_STIFFNESS)

    def predict_mm_s(self, speed: npt.ArrayLike, flow_ratio: npt.ArrayLike) -> FloatArray:
        """Baseline RMS in mm/s at relative speeds and flow ratios (q / q_BEP at speed)."""
        v2 = vibration_features(speed, flow_ratio) @ self.coefficients()
        return np.asarray(np.sqrt(np.maximum(v2, 0.0)), dtype=np.float64)

    def folded(
        self, speed: FloatArray, flow_ratio: FloatArray, vib_mm_s: FloatArray, forget: float
    ) -> VibrationBaseline:
        """The baseline with the samples added after forgetting (noise not refreshed)."""
        phi = vibration_features(speed, flow_ratio)
        info, rhs, weight = rls_fold(self.info, self.rhs, self.weight, phi, vib_mm_s * vib_mm_s, forget)
        return VibrationBaseline(info, rhs, weight, self.noise_mm_s)


def cavitation_factor(npsh_ratio: npt.ArrayLike) -> FloatArray:
    """Vibration multiplier 1 + 2 (1 - ratio / 1.3) below NPSHa / NPSHr = 1.3, else 1 (inf or NaN: 1)."""
    r = _f64(npsh_ratio)
    short = np.where(np.isfinite(r), np.clip(1.0 - r / NPSH_MARGIN_RATIO, 0.0, 1.0), 0.0)
    return np.asarray(1.0 + CAVITATION_GAIN * short, dtype=np.float64)


def vibration_mm_s(
    speed: npt.ArrayLike,
    flow_ratio: npt.ArrayLike,
    coefficients: Sequence[float],
    excess_mm_s: float = 0.0,
    npsh_ratio: npt.ArrayLike = math.inf,
) -> FloatArray:
    """Vibration RMS in mm/s: sqrt(max(phi . a, 0) + (excess s)^2) x `cavitation_factor`.

    Args:
        speed: Relative speed s.
        flow_ratio: r = q / q_BEP at that speed.
        coefficients: (a0 ... a5) in (mm/s)^2.
        excess_mm_s: Vibration above the baseline at rated speed (root-sum-square), mm/s.
        npsh_ratio: NPSHa / NPSHr.
    """
    s = _f64(speed)
    v2 = vibration_features(s, flow_ratio) @ _f64(coefficients)
    v2 = np.maximum(v2, 0.0) + (excess_mm_s * np.atleast_1d(s)) ** 2
    out = np.sqrt(v2) * cavitation_factor(npsh_ratio)
    return np.asarray(out.reshape(np.broadcast(s, _f64(flow_ratio), _f64(npsh_ratio)).shape), dtype=np.float64)


# --------------------------------------------------------------------------------------------
# Temperatures
# --------------------------------------------------------------------------------------------


def bearing_features(speed: npt.ArrayLike, flow_ratio: npt.ArrayLike) -> FloatArray:
    """Regressors of the bearing rise (n, 3): (s, s^2, s^2 (r - 1)^2)."""
    s = np.maximum(np.atleast_1d(_f64(speed)), 0.0)
    d2 = (np.atleast_1d(_f64(flow_ratio)) - 1.0) ** 2
    s, d2 = np.broadcast_arrays(s, d2)
    return np.column_stack([s, s * s, s * s * d2])


def bearing_load(
    speed: npt.ArrayLike, flow_ratio: npt.ArrayLike, shape: Sequence[float] = GENERIC_BEARING_LOAD
) -> FloatArray:
    """Friction-heat load L = c0 s + c1 s^2 (1 + c2 (r - 1)^2) (1 at rated speed and the BEP)."""
    c0, c1, c2 = (float(c) for c in shape)
    s = np.maximum(_f64(speed), 0.0)
    d2 = (_f64(flow_ratio) - 1.0) ** 2
    return np.asarray(c0 * s + c1 * s * s * (1.0 + c2 * d2), dtype=np.float64)


def bearing_prior(rise_k: float, shape: Sequence[float] = GENERIC_BEARING_LOAD) -> tuple[float, float, float]:
    """Regression coefficients (R c0, R c1, R c1 c2) of a rise R with load ``shape``."""
    c0, c1, c2 = (float(c) for c in shape)
    return (rise_k * c0, rise_k * c1, rise_k * c1 * c2)


def bearing_shape(fit: RlsFit, rise_k: float = DATASHEET_BEARING_RISE_K) -> tuple[float, float, float]:
    """Load shape (c0, c1, c2) of a learnt bearing rise fit; the generic shape if it is not physical.

    The fit's coefficients (b0, b1, b2) give R = b0 + b1, c0 = b0 / R, c1 = b1 / R, c2 = b2 / b1;
    the ridge pulls undetermined directions towards the generic shape at rise ``rise_k``, and c2 is
    kept within [0, `MAX_RADIAL_GAIN`].
    """
    if fit.weight <= 0:
        return GENERIC_BEARING_LOAD
    b0, b1, b2 = (float(b) for b in fit.coefficients(bearing_prior(rise_k), BEARING_STIFFNESS))
    total = b0 + b1
    if not (math.isfinite(total) and total > 0 and b1 > 0 and b0 >= 0 and math.isfinite(b2)):
        return GENERIC_BEARING_LOAD
    return (b0 / total, b1 / total, float(np.clip(b2 / b1, 0.0, MAX_RADIAL_GAIN)))


def rated_current_a(spec: PumpSpec) -> float:
    """Nameplate current of a pump's motor in A: P_rated / (eta sqrt(3) V pf)."""
    return spec.motor_rated_w / (
        spec.motor_efficiency * math.sqrt(3.0) * spec.motor_voltage_v * spec.motor_power_factor
    )


def winding_load(current_a: npt.ArrayLike, rated_a: float) -> FloatArray:
    """Copper-loss load of a winding, (I / I_rated)^2 (-)."""
    i = _f64(current_a) / rated_a
    return np.asarray(i * i, dtype=np.float64)


def temperature_c(ambient_c: npt.ArrayLike, rise_k: float, load: npt.ArrayLike) -> FloatArray:
    """Steady temperature in degC: ambient + R L."""
    return np.asarray(_f64(ambient_c) + rise_k * _f64(load), dtype=np.float64)


# --------------------------------------------------------------------------------------------
# Seal and strainer
# --------------------------------------------------------------------------------------------


def seal_features(suction_bar: npt.ArrayLike) -> FloatArray:
    """Regressors of the seal leak (n, 2): (1, p) with p the seal chamber gauge pressure in bar."""
    p = np.atleast_1d(_f64(suction_bar))
    return np.column_stack([np.ones_like(p), p])


def seal_leak_l_h(fit: RlsFit, suction_bar: npt.ArrayLike) -> FloatArray:
    """Learnt seal leak in L/h at seal chamber pressures in bar g (0 where nothing is known)."""
    return np.asarray(seal_features(suction_bar) @ fit.coefficients((0.0, 0.0)), dtype=np.float64)


def strainer_dp_pa(k_pa_s2_m6: float, flow_m3s: npt.ArrayLike) -> FloatArray:
    """Strainer loss in Pa: k q^2 for forward flow (k in Pa s^2 / m^6), 0 otherwise."""
    q = np.maximum(_f64(flow_m3s), 0.0)
    return np.asarray(k_pa_s2_m6 * q * q, dtype=np.float64)


# --------------------------------------------------------------------------------------------
# What-if condition
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MachineCondition:
    """The current condition of one pump, learnt from its history or generic (no history).

    Attributes:
        vibration_mm2_s2: Drive-end vibration coefficients (a0 ... a5) of v^2, (mm/s)^2.
        vibration_excess_mm_s: Vibration above that baseline at rated speed (root-sum-square), mm/s.
        bearing_rise_k: Drive-end bearing rise over ambient at rated speed and the BEP, K.
        bearing_load_shape: Friction-heat load shape (c0, c1, c2).
    """

    vibration_mm2_s2: tuple[float, ...] = GENERIC_VIBRATION
    vibration_excess_mm_s: float = 0.0
    bearing_rise_k: float = DATASHEET_BEARING_RISE_K
    bearing_load_shape: tuple[float, float, float] = GENERIC_BEARING_LOAD

    def __post_init__(self) -> None:
        """Check sizes, finiteness and signs."""
        if len(self.vibration_mm2_s2) != VIB_FEATURES or not all(math.isfinite(a) for a in self.vibration_mm2_s2):
            raise ConditionError(f"machine condition: vibration_mm2_s2 needs {VIB_FEATURES} finite values")
        if len(self.bearing_load_shape) != BEARING_FEATURES or not all(
            math.isfinite(c) and c >= 0 for c in self.bearing_load_shape
        ):
            raise ConditionError(
                f"machine condition: bearing_load_shape needs 3 values >= 0, got {self.bearing_load_shape}"
            )
        for name in ("vibration_excess_mm_s", "bearing_rise_k"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConditionError(f"machine condition: {name} must be a number >= 0, got {value}")


def predicted_vibration_mm_s(
    speed: float, flow_ratio: float, npsh_ratio: float, running: bool, condition: MachineCondition
) -> float:
    """Steady drive-end vibration RMS (mm/s) at an operating point (`vibration_mm_s`); 0 when stopped.

    Args:
        speed: Relative speed.
        flow_ratio: Flow over the BEP flow at that speed.
        npsh_ratio: NPSHa / NPSHr (inf when there is no NPSHr curve).
        running: Whether the pump runs.
        condition: The machine's learnt condition.
    """
    if not running:
        return 0.0
    v = vibration_mm_s(speed, flow_ratio, condition.vibration_mm2_s2, condition.vibration_excess_mm_s, npsh_ratio)
    return float(v)


def predicted_bearing_c(
    speed: float, flow_ratio: float, running: bool, condition: MachineCondition, ambient_c: float
) -> float:
    """Steady drive-end bearing temperature (degC): ambient + R L(s, r); ambient when stopped."""
    if not running:
        return ambient_c
    load = bearing_load(speed, flow_ratio, condition.bearing_load_shape)
    return float(temperature_c(ambient_c, condition.bearing_rise_k, load))
