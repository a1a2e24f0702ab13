"""The grounded generator, the optional language model and the fallback between them."""

from __future__ import annotations

import json
import math
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pumptwin.agents.check import check_text
from pumptwin.agents.evidence import Candidate, Evidence, ModelScore, Passage, Recommendation, Term
from pumptwin.agents.generate import (
    ChatGenerator,
    GroundedGenerator,
    LLMConfig,
    LLMConfigError,
    evidence_json,
    format_number,
    grounded_text,
    write_justification,
)
from pumptwin.twin.whatif.spec import BASE_NAME, ScenarioSpec
from tests.agents.llm_stub import StubLLM, error_reply, text_reply

STEP = Passage(
    "SOP-103#step-3-reduce-speed",
    "Reduce the VFD setpoint in steps of 5 % to no less than 70 % of rated speed.",
    {"doc_type": "procedure", "title": "Pump speed change"},
)
WO = Passage(
    "WO-23017",
    "Work order WO-23017 on PS01.P1 (bearing_wear), opened 2024-05-02, closed 2024-05-04. Symptom: DE vibration "
    "8.1 mm/s. Action: replaced DE bearing. Outcome: vibration back to 1.9 mm/s. Downtime: 36 h. Procedure: SOP-106.",
    {"doc_type": "work_order", "date": "2024-05-02"},
)
INS = Passage("INS-412#ps01", "PS01.P1 DE velocity 6.8 mm/s, zone C.", {"doc_type": "inspection", "title": "Route"})
MAN = Passage("DS-PS01-P1#limits", "Vibration alarm 7.1 mm/s, trip 11 mm/s.", {"doc_type": "datasheet"})

FAITHFUL = (
    "Reduce speed: **PS01.P1: speed -10 %** [SOP-103#step-3-reduce-speed]. PS01.P1 vibration 7.9 mm/s is above "
    "its alarm of 7.1 mm/s; the twin expects 5.12 mm/s (base case 7.94 mm/s) at 1130 m3/h. A similar bearing "
    "case [WO-23017] took 36 h. Bearing model 0.82 (version 7)."
)


def _rec() -> Recommendation:
    base = Candidate("no change", "base", numbers={"PS01.P1 vibration mm/s": 7.936, "throughput m3/h": 1249.6})
    chosen = Candidate(
        "PS01.P1: speed -10 %",
        "speed",
        procedure="speed change",
        numbers={"PS01.P1 vibration mm/s": 5.124, "throughput m3/h": 1130.2, "min MAOP margin MPa": 1.234},
        terms=(Term("risk reduction", 0.62, 10.0, "-"), Term("energy cost", 701.0, -0.01, "kW")),
        setpoints={"PS01.P1": 0.9},
    )
    standby = Candidate(
        "switch PS01.P1 to standby PS01.P3",
        "standby",
        numbers={"PS01.P1 vibration mm/s": 0.4},
        terms=(Term("risk reduction", 0.2, 10.0, "-"), Term("energy cost", 900.0, -0.01, "kW")),
    )
    evidence = Evidence(
        procedures=(STEP,),
        work_orders=(WO,),
        inspections=(INS,),
        manuals=(MAN,),
        models=(ModelScore("PS01.P1", "bearing fault probability", 0.8234, "7"),),
    )
    situation = ("PS01.P1 vibration 7.9 mm/s above alarm 7.1 mm/s",)
    return Recommendation(situation, ("PS01.P1",), chosen, (standby, base), evidence)


@pytest.mark.parametrize(
    ("value", "text"),
    [(7.936, "7.94"), (1249.6, "1250"), (0.012345, "0.0123"), (-0.0001, "-0.000100"), (0.0, "0"), (math.nan, "n/a")],
)
def test_format_number_keeps_three_significant_figures(value, text):
    assert format_number(value) == text


def test_format_number_never_writes_minus_zero():
    assert format_number(-1e-300) != "-0"


def test_grounded_text_shows_before_after_steps_work_orders_and_models():
    text = grounded_text(_rec())
    assert "**Recommended action: PS01.P1: speed -10 %**" in text
    assert "- PS01.P1 vibration mm/s: 7.94 -> 5.12" in text
    assert "1. Pump speed change: Reduce the VFD setpoint" in text and "[SOP-103#step-3-reduce-speed]" in text
    assert "- Work order (2024-05-02): outcome: vibration back to 1.9 mm/s; downtime 36 h [WO-23017]" in text
    assert "[INS-412#ps01]" in text and "[DS-PS01-P1#limits]" in text
    assert "- Score -0.810 against -7.00 for the runner-up (a standby action)." in text
    assert "- risk reduction: 0.620 x weight 10.0 = 6.20 (runner-up: 0.200, 2.00)" in text
    assert "bearing fault probability: 0.823 (model version 7)" in text
    assert "standby PS01.P3" not in text
    assert check_text(text, _rec()).ok


OUTCOME = Passage(
    "OUT-REQ-7#intro",
    "Action: PS01.P1: speed 90 % (request REQ-7), in effect from 2024-03-02 14:00 UTC. Verdict: confirmed, the plant "
    "responded as the twin predicted (2 of 2 predictions within tolerance over 2 h). Effect on PS01.P1 (bearing "
    "wear): PS01.P1.BRG_DE_TEMP trend +0.80 degC/h before, +0.10 degC/h after.",
    {"doc_type": "outcome", "title": "Outcome of PS01.P1: speed 90 %, 2024-03-02", "date": "2024-03-02"},
)


def test_an_earlier_actions_outcome_is_cited_with_its_verdict_and_effect():
    rec = _rec()
    rec = Recommendation(rec.situation, rec.assets, rec.chosen, rec.alternatives, Evidence(outcomes=(OUTCOME,)))
    text = grounded_text(rec)
    assert (
        "**What earlier actions of the loop did**\n- Outcome of PS01.P1: speed 90 %, 2024-03-02: confirmed, the plant "
        "responded as the twin predicted (2 of 2 predictions within tolerance over 2 h); on PS01.P1 (bearing wear): "
        "PS01.P1.BRG_DE_TEMP trend +0.80 degC/h before, +0.10 degC/h after [OUT-REQ-7#intro]"
    ) in text
    assert check_text(text, rec).ok
    assert OUTCOME in rec.evidence.passages


def test_base_case_simulated_as_maintenance_gives_the_before_figures():
    rec = _rec()
    keep = Candidate(
        "keep running, schedule maintenance",
        "maintenance",
        numbers={"PS01.P1 vibration mm/s": 7.936},
        spec=ScenarioSpec(name=BASE_NAME),
    )
    rec = Recommendation(rec.situation, rec.assets, rec.chosen, (keep,), rec.evidence)
    text = grounded_text(rec)
    assert "- PS01.P1 vibration mm/s: 7.94 -> 5.12" in text and "for the base case." in text
    assert "keep running" not in text and check_text(text, rec).ok


def test_grounded_text_when_nothing_needs_doing_is_brief():
    rec = Recommendation((), (), Candidate("no change", "base"), (), Evidence())
    assert grounded_text(rec) == "**No action needed.** No alert is active; keep the base case."


def test_write_justification_without_generator_is_grounded():
    rec = write_justification(_rec(), None)
    assert rec.generator == "grounded" and rec.check.ok and rec.text == grounded_text(_rec())
    assert write_justification(_rec(), GroundedGenerator()).generator == "grounded"


def test_evidence_json_holds_chosen_numbers_passages_and_no_alternative_name():
    payload = json.loads(evidence_json(_rec()))
    assert payload["chosen"]["name"] == "PS01.P1: speed -10 %"
    assert payload["base_case"]["numbers"]["PS01.P1 vibration mm/s"] == 7.936
    assert "name" not in payload["runner_up"] and payload["runner_up"]["kind"] == "standby"
    assert [p["id"] for p in payload["passages"]] == [STEP.id, WO.id, INS.id, MAN.id]
    assert payload["model_scores"][0]["version"] == "7"
    assert "switch PS01.P1" not in evidence_json(_rec())


def test_llm_config_validates_and_hides_the_key():
    config = LLMConfig("http://127.0.0.1:1/v1", "m", api_key="sk-secret", timeout_s=1)
    assert "sk-secret" not in repr(config)
    with pytest.raises(LLMConfigError, match="url"):
        LLMConfig("127.0.0.1:1", "m")
    with pytest.raises(LLMConfigError, match="timeout_s"):
        LLMConfig("http://x/v1", "m", timeout_s=0)


@pytest.fixture
def llm():
    with StubLLM(model="stub-7b") as stub:
        yield stub


def _generator(llm: StubLLM, timeout_s: float = 5.0) -> ChatGenerator:
    return ChatGenerator(LLMConfig(llm.url, "stub-7b", api_key="sk-test", timeout_s=timeout_s))


def test_faithful_llm_text_is_used(llm):
    llm.script(text_reply(FAITHFUL))
    rec = write_justification(_rec(), _generator(llm))
    assert rec.text == FAITHFUL and rec.generator == "stub-7b" and rec.check.ok
    (request,) = llm.requests
    assert request["model"] == "stub-7b" and llm.paths == ["/v1/chat/completions"]
    system, user = request["messages"]
    assert system["role"] == "system" and "only numbers that appear in the evidence" in system["content"]
    assert json.loads(user["content"])["chosen"]["name"] == "PS01.P1: speed -10 %"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (FAITHFUL + " See [SOP-999#step-1].", "cites [SOP-999#step-1], which is not among the evidence passages"),
        (FAITHFUL.replace("5.12 mm/s", "9.7 mm/s"), "number 9.7 is not in the records"),
        (FAITHFUL + " Or switch PS01.P1 to standby PS01.P3.", "names the alternative 'switch PS01.P1 to standby"),
        (FAITHFUL + " Zone C at 6.8 mm/s.", "number 6.8 is not in the records"),
    ],
    ids=["unknown-citation", "invented-number", "other-action", "uncited-passage-number"],
)
def test_unfaithful_llm_text_falls_back_to_grounded(llm, text, problem):
    llm.script(text_reply(text))
    rec = write_justification(_rec(), _generator(llm))
    assert rec.text == grounded_text(_rec())
    assert rec.generator.startswith(f"grounded (fallback from stub-7b: {problem}")
    assert rec.check.problems[0].startswith(problem)


def test_http_error_falls_back(llm):
    llm.script(error_reply(500))
    rec = write_justification(_rec(), _generator(llm))
    assert rec.generator == "grounded (fallback from stub-7b: stub-7b answered HTTP 500)"
    assert rec.text == grounded_text(_rec()) and len(llm.requests) == 1  # no retries by default


def test_timeout_falls_back(llm):
    llm.script(text_reply(FAITHFUL, delay_s=1.5))
    rec = write_justification(_rec(), _generator(llm, timeout_s=0.3))
    assert rec.check.problems == ("stub-7b timed out after 0.3 s",)
    assert rec.text == grounded_text(_rec())


def test_empty_answer_falls_back(llm):
    llm.script(text_reply("  "))
    rec = write_justification(_rec(), _generator(llm))
    assert rec.check.problems == ("stub-7b answered no text",) and rec.generator.startswith("grounded (fallback")


def test_server_down_falls_back():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    gen = ChatGenerator(LLMConfig(f"http://127.0.0.1:{port}/v1", "m", timeout_s=2))
    rec = write_justification(_rec(), gen)
    assert rec.check.problems[0].startswith(f"cannot reach http://127.0.0.1:{port}/v1")
    assert rec.generator.startswith("grounded (fallback from m: cannot reach")


# --- the grounded generator's own text always passes the checker ------------------------------------

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGH_"
_WORD = st.text(_LETTERS, min_size=1, max_size=8).filter(lambda w: w[0] != "_")
_VALUE = st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.integers(-1000, 1000).map(float), st.just(math.nan))
_ASSET = st.builds("PS0{}.P{}".format, st.integers(1, 2), st.integers(1, 3))
_NUMBER_TEXT = st.one_of(
    st.builds(lambda x, d: f"{x:.{d}f}", st.floats(-1e4, 1e4, allow_nan=False), st.integers(0, 3)),
    st.integers(0, 100).map("{} %".format),
    st.integers(1000, 99999).map("{:,}".format),
    _ASSET,
    st.integers(100, 199).map("SOP-{}".format),
    st.dates().map(str),
    st.integers(1, 9).map("{}.".format),
    st.integers(0, 9).map("([{}])".format),
)
_TEXT = st.lists(st.one_of(_WORD, _NUMBER_TEXT), min_size=1, max_size=30).map(" ".join)
_VERSION = st.text("0123456789abcdef.v", min_size=1, max_size=8)
_LABEL = st.builds(str.__add__, _WORD, st.text(_LETTERS + "0123456789 ./", max_size=14))


@st.composite
def _candidate(draw: st.DrawFn, name: str, kind: str) -> Candidate:
    labels = draw(st.lists(_LABEL, max_size=4, unique=True))
    terms = tuple(
        Term(draw(_WORD), draw(_VALUE), draw(_VALUE), draw(st.sampled_from(["-", "kW", "%", "m3/h"])))
        for _ in range(draw(st.integers(0, 3)))
    )
    numbers = {label: draw(_VALUE) for label in labels}
    rejected = draw(st.sampled_from([(), ("vibration above trip",)]))
    spec = draw(st.sampled_from([None, ScenarioSpec(name=BASE_NAME)]))
    return Candidate(name, kind, draw(_LABEL), rejected, numbers, terms, {"PS01.P1": draw(_VALUE)}, spec)


@st.composite
def _passages(draw: st.DrawFn, prefix: str, doc_type: str) -> tuple[Passage, ...]:
    slug = st.one_of(st.just(""), st.text("abcxyz0123456789-", min_size=1, max_size=12).map("#{}".format))
    ids = draw(st.lists(st.builds(f"{prefix}-{{}}{{}}".format, st.integers(100, 99999), slug), max_size=3))
    out = []
    for pid in dict.fromkeys(ids):
        text = draw(_TEXT)
        if doc_type == "work_order" and draw(st.booleans()):
            text += f" Outcome: {draw(_TEXT)}. Downtime: {draw(st.integers(0, 500))} h."
        title = draw(st.one_of(st.just(""), _TEXT))
        meta = {"doc_type": doc_type, "title": title, "date": draw(st.sampled_from(["", "2024-05-02"]))}
        out.append(Passage(pid, text, meta))
    return tuple(out)


@st.composite
def _recommendations(draw: st.DrawFn) -> Recommendation:
    name = st.builds("{}: {} {} %".format, _ASSET, _WORD, st.integers(-99, 99))
    names = draw(st.lists(name, min_size=1, max_size=5, unique_by=str.lower))
    kinds = ["base", "speed", "standby", "throughput", "reroute", "shutdown"]
    chosen = draw(_candidate(names[0], draw(st.sampled_from(kinds))))
    alternatives = tuple(draw(_candidate(n, draw(st.sampled_from(kinds)))) for n in names[1:])
    evidence = Evidence(
        procedures=draw(_passages("SOP", "procedure")),
        work_orders=draw(_passages("WO", "work_order")),
        inspections=draw(_passages("INS", "inspection")),
        manuals=draw(_passages("MAN", "manual")),
        models=tuple(
            ModelScore(draw(_LABEL), draw(_WORD), draw(_VALUE), draw(_VERSION)) for _ in range(draw(st.integers(0, 2)))
        ),
    )
    situation = tuple(draw(st.lists(_TEXT, max_size=3)))
    return Recommendation(situation, ("PS01.P1",), chosen, alternatives, evidence)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(_recommendations())
def test_grounded_text_always_passes_its_own_checker(rec):
    text = grounded_text(rec)
    assert check_text(text, rec).problems == ()
    for passage in rec.evidence.passages:
        assert f"[{passage.id}]" in text or (rec.chosen.kind == "base" and not rec.situation)
