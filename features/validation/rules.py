"""The tag table's contract and rules: columns, quality flags, the tag pattern, physical ranges per tag."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import pandas as pd

from pumptwin.twin.tags import TAG_REGEX
from pumptwin.twin.times import UtcTimeError, to_utc

if TYPE_CHECKING:
    from great_expectations import ExpectationSuite
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
    )


TAG_COLUMNS: tuple[str, ...] = ("tag", "ts", "value", "quality")
"""Columns of the tag table, in contract order."""

QUALITY_FLAGS: tuple[str, ...] = ("good", "questionable", "bad", "substituted")
"""PI-style quality flags allowed in `quality`."""

TAG_PATTERN = TAG_REGEX
"""Tag names: `STATION.ASSET.MEASURE` in capitals, digits and underscores (`twin.tags`), e.g. `PS01.P2.VIB_DE_RMS`."""

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


def _utc(value: object) -> pd.Timestamp | None:
    """A UTC timestamp from a timestamp-like value (`twin.times.to_utc`, naive means UTC); None if it is none."""
    try:
        return to_utc(value)  # anything else is refused below
    except UtcTimeError:
        return None


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
