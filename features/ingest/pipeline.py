"""Source -> (validation) -> raw store, with a summary that accounts for every row.

`ingest_source` takes any `SourceResult` (files, the simulator, the PI Web API), optionally keeps
only rows newer than the store's watermarks, passes the readings through an optional validation
hook, stores the good rows and writes every rejected or quarantined row to the store's quarantine
table. `ingest_frame` and `ingest_path` wrap it for an in-memory frame and a file or folder.

Every row read is accounted for::

    rows_in == stored + duplicates + skipped_before_watermark + rejected

(when the validation hook quarantines each row at most once). Files that could not be read at all
are listed in `problems` with `refused=True`.

The validation hook (`Validator`) receives the readings (contract columns, a unique index) and
returns (good rows, quarantined rows with a `reason` column). It should keep the index of the rows
it returns, so quarantined rows can be traced to their file; it must not lose rows.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from pumptwin.features.ingest.contract import READING_COLUMNS, REJECTED_COLUMNS, TAG_PATTERN, raw_text
from pumptwin.features.ingest.rawstore import RawStore
from pumptwin.features.ingest.sources import SourceProblem, SourceResult, from_frame, read_path

Validator = Callable[[pd.DataFrame], tuple[pd.DataFrame, pd.DataFrame]]
"""A validation hook: readings -> (good rows, quarantined rows with a `reason` column)."""

NO_STATION = "(no station)"
"""Station shown for quarantined rows whose tag has no station."""


@dataclass(frozen=True, slots=True)
class StationSummary:
    """Counts of one station in one ingest run.

    Attributes:
        received: Readings of the station that reached the store (after validation).
        stored: Rows written (new or replacing a different stored row).
        duplicates: Rows already stored identically, or repeated within the run.
        quarantined: Rows of the station rejected by the source or quarantined by validation.
    """

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0


@dataclass(frozen=True)
class IngestSummary:
    """What one ingest run did.

    Attributes:
        run_id: Identifier of the run (also names its quarantine file).
        source: The source (a path, `pi:<host>`, the simulator's name).
        rows_in: Rows read from the source (good readings plus rows rejected by the source).
        stored: Rows written to the store (`new + updated`).
        new: Rows for a (tag, ts) not stored before.
        updated: Rows that replaced a stored row with another value or flag.
        duplicates: Rows not written because already stored identically or repeated in the run.
        skipped_before_watermark: Rows not offered to the store because they were older than
            their tag's watermark (minus the overlap), in incremental runs.
        rejected_by_reason: Rows quarantined (by the source or by validation), per reason.
        per_station: Counts per station.
        problems: Refused files and summaries of rejected rows, each naming the file.
        partitions_written: Partition files (re)written.
        seconds: Wall time of the run.
        quarantine_file: The run's quarantine file, None when nothing was quarantined.
    """

    run_id: str
    source: str
    rows_in: int = 0
    stored: int = 0
    new: int = 0
    updated: int = 0
    duplicates: int = 0
    skipped_before_watermark: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    per_station: dict[str, StationSummary] = field(default_factory=dict)
    problems: tuple[SourceProblem, ...] = ()
    partitions_written: int = 0
    seconds: float = 0.0
    quarantine_file: str | None = None

    @property
    def rejected(self) -> int:
        """Rows quarantined, all reasons together."""
        return sum(self.rejected_by_reason.values())

    @property
    def refused_files(self) -> tuple[SourceProblem, ...]:
        """Problems that refused a whole file."""
        return tuple(p for p in self.problems if p.refused)

    @property
    def clean(self) -> bool:
        """True when nothing was quarantined and no file was refused."""
        return self.rejected == 0 and not self.refused_files

    @property
    def rows_per_second(self) -> float:
        """Rows read per second of wall time."""
        return self.rows_in / self.seconds if self.seconds > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """Return the summary as plain JSON-ready values.

        Returns:
            A dict of the fields, with stations and problems as nested dicts.
        """
        return {
            "run_id": self.run_id,
            "source": self.source,
            "rows_in": self.rows_in,
            "stored": self.stored,
            "new": self.new,
            "updated": self.updated,
            "duplicates": self.duplicates,
            "skipped_before_watermark": self.skipped_before_watermark,
            "rejected": self.rejected,
            "rejected_by_reason": dict(self.rejected_by_reason),
            "per_station": {
                name: {
                    "received": s.received,
                    "stored": s.stored,
                    "duplicates": s.duplicates,
                    "quarantined": s.quarantined,
                }
                for name, s in self.per_station.items()
            },
            "problems": [
                {"file": p.file, "problem": p.problem, "rows_affected": p.rows_affected, "refused": p.refused}
                for p in self.problems
            ],
            "partitions_written": self.partitions_written,
            "seconds": self.seconds,
            "quarantine_file": self.quarantine_file,
        }

    def to_markdown(self) -> str:
        """Render the summary as a markdown report (e.g. for a run artifact).

        Returns:
            Markdown text: totals, quarantined rows by reason, stations, problems.
        """

        def cell(text: object) -> str:
            return str(text).replace("|", "\\|").replace("\n", " ")

        lines = [
            f"### Ingest run `{self.run_id}`",
            "",
            f"Source: `{cell(self.source)}`; {self.seconds:.2f} s.",
            "",
            "| rows in | stored | new | updated | duplicates | skipped (watermark) | quarantined | refused files |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| {self.rows_in} | {self.stored} | {self.new} | {self.updated} | {self.duplicates} "
            f"| {self.skipped_before_watermark} | {self.rejected} | {len(self.refused_files)} |",
        ]
        if self.rejected_by_reason:
            lines += ["", "| quarantine reason | rows |", "|---|---:|"]
            lines += [f"| {cell(reason)} | {count} |" for reason, count in self.rejected_by_reason.items()]
        if self.per_station:
            lines += ["", "| station | received | stored | duplicates | quarantined |", "|---|---:|---:|---:|---:|"]
            lines += [
                f"| {cell(name)} | {s.received} | {s.stored} | {s.duplicates} | {s.quarantined} |"
                for name, s in self.per_station.items()
            ]
        if self.problems:
            lines += ["", "Problems:", ""]
            lines += [f"- {cell(problem)}" for problem in self.problems]
        return "\n".join(lines) + "\n"


def new_run_id(now: pd.Timestamp | None = None) -> str:
    """Return a fresh, path-safe run identifier such as `20261101T000000Z-1a2b3c4d`.

    Args:
        now: The time to stamp it with; default now.

    Returns:
        The identifier.
    """
    stamp = (now or pd.Timestamp.now(tz="UTC")).tz_convert("UTC")
    return f"{stamp:%Y%m%dT%H%M%S}Z-{uuid.uuid4().hex[:8]}"


def _quarantine_rows(bad: pd.DataFrame, result: SourceResult) -> pd.DataFrame:
    """Turn rows quarantined by a validator into rejected-table rows (raw fields as text)."""
    if "reason" not in bad.columns:
        raise ValueError("validate returned quarantined rows without a `reason` column")
    frame = pd.DataFrame(
        {name: raw_text(bad[name]) if name in bad.columns else "" for name in READING_COLUMNS}, index=bad.index
    )
    frame["source_file"] = raw_text(bad["source_file"]) if "source_file" in bad.columns else result.origin_of(bad.index)
    rows = bad["source_row"] if "source_row" in bad.columns else [None] * len(bad)
    frame["source_row"] = pd.array(rows, dtype="Int64")
    frame["reason"] = raw_text(bad["reason"])
    return frame.reset_index(drop=True)[list(REJECTED_COLUMNS)]


def _station_of_raw(tags: pd.Series) -> pd.Series:
    """Station of each raw tag text; `NO_STATION` where the tag is not `STATION.ASSET.MEASURE`."""
    text = tags.astype(str)
    return text.str.split(".", n=1).str[0].where(text.str.match(TAG_PATTERN), NO_STATION)


def ingest_source(
    result: SourceResult,
    store: RawStore,
    *,
    validate: Validator | None = None,
    incremental: bool = False,
    overlap: timedelta = timedelta(0),
    run_id: str | None = None,
    ingested_at: datetime | pd.Timestamp | None = None,
) -> IngestSummary:
    """Store a source's readings and quarantine its rejected rows.

    Args:
        result: What a source read.
        store: The raw store.
        validate: Optional validation hook between source and store (see `Validator`).
        incremental: Only offer the store rows newer than their tag's watermark minus `overlap`.
        overlap: In incremental runs, how far before the watermark rows still pass (late data).
        run_id: Identifier of the run; default a fresh one. Re-running with the same id replaces
            that run's quarantine file.
        ingested_at: Arrival time recorded in the store; default now.

    Returns:
        The run's summary.

    Raises:
        ValueError: When `validate` loses rows or returns quarantined rows without `reason`.
        RawStoreError: When the readings are off contract or the store cannot be read.
    """
    started = time.perf_counter()
    arrived = pd.Timestamp(ingested_at) if ingested_at is not None else pd.Timestamp.now(tz="UTC")
    run = run_id or new_run_id(arrived)
    readings = result.readings
    skipped = 0
    if incremental and len(readings):
        newer = store.incremental(readings, overlap=overlap)
        skipped = len(readings) - len(newer)
        readings = newer

    quarantined = [result.rejected] if len(result.rejected) else []
    if validate is not None and len(readings):
        good, bad = validate(readings)
        lost = len(readings) - len(good) - bad.index.nunique()
        if lost > 0:
            raise ValueError(f"validate lost {lost} rows: it must return every row, as good or quarantined")
        if len(bad):
            quarantined.append(_quarantine_rows(bad, result))
        readings = good

    written = store.write(readings, ingested_at=arrived)
    rejected = pd.concat(quarantined, ignore_index=True) if len(quarantined) > 1 else (quarantined or [None])[0]
    quarantine_file = None
    by_reason: dict[str, int] = {}
    station_quarantined: dict[str, int] = {}
    if rejected is not None and len(rejected):
        path = store.quarantine(rejected, run_id=run, ingested_at=arrived)
        quarantine_file = str(path) if path is not None else None
        by_reason = {str(k): int(v) for k, v in rejected["reason"].value_counts(sort=True).items()}
        counts = _station_of_raw(rejected["tag"]).value_counts()
        station_quarantined = {str(k): int(v) for k, v in counts.items()}

    names = sorted(set(written.per_station) | set(station_quarantined))
    per_station = {}
    for name in names:
        w = written.per_station.get(name)
        per_station[name] = StationSummary(
            received=w.received if w else 0,
            stored=(w.new + w.updated) if w else 0,
            duplicates=w.duplicates if w else 0,
            quarantined=station_quarantined.get(name, 0),
        )
    return IngestSummary(
        run_id=run,
        source=result.source,
        rows_in=result.rows_in,
        stored=written.stored,
        new=written.new,
        updated=written.updated,
        duplicates=written.duplicates,
        skipped_before_watermark=skipped,
        rejected_by_reason=by_reason,
        per_station=per_station,
        problems=result.problems,
        partitions_written=written.partitions_written,
        seconds=time.perf_counter() - started,
        quarantine_file=quarantine_file,
    )


def ingest_frame(
    frame: pd.DataFrame,
    store: RawStore,
    *,
    source_name: str = "memory",
    assume_tz: str | None = None,
    default_quality: str | None = None,
    validate: Validator | None = None,
    incremental: bool = False,
    overlap: timedelta = timedelta(0),
    run_id: str | None = None,
    ingested_at: datetime | pd.Timestamp | None = None,
) -> IngestSummary:
    """Ingest readings held in memory (e.g. from the plant simulator): source -> store.

    A frame already in the contract's dtypes goes through vectorised checks only, so this is the
    function to benchmark.

    Args:
        frame: Long (`tag, ts, value, quality`) or wide readings (see `sources.from_frame`).
        store: The raw store.
        source_name: Name of the source in the summary and the quarantine table.
        assume_tz: Time zone for timestamps without one; None quarantines those rows.
        default_quality: Quality for a long frame without a `quality` column; None refuses it.
        validate: Optional validation hook between source and store.
        incremental: Only offer rows newer than their tag's watermark minus `overlap`.
        overlap: How far before the watermark rows still pass (late data).
        run_id: Identifier of the run; default a fresh one.
        ingested_at: Arrival time recorded in the store; default now.

    Returns:
        The run's summary; its `seconds` include reading the frame.
    """
    started = time.perf_counter()
    result = from_frame(frame, source_name, assume_tz=assume_tz, default_quality=default_quality)
    summary = ingest_source(
        result,
        store,
        validate=validate,
        incremental=incremental,
        overlap=overlap,
        run_id=run_id,
        ingested_at=ingested_at,
    )
    return replace(summary, seconds=time.perf_counter() - started)


def ingest_path(
    path: str | Path,
    store: RawStore,
    *,
    assume_tz: str | None = None,
    validate: Validator | None = None,
    incremental: bool = False,
    overlap: timedelta = timedelta(0),
    run_id: str | None = None,
    ingested_at: datetime | pd.Timestamp | None = None,
) -> IngestSummary:
    """Ingest a CSV/Parquet file or a folder of them: source -> store.

    Args:
        path: A file or a folder (read recursively; hidden files skipped).
        store: The raw store.
        assume_tz: Time zone for timestamps without one; None quarantines those rows.
        validate: Optional validation hook between source and store.
        incremental: Only offer rows newer than their tag's watermark minus `overlap`.
        overlap: How far before the watermark rows still pass (late data).
        run_id: Identifier of the run; default a fresh one.
        ingested_at: Arrival time recorded in the store; default now.

    Returns:
        The run's summary; `clean` is False when a row was quarantined or a file refused.
    """
    started = time.perf_counter()
    result = read_path(path, assume_tz=assume_tz)
    summary = ingest_source(
        result,
        store,
        validate=validate,
        incremental=incremental,
        overlap=overlap,
        run_id=run_id,
        ingested_at=ingested_at,
    )
    return replace(summary, seconds=time.perf_counter() - started)
