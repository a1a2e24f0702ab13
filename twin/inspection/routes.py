"""Route files from the pump stations' collectors: loaders, validation with quarantine, and the route store.

A collector delivers one file per route export, CSV or Excel (``.xlsx``, first sheet), one header
row, one data row per reading. The kind of a file is recognised by its columns (header names are
matched case-insensitively, ignoring punctuation; a unit in brackets, ``Overall (in/s)``, or as a
suffix, ``overall_in_s``, is the default unit of that column):

- **vibration** (a portable analyser route): ``asset`` (or equipment / machine), ``time``,
  ``point``, ``direction``, ``overall`` (velocity RMS), optional ``unit``, band columns ``band
  low``, ``1x``, ``2x``, ``band high``, ``collector``;
- **thermography**: ``asset``, ``time``, ``component``, ``spot`` temperature, ``reference``
  temperature and/or ``delta``, optional ``unit``, ``collector``;
- **visual** (walk-down, drone or robot): ``asset``, ``time``, ``finding``, ``severity``, optional
  ``method``, ``photo`` reference, ``collector``.

Canonical frames (`VIBRATION_COLUMNS`, `THERMOGRAPHY_COLUMNS`, `VISUAL_COLUMNS`) carry UTC ``ts``,
``asset`` as ``STATION.ASSET`` (``PS01.P1``), SI-ish plant units (mm/s, degC, K) and ``source``
(the file name).

**Conventions** (what a row may say):

- asset: ``PS01.P1``; ``PS01-P1``, ``ps01 p1`` and ``PS01/P1`` are read the same. It must be a
  pump of the registry.
- point: the twin tracks the pump's two bearings, as its online sensors do. ``DE`` is read from
  ``DE``, ``drive end``, ``pump DE``, ``PDE`` or ``3``; ``NDE`` from ``NDE``, ``non drive end``,
  ``pump NDE``, ``PNDE`` or ``4``. Numbers follow the usual route numbering of a motor-pump train
  from the driver's outboard end: 1 motor NDE, 2 motor DE, 3 pump DE, 4 pump NDE. Motor bearing
  points (``1``, ``2``, ``motor DE``, ``MDE``...) are quarantined as motor points: the twin has no
  motor-bearing state to fuse them with.
- direction: ``H``/``horizontal``, ``V``/``vertical``, ``A``/``axial``.
- velocity units: ``mm/s`` (RMS; the default when no unit is given) or ``in/s`` (``ips``) RMS,
  converted at 25.4 mm/in. Peak or peak-to-peak units are not converted: they are unknown units.
- temperature units: ``degC`` (default), ``degF``, ``K``; a delta in degF is divided by 1.8.
- severity: an integer 0-4 or a word: none/ok 0, minor/low 1, moderate/medium 2,
  severe/high/major 3, critical/urgent/emergency 4.
- method: ``visual`` (also walk-down, manual, operator; the default when empty), ``drone`` (UAV),
  ``robot`` (robotic, crawler).
- time: one column (ISO 8601 is safest) or separate ``date`` and ``time`` columns; a time without
  zone is read in ``naive_tz`` (default UTC).

**Quarantine.** A row is quarantined, with its raw values, its 1-based line in the file (the header
is line 1) and the reason, when its asset is not in the registry, its time is missing, not
understood, ambiguous in local time, or later than ``now`` plus `FUTURE_TOLERANCE_S`, a value is missing or out of its
physical range (velocity outside 0..100 mm/s, temperature outside -50..300 degC), its unit, point,
direction, method or severity is unknown, or the delta disagrees with spot minus reference by more
than `DELTA_TOLERANCE_K`. Good rows go on. A file that cannot be read, or whose columns match no
kind, raises `RouteError`.

`RouteStore` keeps the good rows as one Parquet file per kind under its root, append-only and
idempotent: a row whose content (every column but ``source``) is already stored is not stored
again. Writers hold an exclusive ``fcntl.flock`` on ``<root>/.lock`` across read-merge-write, and
each file is replaced atomically, so two writers at once lose nothing and readers never see a
half-written file.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.safety import file_lock, shorten
from pumptwin.twin.times import utc_now
from pumptwin.twin.units import FAHRENHEIT_AT_0C, FAHRENHEIT_PER_KELVIN, IN_M, KELVIN_AT_0C, MM_PER_M

RouteKind = Literal["vibration", "thermography", "visual"]
KINDS: tuple[RouteKind, ...] = ("vibration", "thermography", "visual")
"""The kinds of route data, in the order files are recognised."""

VIBRATION_COLUMNS: tuple[str, ...] = (
    "ts",
    "asset",
    "point",
    "direction",
    "overall_mm_s",
    "band_low_mm_s",
    "band_1x_mm_s",
    "band_2x_mm_s",
    "band_high_mm_s",
    "collector",
    "source",
)
"""Canonical vibration frame: one row per point and direction; bands NaN when not given."""
THERMOGRAPHY_COLUMNS: tuple[str, ...] = (
    "ts",
    "asset",
    "component",
    "spot_c",
    "reference_c",
    "delta_k",
    "collector",
    "source",
)
"""Canonical thermography frame: spot and reference temperature, degC, and their difference, K."""
VISUAL_COLUMNS: tuple[str, ...] = ("ts", "asset", "finding", "severity", "method", "photo_ref", "collector", "source")
"""Canonical visual frame: severity 0 none, 1 minor, 2 moderate, 3 severe, 4 critical."""
COLUMNS: dict[RouteKind, tuple[str, ...]] = {
    "vibration": VIBRATION_COLUMNS,
    "thermography": THERMOGRAPHY_COLUMNS,
    "visual": VISUAL_COLUMNS,
}
QUARANTINE_META: tuple[str, ...] = ("source", "kind", "row", "reason")
"""Columns every quarantine frame has; the raw columns of the file follow, as text."""

BANDS: tuple[str, ...] = ("band_low_mm_s", "band_1x_mm_s", "band_2x_mm_s", "band_high_mm_s")
POINTS: tuple[str, ...] = ("DE", "NDE")
DIRECTIONS: tuple[str, ...] = ("H", "V", "A")
METHODS: tuple[str, ...] = ("visual", "drone", "robot")
MAX_SEVERITY = 4
MAX_VELOCITY_MM_S = 100.0
"""Highest velocity RMS a route reading may hold, mm/s."""
TEMPERATURE_RANGE_C: tuple[float, float] = (-50.0, 300.0)
"""Range of a plausible spot or reference temperature, degC."""
DELTA_TOLERANCE_K = 0.5
"""Largest difference between a given delta and spot minus reference, K."""
FUTURE_TOLERANCE_S = 300.0
"""How far past ``now`` a route time may lie (clock skew of a collector), s."""
HEADER_ROWS = 1
"""Rows above the data in a file; a data row's line number is its index + HEADER_ROWS + 1."""

REASON_ASSET = "asset not in the registry"
REASON_TS_MISSING = "time missing"
REASON_TS_UNPARSED = "time not understood"
REASON_TS_FUTURE = "time in the future"
REASON_TS_LOCAL = "local time ambiguous or nonexistent (daylight-saving change)"
REASON_VALUE_MISSING = "value missing"
REASON_NUMBER = "value is not a number"
REASON_UNIT = "unknown unit"
REASON_POINT = "unknown point"
REASON_MOTOR_POINT = "motor bearing point (the twin tracks the pump's DE and NDE bearings)"
REASON_DIRECTION = "unknown direction"
REASON_VELOCITY = f"velocity out of range 0..{MAX_VELOCITY_MM_S:g} mm/s"
REASON_TEMPERATURE = f"temperature out of range {TEMPERATURE_RANGE_C[0]:g}..{TEMPERATURE_RANGE_C[1]:g} degC"
REASON_DELTA = "delta disagrees with spot minus reference"
REASON_SEVERITY = f"severity outside 0-{MAX_SEVERITY}"
REASON_METHOD = "unknown method"

_SEPARATORS = re.compile(r"[^a-z0-9]+")
_BRACKETED = re.compile(r"[\(\[]([^\)\]]*)[\)\]]")

_COMMON: dict[str, tuple[str, ...]] = {
    "ts": (
        "ts",
        "time",
        "timestamp",
        "date",
        "date time",
        "datetime",
        "measured",
        "measured at",
        "measurement time",
        "reading time",
        "inspection time",
        "inspection date",
    ),
    "asset": ("asset", "equipment", "equipment name", "equipment id", "machine", "machine name", "asset id"),
    "collector": ("collector", "inspector", "technician", "operator", "analyst", "collected by", "inspected by"),
    "unit": ("unit", "units", "uom", "unit of measure"),
}
_ALIASES: dict[RouteKind, dict[str, tuple[str, ...]]] = {
    "vibration": {
        "point": ("point", "location", "bearing", "measurement point", "meas point", "pt"),
        "direction": ("direction", "dir", "axis", "orientation"),
        "overall": ("overall", "overall velocity", "velocity", "velocity rms", "overall rms", "vel rms", "rms"),
        "band_low_mm_s": ("band low", "low band", "low", "sub synchronous", "subsync"),
        "band_1x_mm_s": ("band 1x", "1x", "1 x", "1x rpm"),
        "band_2x_mm_s": ("band 2x", "2x", "2 x", "2x rpm"),
        "band_high_mm_s": ("band high", "high band", "high", "high frequency", "hf"),
    },
    "thermography": {
        "component": ("component", "part", "location", "item", "object"),
        "spot": (
            "spot",
            "spot temperature",
            "spot temp",
            "temperature",
            "temp",
            "max temperature",
            "max temp",
            "hot spot",
        ),
        "reference": ("reference", "reference temperature", "reference temp", "ref", "ref temp"),
        "delta": ("delta", "delta t", "dt", "delta temperature", "rise", "temperature rise"),
    },
    "visual": {
        "finding": ("finding", "findings", "observation", "description", "comment", "comments", "remark", "defect"),
        "severity": ("severity", "priority", "criticality", "grade", "rating"),
        "method": ("method", "inspection method", "inspection type", "type", "platform"),
        "photo_ref": ("photo", "photo ref", "photo reference", "photo id", "image", "picture", "attachment"),
    },
}
_REQUIRED: dict[RouteKind, tuple[str, ...]] = {
    "vibration": ("ts", "asset", "point", "direction", "overall"),
    "thermography": ("ts", "asset", "component", "spot"),
    "visual": ("ts", "asset", "finding", "severity"),
}
_UNIT_SUFFIXES: tuple[tuple[str, str], ...] = (
    (" mm s", "mm/s"),
    (" in s", "in/s"),
    (" ips", "in/s"),
    (" degc", "degC"),
    (" degf", "degF"),
    (" c", "degC"),
    (" f", "degF"),
    (" k", "K"),
)
_POINTS: dict[str, str] = {
    "de": "DE",
    "drive end": "DE",
    "pump de": "DE",
    "pde": "DE",
    "p de": "DE",
    "3": "DE",
    "nde": "NDE",
    "non drive end": "NDE",
    "pump nde": "NDE",
    "pnde": "NDE",
    "p nde": "NDE",
    "4": "NDE",
}
_MOTOR_POINTS = frozenset({"1", "2", "motor de", "motor nde", "mde", "mnde", "m de", "m nde", "motor"})
_DIRECTIONS: dict[str, str] = {
    "h": "H",
    "hor": "H",
    "horizontal": "H",
    "v": "V",
    "vert": "V",
    "vertical": "V",
    "a": "A",
    "ax": "A",
    "axial": "A",
}
_SEVERITY_WORDS: dict[str, int] = {
    "none": 0,
    "ok": 0,
    "good": 0,
    "no finding": 0,
    "minor": 1,
    "low": 1,
    "moderate": 2,
    "medium": 2,
    "severe": 3,
    "high": 3,
    "major": 3,
    "serious": 3,
    "critical": 4,
    "urgent": 4,
    "emergency": 4,
}
_METHODS: dict[str, str] = {
    "": "visual",
    "visual": "visual",
    "walkdown": "visual",
    "walk down": "visual",
    "manual": "visual",
    "operator": "visual",
    "drone": "drone",
    "uav": "drone",
    "robot": "robot",
    "robotic": "robot",
    "crawler": "robot",
}


class RouteError(PumptwinError, ValueError):
    """A route file that cannot be read or recognised, or a store that cannot be used; the message names it."""


class _RowError(RouteError):
    """A row to quarantine, with its reason (internal)."""


# --------------------------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------------------------


def empty_frame(kind: RouteKind) -> pd.DataFrame:
    """An empty canonical frame of ``kind`` with its dtypes (``ts`` UTC, floats, ``severity`` int64)."""
    return _typed(pd.DataFrame({c: [] for c in COLUMNS[kind]}), kind)


def empty_quarantine() -> pd.DataFrame:
    """An empty quarantine frame (`QUARANTINE_META` columns only)."""
    return pd.DataFrame(
        {
            "source": pd.Series([], dtype=object),
            "kind": pd.Series([], dtype=object),
            "row": pd.Series([], dtype="int64"),
            "reason": pd.Series([], dtype=object),
        }
    )


def _typed(frame: pd.DataFrame, kind: RouteKind) -> pd.DataFrame:
    """``frame`` with the canonical columns of ``kind`` in order and their dtypes."""
    out = frame.loc[:, list(COLUMNS[kind])].copy()
    out["ts"] = pd.to_datetime(out["ts"], utc=True).astype("datetime64[ns, UTC]")
    for col in COLUMNS[kind]:
        if col.endswith(("_mm_s", "_c", "_k")):
            out[col] = out[col].astype("float64")
        elif col == "severity":
            out[col] = out[col].astype("int64")
        elif col != "ts":
            out[col] = out[col].astype(object)
    return out.reset_index(drop=True)


@dataclass(frozen=True)
class RouteBatch:
    """What one route file held, validated.

    Attributes:
        vibration: Canonical vibration rows (`VIBRATION_COLUMNS`).
        thermography: Canonical thermography rows (`THERMOGRAPHY_COLUMNS`).
        visual: Canonical visual rows (`VISUAL_COLUMNS`).
        quarantined: Rejected rows: `QUARANTINE_META` (``row`` is the 1-based line of the file) and
            the file's raw columns as text.
        source: The file name.
    """

    vibration: pd.DataFrame
    thermography: pd.DataFrame
    visual: pd.DataFrame
    quarantined: pd.DataFrame
    source: str = ""

    @classmethod
    def empty(cls, source: str = "") -> RouteBatch:
        """A batch without rows."""
        return cls(
            empty_frame("vibration"), empty_frame("thermography"), empty_frame("visual"), empty_quarantine(), source
        )

    def frame(self, kind: RouteKind) -> pd.DataFrame:
        """The canonical frame of ``kind``."""
        frames: dict[str, pd.DataFrame] = {
            "vibration": self.vibration,
            "thermography": self.thermography,
            "visual": self.visual,
        }
        return frames[kind]

    @property
    def rows(self) -> int:
        """Good rows, all kinds together."""
        return len(self.vibration) + len(self.thermography) + len(self.visual)

    def frames(self) -> dict[RouteKind, pd.DataFrame]:
        """The canonical frames by kind."""
        return {k: self.frame(k) for k in KINDS}


# --------------------------------------------------------------------------------------------
# Reading a file and recognising its kind
# --------------------------------------------------------------------------------------------


def _norm(text: str) -> str:
    """Lower-case ``text`` with punctuation runs as single spaces (``Date/Time`` -> ``date time``)."""
    return _SEPARATORS.sub(" ", text.lower().replace("_", " ").replace("°", "deg")).strip()


def header_field(header: str) -> tuple[str, str]:
    """A header's name and the unit it states (``"Overall (in/s)"`` -> ``("overall", "in/s")``; "" without).

    Args:
        header: A column header as the file spells it.

    Returns:
        The normalised name (lower case, punctuation as spaces) and the unit text ("" when none).
    """
    unit = ""
    m = _BRACKETED.search(header)
    if m is not None:
        unit = m.group(1).strip()
        header = _BRACKETED.sub(" ", header)
    name = _norm(header)
    if not unit:
        for suffix, suffix_unit in _UNIT_SUFFIXES:
            if name.endswith(suffix) and len(name) > len(suffix):
                name, unit = name[: -len(suffix)].strip(), suffix_unit
                break
    return name, unit


def _match(columns: Iterable[str], aliases: Mapping[str, tuple[str, ...]]) -> dict[str, tuple[str, str]]:
    """Field -> (column, unit from the header) for every field whose alias names a column (first wins)."""
    named = [(c, *header_field(str(c))) for c in columns]
    out: dict[str, tuple[str, str]] = {}
    for fld, names in aliases.items():
        for column, name, unit in named:
            if name in names and fld not in out and all(column != v[0] for v in out.values()):
                out[fld] = (column, unit)
    return out


def detect_kind(columns: Iterable[str]) -> tuple[RouteKind, dict[str, tuple[str, str]]]:
    """The route kind a header describes and where each field is.

    Args:
        columns: The file's column headers.

    Returns:
        The kind and, by field, (column header, unit stated in the header or "").

    Raises:
        RouteError: The columns match no kind (the message lists them and what each kind needs).
    """
    cols = [str(c) for c in columns]
    found: list[tuple[int, RouteKind, dict[str, tuple[str, str]]]] = []
    for kind in KINDS:
        fields = _match(cols, {**_ALIASES[kind], **_COMMON})
        if all(f in fields for f in _REQUIRED[kind]):
            found.append((len(fields), kind, fields))
    if not found:
        needs = "; ".join(f"{k}: {', '.join(_REQUIRED[k])}" for k in KINDS)
        raise RouteError(f"no recognisable route kind in columns {shorten(cols, 200)} (needed: {needs})")
    best = max(found, key=lambda x: (x[0], -KINDS.index(x[1])))
    kind, fields = best[1], dict(best[2])
    named = {header_field(c)[0]: c for c in cols}
    if "date" in named and "time" in named and fields["ts"][0] in (named["date"], named["time"]):
        fields["ts"], fields["ts_time"] = (named["date"], ""), (named["time"], "")
    return kind, fields


def read_table(path: str | Path) -> pd.DataFrame:
    """A route file's cells as text (CSV, or the first sheet of ``.xlsx``); empty cells are "".

    Raises:
        RouteError: A missing, empty or unreadable file, or another format.
    """
    src = Path(path)
    if not src.is_file():
        raise RouteError(f"{src}: no such route file")
    suffix = src.suffix.lower()
    try:
        if suffix in (".csv", ".txt"):
            frame = pd.read_csv(src, dtype=str, keep_default_na=False, sep=None, engine="python", encoding="utf-8-sig")
        elif suffix in (".xlsx", ".xlsm"):
            frame = pd.read_excel(src, dtype=str, engine="openpyxl").fillna("")
        else:
            raise RouteError(f"{src.name}: route files are .csv or .xlsx, got {shorten(suffix or 'no suffix')}")
    except RouteError:
        raise
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError, KeyError) as exc:
        raise RouteError(f"{src.name}: cannot read the file: {shorten(str(exc), 200)}") from exc
    except Exception as exc:  # noqa: BLE001 - openpyxl raises its own errors for damaged workbooks
        raise RouteError(f"{src.name}: cannot read the file: {shorten(str(exc), 200)}") from exc
    if frame.empty:
        raise RouteError(f"{src.name}: the file holds no data rows")
    return frame.astype(str)


# --------------------------------------------------------------------------------------------
# Row parsing
# --------------------------------------------------------------------------------------------


def normalise_asset(text: str) -> str:
    """``STATION.ASSET`` from how a collector may write it (``ps01-p1``, ``PS01 P1`` -> ``PS01.P1``)."""
    return re.sub(r"[\s\-/\\.:]+", ".", text.strip().upper())


def _number(text: str, what: str) -> float | None:
    """A number from a cell ("" -> None); a decimal comma is read as a point."""
    s = text.strip()
    if not s:
        return None
    if "," in s and "." not in s:
        s = s.replace(",", ".")
    try:
        value = float(s)
    except ValueError:
        raise _RowError(f"{REASON_NUMBER}: {what} {shorten(text)}") from None
    if not math.isfinite(value):
        raise _RowError(f"{REASON_NUMBER}: {what} {shorten(text)}")
    return value


def _required_number(text: str, what: str) -> float:
    value = _number(text, what)
    if value is None:
        raise _RowError(f"{REASON_VALUE_MISSING}: {what}")
    return value


def _ts_text(row: Mapping[str, str], fields: Mapping[str, tuple[str, str]]) -> str:
    """The row's time as text: one column, or separate date and time columns joined."""
    day = _cell(row, fields, "ts")
    if "ts_time" not in fields:
        return day
    clock = _cell(row, fields, "ts_time")
    if not day or not clock:
        return ""
    return f"{day.removesuffix(' 00:00:00')} {clock}"


def _time(text: str, now: pd.Timestamp, naive_tz: str) -> pd.Timestamp:
    s = text.strip()
    if not s or s.lower() in ("nan", "nat", "none"):
        raise _RowError(REASON_TS_MISSING)
    try:
        stamp = pd.Timestamp(s)
        if stamp is pd.NaT:
            raise ValueError(s)
    except (ValueError, TypeError, OverflowError):
        raise _RowError(f"{REASON_TS_UNPARSED}: {shorten(text)}") from None
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize(naive_tz, ambiguous="NaT", nonexistent="NaT")
        if stamp is pd.NaT:
            raise _RowError(f"{REASON_TS_LOCAL}: {shorten(text)} in {naive_tz}")
    ts = stamp.tz_convert("UTC")
    if ts > now + pd.Timedelta(seconds=FUTURE_TOLERANCE_S):
        raise _RowError(f"{REASON_TS_FUTURE}: {ts.isoformat()} after {now.isoformat()}")
    return ts


def velocity_factor(unit: str) -> float:
    """mm/s per unit of a velocity RMS unit (``mm/s`` 1, ``in/s`` 25.4; "" is mm/s).

    Raises:
        ValueError: Any other unit (peak units included).
    """
    u = re.sub(r"[\s\-\(\)]|rms", "", unit.lower())
    if u in ("", "mm/s", "mms", "mm/sec"):
        return 1.0
    if u in ("in/s", "ips", "in/sec", "inch/s", "ins"):
        return IN_M * MM_PER_M
    raise ValueError(f"{REASON_UNIT}: {shorten(unit)}")


def temperature_unit(unit: str) -> str:
    """``C``, ``F`` or ``K`` for a temperature unit text ("" is degC).

    Raises:
        ValueError: Any other unit.
    """
    u = re.sub(r"[\s\.°]|deg(rees)?", "", unit.lower())
    if u in ("", "c", "celsius"):
        return "C"
    if u in ("f", "fahrenheit"):
        return "F"
    if u in ("k", "kelvin"):
        return "K"
    raise ValueError(f"{REASON_UNIT}: {shorten(unit)}")


def to_celsius(value: float, unit: str) -> float:
    """A temperature in ``C``, ``F`` or ``K`` (see `temperature_unit`) in degC."""
    if unit == "F":
        return (value - FAHRENHEIT_AT_0C) / FAHRENHEIT_PER_KELVIN
    if unit == "K":
        return value - KELVIN_AT_0C
    return value


def _unit(row: Mapping[str, str], fields: Mapping[str, tuple[str, str]], fld: str) -> str:
    """The row's unit column if given, else the unit stated in the header of ``fld``."""
    if "unit" in fields:
        given = row[fields["unit"][0]].strip()
        if given:
            return given
    return fields[fld][1] if fld in fields else ""


def _cell(row: Mapping[str, str], fields: Mapping[str, tuple[str, str]], fld: str) -> str:
    return row[fields[fld][0]].strip() if fld in fields else ""


def _point(text: str) -> str:
    key = _norm(text)
    if key in _POINTS:
        return _POINTS[key]
    if key in _MOTOR_POINTS:
        raise _RowError(f"{REASON_MOTOR_POINT}: {shorten(text)}")
    raise _RowError(f"{REASON_POINT}: {shorten(text)}")


def _direction(text: str) -> str:
    key = _norm(text)
    if key not in _DIRECTIONS:
        raise _RowError(f"{REASON_DIRECTION}: {shorten(text)}")
    return _DIRECTIONS[key]


def _velocity(value: float, what: str) -> float:
    if not 0.0 <= value <= MAX_VELOCITY_MM_S:
        raise _RowError(f"{REASON_VELOCITY}: {what} {value:g} mm/s")
    return value


def _vibration_row(row: Mapping[str, str], fields: Mapping[str, tuple[str, str]]) -> dict[str, object]:
    try:
        factor = velocity_factor(_unit(row, fields, "overall"))
    except ValueError as exc:
        raise _RowError(str(exc)) from None
    out: dict[str, object] = {
        "point": _point(_cell(row, fields, "point")),
        "direction": _direction(_cell(row, fields, "direction")),
        "overall_mm_s": _velocity(factor * _required_number(_cell(row, fields, "overall"), "overall"), "overall"),
    }
    for band in BANDS:
        raw = _number(_cell(row, fields, band), band)
        band_factor = factor
        if raw is not None and "unit" not in fields and band in fields and fields[band][1]:
            try:
                band_factor = velocity_factor(fields[band][1])
            except ValueError as exc:
                raise _RowError(f"{exc} ({band})") from None
        out[band] = math.nan if raw is None else _velocity(band_factor * raw, band)
    return out


def _temperature(value: float, unit: str, what: str) -> float:
    c = to_celsius(value, unit)
    low, high = TEMPERATURE_RANGE_C
    if not low <= c <= high:
        raise _RowError(f"{REASON_TEMPERATURE}: {what} {c:.1f} degC")
    return c


def _thermography_row(row: Mapping[str, str], fields: Mapping[str, tuple[str, str]]) -> dict[str, object]:
    try:
        unit = temperature_unit(_unit(row, fields, "spot"))
    except ValueError as exc:
        raise _RowError(str(exc)) from None
    component = _cell(row, fields, "component")
    if not component:
        raise _RowError(f"{REASON_VALUE_MISSING}: component")
    spot = _temperature(_required_number(_cell(row, fields, "spot"), "spot"), unit, "spot")
    ref_raw = _number(_cell(row, fields, "reference"), "reference")
    delta_raw = _number(_cell(row, fields, "delta"), "delta")
    delta = None if delta_raw is None else (delta_raw / FAHRENHEIT_PER_KELVIN if unit == "F" else delta_raw)
    if ref_raw is None and delta is None:
        raise _RowError(f"{REASON_VALUE_MISSING}: reference and delta")
    reference = _temperature(ref_raw, unit, "reference") if ref_raw is not None else spot - float(delta or 0.0)
    if ref_raw is None:
        _temperature(reference, "C", "reference")
    if delta is not None and abs(spot - reference - delta) > DELTA_TOLERANCE_K:
        raise _RowError(f"{REASON_DELTA}: {delta:.1f} K against {spot - reference:.1f} K")
    return {"component": component, "spot_c": spot, "reference_c": reference, "delta_k": spot - reference}


def severity_of(text: str) -> int:
    """Severity 0-4 from a number or a word (see the module docstring).

    Raises:
        ValueError: Anything else, or a number outside 0-4.
    """
    key = _norm(text)
    if key in _SEVERITY_WORDS:
        return _SEVERITY_WORDS[key]
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"{REASON_SEVERITY}: {shorten(text)}") from None
    if not (math.isfinite(value) and value == int(value) and 0 <= value <= MAX_SEVERITY):
        raise ValueError(f"{REASON_SEVERITY}: {shorten(text)}")
    return int(value)


def _visual_row(row: Mapping[str, str], fields: Mapping[str, tuple[str, str]]) -> dict[str, object]:
    finding = _cell(row, fields, "finding")
    if not finding:
        raise _RowError(f"{REASON_VALUE_MISSING}: finding")
    try:
        severity = severity_of(_cell(row, fields, "severity"))
    except ValueError as exc:
        raise _RowError(str(exc)) from None
    method_text = _cell(row, fields, "method")
    method = _METHODS.get(_norm(method_text))
    if method is None:
        raise _RowError(f"{REASON_METHOD}: {shorten(method_text)}")
    return {"finding": finding, "severity": severity, "method": method, "photo_ref": _cell(row, fields, "photo_ref")}


_ROW_PARSERS: dict[RouteKind, Callable[[Mapping[str, str], Mapping[str, tuple[str, str]]], dict[str, object]]] = {
    "vibration": _vibration_row,
    "thermography": _thermography_row,
    "visual": _visual_row,
}


def parse_route(
    raw: pd.DataFrame,
    assets: Iterable[str],
    *,
    source: str = "",
    now: pd.Timestamp | None = None,
    naive_tz: str = "UTC",
    collector: str = "",
) -> RouteBatch:
    """Validate a route table (cells as text, as `read_table` gives them) into a batch.

    Args:
        raw: The file's rows, one column per header, cells as text.
        assets: The registry's pump assets (``STATION.ASSET``).
        source: The file name, for ``source`` and the quarantine.
        now: Latest acceptable time (UTC); default the wall clock.
        naive_tz: Time zone of times written without one.
        collector: Collector recorded when the file has no collector column.

    Returns:
        The good rows of the file's kind (the other kinds empty) and the quarantined rows.

    Raises:
        RouteError: The columns match no kind.
    """
    kind, fields = detect_kind(raw.columns)
    known = {str(a) for a in assets}
    clock = utc_now() if now is None else pd.Timestamp(now).tz_convert("UTC")
    good: list[dict[str, object]] = []
    bad: list[dict[str, object]] = []
    records = raw.astype(str).to_dict(orient="records")
    for i, row in enumerate(records):
        try:
            ts = _time(_ts_text(row, fields), clock, naive_tz)
            asset = normalise_asset(_cell(row, fields, "asset"))
            if asset not in known:
                raise _RowError(f"{REASON_ASSET}: {shorten(_cell(row, fields, 'asset'))}")
            values = _ROW_PARSERS[kind](row, fields)
        except _RowError as exc:
            line = i + HEADER_ROWS + 1
            bad.append({"source": source, "kind": kind, "row": line, "reason": str(exc), **row})
            continue
        good.append({"ts": ts, "asset": asset, **values, "collector": _cell(row, fields, "collector") or collector})
    frame = pd.DataFrame(good, columns=[c for c in COLUMNS[kind] if c != "source"])
    frame["source"] = source
    quarantined = pd.DataFrame(bad) if bad else empty_quarantine()
    if bad:
        quarantined["row"] = quarantined["row"].astype("int64")
    batch = RouteBatch.empty(source)
    frames = {k: batch.frame(k) for k in KINDS}
    frames[kind] = _typed(frame, kind)
    return RouteBatch(frames["vibration"], frames["thermography"], frames["visual"], quarantined, source)


def load_route(
    path: str | Path,
    assets: Iterable[str],
    *,
    now: pd.Timestamp | None = None,
    naive_tz: str = "UTC",
    collector: str = "",
) -> RouteBatch:
    """Read, recognise and validate one route file (see the module docstring).

    Args:
        path: A ``.csv`` or ``.xlsx`` route file.
        assets: The registry's pump assets (``STATION.ASSET``).
        now: Latest acceptable time (UTC); default the wall clock.
        naive_tz: Time zone of times written without one.
        collector: Collector recorded when the file has no collector column.

    Returns:
        The batch: good rows in the canonical frame of the file's kind, quarantined rows with reasons.

    Raises:
        RouteError: The file cannot be read, holds no rows, or its columns match no kind.
    """
    src = Path(path)
    raw = read_table(src)
    try:
        return parse_route(raw, assets, source=src.name, now=now, naive_tz=naive_tz, collector=collector)
    except RouteError as exc:
        raise RouteError(f"{src.name}: {exc}") from exc


# --------------------------------------------------------------------------------------------
# The route store
# --------------------------------------------------------------------------------------------


def content_keys(frame: pd.DataFrame, kind: RouteKind) -> np.ndarray:
    """A 64-bit key per row from every canonical column but ``source`` (the same reading in another file matches)."""
    cols = [c for c in COLUMNS[kind] if c != "source"]
    keyed = _typed(frame, kind)[cols].copy()
    keyed["ts"] = keyed["ts"].astype("int64")
    for col in cols:
        if keyed[col].dtype == np.float64:
            keyed[col] = keyed[col].round(9)
    return np.asarray(pd.util.hash_pandas_object(keyed, index=False), dtype=np.uint64)


class RouteStore:
    """Route rows as one Parquet file per kind under ``root`` (see the module docstring).

    Args:
        root: The store's folder (created on the first append).
        lock_timeout_s: How long a writer waits for another, s, before `RouteError`.

    Example:
        >>> store = RouteStore(tmp_path / "routes")  # doctest: +SKIP
        >>> store.append(load_route("route.csv", assets))  # doctest: +SKIP
        24
        >>> store.last_visits()["PS01.P1"]  # doctest: +SKIP
        Timestamp('2026-11-30 08:12:00+0000', tz='UTC')
    """

    def __init__(self, root: str | Path, *, lock_timeout_s: float = 60.0) -> None:
        if not (math.isfinite(lock_timeout_s) and lock_timeout_s > 0):
            raise RouteError(f"lock_timeout_s must be > 0, got {lock_timeout_s}")
        self.root = Path(root)
        self.lock_timeout_s = lock_timeout_s

    def __repr__(self) -> str:
        return f"RouteStore({str(self.root)!r})"

    def path(self, kind: RouteKind) -> Path:
        """The Parquet file of ``kind``."""
        if kind not in KINDS:
            raise RouteError(f"route kind must be one of {', '.join(KINDS)}, got {shorten(kind)}")
        return self.root / f"{kind}.parquet"

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        return file_lock(
            self.root / ".lock",
            self.lock_timeout_s,
            lambda: RouteError(
                f"route store {self.root} is locked by another writer for more than {self.lock_timeout_s:g} s"
            ),
        )

    def _read_file(self, kind: RouteKind) -> pd.DataFrame:
        path = self.path(kind)
        if not path.is_file():
            return empty_frame(kind)
        try:
            return _typed(pd.read_parquet(path), kind)
        except (OSError, ValueError, KeyError) as exc:
            raise RouteError(f"{path}: cannot read the route store file: {shorten(str(exc), 200)}") from exc

    def append(self, batch: RouteBatch) -> int:
        """Store the batch's rows not stored yet; returns how many were new (0 for a batch already stored).

        Raises:
            RouteError: An unreadable store file, or the lock held too long by another writer.
        """
        added = 0
        with self._locked():
            for kind in KINDS:
                new = _typed(batch.frame(kind), kind)
                if new.empty:
                    continue
                stored = self._read_file(kind)
                seen = set(content_keys(stored, kind).tolist()) if len(stored) else set()
                keys = content_keys(new, kind)
                fresh = np.array([k not in seen for k in keys.tolist()], dtype=bool)
                fresh &= ~pd.Series(keys).duplicated().to_numpy()
                if not fresh.any():
                    continue
                merged = pd.concat([stored, new[fresh]], ignore_index=True) if len(stored) else new[fresh]
                merged = merged.sort_values(["ts", "asset"], kind="stable").reset_index(drop=True)
                path = self.path(kind)
                tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
                try:
                    merged.to_parquet(tmp, index=False)
                    os.replace(tmp, path)
                finally:
                    tmp.unlink(missing_ok=True)
                added += int(fresh.sum())
        return added

    def read(self, kind: RouteKind, since: pd.Timestamp | str | None = None) -> pd.DataFrame:
        """Stored rows of ``kind`` (canonical frame, by time), from ``since`` on (UTC; None: all).

        Raises:
            RouteError: An unknown kind or an unreadable store file.
        """
        frame = self._read_file(kind)
        if since is not None:
            start = pd.Timestamp(since)
            start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
            frame = frame[frame["ts"] >= start].reset_index(drop=True)
        return frame

    def frames(self, since: pd.Timestamp | str | None = None) -> dict[RouteKind, pd.DataFrame]:
        """Stored rows of every kind, from ``since`` on."""
        return {k: self.read(k, since) for k in KINDS}

    def last_visits(self) -> dict[str, pd.Timestamp]:
        """Latest time of any route record, per asset (UTC)."""
        out: dict[str, pd.Timestamp] = {}
        for kind in KINDS:
            frame = self._read_file(kind)
            if frame.empty:
                continue
            for asset, ts in frame.groupby("asset")["ts"].max().items():
                name = str(asset)
                out[name] = max(out[name], ts) if name in out else ts
        return dict(sorted(out.items()))
