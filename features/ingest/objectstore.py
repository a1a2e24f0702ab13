"""The raw store's copy on object storage (S3 or an S3-compatible server), in the same layout.

The local raw store stays the one writer (it needs file locks and atomic renames); after each
ingest the partitions it wrote are pushed to a bucket, under keys equal to the files' paths
relative to the store's folder::

    <prefix>/station=PS01/date=2026-11-01/part-0.parquet
    <prefix>/station=PS01/date=2026-11-01/part-3.parquet
    <prefix>/_quarantine/date=2026-11-01/run-<id>+00000.parquet
    <prefix>/_watermarks.json

Any machine can pull partitions into a local folder and read them with `RawStore`.

`push` uploads a partition's current files (the store's own listing: no temporary, lock or
superseded file), part-0 first, then deletes the partition's objects that no longer exist locally
(merged by a compaction) only after the new ones are up, so a reader of the bucket always finds a
consistent partition (a compacted `part-0.parquet` names the files it merged, and readers skip
those). Objects whose size and ETag already match the local file are skipped, so pushing again
uploads nothing. Quarantine files are pushed too, and `_watermarks.json` last, so the replica's
watermarks never run ahead of its partitions. A partition that the local store no longer holds is
left as it is on the bucket (a machine that lost its disk does not empty the replica). Push reads
local files only: nothing local changes.

`pull` downloads into a local store folder, each file through a temporary file and a rename, under
the partition's lock, the watermarks first (so they never run ahead of the pulled partitions).

Transient failures (HTTP 5xx, throttling, connection errors, timeouts) are retried with
exponential backoff; then, and for any other failure, `ObjectStoreError` names the bucket, key and
cause. `replicate` is what the ingest step calls: it records the partitions a run touched in
``<raw>/_replica_pending.json`` before pushing them with every partition still pending from
earlier runs, and clears them only once pushed; a failed push leaves them pending for the next
run and comes back as a `ReplicaSync` saying the replica is behind, never as an error of the
ingest.

ETags are compared as S3 computes them for unencrypted and SSE-S3 objects: the MD5 of a file
smaller than `PART_BYTES`, or `md5(md5(part) ...)-<parts>` for larger files uploaded in parts of
`PART_BYTES`. Where an ETag is not of that form (SSE-KMS, other part sizes), the object is
uploaded or downloaded again; that costs time, never correctness.

Credentials come from boto3's standard chain (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``, ``AWS_DEFAULT_REGION``, profiles, instance roles).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO, Any, TypeVar

from pumptwin.features.ingest.contract import station_of
from pumptwin.features.ingest.rawstore import LOCK_FILE, RawStore, RawStoreError
from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.safety import file_lock, replace_text, shorten

PART_BYTES = 64 * 2**20
"""Part size of multipart uploads, bytes; files of this size or more go up in parts (at most 10,000)."""

RETRIES = 3
"""Tries after the first, per request, on a transient failure."""

BACKOFF_S = 1.0
"""First wait before a retry, s; doubled after each try."""

PENDING_FILE = "_replica_pending.json"
"""Partitions written locally and not yet pushed, beside the store's watermarks."""

PENDING_LOCK = "_replica_pending.lock"
"""Lock of the pending file (held for its read-modify-write)."""

PUSH_LOCK = "_replica_push.lock"
"""Lock held across one push, so two pushes of one store never interleave."""

WATERMARKS = "_watermarks.json"
QUARANTINE = "_quarantine"

_S3_URL = re.compile(r"^s3://([^/?#]+)(?:/([^?#]*))?$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_PARTITION_KEY = re.compile(r"^station=([^/]+)/date=(\d{4}-\d{2}-\d{2})/(part-\d{1,18}\.parquet)$")
_QUARANTINE_KEY = re.compile(r"^_quarantine/date=\d{4}-\d{2}-\d{2}/run-([A-Za-z0-9_.\-]+?)(?:\+\d+)?\.parquet$")
_PART_NUMBER = re.compile(r"^part-(\d{1,18})\.parquet$")
_TRANSIENT_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "InternalError", "ServiceUnavailable"}
)
_HTTP_SERVER_ERROR = 500
_READ_BYTES = 8 * 2**20
_OPEN_TRIES = 5
_MAX_DELETE = 1000

T = TypeVar("T")


class ObjectStoreError(PumptwinError, RuntimeError):
    """Object storage refused or did not answer (after retries); the message names the bucket and key."""


class ObjectStoreURLError(ObjectStoreError, ValueError):
    """A raw-store URL that is not ``s3://bucket[/prefix]``."""


# --- addresses -------------------------------------------------------------------------------


def parse_url(url: str) -> tuple[str, str]:
    """Split an object-storage URL into bucket and key prefix.

    Args:
        url: ``s3://bucket`` or ``s3://bucket/some/prefix`` (a trailing ``/`` is ignored).

    Returns:
        (bucket, prefix), the prefix without leading or trailing ``/`` ('' for the bucket's root).

    Raises:
        ObjectStoreURLError: When the URL is not of that form, the bucket name is not a valid S3
            bucket name, or the prefix has empty, ``.`` or ``..`` segments.
    """
    match = _S3_URL.match(url.strip()) if isinstance(url, str) else None
    if match is None:
        raise ObjectStoreURLError(f"raw-store URL must look like s3://bucket/prefix, got {shorten(url)!r}")
    bucket, prefix = match.group(1), (match.group(2) or "").strip("/")
    if _BUCKET.match(bucket) is None or ".." in bucket:
        raise ObjectStoreURLError(f"bad bucket name {shorten(bucket)!r} in raw-store URL {shorten(url)!r}")
    if prefix and any(part in ("", ".", "..") for part in prefix.split("/")):
        raise ObjectStoreURLError(f"bad key prefix {shorten(prefix)!r} in raw-store URL {shorten(url)!r}")
    return bucket, prefix


def _key(prefix: str, relative: str) -> str:
    """The object key of a file at `relative` (POSIX path) below the store's folder."""
    return f"{prefix}/{relative}" if prefix else relative


def _relative(prefix: str, key: str) -> str:
    """The store-relative path of an object key under `prefix`."""
    return key[len(prefix) + 1 :] if prefix else key


def _partition_relative(station: str, day: date) -> str:
    return f"station={station}/date={day.isoformat()}"


def client(endpoint_url: str | None = None) -> Any:  # noqa: ANN401 - boto3 builds its client classes at run time
    """Build an S3 client (credentials and region from boto3's standard chain, e.g. ``AWS_*`` variables).

    Retries are left to this module (`RETRIES`, `BACKOFF_S`): the client tries each request once.

    Args:
        endpoint_url: An S3-compatible server, e.g. ``http://127.0.0.1:9000``; None for AWS.

    Returns:
        A boto3 S3 client.
    """
    import boto3  # noqa: PLC0415 - only the replica needs boto3
    from botocore.config import Config  # noqa: PLC0415

    config = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=10, read_timeout=120)
    return boto3.client("s3", endpoint_url=endpoint_url, config=config)


# --- errors and retries ----------------------------------------------------------------------


def _error_code(exc: BaseException) -> tuple[str, int]:
    """(error code, HTTP status) of a botocore `ClientError`; ('', 0) for other errors."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return "", 0
    code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return code, int(status or 0)


def _is_transient(exc: BaseException) -> bool:
    """True for failures worth another try: HTTP 5xx, throttling, connection errors and timeouts."""
    from botocore.exceptions import (  # noqa: PLC0415
        ClientError,
        ConnectionError,  # noqa: A004 - botocore's, not the builtin
        HTTPClientError,
        IncompleteReadError,
    )

    if isinstance(exc, ClientError):
        code, status = _error_code(exc)
        return status >= _HTTP_SERVER_ERROR or code in _TRANSIENT_CODES
    return isinstance(exc, ConnectionError | HTTPClientError | IncompleteReadError | TimeoutError)


def _describe(exc: BaseException) -> str:
    code, status = _error_code(exc)
    if code or status:
        return f"{code or 'error'} (HTTP {status}): {shorten(str(exc), 200)}"
    return f"{type(exc).__name__}: {shorten(str(exc), 200)}"


def _is_missing(exc: BaseException) -> bool:
    code, status = _error_code(exc)
    return code in ("NoSuchKey", "404") or status == 404  # noqa: PLR2004 - HTTP Not Found


@dataclass(frozen=True)
class _Retry:
    """How a request is retried: `retries` more tries, waits of `backoff_s`, doubled each time."""

    retries: int = RETRIES
    backoff_s: float = BACKOFF_S
    sleep: Callable[[float], None] = time.sleep

    def call(self, what: str, request: Callable[[], T], *, missing_ok: bool = False) -> T | None:
        """Run `request`, retrying transient failures.

        Returns:
            What `request` returns; None when the object is missing and `missing_ok`.

        Raises:
            ObjectStoreError: A failure that is not transient, or still failing after the retries.
        """
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        for attempt in range(self.retries + 1):
            try:
                return request()
            except (BotoCoreError, ClientError) as exc:
                if missing_ok and _is_missing(exc):
                    return None
                if not _is_transient(exc):
                    raise ObjectStoreError(f"{what} failed: {_describe(exc)}") from exc
                if attempt == self.retries:
                    raise ObjectStoreError(
                        f"{what} failed after {self.retries + 1} tries: {_describe(exc)}; "
                        "object storage is unreachable or failing, try again later"
                    ) from exc
                self.sleep(self.backoff_s * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover


# --- checksums -------------------------------------------------------------------------------


def _chunks(handle: IO[bytes], size: int, part_bytes: int) -> Iterator[bytes]:
    """The bytes of an open file from its start, `part_bytes` at a time (at most `size` bytes)."""
    handle.seek(0)
    left = size
    while left > 0:
        data = handle.read(min(part_bytes, left))
        if not data:
            raise ObjectStoreError(f"{getattr(handle, 'name', 'a file')} shrank while it was read")
        left -= len(data)
        yield data


def etag_of(handle: IO[bytes], size: int, part_bytes: int = PART_BYTES) -> str:
    """The ETag S3 gives an object uploaded from this file by `push` (parts of `part_bytes`).

    Args:
        handle: The file, open for binary reading (read from its start).
        size: Its size, bytes.
        part_bytes: The part size of multipart uploads, bytes.

    Returns:
        The hex MD5 for a file smaller than `part_bytes`; ``<md5 of the parts' MD5s>-<parts>`` otherwise.
    """
    if size < part_bytes:
        digest = hashlib.md5(usedforsecurity=False)
        for data in _chunks(handle, size, _READ_BYTES):
            digest.update(data)
        return digest.hexdigest()
    parts = [hashlib.md5(data, usedforsecurity=False).digest() for data in _chunks(handle, size, part_bytes)]
    return f"{hashlib.md5(b''.join(parts), usedforsecurity=False).hexdigest()}-{len(parts)}"


def _etag_comparable(etag: str, size: int, part_bytes: int) -> bool:
    """True when a remote ETag is of the form `etag_of` computes for this size."""
    if size < part_bytes:
        return re.fullmatch(r"[0-9a-f]{32}", etag) is not None
    return etag.endswith(f"-{-(-size // part_bytes)}")


# --- listing ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Object:
    size: int
    etag: str


def _list(s3: Any, bucket: str, prefix: str, retry: _Retry) -> dict[str, _Object]:  # noqa: ANN401
    """Every object under `prefix` (a folder-like key prefix ending in ``/``, or ''), by key."""
    found: dict[str, _Object] = {}
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        if token:
            kwargs["ContinuationToken"] = token
        page = retry.call(f"listing s3://{bucket}/{prefix}", functools.partial(s3.list_objects_v2, **kwargs))
        assert page is not None  # noqa: S101 - not missing_ok
        for item in page.get("Contents", []):
            found[item["Key"]] = _Object(int(item["Size"]), str(item.get("ETag", "")).strip('"'))
        if not page.get("IsTruncated"):
            return found
        token = page.get("NextContinuationToken")


def _same(handle: IO[bytes], size: int, remote: _Object | None, part_bytes: int) -> bool:
    """True when the remote object holds this file (same size and ETag)."""
    if remote is None or remote.size != size or not _etag_comparable(remote.etag, size, part_bytes):
        return False
    return etag_of(handle, size, part_bytes) == remote.etag


# --- uploading -------------------------------------------------------------------------------


def _upload(  # noqa: PLR0913 - one keyword per piece of the request
    s3: Any,  # noqa: ANN401
    bucket: str,
    key: str,
    handle: IO[bytes],
    size: int,
    retry: _Retry,
    part_bytes: int,
) -> None:
    """Upload an open file in one request, or in parts of `part_bytes` (aborted on failure)."""
    where = f"uploading s3://{bucket}/{key}"
    if size < part_bytes:
        body = b"".join(_chunks(handle, size, _READ_BYTES))
        md5 = base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()
        retry.call(where, lambda: s3.put_object(Bucket=bucket, Key=key, Body=body, ContentMD5=md5))
        return
    started = retry.call(where, lambda: s3.create_multipart_upload(Bucket=bucket, Key=key))
    assert started is not None  # noqa: S101 - not missing_ok
    upload_id = started["UploadId"]
    try:
        parts = []
        for number, data in enumerate(_chunks(handle, size, part_bytes), start=1):
            md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
            answer = retry.call(
                f"{where} (part {number})",
                functools.partial(
                    s3.upload_part,
                    Bucket=bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=data,
                    ContentMD5=md5,
                ),
            )
            assert answer is not None  # noqa: S101 - not missing_ok
            parts.append({"PartNumber": number, "ETag": answer["ETag"]})
        retry.call(
            where,
            lambda: s3.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            ),
        )
    except BaseException:
        with contextlib.suppress(Exception):
            s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise


def _delete(s3: Any, bucket: str, keys: list[str], retry: _Retry) -> None:  # noqa: ANN401
    """Delete objects (missing ones are fine), a thousand per request."""
    for first in range(0, len(keys), _MAX_DELETE):
        batch = keys[first : first + _MAX_DELETE]
        answer = retry.call(
            f"deleting {len(batch)} objects under s3://{bucket}/",
            functools.partial(
                s3.delete_objects, Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
            ),
        )
        errors = (answer or {}).get("Errors", [])
        if errors:
            first_error = errors[0]
            raise ObjectStoreError(
                f"deleting s3://{bucket}/{first_error.get('Key')} failed: {first_error.get('Code')} "
                f"{shorten(first_error.get('Message', ''), 160)} ({len(errors)} objects not deleted)"
            )


@dataclass(frozen=True)
class PushReport:
    """What one `push` did.

    Attributes:
        url: The replica, ``s3://bucket/prefix``.
        uploaded: Files uploaded (new or changed).
        skipped: Files already on the replica with the same size and ETag.
        deleted: Objects deleted because the local store no longer holds them (merged by a compaction,
            or the quarantine of a retried run).
        bytes_uploaded: Bytes uploaded.
        partitions: The (station, UTC day) partitions pushed.
        missing: Partitions asked for that the local store does not hold (left as they are on the replica).
    """

    url: str
    uploaded: int = 0
    skipped: int = 0
    deleted: int = 0
    bytes_uploaded: int = 0
    partitions: tuple[tuple[str, date], ...] = ()
    missing: tuple[tuple[str, date], ...] = ()

    def to_markdown(self) -> str:
        """One line: what was uploaded, skipped and deleted.

        Returns:
            Markdown text.
        """
        text = (
            f"pushed {len(self.partitions)} partitions to `{self.url}`: {self.uploaded} files uploaded "
            f"({self.bytes_uploaded / 2**20:.1f} MiB), {self.skipped} unchanged, {self.deleted} stale objects deleted"
        )
        if self.missing:
            text += f"; {len(self.missing)} partitions asked for are not stored locally"
        return text


@contextlib.contextmanager
def _opened(paths_of: Callable[[], list[Path]], what: str) -> Iterator[list[tuple[Path, IO[bytes], int]]]:
    """Open the files `paths_of()` lists at one instant (listing again when one vanished in between).

    Open files stay readable when a compaction replaces or deletes them, so what is uploaded is one
    consistent state of the partition.
    """
    for _ in range(_OPEN_TRIES):
        with contextlib.ExitStack() as stack:
            try:
                opened: list[tuple[Path, IO[bytes], int]] = []
                for path in paths_of():
                    handle = stack.enter_context(path.open("rb"))
                    opened.append((path, handle, os.fstat(handle.fileno()).st_size))
            except FileNotFoundError:
                continue
            yield opened
            return
    raise ObjectStoreError(f"{what} kept changing while it was pushed: try again")


def _sync_files(  # noqa: PLR0913 - the files, where they go, and how
    s3: Any,  # noqa: ANN401
    bucket: str,
    prefix: str,
    opened: list[tuple[Path, IO[bytes], int]],
    root: Path,
    remote: dict[str, _Object],
    retry: _Retry,
    part_bytes: int,
) -> tuple[int, int, int]:
    """Upload the opened files whose object differs; return (uploaded, skipped, bytes uploaded)."""
    uploaded = skipped = sent = 0
    for path, handle, size in opened:
        key = _key(prefix, path.relative_to(root).as_posix())
        if _same(handle, size, remote.get(key), part_bytes):
            skipped += 1
            continue
        _upload(s3, bucket, key, handle, size, retry, part_bytes)
        uploaded += 1
        sent += size
    return uploaded, skipped, sent


def _part_order(path: Path) -> int:
    match = _PART_NUMBER.match(path.name)
    return int(match.group(1)) if match else -1


def push(  # noqa: PLR0913 - the store, the replica, the partitions and how to reach it
    store_root: str | Path,
    url: str,
    partitions: Iterable[tuple[str, date]] | None = None,
    *,
    endpoint_url: str | None = None,
    s3: Any = None,  # noqa: ANN401
    retries: int = RETRIES,
    backoff_s: float = BACKOFF_S,
    part_bytes: int = PART_BYTES,
) -> PushReport:
    """Copy partitions of a local raw store, its quarantine and its watermarks to object storage.

    Per partition: its current files are opened at one instant, uploaded where the object's size or
    ETag differs (`part-0.parquet` first), and only then the partition's objects that no longer
    exist locally are deleted. Quarantine files follow (and the objects of a retried run's older
    parts are deleted), then `_watermarks.json`. Nothing local is changed.

    Args:
        store_root: The local raw store's folder.
        url: The replica, ``s3://bucket/prefix``.
        partitions: (station, UTC day) pairs; None for every partition the local store holds.
        endpoint_url: An S3-compatible server; None for AWS.
        s3: An S3 client to use instead of building one with `client(endpoint_url)`.
        retries: Tries after the first of a request that failed transiently.
        backoff_s: First wait before a retry, s (doubled each time).
        part_bytes: Part size of multipart uploads, bytes (S3 needs >= 5 MiB).

    Returns:
        What was uploaded, skipped and deleted.

    Raises:
        ObjectStoreURLError: When `url` is not ``s3://bucket[/prefix]``.
        ObjectStoreError: When object storage refuses a request, or still fails after the retries;
            the partitions uploaded before stay consistent on the replica.
        RawStoreError: When a local partition cannot be read.
    """
    bucket, prefix = parse_url(url)
    root = Path(store_root)
    store = RawStore(root, max_workers=1)
    retry = _Retry(retries, backoff_s)
    s3 = s3 if s3 is not None else client(endpoint_url)
    wanted = sorted(set(partitions)) if partitions is not None else store.partitions()
    uploaded = skipped = deleted = sent = 0
    pushed: list[tuple[str, date]] = []
    missing: list[tuple[str, date]] = []
    for station, day in wanted:
        folder = _partition_relative(station, day)

        def files(station: str = station, day: date = day) -> list[Path]:
            return sorted(store.partition_files(station, day), key=_part_order)

        with _opened(files, f"partition {folder}") as opened:
            if not opened:
                missing.append((station, day))
                continue
            remote = _list(s3, bucket, _key(prefix, folder) + "/", retry)
            up, same, size = _sync_files(s3, bucket, prefix, opened, root, remote, retry, part_bytes)
            local_keys = {_key(prefix, path.relative_to(root).as_posix()) for path, _, _ in opened}
        stale = sorted(k for k in remote if k not in local_keys and _PART_NUMBER.match(k.rsplit("/", 1)[-1]))
        _delete(s3, bucket, stale, retry)
        uploaded, skipped, deleted, sent = uploaded + up, skipped + same, deleted + len(stale), sent + size
        pushed.append((station, day))

    up, same, size, gone = _push_quarantine(s3, bucket, prefix, root, retry, part_bytes)
    uploaded, skipped, deleted, sent = uploaded + up, skipped + same, deleted + gone, sent + size
    marks = root / WATERMARKS
    if marks.is_file():
        key = _key(prefix, WATERMARKS)
        remote = _list(s3, bucket, key, retry)
        with _opened(lambda: [marks] if marks.is_file() else [], str(marks)) as opened:
            up, same, size = _sync_files(s3, bucket, prefix, opened, root, remote, retry, part_bytes)
        uploaded, skipped, sent = uploaded + up, skipped + same, sent + size
    return PushReport(
        url=url,
        uploaded=uploaded,
        skipped=skipped,
        deleted=deleted,
        bytes_uploaded=sent,
        partitions=tuple(pushed),
        missing=tuple(missing),
    )


def _push_quarantine(  # noqa: PLR0913
    s3: Any,  # noqa: ANN401
    bucket: str,
    prefix: str,
    root: Path,
    retry: _Retry,
    part_bytes: int,
) -> tuple[int, int, int, int]:
    """Push the quarantine files; delete the objects of a run's parts the local store no longer has.

    Only runs that have local quarantine files are pruned: runs known only to the replica stay.

    Returns:
        (uploaded, skipped, bytes uploaded, deleted).
    """
    local = sorted((root / QUARANTINE).glob("date=*/run-*.parquet"))
    if not local:
        return 0, 0, 0, 0
    remote = _list(s3, bucket, _key(prefix, QUARANTINE) + "/", retry)
    with _opened(lambda: [p for p in sorted((root / QUARANTINE).glob("date=*/run-*.parquet"))], QUARANTINE) as opened:
        up, same, size = _sync_files(s3, bucket, prefix, opened, root, remote, retry, part_bytes)
        local_keys = {_key(prefix, path.relative_to(root).as_posix()) for path, _, _ in opened}
    runs = {_run_of(_relative(prefix, k)) for k in local_keys} - {None}
    stale = sorted(k for k in remote if k not in local_keys and _run_of(_relative(prefix, k)) in runs)
    _delete(s3, bucket, stale, retry)
    return up, same, size, len(stale)


def _run_of(relative: str) -> str | None:
    match = _QUARANTINE_KEY.match(relative)
    return match.group(1) if match else None


# --- pulling ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PullReport:
    """What one `pull` did.

    Attributes:
        url: The replica, ``s3://bucket/prefix``.
        downloaded: Files downloaded (new or changed).
        skipped: Files already local with the same size and ETag.
        removed: Local partition files the replica no longer holds, removed.
        bytes_downloaded: Bytes downloaded.
        partitions: The (station, UTC day) partitions pulled.
    """

    url: str
    downloaded: int = 0
    skipped: int = 0
    removed: int = 0
    bytes_downloaded: int = 0
    partitions: tuple[tuple[str, date], ...] = ()


def _download(  # noqa: PLR0913 - the object, where it goes, and how
    s3: Any,  # noqa: ANN401
    bucket: str,
    key: str,
    target: Path,
    expected: _Object,
    retry: _Retry,
    part_bytes: int,
) -> bool:
    """Download an object to `target` through a temporary file and a rename; False when it is gone.

    Raises:
        ObjectStoreError: When the object cannot be read, or arrives with another size or ETag.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")  # RawStore's temporary names

    def fetch() -> bool:
        answer = s3.get_object(Bucket=bucket, Key=key)
        with tmp.open("wb") as out:
            for data in answer["Body"].iter_chunks(_READ_BYTES):
                out.write(data)
            out.flush()
            os.fsync(out.fileno())
        return True

    try:
        if retry.call(f"downloading s3://{bucket}/{key}", fetch, missing_ok=True) is None:
            return False
        size = tmp.stat().st_size
        with tmp.open("rb") as handle:
            if size != expected.size or (
                _etag_comparable(expected.etag, size, part_bytes) and etag_of(handle, size, part_bytes) != expected.etag
            ):
                raise ObjectStoreError(
                    f"s3://{bucket}/{key} arrived with {size} bytes and another checksum than listed "
                    f"({expected.size} bytes, ETag {expected.etag}): it changed during the pull, try again"
                )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return True


def _local_same(path: Path, remote: _Object, part_bytes: int) -> bool:
    try:
        with path.open("rb") as handle:
            return _same(handle, os.fstat(handle.fileno()).st_size, remote, part_bytes)
    except FileNotFoundError:
        return False


def pull(  # noqa: PLR0913 - the replica, the store, the stations and how to reach it
    url: str,
    store_root: str | Path,
    stations: Iterable[str] | None = None,
    *,
    endpoint_url: str | None = None,
    s3: Any = None,  # noqa: ANN401
    retries: int = RETRIES,
    backoff_s: float = BACKOFF_S,
    part_bytes: int = PART_BYTES,
    lock_timeout_s: float = 600.0,
) -> PullReport:
    """Copy a replica (or some stations of it) into a local raw-store folder.

    The watermarks come first (the replica's, for the pulled stations' tags), then each partition
    under its lock: files missing or different locally are downloaded (`part-0.parquet` first), each
    through a temporary file and a rename, then local files the replica no longer holds are removed.
    Quarantine files come with a pull of every station. `RawStore(store_root).read(...)` then
    returns the replica's rows.

    Args:
        url: The replica, ``s3://bucket/prefix``.
        store_root: The local folder (created when missing).
        stations: Only these stations; None for all (and the quarantine).
        endpoint_url: An S3-compatible server; None for AWS.
        s3: An S3 client to use instead of building one with `client(endpoint_url)`.
        retries: Tries after the first of a request that failed transiently.
        backoff_s: First wait before a retry, s (doubled each time).
        part_bytes: Part size the replica was pushed with, bytes (to compare ETags).
        lock_timeout_s: Longest wait for a partition's or the watermarks' lock, s.

    Returns:
        What was downloaded, skipped and removed.

    Raises:
        ObjectStoreURLError: When `url` is not ``s3://bucket[/prefix]``.
        ObjectStoreError: When object storage refuses a request, or still fails after the retries;
            every local file is then the old one or the new one, never half of one.
    """
    bucket, prefix = parse_url(url)
    root = Path(store_root)
    retry = _Retry(retries, backoff_s)
    s3 = s3 if s3 is not None else client(endpoint_url)
    wanted = set(stations) if stations is not None else None
    listing = _list(s3, bucket, prefix + "/" if prefix else "", retry)
    downloaded = skipped = removed = received = 0

    marks_key = _key(prefix, WATERMARKS)
    if marks_key in listing:
        received += _pull_watermarks(s3, bucket, marks_key, root, wanted, retry, lock_timeout_s)
        downloaded += 1

    by_partition: dict[tuple[str, date], dict[str, _Object]] = {}
    quarantine: dict[str, _Object] = {}
    for key, obj in listing.items():
        relative = _relative(prefix, key)
        match = _PARTITION_KEY.match(relative)
        if match is not None and (wanted is None or match.group(1) in wanted):
            by_partition.setdefault((match.group(1), date.fromisoformat(match.group(2))), {})[relative] = obj
        elif wanted is None and _QUARANTINE_KEY.match(relative):
            quarantine[relative] = obj

    store = RawStore(root, max_workers=1, lock_timeout_s=lock_timeout_s)
    for (station, day), listed in sorted(by_partition.items()):
        folder, relative, objects = store.partition_folder(station, day), _partition_relative(station, day), listed
        with file_lock(folder / LOCK_FILE, lock_timeout_s, functools.partial(_lock_error, folder, lock_timeout_s)):
            got = same = size = 0
            for _ in range(_OPEN_TRIES):  # an object deleted by a push meanwhile: list the partition again
                more, also, sent, vanished = _fetch_all(s3, bucket, prefix, root, objects, retry, part_bytes)
                got, same, size = got + more, same + also, size + sent
                if not vanished:
                    break
                objects = {
                    _relative(prefix, k): o for k, o in _list(s3, bucket, _key(prefix, relative) + "/", retry).items()
                }
            else:
                raise ObjectStoreError(f"partition {relative} kept changing on s3://{bucket} while it was pulled")
            names = {Path(r).name for r in objects}
            stale = _remove_files(p for p in folder.glob("part-*.parquet") if p.name not in names)
        downloaded, skipped, removed, received = downloaded + got, skipped + same, removed + stale, received + size
    got, same, size, _ = _fetch_all(s3, bucket, prefix, root, quarantine, retry, part_bytes)
    downloaded, skipped, received = downloaded + got, skipped + same, received + size
    return PullReport(
        url=url,
        downloaded=downloaded,
        skipped=skipped,
        removed=removed,
        bytes_downloaded=received,
        partitions=tuple(sorted(by_partition)),
    )


def _fetch_all(  # noqa: PLR0913
    s3: Any,  # noqa: ANN401
    bucket: str,
    prefix: str,
    root: Path,
    objects: dict[str, _Object],
    retry: _Retry,
    part_bytes: int,
) -> tuple[int, int, int, int]:
    """Download the objects (by store-relative path) that differ locally, part-0 first.

    Returns:
        (downloaded, skipped, bytes downloaded, objects gone since they were listed).
    """
    downloaded = skipped = received = vanished = 0
    for relative in sorted(objects, key=lambda r: (_part_order(Path(r)), r)):
        target = root / relative
        if _local_same(target, objects[relative], part_bytes):
            skipped += 1
        elif _download(s3, bucket, _key(prefix, relative), target, objects[relative], retry, part_bytes):
            downloaded += 1
            received += objects[relative].size
        else:
            vanished += 1
    return downloaded, skipped, received, vanished


def _remove_files(paths: Iterable[Path]) -> int:
    removed = 0
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed += 1
    return removed


def _lock_error(path: Path, timeout_s: float) -> RawStoreError:
    return RawStoreError(f"{path} is locked by another writer for more than {timeout_s:g} s: try the pull again later")


def _pull_watermarks(  # noqa: PLR0913
    s3: Any,  # noqa: ANN401
    bucket: str,
    key: str,
    root: Path,
    stations: set[str] | None,
    retry: _Retry,
    lock_timeout_s: float,
) -> int:
    """Take the replica's watermarks (of the pulled stations' tags only, when stations are chosen).

    Returns:
        Bytes downloaded.
    """

    def fetch() -> bytes:
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    answer = retry.call(f"downloading s3://{bucket}/{key}", fetch)
    assert answer is not None  # noqa: S101 - not missing_ok
    try:
        document = json.loads(answer.decode("utf-8"))
        remote = document["watermarks"]
        if not isinstance(remote, dict):
            raise TypeError("`watermarks` is not a mapping")
    except (ValueError, TypeError, KeyError) as exc:
        raise ObjectStoreError(
            f"the replica's watermarks s3://{bucket}/{key} are corrupt ({shorten(str(exc))})"
        ) from exc
    target = root / WATERMARKS
    with file_lock(root / "_watermarks.lock", lock_timeout_s, lambda: _lock_error(target, lock_timeout_s)):
        if stations is not None:
            try:
                local = json.loads(target.read_text(encoding="utf-8"))["watermarks"]
            except (FileNotFoundError, ValueError, KeyError, TypeError):
                local = {}
            chosen = {tag: ts for tag, ts in remote.items() if _station_or_none(tag) in stations}
            document = {"version": document.get("version", 1), "watermarks": dict(sorted({**local, **chosen}.items()))}
        replace_text(target, json.dumps(document, indent=1) + "\n")
    return len(answer)


def _station_or_none(tag: str) -> str | None:
    try:
        return station_of(tag)
    except ValueError:
        return None


# --- replication after each ingest -----------------------------------------------------------


def _partition_name(partition: tuple[str, date]) -> str:
    return f"{partition[0]}/{partition[1].isoformat()}"


def _parse_partition(name: str) -> tuple[str, date]:
    station, day = name.rsplit("/", 1)
    return station, date.fromisoformat(day)


def _load_pending(root: Path) -> dict[str, str]:
    """The pending file's {`STATION/YYYY-MM-DD`: token}; empty when absent or unreadable (then rebuilt)."""
    try:
        pending = json.loads((root / PENDING_FILE).read_text(encoding="utf-8"))["pending"]
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ObjectStoreError(
            f"{root / PENDING_FILE} is unreadable ({shorten(str(exc))}): delete it and push every partition "
            "(push with no partitions) to bring the replica up to date"
        ) from exc
    if not isinstance(pending, dict):
        raise ObjectStoreError(f"{root / PENDING_FILE} is unreadable: `pending` is not a mapping")
    return {str(k): str(v) for k, v in pending.items()}


def _save_pending(root: Path, pending: dict[str, str]) -> None:
    path = root / PENDING_FILE
    if pending:
        replace_text(path, json.dumps({"version": 1, "pending": dict(sorted(pending.items()))}, indent=1) + "\n")
    else:
        path.unlink(missing_ok=True)


def _pending_lock(root: Path, timeout_s: float) -> contextlib.AbstractContextManager[None]:
    return file_lock(
        root / PENDING_LOCK,
        timeout_s,
        lambda: ObjectStoreError(f"{root / PENDING_FILE} is locked by another run for more than {timeout_s:g} s"),
    )


def mark_pending(
    store_root: str | Path, partitions: Iterable[tuple[str, date]], *, lock_timeout_s: float = 600.0
) -> int:
    """Record partitions as written locally and not yet on the replica (in ``<raw>/_replica_pending.json``).

    Each mark gets a fresh token, so a push that started before the mark does not clear it.

    Args:
        store_root: The local raw store's folder.
        partitions: (station, UTC day) pairs.
        lock_timeout_s: Longest wait for the pending file's lock, s.

    Returns:
        Partitions pending now.
    """
    root = Path(store_root)
    chosen = [_partition_name(p) for p in partitions]
    with _pending_lock(root, lock_timeout_s):
        pending = _load_pending(root)
        if chosen:
            pending.update({name: uuid.uuid4().hex for name in chosen})
            _save_pending(root, pending)
        return len(pending)


def pending_partitions(store_root: str | Path) -> list[tuple[str, date]]:
    """Return the partitions written locally and not yet pushed to the replica.

    Args:
        store_root: The local raw store's folder.

    Returns:
        (station, UTC day) pairs, sorted.
    """
    return sorted(_parse_partition(name) for name in _load_pending(Path(store_root)))


@dataclass(frozen=True)
class ReplicaSync:
    """What `replicate` did: the push, or why the replica is behind.

    Attributes:
        url: The replica.
        push: The push's report; None when the push failed.
        pending: Partitions still not on the replica (retried by the next run).
        error: Why the push failed; None when it succeeded.
    """

    url: str
    push: PushReport | None = None
    pending: tuple[tuple[str, date], ...] = ()
    error: str | None = None

    @property
    def behind(self) -> bool:
        """True when some partitions written locally are not on the replica yet."""
        return self.error is not None or bool(self.pending)

    def to_markdown(self) -> str:
        """The replica's state as markdown.

        Returns:
            One line on the push, or on why the replica is behind and what happens next.
        """
        if self.error is None and self.push is not None:
            return self.push.to_markdown() + "."
        return (
            f"**replica `{self.url}` is behind**: {len(self.pending)} partitions are stored locally and not pushed "
            f"yet (listed in `{PENDING_FILE}`); the next ingest pushes them again. Cause: {self.error}"
        )


def replicate(  # noqa: PLR0913 - the store, the replica, what changed and how
    store_root: str | Path,
    url: str,
    touched: Iterable[tuple[str, date]],
    *,
    endpoint_url: str | None = None,
    s3: Any = None,  # noqa: ANN401
    lock_timeout_s: float = 600.0,
    retries: int = RETRIES,
    backoff_s: float = BACKOFF_S,
) -> ReplicaSync:
    """Push the partitions a run touched and every partition still pending from earlier runs.

    The touched partitions are first marked pending (so a killed run leaves them marked); the push
    then runs under the push lock, and clears the marks it pushed (a mark renewed meanwhile by
    another run stays). A failed push never raises: the marks stay for the next run and the result
    says the replica is behind.

    Args:
        store_root: The local raw store's folder.
        url: The replica, ``s3://bucket/prefix``.
        touched: Partitions the run wrote (or compacted).
        endpoint_url: An S3-compatible server; None for AWS.
        s3: An S3 client to use instead of building one with `client(endpoint_url)`.
        lock_timeout_s: Longest wait for the pending file's or another push's lock, s.
        retries: Tries after the first of a request that failed transiently.
        backoff_s: First wait before a retry, s (doubled each time).

    Returns:
        The push's report, or the error and the partitions left pending.
    """
    root = Path(store_root)
    try:
        mark_pending(root, touched, lock_timeout_s=lock_timeout_s)
        busy = lambda: ObjectStoreError(f"another push of {root} held {PUSH_LOCK} for more than {lock_timeout_s:g} s")  # noqa: E731
        with file_lock(root / PUSH_LOCK, lock_timeout_s, busy):
            with _pending_lock(root, lock_timeout_s):
                todo = _load_pending(root)
            report = push(
                root,
                url,
                [_parse_partition(name) for name in todo],
                endpoint_url=endpoint_url,
                s3=s3,
                retries=retries,
                backoff_s=backoff_s,
            )
            with _pending_lock(root, lock_timeout_s):
                pending = _load_pending(root)
                for name, token in todo.items():
                    if pending.get(name) == token:
                        del pending[name]
                _save_pending(root, pending)
    except (ObjectStoreError, RawStoreError, OSError) as exc:
        try:
            left = tuple(pending_partitions(root))
        except ObjectStoreError:
            left = ()
        return ReplicaSync(url=url, pending=left, error=shorten(str(exc), 400))
    return ReplicaSync(url=url, push=report, pending=tuple(sorted(_parse_partition(n) for n in pending)))
