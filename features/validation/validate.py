"""`validate_tags` and `TagValidator`: good rows go on, bad rows go to quarantine with their reasons."""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from pumptwin.features.validation.engine import (
    _merge_suite,
    _row_failures,
    _tag_stats,
    _validate,
    _validate_tag_stats,
    gx_checkpoint,
    gx_context,
)
from pumptwin.features.validation.report import _summary, _write_report, summary_markdown
from pumptwin.features.validation.rules import (
    _TAG_INDEX,
    ROW_ID,
    ROWS_SUITE,
    TAGS_SUITE,
    Ranges,
    TagRules,
    ValidationOutcome,
    normalize_ranges,
)
from pumptwin.features.validation.suites import _now, _prepare, _Prepared, build_tag_suite

# --- the public entry point -------------------------------------------------------------------------


def validate_tags(
    df: pd.DataFrame,
    ranges: Ranges = None,
    *,
    now: pd.Timestamp | None = None,
    report_dir: str | Path | None = None,
    rules: TagRules | None = None,
    source: str | None = None,
    as_of: pd.Timestamp | None = None,
) -> ValidationOutcome:
    """Validate a tag table, split it into good and quarantined rows, and keep the results.

    Bad data never raises (missing columns, text values, naive timestamps, an empty frame): bad rows
    are quarantined with the names of the expectations they failed. Every input row ends up in
    exactly one of `good` and `quarantined`.

    Args:
        df: The tag table `tag, ts, value, quality`, in arrival order; extra columns are carried along.
        ranges: Physical ranges per tag or per measure, in any form `normalize_ranges` accepts, e.g.
            `{"DISCH_P": (0.0, 100.0, "bar")}`; None skips the range check.
        now: Reference instant for readings from the future (default: the current time). Pass the
            wall clock: a reading later than `now + rules.max_future` is quarantined.
        as_of: Reference instant for freshness (staleness of each tag's last good reading);
            default `now`. Pass the end of the window when validating old data.
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
    as_of_utc = _now(as_of) if as_of is not None else now_utc
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

    stats = _tag_stats(prep, ~failed, range_table, as_of_utc, rules)
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
    summary["as_of"] = as_of_utc.isoformat()
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


NEWEST = "newest"
"""`TagValidator(as_of=NEWEST)`: freshness is judged as of each batch's newest admissible reading."""


class TagValidator:
    """`validate_tags` as the ingestion pipeline's validation hook, keeping every run's outcome.

    Usage example::

        validator = TagValidator({"VIB_DE_RMS": (0.0, 50.0, "mm/s")}, report_dir=home / "validation")
        summary = ingest_path("data/", store, validate=validator)
        print(validator.outcomes[-1].markdown)

    Args:
        ranges: Physical ranges per tag or per measure (see `normalize_ranges`).
        report_dir: Folder for the validation reports; None writes none.
        now: The wall clock for readings from the future (default: the current time at each call).
        source: What is validated, shown in the reports.
        rules: Thresholds (default `TagRules()`); `max_future` is the clock tolerance.
        as_of: Reference instant for freshness: a timestamp, None for `now`, or `NEWEST` for each
            batch's newest reading not later than `now + rules.max_future` (a reading from the
            future never sets it).
        keep_rows: Keep the good and quarantined rows and the Great Expectations results in
            `outcomes`; False keeps only the summaries and the tag statistics, so a run over many
            chunks holds no chunk's rows (nor the row ids its results list) after the chunk.
    """

    def __init__(  # noqa: PLR0913 - one keyword per option of validate_tags
        self,
        ranges: Ranges = None,
        *,
        report_dir: str | Path | None = None,
        now: pd.Timestamp | None = None,
        source: str | None = None,
        rules: TagRules | None = None,
        as_of: pd.Timestamp | Literal["newest"] | None = None,
        keep_rows: bool = True,
    ) -> None:
        self.ranges = normalize_ranges(ranges) if ranges is not None else None
        self.report_dir = report_dir
        self.now = now
        self.source = source
        self.rules = rules or TagRules()
        self.as_of = as_of
        self.keep_rows = keep_rows
        self.outcomes: list[ValidationOutcome] = []

    def _as_of(self, readings: pd.DataFrame, now: pd.Timestamp) -> pd.Timestamp | None:
        """The freshness reference of one batch."""
        if not isinstance(self.as_of, str):
            return self.as_of
        if self.as_of != NEWEST:
            raise ValueError(f"as_of must be a timestamp, None or {NEWEST!r}, got {self.as_of!r}")
        if "ts" not in readings.columns or not isinstance(readings["ts"].dtype, pd.DatetimeTZDtype):
            return None
        ts = readings["ts"]
        admissible = ts[ts <= now + pd.Timedelta(self.rules.max_future)]
        return admissible.max() if len(admissible) else None

    def __call__(self, readings: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Split ``readings`` into (good rows, quarantined rows with `reason`), keeping their index."""
        now = _now(self.now)
        outcome = validate_tags(
            readings,
            self.ranges,
            now=now,
            as_of=self._as_of(readings, now),
            report_dir=self.report_dir,
            rules=self.rules,
            source=self.source,
        )
        positions = outcome.quarantined["row_id"].to_numpy(dtype=np.int64)
        passed = np.ones(len(readings), dtype=bool)
        passed[positions] = False
        good = outcome.good.set_axis(readings.index[passed], axis=0)
        bad = outcome.quarantined.set_axis(readings.index[positions], axis=0).drop(columns=["row_id"])
        kept = (
            outcome
            if self.keep_rows
            # Copies: an empty slice would keep the chunk's columns alive through its base arrays.
            else replace(outcome, good=outcome.good.iloc[:0].copy(), quarantined=bad.iloc[:0].copy(), results={})
        )
        self.outcomes.append(kept)
        return good, bad
