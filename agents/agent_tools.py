"""The tools the optional language-model agent calls, over the twin and the knowledge store.

`TwinTools` implements `pumptwin.agents.llm_agent.AgentTools`: the twin's state, a simulation of an
action the model proposes (judged by the same hard limits and objective as every fixed candidate,
so a proposal cannot slip past them), retrieval and work-order lookup. `with_agent` runs the agent
on a recommendation, ranks its simulated proposals with the other candidates, and checks its text
(falling back to the grounded generator); an endpoint that fails leaves the recommendation as it
was, with a note.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from pumptwin.agents.evidence import Candidate, Passage, Recommendation
from pumptwin.agents.recommend import Action, Objective, Situation, rank, simulate
from pumptwin.agents.twin_view import TwinView
from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.health.state import TwinState
from pumptwin.twin.whatif.spec import ScenarioSpec

MAX_NAME = 80
"""Longest action name kept from the model."""


@dataclass
class TwinTools:
    """`AgentTools` over one line of the twin and a knowledge base (None: retrieval returns nothing)."""

    state: TwinState
    view: TwinView
    situations: Sequence[Situation]
    objective: Objective
    kb: Any = None
    top_k: int = 5

    def twin_state(self) -> dict[str, Any]:
        """Health of the line's assets and the active alerts."""
        names = {p.name for p in self.view.pumps} | {f"LINE{self.view.line:02d}"}
        return {
            "ts": self.state.ts.isoformat(),
            "health": [
                {"asset": h.asset, "status": h.status, "health_index": h.health_index, "driver": h.driver}
                for h in self.state.health
                if h.asset in names
            ],
            "alerts": [a.message() for a in self.state.alerts if a.asset in names],
            "pumps": [
                {"asset": p.name, "pump_id": p.pump_id, "min_speed": p.min_speed, "max_speed": p.max_speed}
                for p in self.view.pumps
            ],
            "running": list(self.view.running()),
        }

    def _pump_id(self, name: str) -> str:
        for p in self.view.pumps:
            if name in (p.pump_id, p.name):
                return p.pump_id
        raise PumptwinError(f"no pump {name!r} on line {self.view.line}")

    def action(self, proposal: dict[str, Any]) -> Action:
        """The `Action` of a proposal.

        The proposal holds ``name``, ``speeds`` (relative to rated, by pump id or asset name),
        ``standby`` and ``stop`` (pumps) and ``flow_factor`` (throughput relative to now).

        Raises:
            PumptwinError: A pump that is not on the line, or a speed or factor that is not a positive number.
        """
        raw_name = " ".join(str(proposal.get("name") or "proposal").split())[:MAX_NAME]
        speeds = proposal.get("speeds") or {}
        if not isinstance(speeds, dict):
            raise PumptwinError("speeds must be an object of pump -> relative speed")
        changes = []
        setpoints: dict[str, float] = {}
        names = {p.pump_id: p.name for p in self.view.pumps}
        for pump, value in speeds.items():
            s = float(value)
            if not (math.isfinite(s) and s > 0):
                raise PumptwinError(f"speed of {pump} must be a positive relative speed, got {value!r}")
            pid = self._pump_id(str(pump))
            changes.append(self.view.speed_change(pid, s))
            setpoints[names[pid]] = s
        standby = tuple(self._pump_id(str(p)) for p in proposal.get("standby") or ())
        stop = tuple(self._pump_id(str(p)) for p in proposal.get("stop") or ())
        raw_factor = proposal.get("flow_factor")
        factor = 1.0 if raw_factor is None else float(raw_factor)
        if not (math.isfinite(factor) and factor > 0):
            raise PumptwinError(f"flow_factor must be a positive number, got {proposal.get('flow_factor')!r}")
        kind = "stop" if stop else "standby" if standby else "throughput" if factor != 1.0 else "setpoint"
        spec = ScenarioSpec(
            name=f"agent: {raw_name}",
            speeds=tuple(changes),
            standby=standby,
            stop=stop,
            flow_factor=None if factor == 1.0 else factor,
        )
        return Action(spec.name, kind, spec, setpoints, len(stop) + 0.5 * len(standby), stops=bool(stop or standby))

    def simulate(self, action: dict[str, Any]) -> Candidate:
        """Simulate a proposal on the twin and judge it like every candidate (a bad proposal comes back rejected)."""
        try:
            act = self.action(action)
            _, cands = simulate([act], self.situations, self.view, self.objective)
        except (PumptwinError, ValueError, TypeError) as exc:
            name = f"agent: {str(action.get('name', 'proposal'))[:MAX_NAME]}"
            return Candidate(name=name, kind="setpoint", rejected=(f"not simulated: {exc}",))
        return cands[0]

    def retrieve(self, query: str, asset: str | None, failure_mode: str | None) -> list[Passage]:
        """Passages for ``query``, filtered by asset and failure mode when given."""
        if self.kb is None:
            return []
        found: list[Passage] = self.kb.search(
            query,
            top_k=self.top_k,
            assets=[asset] if asset else None,
            failure_modes=[failure_mode] if failure_mode else None,
        )
        return found

    def work_orders(self, asset: str) -> list[Passage]:
        """The asset's past work orders, newest first."""
        if self.kb is None:
            return []
        found: list[Passage] = self.kb.lookup(doc_types=["work_order"], assets=[asset], limit=self.top_k)
        return found


def with_agent(rec: Recommendation, tools: TwinTools, config: Any) -> Recommendation:  # noqa: ANN401 - LLMConfig
    """Run the tool-using agent on ``rec``: rank its simulated proposals with the candidates, check its text.

    The agent's proposals were judged by the twin like every candidate, so one that breaks a hard
    limit is rejected and cannot be chosen. The text is checked against the final choice with the
    passages the agent retrieved citable; a failing text or endpoint falls back to the grounded text.
    """
    from pumptwin.agents.generate import GenerationError, write_justification
    from pumptwin.agents.llm_agent import justify_proposal, propose

    try:
        proposal = propose(rec, tools, config)
    except GenerationError as exc:
        note = f"language-model agent unavailable, grounded text used: {exc}"
        return replace(write_justification(rec, None), notes=(*rec.notes, note))
    ranked = rank([rec.chosen, *rec.alternatives, *proposal.candidates])
    notes = (*rec.notes, f"agent simulated {len(proposal.candidates)} proposal(s) of its own")
    final = replace(rec, chosen=ranked[0], alternatives=tuple(ranked[1:]), notes=notes)
    return justify_proposal(final, proposal)
