"""The dig list: which metal-loss features to excavate, in what order and by when.

`dig_list` ranks the features an excavation crew has to visit: first every ``immediate`` feature
of the repair rules (most severe ERF first), then every ``scheduled`` feature and every feature
whose remaining life (`twin.integrity.growth.remaining_life_years`) ends within the horizon
(the time to the next inspection), by remaining life and then ERF. Each row says where the
feature is (chainage, girth weld and distance from it, clock position), how big it is, its safe
pressure and ERF, why it is on the list and the date to dig by:

- immediate: the day of the assessment (``as_of``);
- scheduled: within `SCHEDULED_RESPONSE_DAYS`, sooner when half the remaining life is shorter;
- on the list by growth alone: within half the remaining life (a factor of 2 on the growth forecast).

Example::

    dig = dig_list(assessed, life, horizon_years=5.0, as_of=run.date)
    dig[["rank", "feature_id", "chainage_m", "category", "dig_by", "reason"]]
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from pumptwin.twin.integrity.assessment import IntegrityError

SCHEDULED_RESPONSE_DAYS = 180.0
"""Days within which a scheduled feature is dug (the 180-day conditions of 49 CFR 195.452(h)(4)(iii))."""
LIFE_SAFETY_FACTOR = 2.0
"""A feature is dug within its remaining life over this factor."""
DEFAULT_HORIZON_YEARS = 5.0
"""Time to the next inspection: features whose remaining life ends sooner are on the list, years."""
DAYS_PER_YEAR = 365.25
"""Days of a year."""
MM_PER_M = 1e3
"""mm in one m."""
PA_PER_MPA = 1e6
"""Pa in one MPa."""
NO_GROWTH = "no growth"
"""The life limit of a feature that does not grow within the life cap (`twin.integrity.growth`)."""

DIG_COLUMNS = [
    "rank",
    "feature_id",
    "chainage_m",
    "clock_h",
    "depth_frac",
    "length_m",
    "safe_pa",
    "erf",
    "category",
    "remaining_life_years",
    "dig_by",
    "reason",
    "weld_number",
    "weld_distance_m",
    "pipe_id",
    "surface",
    "category_reason",
    "limit",
]
"""Columns of `dig_list` (weld, pipe, surface and category reason when the assessed frame has them, else
empty; ``limit`` the life limit of `twin.integrity.growth.remaining_life_years`)."""
_ORDER = {"immediate": 0, "scheduled": 1, "monitor": 2}


def clock_text(clock_h: float) -> str:
    """A clock position as an operator reads it (``4.5`` -> ``4:30``, ``0`` -> ``12:00``); ``?`` when unknown."""
    if not math.isfinite(clock_h):
        return "?"
    minutes = round((clock_h % 12.0) * 60.0) % 720
    hours = minutes // 60 or 12
    return f"{hours}:{minutes % 60:02d}"


def _location(row: pd.Series) -> str:
    """Where the crew finds the feature: weld, distance from it, clock position and chainage."""
    parts = []
    weld, from_weld = row.get("weld_number", np.nan), row.get("weld_distance_m", np.nan)
    if isinstance(weld, int | float) and math.isfinite(weld) and math.isfinite(float(from_weld)):
        parts.append(f"{float(from_weld):.2f} m downstream of girth weld {int(weld)}")
    parts.append(f"at {clock_text(float(row['clock_h']))} o'clock")
    chainage = float(row["chainage_m"])
    where = f"chainage {chainage / 1e3:.3f} km" if math.isfinite(chainage) else "chainage unknown"
    pipe = row.get("pipe_id", "")
    if isinstance(pipe, str) and pipe:
        where += f", pipe {pipe}"
    return ", ".join(parts) + f" ({where})"


def _reason(row: pd.Series, as_of: pd.Timestamp) -> str:
    """One sentence an excavation crew can act on."""
    surface = row.get("surface", "")
    kind = f"{surface} metal loss" if isinstance(surface, str) and surface else "metal loss"
    wall = float(row.get("wall_m", np.nan))
    depth = float(row["depth_frac"])
    size = f"{100 * depth:.0f} % of wall"
    if math.isfinite(wall):
        size += f" ({depth * wall * MM_PER_M:.1f} mm of {wall * MM_PER_M:.1f} mm)"
    size += f", {float(row['length_m']) * MM_PER_M:.0f} mm long"
    life = float(row["remaining_life_years"])
    limit = row.get("limit", "")
    if not math.isfinite(life):
        life_text = "remaining life not estimated"
    elif limit == NO_GROWTH:
        life_text = f"remaining life over {life:.0f} years (no growth measured)"
    elif isinstance(limit, str) and limit:
        life_text = f"remaining life {life:.1f} years ({limit})"
    else:
        life_text = f"remaining life {life:.1f} years"
    days = (pd.Timestamp(row["dig_by"]) - as_of) / pd.Timedelta(days=1)
    action = "dig now and reduce the pressure until repaired" if days <= 0 else f"dig within {days:.0f} days"
    why = str(row.get("category_reason", "")) or "remaining life within the horizon"
    return (
        f"{str(row['category']).capitalize()}: {kind} {size}, {_location(row)}; safe pressure "
        f"{float(row['safe_pa']) / PA_PER_MPA:.2f} MPa, ERF {float(row['erf']):.2f}; {why}; {life_text}; {action}."
    )


def dig_list(
    assessed: pd.DataFrame,
    life: pd.DataFrame | None = None,
    *,
    horizon_years: float = DEFAULT_HORIZON_YEARS,
    as_of: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """The ranked dig list of an assessed inspection run.

    Args:
        assessed: Assessed features (`twin.integrity.assessment.assess_features`: ``feature_id``,
            ``chainage_m``, ``clock_h``, ``depth_frac``, ``length_m``, ``safe_pa``, ``erf``,
            ``category``, ``category_reason``; optional ``weld_number``, ``weld_distance_m``,
            ``pipe_id``, ``surface``, ``wall_m``).
        life: `remaining_life_years` of those features (None: no growth forecast, only the
            repair rules' categories are listed).
        horizon_years: Time to the next inspection, years: a feature whose remaining life ends
            sooner is on the list whatever its category.
        as_of: Date of the assessment (the run's date; default now, UTC).

    Returns:
        One row per feature to dig with `DIG_COLUMNS`, ``rank`` 1 first; ``dig_by`` a UTC
        timestamp, ``remaining_life_years`` NaN without a forecast.

    Raises:
        IntegrityError: A horizon that is not a positive number, or missing columns.
    """
    if not (math.isfinite(horizon_years) and horizon_years > 0):
        raise IntegrityError(f"horizon_years must be a positive number of years, got {horizon_years}")
    needed = ["feature_id", "chainage_m", "clock_h", "depth_frac", "length_m", "safe_pa", "erf", "category"]
    missing = [c for c in needed if c not in assessed.columns]
    if missing:
        raise IntegrityError(f"assessed features lack column(s) {', '.join(missing)}")
    now = pd.Timestamp.now(tz="UTC") if as_of is None else pd.Timestamp(as_of)
    now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
    frame = assessed.loc[assessed["category"].isin(list(_ORDER))].copy()
    if life is not None and len(life):
        extra = life.set_index("feature_id")[["remaining_life_years", "limit"]]
        frame = frame.drop(columns=[c for c in extra.columns if c in frame]).join(extra, on="feature_id")
    else:
        frame["remaining_life_years"] = np.nan
        frame["limit"] = ""
    years = frame["remaining_life_years"].to_numpy(dtype=np.float64)
    order = frame["category"].map(_ORDER).to_numpy()
    by_growth = np.isfinite(years) & (years <= horizon_years)
    keep = (order <= _ORDER["scheduled"]) | by_growth
    frame = frame.loc[keep].copy()
    years, order = years[keep], order[keep]
    life_days = np.where(np.isfinite(years), years * DAYS_PER_YEAR / LIFE_SAFETY_FACTOR, np.inf)
    days = np.where(order == 0, 0.0, life_days)
    days = np.where(order == 1, np.minimum(life_days, SCHEDULED_RESPONSE_DAYS), days)
    frame["dig_by"] = [now + pd.Timedelta(days=float(d)) for d in days]
    frame["_later"] = order != 0
    frame["_days"] = days
    frame["_life"] = np.where(np.isfinite(years), years, np.inf)
    frame["_erf"] = -frame["erf"].fillna(0.0)
    first = frame.loc[~frame["_later"]].sort_values(["_erf", "chainage_m"], kind="stable")
    rest = frame.loc[frame["_later"]].sort_values(["_days", "_life", "_erf", "chainage_m"], kind="stable")
    frame = pd.concat([first, rest])
    frame["rank"] = np.arange(1, len(frame) + 1)
    frame["reason"] = [_reason(row, now) for _, row in frame.iterrows()]
    for column in ("weld_number", "weld_distance_m"):
        if column not in frame:
            frame[column] = np.nan
    for column in ("pipe_id", "surface", "category_reason"):
        if column not in frame:
            frame[column] = ""
    return frame.reindex(columns=DIG_COLUMNS).reset_index(drop=True)


def dig_list_csv(dig: pd.DataFrame) -> str:
    """The dig list as CSV text (dates in ISO 8601, pressures in Pa), for the crew's spreadsheet."""
    out: Any = dig.copy()
    out["dig_by"] = [pd.Timestamp(t).date().isoformat() for t in dig["dig_by"]]
    return str(out.to_csv(index=False))
