"""Source -> admission -> (validation) -> raw store, with a summary that accounts for every row.

`ingest_chunks` takes the chunks of any source (`SourceResult`s: files, the simulator, the PI Web
API) and, chunk by chunk, so that memory is bounded by a chunk and not by the source:

1. quarantines readings later than the wall clock plus the store's tolerance (`REASON_TS_FUTURE`):
   a wrong clock must not store a reading from the future, nor move a watermark past real data;
2. quarantines readings whose tag no asset of the registry carries (`REASON_TAG_UNKNOWN`), when
   the known tags are given, and counts them by tag;
3. passes the rest through an optional validation hook;
4. stores the good rows and writes every rejected or quarantined row to the store's quarantine
   table (one part per chunk);
5. hands the memory the chunk freed back to the system (`release_memory`).

At the end of a run, the partitions it wrote are compacted (each chunk added a file to each
partition it touched; `RawStore.compact` merges them into one, in bounded memory).

`ingest_source`, `ingest_frame` and `ingest_path` wrap it for one result, an in-memory frame and a
file or folder (read in chunks). The watermark decides what to read, not what to keep: every row
offered is stored or recognised as a duplicate; rows older than their tag's watermark are counted
(`behind_watermark`) but never dropped. Every row read is accounted for::

    rows_in == stored + duplicates + rejected

Files that could not be read at all are listed in `problems` with `refused=True`.

The validation hook sees one chunk at a time, so its checks across rows (a repeated (tag, ts),
readings out of order) hold within a chunk; across chunks and runs the store deduplicates (an
identical row is a duplicate, a different one replaces the stored row: the latest arrival wins).

The validation hook (`Validator`) receives the readings (contract columns, a unique index) and
returns (good rows, quarantined rows with a `reason` column). It must keep the index of the rows
it returns, so quarantined rows can be traced to their file, and return every row exactly once.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import time
import uuid
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from pumptwin.features.ingest import sources
from pumptwin.features.ingest.contract import (
    READING_COLUMNS,
    REASON_TAG_UNKNOWN,
    REASON_TS_FUTURE,
    REJECTED_COLUMNS,
    TAG_PATTERN,
    raw_text,
    utc_ns,
)
from pumptwin.features.ingest.rawstore import RawStore
from pumptwin.features.ingest.sources import SourceProblem, SourceResult, from_frame
from pumptwin.twin.times import utc_or_none

Validator = Callable[[pd.DataFrame], tuple[pd.DataFrame, pd.DataFrame]]
"""A validation hook: readings -> (good rows, quarantined rows with a `reason` column)."""

KnownTags = Collection[str] | Callable[[list[str]], Collection[str]]
"""The tags of the registry: a collection, or a function from a chunk's tags to those it knows."""

NO_STATION = "(no station)"
"""Station shown for quarantined rows whose tag has no station."""

MARKDOWN_TAGS = 50
"""Unknown tags listed by name in the markdown report (all of them are in `to_dict`)."""


@dataclass(frozen=True, slots=True)
class StationSummary:
    """Counts of one station in one ingest run.

    Attributes:
        received: Readings of the station that reached the store (after validation).
        stored: Rows written (new or replacing a different stored row).
        duplicates: Rows already stored identically, or repeated within the run.
        quarantined: Rows of the station rejected by the source or quarantined before the store.
    """

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0

    def __add__(self, other: StationSummary) -> StationSummary:
        return StationSummary(
            self.received + other.received,
            self.stored + other.stored,
            self.duplicates + other.duplicates,
            self.quarantined + other.quarantined,
        )


def _add_counts(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Merge two count dicts, adding the values of shared keys."""
    out = dict(a)
    for key, value in b.items():
        out[key] = out[key] + value if key in out else value
    return out


@dataclass(frozen=True)
class IngestSummary:
    """What one ingest run did.

    Attributes:
        run_id: Identifier of the run (also names its quarantine files).
        source: The source (a path, `pi:<host>`, the simulator's name).
        rows_in: Rows read from the source (good readings plus rows rejected by the source).
        stored: Rows written to the store (`new + updated`).
        new: Rows for a (tag, ts) not stored before.
        updated: Rows that replaced a stored row with another value or flag.
        duplicates: Rows not written because already stored identically or repeated in the run.
        behind_watermark: Rows offered to the store although older than their tag's watermark at
            the start of the run (late data): stored when new, counted as duplicates otherwise.
        rejected_by_reason: Rows quarantined (by the source, admission or validation), per reason.
        unknown_tags: Rows quarantined because no asset of the registry carries their tag, per tag.
        per_station: Counts per station.
        problems: Refused files and summaries of rejected rows, each naming the file.
        partitions_written: Partitions a file was written to, counted once per chunk that wrote one.
        seconds: Wall time of the run.
        quarantine_files: The run's quarantine files (one per chunk with quarantined rows).
        chunks: Chunks the source was read in.
        partitions_compacted: Partitions whose files the run merged into one at its end.
    """

    run_id: str
    source: str
    rows_in: int = 0
    stored: int = 0
    new: int = 0
    updated: int = 0
    duplicates: int = 0
    behind_watermark: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    unknown_tags: dict[str, int] = field(default_factory=dict)
    per_station: dict[str, StationSummary] = field(default_factory=dict)
    problems: tuple[SourceProblem, ...] = ()
    partitions_written: int = 0
    seconds: float = 0.0
    quarantine_files: tuple[str, ...] = ()
    chunks: int = 0
    partitions_compacted: int = 0

    def __add__(self, other: IngestSummary) -> IngestSummary:
        """Combine the summaries of two chunks of the same run (`run_id` and `source` of `self`)."""
        return replace(
            self,
            rows_in=self.rows_in + other.rows_in,
            stored=self.stored + other.stored,
            new=self.new + other.new,
            updated=self.updated + other.updated,
            duplicates=self.duplicates + other.duplicates,
            behind_watermark=self.behind_watermark + other.behind_watermark,
            rejected_by_reason=_add_counts(self.rejected_by_reason, other.rejected_by_reason),
            unknown_tags=_add_counts(self.unknown_tags, other.unknown_tags),
            per_station=dict(sorted(_add_counts(self.per_station, other.per_station).items())),
            problems=self.problems + other.problems,
            partitions_written=self.partitions_written + other.partitions_written,
            seconds=self.seconds + other.seconds,
            quarantine_files=self.quarantine_files + other.quarantine_files,
            chunks=self.chunks + other.chunks,
            partitions_compacted=self.partitions_compacted + other.partitions_compacted,
        )

    @property
    def rejected(self) -> int:
        """Rows quarantined, all reasons together."""
        return sum(self.rejected_by_reason.values())

    @property
    def accounted(self) -> bool:
        """True when every row read was stored, found a duplicate or quarantined."""
        return self.rows_in == self.stored + self.duplicates + self.rejected

    @property
    def quarantine_file(self) -> str | None:
        """The run's first quarantine file, None when nothing was quarantined."""
        return self.quarantine_files[0] if self.quarantine_files else None

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
            "behind_watermark": self.behind_watermark,
            "rejected": self.rejected,
            "rejected_by_reason": dict(self.rejected_by_reason),
            "unknown_tags": dict(self.unknown_tags),
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
            "quarantine_files": list(self.quarantine_files),
            "chunks": self.chunks,
            "partitions_compacted": self.partitions_compacted,
        }

    def to_markdown(self) -> str:
        """Render the summary as a markdown report (e.g. for a run artifact).

        Returns:
            Markdown text: totals, quarantined rows by reason, unknown tags, stations, problems.
        """

        def cell(text: object) -> str:
            return str(text).replace("|", "\\|").replace("\n", " ")

        lines = [
            f"### Ingest run `{self.run_id}`",
            "",
            f"Source: `{cell(self.source)}`; {self.chunks} chunk(s); {self.seconds:.2f} s.",
            "",
            "| rows in | stored | new | updated | duplicates | behind watermark | quarantined | refused files |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| {self.rows_in} | {self.stored} | {self.new} | {self.updated} | {self.duplicates} "
            f"| {self.behind_watermark} | {self.rejected} | {len(self.refused_files)} |",
        ]
        if self.rejected_by_reason:
            lines += ["", "| quarantine reason | rows |", "|---|---:|"]
            lines += [f"| {cell(reason)} | {count} |" for reason, count in self.rejected_by_reason.items()]
        if self.unknown_tags:
            ranked = sorted(self.unknown_tags.items(), key=lambda item: (-item[1], item[0]))
            lines += ["", f"| tag matching no asset in the registry ({len(ranked)}) | rows |", "|---|---:|"]
            lines += [f"| {cell(tag)} | {count} |" for tag, count in ranked[:MARKDOWN_TAGS]]
            if len(ranked) > MARKDOWN_TAGS:
                lines.append(
                    f"| ... {len(ranked) - MARKDOWN_TAGS} more | {sum(c for _, c in ranked[MARKDOWN_TAGS:])} |"
                )
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


def release_memory() -> None:
    """Hand memory freed by a chunk back to the system before the next chunk is read.

    A chunk leaves garbage in reference cycles (frames reachable from validation results and
    pandas caches) that the cyclic collector reaches only rarely, and its freed blocks stay
    inside the allocators (Arrow's pool, glibc's malloc arenas) unless they are asked to return
    them. Without this, the resident memory of a long ingest grows with every chunk although
    its live data does not.
    """
    gc.collect()
    pa.default_memory_pool().release_unused()
    _malloc_trim()


def _malloc_trim() -> None:
    """Ask glibc's malloc to return free memory of every arena to the system (no-op elsewhere)."""
    with contextlib.suppress(OSError, AttributeError):  # no glibc (musl, macOS): nothing to trim
        ctypes.CDLL(None).malloc_trim(0)


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
    """Turn rows quarantined before the store into rejected-table rows (raw fields as text)."""
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


def _known_mask(tags: pd.Series, known: KnownTags) -> np.ndarray:
    """True for each reading whose tag is one the registry knows."""
    codes, names = pd.factorize(tags)
    unique = [str(name) for name in names]
    known_names = set(known(unique) if callable(known) else known)
    return np.array([name in known_names for name in unique] + [False], dtype=bool)[codes]


def _admit(
    readings: pd.DataFrame, horizon_ns: int, known: KnownTags | None
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """Split readings into admitted rows and rows quarantined before validation (with `reason`).

    Returns the admitted rows, the quarantined rows and the count of rows per unknown tag.
    """
    future = utc_ns(readings["ts"]) > horizon_ns
    unknown = np.zeros(len(readings), dtype=bool)
    if known is not None and len(readings):
        unknown = ~future & ~_known_mask(readings["tag"], known)
    rejected = future | unknown
    if not rejected.any():  # the usual chunk: no copy of it
        return readings, readings.iloc[:0].assign(reason=pd.Series([], dtype=object)), {}
    reasons = np.where(future, REASON_TS_FUTURE, np.where(unknown, REASON_TAG_UNKNOWN, ""))
    bad = readings[rejected].assign(reason=reasons[rejected])
    counts = readings.loc[unknown, "tag"].astype(str).value_counts()
    return readings[~rejected], bad, {str(tag): int(n) for tag, n in counts.items()}


def _behind(readings: pd.DataFrame, marks_ns: dict[str, int]) -> int:
    """Count readings older than their tag's watermark."""
    if not marks_ns or len(readings) == 0:
        return 0
    codes, names = pd.factorize(readings["tag"])
    limits = np.array([marks_ns.get(str(t), np.iinfo(np.int64).min) for t in names] + [0], dtype=np.int64)
    return int((utc_ns(readings["ts"]) < limits[codes]).sum())


def _validated(readings: pd.DataFrame, validate: Validator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run the validation hook and check that it returned every row exactly once."""
    good, bad = validate(readings)
    if bad.index.has_duplicates:
        raise ValueError("validate returned a quarantined row twice: it must return each row once")
    lost = len(readings) - len(good) - len(bad)
    if lost != 0:
        raise ValueError(f"validate lost {lost} rows: it must return every row, as good or quarantined")
    return good, bad


def _ingest_chunk(  # noqa: PLR0913 - the state one chunk needs from its run
    result: SourceResult,
    store: RawStore,
    *,
    validate: Validator | None,
    known: KnownTags | None,
    marks_ns: dict[str, int],
    run: str,
    part: int,
    arrived: pd.Timestamp,
    now: pd.Timestamp,
) -> tuple[IngestSummary, tuple[tuple[str, date], ...]]:
    """Admit, validate, store and quarantine one chunk; return its summary and the partitions written."""
    readings, early_bad, unknown = _admit(result.readings, store.horizon_ns(now), known)
    quarantined = [frame for frame in (result.rejected, _quarantine_rows(early_bad, result)) if len(frame)]
    if validate is not None and len(readings):
        readings, bad = _validated(readings, validate)
        if len(bad):
            quarantined.append(_quarantine_rows(bad, result))
    behind = _behind(readings, marks_ns)
    written = store.write(readings, ingested_at=arrived, now=now)
    del readings

    rejected = pd.concat(quarantined, ignore_index=True) if quarantined else None
    files: tuple[str, ...] = ()
    by_reason: dict[str, int] = {}
    station_quarantined: dict[str, int] = {}
    if rejected is not None:
        path = store.quarantine(rejected, run_id=run, ingested_at=arrived, part=part)
        files = (str(path),) if path is not None else ()
        by_reason = {str(k): int(v) for k, v in rejected["reason"].value_counts(sort=True).items()}
        counts = _station_of_raw(rejected["tag"]).value_counts()
        station_quarantined = {str(k): int(v) for k, v in counts.items()}

    per_station = {}
    for name in sorted(set(written.per_station) | set(station_quarantined)):
        w = written.per_station.get(name)
        per_station[name] = StationSummary(
            received=w.received if w else 0,
            stored=(w.new + w.updated) if w else 0,
            duplicates=w.duplicates if w else 0,
            quarantined=station_quarantined.get(name, 0),
        )
    summary = IngestSummary(
        run_id=run,
        source=result.source,
        rows_in=result.rows_in,
        stored=written.stored,
        new=written.new,
        updated=written.updated,
        duplicates=written.duplicates,
        behind_watermark=behind,
        rejected_by_reason=by_reason,
        unknown_tags=unknown,
        per_station=per_station,
        problems=result.problems,
        partitions_written=written.partitions_written,
        quarantine_files=files,
        chunks=1,
    )
    return summary, written.partitions


def ingest_chunks(
    chunks: Iterable[SourceResult],
    store: RawStore,
    *,
    source: str,
    validate: Validator | None = None,
    known_tags: KnownTags | None = None,
    run_id: str | None = None,
    ingested_at: datetime | pd.Timestamp | None = None,
    now: datetime | pd.Timestamp | None = None,
    compact: bool = True,
) -> IngestSummary:
    """Store a source read in chunks, one chunk at a time, and quarantine its rejected rows.

    Each chunk is admitted, validated, stored and quarantined before the next is read, and the
    memory it freed is handed back (`release_memory`), so memory is bounded by the largest chunk.
    Each chunk adds a file to each partition it touches; at the end, the run merges the files of
    the partitions it wrote into one each (`RawStore.compact`, in bounded memory). A retried run
    (the same `run_id`) first removes the quarantine files of the earlier try.

    Args:
        chunks: What the source read, chunk by chunk.
        store: The raw store.
        source: The name of the source, for the summary.
        validate: Optional validation hook between admission and store (see `Validator`).
        known_tags: The registry's tags; readings of other tags are quarantined with
            `REASON_TAG_UNKNOWN` and counted by tag. None admits every tag.
        run_id: Identifier of the run; default a fresh one.
        ingested_at: Arrival time recorded in the store; default now.
        now: The wall clock for the future check (timezone-aware); default the store's clock.
        compact: Compact the partitions the run wrote at its end.

    Returns:
        The run's summary, over all chunks.

    Raises:
        ValueError: When `validate` loses or repeats rows or returns quarantined rows without `reason`.
        RawStoreError: When the readings are off contract or the store cannot be read or locked.
    """
    started = time.perf_counter()
    wall = utc_or_none(now, naive_is_utc=False, what="now") or store.clock()
    arrived = utc_or_none(ingested_at, naive_is_utc=False, what="ingested_at") or pd.Timestamp.now(tz="UTC")
    run = run_id or new_run_id(arrived)
    store.clear_quarantine(run)
    marks_ns = {tag: int(ts.value) for tag, ts in store.watermarks().items()}
    total = IngestSummary(run_id=run, source=source)
    written: set[tuple[str, date]] = set()
    for part, chunk in enumerate(chunks):
        summary, partitions = _ingest_chunk(
            chunk,
            store,
            validate=validate,
            known=known_tags,
            marks_ns=marks_ns,
            run=run,
            part=part,
            arrived=arrived,
            now=wall,
        )
        del chunk  # before the next chunk is read: one chunk in memory at a time
        total = total + summary
        written.update(partitions)
        release_memory()
    compacted = store.compact(written) if compact and written else 0
    return replace(total, seconds=time.perf_counter() - started, partitions_compacted=compacted)


def ingest_source(
    result: SourceResult,
    store: RawStore,
    *,
    validate: Validator | None = None,
    known_tags: KnownTags | None = None,
    run_id: str | None = None,
    ingested_at: datetime | pd.Timestamp | None = None,
    now: datetime | pd.Timestamp | None = None,
) -> IngestSummary:
    """Store a source's readings and quarantine its rejected rows (one chunk; see `ingest_chunks`).

    Args:
        result: What a source read.
        store: The raw store.
        validate: Optional validation hook between admission and store (see `Validator`).
        known_tags: The registry's tags; None admits every tag.
        run_id: Identifier of the run; default a fresh one. Re-running with the same id replaces
            that run's quarantine files.
        ingested_at: Arrival time recorded in the store; default now.
        now: The wall clock for the future check (timezone-aware); default the store's clock.

    Returns:
        The run's summary.
    """
    return ingest_chunks(
        [result],
        store,
        source=result.source,
        validate=validate,
        known_tags=known_tags,
        run_id=run_id,
        ingested_at=ingested_at,
        now=now,
    )


def ingest_frame(  # noqa: PLR0913 - one keyword per option of the source and the run
    frame: pd.DataFrame,
    store: RawStore,
    *,
    source_name: str = "memory",
    assume_tz: str | None = None,
    default_quality: str | None = None,
    validate: Validator | None = None,
    known_tags: KnownTags | None = None,
    run_id: str | None = None,
    ingested_at: datetime | pd.Timestamp | None = None,
    now: datetime | pd.Timestamp | None = None,
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
        validate: Optional validation hook between admission and store.
        known_tags: The registry's tags; None admits every tag.
        run_id: Identifier of the run; default a fresh one.
        ingested_at: Arrival time recorded in the store; default now.
        now: The wall clock for the future check (timezone-aware); default the store's clock.

    Returns:
        The run's summary; its `seconds` include reading the frame.
    """
    started = time.perf_counter()
    result = from_frame(frame, source_name, assume_tz=assume_tz, default_quality=default_quality)
    summary = ingest_source(
        result,
        store,
        validate=validate,
        known_tags=known_tags,
        run_id=run_id,
        ingested_at=ingested_at,
        now=now,
    )
    return replace(summary, seconds=time.perf_counter() - started)


def ingest_path(  # noqa: PLR0913 - one keyword per option of the source and the run
    path: str | Path,
    store: RawStore,
    *,
    assume_tz: str | None = None,
    validate: Validator | None = None,
    known_tags: KnownTags | None = None,
    run_id: str | None = None,
    ingested_at: datetime | pd.Timestamp | None = None,
    now: datetime | pd.Timestamp | None = None,
    chunk_readings: int = 1_000_000,
) -> IngestSummary:
    """Ingest a CSV/Parquet file or a folder of them, chunk by chunk: source -> store.

    Args:
        path: A file or a folder (read recursively; hidden files skipped).
        store: The raw store.
        assume_tz: Time zone for timestamps without one; None quarantines those rows.
        validate: Optional validation hook between admission and store.
        known_tags: The registry's tags; None admits every tag.
        run_id: Identifier of the run; default a fresh one.
        ingested_at: Arrival time recorded in the store; default now.
        now: The wall clock for the future check (timezone-aware); default the store's clock.
        chunk_readings: Readings read, validated and stored at a time (`sources.iter_path`);
            bounds memory.

    Returns:
        The run's summary; `clean` is False when a row was quarantined or a file refused.
    """
    return ingest_chunks(
        sources.iter_path(path, assume_tz=assume_tz, chunk_readings=chunk_readings),
        store,
        source=str(path),
        validate=validate,
        known_tags=known_tags,
        run_id=run_id,
        ingested_at=ingested_at,
        now=now,
    )
