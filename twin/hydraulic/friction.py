"""The Darcy friction factor, as the hydraulic solver uses it (EPANET 2.2).

f = 64 / Re in laminar flow (Re <= 2000); Swamee-Jain in turbulent flow (Re >= 4000),
f = 0.25 / log10(e / 3.7 + 5.74 / Re^0.9)^2 with e the relative roughness; and between them
Dunlop's cubic interpolation (EPANET's), which joins 64 / Re at Re 2000 to Swamee-Jain and its
slope at Re 4000. The solver's compiled kernel (`twin.hydraulic._kernels._friction_factor`)
evaluates the same formula in terms of flow; a test checks that both agree. The calibration
(`twin.health`), the surge model (`twin.surge`) and the leak model use this function.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

LAMINAR_RE = 2000.0
"""Reynolds number up to which flow is laminar (f = 64 / Re)."""
TURBULENT_RE = 4000.0
"""Reynolds number from which Swamee-Jain applies."""
_SJ_A = 5.74
_LN10_HALF = 2.0 / math.log(10.0)


def swamee_jain(reynolds: npt.ArrayLike, relative_roughness: float) -> FloatArray:
    """Swamee-Jain friction factor (-) at Reynolds numbers > 0, whatever the regime."""
    re = np.asarray(reynolds, dtype=np.float64)
    return np.asarray(0.25 / np.log10(relative_roughness / 3.7 + _SJ_A / re**0.9) ** 2, dtype=np.float64)


def _dunlop(re: FloatArray, relative_roughness: float) -> FloatArray:
    """EPANET's cubic between 64 / Re at Re 2000 and Swamee-Jain (value and slope) at Re 4000."""
    y2 = relative_roughness / 3.7 + _SJ_A / TURBULENT_RE**0.9
    y3 = -_LN10_HALF * math.log(y2)
    fa = 1.0 / (y3 * y3)
    fb = (2.0 + 2.0 * 0.9 * _SJ_A / TURBULENT_RE**0.9 * -_LN10_HALF / (y2 * y3)) * fa
    r = re / LAMINAR_RE
    x1 = 7.0 * fa - fb
    x2 = 0.128 - 17.0 * fa + 2.5 * fb
    x3 = -0.128 + 13.0 * fa - 2.0 * fb
    x4 = 0.032 - 3.0 * fa + 0.5 * fb
    return np.asarray(x1 + r * (x2 + r * (x3 + r * x4)), dtype=np.float64)


def darcy_friction_factor(reynolds: npt.ArrayLike, relative_roughness: float) -> FloatArray:
    """Darcy friction factor (-): 64 / Re up to Re 2000, Dunlop's cubic to 4000, Swamee-Jain above.

    Args:
        reynolds: Reynolds number(s) (-), >= 0; the sign is ignored.
        relative_roughness: Roughness over diameter (-).

    Returns:
        The friction factor, shaped like ``reynolds``; 0 where Re = 0 (no flow, no loss).
    """
    re = np.abs(np.asarray(reynolds, dtype=np.float64))
    safe = np.maximum(re, 1.0)
    out = np.where(
        re <= LAMINAR_RE,
        64.0 / safe,
        np.where(re >= TURBULENT_RE, swamee_jain(np.maximum(safe, TURBULENT_RE), relative_roughness), 0.0),
    )
    between = (re > LAMINAR_RE) & (re < TURBULENT_RE)
    if np.any(between):
        out = np.where(between, _dunlop(re, relative_roughness), out)
    return np.asarray(np.where(re == 0.0, 0.0, out), dtype=np.float64)
