"""The tool-using agent, driven by a scripted OpenAI-compatible endpoint."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pumptwin.agents.evidence import Candidate, Evidence, Passage, Recommendation, Term
from pumptwin.agents.generate import GenerationError, LLMConfig, grounded_text
from pumptwin.agents.llm_agent import AgentProposal, justify_proposal, propose, with_passages
from tests.agents.llm_stub import StubLLM, text_reply, tool_reply

STEP = Passage("SOP-103#step-2", "Lower the VFD setpoint to 0.9 of rated speed.", {"doc_type": "procedure"})
WO = Passage(
    "WO-23017",
    "Work order WO-23017 on PS01.P1 (bearing_wear). Outcome: vibration back to 1.9 mm/s. Downtime: 36 h.",
    {"doc_type": "work_order"},
)
INS = Passage("INS-412#ps01", "PS01.P1 DE velocity 6.8 mm/s, zone C.", {"doc_type": "inspection"})

FINAL = (
    "Recommended: PS01.P1: speed 0.9 [SOP-103#step-2]; vibration 7.9 mm/s falls to 5.12 mm/s. A bearing case "
    "[WO-23017] returned to 1.9 mm/s. Route [INS-412#ps01] found 6.8 mm/s."
)


class FakeTools:
    """An `AgentTools` over fixed data, recording its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def twin_state(self) -> dict[str, Any]:
        self.calls.append(("twin_state", None))
        return {"health": {"PS01.P1": 0.41}, "alerts": ["PS01.P1 vibration 7.9 mm/s above alarm 7.1 mm/s"]}

    def simulate(self, action: dict[str, Any]) -> Candidate:
        self.calls.append(("simulate", action))
        speed = action["speeds"].get("PS01.P1", 1.0)
        vibration = 7.9 * speed**2 / 0.9**2 * 0.65
        rejected = () if vibration < 7.1 else ("vibration above alarm",)
        return Candidate(
            action["name"],
            "speed",
            rejected=rejected,
            numbers={"PS01.P1 vibration mm/s": round(vibration, 3)},
            terms=(Term("risk reduction", 0.6, 10.0, "-"),),
            setpoints={"PS01.P1": speed},
        )

    def retrieve(self, query: str, asset: str | None, failure_mode: str | None) -> list[Passage]:
        self.calls.append(("retrieve", (query, asset, failure_mode)))
        return [STEP, INS]

    def work_orders(self, asset: str) -> list[Passage]:
        self.calls.append(("work_orders", asset))
        return [WO]


def _rec(chosen_name: str = "PS01.P1: speed 0.9") -> Recommendation:
    chosen = Candidate(chosen_name, "speed", numbers={"PS01.P1 vibration mm/s": 5.1194}, setpoints={"PS01.P1": 0.9})
    base = Candidate("no change", "base", numbers={"PS01.P1 vibration mm/s": 7.9})
    return Recommendation(
        ("PS01.P1 vibration 7.9 mm/s above alarm 7.1 mm/s",), ("PS01.P1",), chosen, (base,), Evidence()
    )


@pytest.fixture
def llm():
    with StubLLM(model="stub-agent") as stub:
        yield stub


def _config(llm: StubLLM) -> LLMConfig:
    return LLMConfig(llm.url, "stub-agent", timeout_s=5)


def test_agent_reads_the_twin_retrieves_simulates_and_answers(llm):
    llm.script(
        tool_reply(("twin_state", {})),
        tool_reply(("retrieve", {"query": "high vibration speed reduction", "asset": "PS01.P1"})),
        tool_reply(("work_orders", {"asset": "PS01.P1"})),
        tool_reply(("simulate", {"name": "PS01.P1: speed 0.9", "speeds": {"PS01.P1": 0.9}})),
        text_reply(FINAL),
    )
    tools = FakeTools()
    proposal = propose(_rec(), tools, _config(llm))

    assert proposal.text == FINAL and proposal.model == "stub-agent" and proposal.exit_reason == "text"
    assert [c.name for c in proposal.candidates] == ["PS01.P1: speed 0.9"]
    assert proposal.candidates[0].feasible and proposal.candidates[0].numbers == {"PS01.P1 vibration mm/s": 5.135}
    assert [p.id for p in proposal.passages] == ["SOP-103#step-2", "INS-412#ps01", "WO-23017"]
    assert dict(proposal.tool_calls) == {"twin_state": 1, "retrieve": 1, "work_orders": 1, "simulate": 1}
    assert tools.calls[1] == ("retrieve", ("high vibration speed reduction", "PS01.P1", None))
    action = tools.calls[3][1]
    assert action == {
        "name": "PS01.P1: speed 0.9",
        "speeds": {"PS01.P1": 0.9},
        "standby": [],
        "stop": [],
        "flow_factor": 1.0,
    }

    assert len(llm.requests) == 5
    first = llm.requests[0]
    assert {t["function"]["name"] for t in first["tools"]} == {"twin_state", "simulate", "retrieve", "work_orders"}
    assert first["messages"][0]["role"] == "system" and "simulate" in first["messages"][0]["content"]
    sim_result = json.loads(llm.requests[4]["messages"][-1]["content"])
    assert sim_result["feasible"] is True and sim_result["numbers"] == {"PS01.P1 vibration mm/s": 5.135}


def test_the_agents_text_may_cite_what_it_retrieved(llm):
    llm.script(
        tool_reply(("retrieve", {"query": "vibration"}), ("work_orders", {"asset": "PS01.P1"})),
        text_reply(FINAL),
    )
    proposal = propose(_rec(), FakeTools(), _config(llm))
    rec = justify_proposal(_rec(), proposal)
    assert rec.generator == "stub-agent" and rec.check.ok and rec.text == FINAL
    assert {p.id for p in rec.evidence.passages} == {STEP.id, WO.id, INS.id}


def test_citing_a_passage_not_retrieved_falls_back(llm):
    llm.script(tool_reply(("work_orders", {"asset": "PS01.P1"})), text_reply(FINAL))
    proposal = propose(_rec(), FakeTools(), _config(llm))
    rec = justify_proposal(_rec(), proposal)
    assert rec.generator.startswith("grounded (fallback from stub-agent: cites [SOP-103#step-2]")
    assert rec.text == grounded_text(rec) and "[WO-23017]" in rec.text


def test_the_agents_action_is_refused_when_the_recommender_chose_another(llm):
    llm.script(
        tool_reply(("simulate", {"name": "PS01.P1: speed 0.9", "speeds": {"PS01.P1": 0.9}})),
        text_reply("Do PS01.P1: speed 0.9 now; vibration 5.1 mm/s."),
    )
    proposal = propose(_rec(), FakeTools(), _config(llm))
    first = _rec(chosen_name="PS01.P1: speed 0.85")
    final = Recommendation(first.situation, first.assets, first.chosen, proposal.candidates, first.evidence)
    rec = justify_proposal(final, proposal)
    assert rec.check.problems == (
        "names the alternative 'PS01.P1: speed 0.9': only the chosen action 'PS01.P1: speed 0.85' may be",
        "does not name the chosen action 'PS01.P1: speed 0.85'",
    )


def test_a_failing_tool_is_reported_to_the_model_and_the_run_goes_on(llm):
    class Broken(FakeTools):
        def simulate(self, action: dict[str, Any]) -> Candidate:
            raise ValueError("unknown pump PS09.P9")

    llm.script(tool_reply(("simulate", {"name": "x", "speeds": {"PS09.P9": 0.9}})), text_reply(FINAL))
    proposal = propose(_rec(), Broken(), _config(llm))
    assert proposal.candidates == () and proposal.text == FINAL
    assert "unknown pump PS09.P9" in llm.requests[1]["messages"][-1]["content"]


def test_running_out_of_steps_gives_no_text_and_falls_back(llm):
    llm.script(*[tool_reply(("twin_state", {}))] * 3)
    proposal = propose(_rec(), FakeTools(), _config(llm), max_steps=2)
    assert proposal.text == "" and proposal.exit_reason == "max_agent_steps"
    rec = justify_proposal(_rec(), proposal)
    assert rec.check.problems == ("stub-agent gave no final text",)


def test_endpoint_error_raises_generation_error(llm):
    with pytest.raises(GenerationError, match="answered HTTP 500"):
        propose(_rec(), FakeTools(), _config(llm))  # nothing scripted: the stub answers 500


def test_with_passages_files_passages_by_type_without_repeats():
    rec = with_passages(_rec(), [STEP, WO, INS, Passage("MAN-201#x", "t"), STEP])
    ev = rec.evidence
    assert [p.id for p in ev.procedures] == [STEP.id] and [p.id for p in ev.work_orders] == [WO.id]
    assert [p.id for p in ev.inspections] == [INS.id] and [p.id for p in ev.manuals] == ["MAN-201#x"]


def test_proposal_defaults_are_empty():
    assert AgentProposal(text="").candidates == () and AgentProposal(text="").passages == ()
