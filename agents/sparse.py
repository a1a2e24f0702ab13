"""Sparse lexical vectors for Qdrant's sparse index: hashed, BM25-saturated term frequencies.

The tokenizer keeps the names operators search for: an asset ``PS01.P1`` gives the token
``ps01.p1`` and its parts ``ps01`` and ``p1``; a tag ``PS01.P1.VIB_DE_RMS`` gives itself, its dotted
prefixes (``ps01``, ``ps01.p1``) and its parts (``vib_de_rms``, ``vib``, ``de``, ``rms``); ``SOP-106``
gives ``sop-106``, ``sop`` and ``106``. Words are lowercased, English stop words dropped and a light
suffix stemmer maps ``clogged``/``clogging``/``clogs`` to ``clog``.

A document's value for a token is BM25's saturated term frequency
``tf (k1 + 1) / (tf + k1 (1 - b + b dl / avgdl))`` with a fixed ``avgdl``; a query's value is 1 per
distinct token. Qdrant multiplies in the inverse document frequency (``sparse_idf=True``), so the
dot product is a BM25 score. Indices are a stable hash (blake2b) of the token into 2^20 buckets.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.dataclasses import SparseEmbedding

N_BUCKETS = 2**20
"""Number of hash buckets (sparse dimension)."""

STOP_WORDS = frozenset(
    (
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "also",
        "may",
        "must",
        "shall",
        "per",
        "via",
        "within",
        "without",
        "upon",
    )
)
"""English function words left out of the sparse vector (``no``/``not`` are kept: they carry meaning)."""

_KEEP = frozenset({"no", "not", "up", "down", "off", "on", "out", "over", "under"})
_TOKEN = re.compile(r"[a-z0-9]+(?:[._\-/][a-z0-9]+)*")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_JOINERS = re.compile(r"[._\-/]")
_VOWELS = frozenset("aeiouy")


_SHORT = 3
"""Words this long or shorter are not stemmed; a stem keeps at least this many letters."""


def stem(word: str) -> str:
    """Return a light suffix stem of a lowercase word: plurals, ``-ing``, ``-ed`` and a final ``e``.

    Only alphabetic words longer than 3 letters change; a doubled final consonant left by
    ``-ing``/``-ed`` is undoubled (``clogged`` -> ``clog``) and a final ``e`` dropped so that
    ``close``, ``closed`` and ``closing`` meet at ``clos``.

    Args:
        word: A lowercase token.

    Returns:
        Its stem.
    """
    if len(word) <= _SHORT or not word.isalpha():
        return word
    w = word
    if w.endswith("ies") and len(w) > _SHORT + 1:
        w = w[:-3] + "y"
    elif w.endswith("sses"):
        w = w[:-2]
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    for suffix in ("ing", "ed"):
        base = w[: -len(suffix)]
        if w.endswith(suffix) and not w.endswith("eed") and len(base) >= _SHORT and _VOWELS & set(base):
            w = base
            if len(w) > _SHORT and w[-1] == w[-2] and w[-1] not in "lsz" and w[-1] not in _VOWELS:
                w = w[:-1]
            break
    if w.endswith("e") and len(w) > _SHORT:
        w = w[:-1]
    return w


def tokenize(text: str, *, use_stemmer: bool = True, drop_stop_words: bool = True) -> list[str]:
    """Return the sparse tokens of a text, in order (a compound's parts follow it).

    Args:
        text: Any text.
        use_stemmer: Apply `stem` to plain words.
        drop_stop_words: Leave out `STOP_WORDS`.

    Returns:
        Tokens, e.g. ``"PS01.P1 bearings"`` -> ``["ps01.p1", "ps01", "p1", "bear"]``.
    """
    out: list[str] = []

    def word(w: str) -> None:
        if drop_stop_words and w in STOP_WORDS and w not in _KEEP:
            return
        out.append(stem(w) if use_stemmer else w)

    for match in _TOKEN.finditer(text.lower()):
        token = match.group(0)
        if not _JOINERS.search(token) or _NUMBER.fullmatch(token):
            word(token)
            continue
        out.append(token)
        dotted = token.split(".")
        out.extend(".".join(dotted[:i]) for i in range(2, len(dotted)))
        parts = (p for segment in dotted for p in (segment, *_JOINERS.split(segment)))
        for part in dict.fromkeys(p for p in parts if p and p != token):
            if _JOINERS.search(part):
                out.append(part)
            else:
                word(part)
    return out


def bucket(token: str, n_buckets: int = N_BUCKETS) -> int:
    """Return a token's stable index in ``[0, n_buckets)`` (blake2b, independent of the process)."""
    digest = hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n_buckets


def to_sparse(weights: Mapping[int, float]) -> SparseEmbedding:
    """Return a `SparseEmbedding` with sorted indices."""
    indices = sorted(weights)
    return SparseEmbedding(indices=indices, values=[float(weights[i]) for i in indices])


def document_vector(
    tokens: Sequence[str], *, k1: float, b: float, avg_length: float, n_buckets: int = N_BUCKETS
) -> SparseEmbedding:
    """Return a document's BM25-saturated term-frequency vector.

    Args:
        tokens: The document's tokens.
        k1: Term-frequency saturation (BM25 ``k1`` >= 0).
        b: Length normalisation (BM25 ``b`` in [0, 1]).
        avg_length: Assumed average document length, tokens.
        n_buckets: Hash buckets.

    Returns:
        The sparse vector (values in ``(0, k1 + 1]``); colliding tokens add up.
    """
    counts = Counter(tokens)
    norm = k1 * (1.0 - b + b * len(tokens) / avg_length)
    weights: dict[int, float] = {}
    for token, tf in counts.items():
        i = bucket(token, n_buckets)
        weights[i] = weights.get(i, 0.0) + tf * (k1 + 1.0) / (tf + norm)
    return to_sparse(weights)


def query_vector(tokens: Iterable[str], n_buckets: int = N_BUCKETS) -> SparseEmbedding:
    """Return a query's vector: 1 per distinct token (colliding tokens add up)."""
    weights: dict[int, float] = {}
    for token in dict.fromkeys(tokens):
        i = bucket(token, n_buckets)
        weights[i] = weights.get(i, 0.0) + 1.0
    return to_sparse(weights)


def _check_params(k1: float, b: float, avg_length: float) -> None:
    """Raise ValueError for BM25 parameters out of range."""
    if not k1 >= 0:
        raise ValueError(f"k1 must be >= 0, got {k1}")
    if not 0 <= b <= 1:
        raise ValueError(f"b must be in [0, 1], got {b}")
    if not avg_length > 0:
        raise ValueError(f"avg_length must be > 0 tokens, got {avg_length}")


def _meta_text(doc: Document, fields: Sequence[str]) -> str:
    """Return the chosen meta fields of a document as text (lists joined by spaces)."""
    parts = []
    for key in fields:
        value = doc.meta.get(key)
        if isinstance(value, list | tuple):
            parts.append(" ".join(str(v) for v in value))
        elif value is not None:
            parts.append(str(value))
    return "\n".join(parts)


@component
class HashedSparseDocumentEmbedder:
    """Compute each document's sparse lexical vector into ``doc.sparse_embedding``.

    Usage example:
    ```python
    embedder = HashedSparseDocumentEmbedder(meta_fields_to_embed=["title"])
    docs = embedder.run([Document(content="PS01.P1 bearing temperature high")])["documents"]
    docs[0].sparse_embedding.indices  # sorted bucket indices
    ```
    """

    def __init__(
        self,
        *,
        k1: float = 1.2,
        b: float = 0.75,
        avg_length: float = 120.0,
        use_stemmer: bool = True,
        meta_fields_to_embed: list[str] | None = None,
    ) -> None:
        """Store the parameters.

        Args:
            k1: BM25 term-frequency saturation (>= 0).
            b: BM25 length normalisation in [0, 1].
            avg_length: Assumed average passage length, tokens (> 0).
            use_stemmer: Stem plain words (must match the query embedder).
            meta_fields_to_embed: Meta fields whose values are tokenized with the content.

        Raises:
            ValueError: A parameter out of range.
        """
        _check_params(k1, b, avg_length)
        self.k1 = k1
        self.b = b
        self.avg_length = avg_length
        self.use_stemmer = use_stemmer
        self.meta_fields_to_embed = list(meta_fields_to_embed or [])

    def to_dict(self) -> dict[str, Any]:
        """Serialize the component's parameters."""
        return default_to_dict(
            self,
            k1=self.k1,
            b=self.b,
            avg_length=self.avg_length,
            use_stemmer=self.use_stemmer,
            meta_fields_to_embed=self.meta_fields_to_embed,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HashedSparseDocumentEmbedder:
        """Rebuild the component from `to_dict`'s output."""
        return default_from_dict(cls, data)

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, list[Document]]:
        """Return copies of the documents with their sparse vectors.

        Args:
            documents: Documents with text content.

        Returns:
            ``{"documents": [...]}``, same order.
        """
        out = []
        for doc in documents:
            text = "\n".join(t for t in (_meta_text(doc, self.meta_fields_to_embed), doc.content or "") if t)
            tokens = tokenize(text, use_stemmer=self.use_stemmer)
            vector = document_vector(tokens, k1=self.k1, b=self.b, avg_length=self.avg_length)
            out.append(replace(doc, sparse_embedding=vector))
        return {"documents": out}


@component
class HashedSparseTextEmbedder:
    """Compute a query's sparse lexical vector (1 per distinct token).

    Usage example:
    ```python
    embedder = HashedSparseTextEmbedder()
    embedder.run("PS01.P1.VIB_DE_RMS above alarm")["sparse_embedding"]
    ```
    """

    def __init__(self, *, use_stemmer: bool = True) -> None:
        """Store the parameters.

        Args:
            use_stemmer: Stem plain words (must match the document embedder).
        """
        self.use_stemmer = use_stemmer

    def to_dict(self) -> dict[str, Any]:
        """Serialize the component's parameters."""
        return default_to_dict(self, use_stemmer=self.use_stemmer)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HashedSparseTextEmbedder:
        """Rebuild the component from `to_dict`'s output."""
        return default_from_dict(cls, data)

    @component.output_types(sparse_embedding=SparseEmbedding)
    def run(self, text: str) -> dict[str, SparseEmbedding]:
        """Return the query's sparse vector.

        Args:
            text: The query.

        Returns:
            ``{"sparse_embedding": SparseEmbedding}`` (empty for a query of stop words only).
        """
        return {"sparse_embedding": query_vector(tokenize(text, use_stemmer=self.use_stemmer))}


ABBREVIATIONS: tuple[tuple[str, str], ...] = (
    ("DE", "drive-end"),
    ("NDE", "non-drive-end"),
    ("DP", "differential pressure"),
    ("VFD", "variable-frequency drive"),
    ("ESD", "emergency shut-down"),
    ("MAOP", "maximum allowable operating pressure"),
    ("NPSH", "net positive suction head"),
    ("BEP", "best efficiency point"),
    ("ILI", "in-line inspection"),
    ("CMMS", "maintenance work order"),
    ("megger", "insulation resistance test"),
    ("stator", "motor winding"),
    ("spare", "standby"),
)
"""Operators' abbreviations and the words the documents use for them (either form adds the other)."""

_STATION = re.compile(r"\b(?:station|stn|ps)\s*0?([12])\b", re.IGNORECASE)
_PUMP = re.compile(r"\b(?:pump\s*(?:no\.?\s*)?|p)([123])\b", re.IGNORECASE)
_ASSET = re.compile(r"\bPS0?([12])\.P([123])\b", re.IGNORECASE)
_PUMPS = re.compile(r"\bpumps\b", re.IGNORECASE)


def _form(text: str) -> re.Pattern[str]:
    """Return a whole-word, case-insensitive pattern of a term whose hyphens may be spaces."""
    body = r"[\s-]?".join(re.escape(w) for w in re.split(r"[\s-]", text))
    return re.compile(rf"(?<![\w.-]){body}(?![\w-])", re.IGNORECASE)


_ABBREVIATION_FORMS = tuple((_form(short), _form(long), short, long) for short, long in ABBREVIATIONS)


def expand_query(text: str) -> str:
    """Return a query with the asset names and terms the documents use for what it mentions.

    ``Station 2``, ``PS2`` and ``pump 3``/``P3`` become asset names (``PS02``, ``PS02.P3``; a pump
    without a station names it at both stations; ``Station 1 pumps`` names the station's three
    pumps); an abbreviation (`ABBREVIATIONS`) adds its long form and a long form its abbreviation.

    Args:
        text: The query as asked.

    Returns:
        The query followed by the added terms (the query itself when nothing is added).
    """
    masked = _ASSET.sub(" ", text)
    stations = sorted({int(m.group(1)) for m in _STATION.finditer(masked)})
    pumps = sorted({int(m.group(1)) for m in _PUMP.finditer(masked)})
    added: list[str] = [f"PS0{s}" for s in stations]
    if pumps:
        added += [f"PS0{s}.P{p}" for s in (stations or [1, 2]) for p in pumps]
    elif stations and _PUMPS.search(masked):
        added += [f"PS0{s}.P{p}" for s in stations for p in (1, 2, 3)]
    for short_re, long_re, short, long in _ABBREVIATION_FORMS:
        if short_re.search(text) and not long_re.search(text):
            added.append(long)
        elif long_re.search(text) and not short_re.search(text):
            added.append(short)
    return f"{text} ({' '.join(added)})" if added else text


@component
class QueryExpander:
    """Add asset names and document terms to a query (`expand_query`).

    Usage example:
    ```python
    QueryExpander().run("trip limit of the Station 2 pumps")["text"]
    # 'trip limit of the Station 2 pumps (PS02 PS02.P1 PS02.P2 PS02.P3)'
    ```
    """

    def to_dict(self) -> dict[str, Any]:
        """Serialize the component (it has no parameters)."""
        return default_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QueryExpander:
        """Rebuild the component from `to_dict`'s output."""
        return default_from_dict(cls, data)

    @component.output_types(text=str)
    def run(self, text: str) -> dict[str, str]:
        """Return the expanded query.

        Args:
            text: The query.

        Returns:
            ``{"text": expanded query}``.
        """
        return {"text": expand_query(text)}
