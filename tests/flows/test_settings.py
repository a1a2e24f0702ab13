"""Tests for `flows.settings`: environment prefixes, nesting, derived paths, secrets, offline env."""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from pumptwin.flows.settings import (
    OFFLINE_ENVIRONMENT,
    HistorianSettings,
    MlflowSettings,
    ModelSettings,
    PrefectSettings,
    Settings,
    TwinSettings,
    apply_offline_environment,
    get_settings,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("flows", "twin", "features", "models", "agents", "infra", "plant")


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
    assert settings.twin == TwinSettings(network=None, accuracy=1e-6)
    assert settings.mlflow.tracking_uri is None
    assert settings.historian.url is None and settings.historian.password is None
    assert settings.prefect.api_url is None


@pytest.mark.parametrize(
    "model", [Settings, TwinSettings, MlflowSettings, ModelSettings, PrefectSettings, HistorianSettings]
)
def test_every_field_has_a_description(model):
    assert [name for name, field in model.model_fields.items() if not field.description] == []


def test_env_prefix(clean_env, monkeypatch, tmp_path):
    monkeypatch.setenv("PUMPTWIN_HOME", str(tmp_path))
    monkeypatch.setenv("PUMPTWIN_TWIN_ACCURACY", "1e-8")
    monkeypatch.setenv("PUMPTWIN_MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    monkeypatch.setenv("PUMPTWIN_PREFECT_API_URL", "http://127.0.0.1:4200/api")
    settings = Settings()
    assert settings.home == tmp_path
    assert settings.twin.accuracy == 1e-8
    assert settings.mlflow_tracking_uri == "http://127.0.0.1:5000"
    assert settings.prefect.api_url == "http://127.0.0.1:4200/api"


def test_nested_env_combines_with_group_prefix(clean_env, monkeypatch):
    monkeypatch.setenv("PUMPTWIN_TWIN__ACCURACY", "1e-7")
    monkeypatch.setenv("PUMPTWIN_MODELS_SEED", "11")
    monkeypatch.setenv("PUMPTWIN_HISTORIAN__URL", "https://pi.example/piwebapi")
    settings = Settings()
    assert settings.twin.accuracy == 1e-7
    assert settings.models.seed == 11
    assert settings.historian.url == "https://pi.example/piwebapi"


def test_invalid_values_are_rejected(clean_env, monkeypatch):
    monkeypatch.setenv("PUMPTWIN_TWIN_ACCURACY", "-1")
    with pytest.raises(ValidationError, match="accuracy"):
        Settings()


def test_derived_paths(clean_env, tmp_path):
    settings = Settings(home=tmp_path)
    assert settings.bench_dir == tmp_path / "bench"
    assert settings.numba_cache_dir == tmp_path / "numba"
    assert settings.mlflow_artifact_root == tmp_path / "mlartifacts"
    assert settings.mlflow_tracking_uri == f"sqlite:///{tmp_path.as_posix()}/mlflow.db"


def test_secrets_never_serialized(clean_env, monkeypatch):
    monkeypatch.setenv("PUMPTWIN_HISTORIAN_PASSWORD", "hunter2-secret")
    settings = Settings()
    assert settings.historian.password is not None
    assert settings.historian.password.get_secret_value() == "hunter2-secret"
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


def attributes_by_module() -> dict[Path, set[str]]:
    """Every attribute name read (``x.name``) in each module of the installed packages."""
    out = {}
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            out[path] = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    return out


def unread_settings(attributes: dict[Path, set[str]]) -> list[str]:
    """Settings fields no module reads: a group field counts as read where a module reads its group too."""
    unread = [name for name in Settings.model_fields if not any(name in attrs for attrs in attributes.values())]
    for group, field in Settings.model_fields.items():
        model = field.annotation
        if not (isinstance(model, type) and issubclass(model, BaseSettings)):
            continue
        unread += [
            f"{group}.{name}"
            for name in model.model_fields
            if not any(group in attrs and name in attrs for attrs in attributes.values())
        ]
    return unread


def test_every_setting_is_read_somewhere():
    assert unread_settings(attributes_by_module()) == []


def test_an_unread_setting_is_found():
    attributes = attributes_by_module()
    without = {path: attrs - {"accuracy"} for path, attrs in attributes.items()}
    assert unread_settings(without) == ["twin.accuracy"]
