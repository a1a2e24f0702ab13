"""Measure retrieval on question sets: recall@k, hit@k and MRR per search mode and per split.

A question file (``knowledge/eval/questions_*.yaml``) is a YAML list of
``{id, question, relevant: [passage ids], split: tune|report, filters: {...}}``. Retrieval settings
are chosen on the ``tune`` split only; the ``report`` split is measured for the published figures::

    questions = load_questions(default_question_files(), corpus_ids=ids)
    report = evaluate(kb, questions, k=5)
    print(report.to_markdown())
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pumptwin.twin.errors import PumptwinError

if TYPE_CHECKING:
    from pumptwin.agents.retrieval import KnowledgeBase, Mode

SPLITS = ("tune", "report", "fresh")
"""Question splits: settings are chosen on ``tune``, figures reported on ``report``; ``fresh`` questions
were written from the corpus alone after every setting was chosen, and are never used to choose one."""

FILTER_KEYS = frozenset({"assets", "failure_modes", "doc_types", "since", "until"})
"""Keys a question's ``filters`` may use (the keyword arguments of `KnowledgeBase.search`)."""

RANK_DEPTH = 20
"""Passages retrieved per question to find the ranks of the relevant ones (and the MRR)."""

_FIELDS = frozenset({"id", "question", "relevant", "split", "filters"})


class QuestionError(PumptwinError, ValueError):
    """A question file that cannot be used; the message names the file and the question."""


@dataclass(frozen=True)
class Question:
    """One evaluation question.

    Attributes:
        id: Unique question id.
        question: The query text.
        relevant: Ids of the passages that answer it.
        split: ``tune`` or ``report``.
        filters: Search filters (`FILTER_KEYS`), or None.
    """

    id: str
    question: str
    relevant: tuple[str, ...]
    split: str
    filters: Mapping[str, Any] | None = None


def default_question_files() -> list[Path]:
    """Return the packaged question files (``knowledge/eval/questions_*.yaml``), sorted."""
    folder = Path(__file__).resolve().parent / "knowledge" / "eval"
    return sorted(folder.glob("questions_*.yaml"))


def load_questions(paths: Iterable[Path | str], *, corpus_ids: Collection[str] | None = None) -> list[Question]:
    """Read and validate question files.

    Args:
        paths: YAML files, each a list of questions.
        corpus_ids: The passage ids of the corpus; when given, every relevant id must be one.

    Returns:
        The questions in file order.

    Raises:
        QuestionError: Bad YAML, an unknown or missing field, a bad split or filter, a repeated
            question id, or relevant ids missing from the corpus.
    """
    questions: list[Question] = []
    seen: dict[str, str] = {}
    for raw_path in paths:
        path = Path(raw_path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            first = str(exc).strip().split("\n")[0]
            raise QuestionError(f"{path}: cannot read questions: {first}") from None
        if not isinstance(data, list):
            raise QuestionError(f"{path}: expected a YAML list of questions")
        for n, item in enumerate(data, start=1):
            q = _question(item, f"{path}: question {n}")
            if q.id in seen:
                raise QuestionError(f"{path}: question id {q.id} repeated (first in {seen[q.id]})")
            seen[q.id] = str(path)
            if corpus_ids is not None:
                missing = [r for r in q.relevant if r not in corpus_ids]
                if missing:
                    raise QuestionError(
                        f"{path}: question {q.id}: relevant id(s) not in the corpus: {', '.join(missing)}"
                    )
            questions.append(q)
    return questions


def _question(item: object, where: str) -> Question:
    """Validate one question mapping."""
    if not isinstance(item, dict):
        raise QuestionError(f"{where}: expected a mapping")
    unknown = sorted(set(item) - _FIELDS)
    if unknown:
        raise QuestionError(f"{where}: unknown field(s) {', '.join(map(str, unknown))}")
    missing = sorted({"id", "question", "relevant", "split"} - set(item))
    if missing:
        raise QuestionError(f"{where}: missing field(s) {', '.join(missing)}")
    qid, text, relevant, split = item["id"], item["question"], item["relevant"], item["split"]
    if not isinstance(qid, str) or not qid.strip():
        raise QuestionError(f"{where}: id must be a non-empty string")
    if not isinstance(text, str) or not text.strip():
        raise QuestionError(f"{where} ({qid}): question must be a non-empty string")
    if isinstance(relevant, str):
        relevant = [relevant]
    if not isinstance(relevant, list) or not relevant or not all(isinstance(r, str) and r for r in relevant):
        raise QuestionError(f"{where} ({qid}): relevant must be a non-empty list of passage ids")
    if split not in SPLITS:
        raise QuestionError(f"{where} ({qid}): split must be one of {', '.join(SPLITS)}, got {split!r}")
    filters = item.get("filters")
    if filters is not None:
        if not isinstance(filters, dict) or set(filters) - FILTER_KEYS:
            raise QuestionError(f"{where} ({qid}): filters must be a mapping of {', '.join(sorted(FILTER_KEYS))}")
        filters = {k: (str(v) if k in ("since", "until") else v) for k, v in filters.items()}
    return Question(
        id=qid, question=text.strip(), relevant=tuple(dict.fromkeys(relevant)), split=split, filters=filters
    )


# --- Metrics ------------------------------------------------------------------------------------------


def recall_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Return the fraction of the relevant ids among the first ``k`` ranked ids."""
    return len(set(ranked[:k]) & set(relevant)) / len(relevant) if relevant else 0.0


def hit_at_k(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Return 1.0 when any relevant id is among the first ``k`` ranked ids, else 0.0."""
    return 1.0 if set(ranked[:k]) & set(relevant) else 0.0


def reciprocal_rank(ranked: Sequence[str], relevant: Collection[str]) -> float:
    """Return 1 / rank (from 1) of the first relevant id in ``ranked``, 0.0 when none is there."""
    for rank, pid in enumerate(ranked, start=1):
        if pid in relevant:
            return 1.0 / rank
    return 0.0


@dataclass(frozen=True)
class Score:
    """Mean metrics of one mode on one split (``all`` for every question).

    Attributes:
        mode: Search mode.
        split: ``tune``, ``report`` or ``all``.
        questions: Number of questions.
        recall: Mean recall@k.
        hit: Mean hit@k.
        mrr: Mean reciprocal rank (within `RANK_DEPTH`).
    """

    mode: str
    split: str
    questions: int
    recall: float
    hit: float
    mrr: float


@dataclass(frozen=True)
class Miss:
    """A question whose relevant passages were not all in its top k.

    Attributes:
        mode: Search mode.
        question: Question id.
        split: Its split.
        ranks: Rank (from 1) of each relevant id within `RANK_DEPTH`, None beyond.
        top: The ids retrieved in the top k.
    """

    mode: str
    question: str
    split: str
    ranks: Mapping[str, int | None]
    top: tuple[str, ...]


@dataclass(frozen=True)
class EvaluationReport:
    """Retrieval quality per mode and split.

    Attributes:
        k: Cut-off of recall@k and hit@k.
        scores: One `Score` per mode and split (and ``all``).
        misses: Questions not fully answered in the top k, per mode.
        query_s: Mean wall time of one search per mode, s.
    """

    k: int
    scores: tuple[Score, ...]
    misses: tuple[Miss, ...] = ()
    query_s: Mapping[str, float] = field(default_factory=dict)

    def score(self, mode: str, split: str = "all") -> Score:
        """Return the score of one mode and split.

        Raises:
            KeyError: No such mode and split.
        """
        for s in self.scores:
            if s.mode == mode and s.split == split:
                return s
        raise KeyError(f"no score for mode {mode!r} and split {split!r}")

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain data (JSON-ready)."""
        return {
            "k": self.k,
            "scores": [asdict(s) for s in self.scores],
            "misses": [{**asdict(m), "ranks": dict(m.ranks), "top": list(m.top)} for m in self.misses],
            "query_s": dict(self.query_s),
        }

    def to_markdown(self) -> str:
        """Return a Markdown table of the scores and a list of the misses."""
        k = self.k
        lines = [
            f"| mode | split | questions | recall@{k} | hit@{k} | MRR | query ms |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for s in self.scores:
            ms = 1000.0 * self.query_s.get(s.mode, float("nan"))
            lines.append(
                f"| {s.mode} | {s.split} | {s.questions} | {s.recall:.3f} | {s.hit:.3f} | {s.mrr:.3f} | {ms:.0f} |"
            )
        if self.misses:
            lines += ["", f"Misses (rank of each relevant passage; - beyond {RANK_DEPTH}):", ""]
            for m in self.misses:
                ranks = ", ".join(f"{pid} {'-' if r is None else r}" for pid, r in m.ranks.items())
                lines.append(f"- {m.mode} {m.question} ({m.split}): {ranks}")
        return "\n".join(lines) + "\n"


def evaluate(
    kb: KnowledgeBase,
    questions: Sequence[Question],
    modes: Sequence[Mode] = ("dense", "sparse", "hybrid"),
    k: int = 5,
) -> EvaluationReport:
    """Search every question in every mode and score the rankings.

    Args:
        kb: The knowledge base searched.
        questions: The questions.
        modes: Search modes to measure.
        k: Cut-off of recall@k and hit@k (<= `RANK_DEPTH`).

    Returns:
        The report.

    Raises:
        ValueError: ``k`` out of range or no questions.
    """
    if not 0 < k <= RANK_DEPTH:
        raise ValueError(f"k must be in 1..{RANK_DEPTH}, got {k}")
    if not questions:
        raise ValueError("no questions to evaluate")
    scores: list[Score] = []
    misses: list[Miss] = []
    query_s: dict[str, float] = {}
    for mode in modes:
        rows: list[tuple[str, float, float, float]] = []
        start = time.perf_counter()
        for q in questions:
            ranked = [p.id for p in kb.search(q.question, top_k=RANK_DEPTH, mode=mode, **dict(q.filters or {}))]
            recall = recall_at_k(ranked, q.relevant, k)
            rows.append((q.split, recall, hit_at_k(ranked, q.relevant, k), reciprocal_rank(ranked, q.relevant)))
            if recall < 1.0:
                ranks = {pid: (ranked.index(pid) + 1 if pid in ranked else None) for pid in q.relevant}
                misses.append(Miss(mode, q.id, q.split, ranks, tuple(ranked[:k])))
        query_s[mode] = (time.perf_counter() - start) / len(questions)
        for split in (*[s for s in SPLITS if any(r[0] == s for r in rows)], "all"):
            chosen = [r for r in rows if split in ("all", r[0])]
            n = len(chosen)
            scores.append(
                Score(
                    mode=mode,
                    split=split,
                    questions=n,
                    recall=sum(r[1] for r in chosen) / n,
                    hit=sum(r[2] for r in chosen) / n,
                    mrr=sum(r[3] for r in chosen) / n,
                )
            )
    return EvaluationReport(k=k, scores=tuple(scores), misses=tuple(misses), query_s=query_s)
