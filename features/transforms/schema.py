"""Feature names, windows and column groups: the fixed lists the Feast definitions share.

Imports nothing heavy, so `feast apply` (which imports `features/definitions.py`) stays light.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.units import DAY_S, HOUR_S
from pumptwin.twin.units import M3H_PER_M3S as _M3H_PER_M3S  # noqa: F401 - the transforms' unit factor
from pumptwin.twin.units import PA_PER_BAR as _PA_PER_BAR  # noqa: F401 - the transforms' unit factor

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

KEY_COLUMNS = ("pump_id", "event_timestamp")
"""Entity key and timestamp of every feature row."""
GOOD_QUALITIES = frozenset({"good", "substituted"})
"""Quality flags whose readings are used."""
MEASURE_COLUMNS: dict[str, str] = {
    "SPEED": "speed_rpm",
    "FLOW": "flow_m3h",
    "SUCT_PRESS": "suct_press_bar",
    "DISCH_PRESS": "disch_press_bar",
    "MOTOR_POWER": "motor_power_kw",
    "MOTOR_CURRENT": "motor_current_a",
    "VIB_DE_RMS": "vib_de_rms_mm_s",
    "VIB_NDE_RMS": "vib_nde_rms_mm_s",
    "BRG_DE_TEMP": "brg_de_temp_c",
    "BRG_NDE_TEMP": "brg_nde_temp_c",
    "MOTOR_WINDING_TEMP": "winding_temp_c",
    "SEAL_LEAK": "seal_leak_l_h",
    "STRAINER_DP": "strainer_dp_bar",
}
"""Pump measures with rolling statistics, and their column stem (snake case with unit)."""
ALL_SAMPLE_MEASURES = frozenset({"BRG_DE_TEMP", "BRG_NDE_TEMP", "MOTOR_WINDING_TEMP", "SEAL_LEAK"})
"""Measures whose statistics use stopped intervals too (the others use running intervals only)."""
STATS = ("mean", "std", "max", "kurt", "slope_per_h")
"""Rolling statistics per measure and window."""
RESIDUAL_COLUMNS = (
    "percent_bep",
    "head_residual_m",
    "head_residual_pct",
    "power_residual_kw",
    "power_residual_pct",
    "efficiency_residual",
    "npsh_available_m",
    "npsh_margin_m",
    "brg_de_rise_norm_k",
    "brg_nde_rise_norm_k",
    "winding_rise_norm_k",
    "vib_de_baseline_ratio",
    "vib_nde_baseline_ratio",
)
"""Physics residuals at the row's cadence interval."""
DEFAULT_CADENCE_S = 600.0
DEFAULT_SHORT_WINDOW_S = HOUR_S
DEFAULT_LONG_WINDOW_S = DAY_S
DEFAULT_EFFICIENCY = 0.75
"""Pump efficiency assumed without an efficiency curve (EPANET's global default)."""
RUNNING_MASK_FRACTION = 0.5
"""An interval whose mean STATUS reaches this counts as running for the process statistics."""
RUNNING_RESIDUAL_FRACTION = 0.99
"""An interval needs this mean STATUS for residuals (running throughout)."""
MIN_SPEED = 0.05
"""Relative speed below which a pump counts as stopped."""
VIB_BASELINE_S = 3 * 86400.0
"""Length of each pump's vibration reference period, s."""
BEP_BIN_PCT = 10.0
"""Width of the %BEP bins of the vibration baseline, %."""
MAX_BEP_BIN = 20
"""Last %BEP bin (200 % and above)."""
MIN_BASELINE_BINS = 6
"""Fewest intervals in a %BEP bin for its own baseline median."""
VIB_SPEED_EXPONENT = 1.5
"""Speed exponent of the expected vibration."""
AMBIENT_CARRY_S = 3600.0
"""How long a station ambient reading is carried forward, s."""
_NS = 1_000_000_000
_NS_PER_H = 3.6e12
_MIN_KURT_SAMPLES = 4
_WHOLE_TOLERANCE = 1e-9


class FeatureError(PumptwinError, ValueError):
    """Invalid readings or feature settings; the message names the value."""


# --------------------------------------------------------------------------------------------
# Column names
# --------------------------------------------------------------------------------------------


def window_label(window_s: float) -> str:
    """Short label of a window length: ``1h``, ``24h``, ``30min``, ``45s``.

    Raises:
        FeatureError: A window that is not a positive whole number of seconds.
    """
    if not (math.isfinite(window_s) and window_s > 0 and float(window_s).is_integer()):
        raise FeatureError(f"window must be a positive whole number of seconds, got {window_s}")
    s = int(window_s)
    if s % 3600 == 0:
        return f"{s // 3600}h"
    if s % 60 == 0:
        return f"{s // 60}min"
    return f"{s}s"


def window_columns(window_s: float) -> list[str]:
    """Feature columns of one window: measure statistics, running fraction and residual means."""
    w = window_label(window_s)
    cols = [f"{stem}_{stat}_{w}" for stem in MEASURE_COLUMNS.values() for stat in STATS]
    cols.append(f"running_frac_{w}")
    cols.extend(f"{r}_mean_{w}" for r in RESIDUAL_COLUMNS)
    return cols


def feature_groups(
    short_window_s: float = DEFAULT_SHORT_WINDOW_S, long_window_s: float = DEFAULT_LONG_WINDOW_S
) -> dict[str, list[str]]:
    """Feature columns by group: ``rolling_short``, ``rolling_long`` and ``physics`` (residuals now).

    Raises:
        FeatureError: Equal or invalid windows.
    """
    if window_label(short_window_s) == window_label(long_window_s):
        raise FeatureError(f"short and long windows must differ, both are {short_window_s} s")
    return {
        "rolling_short": window_columns(short_window_s),
        "rolling_long": window_columns(long_window_s),
        "physics": list(RESIDUAL_COLUMNS),
    }


def feature_names(
    short_window_s: float = DEFAULT_SHORT_WINDOW_S, long_window_s: float = DEFAULT_LONG_WINDOW_S
) -> list[str]:
    """Every feature column `pump_features` produces for these windows, in output order."""
    groups = feature_groups(short_window_s, long_window_s)
    return [*groups["physics"], *groups["rolling_short"], *groups["rolling_long"]]


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """Every column of ``frame`` except the keys (`KEY_COLUMNS`)."""
    return [c for c in frame.columns if c not in KEY_COLUMNS]


def empty_features(
    short_window_s: float = DEFAULT_SHORT_WINDOW_S, long_window_s: float = DEFAULT_LONG_WINDOW_S
) -> pd.DataFrame:
    """A feature frame with no rows and every column, typed."""
    data: dict[str, object] = {
        "pump_id": pd.Series([], dtype=object),
        "event_timestamp": pd.Series([], dtype="datetime64[us, UTC]"),
    }
    data.update({c: pd.Series([], dtype=np.float64) for c in feature_names(short_window_s, long_window_s)})
    return pd.DataFrame(data)
