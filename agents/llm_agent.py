"""The optional tool-using agent: a language model that reads the twin, searches the knowledge and simulates actions.

When a language model is configured, `propose` runs Haystack's `Agent` with four tools built from an
`AgentTools` implementation (the twin's state, a simulation of a proposed action, retrieval, past work
orders). It returns an `AgentProposal`: the model's final text, every action it simulated (as the
`Candidate` the twin returned) and every passage its tools returned. The recommender re-checks the
limits of those candidates and ranks them; `justify_proposal` then checks the text against the final
recommendation, with the retrieved passages citable, and falls back to the grounded text when it fails.
Haystack is imported here and in `pumptwin.agents.generate` only, inside functions.

Example::

    proposal = propose(rec, tools, LLMConfig("http://127.0.0.1:8000/v1", "local"))
    rec = rank_again(rec, proposal.candidates)  # the recommender's own step
    rec = justify_proposal(rec, proposal)
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from pumptwin.agents.evidence import Candidate, Evidence, Passage, Recommendation
from pumptwin.agents.generate import (
    SYSTEM_PROMPT,
    GenerationError,
    LLMConfig,
    chat_generator,
    evidence_json,
    request_error,
    write_justification,
)

if TYPE_CHECKING:
    from haystack.tools import Tool

MAX_AGENT_STEPS = 12
"""Most model calls (each with the tool calls it asks for) one proposal may take."""

AGENT_PROMPT = (
    SYSTEM_PROMPT
    + """
You may call tools before you answer: twin_state (health and alerts of the assets), retrieve
(search procedures, manuals, inspections and work orders), work_orders (past work orders of an
asset) and simulate (the twin's simulation of a proposed action: its figures, whether it is
feasible and why not). Simulate every action you consider, cite only passages from the evidence or
returned by your tools, and recommend only the chosen action or a feasible action you simulated.
Finish with the justification as plain markdown, without calling a tool."""
)
"""System prompt of the tool-using agent: the generator's rules plus how to use the tools."""


class AgentTools(Protocol):
    """What the agent may call; the recommender implements it over the twin and the knowledge store."""

    def twin_state(self) -> dict[str, Any]:
        """Return the twin's present state: health by asset and the active alerts (JSON-able)."""
        ...

    def simulate(self, action: dict[str, Any]) -> Candidate:
        """Simulate a proposed action and return it as a candidate (numbers, terms, rejection reasons).

        Args:
            action: ``name`` (str), ``speeds`` (speed relative to rated by pump id), ``standby``
                (pumps to start), ``stop`` (pumps to stop), ``flow_factor`` (throughput relative
                to the present one).
        """
        ...

    def retrieve(self, query: str, asset: str | None, failure_mode: str | None) -> list[Passage]:
        """Return the passages of the knowledge corpus that best answer ``query``, optionally filtered."""
        ...

    def work_orders(self, asset: str) -> list[Passage]:
        """Return the past work orders of ``asset``."""
        ...


@dataclass(frozen=True, slots=True)
class AgentProposal:
    """What the tool-using agent produced.

    Attributes:
        text: The model's final text (markdown; "" when it gave none).
        candidates: The actions it simulated, in order, as the twin returned them.
        passages: The passages its retrieve and work_orders calls returned, without repeats.
        model: The model's name.
        exit_reason: Why the agent stopped (``text``, ``max_agent_steps``, ...).
        tool_calls: How many times each tool was called, by name.
    """

    text: str
    candidates: tuple[Candidate, ...] = ()
    passages: tuple[Passage, ...] = ()
    model: str = ""
    exit_reason: str = ""
    tool_calls: Mapping[str, int] = field(default_factory=dict)


def candidate_result(cand: Candidate) -> dict[str, Any]:
    """A simulated candidate as the model reads it: figures, feasibility, rejection reasons, score terms."""
    return {k: v for k, v in cand.to_dict().items() if k != "setpoints"}


def passage_result(p: Passage) -> dict[str, Any]:
    """A passage as the model reads it: id (the citation key), type, title, date and text."""
    return {"id": p.id, "type": p.doc_type, "title": p.title, "date": str(p.meta.get("date", "")), "text": p.text}


class _ToolCalls:
    """The tool functions over an `AgentTools`, recording what they return (thread-safe)."""

    def __init__(self, tools: AgentTools) -> None:
        self.tools = tools
        self.candidates: list[Candidate] = []
        self.passages: dict[str, Passage] = {}
        self._lock = threading.Lock()

    def twin_state(self) -> dict[str, Any]:
        """Health and alerts of the assets."""
        return self.tools.twin_state()

    def simulate(
        self,
        name: str,
        speeds: dict[str, float] | None = None,
        standby: list[str] | None = None,
        stop: list[str] | None = None,
        flow_factor: float | None = None,
    ) -> dict[str, Any]:
        """Simulate one proposed action; speeds relative to rated, flow_factor relative to present throughput."""
        action: dict[str, Any] = {
            "name": name,
            "speeds": {str(k): float(v) for k, v in (speeds or {}).items()},
            "standby": [str(p) for p in standby or []],
            "stop": [str(p) for p in stop or []],
            "flow_factor": 1.0 if flow_factor is None else float(flow_factor),
        }
        cand = self.tools.simulate(action)
        with self._lock:
            self.candidates.append(cand)
        return candidate_result(cand)

    def _keep(self, found: Iterable[Passage]) -> list[dict[str, Any]]:
        found = list(found)
        with self._lock:
            for p in found:
                self.passages.setdefault(p.id, p)
        return [passage_result(p) for p in found]

    def retrieve(self, query: str, asset: str | None = None, failure_mode: str | None = None) -> list[dict[str, Any]]:
        """Search the knowledge corpus."""
        return self._keep(self.tools.retrieve(query, asset or None, failure_mode or None))

    def work_orders(self, asset: str) -> list[dict[str, Any]]:
        """Past work orders of one asset."""
        return self._keep(self.tools.work_orders(asset))


_NULLABLE_STRING = {"type": ["string", "null"]}


def _build_tools(calls: _ToolCalls) -> list[Tool]:
    """The Haystack `Tool`s over ``calls``, with the JSON schemas the model fills in."""
    from haystack.tools import Tool

    pumps = {"type": "array", "items": {"type": "string"}}
    return [
        Tool(
            name="twin_state",
            description="Present health of every asset and the active alerts, from the digital twin.",
            parameters={"type": "object", "properties": {}},
            function=calls.twin_state,
        ),
        Tool(
            name="simulate",
            description=(
                "Simulate a proposed action with the digital twin. Returns the simulated figures (vibration, "
                "pressures, MAOP margin, NPSH margin, throughput, power), whether it is feasible, the hard limits "
                "it violates, and its score terms."
            ),
            parameters={
                "type": "object",
                "properties": {
                    "name": {"type": "string", "description": "The action as an operator names it."},
                    "speeds": {
                        "type": "object",
                        "additionalProperties": {"type": "number"},
                        "description": "Speed relative to rated by pump id, e.g. {'PS01.P1': 0.9}.",
                    },
                    "standby": pumps | {"description": "Standby pumps to start, by id."},
                    "stop": pumps | {"description": "Pumps to stop, by id."},
                    "flow_factor": {"type": "number", "description": "Throughput relative to the present one."},
                },
                "required": ["name"],
            },
            function=calls.simulate,
        ),
        Tool(
            name="retrieve",
            description="Search procedures, manuals, datasheets, inspections and work orders. Returns passages "
            "with their ids (cite them as [id]).",
            parameters={
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "What to look for."},
                    "asset": _NULLABLE_STRING | {"description": "Only passages about this asset, e.g. PS01.P1."},
                    "failure_mode": _NULLABLE_STRING | {"description": "Only this failure mode, e.g. bearing_wear."},
                },
                "required": ["query"],
            },
            function=calls.retrieve,
        ),
        Tool(
            name="work_orders",
            description="Past work orders of one asset (symptom, finding, action, outcome, downtime).",
            parameters={
                "type": "object",
                "properties": {"asset": {"type": "string", "description": "Asset id, e.g. PS01.P1."}},
                "required": ["asset"],
            },
            function=calls.work_orders,
        ),
    ]


def propose(
    rec: Recommendation, tools: AgentTools, config: LLMConfig, *, max_steps: int = MAX_AGENT_STEPS
) -> AgentProposal:
    """Let the language model study the situation with the tools and propose a justified action.

    Args:
        rec: The recommender's first recommendation (situation, candidates so far, evidence).
        tools: The twin and knowledge behind the agent's tools.
        config: The language-model endpoint.
        max_steps: Most model calls.

    Returns:
        The proposal: final text, simulated candidates, retrieved passages.

    Raises:
        GenerationError: The endpoint cannot be reached, answers an HTTP error or times out.
    """
    from haystack.components.agents import Agent
    from haystack.dataclasses import ChatMessage

    calls = _ToolCalls(tools)
    agent = Agent(
        chat_generator=chat_generator(config),
        tools=_build_tools(calls),
        system_prompt=AGENT_PROMPT,
        max_agent_steps=max_steps,
        tool_concurrency_limit=1,
        raise_on_tool_invocation_failure=False,
    )
    task = "Situation and evidence so far (JSON):\n" + evidence_json(rec)
    try:
        result = agent.run(messages=[ChatMessage.from_user(task)])
    except Exception as exc:
        raise request_error(config, exc) from exc
    last = result.get("last_message")
    text = last.text if last is not None and last.text and not last.tool_calls else ""
    return AgentProposal(
        text=text or "",
        candidates=tuple(calls.candidates),
        passages=tuple(calls.passages.values()),
        model=config.model,
        exit_reason=str(result.get("exit_reason", "")),
        tool_calls=dict(result.get("tool_call_counts", {})),
    )


def with_passages(rec: Recommendation, passages: Iterable[Passage]) -> Recommendation:
    """Add passages to ``rec``'s evidence by document type, keeping the ones already there.

    Args:
        rec: The recommendation.
        passages: Passages to make citable (work orders, inspections, procedures; others as manuals).

    Returns:
        ``rec`` with the new passages appended to the matching evidence field.
    """
    ev = rec.evidence
    known = {p.id for p in ev.passages}
    groups: dict[str, list[Passage]] = {
        "procedure": [],
        "work_order": [],
        "outcome": [],
        "inspection": [],
        "manual": [],
    }
    for p in passages:
        if p.id not in known:
            known.add(p.id)
            groups.get(p.doc_type, groups["manual"]).append(p)
    evidence = Evidence(
        procedures=(*ev.procedures, *groups["procedure"]),
        work_orders=(*ev.work_orders, *groups["work_order"]),
        inspections=(*ev.inspections, *groups["inspection"]),
        manuals=(*ev.manuals, *groups["manual"]),
        models=ev.models,
        outcomes=(*ev.outcomes, *groups["outcome"]),
    )
    return replace(rec, evidence=evidence)


@dataclass(frozen=True, slots=True)
class _ProposalText:
    """A `Generator` that returns the agent's text (it is written already)."""

    name: str
    text: str

    def generate(self, rec: Recommendation) -> str:
        """Return the agent's text, or raise when it gave none."""
        if not self.text.strip():
            raise GenerationError(f"{self.name} gave no final text")
        return self.text


def justify_proposal(rec: Recommendation, proposal: AgentProposal) -> Recommendation:
    """Check the agent's text against the final ``rec`` (its retrieved passages citable) and keep it or fall back.

    Args:
        rec: The final recommendation, after the recommender ranked the agent's candidates.
        proposal: What `propose` returned.

    Returns:
        ``rec`` with the retrieved passages in its evidence and ``text``, ``generator`` and ``check``
        set as by `pumptwin.agents.generate.write_justification`.
    """
    rec = with_passages(rec, proposal.passages)
    return write_justification(rec, _ProposalText(proposal.model or "language model", proposal.text))
