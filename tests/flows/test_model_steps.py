"""Features, training and scoring end to end on a short simulated fleet, through the job steps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pumptwin.features.ingest.rawstore import RawStore
from pumptwin.flows.build_features_steps import compute_features, read_fault_labels, store_features
from pumptwin.flows.ingest_steps import write_fault_labels
from pumptwin.flows.score_steps import read_latest_scores, score_fleet
from pumptwin.flows.settings import ModelSettings, Settings
from pumptwin.flows.train_steps import outcomes_markdown, train_family
from pumptwin.plant.scenario import scenario_from_dict
from pumptwin.plant.simulator import Plant

SCENARIO = {
    "version": 1,
    "name": "jobs",
    "start": "2024-03-01T00:00:00Z",
    "duration": "9d",
    "step": "60s",
    "seed": 5,
    "fleet": {"network": "reference", "lines": 1},
    "operations": {"speed": 0.95, "daily_swing": 0.03},
    "faults": [
        {"mode": "bearing_wear", "target": "PS01.P1", "onset": "3d", "failure": "8d", "law": "exponential"},
        {"mode": "impeller_wear", "target": "PS02.P1", "onset": "2d", "failure": "9d"},
    ],
}


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    home = tmp_path_factory.mktemp("home")
    settings = Settings(home=home, models=ModelSettings(autoencoder=False, target_far=0.01))
    plant = Plant(scenario_from_dict(SCENARIO))
    RawStore(settings.raw_dir).write(plant.run())
    write_fault_labels(plant.ground_truth().labels, "jobs", settings)
    return settings


@pytest.fixture(scope="module")
def built(settings: Settings):
    frame = compute_features(settings)
    return frame, store_features(settings, frame)


def test_features_are_checked_stored_and_materialised(settings: Settings, built) -> None:
    frame, build = built
    assert build.pumps == 6 and build.rows == len(frame)
    assert build.stored + len(build.check.quarantined) == build.rows
    assert "Feature build" in build.to_markdown()
    assert len(read_fault_labels(settings)) == 2
    windowed = compute_features(settings, "2024-03-05T00:00:00Z", "2024-03-06T00:00:00Z")
    assert windowed["event_timestamp"].min() >= pd.Timestamp("2024-03-05T00:00:00Z")
    assert windowed["event_timestamp"].max() < pd.Timestamp("2024-03-06T00:00:00Z")
    # the 24 h window is filled from readings before the window start
    assert windowed["running_frac_24h"].notna().all()
    # without a start, a build resumes at the newest stored row instead of redoing the history
    resumed = compute_features(settings)
    assert resumed["event_timestamp"].min() == build.end and resumed["pump_id"].nunique() == 6
    # vibration is judged against the reference stored by the first build, not refitted per window
    assert (settings.feast_dir / "vib_baseline.parquet").is_file()
    both = frame.merge(windowed, on=["pump_id", "event_timestamp"], suffixes=("", "_w"))
    assert len(both) == len(windowed)
    np.testing.assert_allclose(both["vib_de_baseline_ratio"], both["vib_de_baseline_ratio_w"], rtol=1e-9)


def test_training_registers_gates_and_scoring_uses_the_champions(settings: Settings, built) -> None:
    anomaly = train_family(settings, "anomaly")
    assert anomaly.status == "trained", anomaly.reason
    assert anomaly.decision == "promoted" and anomaly.champion == anomaly.version == "1"
    again = train_family(settings, "anomaly")  # same data, same seed: not better, champion kept
    assert again.decision == "rejected" and again.champion == "1"
    diagnosis = train_family(settings, "diagnosis")
    assert diagnosis.status == "trained", diagnosis.reason
    ttf = train_family(settings, "ttf")
    assert ttf.status in {"trained", "skipped"}
    assert "| anomaly |" in outcomes_markdown([anomaly, again, diagnosis, ttf])

    report = score_fleet(settings)
    scores = read_latest_scores(settings)
    assert scores is not None and len(scores) == 6
    assert set(report.versions) >= {"anomaly", "diagnosis"}
    assert scores["anomaly_score"].notna().any()
    assert any(c.startswith("p_") for c in scores.columns)
    assert "anomaly:v1" in scores["model_version"].iloc[0]
    assert report.path is not None and report.path.is_file()


def test_the_prefect_flows_run_the_same_steps(settings: Settings, built, monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.testing.utilities import prefect_test_harness

    from pumptwin.flows.build_features import build_features
    from pumptwin.flows.score import score
    from pumptwin.flows.train import train

    monkeypatch.setenv("PUMPTWIN_HOME", str(settings.home))
    monkeypatch.setenv("PUMPTWIN_MODELS__AUTOENCODER", "false")
    with prefect_test_harness(server_startup_timeout=120):
        summary = build_features(start=pd.Timestamp("2024-03-08T00:00:00Z").to_pydatetime())
        outcomes = train(families=["diagnosis"])
        scored = score()
    assert summary["pumps"] == 6 and summary["start"].startswith("2024-03-08")
    assert outcomes[0]["family"] == "diagnosis" and outcomes[0]["status"] == "trained"
    assert scored["pumps"] == 6 and "diagnosis" in scored["versions"]


def test_only_faults_that_have_failed_label_the_training_set() -> None:
    from pumptwin.flows.train_steps import known_fault_labels

    labels = pd.DataFrame(
        {
            "asset": ["PS01.P1", "PS02.P1"],
            "mode": ["bearing_wear", "impeller_wear"],
            "onset_ts": pd.to_datetime(["2024-03-03", "2024-03-02"], utc=True),
            "failure_ts": pd.to_datetime(["2024-03-08", "2024-03-20"], utc=True),
        }
    )
    known = known_fault_labels(labels, pd.Timestamp("2024-03-09", tz="UTC"))
    assert known["asset"].tolist() == ["PS01.P1"]  # PS02.P1 has not failed by the end of the data
    assert known_fault_labels(labels, pd.Timestamp("2024-03-01", tz="UTC")).empty
    assert known_fault_labels(labels.iloc[:0], pd.Timestamp("2024-03-09", tz="UTC")).empty


def test_repairs_and_replacements_restart_a_pumps_baseline() -> None:
    from pumptwin.flows.train_steps import pump_restarts

    records = pd.DataFrame(
        {
            "asset": ["PS01.P1", "PS01.P2", "PS02.P1"],
            "ts": ["2024-03-05T00:00:00Z", "2024-03-06T00:00:00Z", "2024-03-07T00:00:00Z"],
            "action": ["Repair", "inspect", "replace"],
        }
    )
    restarts = pump_restarts(records)
    assert restarts["pump_id"].tolist() == ["PS01.P1", "PS02.P1"]
    assert restarts["ts"].iloc[0] == pd.Timestamp("2024-03-05", tz="UTC")
    assert pump_restarts(None).empty and pump_restarts(records.drop(columns="action")).empty


def test_false_alarm_labels_become_windows_confirmed_healthy(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    from pumptwin.control.approval import FALSE_ALARMS_FILE
    from pumptwin.flows.train_steps import healthy_windows

    settings = Settings(home=tmp_path, models=ModelSettings(false_alarm_window_s=7200.0))
    assert healthy_windows(settings).empty  # no labels yet
    settings.labels_dir.mkdir(parents=True, exist_ok=True)
    (settings.labels_dir / FALSE_ALARMS_FILE).write_text(
        "asset,ts,mode,request,approver\n"
        "PS01.P1,2024-03-05T10:00:00+00:00,bearing_wear,req-1,ana\n"
        "LINE01,2024-03-05T10:00:00+00:00,leak,req-1,ana\n"
        "PS01.P2,not a time,vibration,req-2,ana\n",
        encoding="utf-8",
    )
    windows = healthy_windows(settings)
    assert "1 row(s) without a readable ts left out" in caplog.text
    assert list(windows["pump_id"]) == ["PS01.P1"]
    assert windows["start"].iloc[0] == pd.Timestamp("2024-03-05T10:00:00Z")
    assert windows["end"].iloc[0] - windows["start"].iloc[0] == pd.Timedelta(hours=2)
    (settings.labels_dir / FALSE_ALARMS_FILE).write_text(
        "asset,ts,mode,request,approver,until\n"
        "PS01.P1,2024-03-05T10:00:00+00:00,bearing_wear,req-1,ana,2024-03-06T16:00:00+00:00\n"
        "PS01.P2,2024-03-05T10:00:00+00:00,vibration,req-2,ana,2024-03-05T11:00:00+00:00\n"
        "PS01.P3,2024-03-05T10:00:00+00:00,vibration,req-3,ana,\n"
        "PS02.P1,2024-03-05T10:00:00+00:00,vibration,req-4,ana,not a time\n",
        encoding="utf-8",
    )
    ends = healthy_windows(settings).set_index("pump_id")["end"] - pd.Timestamp("2024-03-05T10:00:00Z")
    # seen healthy for 30 h: all of it; for 1 h, or unknown: the configured 2 h
    assert ends.to_dict() == {
        p: pd.Timedelta(hours=h) for p, h in (("PS01.P1", 30), ("PS01.P2", 2), ("PS01.P3", 2), ("PS02.P1", 2))
    }
    (settings.labels_dir / FALSE_ALARMS_FILE).write_text("who,when\nana,yesterday\n", encoding="utf-8")
    assert healthy_windows(settings).empty
    assert "lack the columns asset and ts" in caplog.text
