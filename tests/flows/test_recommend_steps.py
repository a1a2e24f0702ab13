"""The recommend steps, the `pumptwin recommend`, `ask` and `knowledge` commands on a synchronised twin."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pandas as pd
import pytest
from typer.testing import CliRunner

from pumptwin.features.ingest.rawstore import RawStore
from pumptwin.flows.cli import app
from pumptwin.flows.recommend_steps import ask_question, index_knowledge, recommend_lines
from pumptwin.flows.settings import Settings
from pumptwin.flows.twin_sync_steps import sync_twin

WINDOW_S = 3600.0
WORN = "PS02.P2"

PROCEDURE = """---
id: SOP-901
doc_type: procedure
title: Impeller wear and loss of efficiency
assets: [PS02.P1, PS02.P2, PS02.P3]
failure_modes: [impeller_wear]
operations: [speed_change, maintenance]
date: 2025-02-01
---
# Impeller wear and loss of efficiency
## Step 1: Confirm the wear
Compare the pump's head at its present flow and speed with the datasheet curve; a head 5 % low at the
same flow and speed confirms impeller or wear-ring wear on the main-line pump.
## Step 2: Relieve the worn pump
Lower the worn pump's speed setpoint and raise a maintenance work request for an impeller inspection.
"""
WORK_ORDERS = (
    "wo_id,asset,opened,closed,priority,failure_mode,symptom,finding,parts,action,outcome,downtime_h,procedure\n"
    "WO-90001,PS02.P2,2023-03-01,2023-03-03,2,impeller_wear,head low,wear rings worn,wear rings,"
    "replaced wear rings,efficiency restored,30,SOP-901\n"
)


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "SOP-901.md").write_text(PROCEDURE, encoding="utf-8")
    (docs / "cmms.csv").write_text(WORK_ORDERS, encoding="utf-8")
    monkeypatch.setenv("PUMPTWIN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PUMPTWIN_AGENTS_PACKAGED_CORPUS", "false")
    monkeypatch.setenv("PUMPTWIN_AGENTS_DOCUMENTS", json.dumps([str(docs)]))
    with mock.patch.dict(os.environ):
        yield tmp_path / "home"


@pytest.fixture
def synced(home: Path, worn_impeller_readings: pd.DataFrame) -> Settings:
    """A home whose twin is synchronised on the shared run (PS02.P2's impeller wears, `conftest.py`)."""
    settings = Settings(home=home)
    RawStore(settings.raw_dir).write(worn_impeller_readings)
    sync_twin(settings, window_s=WINDOW_S)
    return settings


def test_no_state_yet(home: Path) -> None:
    report = recommend_lines(Settings(home=home))
    assert report.lines == () and "no twin state yet" in report.message
    result = CliRunner().invoke(app, ["recommend"])
    assert result.exit_code == 0, result.output
    assert "no twin state yet" in result.output


def test_recommendation_for_the_worn_pump_with_evidence(synced: Settings) -> None:
    report = recommend_lines(synced, plots=False)
    assert len(report.lines) == 1
    item = report.lines[0]
    rec = item.run.recommendation
    assert WORN in rec.assets
    assert rec.chosen.feasible
    ids = {p.id for p in rec.evidence.passages}
    assert "WO-90001" in ids and any(i.startswith("SOP-901#") for i in ids)
    md = item.paths["markdown"].read_text(encoding="utf-8")
    assert "## Expected effect (twin)" in md and "## Alternatives" in md and "## Citations" in md
    data = json.loads(item.paths["json"].read_text(encoding="utf-8"))
    assert data["chosen"]["name"] == rec.chosen.name and data["citations"]
    assert rec.check.ok and rec.generator == "grounded"


def test_unreachable_store_still_reaches_the_approver(synced: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUMPTWIN_AGENTS_QDRANT_URL", "http://127.0.0.1:9")
    settings = Settings(home=synced.home)
    report = recommend_lines(settings, search=False, plots=False)
    rec = report.lines[0].run.recommendation
    assert any("knowledge store unavailable" in n and "127.0.0.1:9" in n for n in rec.notes)
    assert rec.evidence.passages == ()
    md = report.lines[0].paths["markdown"].read_text(encoding="utf-8")
    assert "throughput m3/h" in md and "knowledge store unavailable" in md
    result = CliRunner().invoke(app, ["ask", "what does the procedure say about impeller wear?"])
    assert result.exit_code == 2
    assert result.output.count("\n") <= 2 and "127.0.0.1:9" in result.output


def test_ask_cites_passages_and_the_twin_state(synced: Settings) -> None:
    answer = ask_question(synced, f"why is {WORN} in alarm?")
    assert WORN in answer.assets
    assert "Twin state at" in answer.text and "impeller_wear" in answer.text
    assert answer.citations and set(answer.citations) <= {p.id for p in answer.passages}
    result = CliRunner().invoke(app, ["ask", "  "])
    assert result.exit_code == 2


def test_knowledge_index_is_idempotent_and_reports_bad_files(home: Path, tmp_path: Path) -> None:
    settings = Settings(home=home)
    first = index_knowledge(settings)
    assert first.written >= 3 and not first.skipped
    again = index_knowledge(settings)
    assert again.written == 0 and again.unchanged == first.written
    (tmp_path / "docs" / "bad.md").write_text("---\nid: [unclosed\n---\n# x\n## y\ntext\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["knowledge", "index"])
    assert result.exit_code == 1, result.output
    assert "bad.md" in result.output


def test_the_twin_view_reads_the_integrity_assessment_like_the_what_if(home: Path) -> None:
    from pumptwin.flows.recommend_steps import twin_view
    from pumptwin.twin.integrity.store import write_assessed

    settings = Settings(home=home)
    assert twin_view(settings, None, 1).integrity is None
    rows = pd.DataFrame(
        {"feature_id": ["A", "B"], "chainage_m": [61_000.0, 90_000.0], "safe_pa": [4e6, 5e6], "pipe_id": ["x", "y"]}
    )
    write_assessed(rows, settings.integrity_dir, 1)
    view = twin_view(settings, None, 1)
    assert view.integrity is not None and list(view.integrity.feature_ids) == ["A", "B"]
    assert "assessed_line01.parquet" in view.integrity.source
    assert view.derating is not None and view.derating.features == 2


def test_the_integrity_reports_join_the_knowledge_sources_once_written(tmp_path: Path) -> None:
    from pumptwin.flows.recommend_steps import knowledge_sources

    settings = Settings(home=tmp_path / "home")
    assert all("integrity" not in str(p) for p in knowledge_sources(settings))
    reports = settings.integrity_dir / "reports"
    reports.mkdir(parents=True)
    assert all("integrity" not in str(p) for p in knowledge_sources(settings))
    (reports / "ILI-LINE01-R1.md").write_text("---\nid: ILI-LINE01-R1\n---\n# r\n", encoding="utf-8")
    assert knowledge_sources(settings)[-1] == reports
    outcomes = settings.home / "feedback" / "reports"
    outcomes.mkdir(parents=True)
    (outcomes / "OUT-REQ-1.md").write_text("---\nid: OUT-REQ-1\n---\n# o\n", encoding="utf-8")
    assert knowledge_sources(settings)[-2:] == [reports, outcomes]
