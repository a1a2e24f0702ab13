"""Sources of tag readings: CSV and Parquet files or folders, and in-memory frames from the simulator.

Every reader returns a `SourceResult` and never raises on bad input. A file that cannot be read
at all (empty, no delimiter, missing columns, a truncated or corrupt parquet file, not a regular
file) is *refused*: it yields a `SourceProblem` naming the file and the problem, and no rows. A
row that cannot become a reading (unparseable value, timestamp without time zone, malformed tag,
unknown quality flag, a line with the wrong number of fields) is *rejected*: it is kept, with its
raw fields as text, the file and the reason, in `SourceResult.rejected`, and summarised by one
`SourceProblem` per (file, reason). The good rows of every file go on.

Two table layouts are understood, in CSV (delimiter `,`, `;` or tab, detected) and in Parquet:

* long, PI-style: columns `tag, ts, value, quality` (also `tagname`, `timestamp`, `time`,
  `status`, ...; case and surrounding spaces ignored);
* wide: a timestamp column plus one column per tag, melted to long with quality `good`
  (row by row, each row's cells in column order); empty cells mean "no reading" and produce no row.

Files are read in bounded memory: `iter_path` and `iter_file` yield one `SourceResult` per chunk
of about `chunk_readings` readings (a wide row counts one reading per tag column), and joining
the chunks gives exactly what `read_path` and `read_file` return. Input is not trusted: only
regular files are opened, a folder is walked without following links out of it or around a
cycle, over-long lines and fields are rejected without being held whole, and text from a file
reaches messages only bounded and printable (`twin.safety.shorten`).

Example:
    >>> import pandas as pd
    >>> frame = pd.DataFrame(
    ...     {
    ...         "tag": ["PS01.P1.FLOW_M3S", "PS01.P1.FLOW_M3S"],
    ...         "ts": ["2026-11-01T00:00:00Z", "2026-11-01 00:01:00"],
    ...         "value": ["0.52", "0.53"],
    ...         "quality": ["good", "good"],
    ...     }
    ... )
    >>> result = from_frame(frame, "example")
    >>> len(result.readings), result.rejected["reason"].tolist()
    (1, ['timestamp without time zone'])
"""

from __future__ import annotations

import csv
import io
import logging
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pumptwin.features.ingest.contract import (
    NAT_NS,
    QUALITIES,
    READING_COLUMNS,
    REASON_FIELDS,
    REASON_QUALITY,
    REASON_TAG,
    REASON_TOO_LONG,
    REASON_TS_LOCAL,
    REASON_TS_MISSING,
    REASON_TS_NAIVE,
    REASON_TS_UNPARSED,
    REASON_VALUE,
    REJECTED_COLUMNS,
    TAG_PATTERN,
    TS_DTYPE,
    empty_readings,
    empty_rejected,
    raw_text,
    utc_datetimes,
    utc_ns,
)
from pumptwin.twin.safety import inside, printable, shorten

logger = logging.getLogger(__name__)

CSV_SUFFIXES: tuple[str, ...] = (".csv", ".tsv", ".txt")
"""File endings read as delimited text."""
PARQUET_SUFFIXES: tuple[str, ...] = (".parquet", ".pq")
"""File endings read as Parquet."""
DELIMITERS: tuple[str, ...] = (",", ";", "\t")
"""Delimiters tried on delimited text, in order of preference."""
CHUNK_READINGS = 1_000_000
"""Readings per chunk that `iter_path` and `iter_file` aim for, by default."""
MAX_LINE_CHARS = 1 << 22
"""Longest line of delimited text read (4 Mi characters); a longer line is rejected unread."""

_TAG_ALIASES = ("tag", "tagname", "tag_name", "pointname", "point", "name")
_TS_ALIASES = ("ts", "timestamp", "time_stamp", "time", "datetime", "date_time", "date")
_VALUE_ALIASES = ("value", "val")
_QUALITY_ALIASES = ("quality", "status")

# A time zone at the end of a timestamp: Z, UTC, GMT or a numeric offset after a time digit.
_TZ_SUFFIX = r"(?i)\d\s*(?:Z|UTC|GMT|[+-]\d{2}:?\d{2})$"
_DECIMAL_COMMA = r"^\s*[+-]?\d*,\d+(?:[eE][+-]?\d+)?\s*$"
_MISSING_TEXT = ("", "nan", "NaN", "NAN", "null", "NULL")
_NAT = NAT_NS
_SHOWN_COLUMNS = 12  # columns named in a "missing column(s)" message
_NAME_CHARS = 40  # characters of a column name shown in a message
_ERROR_CHARS = 160  # characters of a library's error message shown in a problem
_SAMPLE_BYTES = 1 << 16  # read to detect the encoding and the delimiter
_MIN_FIELDS = 2  # a header needs at least two fields: timestamp and value
_RAW_CHARS = 256  # characters of a rejected line's raw fields kept in the rejected table
_CHARS_PER_READING = 64  # a chunk of delimited text also ends after chunk_readings * this many characters
_SAMPLE_LINES = 50  # sampled lines used to detect the delimiter

# Reason codes, in the order the checks are applied (the first failing check names the row).
_OK, _BAD_TAG, _TS_MISSING, _TS_NAIVE, _TS_UNPARSED, _TS_LOCAL, _BAD_VALUE, _BAD_QUALITY = range(8)
_REASONS: tuple[str, ...] = ("", REASON_TAG, REASON_TS_MISSING, REASON_TS_NAIVE, REASON_TS_UNPARSED, REASON_TS_LOCAL)
_REASONS += (REASON_VALUE, REASON_QUALITY)
_REASON_FIELD = ("", "tag", "ts", "ts", "ts", "ts", "value", "quality")


@dataclass(frozen=True, slots=True)
class SourceProblem:
    """A problem found in one source: a refused file, or rows of a file rejected for one reason.

    Attributes:
        file: The file (or source name) the problem is in.
        problem: What is wrong, in words a user can act on.
        rows_affected: Rows refused or rejected because of it (0 when unknown or none).
        refused: True when the whole file was refused (no row of it was read).
        reason: For rejected rows, the reason they share (the rejected table's `reason`); the
            problems of one (file, reason) found in several chunks merge into one
            (`merge_problems`). Empty for refusals.
    """

    file: str
    problem: str
    rows_affected: int = 0
    refused: bool = False
    reason: str = ""

    def __str__(self) -> str:
        what = "refused" if self.refused else "rejected"
        return printable(f"{self.file}: {self.problem} ({self.rows_affected} rows {what})")


@dataclass(frozen=True)
class SourceResult:
    """What a source produced: good readings, rejected rows and problems.

    Attributes:
        readings: Readings in the contract's shape (`tag`, `ts`, `value`, `quality`) with a
            RangeIndex.
        rejected: Rows that could not become readings, with raw fields, `source_file`,
            `source_row` and `reason` (see `features.ingest.contract`).
        problems: Refused files and one summary per (file, reason) of rejected rows.
        source: The name of the source (a path, `pi:<host>`, or the simulator's name).
        origin: The file each reading came from, aligned with `readings`' index, for sources
            that read several files; None when every reading came from `source`.
    """

    readings: pd.DataFrame
    rejected: pd.DataFrame
    problems: tuple[SourceProblem, ...] = ()
    source: str = ""
    origin: pd.Series | None = field(default=None, repr=False)

    @property
    def rows_in(self) -> int:
        """Rows read: good readings plus rejected rows (refused files count none)."""
        return len(self.readings) + len(self.rejected)

    @property
    def refused(self) -> tuple[SourceProblem, ...]:
        """Problems that refused a whole file."""
        return tuple(problem for problem in self.problems if problem.refused)

    def origin_of(self, index: pd.Index) -> np.ndarray:
        """Return the file each reading with the given index labels came from.

        Args:
            index: Labels of rows of `readings` (e.g. the index of rows a validator quarantined).

        Returns:
            An object array of file names, `source` where a label is not in `readings`.
        """
        if self.origin is None:
            return np.full(len(index), self.source, dtype=object)
        return self.origin.reindex(index).astype(object).fillna(self.source).to_numpy(dtype=object)


def refused(file: str, problem: str, rows: int = 0) -> SourceResult:
    """Return the result of a file that could not be read at all.

    Args:
        file: The file name.
        problem: What is wrong with it (text taken from the file must already be bounded).
        rows: Rows in the file, when known.

    Returns:
        A `SourceResult` with no rows and one refusing `SourceProblem`.
    """
    logger.warning("%s: %s: file refused", printable(file), printable(problem))
    return SourceResult(
        empty_readings(), empty_rejected(), (SourceProblem(file, problem, rows, refused=True),), source=file
    )


def merge_problems(problems: Iterable[SourceProblem]) -> tuple[SourceProblem, ...]:
    """Merge the problems of one (file, reason) found in several chunks into one.

    The merged problem keeps the first one's text (its example is the file's first such row) and
    adds up the rows affected. Refusals and problems without a reason are kept as they are.

    Args:
        problems: Problems in the order found.

    Returns:
        The problems, one per (file, reason), in the order each was first found.
    """
    merged: dict[object, SourceProblem] = {}
    for number, problem in enumerate(problems):
        key: object = (problem.file, problem.reason) if problem.reason and not problem.refused else number
        first = merged.get(key)
        if first is None:
            merged[key] = problem
        else:
            rows = first.rows_affected + problem.rows_affected
            merged[key] = SourceProblem(first.file, first.problem, rows, first.refused, first.reason)
    return tuple(merged.values())


# --- parsing columns -------------------------------------------------------------------------


def _factorize_text(raw: pd.Series) -> tuple[np.ndarray, list[str | None]]:
    """Factorize a column and return codes and the stripped text of each unique value.

    Missing values (None, NaN, empty or blank text) get text None.
    """
    values = raw.to_numpy(dtype=object)
    if any(value.__class__ is str and "\x00" in value for value in values):
        codes, uniques = _factorize_exactly(values)
    else:
        codes, uniques = pd.factorize(raw, use_na_sentinel=True)
    texts: list[str | None] = []
    for unique in uniques:
        text = unique.strip() if isinstance(unique, str) else None if pd.isna(unique) else str(unique).strip()
        texts.append(text or None)
    return codes, texts


def _factorize_exactly(values: np.ndarray) -> tuple[np.ndarray, list[object]]:
    """Factorize object values one by one (code -1 for missing ones).

    For text holding a NUL character: pandas' string hash table compares C strings, which end
    at the first NUL, so it would take the text before a NUL and the whole text for one value.
    """
    index: dict[object, int] = {}
    codes = np.fromiter(
        (-1 if pd.isna(value) else index.setdefault(value, len(index)) for value in values),
        dtype=np.intp,
        count=len(values),
    )
    return codes, list(index)


def _parse_tags(raw: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Return (tag strings, bad mask); a tag is bad unless named `STATION.ASSET.MEASURE`."""
    codes, texts = _factorize_text(raw)
    clean = np.array([*texts, None], dtype=object)
    ok = np.array([text is not None and TAG_PATTERN.match(text) is not None for text in texts] + [False])
    return clean[codes], ~ok[codes]


def _parse_quality(raw: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Return (canonical quality flags, bad mask); flags are matched without regard to case."""
    codes, texts = _factorize_text(raw)
    canon = [text.lower() if text is not None and text.lower() in QUALITIES else None for text in texts]
    clean = np.array([*canon, None], dtype=object)
    ok = np.array([flag is not None for flag in canon] + [False])
    return clean[codes], ~ok[codes]


def _parse_ts_text(texts: Sequence[str | None], assume_tz: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Parse unique timestamp texts; return (int64 ns UTC, reason code) per text."""
    n = len(texts)
    out = np.full(n, _NAT, dtype=np.int64)
    code = np.full(n, _OK, dtype=np.int8)
    text = pd.Series([t if t is not None else "" for t in texts], dtype=object)
    missing = (text == "").to_numpy()
    code[missing] = _TS_MISSING
    aware = text.str.contains(_TZ_SUFFIX, regex=True).to_numpy(dtype=bool) & ~missing
    naive = ~aware & ~missing
    if aware.any():
        parsed = pd.to_datetime(text[aware], utc=True, format="ISO8601", errors="coerce")
        retry = parsed.isna().to_numpy()
        if retry.any():  # "2026-11-01 00:00:00 UTC" and other forms ISO 8601 does not cover
            parsed[retry] = pd.to_datetime(text[aware][retry], utc=True, format="mixed", errors="coerce")
        values = utc_ns(parsed)
        out[aware] = values
        code[np.flatnonzero(aware)[values == _NAT]] = _TS_UNPARSED
    if naive.any():
        local = pd.to_datetime(text[naive], format="ISO8601", errors="coerce")
        unparsed = local.isna().to_numpy()
        where = np.flatnonzero(naive)
        code[where[unparsed]] = _TS_UNPARSED
        if assume_tz is None:
            code[where[~unparsed]] = _TS_NAIVE
        else:
            localized = local.dt.tz_localize(assume_tz, ambiguous="NaT", nonexistent="NaT")
            values = utc_ns(localized)
            out[where] = values
            code[where[(values == _NAT) & ~unparsed]] = _TS_LOCAL
    return out, code


def _parse_ts(raw: pd.Series, assume_tz: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Return (int64 ns UTC, reason code) per row of a timestamp column of any dtype."""
    dtype = raw.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        values = utc_ns(raw)
        return values, np.where(values == _NAT, _TS_MISSING, _OK).astype(np.int8)
    if pd.api.types.is_datetime64_dtype(dtype):  # no time zone
        if assume_tz is None:
            code = np.where(raw.isna().to_numpy(), _TS_MISSING, _TS_NAIVE).astype(np.int8)
            return np.full(len(raw), _NAT, dtype=np.int64), code
        missing = raw.isna().to_numpy()
        values = utc_ns(raw.dt.tz_localize(assume_tz, ambiguous="NaT", nonexistent="NaT"))
        code = np.where(missing, _TS_MISSING, np.where(values == _NAT, _TS_LOCAL, _OK)).astype(np.int8)
        return values, code
    # Text, or Python objects: parse each distinct value once (rows share timestamps across tags).
    codes, texts = _factorize_text(raw)
    values, code = _parse_ts_text(texts, assume_tz)
    values = np.append(values, _NAT)[codes]
    code = np.append(code, np.int8(_TS_MISSING))[codes]
    return values, code


def _parse_values(
    raw: pd.Series, decimal_comma: bool, numeric: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return (float64 values, bad mask); missing values become NaN and are not bad.

    `numeric`, when given, is `pd.to_numeric(raw, errors="coerce")` already computed.
    """
    dtype = raw.dtype
    if pd.api.types.is_bool_dtype(dtype) or (
        pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype)
    ):
        return raw.to_numpy(dtype=np.float64, na_value=np.nan), np.zeros(len(raw), dtype=bool)
    if isinstance(dtype, pd.CategoricalDtype):
        raw = raw.astype(object)
    if numeric is None:
        numeric = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    values = np.array(numeric, dtype=np.float64)
    failed = np.isnan(values)
    if not failed.any():
        return values, failed
    where = np.flatnonzero(failed)
    subset = raw.iloc[where]
    text = subset.where(subset.notna(), "").astype(str).str.strip()
    missing = text.isin(_MISSING_TEXT).to_numpy()
    if decimal_comma:
        comma = text.str.match(_DECIMAL_COMMA).to_numpy(dtype=bool)
        if comma.any():
            fixed = pd.to_numeric(text[comma].str.replace(",", ".", regex=False), errors="coerce")
            values[where[comma]] = fixed.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.zeros(len(raw), dtype=bool)
    bad[where] = np.isnan(values[where]) & ~missing
    return values, bad


@dataclass(frozen=True, slots=True)
class _Parsed:
    """Columns already parsed by the caller (a wide table parses tags per column, times per row)."""

    tags: tuple[np.ndarray, np.ndarray] | None = None
    ts: tuple[np.ndarray, np.ndarray] | None = None
    numeric: np.ndarray | None = None


def _normalise(
    tag: pd.Series,
    ts: pd.Series,
    value: pd.Series,
    quality: pd.Series | None,
    *,
    source: str,
    assume_tz: str | None,
    decimal_comma: bool,
    source_rows: np.ndarray | None = None,
    parsed: _Parsed | None = None,
) -> SourceResult:
    """Turn four raw columns (any dtypes, same length) into readings and rejected rows.

    Args:
        tag: Raw tag names.
        ts: Raw timestamps (text, naive or tz-aware datetimes).
        value: Raw values (numbers or text).
        quality: Raw quality flags; None means every row is `good`.
        source: The file or source name, written to `source_file`.
        assume_tz: Time zone (IANA name) for timestamps without one; None rejects those rows.
        decimal_comma: Also accept `12,5` as a number (files delimited by `;` or tab).
        source_rows: 1-based row number of each row in its source; default 1..n.
        parsed: Columns the caller has already parsed (their raw columns are still needed for
            the rejected rows' text).

    Returns:
        The readings, the rejected rows and one problem per rejection reason.
    """
    parsed = parsed or _Parsed()
    n = len(tag)
    tags, bad_tag = parsed.tags if parsed.tags is not None else _parse_tags(tag)
    ts_i8, ts_code = parsed.ts if parsed.ts is not None else _parse_ts(ts, assume_tz)
    values, bad_value = _parse_values(value, decimal_comma, parsed.numeric)
    if quality is None:
        flags = np.empty(n, dtype=object)
        flags[:] = "good"  # one shared string (np.full would make a string per row)
        bad_quality = np.zeros(n, dtype=bool)
    else:
        flags, bad_quality = _parse_quality(quality)

    code = np.zeros(n, dtype=np.int8)
    code[bad_quality] = _BAD_QUALITY
    code[bad_value] = _BAD_VALUE
    np.copyto(code, ts_code, where=ts_code != _OK)
    code[bad_tag] = _BAD_TAG
    good = code == _OK
    all_good = bool(good.all())

    def pick(array: np.ndarray) -> np.ndarray:
        return array if all_good else array[good]

    readings = pd.DataFrame(
        {
            "tag": pick(tags),
            "ts": utc_datetimes(pick(ts_i8)),
            "value": pick(values),
            "quality": pick(flags),
        }
    )
    if all_good:
        return SourceResult(readings, empty_rejected(), (), source=source)

    bad_rows = np.flatnonzero(~good)
    reasons = code[bad_rows]
    raw = {
        "tag": raw_text(tag.iloc[bad_rows]),
        "ts": raw_text(ts.iloc[bad_rows]),
        "value": raw_text(value.iloc[bad_rows]),
        "quality": raw_text(quality.iloc[bad_rows]) if quality is not None else np.full(len(bad_rows), "good"),
    }
    rows = source_rows[bad_rows] if source_rows is not None else bad_rows + 1
    rejected = pd.DataFrame(
        {
            **raw,
            "source_file": source,
            "source_row": pd.array(rows, dtype="Int64"),
            "reason": np.asarray(_REASONS, dtype=object)[reasons],
        },
        columns=list(REJECTED_COLUMNS),
    )
    problems = []
    for reason_code in dict.fromkeys(reasons.tolist()):  # in the order of their first row
        first = int(np.argmax(reasons == reason_code))
        column = _REASON_FIELD[reason_code]
        example = f"e.g. row {rows[first]}: {column}={shorten(raw[column][first])}"
        count = int((reasons == reason_code).sum())
        reason = _REASONS[reason_code]
        problems.append(SourceProblem(source, f"{reason} ({example})", count, reason=reason))
        logger.warning("%s: %d rows rejected: %s", printable(source), count, problems[-1].problem)
    return SourceResult(readings, rejected, tuple(problems), source=source)


# --- tables ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where the readings are in a table: the columns of a long table, or a wide table's.

    Attributes:
        ts: The timestamp column.
        tag: The tag column of a long table; None for a wide table.
        value: The value column of a long table.
        quality: The quality column of a long table; None when every row takes `default_quality`.
        tag_columns: The tag columns of a wide table (every column but `ts`); empty for a long one.
        default_quality: Quality of rows of a long table without a quality column.
    """

    ts: object
    tag: object = None
    value: object = None
    quality: object = None
    tag_columns: tuple[object, ...] = ()
    default_quality: str | None = None

    @property
    def wide(self) -> bool:
        """True for a wide table (a timestamp column plus one column per tag)."""
        return self.tag is None

    @property
    def readings_per_row(self) -> int:
        """Readings one row of the table can hold."""
        return max(len(self.tag_columns), 1) if self.wide else 1


def _find(columns: dict[str, object], aliases: Iterable[str]) -> object | None:
    """Return the original name of the first column whose normalised name is one of `aliases`."""
    for alias in aliases:
        if alias in columns:
            return columns[alias]
    return None


def _shown(name: object) -> str:
    """Return a column name for a message: as it is when short, else bounded; always printable."""
    text = str(name)
    return printable(text) if len(text) <= _NAME_CHARS else shorten(text, _NAME_CHARS)


def _plan(names: Sequence[object], default_quality: str | None = None) -> _Layout | str:
    """Recognise a long or wide table by its column names (see the module docstring).

    Args:
        names: The table's column names, in order.
        default_quality: Quality for a long table without a quality column; None refuses it.

    Returns:
        The layout, or why the table cannot be read (bounded, printable text).
    """
    columns = {str(name).strip().lower().replace(" ", "_"): name for name in names}
    tag_col = _find(columns, _TAG_ALIASES)
    ts_col = _find(columns, _TS_ALIASES)
    value_col = _find(columns, _VALUE_ALIASES)
    quality_col = _find(columns, _QUALITY_ALIASES)
    found = ", ".join(map(_shown, names[:_SHOWN_COLUMNS])) + (", ..." if len(names) > _SHOWN_COLUMNS else "")

    if tag_col is not None or value_col is not None or quality_col is not None:  # long, PI-style
        needed = {"tag": tag_col, "ts": ts_col, "value": value_col}
        if default_quality is None:
            needed["quality"] = quality_col
        missing = [name for name, column in needed.items() if column is None]
        if missing:
            return f"missing column(s): {', '.join(missing)} (found: {found})"
        return _Layout(ts=ts_col, tag=tag_col, value=value_col, quality=quality_col, default_quality=default_quality)

    if ts_col is None:
        hint = " for a wide table" if any(TAG_PATTERN.match(str(c).strip()) for c in names) else ""
        needed_cols = "ts (a timestamp column)" if hint else "tag, ts, value, quality"
        return f"missing column(s): {needed_cols}{hint} (found: {found})"
    tag_columns = tuple(c for c in names if c != ts_col)
    if not tag_columns:
        return f"wide table has a timestamp column {shorten(str(ts_col))} but no tag columns"
    return _Layout(ts=ts_col, tag_columns=tag_columns)


def _apply(
    frame: pd.DataFrame,
    layout: _Layout,
    source: str,
    *,
    assume_tz: str | None,
    decimal_comma: bool,
    source_rows: np.ndarray,
) -> SourceResult:
    """Normalise the rows of a table laid out as `layout`.

    Args:
        frame: Rows of the table (any index).
        layout: Where the readings are (from `_plan`).
        source: The file or source name.
        assume_tz: Time zone for timestamps without one; None rejects those rows.
        decimal_comma: Also accept `12,5` as a number.
        source_rows: 1-based row number in the source of each row of `frame`.

    Returns:
        The readings, rejected rows and problems of these rows.
    """
    if layout.wide:
        return _melt_wide(
            frame, layout, source, assume_tz=assume_tz, decimal_comma=decimal_comma, source_rows=source_rows
        )
    frame = frame.reset_index(drop=True)
    quality = (
        frame[layout.quality]
        if layout.quality is not None
        else pd.Series(layout.default_quality, index=frame.index, dtype=object)
    )
    return _normalise(
        frame[layout.tag],
        frame[layout.ts],
        frame[layout.value],
        quality,
        source=source,
        assume_tz=assume_tz,
        decimal_comma=decimal_comma,
        source_rows=source_rows,
    )


def _from_table(
    frame: pd.DataFrame,
    source: str,
    *,
    assume_tz: str | None,
    decimal_comma: bool = False,
    default_quality: str | None = None,
) -> SourceResult:
    """Recognise a long or wide table and normalise it whole (see the module docstring)."""
    if len(frame) == 0:
        return refused(source, "empty file: no data rows")
    layout = _plan(list(frame.columns), default_quality)
    if isinstance(layout, str):
        return refused(source, layout, len(frame))
    rows = np.arange(1, len(frame) + 1)
    return _apply(frame, layout, source, assume_tz=assume_tz, decimal_comma=decimal_comma, source_rows=rows)


def _present_cells(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Return the positions of non-empty cells of a wide table and, for text, their numbers.

    Empty means missing, empty text or blanks only. For text cells the numbers
    (`pd.to_numeric`, NaN where not a number) are returned too, so they are parsed once.
    """
    series = pd.Series(flat)
    present = series.notna().to_numpy()
    if series.dtype != object:
        return np.flatnonzero(present), None
    keep = np.flatnonzero(present)
    cells = series.iloc[keep]
    numeric = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    failed = np.flatnonzero(np.isnan(numeric))
    if len(failed):  # only cells that are not numbers can be blank
        text = cells.iloc[failed].astype(str).str.strip()
        blank = np.zeros(len(keep), dtype=bool)
        blank[failed[(text == "").to_numpy()]] = True
        if blank.any():
            keep, numeric = keep[~blank], numeric[~blank]
    return keep, numeric


def _melt_wide(
    frame: pd.DataFrame,
    layout: _Layout,
    source: str,
    *,
    assume_tz: str | None,
    decimal_comma: bool,
    source_rows: np.ndarray,
) -> SourceResult:
    """Melt a wide table (timestamp column plus one column per tag) to long readings, row by row."""
    tag_cols = list(layout.tag_columns)
    k = len(tag_cols)
    flat = frame[tag_cols].to_numpy().ravel(order="C")
    keep, numeric = _present_cells(flat)
    rows, cols = keep // k, keep % k
    names = pd.Series(np.asarray([str(c).strip() for c in tag_cols], dtype=object))
    tag_text, tag_bad = _parse_tags(names)
    raw_ts = frame[layout.ts].reset_index(drop=True)
    ts_i8, ts_code = _parse_ts(raw_ts, assume_tz)
    parsed = _Parsed(tags=(tag_text[cols], tag_bad[cols]), ts=(ts_i8[rows], ts_code[rows]), numeric=numeric)
    return _normalise(
        pd.Series(names.to_numpy()[cols]),
        raw_ts.take(rows).reset_index(drop=True),
        pd.Series(flat[keep]),
        None,
        source=source,
        assume_tz=assume_tz,
        decimal_comma=decimal_comma,
        source_rows=np.asarray(source_rows)[rows],
        parsed=parsed,
    )


# --- files -----------------------------------------------------------------------------------

_LINK_OUT = "symbolic link to outside the folder: not read"
_LINK_LOOP = "symbolic link that cannot be resolved (a loop of links?): not read"
_PARQUET_ERRORS = (pa.ArrowException, OSError, ValueError, TypeError, KeyError, IndexError)
_NOT_REGULAR = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _check_chunk(chunk_readings: int) -> None:
    """Refuse a chunk size below one reading.

    Raises:
        ValueError: When `chunk_readings` < 1.
    """
    if chunk_readings < 1:
        raise ValueError(f"chunk_readings must be at least 1, got {chunk_readings}")


def _not_regular(mode: int) -> str | None:
    """Say what a file that is not a regular file is (a folder, a named pipe, ...); None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return next((what for test, what in _NOT_REGULAR if test(mode)), "not a regular file")


def _open_regular(path: Path) -> tuple[BinaryIO | None, str]:
    """Open a regular file for reading; never open (and so never block on) a pipe or a device.

    Args:
        path: The file.

    Returns:
        (the open binary file, "") or (None, why it is not read).
    """
    try:
        kind = _not_regular(os.stat(path).st_mode)
        if kind is not None:
            return None, f"not a regular file ({kind}): not read"
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except (OSError, ValueError) as exc:
        return None, f"cannot read the file: {printable(getattr(exc, 'strerror', None) or str(exc))}"
    try:
        info = os.fstat(fd)
        kind = _not_regular(info.st_mode)  # the name may have been swapped since it was checked
        if kind is not None:
            os.close(fd)
            return None, f"not a regular file ({kind}): not read"
        if info.st_size == 0:
            os.close(fd)
            return None, "empty file (0 bytes)"
        return os.fdopen(fd, "rb"), ""
    except OSError as exc:
        os.close(fd)
        return None, f"cannot read the file: {printable(exc.strerror or str(exc))}"


def _said(exc: BaseException) -> str:
    """Return an exception's message for a problem: bounded and printable."""
    text = " ".join(str(exc).split())  # one line
    return printable(text if len(text) <= _ERROR_CHARS else text[:_ERROR_CHARS] + "...")


def _detect_encoding(head: bytes) -> str:
    """Return the encoding of a file from its first bytes: UTF-16 (by its mark), UTF-8, else Latin-1."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    try:
        head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if len(head) < _SAMPLE_BYTES or exc.start < len(head) - 4:  # not a character cut by the sample's end
            return "latin-1"
    return "utf-8-sig"


def _detect_delimiter(lines: Sequence[str]) -> str | None:
    """Return the delimiter (`,`, `;` or tab) that splits the header into >1 fields most consistently."""
    best: tuple[float, int, int] | None = None
    choice = None
    for rank, delimiter in enumerate(DELIMITERS):
        try:
            counts = [len(row) for row in csv.reader(lines, delimiter=delimiter)]
        except csv.Error:
            continue
        if not counts or counts[0] < _MIN_FIELDS:
            continue
        consistency = sum(count == counts[0] for count in counts) / len(counts)
        score = (consistency, counts[0], -rank)
        if best is None or score > best:
            best, choice = score, delimiter
    return choice


class _LineFeed:
    """The lines of a text stream for `csv.reader`, none longer than `limit` characters.

    A longer line is not held: it is skipped to its end, given to the reader as an empty line,
    and remembered (its number and first characters) in `cut`, so its record can be rejected.
    `chars` counts the characters given out, to end chunks by size.
    """

    __slots__ = ("_limit", "_stream", "chars", "cut", "lines")

    def __init__(self, stream: io.TextIOBase, limit: int) -> None:
        self._stream = stream
        self._limit = limit
        self.lines = 0
        self.chars = 0
        self.cut: dict[int, str] = {}

    def __iter__(self) -> _LineFeed:
        return self

    def __next__(self) -> str:
        line = self._stream.readline(self._limit)
        if not line:
            raise StopIteration
        self.lines += 1
        if len(line) >= self._limit and line[-1] not in "\r\n":
            self.cut[self.lines] = line[:_RAW_CHARS]
            while (more := self._stream.readline(self._limit)) and more[-1] not in "\r\n":
                pass
            line = "\n"
        self.chars += len(line)
        return line


def _records(reader: Iterator[list[str]], feed: _LineFeed) -> Iterator[tuple[list[str], str]]:
    """Yield (fields, reason) per non-blank record; reason is "" or why the record cannot be read.

    A record that includes a cut line, or a field over the csv field limit, comes with
    `REASON_TOO_LONG` (and at most the cut line's first characters as its one field).
    """
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            cut = _pop_cut(feed)
            too_long = cut is not None or "field limit" in str(exc)
            yield [cut or ""], REASON_TOO_LONG if too_long else REASON_FIELDS
            continue
        if feed.cut:  # every line the reader took so far belongs to this record or was popped before
            yield [_pop_cut(feed) or ""], REASON_TOO_LONG
        elif fields and (len(fields) > 1 or fields[0].strip()):
            yield fields, ""


def _pop_cut(feed: _LineFeed) -> str | None:
    """Forget the cut lines; return the first one's first characters (None when none was cut)."""
    if not feed.cut:
        return None
    first = feed.cut[min(feed.cut)]
    feed.cut.clear()
    return first


def _column_names(header: list[str]) -> list[str]:
    """Name a header's columns as pandas does: `Unnamed: i` for empty names, `name.1` for repeats."""
    names: list[str] = []
    taken: set[str] = set()
    for number, raw in enumerate(header):
        base = raw if raw.strip() else f"Unnamed: {number}"
        name, repeat = base, 0
        while name in taken:
            repeat += 1
            name = f"{base}.{repeat}"
        taken.add(name)
        names.append(name)
    return names


def _joined(fields: list[str], delimiter: str, limit: int = _RAW_CHARS) -> str:
    """Join fields back into their line, stopping after about `limit` characters."""
    out: list[str] = []
    size = 0
    for text in fields:
        out.append(text[: limit - size + 1])
        size += len(text) + 1
        if size > limit:
            break
    return delimiter.join(out)[:limit]


@dataclass(frozen=True, slots=True)
class _CsvTable:
    """What the header of a delimited text file says: its columns, layout and delimiter."""

    name: str
    columns: list[str]
    layout: _Layout
    delimiter: str
    assume_tz: str | None

    def raw_fields(self, fields: list[str]) -> tuple[str, str, str, str, str]:
        """Return the raw (tag, ts, value, quality, line) of a line that is rejected whole, each bounded."""
        by_name = dict(zip(self.columns, fields, strict=False))
        line = _joined(fields, self.delimiter)

        def get(column: object) -> str:
            return by_name.get(column, "")[:_RAW_CHARS] if isinstance(column, str) else ""

        if self.layout.wide:
            return "", get(self.layout.ts), line, "", line
        return get(self.layout.tag), get(self.layout.ts), get(self.layout.value), get(self.layout.quality), line

    def chunk(
        self, good: list[list[str]], good_rows: list[int], bad: list[tuple[int, tuple[str, str, str, str, str], str]]
    ) -> SourceResult:
        """Normalise one chunk: the rows with the header's number of fields, and the lines rejected whole."""
        if good:
            frame = pd.DataFrame(good, columns=self.columns, dtype=object)
            result = _apply(
                frame,
                self.layout,
                self.name,
                assume_tz=self.assume_tz,
                decimal_comma=self.delimiter != ",",
                source_rows=np.asarray(good_rows, dtype=np.int64),
            )
        else:
            result = SourceResult(empty_readings(), empty_rejected(), (), source=self.name)
        if not bad:
            return result
        extra = pd.DataFrame(
            {
                "tag": [raw[0] for _, raw, _ in bad],
                "ts": [raw[1] for _, raw, _ in bad],
                "value": [raw[2] for _, raw, _ in bad],
                "quality": [raw[3] for _, raw, _ in bad],
                "source_file": self.name,
                "source_row": pd.array([row for row, _, _ in bad], dtype="Int64"),
                "reason": [reason for _, _, reason in bad],
            },
            columns=list(REJECTED_COLUMNS),
        )
        parts = [part for part in (result.rejected, extra) if len(part)]
        rejected = pd.concat(parts, ignore_index=True).sort_values("source_row", kind="stable", ignore_index=True)
        problems = list(result.problems)
        for reason in dict.fromkeys(reason for _, _, reason in bad):
            rows = [(row, raw) for row, raw, why in bad if why == reason]
            row, raw = rows[0]
            text = f"{reason} (header has {len(self.columns)} fields; e.g. row {row}: {shorten(raw[4])})"
            problems.append(SourceProblem(self.name, text, len(rows), reason=reason))
            logger.warning("%s: %d rows rejected: %s", printable(self.name), len(rows), text)
        first_row = {reason: rank for rank, reason in enumerate(dict.fromkeys(rejected["reason"]))}
        problems.sort(key=lambda problem: first_row.get(problem.reason, len(first_row)))
        return SourceResult(result.readings, rejected, tuple(problems), source=self.name)


def iter_csv_file(
    path: str | Path, *, assume_tz: str | None = None, chunk_readings: int = CHUNK_READINGS
) -> Iterator[SourceResult]:
    """Read one delimited text file (long or wide; delimiter `,`, `;` or tab, detected) chunk by chunk.

    Lines are read with a bounded length and decoded leniently (bytes that are not text in the
    detected encoding become U+FFFD, and the rows holding them are rejected). A line with another
    number of fields than the header, or too long to read, is rejected whole.

    Args:
        path: The file.
        assume_tz: Time zone (IANA name, e.g. `Europe/Berlin` or `UTC`) for timestamps without
            one; None rejects those rows with reason "timestamp without time zone".
        chunk_readings: About how many readings one chunk holds (a row of a wide table holds one
            per tag column); chunks also end after about 64 characters per reading.

    Returns:
        An iterator of results, one per chunk, each naming the file; a refused file gives one
        result with a refusing problem and no rows. `source_row` counts data rows from the top
        of the file (blank lines not counted).

    Raises:
        ValueError: When `chunk_readings` < 1 (never for bad content).
    """
    _check_chunk(chunk_readings)
    return _csv_chunks(Path(path), assume_tz, chunk_readings)


def _csv_chunks(path: Path, assume_tz: str | None, chunk_readings: int) -> Iterator[SourceResult]:
    """Yield the chunks of a delimited text file (see `iter_csv_file`)."""
    name = str(path)
    handle, problem = _open_regular(path)
    if handle is None:
        yield refused(name, problem)
        return
    with handle:
        try:
            head = handle.read(_SAMPLE_BYTES)
            handle.seek(0)
        except OSError as exc:
            yield refused(name, f"cannot read the file: {printable(exc.strerror or str(exc))}")
            return
        encoding = _detect_encoding(head)
        lines = [line for line in head.decode(encoding, errors="replace").splitlines() if line.strip()]
        if len(head) == _SAMPLE_BYTES and len(lines) > 1:
            lines = lines[:-1]  # the last sampled line may be cut
        if not lines:
            yield refused(name, "empty file (no text)")
            return
        delimiter = _detect_delimiter(lines[:_SAMPLE_LINES])
        if delimiter is None:
            problem = f"no column delimiter found in the header {shorten(lines[0])}: expected ',', ';' or tab"
            yield refused(name, problem, max(len(lines) - 1, 0))
            return
        text = io.TextIOWrapper(handle, encoding=encoding, errors="replace", newline="")
        feed = _LineFeed(text, MAX_LINE_CHARS)
        records = _records(csv.reader(feed, delimiter=delimiter), feed)
        try:
            yield from _csv_rows(records, feed, name, delimiter, assume_tz, chunk_readings)
        except OSError as exc:  # the file became unreadable while being read
            yield refused(name, f"cannot read the file any further: {printable(exc.strerror or str(exc))}")


def _csv_rows(
    records: Iterator[tuple[list[str], str]],
    feed: _LineFeed,
    name: str,
    delimiter: str,
    assume_tz: str | None,
    chunk_readings: int,
) -> Iterator[SourceResult]:
    """Read the header, then yield chunks of rows of a delimited text file."""
    first = next(records, None)
    if first is None:
        yield refused(name, "empty file (no text)")
        return
    header, reason = first
    layout: _Layout | str = f"the header line cannot be read: {reason}" if reason else "no header"
    columns = _column_names(header) if not reason else []
    if not reason:
        layout = _plan(columns)
    if isinstance(layout, str):
        yield refused(name, layout, sum(1 for _ in records))
        return
    table = _CsvTable(name, columns, layout, delimiter, assume_tz)
    width = len(columns)
    rows_per_chunk = max(1, chunk_readings // layout.readings_per_row)
    chars_per_chunk = chunk_readings * _CHARS_PER_READING
    good: list[list[str]] = []
    good_rows: list[int] = []
    bad: list[tuple[int, tuple[str, str, str, str, str], str]] = []
    row = 0
    start = feed.chars
    for fields, why in records:
        row += 1
        if why or len(fields) != width:
            bad.append((row, table.raw_fields(fields), why or REASON_FIELDS))
        else:
            good.append(fields)
            good_rows.append(row)
        if len(good) + len(bad) >= rows_per_chunk or feed.chars - start >= chars_per_chunk:
            chunk = table.chunk(good, good_rows, bad)
            good, good_rows, bad, start = [], [], [], feed.chars  # not held while the chunk is used
            yield chunk
            del chunk
    if good or bad:
        chunk = table.chunk(good, good_rows, bad)
        del good, good_rows, bad
        yield chunk
    elif row == 0:
        yield refused(name, "empty file: header only, no data rows")


def iter_parquet_file(
    path: str | Path, *, assume_tz: str | None = None, chunk_readings: int = CHUNK_READINGS
) -> Iterator[SourceResult]:
    """Read one Parquet file (long or wide) chunk by chunk, one batch of rows at a time.

    Args:
        path: The file.
        assume_tz: Time zone for timestamps stored without one; None rejects those rows.
        chunk_readings: About how many readings one chunk holds (a row of a wide table holds one
            per tag column).

    Returns:
        An iterator of results, one per chunk; a truncated or corrupt file is refused (one result,
        no rows). Should a batch past the first prove unreadable, the rows after it are refused.

    Raises:
        ValueError: When `chunk_readings` < 1 (never for bad content).
    """
    _check_chunk(chunk_readings)
    return _parquet_chunks(Path(path), assume_tz, chunk_readings)


def _parquet_columns(parquet: pq.ParquetFile) -> list[str]:
    """Return the data columns of a Parquet file: its columns without a stored pandas index."""
    metadata = parquet.schema_arrow.pandas_metadata or {}
    index = {name for name in metadata.get("index_columns", []) if isinstance(name, str)}
    return [name for name in parquet.schema_arrow.names if name not in index]


def _parquet_chunks(path: Path, assume_tz: str | None, chunk_readings: int) -> Iterator[SourceResult]:
    """Yield the chunks of a Parquet file (see `iter_parquet_file`)."""
    name = str(path)
    handle, problem = _open_regular(path)
    if handle is None:
        yield refused(name, problem)
        return
    unreadable = "not a readable parquet file (truncated or corrupt?)"
    with handle:
        try:
            parquet = pq.ParquetFile(handle)
            total = parquet.metadata.num_rows
            columns = _parquet_columns(parquet)
        except _PARQUET_ERRORS as exc:
            yield refused(name, f"{unreadable}: {_said(exc)}")
            return
        if total == 0:
            yield refused(name, "empty file: no data rows")
            return
        layout = _plan(columns)
        if isinstance(layout, str):
            yield refused(name, layout, total)
            return
        wanted = [layout.ts, *layout.tag_columns] if layout.wide else [layout.tag, layout.ts, layout.value]
        wanted += [layout.quality] if layout.quality is not None else []
        batches = parquet.iter_batches(
            batch_size=max(1, chunk_readings // layout.readings_per_row), columns=[str(c) for c in wanted]
        )
        done = 0
        while done < total:
            try:
                frame = next(batches).to_pandas()
            except StopIteration:
                break
            except _PARQUET_ERRORS as exc:
                rest = SourceProblem(name, f"{unreadable} after row {done}: {_said(exc)}", total - done, True)
                logger.warning("%s: %s", printable(name), rest.problem)
                yield SourceResult(empty_readings(), empty_rejected(), (rest,), source=name)
                return
            rows = np.arange(done + 1, done + len(frame) + 1)
            done += len(frame)
            chunk = _apply(frame, layout, name, assume_tz=assume_tz, decimal_comma=False, source_rows=rows)
            del frame, rows  # not held while the chunk is used
            yield chunk
            del chunk


def iter_file(
    path: str | Path, *, assume_tz: str | None = None, chunk_readings: int = CHUNK_READINGS
) -> Iterator[SourceResult]:
    """Read one CSV or Parquet file, chosen by its ending, chunk by chunk.

    Args:
        path: The file (`.csv`, `.tsv`, `.txt`, `.parquet` or `.pq`).
        assume_tz: Time zone for timestamps without one; None rejects those rows.
        chunk_readings: About how many readings one chunk holds.

    Returns:
        An iterator of results, one per chunk; other endings, and anything but a regular file,
        are refused (one result, no rows).

    Raises:
        ValueError: When `chunk_readings` < 1 (never for bad content).
    """
    _check_chunk(chunk_readings)
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return iter_csv_file(path, assume_tz=assume_tz, chunk_readings=chunk_readings)
    if suffix in PARQUET_SUFFIXES:
        return iter_parquet_file(path, assume_tz=assume_tz, chunk_readings=chunk_readings)
    supported = ", ".join(CSV_SUFFIXES + PARQUET_SUFFIXES)
    return iter(
        [refused(str(path), f"unsupported file type {shorten(suffix or '(none)')}: expected one of {supported}")]
    )


def _folder_entries(folder: Path) -> list[tuple[Path, str]]:
    """List what a folder holds, walked without following links: (path, "" or why it is not read).

    Hidden files and folders are skipped. A link that leads outside the folder is listed with
    the reason it is not read; a link to a folder inside it is skipped, as its files are listed
    where they really are (so a link cycle is never walked round).
    """
    entries: list[tuple[Path, str]] = []

    def unreadable(error: OSError) -> None:
        entries.append((Path(error.filename or folder), f"cannot read the folder: {error.strerror or error}"))

    for top, folders, files in os.walk(folder, onerror=unreadable, followlinks=False):
        here = Path(top)
        kept = []
        for sub in folders:
            if sub.startswith("."):
                continue
            if (here / sub).is_symlink():
                problem = _link_problem(folder, here / sub)
                if problem:
                    entries.append((here / sub, problem))
                continue
            kept.append(sub)
        folders[:] = sorted(kept)
        for file in files:
            if file.startswith("."):
                continue
            path = here / file
            entries.append((path, _link_problem(folder, path) if path.is_symlink() else ""))
    return sorted(entries, key=lambda entry: entry[0])


def _link_problem(folder: Path, link: Path) -> str:
    """Return why a symbolic link found in `folder` is not followed ("" when it leads inside)."""
    try:
        return "" if inside(folder, link) else _LINK_OUT
    except (RuntimeError, OSError, ValueError):  # a loop of links, or a name the system refuses
        return _LINK_LOOP


def _identity(path: Path) -> tuple[int, int] | None:
    """Return (device, inode) of the file a path leads to; None when it cannot be found."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return info.st_dev, info.st_ino


def iter_path(
    path: str | Path, *, assume_tz: str | None = None, chunk_readings: int = CHUNK_READINGS
) -> Iterator[SourceResult]:
    """Read a file, or every file in a folder and its subfolders, chunk by chunk.

    A folder is walked without following symbolic links: a link leading outside the folder is
    refused ("symbolic link to outside the folder: not read"), a file reached by several names
    (links inside the folder, hard links) is read once, and hidden files and folders are skipped.
    Only regular files are opened; others (named pipes, devices, sockets) are refused.

    Args:
        path: A file or a folder.
        assume_tz: Time zone for timestamps without one; None rejects those rows.
        chunk_readings: About how many readings one chunk holds (default one million); memory
            grows with it, not with the size of a file.

    Returns:
        An iterator of results, one per chunk of a file, in file order; each names its file as
        `source`. Every row read is in exactly one chunk, as a reading or rejected.

    Raises:
        ValueError: When `chunk_readings` < 1 (never for bad content).
    """
    _check_chunk(chunk_readings)
    return _path_chunks(Path(path), assume_tz, chunk_readings)


def _path_chunks(path: Path, assume_tz: str | None, chunk_readings: int) -> Iterator[SourceResult]:
    """Yield the chunks of a file or of every file of a folder (see `iter_path`)."""
    try:
        is_folder = stat.S_ISDIR(os.stat(path).st_mode)
    except (OSError, ValueError):
        yield refused(str(path), "no such file or folder")
        return
    if not is_folder:
        yield from iter_file(path, assume_tz=assume_tz, chunk_readings=chunk_readings)
        return
    entries = _folder_entries(path)
    if not entries:
        yield refused(str(path), "the folder holds no files")
        return
    seen: set[tuple[int, int]] = set()
    for entry, problem in entries:
        if problem:
            yield refused(str(entry), problem)
            continue
        identity = _identity(entry)
        if identity is not None:
            if identity in seen:
                continue
            seen.add(identity)
        yield from iter_file(entry, assume_tz=assume_tz, chunk_readings=chunk_readings)


def _join_chunks(chunks: Iterable[SourceResult], source: str) -> SourceResult:
    """Join the chunks of one file into one result (no `origin`; problems merged per reason)."""
    chunks = list(chunks)
    readings = [c.readings for c in chunks if len(c.readings)]
    rejected = [c.rejected for c in chunks if len(c.rejected)]
    return SourceResult(
        pd.concat(readings, ignore_index=True) if len(readings) > 1 else (readings or [empty_readings()])[0],
        pd.concat(rejected, ignore_index=True) if len(rejected) > 1 else (rejected or [empty_rejected()])[0],
        merge_problems(problem for c in chunks for problem in c.problems),
        source=source,
    )


def read_csv_file(path: str | Path, *, assume_tz: str | None = None) -> SourceResult:
    """Read one delimited text file whole (long or wide; delimiter `,`, `;` or tab, detected).

    Args:
        path: The file.
        assume_tz: Time zone (IANA name, e.g. `Europe/Berlin` or `UTC`) for timestamps without
            one; None rejects those rows with reason "timestamp without time zone".

    Returns:
        The readings, rejected rows and problems (`iter_csv_file`'s chunks joined); never raises
        on bad content.
    """
    return _join_chunks(iter_csv_file(path, assume_tz=assume_tz), str(path))


def read_parquet_file(path: str | Path, *, assume_tz: str | None = None) -> SourceResult:
    """Read one Parquet file whole (long or wide).

    Args:
        path: The file.
        assume_tz: Time zone for timestamps stored without one; None rejects those rows.

    Returns:
        The readings, rejected rows and problems; a truncated or corrupt file is refused.
    """
    return _join_chunks(iter_parquet_file(path, assume_tz=assume_tz), str(path))


def read_file(path: str | Path, *, assume_tz: str | None = None) -> SourceResult:
    """Read one CSV or Parquet file whole, chosen by its ending.

    Args:
        path: The file (`.csv`, `.tsv`, `.txt`, `.parquet` or `.pq`).
        assume_tz: Time zone for timestamps without one; None rejects those rows.

    Returns:
        The readings, rejected rows and problems; other endings are refused.
    """
    return _join_chunks(iter_file(path, assume_tz=assume_tz), str(path))


def read_path(path: str | Path, *, assume_tz: str | None = None) -> SourceResult:
    """Read a file, or every file in a folder and its subfolders, whole (see `iter_path`).

    Args:
        path: A file or a folder.
        assume_tz: Time zone for timestamps without one; None rejects those rows.

    Returns:
        The readings of all files, their rejected rows and problems (one per file and reason);
        for a folder, `origin` names the file of each reading.
    """
    path = Path(path)
    chunks = iter_path(path, assume_tz=assume_tz)
    if not path.is_dir():
        return _join_chunks(chunks, str(path))
    joined = concat_results(list(chunks), source=str(path))
    return SourceResult(joined.readings, joined.rejected, merge_problems(joined.problems), joined.source, joined.origin)


def concat_results(results: Sequence[SourceResult], source: str) -> SourceResult:
    """Concatenate the results of several sources, keeping which source each reading came from.

    Args:
        results: Results to join, in order.
        source: The name of the joined source.

    Returns:
        One `SourceResult` whose `origin` names the source of each reading.
    """
    with_rows = [r for r in results if len(r.readings)]
    if with_rows:
        readings = pd.concat([r.readings for r in with_rows], ignore_index=True)
        origins = [
            r.origin.astype(object).to_numpy() if r.origin is not None else np.full(len(r.readings), r.source, object)
            for r in with_rows
        ]
        origin = pd.Series(pd.Categorical(np.concatenate(origins)), index=readings.index)
    else:
        readings, origin = empty_readings(), None
    rejected_parts = [r.rejected for r in results if len(r.rejected)]
    rejected = pd.concat(rejected_parts, ignore_index=True) if rejected_parts else empty_rejected()
    problems = tuple(problem for r in results for problem in r.problems)
    return SourceResult(readings, rejected, problems, source=source, origin=origin)


def from_frame(
    frame: pd.DataFrame,
    source_name: str,
    *,
    assume_tz: str | None = None,
    default_quality: str | None = None,
) -> SourceResult:
    """Take readings produced in memory (e.g. by the plant simulator) as a source.

    A frame already in the contract's dtypes (`tag` str, `ts` datetime64[ns, UTC], `value`
    float64, `quality` str) passes through vectorised checks only; other dtypes (text, naive
    or other-zone datetimes, categorical tags) are converted as for files.

    Args:
        frame: A long (`tag, ts, value, quality`) or wide (timestamp plus one column per tag) table.
        source_name: Name written to `source_file` of rejected rows and to problems.
        assume_tz: Time zone for timestamps without one; None rejects those rows.
        default_quality: Quality flag for a long frame without a `quality` column; None refuses
            such a frame.

    Returns:
        The readings, rejected rows and problems.
    """
    if default_quality is not None and default_quality not in QUALITIES:
        raise ValueError(f"default_quality must be one of {QUALITIES}, got {default_quality!r}")
    if len(frame) == 0:
        return SourceResult(empty_readings(), empty_rejected(), (), source=source_name)
    return _from_table(frame, source_name, assume_tz=assume_tz, default_quality=default_quality)


def readings_from_columns(
    tag: Sequence[str] | np.ndarray,
    ts: Sequence[object] | np.ndarray | pd.DatetimeIndex,
    value: Sequence[float] | np.ndarray,
    quality: Sequence[str] | np.ndarray,
    source_name: str,
) -> SourceResult:
    """Build a source result from four equal-length columns (a convenience for connectors).

    Args:
        tag: Tag names.
        ts: Timestamps (tz-aware datetimes or ISO 8601 text with a zone).
        value: Values (numbers or text).
        quality: Quality flags.
        source_name: Name written to `source_file` of rejected rows and to problems.

    Returns:
        The readings, rejected rows and problems.
    """
    frame = pd.DataFrame({"tag": tag, "ts": ts, "value": value, "quality": quality}, columns=list(READING_COLUMNS))
    return from_frame(frame, source_name)


__all__ = [
    "CHUNK_READINGS",
    "CSV_SUFFIXES",
    "MAX_LINE_CHARS",
    "PARQUET_SUFFIXES",
    "REASON_TOO_LONG",
    "TS_DTYPE",
    "SourceProblem",
    "SourceResult",
    "concat_results",
    "from_frame",
    "iter_csv_file",
    "iter_file",
    "iter_parquet_file",
    "iter_path",
    "merge_problems",
    "read_csv_file",
    "read_file",
    "read_parquet_file",
    "read_path",
    "readings_from_columns",
    "refused",
]
