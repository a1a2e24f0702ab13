"""Sparse lexical vectors: tokenizer, stemmer, BM25 values, stable hashing, component round trips."""

from __future__ import annotations

import subprocess
import sys

import pytest
from haystack import Document

from pumptwin.agents.sparse import (
    N_BUCKETS,
    HashedSparseDocumentEmbedder,
    HashedSparseTextEmbedder,
    QueryExpander,
    bucket,
    document_vector,
    expand_query,
    query_vector,
    stem,
    tokenize,
)


def test_asset_and_tag_names_keep_whole_and_parts() -> None:
    assert tokenize("PS01.P1") == ["ps01.p1", "ps01", "p1"]
    tokens = tokenize("PS01.P1.VIB_DE_RMS")
    assert tokens[:2] == ["ps01.p1.vib_de_rms", "ps01.p1"]
    assert {"ps01", "p1", "vib_de_rms", "vib", "de", "rms"} <= set(tokens)
    assert tokenize("SOP-106") == ["sop-106", "sop", "106"]


def test_stop_words_dropped_numbers_kept() -> None:
    assert tokenize("The pump is at 4.5 mm/s and 36 h") == ["pump", "4.5", "mm/s", "mm", "s", "36", "h"]
    assert "not" in tokenize("do not restart")
    assert tokenize("the of and") == []


@pytest.mark.parametrize(
    ("words", "root"),
    [
        (("clog", "clogged", "clogging", "clogs"), "clog"),
        (("leak", "leaks", "leaking", "leaked"), "leak"),
        (("close", "closed", "closing"), "clos"),
        (("bearing", "bearings"), "bear"),
        (("battery", "batteries"), "battery"),
    ],
)
def test_stemmer_meets_word_forms(words: tuple[str, ...], root: str) -> None:
    assert {stem(w) for w in words} == {root}


def test_stemmer_leaves_short_words_numbers_and_eed() -> None:
    assert [stem(w) for w in ("gas", "p1", "speed", "status", "analysis")] == [
        "gas",
        "p1",
        "speed",
        "status",
        "analysis",
    ]


def test_bucket_is_stable_across_processes() -> None:
    code = "from pumptwin.agents.sparse import bucket; print(bucket('ps01.p1'))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(other.stdout) == bucket("ps01.p1")
    assert 0 <= bucket("x") < N_BUCKETS


def test_document_vector_is_bm25_saturated() -> None:
    k1, b, avg = 1.2, 0.75, 4.0
    vec = document_vector(["pump", "pump", "seal", "leak"], k1=k1, b=b, avg_length=avg)
    values = dict(zip(vec.indices, vec.values, strict=True))
    norm = k1 * (1 - b + b * 4 / avg)  # document as long as the average: norm = k1
    assert values[bucket("pump")] == pytest.approx(2 * (k1 + 1) / (2 + norm))
    assert values[bucket("seal")] == pytest.approx((k1 + 1) / (1 + norm))
    assert vec.indices == sorted(vec.indices)
    longer = document_vector(["pump", "pump", "seal", "leak"] * 2, k1=k1, b=b, avg_length=avg)
    # twice as long, twice the counts: the value saturates but is damped by the length
    assert dict(zip(longer.indices, longer.values, strict=True))[bucket("seal")] > values[bucket("seal")]


def test_query_vector_counts_each_token_once() -> None:
    vec = query_vector(["pump", "pump", "seal"])
    assert sorted(vec.values) == [1.0, 1.0] and len(vec.indices) == 2


def test_document_embedder_uses_meta_fields_and_round_trips() -> None:
    embedder = HashedSparseDocumentEmbedder(k1=1.5, b=0.5, avg_length=50.0, meta_fields_to_embed=["title", "assets"])
    doc = Document(id="a", content="bearing temperature", meta={"title": "Seal", "assets": ["PS02.P3"]})
    out = embedder.run([doc])["documents"][0]
    assert out.id == "a" and doc.sparse_embedding is None
    assert {bucket("seal"), bucket("ps02.p3"), bucket("bear")} <= set(out.sparse_embedding.indices)
    again = HashedSparseDocumentEmbedder.from_dict(embedder.to_dict())
    assert again.to_dict() == embedder.to_dict()
    assert again.run([doc])["documents"][0].sparse_embedding == out.sparse_embedding


def test_text_embedder_round_trips() -> None:
    embedder = HashedSparseTextEmbedder(use_stemmer=False)
    again = HashedSparseTextEmbedder.from_dict(embedder.to_dict())
    assert again.use_stemmer is False
    vec = again.run("Leaking seals")["sparse_embedding"]
    assert set(vec.indices) == {bucket("leaking"), bucket("seals")}


@pytest.mark.parametrize(("kwargs", "match"), [({"k1": -1}, "k1"), ({"b": 2}, "b must"), ({"avg_length": 0}, "avg")])
def test_document_embedder_rejects_bad_parameters(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        HashedSparseDocumentEmbedder(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("query", "added"),
    [
        ("trip limit of the Station 2 pumps", "PS02 PS02.P1 PS02.P2 PS02.P3"),
        ("Can I run P3 at 108 % speed?", "PS01.P3 PS02.P3"),
        ("drive end bearing of pump 2 at PS2", "PS02 PS02.P2 DE"),
        ("PS01.P2 DE bearing at 92 C", "drive-end"),
        ("strainer dp high", "differential pressure"),
        ("megger reading after a stator trip", "insulation resistance test motor winding"),
    ],
)
def test_expand_query_adds_asset_names_and_terms(query: str, added: str) -> None:
    assert expand_query(query) == f"{query} ({added})"
    assert QueryExpander().run(query)["text"] == expand_query(query)


def test_expand_query_leaves_plain_queries_and_explicit_assets() -> None:
    for query in ("PS01.P1 bearing temperature", "seal leak", "de-rating of the motor"):
        assert expand_query(query) == query
    assert QueryExpander.from_dict(QueryExpander().to_dict()).run("x")["text"] == "x"
