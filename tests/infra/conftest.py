"""Session fixtures of real servers for the integration tests (see `tests.infra.servers`).

Each fixture skips, with the reason, only when the server's program is missing; a server that is
installed but fails to start fails the tests that use it. Fault tests that stop a server start their
own instance with `tests.infra.servers` instead of stopping these.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.infra import servers

MLFLOW_BUCKET = "pumptwin-mlflow"
"""Bucket of the session MLflow server's artifacts (``s3://pumptwin-mlflow/mlflow``)."""
PREFECT_DATABASE = "prefect"
MLFLOW_DATABASE = "mlflow"


@pytest.fixture(scope="session")
def services_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder holding the session servers' data and logs."""
    return tmp_path_factory.mktemp("services")


@pytest.fixture(scope="session")
def postgres(services_root: Path) -> Iterator[servers.PostgresServer]:
    """A PostgreSQL cluster for the session (password auth over TCP)."""
    if servers.postgres_bin_dir() is None:
        pytest.skip("PostgreSQL is not installed (no initdb/pg_ctl under /usr/lib/postgresql or on PATH)")
    server = servers.start_postgres(services_root)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server(services_root: Path) -> Iterator[servers.RedisServer]:
    """A redis-server for the session (no persistence)."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    with servers.start_redis(services_root) as server:
        yield server


@pytest.fixture(scope="session")
def s3(services_root: Path) -> Iterator[servers.S3Server]:
    """An S3-compatible server (moto_server) for the session; credentials `servers.S3_CREDENTIALS`."""
    if not (servers.BIN_DIR / "moto_server").exists():
        pytest.skip(f"moto_server is not installed in {servers.BIN_DIR}")
    with servers.start_s3(services_root) as server:
        yield server


@pytest.fixture(scope="session")
def mlflow_server(
    services_root: Path, postgres: servers.PostgresServer, s3: servers.S3Server
) -> Iterator[servers.MlflowServer]:
    """An MLflow tracking server on PostgreSQL with artifacts in ``s3://pumptwin-mlflow/mlflow``."""
    if not (servers.BIN_DIR / "mlflow").exists():
        pytest.skip(f"mlflow is not installed in {servers.BIN_DIR}")
    postgres.create_database(MLFLOW_DATABASE)
    s3.create_bucket(MLFLOW_BUCKET)
    server = servers.start_mlflow(
        services_root, postgres.url(MLFLOW_DATABASE), f"s3://{MLFLOW_BUCKET}/mlflow", s3.endpoint_url
    )
    with server:
        yield server


@pytest.fixture(scope="session")
def prefect_server(services_root: Path, postgres: servers.PostgresServer) -> Iterator[servers.PrefectServer]:
    """A Prefect API server on PostgreSQL (database ``prefect`` with pg_trgm)."""
    if not (servers.BIN_DIR / "prefect").exists():
        pytest.skip(f"prefect is not installed in {servers.BIN_DIR}")
    postgres.create_database(PREFECT_DATABASE)
    postgres.execute(PREFECT_DATABASE, "CREATE EXTENSION IF NOT EXISTS pg_trgm")
    with servers.start_prefect(services_root, postgres.url(PREFECT_DATABASE, "postgresql+asyncpg")) as server:
        yield server
