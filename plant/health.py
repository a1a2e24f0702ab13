"""Pump and motor health physics, and the hidden degradation modes that drive it.

Everything here is pure and vectorised over pumps (arrays of shape ``(..., P)``), in SI units
except where a name says otherwise (``_c`` degrees Celsius, ``_mm_s`` vibration velocity). The
models are deliberately simple, each a closed form a reader can check:

- **Bearing temperature** follows a first-order lag, dT/dt = (T_ss - T) / tau, towards
  T_ss = T_ambient + rise, where the rise is friction heat times a thermal resistance: it grows
  with speed (s^n, n drawn per pump), with radial load away from the best-efficiency point
  (heavier on the low-flow side), with bearing wear (1 + g d^m, gain and exponent drawn per
  pump) and falls as warmer (seasonal) ambient thins the oil: x (1 - kappa (T_ambient - 20)).
  Stepping is exact for inputs held over a step: T' = T_ss + (T - T_ss) exp(-dt / tau).
- **Vibration** velocity RMS (mm/s) is the root sum of squares of imbalance (~ s^2),
  misalignment (~ s), a resonance of the rotor near its critical speed ratio (a single
  degree-of-freedom amplification, drawn per pump), hydraulic excitation that is least at the
  BEP and grows faster on the low-flow side than in run-out, a recirculation knee below a
  per-pump onset flow, bearing defects (0.15 + 7 d^2, ISO zone D at d = 1) and cavitation noise.
- **Motor** input power is shaft power plus fixed and load-squared losses that give the rated
  efficiency at rated load; current is P / (sqrt(3) V pf(load)). The **winding** follows a
  first-order lag towards ambient + rise x (f + (1 - f) (I / I_rated)^2) / (1 - cooling loss),
  with the iron-loss share f drawn per pump.
- **Seal leakage** is a weep that grows with seal damage and with a power (drawn per pump, near
  one half) of the seal chamber (suction) pressure.
- **Cavitation** starts when NPSHa / NPSHr falls below 1.3: vibration rises, and the head drops
  by 3 % at NPSHa = NPSHr (the NPSH3 definition) and steeply below.

Degradation modes (`Mode`) have an onset, a progression law (`severity`) and a functional
failure where the severity reaches 1. By default a fault's severity follows the clock; with
stress wear (opt-in per fault) it follows a damage clock (`damage_clock`) that runs at a rate
(`stress_rate`) set by how hard the pump is driven, (s / s_ref)^p with a per-mode exponent
(`STRESS_EXPONENT`), and stands still while the pump is stopped. `ModeInfo` gives each mode's physical magnitude at
failure (impeller diameter loss, NPSHr rise, seal leak, cooling loss, strainer loss, leak size).

Every machine's constants (`HealthParams`) are drawn per pump from wide priors in
`health_params_for`; none of them, nor these forms, are known to the twin, which learns its own
condition models from the readings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Literal

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray
from scipy.signal import lfilter

from pumptwin.twin.assets import PumpSpec
from pumptwin.twin.errors import PumptwinError

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

Law = Literal["linear", "exponential", "step"]
LAWS: tuple[Law, ...] = ("linear", "exponential", "step")
EXPONENTIAL_RATE = 4.0
"""Shape k of the accelerating law s(x) = (exp(k x) - 1) / (exp(k) - 1)."""

CAVITATION_ONSET_RATIO = 1.3
"""NPSHa / NPSHr below which cavitation begins (incipient cavitation margin)."""
NPSH3_HEAD_DROP = 0.03
"""Head drop at NPSHa = NPSHr: the NPSH3 definition."""
MAX_HEAD_DROP = 0.5
IDLE_VIBRATION_MM_S = 0.05
"""Vibration a stopped pump's sensor reads (neighbouring machines, floor)."""
NDE_WEIGHTS = (0.8, 0.6, 0.7, 0.7)
"""NDE share of imbalance, misalignment, hydraulic and cavitation vibration (DE = 1)."""
DE_TO_NDE_BEARING = 0.3
"""Share of a DE bearing defect's vibration seen at the NDE bearing."""
SEAL_REFERENCE_PA = 1e5
"""Seal chamber gauge pressure at which seal leak rates are stated (1 bar)."""
SEAL_MIN_PRESSURE_PA = 1e4


class HealthError(PumptwinError, ValueError):
    """Invalid health parameters or degradation settings; the message names the value."""


class Mode(StrEnum):
    """Degradation modes of the plant."""

    BEARING_WEAR = "bearing_wear"
    IMPELLER_WEAR = "impeller_wear"
    CAVITATION = "cavitation"
    SEAL_FAILURE = "seal_failure"
    MOTOR_OVERHEATING = "motor_overheating"
    STRAINER_CLOG = "strainer_clog"
    LEAK = "leak"


@dataclass(frozen=True, slots=True)
class ModeInfo:
    """What a mode's severity 1 (functional failure) means physically.

    Attributes:
        magnitude: Default magnitude at failure, in ``unit``.
        unit: Unit of the magnitude as written in scenario files and labels.
        si_factor: Multiply a magnitude in ``unit`` by this for SI.
        trips: Whether the protection trips the pump at functional failure by default.
        law: Default progression law.
        meaning: What the magnitude is.
    """

    magnitude: float
    unit: str
    si_factor: float
    trips: bool
    law: Law
    meaning: str


MODE_INFO: dict[Mode, ModeInfo] = {
    Mode.BEARING_WEAR: ModeInfo(1.0, "-", 1.0, True, "exponential", "bearing damage index (1: ISO zone D)"),
    Mode.IMPELLER_WEAR: ModeInfo(0.06, "-", 1.0, False, "linear", "loss of effective impeller diameter (fraction)"),
    Mode.CAVITATION: ModeInfo(1.0, "-", 1.0, False, "linear", "rise of NPSH required (fraction of NPSHr)"),
    Mode.SEAL_FAILURE: ModeInfo(60.0, "L/h", 1e-3 / 3600.0, True, "exponential", "seal leak at 1 bar g"),
    Mode.MOTOR_OVERHEATING: ModeInfo(0.7, "-", 1.0, True, "linear", "loss of motor cooling (fraction)"),
    Mode.STRAINER_CLOG: ModeInfo(1.5, "bar", 1e5, False, "exponential", "added strainer loss at BEP flow"),
    Mode.LEAK: ModeInfo(50.0, "m3/h", 1.0 / 3600.0, False, "step", "leak flow at the junction's initial pressure"),
}
"""Magnitude, unit and defaults of every mode."""

PUMP_MODES: tuple[Mode, ...] = tuple(m for m in Mode if m is not Mode.LEAK)
EFFICIENCY_LOSS_PER_WEAR = 1.3
"""Efficiency loss per unit impeller wear (6 % diameter loss costs about 8 % efficiency)."""


STRESS_EXPONENT: dict[Mode, float] = {
    Mode.BEARING_WEAR: 4.0,
    Mode.IMPELLER_WEAR: 3.0,
    Mode.CAVITATION: 4.0,
    Mode.SEAL_FAILURE: 2.0,
    Mode.MOTOR_OVERHEATING: 3.0,
    Mode.STRAINER_CLOG: 1.0,
}
"""Default exponent p of each pump mode's damage rate (s / s_ref)^p under stress wear.

Bearing fatigue life goes as load^-3 (L10) per revolution, with a radial load that is partly
hydraulic (~ s^2) and partly static; erosive impeller wear as the relative velocity cubed;
cavitation erosion steeply with the NPSH deficit that grows with speed; seal face wear with
pressure times velocity; winding insulation ageing with the temperature the load's losses raise;
strainer fouling with the volume pumped through it.
"""


def stress_rate(speed: npt.ArrayLike, reference_speed: float, exponent: float) -> FloatArray:
    """Rate of a fault's damage clock relative to real time: (s / s_ref)^p while turning, 0 when stopped.

    Args:
        speed: Actual relative shaft speeds (any shape); <= 0 is stopped.
        reference_speed: Relative speed at which the clock runs at real time (> 0).
        exponent: Exponent p (>= 0).

    Returns:
        Rates with the shape of ``speed`` (dimensionless).

    Raises:
        HealthError: A reference speed that is not > 0 or an exponent that is not >= 0.
    """
    if not (math.isfinite(reference_speed) and reference_speed > 0):
        raise HealthError(f"stress reference speed must be > 0, got {reference_speed}")
    if not (math.isfinite(exponent) and exponent >= 0):
        raise HealthError(f"stress exponent must be >= 0, got {exponent}")
    s = np.asarray(speed, dtype=np.float64)
    turning = s > 0
    ratio = np.where(turning, s, 0.0) / reference_speed
    return np.asarray(np.where(turning, ratio**exponent, 0.0), dtype=np.float64)


def damage_clock(
    clock0_s: float, t_s: npt.ArrayLike, rate: npt.ArrayLike, dt_s: float, onset_s: float
) -> tuple[FloatArray, float]:
    """A fault's effective (damage) time at the start of each of K steps, and after the last.

    Before the onset the clock keeps real time (there is no damage yet); from the first step at or
    after the onset it advances by ``rate * dt_s`` per step, so at a constant rate of 1 it equals
    the real time and `severity` of the clock equals `severity` of the time.

    Args:
        clock0_s: Effective time at the start of the first step, s.
        t_s: (K,) real times of the steps' starts, s.
        rate: (K,) rate of the clock over each step (`stress_rate`).
        dt_s: Step, s.
        onset_s: The fault's onset, s.

    Returns:
        ((K,) effective times at each step's start in s, effective time after the last step in s).
    """
    t = np.asarray(t_s, dtype=np.float64)
    inc = np.where(t >= onset_s, np.asarray(rate, dtype=np.float64) * dt_s, dt_s)
    ends = clock0_s + np.cumsum(inc)
    starts = np.concatenate([[clock0_s], ends[:-1]]) if t.size else np.zeros(0)
    return np.asarray(starts, dtype=np.float64), float(ends[-1]) if t.size else float(clock0_s)


def severity(t_s: npt.ArrayLike, onset_s: float, failure_s: float, law: Law) -> FloatArray:
    """Degradation severity in [0, 1]: 0 before onset, 1 at functional failure and after.

    Args:
        t_s: Times in s (any shape).
        onset_s: Onset time in s.
        failure_s: Functional failure time in s (>= onset; equal only for the step law).
        law: ``linear``; ``exponential`` (accelerating, (exp(4x) - 1) / (exp(4) - 1) of the
            elapsed fraction x); ``step`` (1 from onset).

    Returns:
        Severities with the shape of ``t_s``.

    Raises:
        HealthError: Unknown law, or failure before onset.
    """
    t = np.asarray(t_s, dtype=np.float64)
    if law not in LAWS:
        raise HealthError(f"unknown progression law {law!r}; use one of {LAWS}")
    if failure_s < onset_s or (failure_s == onset_s and law != "step"):
        raise HealthError(f"failure at {failure_s} s must come after onset at {onset_s} s")
    if law == "step":
        return np.where(t >= onset_s, 1.0, 0.0)
    x = np.clip((t - onset_s) / (failure_s - onset_s), 0.0, 1.0)
    if law == "linear":
        return x
    return np.expm1(EXPONENTIAL_RATE * x) / math.expm1(EXPONENTIAL_RATE)


# --------------------------------------------------------------------------------------------
# Parameters, state, inputs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class HealthParams:
    """Constants of P pumps and motors, arrays of shape (P,) except the time constants.

    Attributes:
        motor_rated_w: Motor rated output in W.
        motor_voltage_v: Line voltage in V.
        motor_efficiency: Efficiency at rated load (fraction).
        motor_power_factor: Power factor at rated load.
        imbalance_mm_s: Imbalance vibration at rated speed, DE bearing, mm/s.
        misalignment_mm_s: Misalignment vibration at rated speed, DE bearing, mm/s.
        hydraulic_mm_s: Hydraulic vibration at 30 % off BEP, rated speed, DE bearing, mm/s.
        bearing_rise_de_k: DE bearing temperature rise over ambient, new, rated speed, BEP, K.
        bearing_rise_nde_k: NDE bearing rise, K.
        winding_rise_k: Winding temperature rise at rated current, full cooling, K.
        seal_leak_m3s: Weep of a new seal at 1 bar g, m3/s.
        shutoff_power_w: Shaft power at zero flow and rated speed, W.
        resonance_mm_s: Resonance vibration per unit of amplification above 1 at rated speed, mm/s.
        critical_speed: First critical speed over rated speed (-).
        damping: Damping ratio of the rotor's resonance (-).
        recirculation_mm_s: Recirculation vibration per 10 % of BEP flow below its onset, rated speed, mm/s.
        recirculation_onset: Flow ratio below which suction recirculation starts (-).
        low_flow_asymmetry: Hydraulic excitation on the low-flow side over the run-out side (-).
        bearing_speed_exponent: Exponent n of the bearing rise in speed (-).
        radial_gain: Radial load growth per squared distance from the BEP (-).
        damage_heat_gain: Relative bearing heat per damage index to the power ``damage_heat_exponent``.
        damage_heat_exponent: Exponent of the damage heat term (-).
        ambient_coupling_per_k: Relative fall of the bearing rise per K of ambient above 20 degC, 1/K.
        winding_fixed_share: Share of the winding rise present at no load (iron losses) (-).
        seal_exponent: Exponent of the seal leak in the chamber pressure (-).
        tau_bearing_s: Bearing thermal time constant, s.
        tau_winding_s: Winding thermal time constant, s.
    """

    motor_rated_w: FloatArray
    motor_voltage_v: FloatArray
    motor_efficiency: FloatArray
    motor_power_factor: FloatArray
    imbalance_mm_s: FloatArray
    misalignment_mm_s: FloatArray
    hydraulic_mm_s: FloatArray
    bearing_rise_de_k: FloatArray
    bearing_rise_nde_k: FloatArray
    winding_rise_k: FloatArray
    seal_leak_m3s: FloatArray
    shutoff_power_w: FloatArray
    resonance_mm_s: FloatArray
    critical_speed: FloatArray
    damping: FloatArray
    recirculation_mm_s: FloatArray
    recirculation_onset: FloatArray
    low_flow_asymmetry: FloatArray
    bearing_speed_exponent: FloatArray
    radial_gain: FloatArray
    damage_heat_gain: FloatArray
    damage_heat_exponent: FloatArray
    ambient_coupling_per_k: FloatArray
    winding_fixed_share: FloatArray
    seal_exponent: FloatArray
    tau_bearing_s: float = 2400.0
    tau_winding_s: float = 1800.0

    def __post_init__(self) -> None:
        """Check shapes, positivity and time constants."""
        arrays = [f.name for f in fields(self) if not f.name.startswith("tau")]
        shape = np.shape(self.motor_rated_w)
        for name in arrays:
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if value.shape != shape or not np.all(np.isfinite(value)) or np.any(value < 0):
                raise HealthError(f"health parameter {name}: needs finite values >= 0 of shape {shape}")
        for name in ("motor_rated_w", "motor_voltage_v", "motor_efficiency", "motor_power_factor", "critical_speed"):
            if np.any(np.asarray(getattr(self, name)) <= 0):
                raise HealthError(f"health parameter {name}: must be > 0")
        if np.any(np.asarray(self.motor_efficiency) > 1) or np.any(np.asarray(self.motor_power_factor) > 1):
            raise HealthError("motor efficiency and power factor must be fractions <= 1")
        for name in ("damping", "recirculation_onset", "winding_fixed_share", "seal_exponent"):
            if np.any(np.asarray(getattr(self, name)) <= 0) or np.any(np.asarray(getattr(self, name)) >= 1):
                raise HealthError(f"health parameter {name}: must be in (0, 1)")
        if not (self.tau_bearing_s > 0 and self.tau_winding_s > 0):
            raise HealthError("thermal time constants must be > 0 s")

    @property
    def size(self) -> int:
        """Number of pumps P."""
        return int(np.size(self.motor_rated_w))


def health_params_for(pumps: Sequence[PumpSpec], rng: np.random.Generator) -> HealthParams:
    """Parameters of the registry's pumps, each drawn from a wide prior (the spread between machines).

    Args:
        pumps: Pump and motor data from the registry.
        rng: Random generator (the spread is drawn from it).

    Returns:
        Parameters of shape (P,); the thermal time constants are drawn once for the fleet.
    """
    n = len(pumps)

    def arr(attr: str) -> FloatArray:
        return np.array([getattr(p, attr) for p in pumps], dtype=np.float64)

    return HealthParams(
        motor_rated_w=arr("motor_rated_w"),
        motor_voltage_v=arr("motor_voltage_v"),
        motor_efficiency=arr("motor_efficiency"),
        motor_power_factor=arr("motor_power_factor"),
        imbalance_mm_s=rng.uniform(0.4, 1.6, n),
        misalignment_mm_s=rng.uniform(0.2, 1.2, n),
        hydraulic_mm_s=rng.uniform(0.6, 2.0, n),
        bearing_rise_de_k=rng.normal(36.0, 6.0, n).clip(20.0, 55.0),
        bearing_rise_nde_k=rng.normal(30.0, 6.0, n).clip(15.0, 48.0),
        winding_rise_k=rng.normal(75.0, 8.0, n).clip(55.0, 95.0),
        seal_leak_m3s=rng.uniform(0.01, 0.2, n) * 1e-3 / 3600.0,
        shutoff_power_w=rng.uniform(0.3, 0.45, n) * arr("bep_shaft_power_w"),
        resonance_mm_s=rng.uniform(0.2, 1.0, n),
        critical_speed=rng.uniform(1.3, 2.0, n),
        damping=rng.uniform(0.08, 0.3, n),
        recirculation_mm_s=rng.uniform(0.3, 1.5, n),
        recirculation_onset=rng.uniform(0.45, 0.7, n),
        low_flow_asymmetry=rng.uniform(1.0, 1.8, n),
        bearing_speed_exponent=rng.uniform(1.2, 2.0, n),
        radial_gain=rng.uniform(0.8, 2.5, n),
        damage_heat_gain=rng.uniform(0.8, 1.8, n),
        damage_heat_exponent=rng.uniform(1.5, 3.0, n),
        ambient_coupling_per_k=rng.uniform(0.0, 0.008, n),
        winding_fixed_share=rng.uniform(0.15, 0.35, n),
        seal_exponent=rng.uniform(0.35, 0.75, n),
        tau_bearing_s=float(rng.uniform(1800.0, 3600.0)),
        tau_winding_s=float(rng.uniform(1800.0, 3000.0)),
    )


@dataclass(frozen=True, slots=True, eq=False)
class HealthState:
    """Thermal state of P pumps, arrays of shape (..., P), degC.

    Attributes:
        bearing_de_c: Drive-end bearing temperature.
        bearing_nde_c: Non-drive-end bearing temperature.
        winding_c: Motor stator winding temperature.
    """

    bearing_de_c: FloatArray
    bearing_nde_c: FloatArray
    winding_c: FloatArray

    @classmethod
    def at_ambient(cls, ambient_c: npt.ArrayLike) -> HealthState:
        """Every machine cold, at ``ambient_c`` (degC, shape (P,))."""
        a = np.array(ambient_c, dtype=np.float64)
        return cls(a.copy(), a.copy(), a.copy())


@dataclass(frozen=True, slots=True, eq=False)
class HealthInputs:
    """What drives the health physics over a step, arrays of shape (..., P).

    Attributes:
        running: Pump turning under power.
        speed: Shaft speed relative to rated.
        flow_ratio: Flow over the BEP flow at the running speed (-).
        shaft_power_w: Pump shaft power in W.
        npsh_ratio: NPSH available over NPSH required at the impeller eye (inf: no data).
        suction_pressure_pa: Seal chamber (suction) gauge pressure in Pa.
        ambient_c: Ambient temperature in degC.
        bearing_de: DE bearing damage (0 new, 1 functional failure).
        bearing_nde: NDE bearing damage.
        impeller_wear: Loss of effective impeller diameter (fraction); adds imbalance.
        seal_damage_m3s: Extra seal leak from damage at 1 bar g, m3/s.
        cooling_loss: Fraction of motor cooling lost, in [0, 1).
    """

    running: BoolArray
    speed: FloatArray
    flow_ratio: FloatArray
    shaft_power_w: FloatArray
    npsh_ratio: FloatArray
    suction_pressure_pa: FloatArray
    ambient_c: FloatArray
    bearing_de: FloatArray
    bearing_nde: FloatArray
    impeller_wear: FloatArray
    seal_damage_m3s: FloatArray
    cooling_loss: FloatArray

    def at(self, k: int) -> HealthInputs:
        """The inputs of time step ``k`` (leading axis)."""
        return HealthInputs(*(np.asarray(getattr(self, f.name))[k] for f in fields(self)))


@dataclass(frozen=True, slots=True, eq=False)
class HealthReadings:
    """Health quantities the sensors see, arrays of shape (..., P).

    Attributes:
        bearing_de_c, bearing_nde_c, winding_c: Temperatures in degC.
        vib_de_mm_s, vib_nde_mm_s: Vibration velocity RMS in mm/s.
        motor_power_w: Electrical input power in W.
        motor_current_a: Line current in A.
        seal_leak_m3s: Seal leakage in m3/s.
        cavitation: Cavitation intensity in [0, 1].
    """

    bearing_de_c: FloatArray
    bearing_nde_c: FloatArray
    winding_c: FloatArray
    vib_de_mm_s: FloatArray
    vib_nde_mm_s: FloatArray
    motor_power_w: FloatArray
    motor_current_a: FloatArray
    seal_leak_m3s: FloatArray
    cavitation: FloatArray


# --------------------------------------------------------------------------------------------
# Closed-form pieces
# --------------------------------------------------------------------------------------------


def first_order_step(temp_c: npt.ArrayLike, target_c: npt.ArrayLike, dt_s: float, tau_s: float) -> FloatArray:
    """Exact first-order lag over ``dt_s`` with the target held: T' = T_ss + (T - T_ss) exp(-dt / tau)."""
    a = math.exp(-dt_s / tau_s)
    target = np.asarray(target_c, dtype=np.float64)
    return np.asarray(target + (np.asarray(temp_c, dtype=np.float64) - target) * a, dtype=np.float64)


def first_order_series(temp0_c: FloatArray, targets_c: FloatArray, dt_s: float, tau_s: float) -> FloatArray:
    """Temperatures after each of K steps of `first_order_step`, in one IIR filter pass.

    Args:
        temp0_c: (P,) temperatures at the start in degC.
        targets_c: (K, P) steady-state targets held over each step in degC.
        dt_s: Step in s.
        tau_s: Time constant in s.

    Returns:
        (K, P) temperatures at the end of each step: y_k = a y_(k-1) + (1 - a) u_k, a = exp(-dt / tau).
    """
    a = math.exp(-dt_s / tau_s)
    zi = (a * np.asarray(temp0_c, dtype=np.float64))[None, :]
    y, _ = lfilter([1.0 - a], [1.0, -a], targets_c, axis=0, zi=zi)
    return np.asarray(y, dtype=np.float64)


def radial_load_factor(
    flow_ratio: npt.ArrayLike, gain: npt.ArrayLike = 1.5, low_flow_asymmetry: npt.ArrayLike = 1.0
) -> FloatArray:
    """Hydraulic radial load relative to the BEP, 1 + gain (a (q/q_BEP - 1))^2, a > 1 below the BEP only."""
    r = np.asarray(flow_ratio, dtype=np.float64)
    d = (r - 1.0) * np.where(r < 1.0, np.asarray(low_flow_asymmetry, dtype=np.float64), 1.0)
    return np.asarray(1.0 + np.asarray(gain) * d * d, dtype=np.float64)


def bearing_rise_k(  # noqa: PLR0913 - one closed form and its per-pump constants
    speed: npt.ArrayLike,
    flow_ratio: npt.ArrayLike,
    damage: npt.ArrayLike,
    rise_rated_k: npt.ArrayLike,
    *,
    speed_exponent: npt.ArrayLike = 1.5,
    radial_gain: npt.ArrayLike = 1.5,
    low_flow_asymmetry: npt.ArrayLike = 1.0,
    damage_gain: npt.ArrayLike = 1.2,
    damage_exponent: npt.ArrayLike = 2.0,
    ambient_c: npt.ArrayLike = 20.0,
    ambient_coupling_per_k: npt.ArrayLike = 0.0,
) -> FloatArray:
    """Steady bearing temperature rise over ambient in K from friction heat.

    rise = rise_rated s^n (0.6 + 0.4 radial load) (1 + g d^m) max(1 - kappa (T_ambient - 20), 0.5),
    0 when stopped; the defaults (n = 1.5, g = 1.2, m = 2, kappa = 0) are a mid-range machine.
    """
    s = np.maximum(np.asarray(speed, dtype=np.float64), 0.0)
    d = np.maximum(np.asarray(damage, dtype=np.float64), 0.0)
    load = 0.6 + 0.4 * radial_load_factor(flow_ratio, radial_gain, low_flow_asymmetry)
    heat = 1.0 + np.asarray(damage_gain) * d ** np.asarray(damage_exponent)
    oil = np.maximum(1.0 - np.asarray(ambient_coupling_per_k) * (np.asarray(ambient_c) - 20.0), 0.5)
    rise = np.asarray(rise_rated_k) * s ** np.asarray(speed_exponent) * load * heat * oil
    return np.asarray(rise, dtype=np.float64)


def hydraulic_excitation(flow_ratio: npt.ArrayLike, low_flow_asymmetry: npt.ArrayLike = 1.0) -> FloatArray:
    """Hydraulic vibration relative to its value at 30 % off BEP: x^2 / (1 + x^2 / 6) (7 / 6), x = a (r - 1) / 0.3.

    Zero at the BEP, growing in the recirculation (low flow, a >= 1 there) and run-out zones (a = 1),
    saturating at 7.
    """
    r = np.asarray(flow_ratio, dtype=np.float64)
    x = (r - 1.0) / 0.3 * np.where(r < 1.0, np.asarray(low_flow_asymmetry, dtype=np.float64), 1.0)
    return np.asarray(x * x / (1.0 + x * x / 6.0) * (1.0 + 1.0 / 6.0), dtype=np.float64)


def resonance_amplification(speed: npt.ArrayLike, critical_speed: npt.ArrayLike, damping: npt.ArrayLike) -> FloatArray:
    """Single degree-of-freedom amplification 1 / sqrt((1 - u^2)^2 + (2 zeta u)^2), u = s / s_critical."""
    u = np.maximum(np.asarray(speed, dtype=np.float64), 0.0) / np.asarray(critical_speed, dtype=np.float64)
    z = np.asarray(damping, dtype=np.float64)
    return np.asarray(1.0 / np.sqrt((1.0 - u * u) ** 2 + (2.0 * z * u) ** 2), dtype=np.float64)


def recirculation_knee(flow_ratio: npt.ArrayLike, onset: npt.ArrayLike) -> FloatArray:
    """Suction recirculation intensity: 0 above the onset flow ratio, +1 per 10 % of BEP flow below, at most 3."""
    r = np.asarray(flow_ratio, dtype=np.float64)
    return np.asarray(np.clip((np.asarray(onset) - r) / 0.1, 0.0, 3.0), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class VibrationShape:
    """Per-pump constants of the resonance and low-flow vibration terms (scalars or arrays (P,)).

    The defaults switch both terms off (no resonance, no recirculation knee, symmetric excitation).

    Attributes:
        resonance_mm_s: Resonance vibration per unit of amplification above 1, rated speed, mm/s.
        critical_speed: First critical speed over rated speed.
        damping: Damping ratio of that resonance.
        recirculation_mm_s: Recirculation vibration per 10 % of BEP flow below the onset, mm/s.
        recirculation_onset: Flow ratio at which recirculation starts.
        low_flow_asymmetry: Hydraulic excitation on the low-flow side over the run-out side.
    """

    resonance_mm_s: npt.ArrayLike = 0.0
    critical_speed: npt.ArrayLike = 2.0
    damping: npt.ArrayLike = 0.2
    recirculation_mm_s: npt.ArrayLike = 0.0
    recirculation_onset: npt.ArrayLike = 0.5
    low_flow_asymmetry: npt.ArrayLike = 1.0

    @classmethod
    def of(cls, params: HealthParams, weight: float = 1.0) -> VibrationShape:
        """The shape of ``params``' pumps, with the resonance and recirculation amplitudes times ``weight``."""
        return cls(
            weight * params.resonance_mm_s,
            params.critical_speed,
            params.damping,
            weight * params.recirculation_mm_s,
            params.recirculation_onset,
            params.low_flow_asymmetry,
        )


def vibration_rms_mm_s(  # noqa: PLR0913 - one closed form and its causes
    speed: npt.ArrayLike,
    flow_ratio: npt.ArrayLike,
    running: npt.ArrayLike,
    imbalance_mm_s: npt.ArrayLike,
    misalignment_mm_s: npt.ArrayLike,
    hydraulic_mm_s: npt.ArrayLike,
    bearing_damage: npt.ArrayLike,
    cavitation: npt.ArrayLike,
    impeller_wear: npt.ArrayLike = 0.0,
    shape: VibrationShape | None = None,
) -> FloatArray:
    """Bearing housing vibration velocity RMS in mm/s, the root sum of squares of its causes.

    Args:
        speed: Relative shaft speed.
        flow_ratio: Flow over BEP flow at the running speed.
        running: Pump running; a stopped pump reads `IDLE_VIBRATION_MM_S`.
        imbalance_mm_s: Imbalance at rated speed (grows as s^2 and with impeller wear).
        misalignment_mm_s: Misalignment at rated speed (grows as s).
        hydraulic_mm_s: Hydraulic excitation at 30 % off BEP, rated speed (grows as s^2).
        bearing_damage: Bearing damage d; adds (0.15 + 7 d^2) s.
        cavitation: Cavitation intensity in [0, 1]; adds 4 c s^2.
        impeller_wear: Impeller diameter loss; uneven wear raises imbalance by (1 + 10 w).
        shape: Resonance (amplitude x (amplification - 1) s^2) and low-flow terms (recirculation
            amplitude x knee x s^2, asymmetric excitation); None: neither.
    """
    sh = shape if shape is not None else VibrationShape()
    s = np.maximum(np.asarray(speed, dtype=np.float64), 0.0)
    d = np.asarray(bearing_damage, dtype=np.float64)
    s2 = s * s
    imb = np.asarray(imbalance_mm_s) * s2 * (1.0 + 10.0 * np.asarray(impeller_wear))
    mis = np.asarray(misalignment_mm_s) * s
    hyd = np.asarray(hydraulic_mm_s) * s2 * hydraulic_excitation(flow_ratio, sh.low_flow_asymmetry)
    res = np.asarray(sh.resonance_mm_s) * s2 * (resonance_amplification(s, sh.critical_speed, sh.damping) - 1.0)
    rec = np.asarray(sh.recirculation_mm_s) * s2 * recirculation_knee(flow_ratio, sh.recirculation_onset)
    brg = (0.15 + 7.0 * d * d) * s
    cav = 4.0 * np.asarray(cavitation) * s2
    total = np.sqrt(imb * imb + mis * mis + hyd * hyd + res * res + rec * rec + brg * brg + cav * cav)
    return np.asarray(np.where(np.asarray(running, dtype=bool), total, IDLE_VIBRATION_MM_S), dtype=np.float64)


def cavitation_intensity(npsh_ratio: npt.ArrayLike) -> FloatArray:
    """Cavitation intensity in [0, 1]: 0 above NPSHa/NPSHr = 1.3, 0.6 at 1, 1 at 0.8 and below."""
    r = np.asarray(npsh_ratio, dtype=np.float64)
    return np.asarray(np.clip((CAVITATION_ONSET_RATIO - r) / 0.5, 0.0, 1.0), dtype=np.float64)


def cavitation_head_drop(npsh_ratio: npt.ArrayLike) -> FloatArray:
    """Fractional head drop from cavitation: 0 above 1.3, 3 % at NPSHa = NPSHr, +60 % per unit below, max 50 %."""
    r = np.asarray(npsh_ratio, dtype=np.float64)
    above = NPSH3_HEAD_DROP * (np.clip(CAVITATION_ONSET_RATIO - r, 0.0, 0.3) / 0.3) ** 2
    below = NPSH3_HEAD_DROP + 0.6 * np.maximum(1.0 - r, 0.0)
    return np.asarray(np.clip(np.where(r >= 1.0, above, below), 0.0, MAX_HEAD_DROP), dtype=np.float64)


def motor_input(
    shaft_power_w: npt.ArrayLike,
    rated_w: npt.ArrayLike,
    efficiency: npt.ArrayLike,
    power_factor: npt.ArrayLike,
    voltage_v: npt.ArrayLike,
) -> tuple[FloatArray, FloatArray]:
    """Motor electrical input power (W) and line current (A) for a shaft power (W).

    Losses are fixed (35 %) and load-squared (65 %) parts chosen so that the motor has its rated
    efficiency at rated load; the power factor falls at light load. Zero shaft power draws nothing.

    Returns:
        (electrical power in W, current in A).
    """
    p = np.maximum(np.asarray(shaft_power_w, dtype=np.float64), 0.0)
    rated = np.asarray(rated_w, dtype=np.float64)
    c = 1.0 / np.asarray(efficiency, dtype=np.float64) - 1.0
    load = p / rated
    loss = rated * c * (0.35 + 0.65 * load * load)
    on = p > 0
    elec = np.where(on, p + loss, 0.0)
    pf = np.asarray(power_factor) * (1.0 - 0.45 * np.exp(-3.5 * load)) / (1.0 - 0.45 * math.exp(-3.5))
    current = np.where(on, elec / (math.sqrt(3.0) * np.asarray(voltage_v) * pf), 0.0)
    return np.asarray(elec, dtype=np.float64), np.asarray(current, dtype=np.float64)


def rated_current_a(params: HealthParams) -> FloatArray:
    """Rated line current of each motor in A."""
    _, current = motor_input(
        params.motor_rated_w,
        params.motor_rated_w,
        params.motor_efficiency,
        params.motor_power_factor,
        params.motor_voltage_v,
    )
    return current


def winding_rise_k(
    current_ratio: npt.ArrayLike,
    cooling_loss: npt.ArrayLike,
    rise_rated_k: npt.ArrayLike,
    fixed_share: npt.ArrayLike = 0.25,
) -> FloatArray:
    """Steady winding rise over ambient in K: rise (f + (1 - f) (I/I_rated)^2) / (1 - cooling loss); 0 at I = 0."""
    i = np.asarray(current_ratio, dtype=np.float64)
    f = np.asarray(fixed_share, dtype=np.float64)
    loss = np.clip(np.asarray(cooling_loss, dtype=np.float64), 0.0, 0.95)
    rise = np.asarray(rise_rated_k) * (f + (1.0 - f) * i * i) / (1.0 - loss)
    return np.asarray(np.where(i > 0, rise, 0.0), dtype=np.float64)


def seal_leak_m3s(
    base_m3s: npt.ArrayLike,
    damage_m3s: npt.ArrayLike,
    suction_pressure_pa: npt.ArrayLike,
    exponent: npt.ArrayLike = 0.5,
) -> FloatArray:
    """Seal leakage in m3/s: (new weep + damage leak) x (chamber gauge pressure / 1 bar)^e, floored at 0.1 bar."""
    p = np.maximum(np.asarray(suction_pressure_pa, dtype=np.float64), SEAL_MIN_PRESSURE_PA)
    q = (np.asarray(base_m3s) + np.asarray(damage_m3s)) * (p / SEAL_REFERENCE_PA) ** np.asarray(exponent)
    return np.asarray(q, dtype=np.float64)


def strainer_dp_pa(flow_m3s: npt.ArrayLike, bep_flow_m3s: npt.ArrayLike, dp_at_bep_pa: npt.ArrayLike) -> FloatArray:
    """Strainer pressure loss in Pa, quadratic in flow: dp_BEP (q / q_BEP)^2 (0 for reverse or no flow)."""
    r = np.maximum(np.asarray(flow_m3s, dtype=np.float64), 0.0) / np.asarray(bep_flow_m3s)
    return np.asarray(np.asarray(dp_at_bep_pa) * r * r, dtype=np.float64)


# --------------------------------------------------------------------------------------------
# Stepping
# --------------------------------------------------------------------------------------------


def _bearing_rise(
    speed: FloatArray, inputs: HealthInputs, damage: npt.ArrayLike, rise_k: FloatArray, params: HealthParams
) -> FloatArray:
    return bearing_rise_k(
        speed,
        inputs.flow_ratio,
        damage,
        rise_k,
        speed_exponent=params.bearing_speed_exponent,
        radial_gain=params.radial_gain,
        low_flow_asymmetry=params.low_flow_asymmetry,
        damage_gain=params.damage_heat_gain,
        damage_exponent=params.damage_heat_exponent,
        ambient_c=inputs.ambient_c,
        ambient_coupling_per_k=params.ambient_coupling_per_k,
    )


def steady_state(inputs: HealthInputs, params: HealthParams) -> HealthState:
    """Temperatures the machines would settle at if the inputs were held (degC)."""
    running = np.asarray(inputs.running, dtype=bool)
    speed = np.where(running, inputs.speed, 0.0)
    amb = np.asarray(inputs.ambient_c, dtype=np.float64)
    de = amb + _bearing_rise(speed, inputs, inputs.bearing_de, params.bearing_rise_de_k, params)
    nde = amb + _bearing_rise(speed, inputs, inputs.bearing_nde, params.bearing_rise_nde_k, params)
    _, current = motor_input(
        np.where(running, inputs.shaft_power_w, 0.0),
        params.motor_rated_w,
        params.motor_efficiency,
        params.motor_power_factor,
        params.motor_voltage_v,
    )
    wind = amb + winding_rise_k(
        current / rated_current_a(params), inputs.cooling_loss, params.winding_rise_k, params.winding_fixed_share
    )
    return HealthState(de, nde, wind)


def step(state: HealthState, inputs: HealthInputs, params: HealthParams, dt_s: float) -> HealthState:
    """Advance the thermal state by ``dt_s`` seconds with ``inputs`` held (exact for a first-order lag).

    Args:
        state: Temperatures at the start, (P,) in degC.
        inputs: Inputs over the step, (P,).
        params: Machine constants.
        dt_s: Step in s (> 0).

    Returns:
        Temperatures at the end of the step.
    """
    if not dt_s > 0:
        raise HealthError(f"time step must be > 0 s, got {dt_s}")
    target = steady_state(inputs, params)
    return HealthState(
        first_order_step(state.bearing_de_c, target.bearing_de_c, dt_s, params.tau_bearing_s),
        first_order_step(state.bearing_nde_c, target.bearing_nde_c, dt_s, params.tau_bearing_s),
        first_order_step(state.winding_c, target.winding_c, dt_s, params.tau_winding_s),
    )


def advance(
    state: HealthState, inputs: HealthInputs, params: HealthParams, dt_s: float
) -> tuple[HealthState, HealthState]:
    """Run `step` over K steps at once (inputs (K, P)): the same numbers, one filter pass per quantity.

    Returns:
        (temperatures at the start of each step, (K, P); final state after the last step, (P,)).
    """
    target = steady_state(inputs, params)
    ends = [
        first_order_series(state.bearing_de_c, target.bearing_de_c, dt_s, params.tau_bearing_s),
        first_order_series(state.bearing_nde_c, target.bearing_nde_c, dt_s, params.tau_bearing_s),
        first_order_series(state.winding_c, target.winding_c, dt_s, params.tau_winding_s),
    ]
    starts = [
        np.concatenate([np.asarray(s0, dtype=np.float64)[None, :], e[:-1]], axis=0)
        for s0, e in zip((state.bearing_de_c, state.bearing_nde_c, state.winding_c), ends, strict=True)
    ]
    return HealthState(*starts), HealthState(*(e[-1].copy() for e in ends))


def readings(state: HealthState, inputs: HealthInputs, params: HealthParams) -> HealthReadings:
    """What the machines show at the start of a step: temperatures from ``state``, the rest from ``inputs``.

    Shapes follow the inputs, (P,) or (K, P).
    """
    running = np.asarray(inputs.running, dtype=bool)
    speed = np.where(running, inputs.speed, 0.0)
    cav = np.where(running, cavitation_intensity(inputs.npsh_ratio), 0.0)
    w = NDE_WEIGHTS
    vib_de = vibration_rms_mm_s(
        speed,
        inputs.flow_ratio,
        running,
        params.imbalance_mm_s,
        params.misalignment_mm_s,
        params.hydraulic_mm_s,
        inputs.bearing_de,
        cav,
        inputs.impeller_wear,
        VibrationShape.of(params),
    )
    vib_nde = vibration_rms_mm_s(
        speed,
        inputs.flow_ratio,
        running,
        w[0] * params.imbalance_mm_s,
        w[1] * params.misalignment_mm_s,
        w[2] * params.hydraulic_mm_s,
        np.asarray(inputs.bearing_nde) + DE_TO_NDE_BEARING * np.asarray(inputs.bearing_de),
        w[3] * cav,
        inputs.impeller_wear,
        VibrationShape.of(params, w[2]),
    )
    power, current = motor_input(
        np.where(running, inputs.shaft_power_w, 0.0),
        params.motor_rated_w,
        params.motor_efficiency,
        params.motor_power_factor,
        params.motor_voltage_v,
    )
    leak = seal_leak_m3s(params.seal_leak_m3s, inputs.seal_damage_m3s, inputs.suction_pressure_pa, params.seal_exponent)
    return HealthReadings(
        bearing_de_c=np.asarray(state.bearing_de_c, dtype=np.float64),
        bearing_nde_c=np.asarray(state.bearing_nde_c, dtype=np.float64),
        winding_c=np.asarray(state.winding_c, dtype=np.float64),
        vib_de_mm_s=vib_de,
        vib_nde_mm_s=vib_nde,
        motor_power_w=power,
        motor_current_a=current,
        seal_leak_m3s=leak,
        cavitation=np.asarray(cav, dtype=np.float64),
    )
