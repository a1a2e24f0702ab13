"""Source -> validation hook -> store: every row accounted for, idempotent, incremental."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

from pumptwin.features.ingest import pipeline, sources
from pumptwin.features.ingest.contract import REASON_TAG_UNKNOWN, REASON_TS_FUTURE, REASON_TS_NAIVE, REASON_VALUE
from pumptwin.features.ingest.pipeline import (
    NO_STATION,
    IngestSummary,
    ingest_chunks,
    ingest_frame,
    ingest_path,
    ingest_source,
)
from pumptwin.features.ingest.rawstore import RawStore
from pumptwin.features.ingest.sources import SourceProblem, SourceResult, from_frame


@pytest.fixture
def store(tmp_path):
    return RawStore(tmp_path / "raw")


def accounted(summary: IngestSummary) -> bool:
    assert summary.accounted == (summary.rows_in == summary.stored + summary.duplicates + summary.rejected)
    return summary.accounted


def test_ingest_frame_summary_and_idempotency(store, make_readings):
    frame = make_readings()
    first = ingest_frame(frame, store, source_name="simulator", run_id="r1")
    assert (first.rows_in, first.stored, first.new, first.duplicates, first.rejected) == (12, 12, 12, 0, 0)
    assert first.clean and accounted(first) and first.quarantine_file is None
    assert {k: (v.received, v.stored) for k, v in first.per_station.items()} == {"PS01": (8, 8), "PS02": (4, 4)}
    again = ingest_frame(frame, store, source_name="simulator", run_id="r2")
    assert (again.stored, again.duplicates, again.partitions_written) == (0, 12, 0)
    assert len(store.read()) == len(frame)
    assert accounted(again)


def test_bad_rows_are_quarantined_with_reason_and_nothing_is_lost(store, make_readings):
    frame = make_readings().astype({"ts": object, "value": object})
    frame.loc[0, "value"] = "I/O Timeout"
    frame.loc[1, "ts"] = "2026-11-01 23:59:00"
    frame.loc[2, "tag"] = "garbage"
    summary = ingest_frame(frame, store, source_name="sim", run_id="bad-1")
    assert summary.rejected_by_reason == {REASON_VALUE: 1, REASON_TS_NAIVE: 1, "tag not named STATION.ASSET.MEASURE": 1}
    assert summary.stored == 9 and accounted(summary) and not summary.clean
    assert summary.per_station["PS01"].quarantined == 2 and summary.per_station[NO_STATION].quarantined == 1
    quarantine = store.read_quarantine(run_id="bad-1")
    assert len(quarantine) == 3 and set(quarantine["source_file"]) == {"sim"}
    assert quarantine.loc[quarantine["reason"] == REASON_VALUE, "value"].item() == "I/O Timeout"


def test_validation_hook_quarantines_rows_and_they_keep_their_file(tmp_path, store, make_readings):
    folder = tmp_path / "in"
    folder.mkdir()
    make_readings(tags=("PS01.P1.FLOW_M3S",)).to_parquet(folder / "a.parquet")
    make_readings(tags=("PS02.P1.FLOW_M3S",), value0=1000.0).to_parquet(folder / "b.parquet")

    def validate(readings):
        too_high = readings["value"] > 1001.5
        bad = readings[too_high].assign(reason="value above range (expect_column_values_to_be_between)")
        return readings[~too_high], bad

    summary = ingest_path(folder, store, validate=validate, run_id="v1")
    assert summary.rejected_by_reason == {"value above range (expect_column_values_to_be_between)": 2}
    assert summary.stored == 6 and accounted(summary)
    quarantine = store.read_quarantine(run_id="v1")
    assert set(quarantine["source_file"]) == {str(folder / "b.parquet")}
    assert quarantine["ts"].tolist() == ["2026-11-02T00:00:00+00:00", "2026-11-02T00:01:00+00:00"]
    assert summary.per_station["PS02"].quarantined == 2


def test_a_validator_that_loses_rows_is_an_error(store, make_readings):
    def lossy(readings):
        return readings.iloc[1:], readings.iloc[:0].assign(reason="")

    with pytest.raises(ValueError, match="lost 1 rows"):
        ingest_frame(make_readings(), store, validate=lossy)

    def no_reason(readings):
        return readings.iloc[1:], readings.iloc[:1]

    with pytest.raises(ValueError, match="reason"):
        ingest_frame(make_readings(), store, validate=no_reason)

    def twice(readings):
        return readings.iloc[2:], pd.concat([readings.iloc[:1], readings.iloc[:1]]).assign(reason="r")

    with pytest.raises(ValueError, match="twice"):
        ingest_frame(make_readings(), store, validate=twice)


def test_late_rows_behind_the_watermark_are_stored_not_skipped(store, make_readings):
    ingest_frame(make_readings(start="2026-11-02T00:00:00Z", periods=3), store)  # watermark 00:02
    late = make_readings(start="2026-11-01T12:00:00Z", periods=5)  # a day-old file arrives
    summary = ingest_frame(late, store)
    assert (summary.stored, summary.duplicates, summary.behind_watermark) == (15, 0, 15)
    assert accounted(summary) and summary.clean
    assert len(store.read()) == 24
    again = ingest_frame(late, store)  # deduplicated, still not dropped
    assert (again.stored, again.duplicates, again.behind_watermark) == (0, 15, 15)
    assert accounted(again)
    assert store.watermark("PS01.P1.FLOW_M3S") == pd.Timestamp("2026-11-02T00:02Z")  # never moves back
    assert "skipped_before_watermark" not in summary.to_dict() and summary.to_dict()["behind_watermark"] == 15


def test_future_readings_are_quarantined_against_the_wall_clock(store, make_readings):
    now = pd.Timestamp("2026-11-02T00:00:00Z")
    frame = make_readings(start="2026-11-01T23:58:00Z", periods=4)  # 23:58 .. 00:01
    clock_off = make_readings(tags=("PS01.P1.FLOW_M3S",), start="2099-01-01T00:00:00Z", periods=2)
    summary = ingest_frame(pd.concat([frame, clock_off], ignore_index=True), store, run_id="f1", now=now)
    # 00:01 lies within now + 300 s, 2099 does not; the batch's newest reading does not define "now"
    assert summary.rejected_by_reason == {REASON_TS_FUTURE: 2}
    assert (summary.stored, summary.rejected) == (12, 2) and accounted(summary) and not summary.clean
    assert store.watermark("PS01.P1.FLOW_M3S") == pd.Timestamp("2026-11-02T00:01Z")
    assert store.read()["ts"].max() == pd.Timestamp("2026-11-02T00:01Z")
    assert store.read_quarantine(run_id="f1")["ts"].str.startswith("2099").all()
    # a later real reading is still stored by the next run
    later = ingest_frame(make_readings(start="2026-11-02T00:05:00Z", periods=1), store, now=now + pd.Timedelta("10min"))
    assert later.stored == 3 and store.watermark("PS01.P1.FLOW_M3S") == pd.Timestamp("2026-11-02T00:05Z")


def test_tolerance_follows_the_store(tmp_path, make_readings):
    now = pd.Timestamp("2026-11-02T00:00:00Z")
    strict = RawStore(tmp_path / "strict", max_future_s=0.0)
    summary = ingest_frame(make_readings(start="2026-11-01T23:59:00Z", periods=3), strict, now=now)
    assert summary.rejected_by_reason == {REASON_TS_FUTURE: 3} and summary.stored == 6  # 00:01 is past now + 0


def test_unknown_tags_are_quarantined_and_counted_by_tag(store, make_readings):
    frame = make_readings(tags=("PS01.P1.FLOW_M3S", "PS01.P9.FLOW_M3S", "PS77.P1.FLOW_M3S"))
    summary = ingest_frame(frame, store, run_id="u1", known_tags={"PS01.P1.FLOW_M3S"})
    assert summary.unknown_tags == {"PS01.P9.FLOW_M3S": 4, "PS77.P1.FLOW_M3S": 4}
    assert summary.rejected_by_reason == {REASON_TAG_UNKNOWN: 8}
    assert summary.stored == 4 and accounted(summary) and not summary.clean
    assert set(store.read()["tag"]) == {"PS01.P1.FLOW_M3S"}
    assert summary.to_dict()["unknown_tags"] == {"PS01.P9.FLOW_M3S": 4, "PS77.P1.FLOW_M3S": 4}
    assert "| PS77.P1.FLOW_M3S | 4 |" in summary.to_markdown()
    assert summary.per_station["PS77"].quarantined == 4
    quarantine = store.read_quarantine(run_id="u1")
    assert set(quarantine["reason"]) == {REASON_TAG_UNKNOWN}

    def by_function(tags):
        return [t for t in tags if t.startswith("PS01.")]

    second = ingest_frame(frame, store, known_tags=by_function)
    assert second.unknown_tags == {"PS77.P1.FLOW_M3S": 4} and accounted(second)


def test_chunked_path_is_stored_chunk_by_chunk(tmp_path, store, make_readings, monkeypatch):
    frames = [make_readings(start=f"2026-11-0{d}T00:00:00Z") for d in (1, 2, 3)]
    frames[1] = frames[1].astype({"value": object})
    frames[1].loc[0, "value"] = "Bad Input"
    seen = []

    def fake_iter_path(path, *, assume_tz=None, chunk_readings=1_000_000):
        seen.append(chunk_readings)
        row = 0
        for frame in frames:
            result = from_frame(frame, str(path))
            rejected = result.rejected.assign(source_row=result.rejected["source_row"] + row)
            row += len(frame)
            yield SourceResult(result.readings, rejected, result.problems, str(path))
        yield SourceResult(frames[0].iloc[:0], rejected.iloc[:0], (SourceProblem("x.csv", "empty", 0, True),), "x")

    monkeypatch.setattr(sources, "iter_path", fake_iter_path, raising=False)
    sizes = []

    def validate(readings):
        sizes.append(len(readings))
        return readings, readings.iloc[:0].assign(reason="")

    summary = ingest_path(tmp_path / "big.csv", store, validate=validate, run_id="c1", chunk_readings=12)
    assert seen == [12] and sizes == [12, 11, 12] and summary.chunks == 4
    assert (summary.rows_in, summary.stored, summary.rejected) == (36, 35, 1) and accounted(summary)
    assert [p.file for p in summary.refused_files] == ["x.csv"] and not summary.clean
    assert store.read_quarantine(run_id="c1")["source_row"].tolist() == [13]  # file-absolute row
    assert summary.per_station["PS01"].stored == 24 - 1


def test_a_retried_run_does_not_duplicate_its_quarantine_parts(store, make_readings, monkeypatch):
    bad = make_readings().astype({"value": object}).assign(value="x")
    chunks = [from_frame(bad, "a"), from_frame(bad, "b")]
    first = ingest_chunks(chunks, store, source="s", run_id="retry")
    assert len(first.quarantine_files) == 2 and len(store.read_quarantine(run_id="retry")) == 24
    again = ingest_chunks(chunks[:1], store, source="s", run_id="retry")  # the retry reads less
    assert len(again.quarantine_files) == 1 and len(store.read_quarantine(run_id="retry")) == 12
    store.quarantine(bad.assign(reason="r"), run_id="retry-2", part=0)
    assert len(store.read_quarantine(run_id="retry")) == 12  # another run's prefix does not match


def test_ingest_path_reports_refused_files_and_quarantined_rows(tmp_path, store, make_readings):
    folder = tmp_path / "in"
    folder.mkdir()
    make_readings().to_parquet(folder / "good.parquet")
    (folder / "pipes.csv").write_text("tag|ts|value|quality\nPS01.P1.FLOW_M3S|2026-11-01T00:00Z|1|good\n")
    (folder / "text.csv").write_text("tag,ts,value,quality\nPS01.P1.FLOW_M3S,2026-11-01T00:00Z,abc,good\n")
    (folder / "cut.parquet").write_bytes((folder / "good.parquet").read_bytes()[:100])
    summary = ingest_path(folder, store, run_id="p1")
    assert summary.stored == 12 and summary.rejected == 1 and accounted(summary)
    assert sorted(p.file.rsplit("/", 1)[-1] for p in summary.refused_files) == ["cut.parquet", "pipes.csv"]
    assert not summary.clean
    report = summary.to_markdown()
    assert "pipes.csv" in report and "value is not a number" in report and "| PS01 |" in report
    document = json.loads(json.dumps(summary.to_dict()))
    assert document["rejected"] == 1 and document["per_station"]["PS02"]["stored"] == 4
    assert summary.rows_per_second > 0


def test_pi_source_into_the_store(store):
    items = from_frame(
        pd.DataFrame(
            {
                "tag": ["PS01.P1.FLOW_M3S"] * 3,
                "ts": ["2026-11-01T00:00:00Z", "2026-11-01T00:01:00Z", "2026-11-01T00:02:00Z"],
                "value": [1.0, np.nan, "Calibrating"],
                "quality": ["good", "bad", "good"],
            }
        ),
        "pi:server",
    )
    summary = ingest_source(items, store, run_id="pi-1")
    assert (summary.stored, summary.rejected, summary.source) == (2, 1, "pi:server")
    empty = ingest_source(SourceResult(items.readings.iloc[:0], items.rejected.iloc[:0]), store)
    assert empty.rows_in == 0 and empty.clean


@pytest.mark.slow
def test_ingest_throughput(tmp_path):
    n_tags, n_ts = 900, 2_000
    tags = np.array([f"PS{s:02d}.P{p}.M{m:02d}" for s in range(20) for p in range(3) for m in range(15)], dtype=object)
    stamps = pd.date_range("2026-11-01", periods=n_ts, freq="1min", tz="UTC")
    frame = pd.DataFrame(
        {
            "tag": np.repeat(tags, n_ts),
            "ts": np.tile(stamps, n_tags),
            "value": np.random.default_rng(0).normal(size=n_tags * n_ts),
            "quality": "good",
        }
    )
    started = time.perf_counter()
    summary = ingest_frame(frame, RawStore(tmp_path / "raw"))
    seconds = time.perf_counter() - started
    assert summary.stored == len(frame)
    assert len(frame) / seconds > 300_000, f"{len(frame) / seconds:,.0f} rows/s"


def test_each_chunk_hands_its_memory_back_before_the_next_is_read(store, make_readings, monkeypatch):
    events: list[str] = []
    monkeypatch.setattr(pipeline, "release_memory", lambda: events.append("release"))

    def chunks():
        for k in range(3):
            events.append(f"read {k}")
            yield from_frame(make_readings(start=f"2026-11-01T0{k}:00:00Z"), "memory")

    summary = ingest_chunks(chunks(), store, source="memory", run_id="r1")
    assert events == ["read 0", "release", "read 1", "release", "read 2", "release"]
    assert summary.chunks == 3 and summary.stored == 36
    monkeypatch.undo()
    pipeline.release_memory()  # a plain call: collects, releases Arrow's pool, trims malloc where it can
