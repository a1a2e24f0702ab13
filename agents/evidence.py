"""The records the recommender passes between retrieval, ranking, text generation and the checker.

Plain frozen dataclasses, no Haystack types: `Passage` is one retrieved passage (its id is the
citation key, ``[SOP-104#step-3]`` in a text), `Candidate` one simulated action with the terms
of its score, `Recommendation` the chosen action with its alternatives, evidence and text.
Numbers are SI or the unit named in their key (``PS01.P1 vibration mm/s``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pumptwin.twin.whatif.spec import ScenarioSpec

CITATION_OPEN = "["
"""A citation in a text is a passage id between square brackets: ``[WO-24017]``."""


@dataclass(frozen=True)
class Passage:
    """One passage of the knowledge corpus as retrieved.

    Attributes:
        id: Stable id, ``<doc id>#<section slug>`` for documents, the work-order number for a
            work order (``WO-24017``).
        text: The passage's text.
        meta: Metadata: ``doc_id``, ``doc_type`` (procedure, manual, datasheet, work_order,
            inspection), ``title``, ``assets`` (list of names such as ``PS01.P1``),
            ``failure_modes`` (list), ``date`` (ISO date or ""), ``source`` (file).
        score: Retrieval score (higher is better; 0 for a lookup by metadata).
    """

    id: str
    text: str
    meta: Mapping[str, Any] = field(default_factory=dict)
    score: float = 0.0

    @property
    def doc_type(self) -> str:
        """The passage's document type ("" when unknown)."""
        return str(self.meta.get("doc_type", ""))

    @property
    def title(self) -> str:
        """The title of the passage's document ("" when unknown)."""
        return str(self.meta.get("title", ""))


@dataclass(frozen=True)
class Term:
    """One term of a candidate's score: ``weight * value``, shown to the approver.

    Attributes:
        name: What it measures (``risk reduction``, ``energy cost``, ...).
        value: Its value in ``unit``.
        weight: Its weight (from settings), per ``unit``; negative for a cost.
        unit: Unit of ``value``.
    """

    name: str
    value: float
    weight: float
    unit: str

    @property
    def contribution(self) -> float:
        """``weight * value``: what the term adds to the score."""
        return self.weight * self.value


@dataclass(frozen=True)
class Candidate:
    """One candidate action after the twin simulated it.

    Attributes:
        name: The action as an operator names it (``PS01.P1: speed -10 %``).
        kind: ``base``, ``speed``, ``standby``, ``throughput``, ``reroute``, ``maintenance``,
            ``shutdown`` or ``setpoint`` (found by the continuous search).
        procedure: The failure mode or operation whose procedure covers the action
            (``speed change``, ``switch to standby``, ...).
        rejected: Why the action is not allowed (hard limits it violates); empty when feasible.
        numbers: The simulated figures an approver checks, by label with its unit
            (``PS01.P1 vibration mm/s``, ``throughput m3/h``, ``min MAOP margin MPa``...).
        terms: The terms of its score.
        setpoints: Speeds (relative to rated) by pump and valve openings by valve it sets.
        spec: The scenario the twin simulated it with (None when not simulated).
    """

    name: str
    kind: str
    procedure: str = ""
    rejected: tuple[str, ...] = ()
    numbers: Mapping[str, float] = field(default_factory=dict)
    terms: tuple[Term, ...] = ()
    setpoints: Mapping[str, float] = field(default_factory=dict)
    spec: ScenarioSpec | None = field(default=None, compare=False)

    @property
    def feasible(self) -> bool:
        """True when no hard limit is violated."""
        return not self.rejected

    @property
    def score(self) -> float:
        """Sum of the terms' contributions (higher is better)."""
        return sum(t.contribution for t in self.terms)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record: figures, feasibility, rejection reasons, score terms, score and setpoints."""
        return {
            "name": self.name,
            "kind": self.kind,
            "feasible": self.feasible,
            "rejected": list(self.rejected),
            "score": self.score,
            "terms": [{"name": t.name, "value": t.value, "weight": t.weight, "unit": t.unit} for t in self.terms],
            "numbers": dict(self.numbers),
            "setpoints": dict(self.setpoints),
        }


@dataclass(frozen=True)
class ModelScore:
    """A model's verdict on an asset, with the model version that produced it."""

    asset: str
    name: str
    value: float
    version: str


@dataclass(frozen=True)
class Evidence:
    """What supports a recommendation, each passage citable by its id.

    Attributes:
        procedures: Procedure steps for the chosen action and the situation.
        work_orders: Similar past work orders and their outcomes.
        inspections: Relevant inspection findings.
        manuals: Manual or datasheet passages (limits).
        models: Model scores with versions.
        outcomes: What earlier actions of the loop did on the assets (the feedback flow's reports).
    """

    procedures: tuple[Passage, ...] = ()
    work_orders: tuple[Passage, ...] = ()
    inspections: tuple[Passage, ...] = ()
    manuals: tuple[Passage, ...] = ()
    models: tuple[ModelScore, ...] = ()
    outcomes: tuple[Passage, ...] = ()

    @property
    def passages(self) -> tuple[Passage, ...]:
        """Every passage, procedures first, without repeats."""
        seen: dict[str, Passage] = {}
        for p in (*self.procedures, *self.work_orders, *self.outcomes, *self.inspections, *self.manuals):
            seen.setdefault(p.id, p)
        return tuple(seen.values())


@dataclass(frozen=True)
class Check:
    """The checker's verdict on a text: ``ok`` or the problems found."""

    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when nothing was found."""
        return not self.problems


@dataclass(frozen=True)
class Recommendation:
    """The recommended action, the alternatives, the evidence and the justification.

    Attributes:
        situation: The alerts that prompted it, one line each.
        assets: The assets at risk.
        chosen: The chosen candidate (the base case when nothing needs doing).
        alternatives: The other candidates, best first, rejected ones last.
        evidence: Passages and model scores cited.
        text: The justification, citing passages as ``[id]``.
        generator: What wrote ``text`` (``grounded`` or the language model's name).
        check: The checker's verdict on a language model's text (``ok`` for the grounded one);
            when it failed, ``text`` is the grounded generator's.
        notes: Anything the approver should know (a store that could not be read, ...).
    """

    situation: tuple[str, ...]
    assets: tuple[str, ...]
    chosen: Candidate
    alternatives: tuple[Candidate, ...]
    evidence: Evidence
    text: str = ""
    generator: str = "grounded"
    check: Check = field(default_factory=Check)
    notes: tuple[str, ...] = ()
