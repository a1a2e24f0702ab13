"""`pumptwin store check` and `pumptwin store repair`: damaged store files are named, set aside, rebuilt."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from unittest import mock

import pandas as pd
import pytest
from typer.testing import CliRunner

from pumptwin.features.ingest.rawstore import RawStore
from pumptwin.flows.cli import app
from pumptwin.flows.settings import Settings
from pumptwin.flows.store_steps import check_store, raw_store, repair_store


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    monkeypatch.setenv("PUMPTWIN_HOME", str(tmp_path / "home"))
    with mock.patch.dict(os.environ):
        yield tmp_path / "home"


def readings() -> pd.DataFrame:
    stamps = pd.date_range("2026-11-01T23:00:00Z", periods=4, freq="30min", tz="UTC")
    return pd.DataFrame({"tag": "PS01.P1.FLOW", "ts": stamps, "value": [1.0, 2.0, 3.0, 4.0], "quality": "good"})


def test_the_store_follows_the_ingest_settings(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUMPTWIN_INGEST_LOCK_TIMEOUT_S", "7")
    monkeypatch.setenv("PUMPTWIN_INGEST_MAX_FUTURE_S", "60")
    store = raw_store(Settings(home=home))
    assert (store.root, store.lock_timeout_s, store.max_future_s) == (home / "raw", 7.0, 60.0)


def test_check_and_repair_steps(home: Path) -> None:
    settings = Settings(home=home)
    RawStore(settings.raw_dir).write(readings())
    assert check_store(settings).ok
    RawStore(settings.raw_dir).partition_file("PS01", date(2026, 11, 2)).write_bytes(b"garbage")
    assert not check_store(settings).ok
    repaired = repair_store(settings)
    assert len(repaired.moved) == 1 and repaired.watermarks == 1
    assert RawStore(settings.raw_dir).watermark("PS01.P1.FLOW") == pd.Timestamp("2026-11-01T23:30:00Z")


def test_cli_store_check_and_repair(home: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["store", "check"]).exit_code == 0  # an empty store is fine
    store = RawStore(home / "raw")
    store.write(readings())
    store.watermark_file.write_text("{broken")
    part = store.partition_file("PS01", date(2026, 11, 1))
    part.write_bytes(b"PAR1 not parquet")

    failed = runner.invoke(app, ["ingest", "simulator:bearing_failure", "--end", "2024-03-01T00:10:00Z"])
    assert failed.exit_code == 2, failed.output
    assert "_watermarks.json" in failed.output and "pumptwin store repair" in failed.output
    assert "Traceback" not in failed.output and len(failed.output.strip().splitlines()) == 1

    check = runner.invoke(app, ["store", "check"])
    assert check.exit_code == 1, check.output
    assert "station=PS01/date=2026-11-01/part-0.parquet" in check.output and "_watermarks.json" in check.output

    repair = runner.invoke(app, ["store", "repair"])
    assert repair.exit_code == 0, repair.output
    assert "_corrupt" in repair.output and "rebuilt the watermarks of 1 tags" in repair.output
    assert runner.invoke(app, ["store", "check"]).exit_code == 0
    assert len(list((home / "raw" / "_corrupt").rglob("part-0.parquet.*"))) == 2  # the file and its note


def test_cli_store_compact_merges_appended_files(home: Path) -> None:
    store = RawStore(home / "raw")
    first = readings()
    store.write(first.iloc[::2])  # one reading on each day
    store.write(first.iloc[1::2])  # the other of each day: a second file in both partitions
    appended = [(s, d) for s, d in store.partitions() if len(store.partition_files(s, d)) > 1]
    assert appended, "the second write must append files"
    result = CliRunner().invoke(app, ["store", "compact"])
    assert result.exit_code == 0, result.output
    assert f"compacted {len(appended)} partitions" in result.output
    assert all(len(store.partition_files(s, d)) == 1 for s, d in store.partitions())
    assert len(store.read()) == len(first.drop_duplicates(["tag", "ts"]))
