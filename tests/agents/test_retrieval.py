"""Indexing and search over a local Qdrant store: idempotent reindex, modes, filters, ties, YAML, errors."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import pytest
from haystack import Document

from pumptwin.agents.retrieval import (
    KnowledgeBase,
    KnowledgeError,
    RankFusion,
    RetrievalConfig,
    TieBreakRanker,
    build_filters,
    close_stores,
    index_documents,
    open_store,
    pipeline_from_yaml,
    pipeline_to_yaml,
    query_inputs,
    query_pipeline,
    search_filter,
)

from .conftest import SOP_SEAL

N_PASSAGES = 11

# qdrant-client checks an unreachable server's version in a thread of its own and warns (bad-URL test)
pytestmark = pytest.mark.filterwarnings("ignore:Failed to obtain server version")


@pytest.fixture
def kb(config: RetrievalConfig, corpus: Path) -> KnowledgeBase:
    """A knowledge base over the synthetic corpus."""
    index_documents(config, [corpus])
    return KnowledgeBase(config)


def test_reindex_is_idempotent_replaces_changed_and_deletes_removed(config: RetrievalConfig, corpus: Path) -> None:
    first = index_documents(config, [corpus])
    assert (first.written, first.unchanged, first.deleted, first.skipped) == (N_PASSAGES, 0, 0, ())
    second = index_documents(config, [corpus])
    assert (second.written, second.unchanged, second.deleted) == (0, N_PASSAGES, 0)

    seal = corpus / "procedures" / "SOP-909.md"
    seal.write_text(SOP_SEAL.replace("isolate it", "isolate and drain it"), encoding="utf-8")
    third = index_documents(config, [corpus])
    assert (third.written, third.unchanged, third.deleted) == (1, N_PASSAGES - 1, 0)
    kb = KnowledgeBase(config)
    assert "drain" in kb.get(["SOP-909#switch-to-the-standby-pump"])[0].text

    seal.unlink()
    fourth = index_documents(config, [corpus])
    assert (fourth.written, fourth.unchanged, fourth.deleted) == (0, N_PASSAGES - 2, 2)
    assert kb.count() == N_PASSAGES - 2
    assert kb.get(["SOP-909#scope"]) == []


def test_malformed_file_keeps_its_passages_and_other_paths_are_untouched(
    config: RetrievalConfig, corpus: Path, tmp_path: Path
) -> None:
    index_documents(config, [corpus])
    extra = tmp_path / "extra.txt"
    extra.write_text("Operator note: PS02.P2 coupling guard loose.", encoding="utf-8")
    assert index_documents(config, [extra]).written == 1
    (corpus / "manuals" / "MAN-905.md").write_text("---\nid: [\n---\n", encoding="utf-8")
    report = index_documents(config, [corpus])
    assert report.deleted == 0 and len(report.skipped) == 1
    assert KnowledgeBase(config).count() == N_PASSAGES + 1


def test_hybrid_puts_the_passage_with_the_exact_tag_first(kb: KnowledgeBase) -> None:
    hits = kb.search("PS01.P1.VIB_DE_RMS")
    assert hits[0].id == "MAN-905#alarm-limits"
    assert hits[0].score > 0 and len(hits) == 5
    assert kb.search("PS02.P1.SEAL_LEAK rising", mode="sparse")[0].id == "SOP-909#scope"


def test_modes_return_passages(kb: KnowledgeBase) -> None:
    for mode in ("dense", "sparse", "hybrid"):
        hits = kb.search("replace the worn bearing", mode=mode, top_k=3)
        assert len(hits) == 3
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    with pytest.raises(ValueError, match="mode"):
        kb.search("x", mode="fuzzy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        kb.search("  ")
    assert kb.search("the of and", mode="sparse") == []  # stop words only: nothing lexical to match


def test_filters_by_asset_failure_mode_type_and_date(kb: KnowledgeBase) -> None:
    by_asset = kb.search("pump", assets=["PS02.P1"], top_k=20)
    assert by_asset and all("PS02.P1" in p.meta["assets"] for p in by_asset)
    assert {p.meta["doc_id"] for p in by_asset} == {"SOP-909", "MAN-905", "WO-90002"}
    by_mode = kb.search("pump", failure_modes=["seal_failure", "vibration"], top_k=20)
    assert {p.meta["doc_id"] for p in by_mode} == {"SOP-909", "MAN-905", "WO-90002"}
    by_type = kb.search("pump", doc_types=["work_order"], top_k=20)
    assert sorted(p.id for p in by_type) == ["WO-90001", "WO-90002", "WO-90003"]
    dated = kb.search("pump", since="2024-06-01", until="2025-01-10", top_k=20)
    assert sorted({p.meta["doc_id"] for p in dated}) == ["SOP-909", "WO-90002"]
    assert kb.search("pump", assets=["PS09.P9"]) == []


def test_a_store_indexed_without_day_numbers_is_filtered_by_its_date_texts(kb: KnowledgeBase) -> None:
    window = {"since": "2024-06-01", "until": "2025-01-10", "top_k": 20}
    before = sorted(p.id for p in kb.search("pump", **window))
    client = kb.store._client  # the store as an earlier version wrote it: dates, no day numbers
    assert client is not None
    points, _ = client.scroll(kb.config.collection, limit=100, with_payload=True)
    for point in points:
        meta = dict((point.payload or {})["meta"])
        meta.pop("day", None)
        client.set_payload(kb.config.collection, payload={"meta": meta}, points=[point.id])
    assert all("day" not in p.meta for p in kb.lookup(limit=100))
    assert sorted(p.id for p in kb.search("pump", **window)) == before
    assert kb.search("pump", since="2030-01-01") == []


def test_search_filter_dates_by_day_number() -> None:
    found = search_filter(doc_types=["work_order"], until="2024-01-31")
    assert found is not None and len(found.must) == 2  # type: ignore[arg-type]
    by_day = found.must[1].should[0]  # type: ignore[index,union-attr]
    assert (by_day.key, by_day.range.gte, by_day.range.lte) == ("meta.day", None, 20240131)
    assert search_filter() is None
    with pytest.raises(ValueError, match="until"):
        search_filter(until="2024-13-01")


def test_build_filters() -> None:
    assert build_filters() is None
    assert build_filters(assets=["PS01.P1"], until="2024-01-31") == {
        "operator": "AND",
        "conditions": [
            {"field": "meta.assets", "operator": "in", "value": ["PS01.P1"]},
            {"field": "meta.date", "operator": "<=", "value": "2024-01-31"},
        ],
    }
    with pytest.raises(ValueError, match="since"):
        build_filters(since="31/01/2024")


def test_lookup_newest_first_and_get_in_order(kb: KnowledgeBase) -> None:
    orders = kb.lookup(doc_types=["work_order"])
    assert [p.id for p in orders] == ["WO-90003", "WO-90002", "WO-90001"]
    assert all(p.score == 0.0 for p in orders)
    assert [p.id for p in kb.lookup(assets=["PS01.P2"], limit=2)] == ["WO-90003", "SOP-906#intro"]
    got = kb.get(["WO-90002", "nope", "SOP-906#scope"])
    assert [p.id for p in got] == ["WO-90002", "SOP-906#scope"]
    assert got[0].meta["doc_type"] == "work_order" and got[0].doc_type == "work_order"
    assert kb.count() == N_PASSAGES


def test_ties_are_broken_by_id() -> None:
    docs = [Document(id=i, content=i, score=s) for i, s in (("c", 0.5), ("a", 0.5), ("b", 0.9), ("a", 0.1))]
    ranked = TieBreakRanker(top_k=3).run(documents=docs)["documents"]
    assert [(d.id, d.score) for d in ranked] == [("b", 0.9), ("a", 0.5), ("c", 0.5)]
    assert TieBreakRanker.from_dict(TieBreakRanker(top_k=2).to_dict()).top_k == 2


def test_rank_fusion_weights_ranks_and_breaks_ties() -> None:
    a, b, c = (Document(id=i, content=i) for i in "abc")
    fused = RankFusion(k=1).run(sparse_documents=[b, a], dense_documents=[a, c])["documents"]
    assert [(d.id, round(d.score, 6)) for d in fused] == [("a", 1.5), ("b", 1.0), ("c", 0.5)]
    heavy = RankFusion(k=1, weights=[3.0, 1.0]).run(sparse_documents=[b, c], dense_documents=[c, a])["documents"]
    assert [(d.id, round(d.score, 6)) for d in heavy] == [("b", 3.0), ("c", 2.5), ("a", 0.5)]  # c: 1/(2/3) + 1
    tied = RankFusion(k=60).run(sparse_documents=[c], dense_documents=[b])["documents"]
    assert [d.id for d in tied] == ["b", "c"]
    assert RankFusion.from_dict(RankFusion(k=7, weights=[2.0, 1.0], top_k=3).to_dict()).weights == [2.0, 1.0]
    with pytest.raises(ValueError, match="weights"):
        RankFusion(weights=[1.0])


def test_our_fusion_at_qdrant_depth_equals_qdrant_hybrid(kb: KnowledgeBase, config: RetrievalConfig) -> None:
    ours = KnowledgeBase(dataclasses.replace(config, prefetch=10, rrf_k=60, rrf_weights=None, rerank=0))
    qdrant = KnowledgeBase(dataclasses.replace(config, prefetch=None, rrf_k=60, rrf_weights=None, rerank=0))
    for query in ("bearing oil change", "PS02.P1 seal leak standby", "vibration alarm limit"):
        got = [(p.id, round(p.score, 9)) for p in ours.search(query, top_k=8)]
        assert got == [(p.id, round(p.score, 9)) for p in qdrant.search(query, top_k=8)]


def test_query_expansion_names_the_asset(kb: KnowledgeBase, config: RetrievalConfig) -> None:
    expanding = KnowledgeBase(dataclasses.replace(config, expand="sparse"))
    hits = expanding.search("station 2 pump 1 leakage", mode="sparse", top_k=3)
    assert hits[0].id == "SOP-909#scope"


def test_identical_queries_give_identical_lists(kb: KnowledgeBase) -> None:
    runs = {tuple((p.id, p.score) for p in kb.search("standby pump switch", top_k=8)) for _ in range(3)}
    assert len(runs) == 1


@pytest.mark.parametrize(
    ("changes", "component"),
    [({}, "retrieval.RankFusion"), ({"prefetch": None, "expand": "both"}, "sparse.QueryExpander")],
)
def test_yaml_round_trip_gives_the_same_results(
    kb: KnowledgeBase, config: RetrievalConfig, changes: dict[str, object], component: str
) -> None:
    pipeline = query_pipeline(dataclasses.replace(config, **changes), kb.store, "hybrid")
    text = pipeline_to_yaml(pipeline)
    assert "pumptwin.agents.retrieval.TieBreakRanker" in text and f"pumptwin.agents.{component}" in text
    loaded = pipeline_from_yaml(text)
    query = "seal leakage on the station 2 pump"
    before = pipeline.run(query_inputs(pipeline, query, top_k=4))["ranker"]["documents"]
    after = loaded.run(query_inputs(loaded, query, top_k=4))["ranker"]["documents"]
    assert [(d.id, d.score) for d in after] == [(d.id, d.score) for d in before]


def test_empty_store_raises_a_clear_error(config: RetrievalConfig) -> None:
    kb = KnowledgeBase(config)
    assert kb.count() == 0
    with pytest.raises(KnowledgeError, match=r"holds no passages: run `pumptwin knowledge index`"):
        kb.search("pump")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_url_raises_one_line() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(KnowledgeError) as info:
        open_store(RetrievalConfig(url=url, collection="c", timeout_s=2))
    message = str(info.value)
    assert url in message and "\n" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_missing_model_folder_raises(tmp_path: Path, corpus: Path) -> None:
    config = RetrievalConfig(path=tmp_path / "q", model=str(tmp_path / "no-model"))
    try:
        with pytest.raises(KnowledgeError, match="embedding model folder .*no-model is missing"):
            index_documents(config, [corpus])
    finally:
        close_stores()


def test_one_client_per_folder_and_close(config: RetrievalConfig) -> None:
    assert open_store(config) is open_store(config)
    with pytest.raises(KnowledgeError, match="is open with collection test in this process"):
        open_store(dataclasses.replace(config, collection="other"))
    kb = KnowledgeBase(config)
    kb.count()
    kb.close()
    assert open_store(config) is not None  # the folder can be opened again


def test_config_validation(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        RetrievalConfig()
    with pytest.raises(ValueError, match="exactly one"):
        RetrievalConfig(path=tmp_path, url="http://x")
    with pytest.raises(ValueError, match="top_k"):
        RetrievalConfig(path=tmp_path, top_k=0)
    assert "secret" not in repr(RetrievalConfig(url="http://x", api_key="secret"))
