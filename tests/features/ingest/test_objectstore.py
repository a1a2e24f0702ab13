"""The raw store's replica on object storage: push, pull, compaction, failures and pending partitions.

S3 is moto's in-process mock (`mock_aws`); a failing endpoint is a closed port on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from pumptwin.features.ingest import objectstore
from pumptwin.features.ingest.objectstore import (
    PENDING_FILE,
    ObjectStoreError,
    ObjectStoreURLError,
    etag_of,
    parse_url,
    pending_partitions,
    pull,
    push,
    replicate,
)
from pumptwin.features.ingest.rawstore import RawStore
from pumptwin.twin.errors import PumptwinError

from .conftest import readings

BUCKET = "pumptwin-raw"
URL = f"s3://{BUCKET}/plant/raw"
DAY1, DAY2 = date(2026, 11, 1), date(2026, 11, 2)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An S3 client on moto's in-process mock, with the bucket created."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        s3 = objectstore.client(None)
        s3.create_bucket(Bucket=BUCKET)
        yield s3


def keys(s3: Any, prefix: str = "plant/raw/") -> list[str]:  # noqa: ANN401
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(item["Key"] for item in listed.get("Contents", []))


def tree(root: Path) -> dict[str, str]:
    """Every file below `root` with its SHA-256: what a failed push must leave unchanged."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def closed_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def store(tmp_path: Path) -> RawStore:
    """Two stations over two UTC days, one later write, and one quarantined row."""
    raw = RawStore(tmp_path / "raw", max_workers=1)
    raw.write(readings())
    raw.write(readings(start="2026-11-02T00:01:00Z", periods=5, value0=0.5))
    raw.quarantine(
        pd.DataFrame(
            {"tag": ["PS01.P1.FLOW_M3S"], "ts": ["x"], "value": ["1"], "reason": ["timestamp not understood"]}
        ),
        run_id="run1",
    )
    return raw


def test_parse_url() -> None:
    assert parse_url("s3://bucket/a/b/") == ("bucket", "a/b")
    assert parse_url("s3://my.bucket-1") == ("my.bucket-1", "")
    for bad in (
        "http://bucket/x",
        "s3://",
        "s3://Bucket/x",
        "s3://b/x",
        "s3://bucket/a//b",
        "s3://bucket/../x",
        "bucket",
    ):
        with pytest.raises(ObjectStoreURLError, match="raw-store URL") as caught:
            parse_url(bad)
        assert isinstance(caught.value, PumptwinError) and isinstance(caught.value, ValueError)


def test_push_then_pull_gives_the_same_rows(s3: Any, store: RawStore, tmp_path: Path) -> None:  # noqa: ANN401
    report = push(store.root, URL, s3=s3)
    assert report.partitions == (("PS01", DAY1), ("PS01", DAY2), ("PS02", DAY1), ("PS02", DAY2))
    assert report.uploaded == len(keys(s3)) and report.skipped == 0 and report.deleted == 0
    assert "plant/raw/_watermarks.json" in keys(s3)
    assert "plant/raw/station=PS01/date=2026-11-02/part-1.parquet" in keys(s3)
    assert [k for k in keys(s3) if k.startswith("plant/raw/_quarantine/")] == [
        f"plant/raw/_quarantine/date={pd.Timestamp.now(tz='UTC').date()}/run-run1.parquet"
    ]
    assert not [k for k in keys(s3) if "lock" in k or k.endswith(".tmp")]

    copy = RawStore(tmp_path / "copy")
    pulled = pull(URL, copy.root, s3=s3)
    assert pulled.downloaded == report.uploaded and pulled.partitions == report.partitions
    pd.testing.assert_frame_equal(copy.read(), store.read())
    assert copy.watermarks() == store.watermarks()
    pd.testing.assert_frame_equal(copy.read_quarantine(), store.read_quarantine())

    again = pull(URL, copy.root, s3=s3)
    assert again.downloaded == 1 and again.skipped == report.uploaded - 1  # only the watermarks are rewritten

    one = RawStore(tmp_path / "one station")
    assert pull(URL, one.root, ["PS02"], s3=s3).partitions == (("PS02", DAY1), ("PS02", DAY2))
    pd.testing.assert_frame_equal(one.read(), store.read("PS02"))
    assert set(one.watermarks()) == {t for t in store.watermarks() if t.startswith("PS02.")}


def test_a_second_push_uploads_nothing(s3: Any, store: RawStore) -> None:  # noqa: ANN401
    first = push(store.root, URL, s3=s3)
    again = push(store.root, URL, s3=s3)
    assert (again.uploaded, again.deleted, again.bytes_uploaded) == (0, 0, 0)
    assert again.skipped == first.uploaded


def test_after_a_compaction_the_merged_objects_are_gone(s3: Any, store: RawStore, tmp_path: Path) -> None:  # noqa: ANN401
    push(store.root, URL, s3=s3)
    copy = RawStore(tmp_path / "copy")
    pull(URL, copy.root, s3=s3)
    folder = "plant/raw/station=PS01/date=2026-11-02/"
    assert keys(s3, folder) == [folder + "part-0.parquet", folder + "part-1.parquet"]

    store.write(readings(start="2026-11-02T00:10:00Z", periods=3, value0=7.0))
    assert store.compact() == 2  # PS01 and PS02 of the second day
    report = push(store.root, URL, [("PS01", DAY2), ("PS02", DAY2)], s3=s3)
    assert report.deleted == 2 and report.uploaded == 3  # part-1 of each merged; a new part-0 each, the watermarks
    assert keys(s3, folder) == [folder + "part-0.parquet"]

    pulled = pull(URL, copy.root, s3=s3)
    assert pulled.removed == 2
    assert sorted(p.name for p in copy.partition_folder("PS01", DAY2).glob("part-*")) == ["part-0.parquet"]
    pd.testing.assert_frame_equal(copy.read(), store.read())


def test_a_partition_gone_locally_stays_on_the_replica(s3: Any, store: RawStore) -> None:  # noqa: ANN401
    push(store.root, URL, s3=s3)
    before = keys(s3)
    report = push(store.root, URL, [("PS01", DAY1), ("PS09", DAY1)], s3=s3)
    assert report.missing == (("PS09", DAY1),) and report.partitions == (("PS01", DAY1),)
    assert keys(s3) == before


def test_an_unreachable_endpoint_fails_clearly_and_changes_nothing_local(
    store: RawStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    before = tree(store.root)
    rows = store.read()
    endpoint = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(ObjectStoreError, match=r"after 3 tries.*unreachable") as caught:
        push(store.root, URL, endpoint_url=endpoint, retries=2, backoff_s=0.01)
    assert BUCKET in str(caught.value) and isinstance(caught.value, PumptwinError)
    assert tree(store.root) == before
    pd.testing.assert_frame_equal(store.read(), rows)


class Flaky:
    """An S3 client whose first `failures` calls of `method` answer HTTP 503."""

    def __init__(self, real: Any, method: str, failures: int) -> None:  # noqa: ANN401
        self.real, self.method, self.failures, self.calls = real, method, failures, 0

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401
        attribute = getattr(self.real, name)
        if name != self.method:
            return attribute

        def call(**kwargs: Any) -> Any:  # noqa: ANN401
            self.calls += 1
            if self.calls <= self.failures:
                error = {"Error": {"Code": "ServiceUnavailable", "Message": "busy"}}
                raise ClientError({**error, "ResponseMetadata": {"HTTPStatusCode": 503}}, name)
            return attribute(**kwargs)

        return call


def test_transient_errors_are_retried(s3: Any, store: RawStore) -> None:  # noqa: ANN401
    flaky = Flaky(s3, "put_object", failures=2)
    report = push(store.root, URL, s3=flaky, backoff_s=0.0)
    assert flaky.calls == report.uploaded + 2
    assert push(store.root, URL, s3=s3).uploaded == 0

    stuck = Flaky(s3, "list_objects_v2", failures=10)
    with pytest.raises(ObjectStoreError, match=r"listing s3://pumptwin-raw/.*after 2 tries.*ServiceUnavailable"):
        push(store.root, URL, s3=stuck, retries=1, backoff_s=0.0)


def test_a_missing_bucket_is_not_retried(s3: Any, store: RawStore) -> None:  # noqa: ANN401
    counting = Flaky(s3, "list_objects_v2", failures=0)
    with pytest.raises(ObjectStoreError, match=r"s3://no-such-bucket/.*NoSuchBucket"):
        push(store.root, "s3://no-such-bucket/raw", s3=counting, backoff_s=0.0)
    assert counting.calls == 1


def test_large_files_go_up_in_parts_with_the_etag_s3_gives_them(s3: Any) -> None:  # noqa: ANN401
    part = 5 * 2**20
    data = os.urandom(2 * part + 123)
    objectstore._upload(s3, BUCKET, "big", io.BytesIO(data), len(data), objectstore._Retry(0, 0.0), part)
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="big")["Contents"][0]
    assert listed["ETag"].strip('"') == etag_of(io.BytesIO(data), len(data), part)
    assert etag_of(io.BytesIO(data), len(data), part).endswith("-3")
    assert s3.get_object(Bucket=BUCKET, Key="big")["Body"].read() == data
    small = b"abc"
    assert etag_of(io.BytesIO(small), 3, part) == hashlib.md5(small, usedforsecurity=False).hexdigest()


def test_pending_partitions_are_pushed_by_the_next_run(
    s3: Any,  # noqa: ANN401
    store: RawStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    down = Flaky(s3, "put_object", failures=1000)
    first = replicate(store.root, URL, [("PS01", DAY1), ("PS02", DAY1)], s3=down, retries=1, backoff_s=0.0)
    assert first.behind and first.push is None and "ServiceUnavailable" in (first.error or "")
    assert first.pending == (("PS01", DAY1), ("PS02", DAY1))
    assert "is behind" in first.to_markdown() and PENDING_FILE in first.to_markdown()
    assert pending_partitions(store.root) == [("PS01", DAY1), ("PS02", DAY1)]

    second = replicate(store.root, URL, [("PS01", DAY2)], s3=s3)
    assert not second.behind and second.push is not None
    assert second.push.partitions == (("PS01", DAY1), ("PS01", DAY2), ("PS02", DAY1))
    assert pending_partitions(store.root) == [] and not (store.root / PENDING_FILE).exists()
    copy = RawStore(tmp_path / "copy")
    pull(URL, copy.root, s3=s3)
    full = store.read()
    later = full["tag"].str.startswith("PS02.") & (full["ts"] >= pd.Timestamp(DAY2, tz="UTC"))
    pd.testing.assert_frame_equal(copy.read(), full[~later].reset_index(drop=True))

    # A mark renewed while a push runs survives that push.
    real_push = objectstore.push

    def push_and_mark(*args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        report = real_push(*args, **kwargs)
        objectstore.mark_pending(store.root, [("PS02", DAY2)])
        return report

    monkeypatch.setattr(objectstore, "push", push_and_mark)
    third = replicate(store.root, URL, [("PS02", DAY2)], s3=s3)
    assert third.push is not None and third.push.partitions == (("PS02", DAY2),)
    assert third.behind and pending_partitions(store.root) == [("PS02", DAY2)]
