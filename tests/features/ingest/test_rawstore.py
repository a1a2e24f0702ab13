"""Raw store: partitioned by station and day, deduplicated, idempotent, atomic, with watermarks."""

from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pumptwin.features.ingest import rawstore
from pumptwin.features.ingest.rawstore import RawStore, RawStoreError


@pytest.fixture
def store(tmp_path):
    return RawStore(tmp_path / "raw", max_workers=2)


def stored_files(store):
    return sorted(
        p.relative_to(store.root).as_posix() for p in store.root.rglob("*") if p.is_file() and "lock" not in p.name
    )


def test_partitions_by_station_and_utc_day(store, make_readings):
    result = store.write(make_readings())
    assert result.new == 12 and result.duplicates == 0 and result.partitions_written == 4
    assert stored_files(store) == [
        "_watermarks.json",
        "station=PS01/date=2026-11-01/part-0.parquet",
        "station=PS01/date=2026-11-02/part-0.parquet",
        "station=PS02/date=2026-11-01/part-0.parquet",
        "station=PS02/date=2026-11-02/part-0.parquet",
    ]
    assert store.partitions(["PS02"]) == [("PS02", date(2026, 11, 1)), ("PS02", date(2026, 11, 2))]
    part = pq.read_table(store.partition_file("PS01", date(2026, 11, 1))).to_pandas()
    assert part["tag"].tolist() == ["PS01.P1.FLOW_M3S"] * 2 + ["PS01.P1.VIB_DE_RMS"] * 2  # sorted by (tag, ts)
    assert part["ts"].is_monotonic_increasing or part.groupby("tag")["ts"].is_monotonic_increasing.all()
    assert {k: (v.received, v.new) for k, v in result.per_station.items()} == {"PS01": (8, 8), "PS02": (4, 4)}


def test_read_returns_the_contract_sorted_by_tag_and_ts(store, make_readings):
    frame = make_readings()
    store.write(frame.sample(frac=1, random_state=3))  # arrival order does not matter
    back = store.read()
    expected = frame.sort_values(["tag", "ts"], kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(back, expected)


def test_read_filters_by_station_time_and_tag(store, make_readings):
    store.write(make_readings())
    ps01 = store.read("PS01")
    assert set(ps01["tag"]) == {"PS01.P1.FLOW_M3S", "PS01.P1.VIB_DE_RMS"}
    window = store.read(["PS01", "PS02"], "2026-11-01T23:59Z", "2026-11-02T00:01Z")
    assert sorted(window["ts"].unique()) == [pd.Timestamp("2026-11-01T23:59Z"), pd.Timestamp("2026-11-02T00:00Z")]
    assert len(store.read(tags=["PS02.P1.FLOW_M3S"], start="2026-11-02T00:00Z")) == 2
    assert store.read("PS09").empty
    with_arrival = store.read(with_ingested_at=True)
    assert str(with_arrival["ingested_at"].dtype) == "datetime64[us, UTC]"
    with pytest.raises(ValueError, match="timezone-aware"):
        store.read(start="2026-11-01")


def test_reingesting_a_window_is_idempotent_and_rewrites_nothing(store, make_readings):
    frame = make_readings()
    store.write(frame)
    files = {p: p.stat().st_mtime_ns for p in store.root.rglob("*.parquet")}
    again = store.write(frame)
    assert (again.new, again.updated, again.duplicates, again.partitions_written) == (0, 0, 12, 0)
    assert {p: p.stat().st_mtime_ns for p in store.root.rglob("*.parquet")} == files
    assert len(store.read()) == len(frame)
    # A window that overlaps: only the new rows are stored.
    later = make_readings(start="2026-11-02T00:00:00Z", periods=4, value0=2.0)
    overlap = store.write(later)
    assert (overlap.new, overlap.duplicates) == (6, 6)
    assert len(store.read()) == 18


def test_dedup_keeps_the_latest_arriving_row(store, make_readings):
    frame = make_readings(periods=2)
    first = frame.iloc[[0]].assign(value=-1.0)
    doubled = pd.concat([first, frame], ignore_index=True)  # the -1 row arrives first, then the real one
    result = store.write(doubled)
    assert result.new == len(frame) and result.duplicates == 1
    assert store.read()["value"].iloc[0] == frame["value"].iloc[0]
    corrected = frame.iloc[[0]].assign(value=99.0, quality="substituted")
    update = store.write(corrected)
    assert (update.new, update.updated, update.duplicates, update.partitions_written) == (0, 1, 0, 1)
    back = store.read()
    assert back.loc[0, "value"] == 99.0 and back.loc[0, "quality"] == "substituted"
    assert len(back) == len(frame)


def test_nan_values_compare_equal_for_idempotency(store, make_readings):
    frame = make_readings(periods=2).assign(value=np.nan, quality="bad")
    store.write(frame)
    assert store.write(frame).duplicates == len(frame)


def test_watermarks_and_incremental_filter(store, make_readings):
    assert store.watermarks() == {}
    store.write(make_readings(periods=3))  # 23:58, 23:59, 00:00
    marks = store.watermarks()
    assert marks == dict.fromkeys(make_readings()["tag"].unique(), pd.Timestamp("2026-11-02T00:00Z"))
    document = json.loads(store.watermark_file.read_text())
    assert document["watermarks"]["PS01.P1.FLOW_M3S"] == "2026-11-02T00:00:00+00:00"

    incoming = make_readings(periods=4, tags=("PS01.P1.FLOW_M3S", "PS09.P1.NEW_TAG"))
    newer = store.incremental(incoming)
    assert newer["ts"][newer["tag"] == "PS01.P1.FLOW_M3S"].tolist() == [pd.Timestamp("2026-11-02T00:01Z")]
    assert (newer["tag"] == "PS09.P1.NEW_TAG").sum() == 4  # no watermark: all pass
    late = store.incremental(incoming, overlap=timedelta(minutes=1))
    assert (late["tag"] == "PS01.P1.FLOW_M3S").sum() == 2
    # An older write does not move a watermark back.
    store.write(make_readings(start="2026-10-30T00:00Z", periods=1))
    assert store.watermark("PS01.P1.FLOW_M3S") == pd.Timestamp("2026-11-02T00:00Z")
    assert store.watermark("PS77.X.Y") is None


def test_writes_are_atomic(store, make_readings, monkeypatch):
    store.write(make_readings())
    before = store.read()

    def broken(table, where, **kwargs):
        with open(where, "wb") as handle:
            handle.write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(rawstore.pq, "write_table", broken)
    with pytest.raises(OSError, match="disk full"):
        store.write(make_readings(value0=1000.0))
    monkeypatch.undo()
    pd.testing.assert_frame_equal(store.read(), before)
    assert not [p for p in store.root.rglob("*") if p.name.endswith(".tmp")]


def test_off_contract_readings_are_refused(store, make_readings):
    with pytest.raises(RawStoreError, match="STATION.ASSET.MEASURE"):
        store.write(make_readings().assign(tag="no-station"))
    with pytest.raises(RawStoreError, match="quality"):
        store.write(make_readings().assign(quality="fine"))
    with pytest.raises(RawStoreError, match="lack column"):
        store.write(make_readings().drop(columns="value"))
    assert store.write(make_readings().iloc[:0]).received == 0


def test_unreadable_partition_is_an_error_not_an_overwrite(store, make_readings):
    store.write(make_readings())
    path = store.partition_file("PS01", date(2026, 11, 1))
    path.write_bytes(b"garbage")
    with pytest.raises(RawStoreError, match="cannot read stored partition"):
        store.write(make_readings())
    assert path.read_bytes() == b"garbage"


def test_both_sort_paths_agree(monkeypatch):
    rng = np.random.default_rng(1)
    group = rng.integers(0, 50, 1000)
    within = rng.integers(0, 10, 1000)
    one_key = rawstore._stable_order(group, 50, within)
    monkeypatch.setattr(rawstore, "_MAX_KEY_GROUPS", 0)
    two_sorts = rawstore._stable_order(group, 50, within)
    np.testing.assert_array_equal(one_key, two_sorts)
    np.testing.assert_array_equal(one_key, np.lexsort((within, group)))


def test_unsorted_and_sorted_input_store_the_same(tmp_path, make_readings):
    frame = make_readings(periods=50, freq="7min")
    a, b = RawStore(tmp_path / "a", max_workers=1), RawStore(tmp_path / "b")
    a.write(frame)
    b.write(frame.sample(frac=1, random_state=0))
    pd.testing.assert_frame_equal(a.read(), b.read())


def test_quarantine_one_file_per_run(store):
    rejected = pd.DataFrame(
        {
            "tag": ["PS01.P1.FLOW_M3S"],
            "ts": ["2026-11-01 00:00:00"],
            "value": ["abc"],
            "quality": ["good"],
            "source_file": ["a.csv"],
            "source_row": [3],
            "reason": ["value is not a number"],
        }
    )
    at = pd.Timestamp("2026-11-03T10:00Z")
    path = store.quarantine(rejected, run_id="run-1", ingested_at=at)
    assert path == store.root / "_quarantine" / "date=2026-11-03" / "run-run-1.parquet"
    store.quarantine(rejected, run_id="run-1", ingested_at=at)  # a retried run replaces its file
    store.quarantine(rejected.assign(reason="other"), run_id="run-2", ingested_at=at + pd.Timedelta("1D"))
    back = store.read_quarantine()
    assert back["run_id"].tolist() == ["run-1", "run-2"]
    assert back.loc[0, "value"] == "abc" and back.loc[0, "source_row"] == 3
    assert back.loc[0, "ingested_at"] == at
    assert len(store.read_quarantine(run_id="run-2")) == 1
    assert len(store.read_quarantine(start="2026-11-04T00:00Z")) == 1
    assert store.quarantine(rejected.iloc[:0], run_id="run-3") is None
    with pytest.raises(ValueError, match="run_id"):
        store.quarantine(rejected, run_id="../escape")
    assert store.read().empty  # quarantine is not read as readings
    assert RawStore(store.root / "elsewhere").read_quarantine().empty


NOW = pd.Timestamp("2026-11-02T00:00:00Z")


def test_readings_from_the_future_are_refused_and_move_no_watermark(tmp_path, make_readings):
    store = RawStore(tmp_path / "raw", max_future_s=300.0, clock=lambda: NOW)
    store.write(make_readings())  # 23:58 .. 00:01: within now + 300 s
    marks = store.watermarks()
    ahead = make_readings(tags=("PS01.P1.FLOW_M3S",), start="2099-01-01T00:00:00Z", periods=1)
    with pytest.raises(rawstore.FutureReadingsError, match=r"later than now \+ 300 s .*PS01.P1.FLOW_M3S.*2099"):
        store.write(pd.concat([make_readings(start="2026-11-02T00:02:00Z"), ahead]))
    assert store.watermarks() == marks and len(store.read()) == 12  # nothing of that write was stored
    assert isinstance(rawstore.FutureReadingsError("x"), RawStoreError)
    # the wall clock, not the batch, decides: later, the same readings are fine
    assert store.write(ahead, now=pd.Timestamp("2099-01-01T00:00:00Z")).new == 1


def test_a_corrupt_watermarks_file_names_the_file_and_the_repair(store, make_readings):
    store.write(make_readings())
    for text in ("{not json", '{"watermarks": ["a"]}', '{"watermarks": {"PS01.P1.FLOW_M3S": "yesterday"}}', "{}"):
        store.watermark_file.write_text(text)
        with pytest.raises(RawStoreError, match=r"_watermarks.json.*pumptwin store repair"):
            store.watermarks()
        with pytest.raises(RawStoreError, match="pumptwin store repair"):
            store.write(make_readings(value0=5.0))
    store.watermark_file.write_bytes(b"\xff\xfe")
    with pytest.raises(RawStoreError, match="_watermarks.json"):
        store.watermarks()
    found = store.check()
    assert not found.ok and "_watermarks.json" in found.watermarks_problem
    repaired = store.repair()
    assert repaired.watermarks == 3
    assert store.watermarks() == dict.fromkeys(make_readings()["tag"].unique(), pd.Timestamp("2026-11-02T00:01Z"))
    assert store.check().ok


def test_check_and_repair_move_an_unreadable_partition_aside(store, make_readings):
    store.write(make_readings())
    bad = store.partition_file("PS01", date(2026, 11, 1))
    bad.write_bytes(b"PAR1 garbage")
    with pytest.raises(RawStoreError, match=r"cannot read stored partition .*station=PS01/date=2026-11-01.*repair"):
        store.read()
    found = store.check()
    assert [path for path, _ in found.unreadable] == [bad] and found.partitions_checked == 4
    assert "pumptwin store repair" in found.to_markdown()
    repaired = store.repair()
    ((old, moved),) = repaired.moved
    assert old == bad and moved.is_relative_to(store.corrupt_root) and moved.read_bytes() == b"PAR1 garbage"
    assert "moved from" in moved.with_name(moved.name + ".txt").read_text()
    assert not bad.exists() and store.check().ok
    back = store.read()
    assert len(back) == 8  # the four readings of that partition are gone from the store, kept aside
    assert store.write(make_readings()).new == 4  # and come back when the source is ingested again
    with pytest.raises(RawStoreError, match="not a partition file"):
        store.quarantine_partition(store.root / "_watermarks.json", "no")


def test_rebuilt_watermarks_ignore_stored_readings_from_the_future(tmp_path, make_readings):
    lenient = RawStore(tmp_path / "raw", clock=lambda: pd.Timestamp("2100-01-01T00:00:00Z"))
    lenient.write(make_readings(tags=("PS01.P1.FLOW_M3S",), start="2099-01-01T00:00:00Z", periods=1))
    lenient.write(make_readings())
    strict = RawStore(tmp_path / "raw", clock=lambda: NOW)
    assert list(strict.check().future_watermarks) == ["PS01.P1.FLOW_M3S"]
    assert strict.window_start(["PS01.P1.FLOW_M3S"]) == NOW + pd.Timedelta(seconds=300)  # capped
    marks = strict.rebuild_watermarks()
    assert marks["PS01.P1.FLOW_M3S"] == pd.Timestamp("2026-11-02T00:01Z")
    assert strict.check().ok


def test_window_start_is_the_oldest_watermark_minus_the_overlap(store, make_readings):
    assert store.window_start(["PS01.P1.FLOW_M3S"]) is None
    store.write(make_readings(tags=("PS01.P1.FLOW_M3S",), periods=2))  # up to 23:59
    store.write(make_readings(tags=("PS01.P1.VIB_DE_RMS",), periods=4))  # up to 00:01
    both = ["PS01.P1.FLOW_M3S", "PS01.P1.VIB_DE_RMS"]
    assert store.window_start(both, overlap=timedelta(hours=1)) == pd.Timestamp("2026-11-01T22:59Z")
    assert store.window_start([*both, "PS09.P1.NEW"]) is None  # a tag never stored: read from the start
    assert store.window_start([]) is None


def test_temporary_files_of_a_killed_write_are_removed_by_the_next_one(store, make_readings):
    store.write(make_readings())
    folder = store.partition_file("PS01", date(2026, 11, 1)).parent
    left = [folder / ".part-0.parquet.dead.tmp", store.root / "._watermarks.json.dead.tmp"]
    for path in left:
        path.write_bytes(b"half")
    (folder / "keep.txt").write_text("not a temporary file")
    assert len(store.check().temporaries) == 2
    store.write(make_readings(start="2026-11-01T12:00:00Z", periods=1))  # touches that partition and the marks
    assert not any(path.exists() for path in left) and (folder / "keep.txt").exists()
    orphan = store.root / "station=PS07" / "date=2026-11-01" / ".part-0.parquet.dead.tmp"  # first write killed
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"half")
    assert store.repair().temporaries_removed == (orphan,)


def test_a_retried_run_replaces_its_quarantine_parts(store):
    rejected = pd.DataFrame({"tag": ["PS01.P1.FLOW_M3S"], "value": ["x"], "reason": ["value is not a number"]})
    at = pd.Timestamp("2026-11-03T10:00Z")
    first = [store.quarantine(rejected, run_id="r", ingested_at=at, part=k) for k in range(3)]
    assert [p.name for p in first] == ["run-r+00000.parquet", "run-r+00001.parquet", "run-r+00002.parquet"]
    store.quarantine(rejected, run_id="r-2", ingested_at=at, part=0)  # a run whose id extends "r"
    assert len(store.read_quarantine(run_id="r")) == 3 and len(store.read_quarantine()) == 4
    assert store.clear_quarantine("r") == 3
    store.quarantine(rejected, run_id="r", ingested_at=at + pd.Timedelta("1D"), part=0)
    assert len(store.read_quarantine(run_id="r")) == 1
    store.quarantine(rejected, run_id="r", ingested_at=at)  # one file for the run replaces its parts
    assert len(store.read_quarantine(run_id="r")) == 1 and len(store.read_quarantine(run_id="r-2")) == 1
    first[0].parent.joinpath("run-bad.parquet").write_bytes(b"garbage")
    with pytest.raises(RawStoreError, match="quarantine table"):
        store.read_quarantine()
