"""Source -> validation hook -> store: every row accounted for, idempotent, incremental."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from pumptwin.features.ingest.contract import REASON_TS_NAIVE, REASON_VALUE
from pumptwin.features.ingest.pipeline import NO_STATION, IngestSummary, ingest_frame, ingest_path, ingest_source
from pumptwin.features.ingest.rawstore import RawStore
from pumptwin.features.ingest.sources import SourceResult, from_frame


@pytest.fixture
def store(tmp_path):
    return RawStore(tmp_path / "raw")


def accounted(summary: IngestSummary) -> bool:
    return summary.rows_in == summary.stored + summary.duplicates + summary.skipped_before_watermark + summary.rejected


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


def test_incremental_runs_skip_rows_behind_the_watermark(store, make_readings):
    ingest_frame(make_readings(periods=3), store)
    overlapping = make_readings(periods=5)  # two new minutes per tag
    summary = ingest_frame(overlapping, store, incremental=True)
    assert (summary.skipped_before_watermark, summary.stored, summary.duplicates) == (9, 6, 0)
    assert accounted(summary)
    late = ingest_frame(overlapping, store, incremental=True, overlap=timedelta(minutes=4))  # watermark 00:02 - 4 min
    assert (late.skipped_before_watermark, late.duplicates) == (3, 12)
    assert len(store.read()) == 15


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
