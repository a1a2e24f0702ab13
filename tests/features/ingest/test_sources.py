"""Sources: every bad input gives a clear message naming the file, and no good row is lost."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pumptwin.features.ingest.contract import (
    QUALITIES,
    REASON_FIELDS,
    REASON_QUALITY,
    REASON_TAG,
    REASON_TS_LOCAL,
    REASON_TS_NAIVE,
    REASON_TS_UNPARSED,
    REASON_VALUE,
    REJECTED_COLUMNS,
    TS_DTYPE,
    is_readings,
)
from pumptwin.features.ingest.sources import from_frame, read_csv_file, read_file, read_parquet_file, read_path

LONG_CSV = """tag,ts,value,quality
PS01.P1.FLOW_M3S,2026-11-01T00:00:00Z,0.52,good
PS01.P1.FLOW_M3S,2026-11-01T00:01:00Z,0.53,Good
PS01.P1.VIB_DE_RMS,2026-11-01T00:00:00+01:00,2.5,questionable
"""


def write(path, text, encoding="utf-8"):
    path.write_text(text, encoding=encoding)
    return path


def only_problem(result):
    assert len(result.problems) == 1, result.problems
    return result.problems[0]


# --- good input ------------------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_long_csv_with_any_supported_delimiter(tmp_path, delimiter):
    path = write(tmp_path / "long.csv", LONG_CSV.replace(",", delimiter))
    result = read_csv_file(path)
    assert result.problems == ()
    assert is_readings(result.readings)
    assert result.readings["ts"].dtype == TS_DTYPE
    assert result.readings["quality"].tolist() == ["good", "good", "questionable"]
    assert result.readings["ts"].iloc[2] == pd.Timestamp("2026-10-31T23:00:00Z")
    assert result.readings["value"].tolist() == [0.52, 0.53, 2.5]


def test_semicolon_csv_accepts_decimal_commas(tmp_path):
    path = write(tmp_path / "eu.csv", "tag;ts;value;quality\nPS01.P1.FLOW_M3S;2026-11-01T00:00:00Z;0,52;good\n")
    result = read_csv_file(path)
    assert result.readings["value"].tolist() == [0.52]
    assert result.problems == ()


def test_pi_style_column_names_and_bom_are_understood(tmp_path):
    text = "\ufeffTagName; Timestamp ;Value;Status\nPS01.P1.FLOW_M3S;2026-11-01 00:00:00 UTC;1.5;good\n"
    result = read_csv_file(write(tmp_path / "pi.csv", text))
    assert result.problems == ()
    assert result.readings["ts"].tolist() == [pd.Timestamp("2026-11-01T00:00:00Z")]


def test_wide_csv_melts_to_long_with_good_quality_and_skips_empty_cells(tmp_path):
    text = (
        "timestamp,PS01.P1.FLOW_M3S,PS01.P1.VIB_DE_RMS\n"
        "2026-11-01T00:00:00Z,0.5,2.1\n"
        "2026-11-01T00:01:00Z,,2.2\n"
        "2026-11-01T00:02:00Z,0.7,\n"
    )
    result = read_csv_file(write(tmp_path / "wide.csv", text))
    assert result.problems == ()
    got = result.readings.sort_values(["tag", "ts"]).reset_index(drop=True)
    assert got["tag"].tolist() == ["PS01.P1.FLOW_M3S"] * 2 + ["PS01.P1.VIB_DE_RMS"] * 2
    assert got["value"].tolist() == [0.5, 0.7, 2.1, 2.2]
    assert set(got["quality"]) == {"good"}
    assert got["ts"].iloc[1] == pd.Timestamp("2026-11-01T00:02:00Z")


def test_wide_parquet_with_typed_columns(tmp_path):
    frame = pd.DataFrame(
        {
            "ts": pd.date_range("2026-11-01", periods=3, freq="1min", tz="UTC"),
            "PS01.P1.FLOW_M3S": [0.5, np.nan, 0.7],
            "PS02.P3.TEMP_DE_C": [40.0, 41.0, 42.0],
        }
    )
    frame.to_parquet(tmp_path / "wide.parquet")
    result = read_parquet_file(tmp_path / "wide.parquet")
    assert len(result.readings) == 5
    assert result.rejected.empty


def test_wide_table_rejects_cells_in_columns_that_are_not_tags(tmp_path):
    text = "time,PS01.P1.FLOW_M3S,comment\n2026-11-01T00:00:00Z,0.5,checked\n"
    result = read_csv_file(write(tmp_path / "wide.csv", text))
    assert len(result.readings) == 1
    assert result.rejected["reason"].tolist() == [REASON_TAG]
    assert result.rejected["tag"].tolist() == ["comment"]


def test_long_parquet_round_trips(tmp_path, make_readings):
    frame = make_readings()
    frame.to_parquet(tmp_path / "long.parquet")
    result = read_file(tmp_path / "long.parquet")
    pd.testing.assert_frame_equal(result.readings, frame)


# --- bad input: files refused ----------------------------------------------------------------


def test_wrong_delimiter_is_refused_naming_file_and_header(tmp_path):
    path = write(tmp_path / "pipes.csv", "tag|ts|value|quality\nPS01.P1.FLOW_M3S|2026-11-01T00:00:00Z|1|good\n")
    result = read_csv_file(path)
    problem = only_problem(result)
    assert problem.refused
    assert problem.file == str(path)
    assert "delimiter" in problem.problem and "tag|ts|value|quality" in problem.problem
    assert result.readings.empty
    assert "pipes.csv" in str(problem)


def test_missing_columns_are_named(tmp_path):
    path = write(tmp_path / "noq.csv", "tag,ts,value\nPS01.P1.FLOW_M3S,2026-11-01T00:00:00Z,1\n")
    problem = only_problem(read_csv_file(path))
    assert problem.refused and problem.rows_affected == 1
    assert "missing column(s): quality" in problem.problem
    assert "found: tag, ts, value" in problem.problem


def test_wide_table_without_timestamp_column_is_refused(tmp_path):
    path = write(tmp_path / "wide.csv", "when,PS01.P1.FLOW_M3S\n2026-11-01T00:00:00Z,1\n")
    problem = only_problem(read_csv_file(path))
    assert problem.refused and "missing column(s): ts" in problem.problem


def test_missing_quality_can_default_for_frames(make_readings):
    frame = make_readings().drop(columns="quality")
    assert from_frame(frame, "sim").refused[0].problem.startswith("missing column(s): quality")
    assert set(from_frame(frame, "sim", default_quality="good").readings["quality"]) == {"good"}


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"", "empty file (0 bytes)"), (b"\n\n  \n", "empty file (no text)"), (b"tag,ts,value,quality\n", "header only")],
)
def test_empty_files_are_refused(tmp_path, content, expected):
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    problem = only_problem(read_csv_file(path))
    assert problem.refused and expected in problem.problem and problem.file == str(path)


def test_truncated_parquet_is_refused_and_other_files_go_on(tmp_path, make_readings):
    make_readings().to_parquet(tmp_path / "good.parquet")
    data = (tmp_path / "good.parquet").read_bytes()
    (tmp_path / "truncated.parquet").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.parquet").write_bytes(b"")
    result = read_path(tmp_path)
    assert len(result.readings) == len(make_readings())
    problems = {p.file.rsplit("/", 1)[-1]: p for p in result.problems}
    assert set(problems) == {"truncated.parquet", "empty.parquet"}
    assert problems["truncated.parquet"].refused
    assert "not a readable parquet file" in problems["truncated.parquet"].problem
    assert "empty file" in problems["empty.parquet"].problem


def test_parquet_that_is_not_parquet_is_refused(tmp_path):
    path = write(tmp_path / "fake.parquet", "tag,ts\n")
    assert "not a readable parquet file" in only_problem(read_parquet_file(path)).problem


def test_unsupported_file_and_missing_path_are_refused(tmp_path):
    write(tmp_path / "notes.md", "# notes")
    assert "unsupported file type '.md'" in only_problem(read_path(tmp_path)).problem
    assert "no such file or folder" in only_problem(read_path(tmp_path / "nope")).problem
    (tmp_path / "sub").mkdir()
    assert "holds no files" in only_problem(read_path(tmp_path / "sub")).problem


# --- bad input: rows rejected ----------------------------------------------------------------


def test_text_in_value_column_is_rejected_with_raw_fields_and_the_rest_goes_on(tmp_path):
    text = LONG_CSV + "PS01.P1.FLOW_M3S,2026-11-01T00:02:00Z,I/O Timeout,bad\n"
    text += "PS01.P1.FLOW_M3S,2026-11-01T00:03:00Z,,bad\n"
    path = write(tmp_path / "text.csv", text)
    result = read_csv_file(path)
    assert len(result.readings) == 4  # the empty value is a reading with value NaN
    assert np.isnan(result.readings["value"].iloc[-1])
    rejected = result.rejected
    assert list(rejected.columns) == list(REJECTED_COLUMNS)
    assert rejected.to_dict("records") == [
        {
            "tag": "PS01.P1.FLOW_M3S",
            "ts": "2026-11-01T00:02:00Z",
            "value": "I/O Timeout",
            "quality": "bad",
            "source_file": str(path),
            "source_row": 4,
            "reason": REASON_VALUE,
        }
    ]
    problem = only_problem(result)
    assert not problem.refused and problem.rows_affected == 1 and problem.file == str(path)
    assert "value is not a number" in problem.problem and "I/O Timeout" in problem.problem


def test_timestamps_without_time_zone_are_rejected_unless_a_zone_is_assumed(tmp_path):
    text = "tag,ts,value,quality\nPS01.P1.FLOW_M3S,2026-11-01 01:00:00,1,good\n"
    text += "PS01.P1.FLOW_M3S,2026-11-01T00:30Z,2,good\n"
    path = write(tmp_path / "naive.csv", text)
    result = read_csv_file(path)
    assert result.rejected["reason"].tolist() == [REASON_TS_NAIVE]
    assert result.rejected["ts"].tolist() == ["2026-11-01 01:00:00"]
    assert len(result.readings) == 1
    assumed = read_csv_file(path, assume_tz="Europe/Berlin")
    assert assumed.rejected.empty
    assert assumed.readings["ts"].tolist() == [pd.Timestamp("2026-11-01T00:00Z"), pd.Timestamp("2026-11-01T00:30Z")]


def test_ambiguous_local_time_is_rejected_when_a_zone_is_assumed(tmp_path):
    text = "tag,ts,value,quality\nPS01.P1.FLOW_M3S,2026-10-25 02:30:00,1,good\n"  # 02:30 happens twice
    text += "PS01.P1.FLOW_M3S,2026-03-29 02:30:00,1,good\n"  # and not at all
    result = read_csv_file(write(tmp_path / "dst.csv", text), assume_tz="Europe/Berlin")
    assert result.rejected["reason"].tolist() == [REASON_TS_LOCAL, REASON_TS_LOCAL]


def test_naive_parquet_timestamps_are_rejected(tmp_path, make_readings):
    frame = make_readings()
    frame["ts"] = frame["ts"].dt.tz_localize(None)
    frame.to_parquet(tmp_path / "naive.parquet")
    result = read_parquet_file(tmp_path / "naive.parquet")
    assert result.readings.empty
    assert set(result.rejected["reason"]) == {REASON_TS_NAIVE}
    assert only_problem(result).rows_affected == len(frame)
    assert len(read_parquet_file(tmp_path / "naive.parquet", assume_tz="UTC").readings) == len(frame)


def test_bad_tags_timestamps_and_flags_each_get_their_reason():
    frame = pd.DataFrame(
        {
            "tag": ["PS01.P1.FLOW_M3S", "PS01-FLOW", None, "PS01.P1.FLOW_M3S", "PS01.P1.FLOW_M3S"],
            "ts": ["2026-11-01T00:00Z"] * 3 + ["yesterday+01:00", "2026-11-01T00:00Z"],
            "value": ["1", "1", "1", "1", "1"],
            "quality": ["good", "good", "good", "good", "GOOD-ish"],
        }
    )
    result = from_frame(frame, "memory")
    assert len(result.readings) == 1
    assert result.rejected["reason"].tolist() == [REASON_TAG, REASON_TAG, REASON_TS_UNPARSED, REASON_QUALITY]
    assert result.rejected["source_row"].tolist() == [2, 3, 4, 5]
    assert result.rejected["tag"].tolist() == ["PS01-FLOW", "", "PS01.P1.FLOW_M3S", "PS01.P1.FLOW_M3S"]
    assert {p.problem.split(" (")[0] for p in result.problems} == {REASON_TAG, REASON_TS_UNPARSED, REASON_QUALITY}


def test_lines_with_too_many_fields_are_rejected_and_the_rest_is_read(tmp_path):
    text = LONG_CSV + "PS01.P1.FLOW_M3S,2026-11-01T00:05:00Z,1,good,extra\n"
    result = read_csv_file(write(tmp_path / "extra.csv", text))
    assert len(result.readings) == 3
    assert result.rejected["reason"].tolist() == [REASON_FIELDS]
    assert result.rejected["tag"].tolist() == ["PS01.P1.FLOW_M3S"]
    assert result.rejected["source_row"].tolist() == [4]


def test_lines_with_too_few_fields_are_rejected_and_rows_keep_their_numbers(tmp_path):
    text = "tag,ts,value,quality\nPS01.P1.FLOW_M3S,2026-11-01T00:05:00Z,1\n\n" + LONG_CSV.split("\n", 1)[1]
    result = read_csv_file(write(tmp_path / "short.csv", text))
    assert len(result.readings) == 3
    assert result.rejected[["ts", "source_row", "reason"]].to_dict("records") == [
        {"ts": "2026-11-01T00:05:00Z", "source_row": 1, "reason": REASON_FIELDS}
    ]
    problem = only_problem(result)
    assert "header has 4 fields" in problem.problem and "row 1" in problem.problem


def test_duplicate_and_empty_header_names_are_told_apart(tmp_path):
    text = "ts,PS01.P1.FLOW_M3S,PS01.P1.FLOW_M3S,\n2026-11-01T00:00:00Z,1,2,\n"
    result = read_csv_file(write(tmp_path / "dup.csv", text))
    assert result.readings["tag"].tolist() == ["PS01.P1.FLOW_M3S"]
    assert result.rejected["tag"].tolist() == ["PS01.P1.FLOW_M3S.1"]


def test_latin1_file_is_read(tmp_path):
    text = "tag;ts;value;quality;note\nPS01.P1.FLOW_M3S;2026-11-01T00:00:00Z;1,5;good;Durchfluß\n"
    result = read_csv_file(write(tmp_path / "latin1.csv", text, encoding="latin-1"))
    assert result.readings["value"].tolist() == [1.5]


def test_folder_reads_every_file_and_keeps_their_origin(tmp_path, make_readings):
    (tmp_path / "sub").mkdir()
    write(tmp_path / "a.csv", LONG_CSV)
    make_readings().to_parquet(tmp_path / "sub" / "b.parquet")
    write(tmp_path / ".hidden.csv", "garbage")
    write(tmp_path / "bad.csv", "tag,ts,value,quality\nPS01.P1.FLOW_M3S,2026-11-01T00:00:00,1,good\n")
    result = read_path(tmp_path)
    assert len(result.readings) == 3 + len(make_readings())
    assert result.origin is not None
    counts = result.origin.astype(str).str.rsplit("/", n=1).str[-1].value_counts().to_dict()
    assert counts == {"a.csv": 3, "b.parquet": len(make_readings())}
    assert result.rejected["source_file"].tolist() == [str(tmp_path / "bad.csv")]
    assert result.rows_in == len(result.readings) + 1


# --- frames from the simulator ---------------------------------------------------------------


def test_contract_frame_passes_unchanged(make_readings):
    frame = make_readings()
    result = from_frame(frame, "simulator")
    pd.testing.assert_frame_equal(result.readings, frame)
    assert result.rejected.empty and result.problems == ()


def test_frame_conversions_categorical_tags_other_zones_and_naive_times(make_readings):
    frame = make_readings()
    frame["tag"] = frame["tag"].astype("category")
    frame["ts"] = frame["ts"].dt.tz_convert("America/Chicago")
    frame["value"] = frame["value"].astype("float32")
    result = from_frame(frame, "simulator")
    pd.testing.assert_frame_equal(result.readings, make_readings())
    naive = make_readings()
    naive["ts"] = naive["ts"].dt.tz_localize(None)
    assert set(from_frame(naive, "simulator").rejected["reason"]) == {REASON_TS_NAIVE}


def test_empty_frame_is_no_problem():
    result = from_frame(pd.DataFrame({"tag": [], "ts": [], "value": [], "quality": []}), "simulator")
    assert result.readings.empty and result.problems == ()


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["PS01.P1.FLOW_M3S", "PS02.P3.TEMP_DE_C", "nope", ""]),
            st.sampled_from(["2026-11-01T00:00:00Z", "2026-11-01 00:00:00", "soon", "", "2026-11-01T00:00+02:00"]),
            st.one_of(st.floats(allow_nan=True), st.sampled_from(["1.5", "abc", "", "nan"])),
            st.sampled_from([*QUALITIES, "GOOD", "meh", ""]),
        ),
        max_size=30,
    )
)
def test_no_row_is_lost(rows):
    frame = pd.DataFrame(rows, columns=["tag", "ts", "value", "quality"], dtype=object)
    result = from_frame(frame, "hypothesis")
    assert len(result.readings) + len(result.rejected) == len(frame)
    assert sum(p.rows_affected for p in result.problems) == len(result.rejected)
    if len(result.readings):
        assert is_readings(result.readings)
        assert set(result.readings["quality"]) <= set(QUALITIES)


def test_parquet_with_dictionary_columns(tmp_path, make_readings):
    frame = make_readings()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.set_column(0, "tag", table.column("tag").dictionary_encode())
    pq.write_table(table, tmp_path / "dict.parquet")
    pd.testing.assert_frame_equal(read_parquet_file(tmp_path / "dict.parquet").readings, frame)
