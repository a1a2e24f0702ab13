"""The living twin's steps on a short simulated plant run, the `pumptwin sync` command and the two flows."""

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
from pumptwin.flows.settings import Settings
from pumptwin.flows.twin_store import load_twin, state_paths
from pumptwin.flows.twin_sync_steps import respond_to_alerts, sync_markdown, sync_twin
from pumptwin.flows.what_if_steps import run_whatif
from pumptwin.twin.health.io import calibration_to_dict, read_calibration
from pumptwin.twin.hydraulic.io import load_network
from pumptwin.twin.hydraulic.pumps import fit_head_curve
from pumptwin.twin.whatif.scenarios import BASE_NAME

WINDOW_S = 3600.0
WORN = "PS02.P2"
SPLIT = pd.Timestamp("2024-03-02T06:00:00Z")


@pytest.fixture(scope="module")
def readings(worn_impeller_readings: pd.DataFrame) -> pd.DataFrame:
    """The shared run (`tests/flows/conftest.py`): PS02.P2's impeller wears 8 % from hour 7 to day 1.5."""
    return worn_impeller_readings


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    monkeypatch.setenv("PUMPTWIN_HOME", str(tmp_path / "home"))
    with mock.patch.dict(os.environ):
        yield tmp_path / "home"


@pytest.fixture
def synced(home: Path, readings: pd.DataFrame) -> Settings:
    """A home whose twin has been synchronised on the whole run."""
    settings = Settings(home=home)
    RawStore(settings.raw_dir).write(readings)
    sync_twin(settings, window_s=WINDOW_S)
    return settings


def test_empty_store_leaves_the_state_unchanged(home: Path) -> None:
    settings = Settings(home=home)
    report = sync_twin(settings)
    assert not report.updated and report.state is None and report.calibration is None
    assert "holds no readings" in report.message and "unchanged" in report.message
    assert not any(p.exists() for p in state_paths(settings).values())
    assert respond_to_alerts(settings, report) == []
    result = CliRunner().invoke(app, ["sync"])
    assert result.exit_code == 0, result.output
    assert "holds no readings" in result.output


def test_sync_catches_the_worn_pump_and_persists(home: Path, readings: pd.DataFrame) -> None:
    settings = Settings(home=home)
    store = RawStore(settings.raw_dir)
    ts = pd.to_datetime(readings["ts"], utc=True)
    store.write(readings[ts < SPLIT])
    first = sync_twin(settings, window_s=WINDOW_S)
    assert first.updated and first.windows == 30  # 00:00 on day 1 to 06:00 on day 2
    assert first.state is not None and first.calibration is not None
    early = {a.source: a.since for a in first.state.alerts if a.asset == WORN}
    assert "impeller_wear" in early

    store.write(readings[ts >= SPLIT])
    second = sync_twin(settings, window_s=WINDOW_S)
    assert second.updated and second.windows == 18
    assert second.calibration is not None and second.state is not None
    assert second.calibration.n_updates == 48
    state = second.state
    assert state.asset(WORN).status == "alarm"
    assert {a.asset for a in state.alerts} == {WORN}  # healthy pumps and the line stay quiet
    assert all(state.asset(p).status in ("normal", "watch") for p in ("PS01.P1", "PS01.P2", "PS02.P1"))
    wear = second.calibration.pump(WORN).impeller_wear.value
    assert 0.07 < wear < 0.09
    since = {a.source: a.since for a in state.alerts}
    assert since["impeller_wear"] == early["impeller_wear"]  # carried across syncs through state.json

    paths = state_paths(settings)
    saved = read_calibration(paths["calibration"])
    assert calibration_to_dict(saved) == calibration_to_dict(second.calibration)
    assert json.loads(paths["state"].read_text())["alerts"][0]["asset"] == WORN
    assert "| PS02.P2 |" in paths["state_md"].read_text()

    before = {k: p.read_text() for k, p in paths.items()}
    third = sync_twin(settings, window_s=WINDOW_S)
    assert not third.updated and "no readings" in third.message
    assert {k: p.read_text() for k, p in paths.items()} == before
    assert third.state is not None and third.state.alerts == state.alerts


def test_whatifs_run_on_the_calibrated_network(synced: Settings) -> None:
    cal, _ = load_twin(synced)
    assert cal is not None
    worn = run_whatif(synced, flags={"flow": "-5%"}, plots=False)
    clean = run_whatif(synced, flags={"flow": "-5%"}, calibrated=False, plots=False)
    assert worn.calibrated_at == cal.ts and clean.calibrated_at is None
    assert [o.name for o in worn.report.outcomes] == [BASE_NAME, "flow -5%"]
    curve = fit_head_curve(load_network().curve("PC2"))
    for run in (worn, clean):
        base = run.report.outcome(BASE_NAME)
        p = next(p for p in base.pumps if p.pump == "PS2-P2")
        clean_head = float(curve.head_m(p.flow_m3h / 3600.0, p.speed))
        if run is worn:  # the worn pump gives less head at the same flow and speed
            assert p.head_m < 0.95 * clean_head
        else:
            assert p.head_m == pytest.approx(clean_head, rel=0.01)
        healthy = next(p for p in base.pumps if p.pump == "PS2-P1")
        assert healthy.head_m == pytest.approx(float(curve.head_m(healthy.flow_m3h / 3600.0, healthy.speed)), rel=0.01)
    assert worn.report.outcome(BASE_NAME).throughput_m3h < clean.report.outcome(BASE_NAME).throughput_m3h
    for key in ("markdown", "json", "table", "pumps"):
        assert worn.paths[key].is_file()
    assert worn.folder.parent == synced.whatif_dir
    assert f"calibrated twin (calibration of {cal.ts.isoformat()})" in worn.to_markdown()
    assert "as-built network (calibration not asked for)" in clean.to_markdown()


def test_candidate_responses_are_evaluated(synced: Settings) -> None:
    report = sync_twin(synced)  # nothing new: the saved state is reported as it is
    assert not report.updated and report.attention
    runs = respond_to_alerts(synced, report, plots=False)
    assert len(runs) == 1
    names = [o.name for o in runs[0].report.outcomes]
    assert names == [
        BASE_NAME,
        "PS02.P2: speed -5 %",
        "PS02.P2: speed -10 %",
        "PS02.P2: switch to standby",
        "PS02.P2: stop",
        "LINE01: throughput -10 %",
    ]
    standby = runs[0].report.outcome("PS02.P2: switch to standby")
    assert {p.pump for p in standby.pumps if p.running} == {"PS1-P1", "PS1-P2", "PS2-P1", "PS2-P3"}
    text = sync_markdown(report, runs)
    for part in ("## Health", "## Alerts", "## Margins", "## Candidate responses", "PS02.P2: switch to standby"):
        assert part in text


def test_cli_sync_exit_codes(home: Path, readings: pd.DataFrame) -> None:
    settings = Settings(home=home)
    RawStore(settings.raw_dir).write(readings)
    runner = CliRunner()
    result = runner.invoke(app, ["sync", "--window-s", "3600"])
    assert result.exit_code == 1, result.output  # PS02.P2 in alarm
    assert "ALARM PS02.P2 impeller_wear" in result.output
    zero = runner.invoke(app, ["sync", "--window-s", "0"])
    assert zero.exit_code == 2 and "window_s" in zero.output
    state_paths(settings)["calibration"].write_text("{broken")
    bad = runner.invoke(app, ["sync"])
    assert bad.exit_code == 2
    assert "calibration.json" in bad.output


def test_cli_model_commands_on_an_empty_home(home: Path) -> None:
    runner = CliRunner()
    scored = runner.invoke(app, ["score"])
    assert scored.exit_code == 0, scored.output
    assert "no pump could be scored" in scored.output
    bad = runner.invoke(app, ["train", "--family", "bogus"])
    assert bad.exit_code == 2
    assert "bogus" in bad.output


@pytest.mark.slow
def test_flows_smoke(synced: Settings) -> None:
    from prefect.testing.utilities import prefect_test_harness

    from pumptwin.flows.twin_sync import twin_sync
    from pumptwin.flows.what_if import what_if

    with prefect_test_harness(server_startup_timeout=120):
        summary = twin_sync(window_s=WINDOW_S)
        asked = what_if(flow_change_pct=-10, speeds={"PS2-P2": 0.95}, leak_km=90, leak_m3h=50)
    assert summary["attention"] and summary["alerts"] >= 1 and len(summary["whatif_folders"]) == 1
    assert (Path(summary["whatif_folders"][0]) / "pump_curves.png").is_file()
    assert asked["scenarios"][0] == BASE_NAME and len(asked["scenarios"]) == 2
    assert (Path(asked["folder"]) / "pressure_profile.png").is_file()


def test_sync_fuses_the_stored_route_evidence(home: Path, readings: pd.DataFrame) -> None:
    from pumptwin.flows.inspection_steps import route_store
    from pumptwin.twin.inspection.routes import parse_route

    settings = Settings(home=home)
    store = RawStore(settings.raw_dir)
    ts = pd.to_datetime(readings["ts"], utc=True)
    store.write(readings[ts < SPLIT])
    seen = SPLIT - pd.Timedelta(hours=3)
    near = readings[(readings["tag"] == "PS01.P1.VIB_DE_RMS") & ((ts - seen).abs() <= pd.Timedelta(minutes=15))]
    route_mm_s = max(8.0, 3.0 * float(near["value"].median()))  # zone D, and far from the online sensor
    rows = [{"asset": "PS01.P1", "time": seen.isoformat(), "point": "DE", "direction": d, "overall": str(route_mm_s)}
            for d in ("H", "V")]  # fmt: skip
    route_store(settings).append(parse_route(pd.DataFrame(rows), ["PS01.P1"], source="route-1.csv", now=SPLIT))

    first = sync_twin(settings, window_s=WINDOW_S)
    assert first.state is not None
    p1 = first.state.asset("PS01.P1")
    assert p1.evidence["route_vib_de_mm_s"] == route_mm_s and p1.status == "alarm"
    assert p1.evidence["sensor_flag"] == 1.0  # the online DE sensor reads a third of the route's value
    alert = next(a for a in first.state.alerts if a.source == "route_vib_de_iso")
    assert alert.model_version == "route:vibration:route-1.csv" and alert.since == seen
    assert any(a.source == "impeller_wear" for a in first.state.alerts)  # the twin's own alerts stay

    store.write(readings[ts >= SPLIT])
    second = sync_twin(settings, window_s=WINDOW_S)
    assert second.state is not None
    saved = load_twin(settings)[1]
    assert saved is not None and saved.alerts == second.state.alerts
    again = next(a for a in saved.alerts if a.source == "route_vib_de_iso")
    assert again.since == alert.since and saved.asset("PS01.P1").evidence["route_vib_de_mm_s"] == route_mm_s


def test_a_damaged_route_store_does_not_stop_the_sync(home: Path, readings: pd.DataFrame) -> None:
    from pumptwin.flows.inspection_steps import route_store

    settings = Settings(home=home)
    RawStore(settings.raw_dir).write(readings)
    store = route_store(settings)
    store.root.mkdir(parents=True)
    store.path("vibration").write_bytes(b"not parquet")
    report = sync_twin(settings, window_s=WINDOW_S)
    assert report.updated and report.state is not None
    assert "route evidence not fused" in report.message and "vibration.parquet" in report.message
    assert not any(k.startswith("route_") for h in report.state.health for k in h.evidence)
