"""The rounds flow on a tmp home: this week's round from the twin state, the route history and the settings."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pandas as pd
import pytest

from pumptwin.features.ingest.rawstore import RawStore
from pumptwin.flows.inspection_steps import fleet, plan_week, planner_settings, round_key, route_store
from pumptwin.flows.settings import Settings
from pumptwin.flows.twin_store import state_paths
from pumptwin.twin.health.io import write_state
from pumptwin.twin.health.state import DEFAULT_RULES, TwinState, assess
from pumptwin.twin.inspection.routes import parse_route

NOW = pd.Timestamp("2026-12-01T12:00Z")
STATE_TS = pd.Timestamp("2026-11-30T12:00Z")


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    with mock.patch.dict(os.environ):
        monkeypatch.setenv("PUMPTWIN_HOME", str(tmp_path / "home"))
        monkeypatch.setenv("PUMPTWIN_INSPECTION_ROUND_BUDGET_H", "4")
        monkeypatch.setenv("PUMPTWIN_INSPECTION_TRAVEL_HOURS", "1.5")
        yield tmp_path / "home"


def fleet_home(home: Path) -> Settings:
    """Readings of PS01 and PS02 (the reference line), a state with PS02.P2 in alarm, recent visits of every pump."""
    settings = Settings(home=home)
    ts = pd.date_range(STATE_TS - pd.Timedelta(hours=1), periods=60, freq="1min", tz="UTC")
    RawStore(settings.raw_dir).write(
        pd.concat(
            [
                pd.DataFrame({"tag": f"{s}.P1.SPEED", "ts": ts, "value": 1480.0, "quality": "good"})
                for s in ("PS01", "PS02")
            ]
        )
    )
    health = (
        assess("PS02.P2", "pump", {"impeller_wear": 0.07}, DEFAULT_RULES),
        assess("PS01.P1", "pump", {"impeller_wear": 0.0}, DEFAULT_RULES),
    )
    write_state(TwinState(STATE_TS, health), state_paths(settings)["state"])
    pumps = tuple(p.name for p in fleet(settings).pumps)
    rows = [
        {"asset": a, "time": (NOW - pd.Timedelta(days=20)).isoformat(), "finding": "ok", "severity": "0"} for a in pumps
    ]
    route_store(settings).append(parse_route(pd.DataFrame(rows), pumps, source="walk.csv", now=NOW))
    return settings


def test_round_key_is_the_iso_week() -> None:
    assert round_key(NOW) == "round-2026-w49"
    assert round_key(pd.Timestamp("2027-01-01T00:00Z")) == "round-2026-w53"


def test_planner_settings_come_from_the_inspection_settings(home: Path) -> None:
    st = planner_settings(Settings(home=home))
    assert (st.budget_h, st.travel_hours, st.visit_hours, st.max_interval_days) == (4.0, 1.5, 1.0, 182.0)


def test_week_round_visits_the_alarm_and_writes_files(home: Path) -> None:
    settings = fleet_home(home)
    report = plan_week(settings, now=NOW)
    plan = report.plan
    assert report.key == "round-2026-w49" and report.state_ts == STATE_TS
    assert plan.assets[0] == "PS02.P2" and plan.visits["reason"][0].startswith("alarm")
    assert set(report.conditions["asset"]) == {p.name for p in fleet(settings).pumps} >= {"PS01.P1", "PS02.P2"}
    assert set(plan.assets) | set(plan.covered["asset"]) == set(report.conditions["asset"])
    visited = report.conditions.set_index("asset")["last_visit"]
    assert visited["PS01.P1"] == NOW - pd.Timedelta(days=20)
    folder = home / "inspection" / "rounds"
    assert report.paths["csv"] == folder / "round-2026-w49.csv"
    assert pd.read_csv(report.paths["csv"])["asset"].tolist() == plan.assets
    assert pd.read_csv(report.paths["covered"])["asset"].tolist() == list(plan.covered["asset"])
    text = report.paths["markdown"].read_text()
    assert "# Inspection round round-2026-w49" in text and "| 1 | PS02.P2 |" in text and "Covered by the twin" in text


def test_a_visited_alarm_is_remembered_until_it_grows(home: Path) -> None:
    settings = fleet_home(home)
    first = plan_week(settings, now=NOW)
    assert first.plan.assets[0] == "PS02.P2"
    memory = json.loads(first.paths["seen"].read_text())
    assert memory["seen"] == {} and memory["planned"]["PS02.P2"]["ts"] == NOW.isoformat()
    later = NOW + pd.Timedelta(days=8)
    # not visited yet: still an alarm the next week
    assert plan_week(settings, now=later).plan.assets[0] == "PS02.P2"
    visit = [
        {"asset": "PS02.P2", "time": (later + pd.Timedelta(hours=14)).isoformat(), "finding": "ok", "severity": "0"}
    ]
    route_store(settings).append(
        parse_route(pd.DataFrame(visit), ["PS02.P2"], source="v.csv", now=later + pd.Timedelta(days=1))
    )
    report = plan_week(settings, now=later + pd.Timedelta(days=8))
    assert "PS02.P2" not in report.plan.assets  # the same wear a route has just looked at
    row = report.conditions.set_index("asset").loc["PS02.P2"]
    assert row["news"] < 0.5 * row["severity"] and row["seen_severity"] == pytest.approx(row["severity"])
    assert json.loads(report.paths["seen"].read_text())["seen"]["PS02.P2"]


def test_an_unreadable_memory_is_set_aside(home: Path) -> None:
    settings = fleet_home(home)
    folder = home / "inspection" / "rounds"
    folder.mkdir(parents=True)
    (folder / "seen.json").write_text("{not json")
    report = plan_week(settings, now=NOW)
    assert report.plan.assets[0] == "PS02.P2"
    assert (folder / "seen.json.unreadable").read_text() == "{not json"
    assert "PS02.P2" in json.loads((folder / "seen.json").read_text())["planned"]


def test_sensor_flag_makes_a_must_visit(home: Path) -> None:
    settings = fleet_home(home)
    ts = pd.date_range(STATE_TS - pd.Timedelta(hours=1), periods=360, freq="10s", tz="UTC")
    RawStore(settings.raw_dir).write(
        pd.DataFrame({"tag": "PS01.P2.VIB_DE_RMS", "ts": ts, "value": 0.0, "quality": "good"})
    )
    route = [{"asset": "PS01.P2", "time": (STATE_TS - pd.Timedelta(minutes=30)).isoformat(), "point": "DE",
              "direction": "H", "overall": "4.0"}]  # fmt: skip
    route_store(settings).append(parse_route(pd.DataFrame(route), ["PS01.P2"], source="r.csv", now=NOW))
    report = plan_week(settings, now=NOW)
    assert [f.tag for f in report.flags] == ["PS01.P2.VIB_DE_RMS"]
    reasons = dict(zip(report.plan.visits["asset"], report.plan.visits["reason"], strict=True))
    assert reasons["PS01.P2"].startswith("sensor flag")


def test_round_without_a_twin_state(home: Path) -> None:
    settings = Settings(home=home)
    report = plan_week(settings, now=NOW)
    assert report.state_ts is None
    assert set(report.plan.assets) == set(report.conditions["asset"])  # never visited: all overdue
    assert all(r.startswith("overdue") for r in report.plan.visits["reason"])


@pytest.fixture(scope="module")
def harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def test_rounds_flow(harness: None, home: Path) -> None:
    from pumptwin.flows.rounds import rounds

    fleet_home(home)
    out = rounds(now=NOW.isoformat())
    assert out["key"] == "round-2026-w49" and out["visits"][0] == "PS02.P2"
    assert Path(out["paths"]["markdown"]).is_file() and out["hours"] > 0
