"""pumptwin against real servers: each piece moved to its service by settings alone.

PostgreSQL and Redis from the system's packages, an MLflow tracking server on PostgreSQL with its
artifacts on an S3-compatible server (moto_server), a Prefect server on PostgreSQL, and Feast with
its registry on PostgreSQL and its online store on Redis. The settings come from `PUMPTWIN_*`
environment variables only, as in production; nothing else in pumptwin's code changes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pumptwin.features.ingest.rawstore import RawStore
from pumptwin.features.store import offline_path
from pumptwin.flows.build_features_steps import compute_features, store_features
from pumptwin.flows.ingest_steps import write_fault_labels
from pumptwin.flows.score_steps import latest_features
from pumptwin.flows.settings import Settings
from pumptwin.flows.store_steps import feature_store
from pumptwin.flows.train_steps import FAMILIES, train_family
from pumptwin.plant.scenario import scenario_from_dict
from pumptwin.plant.simulator import Plant
from tests.infra import servers
from tests.infra.conftest import MLFLOW_BUCKET, MLFLOW_DATABASE, PREFECT_DATABASE

pytestmark = pytest.mark.integration

FEAST_DATABASE = "feast"
RAW_BUCKET = "pumptwin-raw"
SCENARIO = {
    "version": 1,
    "name": "services",
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
CSV = """tag,ts,value,quality
PS01.P1.VIB_DE_RMS,2026-11-01T00:00:00Z,2.1,good
PS01.P1.VIB_DE_RMS,2026-11-01T00:01:00Z,2.2,good
PS01.P1.BRG_DE_TEMP,2026-11-01T00:00:00Z,55.0,good
"""


def _fetch(postgres: servers.PostgresServer, database: str, query: str) -> list[tuple[object, ...]]:
    import psycopg2  # noqa: PLC0415

    conn = psycopg2.connect(
        host=postgres.host, port=postgres.port, user=postgres.user, password=postgres.password, dbname=database
    )
    try:
        with conn.cursor() as cur:
            cur.execute(query)
            return list(cur.fetchall())
    finally:
        conn.close()


@pytest.fixture(scope="module")
def service_env(
    tmp_path_factory: pytest.TempPathFactory,
    postgres: servers.PostgresServer,
    redis_server: servers.RedisServer,
    mlflow_server: servers.MlflowServer,
) -> Iterator[dict[str, str]]:
    """The `PUMPTWIN_*` variables of a production deployment, set for the module."""
    postgres.create_database(FEAST_DATABASE)
    env = {
        "PUMPTWIN_HOME": str(tmp_path_factory.mktemp("services-home")),
        "PUMPTWIN_MLFLOW_TRACKING_URI": mlflow_server.url,
        "PUMPTWIN_FEAST_ONLINE_STORE": redis_server.url,
        "PUMPTWIN_FEAST_REGISTRY": postgres.url(FEAST_DATABASE),
        "PUMPTWIN_MODELS__AUTOENCODER": "false",
        "PUMPTWIN_MODELS__TARGET_FAR": "0.01",
    }
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        yield env


@pytest.fixture(scope="module")
def settings(service_env: dict[str, str]) -> Settings:
    """Settings from the environment, with a short simulated fleet's readings and labels stored."""
    settings = Settings()
    plant = Plant(scenario_from_dict(SCENARIO))
    RawStore(settings.raw_dir).write(plant.run())
    write_fault_labels(plant.ground_truth().labels, "services", settings)
    return settings


@pytest.fixture(scope="module")
def built(settings: Settings) -> pd.DataFrame:
    """Features computed, written offline, registered on PostgreSQL and materialised to Redis."""
    frame = compute_features(settings)
    build = store_features(settings, frame)
    assert build.stored > 0
    return frame


def test_settings_point_every_piece_at_its_service(settings: Settings, service_env: dict[str, str]) -> None:
    assert settings.mlflow_tracking_uri == service_env["PUMPTWIN_MLFLOW_TRACKING_URI"]
    assert settings.feast.online_store == service_env["PUMPTWIN_FEAST_ONLINE_STORE"]
    assert settings.feast.registry == service_env["PUMPTWIN_FEAST_REGISTRY"]
    store = feature_store(settings)
    assert store.config.online_store.type == "redis"
    assert store.config.registry.path.startswith("postgresql")


def test_feast_registry_on_postgres_and_online_store_on_redis(
    settings: Settings, built: pd.DataFrame, postgres: servers.PostgresServer, redis_server: servers.RedisServer
) -> None:
    import redis  # noqa: PLC0415

    # The definitions live in PostgreSQL: a store in another, empty folder sees them.
    query = "SELECT feature_view_name FROM feature_views WHERE project_id = 'pumptwin'"
    views = _fetch(postgres, FEAST_DATABASE, query)
    assert len(views) >= 2
    fresh = Settings(home=settings.home / "elsewhere")
    assert {v.name for v in feature_store(fresh).list_feature_views()} == {str(v[0]) for v in views}
    # The online rows live in Redis: one hash per pump of the project.
    client = redis.Redis.from_url(redis_server.url)
    pumps = sorted(built["pump_id"].unique())
    assert client.dbsize() >= len(pumps)
    # and `online_features` reads them back: each pump's newest offline row.
    online = latest_features(settings, "anomaly_detector", [*pumps, "PS99.P9"]).set_index("pump_id")
    offline = pd.read_parquet(offline_path(settings.feast_dir))
    newest = offline.sort_values("event_timestamp").groupby("pump_id").tail(1).set_index("pump_id")
    for column in ("head_residual_m", "flow_m3h_mean_1h"):
        got, want = online.loc[pumps, column].to_numpy(), newest.loc[pumps, column].to_numpy()
        assert pd.notna(got).sum() >= len(pumps) // 2, column
        np.testing.assert_allclose(got, want, rtol=1e-9, equal_nan=True)
    assert pd.isna(online.loc["PS99.P9", "head_residual_m"])
    client.flushdb()
    emptied = latest_features(settings, "anomaly_detector", pumps)
    assert emptied["flow_m3h_mean_1h"].isna().all()
    store_features(settings, built)  # load Redis again for the other tests


@pytest.fixture(scope="module")
def trained(settings: Settings, built: pd.DataFrame) -> Any:  # noqa: ANN401 - flows.train_steps.FamilyOutcome
    """The anomaly family trained, logged and registered through the MLflow server."""
    return train_family(settings, "anomaly")


def test_mlflow_server_on_postgres_registers_the_champion(
    trained: Any,  # noqa: ANN401
    mlflow_server: servers.MlflowServer,
    postgres: servers.PostgresServer,
) -> None:
    from mlflow import MlflowClient  # noqa: PLC0415

    assert trained.status == "trained", trained.reason
    assert trained.decision == "promoted" and trained.champion == trained.version
    name = FAMILIES["anomaly"][1]
    client = MlflowClient(tracking_uri=mlflow_server.url, registry_uri=mlflow_server.url)
    champion = client.get_model_version_by_alias(name, "champion")
    assert champion.version == trained.version and champion.run_id == trained.run_id
    # The server keeps runs and the registry in PostgreSQL.
    assert _fetch(postgres, MLFLOW_DATABASE, f"SELECT status FROM runs WHERE run_uuid = '{trained.run_id}'") == [
        ("FINISHED",)
    ]
    query = f"SELECT alias, version FROM registered_model_aliases WHERE name = '{name}'"
    aliases = _fetch(postgres, MLFLOW_DATABASE, query)
    assert aliases == [("champion", int(trained.version))]


def test_mlflow_artifacts_are_objects_in_the_bucket(
    trained: Any,  # noqa: ANN401
    mlflow_server: servers.MlflowServer,
    s3: servers.S3Server,
) -> None:
    from mlflow import MlflowClient  # noqa: PLC0415

    client = MlflowClient(tracking_uri=mlflow_server.url)
    run = client.get_run(trained.run_id)
    location = client.get_experiment(run.info.experiment_id).artifact_location
    keys = [
        o["Key"]
        for page in s3.client().get_paginator("list_objects_v2").paginate(Bucket=MLFLOW_BUCKET)  # type: ignore[attr-defined]
        for o in page.get("Contents", [])
    ]
    assert location.startswith("mlflow-artifacts:"), location
    assert any(trained.run_id in key for key in keys), keys[:20]
    assert any(key.endswith("MLmodel") for key in keys), keys[:20]


def test_prefect_flow_runs_on_the_server(
    tmp_path: Path, prefect_server: servers.PrefectServer, postgres: servers.PostgresServer
) -> None:
    csv = tmp_path / "readings.csv"
    csv.write_text(CSV)
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PUMPTWIN_"))}
    env.update(
        {
            "PUMPTWIN_HOME": str(home),
            "PUMPTWIN_PREFECT_API_URL": prefect_server.api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
    )
    # An entry point: settings first (they set Prefect's API from PUMPTWIN_PREFECT_API_URL), then the flow.
    code = (
        "import json\n"
        "from pumptwin.flows.settings import get_settings\n"
        "get_settings()\n"
        "from pumptwin.flows.ingest import ingest\n"
        f"print(json.dumps(ingest(source={str(csv)!r})))\n"
    )
    done = subprocess.run(  # noqa: S603 - the test's own interpreter
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=240, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["stored"] == 3
    assert len(RawStore(home / "raw").read()) == 3

    from prefect.client.orchestration import SyncPrefectClient  # noqa: PLC0415
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName  # noqa: PLC0415

    with SyncPrefectClient(prefect_server.api_url) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["ingest"])))
    assert runs and runs[0].state is not None and runs[0].state.is_completed()
    # The run is in the server's PostgreSQL database.
    rows = _fetch(postgres, PREFECT_DATABASE, f"SELECT state_type FROM flow_run WHERE id = '{runs[0].id}'")
    assert rows == [("COMPLETED",)]


def test_raw_store_replica_on_object_storage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3: servers.S3Server
) -> None:
    from pumptwin.features.ingest.objectstore import pull  # noqa: PLC0415
    from pumptwin.flows.ingest_steps import read_source, store_source  # noqa: PLC0415

    s3.create_bucket(RAW_BUCKET)
    for name, value in servers.S3_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PUMPTWIN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PUMPTWIN_STORAGE_RAW_URL", f"s3://{RAW_BUCKET}/raw")
    monkeypatch.setenv("PUMPTWIN_STORAGE_ENDPOINT_URL", s3.endpoint_url)
    settings = Settings()
    csv = tmp_path / "readings.csv"
    csv.write_text(CSV)
    report = store_source(read_source(str(csv), settings), settings)
    assert report.summary.stored == 3
    assert report.replica is not None and not report.replica.behind, report.replica
    keys = {o["Key"] for o in s3.client().list_objects_v2(Bucket=RAW_BUCKET).get("Contents", [])}  # type: ignore[attr-defined]
    assert "raw/_watermarks.json" in keys
    assert any(k.startswith("raw/station=PS01/date=2026-11-01/") and k.endswith(".parquet") for k in keys), keys
    # Another machine pulls the replica into an empty folder and reads the same rows.
    pull(settings.storage.raw_url or "", tmp_path / "pulled", endpoint_url=settings.storage.endpoint_url)
    local = RawStore(settings.raw_dir).read().sort_values(["tag", "ts"]).reset_index(drop=True)
    pulled = RawStore(tmp_path / "pulled").read().sort_values(["tag", "ts"]).reset_index(drop=True)
    assert len(pulled) == 3
    pd.testing.assert_frame_equal(pulled, local)
