"""The checker: citations, numbers and action names in a justification against its records."""

from __future__ import annotations

import pytest

from pumptwin.agents.check import check_text, citations, is_base_case, numbers_in
from pumptwin.agents.evidence import Candidate, Evidence, ModelScore, Passage, Recommendation, Term
from pumptwin.twin.whatif.spec import BASE_NAME, ScenarioSpec

STEP = Passage(
    "SOP-103#step-3-reduce-speed",
    "Reduce the VFD setpoint in steps of 5 % to no less than 70 % of rated speed; hold 10 min.",
    {"doc_type": "procedure", "title": "Pump speed change"},
)
WO = Passage(
    "WO-23017",
    "Work order WO-23017 on PS01.P1 (bearing_wear), opened 2024-05-02. Outcome: vibration back to 1.9 mm/s. "
    "Downtime: 36 h.",
    {"doc_type": "work_order", "date": "2024-05-02"},
)
INS = Passage("INS-412#ps01", "PS01.P1 DE velocity 6.8 mm/s, zone C per ISO 10816-3.", {"doc_type": "inspection"})


def _rec(base_name: str = "no change") -> Recommendation:
    chosen = Candidate(
        "PS01.P1: speed -10 %",
        "speed",
        procedure="speed change",
        numbers={"PS01.P1 vibration mm/s": 5.124, "throughput m3/h": 1249.6, "min MAOP margin MPa": 1.234},
        terms=(Term("risk reduction", 0.62, 10.0, "-"), Term("energy cost", 701.0, -0.01, "kW")),
        setpoints={"PS01.P1": 0.9},
    )
    standby = Candidate("switch PS01.P1 to standby PS01.P3", "standby", numbers={"PS01.P1 vibration mm/s": 0.4})
    base = Candidate(base_name, "base", numbers={"PS01.P1 vibration mm/s": 7.936})
    evidence = Evidence(
        procedures=(STEP,),
        work_orders=(WO,),
        inspections=(INS,),
        models=(ModelScore("PS01.P1", "bearing", 0.8234, "7"),),
    )
    return Recommendation(
        ("PS01.P1 vibration 7.9 mm/s above alarm 7.1 mm/s",), ("PS01.P1",), chosen, (standby, base), evidence
    )


def test_citations_are_bracketed_ids_not_links_or_plain_brackets():
    text = "See [SOP-103#step-3-reduce-speed], [WO-23017; INS-412#ps01], [the manual](http://x/MAN-201) and [x] [1]."
    assert citations(text) == ["SOP-103#step-3-reduce-speed", "WO-23017", "INS-412#ps01", "1"]


def test_numbers_skip_ids_dates_times_standards_and_list_ordinals():
    text = (
        "1. On PS01.P1 per SOP-106 and WO-23017 [INS-412#step-2] (ISO 10816-3), 2024-05-02 at 14:30:\n"
        "2) vibration 7.9 mm/s, speed -10 %, flow 1,250 m3/h, margin \u22120.5 MPa, m3 and DS-PS01-P1."
    )
    found = [(n.text, n.value, n.percent) for n in numbers_in(text)]
    assert found == [("7.9", 7.9, False), ("-10%", -10.0, True), ("1,250", 1250.0, False), ("\u22120.5", -0.5, False)]


@pytest.mark.parametrize(
    ("written", "tolerance"), [("7.9", 0.05), ("8", 0.5), ("1200", 50.0), ("1250", 5.0), ("0.0123", 0.00005)]
)
def test_tolerance_is_half_a_unit_of_the_last_written_place(written, tolerance):
    (number,) = numbers_in(f"x {written} y")
    assert number.tolerance == pytest.approx(tolerance)


def test_faithful_text_passes():
    text = (
        "Recommended: PS01.P1: speed -10 % [SOP-103#step-3-reduce-speed]. Vibration falls from 7.94 to 5.12 mm/s "
        "(base case), throughput 1250 m3/h, MAOP margin 1.2 MPa, speed 90 % of rated. Step 3: reduce in steps "
        "of 5 %. Energy cost -7.01; risk 6.2. Last time [WO-23017] vibration went back to 1.9 mm/s after 36 h. "
        "Bearing model 0.82 (version 7). Alert: 7.9 mm/s above 7.1 mm/s."
    )
    assert check_text(text, _rec()).ok


def test_invented_number_is_refused_with_nearest_value():
    problems = check_text("Vibration after the change: 9.7 mm/s [SOP-103#step-3-reduce-speed].", _rec()).problems
    assert problems == ("number 9.7 is not in the records (nearest: 10)",)


def test_rounding_beyond_the_written_precision_is_refused():
    assert check_text("vibration 5.12 mm/s", _rec()).ok
    assert not check_text("vibration 5.13 mm/s", _rec()).ok
    assert check_text("vibration 5 mm/s", _rec()).ok


def test_numbers_of_uncited_passages_are_refused_until_cited():
    assert not check_text("zone C at 6.8 mm/s", _rec()).ok
    assert check_text("zone C at 6.8 mm/s [INS-412#ps01]", _rec()).ok


def test_step_ordinal_needs_the_cited_step():
    assert check_text("Follow step 3 [SOP-103#step-3-reduce-speed].", _rec()).ok
    assert not check_text("Follow step 4 [SOP-103#step-3-reduce-speed].", _rec()).ok


def test_unknown_citation_is_refused():
    problems = check_text("Per [SOP-999#step-1] and [1], act.", _rec()).problems
    assert problems == (
        "cites [SOP-999#step-1], which is not among the evidence passages",
        "cites [1], which is not among the evidence passages",
    )


def test_naming_another_action_is_refused():
    problems = check_text("Or switch PS01.P1 to standby PS01.P3 instead.", _rec()).problems
    assert len(problems) == 1 and "switch PS01.P1 to standby PS01.P3" in problems[0]


def test_base_case_may_be_named_as_base_case_only():
    assert check_text("Better than the base case.", _rec()).ok
    assert not check_text("Better than no change.", _rec()).ok
    assert check_text("Better than the base case.", _rec(base_name="base case")).ok


def test_base_case_by_scenario_is_named_base_case_only():
    rec = _rec()
    keep = Candidate("keep running, schedule maintenance", "maintenance", spec=ScenarioSpec(name=BASE_NAME))
    rec = Recommendation(rec.situation, rec.assets, rec.chosen, (keep,), rec.evidence)
    assert is_base_case(keep) and not is_base_case(rec.chosen)
    assert check_text("Better than the base case.", rec).ok
    assert not check_text("Better than keep running, schedule maintenance.", rec).ok


def test_chosen_name_containing_an_alternative_name_is_no_problem():
    rec = _rec()
    chosen = Candidate("switch PS01.P1 to standby PS01.P3 and slow PS01.P2", "standby")
    rec = Recommendation(rec.situation, rec.assets, chosen, rec.alternatives, rec.evidence)
    assert check_text("Do: switch PS01.P1 to standby PS01.P3 and slow PS01.P2.", rec).ok


def test_empty_text_is_a_problem():
    assert check_text("  \n", _rec()).problems == ("empty text",)


def test_every_problem_is_reported_once_per_token():
    problems = check_text("9.7 and 9.7 and 33.3 [SOP-1] [SOP-1]", _rec()).problems
    assert len(problems) == 3
