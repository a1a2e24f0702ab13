"""The ingest step pushes what it stored to the raw store's replica; a failed push loses nothing."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any
from unittest import mock

import pandas as pd
import pytest
from moto import mock_aws

from pumptwin.features.ingest import objectstore
from pumptwin.features.ingest.objectstore import PENDING_FILE, pending_partitions, pull
from pumptwin.features.ingest.rawstore import RawStore
from pumptwin.flows.ingest_steps import read_source, store_source
from pumptwin.flows.settings import Settings, StorageSettings

NOW = pd.Timestamp("2026-11-03T00:00:00Z")
BUCKET = "replica"
URL = f"s3://{BUCKET}/raw"
FIRST = """tag,ts,value,quality
PS01.P1.VIB_DE_RMS,2026-11-01T00:00:00Z,2.1,good
PS01.P1.VIB_DE_RMS,2026-11-01T00:01:00Z,2.2,good
PS02.P2.DISCH_PRESS,2026-11-01T00:00:00Z,27.5,good
"""
SECOND = """tag,ts,value,quality
PS01.P1.VIB_DE_RMS,2026-11-02T00:00:00Z,2.3,good
"""


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    monkeypatch.setenv("PUMPTWIN_HOME", str(tmp_path / "home"))
    for name, value in {
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock.patch.dict(os.environ), mock_aws():
        yield tmp_path / "home"


def settings_for(home: Path) -> Settings:
    return Settings(home=home, storage=StorageSettings(raw_url=URL))


def ingest(text: str, tmp_path: Path, settings: Settings, name: str) -> Any:  # noqa: ANN401
    (tmp_path / name).write_text(text)
    return store_source(read_source(str(tmp_path / name), settings), settings, now=NOW)


def test_a_failed_push_keeps_the_rows_and_the_next_run_catches_up(home: Path, tmp_path: Path) -> None:
    settings = settings_for(home)
    first = ingest(FIRST, tmp_path, settings, "first.csv")  # the bucket does not exist yet
    assert first.summary.stored == 3 and first.replica is not None and first.replica.behind
    assert "NoSuchBucket" in (first.replica.error or "") and "replica" in first.to_markdown()
    assert len(RawStore(settings.raw_dir).read()) == 3
    assert pending_partitions(settings.raw_dir) == [("PS01", date(2026, 11, 1)), ("PS02", date(2026, 11, 1))]

    objectstore.client(None).create_bucket(Bucket=BUCKET)
    second = ingest(SECOND, tmp_path, settings, "second.csv")
    assert second.replica is not None and not second.replica.behind and second.replica.push is not None
    assert second.replica.push.partitions == (
        ("PS01", date(2026, 11, 1)),
        ("PS01", date(2026, 11, 2)),
        ("PS02", date(2026, 11, 1)),
    )
    assert not (settings.raw_dir / PENDING_FILE).exists()
    copy = RawStore(tmp_path / "copy")
    pull(URL, copy.root)
    pd.testing.assert_frame_equal(copy.read(), RawStore(settings.raw_dir).read())
    assert len(copy.read()) == 4

    again = ingest(SECOND, tmp_path, settings, "again.csv")  # nothing new: nothing to push
    assert again.replica is not None and again.replica.push is not None
    assert again.replica.push.partitions == () and again.replica.push.uploaded == 0


def test_a_run_that_dies_midway_leaves_its_partitions_pending(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(home)
    objectstore.client(None).create_bucket(Bucket=BUCKET)
    calls = {"n": 0}
    real_write = RawStore.write

    def write_then_fail(self: RawStore, readings: pd.DataFrame, **kwargs: Any) -> Any:  # noqa: ANN401
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError(28, "No space left on device")
        return real_write(self, readings, **kwargs)

    monkeypatch.setattr(RawStore, "write", write_then_fail)
    (tmp_path / "two.csv").write_text(FIRST + SECOND.split("\n", 1)[1])
    source = read_source(str(tmp_path / "two.csv"), settings)
    small = type(source)(source.path, chunk_readings=3)
    with pytest.raises(OSError, match="No space"):
        store_source(small, settings, now=NOW)
    assert pending_partitions(settings.raw_dir) == [("PS01", date(2026, 11, 1)), ("PS02", date(2026, 11, 1))]
    monkeypatch.setattr(RawStore, "write", real_write)
    done = store_source(small, settings, now=NOW)
    assert done.replica is not None and not done.replica.behind and pending_partitions(settings.raw_dir) == []
    copy = RawStore(tmp_path / "copy")
    pull(URL, copy.root)
    pd.testing.assert_frame_equal(copy.read(), RawStore(settings.raw_dir).read())
