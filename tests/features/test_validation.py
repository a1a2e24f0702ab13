"""Tests for `features.validation`: each expectation catches its case, nothing is lost, results are kept."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pumptwin.features.validation import (
    NEWEST,
    ROWS_SUITE,
    TAGS_SUITE,
    TagRules,
    TagValidator,
    ValidationOutcome,
    build_tag_suite,
    normalize_ranges,
    summary_markdown,
    validate_tags,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
T0 = pd.Timestamp("2024-05-01 00:00", tz="UTC")
STEPS = 10
NOW = T0 + pd.Timedelta(minutes=STEPS)
TAGS = ("PS01.P1.DISCH_P", "PS01.P1.FLOW", "PS02.P1.DISCH_P", "PS02.P1.FLOW")
RANGES = {"DISCH_P": (0.0, 100.0, "bar"), "FLOW": (0.0, 2.0, "m3/s")}

DUPLICATE = "expect_column_values_to_be_between(ts_seen_before)"
OUT_OF_ORDER = "expect_column_values_to_be_between(ts_behind_s)"
OUT_OF_RANGE = "expect_column_values_to_be_between(range_excess)"
TS_BOUNDS = "expect_column_values_to_be_between(ts)"
BAD_QUALITY = "expect_column_values_to_be_in_set(quality)"
NOT_NUMERIC = "expect_column_values_to_be_in_type_list(value)"
BAD_NAME = "expect_column_values_to_match_regex(tag)"
NAIVE_TS = "expect_column_values_to_be_of_type(ts)"


def null(column: str) -> str:
    return f"expect_column_values_to_not_be_null({column})"


def tag_table(steps: int = STEPS) -> pd.DataFrame:
    """A clean tag table: 4 tags, one reading a minute, arriving interleaved in time order.

    Example (first rows)::

        tag              ts                         value  quality
        PS01.P1.DISCH_P  2024-05-01 00:00:00+00:00  40.0   good
        PS01.P1.FLOW     2024-05-01 00:00:00+00:00   0.5   good
    """
    rows = [
        (tag, T0 + pd.Timedelta(minutes=i), (40.0 if tag.endswith("DISCH_P") else 0.5) + 0.1 * i, "good")
        for i in range(steps)
        for tag in TAGS
    ]
    df = pd.DataFrame(rows, columns=["tag", "ts", "value", "quality"])
    df["ts"] = df["ts"].astype("datetime64[ns, UTC]")
    return df


def reasons(outcome: ValidationOutcome) -> dict[int, set[str]]:
    return {int(r.row_id): set(r.reason.split("; ")) for r in outcome.quarantined.itertuples()}


def assert_nothing_lost(df: pd.DataFrame, outcome: ValidationOutcome) -> None:
    assert len(outcome.good) + len(outcome.quarantined) == len(df)
    ids = outcome.quarantined["row_id"].to_numpy()
    assert len(set(ids)) == len(ids)
    assert outcome.summary["rows_in"] == len(df)
    assert outcome.summary["good"] == len(outcome.good)
    assert outcome.summary["quarantined"] == len(outcome.quarantined)
    kept = df.drop(index=df.index[ids]).reset_index(drop=True)
    assert list(outcome.good["tag"]) == list(kept["tag"]) if "tag" in df.columns else True
    assert (outcome.quarantined["reason"].str.len() > 0).all()


# --- the clean path -----------------------------------------------------------------------------------


def test_clean_frame_passes_untouched():
    df = tag_table()
    outcome = validate_tags(df, RANGES, now=NOW)
    pd.testing.assert_frame_equal(outcome.good, df)
    assert outcome.quarantined.empty
    assert list(outcome.quarantined.columns) == [*df.columns, "row_id", "reason"]
    assert outcome.success
    assert outcome.summary["by_reason"] == {}
    assert all(e["success"] for e in outcome.summary["expectations"])
    assert outcome.results[ROWS_SUITE].success and outcome.results[TAGS_SUITE].success
    assert outcome.tags["missing_rate"].eq(0.0).all()
    assert outcome.tags["sample_period_s"].eq(60.0).all()


# --- each expectation catches its case ------------------------------------------------------------------


Damage = dict[int, str]
CORRUPTIONS: dict[str, Callable[[pd.DataFrame], tuple[pd.DataFrame, Damage]]] = {}
"""Each takes a clean table and returns it with one defect, plus the rows that must go to quarantine and why."""


def corruption(func: Callable[[pd.DataFrame], tuple[pd.DataFrame, Damage]]) -> Callable:
    CORRUPTIONS[func.__name__] = func
    return func


@corruption
def duplicate(df):
    df = pd.concat([df, df.iloc[[len(df) - 4]]], ignore_index=True)  # a tag's latest reading arrives again
    return df, {len(df) - 1: DUPLICATE}


@corruption
def out_of_order(df):
    df.loc[8, "ts"] = T0 - pd.Timedelta(seconds=30)  # PS01.P1.DISCH_P arrives older than what came before
    return df, {8: OUT_OF_ORDER}


@corruption
def psi_instead_of_bar(df):
    df.loc[4, "value"] = 40.1 * 14.5038  # 581.6 psi where bar is expected
    return df, {4: OUT_OF_RANGE}


@corruption
def bad_quality(df):
    df.loc[3, "quality"] = "Good?"
    return df, {3: BAD_QUALITY}


@corruption
def nan_value(df):
    df.loc[6, "value"] = np.nan
    return df, {6: null("value")}


@corruption
def text_value(df):
    df["value"] = df["value"].astype(object)
    df.loc[7, "value"] = "I/O Timeout"
    df.loc[9, "value"] = "0.7"  # a number written as text is accepted
    return df, {7: NOT_NUMERIC}


@corruption
def bad_tag_name(df):
    df.loc[df["tag"] == "PS02.P1.FLOW", "tag"] = "ps02.p1.flow"
    return df, dict.fromkeys(np.flatnonzero(df["tag"] == "ps02.p1.flow").tolist(), BAD_NAME)


@corruption
def local_clock_labelled_utc(df):
    df.loc[10, "ts"] = df.loc[10, "ts"] + pd.Timedelta(hours=3)
    return df, {10: TS_BOUNDS}


@corruption
def null_tag(df):
    df.loc[2, "tag"] = None
    return df, {2: null("tag")}


@corruption
def null_ts(df):
    df.loc[2, "ts"] = pd.NaT
    return df, {2: null("ts")}


def corrupt(case: str) -> tuple[pd.DataFrame, Damage]:
    return CORRUPTIONS[case](tag_table())


CASES = list(CORRUPTIONS)


@pytest.mark.parametrize("case", CASES)
def test_each_expectation_catches_its_case(case):
    df, expected = corrupt(case)
    outcome = validate_tags(df, RANGES, now=NOW)
    found = reasons(outcome)
    assert set(found) == set(expected), found
    for row, label in expected.items():
        assert label in found[row]
    assert_nothing_lost(df, outcome)
    assert not outcome.success
    labels = set(expected.values())
    assert set(outcome.summary["by_reason"]) == labels
    assert sum(outcome.summary["by_reason"].values()) == len(expected)


def test_duplicate_keeps_the_first_arrival():
    df, _ = corrupt("duplicate")
    outcome = validate_tags(df, RANGES, now=NOW)
    assert outcome.quarantined["row_id"].tolist() == [len(df) - 1]
    assert len(outcome.good) == len(df) - 1
    assert not outcome.good.duplicated(["tag", "ts"]).any()


def test_late_repeat_of_an_older_reading_fails_both_checks():
    df = tag_table()
    late = df.iloc[[0]].copy()  # PS01.P1.DISCH_P at T0, again, after later readings
    df = pd.concat([df, late], ignore_index=True)
    outcome = validate_tags(df, RANGES, now=NOW)
    assert reasons(outcome) == {len(df) - 1: {DUPLICATE, OUT_OF_ORDER}}


def test_text_values_that_are_numbers_go_on_as_floats():
    df, _ = corrupt("text_value")
    outcome = validate_tags(df, RANGES, now=NOW)
    assert outcome.good["value"].dtype == np.float64
    assert 0.7 in outcome.good["value"].to_numpy()
    assert outcome.quarantined.loc[0, "value"] == "I/O Timeout"  # quarantine keeps the raw evidence


def test_naive_timestamps_quarantine_every_row():
    df = tag_table()
    df["ts"] = df["ts"].dt.tz_localize(None)
    outcome = validate_tags(df, RANGES, now=NOW)
    assert outcome.good.empty
    assert set(outcome.quarantined["reason"]) == {NAIVE_TS}
    assert outcome.summary["table_failures"] == [NAIVE_TS]
    assert any("no time zone" in note for note in outcome.summary["notes"])
    assert_nothing_lost(df, outcome)


def test_timestamps_in_another_zone_are_converted_to_utc():
    df = tag_table()
    df["ts"] = df["ts"].dt.tz_convert("Europe/Berlin")
    outcome = validate_tags(df, RANGES, now=NOW)
    assert outcome.quarantined.empty
    assert str(outcome.good["ts"].dt.tz) == "UTC"
    assert outcome.good["ts"].equals(tag_table()["ts"])
    assert any("Europe/Berlin" in note for note in outcome.summary["notes"])


@pytest.mark.parametrize("unit", ["s", "ms", "us"])
def test_timestamps_in_other_units_are_checked_alike(unit):
    df, expected = corrupt("out_of_order")
    df["ts"] = df["ts"].astype(f"datetime64[{unit}, UTC]")
    outcome = validate_tags(df, RANGES, now=NOW)
    assert reasons(outcome) == {8: {OUT_OF_ORDER}}
    assert outcome.good["ts"].dtype == "datetime64[ns, UTC]"
    assert outcome.tags["staleness_s"].eq(60.0).all()


def test_categorical_columns_and_any_index_give_the_same_answer():
    df, expected = corrupt("bad_quality")
    plain = validate_tags(df, RANGES, now=NOW)
    df = df.astype({"tag": "category", "quality": "category"})
    df.index = df.index * 10 + 7
    fancy = validate_tags(df, RANGES, now=NOW)
    assert reasons(fancy) == reasons(plain) == {3: {BAD_QUALITY}}
    assert len(fancy.good) == len(df) - 1


def test_iso_text_timestamps_with_offsets_are_parsed():
    df = tag_table()
    df["ts"] = df["ts"].map(lambda t: t.isoformat())
    outcome = validate_tags(df, RANGES, now=NOW)
    assert outcome.quarantined.empty
    assert outcome.good["ts"].dtype == "datetime64[ns, UTC]"


def test_text_timestamps_without_zone_quarantine_their_rows():
    df = tag_table(2)
    df["ts"] = df["ts"].dt.strftime("%Y-%m-%d %H:%M:%S")
    outcome = validate_tags(df, RANGES, now=NOW)
    assert outcome.good.empty
    assert set(outcome.quarantined["reason"]) == {NAIVE_TS}


def test_missing_column_quarantines_every_row_with_a_clear_reason():
    df = tag_table(3).drop(columns="quality")
    outcome = validate_tags(df, RANGES, now=NOW)
    assert outcome.good.empty
    assert set(outcome.quarantined["reason"]) == {"expect_column_to_exist(quality)"}
    assert "expect_column_to_exist(quality)" in outcome.markdown
    assert_nothing_lost(df, outcome)


@pytest.mark.parametrize(
    "df",
    [pd.DataFrame(), tag_table().iloc[:0]],
    ids=["no columns", "no rows"],
)
def test_empty_input_does_not_crash(df, tmp_path):
    outcome = validate_tags(df, RANGES, now=NOW, report_dir=tmp_path)
    assert outcome.good.empty and outcome.quarantined.empty
    assert outcome.summary["rows_in"] == 0
    assert outcome.report_files["html"].is_file()


def test_not_a_dataframe_is_a_caller_error():
    with pytest.raises(TypeError, match="DataFrame"):
        validate_tags([1, 2, 3], RANGES)  # type: ignore[arg-type]


def test_several_failures_on_one_row_are_all_named():
    df = tag_table()
    df.loc[4, "value"] = 999.0
    df.loc[4, "quality"] = "ok"
    outcome = validate_tags(df, RANGES, now=NOW)
    assert reasons(outcome) == {4: {OUT_OF_RANGE, BAD_QUALITY}}


# --- ranges ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """Stands in for `pumptwin.twin.assets.TagSpec` (not imported: validation does not depend on it)."""

    tag: str
    station: str
    asset: str
    measure: str
    unit: str
    low: float
    high: float
    sample_period_s: float


def test_a_tag_range_overrides_its_measure_default():
    df = tag_table()
    df.loc[df["tag"] == "PS02.P1.DISCH_P", "value"] = 140.0  # a high-pressure station
    ranges = {**RANGES, "PS02.P1.DISCH_P": (0.0, 160.0, "bar")}
    assert validate_tags(df, ranges, now=NOW).quarantined.empty
    assert len(validate_tags(df, RANGES, now=NOW).quarantined) == STEPS


@pytest.mark.parametrize(
    "ranges",
    [
        {"DISCH_P": {"low": 0.0, "high": 100.0, "unit": "bar"}, "FLOW": {"low": 0.0, "high": 2.0}},
        pd.DataFrame({"measure": ["DISCH_P", "FLOW"], "low": [0.0, 0.0], "high": [100.0, 2.0]}),
        [
            Spec(tag, tag.split(".")[0], "P1", tag.split(".")[2], "bar", 0.0, 100.0 if "DISCH" in tag else 2.0, 60.0)
            for tag in TAGS
        ],
    ],
    ids=["mapping of dicts", "dataframe by measure", "registry records"],
)
def test_ranges_in_every_accepted_form(ranges):
    df, _ = corrupt("psi_instead_of_bar")
    outcome = validate_tags(df, ranges, now=NOW)
    assert reasons(outcome) == {4: {OUT_OF_RANGE}}


def test_registry_sample_period_drives_the_missing_rate():
    df = tag_table()
    specs = [Spec(t, "PS01", "P1", t.split(".")[2], "", 0.0, 1000.0, 30.0) for t in TAGS]  # expects 2 a minute
    outcome = validate_tags(df, specs, now=NOW)
    assert outcome.tags["period_source"].eq("registry").all()
    assert outcome.tags["missing_rate"].round(2).eq(0.47).all()  # 10 of 19 expected samples
    assert len(outcome.summary["tags"]["high_missing_rate"]) == len(TAGS)
    assert outcome.quarantined.empty  # tag-level findings are reported, not quarantined


def test_normalize_ranges_rejects_inverted_ranges():
    with pytest.raises(ValueError, match="low > high"):
        normalize_ranges({"FLOW": (2.0, 0.0)})
    with pytest.raises(TypeError):
        normalize_ranges(42)  # type: ignore[arg-type]
    table = normalize_ranges({"FLOW": (None, 2.0, "m3/s")})
    assert np.isnan(table.loc["FLOW", "low"]) and table.loc["FLOW", "unit"] == "m3/s"


def test_open_bound_checks_only_the_other_side():
    df = tag_table()
    df.loc[1, "value"] = -5.0  # PS01.P1.FLOW below zero: allowed by an open lower bound
    df.loc[5, "value"] = 5.0  # above the upper bound
    outcome = validate_tags(df, {"FLOW": (None, 2.0)}, now=NOW)
    assert reasons(outcome) == {5: {OUT_OF_RANGE}}


def test_tags_without_range_are_reported():
    outcome = validate_tags(tag_table(), {"FLOW": (0.0, 2.0)}, now=NOW)
    assert sorted(outcome.summary["tags"]["without_range"]) == ["PS01.P1.DISCH_P", "PS02.P1.DISCH_P"]
    assert outcome.quarantined.empty


# --- tag-level findings -----------------------------------------------------------------------------


def test_stale_tag_and_missing_samples_are_reported_not_quarantined():
    df = tag_table()
    stale = (df["tag"] == "PS02.P1.FLOW") & (df["ts"] > T0 + pd.Timedelta(minutes=2))
    gaps = (df["tag"] == "PS01.P1.FLOW") & df["ts"].dt.minute.isin([2, 4, 6])
    df = df[~stale & ~gaps].reset_index(drop=True)
    outcome = validate_tags(df, RANGES, now=T0 + pd.Timedelta(minutes=20))  # stale after 15 min
    tags = outcome.summary["tags"]
    assert tags["stale"] == ["PS02.P1.FLOW"]
    assert tags["high_missing_rate"] == ["PS01.P1.FLOW", "PS02.P1.FLOW"]
    stats = outcome.tags.set_index("tag")
    assert stats.loc["PS01.P1.FLOW", "missing_rate"] == pytest.approx(0.3)
    assert stats.loc["PS02.P1.FLOW", "staleness_s"] == pytest.approx(18 * 60)
    assert stats.loc["PS02.P1.FLOW", "missing_rate"] == pytest.approx(0.7)
    assert outcome.quarantined.empty
    assert not outcome.success
    assert "stale: `PS02.P1.FLOW`" in outcome.markdown


def test_freshness_as_of_is_separate_from_the_wall_clock():
    df = tag_table()
    wall = T0 + pd.Timedelta(days=30)  # validating old data: nothing is from the future
    outcome = validate_tags(df, RANGES, now=wall, as_of=NOW)
    assert outcome.quarantined.empty and outcome.summary["tags"]["stale"] == []
    assert outcome.summary["as_of"] == NOW.isoformat() and outcome.summary["now"] == wall.isoformat()
    assert validate_tags(df, RANGES, now=wall).summary["tags"]["stale"] == list(TAGS)  # as of the wall clock


def test_tag_validator_judges_the_future_by_the_wall_clock_and_freshness_by_the_batch():
    df = tag_table()
    df.loc[len(df)] = ["PS01.P1.FLOW", pd.Timestamp("2099-01-01", tz="UTC"), 0.5, "good"]
    validator = TagValidator(RANGES, now=NOW, as_of=NEWEST, rules=TagRules(max_future=pd.Timedelta(minutes=5)))
    good, bad = validator(df)
    assert bad.index.tolist() == [len(df) - 1] and TS_BOUNDS in bad["reason"].item()
    assert len(good) == len(df) - 1
    outcome = validator.outcomes[-1]
    assert outcome.summary["as_of"] == (NOW - pd.Timedelta(minutes=1)).isoformat()  # the 2099 reading sets nothing
    assert outcome.summary["tags"]["stale"] == [] and len(outcome.good) == len(good)
    lean = TagValidator(RANGES, now=NOW, keep_rows=False)
    lean(df)
    assert lean.outcomes[-1].good.empty and lean.outcomes[-1].quarantined.empty
    assert lean.outcomes[-1].summary["quarantined"] == 1


# --- results, reports and the summary ------------------------------------------------------------------


def test_results_are_great_expectations_results():
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult

    df, _ = corrupt("psi_instead_of_bar")
    outcome = validate_tags(df, RANGES, now=NOW)
    rows = outcome.results[ROWS_SUITE]
    assert isinstance(rows, ExpectationSuiteValidationResult)
    assert not rows.success
    by_label = {f"{r.expectation_config.type}({r.expectation_config.kwargs.get('column')})": r for r in rows.results}
    failed = by_label[OUT_OF_RANGE]
    assert failed.result["unexpected_count"] == 1
    assert failed.result["unexpected_index_list"] == [4]
    assert failed.result["element_count"] == len(df)


def test_chunks_give_the_same_answer_as_one_batch():
    df = pd.concat([corrupt(c)[0] for c in ("duplicate", "psi_instead_of_bar", "bad_quality")], ignore_index=True)
    one = validate_tags(df, RANGES, now=NOW)
    chunked = validate_tags(df, RANGES, now=NOW, rules=TagRules(chunk_rows=7))
    pd.testing.assert_frame_equal(one.quarantined, chunked.quarantined)
    pd.testing.assert_frame_equal(one.good, chunked.good)
    counts = {e["label"]: e["element_count"] for e in chunked.summary["expectations"]}
    assert counts[OUT_OF_RANGE] == len(df)
    assert chunked.summary["rows_in"] == len(df)


def test_report_files_are_written(tmp_path):
    df, _ = corrupt("psi_instead_of_bar")
    outcome = validate_tags(df, RANGES, now=NOW, report_dir=tmp_path / "validation", source="historian.parquet")
    files = outcome.report_files
    assert set(files) == {"html", "json", "markdown"}
    assert all(path.is_file() and path.parent.parent == tmp_path / "validation" for path in files.values())
    page = files["html"].read_text(encoding="utf-8")
    assert outcome.summary["run_id"] in page and OUT_OF_RANGE in page and "historian.parquet" in page
    payload = json.loads(files["json"].read_text(encoding="utf-8"))
    assert set(payload["results"]) == set(payload["suites"]) == {ROWS_SUITE, TAGS_SUITE}
    assert payload["summary"]["quarantined"] == 1
    assert payload["results"][ROWS_SUITE]["success"] is False
    assert len(payload["tags"]) == len(TAGS)
    assert files["markdown"].read_text(encoding="utf-8") == outcome.markdown
    index = (tmp_path / "validation" / "index.html").read_text(encoding="utf-8")
    assert outcome.summary["run_id"] in index


def test_markdown_summary_counts_reasons_and_stations():
    df = tag_table()
    df.loc[df["tag"] == "PS02.P1.DISCH_P", "value"] *= 14.5038  # a whole tag in psi
    df.loc[1, "quality"] = "bogus"
    outcome = validate_tags(df, RANGES, now=NOW, source="window 00:00-00:10")
    md = outcome.markdown
    assert md == summary_markdown(outcome.summary)
    assert "| 40 | 29 | 11 |" in md  # rows in, good, quarantined
    assert f"| `{OUT_OF_RANGE}` | 10 |" in md
    assert f"| `{BAD_QUALITY}` | 1 |" in md
    assert "| PS01 | 20 | 19 | 1 |" in md
    assert "| PS02 | 20 | 10 | 10 |" in md
    assert "window 00:00-00:10" in md
    by_station = {s["station"]: s for s in outcome.summary["by_station"]}
    assert by_station["PS02"]["by_reason"] == {OUT_OF_RANGE: 10}


# --- the suites -----------------------------------------------------------------------------------------


def test_build_tag_suite_records_ranges_and_actions():
    suites = build_tag_suite(RANGES, now=NOW)
    row_types = [e.expectation_type for e in suites.rows.expectations]
    assert row_types.count("expect_column_to_exist") == 4
    assert "expect_column_values_to_be_in_set" in row_types
    range_expectation = next(e for e in suites.rows.expectations if getattr(e, "column", None) == "range_excess")
    assert range_expectation.meta["ranges"]["DISCH_P"] == {"low": 0.0, "high": 100.0, "unit": "bar"}
    actions = {e.expectation_type: e.meta["action"] for e in suites.tags.expectations}
    assert actions["expect_column_values_to_match_regex"] == "quarantine"
    assert actions["expect_column_values_to_be_between"] == "report"
    assert all(e.description for e in [*suites.rows.expectations, *suites.tags.expectations])


def test_rules_reject_nonsense():
    with pytest.raises(ValueError, match="max_missing_rate"):
        TagRules(max_missing_rate=2.0)
    with pytest.raises(ValueError, match="chunk_rows"):
        TagRules(chunk_rows=0)


def test_import_does_no_work(tmp_path):
    code = "import sys, features.validation; print('great_expectations' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "False"
    assert list(tmp_path.iterdir()) == []


# --- nothing is lost, whatever the damage ----------------------------------------------------------------

DAMAGE = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=4 * STEPS - 1),
        st.sampled_from(["psi", "nan", "quality", "repeat", "late", "future", "tag"]),
    ),
    max_size=12,
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DAMAGE)
def test_good_plus_quarantined_is_always_the_input(damage):
    df = tag_table()
    for row, kind in damage:
        if kind == "psi":
            df.loc[row, "value"] = float(df.loc[row, "value"]) * 145.0
        elif kind == "nan":
            df.loc[row, "value"] = np.nan
        elif kind == "quality":
            df.loc[row, "quality"] = "BAD"
        elif kind == "repeat":
            df = pd.concat([df, df.iloc[[row]]], ignore_index=True)
        elif kind == "late":
            df.loc[row, "ts"] = T0 - pd.Timedelta(minutes=1)
        elif kind == "future":
            df.loc[row, "ts"] = NOW + pd.Timedelta(days=1)
        else:
            df.loc[row, "tag"] = "PS01..X"
    outcome = validate_tags(df, RANGES, now=NOW)
    assert_nothing_lost(df, outcome)
    good = outcome.good
    assert not good.duplicated(["tag", "ts"]).any()
    assert good.groupby("tag")["ts"].apply(lambda s: s.is_monotonic_increasing).all()
    assert good["value"].between(0.0, 100.0).all()
