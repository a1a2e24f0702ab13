"""Fuzzing the file sources: mutated CSV and Parquet never make a reader raise, and no row is lost.

Small valid long and wide CSV files and a Parquet file are mutated (lines dropped, duplicated or
swapped; random and non-UTF-8 bytes, NUL bytes, escape sequences; values replaced by nan, inf,
text or huge numbers; timestamps naive, local or far in the future; fields added or removed; bytes
truncated). `read_path` must return, never raise, and give readings in the contract's shape.
Where each data line is one row (long CSV with row-level mutations), every line is accounted for
as a reading or a rejected row. Through ``pumptwin ingest FILE --full`` the exit code is 0, 1 or 2,
no traceback is printed, and after 0 or 1 the raw store and the quarantine together hold every
row read.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from pumptwin.features.ingest.contract import QUALITIES, TAG_PATTERN, is_readings
from pumptwin.features.ingest.rawstore import RawStore
from pumptwin.features.ingest.sources import SourceResult, read_path
from pumptwin.flows.cli import app

TAGS = ["PS01.P1.SPEED", "PS01.P1.FLOW", "PS02.P2.VIB_DE_RMS"]
TIMES = [f"2026-11-01T00:{m:02d}:00Z" for m in range(4)]

LONG_CSV = "tag,ts,value,quality\n" + "".join(
    f"{tag},{ts},{100.0 + i + 10 * j:.1f},good\n" for j, tag in enumerate(TAGS) for i, ts in enumerate(TIMES)
)
WIDE_CSV = f"ts,{','.join(TAGS)}\n" + "".join(
    f"{ts},{1400 + i},{900.5 + i},{2.0 + i / 10}\n" for i, ts in enumerate(TIMES)
)

VALUE_TOKENS = ["nan", "NaN", "inf", "-inf", "1e308", "1e999", "-1e12", "abc", "", "1,5", "0x1F", "--1", "1e-320"]
TS_TOKENS = [
    "2026-11-01 00:00:00",  # naive
    "2026-11-01T00:00:00+01:00",
    "2099-01-01T00:00:00Z",  # far future
    "1900-01-01T00:00:00Z",
    "2026-13-45T99:99:99Z",
    "not a time",
    "",
    "1730419200",
    "2026-03-29T02:30:00",  # nonexistent local time in Europe
]
TAG_TOKENS = ["PS99.P9.UNKNOWN", "ps01.p1.speed", "PS01..SPEED", "../etc/passwd", "", "\x1b[31mRED\x1b[0m", "P" * 300]
QUALITY_TOKENS = ["good", "bad", "questionable", "substituted", "GOOD", "ok", ""]
# Characters of garbage lines that keep one line one row: no quotes, no line breaks, no other delimiters.
SAFE_TEXT = st.text(alphabet="abcXYZ0123456789,.:-+ Z\u00e9\u00fc", min_size=1, max_size=60).filter(
    lambda s: s.strip() != ""
)


def _lines(text: str) -> list[str]:
    return text.rstrip("\n").split("\n")


@st.composite
def row_mutated_long_csv(draw: st.DrawFn) -> tuple[bytes, int]:
    """Draw a long CSV mutated row by row; return its bytes and its number of non-blank data lines."""
    header, *rows = _lines(LONG_CSV)
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["drop", "dup", "swap", "value", "ts", "tag", "quality", "garbage", "fields"]))
        if not rows:
            rows = [draw(SAFE_TEXT)]
        i = draw(st.integers(0, len(rows) - 1))
        fields = rows[i].split(",")
        if kind == "drop":
            del rows[i]
        elif kind == "dup":
            rows.insert(i, rows[i])
        elif kind == "swap":
            j = draw(st.integers(0, len(rows) - 1))
            rows[i], rows[j] = rows[j], rows[i]
        elif kind == "garbage":
            rows.insert(i, draw(SAFE_TEXT))
        elif kind == "fields":
            rows[i] = ",".join(fields + ["x"] * draw(st.integers(1, 3))) if draw(st.booleans()) else fields[0]
        else:
            column = {"tag": 0, "ts": 1, "value": 2, "quality": 3}[kind]
            pool = {"tag": TAG_TOKENS, "ts": TS_TOKENS, "value": VALUE_TOKENS, "quality": QUALITY_TOKENS}[kind]
            if column < len(fields):
                fields[column] = draw(st.sampled_from(pool)).replace(",", ";")
                rows[i] = ",".join(fields)
    rows = [r for r in rows if r.strip()]
    if not rows:
        rows = ["PS01.P1.SPEED,2026-11-01T00:00:00Z,1,good"]
    encoding = draw(st.sampled_from(["utf-8", "latin-1"]))
    data = ("\n".join([header, *rows]) + "\n").encode(encoding, errors="replace")
    return data, len(rows)


@st.composite
def byte_mutated_csv(draw: st.DrawFn) -> bytes:
    """Draw a long or wide CSV mutated at the byte level (anything may happen to its rows)."""
    data = bytearray(draw(st.sampled_from([LONG_CSV, WIDE_CSV])).encode())
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["insert", "overwrite", "delete", "truncate", "special"]))
        i = draw(st.integers(0, len(data)))
        if kind == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=30))
        elif kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=8))
            data[i : i + len(chunk)] = chunk
        elif kind == "delete":
            del data[i : i + draw(st.integers(1, 40))]
        elif kind == "truncate":
            del data[i:]
        else:
            special = [b"\x00", b"\xff\xfe", b'"', b'"unterminated', b"\r", b"\x1b[2J", b";", b"\t", b"x" * 5000]
            data[i:i] = draw(st.sampled_from(special))
    return bytes(data)


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


@st.composite
def mutated_parquet(draw: st.DrawFn) -> bytes:
    """Draw a Parquet file: a valid one with odd values, or one whose bytes are damaged."""
    n = draw(st.integers(0, 8))
    tags = draw(st.lists(st.sampled_from(TAGS + TAG_TOKENS), min_size=n, max_size=n))
    values = draw(
        st.lists(
            st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([1e308, -1e308]), min_size=n, max_size=n
        )
    )
    ts_kind = draw(st.sampled_from(["utc", "naive", "text", "int", "future"]))
    base = pd.Timestamp("2026-11-01", tz="UTC") + pd.to_timedelta(np.arange(n), unit="min")
    ts: object = {
        "utc": base,
        "naive": base.tz_localize(None),
        "text": draw(st.lists(st.sampled_from(TS_TOKENS + TIMES), min_size=n, max_size=n)),
        "int": np.arange(n, dtype=np.int64),
        "future": base + pd.Timedelta(days=365 * 70),
    }[ts_kind]
    frame = pd.DataFrame({"tag": tags, "ts": ts, "value": values, "quality": draw(st.sampled_from(QUALITY_TOKENS))})
    if draw(st.booleans()):
        frame = frame.drop(columns=[draw(st.sampled_from(list(frame.columns)))])
    data = _parquet_bytes(frame)
    damage = draw(st.sampled_from(["none", "truncate", "overwrite"]))
    if damage == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif damage == "overwrite":
        i = draw(st.integers(0, len(data) - 1))
        chunk = draw(st.binary(min_size=1, max_size=16))
        data = data[:i] + chunk + data[i + len(chunk) :]
    return data


def _check_contract(result: SourceResult) -> None:
    """Assert the readings are in the contract's shape and hold only well-formed rows."""
    readings = result.readings
    assert is_readings(readings)
    assert not readings["ts"].isna().any()
    assert all(TAG_PATTERN.match(tag) for tag in readings["tag"])
    assert set(readings["quality"]) <= set(QUALITIES)
    assert result.rows_in == len(readings) + len(result.rejected)


def _read_bytes(data: bytes, name: str) -> SourceResult:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        return read_path(path)


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(case=row_mutated_long_csv())
def test_row_mutated_long_csv_accounts_for_every_line(case: tuple[bytes, int]) -> None:
    data, lines = case
    result = _read_bytes(data, "readings.csv")
    _check_contract(result)
    if not result.refused:
        assert result.rows_in == lines


@FUZZ
@given(data=byte_mutated_csv())
def test_byte_mutated_csv_never_raises(data: bytes) -> None:
    _check_contract(_read_bytes(data, "readings.csv"))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated_parquet())
def test_mutated_parquet_never_raises(data: bytes) -> None:
    _check_contract(_read_bytes(data, "readings.parquet"))


def _keys(frame: pd.DataFrame) -> set[tuple[str, int]]:
    return set(zip(frame["tag"].astype(str), frame["ts"].astype("int64"), strict=True))


def _ingest_through_cli(data: bytes, name: str) -> None:
    """Run ``pumptwin ingest FILE --full`` into a fresh home and check exit code, output and rows."""
    runner = CliRunner()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        home = Path(tmp) / "home"
        with mock.patch.dict(os.environ, {"PUMPTWIN_HOME": str(home)}):
            result = runner.invoke(app, ["ingest", str(path), "--full"])
        output = result.output + (result.stderr if result.stderr_bytes is not None else "")
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"ingest raised {result.exception!r}: {output}") from result.exception
        assert result.exit_code in {0, 1, 2}, output
        assert "Traceback" not in output
        if result.exit_code == 2:
            assert "error:" in output
            return
        read = read_path(path)
        store = RawStore(home / "raw")
        stored = store.read()
        quarantined = store.read_quarantine()
        read_keys, stored_keys = _keys(read.readings), _keys(stored)
        assert stored_keys <= read_keys, "the store holds a reading that was not read"
        assert not stored.duplicated(["tag", "ts"]).any(), "the store holds a (tag, ts) twice"
        missing = len(read_keys - stored_keys)
        assert len(quarantined) >= len(read.rejected) + missing, (
            f"{missing} readings neither stored nor quarantined; {len(read.rejected)} rejected by the source,"
            f" {len(quarantined)} quarantined"
        )
        if result.exit_code == 0:
            assert len(quarantined) == 0 and not read.refused


CLI_FUZZ = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@CLI_FUZZ
@given(case=row_mutated_long_csv())
def test_ingest_command_keeps_every_row_of_long_csv(case: tuple[bytes, int]) -> None:
    _ingest_through_cli(case[0], "readings.csv")


@CLI_FUZZ
@given(data=byte_mutated_csv())
def test_ingest_command_keeps_every_row_of_damaged_csv(data: bytes) -> None:
    _ingest_through_cli(data, "readings.csv")


@CLI_FUZZ
@given(data=mutated_parquet())
def test_ingest_command_keeps_every_row_of_parquet(data: bytes) -> None:
    _ingest_through_cli(data, "readings.parquet")


def test_folder_with_a_symlink_loop_reads_its_good_files(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "good.csv").write_text(LONG_CSV)
    (folder / "a").symlink_to(folder / "b")
    (folder / "b").symlink_to(folder / "a")
    (folder / "self").symlink_to(folder)
    result = read_path(folder)
    _check_contract(result)
    assert len(result.readings) == len(_lines(LONG_CSV)) - 1


def test_folder_link_to_a_file_outside_is_not_read(tmp_path: Path) -> None:
    outside = tmp_path / "outside.csv"
    outside.write_text("tag,ts,value,quality\nPS09.P9.SPEED,2026-11-01T00:00:00Z,1,good\n")
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "good.csv").write_text(LONG_CSV)
    (folder / "link.csv").symlink_to(outside)
    result = read_path(folder)
    _check_contract(result)
    assert "PS09.P9.SPEED" not in set(result.readings["tag"])
