"""Sources of tag readings: CSV and Parquet files or folders, and in-memory frames from the simulator.

Every reader returns a `SourceResult` and never raises on bad input. A file that cannot be read
at all (empty, no delimiter, missing columns, a truncated or corrupt parquet file) is *refused*:
it yields a `SourceProblem` naming the file and the problem, and no rows. A row that cannot become
a reading (unparseable value, timestamp without time zone, malformed tag, unknown quality flag) is
*rejected*: it is kept, with its raw fields as text, the file and the reason, in
`SourceResult.rejected`, and summarised by one `SourceProblem` per (file, reason). The good rows of
every file go on.

Two table layouts are understood, in CSV (delimiter `,`, `;` or tab, detected) and in Parquet:

* long, PI-style: columns `tag, ts, value, quality` (also `tagname`, `timestamp`, `time`,
  `status`, ...; case and surrounding spaces ignored);
* wide: a timestamp column plus one column per tag, melted to long with quality `good`;
  empty cells mean "no reading" and produce no row.

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
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

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

logger = logging.getLogger(__name__)

CSV_SUFFIXES: tuple[str, ...] = (".csv", ".tsv", ".txt")
"""File endings read as delimited text."""
PARQUET_SUFFIXES: tuple[str, ...] = (".parquet", ".pq")
"""File endings read as Parquet."""
DELIMITERS: tuple[str, ...] = (",", ";", "\t")
"""Delimiters tried on delimited text, in order of preference."""

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
_SAMPLE_BYTES = 1 << 16  # read to detect the encoding and the delimiter
_MIN_FIELDS = 2  # a header needs at least two fields: timestamp and value

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
    """

    file: str
    problem: str
    rows_affected: int = 0
    refused: bool = False

    def __str__(self) -> str:
        what = "refused" if self.refused else "rejected"
        return f"{self.file}: {self.problem} ({self.rows_affected} rows {what})"


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
        problem: What is wrong with it.
        rows: Rows in the file, when known.

    Returns:
        A `SourceResult` with no rows and one refusing `SourceProblem`.
    """
    logger.warning("%s: %s: file refused", file, problem)
    return SourceResult(
        empty_readings(), empty_rejected(), (SourceProblem(file, problem, rows, refused=True),), source=file
    )


# --- parsing columns -------------------------------------------------------------------------


def _factorize_text(raw: pd.Series) -> tuple[np.ndarray, list[str | None]]:
    """Factorize a column and return codes and the stripped text of each unique value.

    Missing values (None, NaN, empty or blank text) get text None.
    """
    codes, uniques = pd.factorize(raw, use_na_sentinel=True)
    texts: list[str | None] = []
    for unique in uniques:
        text = unique.strip() if isinstance(unique, str) else None if pd.isna(unique) else str(unique).strip()
        texts.append(text or None)
    return codes, texts


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


def _parse_values(raw: pd.Series, decimal_comma: bool) -> tuple[np.ndarray, np.ndarray]:
    """Return (float64 values, bad mask); missing values become NaN and are not bad."""
    dtype = raw.dtype
    if pd.api.types.is_bool_dtype(dtype) or (
        pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype)
    ):
        return raw.to_numpy(dtype=np.float64, na_value=np.nan), np.zeros(len(raw), dtype=bool)
    if isinstance(dtype, pd.CategoricalDtype):
        raw = raw.astype(object)
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
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

    Returns:
        The readings, the rejected rows and one problem per rejection reason.
    """
    n = len(tag)
    tags, bad_tag = _parse_tags(tag)
    ts_i8, ts_code = _parse_ts(ts, assume_tz)
    values, bad_value = _parse_values(value, decimal_comma)
    if quality is None:
        flags = np.full(n, "good", dtype=object)
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
    for reason_code in np.unique(reasons):
        first = int(np.argmax(reasons == reason_code))
        column = _REASON_FIELD[reason_code]
        example = f"e.g. row {rows[first]}: {column}={raw[column][first]!r}"
        count = int((reasons == reason_code).sum())
        problems.append(SourceProblem(source, f"{_REASONS[reason_code]} ({example})", count))
        logger.warning("%s: %d rows rejected: %s", source, count, problems[-1].problem)
    return SourceResult(readings, rejected, tuple(problems), source=source)


# --- tables ----------------------------------------------------------------------------------


def _find(columns: dict[str, str], aliases: Iterable[str]) -> str | None:
    """Return the original name of the first column whose normalised name is one of `aliases`."""
    for alias in aliases:
        if alias in columns:
            return columns[alias]
    return None


def _from_table(
    frame: pd.DataFrame,
    source: str,
    *,
    assume_tz: str | None,
    decimal_comma: bool = False,
    default_quality: str | None = None,
) -> SourceResult:
    """Recognise a long or wide table and normalise it (see the module docstring)."""
    if len(frame) == 0:
        return refused(source, "empty file: no data rows")
    columns = {str(name).strip().lower().replace(" ", "_"): name for name in frame.columns}
    tag_col = _find(columns, _TAG_ALIASES)
    ts_col = _find(columns, _TS_ALIASES)
    value_col = _find(columns, _VALUE_ALIASES)
    quality_col = _find(columns, _QUALITY_ALIASES)
    shown = frame.columns[:_SHOWN_COLUMNS]
    found = ", ".join(map(str, shown)) + (", ..." if len(frame.columns) > len(shown) else "")

    if tag_col is not None or value_col is not None or quality_col is not None:  # long, PI-style
        needed = {"tag": tag_col, "ts": ts_col, "value": value_col}
        if default_quality is None:
            needed["quality"] = quality_col
        missing = [name for name, column in needed.items() if column is None]
        if missing:
            return refused(source, f"missing column(s): {', '.join(missing)} (found: {found})", len(frame))
        quality = frame[quality_col] if quality_col is not None else pd.Series(default_quality, index=frame.index)
        return _normalise(
            frame[needed["tag"]],
            frame[needed["ts"]],
            frame[needed["value"]],
            quality,
            source=source,
            assume_tz=assume_tz,
            decimal_comma=decimal_comma,
        )

    if ts_col is None:
        hint = " for a wide table" if any(TAG_PATTERN.match(str(c).strip()) for c in frame.columns) else ""
        needed_cols = "ts (a timestamp column)" if hint else "tag, ts, value, quality"
        return refused(source, f"missing column(s): {needed_cols}{hint} (found: {found})", len(frame))
    return _melt_wide(frame, ts_col, source, assume_tz=assume_tz, decimal_comma=decimal_comma)


def _melt_wide(
    frame: pd.DataFrame, ts_col: str, source: str, *, assume_tz: str | None, decimal_comma: bool
) -> SourceResult:
    """Melt a wide table (timestamp column plus one column per tag) to long readings."""
    tag_cols = [c for c in frame.columns if c != ts_col]
    n, k = len(frame), len(tag_cols)
    if k == 0:
        return refused(source, f"wide table has a timestamp column {ts_col!r} but no tag columns", n)
    matrix = frame[tag_cols]
    flat = pd.Series(matrix.to_numpy().ravel(order="F"))
    present = flat.notna().to_numpy()
    if flat.dtype == object:
        text = flat[present].astype(str).str.strip()
        present[np.flatnonzero(present)[(text == "").to_numpy()]] = False
    keep = np.flatnonzero(present)
    rows = keep % n
    ts = frame[ts_col].reset_index(drop=True).take(rows).reset_index(drop=True)
    tags = pd.Series(np.asarray([str(c).strip() for c in tag_cols], dtype=object)[keep // n])
    return _normalise(
        tags,
        ts,
        flat.iloc[keep].reset_index(drop=True),
        None,
        source=source,
        assume_tz=assume_tz,
        decimal_comma=decimal_comma,
        source_rows=rows + 1,
    )


# --- files -----------------------------------------------------------------------------------


def _detect_delimiter(lines: Sequence[str]) -> str | None:
    """Return the delimiter (`,`, `;` or tab) that splits the header into >1 fields most consistently."""
    best: tuple[float, int, int] | None = None
    choice = None
    for rank, delimiter in enumerate(DELIMITERS):
        counts = [len(row) for row in csv.reader(lines, delimiter=delimiter)]
        if not counts or counts[0] < _MIN_FIELDS:
            continue
        consistency = sum(count == counts[0] for count in counts) / len(counts)
        score = (consistency, counts[0], -rank)
        if best is None or score > best:
            best, choice = score, delimiter
    return choice


def _read_csv_lenient(path: Path, delimiter: str, encoding: str) -> tuple[pd.DataFrame, list[list[str]]]:
    """Read a CSV whose lines have the wrong number of fields, collecting those lines."""
    bad_lines: list[list[str]] = []

    def collect(line: list[str]) -> None:
        bad_lines.append(line)

    frame = pd.read_csv(
        path,
        sep=delimiter,
        dtype=str,
        keep_default_na=False,
        na_filter=False,
        encoding=encoding,
        engine="python",
        on_bad_lines=collect,
    )
    return frame, bad_lines


def read_csv_file(path: str | Path, *, assume_tz: str | None = None) -> SourceResult:  # noqa: PLR0911 - one per refusal
    """Read one delimited text file (long or wide; delimiter `,`, `;` or tab, detected).

    Args:
        path: The file.
        assume_tz: Time zone (IANA name, e.g. `Europe/Berlin` or `UTC`) for timestamps without
            one; None rejects those rows with reason "timestamp without time zone".

    Returns:
        The readings, rejected rows and problems; never raises on bad content.
    """
    path = Path(path)
    name = str(path)
    try:
        if path.stat().st_size == 0:
            return refused(name, "empty file (0 bytes)")
        with path.open("rb") as handle:
            head = handle.read(_SAMPLE_BYTES)
    except OSError as exc:
        return refused(name, f"cannot read the file: {exc.strerror or exc}")
    encoding = "utf-8-sig"
    try:
        head.decode(encoding)
    except UnicodeDecodeError as exc:
        if len(head) < _SAMPLE_BYTES or exc.start < len(head) - 4:  # not a character cut by the sample's end
            encoding = "latin-1"
    lines = [line for line in head.decode(encoding, errors="replace").splitlines() if line.strip()]
    if len(head) == _SAMPLE_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last sampled line may be cut
    if not lines:
        return refused(name, "empty file (no text)")
    delimiter = _detect_delimiter(lines[:50])
    if delimiter is None:
        return refused(
            name,
            f"no column delimiter found in the header {lines[0][:80]!r}: expected ',', ';' or tab",
            max(len(lines) - 1, 0),
        )
    bad_lines: list[list[str]] = []
    try:
        try:
            frame = pd.read_csv(
                path, sep=delimiter, dtype=str, keep_default_na=False, na_filter=False, encoding=encoding
            )
        except pd.errors.ParserError:
            frame, bad_lines = _read_csv_lenient(path, delimiter, encoding)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError, OSError) as exc:
        return refused(name, f"cannot parse as delimited text: {exc}")
    frame = frame.fillna("")
    if len(frame) == 0 and not bad_lines:
        return refused(name, "empty file: header only, no data rows")
    result = (
        _from_table(frame, name, assume_tz=assume_tz, decimal_comma=delimiter != ",")
        if len(frame)
        else SourceResult(empty_readings(), empty_rejected(), (), source=name)
    )
    if bad_lines and not result.refused:
        result = _add_bad_lines(result, [str(c) for c in frame.columns], bad_lines, delimiter)
    return result


def _add_bad_lines(result: SourceResult, header: list[str], lines: list[list[str]], delimiter: str) -> SourceResult:
    """Add lines with the wrong number of fields to the rejected rows of `result`."""
    names = [h.strip().lower() for h in header]
    raw: dict[str, list[str]] = {name: [] for name in ("tag", "ts", "value", "quality")}
    for fields in lines:
        by_name = dict(zip(names, fields, strict=False))
        raw["tag"].append(by_name.get("tag", ""))
        raw["ts"].append(by_name.get("ts", by_name.get("timestamp", fields[0] if fields else "")))
        raw["value"].append(by_name.get("value", delimiter.join(fields)))
        raw["quality"].append(by_name.get("quality", ""))
    extra = pd.DataFrame(
        {
            **raw,
            "source_file": result.source,
            "source_row": pd.array([None] * len(lines), dtype="Int64"),
            "reason": REASON_FIELDS,
        },
        columns=list(REJECTED_COLUMNS),
    )
    rejected = pd.concat([result.rejected, extra], ignore_index=True) if len(result.rejected) else extra
    problem = SourceProblem(
        result.source, f"{REASON_FIELDS} (header has {len(header)}, e.g. {delimiter.join(lines[0])!r})", len(lines)
    )
    logger.warning("%s: %d rows rejected: %s", result.source, len(lines), problem.problem)
    return SourceResult(result.readings, rejected, (*result.problems, problem), result.source, result.origin)


def read_parquet_file(path: str | Path, *, assume_tz: str | None = None) -> SourceResult:
    """Read one Parquet file (long or wide).

    Args:
        path: The file.
        assume_tz: Time zone for timestamps stored without one; None rejects those rows.

    Returns:
        The readings, rejected rows and problems; a truncated or corrupt file is refused.
    """
    path = Path(path)
    name = str(path)
    try:
        if path.stat().st_size == 0:
            return refused(name, "empty file (0 bytes)")
        frame = pq.read_table(path).to_pandas()
    except (pa.ArrowException, OSError, ValueError, TypeError) as exc:
        return refused(name, f"not a readable parquet file (truncated or corrupt?): {exc}")
    return _from_table(frame, name, assume_tz=assume_tz)


def read_file(path: str | Path, *, assume_tz: str | None = None) -> SourceResult:
    """Read one CSV or Parquet file, chosen by its ending.

    Args:
        path: The file (`.csv`, `.tsv`, `.txt`, `.parquet` or `.pq`).
        assume_tz: Time zone for timestamps without one; None rejects those rows.

    Returns:
        The readings, rejected rows and problems; other endings are refused.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return read_csv_file(path, assume_tz=assume_tz)
    if suffix in PARQUET_SUFFIXES:
        return read_parquet_file(path, assume_tz=assume_tz)
    supported = ", ".join(CSV_SUFFIXES + PARQUET_SUFFIXES)
    return refused(str(path), f"unsupported file type {suffix or '(none)'!r}: expected one of {supported}")


def read_path(path: str | Path, *, assume_tz: str | None = None) -> SourceResult:
    """Read a file, or every file in a folder and its subfolders (hidden files are skipped).

    Args:
        path: A file or a folder.
        assume_tz: Time zone for timestamps without one; None rejects those rows.

    Returns:
        The readings of all files, their rejected rows and problems; `origin` names the file of
        each reading.
    """
    path = Path(path)
    if path.is_file():
        return read_file(path, assume_tz=assume_tz)
    if not path.is_dir():
        return refused(str(path), "no such file or folder")
    files = sorted(
        p
        for p in path.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )
    if not files:
        return refused(str(path), "the folder holds no files")
    return concat_results([read_file(p, assume_tz=assume_tz) for p in files], source=str(path))


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
    "CSV_SUFFIXES",
    "PARQUET_SUFFIXES",
    "TS_DTYPE",
    "SourceProblem",
    "SourceResult",
    "concat_results",
    "from_frame",
    "read_csv_file",
    "read_file",
    "read_parquet_file",
    "read_path",
    "readings_from_columns",
    "refused",
]
