"""Metal-loss assessment of in-line inspection features: ASME B31G modified and DNV-RP-F101.

Every function is vectorised (numpy broadcasting) and works in SI: pressures and stresses in Pa
(gauge), lengths in m. Depths are metal loss measured from the original surface.

Methods (single, isolated, longitudinally oriented metal-loss defect under internal pressure only):

- **ASME B31G-2012, Level 1, Modified B31G (the "0.85 dL" method)**, Kiefner and Vieth's modified
  criterion (AGA PR-3-805, 1989) as written in ASME B31G-2012 (Level 1 evaluation)::

      S_flow = SMYS + 68.95 MPa (10 ksi)                     flow stress
      z      = L^2 / (D t)
      M      = sqrt(1 + 0.6275 z - 0.003375 z^2)   for z <= 50   (Folias bulging factor)
      M      = 0.032 z + 3.3                        for z >  50
      S_F    = S_flow (1 - 0.85 d/t) / (1 - 0.85 (d/t) / M)
      P_F    = 2 S_F t / D

  B31G-2012 also allows S_flow = 1.1 SMYS or (SMYS + SMTS)/2; ``flow_stress_pa`` takes
  any of them. The two branches of M do not meet at z = 50: the square root gives 4.8926, the
  line 4.9000 (0.15 % apart). A larger M lowers S_F, so P_F steps down slightly (under 0.05 %)
  as a defect grows past z = 50 and still never rises with length. This module keeps the
  standard's branches as written.
- **DNV-RP-F101 (October 2010), single longitudinal defect, internal pressure only**::

      Q   = sqrt(1 + 0.31 (L / sqrt(D t))^2)                 length correction factor
      P_f = 2 t SMTS (1 - d/t) / (D - t) / (1 - (d/t) / Q)   capacity (failure) pressure
      Part B (allowable stress):     P_corr = F1 F2 P_f,  F1 = 0.9 (modelling), F2 = design factor
      Part A (partial safety factors, DNVGL-RP-F101 May 2017 Table 3-8):
          (d/t)* = (d/t)_meas + eps_d StD[d/t]
          P_corr = gamma_m 2 t f_u / (D - t) (1 - gamma_d (d/t)*) / (1 - gamma_d (d/t)* / Q)

Safe pressure used by the twin: B31G ``P_F / safety_factor``; DNV ``0.9 P_f / safety_factor``
(Part B with F2 = 1 / safety_factor; the default 1.39 is the design factor 0.72).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeAlias, runtime_checkable

import numpy as np
import numpy.typing as npt
import pandas as pd

from pumptwin.twin.errors import PumptwinError

FloatArray: TypeAlias = npt.NDArray[np.float64]
ArrayLike: TypeAlias = float | Sequence[float] | npt.NDArray[np.floating] | pd.Series
Method: TypeAlias = Literal["b31g_modified", "dnv_f101"]
SafetyClass: TypeAlias = Literal["low", "medium", "high"]
Inspection: TypeAlias = Literal["relative", "absolute"]

METHODS: tuple[str, ...] = ("b31g_modified", "dnv_f101")
"""Assessment methods `AssessmentSettings.method` accepts."""
B31G_FLOW_MARGIN_PA = 68.95e6
"""Modified B31G flow stress margin above SMYS (10 ksi), Pa."""
B31G_Z_SPLIT = 50.0
"""z = L^2/(D t) at which B31G-2012 switches the Folias factor from the square root to the line."""
DNV_MODELLING_FACTOR = 0.9
"""DNV-RP-F101 Part B modelling factor F1."""
ASSESSMENT_COLUMNS: tuple[str, ...] = (
    "failure_b31g_pa",
    "failure_dnv_pa",
    "failure_pa",
    "safe_pa",
    "erf",
    "category",
    "category_reason",
)
"""Columns `assess_features` adds to the feature frame."""
CATEGORIES: tuple[str, ...] = ("immediate", "scheduled", "monitor", "not assessed")
"""Repair categories, most urgent first."""

_REL_TOL = 1e-9  # pressure comparisons at a rule's boundary count as on it


class IntegrityError(PumptwinError, ValueError):
    """A defect, pipe or assessment setting that cannot be assessed; the message names the bad value."""


@runtime_checkable
class PipeStrength(Protocol):
    """What the assessment reads from a pipe (`pumptwin.twin.integrity.pipe.PipeProperties` has it)."""

    @property
    def smys_pa(self) -> float:
        """Specified minimum yield strength, Pa."""

    @property
    def smts_pa(self) -> float:
        """Specified minimum tensile strength, Pa."""

    @property
    def wall_m(self) -> float:
        """Nominal wall thickness, m."""

    @property
    def diameter_m(self) -> float:
        """Outside diameter, m."""


# --- validation ---------------------------------------------------------------------------------


def _array(name: str, value: ArrayLike) -> FloatArray:
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise IntegrityError(f"{name} must be numeric, got {value!r}") from exc


def _first_bad(values: FloatArray, bad: npt.NDArray[np.bool_]) -> float:
    return float(np.broadcast_to(values, bad.shape)[bad].flat[0])


def _require(name: str, values: FloatArray, ok: npt.NDArray[np.bool_], what: str) -> None:
    """Raise naming the first finite value that breaks ``ok`` (NaN passes: it stays NaN)."""
    bad = np.isfinite(values) & ~ok
    if np.any(bad):
        raise IntegrityError(f"{name} must be {what}, got {_first_bad(values, bad)!r}")
    if np.any(np.isinf(values)):
        raise IntegrityError(f"{name} must be finite, got {_first_bad(values, np.isinf(values))!r}")


def _geometry(
    depth_m: ArrayLike, length_m: ArrayLike, wall_m: ArrayLike, diameter_m: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    d = _array("depth_m", depth_m)
    length = _array("length_m", length_m)
    t = _array("wall_m", wall_m)
    diameter = _array("diameter_m", diameter_m)
    _require("wall_m", t, t > 0, "> 0")
    _require("diameter_m", diameter, diameter > 0, "> 0")
    _require("length_m", length, length >= 0, ">= 0")
    _require("depth_m", d, d >= 0, ">= 0")
    try:
        dd, tt, d_b = np.broadcast_arrays(diameter, t, d)
        np.broadcast_shapes(d.shape, length.shape, t.shape, diameter.shape)
    except ValueError as exc:
        raise IntegrityError(
            f"depth_m, length_m, wall_m, diameter_m do not broadcast: shapes {d.shape}, {length.shape}, "
            f"{t.shape}, {diameter.shape}"
        ) from exc
    _require("diameter_m", dd, dd > 2 * tt, "> 2 x wall_m")
    over = d_b > tt
    if np.any(over):
        raise IntegrityError(
            f"depth_m must not exceed the wall ({float(tt[over].flat[0])!r} m), got {float(d_b[over].flat[0])!r}"
        )
    return d, length, t, diameter


def _strength(name: str, value: ArrayLike) -> FloatArray:
    s = _array(name, value)
    _require(name, s, s > 0, "> 0")
    return s


# --- ASME B31G modified -------------------------------------------------------------------------


def folias_factor_b31g(length_m: ArrayLike, wall_m: ArrayLike, diameter_m: ArrayLike) -> FloatArray:
    """Folias bulging factor M of Modified B31G (ASME B31G-2012, Level 1), dimensionless.

    ``z = L^2 / (D t)``; ``M = sqrt(1 + 0.6275 z - 0.003375 z^2)`` for ``z <= 50``, else
    ``M = 0.032 z + 3.3``. At z = 50 the branches give 4.8926 and 4.9000 (the standard's branches
    do not meet; the step makes the failure pressure slightly lower just past z = 50).

    Args:
        length_m: Axial defect length L, m.
        wall_m: Wall thickness t, m.
        diameter_m: Outside diameter D, m.

    Returns:
        M (>= 1), broadcast over the inputs.
    """
    z = _array("length_m", length_m) ** 2 / (_array("diameter_m", diameter_m) * _array("wall_m", wall_m))
    short = np.sqrt(np.maximum(1.0 + 0.6275 * z - 0.003375 * z**2, 1.0))
    return np.asarray(np.where(z <= B31G_Z_SPLIT, short, 0.032 * z + 3.3), dtype=np.float64)


def b31g_modified_failure_pa(
    depth_m: ArrayLike,
    length_m: ArrayLike,
    wall_m: ArrayLike,
    diameter_m: ArrayLike,
    smys_pa: ArrayLike,
    *,
    flow_stress_pa: ArrayLike | None = None,
) -> FloatArray:
    """Failure pressure by ASME B31G-2012 Level 1, Modified B31G (0.85 dL), gauge Pa.

    ``S_flow = SMYS + 68.95 MPa``; ``S_F = S_flow (1 - 0.85 d/t) / (1 - 0.85 (d/t) / M)`` with the
    Folias factor M of `folias_factor_b31g`; ``P_F = 2 S_F t / D``. At zero depth P_F is the intact
    Barlow pressure at the flow stress, ``2 S_flow t / D``; it stays positive up to d = t. B31G
    itself is meant for depths up to 80 % of the wall; deeper defects are computed all the same
    (they are repaired by the depth rule anyway).

    Args:
        depth_m: Peak metal-loss depth d, m (0 <= d <= t).
        length_m: Axial length L, m (>= 0).
        wall_m: Wall thickness t, m (> 0).
        diameter_m: Outside diameter D, m (> 2 t).
        smys_pa: Specified minimum yield strength, Pa.
        flow_stress_pa: Flow stress to use instead of SMYS + 68.95 MPa (B31G-2012 also
            allows 1.1 SMYS and (SMYS + SMTS)/2), Pa.

    Returns:
        P_F, gauge Pa, broadcast over the inputs (NaN where an input is NaN).

    Raises:
        IntegrityError: a negative or over-wall depth, a negative length, a non-positive wall,
            diameter or strength, or a diameter not above twice the wall.
    """
    d, length, t, diameter = _geometry(depth_m, length_m, wall_m, diameter_m)
    smys = _strength("smys_pa", smys_pa)
    s_flow = smys + B31G_FLOW_MARGIN_PA if flow_stress_pa is None else _strength("flow_stress_pa", flow_stress_pa)
    m = folias_factor_b31g(length, t, diameter)
    x = d / t
    s_f = s_flow * (1.0 - 0.85 * x) / (1.0 - 0.85 * x / m)
    return np.asarray(2.0 * s_f * t / diameter, dtype=np.float64)


# --- DNV-RP-F101 --------------------------------------------------------------------------------


def length_correction_dnv(length_m: ArrayLike, wall_m: ArrayLike, diameter_m: ArrayLike) -> FloatArray:
    """DNV-RP-F101 length correction factor ``Q = sqrt(1 + 0.31 (L / sqrt(D t))^2)``, dimensionless.

    Args:
        length_m: Axial defect length L, m.
        wall_m: Wall thickness t, m.
        diameter_m: Outside diameter D, m.

    Returns:
        Q (>= 1), broadcast over the inputs.
    """
    length = _array("length_m", length_m)
    dt = _array("diameter_m", diameter_m) * _array("wall_m", wall_m)
    return np.asarray(np.sqrt(1.0 + 0.31 * length**2 / dt), dtype=np.float64)


def _dnv_ratio(x: FloatArray, q: FloatArray) -> FloatArray:
    """``(1 - x) / (1 - x / Q)``, 0 at x >= 1 (a through-wall defect holds no pressure)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = (1.0 - x) / (1.0 - x / q)
    return np.asarray(np.where(x >= 1.0, 0.0, np.maximum(ratio, 0.0)), dtype=np.float64)


def dnv_f101_failure_pa(
    depth_m: ArrayLike, length_m: ArrayLike, wall_m: ArrayLike, diameter_m: ArrayLike, smts_pa: ArrayLike
) -> FloatArray:
    """Capacity (failure) pressure of a single defect by DNV-RP-F101 (2010), gauge Pa.

    Longitudinal internal pressure only:
    ``P_f = 2 t SMTS (1 - d/t) / (D - t) / (1 - (d/t) / Q)`` with ``Q`` of `length_correction_dnv`.
    At zero depth P_f is the intact pressure ``2 t SMTS / (D - t)``; it falls to 0 at d = t. The RP
    covers depths up to 85 % of the wall; deeper ones are computed all the same.

    Args:
        depth_m: Peak metal-loss depth d, m (0 <= d <= t).
        length_m: Axial length L, m (>= 0).
        wall_m: Wall thickness t, m (> 0).
        diameter_m: Outside diameter D, m (> 2 t).
        smts_pa: Specified minimum tensile strength, Pa.

    Returns:
        P_f, gauge Pa, broadcast over the inputs (NaN where an input is NaN).

    Raises:
        IntegrityError: as `b31g_modified_failure_pa`.
    """
    d, length, t, diameter = _geometry(depth_m, length_m, wall_m, diameter_m)
    smts = _strength("smts_pa", smts_pa)
    q = length_correction_dnv(length, t, diameter)
    return np.asarray(2.0 * t * smts / (diameter - t) * _dnv_ratio(d / t, q), dtype=np.float64)


def dnv_f101_allowable_pa(
    depth_m: ArrayLike,
    length_m: ArrayLike,
    wall_m: ArrayLike,
    diameter_m: ArrayLike,
    smts_pa: ArrayLike,
    *,
    usage_factor: float = 0.72,
    modelling_factor: float = DNV_MODELLING_FACTOR,
) -> FloatArray:
    """Allowable (safe working) pressure by DNV-RP-F101 Part B, gauge Pa.

    ``P_corr = F1 F2 P_f``: F1 the modelling factor (0.9), F2 the operational usage factor (the
    design factor, 0.72 by default), P_f of `dnv_f101_failure_pa`.

    Args:
        depth_m: Peak metal-loss depth d, m.
        length_m: Axial length L, m.
        wall_m: Wall thickness t, m.
        diameter_m: Outside diameter D, m.
        smts_pa: Specified minimum tensile strength, Pa.
        usage_factor: F2, in (0, 1].
        modelling_factor: F1, in (0, 1].

    Returns:
        P_corr, gauge Pa.

    Raises:
        IntegrityError: a factor outside (0, 1], or inputs `dnv_f101_failure_pa` refuses.
    """
    for name, value in (("usage_factor", usage_factor), ("modelling_factor", modelling_factor)):
        if not 0.0 < value <= 1.0:
            raise IntegrityError(f"{name} must be in (0, 1], got {value!r}")
    failure = dnv_f101_failure_pa(depth_m, length_m, wall_m, diameter_m, smts_pa)
    return np.asarray(modelling_factor * usage_factor * failure, dtype=np.float64)


_SD_LOW, _SD_MID, _SD_MAX = 0.04, 0.08, 0.16  # StD[d/t] breakpoints of DNVGL-RP-F101 Table 3-8
_GAMMA_M: dict[tuple[str, str], float] = {
    ("low", "relative"): 0.90,
    ("medium", "relative"): 0.85,
    ("high", "relative"): 0.80,
    ("low", "absolute"): 0.94,
    ("medium", "absolute"): 0.88,
    ("high", "absolute"): 0.82,
}


def dnv_part_a_factors(
    safety_class: SafetyClass, inspection: Inspection, depth_sd_frac: float
) -> tuple[float, float, float]:
    """Partial safety factors of DNV-RP-F101 Part A: ``(gamma_m, gamma_d, epsilon_d)``.

    ``gamma_m`` by safety class and inspection kind (relative: 0.90 / 0.85 / 0.80, absolute:
    0.94 / 0.88 / 0.82 for low / medium / high). ``gamma_d`` and ``epsilon_d`` from the depth sizing
    standard deviation ``s = StD[d/t]`` (DNVGL-RP-F101 May 2017, Table 3-8)::

        low:     gamma_d = 1 + 4.0 s (s < 0.04); 1 + 5.5 s - 37.5 s^2 (0.04 <= s < 0.08); 1.2 (s >= 0.08)
        medium:  gamma_d = 1 + 4.6 s - 13.9 s^2
        high:    gamma_d = 1 + 4.3 s - 4.1 s^2
        epsilon_d = 0 (s <= 0.04); -1.33 + 37.5 s - 104.2 s^2 (0.04 < s <= 0.16)

    Args:
        safety_class: ``"low"``, ``"medium"`` or ``"high"``.
        inspection: ``"relative"`` (depth sized as a fraction of the wall, e.g. MFL) or ``"absolute"``.
        depth_sd_frac: StD[d/t], 0..0.16.

    Returns:
        ``(gamma_m, gamma_d, epsilon_d)``.

    Raises:
        IntegrityError: an unknown class or inspection kind, or a standard deviation outside 0..0.16.
    """
    key = (safety_class, inspection)
    if key not in _GAMMA_M:
        raise IntegrityError(
            "safety_class/inspection must be low|medium|high and relative|absolute, "
            f"got {safety_class!r}, {inspection!r}"
        )
    s = float(depth_sd_frac)
    if not 0.0 <= s <= _SD_MAX:
        raise IntegrityError(f"depth_sd_frac must be in [0, {_SD_MAX}] (DNV-RP-F101 Table 3-8), got {depth_sd_frac!r}")
    if safety_class == "low":
        gamma_d = 1.0 + 4.0 * s if s < _SD_LOW else (1.0 + 5.5 * s - 37.5 * s**2 if s < _SD_MID else 1.2)
    elif safety_class == "medium":
        gamma_d = 1.0 + 4.6 * s - 13.9 * s**2
    else:
        gamma_d = 1.0 + 4.3 * s - 4.1 * s**2
    epsilon_d = 0.0 if s <= _SD_LOW else -1.33 + 37.5 * s - 104.2 * s**2
    return _GAMMA_M[key], gamma_d, epsilon_d


def dnv_f101_part_a_pa(
    depth_m: ArrayLike,
    length_m: ArrayLike,
    wall_m: ArrayLike,
    diameter_m: ArrayLike,
    f_u_pa: ArrayLike,
    *,
    depth_sd_frac: float,
    safety_class: SafetyClass = "medium",
    inspection: Inspection = "relative",
) -> FloatArray:
    """Allowable corroded pipe pressure by DNV-RP-F101 Part A (partial safety factors), gauge Pa.

    ``(d/t)* = (d/t)_meas + eps_d StD[d/t]``;
    ``P_corr = gamma_m 2 t f_u / (D - t) (1 - gamma_d (d/t)*) / (1 - gamma_d (d/t)* / Q)``, 0 where
    ``gamma_d (d/t)* >= 1``. Factors from `dnv_part_a_factors`. The internal pressure at the defect
    (incidental minus external) must stay below P_corr.

    Args:
        depth_m: Measured peak depth d, m.
        length_m: Measured axial length L, m.
        wall_m: Wall thickness t, m.
        diameter_m: Outside diameter D, m.
        f_u_pa: Tensile strength for design, ``(SMTS - f_u,temp) alpha_U``, Pa.
        depth_sd_frac: StD[d/t] of the depth sizing (0.08 for +/-10 % of the wall at 80 %).
        safety_class: ``"low"``, ``"medium"`` or ``"high"``.
        inspection: ``"relative"`` or ``"absolute"``.

    Returns:
        P_corr, gauge Pa.

    Raises:
        IntegrityError: inputs `dnv_f101_failure_pa` or `dnv_part_a_factors` refuse.
    """
    d, length, t, diameter = _geometry(depth_m, length_m, wall_m, diameter_m)
    f_u = _strength("f_u_pa", f_u_pa)
    gamma_m, gamma_d, epsilon_d = dnv_part_a_factors(safety_class, inspection, depth_sd_frac)
    x_star = gamma_d * (d / t + epsilon_d * depth_sd_frac)
    q = length_correction_dnv(length, t, diameter)
    return np.asarray(gamma_m * 2.0 * t * f_u / (diameter - t) * _dnv_ratio(x_star, q), dtype=np.float64)


# --- settings and repair rules ------------------------------------------------------------------


def _check_fraction(name: str, value: float, *, low: float = 0.0, high: float = 1.0) -> None:
    if not (np.isfinite(value) and low < value <= high):
        raise IntegrityError(f"{name} must be in ({low:g}, {high:g}], got {value!r}")


@dataclass(frozen=True, slots=True)
class RepairRules:
    """An operator's repair rules: which metal-loss features are dug at once, on a schedule, or watched.

    Defaults, and where each comes from:

    - ``immediate_depth_frac = 0.80``: metal loss of 80 % of the wall or more. 49 CFR 195.452(h)(4)(i)
      lists "metal loss greater than 80 % of nominal wall regardless of dimensions" as an immediate
      repair condition; this rule also takes exactly 80 %.
    - ``immediate_pressure_ratio = 1.1``: a failure pressure at or below 1.1 x the operating pressure
      at the feature. 49 CFR 195.452(h)(4)(i) (hazardous liquids) makes a predicted burst pressure
      below the maximum operating pressure at the anomaly an immediate condition; the 1.1 margin is
      that of 49 CFR 192.933(d)(1)(i) (gas transmission, as amended in 2022: predicted failure
      pressure less than or equal to 1.1 times MAOP at the anomaly). Use 1.0 for the liquid rule as
      written.
    - ``scheduled_depth_frac = 0.50``: metal loss greater than 50 % of the wall, after the 180-day
      conditions of 49 CFR 195.452(h)(4)(iii) (general corrosion with a predicted metal loss greater
      than 50 % of nominal wall).
    - ``scheduled_erf = 1.0``: an estimated repair factor ERF = MAOP / safe pressure of 1 or more
      (the feature's safe pressure is below MAOP): common operator practice, as ILI vendors report it.

    Everything else is monitored.
    """

    immediate_depth_frac: float = 0.80
    immediate_pressure_ratio: float = 1.1
    scheduled_depth_frac: float = 0.50
    scheduled_erf: float = 1.0

    def __post_init__(self) -> None:
        """Check each threshold is in range and the immediate depth is not below the scheduled one."""
        _check_fraction("immediate_depth_frac", self.immediate_depth_frac)
        _check_fraction("scheduled_depth_frac", self.scheduled_depth_frac)
        if self.scheduled_depth_frac > self.immediate_depth_frac:
            raise IntegrityError(
                f"scheduled_depth_frac must not exceed immediate_depth_frac ({self.immediate_depth_frac!r}), "
                f"got {self.scheduled_depth_frac!r}"
            )
        _check_fraction("immediate_pressure_ratio", self.immediate_pressure_ratio, high=10.0)
        _check_fraction("scheduled_erf", self.scheduled_erf, high=10.0)


@dataclass(frozen=True, slots=True)
class AssessmentSettings:
    """How metal-loss features are assessed.

    Attributes:
        method: ``"b31g_modified"`` or ``"dnv_f101"``: the failure pressure that sets ``failure_pa``
            and the safe pressure.
        safety_factor: Failure over safe pressure; 1.39 is the design factor 0.72 (1 / 0.72).
            B31G: ``safe = P_F / safety_factor``; DNV Part B: ``safe = 0.9 P_f / safety_factor``.
        repair_rules: The operator's repair rules.
    """

    method: Method = "b31g_modified"
    safety_factor: float = 1.39
    repair_rules: RepairRules = field(default_factory=RepairRules)

    def __post_init__(self) -> None:
        """Check the method is known and the safety factor is finite and at least 1."""
        if self.method not in METHODS:
            raise IntegrityError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if not (np.isfinite(self.safety_factor) and self.safety_factor >= 1.0):
            raise IntegrityError(f"safety_factor must be finite and >= 1, got {self.safety_factor!r}")
        if not isinstance(self.repair_rules, RepairRules):
            raise IntegrityError(f"repair_rules must be a RepairRules, got {type(self.repair_rules).__name__}")


def _safe_from_failure(failure_pa: FloatArray, method: str, safety_factor: float) -> FloatArray:
    factor = DNV_MODELLING_FACTOR if method == "dnv_f101" else 1.0
    return np.asarray(factor * failure_pa / safety_factor, dtype=np.float64)


def safe_pressure_pa(
    depth_frac: ArrayLike,
    length_m: ArrayLike,
    wall_m: ArrayLike,
    diameter_m: ArrayLike,
    pipe: PipeStrength,
    settings: AssessmentSettings | None = None,
) -> FloatArray:
    """Safe pressure of metal-loss features by the configured method, gauge Pa.

    B31G modified: ``P_F / safety_factor``; DNV-RP-F101 Part B: ``0.9 P_f / safety_factor``.

    Args:
        depth_frac: Peak depth as a fraction of ``wall_m``, 0..1.
        length_m: Axial length, m.
        wall_m: Wall thickness, m.
        diameter_m: Outside diameter, m.
        pipe: The pipe's strengths (``smys_pa``, ``smts_pa``), Pa.
        settings: Method and safety factor (default `AssessmentSettings()`).

    Returns:
        Safe pressure, gauge Pa, broadcast over the inputs.

    Raises:
        IntegrityError: a depth fraction outside 0..1 or a geometry the methods refuse.
    """
    settings = settings or AssessmentSettings()
    frac = _array("depth_frac", depth_frac)
    _require("depth_frac", frac, (frac >= 0) & (frac <= 1), "in [0, 1]")
    t = _array("wall_m", wall_m)
    depth = frac * t
    if settings.method == "dnv_f101":
        failure = dnv_f101_failure_pa(depth, length_m, t, diameter_m, pipe.smts_pa)
    else:
        failure = b31g_modified_failure_pa(depth, length_m, t, diameter_m, pipe.smys_pa)
    return _safe_from_failure(failure, settings.method, settings.safety_factor)


def critical_depth_frac(
    length_m: ArrayLike,
    wall_m: ArrayLike,
    diameter_m: ArrayLike,
    pipe: PipeStrength,
    pressure_pa: ArrayLike,
    settings: AssessmentSettings | None = None,
    *,
    tol_frac: float = 1e-6,
) -> FloatArray:
    """Depth fraction at which a feature's safe pressure falls to ``pressure_pa`` (vectorised bisection).

    The safe pressure never rises with depth, so the answer is the root of
    ``safe_pressure_pa(x, ...) = pressure_pa`` on [0, 1]: 0.0 where even a sound wall is not safe at
    ``pressure_pa``, 1.0 where the feature stays safe through the whole wall (never critical).
    Growth uses it for the remaining life to the safe-pressure limit.

    Args:
        length_m: Axial length, m.
        wall_m: Wall thickness, m.
        diameter_m: Outside diameter, m.
        pipe: The pipe's strengths, Pa.
        pressure_pa: The pressure the feature must hold, gauge Pa (e.g. MAOP).
        settings: Method and safety factor (default `AssessmentSettings()`).
        tol_frac: Bisection tolerance on the depth fraction.

    Returns:
        Critical depth as a fraction of the wall, 0..1 (NaN where an input is NaN).

    Raises:
        IntegrityError: a non-positive tolerance, a negative pressure, or a geometry the methods refuse.
    """
    if not tol_frac > 0:
        raise IntegrityError(f"tol_frac must be > 0, got {tol_frac!r}")
    settings = settings or AssessmentSettings()
    pressure = _array("pressure_pa", pressure_pa)
    _require("pressure_pa", pressure, pressure >= 0, ">= 0")
    length, t, diameter, pressure = np.broadcast_arrays(
        _array("length_m", length_m), _array("wall_m", wall_m), _array("diameter_m", diameter_m), pressure
    )

    def safe(frac: FloatArray) -> FloatArray:
        return safe_pressure_pa(frac, length, t, diameter, pipe, settings)

    low = np.zeros(length.shape)
    high = np.ones(length.shape)
    safe_low, safe_high = safe(low), safe(high)
    for _ in range(int(np.ceil(np.log2(1.0 / tol_frac))) + 1):
        mid = 0.5 * (low + high)
        above = safe(mid) > pressure
        low = np.where(above, mid, low)
        high = np.where(above, high, mid)
    result = 0.5 * (low + high)
    result = np.where(safe_low <= pressure, 0.0, result)
    result = np.where(safe_high >= pressure, 1.0, result)
    nan = ~(np.isfinite(length) & np.isfinite(t) & np.isfinite(diameter) & np.isfinite(pressure))
    return np.asarray(np.where(nan, np.nan, result), dtype=np.float64)


# --- feature frames -----------------------------------------------------------------------------


def _per_row(name: str, value: float | FloatArray | Sequence[float] | pd.Series, n: int) -> FloatArray:
    arr = _array(name, np.asarray(value, dtype=np.float64))
    if arr.ndim == 0:
        return np.full(n, float(arr))
    if arr.shape != (n,):
        raise IntegrityError(f"{name} must be a scalar or one value per feature ({n}), got shape {arr.shape}")
    return arr


def _pipes_per_row(
    features: pd.DataFrame,
    pipes: Mapping[str, PipeStrength] | PipeStrength,
    pipe_ids: Sequence[str] | None,
) -> list[PipeStrength]:
    n = len(features)
    if isinstance(pipes, PipeStrength):
        return [pipes] * n
    if pipe_ids is None:
        if "pipe_id" not in features.columns:
            raise IntegrityError("pipes is a mapping by pipe id: give pipe_ids or a pipe_id column")
        pipe_ids = [str(p) for p in features["pipe_id"]]
    if len(pipe_ids) != n:
        raise IntegrityError(f"pipe_ids must have one id per feature ({n}), got {len(pipe_ids)}")
    missing = sorted({str(p) for p in pipe_ids} - {str(k) for k in pipes})
    if missing:
        raise IntegrityError(f"no pipe properties for pipe id {missing[0]!r} (known: {', '.join(map(str, pipes))})")
    return [pipes[str(p)] for p in pipe_ids]


def _pct(frac: float) -> str:
    return f"{100.0 * frac:.1f}".rstrip("0").rstrip(".")


def _mpa(pa: float) -> str:
    return f"{pa / 1e6:.2f} MPa"


def _categorise(
    depth: FloatArray,
    failure: FloatArray,
    safe: FloatArray,
    erf: FloatArray,
    maop: FloatArray,
    operating: FloatArray,
    rules: RepairRules,
) -> tuple[list[str], list[str]]:
    """Category and one readable reason per assessed row, the most urgent rule first."""
    categories: list[str] = []
    reasons: list[str] = []
    ratio = rules.immediate_pressure_ratio
    for d, pf, ps, e, mp, op in zip(depth, failure, safe, erf, maop, operating, strict=True):
        immediate: list[str] = []
        scheduled: list[str] = []
        if d >= rules.immediate_depth_frac:
            immediate.append(f"depth {_pct(d)} % of wall >= {_pct(rules.immediate_depth_frac)} %")
        if np.isfinite(op) and pf <= ratio * op * (1 + _REL_TOL):
            immediate.append(f"failure pressure {_mpa(pf)} <= {ratio:g} x operating pressure {_mpa(op)}")
        if d > rules.scheduled_depth_frac:
            scheduled.append(f"depth {_pct(d)} % of wall > {_pct(rules.scheduled_depth_frac)} %")
        if np.isfinite(e) and e >= rules.scheduled_erf * (1 - _REL_TOL):
            scheduled.append(f"ERF {e:.2f} >= {rules.scheduled_erf:g} (safe pressure {_mpa(ps)}, MAOP {_mpa(mp)})")
        if immediate:
            categories.append("immediate")
            reasons.append("; ".join(immediate))
        elif scheduled:
            categories.append("scheduled")
            reasons.append("; ".join(scheduled))
        else:
            categories.append("monitor")
            reasons.append(f"depth {_pct(d)} % of wall, ERF {e:.2f}: within the repair rules")
    return categories, reasons


def assess_features(
    features: pd.DataFrame,
    pipes: Mapping[str, PipeStrength] | PipeStrength,
    maop_pa: float | FloatArray | Sequence[float] | pd.Series,
    operating_pa: float | FloatArray | Sequence[float] | pd.Series,
    settings: AssessmentSettings | None = None,
    pipe_ids: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Assess every metal-loss feature of an ILI feature frame and give it a repair category.

    For each ``metal_loss`` row with a depth and a length: both failure pressures (B31G modified and
    DNV-RP-F101), the configured method's failure and safe pressure, the ERF (MAOP / safe pressure)
    and the category of the repair rules with the reason in one sentence. A row whose ``wall_m`` is
    missing or not positive is assessed on the pipe's nominal wall. Other rows (welds, dents, ...)
    and metal loss without depth or length get NaN pressures and ``not assessed``.

    Args:
        features: Canonical feature frame (``pumptwin.twin.integrity.ili.FEATURE_COLUMNS``); at least
            ``feature_type``, ``depth_frac``, ``length_m``, ``wall_m``.
        pipes: One pipe for every row, or pipe properties by pipe id (then ``pipe_ids`` or a
            ``pipe_id`` column says each row's pipe).
        maop_pa: MAOP at each feature (scalar or one per row), gauge Pa.
        operating_pa: Operating pressure at each feature (scalar or one per row), gauge Pa.
        settings: Method, safety factor and repair rules (default `AssessmentSettings()`).
        pipe_ids: Pipe id of each row, when ``pipes`` is a mapping.

    Returns:
        A copy of ``features`` plus `ASSESSMENT_COLUMNS`: ``failure_b31g_pa``, ``failure_dnv_pa``,
        ``failure_pa``, ``safe_pa`` (gauge Pa), ``erf``, ``category`` (`CATEGORIES`),
        ``category_reason``.

    Raises:
        IntegrityError: a missing column, a metal-loss depth outside 0..1, a negative length, an
            unknown pipe id, or MAOP / operating pressures of the wrong length.
    """
    settings = settings or AssessmentSettings()
    missing = [c for c in ("feature_type", "depth_frac", "length_m", "wall_m") if c not in features.columns]
    if missing:
        raise IntegrityError(f"features lacks column(s) {', '.join(missing)}")
    n = len(features)
    out = features.copy()
    maop = _per_row("maop_pa", maop_pa, n)
    operating = _per_row("operating_pa", operating_pa, n)
    row_pipes = _pipes_per_row(features, pipes, pipe_ids)

    depth = features["depth_frac"].to_numpy(dtype=np.float64, na_value=np.nan)
    length = features["length_m"].to_numpy(dtype=np.float64, na_value=np.nan)
    wall = features["wall_m"].to_numpy(dtype=np.float64, na_value=np.nan)
    is_metal = (features["feature_type"].astype(str) == "metal_loss").to_numpy()
    sized = is_metal & np.isfinite(depth) & np.isfinite(length)
    ids = features["feature_id"].astype(str).to_numpy() if "feature_id" in features.columns else np.arange(n)
    for name, values, ok, what in (
        ("depth_frac", depth, (depth >= 0) & (depth <= 1), "in [0, 1]"),
        ("length_m", length, length >= 0, ">= 0"),
    ):
        bad = sized & ~ok
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0])
            raise IntegrityError(f"{name} of feature {ids[i]} must be {what}, got {float(values[i])!r}")

    nominal = np.array([p.wall_m for p in row_pipes], dtype=np.float64)
    diameter = np.array([p.diameter_m for p in row_pipes], dtype=np.float64)
    smys = np.array([p.smys_pa for p in row_pipes], dtype=np.float64)
    smts = np.array([p.smts_pa for p in row_pipes], dtype=np.float64)
    t = np.where(np.isfinite(wall) & (wall > 0), wall, nominal)

    b31g = np.full(n, np.nan)
    dnv = np.full(n, np.nan)
    if np.any(sized):
        s = sized
        b31g[s] = b31g_modified_failure_pa(depth[s] * t[s], length[s], t[s], diameter[s], smys[s])
        dnv[s] = dnv_f101_failure_pa(depth[s] * t[s], length[s], t[s], diameter[s], smts[s])
    failure = dnv if settings.method == "dnv_f101" else b31g
    safe = _safe_from_failure(failure, settings.method, settings.safety_factor)
    with np.errstate(divide="ignore", invalid="ignore"):
        erf = np.where(sized, maop / safe, np.nan)

    category = np.full(n, "not assessed", dtype=object)
    reason = np.array(
        [
            f"feature type {ft!r} is not metal loss" if not m else "metal loss without a depth or a length"
            for ft, m in zip(features["feature_type"].astype(str), is_metal, strict=True)
        ],
        dtype=object,
    )
    if np.any(sized):
        cats, why = _categorise(
            depth[sized], failure[sized], safe[sized], erf[sized], maop[sized], operating[sized], settings.repair_rules
        )
        category[sized] = cats
        reason[sized] = why

    out["failure_b31g_pa"] = b31g
    out["failure_dnv_pa"] = dnv
    out["failure_pa"] = failure
    out["safe_pa"] = safe
    out["erf"] = erf
    out["category"] = pd.Series(category, index=out.index, dtype=object)
    out["category_reason"] = pd.Series(reason, index=out.index, dtype=object)
    return out
