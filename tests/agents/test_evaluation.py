"""Evaluation: question files validated, metric arithmetic, the report, the packaged question sets."""

from __future__ import annotations

from pathlib import Path

import pytest

from pumptwin.agents.documents import default_corpus_dir, load_documents
from pumptwin.agents.evaluation import (
    Question,
    QuestionError,
    default_question_files,
    evaluate,
    hit_at_k,
    load_questions,
    recall_at_k,
    reciprocal_rank,
)
from pumptwin.agents.evidence import Passage
from pumptwin.agents.retrieval import KnowledgeBase, RetrievalConfig, index_documents


def test_metrics_on_a_hand_made_ranking() -> None:
    ranked = ["a", "x", "b", "y", "z", "c"]
    assert recall_at_k(ranked, {"a", "b", "c"}, 5) == pytest.approx(2 / 3)
    assert recall_at_k(ranked, {"c"}, 5) == 0.0
    assert hit_at_k(ranked, {"y", "q"}, 5) == 1.0
    assert hit_at_k(ranked, {"c"}, 5) == 0.0
    assert reciprocal_rank(ranked, {"b", "c"}) == pytest.approx(1 / 3)
    assert reciprocal_rank(ranked, {"q"}) == 0.0


class FixedRankings:
    """A searcher whose ranking per query and mode is given."""

    def __init__(self, rankings: dict[tuple[str, str], list[str]]) -> None:
        self.rankings = rankings
        self.calls: list[tuple[str, str, dict[str, object]]] = []

    def search(self, query: str, *, top_k: int | None = None, mode: str = "hybrid", **filters: object) -> list[Passage]:
        self.calls.append((query, mode, filters))
        return [Passage(id=i, text=i) for i in self.rankings[(query, mode)][:top_k]]


def test_evaluate_averages_per_mode_and_split() -> None:
    questions = [
        Question("q1", "one", ("a", "b"), "tune"),
        Question("q2", "two", ("c",), "tune", {"assets": ["PS01.P1"]}),
        Question("q3", "three", ("d",), "report"),
    ]
    searcher = FixedRankings(
        {
            ("one", "dense"): ["a", "x", "y", "z", "w", "b"],  # recall 1/2, hit 1, rr 1
            ("two", "dense"): ["x", "c"],  # recall 1, hit 1, rr 1/2
            ("three", "dense"): ["x"],  # recall 0, hit 0, rr 0
        }
    )
    report = evaluate(searcher, questions, modes=["dense"], k=5)  # type: ignore[arg-type]
    tune = report.score("dense", "tune")
    assert (tune.questions, tune.recall, tune.hit, tune.mrr) == (2, pytest.approx(0.75), 1.0, pytest.approx(0.75))
    rep = report.score("dense", "report")
    assert (rep.recall, rep.hit, rep.mrr) == (0.0, 0.0, 0.0)
    every = report.score("dense", "all")
    assert every.recall == pytest.approx(1.5 / 3) and every.mrr == pytest.approx(1.5 / 3)
    assert [(m.question, dict(m.ranks)) for m in report.misses] == [("q1", {"a": 1, "b": 6}), ("q3", {"d": None})]
    assert searcher.calls[1] == ("two", "dense", {"assets": ["PS01.P1"]})
    text = report.to_markdown()
    assert "| dense | tune | 2 | 0.750 | 1.000 | 0.750 |" in text and "q3 (report): d -" in text
    assert report.to_dict()["scores"][0]["mode"] == "dense"
    with pytest.raises(KeyError):
        report.score("hybrid")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "questions_x.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_questions_validates(tmp_path: Path) -> None:
    good = "- {id: q1, question: Why, relevant: [A#b], split: tune, filters: {since: 2024-01-01}}\n"
    questions = load_questions([_write(tmp_path, good)], corpus_ids={"A#b"})
    assert questions == [Question("q1", "Why", ("A#b",), "tune", {"since": "2024-01-01"})]
    bad = {
        "- {id: q1, question: Why, relevant: [A#b], split: tune, extra: 1}\n": "unknown field",
        "- {id: q1, question: Why, split: tune}\n": "missing field",
        "- {id: q1, question: Why, relevant: [A#b], split: test}\n": "split must be",
        "- {id: q1, question: Why, relevant: [], split: tune}\n": "non-empty list",
        "- {id: q1, question: Why, relevant: [Z#z], split: tune}\n": "not in the corpus: Z#z",
        "- {id: q1, question: Why, relevant: [A#b], split: tune, filters: {owner: me}}\n": "filters must be",
        good + good: "repeated",
        "id: q1\n": "YAML list",
    }
    for text, match in bad.items():
        with pytest.raises(QuestionError, match=match):
            load_questions([_write(tmp_path, text)], corpus_ids={"A#b"})


def test_evaluate_on_a_real_store(config: RetrievalConfig, corpus: Path) -> None:
    index_documents(config, [corpus])
    questions = [
        Question("t1", "What are the vibration alarm and trip limits of PS01.P1?", ("MAN-905#alarm-limits",), "tune"),
        Question("r1", "seal leak on PS02.P1 work order", ("WO-90002",), "report", {"doc_types": ["work_order"]}),
    ]
    report = evaluate(KnowledgeBase(config), questions, k=3)
    for mode in ("dense", "sparse", "hybrid"):
        assert report.score(mode, "all").hit == 1.0
        assert report.query_s[mode] > 0


def test_packaged_questions_refer_to_existing_passages() -> None:
    files = default_question_files()
    if not files:
        pytest.skip("no packaged question files yet")
    ids = {d.id for d in load_documents([default_corpus_dir()]).documents}
    questions = load_questions(files, corpus_ids=ids)
    assert {q.split for q in questions} <= {"tune", "report", "fresh"}
