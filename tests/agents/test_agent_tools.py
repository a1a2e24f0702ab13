"""The agent's tools over the real twin, and the agent's proposals judged by the same hard limits."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from pumptwin.agents.agent_tools import TwinTools
from pumptwin.agents.generate import LLMConfig
from pumptwin.agents.recommend import Objective, recommend, situations
from pumptwin.agents.twin_view import TwinView
from pumptwin.twin.assets import build_registry
from pumptwin.twin.health.state import Alert, AssetHealth, TwinState
from pumptwin.twin.hydraulic.io import load_network
from pumptwin.twin.whatif.limits import Limits
from tests.agents.llm_stub import StubLLM, text_reply, tool_reply

TS = pd.Timestamp("2026-11-01T06:00", tz="UTC")


def _hot_bearing() -> TwinState:
    alert = Alert("PS01.P1", "thermal_drift_de", "physics", "alarm", 0.3, 0.25, "-", 1.2, TS, TS, "physics")
    health = AssetHealth("PS01.P1", "pump", 0.4, "alarm", 1.2, "thermal_drift_de", {}, {})
    return TwinState(TS, (health,), (alert,))


@pytest.fixture(scope="module")
def view() -> TwinView:
    net = load_network(None)
    reg = build_registry(net)
    return TwinView(net, reg, rated_speed_rpm={p.pump_id: p.rated_speed_rpm for p in reg.pumps})


def _tools(view: TwinView) -> TwinTools:
    state = _hot_bearing()
    return TwinTools(state, view, situations(state, view), Objective())


def test_state_tool_lists_the_line(view: TwinView) -> None:
    out = _tools(view).twin_state()
    assert out["alerts"] and "PS01.P1" in out["alerts"][0]
    assert {p["asset"] for p in out["pumps"]} >= {"PS01.P1", "PS02.P3"}


def test_a_proposal_is_simulated_and_judged(view: TwinView) -> None:
    cand = _tools(view).simulate({"name": "slow P1", "speeds": {"PS01.P1": 0.93}})
    assert cand.name == "agent: slow P1"
    assert cand.numbers["PS01.P1 speed %"] == pytest.approx(93.0, abs=0.01)
    assert any(t.name == "risk reduction" and t.value > 0 for t in cand.terms)


def test_a_proposal_breaking_a_hard_limit_is_rejected(view: TwinView) -> None:
    tight = replace(view, limits=Limits(max_maop_use=0.75))
    state = _hot_bearing()
    tools = TwinTools(state, tight, situations(state, tight), Objective())
    cand = tools.simulate({"name": "all out", "speeds": {p.pump_id: 1.05 for p in tight.pumps}})
    assert not cand.feasible
    assert any(r.startswith("MAOP") for r in cand.rejected)


@pytest.mark.parametrize(
    "proposal",
    [
        {"name": "x", "speeds": {"PS09.P9": 0.9}},
        {"name": "x", "speeds": {"PS01.P1": "fast"}},
        {"name": "x", "speeds": {"PS01.P1": -1}},
        {"name": "x", "speeds": [0.9]},
        {"name": "x", "flow_factor": 0},
    ],
)
def test_malformed_proposals_come_back_rejected(view: TwinView, proposal: dict) -> None:
    cand = _tools(view).simulate(proposal)
    assert not cand.feasible
    assert cand.rejected[0].startswith("not simulated:")


def test_agent_proposal_that_breaks_maop_is_never_chosen(view: TwinView) -> None:
    tight = replace(view, limits=Limits(max_maop_use=0.75))
    with StubLLM() as llm:
        llm.script(
            tool_reply(("simulate", {"name": "push hard", "speeds": {p.pump_id: 1.05 for p in tight.pumps}})),
            text_reply("Push every pump to 105 % speed."),
        )
        run = recommend(_hot_bearing(), tight, agent=LLMConfig(url=llm.url, model="stub-model"), search=False)
    rec = run.recommendation
    assert rec.chosen.name != "agent: push hard"
    assert rec.chosen.feasible
    pushed = next(c for c in rec.alternatives if c.name == "agent: push hard")
    assert not pushed.feasible
    assert rec.generator.startswith("grounded (fallback")
    assert any("agent simulated 1 proposal" in n for n in rec.notes)


def test_agent_endpoint_down_keeps_the_recommendation(view: TwinView) -> None:
    config = LLMConfig(url="http://127.0.0.1:9/v1", model="stub-model", timeout_s=2.0)
    rec = recommend(_hot_bearing(), view, agent=config, search=False).recommendation
    assert rec.generator == "grounded"
    assert any("language-model agent unavailable" in n for n in rec.notes)
    assert rec.chosen.feasible and rec.text
