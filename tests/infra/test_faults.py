"""Services that stop mid-flow, met as an operator would: retries, then a clear failure; a re-run does it once.

Each test starts private servers (`tests.infra.servers`) so that stopping them touches no other test:

- the MLflow tracking server stops while a model is logged, and again while it is gated: the
  champion alias stays on the previous version, and after a restart the re-run leaves exactly one
  new version (the interrupted registration is whole or absent; an ungated version is reused);
- the PostgreSQL under the MLflow server stops during the gate: the same;
- the PostgreSQL under the Prefect API stops while a flow runs: the run fails with the API's
  error, the rows it stored stay, and a re-run after the restart completes once without storing
  any row twice.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from pumptwin.features.ingest.rawstore import RawStore
from pumptwin.models import registry
from pumptwin.models.registry import (
    Lineage,
    Tracking,
    champion_version,
    log_training_run,
    open_client,
    promote_if_better,
)
from tests.infra import servers

pytestmark = [pytest.mark.integration, pytest.mark.slow]

T0 = datetime(2026, 1, 1, tzinfo=UTC)
MLFLOW_RETRIES = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}
FAIL_WITHIN_S = 90.0
"""How long a request to a stopped service may take to fail, retries included, s."""


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    """This module's folder for server data and stores, removed at its end.

    Not under pytest's `tmp_path`: pytest removes older session folders when other sessions
    start, and a server whose data folder vanished keeps running but can no longer be stopped.
    """
    folder = Path(tempfile.mkdtemp(prefix="pumptwin-faults-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def tmp(workdir: Path, request: pytest.FixtureRequest) -> Path:
    """A folder of the test's own inside `workdir`."""
    folder = workdir / request.node.name
    folder.mkdir()
    return folder


@pytest.fixture(scope="module")
def postgres(workdir: Path) -> Iterator[servers.PostgresServer]:
    """A PostgreSQL cluster of this module's own (tests here stop it)."""
    if servers.postgres_bin_dir() is None:
        pytest.skip("PostgreSQL is not installed (no initdb/pg_ctl under /usr/lib/postgresql or on PATH)")
    server = servers.start_postgres(workdir / "postgres-cluster")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def mlflow_server(postgres: servers.PostgresServer, workdir: Path) -> Iterator[servers.MlflowServer]:
    """An MLflow server of this module's own on its PostgreSQL, artifacts proxied to a local folder."""
    if not (servers.BIN_DIR / "mlflow").exists():
        pytest.skip(f"mlflow is not installed in {servers.BIN_DIR}")
    root = workdir / "mlflow-server"
    postgres.create_database("mlflow_faults")
    with servers.start_mlflow(root, postgres.url("mlflow_faults"), str(root / "artifacts"), None) as server:
        yield server


@pytest.fixture
def mlflow_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow's client retries a refused or failing request twice (1 s, 2 s) instead of seven times."""
    for name, value in MLFLOW_RETRIES.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(7)
    x = pd.DataFrame(rng.normal(size=(200, 2)), columns=["a", "b"])
    return x, (x["a"] + 0.5 * x["b"] > 0).astype(int).to_numpy()


def train(tracking: Tracking, data: tuple[pd.DataFrame, np.ndarray], c: float, name: str) -> registry.TrainedRun:
    """One training of the family, as the train step logs it (same data, so a retry has the same key)."""
    x, y = data
    return log_training_run(
        tracking,
        experiment="faults",
        model=LogisticRegression(C=c).fit(x, y),
        params={"C": c},
        metrics={"accuracy": 0.9},
        plots={},
        lineage=Lineage(
            feature_service="pump_health_v1",
            feature_views=("pump_stats",),
            train_start=T0,
            train_end=T0 + timedelta(days=7),
            holdout_start=T0 + timedelta(days=7),
            holdout_end=T0 + timedelta(days=9),
            train_rows=150,
            holdout_rows=50,
            dataset_digest="sha256:faults",
            code_version="0123abcd",
        ),
        input_example=x.head(3),
        registered_name=name,
        pip_requirements=["scikit-learn"],
    )


def gate(
    tracking: Tracking,
    data: tuple[pd.DataFrame, np.ndarray],
    version: int,
    name: str,
    during: Callable[[], None] | None = None,
) -> registry.PromotionDecision:
    """The promotion gate; `during` runs while the challenger is scored (a service then stops)."""
    x, y = data

    def accuracy(model: Any) -> float:  # noqa: ANN401
        if during is not None:
            during()
        return float((model.predict(x) == y).mean()) + 0.01 * (1.0 - model.C)  # smaller C wins ties

    return promote_if_better(
        tracking, name, version, evaluate=accuracy, metric="accuracy", higher_is_better=True, window="w"
    )


def versions(tracking: Tracking, name: str) -> list[int]:
    return sorted(int(mv.version) for mv in open_client(tracking).search_model_versions(f"name = '{name}'"))


def champion(tracking: Tracking, name: str) -> int | None:
    found = champion_version(tracking, name)
    return None if found is None else found.version


def fails_clearly(action: Callable[[], object], *names: str) -> str:
    """Run `action`, which must fail within `FAIL_WITHIN_S` with a message naming each of `names`."""
    started = time.monotonic()
    with pytest.raises(Exception) as caught:  # noqa: PT011 - the message is what is checked
        action()
    elapsed = time.monotonic() - started
    message = str(caught.value)
    assert elapsed < FAIL_WITHIN_S, f"took {elapsed:.0f} s to fail: {message[:300]}"
    for name in names:
        assert name in message, message[:600]
    return message


@pytest.mark.usefixtures("mlflow_retries")
def test_the_mlflow_server_stops_mid_training(
    mlflow_server: servers.MlflowServer,
    tmp: Path,
    data: tuple[pd.DataFrame, np.ndarray],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, name = mlflow_server, "server-stops"
    tracking = Tracking(server.url, tmp / "unused")
    first = train(tracking, data, 1.0, name)
    assert gate(tracking, data, first.version, name).promoted and champion(tracking, name) == 1

    # The server stops after the model's artifact is logged, before its version is registered.
    real_listing = registry._download_listing

    def listing_then_stop(uri: str) -> dict[str, str]:
        listing = real_listing(uri)
        server.stop()
        return listing

    monkeypatch.setattr(registry, "_download_listing", listing_then_stop)
    fails_clearly(lambda: train(tracking, data, 0.5, name), f"127.0.0.1:{server.port}")
    monkeypatch.setattr(registry, "_download_listing", real_listing)
    server.start()
    assert versions(tracking, name) == [1] and champion(tracking, name) == 1  # no version without its digests

    # The server stops while the new version is gated.
    second = train(tracking, data, 0.5, name)
    assert versions(tracking, name) == [1, 2] and not second.reused
    fails_clearly(lambda: gate(tracking, data, second.version, name, server.stop), f"127.0.0.1:{server.port}")
    server.start()
    assert champion(tracking, name) == 1  # the alias never moved to a half-gated version

    # The re-run: the same training reuses the ungated version; exactly one new version.
    again = train(tracking, data, 0.5, name)
    assert again.reused and again.version == second.version
    assert gate(tracking, data, again.version, name).promoted
    assert versions(tracking, name) == [1, 2] and champion(tracking, name) == 2


@pytest.mark.usefixtures("mlflow_retries")
def test_the_postgresql_under_mlflow_stops_mid_gate(
    postgres: servers.PostgresServer,
    mlflow_server: servers.MlflowServer,
    tmp: Path,
    data: tuple[pd.DataFrame, np.ndarray],
) -> None:
    server, name = mlflow_server, "postgres-stops"
    server.start()  # a no-op unless an earlier test left it stopped
    tracking = Tracking(server.url, tmp / "unused")
    first = train(tracking, data, 1.0, name)
    assert gate(tracking, data, first.version, name).promoted
    second = train(tracking, data, 0.5, name)

    try:
        message = fails_clearly(lambda: gate(tracking, data, second.version, name, postgres.stop), server.url)
    finally:
        postgres.start()  # the next tests need it, whatever this one found
    assert "500" in message or "503" in message or "error" in message.lower()
    assert champion(tracking, name) == 1 and versions(tracking, name) == [1, 2]

    again = train(tracking, data, 0.5, name)
    assert again.reused and again.version == second.version
    assert gate(tracking, data, again.version, name).promoted
    assert versions(tracking, name) == [1, 2] and champion(tracking, name) == 2


# --- Prefect on PostgreSQL ----------------------------------------------------------------------

READINGS = pd.DataFrame(
    {
        "tag": ["PS01.P1.FLOW_M3S"] * 3 + ["PS02.P1.FLOW_M3S"] * 3,
        "ts": pd.to_datetime(["2026-11-01T00:00Z", "2026-11-01T00:01Z", "2026-11-01T00:02Z"] * 2, utc=True),
        "value": [1.0, 1.1, 1.2, 2.0, 2.1, 2.2],
        "quality": "good",
    }
)
_STOP: list[Callable[[], None]] = []
"""What the flow's task calls after storing (stops the API's database in the fault run)."""


def _ingest_flow() -> Any:  # noqa: ANN401 - a Prefect flow
    from prefect import flow, task

    @task(name="store-readings")
    def store_readings(root: str) -> int:
        written = RawStore(root, max_workers=1).write(READINGS)
        for stop in _STOP:
            stop()
        return written.new

    @flow(name="fault-ingest")
    def fault_ingest(root: str) -> int:
        new = store_readings(root)
        return int(new) + int(store_readings(root))  # a second task: the API is needed after the first

    return fault_ingest


def flow_runs(name: str) -> list[str]:
    """The state types of every run of flow `name` on the API of the current settings."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[name])))
    return sorted(str(run.state_type.value) if run.state_type else "NONE" for run in runs)


def test_the_postgresql_under_prefect_stops_mid_flow(postgres: servers.PostgresServer, tmp: Path) -> None:
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_CLIENT_MAX_RETRIES,
        PREFECT_CLIENT_RETRY_JITTER_FACTOR,
        temporary_settings,
    )

    if not (servers.BIN_DIR / "prefect").exists():
        pytest.skip(f"prefect is not installed in {servers.BIN_DIR}")
    postgres.create_database("prefect_faults")
    postgres.execute("prefect_faults", "CREATE EXTENSION IF NOT EXISTS pg_trgm")
    raw = tmp / "raw"
    fault_ingest = _ingest_flow()
    with servers.start_prefect(tmp, postgres.url("prefect_faults", "postgresql+asyncpg")) as server:
        updates = {
            PREFECT_API_URL: server.api_url,
            PREFECT_CLIENT_MAX_RETRIES: 2,
            PREFECT_CLIENT_RETRY_JITTER_FACTOR: 0,
        }
        with temporary_settings(updates=updates):
            _STOP.append(postgres.stop)
            try:
                fails_clearly(lambda: fault_ingest(str(raw)), f"127.0.0.1:{server.port}")
            finally:
                _STOP.clear()
            assert len(RawStore(raw).read()) == len(READINGS)  # what the first task stored stays

            postgres.start()
            deadline = time.monotonic() + 60
            while not server.running() and time.monotonic() < deadline:
                time.sleep(0.5)
            assert fault_ingest(str(raw)) == 0  # the re-run stores nothing twice
            assert len(RawStore(raw).read()) == len(READINGS)
            states = flow_runs("fault-ingest")
            assert states.count("COMPLETED") == 1, states
