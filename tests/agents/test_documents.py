"""Loaders of the knowledge corpus: passages per format, stable ids, malformed files skipped and reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from pumptwin.agents.documents import (
    CorpusError,
    chunk_words,
    content_hash,
    default_corpus_dir,
    load_documents,
    load_file,
    slugify,
    work_order_text,
)

from .conftest import SOP_BEARING, minimal_pdf, write_corpus


def test_slugify_follows_the_contract() -> None:
    assert slugify("Step 3: Reduce speed of the affected pump") == "step-3-reduce-speed-of-the-affected-pump"
    assert slugify("  NPSH -- margin (m) ") == "npsh-margin-m"
    assert slugify("PS01.P1 / VIB_DE_RMS") == "ps01-p1-vib-de-rms"


def test_markdown_passages_ids_and_meta(tmp_path: Path) -> None:
    path = tmp_path / "SOP-906.md"
    path.write_text(SOP_BEARING, encoding="utf-8")
    docs = load_file(path)
    assert [d.id for d in docs] == [
        "SOP-906#intro",
        "SOP-906#scope",
        "SOP-906#step-1-check-the-lubrication",
        "SOP-906#step-2-reduce-the-pump-speed",
    ]
    intro, scope = docs[0], docs[1]
    assert intro.content == "Use this procedure when a main-line pump bearing runs hot."
    assert scope.content.startswith("Scope\n\nApplies to the drive-end")
    meta = scope.meta
    assert meta["doc_id"] == "SOP-906"
    assert meta["doc_type"] == "procedure"
    assert meta["title"] == "Response to high pump bearing temperature"
    assert meta["assets"] == ["PS01.P1", "PS01.P2"]
    assert meta["failure_modes"] == ["bearing_wear"]
    assert meta["operations"] == ["speed_change"]
    assert meta["date"] == "2025-03-14"
    assert meta["source"] == str(path)
    assert meta["section"] == "Scope"
    assert meta["content_hash"] == content_hash(scope.content)


def test_markdown_subheadings_and_code_fences_stay_in_their_section(tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_text("# Field notes\n## Checks\n### Oil\nlevel ok\n```\n## not a heading\n```\n## Other\ntext\n")
    docs = load_file(path)
    assert [d.id for d in docs] == ["notes#checks", "notes#other"]
    assert "## not a heading" in docs[0].content and "### Oil" in docs[0].content
    assert docs[0].meta["doc_type"] == "document"
    assert docs[0].meta["title"] == "Field notes"
    assert docs[0].meta["date"] == ""


def test_ids_are_stable_across_loads(corpus: Path) -> None:
    first = load_documents([corpus])
    second = load_documents([corpus])
    assert [d.id for d in first.documents] == [d.id for d in second.documents]
    assert [d.meta["content_hash"] for d in first.documents] == [d.meta["content_hash"] for d in second.documents]


def test_folder_walk_is_sorted_recursive_and_skips_root_readme(corpus: Path) -> None:
    report = load_documents([corpus])
    ids = [d.id for d in report.documents]
    assert ids[0].startswith("MAN-905#")  # manuals/ before procedures/ before work_orders/
    assert ids[-3:] == ["WO-90001", "WO-90002", "WO-90003"]
    assert not any("README" in d.meta["source"] for d in report.documents)
    assert report.skipped == ()


def test_work_orders_text_and_meta(corpus: Path) -> None:
    docs = {d.id: d for d in load_file(corpus / "work_orders" / "cmms.csv")}
    wo = docs["WO-90001"]
    assert wo.content == (
        "Work order WO-90001 on PS01.P1 (bearing_wear), opened 2024-05-02, closed 2024-05-04. "
        "Symptom: Bearing temperature high. Finding: Worn drive-end bearing. Parts: Bearing set. "
        "Action: Replaced bearing. Outcome: Temperature normal. Downtime: 36 h. Procedure: SOP-906."
    )
    assert wo.meta["doc_type"] == "work_order"
    assert wo.meta["assets"] == ["PS01.P1"]
    assert wo.meta["failure_modes"] == ["bearing_wear"]
    assert wo.meta["date"] == "2024-05-02"
    assert wo.meta["wo_id"] == "WO-90001"
    assert wo.meta["closed"] == "2024-05-04"
    assert wo.meta["downtime_h"] == 36.0
    assert wo.meta["procedure"] == "SOP-906"
    assert wo.meta["outcome"] == "Temperature normal"
    assert docs["WO-90003"].meta["failure_modes"] == []  # preventive work


def test_work_order_text_fills_empty_fields() -> None:
    row = dict.fromkeys(
        ("wo_id", "asset", "opened", "closed", "failure_mode", "symptom", "finding", "parts", "action", "outcome"), ""
    )
    row.update(wo_id="WO-1", asset="PS02.P3", opened="2024-01-01", failure_mode="leak", downtime_h="2.5", procedure="")
    text = work_order_text(row)
    assert text.startswith("Work order WO-1 on PS02.P3 (leak), opened 2024-01-01, not closed. Symptom: none.")
    assert text.endswith("Downtime: 2.5 h.")


def test_plain_text_paragraphs_grouped(tmp_path: Path) -> None:
    para = " ".join(["word"] * 80)
    path = tmp_path / "log.txt"
    path.write_text(f"{para}\n\n{para}\n\n{para}\n", encoding="utf-8")
    docs = load_file(path)
    assert [d.id for d in docs] == ["log#p1", "log#p2"]
    assert len(docs[0].content.split()) == 160
    assert docs[0].meta["doc_id"] == "log"


def test_chunk_words_cuts_long_paragraphs() -> None:
    chunks = chunk_words([" ".join(str(i) for i in range(500))], words=200)
    assert [len(c.split()) for c in chunks] == [167, 167, 166]
    assert chunk_words(["", "  "]) == []


def test_pdf_pages(tmp_path: Path) -> None:
    path = tmp_path / "manual.pdf"
    path.write_bytes(minimal_pdf(["Pump PS01.P1 impeller inspection", "Seal flush plan 53B"]))
    docs = load_file(path)
    assert [d.id for d in docs] == ["manual#p1-1", "manual#p2-1"]
    assert "impeller" in docs[0].content
    assert docs[1].meta["section"] == "page 2"


BAD_FILES = {
    "bad_yaml.md": ("---\nid: [unclosed\n---\n## A\ntext\n", "front matter is not valid YAML"),
    "no_close.md": ("---\nid: X-1\n## A\ntext\n", "front matter is not closed"),
    "bad_type.md": ("---\nid: X-2\ndoc_type: poem\ntitle: T\n---\n## A\ntext\n", "doc_type 'poem'"),
    "bad_mode.md": (
        "---\nid: X-3\ndoc_type: manual\ntitle: T\nfailure_modes: [rust]\n---\n## A\ntext\n",
        "failure_modes has unknown value(s) rust",
    ),
    "dup_slug.md": (
        "---\nid: X-4\ndoc_type: manual\ntitle: T\n---\n## Step 1\na\n## Step 1!\nb\n",
        "duplicate section",
    ),
    "short.csv": ("wo_id,asset,opened\nWO-1,PS01.P1,2024-01-01\n", "lacks column(s) closed, priority"),
    "broken.pdf": ("%PDF-1.4 this is not a pdf", "not a readable PDF"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_malformed_file_is_skipped_with_a_reason_and_the_rest_load(corpus: Path, name: str) -> None:
    text, reason = BAD_FILES[name]
    (corpus / name).write_text(text, encoding="utf-8")
    report = load_documents([corpus])
    assert len(report.skipped) == 1
    path, why = report.skipped[0]
    assert path == str(corpus / name)
    assert reason in why and "\n" not in why
    assert len(report.documents) == len(load_documents([corpus / "procedures", corpus / "manuals"]).documents) + 3


def test_undecodable_bytes_are_reported(corpus: Path) -> None:
    (corpus / "latin.md").write_bytes(b"# Titel\n## Pr\xfcfung\ntext\n")
    report = load_documents([corpus])
    assert report.skipped == ((str(corpus / "latin.md"), "not UTF-8 text: byte 0xfc at offset 13"),)


def test_bad_csv_rows_are_reported_and_other_rows_load(corpus: Path) -> None:
    csv_path = corpus / "work_orders" / "cmms.csv"
    text = csv_path.read_text(encoding="utf-8")
    header, *rows = text.splitlines()
    bad = rows[0].replace("2024-05-02", "02/05/2024").replace("WO-90001", "WO-90009")
    csv_path.write_text("\n".join([header, *rows, bad, rows[1]]) + "\n", encoding="utf-8")
    report = load_documents([csv_path])
    assert [d.id for d in report.documents] == ["WO-90001", "WO-90002", "WO-90003"]
    assert report.skipped == (
        (f"{csv_path}:5", "WO-90009: opened '02/05/2024' is not an ISO date YYYY-MM-DD"),
        (f"{csv_path}:6", "duplicate wo_id WO-90002"),
    )


def test_duplicate_passage_ids_across_files_keep_the_first(corpus: Path) -> None:
    (corpus / "procedures" / "SOP-907.md").write_text(SOP_BEARING.replace("Check the oil", "Look"), "utf-8")
    report = load_documents([corpus])
    ids = [d.id for d in report.documents]
    assert len(ids) == len(set(ids))
    kept = next(d for d in report.documents if d.id == "SOP-906#step-1-check-the-lubrication")
    assert kept.meta["source"].endswith("SOP-906.md")
    assert len(report.skipped) == 4
    assert all(p.startswith(str(corpus / "procedures" / "SOP-907.md")) for p, _ in report.skipped)
    assert all("duplicate passage id" in why for _, why in report.skipped)


def test_missing_path_and_unsupported_file_are_reported(tmp_path: Path) -> None:
    other = tmp_path / "table.xlsx"
    other.write_bytes(b"x")
    report = load_documents([tmp_path / "nope", other])
    assert report.documents == ()
    assert [why.split(":")[0] for _, why in report.skipped] == ["no such file or folder", "unsupported file type .xlsx"]


def test_load_file_raises_for_malformed(tmp_path: Path) -> None:
    path = tmp_path / "x.md"
    path.write_text("---\n- a list\n---\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="not a mapping"):
        load_file(path)


def test_packaged_corpus_loads_without_problems() -> None:
    root = default_corpus_dir()
    assert root.name == "corpus" and (root / "README.md").is_file()
    report = load_documents([root])
    assert report.skipped == ()
    ids = [d.id for d in report.documents]
    assert len(ids) == len(set(ids))


def test_write_corpus_helper_is_complete(tmp_path: Path) -> None:
    root = write_corpus(tmp_path)
    assert len(load_documents([root]).documents) == 11
