"""Answers to an operator's question from the knowledge corpus and the twin's state, with citations.

`answer` retrieves the passages nearest the question (hybrid retrieval, filtered to the assets the
question names when passages about them exist), quotes from each the sentences that share the most
words with the question, and cites each as ``[id]``. When the question names an asset of the twin
(or none, and asks why something is in alarm), the twin's current health and active alerts for
it come first, so "why is PS01.P1 in alarm?" is answered with the evidence that fired. The text is
extractive: every sentence is the corpus's or the twin's own.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pumptwin.agents.check import plain
from pumptwin.agents.evidence import Passage
from pumptwin.twin.health.state import TwinState

ASSET_PATTERN = re.compile(r"\b(PS\d{2})[.\s-]?(P\d)\b|\b(LINE\d{2})\b", re.IGNORECASE)
"""An asset name written in a question: ``PS01.P1``, ``ps01 p1``, ``LINE01``."""
SPOKEN_PATTERN = re.compile(r"\bstation\s*(\d{1,2})\D{0,12}?pump\s*(\d)\b", re.IGNORECASE)
"""An asset written out: ``station 2 pump 3`` -> ``PS02.P3``."""
WORD = re.compile(r"[a-z0-9]+(?:[.][a-z0-9]+)*")
SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(])")
STOP_WORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "has",
        "have",
        "how",
        "i",
        "in",
        "is",
        "it",
        "its",
        "me",
        "of",
        "on",
        "or",
        "our",
        "the",
        "this",
        "to",
        "was",
        "we",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
    }
)
QUOTED_SENTENCES = 2
"""Sentences quoted from each passage."""


@dataclass(frozen=True)
class Answer:
    """An answer with its evidence.

    Attributes:
        question: The question asked.
        text: The answer (markdown), citing passages as ``[id]``.
        passages: The passages retrieved, best first.
        assets: The assets the question names.
    """

    question: str
    text: str
    passages: tuple[Passage, ...]
    assets: tuple[str, ...]

    @property
    def citations(self) -> tuple[str, ...]:
        """Passage ids cited in the text, in order of first citation."""
        found = re.findall(r"\[([A-Za-z0-9][A-Za-z0-9_.#-]*)\]", self.text)
        return tuple(dict.fromkeys(found))


def assets_named(question: str) -> tuple[str, ...]:
    """Asset names a question writes (``PS01.P1``, ``station 2 pump 3``, ``LINE01``), in order, uppercase."""
    out: list[str] = []
    for m in ASSET_PATTERN.finditer(question):
        out.append(m.group(3).upper() if m.group(3) else f"{m.group(1).upper()}.{m.group(2).upper()}")
    for m in SPOKEN_PATTERN.finditer(question):
        out.append(f"PS{int(m.group(1)):02d}.P{m.group(2)}")
    return tuple(dict.fromkeys(out))


def _words(text: str) -> set[str]:
    return {w for w in WORD.findall(text.lower()) if w not in STOP_WORDS}


def best_sentences(text: str, question: str, n: int = QUOTED_SENTENCES) -> list[str]:
    """The ``n`` sentences of ``text`` sharing most words with ``question``, in their order in the text."""
    sentences = [s.strip() for s in SENTENCE.split(" ".join(text.split())) if s.strip()]
    if len(sentences) <= n:
        return sentences
    q = _words(question)
    ranked = sorted(range(len(sentences)), key=lambda i: (-len(q & _words(sentences[i])), i))
    return [sentences[i] for i in sorted(ranked[:n])]


def twin_lines(state: TwinState | None, assets: Sequence[str], question: str) -> list[str]:
    """The twin's health and active alerts for ``assets`` (or every alerted asset for a "why ... alarm" question)."""
    if state is None:
        return []
    wanted = list(assets)
    if not wanted and re.search(r"\b(alarm|alert|warning)\b", question, re.IGNORECASE):
        wanted = list(dict.fromkeys(a.asset for a in state.alerts))
    lines = []
    names = {h.asset: h for h in state.health}
    for asset in wanted:
        h = names.get(asset)
        if h is None:
            continue
        alerts = [a for a in state.alerts if a.asset == asset]
        head = f"- Twin state at {state.ts.isoformat()}: {asset} is **{h.status}** (health index {h.health_index:.2f}"
        lines.append(head + (f", driven by {h.driver})" if h.driver else ")"))
        lines += [f"  - {plain(a.message())}" + (f"; {a.detail}" if a.detail else "") for a in alerts]
    return lines


def answer(question: str, kb: object, state: TwinState | None = None, *, top_k: int = 5) -> Answer:
    """Answer ``question`` from a `pumptwin.agents.retrieval.KnowledgeBase` and the twin's state.

    Raises:
        pumptwin.agents.retrieval.KnowledgeError: An empty or unreachable knowledge store.
    """
    question = " ".join(question.split())
    assets = assets_named(question)
    passages: list[Passage] = []
    if assets:
        passages = kb.search(question, top_k=top_k, assets=list(assets))  # type: ignore[attr-defined]
    if len(passages) < top_k:
        more = kb.search(question, top_k=top_k)  # type: ignore[attr-defined]
        seen = {p.id for p in passages}
        passages += [p for p in more if p.id not in seen][: top_k - len(passages)]
    out = [f"**Q:** {question}", ""]
    lines = twin_lines(state, assets, question)
    if lines:
        out += [*lines, ""]
    if passages:
        out.append("From the documents:")
        for p in passages:
            quote = " ".join(best_sentences(p.text, question))
            title = f" ({p.title})" if p.title else ""
            out.append(f"- {quote} [{p.id}]{title}")
    else:
        out.append("No passage of the knowledge store matches the question.")
    return Answer(question, "\n".join(out) + "\n", tuple(passages), assets)
