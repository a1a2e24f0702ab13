"""The tag-reading contract shared by every source, the validation hook and the raw store.

A reading, as a PI archive holds it, is one row of a long table:

| tag                  | ts                        | value | quality |
|----------------------|---------------------------|-------|---------|
| PS01.P2.VIB_DE_RMS   | 2026-11-01 00:00:00+00:00 | 2.31  | good    |

with `tag` a `str` named `STATION.ASSET.MEASURE`, `ts` a `datetime64[ns, UTC]`, `value` a
`float64` (NaN where the historian holds no number, e.g. a system digital state) and `quality`
one of `good`, `questionable`, `bad`, `substituted`.

Rows that cannot become readings are kept, with their raw fields as text, in a *rejected* table:
`tag`, `ts`, `value`, `quality` (raw text), `source_file`, `source_row` (1-based row of the data
in its source, missing when unknown) and `reason`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pumptwin.twin.tags import TAG_PATTERN  # the one tag rule; the station part is path-safe

READING_COLUMNS: tuple[str, ...] = ("tag", "ts", "value", "quality")
"""Columns of a readings table, in order."""

QUALITIES: tuple[str, ...] = ("good", "questionable", "bad", "substituted")
"""Allowed quality flags."""

REJECTED_COLUMNS: tuple[str, ...] = ("tag", "ts", "value", "quality", "source_file", "source_row", "reason")
"""Columns of a rejected-rows table, in order."""

TS_DTYPE = pd.DatetimeTZDtype(unit="ns", tz="UTC")
"""The dtype of `ts`: nanoseconds, UTC."""


# Reasons a row is rejected by a source. Validation adds its own (the expectation that failed).
REASON_TAG = "tag not named STATION.ASSET.MEASURE"
REASON_TS_MISSING = "timestamp missing"
REASON_TS_NAIVE = "timestamp without time zone"
REASON_TS_UNPARSED = "timestamp not understood"
REASON_TS_LOCAL = "local time ambiguous or nonexistent (daylight-saving change)"
REASON_VALUE = "value is not a number"
REASON_QUALITY = "quality flag not one of good, questionable, bad, substituted"
REASON_FIELDS = "line has the wrong number of fields"
REASON_TOO_LONG = "line or field too long to read"

# Reasons the ingest pipeline quarantines a reading before it reaches the store.
REASON_TS_FUTURE = "timestamp later than the wall clock plus the tolerance (wrong clock or time zone)"
REASON_TAG_UNKNOWN = "tag matches no asset in the registry"


def empty_readings() -> pd.DataFrame:
    """Return an empty readings table with the contract's dtypes.

    Returns:
        A DataFrame with columns `tag` (object), `ts` (datetime64[ns, UTC]), `value` (float64)
        and `quality` (object) and no rows.
    """
    return pd.DataFrame(
        {
            "tag": pd.Series([], dtype=object),
            "ts": pd.Series([], dtype=TS_DTYPE),
            "value": pd.Series([], dtype=np.float64),
            "quality": pd.Series([], dtype=object),
        }
    )


def empty_rejected() -> pd.DataFrame:
    """Return an empty rejected-rows table.

    Returns:
        A DataFrame with the columns of `REJECTED_COLUMNS` and no rows; `source_row` is `Int64`.
    """
    frame = pd.DataFrame({name: pd.Series([], dtype=object) for name in REJECTED_COLUMNS})
    frame["source_row"] = frame["source_row"].astype("Int64")
    return frame


def is_tag(name: object) -> bool:
    """Tell whether `name` is a tag named `STATION.ASSET.MEASURE`.

    Args:
        name: Any value; only strings can be tags.

    Returns:
        True when `name` is a string matching `TAG_PATTERN`.
    """
    return isinstance(name, str) and TAG_PATTERN.match(name) is not None


def station_of(tag: str) -> str:
    """Return the station part of a tag name.

    Args:
        tag: A tag named `STATION.ASSET.MEASURE`, e.g. `PS01.P2.VIB_DE_RMS`.

    Returns:
        The station, e.g. `PS01`.

    Raises:
        ValueError: When `tag` is not named `STATION.ASSET.MEASURE`.
    """
    if TAG_PATTERN.match(tag) is None:
        raise ValueError(f"{tag!r}: {REASON_TAG}")
    return tag.split(".", 1)[0]


def is_readings(frame: pd.DataFrame) -> bool:
    """Tell whether `frame` has the contract's columns and dtypes (values are not checked).

    Args:
        frame: Any DataFrame.

    Returns:
        True when `tag`, `ts`, `value` and `quality` are present with dtypes object (or string),
        datetime64[ns, UTC], float64 and object (or string).
    """
    if not set(READING_COLUMNS) <= set(frame.columns):
        return False
    return (
        (frame["tag"].dtype == object or pd.api.types.is_string_dtype(frame["tag"].dtype))
        and frame["ts"].dtype == TS_DTYPE
        and frame["value"].dtype == np.float64
        and (frame["quality"].dtype == object or pd.api.types.is_string_dtype(frame["quality"].dtype))
    )


NAT_NS = np.iinfo(np.int64).min
"""The int64 that stands for NaT in nanosecond arrays."""


def utc_ns(values: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Return int64 nanoseconds since the epoch (UTC) of a datetime column.

    Args:
        values: tz-aware datetimes (any zone, any unit); naive ones are taken as UTC.

    Returns:
        An int64 array; NaT becomes `NAT_NS`.
    """
    index = pd.DatetimeIndex(values)
    if index.tz is not None:
        index = index.tz_convert("UTC")
    return np.asarray(index.as_unit("ns").asi8)


def utc_datetimes(ns: np.ndarray) -> pd.DatetimeIndex:
    """Return int64 nanoseconds since the epoch as a `datetime64[ns, UTC]` index (no copy).

    Args:
        ns: int64 nanoseconds since the epoch; `NAT_NS` is NaT.

    Returns:
        A tz-aware (UTC) DatetimeIndex.
    """
    return pd.DatetimeIndex(np.asarray(ns, dtype=np.int64).view("M8[ns]"), tz="UTC")


def raw_text(values: pd.Series) -> np.ndarray:
    """Render raw field values as text, as the rejected and quarantine tables keep them.

    Args:
        values: A column of any dtype.

    Returns:
        An object array of strings: datetimes in ISO 8601, missing values as empty text.
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values.dtype):
        text = values.astype(object).map(lambda v: "" if pd.isna(v) else v.isoformat())
        return text.to_numpy(dtype=object)
    obj = values.astype(object)
    return obj.where(obj.notna(), "").astype(str).to_numpy(dtype=object)
