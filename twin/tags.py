"""The tag naming rule, ``STATION.ASSET.MEASURE``: the one pattern and its parser.

Every reading is keyed by a tag such as ``PS01.P2.VIB_DE_RMS`` or ``LINE01.KP040.PRESS``: three
parts of upper-case letters, digits and underscores, each starting with a letter, joined by dots.
The asset registry names its tags by this rule, ingestion refuses rows whose tag breaks it and
validation checks it again, all with `TAG_PATTERN`.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from pumptwin.twin.errors import PumptwinError

TAG_REGEX = r"^[A-Z][A-Z0-9_]*\.[A-Z][A-Z0-9_]*\.[A-Z][A-Z0-9_]*$"
"""The tag rule as a regular expression (no groups, so validators that count groups take it as it is)."""
TAG_PATTERN = re.compile(TAG_REGEX)
"""`TAG_REGEX` compiled."""


class TagError(PumptwinError, ValueError):
    """A name that is not a ``STATION.ASSET.MEASURE`` tag; the message names it."""


class Tag(NamedTuple):
    """The three parts of a tag."""

    station: str
    asset: str
    measure: str

    def __str__(self) -> str:
        """The tag name, ``STATION.ASSET.MEASURE``."""
        return f"{self.station}.{self.asset}.{self.measure}"


def is_tag(name: object) -> bool:
    """Whether ``name`` is a string named ``STATION.ASSET.MEASURE`` (see `TAG_REGEX`)."""
    return isinstance(name, str) and TAG_PATTERN.match(name) is not None


def parse_tag(name: str) -> Tag:
    """Split a tag into station, asset and measure.

    Raises:
        TagError: ``name`` does not follow the rule.
    """
    if not is_tag(name):
        raise TagError(f"{name!r}: tag not named STATION.ASSET.MEASURE (upper-case letters, digits, _)")
    station, asset, measure = name.split(".")
    return Tag(station, asset, measure)
