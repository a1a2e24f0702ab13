"""The one tag rule (`twin.tags`) and every place that checks a tag name agree on the same examples."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from pumptwin.features.ingest import contract
from pumptwin.features.ingest.pipeline import NO_STATION, _station_of_raw
from pumptwin.features.validation import rules
from pumptwin.twin.assets import RegistryError, TagSpec
from pumptwin.twin.tags import TAG_PATTERN, Tag, TagError, is_tag, parse_tag

GOOD = ["PS01.P2.VIB_DE_RMS", "LINE01.KP040.PRESS", "PS02.SITE.AMBIENT_TEMP", "A.B.C", "PS1_X.P_2.FLOW_M3S"]
BAD = [
    "ps02.p1.flow",  # lower case
    "PS01-FLOW",  # no parts
    "PS01.P1",  # two parts
    "PS01.P1.FLOW.X",  # four parts
    "PS-01.P1.FLOW",  # hyphen
    "01PS.P1.FLOW",  # starts with a digit
    "PS01.P1.FLOW ",  # trailing space
    "PS01..FLOW",  # empty part
    "",
]


def registry_accepts(name: str) -> bool:
    parts = (name.split(".") + ["", "", ""])[:3]
    try:
        TagSpec(name, *parts, unit="-", low=0.0, high=1.0, sample_period_s=1.0)
    except RegistryError:
        return False
    return True


CHECKS = {
    "twin.tags.is_tag": is_tag,
    "TAG_PATTERN": lambda name: TAG_PATTERN.match(name) is not None,
    "ingest contract": contract.is_tag,
    "ingest station": lambda name: _station_of_raw(pd.Series([name])).iloc[0] != NO_STATION,
    "validation rule": lambda name: re.search(rules.TagRules().tag_pattern, name) is not None,
    "asset registry": registry_accepts,
}


@pytest.mark.parametrize("where", sorted(CHECKS))
@pytest.mark.parametrize(("name", "valid"), [(n, True) for n in GOOD] + [(n, False) for n in BAD])
def test_every_check_accepts_and_rejects_the_same_names(where: str, name: str, valid: bool) -> None:
    assert CHECKS[where](name) is valid


def test_parse_tag_splits_and_refuses() -> None:
    tag = parse_tag("PS01.P2.VIB_DE_RMS")
    assert tag == Tag("PS01", "P2", "VIB_DE_RMS") and str(tag) == "PS01.P2.VIB_DE_RMS"
    for name in BAD:
        with pytest.raises(TagError, match="STATION.ASSET.MEASURE"):
            parse_tag(name)
    with pytest.raises(ValueError, match="STATION.ASSET.MEASURE"):  # still a ValueError
        parse_tag("nope")
