"""Great Expectations suites for tag readings, and the frame they validate (cross-row checks as columns)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    pass

from pumptwin.features.validation.rules import (
    _INT64_MIN,
    _NUMERIC_TYPES,
    _PER_SECOND,
    ROW_ID,
    ROWS_SUITE,
    TAG_COLUMNS,
    TAGS_SUITE,
    Ranges,
    TagRules,
    TagSuites,
    _json_float,
    _resolve_ranges,
    _utc,
    normalize_ranges,
)

# --- suites -----------------------------------------------------------------------------------------


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
