"""The feedback flow on a simulated plant: an action implemented through the interlocks, the readings after it
ingested, the outcome evaluated against the prediction, labels written once, and a retraining's lineage.

The plant is the ``developing_faults`` scenario (PS01.P1's bearing is the asset at risk). The action
slows PS01.P1 from its running speed to `TARGET` through `Interlocked`, with the audit log's
records as the implement flow writes them (recommendation, decision, writes, readbacks, verified,
done). The controller's readings (`SimulatedController.take_readings`) go to the raw store through
the ingest steps, as a file source.
"""

from __future__ import annotations

import csv
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pytest

from pumptwin.control.approval import FALSE_ALARMS_FILE, ApprovalRequest, Decision, Requests, append_labels
from pumptwin.control.audit import AuditLog
from pumptwin.control.interface import Write
from pumptwin.control.interlocks import Expectation, Interlocked, InterlockSettings
from pumptwin.control.outcome import ACTION_OUTCOMES_FILE, CONFIRMED_FAULTS_FILE
from pumptwin.control.simulated import SimulatedController
from pumptwin.flows.build_features_steps import read_fault_labels
from pumptwin.flows.ingest_steps import read_source, store_source
from pumptwin.flows.settings import Settings
from pumptwin.flows.train_steps import MAINTENANCE_FILE

PUMP = "PS01.P1"
TARGET = 0.915
WINDOW_S = 1200.0
SETTLE_S = 120.0
REQUEST = "line1-20240301t001000000000z-feedback01"
SINCE = "2024-03-01T00:10:00+00:00"
TAGS = (f"{PUMP}.FLOW", f"{PUMP}.DISCH_PRESS")


@dataclass(frozen=True)
class Loop:
    """An action implemented on the simulated plant: its audit log and every reading of the plant."""

    audit: Path
    readings: pd.DataFrame
    expect: tuple[Expectation, ...]


def run_loop(folder: Path, warmup_s: float) -> Loop:
    """Run the plant ``warmup_s``, slow PS01.P1 through the interlocks, then run past the verification window."""
    ctl = SimulatedController.from_scenario("developing_faults")
    ctl.wait(warmup_s)
    now = ctl.speed_setpoint(PUMP)
    seen = ctl.read(list(TAGS))
    log = AuditLog(folder / "audit.jsonl")
    created = pd.Timestamp.now(tz="UTC")
    request = ApprovalRequest(
        id=REQUEST,
        line=1,
        action=f"{PUMP} speed {TARGET}",
        kind="setpoint",
        setpoints={PUMP: TARGET},
        numbers={},
        pumps=(PUMP, "PS01.P2"),
        assets=(PUMP,),
        created=created,
        expires=created + pd.Timedelta(hours=1),
    )
    alert = f"WARNING {PUMP} thermal_drift_de = 2.1 degC (alarm at 1.5) since {SINCE} [physics-1]"
    log.append("recommendation", REQUEST, "recommend", request.action, why=alert, data=request.to_dict())
    assert Requests(log).decide(request, Decision(True, "auto-implement"))
    # what the twin would predict: the pump's flow by the affinity law, its discharge header as now
    flow, press = seen[TAGS[0]], seen[TAGS[1]]
    expect = (Expectation(TAGS[0], flow * TARGET / now, 0.2 * flow), Expectation(TAGS[1], press, 0.1 * press))
    lock = Interlocked(
        ctl, ctl.ranges(), InterlockSettings(settle_s=SETTLE_S), audit=log, request=REQUEST, who="auto-implement"
    )
    result = lock.implement([Write(PUMP, "speed", TARGET)], expect=list(expect))
    assert result.status == "done", result.message
    ctl.wait(WINDOW_S + 600.0)
    return Loop(log.path, ctl.take_readings(), expect)


@pytest.fixture(scope="module")
def harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="module")
def short_loop(tmp_path_factory: pytest.TempPathFactory) -> Loop:
    return run_loop(tmp_path_factory.mktemp("loop"), 1800.0)


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    with mock.patch.dict(os.environ):
        monkeypatch.setenv("PUMPTWIN_HOME", str(home))
        monkeypatch.setenv("PUMPTWIN_CONTROL_SETTLE_S", str(SETTLE_S))
        yield home


def start(home: Path, loop: Loop) -> Settings:
    (home / "control").mkdir(parents=True)
    shutil.copy(loop.audit, home / "control" / "audit.jsonl")
    return Settings(home=home)


def ingest(settings: Settings, readings: pd.DataFrame, name: str) -> None:
    path = settings.home / f"{name}.parquet"
    readings.to_parquet(path, index=False)
    report = store_source(read_source(str(path), settings), settings)
    assert report.summary.stored > 0


def arrival(readings: pd.DataFrame) -> pd.Timestamp:
    """When PS01.P1's setpoint tag first reads its final value (worked out here from the readings alone)."""
    sp = readings[(readings["tag"] == f"{PUMP}.SPEED_SP") & (readings["quality"] == "good")].sort_values("ts")
    return pd.Timestamp(sp.loc[sp["value"] == sp["value"].iloc[-1], "ts"].iloc[0])


def artifact(key: str) -> str:
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    assert found, f"no artifact {key}"
    newest = max(found, key=lambda a: str(a.created))  # ISO times order as text
    return str(newest.data)


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def check_outcome(outcome: dict, loop: Loop, at: pd.Timestamp) -> None:
    """The outcome's window follows the setpoint change; its observed values are the window's medians."""
    assert outcome["request"] == REQUEST and outcome["verdict"] == "confirmed", outcome
    assert outcome["implemented_at"] == at.isoformat()
    opens = at + pd.Timedelta(seconds=SETTLE_S)
    assert outcome["window_start"] == opens.isoformat()
    assert outcome["window_end"] == (opens + pd.Timedelta(seconds=WINDOW_S)).isoformat()
    readings = loop.readings
    window = readings[(readings["ts"] >= opens) & (readings["ts"] < opens + pd.Timedelta(seconds=WINDOW_S))]
    for check, e in zip(outcome["checks"], loop.expect, strict=True):
        good = window[(window["tag"] == e.tag) & (window["quality"] == "good")]["value"]
        assert check["tag"] == e.tag and check["predicted"] == pytest.approx(e.value)
        assert check["observed"] == pytest.approx(float(np.median(good))) and check["readings"] == len(good)
    effect = outcome["effects"][0]
    assert effect["tag"] == f"{PUMP}.BRG_DE_TEMP" and effect["before_per_h"] is not None


def check_report(outcome: dict, at: pd.Timestamp) -> None:
    """The outcome's report is a knowledge document the recommender can retrieve and cite."""
    from pumptwin.agents.documents import load_documents

    (doc,) = load_documents([Path(outcome["report"]).parent]).documents
    assert doc.meta["doc_type"] == "outcome" and doc.meta["assets"] == [PUMP]
    assert doc.meta["failure_modes"] == ["bearing_wear"] and doc.meta["date"] == at.strftime("%Y-%m-%d")
    assert "Verdict: confirmed, the plant responded as the twin predicted" in doc.content
    assert f"{PUMP}.BRG_DE_TEMP trend" in doc.content


def test_outcome_is_recorded_once_with_its_labels(harness: None, home: Path, short_loop: Loop) -> None:
    from pumptwin.flows.feedback import feedback

    settings = start(home, short_loop)
    at = arrival(short_loop.readings)
    readings = short_loop.readings
    ingest(settings, readings[readings["ts"] < at + pd.Timedelta(minutes=10)], "first")

    waiting = feedback(window_s=WINDOW_S, retrain=False, recalibrate=False)
    assert waiting["outcomes"] == [] and waiting["training"] is None and waiting["recalibration"] is None
    (pending,) = waiting["pending"]
    assert pending["request"] == REQUEST and pending["implemented_at"] == at.isoformat()
    assert "raw store ends before" in pending["reason"]
    assert not (settings.labels_dir / ACTION_OUTCOMES_FILE).exists()

    ingest(settings, readings[readings["ts"] >= at + pd.Timedelta(minutes=10)], "rest")
    work_order = at + pd.Timedelta(hours=1)
    settings.labels_dir.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "asset": [PUMP, "PS02.P1"],
            "ts": [work_order.isoformat()] * 2,
            "action": ["inspect"] * 2,
            "mode": ["bearing_wear", ""],
        }
    ).to_csv(settings.labels_dir / MAINTENANCE_FILE, index=False)

    done = feedback(window_s=WINDOW_S, retrain=False, recalibrate=False)
    (outcome,) = done["outcomes"]
    check_outcome(outcome, short_loop, at)
    assert done["labels"] == {"outcome_rows": 1, "outcomes": 1, "confirmed": 1, "false_alarms": 0}
    assert done["message"].startswith("1 new outcome (1 confirmed)") and f"{PUMP}.BRG_DE_TEMP trend" in done["message"]

    assert f"## `{REQUEST}`: confirmed" in artifact("feedback")

    log = AuditLog(home / "control" / "audit.jsonl")
    (record,) = log.records(request=REQUEST, kind="outcome")
    assert record.who == "feedback" and record.seq == outcome["seq"] and record.hash == outcome["hash"]
    assert record.before == {e.tag: pytest.approx(e.value) for e in short_loop.expect}
    assert record.after == {c["tag"]: pytest.approx(c["observed"]) for c in outcome["checks"]}
    assert record.data["implementation"]["seq"] == log.records(request=REQUEST, kind="done")[0].seq
    (label,) = log.records(request=REQUEST, kind="label")
    assert label.data["label"] == "confirmed" and label.data["asset"] == PUMP
    assert log.verify() == len(log.records())

    (row,) = rows(settings.labels_dir / ACTION_OUTCOMES_FILE)
    assert row["asset"] == PUMP and row["verdict"] == "confirmed" and row["request"] == REQUEST
    check_report(outcome, at)
    assert row["ts"] == at.isoformat() and row["tag"] == f"{PUMP}.BRG_DE_TEMP"
    faults = pd.read_parquet(settings.labels_dir / CONFIRMED_FAULTS_FILE)
    assert faults[["asset", "mode", "request"]].values.tolist() == [[PUMP, "bearing_wear", REQUEST]]
    assert faults["onset_ts"].iloc[0] == pd.Timestamp(SINCE) and faults["failure_ts"].iloc[0] == work_order
    known = read_fault_labels(settings)  # training reads it as a fault record
    assert ((known["asset"] == PUMP) & (known["mode"] == "bearing_wear")).sum() == 1

    before = (home / "control" / "audit.jsonl").read_bytes(), (settings.labels_dir / ACTION_OUTCOMES_FILE).read_bytes()
    again = feedback(window_s=WINDOW_S, retrain=False, recalibrate=False)
    assert again["outcomes"] == [] and again["pending"] == []
    assert again["labels"] == {"outcome_rows": 0, "outcomes": 0, "confirmed": 0, "false_alarms": 0}
    after = (home / "control" / "audit.jsonl").read_bytes(), (settings.labels_dir / ACTION_OUTCOMES_FILE).read_bytes()
    assert after == before
    assert len(pd.read_parquet(settings.labels_dir / CONFIRMED_FAULTS_FILE)) == 1


@pytest.mark.slow
def test_retraining_names_the_outcomes_it_learnt_from(
    harness: None, home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from mlflow import MlflowClient

    from pumptwin.flows.build_features_steps import compute_features, store_features
    from pumptwin.flows.feedback import feedback
    from pumptwin.flows.feedback_steps import labels_digest

    monkeypatch.setenv("PUMPTWIN_MODELS__AUTOENCODER", "false")
    loop = run_loop(tmp_path_factory.mktemp("long"), 3 * 86_400.0)  # three days: enough for an anomaly baseline
    settings = start(home, loop)
    ingest(settings, loop.readings, "all")
    store_features(settings, compute_features(settings))
    # a rejection as a false alarm from earlier: its rows are learnt as healthy
    append_labels(
        settings.labels_dir / FALSE_ALARMS_FILE,
        [{"asset": "PS01.P2", "ts": "2024-03-02T12:00:00+00:00", "mode": "", "request": "R0", "approver": "a.smith"}],
    )

    out = feedback(window_s=WINDOW_S, retrain=True, recalibrate=True)
    (outcome,) = out["outcomes"]
    assert outcome["verdict"] == "confirmed"
    assert out["recalibration"] is not None and out["recalibration"]["updated"]
    trained = [t for t in out["training"] if t["status"] == "trained"]
    assert [t["family"] for t in trained] == ["anomaly"], out["training"]
    log = AuditLog(home / "control" / "audit.jsonl")
    head = log.records()[-1]
    tags = MlflowClient(settings.mlflow_tracking_uri).get_run(trained[0]["run_id"]).data.tags
    assert tags["pumptwin.lineage.source"] == "feedback"
    assert tags["pumptwin.lineage.outcome_records"] == f"{outcome['seq']}:{outcome['hash']}"
    assert tags["pumptwin.lineage.requests"] == REQUEST
    assert tags["pumptwin.lineage.audit_head"] == f"{head.seq}:{head.hash}"
    assert tags["pumptwin.lineage.labels_digest"] == labels_digest(settings)
    assert tags["pumptwin.lineage.audit_log"] == str(log.path)
    metrics = MlflowClient(settings.mlflow_tracking_uri).get_run(trained[0]["run_id"]).data.metrics
    assert metrics["healthy_windows"] == 1.0
    # the same data again: nothing new, so no retraining
    again = feedback(window_s=WINDOW_S, retrain=True, recalibrate=False)
    assert again["outcomes"] == [] and again["training"] is None


def test_a_false_alarm_stands_until_a_finding_contradicts_it(home: Path) -> None:
    from pumptwin.flows.feedback_steps import confirm_faults, lineage

    settings = Settings(home=home)
    log = AuditLog(home / "control" / "audit.jsonl")
    created = pd.Timestamp("2026-12-01T00:00:00Z")
    request = ApprovalRequest(
        "R9", 1, "slow P2", "setpoint", {"PS01.P2": 0.9}, {}, ("PS01.P2",), ("PS01.P2",), created, created
    )
    alert = f"WARNING PS01.P2 p_seal_failure = 0.7 - (alarm at 0.5) since {SINCE} [diagnosis:v1]"
    log.append("recommendation", "R9", "recommend", request.action, why=alert, data=request.to_dict())
    assert Requests(log).decide(request, Decision(False, "a.smith", reason="false alarm"))

    (stands,) = confirm_faults(settings)
    assert stands["label"] == "false_alarm" and stands["asset"] == "PS01.P2" and stands["mode"] == "seal_failure"
    assert confirm_faults(settings) == []  # recorded once
    assert not (settings.labels_dir / CONFIRMED_FAULTS_FILE).exists()  # a false alarm is no fault record

    settings.labels_dir.mkdir(parents=True)
    pd.DataFrame(
        {"asset": ["PS01.P2"], "ts": ["2024-03-03T00:00:00Z"], "action": ["repair"], "mode": ["seal_failure"]}
    ).to_csv(settings.labels_dir / MAINTENANCE_FILE, index=False)
    (confirmed,) = confirm_faults(settings)
    assert confirmed["label"] == "confirmed" and confirmed["work_order_ts"] == "2024-03-03T00:00:00+00:00"
    faults = pd.read_parquet(settings.labels_dir / CONFIRMED_FAULTS_FILE)
    assert faults[["asset", "mode", "request"]].values.tolist() == [["PS01.P2", "seal_failure", "R9"]]
    assert confirm_faults(settings) == []
    tags = lineage(settings, [], [stands, confirmed])
    assert tags["label_records"] == f"{stands['seq']}:{stands['hash']},{confirmed['seq']}:{confirmed['hash']}"
    assert tags["requests"] == "R9" and "outcome_records" not in tags
    assert [r.data["label"] for r in log.records(request="R9", kind="label")] == ["false_alarm", "confirmed"]
