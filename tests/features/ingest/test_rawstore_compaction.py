"""Raw store files per partition: appends hold only new rows, compaction merges them, kills leave no doubles."""

from __future__ import annotations

import shutil
import threading
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pumptwin.features.ingest import rawstore
from pumptwin.features.ingest.pipeline import ingest_chunks, ingest_frame
from pumptwin.features.ingest.rawstore import RawStore, RawStoreError
from pumptwin.features.ingest.sources import from_frame
from pumptwin.flows.settings import Settings
from pumptwin.flows.store_steps import compact_store

DAY = date(2026, 11, 1)
TAGS = ("PS01.P1.FLOW_M3S", "PS01.P1.SPEED", "PS01.P2.FLOW_M3S")


def minutes(start: str, periods: int, value0: float = 0.0, tags: tuple[str, ...] = TAGS) -> pd.DataFrame:
    """Readings of `tags` once a minute from `start`, values counting up from `value0`."""
    stamps = pd.date_range(start, periods=periods, freq="1min", tz="UTC")
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "tag": tag,
                    "ts": stamps,
                    "value": value0 + 1000.0 * k + np.arange(periods, dtype=float),
                    "quality": "good",
                }
            )
            for k, tag in enumerate(tags)
        ],
        ignore_index=True,
    )


def expected(*frames: pd.DataFrame) -> pd.DataFrame:
    """What the store must return after writing `frames` in order: the last row of each (tag, ts)."""
    union = pd.concat(frames, ignore_index=True).drop_duplicates(["tag", "ts"], keep="last")
    return union.sort_values(["tag", "ts"], kind="stable").reset_index(drop=True)


def names(store: RawStore, day: date = DAY) -> list[str]:
    return sorted(p.name for p in store.partition_folder("PS01", day).glob("*.parquet"))


@pytest.fixture
def store(tmp_path: Path) -> RawStore:
    return RawStore(tmp_path / "raw", max_workers=1)


def three_hours(store: RawStore) -> list[pd.DataFrame]:
    frames = [minutes(f"2026-11-01T0{h}:00Z", 60, value0=h) for h in range(3)]
    for frame in frames:
        store.write(frame)
    return frames


def test_each_write_adds_a_file_of_its_new_rows_only(store: RawStore) -> None:
    frames = three_hours(store)
    assert names(store) == ["part-0.parquet", "part-1.parquet", "part-2.parquet"]
    assert [pq.ParquetFile(p).metadata.num_rows for p in store.partition_files("PS01", DAY)] == [180, 180, 180]
    overlap = minutes("2026-11-01T02:30Z", 60, value0=2.0 + 30)  # half stored identically, half new
    result = store.write(overlap)
    assert (result.new, result.updated, result.duplicates) == (90, 0, 90)
    assert pq.ParquetFile(store.partition_files("PS01", DAY)[-1]).metadata.num_rows == 90
    pd.testing.assert_frame_equal(store.read(), expected(*frames, overlap))
    assert store.partitions() == [("PS01", DAY)]


def test_the_latest_arrival_wins_across_files_and_after_compaction(store: RawStore) -> None:
    frames = three_hours(store)
    corrected = frames[0].iloc[[0, 1]].assign(value=[-5.0, np.nan], quality="substituted")
    update = store.write(corrected)
    assert (update.new, update.updated, update.duplicates, update.partitions_written) == (0, 2, 0, 1)
    want = expected(*frames, corrected)
    pd.testing.assert_frame_equal(store.read(), want)
    assert store.write(corrected).partitions_written == 0  # the stored state already says so
    back_again = frames[0].iloc[[0]]  # the original value arrives once more: it wins again
    assert store.write(back_again).updated == 1
    want = expected(*frames, corrected, back_again)
    pd.testing.assert_frame_equal(store.read(), want)
    assert store.compact() == 1
    assert names(store) == ["part-0.parquet"]
    pd.testing.assert_frame_equal(store.read(), want)
    pd.testing.assert_frame_equal(store.read(with_ingested_at=True)[want.columns], want)
    assert store.write(pd.concat([*frames, corrected, back_again])).stored == 0  # idempotent after compaction
    assert names(store) == ["part-0.parquet"]


def test_compaction_is_sorted_unique_and_bounded_by_tag_groups(store: RawStore, monkeypatch) -> None:
    monkeypatch.setattr(rawstore, "COMPACT_GROUP_ROWS", 100)  # about one tag of one hour per group
    monkeypatch.setattr(rawstore, "ROW_GROUP_ROWS", 50)
    frames = three_hours(store)
    merged_groups = []
    real = rawstore._latest
    monkeypatch.setattr(
        rawstore, "_latest", lambda tables, day: merged_groups.append(real(tables, day)) or merged_groups[-1]
    )
    assert store.compact([("PS01", DAY), ("PS01", DAY)]) == 1
    assert len(merged_groups) == len(TAGS) and all(t.num_rows == 180 for t in merged_groups)
    compacted = pq.read_table(store.partition_file("PS01", DAY)).to_pandas()
    assert compacted[["tag", "ts"]].equals(compacted.sort_values(["tag", "ts"])[["tag", "ts"]])
    assert not compacted.duplicated(["tag", "ts"]).any() and len(compacted) == 540
    assert pq.ParquetFile(store.partition_file("PS01", DAY)).metadata.num_row_groups >= 540 // 50
    pd.testing.assert_frame_equal(store.read(), expected(*frames))
    assert store.compact() == 0  # one compacted file: nothing to do


def test_a_write_that_leaves_too_many_files_compacts_the_partition(tmp_path: Path) -> None:
    store = RawStore(tmp_path / "raw", max_workers=1, compact_files=3)
    frames = [minutes(f"2026-11-01T0{h}:00Z", 10) for h in range(4)]
    for frame in frames[:3]:
        store.write(frame)
    assert len(names(store)) == 3
    store.write(frames[3])
    assert names(store) == ["part-0.parquet"]
    store.write(minutes("2026-11-01T05:00Z", 10))
    assert names(store) == ["part-0.parquet", "part-4.parquet"]  # numbers go on past the merged ones (0 to 3)
    with pytest.raises(ValueError, match="compact_files"):
        RawStore(tmp_path / "x", compact_files=0)


def test_an_append_reads_only_row_groups_in_its_range(store: RawStore, monkeypatch) -> None:
    monkeypatch.setattr(rawstore, "ROW_GROUP_ROWS", 30)
    store.write(minutes("2026-11-01T00:00Z", 120))
    read_groups: list[list[int]] = []
    real = rawstore._row_groups
    monkeypatch.setattr(
        rawstore, "_row_groups", lambda file, ts, tags: read_groups.append(real(file, ts, tags)) or read_groups[-1]
    )
    store.write(minutes("2026-11-01T05:00Z", 10))  # later than everything stored
    assert read_groups == [[]]
    read_groups.clear()
    store.write(minutes("2026-11-01T00:10Z", 5, value0=10.0, tags=TAGS[:1]))  # one tag, ten minutes in
    assert read_groups[0] == [0]  # of 12 row groups (3 tags x 120 rows / 30), one holds them


def test_a_killed_compaction_never_counts_a_row_twice(store: RawStore, tmp_path: Path) -> None:
    frames = three_hours(store)
    want = expected(*frames)
    folder = store.partition_folder("PS01", DAY)
    kept = tmp_path / "kept"
    kept.mkdir()
    for path in store.partition_files("PS01", DAY)[1:]:
        shutil.copy2(path, kept / path.name)
    store.compact()
    for path in kept.iterdir():  # as if killed after the rename, before deleting what it merged
        shutil.copy2(path, folder / path.name)
    (folder / ".part-0.parquet.dead.tmp").write_bytes(b"half")  # and a compaction killed before its rename
    pd.testing.assert_frame_equal(store.read(), want)
    assert store.partition_files("PS01", DAY) == [folder / "part-0.parquet"]
    found = store.check()
    assert found.ok and sorted(p.name for p in found.superseded) == ["part-1.parquet", "part-2.parquet"]
    assert "killed compaction" in found.to_markdown()
    later = minutes("2026-11-01T03:00Z", 5)
    assert store.write(later).new == 15
    assert names(store) == ["part-0.parquet", "part-3.parquet"]  # the superseded files are gone
    assert not list(folder.glob(".*.tmp"))
    pd.testing.assert_frame_equal(store.read(), expected(*frames, later))
    assert store.rebuild_watermarks()["PS01.P1.FLOW_M3S"] == pd.Timestamp("2026-11-01T03:04Z")


def test_repair_removes_superseded_files_moves_unreadable_ones_and_compacts(store: RawStore) -> None:
    frames = three_hours(store)
    folder = store.partition_folder("PS01", DAY)
    (folder / "part-2.parquet").write_bytes(b"PAR1 garbage")
    with pytest.raises(RawStoreError, match=r"cannot read stored partition .*part-2.parquet"):
        store.read()
    with pytest.raises(RawStoreError, match=r"part-2.parquet"):
        store.write(minutes("2026-11-01T04:00Z", 1))  # an unreadable file stops a write of its partition
    found = store.check()
    assert [p.name for p, _ in found.unreadable] == ["part-2.parquet"] and not found.ok
    repaired = store.repair()
    assert [old.name for old, _ in repaired.moved] == ["part-2.parquet"] and repaired.compacted == 1
    assert "compacted 1 partitions" in repaired.to_markdown()
    assert names(store) == ["part-0.parquet"] and store.check().ok
    pd.testing.assert_frame_equal(store.read(), expected(*frames[:2]))
    assert store.write(frames[2]).new == 180  # the rows set aside come back when ingested again


def test_readers_see_one_consistent_partition_while_it_is_compacted(tmp_path: Path) -> None:
    writer = RawStore(tmp_path / "raw", max_workers=1, compact_files=1000)
    frames = [minutes(f"2026-11-01T{h:02d}:00Z", 30, value0=h) for h in range(12)]
    want = expected(*frames)
    errors: list[BaseException] = []

    def compact_repeatedly() -> None:
        try:
            for frame in frames:
                writer.write(frame)
                writer.write(frame.assign(value=frame["value"] + 0.5))  # a correction: an update file
                writer.write(frame)  # and back: the latest arrival is the original again
                writer.compact()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    thread = threading.Thread(target=compact_repeatedly)
    thread.start()
    reader = RawStore(tmp_path / "raw", max_workers=1)
    allowed = set(want["value"]) | set(want["value"] + 0.5)
    seen = 0
    while thread.is_alive():
        back = reader.read()
        assert not back.duplicated(["tag", "ts"]).any()  # never a file counted twice
        assert len(back) >= seen  # never a row missing that was there before
        assert back["value"].isin(allowed).all()
        seen = len(back)
    thread.join()
    assert not errors
    pd.testing.assert_frame_equal(reader.read(), want)


def test_an_ingest_run_compacts_the_partitions_it_wrote(store: RawStore) -> None:
    frame = minutes("2026-11-01T23:00Z", 120)  # crosses midnight: two partitions
    summary = ingest_frame(frame, store, source_name="memory", run_id="r1")
    assert summary.partitions_compacted == 0  # one file each already
    for k in range(3):
        ingest_frame(minutes(f"2026-11-02T0{k + 1}:00Z", 10), store, run_id=f"r{k + 2}")
    assert len(names(store, date(2026, 11, 2))) == 1  # each run compacts what it wrote
    assert store.partitions() == [("PS01", DAY), ("PS01", date(2026, 11, 2))]
    chunks = [minutes(f"2026-11-02T0{k + 5}:00Z", 10) for k in range(3)]
    summary = ingest_chunks([from_frame(c, "memory") for c in chunks], store, source="memory", run_id="r9")
    assert (summary.chunks, summary.partitions_written, summary.partitions_compacted) == (3, 3, 1)
    assert summary.to_dict()["partitions_compacted"] == 1
    assert names(store, date(2026, 11, 2)) == ["part-0.parquet"]
    again = ingest_chunks([from_frame(c, "memory") for c in chunks], store, source="memory", run_id="r10")
    assert (again.stored, again.duplicates, again.partitions_compacted) == (0, 90, 0)
    pd.testing.assert_frame_equal(store.read(start="2026-11-02T05:00Z"), expected(*chunks))


def test_the_compact_step_merges_every_partition(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PUMPTWIN_HOME", str(tmp_path / "home"))
    settings = Settings(home=tmp_path / "home")
    store = RawStore(settings.raw_dir, max_workers=1)
    frames = three_hours(store)
    assert compact_store(settings) == 1 and compact_store(settings) == 0
    assert names(store) == ["part-0.parquet"]
    pd.testing.assert_frame_equal(store.read(), expected(*frames))
