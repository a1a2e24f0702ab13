"""UTC time: the one parser of moments and the one folder stamp.

Every timestamp pumptwin stores or compares is a timezone-aware `pandas.Timestamp` in UTC.
`to_utc` reads a moment (a `datetime`, a `Timestamp` or an ISO 8601 string) and converts it to
UTC; a naive moment is taken as UTC, or refused where the caller cannot know its zone (data from
a historian, store windows). `utc_stamp` names folders by the UTC time (``20260301T120000123456Z``).
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from pumptwin.twin.errors import PumptwinError

STAMP_FORMAT = "%Y%m%dT%H%M%S%fZ"
"""Folder stamp: UTC date and time to the microsecond, ``Z`` for UTC."""


class UtcTimeError(PumptwinError, ValueError):
    """A moment that cannot be read, or a naive one where a timezone is required; the message names it."""


def to_utc(moment: datetime | pd.Timestamp | str, *, naive_is_utc: bool = True, what: str = "time") -> pd.Timestamp:
    """A moment as a timezone-aware UTC timestamp.

    Args:
        moment: A `datetime`, `Timestamp` or ISO 8601 string (``2026-11-01T00:00Z``).
        naive_is_utc: Take a moment without timezone as UTC; False refuses it.
        what: How messages name the moment.

    Returns:
        The moment in UTC.

    Raises:
        UtcTimeError: An unreadable moment, or a naive one when ``naive_is_utc`` is False.
    """
    try:
        stamp = pd.Timestamp(moment)
    except (TypeError, ValueError) as exc:
        raise UtcTimeError(f"{what}: cannot read {moment!r} as a time") from exc
    if stamp is pd.NaT:
        raise UtcTimeError(f"{what}: cannot read {moment!r} as a time")
    if stamp.tzinfo is None:
        if not naive_is_utc:
            raise UtcTimeError(f"{what} must be timezone-aware (got {moment!r}); use UTC, e.g. '2026-11-01T00:00Z'")
        return stamp.tz_localize("UTC")
    return stamp.tz_convert("UTC")


def utc_or_none(
    moment: datetime | pd.Timestamp | str | None, *, naive_is_utc: bool = True, what: str = "time"
) -> pd.Timestamp | None:
    """`to_utc` of ``moment``, passing None through."""
    return None if moment is None else to_utc(moment, naive_is_utc=naive_is_utc, what=what)


def utc_now() -> pd.Timestamp:
    """The current time in UTC."""
    return pd.Timestamp.now(tz="UTC")


def utc_stamp(moment: datetime | pd.Timestamp | str | None = None) -> str:
    """A folder stamp of ``moment`` (default now) in UTC, e.g. ``20260301T120000000000Z``."""
    return str((utc_now() if moment is None else to_utc(moment)).strftime(STAMP_FORMAT))
