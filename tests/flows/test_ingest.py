"""The ingest steps, the `pumptwin ingest` command and one smoke run of the Prefect flow."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pandas as pd
import pytest
from typer.testing import CliRunner

from pumptwin.features.ingest.rawstore import RawStore
from pumptwin.flows.cli import app
from pumptwin.flows.ingest_steps import read_source, store_source
from pumptwin.flows.settings import Settings

GOOD = """tag,ts,value,quality
PS01.P1.VIB_DE_RMS,2026-11-01T00:00:00Z,2.1,good
PS01.P1.VIB_DE_RMS,2026-11-01T00:01:00Z,2.2,good
PS01.P1.BRG_DE_TEMP,2026-11-01T00:00:00Z,55.0,good
PS02.P2.DISCH_PRESS,2026-11-01T00:00:00Z,27.5,good
"""
BAD = """tag,ts,value,quality
PS01.P2.DISCH_PRESS,2026-11-01T00:00:00Z,390.0,good
PS01.P2.DISCH_PRESS,2026-11-01T00:01:00Z,not a number,good
PS01.P2.SUCT_PRESS,2026-11-01T00:00:00,3.0,good
PS01.P2.SUCT_PRESS,2026-11-01T00:01:00Z,3.1,good
"""


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    monkeypatch.setenv("PUMPTWIN_HOME", str(tmp_path / "home"))
    with mock.patch.dict(os.environ):
        yield tmp_path / "home"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "good.csv").write_text(GOOD)
    (data / "bad.csv").write_text(BAD)
    (data / "empty.csv").write_text("")
    (data / "semicolon.csv").write_text(GOOD.replace(",", ";"))
    return data


def test_steps_store_good_rows_and_quarantine_the_rest(home: Path, folder: Path) -> None:
    settings = Settings(home=home)
    report = store_source(read_source(str(folder), settings), settings, incremental=False)
    stored = RawStore(settings.raw_dir).read()
    # 4 good + 4 semicolon-separated copies (the same readings) + the one good row of bad.csv
    assert len(stored) == 5
    assert set(stored["tag"]) == {
        "PS01.P1.VIB_DE_RMS",
        "PS01.P1.BRG_DE_TEMP",
        "PS02.P2.DISCH_PRESS",
        "PS01.P2.SUCT_PRESS",
    }
    assert not report.clean
    text = report.to_markdown()
    assert "empty.csv" in text
    quarantine = RawStore(settings.raw_dir).read_quarantine()
    reasons = " ".join(quarantine["reason"].astype(str))
    assert "range" in reasons  # 390 "bar": a psi value where bar is expected
    assert "time zone" in reasons
    assert "ts_seen_before" in reasons  # the semicolon file repeats good.csv's readings
    # out of range, text value, naive timestamp, and the 4 repeated readings: nothing lost
    assert len(quarantine) == 7


def test_reingesting_the_same_files_stores_nothing_new(home: Path, folder: Path) -> None:
    settings = Settings(home=home)
    store_source(read_source(str(folder), settings), settings, incremental=False)
    before = len(RawStore(settings.raw_dir).read())
    store_source(read_source(str(folder), settings), settings, incremental=False)
    assert len(RawStore(settings.raw_dir).read()) == before


def test_window_keeps_only_its_rows(home: Path, folder: Path) -> None:
    settings = Settings(home=home)
    result = read_source(str(folder / "good.csv"), settings, end=pd.Timestamp("2026-11-01T00:00:30Z"))
    assert len(result.readings) == 3


def test_cli_ingest_exit_codes(home: Path, folder: Path) -> None:
    runner = CliRunner()
    dirty = runner.invoke(app, ["ingest", str(folder), "--full"])
    assert dirty.exit_code == 1, dirty.output
    assert "quarantined" in dirty.output
    clean = runner.invoke(app, ["ingest", str(folder / "good.csv")])
    assert clean.exit_code == 0, clean.output
    missing = runner.invoke(app, ["ingest", "simulator:no_such_scenario"])
    assert missing.exit_code == 2
    assert "no_such_scenario" in missing.output


def test_cli_ingests_simulated_plant_data(home: Path) -> None:
    result = CliRunner().invoke(app, ["ingest", "simulator:bearing_failure", "--end", "2024-03-01T02:00:00Z"])
    assert result.exit_code in (0, 1), result.output
    stored = RawStore(home / "raw").read()
    assert stored["tag"].str.startswith("PS01.P1.").any()
    assert stored["ts"].max() < pd.Timestamp("2024-03-01T02:00:00Z")


def test_ingest_flow_smoke(home: Path, folder: Path) -> None:
    from prefect.testing.utilities import prefect_test_harness

    from pumptwin.flows.ingest import ingest

    with prefect_test_harness(server_startup_timeout=120):
        summary = ingest(source=str(folder / "good.csv"), incremental=False)
    assert summary["stored"] == 4
    assert summary["rejected"] == 0
