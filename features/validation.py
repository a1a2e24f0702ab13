"""Validation of historian tag readings with Great Expectations: good rows go on, bad rows go to quarantine.

The tag table (ARCHITECTURE.md, "Tag reading") has one row per reading, in arrival order::

    tag                 ts                         value  quality
    PS01.P2.VIB_DE_RMS  2024-05-01 00:00:00+00:00   2.31  good
    PS01.P2.DISCH_P     2024-05-01 00:00:00+00:00  41.70  good

`validate_tags` checks it against the two Great Expectations suites that `build_tag_suite` builds:

- `pumptwin.tag_rows`, one result per reading: the four columns exist; `value` is a number; `ts` is
  a time-zone-aware timestamp between `earliest` and now + `max_future` (a local clock labelled UTC
  shows up as readings from the future); nothing is null; quality flags are in the allowed set;
  values lie inside the physical range of their tag (from the asset registry, per tag or per
  measure, so a pressure in psi where bar is expected falls outside); no (tag, ts) repeats; no
  reading of a tag arrives after a later one.
- `pumptwin.tag_stats`, one result per tag: the name follows `STATION.ASSET.MEASURE` (all readings
  of a badly named tag are quarantined); missing rate, freshness and range coverage per tag are
  computed in pandas and reported, not quarantined.

Checks that need context across rows (repeats, arrival order, the range lookup) are computed once,
vectorised, as documented columns of the validated frame (`range_excess`, `ts_seen_before`,
`ts_behind_s`). Great Expectations evaluates every expectation and records every result; rows go
through it in chunks of `TagRules.chunk_rows`, which keeps ten million readings to seconds.

A row is quarantined when a quarantining expectation lists it in its COMPLETE result
(`unexpected_index_column_names=["row_id"]`), or when a table-level expectation fails (a missing
column, naive timestamps), which quarantines every row. Nothing is dropped: good and quarantined
rows together are exactly the input rows, and each quarantined row names the expectations it
failed in `reason`.

Great Expectations is imported inside the functions that use it, so importing this module does no
work (`feast apply` imports every module under `features/`).
"""

from __future__ import annotations

import html
import json
import math
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from great_expectations import Checkpoint, ExpectationSuite
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
        ExpectationValidationResult,
    )
    from great_expectations.data_context import AbstractDataContext
    from great_expectations.datasource.fluent import PandasDatasource
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

__all__ = [
    "QUALITY_FLAGS",
    "ROWS_SUITE",
    "ROW_ID",
    "TAGS_SUITE",
    "TAG_COLUMNS",
    "TAG_PATTERN",
    "Ranges",
    "TagRules",
    "TagSuites",
    "ValidationOutcome",
    "build_tag_suite",
    "normalize_ranges",
    "summary_markdown",
    "validate_tags",
]

TAG_COLUMNS: tuple[str, ...] = ("tag", "ts", "value", "quality")
"""Columns of the tag table, in contract order."""

QUALITY_FLAGS: tuple[str, ...] = ("good", "questionable", "bad", "substituted")
"""PI-style quality flags allowed in `quality`."""

TAG_PATTERN = r"^[A-Z][A-Z0-9_]*\.[A-Z][A-Z0-9_]*\.[A-Z][A-Z0-9_]*$"
"""Tag names: `STATION.ASSET.MEASURE` in capitals, digits and underscores, e.g. `PS01.P2.VIB_DE_RMS`."""

ROWS_SUITE = "pumptwin.tag_rows"
"""The suite with one result per reading."""

TAGS_SUITE = "pumptwin.tag_stats"
"""The suite with one result per tag."""

ROW_ID = "row_id"
"""Position of a row in the validated input; the index column of the row suite's results."""

Ranges: TypeAlias = "Mapping[str, object] | pd.DataFrame | Iterable[object] | None"
"""Physical ranges per tag or per measure, in any form `normalize_ranges` accepts."""

_TAG_INDEX = "tag_index"
_NO_TAG = "(no tag)"
_NUMERIC_TYPES = ["float64", "float32", "int64", "int32", "int16", "int8", "float", "int", "Float64", "Int64"]
_INT64_MIN = np.iinfo(np.int64).min
_PER_SECOND = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}
_PARTIAL = 20  # unexpected values kept per expectation in the merged results
_KEPT_INDEXES = 200  # row ids kept per expectation in results.json (all of them are in the quarantine table)
_HTML_TAGS = 500  # tags with findings listed in the HTML report
_RANGE_COLUMNS = ("low", "high", "unit", "sample_period_s")


@dataclass(frozen=True, slots=True)
class TagRules:
    """Thresholds of the tag-table suites; the defaults suit historian tags sampled every 1 s to 1 min.

    Attributes:
        tag_pattern: Regular expression every tag name must match.
        quality_flags: Allowed values of `quality`.
        earliest: Readings before this instant are rejected (a clock reset to 1970, a bad parse).
        max_future: How far past `now` a reading may lie; more means a wrong clock or time zone.
        max_missing_rate: Largest share of a tag's expected samples over the window that may be
            missing (0 to 1).
        max_staleness: A tag is stale when its last good reading is older than this before `now`,
            or older than `stale_periods` sample periods if that is longer (slow tags).
        stale_periods: See `max_staleness`.
        chunk_rows: Rows per Great Expectations batch; bounds memory and keeps the engine fast.
    """

    tag_pattern: str = TAG_PATTERN
    quality_flags: tuple[str, ...] = QUALITY_FLAGS
    earliest: pd.Timestamp = field(default_factory=lambda: pd.Timestamp("2000-01-01", tz="UTC"))
    max_future: timedelta = timedelta(minutes=5)
    max_missing_rate: float = 0.1
    max_staleness: timedelta = timedelta(minutes=15)
    stale_periods: float = 3.0
    chunk_rows: int = 1_000_000

    def __post_init__(self) -> None:
        re.compile(self.tag_pattern)  # raises re.error on a bad pattern
        if not self.quality_flags:
            raise ValueError("quality_flags must not be empty")
        if not 0.0 <= self.max_missing_rate <= 1.0:
            raise ValueError(f"max_missing_rate must lie in [0, 1], got {self.max_missing_rate}")
        if self.chunk_rows <= 0:
            raise ValueError(f"chunk_rows must be positive, got {self.chunk_rows}")
        if self.max_future < timedelta(0) or self.max_staleness < timedelta(0) or self.stale_periods < 0:
            raise ValueError("max_future, max_staleness and stale_periods must not be negative")
        if _utc(self.earliest) is None:
            raise ValueError(f"earliest must be a timestamp, got {self.earliest!r}")


@dataclass(frozen=True)
class TagSuites:
    """The two suites of the tag table.

    Attributes:
        rows: `pumptwin.tag_rows`, validated on the readings plus derived columns (one row per reading).
        tags: `pumptwin.tag_stats`, validated on per-tag statistics (one row per tag).
    """

    rows: ExpectationSuite
    tags: ExpectationSuite


@dataclass(frozen=True)
class ValidationOutcome:
    """What `validate_tags` found.

    Attributes:
        good: Rows that passed, in input order, with `ts` as datetime64[ns, UTC] and `value` as
            float64; other columns as they came in.
        quarantined: Rows that failed, in input order and exactly as they came in, plus `row_id`
            (their position in the input) and `reason` (the failed expectations, joined by "; ").
        tags: One row per tag: station, rows, good rows, range and unit, sample period, missing
            rate, staleness, and one boolean column per tag-level expectation it failed.
        summary: JSON-ready: rows in, good, quarantined by expectation and per station, every
            expectation's result, the tag findings, notes and the report files.
        markdown: The summary in markdown, for a Prefect artifact.
        results: The Great Expectations suite results by suite name (chunk results merged).
        report_files: Paths of the written `html`, `json` and `markdown` report; empty without a report_dir.
    """

    good: pd.DataFrame
    quarantined: pd.DataFrame
    tags: pd.DataFrame
    summary: dict[str, Any]
    markdown: str
    results: dict[str, ExpectationSuiteValidationResult]
    report_files: dict[str, Path]

    @property
    def success(self) -> bool:
        """True when no row was quarantined and every expectation passed."""
        return bool(self.summary["success"])


# --- ranges -----------------------------------------------------------------------------------------


def _range_record(key: object, spec: object) -> dict[str, object]:
    if isinstance(spec, Mapping):
        return {"key": key, **{c: spec.get(c) for c in _RANGE_COLUMNS}}
    if isinstance(spec, Sequence) and not isinstance(spec, str):
        return {"key": key, **dict(zip(_RANGE_COLUMNS, spec, strict=False))}
    raise TypeError(f"range for {key!r} must be (low, high[, unit[, sample_period_s]]) or a mapping, got {spec!r}")


def _range_records(ranges: Ranges) -> list[dict[str, object]]:
    if isinstance(ranges, pd.DataFrame):
        key_column = next((c for c in ("tag", "measure") if c in ranges.columns), None)
        keys = ranges[key_column] if key_column else ranges.index.to_series()
        cols = {c: ranges[c] if c in ranges.columns else pd.Series(None, index=ranges.index) for c in _RANGE_COLUMNS}
        return [{"key": key, **{c: cols[c].iloc[i] for c in _RANGE_COLUMNS}} for i, key in enumerate(keys.to_list())]
    if isinstance(ranges, Mapping):
        return [_range_record(key, spec) for key, spec in ranges.items()]
    if isinstance(ranges, Iterable) and not isinstance(ranges, str):
        records = []
        for spec in ranges:
            key = getattr(spec, "tag", None) or getattr(spec, "measure", None)
            if key is None:
                raise TypeError(f"registry record without a tag or measure: {spec!r}")
            records.append({"key": key, **{c: getattr(spec, c, None) for c in _RANGE_COLUMNS}})
        return records
    raise TypeError(f"ranges must be a mapping, a DataFrame or registry records, got {type(ranges).__name__}")


def normalize_ranges(ranges: Ranges) -> pd.DataFrame:
    """Turn physical ranges in any accepted form into one table indexed by key (a tag or a measure).

    Accepted forms: None (no range checks); a mapping `key -> (low, high[, unit[, sample_period_s]])`
    or `key -> {"low": .., "high": .., "unit": .., "sample_period_s": ..}`; a DataFrame with `low`,
    `high` and optionally `unit`, `sample_period_s`, keyed by its `tag` column, else its `measure`
    column, else its index; or an iterable of registry records (objects with a `tag` or `measure`,
    `low`, `high` and optionally `unit` and `sample_period_s` attributes, such as a `TagSpec`).
    A key with a dot is a full tag name; a key without one is a measure (the last part of a tag
    name) and applies to every tag of that measure that has no entry of its own. A missing bound
    is open.

    Args:
        ranges: The ranges, in one of the forms above.

    Returns:
        Columns `low`, `high` (float64, NaN when open), `unit` (str), `sample_period_s` (float64 in s,
        NaN when unknown), indexed by `key`.

    Raises:
        ValueError: When a range has low > high or a sample period is not positive.
        TypeError: When `ranges` has none of the accepted forms.
    """
    records = [] if ranges is None else _range_records(ranges)
    table = pd.DataFrame.from_records(records, columns=["key", *_RANGE_COLUMNS])
    table["key"] = table["key"].astype(str)
    for name in ("low", "high", "sample_period_s"):
        table[name] = pd.to_numeric(table[name], errors="coerce").astype("float64")
    table["unit"] = [u if isinstance(u, str) else "" for u in table["unit"]]
    inverted = table.loc[table["low"] > table["high"], "key"]
    if not inverted.empty:
        raise ValueError(f"range with low > high for {', '.join(inverted)}")
    bad_period = table.loc[table["sample_period_s"] <= 0, "key"]
    if not bad_period.empty:
        raise ValueError(f"sample_period_s must be positive for {', '.join(bad_period)}")
    return table.drop_duplicates("key", keep="last").set_index("key")


def _resolve_ranges(tags: Sequence[str], table: pd.DataFrame) -> pd.DataFrame:
    """Each tag's range: its own entry first, else its measure's (the last part of its name)."""
    names = pd.Index(list(tags), dtype=object)
    measures = pd.Index([t.rsplit(".", 1)[-1] for t in tags], dtype=object)
    keys = np.where(names.isin(table.index), names, measures)
    resolved = table.reindex(keys)
    resolved.index = names
    resolved["unit"] = resolved["unit"].fillna("")
    return resolved


# --- suites -----------------------------------------------------------------------------------------


def _utc(value: object) -> pd.Timestamp | None:
    """A UTC timestamp from a timestamp-like value; naive means UTC (for settings, never for data)."""
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        return None
    if ts is pd.NaT:
        return None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _now(now: object) -> pd.Timestamp:
    if now is None:
        return pd.Timestamp.now(tz="UTC")
    now_utc = _utc(now)
    if now_utc is None:
        raise ValueError(f"now must be a timestamp, got {now!r}")
    return now_utc


def _duration(delta: timedelta) -> str:
    """A duration for people: `5 min`, `2 h`, `90 s`."""
    seconds = delta.total_seconds()
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


def _bounds(rules: TagRules, now_utc: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    earliest = _utc(rules.earliest)
    assert earliest is not None  # checked by TagRules
    return earliest, now_utc + pd.Timedelta(rules.max_future)


def build_tag_suite(
    ranges: Ranges = None,
    *,
    now: pd.Timestamp | None = None,
    rules: TagRules | None = None,
) -> TagSuites:
    """Build the expectation suites of the tag table.

    Each expectation has a `description` (what it checks, for people) and `meta` with `action`
    ("quarantine": the rows it lists go to quarantine; "report": a tag-level finding) and `scope`
    ("table", "row" or "tag"); derived columns are explained in `meta["column_meaning"]`.

    Args:
        ranges: Physical ranges per tag or per measure, in any form `normalize_ranges` accepts.
            They are resolved per tag at validation time; the range expectation records them in
            its meta. With ranges, the tag suite also reports tags that have none.
        now: Reference instant for readings from the future (default: the current time).
        rules: Thresholds (default `TagRules()`).

    Returns:
        The row-level and the tag-level suite, not yet added to a data context.
    """
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.expectations.metadata_types import FailureSeverity

    rules = rules or TagRules()
    now_utc = _now(now)
    earliest, latest = _bounds(rules, now_utc)
    table = normalize_ranges(ranges)
    recorded = {
        str(key): {"low": _json_float(row.low), "high": _json_float(row.high), "unit": row.unit}
        for key, row in table.iterrows()
    }

    def meta(scope: str, action: str, **extra: object) -> dict[str, object]:
        return {"scope": scope, "action": action, **extra}

    row = meta("row", "quarantine")
    rows: list[Any] = [
        gxe.ExpectColumnToExist(
            column=column,
            description=f"The tag table has a `{column}` column.",
            meta=meta("table", "quarantine"),
            catch_exceptions=True,
        )
        for column in TAG_COLUMNS
    ]
    rows += [
        gxe.ExpectColumnValuesToBeOfType(
            column="ts",
            type_="Timestamp",
            description="`ts` is a time-zone-aware timestamp (naive timestamps have no known zone).",
            meta=meta("table", "quarantine"),
            catch_exceptions=True,
        ),
        gxe.ExpectColumnValuesToBeInTypeList(
            column="value",
            type_list=_NUMERIC_TYPES,
            description="`value` is a number, not text.",
            meta=row,
            catch_exceptions=True,
        ),
        *[
            gxe.ExpectColumnValuesToNotBeNull(
                column=column,
                description=f"`{column}` is present (not null, not NaN).",
                meta=row,
                catch_exceptions=True,
            )
            for column in TAG_COLUMNS
        ],
        gxe.ExpectColumnValuesToBeInSet(
            column="quality",
            value_set=list(rules.quality_flags),
            description=f"`quality` is one of {', '.join(rules.quality_flags)}.",
            meta=row,
            catch_exceptions=True,
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="ts",
            min_value=earliest.to_pydatetime(),
            max_value=latest.to_pydatetime(),
            description=(
                f"`ts` lies between {earliest.isoformat()} and now + {_duration(rules.max_future)}: "
                "a reading from the future means a wrong clock or a local time labelled UTC."
            ),
            meta=meta("row", "quarantine", now=now_utc.isoformat()),
            catch_exceptions=True,
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="range_excess",
            max_value=0.0,
            description=(
                "`value` lies inside the physical range of its tag (asset registry, per tag or per measure): "
                "a value in another unit, e.g. psi where bar is expected, falls outside."
            ),
            meta=meta(
                "row",
                "quarantine",
                column_meaning="max(low - value, value - high) in the tag's unit: <= 0 inside the range; "
                "null when the tag has no range or the row no value",
                ranges=recorded,
            ),
            catch_exceptions=True,
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="ts_seen_before",
            max_value=0.0,
            description="No repeated (tag, ts): the first arrival is kept, later ones are quarantined.",
            meta=meta(
                "row",
                "quarantine",
                column_meaning="1 when a reading of the same tag with the same ts arrived earlier, else 0; "
                "null when ts is missing or outside its bounds",
            ),
            catch_exceptions=True,
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="ts_behind_s",
            max_value=0.0,
            description="A tag's readings arrive in time order: none is older than one already received.",
            meta=meta(
                "row",
                "quarantine",
                column_meaning="seconds by which ts lies behind the latest ts received so far for the tag "
                "(input order is arrival order); null when ts is missing or outside its bounds",
            ),
            catch_exceptions=True,
        ),
    ]
    per_tag: list[Any] = [
        gxe.ExpectColumnValuesToMatchRegex(
            column="tag",
            regex=rules.tag_pattern,
            description="The tag name follows STATION.ASSET.MEASURE (e.g. PS01.P2.VIB_DE_RMS); all readings of "
            "a badly named tag are quarantined.",
            meta=meta("tag", "quarantine"),
            catch_exceptions=True,
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="missing_rate",
            min_value=0.0,
            max_value=rules.max_missing_rate,
            description=f"At most {rules.max_missing_rate:.0%} of a tag's expected samples over the window are "
            "missing (sample period from the registry, else the lower quartile of the tag's intervals).",
            meta=meta("tag", "report"),
            severity=FailureSeverity.WARNING,
            catch_exceptions=True,
        ),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="staleness_limit_s",
            column_B="staleness_s",
            or_equal=True,
            ignore_row_if="either_value_is_missing",
            description=f"A tag's last good reading is fresh: at most {_duration(rules.max_staleness)} or "
            f"{rules.stale_periods:g} sample periods (the longer) before now.",
            meta=meta("tag", "report", now=now_utc.isoformat()),
            severity=FailureSeverity.WARNING,
            catch_exceptions=True,
        ),
    ]
    if not table.empty:
        per_tag.append(
            gxe.ExpectColumnValuesToBeInSet(
                column="has_range",
                value_set=[True],
                description="Every tag has a physical range in the registry (its own or its measure's).",
                meta=meta("tag", "report"),
                severity=FailureSeverity.WARNING,
                catch_exceptions=True,
            )
        )
    return TagSuites(
        rows=gx.ExpectationSuite(name=ROWS_SUITE, expectations=rows),
        tags=gx.ExpectationSuite(name=TAGS_SUITE, expectations=per_tag),
    )


# --- the frame Great Expectations validates ---------------------------------------------------------


@dataclass
class _Prepared:
    """The frame the row suite validates, and what is needed to map its results back to rows."""

    check: pd.DataFrame
    codes: np.ndarray  # tag code per row, -1 when the tag is null
    tags: list[str]  # tag name per code
    ts_utc: pd.Series | None  # ts in UTC (RangeIndex); None when ts is not a tz-aware timestamp column
    value: pd.Series  # value as float64 (RangeIndex); NaN when missing or not a number
    notes: list[str]


def _prepare_tag(df: pd.DataFrame, check: dict[str, object]) -> tuple[np.ndarray, list[str]]:
    if "tag" not in df.columns:
        return np.full(len(df), -1, dtype=np.intp), []
    codes, uniques = pd.factorize(df["tag"], use_na_sentinel=True)
    tags = [str(u) for u in uniques]
    categories = pd.Index(tags) if len(set(tags)) == len(tags) else pd.RangeIndex(len(tags))
    check["tag"] = pd.Categorical.from_codes(codes, categories=categories)
    return codes, tags


def _prepare_ts(df: pd.DataFrame, check: dict[str, object], notes: list[str]) -> pd.Series | None:
    """The ts column in UTC if it is time-zone-aware (any zone, or text with offsets), else None."""
    if "ts" not in df.columns:
        return None
    ts = df["ts"].reset_index(drop=True)
    if ts.dtype == object or pd.api.types.is_string_dtype(ts.dtype):
        try:
            parsed = pd.to_datetime(ts, format="ISO8601")
        except (ValueError, TypeError, OverflowError):
            parsed = None
        if parsed is not None and isinstance(parsed.dtype, pd.DatetimeTZDtype):
            notes.append("`ts` was text with UTC offsets: parsed as ISO 8601.")
            ts = parsed
    if isinstance(ts.dtype, pd.DatetimeTZDtype):
        if str(ts.dtype.tz) != "UTC":
            notes.append(f"`ts` was in time zone {ts.dtype.tz}: converted to UTC.")
            ts = ts.dt.tz_convert("UTC")
        check["ts"] = ts
        return ts
    if pd.api.types.is_datetime64_dtype(ts.dtype):
        notes.append("`ts` has no time zone (naive timestamps): every row is quarantined.")
        check["ts"] = ts  # fails the table-level type expectation
    else:
        notes.append(f"`ts` is not a timestamp column (dtype {ts.dtype}): its rows are quarantined.")
        check["ts"] = ts.astype(str).where(ts.notna(), None)  # fails the type expectation row by row
    return None


def _prepare_value(df: pd.DataFrame, check: dict[str, object], notes: list[str]) -> pd.Series:
    """`value` as float64; text that reads as a number is accepted, other text is kept for the type check."""
    if "value" not in df.columns:
        return pd.Series(np.full(len(df), np.nan))
    raw = df["value"].reset_index(drop=True)
    if pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
        value = raw.astype("float64")
        check["value"] = value
        return value
    value = pd.to_numeric(raw, errors="coerce").astype("float64")
    text = value.isna() & raw.notna()
    mixed = value.astype(object)
    mixed[text] = raw[text].astype(str)
    check["value"] = mixed
    if text.any():
        notes.append(f"`value` holds text that is not a number in {int(text.sum()):,} rows.")
    return value


def _range_excess(codes: np.ndarray, tags: list[str], value: pd.Series, ranges: pd.DataFrame) -> np.ndarray:
    """max(low - value, value - high) per row, in the tag's unit; NaN when the tag has no range."""
    resolved = _resolve_ranges(tags, ranges)
    low = np.append(resolved["low"].to_numpy(dtype="float64"), np.nan)  # code -1 (no tag) -> NaN
    high = np.append(resolved["high"].to_numpy(dtype="float64"), np.nan)
    ranged = ~(np.isnan(low) & np.isnan(high))
    v = value.to_numpy()
    with np.errstate(invalid="ignore"):
        excess = np.maximum(np.nan_to_num(low, nan=-np.inf)[codes] - v, v - np.nan_to_num(high, nan=np.inf)[codes])
    return np.where(ranged[codes], excess, np.nan)


def _order_checks(
    codes: np.ndarray, ts_int: np.ndarray, valid: np.ndarray, per_second: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: 1.0 when the same (tag, ts) arrived earlier, and seconds behind the tag's latest ts so far.

    Input order is arrival order. Rows with an invalid ts are not checked and do not count as
    earlier arrivals (they fail the ts expectations instead); their results are NaN.

    A reading is in order when its ts equals its tag's running maximum (including itself). In-order
    readings form a non-decreasing sequence and alone set the running maximum, so an in-order
    reading repeats an earlier ts exactly when it equals the previous in-order reading of its tag.
    A late reading is checked against every earlier reading with the same ts.
    """
    seen = np.full(len(codes), np.nan)
    behind = np.full(len(codes), np.nan)
    rows = np.flatnonzero(valid)
    if rows.size == 0:
        return seen, behind
    c, t = codes[rows], ts_int[rows]
    running_max = pd.Series(t).groupby(c, sort=False).cummax().to_numpy()
    behind[rows] = (running_max - t) / per_second
    late = t < running_max
    repeat = np.zeros(rows.size)
    in_order = np.flatnonzero(~late)
    step = pd.Series(t[in_order]).groupby(c[in_order], sort=False).diff().to_numpy()
    repeat[in_order[step == 0]] = 1.0
    if late.any():
        candidates = np.flatnonzero(np.isin(t, np.unique(t[late])))
        pairs = pd.DataFrame({"tag": c[candidates], "ts": t[candidates]})
        repeat[candidates[pairs.duplicated(keep="first").to_numpy()]] = 1.0
    seen[rows] = repeat
    return seen, behind


def _prepare(df: pd.DataFrame, ranges: pd.DataFrame, now_utc: pd.Timestamp, rules: TagRules) -> _Prepared:
    """The tag table plus derived columns, in input order: the frame the row suite validates."""
    n = len(df)
    notes: list[str] = []
    check: dict[str, object] = {ROW_ID: np.arange(n, dtype=np.int64)}
    codes, tags = _prepare_tag(df, check)
    ts_utc = _prepare_ts(df, check, notes)
    value = _prepare_value(df, check, notes)
    if "quality" in df.columns:
        quality = df["quality"].reset_index(drop=True)
        check["quality"] = quality if isinstance(quality.dtype, pd.CategoricalDtype) else pd.Categorical(quality)
    check["range_excess"] = _range_excess(codes, tags, value, ranges)
    seen, behind = np.full(n, np.nan), np.full(n, np.nan)
    if ts_utc is not None:
        ts_int, per_second = _ts_ints(ts_utc)
        earliest, latest = _bounds(rules, now_utc)
        unit = _unit_of(per_second)
        low, high = _instant(earliest, unit), _instant(latest, unit)
        valid = (ts_int != _INT64_MIN) & (ts_int >= low) & (ts_int <= high) & (codes >= 0)
        seen, behind = _order_checks(codes, ts_int, valid, per_second)
    check["ts_seen_before"] = seen
    check["ts_behind_s"] = behind
    return _Prepared(check=pd.DataFrame(check), codes=codes, tags=tags, ts_utc=ts_utc, value=value, notes=notes)


def _ts_ints(ts: pd.Series) -> tuple[np.ndarray, float]:
    """Instants as int64 in the column's own unit (NaT is the int64 minimum), and units per second."""
    unit = str(getattr(ts.dtype, "unit", "ns"))
    return ts.to_numpy(dtype=f"datetime64[{unit}]").view(np.int64), _PER_SECOND[unit]


def _instant(ts: pd.Timestamp, unit: str) -> int:
    """An instant as an integer count of `unit` since the epoch (`Timestamp.value` is always in ns)."""
    return int(ts.value) // int(1e9 / _PER_SECOND[unit])


def _unit_of(per_second: float) -> str:
    return next(unit for unit, per in _PER_SECOND.items() if per == per_second)


# --- running Great Expectations ---------------------------------------------------------------------


def gx_context() -> AbstractDataContext:
    """A fresh in-memory Great Expectations context: no files, no analytics, no progress bars."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def gx_checkpoint(
    context: AbstractDataContext, source: PandasDatasource, suite: ExpectationSuite, asset: str, index_column: str
) -> Checkpoint:
    """A checkpoint over one dataframe asset, with COMPLETE results indexed by `index_column`."""
    import great_expectations as gx

    batch = source.add_dataframe_asset(asset).add_batch_definition_whole_dataframe(asset)
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=asset, data=batch, suite=context.suites.add(suite))
    )
    result_format = {
        "result_format": "COMPLETE",
        "unexpected_index_column_names": [index_column],
        "return_unexpected_index_query": False,
        "partial_unexpected_count": _PARTIAL,
        "exclude_unexpected_values": True,  # row ids only: values would be serialised row by row
    }
    return context.checkpoints.add(
        gx.Checkpoint(name=asset, validation_definitions=[definition], result_format=result_format)
    )


def run_checkpoint(checkpoint: Checkpoint, frame: pd.DataFrame) -> ExpectationSuiteValidationResult:
    result = checkpoint.run(batch_parameters={"dataframe": frame})
    return next(iter(result.run_results.values()))


def _label(config: ExpectationConfiguration) -> str:
    """`expectation_type(column)`: the name a quarantined row carries in `reason`."""
    kwargs = config.kwargs
    if "column" in kwargs:
        target = str(kwargs["column"])
    elif "column_A" in kwargs:
        target = f"{kwargs['column_A']},{kwargs['column_B']}"
    else:
        target = ",".join(kwargs.get("column_list", []))
    return f"{config.type}({target})"


def _exception(result: ExpectationValidationResult) -> str | None:
    """The message of an exception raised while evaluating an expectation, if any."""
    info = result.exception_info or {}
    if "raised_exception" in info:
        return str(info.get("exception_message") or "error") if info.get("raised_exception") else None
    for nested in info.values():
        if isinstance(nested, Mapping) and nested.get("raised_exception"):
            return str(nested.get("exception_message") or "error")
    return None


@dataclass
class _Merged:
    """One expectation's results merged over chunks, with the positions of the rows it lists."""

    config: ExpectationConfiguration
    success: bool = True
    element_count: int = 0
    unexpected_count: int = 0
    missing_count: int = 0
    observed: object = None
    partial: list[object] = field(default_factory=list)
    positions: list[np.ndarray] = field(default_factory=list)
    lists_rows: bool = False
    exception: str | None = None

    @property
    def label(self) -> str:
        return _label(self.config)

    @property
    def action(self) -> str:
        return str((self.config.meta or {}).get("action", "quarantine"))

    @property
    def table_failure(self) -> bool:
        """Failed as a whole (a missing column, a naive ts column) rather than on listed rows."""
        return not self.success and not self.lists_rows and self.exception is None

    def add(self, result: ExpectationValidationResult, index_column: str) -> None:
        self.success = self.success and bool(result.success)
        self.exception = self.exception or _exception(result)
        body = result.result or {}
        self.element_count += int(body.get("element_count") or 0)
        self.unexpected_count += int(body.get("unexpected_count") or 0)
        self.missing_count += int(body.get("missing_count") or 0)
        if "observed_value" in body:
            self.observed = body["observed_value"]
        entries = body.get("unexpected_index_list")
        if entries is not None:  # [{index_column: [ids]}] without values, [{column: value, index_column: id}, ...] with
            self.lists_rows = True
            for entry in entries:
                ids = entry[index_column]
                self.positions.append(np.asarray(ids if isinstance(ids, list) else [ids], dtype=np.int64))

    def rows(self) -> np.ndarray:
        return np.concatenate(self.positions) if self.positions else np.zeros(0, dtype=np.int64)

    def to_gx(self) -> ExpectationValidationResult:
        from great_expectations.core.expectation_validation_result import ExpectationValidationResult

        result: dict[str, object] = {"element_count": self.element_count, "unexpected_count": self.unexpected_count}
        if self.observed is not None:
            result["observed_value"] = self.observed
        if self.lists_rows:
            rows = self.rows()
            checked = self.element_count - self.missing_count
            result["missing_count"] = self.missing_count
            result["unexpected_percent"] = 100.0 * self.unexpected_count / checked if checked else None
            result["partial_unexpected_list"] = [_json_value(v) for v in self.partial]
            result["unexpected_index_list"] = rows[:_KEPT_INDEXES].tolist()
            result["unexpected_index_list_truncated"] = bool(rows.size > _KEPT_INDEXES)
        info = {"raised_exception": self.exception is not None, "exception_message": self.exception}
        return ExpectationValidationResult(
            success=self.success, expectation_config=self.config, result=result, exception_info=info
        )


def _merge_suite(name: str, merged: list[_Merged], meta: dict[str, object]) -> ExpectationSuiteValidationResult:
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult

    evaluated = len(merged)
    successful = sum(m.success for m in merged)
    statistics = {
        "evaluated_expectations": evaluated,
        "successful_expectations": successful,
        "unsuccessful_expectations": evaluated - successful,
        "success_percent": 100.0 * successful / evaluated if evaluated else None,
    }
    return ExpectationSuiteValidationResult(
        success=successful == evaluated,
        results=[m.to_gx() for m in merged],
        suite_name=name,
        statistics=statistics,
        meta=meta,
    )


def _validate(checkpoint: Checkpoint, frame: pd.DataFrame, index_column: str, chunk_rows: int) -> list[_Merged]:
    """Run the checkpoint over `frame` in chunks and merge each expectation's results."""
    merged: dict[str, _Merged] = {}
    for start in range(0, max(len(frame), 1), chunk_rows):
        for result in run_checkpoint(checkpoint, frame.iloc[start : start + chunk_rows]).results:
            config = result.expectation_config
            assert config is not None  # a suite's results always carry their expectation
            merged.setdefault(_label(config), _Merged(config=config)).add(result, index_column)
    for m in merged.values():  # a sample of the unexpected values, for the report
        column = m.config.kwargs.get("column")
        if m.lists_rows and column in frame.columns:
            m.partial = frame[column].iloc[m.rows()[:_PARTIAL]].tolist()
    return list(merged.values())


def _row_failures(merged: list[_Merged], n: int, ignore: set[str]) -> dict[str, np.ndarray]:
    """The rows each failed quarantining expectation sends to quarantine, by label.

    A failure that lists rows quarantines those rows. A failure without a row list (a table-level
    expectation: a missing column, naive timestamps) quarantines every row. An expectation that
    could not be evaluated quarantines every row too, unless a table-level failure explains it.
    Labels in `ignore` are checks without meaning for this frame (the ts bounds when ts is not a
    time-zone-aware timestamp column, which the type expectation reports).
    """
    table_failed = any(m.table_failure for m in merged)
    failures: dict[str, np.ndarray] = {}
    for m in merged:
        if m.success or m.action != "quarantine" or m.label in ignore:
            continue
        if m.lists_rows and m.exception is None:
            failures[m.label] = m.rows()
        elif m.exception is None or not table_failed:
            failures[m.label] = np.arange(n, dtype=np.int64)
    return failures


# --- per-tag statistics -----------------------------------------------------------------------------


def _station(tag: str) -> str:
    return tag.split(".", 1)[0] or _NO_TAG


def _tag_stats(
    prep: _Prepared, good: np.ndarray, ranges: pd.DataFrame, now_utc: pd.Timestamp, rules: TagRules
) -> pd.DataFrame:
    """One row per tag: counts, range, sample period, missing rate and staleness over its good rows.

    The window for the missing rate runs from the first to the last good reading of all tags.
    The sample period comes from the registry, else it is the lower quartile of the tag's intervals
    between good readings (robust to gaps in up to three quarters of the intervals).
    """
    n_tags = len(prep.tags)
    known = prep.codes >= 0
    resolved = _resolve_ranges(prep.tags, ranges)
    stats = pd.DataFrame(
        {
            "tag": prep.tags,
            "station": [_station(t) for t in prep.tags],
            "rows": np.bincount(prep.codes[known], minlength=n_tags),
            "good": np.bincount(prep.codes[good & known], minlength=n_tags),
            "low": resolved["low"].to_numpy(dtype="float64"),
            "high": resolved["high"].to_numpy(dtype="float64"),
            "unit": resolved["unit"].to_numpy(dtype=object),
            "sample_period_s": resolved["sample_period_s"].to_numpy(dtype="float64"),
        }
    )
    stats["has_range"] = stats["low"].notna() | stats["high"].notna()
    stats["period_source"] = np.where(stats["sample_period_s"].isna(), "intervals", "registry")
    stats["missing_rate"] = np.where(stats["good"] == 0, 1.0, np.nan)
    stats["first_good_ts"] = stats["last_good_ts"] = pd.Series(pd.NaT, index=stats.index, dtype="datetime64[ns, UTC]")
    stats["staleness_s"] = np.nan
    g = good & known
    if prep.ts_utc is not None and g.any():
        ts_int, per_second = _ts_ints(prep.ts_utc)
        unit = _unit_of(per_second)
        t, c = pd.Series(ts_int[g]), prep.codes[g]
        tags = range(n_tags)
        first = t.groupby(c).min().reindex(tags, fill_value=_INT64_MIN).to_numpy(dtype=np.int64)
        last = t.groupby(c).max().reindex(tags, fill_value=_INT64_MIN).to_numpy(dtype=np.int64)
        # good readings of a tag arrive in strictly increasing ts (repeats and late ones are quarantined)
        steps_s = t.groupby(c, sort=False).diff() / per_second
        typical_s = steps_s.groupby(c).quantile(0.25).reindex(tags).to_numpy(dtype="float64")
        period = stats["sample_period_s"].fillna(pd.Series(typical_s)).to_numpy(dtype="float64")
        span_s = (int(t.max()) - int(t.min())) / per_second
        with np.errstate(invalid="ignore", divide="ignore"):
            missing = np.clip(1.0 - stats["good"].to_numpy() / (np.floor(span_s / period) + 1.0), 0.0, 1.0)
        stats["sample_period_s"] = period
        stats["missing_rate"] = np.where(stats["good"] == 0, 1.0, missing)
        now_int = _instant(now_utc, unit)
        stats["staleness_s"] = np.where(last == _INT64_MIN, np.nan, (now_int - last) / per_second)
        stats["first_good_ts"] = _from_ints(first, unit)
        stats["last_good_ts"] = _from_ints(last, unit)
    limit = np.fmax(rules.stale_periods * stats["sample_period_s"].to_numpy(), rules.max_staleness.total_seconds())
    stats["staleness_limit_s"] = limit
    return stats


def _from_ints(ints: np.ndarray, unit: str) -> pd.Series:
    """datetime64[ns, UTC] from int64 instants in `unit` (the int64 minimum is NaT)."""
    return pd.Series(ints.view(f"datetime64[{unit}]")).dt.tz_localize("UTC").dt.as_unit("ns")


def _validate_tag_stats(checkpoint: Checkpoint, stats: pd.DataFrame) -> list[_Merged]:
    frame = stats[["tag", "missing_rate", "staleness_s", "staleness_limit_s", "has_range"]].copy()
    frame.insert(0, _TAG_INDEX, np.arange(len(frame), dtype=np.int64))
    frame["has_range"] = frame["has_range"].astype(bool)
    return _validate(checkpoint, frame, _TAG_INDEX, max(len(frame), 1))


# --- the public entry point -------------------------------------------------------------------------


def validate_tags(
    df: pd.DataFrame,
    ranges: Ranges = None,
    *,
    now: pd.Timestamp | None = None,
    report_dir: str | Path | None = None,
    rules: TagRules | None = None,
    source: str | None = None,
) -> ValidationOutcome:
    """Validate a tag table, split it into good and quarantined rows, and keep the results.

    Bad data never raises (missing columns, text values, naive timestamps, an empty frame): bad rows
    are quarantined with the names of the expectations they failed. Every input row ends up in
    exactly one of `good` and `quarantined`.

    Args:
        df: The tag table `tag, ts, value, quality`, in arrival order; extra columns are carried along.
        ranges: Physical ranges per tag or per measure, in any form `normalize_ranges` accepts, e.g.
            `{"DISCH_P": (0.0, 100.0, "bar")}`; None skips the range check.
        now: Reference instant for readings from the future and for freshness (default: the current
            time; pass the end of the window when validating old data).
        report_dir: Folder for the reports (the caller passes `<PUMPTWIN_HOME>/validation/`). Each run
            writes `<report_dir>/<run_id>/report.html`, `results.json` and `summary.md`, and
            `<report_dir>/index.html` lists the runs. None writes nothing.
        rules: Thresholds (default `TagRules()`).
        source: What was validated (a file, a window), shown in the summary and the report.

    Returns:
        The good rows, the quarantined rows with their reasons, per-tag statistics, the summary (a
        dict and markdown), the merged Great Expectations results and the report files.

    Raises:
        TypeError: When `df` is not a DataFrame or `ranges` has no accepted form (a caller's bug).
        ValueError: When `ranges` or `now` are invalid (configuration, not data).
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    rules = rules or TagRules()
    now_utc = _now(now)
    range_table = normalize_ranges(ranges)
    started = pd.Timestamp.now(tz="UTC")
    run_id = f"tags-{started:%Y%m%dT%H%M%S}Z-{uuid.uuid4().hex[:6]}"
    n = len(df)

    prep = _prepare(df, range_table, now_utc, rules)
    suites = build_tag_suite(range_table, now=now_utc, rules=rules)
    context = gx_context()
    source_ = context.data_sources.add_pandas("pumptwin")
    rows_checkpoint = gx_checkpoint(context, source_, suites.rows, "tag_rows", ROW_ID)
    tags_checkpoint = gx_checkpoint(context, source_, suites.tags, "tag_stats", _TAG_INDEX)

    row_merged = _validate(rows_checkpoint, prep.check, ROW_ID, rules.chunk_rows)
    ignore = set() if prep.ts_utc is not None else {"expect_column_values_to_be_between(ts)"}
    failures = _row_failures(row_merged, n, ignore)
    failed = np.zeros(n, dtype=bool)
    for rows in failures.values():
        failed[rows] = True

    stats = _tag_stats(prep, ~failed, range_table, now_utc, rules)
    tag_merged = _validate_tag_stats(tags_checkpoint, stats) if len(stats) else []
    for m in tag_merged:
        if not m.success and m.lists_rows:
            stats[m.label] = np.isin(np.arange(len(stats)), m.rows())
            if m.action == "quarantine":
                failures[m.label] = np.flatnonzero(np.isin(prep.codes, m.rows()))

    labels = list(failures)
    masks = np.zeros(n, dtype=np.int64)
    for bit, rows in enumerate(failures.values()):
        masks[rows] |= np.int64(1) << bit
    results = {
        ROWS_SUITE: _merge_suite(ROWS_SUITE, row_merged, {"run_id": run_id, "rows": n, "chunk_rows": rules.chunk_rows}),
        TAGS_SUITE: _merge_suite(TAGS_SUITE, tag_merged, {"run_id": run_id, "tags": len(stats)}),
    }
    summary = _summary(
        run_id=run_id,
        source=source,
        started=started,
        now_utc=now_utc,
        prep=prep,
        masks=masks,
        failures=failures,
        merged={ROWS_SUITE: row_merged, TAGS_SUITE: tag_merged},
        stats=stats,
    )
    report_files = (
        _write_report(Path(report_dir), run_id, summary, suites, results, stats) if report_dir is not None else {}
    )
    markdown = summary_markdown(summary)
    if report_files:
        report_files["markdown"].write_text(markdown, encoding="utf-8")
    return ValidationOutcome(
        good=_good_rows(df, prep, masks == 0),
        quarantined=_quarantined_rows(df, masks, labels),
        tags=stats,
        summary=summary,
        markdown=markdown,
        results=results,
        report_files=report_files,
    )


def _good_rows(df: pd.DataFrame, prep: _Prepared, good: np.ndarray) -> pd.DataFrame:
    positions = np.flatnonzero(good)
    rows = df.iloc[positions].reset_index(drop=True)
    if positions.size and prep.ts_utc is not None:
        rows["ts"] = prep.ts_utc.iloc[positions].reset_index(drop=True).dt.as_unit("ns")
    if positions.size and "value" in rows.columns:
        rows["value"] = prep.value.iloc[positions].reset_index(drop=True)
    return rows


def _quarantined_rows(df: pd.DataFrame, masks: np.ndarray, labels: list[str]) -> pd.DataFrame:
    positions = np.flatnonzero(masks)
    rows = df.iloc[positions].reset_index(drop=True)
    rows[ROW_ID] = positions.astype(np.int64)
    row_masks = masks[positions]
    reasons = {m: "; ".join(label for bit, label in enumerate(labels) if m >> bit & 1) for m in np.unique(row_masks)}
    rows["reason"] = pd.Series(row_masks, dtype=np.int64).map(reasons).astype(object)
    return rows


# --- summary and report -----------------------------------------------------------------------------


def _json_float(x: object) -> float | None:
    try:
        f = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _json_value(value: object) -> object:
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float | np.floating):
        return _json_float(value)
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    return str(value)


def _summary(
    *,
    run_id: str,
    source: str | None,
    started: pd.Timestamp,
    now_utc: pd.Timestamp,
    prep: _Prepared,
    masks: np.ndarray,
    failures: dict[str, np.ndarray],
    merged: dict[str, list[_Merged]],
    stats: pd.DataFrame,
) -> dict[str, Any]:
    quarantined = masks != 0
    station_of_tag = [_station(t) for t in prep.tags]
    stations = sorted(set(station_of_tag) | ({_NO_TAG} if (prep.codes < 0).any() else set()))
    index = {s: i for i, s in enumerate(stations)}
    code_station = np.array([index[s] for s in station_of_tag] + [index.get(_NO_TAG, 0)], dtype=np.int64)
    row_station = code_station[prep.codes]
    rows_in = np.bincount(row_station, minlength=len(stations))
    bad = np.bincount(row_station[quarantined], minlength=len(stations))
    per_reason = {label: np.bincount(row_station[rows], minlength=len(stations)) for label, rows in failures.items()}
    by_station = [
        {
            "station": s,
            "rows_in": int(rows_in[i]),
            "good": int(rows_in[i] - bad[i]),
            "quarantined": int(bad[i]),
            "by_reason": {label: int(counts[i]) for label, counts in per_reason.items() if counts[i]},
        }
        for i, s in enumerate(stations)
        if rows_in[i]
    ]
    expectations = [
        {
            "suite": suite,
            "label": m.label,
            "type": m.config.type,
            "description": m.config.description,
            "action": m.action,
            "success": m.success,
            "element_count": m.element_count,
            "unexpected_count": m.unexpected_count,
            "observed_value": _json_value(m.observed),
            "sample_unexpected": [_json_value(v) for v in m.partial[:10]],
            "exception": m.exception,
        }
        for suite, items in merged.items()
        for m in items
    ]

    def failing_tags(label: str) -> list[str]:
        return stats.loc[stats[label], "tag"].tolist() if label in stats.columns else []

    return {
        "run_id": run_id,
        "source": source,
        "validated_at": started.isoformat(),
        "now": now_utc.isoformat(),
        "success": bool(not quarantined.any() and all(m.success for items in merged.values() for m in items)),
        "rows_in": len(masks),
        "good": int(len(masks) - quarantined.sum()),
        "quarantined": int(quarantined.sum()),
        "by_reason": {label: int(rows.size) for label, rows in failures.items()},
        "by_station": by_station,
        "table_failures": [m.label for m in merged[ROWS_SUITE] if m.table_failure],
        "expectations": expectations,
        "tags": {
            "count": len(stats),
            "bad_name": failing_tags("expect_column_values_to_match_regex(tag)"),
            "stale": failing_tags("expect_column_pair_values_a_to_be_greater_than_b(staleness_limit_s,staleness_s)"),
            "high_missing_rate": failing_tags("expect_column_values_to_be_between(missing_rate)"),
            "without_range": failing_tags("expect_column_values_to_be_in_set(has_range)"),
        },
        "notes": list(prep.notes),
        "report_files": {},
    }


def _names(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(f"`{n}`" for n in names[:limit])
    return shown + (f" and {len(names) - limit:,} more" if len(names) > limit else "")


def summary_markdown(summary: Mapping[str, Any]) -> str:
    """Render a validation summary as markdown, for a Prefect artifact or a terminal.

    Args:
        summary: `ValidationOutcome.summary`.

    Returns:
        Rows in, good and quarantined; quarantined rows by expectation and per station; the tag
        findings; table-level failures and notes; where the report is.
    """
    descriptions = {e["label"]: e["description"] or "" for e in summary["expectations"]}
    lines = [f"## Tag validation `{summary['run_id']}`", ""]
    if summary.get("source"):
        lines += [f"Source: `{summary['source']}`", ""]
    lines += [
        "| rows in | good | quarantined |",
        "|---:|---:|---:|",
        f"| {summary['rows_in']:,} | {summary['good']:,} | {summary['quarantined']:,} |",
        "",
    ]
    if summary["by_reason"]:
        lines += ["**Quarantined by reason** (a row can fail several expectations)", ""]
        lines += ["| expectation | rows | checks |", "|---|---:|---|"]
        for label, count in sorted(summary["by_reason"].items(), key=lambda kv: -kv[1]):
            lines.append(f"| `{label}` | {count:,} | {descriptions.get(label, '')} |")
        lines.append("")
    else:
        lines += ["No row was quarantined.", ""]
    if summary["by_station"]:
        lines += [
            "**Per station**",
            "",
            "| station | rows in | good | quarantined | by reason |",
            "|---|---:|---:|---:|---|",
        ]
        for s in summary["by_station"]:
            reasons = "<br>".join(f"`{label}` {count:,}" for label, count in s["by_reason"].items())
            lines.append(f"| {s['station']} | {s['rows_in']:,} | {s['good']:,} | {s['quarantined']:,} | {reasons} |")
        lines.append("")
    tags = summary["tags"]
    lines.append(f"**Tags**: {tags['count']:,} checked.")
    for key, text in (
        ("bad_name", "badly named (all their readings quarantined)"),
        ("stale", "stale"),
        ("high_missing_rate", "missing too many samples"),
        ("without_range", "without a physical range"),
    ):
        if tags[key]:
            lines.append(f"- {len(tags[key]):,} {text}: {_names(tags[key])}")
    lines.append("")
    if summary["table_failures"]:
        failed = ", ".join(f"`{x}`" for x in summary["table_failures"])
        lines += [f"**Table-level failures** (every row quarantined): {failed}", ""]
    errors = [e for e in summary["expectations"] if e["exception"]]
    if errors and not summary["table_failures"]:
        lines += ["**Not evaluated**: " + ", ".join(f"`{e['label']}` ({e['exception']})" for e in errors), ""]
    lines += [f"- {note}" for note in summary["notes"]]
    if summary["notes"]:
        lines.append("")
    if summary.get("report_files", {}).get("html"):
        lines += [f"Report: `{summary['report_files']['html']}`", ""]
    return "\n".join(lines).rstrip() + "\n"


def _write_report(
    report_dir: Path,
    run_id: str,
    summary: dict[str, Any],
    suites: TagSuites,
    results: Mapping[str, ExpectationSuiteValidationResult],
    stats: pd.DataFrame,
) -> dict[str, Path]:
    """Write `<report_dir>/<run_id>/` (report.html, results.json; summary.md is written by the caller)."""
    folder = report_dir / run_id
    folder.mkdir(parents=True, exist_ok=True)
    files = {"html": folder / "report.html", "json": folder / "results.json", "markdown": folder / "summary.md"}
    summary["report_files"] = {kind: str(path) for kind, path in files.items()}
    payload = {
        "summary": summary,
        "suites": {suite.name: suite.to_json_dict() for suite in (suites.rows, suites.tags)},
        "results": {name: result.to_json_dict() for name, result in results.items()},
        "tags": json.loads(stats.to_json(orient="records", date_format="iso")),
    }
    files["json"].write_text(json.dumps(payload, indent=1, default=str), encoding="utf-8")
    files["html"].write_text(_html_report(summary, stats), encoding="utf-8")
    _write_index(report_dir)
    return files


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2rem;color:#222}"
    "table{border-collapse:collapse;margin:.5rem 0 1.5rem}"
    "td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}"
    "td.n{text-align:right}.ok{color:#1a7f37}.fail{color:#cf222e}.warn{color:#9a6700}"
    "code{background:#f4f4f4;padding:0 .2rem}"
)


def _html_table(header: list[str], rows: list[list[str]], numeric: frozenset[int] = frozenset()) -> str:
    """An HTML table; cells are HTML already (escape them before)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td{' class=n' if i in numeric else ''}>{cell}</td>" for i, cell in enumerate(r)) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _html_expectations(summary: Mapping[str, Any]) -> str:
    e = html.escape
    rows = []
    for x in summary["expectations"]:
        status = "ok" if x["success"] else ("warn" if x["action"] == "report" else "fail")
        word = "passed" if x["success"] else ("error" if x["exception"] else "failed")
        detail = x["exception"] or ", ".join(map(str, x["sample_unexpected"])) or str(x["observed_value"] or "")
        rows.append(
            [
                e(x["suite"]),
                f"<code>{e(x['label'])}</code><br>{e(x['description'] or '')}",
                e(x["action"]),
                f"<span class={status}>{word}</span>",
                f"{x['element_count']:,}",
                f"{x['unexpected_count']:,}",
                e(detail),
            ]
        )
    header = ["suite", "expectation", "on failure", "result", "checked", "unexpected", "sample or detail"]
    return _html_table(header, rows, frozenset({4, 5}))


def _html_report(summary: Mapping[str, Any], stats: pd.DataFrame) -> str:
    e = html.escape
    source = f"; source <code>{e(str(summary['source']))}</code>" if summary.get("source") else ""
    counts = [[f"{summary['rows_in']:,}", f"{summary['good']:,}", f"{summary['quarantined']:,}"]]
    parts = [
        f"<!doctype html><html><head><meta charset=utf-8><title>{e(summary['run_id'])}</title>"
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Tag validation <code>{e(summary['run_id'])}</code></h1>",
        f"<p>Validated {e(summary['validated_at'])} against now = {e(summary['now'])}{source}.</p>",
        _html_table(["rows in", "good", "quarantined"], counts, frozenset({0, 1, 2})),
    ]
    if summary["notes"]:
        parts.append("<ul>" + "".join(f"<li>{e(n)}</li>" for n in summary["notes"]) + "</ul>")
    parts += ["<h2>Expectations</h2>", _html_expectations(summary), "<h2>Per station</h2>"]
    station_rows = [
        [
            e(s["station"]),
            f"{s['rows_in']:,}",
            f"{s['good']:,}",
            f"{s['quarantined']:,}",
            "<br>".join(f"<code>{e(k)}</code>: {v:,}" for k, v in s["by_reason"].items()),
        ]
        for s in summary["by_station"]
    ]
    header = ["station", "rows in", "good", "quarantined", "quarantined by expectation"]
    parts.append(_html_table(header, station_rows, frozenset({1, 2, 3})))
    flags = [c for c in stats.columns if c.startswith("expect_")]
    shown = stats[stats[flags].any(axis=1)] if flags else stats.iloc[:0]
    more = f" (first {_HTML_TAGS} shown)" if len(shown) > _HTML_TAGS else ""
    parts += [f"<h2>Tags</h2><p>{len(stats):,} tags, {len(shown):,} with findings{more}.</p>"]
    columns = [
        "tag",
        "station",
        "rows",
        "good",
        "low",
        "high",
        "unit",
        "sample_period_s",
        "missing_rate",
        "staleness_s",
    ]
    tag_rows = [
        [e(_cell(row[c])) for c in columns] + [e(", ".join(f for f in flags if row[f]))]
        for _, row in shown.head(_HTML_TAGS).iterrows()
    ]
    parts += [_html_table([*columns, "failed"], tag_rows, frozenset({2, 3, 4, 5, 7, 8, 9})), "</body></html>"]
    return "\n".join(parts)


def _cell(value: object) -> str:
    if isinstance(value, float | np.floating):
        return "" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _write_index(report_dir: Path) -> None:
    runs = sorted((p.name for p in report_dir.iterdir() if (p / "report.html").is_file()), reverse=True)
    items = "".join(f'<li><a href="{html.escape(r)}/report.html">{html.escape(r)}</a></li>' for r in runs)
    (report_dir / "index.html").write_text(
        "<!doctype html><html><head><meta charset=utf-8><title>pumptwin validation runs</title>"
        f"<style>{_CSS}</style></head><body><h1>Validation runs</h1><ul>{items}</ul></body></html>",
        encoding="utf-8",
    )


class TagValidator:
    """`validate_tags` as the ingestion pipeline's validation hook, keeping every run's outcome.

    Usage example::

        validator = TagValidator({"VIB_DE_RMS": (0.0, 50.0, "mm/s")}, report_dir=home / "validation")
        summary = ingest_path("data/", store, validate=validator)
        print(validator.outcomes[-1].markdown)

    Args:
        ranges: Physical ranges per tag or per measure (see `normalize_ranges`).
        report_dir: Folder for the validation reports; None writes none.
        now: Reference instant for freshness and future timestamps (default: now).
        source: What is validated, shown in the reports.
    """

    def __init__(
        self,
        ranges: Ranges = None,
        *,
        report_dir: str | Path | None = None,
        now: pd.Timestamp | None = None,
        source: str | None = None,
    ) -> None:
        self.ranges = normalize_ranges(ranges) if ranges is not None else None
        self.report_dir = report_dir
        self.now = now
        self.source = source
        self.outcomes: list[ValidationOutcome] = []

    def __call__(self, readings: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Split ``readings`` into (good rows, quarantined rows with `reason`), keeping their index."""
        outcome = validate_tags(readings, self.ranges, now=self.now, report_dir=self.report_dir, source=self.source)
        self.outcomes.append(outcome)
        positions = outcome.quarantined["row_id"].to_numpy(dtype=np.int64)
        passed = np.ones(len(readings), dtype=bool)
        passed[positions] = False
        good = outcome.good.set_axis(readings.index[passed], axis=0)
        bad = outcome.quarantined.set_axis(readings.index[positions], axis=0).drop(columns=["row_id"])
        return good, bad
