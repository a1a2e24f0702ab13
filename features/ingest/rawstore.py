"""The raw store: readings as parquet, partitioned by station and UTC day, deduplicated and idempotent.

Layout under `root` (for the embedded default, `<PUMPTWIN_HOME>/raw`)::

    station=PS01/date=2026-11-01/part-0.parquet        readings of one station and UTC day (compacted)
    station=PS01/date=2026-11-01/part-<n>.parquet      rows added since, one file per write (n = 1, 2, ...)
    station=PS01/date=2026-11-01/.lock                 lock file of the partition (never deleted)
    _watermarks.json                                   last stored `ts` per tag
    _watermarks.lock                                   lock file of the watermarks
    _quarantine/date=2026-11-01/run-<id>+00000.parquet rejected rows of one run, one part per chunk
    _corrupt/station=PS01/date=.../part-0.parquet.<t>  unreadable partition files moved aside, with a note

Each file holds `tag, ts, value, quality, ingested_at`, sorted by (tag, ts) and unique on (tag, ts),
in row groups of `ROW_GROUP_ROWS` rows. A partition is its files in arrival order: `part-0.parquet`
first, then `part-<n>.parquet` by n; for each (tag, ts) the row of the latest file wins, so a
partition is unique on (tag, ts) as read. A write appends: it reads the stored keys (with values and
flags) of each touched partition within the write's range of time and tags only (row-group
statistics skip the rest), and writes one new file holding the rows not stored yet and the rows
that replace a stored row with another value or flag (the latest arrival wins). A write whose rows
are all stored identically writes nothing, so re-ingesting a window changes nothing.

Compaction merges a partition's files into one `part-0.parquet`, a group of tags at a time
(`COMPACT_GROUP_ROWS` rows), so its memory is bounded whatever the partition's size. A write that
leaves more than `compact_files` files compacts the partition; the ingest pipeline compacts the
partitions a run wrote at its end; `compact` and `repair` compact on demand. The compacted file
records in its footer the highest file number it merged; files up to that number are superseded
(left behind only by a compaction killed between its rename and its deletes): readers skip them,
and the next writer of the partition or `repair` deletes them. Every file is written to a
temporary file and renamed, so a killed write or compaction leaves the old files or the new one,
and never counts a row twice. Names starting with `_` or `.` are skipped by parquet dataset readers.

Several writers at once (threads or processes) lose nothing: a writer holds an exclusive lock
(`fcntl.flock` on the partition's `.lock`) across the read of the stored keys, the append and any
compaction of a partition, and the watermarks are read, advanced and written under
`_watermarks.lock`. A writer that waits longer than `lock_timeout_s` stops with `StoreLockError`.
Readers take no lock: they open a partition's files at one instant (an open file stays readable
when a compaction replaces or deletes it) and open them again when a compaction got in between.
Locks die with their process, so a killed run leaves no lock behind; its temporary files are
removed by the next writer of the same partition (under the lock, so a live writer's temporary file
is never touched) or by `repair`.

Readings from the future are refused: a write holding a reading later than the wall clock plus
`max_future_s` raises `FutureReadingsError` and stores nothing, so no watermark can run ahead of
the clock and hide later real readings from an incremental read. The ingest pipeline quarantines
such rows before they reach the store.

A crash between partitions leaves the earlier ones written and the watermark behind; ingesting the
same window again completes it without duplicates. A disk that fills mid-write is such a crash: the
write stops with `StoreFullError` naming the file it was writing, whose temporary file is removed.
A partition file or watermarks file that cannot be read stops a write or read with a
`RawStoreError` naming the file; `check` lists them and `repair` moves unreadable files aside,
removes superseded and temporary files, compacts the partitions and rebuilds the watermarks from
what is stored (`pumptwin store check`, `pumptwin store repair`).
"""

from __future__ import annotations

import contextlib
import errno
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
from pumptwin.twin.safety import file_lock, inside, replace_text, shorten
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
"""The compacted data file of a partition (the first file a partition gets, and what compaction writes)."""

ROW_GROUP_ROWS = 65_536
"""Rows per row group of a partition file: small enough that statistics skip what a write or read does not need."""

COMPACT_FILES = 16
"""Default `compact_files`: a write that leaves more files than this in a partition compacts it."""

COMPACT_GROUP_ROWS = 1_000_000
"""Rows merged at a time by a compaction (whole tags), which bounds its memory."""

COVERS_KEY = b"pumptwin.covers"
"""Footer key of a compacted file: the highest file number merged into it (files up to it are superseded)."""

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
_PART_NAME = re.compile(r"^part-(\d{1,18})\.parquet$")
_SNAPSHOT_TRIES = 20


class RawStoreError(PumptwinError, RuntimeError):
    """The raw store cannot do what was asked (unreadable partition, readings off contract)."""


class StoreLockError(RawStoreError):
    """Another writer held a partition or the watermarks for longer than the lock timeout."""


class StoreFullError(RawStoreError):
    """The disk filled while the store wrote (``ENOSPC``, ``EDQUOT``); what was written before stays, once."""


class FutureReadingsError(RawStoreError):
    """A write held readings later than the wall clock plus the tolerance; nothing was stored."""


class _Lock:
    """An exclusive `fcntl.flock` lock on a file, waited for up to a timeout (see `RawStore`)."""

    def __init__(self, path: Path, timeout_s: float, what: str) -> None:
        self.path, self.timeout_s, self.what = path, timeout_s, what

    def held(self) -> contextlib.AbstractContextManager[None]:
        """Hold the lock for the body of a `with` block.

        Raises:
            StoreLockError: When another process or thread holds it longer than `timeout_s`.
        """
        return file_lock(
            self.path,
            self.timeout_s,
            lambda: StoreLockError(
                f"{self.what} is locked by another ingest ({self.path}) for more than "
                f"{self.timeout_s:g} s: wait for it to finish, or raise PUMPTWIN_INGEST_LOCK_TIMEOUT_S"
            ),
        )


_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


@contextlib.contextmanager
def _space_for(what: str) -> Iterator[None]:
    """Turn a full disk met in the body of a `with` block into a `StoreFullError` naming `what`.

    Raises:
        StoreFullError: When the body fails with ``ENOSPC`` or ``EDQUOT`` (or an Arrow error saying so).
    """
    try:
        yield
    except OSError as exc:
        if exc.errno not in _NO_SPACE and "no space left" not in str(exc).lower():
            raise
        raise StoreFullError(
            f"no space left on the device writing {what} ({shorten(str(exc), 160)}): free space, then ingest the "
            "same window again (rows stored before stay, none is stored twice)"
        ) from exc


def _temporaries(folder: Path, name: str) -> list[Path]:
    """Temporary files `_atomic_write_*` leaves for `folder / name` when killed mid-write."""
    return sorted(folder.glob(f".{glob.escape(name)}.*.tmp"))


def _part_temporaries(folder: Path) -> list[Path]:
    """Temporary files that killed writes or compactions left in a partition folder."""
    return sorted(folder.glob(".part-*.parquet.*.tmp"))


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
        superseded: Files already merged into their partition's `part-0.parquet` by a compaction
            killed before deleting them (never read; `repair` deletes them).
    """

    root: Path
    partitions_checked: int = 0
    unreadable: tuple[tuple[Path, str], ...] = ()
    watermarks_problem: str | None = None
    future_watermarks: dict[str, pd.Timestamp] = field(default_factory=dict)
    temporaries: tuple[Path, ...] = ()
    superseded: tuple[Path, ...] = ()

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
        lines += [f"- file merged by a killed compaction, not read: `{path}`" for path in self.superseded]
        lines += ["", "OK." if self.ok else "Run `pumptwin store repair` to recover."]
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class StoreRepair:
    """What `RawStore.repair` did.

    Attributes:
        moved: (partition file, where it was moved) for each unreadable partition set aside.
        temporaries_removed: Temporary files deleted.
        watermarks: Tags whose watermark was rebuilt from the stored partitions.
        superseded_removed: Files a killed compaction had merged but not deleted, deleted now.
        compacted: Partitions whose files were merged into one.
    """

    moved: tuple[tuple[Path, Path], ...] = ()
    temporaries_removed: tuple[Path, ...] = ()
    watermarks: int = 0
    superseded_removed: tuple[Path, ...] = ()
    compacted: int = 0

    def to_markdown(self) -> str:
        """Render what was done as markdown.

        Returns:
            One line per action.
        """
        lines = [f"- moved unreadable `{old}` to `{new}`" for old, new in self.moved]
        lines += [f"- removed temporary file `{path}`" for path in self.temporaries_removed]
        lines += [f"- removed file already merged by a killed compaction `{path}`" for path in self.superseded_removed]
        if self.compacted:
            lines.append(f"- compacted {self.compacted} partitions into one file each")
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
        partitions_written: Partitions a file was written to (one new file each).
        per_station: The same counts per station.
        partitions: The (station, UTC day) partitions a file was written to, sorted.
    """

    received: int = 0
    new: int = 0
    updated: int = 0
    duplicates: int = 0
    partitions_written: int = 0
    per_station: dict[str, StationWrite] = field(default_factory=dict)
    partitions: tuple[tuple[str, date], ...] = ()

    @property
    def stored(self) -> int:
        """Rows written: new plus updated."""
        return self.new + self.updated


def _temporary_of(path: Path) -> Path:
    """A fresh temporary file beside `path` (removed by the next writer or `repair` when left behind)."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")


def _atomic_write_table(table: pa.Table, path: Path, compression: str, row_group_size: int | None = None) -> None:
    """Write a parquet file through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_of(path)
    try:
        pq.write_table(table, tmp, compression=compression, row_group_size=row_group_size)
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


def _column_codes(column: pa.ChunkedArray, names: list[str]) -> np.ndarray:
    """Codes of a string or dictionary column into `names` (each of its values must be there)."""
    position = {name: i for i, name in enumerate(names)}
    parts = []
    for chunk in column.chunks:
        encoded = chunk if pa.types.is_dictionary(chunk.type) else pc.dictionary_encode(chunk)
        lookup = np.array([position[v] for v in encoded.dictionary.to_pylist()] + [0], dtype=np.int64)
        indices = encoded.indices.fill_null(len(lookup) - 1).to_numpy(zero_copy_only=False)
        parts.append(lookup[indices])
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


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


def _ts_ns(table: pa.Table) -> np.ndarray:
    """The `ts` column of a table as ns since the epoch."""
    return _int64(table.column("ts").cast(READINGS_SCHEMA.field("ts").type))


def _key_index(tags: np.ndarray, ts: np.ndarray, n_tags: int, day_start_ns: int) -> np.ndarray | pd.MultiIndex:
    """Keys of (tag code, ts) rows of one day that sort like (tag, ts): one int64 when it fits."""
    if n_tags <= _MAX_KEY_GROUPS:
        return tags * _DAY_NS + (ts - day_start_ns)
    return pd.MultiIndex.from_arrays([tags, ts])


@dataclass(frozen=True, slots=True)
class _Opened:
    """One file of a partition, open for reading (it stays readable when it is replaced or deleted)."""

    number: int
    path: Path
    file: pq.ParquetFile


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """The files of a partition at one instant.

    Attributes:
        live: The files that hold the partition, in arrival order (`part-0.parquet` first).
        superseded: Files already merged into `part-0.parquet` (a compaction killed before deleting them).
        next_number: The number the next file of the partition gets.
    """

    live: tuple[_Opened, ...]
    superseded: tuple[Path, ...]
    next_number: int


def _part_files(folder: Path) -> list[tuple[int, Path]]:
    """The data files of a partition folder with their numbers, in number order."""
    found = []
    for path in folder.glob("part-*.parquet"):
        match = _PART_NAME.match(path.name)
        if match is not None:
            found.append((int(match.group(1)), path))
    return sorted(found)


def _unreadable(path: Path, exc: BaseException) -> RawStoreError:
    """The error for a partition file that cannot be read, naming it and the recovery."""
    return RawStoreError(f"cannot read stored partition {path} ({shorten(str(exc), 160)}): {RECOVERY}")


def _open_part(path: Path, stack: contextlib.ExitStack) -> pq.ParquetFile:
    """Open a partition file; FileNotFoundError when it is gone, `RawStoreError` when it cannot be read."""
    handle = stack.enter_context(pa.OSFile(str(path)))
    try:
        file = pq.ParquetFile(handle)
    except (pa.ArrowException, OSError) as exc:
        raise _unreadable(path, exc) from exc
    if not set(READINGS_SCHEMA.names) <= set(file.schema_arrow.names):
        raise RawStoreError(f"stored partition {path} lacks columns of the raw store: {RECOVERY}")
    return file


def _covers(file: pq.ParquetFile) -> int:
    """The highest file number merged into a compacted file (0 for a file written otherwise)."""
    raw = (file.metadata.metadata or {}).get(COVERS_KEY)
    try:
        return int(raw) if raw is not None else 0
    except ValueError:
        return 0


@contextlib.contextmanager
def _snapshot(folder: Path) -> Iterator[_Snapshot]:
    """Open the files of a partition at one instant, for the body of a `with` block.

    Without the partition's lock, a compaction may replace `part-0.parquet` and delete the files it
    merged while they are listed: the files are then listed and opened again. The files stay open
    (and readable) until the block ends.

    Raises:
        RawStoreError: When a file cannot be read, or the partition keeps changing.
    """
    for _ in range(_SNAPSHOT_TRIES):
        with contextlib.ExitStack() as stack:
            parts = _part_files(folder)
            live: list[_Opened] = []
            covers = 0
            try:
                for number, path in parts:
                    if 0 < number <= covers:
                        continue
                    file = _open_part(path, stack)
                    if number == 0:
                        covers = _covers(file)
                    live.append(_Opened(number, path, file))
            except FileNotFoundError:
                continue  # a compaction got in between: list again
            superseded = tuple(path for number, path in parts if 0 < number <= covers)
            next_number = max([covers, *(number for number, _ in parts)]) + 1 if parts else 0
            yield _Snapshot(tuple(live), superseded, next_number)
            return
    raise RawStoreError(f"partition {folder} kept changing while it was read: try again")


def _row_groups(file: pq.ParquetFile, ts_range: tuple[int, int] | None, tag_range: tuple[str, str] | None) -> list[int]:
    """Row groups whose statistics may hold rows with ts and tag in the (inclusive) ranges."""
    meta = file.metadata
    names = [meta.schema.column(j).name for j in range(meta.num_columns)]
    ts_ns = file.schema_arrow.field("ts").type == READINGS_SCHEMA.field("ts").type
    ts_j = names.index("ts") if ts_range is not None and ts_ns else None
    tag_j = names.index("tag") if tag_range is not None else None
    chosen = []
    for i in range(meta.num_row_groups):
        group = meta.row_group(i)
        if group.num_rows == 0:
            continue
        if ts_j is not None and ts_range is not None:
            stats = group.column(ts_j).statistics
            if stats is not None and stats.has_min_max and (stats.max_raw < ts_range[0] or stats.min_raw > ts_range[1]):
                continue
        if tag_j is not None and tag_range is not None:
            stats = group.column(tag_j).statistics
            if stats is not None and stats.has_min_max and (stats.max < tag_range[0] or stats.min > tag_range[1]):
                continue
        chosen.append(i)
    return chosen


def _read_rows(  # noqa: PLR0913 - one keyword per filter
    opened: _Opened,
    columns: Sequence[str],
    *,
    ts_range: tuple[int, int] | None = None,
    tag_range: tuple[str, str] | None = None,
    tags: pa.Array | None = None,
    compact: bool = False,
) -> pa.Table:
    """Read the rows of one partition file with ts and tag in the (inclusive) ranges and among `tags`.

    Row groups whose statistics lie outside the ranges are not read. With `compact`, tags and flags
    come dictionary-encoded (a few bytes per row, not the text).

    Raises:
        RawStoreError: When the file cannot be read.
    """
    wanted = list(columns)
    try:
        groups = _row_groups(opened.file, ts_range, tag_range)
        if not groups:
            return pa.schema([READINGS_SCHEMA.field(c) for c in wanted]).empty_table()
        table = opened.file.read_row_groups(groups, columns=wanted)
    except (pa.ArrowException, OSError) as exc:
        raise _unreadable(opened.path, exc) from exc
    table = table.replace_schema_metadata(None)
    if "ts" in wanted and table.schema.field("ts").type != READINGS_SCHEMA.field("ts").type:
        table = table.set_column(
            wanted.index("ts"), READINGS_SCHEMA.field("ts"), table.column("ts").cast(READINGS_SCHEMA.field("ts").type)
        )
    mask = None
    if ts_range is not None:
        ts = table.column("ts")
        ts_type = READINGS_SCHEMA.field("ts").type
        low, high = pa.scalar(ts_range[0], pa.int64()).cast(ts_type), pa.scalar(ts_range[1], pa.int64()).cast(ts_type)
        mask = pc.and_(pc.greater_equal(ts, low), pc.less_equal(ts, high))
    if tag_range is not None:
        tag = table.column("tag")
        within = pc.and_(pc.greater_equal(tag, tag_range[0]), pc.less_equal(tag, tag_range[1]))
        mask = within if mask is None else pc.and_(mask, within)
    if tags is not None:
        chosen = pc.is_in(table.column("tag"), value_set=tags)
        mask = chosen if mask is None else pc.and_(mask, chosen)
    if mask is not None:
        table = table.filter(mask)
    if compact:
        for name in ("tag", "quality"):
            if name in wanted and not pa.types.is_dictionary(table.schema.field(name).type):
                table = table.set_column(wanted.index(name), name, pc.dictionary_encode(table.column(name)))
    return table


def _latest(tables: Sequence[pa.Table], day_start_ns: int) -> pa.Table:
    """Merge the rows of a partition's files given in arrival order: the latest row of each (tag, ts) wins.

    Each table must hold rows of the one UTC day from `day_start_ns`. Returns the rows sorted by
    (tag, ts) and unique on (tag, ts), tags and flags as plain text, with the columns of the first table.

    The work is done on compact numpy columns (tag and flag as codes), about 40 bytes per row
    besides the tables, whatever the length of the tag names.

    Raises:
        RawStoreError: When a table holds rows of another day.
    """
    columns = tables[0].column_names
    tag_names = _distinct(*(t.column("tag") for t in tables))
    tags = np.concatenate([_column_codes(t.column("tag"), tag_names) for t in tables])
    ts = np.concatenate([_ts_ns(t) for t in tables])
    within = ts - day_start_ns
    if within.size and (within.min() < 0 or within.max() >= _DAY_NS):
        raise RawStoreError(f"stored partition of day {pd.Timestamp(day_start_ns, tz='UTC').date()} holds other days")
    order = _stable_order(tags, len(tag_names), within)  # arrival order kept among equal keys
    del within
    tags, ts = tags[order], ts[order]
    last = np.ones(len(order), dtype=bool)
    last[:-1] = (tags[1:] != tags[:-1]) | (ts[1:] != ts[:-1])
    take = order[last]
    del order
    out: dict[str, pa.Array] = {
        "tag": pa.array(tag_names, type=pa.string()).take(pa.array(tags[last])),
        "ts": pa.array(ts[last]).cast(READINGS_SCHEMA.field("ts").type),
    }
    del tags, ts, last
    if "value" in columns:
        out["value"] = pa.array(np.concatenate([t.column("value").to_numpy() for t in tables])[take], type=pa.float64())
    if "quality" in columns:
        names = _distinct(*(t.column("quality") for t in tables))
        codes = np.concatenate([_column_codes(t.column("quality"), names) for t in tables])[take]
        out["quality"] = pa.array(names, type=pa.string()).take(pa.array(codes))
    if "ingested_at" in columns:
        arrived_type = READINGS_SCHEMA.field("ingested_at").type
        arrived = np.concatenate([_int64(t.column("ingested_at").cast(arrived_type)) for t in tables])[take]
        out["ingested_at"] = pa.array(arrived).cast(arrived_type)
    return pa.Table.from_arrays(
        [out[c] for c in columns], schema=pa.schema([READINGS_SCHEMA.field(c) for c in columns])
    )


def _tag_groups(live: Sequence[_Opened], max_rows: int) -> list[tuple[str, str]]:
    """Split a partition's tags, in name order, into ranges of whole tags of about `max_rows` rows each.

    Returns:
        (first tag, last tag) of each range; a tag with more rows than `max_rows` is a range alone.
    """
    counts: dict[str, int] = {}
    for opened in live:
        for chunk in _read_rows(opened, ["tag"], compact=True).column("tag").chunks:
            names = chunk.dictionary.to_pylist()
            indices = chunk.indices.to_numpy(zero_copy_only=False)
            for name, n in zip(names, np.bincount(indices, minlength=len(names)).tolist(), strict=True):
                counts[name] = counts.get(name, 0) + n
    groups: list[list[str]] = []
    rows = 0
    for tag in sorted(counts):
        if not groups or rows + counts[tag] > max_rows:
            groups.append([])
            rows = 0
        groups[-1].append(tag)
        rows += counts[tag]
    return [(group[0], group[-1]) for group in groups]


def _plain(table: pa.Table) -> pa.Table:
    """A table with dictionary-encoded text columns decoded."""
    for i, column_field in enumerate(table.schema):
        if pa.types.is_dictionary(column_field.type):
            table = table.set_column(i, column_field.name, table.column(i).cast(pa.string()))
    return table


def _changes(stored: pa.Table, incoming: pa.Table, day_start_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """Compare incoming rows with the stored rows of the same keys (both unique on (tag, ts)).

    Returns:
        For each incoming row: whether a row of its (tag, ts) is stored, and whether it is stored
        with the same value (NaN equals NaN) and flag.
    """
    if stored.num_rows == 0:
        none = np.zeros(incoming.num_rows, dtype=bool)
        return none, none.copy()
    tag_names = _distinct(stored.column("tag"), incoming.column("tag"))
    stored_keys = _key_index(
        _column_codes(stored.column("tag"), tag_names), _ts_ns(stored), len(tag_names), day_start_ns
    )
    incoming_keys = _key_index(
        _column_codes(incoming.column("tag"), tag_names), _ts_ns(incoming), len(tag_names), day_start_ns
    )
    if isinstance(stored_keys, pd.MultiIndex):
        position = stored_keys.get_indexer(incoming_keys)
        found = position >= 0
    else:
        by_key = np.argsort(stored_keys, kind="stable")
        sorted_keys = stored_keys[by_key]
        slot = np.minimum(np.searchsorted(sorted_keys, incoming_keys), len(sorted_keys) - 1)
        found = sorted_keys[slot] == incoming_keys
        position = by_key[slot]
    position = np.where(found, position, 0)
    quality_names = _distinct(stored.column("quality"), incoming.column("quality"))
    same = (
        found
        & _same_values(stored.column("value").to_numpy()[position], incoming.column("value").to_numpy())
        & (
            _column_codes(stored.column("quality"), quality_names)[position]
            == _column_codes(incoming.column("quality"), quality_names)
        )
    )
    return found, same


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
        compact_files: A write that leaves more files than this in a partition compacts it (>= 1).

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
        compact_files: int = COMPACT_FILES,
    ) -> None:
        self.root = Path(root)
        self.compression = compression
        self.max_workers = max_workers if max_workers is not None else min(8, os.cpu_count() or 1)
        if self.max_workers < 1:
            raise ValueError(f"max_workers must be >= 1, got {self.max_workers}")
        if lock_timeout_s <= 0 or max_future_s < 0:
            raise ValueError(f"lock_timeout_s must be > 0 and max_future_s >= 0, got {lock_timeout_s}, {max_future_s}")
        if compact_files < 1:
            raise ValueError(f"compact_files must be >= 1, got {compact_files}")
        self.lock_timeout_s = lock_timeout_s
        self.compact_files = compact_files
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

    def partition_folder(self, station: str, day: date) -> Path:
        """Return the folder of one station and UTC day.

        Args:
            station: Station name, e.g. `PS01`.
            day: The UTC day.

        Returns:
            `<root>/station=<station>/date=<YYYY-MM-DD>`.
        """
        return self.root / f"station={station}" / f"date={day.isoformat()}"

    def partition_file(self, station: str, day: date) -> Path:
        """Return the compacted data file of one station and UTC day (see `partition_files` for all).

        Args:
            station: Station name, e.g. `PS01`.
            day: The UTC day.

        Returns:
            `<root>/station=<station>/date=<YYYY-MM-DD>/part-0.parquet`.
        """
        return self.partition_folder(station, day) / PART_FILE

    def partition_files(self, station: str, day: date) -> list[Path]:
        """Return the files that hold one station and UTC day, in arrival order (superseded files left out).

        Args:
            station: Station name, e.g. `PS01`.
            day: The UTC day.

        Returns:
            `part-0.parquet` (when present), then the files written since, by number; empty when none.

        Raises:
            RawStoreError: When `part-0.parquet` cannot be read.
        """
        with _snapshot(self.partition_folder(station, day)) as snap:
            return [opened.path for opened in snap.live]

    def partitions(self, stations: Iterable[str] | None = None) -> list[tuple[str, date]]:
        """List the stored partitions (folders holding at least one data file).

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
                if _part_files(day_dir):
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
        after every stored row. Each partition whose content changes gets one new file holding
        the new and changed rows only (see the module docstring); a partition left with more than
        `compact_files` files is compacted.

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
            StoreFullError: When the disk fills; partitions written before stay, the watermarks stay
                behind, and writing the same readings again stores each row once.
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

        def write_partition(bounds: tuple[int, int]) -> tuple[str, date, StationWrite, bool]:
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
            # Rows are sorted by (tag, ts): the first and last rows bound the tags; ts bounds are searched.
            first_tag, last_tag = tag_names[tag_codes[keep[0]]], tag_names[tag_codes[keep[-1]]]
            ts_range = (int(ts[keep].min()), int(ts[keep].max()))
            in_batch_duplicates = (end - start) - len(keep)
            updated, duplicates, written = self._append(
                self.partition_folder(station, day_start),
                table,
                (day_start - _EPOCH).days * _DAY_NS,
                ts_range=ts_range,
                tag_range=(str(first_tag), str(last_tag)),
            )
            counts = StationWrite(
                received=end - start,
                new=len(keep) - updated - duplicates,
                updated=updated,
                duplicates=duplicates + in_batch_duplicates,
            )
            return station, day_start, counts, written

        bounds = list(zip(starts.tolist(), ends.tolist(), strict=True))
        if self.max_workers > 1 and len(bounds) > 1:
            with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
                outcomes = list(pool.map(write_partition, bounds))
        else:
            outcomes = [write_partition(b) for b in bounds]

        per_station: dict[str, StationWrite] = {}
        for station, _, counts, _ in outcomes:
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
            partitions_written=sum(written for _, _, _, written in outcomes),
            per_station=dict(sorted(per_station.items())),
            partitions=tuple(sorted((station, day) for station, day, _, written in outcomes if written)),
        )

    def _append(
        self,
        folder: Path,
        table: pa.Table,
        day_start_ns: int,
        *,
        ts_range: tuple[int, int],
        tag_range: tuple[str, str],
    ) -> tuple[int, int, bool]:
        """Add one partition's rows (sorted and unique on (tag, ts)) as a new file of the partition.

        Under the partition's lock: reads the stored rows in the range of the incoming ones, writes
        the rows not stored identically to a new file, and compacts the partition when it then holds
        more than `compact_files` files.

        Returns:
            Rows that replaced a stored row with another value or flag, rows stored identically
            already, and whether a file was written.
        """
        with self._partition_lock(folder).held():
            _remove(_part_temporaries(folder))  # left by a killed writer of this partition
            with _snapshot(folder) as snap:
                _remove(snap.superseded)  # left by a killed compaction
                columns = ["tag", "ts", "value", "quality"]
                found = [
                    _read_rows(o, columns, ts_range=ts_range, tag_range=tag_range, compact=True) for o in snap.live
                ]
                found = [t for t in found if t.num_rows]
                stored = _latest(found, day_start_ns) if len(found) > 1 else _plain(found[0]) if found else None
                del found
                files, number = len(snap.live), snap.next_number
            if stored is None:
                updated = duplicates = 0
                rows = table
            else:
                present, same = _changes(stored, table, day_start_ns)
                del stored
                updated, duplicates = int((present & ~same).sum()), int(same.sum())
                rows = table.filter(pa.array(~same)) if duplicates else table
            if rows.num_rows == 0:
                return updated, duplicates, False
            target = folder / f"part-{number}.parquet"
            with _space_for(f"partition {target}"):
                _atomic_write_table(rows, target, self.compression, ROW_GROUP_ROWS)
            del rows
            if files + 1 > self.compact_files:
                self._compact_locked(folder, day_start_ns)
        return updated, duplicates, True

    def _compact_locked(self, folder: Path, day_start_ns: int) -> bool:
        """Merge a partition's files into one `part-0.parquet` (call with the partition's lock held).

        Reads and merges a group of whole tags at a time (about `COMPACT_GROUP_ROWS` rows), writes
        them to a temporary file in (tag, ts) order, renames it over `part-0.parquet`, then deletes
        the merged files. The new file's footer names the highest file number merged, so a kill
        before the deletes leaves those files superseded, never counted twice.

        Returns:
            True when the partition was rewritten (it held more than one file, or one not named part-0).
        """
        with _snapshot(folder) as snap:
            _remove(snap.superseded)
            if not snap.live or (len(snap.live) == 1 and snap.live[0].number == 0):
                return False
            groups = _tag_groups(snap.live, COMPACT_GROUP_ROWS)
            covers = max(snap.next_number - 1, 0)
            target = folder / PART_FILE
            tmp = _temporary_of(target)
            schema = READINGS_SCHEMA.with_metadata({COVERS_KEY: str(covers).encode()})
            try:
                with (
                    _space_for(f"the compaction of partition {folder}"),
                    pq.ParquetWriter(tmp, schema, compression=self.compression) as writer,
                ):
                    for tag_range in groups:
                        parts = [
                            _read_rows(o, READINGS_SCHEMA.names, tag_range=tag_range, compact=True) for o in snap.live
                        ]
                        merged = _latest([t for t in parts if t.num_rows], day_start_ns)
                        del parts
                        writer.write_table(merged, row_group_size=ROW_GROUP_ROWS)
                        del merged
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
            _remove(o.path for o in snap.live if o.number != 0)
        return True

    def compact(self, partitions: Iterable[tuple[str, date]] | None = None) -> int:
        """Merge the files of partitions into one `part-0.parquet` each, in bounded memory.

        A partition of one `part-0.parquet` is left as it is. Each partition is compacted under its
        lock, so writers of it wait; readers go on reading the files they opened.

        Args:
            partitions: (station, UTC day) pairs; None for every stored partition.

        Returns:
            Partitions rewritten.

        Raises:
            RawStoreError: When a file of a partition cannot be read (`repair` moves it aside first).
            StoreLockError: When another writer holds a partition longer than the lock timeout.
        """
        done = 0
        for station, day in sorted(set(partitions) if partitions is not None else self.partitions()):
            folder = self.partition_folder(station, day)
            with self._partition_lock(folder).held():
                _remove(_part_temporaries(folder))
                done += self._compact_locked(folder, (day - _EPOCH).days * _DAY_NS)
        return done

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
                with _space_for(f"watermarks {self.watermark_file}"):
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
                with _snapshot(self.partition_folder(station, day)) as snap:
                    for opened in snap.live:
                        table = _read_rows(opened, ["tag", "ts"], compact=True)
                        frame = pd.DataFrame({"tag": table.column("tag").to_pandas(), "ts": _ts_ns(table)})
                        del table
                        latest = frame[frame["ts"] <= horizon].groupby("tag", sort=False, observed=True)["ts"].max()
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
        superseded: list[Path] = []
        partitions = self.partitions()
        for station, day in partitions:
            folder = self.partition_folder(station, day)
            covers = 0
            for number, path in _part_files(folder):
                try:
                    self._read_partition(path, ["tag", "ts"])
                    if number == 0:
                        covers = _covers(pq.ParquetFile(path))
                except (RawStoreError, pa.ArrowException, OSError) as exc:
                    unreadable.append((path, str(exc.__cause__ or exc)))
                    continue
                if 0 < number <= covers:
                    superseded.append(path)
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
            superseded=tuple(superseded),
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
        if _PART_NAME.match(path.name) is None or not inside(self.root, path) or inside(self.corrupt_root, path):
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

    def repair(self, *, now: datetime | pd.Timestamp | None = None, compact: bool = True) -> StoreRepair:
        """Move unreadable files aside, remove leftover files, compact the partitions, rebuild the watermarks.

        Temporary and superseded files of partitions, and temporary files of the watermarks, are
        removed under their lock (a live writer's file is never touched); quarantine temporary files
        only when older than `STALE_TEMPORARY_S`.

        Args:
            now: The wall clock (timezone-aware); default `clock()`.
            compact: Also merge the files of each partition into one (see `compact`).

        Returns:
            What was moved, removed, compacted and rebuilt.
        """
        found = self.check(now=now)
        moved = tuple((path, self.quarantine_partition(path, why)) for path, why in found.unreadable)
        removed: list[Path] = []
        superseded: list[Path] = []
        compacted = 0
        for folder in sorted(self.root.glob("station=*/date=*")):  # also partitions whose first write was killed
            if not folder.is_dir():
                continue
            with self._partition_lock(folder).held():
                removed += _remove(_part_temporaries(folder))
                with _snapshot(folder) as snap:
                    superseded += _remove(snap.superseded)
                if compact and _part_files(folder):
                    day = date.fromisoformat(folder.name.removeprefix("date="))
                    compacted += self._compact_locked(folder, (day - _EPOCH).days * _DAY_NS)
        if self.quarantine_root.is_dir():
            cutoff = time.time() - STALE_TEMPORARY_S
            removed += _remove(p for p in self.quarantine_root.rglob(".*.tmp") if p.stat().st_mtime < cutoff)
        marks, removed_marks = self._rebuild_watermarks(now)
        removed += removed_marks
        return StoreRepair(
            moved=moved,
            temporaries_removed=tuple(removed),
            watermarks=len(marks),
            superseded_removed=tuple(superseded),
            compacted=compacted,
        )

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
        chosen = [
            (station, day)
            for station, day in self.partitions(wanted)
            if (first is None or day >= first.date()) and (last is None or day <= (last - pd.Timedelta(1)).date())
        ]
        columns = list(READING_COLUMNS) + (["ingested_at"] if with_ingested_at else [])
        if not chosen or (tags is not None and not len(tags)):
            frame = empty_readings()
            if with_ingested_at:
                frame["ingested_at"] = pd.Series([], dtype="datetime64[us, UTC]")
            return frame
        low = int(first.value) if first is not None else np.iinfo(np.int64).min
        high = int(last.value) - 1 if last is not None else np.iinfo(np.int64).max
        ts_range = (low, high) if first is not None or last is not None else None
        tag_set = pa.array(sorted(set(tags)), type=pa.string()) if tags is not None else None
        tag_range = (tag_set[0].as_py(), tag_set[-1].as_py()) if tag_set is not None else None
        schema = pa.schema([READINGS_SCHEMA.field(c) for c in columns])

        def read_one(partition: tuple[str, date]) -> pa.Table:
            station, day = partition
            with _snapshot(self.partition_folder(station, day)) as snap:
                parts = [
                    _read_rows(o, columns, ts_range=ts_range, tag_range=tag_range, tags=tag_set) for o in snap.live
                ]
            parts = [t for t in parts if t.num_rows]
            if len(parts) > 1:
                return _latest(parts, (day - _EPOCH).days * _DAY_NS)
            return parts[0] if parts else schema.empty_table()

        if self.max_workers > 1 and len(chosen) > 1:
            with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
                tables = list(pool.map(read_one, chosen))
        else:
            tables = [read_one(partition) for partition in chosen]
        # Partitions come in (station, day) order, each sorted by (tag, ts); a tag lives in one
        # station, so a stable sort by tag alone orders the rows by (tag, ts).
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
        with _space_for(f"quarantine file {path}"):
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
