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

from pumptwin.features.validation.engine import gx_checkpoint, gx_context, run_checkpoint
from pumptwin.features.validation.report import summary_markdown
from pumptwin.features.validation.rules import (
    QUALITY_FLAGS,
    ROW_ID,
    ROWS_SUITE,
    TAG_COLUMNS,
    TAG_PATTERN,
    TAGS_SUITE,
    Ranges,
    TagRules,
    TagSuites,
    ValidationOutcome,
    normalize_ranges,
)
from pumptwin.features.validation.suites import build_tag_suite
from pumptwin.features.validation.validate import NEWEST, TagValidator, validate_tags

__all__ = [
    "gx_checkpoint",
    "gx_context",
    "run_checkpoint",
    "NEWEST",
    "QUALITY_FLAGS",
    "ROWS_SUITE",
    "ROW_ID",
    "Ranges",
    "TAGS_SUITE",
    "TAG_COLUMNS",
    "TAG_PATTERN",
    "TagRules",
    "TagSuites",
    "TagValidator",
    "ValidationOutcome",
    "build_tag_suite",
    "normalize_ranges",
    "summary_markdown",
    "validate_tags",
]
