"""The ingest steps, the `pumptwin ingest` command and one smoke run of the Prefect flow."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pandas as pd
import pytest
from typer.testing import CliRunner

from pumptwin.features.ingest.contract import REASON_TAG_UNKNOWN, REASON_TS_FUTURE
from pumptwin.features.ingest.rawstore import RawStore
from pumptwin.flows import ingest_steps
from pumptwin.flows.cli import app
from pumptwin.flows.ingest_steps import PathSource, read_source, store_source, write_fault_labels
from pumptwin.flows.settings import Settings, SettingsError
from pumptwin.twin.safety import UnsafePathError

NOW = pd.Timestamp("2026-11-02T00:00:00Z")

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
    report = store_source(read_source(str(folder), settings), settings)
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
    # out of range, text value, naive timestamp; the semicolon file repeats good.csv's readings,
    # which the store recognises as duplicates (files are validated one chunk at a time)
    assert len(quarantine) == 3
    summary = report.summary
    assert (summary.rows_in, summary.stored, summary.duplicates, summary.rejected) == (12, 5, 4, 3)
    assert summary.accounted and summary.chunks >= 4


def test_reingesting_the_same_files_stores_nothing_new(home: Path, folder: Path) -> None:
    settings = Settings(home=home)
    store_source(read_source(str(folder), settings), settings)
    before = len(RawStore(settings.raw_dir).read())
    store_source(read_source(str(folder), settings), settings)
    assert len(RawStore(settings.raw_dir).read()) == before


def test_window_keeps_only_its_rows(home: Path, folder: Path) -> None:
    settings = Settings(home=home)
    result = read_source(str(folder / "good.csv"), settings, end=pd.Timestamp("2026-11-01T00:00:30Z"))
    assert isinstance(result, PathSource) and result.chunk_readings == settings.ingest.chunk_readings
    assert sum(len(chunk.readings) for chunk in result.chunks()) == 3


def test_a_file_is_stored_chunk_by_chunk(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [f"PS01.P1.VIB_DE_RMS,2026-11-01T00:{m:02d}:00Z,{2 + m / 100},good" for m in range(50)]
    (tmp_path / "big.csv").write_text("tag,ts,value,quality\n" + "\n".join(rows) + "\n")
    monkeypatch.setenv("PUMPTWIN_INGEST_CHUNK_READINGS", "1000")
    settings = Settings(home=home)
    source = read_source(str(tmp_path / "big.csv"), settings)
    small = PathSource(source.path, chunk_readings=7)  # smaller than settings allow, to see the chunks
    report = store_source(small, settings, now=NOW)
    assert report.summary.chunks == 8 and report.summary.stored == 50 and report.clean
    assert len(RawStore(settings.raw_dir).read()) == 50


def test_future_readings_are_quarantined_and_do_not_hide_later_ones(home: Path, tmp_path: Path) -> None:
    settings = Settings(home=home)
    clock_off = GOOD + "PS01.P1.VIB_DE_RMS,2099-01-01T00:00:00Z,2.3,good\n"
    (tmp_path / "clock.csv").write_text(clock_off)
    report = store_source(read_source(str(tmp_path / "clock.csv"), settings), settings, now=NOW)
    assert report.summary.rejected_by_reason == {REASON_TS_FUTURE: 1} and report.summary.stored == 4
    store = RawStore(settings.raw_dir)
    assert store.watermark("PS01.P1.VIB_DE_RMS") == pd.Timestamp("2026-11-01T00:01:00Z")
    later = "tag,ts,value,quality\nPS01.P1.VIB_DE_RMS,2026-11-01T06:00:00Z,2.4,good\n"
    (tmp_path / "later.csv").write_text(later)
    again = store_source(read_source(str(tmp_path / "later.csv"), settings), settings, now=NOW)
    assert again.summary.stored == 1 and again.clean
    assert store.watermark("PS01.P1.VIB_DE_RMS") == pd.Timestamp("2026-11-01T06:00:00Z")


def test_late_files_are_stored_and_exit_0(home: Path, tmp_path: Path) -> None:
    (tmp_path / "new.csv").write_text(GOOD.replace("2026-11-01", "2026-11-03"))
    (tmp_path / "old.csv").write_text(GOOD)
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(tmp_path / "new.csv")]).exit_code == 0
    late = runner.invoke(app, ["ingest", str(tmp_path / "old.csv")])
    assert late.exit_code == 0, late.output
    assert len(RawStore(home / "raw").read()) == 8
    again = runner.invoke(app, ["ingest", str(tmp_path / "old.csv")])  # exact duplicates: still clean
    assert again.exit_code == 0 and "| 4 | 0 | 0 | 0 | 4 | 4 | 0 | 0 |" in again.output


def test_tags_of_no_registry_asset_are_quarantined_and_counted(home: Path, tmp_path: Path) -> None:
    settings = Settings(home=home)
    text = GOOD + "".join(
        f"{tag},2026-11-01T00:00:00Z,2.0,good\n"
        for tag in ("PS01.P9.VIB_DE_RMS", "PS03.P1.VIB_DE_RMS", "LINE02.DEL_IN.PRESS", "PS01.P1.NO_SUCH_MEASURE")
    )
    (tmp_path / "fleet.csv").write_text(text)
    report = store_source(read_source(str(tmp_path / "fleet.csv"), settings), settings, now=NOW)
    # PS03 and LINE02 belong to the fleet's second line; P9 is no pump of PS01
    assert report.summary.unknown_tags == {"PS01.P9.VIB_DE_RMS": 1, "PS01.P1.NO_SUCH_MEASURE": 1}
    assert report.summary.rejected_by_reason == {REASON_TAG_UNKNOWN: 2} and report.summary.stored == 6
    assert "PS01.P9.VIB_DE_RMS" in report.to_markdown()
    assert not report.clean


def test_fault_labels_stay_inside_the_labels_folder(home: Path) -> None:
    settings = Settings(home=home)
    labels = pd.DataFrame({"asset": ["PS01.P1"], "mode": ["bearing"]})
    assert write_fault_labels(labels, "run_1", settings) == settings.labels_dir / "run_1.parquet"
    for name in ("../../tmp/x", "/tmp/x", "a/../../x"):
        with pytest.raises(UnsafePathError, match="scenario name"):
            write_fault_labels(labels, name, settings)
    assert not (home.parent / "tmp").exists()


class FakeHistorian:
    """Stands in for the PI Web API client: two points, records the window it is asked for."""

    windows: list[tuple[object, object]] = []

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def data_server(self, name: str) -> str:
        return "server"

    def find_points(self, server: str, name_filter: str) -> list[object]:
        return [SimpleNamespace(web_id=f"w{k}", name=tag) for k, tag in enumerate(PI_TAGS)]

    def read_recorded(self, web_ids: dict[str, str], start: object, end: object) -> object:
        FakeHistorian.windows.append((start, end))
        return None  # the readings do not matter here, only the window asked for


PI_TAGS = ("PS01.P1.VIB_DE_RMS", "PS01.P1.BRG_DE_TEMP")


def test_pi_reads_start_at_the_watermark_minus_the_overlap(
    home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PUMPTWIN_HISTORIAN_URL", "https://pi.example/piwebapi")
    monkeypatch.setenv("PUMPTWIN_HISTORIAN_DATA_SERVER", "archive")
    monkeypatch.setenv("PUMPTWIN_INGEST_OVERLAP_S", "3600")
    monkeypatch.setattr(ingest_steps, "PIWebAPIClient", FakeHistorian)
    FakeHistorian.windows = []
    settings = Settings(home=home)
    with pytest.raises(SettingsError, match="no watermark"):  # first run: a start is needed
        read_source("pi:PS01.*", settings, now=NOW)
    (tmp_path / "good.csv").write_text(GOOD)
    store_source(read_source(str(tmp_path / "good.csv"), settings), settings, now=NOW)
    read_source("pi:PS01.*", settings, now=NOW)
    # oldest watermark of the two points (BRG_DE_TEMP at 00:00) minus one hour, up to now
    assert FakeHistorian.windows == [(pd.Timestamp("2026-10-31T23:00:00Z"), NOW)]
    given = pd.Timestamp("2026-10-01T00:00:00Z")
    read_source("pi:PS01.*", settings, start=given, end=given + pd.Timedelta("1D"), now=NOW)
    assert FakeHistorian.windows[-1] == (given, given + pd.Timedelta("1D"))
    with pytest.raises(SettingsError, match="start"):
        read_source("pi:PS01.*", settings, incremental=False, now=NOW)


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
