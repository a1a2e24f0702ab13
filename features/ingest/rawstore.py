"""The raw store: readings as parquet, partitioned by station and UTC day, deduplicated and idempotent.

Layout under `root` (for the embedded default, `<PUMPTWIN_HOME>/raw`)::

    station=PS01/date=2026-11-01/part-0.parquet        readings of one station and UTC day
    station=PS01/date=2026-11-01/.lock                 lock file of the partition (never deleted)
    _watermarks.json                                   last stored `ts` per tag
    _watermarks.lock                                   lock file of the watermarks
    _quarantine/date=2026-11-01/run-<id>+00000.parquet rejected rows of one run, one part per chunk
    _corrupt/station=PS01/date=.../part-0.parquet.<t>  unreadable partitions moved aside, with a note

Each partition file holds `tag, ts, value, quality, ingested_at`, sorted by (tag, ts) and unique
on (tag, ts). A write merges the incoming rows into each touched partition, keeping the
latest-arriving row of each (tag, ts), and replaces the file atomically (temporary file, then
rename); a partition whose rows are all already stored is not rewritten, so re-ingesting a window
changes nothing. Names starting with `_` or `.` are skipped by parquet dataset readers.

Several writers at once (threads or processes) lose nothing: a writer holds an exclusive lock
(`fcntl.flock` on the partition's `.lock`) across read, merge and replace of a partition, and the
watermarks are read, advanced and written under `_watermarks.lock`. A writer that waits longer
than `lock_timeout_s` stops with `StoreLockError`. Locks die with their process, so a killed run
leaves no lock behind; its temporary files are removed by the next writer of the same partition
(under the lock, so a live writer's temporary file is never touched) or by `repair`.

Readings from the future are refused: a write holding a reading later than the wall clock plus
`max_future_s` raises `FutureReadingsError` and stores nothing, so no watermark can run ahead of
the clock and hide later real readings from an incremental read. The ingest pipeline quarantines
such rows before they reach the store.

A crash between partitions leaves the earlier ones written and the watermark behind; ingesting the
same window again completes it without duplicates. A partition or watermarks file that cannot be
read stops a write or read with a `RawStoreError` naming the file; `check` lists them and `repair`
moves unreadable partitions aside and rebuilds the watermarks from what is stored
(`pumptwin store check`, `pumptwin store repair`).
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from pumptwin.features.ingest.contract import (
    NAT_NS,
    QUALITIES,
    READING_COLUMNS,
    REASON_TAG,
    TAG_PATTERN,
    empty_readings,
    raw_text,
    station_of,
    utc_datetimes,
    utc_ns,
)
from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.safety import inside, replace_text, shorten
from pumptwin.twin.times import utc_or_none

READINGS_SCHEMA = pa.schema(
    [
        ("tag", pa.string()),
        ("ts", pa.timestamp("ns", tz="UTC")),
        ("value", pa.float64()),
        ("quality", pa.string()),
        ("ingested_at", pa.timestamp("us", tz="UTC")),
    ]
)
"""Schema of a partition file."""

QUARANTINE_SCHEMA = pa.schema(
    [
        ("tag", pa.string()),
        ("ts", pa.string()),
        ("value", pa.string()),
        ("quality", pa.string()),
        ("source_file", pa.string()),
        ("source_row", pa.int64()),
        ("reason", pa.string()),
        ("ingested_at", pa.timestamp("us", tz="UTC")),
        ("run_id", pa.string()),
    ]
)
"""Schema of a quarantine file: raw fields as text, where they came from, why and when."""

PART_FILE = "part-0.parquet"
"""The one data file of a partition."""

LOCK_FILE = ".lock"
"""The lock file of a partition, beside its data file."""

RECOVERY = "run `pumptwin store check` to list damaged files and `pumptwin store repair` to recover"
"""What a user does about an unreadable store file (in error messages)."""

STALE_TEMPORARY_S = 3600.0
"""Age, s, past which `repair` removes a temporary file it cannot tie to a lock (quarantine files)."""

_DAY_NS = 86_400 * 10**9
_EPOCH = date(1970, 1, 1)
_MAX_KEY_GROUPS = (2**63 - 1) // _DAY_NS  # (group, ns within the day) fits one int64 below this
_RUN_ID = re.compile(r"^[A-Za-z0-9_.\-]+$")


class RawStoreError(PumptwinError, RuntimeError):
    """The raw store cannot do what was asked (unreadable partition, readings off contract)."""


class StoreLockError(RawStoreError):
    """Another writer held a partition or the watermarks for longer than the lock timeout."""


class FutureReadingsError(RawStoreError):
    """A write held readings later than the wall clock plus the tolerance; nothing was stored."""


class _Lock:
    """An exclusive `fcntl.flock` lock on a file, waited for up to a timeout (see `RawStore`)."""

    def __init__(self, path: Path, timeout_s: float, what: str) -> None:
        self.path, self.timeout_s, self.what = path, timeout_s, what

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Hold the lock for the body of a `with` block.

        Raises:
            StoreLockError: When another process or thread holds it longer than `timeout_s`.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + self.timeout_s
            delay_s = 0.002
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise StoreLockError(
                            f"{self.what} is locked by another ingest ({self.path}) for more than "
                            f"{self.timeout_s:g} s: wait for it to finish, or raise PUMPTWIN_INGEST_LOCK_TIMEOUT_S"
                        ) from None
                    time.sleep(delay_s)
                    delay_s = min(2 * delay_s, 0.05)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _temporaries(folder: Path, name: str) -> list[Path]:
    """Temporary files `_atomic_write_*` leaves for `folder / name` when killed mid-write."""
    return sorted(folder.glob(f".{glob.escape(name)}.*.tmp"))


def _remove(paths: Iterable[Path]) -> list[Path]:
    """Delete files that may already be gone; return the ones deleted."""
    removed = []
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed


@dataclass(frozen=True)
class StoreCheck:
    """What `RawStore.check` found.

    Attributes:
        root: The store's folder.
        partitions_checked: Partition files read.
        unreadable: (partition file, what is wrong) for each partition that cannot be read.
        watermarks_problem: Why the watermarks file cannot be read; None when it can (or is absent).
        future_watermarks: Watermarks later than the wall clock plus the tolerance, by tag.
        temporaries: Temporary files left by killed writes.
    """

    root: Path
    partitions_checked: int = 0
    unreadable: tuple[tuple[Path, str], ...] = ()
    watermarks_problem: str | None = None
    future_watermarks: dict[str, pd.Timestamp] = field(default_factory=dict)
    temporaries: tuple[Path, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every partition and the watermarks can be read and no watermark runs ahead."""
        return not self.unreadable and self.watermarks_problem is None and not self.future_watermarks

    def to_markdown(self) -> str:
        """Render the findings as markdown.

        Returns:
            One line per finding, and what to do.
        """
        lines = [f"### Raw store `{self.root}`", "", f"{self.partitions_checked} partitions read."]
        lines += [f"- unreadable partition `{path}`: {shorten(why, 200)}" for path, why in self.unreadable]
        if self.watermarks_problem is not None:
            lines.append(f"- unreadable watermarks: {shorten(self.watermarks_problem, 200)}")
        lines += [
            f"- watermark of {tag} lies in the future: {ts.isoformat()}" for tag, ts in self.future_watermarks.items()
        ]
        lines += [f"- temporary file left by a killed write: `{path}`" for path in self.temporaries]
        lines += ["", "OK." if self.ok else "Run `pumptwin store repair` to recover."]
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class StoreRepair:
    """What `RawStore.repair` did.

    Attributes:
        moved: (partition file, where it was moved) for each unreadable partition set aside.
        temporaries_removed: Temporary files deleted.
        watermarks: Tags whose watermark was rebuilt from the stored partitions.
    """

    moved: tuple[tuple[Path, Path], ...] = ()
    temporaries_removed: tuple[Path, ...] = ()
    watermarks: int = 0

    def to_markdown(self) -> str:
        """Render what was done as markdown.

        Returns:
            One line per action.
        """
        lines = [f"- moved unreadable `{old}` to `{new}`" for old, new in self.moved]
        lines += [f"- removed temporary file `{path}`" for path in self.temporaries_removed]
        lines.append(f"- rebuilt the watermarks of {self.watermarks} tags from the stored partitions")
        return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class StationWrite:
    """What one write did to one station's partitions.

    Attributes:
        received: Readings of the station given to the write.
        new: Rows for a (tag, ts) not stored before.
        updated: Rows that replaced a stored row of the same (tag, ts) with another value or flag.
        duplicates: Rows not stored: identical to a stored row, or followed by a later row of the
            same (tag, ts) in the same write.
    """

    received: int = 0
    new: int = 0
    updated: int = 0
    duplicates: int = 0

    def __add__(self, other: StationWrite) -> StationWrite:
        return StationWrite(
            self.received + other.received,
            self.new + other.new,
            self.updated + other.updated,
            self.duplicates + other.duplicates,
        )


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one `RawStore.write` did.

    Attributes:
        received: Readings given to the write.
        new: Rows for a (tag, ts) not stored before.
        updated: Rows that replaced a stored row with another value or flag (latest arrival wins).
        duplicates: Rows not stored because the same (tag, ts) is stored identically or arrived
            again later in the same write.
        partitions_written: Partition files (re)written.
        per_station: The same counts per station.
    """

    received: int = 0
    new: int = 0
    updated: int = 0
    duplicates: int = 0
    partitions_written: int = 0
    per_station: dict[str, StationWrite] = field(default_factory=dict)

    @property
    def stored(self) -> int:
        """Rows written: new plus updated."""
        return self.new + self.updated


def _atomic_write_table(table: pa.Table, path: Path, compression: str) -> None:
    """Write a parquet file through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        pq.write_table(table, tmp, compression=compression)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _same_values(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise equality where NaN equals NaN."""
    return (a == b) | (np.isnan(a) & np.isnan(b))


def _stable_order(group: np.ndarray, n_groups: int, within: np.ndarray) -> np.ndarray:
    """Return the stable order of rows by (group, within), with `0 <= within < one day in ns`.

    One int64 key (`group * day + within`) and a stable sort when it fits, which is linear on
    input already in order or made of sorted runs; two stable sorts otherwise.
    """
    if n_groups <= _MAX_KEY_GROUPS:
        return np.argsort(group * _DAY_NS + within, kind="stable")
    by_within = np.argsort(within, kind="stable")
    return by_within[np.argsort(group[by_within], kind="stable")]


def _codes(column: pa.ChunkedArray, *, sorted_codes: bool) -> tuple[np.ndarray, int]:
    """Dictionary-encode a string column; codes follow name order when `sorted_codes`."""
    encoded = pc.dictionary_encode(column).combine_chunks()
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    if sorted_codes:
        rank = np.empty(len(encoded.dictionary), dtype=np.int64)
        rank[pc.array_sort_indices(encoded.dictionary).to_numpy()] = np.arange(len(encoded.dictionary))
        codes = rank[codes]
    return codes, len(encoded.dictionary)


def _column_codes(column: pa.ChunkedArray, names: list[str]) -> np.ndarray:
    """Codes of a string or dictionary column into `names` (each of its values must be there)."""
    position = {name: i for i, name in enumerate(names)}
    parts = []
    for chunk in column.chunks:
        encoded = chunk if pa.types.is_dictionary(chunk.type) else pc.dictionary_encode(chunk)
        lookup = np.array([position[v] for v in encoded.dictionary.to_pylist()] + [0], dtype=np.int32)
        indices = encoded.indices.fill_null(len(lookup) - 1).to_numpy(zero_copy_only=False)
        parts.append(lookup[indices])
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)


def _distinct(*columns: pa.ChunkedArray) -> list[str]:
    """The distinct strings of string or dictionary columns, sorted."""
    names: set[str] = set()
    for column in columns:
        for chunk in column.chunks:
            values = chunk.dictionary if pa.types.is_dictionary(chunk.type) else pc.unique(chunk)
            names.update(v for v in values.to_pylist() if v is not None)
    return sorted(names)


def _int64(column: pa.ChunkedArray) -> np.ndarray:
    """A timestamp column's integer values (ns or us since the epoch, as stored)."""
    return column.cast(pa.int64()).to_numpy()


def _merge(old: pa.Table, new: pa.Table, day_start_ns: int) -> tuple[pa.Table | None, int, int]:
    """Merge new rows into a partition's stored rows; the later row of a (tag, ts) wins.

    Both tables must hold one UTC day (from `day_start_ns`) and be unique on (tag, ts). Returns the
    merged table sorted by (tag, ts) (None when nothing changed), the count of rows that replaced
    a different stored row, and the count of rows identical to a stored row.

    The work is done on compact numpy columns (tag and flag as codes), so a merge needs about
    30 bytes per row besides the table written, whatever the length of the tag names.
    """
    tag_names = _distinct(old.column("tag"), new.column("tag"))
    quality_names = _distinct(old.column("quality"), new.column("quality"))
    tags = np.concatenate([_column_codes(old.column("tag"), tag_names), _column_codes(new.column("tag"), tag_names)])
    ts = np.concatenate([_int64(old.column("ts").cast(READINGS_SCHEMA.field("ts").type)), _int64(new.column("ts"))])
    within = ts - day_start_ns
    if within.size and (within.min() < 0 or within.max() >= _DAY_NS):
        raise RawStoreError(f"stored partition of day {pd.Timestamp(day_start_ns, tz='UTC').date()} holds other days")
    order = _stable_order(tags.astype(np.int64), len(tag_names), within)  # stored rows first among equal keys
    del within
    tags, ts = tags[order], ts[order]
    n = len(order)
    same_next = np.zeros(n, dtype=bool)
    same_next[:-1] = (tags[1:] == tags[:-1]) & (ts[1:] == ts[:-1])
    pairs = np.flatnonzero(same_next)  # pairs[i] is the stored row, pairs[i] + 1 the new one
    values = np.concatenate([old.column("value").to_numpy(), new.column("value").to_numpy()])[order]
    quality = np.concatenate(
        [_column_codes(old.column("quality"), quality_names), _column_codes(new.column("quality"), quality_names)]
    )[order]
    identical = _same_values(values[pairs], values[pairs + 1]) & (quality[pairs] == quality[pairs + 1])
    duplicates = int(identical.sum())
    updated = len(pairs) - duplicates
    if updated == 0 and duplicates == new.num_rows:
        return None, 0, duplicates
    arrived_type = READINGS_SCHEMA.field("ingested_at").type
    arrived = np.concatenate(
        [_int64(old.column("ingested_at").cast(arrived_type)), _int64(new.column("ingested_at").cast(arrived_type))]
    )[order]
    keep = ~same_next
    del order, same_next
    table = pa.Table.from_arrays(
        [
            pa.array(tag_names, type=pa.string()).take(pa.array(tags[keep])),
            pa.array(ts[keep]).cast(READINGS_SCHEMA.field("ts").type),
            pa.array(values[keep], type=pa.float64()),
            pa.array(quality_names, type=pa.string()).take(pa.array(quality[keep])),
            pa.array(arrived[keep]).cast(arrived_type),
        ],
        schema=READINGS_SCHEMA,
    )
    return table, updated, duplicates


class RawStore:
    """Parquet store of readings, partitioned by station and UTC day (see the module docstring).

    Args:
        root: The store's folder (created on first write).
        compression: Parquet compression codec.
        max_workers: Threads that write partitions in parallel.
        lock_timeout_s: How long a writer waits for a partition or the watermarks held by another
            writer, s, before `StoreLockError`.
        max_future_s: How far past the wall clock a stored reading may lie, s; a write with a later
            reading is refused (`FutureReadingsError`) and no watermark passes now + this.
        clock: The wall clock (returns a UTC timestamp); default `pd.Timestamp.now(tz="UTC")`.

    Example:
        >>> store = RawStore(tmp_path / "raw")  # doctest: +SKIP
        >>> store.write(readings).stored  # doctest: +SKIP
        1440
        >>> store.read(["PS01"], "2026-11-01T00:00Z", "2026-11-02T00:00Z")  # doctest: +SKIP
    """

    def __init__(  # noqa: PLR0913 - one keyword per store setting
        self,
        root: str | Path,
        *,
        compression: str = "zstd",
        max_workers: int | None = None,
        lock_timeout_s: float = 600.0,
        max_future_s: float = 300.0,
        clock: Callable[[], pd.Timestamp] | None = None,
    ) -> None:
        self.root = Path(root)
        self.compression = compression
        self.max_workers = max_workers if max_workers is not None else min(8, os.cpu_count() or 1)
        if self.max_workers < 1:
            raise ValueError(f"max_workers must be >= 1, got {self.max_workers}")
        if lock_timeout_s <= 0 or max_future_s < 0:
            raise ValueError(f"lock_timeout_s must be > 0 and max_future_s >= 0, got {lock_timeout_s}, {max_future_s}")
        self.lock_timeout_s = lock_timeout_s
        self.max_future_s = max_future_s
        self.clock = clock or (lambda: pd.Timestamp.now(tz="UTC"))

    def __repr__(self) -> str:
        return f"RawStore({str(self.root)!r})"

    @property
    def watermark_file(self) -> Path:
        """The JSON file holding the last stored `ts` per tag."""
        return self.root / "_watermarks.json"

    @property
    def quarantine_root(self) -> Path:
        """The folder of the quarantine table."""
        return self.root / "_quarantine"

    @property
    def corrupt_root(self) -> Path:
        """The folder unreadable partitions are moved to by `quarantine_partition`."""
        return self.root / "_corrupt"

    def horizon_ns(self, now: datetime | pd.Timestamp | None = None) -> int:
        """Return the latest instant a stored reading may have: now plus `max_future_s`.

        Args:
            now: The wall clock (timezone-aware); default `clock()`.

        Returns:
            Nanoseconds since the epoch (UTC).
        """
        wall = utc_or_none(now, naive_is_utc=False, what="now") or self.clock()
        return int(wall.value) + int(round(self.max_future_s * 1e9))

    def _partition_lock(self, folder: Path) -> _Lock:
        return _Lock(folder / LOCK_FILE, self.lock_timeout_s, f"partition {folder}")

    def _watermark_lock(self) -> _Lock:
        return _Lock(self.root / "_watermarks.lock", self.lock_timeout_s, f"watermarks {self.watermark_file}")

    def partition_file(self, station: str, day: date) -> Path:
        """Return the data file of one station and UTC day.

        Args:
            station: Station name, e.g. `PS01`.
            day: The UTC day.

        Returns:
            `<root>/station=<station>/date=<YYYY-MM-DD>/part-0.parquet`.
        """
        return self.root / f"station={station}" / f"date={day.isoformat()}" / PART_FILE

    def partitions(self, stations: Iterable[str] | None = None) -> list[tuple[str, date]]:
        """List the stored partitions.

        Args:
            stations: Only these stations; None for all.

        Returns:
            (station, UTC day) pairs, sorted.
        """
        wanted = set(stations) if stations is not None else None
        found = []
        for station_dir in self.root.glob("station=*"):
            station = station_dir.name.removeprefix("station=")
            if wanted is not None and station not in wanted:
                continue
            for day_dir in station_dir.glob("date=*"):
                if (day_dir / PART_FILE).is_file():
                    found.append((station, date.fromisoformat(day_dir.name.removeprefix("date="))))
        return sorted(found)

    # --- writing -----------------------------------------------------------------------------

    def write(  # noqa: PLR0915 - one vectorised pass: encode, order, write partitions, advance watermarks
        self,
        readings: pd.DataFrame,
        *,
        ingested_at: datetime | pd.Timestamp | None = None,
        now: datetime | pd.Timestamp | None = None,
    ) -> WriteResult:
        """Store readings, deduplicated on (tag, ts) with the latest-arriving row kept.

        Within `readings`, a later row arrives after an earlier one; rows of this write arrive
        after every stored row. Only partitions whose content changes are rewritten.

        Args:
            readings: Readings in the contract's shape (`tag`, `ts` UTC, `value`, `quality`);
                extra columns are ignored.
            ingested_at: Arrival time written to `ingested_at`; default now.
            now: The wall clock the future check uses (timezone-aware); default `clock()`.

        Returns:
            Counts of new, updated and duplicate rows, overall and per station.

        Raises:
            RawStoreError: When a reading is off contract (tag not `STATION.ASSET.MEASURE`, missing
                timestamp, unknown quality flag) or a stored partition cannot be read.
            FutureReadingsError: When a reading lies later than `now + max_future_s`; nothing is
                stored.
            StoreLockError: When another writer holds a partition or the watermarks too long.
        """
        n = len(readings)
        if n == 0:
            return WriteResult()
        missing = [c for c in READING_COLUMNS if c not in readings.columns]
        if missing:
            raise RawStoreError(f"readings lack column(s): {', '.join(missing)}")
        arrived = utc_or_none(ingested_at, naive_is_utc=False, what="ingested_at") or pd.Timestamp.now(tz="UTC")

        tag_codes, tag_names = pd.factorize(readings["tag"], sort=True)
        bad_tags = [t for t in tag_names if not isinstance(t, str) or TAG_PATTERN.match(t) is None]
        if bad_tags or (tag_codes < 0).any():
            raise RawStoreError(f"{REASON_TAG}: {bad_tags[:5] or ['<missing>']}")
        station_of_tag, stations = pd.factorize(pd.Series([station_of(t) for t in tag_names], dtype=object), sort=True)
        quality_codes, quality_names = pd.factorize(readings["quality"])
        if (quality_codes < 0).any() or not set(quality_names) <= set(QUALITIES):
            raise RawStoreError(f"quality flags must be one of {QUALITIES}, got {sorted(map(str, quality_names))}")
        ts = utc_ns(readings["ts"])
        if (ts == NAT_NS).any():
            raise RawStoreError("readings with a missing timestamp cannot be stored")
        future = np.flatnonzero(ts > self.horizon_ns(now))
        if future.size:
            first = int(future[0])
            raise FutureReadingsError(
                f"{future.size} readings lie later than now + {self.max_future_s:g} s (e.g. "
                f"{shorten(tag_names[tag_codes[first]])} at {pd.Timestamp(int(ts[first]), tz='UTC').isoformat()}): "
                "nothing was stored; quarantine them or fix the source's clock (the ingest pipeline quarantines them)"
            )
        values = readings["value"].to_numpy(dtype=np.float64, na_value=np.nan)

        # Order by (day, tag, ts), stably, so among equal (tag, ts) arrival order is kept. Tags are
        # sorted by name and a station's tags share the prefix `STATION.`, so each (day, station)
        # partition is one contiguous run.
        day = np.floor_divide(ts, _DAY_NS)
        day0 = int(day.min())
        day_offset = day - day0
        group = day_offset * len(tag_names) + tag_codes
        order = _stable_order(group, int(day_offset.max() + 1) * len(tag_names), ts - day * _DAY_NS)
        partition = day_offset * len(stations) + station_of_tag[tag_codes]
        partition, tag_codes, ts = partition[order], tag_codes[order], ts[order]
        values, quality_codes = values[order], quality_codes[order]

        last_of_key = np.ones(n, dtype=bool)  # keep the last row of each (tag, ts)
        last_of_key[:-1] = (tag_codes[1:] != tag_codes[:-1]) | (ts[1:] != ts[:-1])
        starts = np.flatnonzero(np.r_[True, partition[1:] != partition[:-1]])
        ends = np.r_[starts[1:], n]

        tag_array = pa.array(tag_names, type=pa.string())
        quality_array = pa.array(quality_names, type=pa.string())
        arrived_us = np.datetime64(arrived.tz_convert("UTC").tz_localize(None).to_datetime64(), "us")

        def write_partition(bounds: tuple[int, int]) -> tuple[str, StationWrite, bool]:
            start, end = bounds
            keep = np.flatnonzero(last_of_key[start:end]) + start
            station = str(stations[partition[start] % len(stations)])
            day_start = _EPOCH + timedelta(days=int(partition[start] // len(stations)) + day0)
            table = pa.Table.from_arrays(
                [
                    tag_array.take(pa.array(tag_codes[keep])),
                    pa.array(ts[keep]).cast(READINGS_SCHEMA.field("ts").type),
                    pa.array(values[keep], type=pa.float64()),
                    quality_array.take(pa.array(quality_codes[keep])),
                    pa.array(np.full(len(keep), arrived_us), type=READINGS_SCHEMA.field("ingested_at").type),
                ],
                schema=READINGS_SCHEMA,
            )
            in_batch_duplicates = (end - start) - len(keep)
            path = self.partition_file(station, day_start)
            updated = duplicates = 0
            merged: pa.Table | None = table
            with self._partition_lock(path.parent).held():  # read, merge and replace as one step
                _remove(_temporaries(path.parent, PART_FILE))  # left by a killed writer of this partition
                if path.exists():
                    stored = self._read_partition(path, compact=True)
                    day_ns = (day_start - _EPOCH).days * _DAY_NS
                    merged, updated, duplicates = _merge(stored, table, day_ns)
                if merged is not None:
                    _atomic_write_table(merged, path, self.compression)
            counts = StationWrite(
                received=end - start,
                new=len(keep) - updated - duplicates,
                updated=updated,
                duplicates=duplicates + in_batch_duplicates,
            )
            return station, counts, merged is not None

        bounds = list(zip(starts.tolist(), ends.tolist(), strict=True))
        if self.max_workers > 1 and len(bounds) > 1:
            with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
                outcomes = list(pool.map(write_partition, bounds))
        else:
            outcomes = [write_partition(b) for b in bounds]

        per_station: dict[str, StationWrite] = {}
        for station, counts, _ in outcomes:
            per_station[station] = per_station.get(station, StationWrite()) + counts
        total = sum(per_station.values(), StationWrite())

        # Watermarks: the latest ts per tag among the rows kept (the last row of each tag run).
        run_end = np.flatnonzero(np.r_[(tag_codes[1:] != tag_codes[:-1]) | (partition[1:] != partition[:-1]), True])
        latest = np.full(len(tag_names), NAT_NS, dtype=np.int64)
        np.maximum.at(latest, tag_codes[run_end], ts[run_end])
        self._advance_watermarks(dict(zip(tag_names, latest.tolist(), strict=True)))

        return WriteResult(
            received=total.received,
            new=total.new,
            updated=total.updated,
            duplicates=total.duplicates,
            partitions_written=sum(written for _, _, written in outcomes),
            per_station=dict(sorted(per_station.items())),
        )

    def _read_partition(self, path: Path, columns: Sequence[str] | None = None, *, compact: bool = False) -> pa.Table:
        """Read one partition file; an unreadable one is a `RawStoreError` naming it and the recovery.

        With `compact`, tags and flags come dictionary-encoded (a few bytes per row, not the text).
        """
        try:
            table = pq.read_table(
                path,
                columns=list(columns) if columns is not None else None,
                read_dictionary=["tag", "quality"] if compact else None,
            )
        except (pa.ArrowException, OSError) as exc:
            raise RawStoreError(f"cannot read stored partition {path} ({shorten(str(exc), 160)}): {RECOVERY}") from exc
        wanted = columns if columns is not None else READINGS_SCHEMA.names
        if not set(wanted) <= set(table.column_names):
            raise RawStoreError(f"stored partition {path} lacks columns of the raw store: {RECOVERY}")
        return table

    # --- watermarks --------------------------------------------------------------------------

    def _load_watermarks_ns(self) -> dict[str, int]:
        where = self.watermark_file
        try:
            text = where.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as exc:
            raise RawStoreError(f"cannot read watermarks {where} ({shorten(str(exc))}): {RECOVERY}") from exc
        try:
            marks = json.loads(text)["watermarks"]
            if not isinstance(marks, dict):
                raise TypeError("`watermarks` is not a mapping")
            parsed = {}
            for tag, stamp in marks.items():
                value = pd.Timestamp(stamp)
                if not isinstance(stamp, str) or value.tzinfo is None:
                    raise ValueError(f"watermark of {shorten(tag)} is not a UTC timestamp: {shorten(stamp)}")
                parsed[str(tag)] = int(value.value)
        except (ValueError, TypeError, KeyError) as exc:
            raise RawStoreError(
                f"watermarks file {where} is corrupt ({shorten(str(exc))}): `pumptwin store repair` rebuilds it "
                "from the stored partitions"
            ) from exc
        return parsed

    def _save_watermarks_ns(self, marks: dict[str, int]) -> None:
        """Write the watermarks file (call with the watermark lock held)."""
        document = {
            "version": 1,
            "watermarks": {tag: pd.Timestamp(ns, tz="UTC").isoformat() for tag, ns in sorted(marks.items())},
        }
        replace_text(self.watermark_file, json.dumps(document, indent=1) + "\n")

    def _advance_watermarks(self, latest: dict[str, int]) -> None:
        """Move watermarks forward to `latest` (never back): read, advance and write under the lock."""
        with self._watermark_lock().held():
            _remove(_temporaries(self.root, self.watermark_file.name))  # left by a killed writer
            marks = self._load_watermarks_ns()
            changed = False
            for tag, ns in latest.items():
                if ns != NAT_NS and ns > marks.get(tag, NAT_NS):
                    marks[tag] = ns
                    changed = True
            if changed:
                self._save_watermarks_ns(marks)

    def watermarks(self) -> dict[str, pd.Timestamp]:
        """Return the last stored timestamp of every tag.

        Returns:
            {tag: UTC timestamp}; empty before the first write.
        """
        return {tag: pd.Timestamp(ns, tz="UTC") for tag, ns in self._load_watermarks_ns().items()}

    def watermark(self, tag: str) -> pd.Timestamp | None:
        """Return the last stored timestamp of one tag, or None when none is stored.

        Args:
            tag: The tag.

        Returns:
            The UTC timestamp, or None.
        """
        return self.watermarks().get(tag)

    def incremental(self, readings: pd.DataFrame, *, overlap: timedelta = timedelta(0)) -> pd.DataFrame:
        """Keep only readings newer than their tag's watermark (minus `overlap`).

        Tags without a watermark pass whole. The ingest pipeline does not use this to drop rows
        before storing them (the watermark decides what to read, not what to keep: see
        `window_start`); it is a query for callers that want only what is new.

        Args:
            readings: Readings in the contract's shape.
            overlap: How far before the watermark rows still pass (for late-arriving data).

        Returns:
            The rows of `readings` with `ts > watermark(tag) - overlap`.
        """
        marks = self._load_watermarks_ns()
        if not marks or len(readings) == 0:
            return readings
        overlap_ns = int(pd.Timedelta(overlap).value)
        if overlap_ns < 0:
            raise ValueError(f"overlap must be >= 0, got {overlap}")
        codes, names = pd.factorize(readings["tag"])
        limits = np.array([marks[t] - overlap_ns if t in marks else NAT_NS for t in names] + [NAT_NS], dtype=np.int64)
        keep = utc_ns(readings["ts"]) > limits[codes]
        return readings if keep.all() else readings[keep]

    def window_start(
        self, tags: Iterable[str], *, overlap: timedelta = timedelta(0), now: datetime | pd.Timestamp | None = None
    ) -> pd.Timestamp | None:
        """Return where an incremental read of `tags` starts: their oldest watermark minus `overlap`.

        The watermark decides what to read, not what to keep: rows read again inside the overlap
        are recognised as duplicates by `write`. A watermark past the wall clock plus `max_future_s`
        (left by an older version) counts as that horizon.

        Args:
            tags: The tags to be read.
            overlap: How far before the watermark the read starts (late, buffered data).
            now: The wall clock (timezone-aware); default `clock()`.

        Returns:
            The UTC start, or None when a tag has no watermark (or no tags are given): read everything.
        """
        marks = self._load_watermarks_ns()
        wanted = list(tags)
        if not wanted or any(tag not in marks for tag in wanted):
            return None
        oldest = min(*(marks[tag] for tag in wanted), self.horizon_ns(now))
        return pd.Timestamp(oldest, tz="UTC") - pd.Timedelta(overlap)

    def rebuild_watermarks(self, *, now: datetime | pd.Timestamp | None = None) -> dict[str, pd.Timestamp]:
        """Recompute every watermark from the stored partitions and rewrite the watermarks file.

        Rows later than the wall clock plus `max_future_s` (stored by an older version) do not count.
        Holds the watermark lock throughout, so concurrent writers wait and then advance the result.

        Args:
            now: The wall clock (timezone-aware); default `clock()`.

        Returns:
            The new watermarks, {tag: UTC timestamp}.

        Raises:
            RawStoreError: When a partition cannot be read (`repair` moves such partitions aside first).
        """
        return self._rebuild_watermarks(now)[0]

    def _rebuild_watermarks(self, now: datetime | pd.Timestamp | None) -> tuple[dict[str, pd.Timestamp], list[Path]]:
        """`rebuild_watermarks`, also returning the temporary files of the watermarks it removed."""
        horizon = self.horizon_ns(now)
        marks: dict[str, int] = {}
        with self._watermark_lock().held():
            removed = _remove(_temporaries(self.root, self.watermark_file.name))
            for station, day in self.partitions():
                table = self._read_partition(self.partition_file(station, day), ["tag", "ts"])
                frame = pd.DataFrame(
                    {"tag": table.column("tag").to_numpy(), "ts": table.column("ts").cast(pa.int64()).to_numpy()}
                )
                latest = frame[frame["ts"] <= horizon].groupby("tag", sort=False)["ts"].max()
                for tag, ns in latest.items():
                    marks[str(tag)] = max(int(ns), marks.get(str(tag), NAT_NS))
            self._save_watermarks_ns(marks)
        return {tag: pd.Timestamp(ns, tz="UTC") for tag, ns in sorted(marks.items())}, removed

    # --- checking and repairing --------------------------------------------------------------

    def _all_temporaries(self) -> list[Path]:
        """Temporary files anywhere in the store (partitions, watermarks, quarantine)."""
        return sorted(p for p in self.root.rglob(".*.tmp") if p.is_file()) if self.root.is_dir() else []

    def check(self, *, now: datetime | pd.Timestamp | None = None) -> StoreCheck:
        """Read every partition and the watermarks; report what cannot be read.

        Args:
            now: The wall clock for the future-watermark check (timezone-aware); default `clock()`.

        Returns:
            Unreadable partitions and watermarks, watermarks in the future, leftover temporary files.
        """
        unreadable = []
        partitions = self.partitions()
        for station, day in partitions:
            path = self.partition_file(station, day)
            try:
                self._read_partition(path, ["tag", "ts"])
            except RawStoreError as exc:
                unreadable.append((path, str(exc.__cause__ or exc)))
        problem, future = None, {}
        try:
            marks = self._load_watermarks_ns()
        except RawStoreError as exc:
            problem = str(exc)
        else:
            horizon = self.horizon_ns(now)
            future = {tag: pd.Timestamp(ns, tz="UTC") for tag, ns in marks.items() if ns > horizon}
        return StoreCheck(
            root=self.root,
            partitions_checked=len(partitions),
            unreadable=tuple(unreadable),
            watermarks_problem=problem,
            future_watermarks=future,
            temporaries=tuple(self._all_temporaries()),
        )

    def quarantine_partition(self, path: str | Path, note: str) -> Path:
        """Move a partition file aside to `<root>/_corrupt/...`, with a note saying why.

        The file keeps its path below the store's root, with the UTC time appended; the note
        `<moved>.txt` beside it holds `note`. Readers and writers then see the partition as empty.

        Args:
            path: A partition file of this store.
            note: Why it is moved (e.g. the error reading it).

        Returns:
            Where the file now lies.

        Raises:
            RawStoreError: When `path` is not a partition file inside the store.
        """
        path = Path(path)
        if path.name != PART_FILE or not inside(self.root, path) or inside(self.corrupt_root, path):
            raise RawStoreError(f"{shorten(str(path))} is not a partition file of the raw store {self.root}")
        stamp = f"{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M%S%f}Z"
        target = self.corrupt_root / path.relative_to(self.root).parent / f"{path.name}.{stamp}"
        with self._partition_lock(path.parent).held():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
            target.with_name(target.name + ".txt").write_text(
                f"moved from {path} at {stamp}: {note}\n", encoding="utf-8"
            )
        return target

    def repair(self, *, now: datetime | pd.Timestamp | None = None) -> StoreRepair:
        """Move unreadable partitions aside, remove leftover temporary files, rebuild the watermarks.

        Temporary files of partitions and watermarks are removed under their lock (a live writer's
        file is never touched); quarantine temporary files only when older than `STALE_TEMPORARY_S`.

        Args:
            now: The wall clock (timezone-aware); default `clock()`.

        Returns:
            What was moved, removed and rebuilt.
        """
        found = self.check(now=now)
        moved = tuple((path, self.quarantine_partition(path, why)) for path, why in found.unreadable)
        removed: list[Path] = []
        for folder in sorted(self.root.glob("station=*/date=*")):  # also partitions whose first write was killed
            if _temporaries(folder, PART_FILE):
                with self._partition_lock(folder).held():
                    removed += _remove(_temporaries(folder, PART_FILE))
        if self.quarantine_root.is_dir():
            cutoff = time.time() - STALE_TEMPORARY_S
            removed += _remove(p for p in self.quarantine_root.rglob(".*.tmp") if p.stat().st_mtime < cutoff)
        marks, removed_marks = self._rebuild_watermarks(now)
        removed += removed_marks
        return StoreRepair(moved=moved, temporaries_removed=tuple(removed), watermarks=len(marks))

    # --- reading -----------------------------------------------------------------------------

    def read(
        self,
        stations: Sequence[str] | str | None = None,
        start: datetime | pd.Timestamp | str | None = None,
        end: datetime | pd.Timestamp | str | None = None,
        *,
        tags: Sequence[str] | None = None,
        with_ingested_at: bool = False,
        sort: bool = True,
    ) -> pd.DataFrame:
        """Read stored readings.

        Args:
            stations: A station, several, or None for all.
            start: First timestamp included (timezone-aware); None for no bound.
            end: First timestamp excluded (timezone-aware); None for no bound.
            tags: Only these tags; None for all.
            with_ingested_at: Also return the `ingested_at` column.
            sort: Order rows by (tag, ts); otherwise by station, day, tag, ts.

        Returns:
            Readings in the contract's shape (`tag`, `ts` UTC, `value`, `quality`).

        Raises:
            ValueError: When `start` or `end` has no time zone.
        """
        first, last = (
            utc_or_none(start, naive_is_utc=False, what="start"),
            utc_or_none(end, naive_is_utc=False, what="end"),
        )
        wanted = [stations] if isinstance(stations, str) else stations
        files = [
            self.partition_file(station, day)
            for station, day in self.partitions(wanted)
            if (first is None or day >= first.date()) and (last is None or day <= (last - pd.Timedelta(1)).date())
        ]
        columns = list(READING_COLUMNS) + (["ingested_at"] if with_ingested_at else [])
        if not files:
            frame = empty_readings()
            if with_ingested_at:
                frame["ingested_at"] = pd.Series([], dtype="datetime64[us, UTC]")
            return frame
        condition = None
        ts_type = READINGS_SCHEMA.field("ts").type
        if first is not None:
            condition = ds.field("ts") >= pa.scalar(first.value, type=pa.int64()).cast(ts_type)
        if last is not None:
            upper = ds.field("ts") < pa.scalar(last.value, type=pa.int64()).cast(ts_type)
            condition = upper if condition is None else condition & upper
        if tags is not None:
            chosen = ds.field("tag").isin(pa.array(list(tags), type=pa.string()))
            condition = chosen if condition is None else condition & chosen

        def read_one(path: Path) -> pa.Table:
            try:
                table = pq.read_table(path, columns=columns, filters=condition, schema=READINGS_SCHEMA)
            except (pa.ArrowException, OSError) as exc:
                raise RawStoreError(
                    f"cannot read stored partition {path} ({shorten(str(exc), 160)}): {RECOVERY}"
                ) from exc
            return table

        if self.max_workers > 1 and len(files) > 1:
            with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
                tables = list(pool.map(read_one, files))
        else:
            tables = [read_one(f) for f in files]
        # Files come in (station, day) order, each sorted by (tag, ts); a tag lives in one station,
        # so a stable sort by tag alone orders the rows by (tag, ts).
        return _to_frame(pa.concat_tables(tables), sort_by_tag=sort)

    # --- quarantine --------------------------------------------------------------------------

    def quarantine(
        self,
        rejected: pd.DataFrame,
        *,
        run_id: str,
        ingested_at: datetime | pd.Timestamp | None = None,
        part: int | None = None,
    ) -> Path | None:
        """Write the rejected rows of one run, or of one part of a run, to the quarantine table.

        Without `part`, the run has one file, `run-<id>.parquet`, and writing the same `run_id`
        again replaces every file of that run. With `part` (a run that streams its source in
        chunks), each part has its own file `run-<id>+<part>.parquet`, and writing a part again
        replaces only that part; `clear_quarantine` removes a run's parts before it is retried.
        Either way a retried run does not duplicate its quarantine rows.

        Args:
            rejected: Rows with a `reason` column; `tag`, `ts`, `value`, `quality`, `source_file`
                and `source_row` are kept when present (as text), other columns are dropped.
            run_id: Identifier of the run (letters, digits, `_`, `-`, `.`).
            ingested_at: When the run ingested them; default now.
            part: Number of the part (>= 0), or None for the run's one file.

        Returns:
            The file written, or None when there was nothing to write.

        Raises:
            ValueError: When `run_id` is not path-safe or `rejected` has no `reason` column.
        """
        _check_run_id(run_id)
        if part is not None and part < 0:
            raise ValueError(f"part must be >= 0, got {part}")
        if len(rejected) == 0:
            return None
        if "reason" not in rejected.columns:
            raise ValueError("rejected rows need a `reason` column")
        arrived = utc_or_none(ingested_at, naive_is_utc=False, what="ingested_at") or pd.Timestamp.now(tz="UTC")
        n = len(rejected)

        def text(column: str) -> pa.Array:
            if column not in rejected.columns:
                return pa.array([""] * n, type=pa.string())
            return pa.array(raw_text(rejected[column]), type=pa.string())

        source_row = (
            pa.array(pd.array(rejected["source_row"], dtype="Int64"), type=pa.int64())
            if "source_row" in rejected.columns
            else pa.nulls(n, type=pa.int64())
        )
        table = pa.Table.from_arrays(
            [
                text("tag"),
                text("ts"),
                text("value"),
                text("quality"),
                text("source_file"),
                source_row,
                text("reason"),
                pa.array([arrived.to_pydatetime()] * n, type=QUARANTINE_SCHEMA.field("ingested_at").type),
                pa.array([run_id] * n, type=pa.string()),
            ],
            schema=QUARANTINE_SCHEMA,
        )
        name = f"run-{run_id}.parquet" if part is None else f"run-{run_id}+{part:05d}.parquet"
        path = self.quarantine_root / f"date={arrived.date().isoformat()}" / name
        stale = self._quarantine_files(run_id) if part is None else self.quarantine_root.glob(f"date=*/{name}")
        _remove(old for old in stale if old != path)  # a retried run (maybe on another day): no duplicates
        _atomic_write_table(table, path, self.compression)
        return path

    def _quarantine_files(self, run_id: str | None) -> list[Path]:
        """The quarantine files of one run (its one file and its parts), or of every run."""
        if run_id is None:
            return sorted(self.quarantine_root.glob("date=*/run-*.parquet"))
        _check_run_id(run_id)
        single = self.quarantine_root.glob(f"date=*/run-{run_id}.parquet")
        parts = self.quarantine_root.glob(f"date=*/run-{run_id}+*.parquet")  # `+` never occurs in a run id
        return sorted([*single, *parts])

    def clear_quarantine(self, run_id: str) -> int:
        """Remove every quarantine file of one run (before the run is retried).

        Args:
            run_id: Identifier of the run.

        Returns:
            Files removed.
        """
        return len(_remove(self._quarantine_files(run_id)))

    def read_quarantine(
        self,
        *,
        run_id: str | None = None,
        start: datetime | pd.Timestamp | str | None = None,
        end: datetime | pd.Timestamp | str | None = None,
    ) -> pd.DataFrame:
        """Read quarantined rows.

        Args:
            run_id: Only this run; None for all.
            start: First ingest time included (timezone-aware); None for no bound.
            end: First ingest time excluded (timezone-aware); None for no bound.

        Returns:
            The rows with the columns of `QUARANTINE_SCHEMA`, ordered by ingest time.
        """
        first, last = (
            utc_or_none(start, naive_is_utc=False, what="start"),
            utc_or_none(end, naive_is_utc=False, what="end"),
        )
        files = [str(p) for p in self._quarantine_files(run_id)]
        if not files:
            return QUARANTINE_SCHEMA.empty_table().to_pandas()
        try:
            table = ds.dataset(files, schema=QUARANTINE_SCHEMA, format="parquet").to_table()
        except (pa.ArrowException, OSError) as exc:
            raise RawStoreError(
                f"cannot read the quarantine table under {self.quarantine_root} ({shorten(str(exc), 160)}): "
                "move the unreadable run file named there out of the folder"
            ) from exc
        frame = table.to_pandas()
        if first is not None:
            frame = frame[frame["ingested_at"] >= first]
        if last is not None:
            frame = frame[frame["ingested_at"] < last]
        frame["source_row"] = frame["source_row"].astype("Int64")
        return frame.sort_values("ingested_at", kind="stable").reset_index(drop=True)


def _check_run_id(run_id: str) -> None:
    """Refuse a run id that is not path-safe (it names quarantine files)."""
    if not _RUN_ID.match(run_id):
        raise ValueError(f"run_id must match {_RUN_ID.pattern}, got {shorten(run_id)}")


def _to_frame(table: pa.Table, *, sort_by_tag: bool) -> pd.DataFrame:
    """Convert a readings table to pandas with `str` tags and flags (shared string objects).

    With `sort_by_tag`, rows are stably sorted by tag (lexicographic), keeping their order within a tag.
    """
    order: np.ndarray | None = None
    columns: dict[str, object] = {}
    for name in table.column_names:
        column = table.column(name)
        if pa.types.is_string(column.type):
            encoded = pc.dictionary_encode(column).combine_chunks()
            names = np.asarray(encoded.dictionary.to_pylist(), dtype=object)
            codes = encoded.indices.to_numpy(zero_copy_only=False)
            if name == "tag" and sort_by_tag and len(names):
                rank = np.empty(len(names), dtype=np.int64)
                rank[np.argsort(names)] = np.arange(len(names))
                order = np.argsort(rank[codes], kind="stable")
            columns[name] = names[codes] if len(names) else np.array([], dtype=object)
        elif pa.types.is_timestamp(column.type):
            stamps = utc_datetimes(column.cast(pa.int64()).to_numpy())
            columns[name] = stamps if name == "ts" else stamps.as_unit("us")
        else:
            columns[name] = column.to_numpy()
    if order is not None:
        columns = {name: values[order] for name, values in columns.items()}  # type: ignore[index]
    return pd.DataFrame(columns)
