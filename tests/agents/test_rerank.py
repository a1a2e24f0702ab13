"""Re-ranking by the question's intent: asset, kind of record, year, latest."""

from __future__ import annotations

import pytest
from haystack import Document

from pumptwin.agents.rerank import IntentReranker, question_intent


def _doc(pid: str, doc_type: str, assets: list[str], date: str = "") -> Document:
    return Document(id=pid, content=pid, meta={"doc_type": doc_type, "assets": assets, "date": date})


def test_intent_reads_assets_stations_years_recency_and_kinds() -> None:
    i = question_intent("How many hours did the most recent strainer clean-out at Station 2 keep the pump out?")
    assert i.stations == ("PS02",) and i.recent and "work_order" in i.kinds
    j = question_intent("What is the vibration trip limit of PS01.P2 in 2024?")
    assert j.assets == ("PS01.P2",) and j.stations == () and j.years == ("2024",) and "datasheet" in j.kinds
    assert question_intent("hello").kinds == ()


def test_latest_record_of_the_named_station_comes_first() -> None:
    docs = [
        _doc("SOP-108#step-2", "procedure", ["PS02.P1", "PS02.P2"]),
        _doc("WO-23002", "work_order", ["PS02.P3"], "2023-01-17"),
        _doc("WO-25001", "work_order", ["PS01.P1"], "2025-01-09"),
        _doc("WO-26087", "work_order", ["PS02.P2"], "2026-10-02"),
    ]
    question = "How long did the latest strainer clean-out at Station 2 take?"
    out = IntentReranker(recent=0.08).run(question, docs, top_k=2)
    assert [d.id for d in out["documents"]] == ["WO-26087", "WO-23002"]
    older = [d.id for d in IntentReranker(recent=0.0).run(question, docs)["documents"]]
    assert older.index("WO-23002") < older.index("WO-26087")  # without the recency bonus, rank decides


def test_without_intent_the_retrieval_order_stands() -> None:
    docs = [_doc(i, "manual", []) for i in ("b", "a", "c")]
    out = IntentReranker().run("general question", docs)["documents"]
    assert [d.id for d in out] == ["b", "a", "c"]
    assert out[0].score > out[1].score > out[2].score


def test_round_trip_and_validation() -> None:
    rr = IntentReranker(asset=0.1, candidates=12)
    back = IntentReranker.from_dict(rr.to_dict())
    assert (back.asset, back.candidates) == (0.1, 12)
    with pytest.raises(ValueError, match="rank_k"):
        IntentReranker(rank_k=0)
    with pytest.raises(ValueError, match="candidates"):
        IntentReranker(candidates=0)
