"""Many writers at once: processes and threads writing overlapping partitions lose and double nothing."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pumptwin.features.ingest.rawstore import RawStore, StoreLockError

STATIONS = ("PS01", "PS02")
DAYS = ("2026-11-01T22:00:00Z", "2026-11-02T00:00:00Z")
N_WRITERS = 8
BATCHES = 4


def batch(writer: int, k: int) -> pd.DataFrame:
    """Rows of one writer's k-th batch: its own tag (distinct rows) plus a shared tag (overlapping rows).

    Every writer writes the same shared rows (same value), so they must end up stored once; its own
    rows cross midnight so each batch touches four partitions that every other writer touches too.
    """
    frames = []
    for station in STATIONS:
        stamps = pd.date_range(DAYS[0], periods=6, freq="50min", tz="UTC") + pd.Timedelta(minutes=k)
        own = f"{station}.P{writer + 1}.FLOW"
        frames.append(pd.DataFrame({"tag": own, "ts": stamps, "value": writer * 1000.0 + k, "quality": "good"}))
        frames.append(pd.DataFrame({"tag": f"{station}.SITE.SHARED", "ts": stamps, "value": 1.0, "quality": "good"}))
    return pd.concat(frames, ignore_index=True)


def expected_union() -> pd.DataFrame:
    everything = pd.concat([batch(w, k) for w in range(N_WRITERS) for k in range(BATCHES)], ignore_index=True)
    unique = everything.drop_duplicates(["tag", "ts"], keep="last")
    return unique.sort_values(["tag", "ts"], kind="stable").reset_index(drop=True)


def write_batches(root: str, writer: int, start: threading.Barrier | None = None) -> int:
    """One writer: its batches, one after the other, through its own store object."""
    store = RawStore(root, max_workers=2, lock_timeout_s=120.0)
    if start is not None:
        start.wait()
    return sum(store.write(batch(writer, k)).received for k in range(BATCHES))


def test_many_processes_lose_and_double_nothing(tmp_path: Path) -> None:
    root = str(tmp_path / "raw")
    context = multiprocessing.get_context("spawn")
    with context.Pool(N_WRITERS) as pool:
        received = pool.starmap(write_batches, [(root, w) for w in range(N_WRITERS)])
    assert sum(received) == N_WRITERS * BATCHES * 24
    store = RawStore(root)
    stored = store.read()
    pd.testing.assert_frame_equal(stored, expected_union())
    assert not stored.duplicated(["tag", "ts"]).any()
    latest = expected_union().groupby("tag")["ts"].max().to_dict()
    assert store.watermarks() == latest  # every writer's watermark advance survived
    assert not list(Path(root).rglob("*.tmp"))


def test_many_threads_lose_and_double_nothing(tmp_path: Path) -> None:
    root = str(tmp_path / "raw")
    start = threading.Barrier(N_WRITERS)
    threads = [threading.Thread(target=write_batches, args=(root, w, start)) for w in range(N_WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    pd.testing.assert_frame_equal(RawStore(root).read(), expected_union())


def hold_partition_lock(root: str, ready: multiprocessing.Event, release: multiprocessing.Event) -> None:
    """Hold one partition's lock until told to let go (another ingest in the middle of a write)."""
    store = RawStore(root)
    folder = store.partition_file("PS01", pd.Timestamp("2026-11-01").date()).parent
    with store._partition_lock(folder).held():
        ready.set()
        release.wait(60)


def test_a_held_lock_times_out_with_a_clear_error(tmp_path: Path) -> None:
    root = str(tmp_path / "raw")
    context = multiprocessing.get_context("spawn")
    ready, release = context.Event(), context.Event()
    holder = context.Process(target=hold_partition_lock, args=(root, ready, release))
    holder.start()
    try:
        assert ready.wait(60)
        store = RawStore(root, lock_timeout_s=0.2)
        with pytest.raises(StoreLockError, match=r"locked by another ingest .*station=PS01/date=2026-11-01"):
            store.write(batch(0, 0))
    finally:
        release.set()
        holder.join(60)
    # the partitions not locked were written; once the holder is gone, the same write completes
    retry = RawStore(root, lock_timeout_s=5.0)
    assert retry.write(batch(0, 0)).new == 6  # the partition that timed out
    pd.testing.assert_frame_equal(
        retry.read(), batch(0, 0).sort_values(["tag", "ts"], kind="stable").reset_index(drop=True)
    )


def test_a_killed_holder_leaves_no_lock(tmp_path: Path) -> None:
    root = str(tmp_path / "raw")
    context = multiprocessing.get_context("spawn")
    ready, release = context.Event(), context.Event()
    holder = context.Process(target=hold_partition_lock, args=(root, ready, release))
    holder.start()
    assert ready.wait(60)
    holder.kill()
    holder.join(60)
    assert RawStore(root, lock_timeout_s=5.0).write(batch(1, 0)).new == 24
    assert np.isin(["PS01.P2.FLOW"], RawStore(root).read()["tag"]).all()
