"""Hostile files: every input gives refused or rejected results, never an exception or raw bytes on a terminal."""

from __future__ import annotations

import csv
import io
import logging
import os
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pumptwin.features.ingest.contract import REASON_FIELDS, REASON_TAG, is_readings
from pumptwin.features.ingest.sources import (
    MAX_LINE_CHARS,
    REASON_TOO_LONG,
    SourceResult,
    iter_path,
    merge_problems,
    read_csv_file,
    read_file,
    read_path,
)

ESC = "\x1b[2J"
GOOD_ROW = "PS01.P1.FLOW_M3S,2026-11-01T00:00:00Z,1.5,good\n"
TAGS = ("PS01.P1.FLOW_M3S", "PS02.P3.TEMP_DE_C")


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def assert_printable_and_bounded(result: SourceResult, limit: int = 600) -> None:
    for problem in result.problems:
        for text in (problem.problem, str(problem)):
            assert "\x1b" not in text and "\x00" not in text and "\r" not in text
            assert len(text) < limit + len(problem.file)


def assert_accounted(result: SourceResult) -> None:
    """The rows a result holds agree with its problems, and readings are in the contract's shape."""
    if len(result.readings):
        assert is_readings(result.readings)
    assert sum(p.rows_affected for p in result.problems if not p.refused) == len(result.rejected)


# --- text from the file, in messages ---------------------------------------------------------


def test_escape_sequences_in_the_header_do_not_reach_messages_or_logs(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    cases = {
        "nodelim.csv": f"{ESC}tag|ts\n1|2\n",
        "missing.csv": f"tag,ts,{ESC}value\nPS01.P1.FLOW_M3S,2026-11-01T00:00:00Z,1\n",
        "wide.csv": f"ts,{ESC}\n2026-11-01T00:00:00Z,1\n",
        "badline.csv": f"tag,ts,value,quality\n{GOOD_ROW}{ESC},x,1,good,extra\n",
        "cell.csv": f"tag,ts,value,quality\nPS01.P1.FLOW_M3S,2026-11-01T00:00:00Z,{ESC}\r,good\n",
    }
    for name, text in cases.items():
        result = read_csv_file(write_bytes(tmp_path / name, text.encode()))
        assert result.problems, name
        assert_printable_and_bounded(result)
        assert "\\x1b[2J" in " ".join(p.problem for p in result.problems), name
    assert all("\x1b" not in record.getMessage() for record in caplog.records)


def test_a_megabyte_header_cell_gives_a_short_message(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    for header in (f"tag,ts,{'x' * 1_000_000}\n", f"{'y' * 1_000_000};{ESC}\n", f"{'z' * 1_000_000}\n"):
        path = write_bytes(tmp_path / "huge.csv", (header + GOOD_ROW).encode())
        result = read_csv_file(path)
        assert result.refused and result.rows_in == 0
        assert_printable_and_bounded(result)
    assert all(len(record.getMessage()) < 1000 for record in caplog.records)


def test_a_megabyte_column_name_in_a_wide_table_is_bounded(tmp_path):
    name = "PS01." + "Q" * 200_000 + ".X"
    path = write_bytes(tmp_path / "wide.csv", f"ts\t{name}\t{TAGS[0]}\n2026-11-01T00:00:00Z\t1\t2\n".encode())
    result = read_csv_file(path)
    assert len(result.readings) + len(result.rejected) <= 2
    assert_printable_and_bounded(result)


def test_file_names_with_escape_sequences_are_printed_escaped(tmp_path):
    write_bytes(tmp_path / f"{ESC}.csv", b"no delimiter here\n")
    (problem,) = read_path(tmp_path).problems
    assert problem.refused and "\x1b" not in str(problem)


# --- files that are not tables -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\xff\xfe\x00\xd8" * 5000, "delimiter"),
        (bytes(range(256)) * 300, ""),
        (b"\x00" * 70_000, "delimiter"),
        (b",,,,\n,,,,\n;;;;\n" * 10, "missing column(s)"),
        (b"\t\t\t\n" * 10, "empty file (no text)"),
        (b"\r\r\r\r", "empty file"),
    ],
)
def test_binary_and_degenerate_files_are_refused(tmp_path, content, expected):
    result = read_csv_file(write_bytes(tmp_path / "odd.csv", content))
    assert result.refused, result.problems
    assert expected in result.refused[0].problem
    assert_printable_and_bounded(result)


def test_nul_bytes_and_undecodable_bytes_in_rows_are_rejected(tmp_path):
    data = b"tag,ts,value,quality\n" + GOOD_ROW.encode()
    data += b"PS01.P1.FLOW_M3S,2026-11-01T00:01:00Z,1\x00,good\n"
    data += b"PS01.P1.FLOW_M3S,2026-11-01T00:02:00Z,\xff\xfe,good\n"
    data += b"\x00\x00\x00\n"
    result = read_csv_file(write_bytes(tmp_path / "nul.csv", data))
    assert len(result.readings) == 1 and len(result.rejected) == 3
    assert result.rejected["source_row"].tolist() == [2, 3, 4]
    assert_printable_and_bounded(result)
    assert_accounted(result)


@pytest.mark.parametrize("first", [True, False])
def test_text_with_a_nul_is_not_taken_for_the_same_text_without_it(tmp_path, first):
    tagged = "PS01.P1.FLOW_M3S\x00,2026-11-01T00:01:00Z,2,good\ngood\x00x,2026-11-01T00:01:00Z,2,good\n"
    quality = "PS01.P1.FLOW_M3S,2026-11-01T00:02:00Z,3,good\x00\n"
    rows = [tagged + quality, GOOD_ROW]
    text = "tag,ts,value,quality\n" + "".join(rows if first else rows[::-1])
    result = read_csv_file(write_bytes(tmp_path / "nul.csv", text.encode()))
    assert result.readings["value"].tolist() == [1.5]
    assert len(result.rejected) == 3
    assert_accounted(result)


def test_utf16_file_is_read(tmp_path):
    path = write_bytes(tmp_path / "u16.csv", ("tag,ts,value,quality\n" + GOOD_ROW).encode("utf-16"))
    assert len(read_csv_file(path).readings) == 1


def test_extremely_long_lines_are_rejected_without_being_held(tmp_path):
    long_line = "PS01.P1.FLOW_M3S," + "9" * (MAX_LINE_CHARS + 10) + ",1,good\n"
    big_field = 'PS01.P1.FLOW_M3S,2026-11-01T00:03:00Z,"' + "8" * 200_000 + '",good\n'
    text = "tag,ts,value,quality\n" + GOOD_ROW + long_line + GOOD_ROW + big_field + GOOD_ROW
    result = read_csv_file(write_bytes(tmp_path / "long.csv", text.encode()))
    assert len(result.readings) == 3
    assert result.rejected["reason"].tolist() == [REASON_TOO_LONG, REASON_TOO_LONG]
    assert result.rejected["source_row"].tolist() == [2, 4]
    assert all(len(text) <= 256 for text in result.rejected["tag"])
    assert_printable_and_bounded(result)


def test_unterminated_quote_does_not_swallow_the_file(tmp_path):
    text = "tag,ts,value,quality\n" + GOOD_ROW + 'PS01.P1.FLOW_M3S,"2026\n' + GOOD_ROW * 3
    result = read_csv_file(write_bytes(tmp_path / "quote.csv", text.encode()))
    assert len(result.readings) >= 1 and result.rows_in >= 2
    assert_accounted(result)


def test_folder_named_like_a_csv_file_is_walked_and_refused_when_named(tmp_path):
    folder = tmp_path / "data.csv"
    folder.mkdir()
    (folder / "a.csv").write_text("tag,ts,value,quality\n" + GOOD_ROW)
    assert "not a regular file (a folder)" in read_file(folder).refused[0].problem
    assert len(read_path(folder).readings) == 1


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_named_pipe_is_refused_without_being_opened(tmp_path):
    os.mkfifo(tmp_path / "pipe.csv")  # opening it for reading would block until a writer came
    (tmp_path / "good.csv").write_text("tag,ts,value,quality\n" + GOOD_ROW)
    result = read_path(tmp_path)
    assert len(result.readings) == 1
    (problem,) = result.refused
    assert problem.file.endswith("pipe.csv") and "named pipe" in problem.problem
    assert "named pipe" in read_path(tmp_path / "pipe.csv").refused[0].problem


@pytest.mark.skipif(not Path("/dev/null").exists(), reason="needs /dev/null")
def test_device_file_is_refused(tmp_path):
    (tmp_path / "null.csv").symlink_to("/dev/null")
    assert "character device" in read_csv_file(tmp_path / "null.csv").refused[0].problem


# --- symbolic links ----------------------------------------------------------------------------


def test_links_out_of_the_folder_are_refused_and_not_read(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text("tag,ts,value,quality\n" + GOOD_ROW)
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.csv").write_text("tag,ts,value,quality\n" + GOOD_ROW)
    (folder / "link.csv").symlink_to(outside / "secret.csv")
    (folder / "linkdir").symlink_to(outside)
    result = read_path(folder)
    assert len(result.readings) == 1
    refused = {Path(p.file).name: p for p in result.refused}
    assert set(refused) == {"link.csv", "linkdir"}
    assert all(p.problem == "symbolic link to outside the folder: not read" for p in refused.values())
    assert set(result.origin.astype(str)) == {str(folder / "a.csv")}


def test_link_cycles_are_not_walked_round_and_files_are_read_once(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.csv").write_text("tag,ts,value,quality\n" + GOOD_ROW)
    (tmp_path / "sub" / "loop").symlink_to(tmp_path)  # a cycle: sub/loop/sub/loop/...
    (tmp_path / "self").symlink_to(".")
    (tmp_path / "alias.csv").symlink_to(tmp_path / "sub" / "a.csv")  # the same file by another name
    result = read_path(tmp_path)
    assert len(result.readings) == 1 and result.problems == ()


def test_a_loop_of_links_is_refused_and_the_rest_is_read(tmp_path):
    (tmp_path / "good.csv").write_text("tag,ts,value,quality\n" + GOOD_ROW)
    (tmp_path / "a.csv").symlink_to(tmp_path / "b.csv")
    (tmp_path / "b.csv").symlink_to(tmp_path / "a.csv")
    result = read_path(tmp_path)
    assert len(result.readings) == 1
    assert sorted(Path(p.file).name for p in result.refused) == ["a.csv", "b.csv"]
    assert all("loop" in p.problem for p in result.refused)


def test_hidden_links_are_skipped(tmp_path):
    (tmp_path / "a.csv").write_text("tag,ts,value,quality\n" + GOOD_ROW)
    (tmp_path / ".hidden").symlink_to("/")
    assert read_path(tmp_path).problems == ()


# --- properties --------------------------------------------------------------------------------

FIELD = st.one_of(
    st.sampled_from([*TAGS, "2026-11-01T00:00:00Z", "2026-11-01 00:00:00", "1.5", "good", "bad", "", " ", "\x00"]),
    st.text(
        alphabet=st.characters(
            blacklist_categories=("Cs",), blacklist_characters=',;\t"\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029'
        ),
        max_size=8,
    ),
)
WIDE_FIELD = FIELD | st.sampled_from(["1,5", "-0,25e3", "1.5,"])


def blank(line: str, delimiter: str = ",") -> bool:
    """A blank line: no delimiter, and nothing but spaces (the generated fields hold no quotes or line breaks)."""
    return delimiter not in line and not line.strip()


def data_rows(text: str) -> int:
    """Rows after the header: the lines that are not blank."""
    return sum(1 for line in text.split("\n")[1:-1] if not blank(line))


def read_text(text: str | bytes, chunk_readings: int | None = None) -> SourceResult:
    """Write `text` to a file and read it whole, or chunk by chunk and joined."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.csv"
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        return read_csv_file(path) if chunk_readings is None else joined(path, chunk_readings)


def joined(path: Path, chunk_readings: int) -> SourceResult:
    """Read a file chunk by chunk with `iter_path` and join the chunks as `read_csv_file` does."""
    chunks = list(iter_path(path, chunk_readings=chunk_readings))
    readings = [c.readings for c in chunks if len(c.readings)]
    rejected = [c.rejected for c in chunks if len(c.rejected)]
    return SourceResult(
        pd.concat(readings, ignore_index=True) if readings else chunks[0].readings,
        pd.concat(rejected, ignore_index=True) if rejected else chunks[0].rejected,
        merge_problems(p for c in chunks for p in c.problems),
        source=str(path),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(FIELD, min_size=1, max_size=6), max_size=25), st.integers(1, 5))
def test_every_row_of_a_long_table_is_accounted_for(rows, chunk):
    text = "tag,ts,value,quality\n" + "".join(",".join(row) + "\n" for row in rows)
    result = read_text(text, chunk_readings=chunk)
    assert_accounted(result)
    if not result.refused:
        assert result.rows_in == data_rows(text)
        assert len(result.rejected.query("reason == @REASON_FIELDS")) == sum(
            1 for row in rows if len(row) != 4 and not blank(",".join(row))
        )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(WIDE_FIELD, min_size=1, max_size=5), max_size=20), st.integers(1, 5))
def test_every_cell_of_a_wide_table_is_accounted_for(rows, chunk):
    header = ["ts", *TAGS, "note"]
    text = ";".join(header) + "\n" + "".join(";".join(row) + "\n" for row in rows)
    result = read_text(text, chunk_readings=chunk)
    assert_accounted(result)
    expected = 0
    for row in rows:
        if blank(";".join(row), ";"):
            continue  # a blank line
        if len(row) != len(header):
            expected += 1  # rejected whole
        else:
            expected += sum(1 for cell in row[1:] if cell.strip())
    assert result.rows_in == expected
    assert set(result.rejected["reason"]) <= {REASON_FIELDS, REASON_TAG, *result.rejected["reason"]}


HEADER = b"tag,ts,value,quality\n"
VALID = HEADER + (GOOD_ROW * 3 + "PS02.P3.TEMP_DE_C,2026-11-01T00:01:00Z,bad,good\n").encode()
WIDE = f"ts;{TAGS[0]};{TAGS[1]}\n2026-11-01T00:00:00Z;1,5;2\n2026-11-01T00:01:00Z;;x\n".encode()
JUNK = st.binary(min_size=1, max_size=6) | st.sampled_from([b"\x00", b'"', b"\n", b"\r", b"\x1b[2J", b";", b","])


@st.composite
def mutated(draw: st.DrawFn, base: bytes | None = None, keep: int = 0) -> bytes:
    """A valid file (long or wide) with bytes inserted, deleted or replaced after its first `keep` bytes."""
    data = bytearray(base if base is not None else draw(st.sampled_from([VALID, WIDE])))
    for _ in range(draw(st.integers(1, 6))):
        where = draw(st.integers(keep, len(data)))
        kind = draw(st.sampled_from(["insert", "delete", "replace"]))
        junk = draw(JUNK)
        if kind == "insert":
            data[where:where] = junk
        elif kind == "delete":
            del data[where : where + len(junk)]
        else:
            data[where : where + len(junk)] = junk
    return bytes(data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated() | st.binary(max_size=400))
def test_mutated_and_random_files_never_raise_and_chunks_agree(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.csv"
        path.write_bytes(data)
        whole = read_csv_file(path)
        tiny = joined(path, 1)
    assert_accounted(whole)
    assert_printable_and_bounded(whole)
    if whole.refused:
        assert whole.rows_in == 0
    pd.testing.assert_frame_equal(tiny.readings, whole.readings)
    pd.testing.assert_frame_equal(tiny.rejected, whole.rejected)
    assert tiny.problems == whole.problems


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(VALID, keep=len(HEADER)))
def test_every_record_of_a_mutated_long_table_is_accounted_for(data):
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    records = list(csv.reader(io.StringIO(text, newline="")))[1:]
    expected = sum(1 for r in records if len(r) > 1 or (r and r[0].strip()))
    result = read_text(data)
    assert not result.refused
    assert result.rows_in == expected
    assert_accounted(result)
