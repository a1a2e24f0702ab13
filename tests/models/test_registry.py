"""The MLflow boundary on an embedded store: SQLite tracking and registry, artifacts in a folder.

One store is shared by the whole module (MLflow's first SQLite migration costs seconds); each
test uses its own registered model names so the tests stay independent.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import pickle
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.models import Model
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from pumptwin.models.detectors import PcaT2QDetector
from pumptwin.models.registry import (
    ARTIFACT_DIGEST_TAG,
    ARTIFACT_FILES_TAG,
    CHAMPION,
    LINEAGE_ARTIFACT,
    PROMOTION_EXPERIMENT,
    Lineage,
    ModelIntegrityError,
    RegistryError,
    Tracking,
    activated,
    artifact_listing,
    champion_version,
    decide,
    default_pip_requirements,
    flatten_params,
    frame_digest,
    listing_difference,
    listing_digest,
    listing_json,
    load_model,
    log_training_run,
    open_client,
    predict_fn_for,
    promote_if_better,
    read_lineage,
)
from pumptwin.twin.errors import PumptwinError

T0 = datetime(2026, 1, 1, tzinfo=UTC)
COLUMNS = ["flow_m3s", "head_m", "power_w", "vibration_mms"]


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Tracking:
    root = tmp_path_factory.mktemp("mlflow")
    return Tracking(f"sqlite:///{(root / 'mlflow.db').as_posix()}", root / "mlartifacts")


@pytest.fixture(scope="module")
def sensors() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(rng.normal(size=(300, 4)), columns=COLUMNS)


@pytest.fixture(scope="module")
def classes() -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray]:
    """Labels set by the sign of x0 + x1: a stump gets ~75 %, a linear model nearly all."""
    rng = np.random.default_rng(1)
    x = pd.DataFrame(rng.normal(size=(400, 2)), columns=["a", "b"])
    y = (x["a"] + x["b"] > 0).astype(int).to_numpy()
    return x.iloc[:200], y[:200], x.iloc[200:].reset_index(drop=True), y[200:]


def lineage(digest: str = "sha256:abc", code_version: str | None = "0123abcd") -> Lineage:
    return Lineage(
        feature_service="pump_health_v1",
        feature_views=("pump_stats", "station_stats"),
        train_start=T0,
        train_end=T0 + timedelta(days=7),
        holdout_start=T0 + timedelta(days=7),
        holdout_end=T0 + timedelta(days=9),
        train_rows=300,
        holdout_rows=80,
        dataset_digest=digest,
        code_version=code_version,
    )


def download(tracking, uri, folder):
    with activated(tracking):
        return mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(folder))


def log(tracking, model, example, name, *, experiment="tests", metrics=None, plots=None):
    return log_training_run(
        tracking,
        experiment=experiment,
        model=model,
        params={"C": 1.0},
        metrics=metrics or {},
        plots=plots or {},
        lineage=lineage(),
        input_example=example,
        registered_name=name,
    )


@pytest.fixture(scope="module")
def detector_run(tracking, sensors, tmp_path_factory):
    plot = tmp_path_factory.mktemp("plots") / "t2.png"
    plot.write_bytes(b"\x89PNG fake image")
    detector = PcaT2QDetector(n_components=2).fit(sensors)
    run = log_training_run(
        tracking,
        experiment="anomaly-pca",
        model=detector,
        params={"n_components": 2, "thresholds": {"quantile": 0.99}},
        metrics={"holdout/false_alarm_rate": 0.01, "f1": 0.8},
        plots={"scores": plot},
        lineage=lineage(frame_digest(sensors)),
        input_example=sensors.head(5),
        registered_name="pca-detector",
        tags={"family": "pca"},
    )
    return detector, run


# --- pure helpers ------------------------------------------------------------------------------


def test_tracking_rejects_an_empty_uri():
    with pytest.raises(RegistryError, match="tracking_uri"):
        Tracking("  ", Path("x"))


def test_artifact_location_is_a_file_uri_under_the_root(tmp_path):
    location = Tracking("sqlite:///x.db", tmp_path).artifact_location("anomaly/pca v1")
    assert location.startswith("file://")
    assert location.endswith("/anomaly_pca_v1")
    assert tmp_path.as_posix() in location


@pytest.mark.parametrize("uri", ["http://127.0.0.1:5000", "HTTPS://mlflow.example"])
def test_a_tracking_server_keeps_its_own_artifact_destination(tmp_path, uri):
    tracking = Tracking(uri, tmp_path)
    assert tracking.server
    assert tracking.artifact_location("anomaly") is None
    assert not Tracking(f"sqlite:///{tmp_path}/m.db", tmp_path).server


def test_lineage_round_trips_through_json():
    original = lineage()
    assert Lineage.from_dict(json.loads(json.dumps(original.to_dict()))) == original


def test_lineage_params_and_tags():
    params = lineage().params()
    assert params["lineage.feature_views"] == "pump_stats,station_stats"
    assert params["lineage.train_start"] == "2026-01-01T00:00:00+00:00"
    assert "lineage.code_version" not in lineage(code_version=None).params()
    assert lineage().tags()["mlflow.source.git.commit"] == "0123abcd"


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"train_start": datetime(2026, 1, 1)}, "timezone-aware"),  # noqa: DTZ001
        ({"train_end": T0}, "training window"),
        ({"holdout_start": T0 + timedelta(days=6)}, "before the training window ends"),
        ({"holdout_end": T0 + timedelta(days=7)}, "held-out window"),
        ({"feature_views": ()}, "feature_views"),
        ({"train_rows": 0}, "row counts"),
        ({"dataset_digest": ""}, "dataset_digest"),
    ],
)
def test_lineage_rejects_bad_values(change, match):
    with pytest.raises(RegistryError, match=match):
        dataclasses.replace(lineage(), **change)


def test_flatten_params_dots_nested_keys():
    assert flatten_params({"lr": 0.01, "net": {"layers": [8, 4], "act": {"name": "relu"}}}) == {
        "lr": "0.01",
        "net.layers": "[8, 4]",
        "net.act.name": "relu",
    }


def test_frame_digest_is_stable_and_sensitive(sensors):
    assert frame_digest(sensors) == frame_digest(sensors.copy())
    changed = sensors.copy()
    changed.iloc[3, 2] += 1e-9
    assert frame_digest(changed) != frame_digest(sensors)
    assert frame_digest(sensors.astype("float32")) != frame_digest(sensors)


def test_predict_fn_for_picks_probabilities_for_classifiers(sensors, classes):
    x, y, _, _ = classes
    assert predict_fn_for(LogisticRegression().fit(x, y)) == "predict_proba"
    assert predict_fn_for(PcaT2QDetector().fit(sensors)) == "predict"
    with pytest.raises(RegistryError, match="no predict"):
        predict_fn_for(object())


def test_default_pip_requirements_are_pinned():
    reqs = default_pip_requirements()
    assert any(r.startswith("scikit-learn==") for r in reqs)
    assert all("==" in r for r in reqs)


@pytest.mark.parametrize(
    ("challenger", "champion", "higher", "margin", "promote"),
    [
        (0.9, None, True, 0.0, True),
        (0.9, 0.8, True, 0.0, True),
        (0.9, 0.9, True, 0.0, False),  # a tie keeps the champion
        (0.85, 0.8, True, 0.1, False),
        (0.1, 0.2, False, 0.05, True),  # lower is better
        (0.3, 0.2, False, 0.0, False),
    ],
)
def test_decide(challenger, champion, higher, margin, promote):
    promoted, gain, reason = decide(challenger, champion, higher_is_better=higher, min_improvement=margin)
    assert promoted is promote
    assert reason
    if champion is not None:
        assert gain == pytest.approx((challenger - champion) * (1 if higher else -1))


# --- logging -------------------------------------------------------------------------------------


def test_training_run_stores_params_metrics_plots_and_lineage(tracking, detector_run, sensors):
    _, run = detector_run
    assert run.version == 1
    assert run.registered_name == "pca-detector"
    assert run.predict_fn == "predict"
    data = open_client(tracking).get_run(run.run_id).data
    assert data.params["n_components"] == "2"
    assert data.params["thresholds.quantile"] == "0.99"
    assert data.params["lineage.feature_service"] == "pump_health_v1"
    assert data.params["lineage.dataset_digest"] == frame_digest(sensors)
    assert data.metrics == {"holdout/false_alarm_rate": 0.01, "f1": 0.8}
    assert data.tags["family"] == "pca"
    assert data.tags["mlflow.source.git.commit"] == "0123abcd"
    artifacts = {a.path for a in open_client(tracking).list_artifacts(run.run_id)}
    assert {LINEAGE_ARTIFACT, "plots"} <= artifacts
    plots = [a.path for a in open_client(tracking).list_artifacts(run.run_id, "plots")]
    assert plots == ["plots/scores.png"]
    assert read_lineage(tracking, run.run_id) == lineage(frame_digest(sensors))


def test_experiment_artifacts_live_under_the_artifact_root(tracking, detector_run):
    _, run = detector_run
    experiment = open_client(tracking).get_experiment(run.experiment_id)
    assert experiment.name == "anomaly-pca"
    assert experiment.artifact_location == tracking.artifact_location("anomaly-pca")
    assert any(tracking.artifact_root.rglob("lineage.json"))


def test_model_has_signature_input_example_and_requirements(tracking, detector_run, tmp_path):
    _, run = detector_run
    local = download(tracking, run.model_uri, tmp_path)
    model = Model.load(local)
    assert model.signature is not None
    assert model.signature.inputs.input_names() == COLUMNS
    assert model.flavors["sklearn"]["serialization_format"] == "cloudpickle"
    assert model.flavors["python_function"]["predict_fn"] == "predict"
    example = model.load_input_example(local)
    assert isinstance(example, pd.DataFrame)
    assert list(example.columns) == COLUMNS
    assert len(example) == 5
    requirements = (Path(local) / "requirements.txt").read_text()
    assert "scikit-learn==" in requirements


def test_loaded_model_predicts_identically(tracking, detector_run, sensors):
    detector, run = detector_run
    loaded = load_model(tracking, "pca-detector", version=run.version)
    assert isinstance(loaded, PcaT2QDetector)
    np.testing.assert_array_equal(loaded.decision_function(sensors), detector.decision_function(sensors))
    np.testing.assert_array_equal(loaded.predict(sensors), detector.predict(sensors))


def test_classifier_signature_is_its_class_probabilities(tracking, classes, tmp_path):
    x, y, _, _ = classes
    clf = LogisticRegression().fit(x, y)
    run = log(tracking, clf, x.head(3), None, experiment="classifier")
    assert run.version is None
    assert run.predict_fn == "predict_proba"
    local = download(tracking, run.model_uri, tmp_path)
    outputs = Model.load(local).signature.outputs.to_dict()
    assert tuple(outputs[0]["tensor-spec"]["shape"]) == (-1, 2)


def test_non_finite_metric_is_rejected(tracking, classes):
    x, y, _, _ = classes
    with pytest.raises(RegistryError, match="not finite"):
        log(tracking, DummyClassifier().fit(x, y), x.head(3), None, metrics={"f1": math.nan})


def test_params_may_not_shadow_lineage(tracking, classes):
    x, y, _, _ = classes
    with pytest.raises(RegistryError, match="clash"):
        log_training_run(
            tracking,
            experiment="tests",
            model=DummyClassifier().fit(x, y),
            params={"lineage": {"train_rows": 1}},
            metrics={},
            plots={},
            lineage=lineage(),
            input_example=x.head(3),
            registered_name=None,
        )


def test_missing_plot_is_rejected(tracking, classes, tmp_path):
    x, y, _, _ = classes
    with pytest.raises(RegistryError, match="does not exist"):
        log(tracking, DummyClassifier().fit(x, y), x.head(3), None, plots={"roc": tmp_path / "none.png"})


# --- the promotion gate --------------------------------------------------------------------------


def assert_decision_logged(tracking, decision, label):
    """The decision is a run of the promotion experiment and tags on the challenger's version."""
    client = open_client(tracking)
    logged = client.get_run(decision.run_id)
    assert client.get_experiment(logged.info.experiment_id).name == PROMOTION_EXPERIMENT
    assert logged.data.metrics["challenger_score"] == pytest.approx(decision.challenger_score)
    assert logged.data.metrics["champion_score"] == pytest.approx(decision.champion_score)
    assert logged.data.params["window"] == decision.window
    assert logged.data.params["champion_version"] == str(decision.champion_version)
    assert logged.data.tags["promotion.decision"] == label
    tags = client.get_model_version(decision.name, str(decision.version)).tags
    assert tags["promotion.decision"] == label
    assert tags["promotion.reason"] == decision.reason
    assert tags["promotion.run_id"] == decision.run_id
    assert tags["promotion.window"] == decision.window
    assert float(tags["promotion.challenger_score"]) == pytest.approx(decision.challenger_score)
    assert float(tags["promotion.champion_score"]) == pytest.approx(decision.champion_score)


def test_promotion_gate(tracking, classes):
    x, y, xh, yh = classes

    def accuracy(model: Any) -> float:
        return float((model.predict(xh) == yh).mean())

    stump = log(tracking, DecisionTreeClassifier(max_depth=1, random_state=0).fit(x, y), x.head(3), "gate")
    dummy = log(tracking, DummyClassifier(strategy="most_frequent").fit(x, y), x.head(3), "gate")
    linear = log(tracking, LogisticRegression().fit(x, y), x.head(3), "gate")
    window = "2026-01-08/2026-01-10"

    def gate(version, evaluate=accuracy, min_improvement=0.0):
        return promote_if_better(
            tracking,
            "gate",
            version,
            evaluate=evaluate,
            metric="accuracy",
            higher_is_better=True,
            window=window,
            min_improvement=min_improvement,
        )

    def champion_number():
        champion = champion_version(tracking, "gate")
        return None if champion is None else champion.version

    assert champion_number() is None
    first = gate(stump.version)
    assert first.promoted
    assert first.champion_score is None
    assert champion_number() == stump.version

    worse = gate(dummy.version)
    assert not worse.promoted
    assert worse.champion_version == stump.version
    assert worse.champion_score is not None
    assert worse.challenger_score < worse.champion_score
    assert worse.champion_score == pytest.approx(first.challenger_score)
    assert champion_number() == stump.version

    too_little = gate(linear.version, min_improvement=0.5)
    assert not too_little.promoted
    assert "less than the required" in too_little.reason

    better = gate(linear.version)
    assert better.promoted
    assert better.champion_score is not None
    assert better.improvement == pytest.approx(better.challenger_score - better.champion_score)
    assert better.challenger_score > better.champion_score
    champion = champion_version(tracking, "gate")
    assert champion is not None
    assert champion.version == linear.version
    assert CHAMPION in champion.aliases
    assert isinstance(load_model(tracking, "gate"), LogisticRegression)

    again = gate(linear.version)
    assert not again.promoted
    assert "already is the champion" in again.reason

    assert_decision_logged(tracking, worse, "rejected")
    assert_decision_logged(tracking, again, "unchanged")

    with pytest.raises(RegistryError, match="not finite"):
        gate(stump.version, evaluate=lambda model: math.nan)
    assert champion_number() == linear.version
    with pytest.raises(RegistryError, match="no version 99"):
        gate(99)


def test_unknown_model_name_is_a_clear_error(tracking):
    with pytest.raises(RegistryError, match="no registered model named 'nope'"):
        champion_version(tracking, "nope")
    with pytest.raises(RegistryError, match="no registered model named 'nope'"):
        load_model(tracking, "nope")
    with pytest.raises(RegistryError, match="no registered model"):
        promote_if_better(
            tracking, "nope", 1, evaluate=lambda m: 1.0, metric="accuracy", higher_is_better=True, window="w"
        )
    with pytest.raises(RegistryError, match="must be letters"):
        load_model(tracking, "bad/name")


def test_missing_alias_is_a_clear_error(tracking, detector_run):
    with pytest.raises(RegistryError, match="no version with alias 'champion'"):
        load_model(tracking, "pca-detector")


# --- global state --------------------------------------------------------------------------------


def test_global_tracking_uri_is_left_unchanged(tracking, detector_run, monkeypatch, tmp_path):
    from mlflow.tracking._tracking_service.utils import is_tracking_uri_set

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    _, run = detector_run
    assert not is_tracking_uri_set()
    load_model(tracking, "pca-detector", version=run.version)
    read_lineage(tracking, run.run_id)
    assert not is_tracking_uri_set()
    assert mlflow.get_tracking_uri() != tracking.tracking_uri
    assert mlflow.get_registry_uri() != tracking.tracking_uri

    other = f"sqlite:///{(tmp_path / 'other.db').as_posix()}"
    mlflow.set_tracking_uri(other)
    try:
        load_model(tracking, "pca-detector", version=run.version)
        assert mlflow.get_tracking_uri() == other
        assert mlflow.get_registry_uri() == other
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # None unsets it
    assert not is_tracking_uri_set()


# --- artifact integrity --------------------------------------------------------------------------


class OpensAFile:
    """A pickle payload: unpickling it creates the file `path` (stands in for arbitrary code)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


def artifact_folder(tracking: Tracking, name: str, version: int) -> Path:
    """The model version's artifact folder in the (file) artifact store."""
    uri = open_client(tracking).get_model_version_download_uri(name, str(version))
    return Path(url2pathname(urlparse(uri).path))


@pytest.fixture
def tiny(tracking, classes, request):
    """A tiny registered model under a name of its own: (name, version)."""
    x, y, _, _ = classes
    name = f"tiny-{request.node.name.replace('_', '-')[:60]}"
    run = log(tracking, DummyClassifier().fit(x, y), x.head(3), name, experiment="integrity")
    return name, run.version


def test_artifact_listing_digests_every_file(tmp_path):
    (tmp_path / "model.pkl").write_bytes(b"\x80\x04N.")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "MLmodel").write_text("flavors: {}\n")
    listing = artifact_listing(tmp_path)
    assert listing == {
        "model.pkl": hashlib.sha256(b"\x80\x04N.").hexdigest(),
        "sub/MLmodel": hashlib.sha256(b"flavors: {}\n").hexdigest(),
    }
    assert listing_digest(listing) == listing_digest(dict(reversed(listing.items())))
    assert listing_digest(listing) != listing_digest({**listing, "model.pkl": "0" * 64})
    assert listing_digest(listing) != listing_digest({**listing, "extra": listing["model.pkl"]})


def test_artifact_listing_refuses_links(tmp_path):
    (tmp_path / "target").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    with pytest.raises(ModelIntegrityError, match="'link' is not a regular file"):
        artifact_listing(tmp_path)


def test_listing_difference_names_the_file():
    recorded = {"MLmodel": "aa", "model.pkl": "bb"}
    assert listing_difference({"MLmodel": "aa", "model.pkl": "cc"}, recorded).startswith("file 'model.pkl' changed")
    assert listing_difference({"MLmodel": "aa"}, recorded) == "file 'model.pkl' is missing"
    assert listing_difference({**recorded, "code/x.py": "dd"}, recorded) == "file 'code/x.py' was added"


def test_a_logged_model_records_the_digest_of_its_artifact(tracking, detector_run, tmp_path):
    _, run = detector_run
    client = open_client(tracking)
    tags = client.get_model_version("pca-detector", str(run.version)).tags
    files = json.loads(tags[ARTIFACT_FILES_TAG])
    assert {"MLmodel", "model.pkl", "requirements.txt"} <= set(files)
    assert tags[ARTIFACT_DIGEST_TAG] == listing_digest(files)
    assert client.get_run(run.run_id).data.tags[ARTIFACT_DIGEST_TAG] == tags[ARTIFACT_DIGEST_TAG]
    assert artifact_listing(artifact_folder(tracking, "pca-detector", run.version)) == files


def test_a_changed_byte_in_the_pickle_is_refused(tracking, tiny):
    name, version = tiny
    assert isinstance(load_model(tracking, name, version=version), DummyClassifier)
    pickled = artifact_folder(tracking, name, version) / "model.pkl"
    data = bytearray(pickled.read_bytes())
    data[len(data) // 2] ^= 0x01
    pickled.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match=rf"model '{name}' version {version}: file 'model.pkl' changed"):
        load_model(tracking, name, version=version)


def test_a_malicious_pickle_is_refused_before_it_runs(tracking, tiny, tmp_path):
    name, version = tiny
    control, marker = tmp_path / "control", tmp_path / "marker"
    pickle.loads(pickle.dumps(OpensAFile(control)))  # noqa: S301 - shows what the payload does
    assert control.exists()
    (artifact_folder(tracking, name, version) / "model.pkl").write_bytes(pickle.dumps(OpensAFile(marker)))
    client = open_client(tracking)
    client.set_registered_model_alias(name, CHAMPION, str(version))
    with pytest.raises(ModelIntegrityError, match="'model.pkl' changed"):
        load_model(tracking, name)
    with pytest.raises(ModelIntegrityError, match="not loaded"):
        load_model(tracking, name, version=version)
    assert not marker.exists()


def test_an_added_file_is_refused(tracking, tiny):
    name, version = tiny
    code = artifact_folder(tracking, name, version) / "code"
    code.mkdir()
    (code / "sitecustomize.py").write_text("raise SystemExit\n")
    with pytest.raises(ModelIntegrityError, match="file 'code/sitecustomize.py' was added"):
        load_model(tracking, name, version=version)


def test_a_removed_file_is_refused(tracking, tiny):
    name, version = tiny
    (artifact_folder(tracking, name, version) / "requirements.txt").unlink()
    with pytest.raises(ModelIntegrityError, match="file 'requirements.txt' is missing"):
        load_model(tracking, name, version=version)


def test_a_version_without_a_digest_is_refused(tracking, tiny):
    name, version = tiny
    open_client(tracking).delete_model_version_tag(name, str(version), ARTIFACT_DIGEST_TAG)
    with pytest.raises(ModelIntegrityError, match=rf"model '{name}' version {version}: no artifact digest"):
        load_model(tracking, name, version=version)


def test_a_tampered_file_listing_does_not_hide_a_change(tracking, tiny):
    name, version = tiny
    folder = artifact_folder(tracking, name, version)
    (folder / "model.pkl").write_bytes(b"tampered")
    forged = {**artifact_listing(folder)}
    open_client(tracking).set_model_version_tag(name, str(version), ARTIFACT_FILES_TAG, listing_json(forged))
    with pytest.raises(ModelIntegrityError, match="its files changed since it was logged"):
        load_model(tracking, name, version=version)


def test_integrity_errors_are_registry_errors():
    assert issubclass(ModelIntegrityError, RegistryError)
    assert issubclass(ModelIntegrityError, PumptwinError)


def test_an_unverifiable_champion_is_replaced_without_being_loaded(tracking, classes):
    x, y, xh, yh = classes
    old = log(tracking, DecisionTreeClassifier(max_depth=1, random_state=0).fit(x, y), x.head(3), "legacy")
    new = log(tracking, LogisticRegression().fit(x, y), x.head(3), "legacy")
    scored: list[object] = []

    def accuracy(model: Any) -> float:
        scored.append(model)
        return float((model.predict(xh) == yh).mean())

    def gate(version: int) -> Any:
        return promote_if_better(
            tracking, "legacy", version, evaluate=accuracy, metric="accuracy", higher_is_better=True, window="w"
        )

    assert gate(old.version).promoted
    open_client(tracking).delete_model_version_tag("legacy", str(old.version), ARTIFACT_DIGEST_TAG)
    scored.clear()
    decision = gate(new.version)
    assert decision.promoted
    assert decision.champion_score is None
    assert f"champion v{old.version} not loaded" in decision.reason
    assert len(scored) == 1  # only the challenger was loaded and scored
    champion = champion_version(tracking, "legacy")
    assert champion is not None
    assert champion.version == new.version
