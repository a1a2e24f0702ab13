"""A training interrupted between registration and the gate: the retry reuses its version, never doubles it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from pumptwin.models.registry import (
    ARTIFACT_DIGEST_TAG,
    TRAINING_KEY_TAG,
    Lineage,
    Tracking,
    champion_version,
    log_training_run,
    open_client,
    promote_if_better,
    training_key,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NAME = "retried"


def lineage(digest: str = "sha256:data1") -> Lineage:
    return Lineage(
        feature_service="pump_health_v1",
        feature_views=("pump_stats",),
        train_start=T0,
        train_end=T0 + timedelta(days=7),
        holdout_start=T0 + timedelta(days=7),
        holdout_end=T0 + timedelta(days=9),
        train_rows=150,
        holdout_rows=50,
        dataset_digest=digest,
        code_version="0123abcd",
    )


@pytest.fixture
def tracking(tmp_path: Path) -> Tracking:
    return Tracking(f"sqlite:///{(tmp_path / 'mlflow.db').as_posix()}", tmp_path / "mlartifacts")


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(3)
    x = pd.DataFrame(rng.normal(size=(200, 2)), columns=["a", "b"])
    return x, (x["a"] - x["b"] > 0).astype(int).to_numpy()


def train(tracking: Tracking, data: tuple[pd.DataFrame, np.ndarray], c: float, digest: str = "sha256:data1") -> Any:  # noqa: ANN401
    x, y = data
    return log_training_run(
        tracking,
        experiment="retries",
        model=LogisticRegression(C=c).fit(x, y),
        params={"C": c},
        metrics={"accuracy": 0.9},
        plots={},
        lineage=lineage(digest),
        input_example=x.head(3),
        registered_name=NAME,
        pip_requirements=["scikit-learn"],
    )


def gate(tracking: Tracking, data: tuple[pd.DataFrame, np.ndarray], version: int) -> Any:  # noqa: ANN401
    x, y = data
    return promote_if_better(
        tracking,
        NAME,
        version,
        evaluate=lambda model: float((model.predict(x) == y).mean()) + 0.01 * (1.0 - model.C),  # smaller C wins
        metric="accuracy",
        higher_is_better=True,
        window="2026-01-08/2026-01-10",
    )


def versions(tracking: Tracking) -> list[int]:
    return sorted(int(mv.version) for mv in open_client(tracking).search_model_versions(f"name = '{NAME}'"))


def test_a_retry_after_a_failed_gate_reuses_the_version(
    tracking: Tracking, data: tuple[pd.DataFrame, np.ndarray]
) -> None:
    first = train(tracking, data, 1.0)
    assert gate(tracking, data, first.version).promoted

    challenger = train(tracking, data, 0.5)  # the gate never runs: the server went away
    assert not challenger.reused and versions(tracking) == [1, 2]
    tags = open_client(tracking).get_model_version(NAME, str(challenger.version)).tags
    assert tags[TRAINING_KEY_TAG].startswith("sha256:") and tags[ARTIFACT_DIGEST_TAG].startswith("sha256:")
    champion = champion_version(tracking, NAME)
    assert champion is not None and champion.version == 1

    retry = train(tracking, data, 0.5)
    assert retry.reused and retry.version == challenger.version and retry.run_id == challenger.run_id
    assert retry.model_uri == challenger.model_uri and retry.predict_fn == challenger.predict_fn
    assert versions(tracking) == [1, 2]
    assert gate(tracking, data, retry.version).promoted
    champion = champion_version(tracking, NAME)
    assert champion is not None and champion.version == 2

    after_gate = train(tracking, data, 0.5)  # gated already: a new training is a new version
    assert not after_gate.reused and versions(tracking) == [1, 2, 3]
    other_data = train(tracking, data, 0.25, digest="sha256:data2")
    assert not other_data.reused and versions(tracking) == [1, 2, 3, 4]


def test_the_training_key_tells_recipes_and_data_apart(data: tuple[pd.DataFrame, np.ndarray]) -> None:
    x, y = data

    def key(model: Any, params: dict[str, str], digest: str = "sha256:d") -> str:  # noqa: ANN401
        return training_key(
            registered_name="m",
            experiment="e",
            model=model,
            params=params,
            lineage=lineage(digest),
            predict_fn="predict",
        )

    base = key(LogisticRegression(C=1.0).fit(x, y), {"C": "1.0"})
    assert base == key(LogisticRegression(C=1.0).fit(x, y), {"C": "1.0"})
    assert base != key(LogisticRegression(C=2.0).fit(x, y), {"C": "1.0"})
    assert base != key(LogisticRegression(C=1.0).fit(x, y), {"C": "2.0"})
    assert base != key(LogisticRegression(C=1.0).fit(x, y), {"C": "1.0"}, digest="sha256:other")


def test_a_server_that_does_not_answer_is_not_a_missing_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import socket

    from mlflow.exceptions import MlflowException

    from pumptwin.models.registry import RegistryError

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = Tracking(f"http://127.0.0.1:{port}", tmp_path)
    with pytest.raises(MlflowException, match=f"127.0.0.1:{port}") as caught:
        champion_version(down, NAME)
    assert not isinstance(caught.value, RegistryError)  # scoring must not take it for "never registered"


def test_an_error_the_server_answers_with_names_the_server(tmp_path: Path) -> None:
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import TEMPORARILY_UNAVAILABLE

    from pumptwin.models.registry import _naming_server

    tracking = Tracking("http://127.0.0.1:5999", tmp_path)

    @_naming_server
    def fails(t: Tracking, message: str) -> None:
        raise MlflowException(message, error_code=TEMPORARILY_UNAVAILABLE)

    with pytest.raises(MlflowException, match="MLflow at http://127.0.0.1:5999: database down") as caught:
        fails(tracking, "database down")
    assert caught.value.error_code == "TEMPORARILY_UNAVAILABLE"
    with pytest.raises(MlflowException) as named:
        fails(tracking, "http://127.0.0.1:5999 refused")
    assert str(named.value).count("127.0.0.1:5999") == 1
