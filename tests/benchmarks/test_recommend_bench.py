"""Small pieces of the recommendation benchmark: the situations, the citation judge, the totals, the oracle."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from benchmarks import recommend, recommend_situations
from benchmarks.recommend_situations import SituationSpec
from pumptwin.agents.evidence import Candidate, Evidence, Passage, Recommendation, Term
from pumptwin.agents.recommend import Objective


def test_default_split_covers_every_kind_and_the_splits_are_apart() -> None:
    report = recommend_situations.draw_situations(recommend.SPLITS["report"])
    tune = recommend_situations.draw_situations(recommend.SPLITS["tune"])
    assert len(report) >= 40
    assert len({s.id for s in report}) == len(report)
    assert not {s.seed for s in report} & {s.seed for s in tune}
    assert not set(recommend.SPLITS["report"]) & set(recommend.SPLITS["tune"])
    faults = [s for s in report if s.kind == "fault"]
    for mode in ("bearing_wear", "impeller_wear", "cavitation", "seal_failure", "motor_overheating", "strainer_clog"):
        of_mode = [s for s in faults if s.mode == mode]
        assert len({s.severity for s in of_mode}) >= 2, mode
        assert len({s.target for s in of_mode}) >= 2, mode
    assert len({(s.target, s.severity) for s in report if s.kind == "leak"}) >= 3
    assert any(s.kind == "low_suction" and s.source_head_m < recommend_situations.NOMINAL_SOURCE_HEAD_M for s in report)
    assert sum(s.kind == "healthy" for s in report) >= 6
    assert recommend_situations.draw_situations(recommend.SPLITS["report"]) == report


def test_quick_set_has_eight_distinct_kinds() -> None:
    quick = recommend_situations.quick_situations(recommend.QUICK_SEED)
    assert len(quick) == 8
    assert len({s.id for s in quick}) == 8
    assert {s.kind for s in quick} == {"fault", "leak", "low_suction", "healthy"}


def _passage(pid: str, doc_type: str, assets: list[str], modes: list[str], ops: list[str]) -> Passage:
    return Passage(pid, "text", {"doc_type": doc_type, "assets": assets, "failure_modes": modes, "operations": ops})


def _rec(text: str, kind: str = "standby") -> Recommendation:
    chosen = Candidate("PS01.P1: switch to standby", kind, terms=(Term("risk reduction", 1.0, 10.0, "severity"),))
    passages = (
        _passage("SOP-104#step-1", "procedure", [], [], ["standby_switch"]),
        _passage("SOP-107#step-2", "procedure", [], ["leak"], ["throughput_reduction"]),
        _passage("WO-1", "work_order", ["PS01.P1"], ["seal_failure"], []),
        _passage("WO-2", "work_order", ["PS02.P2"], ["bearing_wear"], []),
    )
    evidence = Evidence(procedures=passages[:2], work_orders=passages[2:])
    return Recommendation((), ("PS01.P1",), chosen, (), evidence, text)


def test_citation_precision_counts_asset_mode_and_operation_matches() -> None:
    spec = SituationSpec("x", 1, "fault", "bearing_wear", "PS01.P1", 0.8, 0.97)
    # SOP-104 by its operation, WO-1 by its asset, WO-2 by its mode; SOP-107 speaks of none; SOP-999 is unknown
    rec = _rec("Switch [SOP-104#step-1]. Past [WO-1; WO-2]. Also [SOP-107#step-2] and [SOP-999#x]. Again [WO-1].")
    assert recommend.citation_counts(rec, spec.assets, (spec.mode,)) == (5, 3)
    healthy = SituationSpec("h", 1, "healthy", "", "", 0.0, 0.97)
    assert recommend.citation_counts(rec, healthy.assets, (healthy.mode,)) == (5, 1)
    # against a twin that alerted a leak on the line: SOP-107 by its mode, SOP-104 by the operation
    assert recommend.citation_counts(rec, ["LINE01"], ["leak"]) == (5, 2)


def _row(  # noqa: PLR0913 - one synthetic row
    agree: bool, violations: list[str], cited: int, good: int, traceable: bool, kind: str = "fault"
) -> dict[str, Any]:
    return {
        "situation": {"kind": kind, "mode": "bearing_wear" if kind == "fault" else ""},
        "agree": agree,
        "within_5pct": agree,
        "hard_limit_violations": violations,
        "cited": cited,
        "cited_matching": good,
        "cited_matching_alerted": good,
        "traceable": traceable,
        "energy_saved_twin_mwh_day": 2.0 if kind == "fault" else None,
        "energy_saved_plant_mwh_day": 1.0 if kind == "fault" else None,
        "recommend_s": 0.5,
    }


def test_summary_counts_and_targets() -> None:
    rows = [_row(True, [], 4, 4, True), _row(False, ["MAOP X"], 2, 1, True), _row(True, [], 0, 0, False, "healthy")]
    total = recommend.summarise(rows)["total"]
    assert total["situations"] == 3
    assert math.isclose(total["agreement"], 2 / 3)
    assert total["hard_limit_violations"] == 1
    assert math.isclose(total["citation_precision"], 5 / 6)
    assert math.isclose(total["numbers_traceable"], 2 / 3)
    assert total["energy_compared"] == 2
    assert total["targets_met"] == {
        "hard_limit_violations": False,
        "citation_precision": False,
        "numbers_traceable": False,
    }
    good = recommend.summarise([_row(True, [], 4, 4, True)])["total"]
    assert all(good["targets_met"].values())


def test_a_healthy_control_is_judged_on_the_plant(tmp_path: Path) -> None:
    spec = SituationSpec("s7-healthy-0", 7, "healthy", "", "", 0.0, 0.97)
    row = recommend.evaluate(spec, Objective(), None, search=False)
    assert row["alerted"] == []
    assert row["chosen"] == "no change"
    assert row["oracle_best"] == "no change"
    assert row["agree"] and row["within_5pct"]
    assert row["hard_limit_violations"] == []
    assert row["traceable"]


def test_the_oracle_sees_a_stopped_pump_relieved_on_the_plant() -> None:
    spec = SituationSpec("s8-bearing", 8, "fault", "bearing_wear", "PS01.P1", 0.9, 0.97)
    prepared = recommend_situations.prepare(spec)
    view = prepared.view
    base = recommend_situations.plant_outcome(prepared.plant, "base", {}, view)
    stopped = recommend_situations.plant_outcome(prepared.plant, "stop", {"PS01.P1": 0.0}, view)
    before = next(p for p in base.pumps if p.pump == "PS1-P1")
    after = next(p for p in stopped.pumps if p.pump == "PS1-P1")
    assert before.running and not after.running
    assert before.bearing_c > after.bearing_c
    assert stopped.throughput_m3h < base.throughput_m3h
    assert stopped.power_kw < base.power_kw
