"""Chunked reading: `iter_path` gives, chunk by chunk, exactly what reading the whole file gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pumptwin.features.ingest.contract import REASON_FIELDS, REASON_TS_NAIVE, REASON_VALUE
from pumptwin.features.ingest.sources import (
    SourceResult,
    iter_csv_file,
    iter_file,
    iter_parquet_file,
    iter_path,
    merge_problems,
    read_csv_file,
    read_file,
    read_path,
)

TAGS = ("PS01.P1.FLOW_M3S", "PS01.P1.VIB_DE_RMS", "PS02.P3.TEMP_DE_C")
CHUNK_SIZES = (1, 2, 3, 5, 17, 1_000_000)


def stamp(i: int) -> str:
    return (pd.Timestamp("2026-11-01T00:00:00Z") + pd.Timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ")


def long_csv(rows: int = 40, delimiter: str = ",", decimal: str = ".") -> str:
    """A long table with a bad value every 7th row and a naive timestamp every 11th.

    | tag              | ts                   | value | quality |
    |------------------|----------------------|-------|---------|
    | PS01.P1.FLOW_M3S | 2026-11-01T00:00:00Z | 0.5   | good    |
    """
    lines = [delimiter.join(("tag", "ts", "value", "quality"))]
    for i in range(rows):
        ts = stamp(i).rstrip("Z") if i % 11 == 10 else stamp(i)
        value = "I/O Timeout" if i % 7 == 6 else f"{i}.5".replace(".", decimal)
        lines.append(delimiter.join((TAGS[i % 3], ts, value, "good")))
    return "\n".join(lines) + "\n"


def wide_csv(rows: int = 30, delimiter: str = ",", decimal: str = ".") -> str:
    """A wide table with empty cells, a bad value and a column that is not a tag.

    | timestamp            | PS01.P1.FLOW_M3S | PS01.P1.VIB_DE_RMS | PS02.P3.TEMP_DE_C | comment |
    |----------------------|------------------|--------------------|-------------------|---------|
    | 2026-11-01T00:00:00Z | 0.0              | 1.5                | 40                |         |
    """
    lines = [delimiter.join(("timestamp", *TAGS, "comment"))]
    for i in range(rows):
        cells = [f"{i}.0", f"{i}.5", f"{40 + i}"]
        if i % 4 == 1:
            cells[0] = ""
        if i % 9 == 8:
            cells[2] = "n/a"
        comment = "checked" if i % 10 == 3 else ""
        lines.append(delimiter.join([stamp(i), *(c.replace(".", decimal) for c in cells), comment]))
    return "\n".join(lines) + "\n"


def with_bad_lines(text: str, delimiter: str = ",") -> str:
    """Insert lines with too many and too few fields, and blank lines, among the rows."""
    lines = text.splitlines()
    out = [lines[0]]
    for i, line in enumerate(lines[1:]):
        out.append(line)
        if i % 6 == 2:
            out.append(line + delimiter + "extra")
        if i % 8 == 5:
            out.append(line.split(delimiter)[0])
        if i % 10 == 4:
            out.append("")
    return "\n".join(out) + "\n"


def joined(chunks: list[SourceResult]) -> tuple[pd.DataFrame, pd.DataFrame, tuple]:
    readings = [c.readings for c in chunks if len(c.readings)]
    rejected = [c.rejected for c in chunks if len(c.rejected)]
    return (
        pd.concat(readings, ignore_index=True) if readings else chunks[0].readings,
        pd.concat(rejected, ignore_index=True) if rejected else chunks[0].rejected,
        merge_problems(p for c in chunks for p in c.problems),
    )


def assert_same_as_whole(path: Path, whole: SourceResult, sizes: tuple[int, ...] = CHUNK_SIZES) -> None:
    for size in sizes:
        chunks = list(iter_path(path, chunk_readings=size))
        readings, rejected, problems = joined(chunks)
        pd.testing.assert_frame_equal(readings, whole.readings)
        pd.testing.assert_frame_equal(rejected, whole.rejected)
        assert problems == whole.problems
        assert all(c.source == str(path) for c in chunks)


CSV_CASES = {
    "long": long_csv,
    "long_semicolon_decimal_comma": lambda: long_csv(delimiter=";", decimal=","),
    "long_tab": lambda: long_csv(delimiter="\t", decimal=","),
    "wide": wide_csv,
    "wide_semicolon_decimal_comma": lambda: wide_csv(delimiter=";", decimal=","),
    "long_bad_lines": lambda: with_bad_lines(long_csv()),
    "wide_bad_lines": lambda: with_bad_lines(wide_csv()),
    "wide_bad_lines_semicolon": lambda: with_bad_lines(wide_csv(delimiter=";", decimal=","), ";"),
}


@pytest.mark.parametrize("case", sorted(CSV_CASES))
def test_chunked_csv_equals_whole_file(tmp_path, case):
    path = tmp_path / f"{case}.csv"
    path.write_text(CSV_CASES[case]())
    whole = read_csv_file(path)
    assert len(whole.readings) > 0 and whole.refused == ()
    assert_same_as_whole(path, whole)
    assert len(list(iter_csv_file(path, chunk_readings=1))) > 10


def test_tiny_chunks_stay_small_and_account_for_every_row(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text(with_bad_lines(wide_csv()))
    whole = read_csv_file(path)
    for size in (1, 4, 8, 13):
        chunks = list(iter_file(path, chunk_readings=size))
        per_row = len(TAGS) + 1  # a wide row holds at most one reading per tag column
        assert all(c.rows_in <= max(size, per_row) for c in chunks)
        assert sum(c.rows_in for c in chunks) == whole.rows_in


def test_source_row_counts_from_the_top_of_the_file(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text(with_bad_lines(long_csv(30)))
    data_rows = [line for line in path.read_text().splitlines()[1:] if line]
    for size in (1, 3, 1_000_000):
        result = read_path(path) if size == 1_000_000 else joined(list(iter_path(path, chunk_readings=size)))[1]
        rejected = result.rejected if isinstance(result, SourceResult) else result
        for row, reason in zip(rejected["source_row"], rejected["reason"], strict=True):
            fields = data_rows[row - 1].split(",")
            if reason == REASON_FIELDS:
                assert len(fields) != 4
            elif reason == REASON_VALUE:
                assert fields[2] == "I/O Timeout"
            else:
                assert reason == REASON_TS_NAIVE and not fields[1].endswith("Z")
        assert rejected["source_row"].is_monotonic_increasing


def test_decimal_comma_and_bad_lines_in_the_same_chunked_file(tmp_path):
    path = tmp_path / "eu.csv"
    path.write_text("tag;ts;value;quality\n" + "PS01.P1.FLOW_M3S;2026-11-01T00:00:00Z;0,52;good\n" * 3 + "a;b\n")
    chunks = list(iter_path(path, chunk_readings=1))
    assert len(chunks) == 4
    assert [len(c.readings) for c in chunks] == [1, 1, 1, 0]
    assert chunks[0].readings["value"].tolist() == [0.52]
    assert chunks[3].rejected[["source_row", "reason"]].to_dict("records") == [
        {"source_row": 4, "reason": REASON_FIELDS}
    ]


def test_refused_file_is_one_chunk_without_rows(tmp_path):
    path = tmp_path / "noq.csv"
    path.write_text("tag,ts,value\n" + "PS01.P1.FLOW_M3S,2026-11-01T00:00:00Z,1\n" * 5)
    chunks = list(iter_path(path, chunk_readings=1))
    assert len(chunks) == 1
    (problem,) = chunks[0].problems
    assert problem.refused and problem.rows_affected == 5 and chunks[0].rows_in == 0


def test_header_only_file_is_refused_once(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("ts,PS01.P1.FLOW_M3S\n\n\n")
    chunks = list(iter_path(path, chunk_readings=1))
    assert len(chunks) == 1 and "header only" in chunks[0].problems[0].problem


def parquet_frames() -> dict[str, pd.DataFrame]:
    stamps = pd.date_range("2026-11-01", periods=23, freq="1s", tz="UTC")
    long = pd.DataFrame(
        {
            "tag": [TAGS[i % 3] if i % 10 != 9 else "nope" for i in range(23)],
            "ts": stamps,
            "value": np.arange(23.0),
            "quality": ["good" if i % 8 != 7 else "meh" for i in range(23)],
        }
    )
    wide = pd.DataFrame(
        {"ts": stamps, **{tag: np.where(np.arange(23) % (k + 2) == 0, np.nan, k) for k, tag in enumerate(TAGS)}}
    )
    naive = wide.assign(ts=stamps.tz_localize(None))
    return {"long": long, "wide": wide, "wide_naive": naive}


@pytest.mark.parametrize("case", sorted(parquet_frames()))
def test_chunked_parquet_equals_whole_file(tmp_path, case):
    frame = parquet_frames()[case]
    path = tmp_path / f"{case}.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=5)
    whole = read_file(path)
    assert whole.rows_in > 0
    assert_same_as_whole(path, whole)
    assert len(list(iter_parquet_file(path, chunk_readings=1))) == len(frame)


def test_parquet_corrupt_past_its_first_batch_keeps_the_rows_before(tmp_path):
    frame = parquet_frames()["wide"]
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "ok.parquet", row_group_size=10)
    column = pq.ParquetFile(tmp_path / "ok.parquet").metadata.row_group(1).column(1)
    data = bytearray((tmp_path / "ok.parquet").read_bytes())
    data[column.data_page_offset : column.data_page_offset + column.total_compressed_size] = b"\xff" * (
        column.total_compressed_size
    )
    (tmp_path / "bad.parquet").write_bytes(bytes(data))
    chunks = list(iter_parquet_file(tmp_path / "bad.parquet", chunk_readings=len(TAGS) * 10))
    assert len(chunks) == 2 and chunks[0].problems == () and chunks[0].rows_in > 0
    (problem,) = chunks[1].problems
    assert problem.refused and problem.rows_affected == len(frame) - 10 and "after row 10" in problem.problem
    assert "\n" not in problem.problem


def test_folder_chunks_come_file_by_file(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.csv").write_text(long_csv(12))
    (tmp_path / "sub" / "b.csv").write_text(wide_csv(9))
    pq.write_table(pa.Table.from_pandas(parquet_frames()["long"]), tmp_path / "c.parquet", row_group_size=4)
    whole = read_path(tmp_path)
    chunks = list(iter_path(tmp_path, chunk_readings=2))
    order = list(dict.fromkeys(c.source.rsplit("/", 1)[-1] for c in chunks))
    assert order == ["a.csv", "c.parquet", "b.csv"]  # sorted by path, as `read_path` reads them
    readings, rejected, problems = joined(chunks)
    pd.testing.assert_frame_equal(readings, whole.readings)
    pd.testing.assert_frame_equal(rejected, whole.rejected)
    assert problems == whole.problems
    origin = np.concatenate([np.full(len(c.readings), c.source, dtype=object) for c in chunks])
    assert whole.origin is not None and whole.origin.astype(object).tolist() == origin.tolist()


def test_chunk_size_below_one_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="chunk_readings"):
        iter_path(tmp_path, chunk_readings=0)
