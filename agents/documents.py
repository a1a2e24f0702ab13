"""Load the knowledge corpus into Haystack `Document`s, one per passage, with stable ids.

Formats (see ``knowledge/corpus/README.md``):

- Markdown with YAML front matter: the text before the first ``## `` heading is ``<id>#intro``, each
  ``## `` section is ``<id>#<slug>``. Without front matter the document id is the file stem, its
  type ``document`` and its title the first ``# `` line.
- Plain text (``.txt``): paragraphs grouped into passages of about 200 words, ``<stem>#p<n>``.
- PDF (pypdf): each page's text in passages of about 200 words, ``<stem>#p<page>-<n>``.
- Work-order CSV (CMMS export): one passage per row, id = ``wo_id``.

Every passage carries ``doc_id``, ``doc_type``, ``title``, ``assets``, ``failure_modes``,
``operations``, ``date`` (ISO or ""), ``source`` (file), ``section`` (heading) and
``content_hash`` (sha256 of the text) in its ``meta``. A malformed file is skipped and reported with
a one-line reason; the rest load::

    report = load_documents([default_corpus_dir()])
    report.documents[0].id  # 'DS-LINE01#intro'
    report.skipped  # (('.../bad.md', 'front matter is not valid YAML: ...'),)
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from haystack import Document

from pumptwin.twin.errors import PumptwinError

DOC_TYPES = frozenset({"procedure", "manual", "datasheet", "inspection", "work_order", "outcome", "document"})
"""Document types a passage may carry (``outcome``: what an action of the closed loop did, by the feedback flow)."""

FAILURE_MODES = frozenset(
    {
        "bearing_wear",
        "impeller_wear",
        "cavitation",
        "seal_failure",
        "motor_overheating",
        "strainer_clog",
        "leak",
        "vibration",
        "surge",
    }
)
"""The failure-mode vocabulary of the corpus (metadata values)."""

OPERATIONS = frozenset(
    {"start_up", "shut_down", "speed_change", "standby_switch", "throughput_reduction", "reroute", "maintenance"}
)
"""The operations vocabulary of the corpus (metadata values)."""

WORK_ORDER_COLUMNS = (
    "wo_id",
    "asset",
    "opened",
    "closed",
    "priority",
    "failure_mode",
    "symptom",
    "finding",
    "parts",
    "action",
    "outcome",
    "downtime_h",
    "procedure",
)
"""Header of a CMMS work-order export."""

SUFFIXES = frozenset({".md", ".txt", ".pdf", ".csv"})
"""File suffixes the loader reads; other files in a folder are ignored."""

PASSAGE_WORDS = 200
"""Target length of a plain-text or PDF passage, words."""

_FRONT_MATTER_FENCE = "---"
_NON_SLUG = re.compile(r"[^a-z0-9]+")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


class CorpusError(PumptwinError, ValueError):
    """A corpus file that cannot be read; the message says what is wrong in one line."""


@dataclass(frozen=True)
class LoadReport:
    """What `load_documents` read.

    Attributes:
        documents: One `Document` per passage, in file order (files in sorted order).
        skipped: ``(path, reason)`` of each file (or ``path:line`` of each CSV row, or
            ``path#passage`` of each duplicate passage) left out.
    """

    documents: tuple[Document, ...]
    skipped: tuple[tuple[str, str], ...] = ()


def default_corpus_dir() -> Path:
    """Return the packaged corpus folder (``agents/knowledge/corpus``)."""
    return Path(__file__).resolve().parent / "knowledge" / "corpus"


def slugify(heading: str) -> str:
    """Return a section heading's slug: lowercased, runs of characters other than a-z0-9 as one ``-``.

    Args:
        heading: The heading text without its ``##`` marker.

    Returns:
        The slug, e.g. ``step-3-reduce-speed-of-the-affected-pump``.
    """
    return _NON_SLUG.sub("-", heading.lower()).strip("-")


def content_hash(text: str) -> str:
    """Return the sha256 hex digest of a passage's text (UTF-8)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_documents(paths: Iterable[Path | str]) -> LoadReport:
    """Load every passage under the given files and folders.

    Folders are walked recursively in sorted order; a ``README.md`` directly in a given folder
    (a corpus root) is not a document, files with other suffixes than `SUFFIXES` and hidden files
    are ignored. A malformed file is skipped and reported; a passage whose id an earlier file
    already used is skipped and reported.

    Args:
        paths: Files and folders.

    Returns:
        The passages and what was skipped.
    """
    documents: list[Document] = []
    skipped: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    for path in _walk(paths, skipped):
        try:
            loaded, row_problems = _load_file(path)
        except CorpusError as exc:
            skipped.append((str(path), str(exc)))
            continue
        skipped.extend(row_problems)
        for doc in loaded:
            first = seen.get(doc.id)
            if first is not None:
                skipped.append((f"{path}#{doc.id}", f"duplicate passage id {doc.id} (first in {first})"))
                continue
            seen[doc.id] = str(path)
            documents.append(doc)
    return LoadReport(tuple(documents), tuple(skipped))


def load_file(path: Path | str) -> list[Document]:
    """Load one file's passages by its suffix.

    Args:
        path: A ``.md``, ``.txt``, ``.pdf`` or work-order ``.csv`` file.

    Returns:
        Its passages; for a CSV, bad rows are left out (`load_documents` reports them).

    Raises:
        CorpusError: The file is malformed, unreadable or of an unknown type.
    """
    return _load_file(Path(path))[0]


def _walk(paths: Iterable[Path | str], skipped: list[tuple[str, str]]) -> list[Path]:
    """Return the files to load, in order, without repeats; report missing paths in ``skipped``."""
    files: list[Path] = []
    for raw in paths:
        root = Path(raw).resolve()
        if root.is_dir():
            for path in sorted(root.rglob("*")):
                rel = path.relative_to(root)
                if any(part.startswith(".") for part in rel.parts) or not path.is_file():
                    continue
                if path.suffix.lower() not in SUFFIXES or (rel.parts == ("README.md",)):
                    continue
                files.append(path)
        elif root.is_file():
            files.append(root)
        else:
            skipped.append((str(raw), "no such file or folder"))
    unique: dict[Path, None] = dict.fromkeys(files)
    return list(unique)


def _load_file(path: Path) -> tuple[list[Document], list[tuple[str, str]]]:
    """Load one file; return its passages and the rows skipped (CSV only)."""
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        return load_pdf(path), []
    if suffix not in SUFFIXES:
        raise CorpusError(f"unsupported file type {suffix or '(none)'}: expected one of {', '.join(sorted(SUFFIXES))}")
    text = _read_text(path)
    if suffix == ".md":
        return markdown_passages(text, path), []
    if suffix == ".txt":
        return text_passages(text, path), []
    return work_order_passages(text, path)


def _read_text(path: Path) -> str:
    """Return a file's UTF-8 text (a BOM is dropped, line ends normalised)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CorpusError(f"cannot read: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start}") from exc
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _meta(
    *,
    doc_id: str,
    doc_type: str,
    title: str,
    source: Path,
    section: str,
    text: str,
    assets: Sequence[str] = (),
    failure_modes: Sequence[str] = (),
    operations: Sequence[str] = (),
    date: str = "",
) -> dict[str, Any]:
    """Return a passage's metadata dict (``day`` only for a dated passage, see `day_number`)."""
    return {
        "doc_id": doc_id,
        "doc_type": doc_type,
        "title": title,
        "assets": list(assets),
        "failure_modes": list(failure_modes),
        "operations": list(operations),
        "date": date,
        **({"day": day_number(date)} if date else {}),
        "source": str(source),
        "section": section,
        "content_hash": content_hash(text),
    }


def day_number(date: str) -> int:
    """An ISO date ``YYYY-MM-DD`` as the integer ``YYYYMMDD``, which orders as the dates do.

    Stored beside a passage's ``date`` so that a date range is a number range for the store: the
    local Qdrant store parses a date text for every passage it compares, trying up to 15 formats.

    Raises:
        CorpusError: Not an ISO date.
    """
    return int(_iso_date(date, "date").replace("-", ""))


# --- Markdown -----------------------------------------------------------------------------------


def markdown_passages(text: str, source: Path) -> list[Document]:
    """Split a Markdown document into passages (intro and ``##`` sections).

    Args:
        text: The file's text.
        source: The file (its stem is the document id without front matter).

    Returns:
        The passages; a section's text starts with its heading.

    Raises:
        CorpusError: Bad front matter or a duplicate section slug.
    """
    header, body = _split_front_matter(text)
    if header is None:
        title = next((ln[2:].strip() for ln in body.split("\n") if ln.startswith("# ")), source.stem)
        fields: dict[str, Any] = {"doc_id": source.stem, "doc_type": "document", "title": title}
    else:
        fields = _front_matter_fields(header)
    doc_id = fields["doc_id"]
    passages: list[Document] = []
    slugs: set[str] = set()
    for heading, section_text in _sections(body):
        if heading is None:
            pid, section, passage_text = f"{doc_id}#intro", "", section_text
        else:
            slug = slugify(heading)
            if not slug:
                raise CorpusError(f"section heading {heading!r} has an empty slug")
            if slug in slugs:
                raise CorpusError(f"duplicate section slug {slug!r} (heading {heading!r})")
            slugs.add(slug)
            pid, section = f"{doc_id}#{slug}", heading
            passage_text = f"{heading}\n\n{section_text}" if section_text else ""
        if not passage_text:
            continue
        meta = _meta(source=source, section=section, text=passage_text, **fields)
        passages.append(Document(id=pid, content=passage_text, meta=meta))
    return passages


def _split_front_matter(text: str) -> tuple[str | None, str]:
    """Return (front matter or None, body)."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != _FRONT_MATTER_FENCE:
        return None, text
    for i, line in enumerate(lines[1:], start=1):
        if line.strip() == _FRONT_MATTER_FENCE:
            return "\n".join(lines[1:i]), "\n".join(lines[i + 1 :])
    raise CorpusError("front matter is not closed by a '---' line")


def _front_matter_fields(header: str) -> dict[str, Any]:
    """Validate front matter; return the passage fields it gives (doc_id, doc_type, title, lists, date)."""
    try:
        data = yaml.safe_load(header)
    except yaml.YAMLError as exc:
        first = str(exc).strip().split("\n")[0]
        raise CorpusError(f"front matter is not valid YAML: {first}") from exc
    if not isinstance(data, dict):
        raise CorpusError("front matter is not a mapping of fields")
    doc_id = data.get("id")
    if not isinstance(doc_id, str) or not doc_id.strip() or any(c.isspace() or c == "#" for c in doc_id):
        raise CorpusError(f"front matter id {doc_id!r} is not a non-empty string without spaces or '#'")
    doc_type = data.get("doc_type")
    if doc_type not in DOC_TYPES:
        raise CorpusError(f"doc_type {doc_type!r} is not one of {', '.join(sorted(DOC_TYPES))}")
    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        raise CorpusError("front matter has no title")
    return {
        "doc_id": doc_id,
        "doc_type": doc_type,
        "title": title.strip(),
        "assets": _str_list(data, "assets"),
        "failure_modes": _str_list(data, "failure_modes", FAILURE_MODES),
        "operations": _str_list(data, "operations", OPERATIONS),
        "date": _iso_date(data.get("date"), "date"),
    }


def _str_list(data: Mapping[str, Any], key: str, vocabulary: frozenset[str] | None = None) -> list[str]:
    """Return a front-matter list of strings (a single string counts as a list of one)."""
    value = data.get(key)
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) and v.strip() for v in items):
        raise CorpusError(f"{key} must be a list of names, got {value!r}")
    if vocabulary is not None:
        unknown = sorted(set(items) - vocabulary)
        if unknown:
            raise CorpusError(f"{key} has unknown value(s) {', '.join(unknown)}")
    return [v.strip() for v in items]


def _iso_date(value: object, what: str) -> str:
    """Return a date as ``YYYY-MM-DD`` ("" for none)."""
    if value is None or value == "":
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            pass
    raise CorpusError(f"{what} {value!r} is not an ISO date YYYY-MM-DD")


def _sections(body: str) -> list[tuple[str | None, str]]:
    """Split a Markdown body at ``## `` headings outside code fences; drop the first ``# `` title line."""
    sections: list[tuple[str | None, list[str]]] = [(None, [])]
    in_fence = False
    title_dropped = False
    for line in body.split("\n"):
        stripped = line.lstrip()
        if stripped.startswith(("```", "~~~")):
            in_fence = not in_fence
        elif not in_fence and line.startswith("## "):
            sections.append((line[3:].strip(), []))
            continue
        elif not in_fence and not title_dropped and len(sections) == 1 and line.startswith("# "):
            title_dropped = True
            continue
        sections[-1][1].append(line)
    return [(heading, "\n".join(lines).strip()) for heading, lines in sections]


# --- Plain text and PDF ------------------------------------------------------------------------------


def chunk_words(paragraphs: Sequence[str], words: int = PASSAGE_WORDS) -> list[str]:
    """Group paragraphs into passages of about ``words`` words.

    Paragraphs are joined while the passage stays within ``words``; a paragraph longer than 1.5 x
    ``words`` is cut into pieces of about ``words`` words.

    Args:
        paragraphs: Paragraph texts in order.
        words: Target passage length, words.

    Returns:
        The passages' texts (paragraphs separated by a blank line).
    """
    pieces: list[str] = []
    for para in paragraphs:
        tokens = para.split()
        if not tokens:
            continue
        if len(tokens) > 1.5 * words:
            n = math.ceil(len(tokens) / words)
            size = math.ceil(len(tokens) / n)
            pieces.extend(" ".join(tokens[i : i + size]) for i in range(0, len(tokens), size))
        else:
            pieces.append(" ".join(tokens))
    passages: list[str] = []
    current: list[str] = []
    count = 0
    for piece in pieces:
        n = len(piece.split())
        if current and count + n > words:
            passages.append("\n\n".join(current))
            current, count = [], 0
        current.append(piece)
        count += n
    if current:
        passages.append("\n\n".join(current))
    return passages


def text_passages(text: str, source: Path) -> list[Document]:
    """Split a plain-text file into passages ``<stem>#p<n>`` (n from 1) of about 200 words.

    Args:
        text: The file's text.
        source: The file; its stem is the document id and title.

    Returns:
        The passages.
    """
    doc_id = source.stem
    docs = []
    for n, passage in enumerate(chunk_words(_PARAGRAPH_BREAK.split(text)), start=1):
        meta = _meta(doc_id=doc_id, doc_type="document", title=doc_id, source=source, section="", text=passage)
        docs.append(Document(id=f"{doc_id}#p{n}", content=passage, meta=meta))
    return docs


def load_pdf(path: Path) -> list[Document]:
    """Split a PDF into passages ``<stem>#p<page>-<n>`` (both from 1) of about 200 words per page.

    Args:
        path: The PDF file; its stem is the document id; the title is the PDF's own or the stem.

    Returns:
        The passages (pages without text give none).

    Raises:
        CorpusError: The file is not a readable PDF.
    """
    from pypdf import PdfReader  # noqa: PLC0415 - optional format, loaded only for PDFs
    from pypdf.errors import PyPdfError  # noqa: PLC0415

    doc_id = path.stem
    try:
        reader = PdfReader(io.BytesIO(path.read_bytes()))
        if reader.is_encrypted:
            raise CorpusError("PDF is encrypted")
        info = reader.metadata
        title = str((info.get("/Title") if info is not None else None) or "").strip() or doc_id
        pages = [page.extract_text() or "" for page in reader.pages]
    except CorpusError:
        raise
    except OSError as exc:
        raise CorpusError(f"cannot read: {exc.strerror or exc}") from exc
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CorpusError(
            f"not a readable PDF: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from exc
    docs = []
    for page_no, page_text in enumerate(pages, start=1):
        paragraphs = _PARAGRAPH_BREAK.split(page_text.replace("\r\n", "\n"))
        for n, passage in enumerate(chunk_words(paragraphs), start=1):
            meta = _meta(
                doc_id=doc_id, doc_type="document", title=title, source=path, section=f"page {page_no}", text=passage
            )
            docs.append(Document(id=f"{doc_id}#p{page_no}-{n}", content=passage, meta=meta))
    return docs


# --- Work orders ----------------------------------------------------------------------------------


def work_order_text(row: Mapping[str, str]) -> str:
    """Return a work order's passage text as the corpus contract writes it.

    Args:
        row: One CSV row with the `WORK_ORDER_COLUMNS`.

    Returns:
        ``"Work order WO-23017 on PS01.P1 (bearing_wear), opened 2024-05-02, closed 2024-05-04.
        Symptom: ... Finding: ... Parts: ... Action: ... Outcome: ... Downtime: 36 h. Procedure: SOP-106."``
    """
    closed = f"closed {row['closed']}" if row["closed"] else "not closed"
    head = f"Work order {row['wo_id']} on {row['asset']} ({row['failure_mode']}), opened {row['opened']}, {closed}."
    parts = [head]
    for label, key in (("Symptom", "symptom"), ("Finding", "finding"), ("Parts", "parts"), ("Action", "action")):
        parts.append(f"{label}: {_sentence(row[key])}")
    parts.append(f"Outcome: {_sentence(row['outcome'])}")
    parts.append(f"Downtime: {row['downtime_h']} h.")
    if row["procedure"]:
        parts.append(f"Procedure: {row['procedure']}.")
    return " ".join(parts)


def _sentence(value: str) -> str:
    """Return a field as a sentence ending in one full stop (``none.`` when empty)."""
    value = value.strip() or "none"
    return value if value.endswith((".", "!", "?")) else value + "."


def work_order_passages(text: str, source: Path) -> tuple[list[Document], list[tuple[str, str]]]:
    """Read a CMMS work-order export: one passage per row.

    Args:
        text: The CSV text.
        source: The file.

    Returns:
        The passages, and ``(path:line, reason)`` of each bad row left out.

    Raises:
        CorpusError: No header or columns missing.
    """
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    if not header:
        raise CorpusError("work-order CSV has no header")
    missing = [c for c in WORK_ORDER_COLUMNS if c not in header]
    if missing:
        raise CorpusError(f"work-order CSV lacks column(s) {', '.join(missing)}")
    reader.fieldnames = header
    docs: list[Document] = []
    problems: list[tuple[str, str]] = []
    ids: set[str] = set()
    for raw in reader:
        line = reader.line_num
        try:
            doc = _work_order(raw, source)
            if doc.id in ids:
                raise CorpusError(f"duplicate wo_id {doc.id}")
        except CorpusError as exc:
            problems.append((f"{source}:{line}", str(exc)))
            continue
        ids.add(doc.id)
        docs.append(doc)
    return docs, problems


def _work_order(raw: Mapping[str, str | list[str] | None], source: Path) -> Document:
    """Validate one CSV row and return its passage."""
    if raw.get(None):  # type: ignore[call-overload]
        raise CorpusError("row has more fields than the header")
    row = {k: (raw.get(k) or "").strip() for k in WORK_ORDER_COLUMNS}  # type: ignore[union-attr]
    if not row["wo_id"] or any(c.isspace() or c == "#" for c in row["wo_id"]):
        raise CorpusError(f"bad wo_id {row['wo_id']!r}")
    if not row["asset"]:
        raise CorpusError(f"{row['wo_id']}: no asset")
    opened = _iso_date(row["opened"] or None, f"{row['wo_id']}: opened")
    if not opened:
        raise CorpusError(f"{row['wo_id']}: no opened date")
    closed = _iso_date(row["closed"] or None, f"{row['wo_id']}: closed")
    if closed and closed < opened:
        raise CorpusError(f"{row['wo_id']}: closed {closed} before opened {opened}")
    mode = row["failure_mode"] or "none"
    if mode != "none" and mode not in FAILURE_MODES:
        raise CorpusError(f"{row['wo_id']}: unknown failure_mode {mode!r}")
    try:
        downtime = float(row["downtime_h"])
    except ValueError:
        raise CorpusError(f"{row['wo_id']}: downtime_h {row['downtime_h']!r} is not a number") from None
    if not math.isfinite(downtime) or downtime < 0:
        raise CorpusError(f"{row['wo_id']}: downtime_h {row['downtime_h']!r} is not a number >= 0")
    row.update(opened=opened, closed=closed, failure_mode=mode)
    text = work_order_text(row)
    meta = _meta(
        doc_id=row["wo_id"],
        doc_type="work_order",
        title=f"Work order {row['wo_id']} on {row['asset']}",
        source=source,
        section="",
        text=text,
        assets=[row["asset"]],
        failure_modes=[] if mode == "none" else [mode],
        date=opened,
    )
    meta.update(
        wo_id=row["wo_id"],
        closed=closed,
        downtime_h=downtime,
        procedure=row["procedure"],
        outcome=row["outcome"],
        priority=row["priority"],
    )
    return Document(id=row["wo_id"], content=text, meta=meta)
