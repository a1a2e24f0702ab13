"""In-line inspection (ILI) anomaly lists as vendors deliver them, read into one canonical frame.

A vendor's export is a CSV or Excel sheet, one row per feature the tool reported: metal loss,
dents, manufacturing anomalies, girth welds, valves, fittings and above-ground markers. Vendors
name and order the columns their own way and give units in the header (``Log Distance [m]``,
``Log Dist. (ft)``, ``Peak Depth (%WT)``), in a row under it, or in a units column.
`read_ili` recognises the usual names by aliases and converts every value to SI:

=================  ===========================================================================
canonical field    headers recognised (case, punctuation and the unit in brackets ignored)
=================  ===========================================================================
feature id         Feature ID, Feature No., Anomaly No., Anomaly ID, ID
log distance       Log Distance, Log Dist., Odometer, Absolute Distance, Distance
weld number        GW No., Girth Weld No., Upstream Weld, U/S GW, Weld No.
weld distance      Dist. to U/S GW, Distance to Upstream Weld, Relative Distance
clock              O'clock, Clock, Clock Position, Orientation (``4:30``, hours or degrees)
feature type       Event, Feature Type, Identification, Anomaly Type, Type
dimension class    Dim. Class, Dimension Class, POF Class
depth              Depth, Peak Depth, Max. Depth (% of wall, or mm/in with a wall thickness)
length, width      Length, Axial Length; Width, Circumferential Width (mm, in, m)
surface            Int/Ext, Surface Location, Surface, Location
wall thickness     WT, Wall Thickness, Nominal WT
vendor figures     ERF; Burst Pressure, Failure Pressure (bar, MPa, kPa, psi); Psafe
reference name     Comment, Remarks, Description, Marker Name, Reference, Name
units              Units, Unit System (``metric`` or ``imperial`` per row)
=================  ===========================================================================

Every bad row is quarantined with its reason and its 1-based line in the file (the sheet row for
Excel), and the good rows go on. The tool's odometer (log distance) is mapped onto the twin's
chainage through the above-ground markers the run detected, matched by name to the operator's
marker list (`pumptwin.twin.integrity.pipe.reference_markers`).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.safety import child_path, clip, shorten
from pumptwin.twin.times import UtcTimeError, to_utc
from pumptwin.twin.units import FT_M, IN_M, PA_PER_BAR, PA_PER_KPA, PA_PER_MPA, PA_PER_PSI

FloatArray = NDArray[np.float64]

FEATURE_COLUMNS = (
    "feature_id",
    "log_distance_m",
    "chainage_m",
    "weld_number",
    "weld_distance_m",
    "clock_h",
    "feature_type",
    "dimension_class",
    "depth_frac",
    "length_m",
    "width_m",
    "surface",
    "wall_m",
    "vendor_erf",
    "vendor_failure_pa",
)
"""Columns of the canonical ILI feature frame, in order (SI units; see the integrity contract)."""

WELD_COLUMNS = ("weld_number", "log_distance_m", "chainage_m")
"""Columns of an `IliRun`'s girth weld frame."""

REFERENCE_COLUMNS = ("name", "log_distance_m", "chainage_m", "used")
"""Columns of an `IliRun`'s reference frame: the markers detected and matched, and whether the fit used them."""

FEATURE_TYPES = ("metal_loss", "dent", "manufacturing", "girth_weld", "valve", "fitting", "marker", "other")
"""Canonical feature types."""

DIMENSION_CLASSES = (
    "general",
    "pitting",
    "axial_grooving",
    "circumferential_grooving",
    "pinhole",
    "axial_slotting",
    "circumferential_slotting",
)
"""POF dimension classes (an unknown or missing class reads as an empty string)."""


MAX_ILI_BYTES = 256 * 1024 * 1024
"""Largest ILI file `read_ili` reads, bytes."""

MAX_ILI_ROWS = 2_000_000
"""Most rows `read_ili` reads from one file."""

HEADER_SCAN_ROWS = 50
"""Rows at the top of a file searched for the header row."""

MIN_HEADER_FIELDS = 3
"""Recognised columns a header row needs (one of them the log distance)."""

HOURS_ON_CLOCK = 12.0
"""Hours around the pipe's clock face."""

MINUTES_PER_HOUR = 60
"""Minutes (and seconds) in a clock position's next unit up."""

DEFAULT_DEPTH_SD_FRAC = 0.10 / 1.2816
"""1-sigma depth sizing error of a usual MFL tool (+/-10 % of wall at 80 % certainty), fraction of wall."""

DEFAULT_LENGTH_SD_M = 0.025 / 1.2816
"""1-sigma length sizing error of a usual MFL tool (+/-25 mm at 80 % certainty), m."""


class IliError(PumptwinError, ValueError):
    """An ILI file that cannot be read at all (no header, no distance column); the message names the file."""


class _RowError(IliError):
    """One reason a row is quarantined."""


@dataclass(frozen=True, eq=False)
class IliRun:
    """One in-line inspection run, read and mapped onto the line's chainage.

    Attributes:
        run_id: Name of the run (by default the file's stem).
        date: Date of the run, UTC.
        vendor: Inspection company.
        tool: Tool technology (``MFL``, ``UT``, ...).
        depth_sd_frac: 1-sigma depth sizing error, fraction of wall.
        length_sd_m: 1-sigma length sizing error, m.
        features: The canonical feature frame (`FEATURE_COLUMNS`), girth welds excluded.
        welds: Girth welds (`WELD_COLUMNS`), in file order.
        quarantined: Rows refused: the row's cells as strings under the file's headers, plus
            ``reason`` and ``row`` (the 1-based line of the file, or sheet row).
        source: The file read.
        notes: How the file was read: odometer mapping, markers dropped, encoding.
        references: The detected markers matched to the operator's list (`REFERENCE_COLUMNS`).

    Runs compare by identity (their frames have no single truth value).
    """

    run_id: str
    date: pd.Timestamp
    vendor: str
    tool: str
    depth_sd_frac: float
    length_sd_m: float
    features: pd.DataFrame
    welds: pd.DataFrame
    quarantined: pd.DataFrame
    source: str
    notes: tuple[str, ...] = ()
    references: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(REFERENCE_COLUMNS)))


# --- headers -------------------------------------------------------------------------------------

_ALIASES: dict[str, tuple[str, ...]] = {
    "feature_id": (
        "feature id",
        "feature no",
        "feature number",
        "feature",
        "anomaly no",
        "anomaly id",
        "anomaly number",
        "id",
        "item no",
    ),
    "log_distance": (
        "log distance",
        "log dist",
        "odometer",
        "odometer distance",
        "absolute distance",
        "abs distance",
        "abs dist",
        "distance",
        "log",
    ),
    "weld_number": (
        "gw no",
        "gw number",
        "girth weld no",
        "girth weld number",
        "upstream weld",
        "upstream weld no",
        "upstream gw",
        "upstream girth weld",
        "u s gw",
        "u s weld",
        "us gw",
        "weld no",
        "weld number",
        "reference weld",
    ),
    "weld_distance": (
        "dist to u s gw",
        "distance to u s gw",
        "dist to us gw",
        "dist to u s weld",
        "dist from u s gw",
        "distance from u s gw",
        "dist to upstream weld",
        "distance to upstream weld",
        "distance from upstream weld",
        "relative distance",
        "rel distance",
        "weld distance",
    ),
    "clock": (
        "oclock",
        "o clock",
        "clock",
        "clock position",
        "oclock position",
        "orientation",
        "circumferential position",
    ),
    "event": (
        "event",
        "feature type",
        "identification",
        "anomaly type",
        "event type",
        "type",
        "feature identification",
    ),
    "dimension_class": ("dim class", "dimension class", "dimensional class", "pof class", "dimension classification"),
    "depth": ("depth", "peak depth", "max depth", "maximum depth", "depth max", "depth peak", "wall loss"),
    "length": ("length", "axial length", "feature length", "len"),
    "width": ("width", "circumferential width", "circ width", "feature width"),
    "surface": ("int ext", "ext int", "surface location", "surface", "location", "internal external", "int ext mid"),
    "wall": ("wt", "wall thickness", "nominal wt", "nom wt", "nominal wall thickness", "wall", "pipe wt", "nwt"),
    "erf": ("erf", "estimated repair factor"),
    "failure": ("burst pressure", "failure pressure", "pf", "predicted burst pressure", "pburst", "p burst"),
    "safe": ("psafe", "p safe", "safe pressure", "safe operating pressure"),
    "comment": (
        "comment",
        "comments",
        "remarks",
        "remark",
        "description",
        "marker name",
        "marker",
        "reference",
        "name",
    ),
    "units": ("units", "unit", "unit system", "units system", "system of units"),
}

_ALIAS_FIELD = {alias: name for name, aliases in _ALIASES.items() for alias in aliases}

_UNIT_TOKENS: dict[str, str] = {
    "m": "m",
    "metre": "m",
    "metres": "m",
    "meter": "m",
    "meters": "m",
    "km": "km",
    "mm": "mm",
    "millimetre": "mm",
    "millimetres": "mm",
    "cm": "cm",
    "ft": "ft",
    "feet": "ft",
    "foot": "ft",
    "'": "ft",
    "in": "in",
    "inch": "in",
    "inches": "in",
    '"': "in",
    "%": "%",
    "%wt": "%",
    "% wt": "%",
    "%w.t.": "%",
    "% of wt": "%",
    "%nwt": "%",
    "% nwt": "%",
    "pct": "%",
    "percent": "%",
    "bar": "bar",
    "barg": "bar",
    "bar g": "bar",
    "bar(g)": "bar",
    "mpa": "mpa",
    "kpa": "kpa",
    "pa": "pa",
    "psi": "psi",
    "psig": "psi",
    "deg": "deg",
    "degree": "deg",
    "degrees": "deg",
    "°": "deg",
    "h": "h",
    "hh:mm": "h",
    "h:mm": "h",
    "hours": "h",
    "hrs": "h",
    "o'clock": "h",
    "oclock": "h",
    "-": "",
    "": "",
}

_FACTORS: dict[str, dict[str, float]] = {
    "distance": {"m": 1.0, "km": 1e3, "ft": FT_M, "mm": 1e-3, "in": IN_M},
    "size": {"mm": 1e-3, "in": IN_M, "m": 1.0, "cm": 1e-2, "ft": FT_M},
    "depth": {"%": 0.01, "mm": 1e-3, "in": IN_M},
    "pressure": {"bar": PA_PER_BAR, "mpa": PA_PER_MPA, "kpa": PA_PER_KPA, "pa": 1.0, "psi": PA_PER_PSI},
    "clock": {"h": 1.0, "deg": 1.0 / 30.0},
}

_QUANTITY = {
    "log_distance": "distance",
    "weld_distance": "distance",
    "length": "size",
    "width": "size",
    "wall": "size",
    "depth": "depth",
    "failure": "pressure",
    "safe": "pressure",
    "clock": "clock",
}

_SYSTEMS = {
    "metric": {"distance": "m", "size": "mm", "depth": "%", "pressure": "bar"},
    "imperial": {"distance": "ft", "size": "in", "depth": "%", "pressure": "psi"},
}
_SYSTEM_NAMES = {
    "metric": "metric",
    "si": "metric",
    "m": "metric",
    "mm": "metric",
    "imperial": "imperial",
    "us": "imperial",
    "english": "imperial",
    "usc": "imperial",
    "ft": "imperial",
    "in": "imperial",
}

# --- feature types ------------------------------------------------------------------------------

_EVENTS: dict[str, str] = {}
for _canon, _names in {
    "metal_loss": (
        "metal loss",
        "metal loss anomaly",
        "metal loss corrosion",
        "corrosion",
        "corrosion cluster",
        "general corrosion",
        "external corrosion",
        "internal corrosion",
        "external metal loss",
        "internal metal loss",
        "ml",
        "corr",
        "mloss",
        "anomaly metal loss",
    ),
    "girth_weld": ("girth weld", "gw", "weld", "girthweld", "circumferential weld", "girth weld gw"),
    "marker": ("agm", "marker", "above ground marker", "reference marker", "magnet", "agm marker", "magnetic marker"),
    "valve": ("valve", "vlv", "block valve", "mainline valve", "mlv"),
    "fitting": (
        "tee",
        "flange",
        "bend",
        "fitting",
        "elbow",
        "reducer",
        "offtake",
        "off take",
        "hot tap",
        "launcher",
        "receiver",
        "launch trap",
        "receive trap",
        "pig trap",
        "field bend",
        "induction bend",
    ),
    "dent": ("dent", "dent with metal loss", "ovality", "deformation", "geometric anomaly"),
    "manufacturing": (
        "lamination",
        "mill anomaly",
        "manufacturing",
        "manufacturing anomaly",
        "mill defect",
        "inclusion",
        "sliver",
        "mill",
    ),
    "other": (
        "other",
        "casing",
        "casing start",
        "casing end",
        "sleeve",
        "repair",
        "repair sleeve",
        "anode",
        "start of run",
        "end of run",
        "wall thickness change",
        "wt change",
        "support",
        "crossing",
    ),
}.items():
    for _name in _names:
        _EVENTS[_name] = _canon

_DIM_CLASSES = {
    "general": "general",
    "gene": "general",
    "gen": "general",
    "pitting": "pitting",
    "pitt": "pitting",
    "pit": "pitting",
    "axial grooving": "axial_grooving",
    "axgr": "axial_grooving",
    "circumferential grooving": "circumferential_grooving",
    "circ grooving": "circumferential_grooving",
    "cigr": "circumferential_grooving",
    "pinhole": "pinhole",
    "pinh": "pinhole",
    "axial slotting": "axial_slotting",
    "axsl": "axial_slotting",
    "circumferential slotting": "circumferential_slotting",
    "circ slotting": "circumferential_slotting",
    "cisl": "circumferential_slotting",
}

_SURFACES = {
    "int": "internal",
    "internal": "internal",
    "i": "internal",
    "in": "internal",
    "ext": "external",
    "external": "external",
    "e": "external",
    "ex": "external",
    "out": "external",
}

_UNIT_IN_HEADER = re.compile(r"^(?P<base>.*?)\s*[\[\(](?P<unit>[^\]\)]*)[\]\)]\s*$")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_CLOCK = re.compile(r"^(\d{1,2})[:h.](\d{2})(?::(\d{2}))?$")
_DATE_IN_NAME = re.compile(r"(?<!\d)(19\d{2}|20\d{2})[-_]?(0[1-9]|1[0-2])[-_]?(0[1-9]|[12]\d|3[01])(?!\d)")


def _norm(text: str) -> str:
    """A header or name as lowercase words: punctuation dropped, apostrophes removed."""
    text = text.replace("\u2019", "").replace("'", "").replace("\u00b4", "").lower()
    return " ".join(re.sub(r"[^0-9a-z%]+", " ", text).split()).replace("%", "").strip()


def _unit(token: str) -> str | None:
    """A unit as written in a header or cell, normalised (None when unknown)."""
    key = " ".join(token.strip().lower().replace("\u00ba", "°").split())
    if key in _UNIT_TOKENS:
        return _UNIT_TOKENS[key]
    compact = key.replace(" ", "").replace(".", "")
    return _UNIT_TOKENS.get(compact)


@dataclass(frozen=True)
class _Column:
    """One recognised column: its position, field, key and unit from the header (or None)."""

    index: int
    name: str
    field: str
    key: str
    unit: str | None


def _header_columns(cells: Sequence[object]) -> tuple[list[_Column], dict[str, int], list[str]]:
    """Recognised columns of a header row, per-field unit columns, and headers with unknown units."""
    columns: list[_Column] = []
    unit_columns: dict[str, int] = {}
    bad_units: list[str] = []
    taken: set[str] = set()
    for i, cell in enumerate(cells):
        header = "" if cell is None else str(cell).strip()
        if not header:
            continue
        match = _UNIT_IN_HEADER.match(header)
        base, unit_text = (match.group("base"), match.group("unit")) if match else (header, None)
        key = _norm(base)
        found = _ALIAS_FIELD.get(key)
        unit = _unit(unit_text) if unit_text is not None else None
        if found is None and unit_text is None:
            words = key.split()
            if len(words) > 1 and _unit(words[-1]) is not None and " ".join(words[:-1]) in _ALIAS_FIELD:
                found, unit = _ALIAS_FIELD[" ".join(words[:-1])], _unit(words[-1])
            elif len(words) > 1 and words[-1] in ("unit", "units") and " ".join(words[:-1]) in _ALIAS_FIELD:
                unit_columns.setdefault(_ALIAS_FIELD[" ".join(words[:-1])], i)
                continue
        if found is None or found in taken:
            continue
        if unit_text is not None and unit is None and found in _QUANTITY:
            bad_units.append(f"{header!r}")
        taken.add(found)
        columns.append(_Column(i, header, found, key, unit))
    return columns, unit_columns, bad_units


# --- reading -------------------------------------------------------------------------------------


def read_ili(
    path: str | Path,
    *,
    run_id: str | None = None,
    date: pd.Timestamp | dt.datetime | str | None = None,
    vendor: str = "",
    tool: str = "MFL",
    depth_sd_frac: float = DEFAULT_DEPTH_SD_FRAC,
    length_sd_m: float = DEFAULT_LENGTH_SD_M,
    markers: pd.DataFrame | None = None,
    launch_chainage_m: float = 0.0,
) -> IliRun:
    """Read a vendor's ILI anomaly list (CSV or Excel) into an `IliRun` mapped onto chainage.

    Args:
        path: The export: ``.csv``/``.txt`` (comma, semicolon or tab separated) or ``.xlsx``.
        run_id: Name of the run (default: the file's stem).
        date: Date of the run (default: a date in the lines above the header, then one in the
            file name such as ``2026-05-01``).
        vendor: Inspection company.
        tool: Tool technology.
        depth_sd_frac: 1-sigma depth sizing error of the tool, fraction of wall.
        length_sd_m: 1-sigma length sizing error of the tool, m.
        markers: The operator's reference points (``name``, ``chainage_m``), as from
            `pumptwin.twin.integrity.pipe.reference_markers`; None maps without markers.
        launch_chainage_m: Chainage of the tool's zero (its launcher), m, used where no marker
            was matched.

    Returns:
        The run: features, welds and quarantined rows, with chainage mapped.

    Raises:
        IliError: A missing, too large or unreadable file, no header row, no log distance
            column, a header unit that is not known, no date, or invalid settings.
    """
    src = Path(path)
    name = shorten(src.name)
    if not (math.isfinite(depth_sd_frac) and depth_sd_frac > 0 and math.isfinite(length_sd_m) and length_sd_m >= 0):
        raise IliError(f"{name}: sizing errors must be finite, depth > 0 and length >= 0")
    if not math.isfinite(launch_chainage_m):
        raise IliError(f"{name}: launch chainage must be a number, got {launch_chainage_m}")
    rows, notes, decimal_comma = _read_rows(src, name)
    header_at = _find_header(rows, name)
    columns, unit_columns, bad_units = _header_columns(rows[header_at][1])
    if bad_units:
        raise IliError(
            f"{name}: unknown unit in header {clip(bad_units[0])} (known: m, ft, mm, in, %, bar, MPa, kPa, psi)"
        )
    body = rows[header_at + 1 :]
    columns, body = _units_row(columns, body)
    run_date = _run_date(date, rows[:header_at], src, name)
    parsed = _parse_rows(body, columns, unit_columns, rows[header_at][1], decimal_comma)
    features, welds, quarantined = parsed
    features = _fill_welds(features, welds)
    references, chainage_notes = _references(features, markers, name)
    notes += chainage_notes
    if len(features) or len(welds):
        features["chainage_m"] = _chainage(features["log_distance_m"].to_numpy(float), references, launch_chainage_m)
        welds["chainage_m"] = _chainage(welds["log_distance_m"].to_numpy(float), references, launch_chainage_m)
    features = features.drop(columns=["_comment"]).reset_index(drop=True)
    return IliRun(
        run_id=run_id if run_id is not None else src.stem,
        date=run_date,
        vendor=vendor,
        tool=tool,
        depth_sd_frac=float(depth_sd_frac),
        length_sd_m=float(length_sd_m),
        features=features,
        welds=welds.reset_index(drop=True),
        quarantined=quarantined,
        source=str(src),
        notes=tuple(notes),
        references=references,
    )


def _read_rows(src: Path, name: str) -> tuple[list[tuple[int, list[object]]], list[str], bool]:
    """The file's rows with their 1-based line numbers, notes, and whether decimals use a comma."""
    if not src.is_file():
        raise IliError(f"{name}: no such ILI file")
    size = src.stat().st_size
    if size > MAX_ILI_BYTES:
        raise IliError(f"{name}: {size} bytes is more than the {MAX_ILI_BYTES} bytes an ILI file may have")
    if src.suffix.lower() in (".xlsx", ".xlsm"):
        return _excel_rows(src, name), [], False
    if src.suffix.lower() == ".xls":
        raise IliError(f"{name}: old .xls workbooks are not read; save it as .xlsx or CSV")
    raw = src.read_bytes()
    notes: list[str] = []
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
        notes.append("file is not UTF-8; read as Windows-1252")
    sample = text[:16384]
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[tuple[int, list[object]]] = []
    line = 1
    try:
        for record in reader:
            if len(rows) >= MAX_ILI_ROWS:
                raise IliError(f"{name}: more than {MAX_ILI_ROWS} rows")
            if any(cell.strip() for cell in record):
                rows.append((line, list(record)))
            line = reader.line_num + 1
    except csv.Error as exc:
        raise IliError(f"{name}: not a readable CSV file near line {line}: {clip(str(exc))}") from None
    return rows, notes, delimiter != ","


def _excel_rows(src: Path, name: str) -> list[tuple[int, list[object]]]:
    """The rows of the first sheet that has an ILI header (or of the first sheet), with sheet row numbers."""
    import openpyxl

    try:
        book = openpyxl.load_workbook(src, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for a damaged workbook
        raise IliError(f"{name}: not a readable Excel workbook: {clip(str(exc))}") from None
    try:
        first: list[tuple[int, list[object]]] | None = None
        for sheet in book.worksheets:
            rows: list[tuple[int, list[object]]] = []
            for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
                if len(rows) >= MAX_ILI_ROWS:
                    raise IliError(f"{name}: more than {MAX_ILI_ROWS} rows")
                cells = list(values)
                if any(c is not None and str(c).strip() for c in cells):
                    rows.append((number, cells))
            if first is None:
                first = rows
            try:
                _find_header(rows, name)
            except IliError:
                continue
            return rows
        return first or []
    finally:
        book.close()


def _find_header(rows: list[tuple[int, list[object]]], name: str) -> int:
    """Index of the header row: the first with a log distance column and two more known columns."""
    near: list[str] | None = None
    for i, (_, cells) in enumerate(rows[:HEADER_SCAN_ROWS]):
        columns, _, _ = _header_columns(cells)
        fields = {c.field for c in columns}
        if "log_distance" in fields and len(fields) >= MIN_HEADER_FIELDS:
            return i
        if len(fields) >= MIN_HEADER_FIELDS and near is None:
            near = [c.name for c in columns]
    if near is not None:
        raise IliError(
            f"{name}: no log distance column (looked for Log Distance, Log Dist., Odometer, Absolute Distance); "
            f"found {clip(', '.join(near))}"
        )
    raise IliError(f"{name}: no header row with ILI columns in the first {HEADER_SCAN_ROWS} rows")


def _units_row(
    columns: list[_Column], body: list[tuple[int, list[object]]]
) -> tuple[list[_Column], list[tuple[int, list[object]]]]:
    """Take units from a row right under the header when every filled cell of it is a unit."""
    if not body:
        return columns, body
    cells = body[0][1]
    filled = [(i, str(c).strip()) for i, c in enumerate(cells) if c is not None and str(c).strip()]
    if not filled or not all(_unit(text.strip("[]()")) is not None for _, text in filled):
        return columns, body
    units = {i: _unit(text.strip("[]()")) for i, text in filled}
    updated = [
        _Column(c.index, c.name, c.field, c.key, c.unit if c.unit is not None else units.get(c.index) or None)
        for c in columns
    ]
    return updated, body[1:]


def _run_date(
    date: pd.Timestamp | dt.datetime | str | None, preamble: list[tuple[int, list[object]]], src: Path, name: str
) -> pd.Timestamp:
    """The run's date: given, from a ``date`` line above the header, or from the file name."""
    if date is not None:
        try:
            return to_utc(date, what=f"{name}: run date")
        except UtcTimeError as exc:
            raise IliError(str(exc)) from None
    for _, cells in preamble:
        texts = [str(c).strip() for c in cells if c is not None and str(c).strip()]
        for k, text in enumerate(texts):
            if "date" not in text.lower():
                continue
            candidates = [text.split(":", 1)[1]] if ":" in text else []
            candidates += texts[k + 1 : k + 2]
            for cand in candidates:
                try:
                    return to_utc(cand.strip(), what="run date")
                except UtcTimeError:
                    continue
    found = _DATE_IN_NAME.search(src.stem)
    if found:
        return to_utc(f"{found.group(1)}-{found.group(2)}-{found.group(3)}")
    raise IliError(f"{name}: no run date in the file or its name; pass date=")


# --- rows ----------------------------------------------------------------------------------------


def _parse_rows(
    body: list[tuple[int, list[object]]],
    columns: list[_Column],
    unit_columns: dict[str, int],
    header: list[object],
    decimal_comma: bool,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Canonical features, welds and quarantined rows from the rows under the header."""
    by_field = {c.field: c for c in columns}
    good: list[dict[str, Any]] = []
    welds: list[tuple[float, float]] = []
    bad: list[tuple[int, list[object], str]] = []
    seen: dict[str, int] = {}
    for line, cells in body:
        try:
            record = _parse_row(cells, by_field, unit_columns, decimal_comma)
        except _RowError as exc:
            bad.append((line, cells, str(exc)))
            continue
        fid = record["feature_id"]
        if fid:
            if fid in seen:
                bad.append((line, cells, f"duplicate feature id {shorten(fid)} (first on row {seen[fid]})"))
                continue
            seen[fid] = line
        if record["feature_type"] == "girth_weld":
            welds.append((record["weld_number"], record["log_distance_m"]))
        else:
            good.append(record)
    features = pd.DataFrame(good, columns=[*FEATURE_COLUMNS, "_comment"])
    features = _typed(features)
    weld_frame = pd.DataFrame(welds, columns=["weld_number", "log_distance_m"], dtype=float)
    weld_frame["chainage_m"] = np.nan
    return features, weld_frame, _quarantine_frame(bad, header)


def _typed(features: pd.DataFrame) -> pd.DataFrame:
    """The canonical frame with its dtypes (str columns as object, the rest float)."""
    text = ("feature_id", "feature_type", "dimension_class", "surface", "_comment")
    for col in features.columns:
        features[col] = features[col].astype(object if col in text else float)
    return features


def _quarantine_frame(bad: list[tuple[int, list[object], str]], header: list[object]) -> pd.DataFrame:
    """Refused rows as strings under the file's headers, with ``reason`` and ``row``."""
    names: list[str] = []
    for i, cell in enumerate(header):
        text = "" if cell is None else str(cell).strip()
        name = text or f"column {i + 1}"
        while name in names or name in ("reason", "row"):
            name += "_"
        names.append(name)
    records = []
    for line, cells, reason in bad:
        values = {n: _text(cells[i]) if i < len(cells) else "" for i, n in enumerate(names)}
        records.append({**values, "reason": reason, "row": line})
    frame = pd.DataFrame(records, columns=[*names, "reason", "row"])
    frame["row"] = frame["row"].astype(int)
    return frame


def _text(value: object) -> str:
    """A cell as the string a person would see."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class _Cells:
    """One row's cells read by field, with the reasons collected while reading them."""

    def __init__(
        self, cells: list[object], by_field: dict[str, _Column], unit_columns: dict[str, int], decimal_comma: bool
    ) -> None:
        self.cells = cells
        self.by_field = by_field
        self.unit_columns = unit_columns
        self.decimal_comma = decimal_comma
        self.reasons: list[str] = []
        self.system = "metric"

    def has(self, fld: str) -> bool:
        """Whether the file has a column for a field."""
        return fld in self.by_field

    def cell(self, fld: str) -> object:
        """The raw cell of a field (None when the column is missing or the cell blank)."""
        col = self.by_field.get(fld)
        if col is None or col.index >= len(self.cells):
            return None
        value = self.cells[col.index]
        return None if isinstance(value, str) and not value.strip() else value

    def text(self, fld: str) -> str:
        """A field's cell as stripped text ('' when blank)."""
        return _text(self.cell(fld)).strip()

    def unit(self, fld: str) -> str:
        """The unit of a field in this row: its unit column, its header, or the unit system's."""
        col = self.by_field[fld]
        quantity = _QUANTITY[fld]
        index = self.unit_columns.get(fld)
        if index is not None and index < len(self.cells) and _text(self.cells[index]).strip():
            token = _text(self.cells[index])
            unit = _unit(token.strip("[]()"))
            if unit is None or unit not in _FACTORS[quantity]:
                raise _RowError(f"unknown unit {shorten(token)} for {col.name!r}")
            return unit
        if col.unit:
            if col.unit not in _FACTORS[quantity]:
                raise _RowError(f"unit {col.unit!r} does not fit {col.name!r}")
            return col.unit
        if quantity == "clock":
            return "deg" if col.key.startswith("orientation") else "h"
        return _SYSTEMS[self.system][quantity]

    def number(self, fld: str) -> float:
        """A field's cell as a plain number (NaN when missing; a reason when unparseable)."""
        value = self.cell(fld)
        if value is None:
            return math.nan
        try:
            return _number(value, self.decimal_comma)
        except _RowError:
            self.reasons.append(f"unparseable number in {self.by_field[fld].name!r}: {shorten(_text(value))}")
            return math.nan

    def measured(self, fld: str) -> float:
        """A field's cell converted to SI by its unit (NaN when missing or bad)."""
        if not self.has(fld):
            return math.nan
        value = self.number(fld)
        if math.isnan(value):
            return value
        try:
            return value * _FACTORS[_QUANTITY[fld]][self.unit(fld)]
        except _RowError as exc:
            self.reasons.append(str(exc))
            return math.nan

    def clock(self) -> float:
        """Clock position in hours [0, 12) from ``4:30``, a time cell, hours or degrees."""
        value = self.cell("clock")
        if isinstance(value, dt.datetime):
            value = value.time()
        if isinstance(value, dt.time):
            return (value.hour + value.minute / 60 + value.second / 3600) % 12.0
        if value is None:
            return math.nan
        text = _text(value).strip()
        hours = math.nan
        match = _CLOCK.match(text)
        if match:
            h, m, s = int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)
            if h <= HOURS_ON_CLOCK and max(m, s) < MINUTES_PER_HOUR:
                hours = h + m / 60 + s / 3600
        else:
            try:
                number, unit = _number(value, decimal_comma=True), self.unit("clock")
            except _RowError:
                number, unit = math.nan, "h"
            limit = 360.0 if unit == "deg" else HOURS_ON_CLOCK
            if 0 <= number <= limit:
                hours = number * _FACTORS["clock"][unit]
        if math.isnan(hours):
            self.reasons.append(f"unparseable clock {shorten(text)}")
            return hours
        return hours % HOURS_ON_CLOCK

    def depth(self, wall_m: float) -> float:
        """Peak depth of a metal-loss feature as a fraction of wall."""
        if self.cell("depth") is None:
            self.reasons.append("missing depth")
            return math.nan
        value = self.number("depth")
        if math.isnan(value):
            return value
        try:
            unit = self.unit("depth")
        except _RowError as exc:
            self.reasons.append(str(exc))
            return math.nan
        if unit == "%":
            return value / 100.0
        if math.isnan(wall_m) or wall_m <= 0:
            self.reasons.append(f"depth in {unit} needs a wall thickness")
            return math.nan
        return value * _FACTORS["depth"][unit] / wall_m


def _parse_row(
    cells: list[object], by_field: dict[str, _Column], unit_columns: dict[str, int], decimal_comma: bool
) -> dict[str, Any]:
    """One row as canonical values.

    Raises:
        _RowError: With every reason the row cannot be used, joined by ``; ``.
    """
    row = _Cells(cells, by_field, unit_columns, decimal_comma)
    row.system = _row_system(row.cell("units"), row.reasons)
    fid = row.text("feature_id")
    ftype = _feature_type(row.cell("event"), row.reasons)
    if row.cell("log_distance") is None:
        row.reasons.append("missing log distance")
    log_m = row.measured("log_distance")
    weld_number = row.number("weld_number") if row.has("weld_number") else math.nan
    weld_m = row.measured("weld_distance")
    clock = row.clock() if row.has("clock") else math.nan
    wall_m = row.measured("wall")
    length_m = row.measured("length")
    width_m = row.measured("width")
    depth_frac = row.depth(wall_m) if ftype == "metal_loss" else math.nan
    if ftype == "metal_loss":
        _check_metal_loss(depth_frac, length_m, row.cell("length") is None, row.reasons)
    elif not math.isnan(length_m) and length_m < 0:
        row.reasons.append("negative length")
    if not math.isnan(width_m) and width_m < 0:
        row.reasons.append("negative width")
    if not math.isnan(wall_m) and wall_m <= 0:
        row.reasons.append("wall thickness must be > 0")
    if not fid and ftype != "girth_weld":
        row.reasons.append("missing feature id")
    erf = row.number("erf") if row.has("erf") else math.nan
    failure_pa = row.measured("failure")
    row.measured("safe")
    if row.reasons:
        raise _RowError("; ".join(dict.fromkeys(row.reasons)))
    return {
        "feature_id": fid,
        "log_distance_m": log_m,
        "chainage_m": math.nan,
        "weld_number": weld_number,
        "weld_distance_m": 0.0 if ftype == "girth_weld" else weld_m,
        "clock_h": clock,
        "feature_type": ftype,
        "dimension_class": _DIM_CLASSES.get(_norm(row.text("dimension_class")), ""),
        "depth_frac": depth_frac,
        "length_m": length_m,
        "width_m": width_m,
        "surface": _SURFACES.get(_norm(row.text("surface")), ""),
        "wall_m": wall_m,
        "vendor_erf": erf,
        "vendor_failure_pa": failure_pa,
        "_comment": row.text("comment"),
    }


def _feature_type(raw: object, reasons: list[str]) -> str | None:
    """The canonical feature type of a vendor's event name (None, with a reason, when unknown)."""
    if raw is None:
        reasons.append("missing feature type")
        return None
    found = _EVENTS.get(_norm(_text(raw)))
    if found is None:
        reasons.append(f"unknown feature type {shorten(_text(raw))}")
    return found


def _row_system(value: object, reasons: list[str]) -> str:
    """The unit system a units column gives for a row (metric when there is none)."""
    if value is None:
        return "metric"
    system = _SYSTEM_NAMES.get(_norm(_text(value)))
    if system is None:
        reasons.append(f"unknown unit {shorten(_text(value))}")
        return "metric"
    return system


def _number(value: object, decimal_comma: bool) -> float:
    """A finite number from a cell (``12.5``, ``12,5`` in a semicolon file, ``<10``, ``45 %``)."""
    if isinstance(value, bool):
        raise _RowError("not a number")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise _RowError("not a number")
        return float(value)
    text = str(value).strip().replace("\u00a0", "").replace(" ", "").lstrip("<>~").rstrip("%")
    if "," in text and "." not in text and decimal_comma:
        text = text.replace(",", ".")
    elif "," in text and re.fullmatch(r"[+-]?\d{1,3}(,\d{3})+(\.\d*)?", text):
        text = text.replace(",", "")
    if not _NUMBER.match(text):
        raise _RowError("not a number")
    return float(text)


def _check_metal_loss(depth_frac: float, length_m: float, length_missing: bool, reasons: list[str]) -> None:
    """Reasons a metal-loss feature's depth or length cannot be assessed."""
    if depth_frac > 1.0:
        reasons.append(f"depth over 100 % of wall ({depth_frac * 100:g} %)")
    elif depth_frac < 0.0:
        reasons.append(f"negative depth ({depth_frac * 100:g} %)")
    if length_missing:
        reasons.append("missing length")
    elif length_m == 0.0:
        reasons.append("zero length")
    elif length_m < 0.0:
        reasons.append("negative length")


def _fill_welds(features: pd.DataFrame, welds: pd.DataFrame) -> pd.DataFrame:
    """Fill a feature's upstream weld and distance to it from the weld list where the file leaves them out."""
    if features.empty or welds.empty:
        return features
    order = welds.sort_values("log_distance_m", kind="stable")
    weld_log = order["log_distance_m"].to_numpy(float)
    weld_no = order["weld_number"].to_numpy(float)
    log = features["log_distance_m"].to_numpy(float)
    k = np.searchsorted(weld_log, log, side="right") - 1
    inside = k >= 0
    up_no = np.where(inside, weld_no[np.clip(k, 0, None)], np.nan)
    up_log = np.where(inside, weld_log[np.clip(k, 0, None)], np.nan)
    number = features["weld_number"].to_numpy(float)
    missing = np.isnan(number)
    features["weld_number"] = np.where(missing, up_no, number)
    dist = features["weld_distance_m"].to_numpy(float)
    features["weld_distance_m"] = np.where(np.isnan(dist) & missing, log - up_log, dist)
    return features


# --- chainage ------------------------------------------------------------------------------------


def _key(name: str) -> str:
    """A marker name for matching: letters and digits only, lowercase (``AGM 010`` = ``agm-010``)."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def _references(features: pd.DataFrame, markers: pd.DataFrame | None, name: str) -> tuple[pd.DataFrame, list[str]]:
    """Detected markers matched by name to the operator's list, and which of them the fit uses."""
    empty = pd.DataFrame(columns=list(REFERENCE_COLUMNS))
    if markers is None:
        return empty, ["no marker list given: chainage = launch chainage + log distance"]
    missing = {"name", "chainage_m"} - set(markers.columns)
    if missing:
        raise IliError(f"{name}: marker list lacks column(s) {', '.join(sorted(missing))}")
    known = {_key(str(n)): (str(n), float(c)) for n, c in zip(markers["name"], markers["chainage_m"], strict=True)}
    notes: list[str] = []
    rows: list[tuple[str, float, float]] = []
    matched: set[str] = set()
    for comment, log in zip(features["_comment"], features["log_distance_m"], strict=True):
        key = _key(str(comment))
        if not key or key not in known:
            continue
        label, chainage = known[key]
        if key in matched:
            notes.append(f"marker {label!r} detected more than once; the first is used")
            continue
        matched.add(key)
        rows.append((label, float(log), chainage))
    if not rows:
        return empty, ["no marker of the list was detected: chainage = launch chainage + log distance"]
    frame = pd.DataFrame(rows, columns=["name", "log_distance_m", "chainage_m"]).sort_values(
        "log_distance_m", kind="stable"
    )
    used = _increasing(frame["chainage_m"].to_numpy(float), frame["log_distance_m"].to_numpy(float))
    frame["used"] = used
    for label in frame.loc[~frame["used"], "name"]:
        notes.append(f"marker {label!r} is out of order with the others (or at the same place) and is not used")
    n = int(frame["used"].sum())
    notes.append(
        f"chainage mapped through {n} marker{'s' if n != 1 else ''}"
        + (" (one marker: odometer scale taken as 1)" if n == 1 else "")
    )
    return frame.reset_index(drop=True), notes


def _increasing(chainage: FloatArray, log: FloatArray) -> NDArray[np.bool_]:
    """Mask of the longest run of points (in log order) whose chainage and log both strictly increase."""
    n = len(chainage)
    best = np.ones(n, dtype=int)
    prev = np.full(n, -1)
    for i in range(n):
        for j in range(i):
            if chainage[j] < chainage[i] and log[j] < log[i] and best[j] + 1 > best[i]:
                best[i], prev[i] = best[j] + 1, j
    keep = np.zeros(n, dtype=bool)
    i = int(np.argmax(best)) if n else -1
    while i >= 0:
        keep[i] = True
        i = int(prev[i])
    return keep


def chainage_from_log(log_distance_m: ArrayLike, ref_log_m: ArrayLike, ref_chainage_m: ArrayLike) -> FloatArray:
    """Map odometer distances onto chainage, piecewise linear through reference points.

    Between two reference points the map is linear; beyond the first or last it goes on with the
    scale of the nearest segment. With one point the scale is 1.

    Args:
        log_distance_m: Odometer distances to map, m.
        ref_log_m: Odometer distances of the reference points, strictly increasing, m.
        ref_chainage_m: Their chainage, strictly increasing, m.

    Returns:
        Chainage, m, one per odometer distance.

    Raises:
        IliError: No reference point, or points that do not strictly increase.
    """
    x = np.asarray(ref_log_m, dtype=float)
    y = np.asarray(ref_chainage_m, dtype=float)
    log = np.asarray(log_distance_m, dtype=float)
    if len(x) == 0 or len(x) != len(y):
        raise IliError("chainage map: needs reference points with a log distance and a chainage each")
    if len(x) == 1:
        return np.asarray(y[0] + (log - x[0]), dtype=float)
    if np.any(np.diff(x) <= 0) or np.any(np.diff(y) <= 0):
        raise IliError("chainage map: reference points must strictly increase in log distance and chainage")
    out = np.interp(log, x, y)
    first = (y[1] - y[0]) / (x[1] - x[0])
    last = (y[-1] - y[-2]) / (x[-1] - x[-2])
    out = np.where(log < x[0], y[0] + (log - x[0]) * first, out)
    return np.asarray(np.where(log > x[-1], y[-1] + (log - x[-1]) * last, out), dtype=float)


def _chainage(log: FloatArray, references: pd.DataFrame, launch_chainage_m: float) -> FloatArray:
    """Chainage of odometer distances through the used references, or launch chainage + log."""
    used = references[references["used"].astype(bool)] if len(references) else references
    if len(used) == 0:
        return np.asarray(launch_chainage_m + log, dtype=float)
    return chainage_from_log(log, used["log_distance_m"].to_numpy(float), used["chainage_m"].to_numpy(float))


def write_quarantine(run: IliRun, folder: str | Path) -> Path | None:
    """Write a run's quarantined rows, with reasons and row numbers, as ``<run_id>_quarantine.csv``.

    Args:
        run: The run read.
        folder: Folder to write into (created when missing).

    Cells that a spreadsheet would run as a formula (starting with ``=`` or ``@``) are written
    with a leading apostrophe.

    Returns:
        The file written, or None when no row was quarantined.

    Raises:
        UnsafePathError: A run id that would leave the folder.
    """
    if run.quarantined.empty:
        return None
    path = child_path(folder, f"{run.run_id}_quarantine.csv", what="run id")
    path.parent.mkdir(parents=True, exist_ok=True)
    run.quarantined.map(_inert).to_csv(path, index=False)
    return path


def _inert(value: object) -> object:
    """A cell a spreadsheet will not run as a formula (``=...``, ``@...`` get a leading apostrophe)."""
    if isinstance(value, str) and value[:1] in ("=", "@", "\t", "\r"):
        return "'" + value
    return value
