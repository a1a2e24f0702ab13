"""Re-ranking retrieved passages by what the question asks for: which asset, which kind of record, when.

Operators' questions carry intent that neither embeddings nor term counts weigh: "the most recent
strainer clean-out at Station 2" wants a work order, of a Station 2 pump, the newest one; "what is
the trip limit" wants a datasheet or manual. `question_intent` reads that from the question with a
few transparent rules (asset names, "station N", years, words that ask for the latest record, words
that name a kind of document) and `IntentReranker` (a Haystack component) adds bonuses to the
fused retrieval score of each candidate:

    score = 1 / (rank + rank_k)            fused rank from hybrid retrieval, 0-based
          + asset   if the passage is about an asset the question names (or a pump of its station)
          + kind    if the passage is of a kind of document the question asks for
          + year    if the passage is dated in a year the question names
          + recent * (newest first within the candidates of the wanted kind) when it asks for the latest

The weights were chosen on the ``tune`` questions only (`pumptwin knowledge eval --split tune`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict

from pumptwin.agents.ask import assets_named

STATION = re.compile(r"\bstation\s*(\d{1,2})\b|\bPS(\d{2})\b(?![.\s-]?P\d)", re.IGNORECASE)
YEAR = re.compile(r"\b(20\d{2})\b")
RECENT = re.compile(r"\b(latest|most recent|last|lately|recently|now|current(?:ly)?|newest|this year)\b", re.I)
KINDS: dict[str, re.Pattern[str]] = {
    "work_order": re.compile(
        r"\b(work orders?|WO|downtime|how long|hours|replaced|replacement|repair(?:ed)?|fixed|clean(?:ed|-out|ing)?|"
        r"overhaul(?:ed)?|found|finding|what did (?:they|we)|changed|fitted|history|before|again|ever|happened)\b",
        re.I,
    ),
    "inspection": re.compile(
        r"\b(survey|route|thermograph\w*|infrared|oil analysis|oil sample|pig|ILI|in-line|inspection|patrol|"
        r"cathodic|potentials?|reading|readings|trend|metal loss|dent|right-of-way)\b",
        re.I,
    ),
    "procedure": re.compile(
        r"\b(what do (?:i|we)|what should|procedure|steps?|how do (?:i|we)|before (?:restart|start)\w*|"
        r"allowed|may (?:i|we)|can (?:i|we)|should (?:i|we)|first|who (?:do|to) call|permit|hold point)\b",
        re.I,
    ),
    "datasheet": re.compile(
        r"\b(limits?|trip|alarm(?: level| limit| setting)?|rated|BEP|best efficiency|datasheet|spec\w*|NPSHr|"
        r"MAOP|maximum|minimum|range|rating|design)\b",
        re.I,
    ),
}
"""Words that ask for a kind of document (``datasheet`` also stands for manuals)."""
KIND_OF_TYPE = {"work_order": "work_order", "inspection": "inspection", "procedure": "procedure"}
KIND_OF_TYPE |= {"datasheet": "datasheet", "manual": "datasheet"}


@dataclass(frozen=True)
class Intent:
    """What a question asks for.

    Attributes:
        assets: Assets named (``PS01.P1``, ``LINE01``).
        stations: Stations named (``PS02``) without a pump.
        years: Years named.
        recent: Whether it asks for the latest record.
        kinds: Kinds of document asked for (``work_order``, ``inspection``, ``procedure``, ``datasheet``).
    """

    assets: tuple[str, ...] = ()
    stations: tuple[str, ...] = ()
    years: tuple[str, ...] = ()
    recent: bool = False
    kinds: tuple[str, ...] = ()


def question_intent(question: str) -> Intent:
    """Read a question's intent (see the module docstring)."""
    assets = assets_named(question)
    named_stations = {a.split(".")[0] for a in assets if "." in a}
    stations = []
    for m in STATION.finditer(question):
        number = m.group(1) or m.group(2)
        station = f"PS{int(number):02d}"
        if station not in named_stations:
            stations.append(station)
    return Intent(
        assets=assets,
        stations=tuple(dict.fromkeys(stations)),
        years=tuple(dict.fromkeys(YEAR.findall(question))),
        recent=bool(RECENT.search(question)),
        kinds=tuple(kind for kind, pattern in KINDS.items() if pattern.search(question)),
    )


def _about(doc: Document, intent: Intent) -> bool:
    about = [str(a) for a in doc.meta.get("assets") or []]
    if any(a in about for a in intent.assets):
        return True
    return any(a.startswith(f"{s}.") for s in intent.stations for a in about)


def _kind(doc: Document) -> str:
    return KIND_OF_TYPE.get(str(doc.meta.get("doc_type", "")), "")


@component
class IntentReranker:
    """Re-rank candidates by the question's intent; a Haystack component (see the module docstring)."""

    def __init__(
        self,
        *,
        rank_k: float = 10.0,
        asset: float = 0.04,
        kind: float = 0.01,
        year: float = 0.04,
        recent: float = 0.02,
        top_k: int | None = None,
        candidates: int = 30,
    ) -> None:
        """Store the weights (see the module docstring for the score) and the candidates wanted from retrieval."""
        if rank_k <= 0:
            raise ValueError(f"rank_k must be > 0, got {rank_k}")
        if candidates <= 0:
            raise ValueError(f"candidates must be > 0, got {candidates}")
        self.candidates = candidates
        self.rank_k, self.asset, self.kind, self.year, self.recent = rank_k, asset, kind, year, recent
        self.top_k = top_k

    def to_dict(self) -> dict[str, Any]:
        """Serialize the weights."""
        return default_to_dict(
            self,
            rank_k=self.rank_k,
            asset=self.asset,
            kind=self.kind,
            year=self.year,
            recent=self.recent,
            top_k=self.top_k,
            candidates=self.candidates,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IntentReranker:
        """Rebuild from `to_dict`'s output."""
        return default_from_dict(cls, data)

    def scores(self, query: str, documents: Sequence[Document]) -> list[float]:
        """The re-ranking score of each candidate (in the order given: best retrieved first)."""
        intent = question_intent(query)
        wanted = [d for d in documents if not intent.kinds or _kind(d) in intent.kinds]
        wanted_ids = {d.id for d in wanted}
        newest = sorted({str(d.meta.get("date") or "") for d in wanted if d.meta.get("date")}, reverse=True)
        out = []
        for i, doc in enumerate(documents):
            s = 1.0 / (i + self.rank_k)
            if (intent.assets or intent.stations) and _about(doc, intent):
                s += self.asset
            if intent.kinds and _kind(doc) in intent.kinds:
                s += self.kind
            date = str(doc.meta.get("date") or "")
            if intent.years and date[:4] in intent.years:
                s += self.year
            if intent.recent and not intent.years and date in newest and doc.id in wanted_ids:
                s += self.recent / (1.0 + newest.index(date))
            out.append(s)
        return out

    @component.output_types(documents=list[Document])
    def run(self, query: str, documents: list[Document], top_k: int | None = None) -> dict[str, list[Document]]:
        """Return the candidates re-ranked, best first (ties by id), with their new scores."""
        scored = sorted(zip(self.scores(query, documents), documents, strict=True), key=lambda sd: (-sd[0], sd[1].id))
        k = top_k if top_k is not None else self.top_k
        kept = scored[:k] if k is not None else scored
        return {"documents": [replace(doc, score=s) for s, doc in kept]}
