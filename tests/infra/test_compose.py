"""The production compose file, its example environment and init script agree with each other and the settings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from pydantic_settings import BaseSettings

from pumptwin.flows.settings import ENV_PREFIX, Settings

INFRA = Path(__file__).resolve().parents[2] / "infra"
SERVICES = {
    "postgres",
    "redis",
    "minio",
    "qdrant",
    "mlflow",
    "prefect-server",
    "prefect-worker",
}
"""Services the production deployment needs."""
MOVING_VARIABLES = {
    "PUMPTWIN_PREFECT_API_URL",
    "PUMPTWIN_MLFLOW_TRACKING_URI",
    "PUMPTWIN_FEAST_ONLINE_STORE",
    "PUMPTWIN_FEAST_REGISTRY",
    "PUMPTWIN_AGENTS_QDRANT_URL",
    "PUMPTWIN_STORAGE_RAW_URL",
    "PUMPTWIN_STORAGE_ENDPOINT_URL",
    "PUMPTWIN_RUNNER_KIND",
    "PUMPTWIN_RUNNER_ADDRESS",
}
"""The settings that move a piece from its embedded default to its service."""
REFERENCE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:[:?+-][^}]*)?\}")
"""A ``${NAME}`` (or ``${NAME:-default}``) reference; ``$${NAME}`` is a literal ``${NAME}``."""


def setting_variables() -> set[str]:
    """Every environment variable name `Settings` reads: root fields, group fields, nested ``__`` forms."""
    names: set[str] = set()
    for field_name, field in Settings.model_fields.items():
        group = field.annotation
        if isinstance(group, type) and issubclass(group, BaseSettings):
            prefix = str(group.model_config.get("env_prefix", ""))
            for sub in group.model_fields:
                names.add(f"{prefix}{sub}".upper())
                names.add(f"{ENV_PREFIX}{field_name}__{sub}".upper())
        else:
            names.add(f"{ENV_PREFIX}{field_name}".upper())
    return names


def read_env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines of an env file (comments and blank lines skipped)."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        name, sep, value = text.partition("=")
        assert sep and re.fullmatch(r"[A-Z_][A-Z0-9_]*", name), f"{path.name}:{number}: not NAME=value: {line!r}"
        values[name] = value
    return values


def references(node: object) -> set[str]:
    """Names of every ``${NAME}`` in the strings of a loaded YAML document."""
    if isinstance(node, str):
        return set(REFERENCE.findall(node))
    if isinstance(node, dict):
        return set().union(*(references(k) | references(v) for k, v in node.items()))
    if isinstance(node, list):
        return set().union(*(references(v) for v in node))
    return set()


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((INFRA / "compose.yaml").read_text())


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    return read_env_file(INFRA / "env.example")


def test_setting_variables_include_groups_and_root() -> None:
    names = setting_variables()
    assert {"PUMPTWIN_HOME", "PUMPTWIN_FEAST_REGISTRY", "PUMPTWIN_FEAST__REGISTRY", "PUMPTWIN_TWIN_ACCURACY"} <= names
    assert "PUMPTWIN_FEAST" not in names and "PUMPTWIN_NOPE" not in names


def test_compose_has_every_service_with_healthchecks(compose: dict) -> None:
    services = compose["services"]
    assert set(services) >= SERVICES
    for name in SERVICES - {"prefect-worker"}:
        assert "healthcheck" in services[name], name
    # servers that others depend on are waited for until healthy
    for need in ("postgres", "prefect-server", "mlflow", "redis", "qdrant"):
        dependants = [s for s in services.values() if need in s.get("depends_on", {})]
        assert dependants, need
        assert all(s["depends_on"][need]["condition"] == "service_healthy" for s in dependants), need
    assert set(compose["volumes"]) >= {"postgres-data", "redis-data", "minio-data", "qdrant-data"}


def test_servers_use_postgres_and_object_storage(compose: dict) -> None:
    services = compose["services"]
    mlflow = " ".join(services["mlflow"]["command"])
    assert "--backend-store-uri postgresql+psycopg2://" in mlflow and "--artifacts-destination s3://" in mlflow
    assert services["mlflow"]["environment"]["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    url = services["prefect-server"]["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"]
    assert url.startswith("postgresql+asyncpg://") and url.endswith("@postgres:5432/prefect")
    worker = services["prefect-worker"]
    assert worker["build"]["dockerfile"] == "infra/Dockerfile" and "process" in worker["command"]
    assert set(worker["environment"]) >= MOVING_VARIABLES
    init = [v for v in services["postgres"]["volumes"] if "docker-entrypoint-initdb.d" in v]
    assert init and init[0].startswith("./postgres-init.sql:")


def test_init_script_creates_the_databases() -> None:
    sql = (INFRA / "postgres-init.sql").read_text()
    created = set(re.findall(r"CREATE DATABASE (\w+);", sql))
    assert created == {"prefect", "mlflow", "feast"}
    assert "CREATE EXTENSION IF NOT EXISTS pg_trgm" in sql.split("\\connect prefect", 1)[1]


def test_every_reference_is_defined_in_the_example(compose: dict, env: dict[str, str]) -> None:
    used = references(compose)
    assert used, "the compose file takes its settings from the environment"
    assert sorted(used - set(env)) == []
    # references inside env.example refer to names defined above them
    seen: set[str] = set()
    for name, value in env.items():
        assert set(REFERENCE.findall(value)) <= seen, name
        seen.add(name)


def test_example_sets_only_real_settings(env: dict[str, str]) -> None:
    ours = {name for name in env if name.startswith(ENV_PREFIX)}
    assert ours >= MOVING_VARIABLES
    assert sorted(ours - setting_variables()) == []
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "POSTGRES_USER", "POSTGRES_PASSWORD"):
        assert env.get(name), name


def test_example_values_are_valid_settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    def expand(value: str) -> str:
        return REFERENCE.sub(lambda m: env[m.group(1)], value)

    for name, value in env.items():
        if name.startswith(ENV_PREFIX):
            monkeypatch.setenv(name, expand(value))
    settings = Settings()
    assert settings.feast.online_store == f"redis://:{env['REDIS_PASSWORD']}@redis:6379/0"
    assert settings.feast.registry is not None and settings.feast.registry.endswith("@postgres:5432/feast")
    assert settings.runner.kind == "dask" and settings.prefect.api_url == "http://prefect-server:4200/api"
    assert settings.mlflow_tracking_uri == "http://mlflow:5000"
    assert settings.storage.raw_url == f"s3://{env['RAW_BUCKET']}/raw"


def test_dockerfile_installs_the_services_extra() -> None:
    text = (INFRA / "Dockerfile").read_text()
    assert text.startswith("#") and "FROM python:3.11-slim" in text
    install = next(line for line in text.splitlines() if line.startswith("RUN pip install"))
    assert '".[${EXTRAS}]"' in install
    assert re.search(r"^ARG EXTRAS=.*\bservices\b", text, re.MULTILINE)
