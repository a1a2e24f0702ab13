"""Tests for `flows.settings`: environment prefixes, nesting, derived paths, secrets, offline env."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from pydantic import ValidationError

from pumptwin.flows.settings import (
    OFFLINE_ENVIRONMENT,
    FeastSettings,
    MlflowSettings,
    PrefectSettings,
    QdrantSettings,
    Settings,
    TwinSettings,
    apply_offline_environment,
    get_settings,
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove every PUMPTWIN_ variable so each test starts from the defaults."""
    for name in [name for name in os.environ if name.startswith("PUMPTWIN_")]:
        monkeypatch.delenv(name)


@pytest.fixture
def restored_environ() -> Iterator[None]:
    """Restore os.environ exactly (including keys added by setdefault) after the test."""
    with mock.patch.dict(os.environ):
        yield


def test_defaults(clean_env):
    settings = Settings()
    assert settings.home == Path(".pumptwin")
    assert settings.twin == TwinSettings(network=None, accuracy=1e-6, max_trials=200, batch_size=2048, threads=None)
    assert settings.mlflow.tracking_uri is None
    assert settings.qdrant.url is None
    assert settings.qdrant.api_key is None
    assert settings.prefect.api_url is None


@pytest.mark.parametrize(
    "model", [Settings, TwinSettings, MlflowSettings, FeastSettings, QdrantSettings, PrefectSettings]
)
def test_every_field_has_a_description(model):
    assert [name for name, field in model.model_fields.items() if not field.description] == []


def test_env_prefix(clean_env, monkeypatch, tmp_path):
    monkeypatch.setenv("PUMPTWIN_HOME", str(tmp_path))
    monkeypatch.setenv("PUMPTWIN_TWIN_ACCURACY", "1e-8")
    monkeypatch.setenv("PUMPTWIN_TWIN_THREADS", "2")
    monkeypatch.setenv("PUMPTWIN_MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    monkeypatch.setenv("PUMPTWIN_PREFECT_API_URL", "http://127.0.0.1:4200/api")
    settings = Settings()
    assert settings.home == tmp_path
    assert settings.twin.accuracy == 1e-8
    assert settings.twin.threads == 2
    assert settings.mlflow_tracking_uri == "http://127.0.0.1:5000"
    assert settings.prefect.api_url == "http://127.0.0.1:4200/api"


def test_nested_env_combines_with_group_prefix(clean_env, monkeypatch):
    monkeypatch.setenv("PUMPTWIN_TWIN__MAX_TRIALS", "50")
    monkeypatch.setenv("PUMPTWIN_TWIN_BATCH_SIZE", "64")
    monkeypatch.setenv("PUMPTWIN_QDRANT__URL", "http://127.0.0.1:6333")
    settings = Settings()
    assert settings.twin.max_trials == 50
    assert settings.twin.batch_size == 64
    assert settings.qdrant.url == "http://127.0.0.1:6333"


def test_invalid_values_are_rejected(clean_env, monkeypatch):
    monkeypatch.setenv("PUMPTWIN_TWIN_ACCURACY", "-1")
    with pytest.raises(ValidationError, match="accuracy"):
        Settings()


def test_derived_paths(clean_env, tmp_path):
    settings = Settings(home=tmp_path)
    assert settings.bench_dir == tmp_path / "bench"
    assert settings.numba_cache_dir == tmp_path / "numba"
    assert settings.qdrant_path == tmp_path / "qdrant"
    assert settings.mlflow_artifact_root == tmp_path / "mlartifacts"
    assert settings.mlflow_tracking_uri == f"sqlite:///{tmp_path.as_posix()}/mlflow.db"


def test_secrets_never_serialized(clean_env, monkeypatch):
    monkeypatch.setenv("PUMPTWIN_QDRANT_API_KEY", "hunter2-secret")
    settings = Settings()
    assert settings.qdrant.api_key is not None
    assert settings.qdrant.api_key.get_secret_value() == "hunter2-secret"
    for text in (repr(settings), str(settings), settings.model_dump_json(), str(settings.model_dump())):
        assert "hunter2-secret" not in text


def test_apply_offline_environment(clean_env, restored_environ, tmp_path):
    home = tmp_path / "state"
    for name in (*OFFLINE_ENVIRONMENT, "NUMBA_CACHE_DIR", "PREFECT_HOME"):
        os.environ.pop(name, None)
    os.environ["DO_NOT_TRACK"] = "caller-value"
    apply_offline_environment(Settings(home=home))
    assert home.is_dir()
    assert os.environ["DO_NOT_TRACK"] == "caller-value"
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert os.environ["NUMBA_CACHE_DIR"] == str(home / "numba")
    assert os.environ["PREFECT_HOME"] == str(home / "prefect")


def test_get_settings_reads_env_and_creates_home(clean_env, restored_environ, monkeypatch, tmp_path):
    monkeypatch.setenv("PUMPTWIN_HOME", str(tmp_path / "home"))
    settings = get_settings()
    assert settings.home == tmp_path / "home"
    assert settings.home.is_dir()
