"""An append-only, hash-chained audit log of every recommendation, decision and write.

The log is a JSON Lines file: one `AuditRecord` per line, in the order written. Each record
carries its sequence number (1, 2, ...), the hash of the record before it and its own hash
(SHA-256 over the canonical JSON of every other field), so an edited, removed or reordered
record breaks the chain and `AuditLog.verify` names the line.

Writing rules, so the log survives crashes and concurrent writers and is never rewritten:

- the file is only ever opened for appending (``O_APPEND``); nothing truncates or seeks to write;
- every append takes an exclusive ``fcntl.flock`` on the file, reads the last record under the
  lock and takes ``seq`` and ``prev_hash`` from it, so two threads or processes appending at once
  never interleave lines or fork the chain;
- each record is written with one ``write`` and made durable with ``os.fsync`` before `append`
  returns;
- a crash in the middle of a write leaves a torn last line (no newline). `verify` reports it;
  the next `append` first writes a newline, so the torn text stays visible on its own line and
  is never overwritten, and the new record chains to the last complete record.

The hashes make changes evident, not impossible: anyone who can write the file can also rewrite
every record after the one changed. Keep the hash of a record that matters (an approval) where
the log's writers cannot change it, to pin the chain up to there.

Values are made JSON-safe before hashing: NaN and infinities become the strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"``, tuples become lists and numpy scalars plain numbers, so a
record read back equals the record `append` returned and verifies.

Example::

    log = AuditLog(tmp / "audit.jsonl")
    log.append("decision", "REQ-1", "j.doe", "approved speed 0.93 for PS01.P1", why="saves 4 % energy")
    log.verify()  # 1
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import math
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.safety import shorten
from pumptwin.twin.times import to_utc

TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
"""Record time stamp: UTC to the microsecond, ``Z`` for UTC."""
TAIL_CHUNK = 65_536
"""Bytes read at a time from the end of the file to find the last record."""
NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
"""How non-finite floats are written (the names JavaScript's JSON extensions use)."""


class AuditError(PumptwinError, RuntimeError):
    """The audit log cannot be written or read, or fails verification; the message names the line."""


@dataclass(frozen=True)
class AuditRecord:
    """One entry of the audit log.

    Attributes:
        seq: Position in the log, 1, 2, ... in file order.
        ts: Time of writing, UTC ISO 8601 ending in ``Z``.
        kind: What the record is: ``recommendation``, ``decision``, ``refused``, ``write``,
            ``readback``, ``rollback``, ``expired``, ``escalated``, ``verified``, ``outcome``, ``label``...
        request: Id of the request the record belongs to.
        who: Person or system that acted (``auto-implement``, ``interlocks``, ``pumptwin``).
        what: What happened, one line.
        why: Why, one line (may be empty).
        before: State before (e.g. ``{"PS01.P1.speed": 0.95}``), or None.
        after: State after, or None.
        data: JSON-serialisable extras.
        prev_hash: ``hash`` of the record before ("" for the first).
        hash: SHA-256 (hex) of the canonical JSON of every other field.
    """

    seq: int
    ts: str
    kind: str
    request: str
    who: str
    what: str
    why: str = ""
    before: Mapping[str, float | str] | None = None
    after: Mapping[str, float | str] | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    prev_hash: str = ""
    hash: str = ""

    def body(self) -> dict[str, Any]:
        """Every field but ``hash``, as plain JSON values (what the hash covers)."""
        out = asdict(self)
        del out["hash"]
        return out

    def computed_hash(self) -> str:
        """SHA-256 (hex) of the canonical JSON of `body`."""
        return hashlib.sha256(canonical_json(self.body()).encode("utf-8")).hexdigest()

    def to_line(self) -> str:
        """The record as one line of the log (canonical JSON, no newline)."""
        return canonical_json(asdict(self))

    @classmethod
    def from_line(cls, line: str, where: str = "audit record") -> AuditRecord:
        """Parse one line of the log.

        Args:
            line: The line, without its newline.
            where: How messages name the line.

        Returns:
            The record, exactly as stored (not verified).

        Raises:
            AuditError: Not a JSON object with exactly the record's fields of the right types.
        """
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise AuditError(f"{where}: not JSON ({exc.msg})") from None
        except (ValueError, RecursionError):
            raise AuditError(f"{where}: not JSON") from None
        if not isinstance(raw, dict):
            raise AuditError(f"{where}: not a JSON object")
        names = {f.name for f in fields(cls)}
        if set(raw) != names:
            missing, extra = sorted(names - set(raw)), sorted(set(raw) - names)
            raise AuditError(f"{where}: fields do not match a record (missing {missing}, unexpected {extra})")
        kinds = {"seq": int, "ts": str, "kind": str, "request": str, "who": str, "what": str, "why": str}
        kinds |= {"prev_hash": str, "hash": str}
        for name, typ in kinds.items():
            if not isinstance(raw[name], typ) or isinstance(raw[name], bool):
                raise AuditError(f"{where}: field {name!r} must be {typ.__name__}, got {shorten(raw[name])}")
        for name in ("before", "after"):
            if raw[name] is not None and not isinstance(raw[name], dict):
                raise AuditError(f"{where}: field {name!r} must be an object or null")
        if not isinstance(raw["data"], dict):
            raise AuditError(f"{where}: field 'data' must be an object")
        return cls(**raw)


def canonical_json(value: object) -> str:
    """JSON with sorted keys, no spaces and no NaN (the form the hash is taken of)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def json_safe(value: object, where: str = "value") -> Any:  # noqa: ANN401 - any JSON value
    """``value`` as plain JSON data: non-finite floats as strings, tuples as lists, numpy scalars as numbers.

    Args:
        value: None, bool, int, float, str, a mapping with string keys, a list or tuple of these,
            a numpy scalar or array, or a `datetime` (written as UTC ISO 8601).
        where: How messages name the value.

    Returns:
        The same value built from dict, list, str, int, float (finite), bool and None only.

    Raises:
        AuditError: A value of another type, or a mapping key that is not a string.
    """
    if value is None or isinstance(value, bool | str | int | float):
        return _json_scalar(value)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise AuditError(f"{where}: keys must be strings, got {shorten(key)}")
            out[key] = json_safe(item, f"{where}[{key!r}]")
        return out
    if isinstance(value, list | tuple):
        return [json_safe(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, datetime):
        return format_ts(value)
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays
    if callable(tolist) and type(value).__module__ == "numpy":
        return json_safe(tolist(), where)
    raise AuditError(f"{where}: {type(value).__name__} {shorten(value)} cannot be written to the audit log")


def _json_scalar(value: bool | str | int | float | None) -> bool | str | int | float | None:
    """A scalar as JSON data: builtin types only, non-finite floats as strings."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    return float(value) if math.isfinite(value) else NON_FINITE[repr(float(value)).lower()]


def format_ts(moment: datetime) -> str:
    """``moment`` as the log writes times: UTC ISO 8601 to the microsecond with ``Z`` (naive is UTC)."""
    return str(to_utc(moment, what="audit time").strftime(TS_FORMAT))


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class _Line:
    number: int  # 1-based line number in the file
    text: str
    complete: bool  # ends in a newline


class AuditLog:
    """The append-only audit log in one JSON Lines file.

    Args:
        path: The log file (created, with its folder, on the first append).
        clock: Time of writing (default: the system clock in UTC); a naive time is taken as UTC.

    Attributes:
        torn_lines: Line numbers of torn writes that later appends sealed with a newline (found by
            `verify` and `records`); they are not records and the chain runs past them.
    """

    def __init__(self, path: Path, clock: Callable[[], datetime] | None = None) -> None:
        self.path = Path(path)
        self.clock = clock if clock is not None else _utc_now
        self.torn_lines: tuple[int, ...] = ()
        self._thread_lock = threading.Lock()
        self._head: tuple[int, str] | None = None  # (seq, hash) of the latest record this object saw

    def __repr__(self) -> str:
        return f"AuditLog({str(self.path)!r})"

    # ------------------------------------------------------------------ writing

    def append(
        self,
        kind: str,
        request: str,
        who: str,
        what: str,
        *,
        why: str = "",
        before: Mapping[str, float | str] | None = None,
        after: Mapping[str, float | str] | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> AuditRecord:
        """Append one record, chained to the last record in the file, and make it durable.

        Args:
            kind: What the record is (``decision``, ``write``...); a non-empty word.
            request: Id of the request it belongs to.
            who: Person or system that acted.
            what: What happened, one line.
            why: Why, one line.
            before: State before, by name (numbers or text).
            after: State after, by name.
            data: JSON-serialisable extras.

        Returns:
            The record as written (values made JSON-safe, see `json_safe`).

        Raises:
            AuditError: Bad arguments, an unserialisable value, or the file cannot be written.
        """
        for name, text in (("kind", kind), ("request", request), ("who", who), ("what", what), ("why", why)):
            if not isinstance(text, str):
                raise AuditError(f"audit {name} must be text, got {shorten(text)}")
            if "\n" in text or "\r" in text:
                raise AuditError(f"audit {name} must be one line, got {shorten(text)}")
        if not kind.strip():
            raise AuditError("audit kind must not be empty")
        safe_before = None if before is None else json_safe(before, "before")
        safe_after = None if after is None else json_safe(after, "after")
        safe_data = json_safe({} if data is None else data, "data")
        for name, value in (("before", safe_before), ("after", safe_after), ("data", safe_data)):
            if value is not None and not isinstance(value, dict):
                raise AuditError(f"audit {name} must be a mapping, got {shorten(value)}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._thread_lock, self._open(exclusive=True) as fd:
            size = os.fstat(fd).st_size
            last = _last_record(fd, size)
            record = AuditRecord(
                seq=1 if last is None else last.seq + 1,
                ts=format_ts(self.clock()),
                kind=kind,
                request=request,
                who=who,
                what=what,
                why=why,
                before=safe_before,
                after=safe_after,
                data=safe_data,
                prev_hash="" if last is None else last.hash,
            )
            record = _with_hash(record)
            payload = record.to_line() + "\n"
            if size and os.pread(fd, 1, size - 1) != b"\n":
                payload = "\n" + payload  # seal a torn last line; it stays visible, on its own line
            _write_all(fd, payload.encode("utf-8"))
            os.fsync(fd)
            self._head = (record.seq, record.hash)
        return record

    # ------------------------------------------------------------------ reading

    def records(self, request: str | None = None, kind: str | None = None) -> list[AuditRecord]:
        """Records in file order, optionally only those of one request and/or one kind (not verified).

        Raises:
            AuditError: A line that is not a record (other than a torn write), or the file cannot be read.
        """
        out = []
        for rec in self._read()[0]:
            if (request is None or rec.request == request) and (kind is None or rec.kind == kind):
                out.append(rec)
        return out

    def verify(self) -> int:
        """Check the whole chain: sequence, links and hashes of every record.

        Returns:
            The number of records.

        Raises:
            AuditError: Naming the line of the first bad record (edited, removed, reordered or
                inserted), a torn last line (a write cut short by a crash), or a log that ends
                before the latest record this object wrote or saw (its tail was removed).
        """
        records, lines = self._read(check_torn_tail=True)
        for number in self.torn_lines:  # a sealed torn write is always followed by the record that sealed it
            if number + 1 not in lines:
                raise AuditError(f"{self.path.name} line {number}: not a record")
        prev_hash, expected = "", 1
        for rec, number in zip(records, lines, strict=True):
            where = f"{self.path.name} line {number}"
            if rec.seq != expected:
                raise AuditError(
                    f"{where}: record {rec.seq} where record {expected} belongs (a record was removed, "
                    "inserted or reordered)"
                )
            if rec.prev_hash != prev_hash:
                raise AuditError(
                    f"{where}: record {rec.seq} does not chain to the record before it "
                    "(the previous record was edited, removed or reordered)"
                )
            if rec.computed_hash() != rec.hash:
                raise AuditError(f"{where}: record {rec.seq} was altered (its hash does not match its content)")
            prev_hash, expected = rec.hash, expected + 1
        if self._head is not None:
            seq, digest = self._head
            if len(records) < seq:
                raise AuditError(
                    f"{self.path.name}: the log ends at record {len(records)} but record {seq} was written "
                    "before (its tail was removed)"
                )
            if records[seq - 1].hash != digest:
                raise AuditError(f"{self.path.name}: record {seq} differs from the one written before")
        if records:
            self._head = (records[-1].seq, records[-1].hash)
        return len(records)

    def _read(self, *, check_torn_tail: bool = False) -> tuple[list[AuditRecord], list[int]]:
        """All records and their line numbers, read under a shared lock; torn lines noted in `torn_lines`."""
        if not self.path.exists():
            return [], []
        with self._open(exclusive=False) as fd:
            text = _read_all(fd)
        lines = _split_lines(text)
        records: list[AuditRecord] = []
        numbers: list[int] = []
        torn: list[int] = []
        for line in lines:
            where = f"{self.path.name} line {line.number}"
            try:
                rec = AuditRecord.from_line(line.text, where)
            except AuditError as exc:
                if not line.complete:
                    if check_torn_tail:
                        raise AuditError(
                            f"{where}: torn last line (a write was cut short, {len(line.text)} chars); "
                            "the next append seals it and continues the chain"
                        ) from None
                    continue
                if _looks_torn(line.text):
                    torn.append(line.number)
                    continue
                raise exc from None
            records.append(rec)
            numbers.append(line.number)
        self.torn_lines = tuple(torn)
        return records, numbers

    @contextlib.contextmanager
    def _open(self, *, exclusive: bool) -> Iterator[int]:
        """The log's file descriptor (append-only when writing), locked for the block."""
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT if exclusive else os.O_RDONLY
        flags |= getattr(os, "O_CLOEXEC", 0)
        try:
            created = exclusive and not self.path.exists()
            fd = os.open(self.path, flags, 0o644)
        except OSError as exc:
            raise AuditError(f"cannot open audit log {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            if created:
                _fsync_dir(self.path.parent)
            yield fd
        except OSError as exc:
            raise AuditError(f"audit log {self.path}: {exc.strerror or exc}") from None
        finally:
            os.close(fd)  # closing releases the lock


# --------------------------------------------------------------------------------------------
# File helpers
# --------------------------------------------------------------------------------------------


def _with_hash(record: AuditRecord) -> AuditRecord:
    return AuditRecord(**{**record.body(), "hash": record.computed_hash()})


def _looks_torn(text: str) -> bool:
    """Whether a line that is not a record looks like the start of one cut short (a sealed torn write)."""
    return text.startswith("{") and not text.rstrip().endswith("}")


def _write_all(fd: int, payload: bytes) -> None:
    view = memoryview(payload)
    while view:
        try:
            n = os.write(fd, view)
        except InterruptedError:
            continue
        view = view[n:]


def _read_all(fd: int) -> str:
    chunks = []
    offset = 0
    while True:
        chunk = os.pread(fd, 1 << 20, offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AuditError(f"audit log is not UTF-8 at byte {exc.start}") from None


def _split_lines(text: str) -> list[_Line]:
    parts = text.split("\n")
    out = [_Line(i + 1, part, True) for i, part in enumerate(parts[:-1])]
    if parts[-1]:
        out.append(_Line(len(parts), parts[-1], False))
    return out


def _last_record(fd: int, size: int) -> AuditRecord | None:
    """The last complete record of the file, reading backwards from the end (None when there is none).

    Lines that do not parse (torn writes) are skipped; a record is only taken from a whole line.
    """
    end = size
    buffer = b""
    while end > 0:
        start = max(0, end - TAIL_CHUNK)
        buffer = os.pread(fd, end - start, start) + buffer
        end = start
        lines = buffer.split(b"\n")
        # the first piece may be a partial line unless the buffer reaches the start of the file
        candidates = lines if end == 0 else lines[1:]
        for raw in reversed(candidates):
            if not raw.strip():
                continue
            try:
                return AuditRecord.from_line(raw.decode("utf-8"))
            except (AuditError, UnicodeDecodeError):
                continue
        buffer = lines[0] if end > 0 else b""
    return None


def _fsync_dir(folder: Path) -> None:
    """Make a new file's directory entry durable (best effort where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:  # some file systems refuse fsync on a directory
        if exc.errno not in (errno.EINVAL, errno.EBADF):
            raise
    finally:
        os.close(fd)
