"""The disk fills while the raw store writes: a clear error, no partial file counted, nothing lost or doubled."""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from pumptwin.features.ingest import rawstore
from pumptwin.features.ingest.rawstore import RawStore, RawStoreError, StoreFullError

from .conftest import readings

TAGS = ("PS01.P1.FLOW_M3S", "PS02.P1.FLOW_M3S", "PS03.P1.FLOW_M3S")
NOW = pd.Timestamp("2026-11-05T00:00:00Z")


def three_stations_two_days() -> pd.DataFrame:
    """Six partitions of ten rows: three stations over two UTC days, written day by day, station by station."""
    return readings(TAGS, start="2026-11-01T23:50:00Z", periods=20)


def disk_fills_after(writes: int, real: Callable[..., Any]) -> Callable[..., Any]:
    """A `pq.write_table` that writes `writes` files, then half a file and fails as a full disk does."""
    done = {"n": 0}

    def write_table(table: Any, where: Any, **kwargs: Any) -> None:  # noqa: ANN401
        done["n"] += 1
        if done["n"] > writes:
            Path(where).write_bytes(b"PAR1" + b"\0" * 100)  # what reached the disk before it filled
            raise OSError(errno.ENOSPC, "No space left on device", str(where))
        real(table, where, **kwargs)

    return write_table


def temporaries(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.tmp"))


def stored(store: RawStore) -> pd.DataFrame:
    return store.read().reset_index(drop=True)


def test_a_full_disk_mid_write_names_the_partition_and_a_retry_stores_each_row_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = three_stations_two_days()
    clean = RawStore(tmp_path / "clean", max_workers=1)
    clean.write(rows, now=NOW)

    store = RawStore(tmp_path / "raw", max_workers=1)
    monkeypatch.setattr(rawstore.pq, "write_table", disk_fills_after(2, pq.write_table))
    with pytest.raises(StoreFullError, match=r"no space left on the device.*station=PS03.date=2026-11-01") as caught:
        store.write(rows, now=NOW)
    assert isinstance(caught.value, RawStoreError)
    assert isinstance(caught.value.__cause__, OSError) and caught.value.__cause__.errno == errno.ENOSPC

    assert temporaries(store.root) == []  # the half-written file is gone
    assert store.check(now=NOW).ok and store.check(now=NOW).temporaries == ()
    kept = stored(store)
    assert sorted(kept["tag"].str[:4].unique()) == ["PS01", "PS02"]  # the partitions written before stay
    assert len(kept) == 20 and store.watermarks() == {}  # the watermarks stay behind: the window is read again

    monkeypatch.undo()  # space returns
    again = store.write(rows, now=NOW)
    assert (again.new, again.duplicates) == (40, 20)
    pd.testing.assert_frame_equal(stored(store), stored(clean))
    assert store.watermarks() == clean.watermarks()
    assert store.write(rows, now=NOW).stored == 0


def test_a_full_disk_during_compaction_keeps_the_files_it_merges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = RawStore(tmp_path / "raw", max_workers=1)
    first, second = readings(TAGS[:1], periods=3), readings(TAGS[:1], periods=6, value0=0.5)
    store.write(first, now=NOW)
    store.write(second, now=NOW)
    before = stored(store)

    class FullWriter(pq.ParquetWriter):
        def write_table(self, table: Any, row_group_size: int | None = None) -> None:  # noqa: ANN401
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(rawstore.pq, "ParquetWriter", FullWriter)
    with pytest.raises(
        StoreFullError,
        match=r"no space left on the device writing the compaction of partition .*station=PS01.date=2026-11-01",
    ):
        store.compact()
    assert temporaries(store.root) == []
    pd.testing.assert_frame_equal(stored(store), before)
    monkeypatch.undo()
    assert store.compact() == 2
    pd.testing.assert_frame_equal(stored(store), before)


def test_a_full_disk_writing_the_watermarks_leaves_them_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = RawStore(tmp_path / "raw", max_workers=1)
    rows = three_stations_two_days()

    def full(path: Any, text: str) -> None:  # noqa: ANN401
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(rawstore, "replace_text", full)
    with pytest.raises(StoreFullError, match=r"no space left on the device.*watermarks"):
        store.write(rows, now=NOW)
    assert store.watermarks() == {} and len(stored(store)) == len(rows)
    monkeypatch.undo()
    again = store.write(rows, now=NOW)
    assert again.stored == 0 and again.duplicates == len(rows)
    assert store.watermarks() == {tag: pd.Timestamp("2026-11-02T00:09:00Z") for tag in TAGS}


def test_other_write_errors_are_not_called_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = RawStore(tmp_path / "raw", max_workers=1)

    def denied(table: Any, where: Any, **kwargs: Any) -> None:  # noqa: ANN401
        raise PermissionError(errno.EACCES, "Permission denied", str(where))

    monkeypatch.setattr(rawstore.pq, "write_table", denied)
    with pytest.raises(PermissionError):
        store.write(three_stations_two_days(), now=NOW)
    assert temporaries(store.root) == []
