"""The ingest memory benchmark: its streamed wide CSV file, its verdict, and one tiny end-to-end run."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from benchmarks import ingest_memory as im

RANGES = [("PS01.P1.FLOW", 0.0, 2000.0), ("PS01.P1.SUCT_PRESS", -1.0, 15.0), ("LINE01.SITE.AMB_TEMP", -40.0, 60.0)]
START = pd.Timestamp("2026-10-01T00:00:00Z")


def test_wide_file_has_the_size_the_tags_and_values_in_range(tmp_path, monkeypatch):
    monkeypatch.setattr(im, "BLOCK_ROWS", 7)  # many blocks: the size is reached across block edges
    data = im.write_wide_csv(tmp_path / "wide.csv", 20_000, RANGES, START)
    frame = pd.read_csv(data.path)
    assert list(frame.columns) == ["ts"] + [tag for tag, _, _ in RANGES]
    assert data.rows == len(frame) and data.tags == 3 and data.readings == 3 * len(frame)
    assert data.bytes == data.path.stat().st_size
    last_row = len(data.path.read_text().splitlines()[-1]) + 1
    assert 20_000 <= data.bytes < 20_000 + last_row
    ts = pd.to_datetime(frame["ts"], utc=True)
    assert ts.iloc[0] == START and (ts.diff().dropna() == pd.Timedelta(seconds=1)).all()
    for tag, low, high in RANGES:
        assert frame[tag].between(low, high).all(), tag
        assert frame[tag].nunique() > 10


def test_row_bodies_are_reproducible():
    assert im.row_bodies(RANGES, 5, seed=3) == im.row_bodies(RANGES, 5, seed=3)
    assert len(im.row_bodies(RANGES, 5, seed=3)[0].split(",")) == 3


@pytest.mark.parametrize(
    ("peak", "stored", "exit_code", "passed"),
    [(1.0, 30, 0, True), (1.0, 30, 1, True), (2.5, 30, 0, False), (1.0, 29, 0, False), (1.0, 30, 2, False)],
)
def test_verdict_needs_memory_under_the_limit_and_no_reading_lost(tmp_path, peak, stored, exit_code, passed):
    data = im.WideFile(tmp_path / "wide.csv", 1000, 10, 3, START)
    figures = {"exit_code": exit_code, "seconds": 2.0, "peak_rss_bytes": int(peak * im.GB), "peak_rss_mb": 1.0}
    report = im.summarise(data, {**figures, "stored": stored, "quarantined": 0}, limit_bytes=2 * im.GB)
    assert report["passed"] is passed
    assert report["readings_lost"] == 30 - stored and report["readings_per_s"] == 15.0
    assert "ingest_memory" in im.describe(report)


@pytest.mark.slow
def test_tiny_run_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("PUMPTWIN_HOME", str(tmp_path / "home"))
    assert im.main(["--size-gb", "0.0002", "--limit-gb", "100"]) == 0
    report = json.loads((tmp_path / "home" / "bench" / "ingest_memory.json").read_text())
    assert report["readings_lost"] == 0 and report["stored"] == report["readings_expected"] > 0
    assert report["peak_rss_mb"] > 0 and np.isfinite(report["readings_per_s"])
    assert list((tmp_path / "home" / "bench" / "tmp").iterdir()) == []  # the file and its home are gone
