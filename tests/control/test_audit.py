"""The audit log: chain, restarts, concurrent writers, tampering, torn writes, filters."""

from __future__ import annotations

import json
import math
import multiprocessing
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from pumptwin.control.audit import AuditError, AuditLog, AuditRecord


class FakeClock:
    """A clock that advances one second per call."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def fill(log: AuditLog, n: int, request: str = "REQ-1") -> list[AuditRecord]:
    return [log.append("write", request, "me", f"step {i}", before={"x": i}, after={"x": i + 1}) for i in range(n)]


def lines(path: Path) -> list[str]:
    return path.read_text().split("\n")[:-1]


def test_records_chain_and_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "log.jsonl"
    log = AuditLog(path, clock=FakeClock())
    first = log.append("recommendation", "REQ-1", "pumptwin", "lower PS01.P1 to 0.93", why="saves energy")
    second = log.append(
        "decision",
        "REQ-1",
        "j.doe",
        "approved",
        before={"PS01.P1.speed": 0.95, "note": "text"},
        after={"PS01.P1.speed": np.float64(0.93)},
        data={"nan": math.nan, "inf": -math.inf, "tuple": (1, np.int64(2)), "arr": np.array([0.5, np.nan])},
    )
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == "" and second.prev_hash == first.hash and len(first.hash) == 64
    assert first.ts == "2026-03-01T12:00:01.000000Z" and second.ts == "2026-03-01T12:00:02.000000Z"
    assert second.data == {"nan": "NaN", "inf": "-Infinity", "tuple": [1, 2], "arr": [0.5, "NaN"]}
    assert log.records() == [first, second]  # what append returned is what is stored
    assert log.verify() == 2
    stored = [json.loads(line) for line in lines(path)]
    assert [r["seq"] for r in stored] == [1, 2]
    assert "NaN" not in path.read_text().replace('"NaN"', "")  # no bare NaN tokens: strict JSON


def test_bad_values_are_refused(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "log.jsonl")
    with pytest.raises(AuditError, match="object"):
        log.append("write", "R", "me", "x", data={"obj": object()})
    with pytest.raises(AuditError, match="one line"):
        log.append("write", "R", "me", "two\nlines")
    with pytest.raises(AuditError, match="keys must be strings"):
        log.append("write", "R", "me", "x", before={1: 2.0})  # type: ignore[dict-item]
    assert log.verify() == 0 and log.records() == []


def test_restart_continues_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    fill(AuditLog(path), 3)
    again = AuditLog(path)
    rec = again.append("outcome", "REQ-1", "pumptwin", "saved 3.9 %")
    assert rec.seq == 4 and rec.prev_hash == again.records()[2].hash
    assert again.verify() == 4


def test_filters(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "log.jsonl")
    fill(log, 2, "REQ-1")
    fill(log, 3, "REQ-2")
    log.append("decision", "REQ-2", "j.doe", "rejected")
    assert len(log.records(request="REQ-2")) == 4
    assert [r.what for r in log.records(request="REQ-2", kind="decision")] == ["rejected"]
    assert len(log.records(kind="write")) == 5
    assert log.records(request="REQ-9") == []


def test_threads_append_without_losing_or_forking(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        log = AuditLog(path)  # separate objects, separate file descriptors, as separate writers have
        try:
            for i in range(25):
                log.append("write", name, name, f"{name} {i}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"T{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    log = AuditLog(path)
    assert log.verify() == 100
    for i in range(4):  # every writer's records, in its own order
        assert [r.what for r in log.records(request=f"T{i}")] == [f"T{i} {k}" for k in range(25)]


def _process_writer(path: str, name: str, n: int) -> None:
    log = AuditLog(Path(path))
    for i in range(n):
        log.append("write", name, name, f"{name} {i}", data={"i": i})


def test_processes_append_without_losing_or_forking(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_process_writer, args=(str(path), f"P{i}", 20)) for i in range(2)]
    for p in procs:
        p.start()
    _process_writer(str(path), "MAIN", 20)  # this process writes at the same time
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    log = AuditLog(path)
    assert log.verify() == 60
    assert [r.seq for r in log.records()] == list(range(1, 61))
    for name in ("P0", "P1", "MAIN"):
        assert [r.data["i"] for r in log.records(request=name)] == list(range(20))


def test_edited_value_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    fill(AuditLog(path), 4)
    rows = lines(path)
    rows[1] = rows[1].replace('"after":{"x":2}', '"after":{"x":9}')
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(AuditError, match="line 2: record 2 was altered"):
        AuditLog(path).verify()


def test_edit_with_recomputed_hash_breaks_the_next_link(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    fill(AuditLog(path), 4)
    rows = lines(path)
    rec = AuditRecord.from_line(rows[1])
    forged = AuditRecord(**{**rec.body(), "what": "something else", "hash": ""})
    forged = AuditRecord(**{**forged.body(), "hash": forged.computed_hash()})
    rows[1] = forged.to_line()
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(AuditError, match="line 3: record 3 does not chain"):
        AuditLog(path).verify()


def test_deleted_line_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    fill(AuditLog(path), 4)
    rows = lines(path)
    del rows[1]
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(AuditError, match="line 2: record 3 where record 2 belongs"):
        AuditLog(path).verify()


def test_swapped_lines_are_detected(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    fill(AuditLog(path), 4)
    rows = lines(path)
    rows[1], rows[2] = rows[2], rows[1]
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(AuditError, match="line 2: record 3 where record 2 belongs"):
        AuditLog(path).verify()


def test_removed_tail_is_detected_by_a_writer_that_saw_it(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    log = AuditLog(path)
    fill(log, 3)
    rows = lines(path)
    path.write_text("\n".join(rows[:2]) + "\n")
    assert AuditLog(path).verify() == 2  # a fresh reader cannot know
    with pytest.raises(AuditError, match="tail was removed"):
        log.verify()


def test_torn_last_line_is_reported_then_sealed(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    fill(AuditLog(path), 3)
    whole = path.read_text()
    last = lines(path)[-1]
    torn = whole[: len(whole) - len(last) - 1] + last[:40]  # the third record cut short, no newline
    path.write_text(torn)
    log = AuditLog(path)
    with pytest.raises(AuditError, match="line 3: torn last line"):
        log.verify()
    assert [r.seq for r in log.records()] == [1, 2]  # readers skip it
    rec = log.append("rollback", "REQ-1", "interlocks", "after the crash")
    assert rec.seq == 3 and rec.prev_hash == log.records()[1].hash
    text = path.read_text()
    assert text.startswith(torn) and text.split("\n")[2] == last[:40]  # kept, on its own line
    assert log.verify() == 3 and log.torn_lines == (3,)
    assert log.records()[-1] == rec


def test_garbage_line_is_not_a_torn_write(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    fill(AuditLog(path), 2)
    with path.open("a") as f:
        f.write("hello\n")
    with pytest.raises(AuditError, match="line 3: not JSON"):
        AuditLog(path).verify()
    path.write_text("\n".join(lines(path)[:2]) + '\n{"seq": 3, "ts"\n')  # looks torn, but nothing sealed it
    with pytest.raises(AuditError, match="line 3: not a record"):
        AuditLog(path).verify()


def test_file_is_only_appended(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    log = AuditLog(path)
    fill(log, 2)
    before = path.read_bytes()
    log.append("label", "REQ-1", "j.doe", "bearing wear confirmed")
    assert path.read_bytes().startswith(before)
