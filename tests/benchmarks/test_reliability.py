"""Small pieces of the reliability benchmark: a few corpus cases, one concurrent round, the judges."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from benchmarks import reliability

QUICK_CASES = ["csv good (control)", "csv empty (0 bytes)", "inp truncated", "pi source with no server configured"]


def test_corpus_is_large_and_names_are_unique() -> None:
    cases = reliability.corpus()
    assert len(cases) >= 50
    assert len({c.name for c in cases}) == len(cases)
    assert {c.group for c in cases} == {"ingest", "solve", "whatif", "plant", "pi"}


def test_a_few_corpus_cases_pass(tmp_path: Path) -> None:
    cases = [c for c in reliability.corpus() if c.name in QUICK_CASES]
    assert len(cases) == len(QUICK_CASES)
    results = reliability.run_corpus(cases, tmp_path, tmp_path / "numba", progress=False)
    for result in results:
        assert result.ok, (result.name, result.problems, result.stderr_tail)
    counts = reliability.counts_of(results, {}, {})
    assert not any(counts.values())
    assert "csv good (control)" in reliability.table(results)


def test_a_wrong_exit_code_is_counted(tmp_path: Path) -> None:
    case = reliability.Case("expects 0", "solve", lambda c: [["solve", "no-such.inp"]], (0,))
    (result,) = reliability.run_corpus([case], tmp_path, tmp_path / "numba", progress=False)
    assert result.code == 2
    assert result.wrong_exit and not result.ok
    assert reliability.counts_of([result], {}, {})["corpus_wrong_exit"] == 1


def test_one_concurrent_round_loses_nothing(tmp_path: Path) -> None:
    figures = reliability.run_concurrent(tmp_path / "raw", procs=2, rounds=1, progress=False)
    assert figures["rounds"] == 1
    assert figures["error_messages"] == []
    assert {k: figures[k] for k in ("lost", "doubled", "wrong", "extra", "errors")} == dict.fromkeys(
        ("lost", "doubled", "wrong", "extra", "errors"), 0
    )


def test_compare_store_counts_lost_doubled_wrong_and_extra() -> None:
    expected = {("A.B.C", 1): frozenset({1.0}), ("A.B.C", 2): frozenset({2.0, 3.0}), ("A.B.C", 3): frozenset({4.0})}
    frame = pd.DataFrame(
        {"tag": ["A.B.C"] * 4 + ["X.Y.Z"], "ts": pd.to_datetime([1, 2, 2, 1, 9], utc=True), "value": [1, 3, 5, 1, 0.0]}
    )
    counts = reliability.compare_store(frame, expected)
    assert counts == {"lost": 1, "doubled": 2, "wrong": 1, "extra": 1}


def test_round_frames_overlap_as_designed() -> None:
    base = pd.Timestamp("2026-01-01", tz="UTC")
    a, b = reliability.round_frame(base, 0, 0), reliability.round_frame(base, 0, 1)
    keys_a, keys_b = set(zip(a["tag"], a["ts"], strict=True)), set(zip(b["tag"], b["ts"], strict=True))
    shared = keys_a & keys_b
    assert shared and keys_a - keys_b and keys_b - keys_a
    merged = a.merge(b, on=["tag", "ts"], suffixes=("_a", "_b"))
    assert (merged["value_a"] == merged["value_b"]).any() and (merged["value_a"] != merged["value_b"]).any()


def test_judge_rerun_counts_watermarks_and_temporaries() -> None:
    ts = pd.to_datetime([1, 2, 3], utc=True)
    reference = pd.DataFrame({"tag": ["A.B.C"] * 3, "ts": ts, "value": [1.0, 2.0, 3.0]})
    state = {
        "frame": reference.iloc[:2],
        "watermarks": {"A.B.C": ts[2]},
        "error": None,
        "temporaries": ["x.tmp"],
    }
    counts = reliability.judge_rerun(state, reference)
    assert counts["lost"] == 1 and counts["watermark_mismatches"] == 1 and counts["temporaries"] == 1
    assert reliability.judge_rerun({**state, "frame": None}, reference)["unreadable"] == 1


def test_alias_bomb_is_valid_yaml_with_the_anchor() -> None:
    text = reliability.alias_bomb(levels=3, width=2)
    data = yaml.safe_load(text)
    assert len(data["bomb"]) == 2 and len(data["bomb"][0]) == 2


@pytest.mark.slow
def test_quick_corpus_runs(tmp_path: Path) -> None:
    cases = [c for c in reliability.corpus() if c.quick]
    results = reliability.run_corpus(cases, tmp_path, tmp_path / "numba", progress=False)
    assert len(results) == len(cases)
