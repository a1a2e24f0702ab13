"""The one MLflow boundary: log training runs, register models, gate promotion, load champions.

Every other module talks to MLflow through this one. Callers pass a `Tracking` (tracking URI and
artifact folder, from the settings of their entry point); nothing here reads settings.

What a training run records:

* the caller's hyper-parameters and held-out metrics, plots under `plots/`, and the data lineage
  (`Lineage`: feature service and views, training and held-out windows, row counts, dataset
  digest, code version) as `lineage.*` params, `pumptwin.*` tags and a `lineage.json` artifact;
* the model, with MLflow's scikit-learn flavor (our estimators follow the scikit-learn API, some
  wrap PyTorch), serialized with cloudpickle (skops refuses our custom classes), with explicit pip
  requirements (MLflow's inference of them is slow and drags in unrelated packages), an input
  example and a signature inferred from that example and the model's output on it.

A model's artifact is a pickle, and unpickling runs code, so the artifact store is not trusted:
right after logging, the SHA-256 digest of every file of the model's artifact is recorded in the
tracking store (`ARTIFACT_DIGEST_TAG` on the run and the model version, with the file listing in
`ARTIFACT_FILES_TAG`). `load_model` downloads the artifact to a private folder, checks every file
against that record and only then unpickles it; a changed, missing or added file, or a version
without a record, raises `ModelIntegrityError` and nothing is unpickled.

A version is registered in one request that carries all its tags (lineage, digests and the
`training_key` of its recipe and data), after its run and artifact are logged, so a tracking
server that goes away mid-run leaves a run without a version, or a whole version, never a
version without its digests. A version that an interrupted try registered and never put through
the gate (no `promotion.decision` tag) is reused by the next try of the same training instead of
registering a second one, so retrying a failed training leaves exactly one new version.

The signature describes what MLflow's generic `pyfunc` interface returns, since that is what a
model server calls. `pyfunc` can serve `predict` and `predict_proba` but not `decision_function`,
so: a classifier with `predict_proba` is served (and its signature inferred) through
`predict_proba`, the class probabilities; everything else, outlier detectors included, through
`predict` (for detectors the labels 1 normal / -1 anomaly). Continuous anomaly scores
(`decision_function`, `score_samples`) stay available on the estimator that `load_model`
returns, which is the scikit-learn object itself.

Promotion is a gate, not a default: `promote_if_better` scores the challenger version and the
current `champion` with the same evaluation (the same held-out window) and moves the `champion`
alias only when the challenger is strictly better by at least `min_improvement`. Every decision,
with both scores, the window and the reason, is logged as a run of the `promotion` experiment and
as tags on the challenger's model version.

MLflow keeps its tracking and registry URIs, and the active run, in process-wide state. Logging
and loading need them (MLflow's model logging reads them), so those calls set both URIs for their
duration, under a process-wide lock, and restore them afterwards, together with the
`MLFLOW_TRACKING_URI` and `MLFLOW_REGISTRY_URI` variables that MLflow itself sets when they
change. Plain queries use an `MlflowClient` bound to the URI and touch no global state.

Example:
    >>> from pathlib import Path
    >>> tracking = Tracking("sqlite:////tmp/pumptwin/mlflow.db", Path("/tmp/pumptwin/mlartifacts"))
    >>> tracking.tracking_uri
    'sqlite:////tmp/pumptwin/mlflow.db'
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import wraps
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import numpy as np
import pandas as pd

from pumptwin.twin.errors import PumptwinError

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import RegisteredModel

CHAMPION = "champion"
"""Alias of the registered model version that serves."""

PROMOTION_EXPERIMENT = "promotion"
"""Experiment that records every promotion decision."""

LINEAGE_ARTIFACT = "lineage.json"
"""Artifact of a training run that holds its `Lineage` as JSON."""

PLOTS_DIR = "plots"
"""Artifact folder of a training run's plots."""

ARTIFACT_DIGEST_TAG = "pumptwin.artifact_sha256"
"""Run and model-version tag: `sha256:<hex>` of the model artifact's file listing (see `listing_digest`)."""

ARTIFACT_FILES_TAG = "pumptwin.artifact_files"
"""Model-version tag: the model artifact's files and their SHA-256 digests, as canonical JSON."""

TRAINING_KEY_TAG = "pumptwin.training_key"
"""Model-version tag: `training_key` of the recipe and data that produced the version."""

DECISION_TAG = "promotion.decision"
"""Model-version tag set by `promote_if_better` once the version went through the gate."""

_CHUNK_BYTES = 1 << 20

_LOCK = threading.RLock()
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_METRIC = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]*$")


class RegistryError(PumptwinError, ValueError):
    """Bad input to the model registry: unknown model or version, bad lineage, non-finite score."""


class ModelIntegrityError(RegistryError):
    """A registered model's artifact does not match the digests recorded when it was logged, or has none.

    The message names the model, the version and the file; the artifact was not unpickled.
    """


@dataclass(frozen=True, slots=True)
class Tracking:
    """Where MLflow keeps runs, the model registry and artifacts.

    Args:
        tracking_uri: Tracking and registry URI, e.g. `sqlite:////abs/path/mlflow.db` or
            `http://127.0.0.1:5000`.
        artifact_root: Folder under which new experiments put their artifacts (one sub-folder
            per experiment) with a file or database URI; unused with a tracking server, whose
            own artifact destination holds them.
    """

    tracking_uri: str
    artifact_root: Path

    def __post_init__(self) -> None:
        if not isinstance(self.tracking_uri, str) or not self.tracking_uri.strip():
            raise RegistryError(f"tracking_uri={self.tracking_uri!r} must be a non-empty URI")
        object.__setattr__(self, "artifact_root", Path(self.artifact_root))

    @property
    def server(self) -> bool:
        """True for a tracking server (`http(s)://`), which stores artifacts where it was told to."""
        return self.tracking_uri.lower().startswith(("http://", "https://"))

    def artifact_location(self, experiment: str) -> str | None:
        """File URI of the artifact folder of experiment `experiment`; None for a tracking server.

        A tracking server puts a new experiment's artifacts under its own `--artifacts-destination`
        (object storage in production), so no local folder is imposed on it.

        Args:
            experiment: Experiment name.

        Returns:
            A `file://` URI under `artifact_root`, or None with a tracking server.
        """
        if self.server:
            return None
        slug = re.sub(r"[^A-Za-z0-9_.\-]+", "_", experiment).strip("._") or "experiment"
        return (self.artifact_root / slug).absolute().as_uri()


@dataclass(frozen=True, slots=True)
class Lineage:
    """Where a model's training data came from.

    Windows are half-open `[start, end)` and must be timezone-aware; the held-out window starts
    no earlier than the training window ends, so no held-out row was trained on.

    Args:
        feature_service: Feast feature service the features were read through.
        feature_views: Feature views behind that service.
        train_start: Start of the training window.
        train_end: End of the training window.
        holdout_start: Start of the held-out window.
        holdout_end: End of the held-out window.
        train_rows: Rows trained on.
        holdout_rows: Rows in the held-out window.
        dataset_digest: Digest of the training data (see `frame_digest`).
        code_version: Git commit of the code, when known.
    """

    feature_service: str
    feature_views: tuple[str, ...]
    train_start: datetime
    train_end: datetime
    holdout_start: datetime
    holdout_end: datetime
    train_rows: int
    holdout_rows: int
    dataset_digest: str
    code_version: str | None = None

    def __post_init__(self) -> None:
        if not self.feature_service:
            raise RegistryError("lineage feature_service must be a non-empty name")
        views = tuple(self.feature_views)
        if not views or not all(isinstance(v, str) and v for v in views):
            raise RegistryError(f"lineage feature_views={self.feature_views!r} must be non-empty names")
        object.__setattr__(self, "feature_views", views)
        for label in ("train_start", "train_end", "holdout_start", "holdout_end"):
            value = getattr(self, label)
            if not isinstance(value, datetime) or value.tzinfo is None:
                raise RegistryError(f"lineage {label}={value!r} must be a timezone-aware datetime")
        if not self.train_start < self.train_end:
            raise RegistryError(f"lineage training window {self.train_start} .. {self.train_end} is empty")
        if not self.holdout_start < self.holdout_end:
            raise RegistryError(f"lineage held-out window {self.holdout_start} .. {self.holdout_end} is empty")
        if self.holdout_start < self.train_end:
            raise RegistryError(
                f"lineage held-out window starts at {self.holdout_start}, before the training window ends "
                f"at {self.train_end}"
            )
        if self.train_rows < 1 or self.holdout_rows < 0:
            raise RegistryError(
                f"lineage row counts train_rows={self.train_rows}, holdout_rows={self.holdout_rows} "
                "must be at least 1 and 0"
            )
        if not self.dataset_digest:
            raise RegistryError("lineage dataset_digest must be non-empty")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (ISO 8601 times).

        Returns:
            A dict that `from_dict` reads back.
        """
        return {
            "feature_service": self.feature_service,
            "feature_views": list(self.feature_views),
            "train_start": self.train_start.isoformat(),
            "train_end": self.train_end.isoformat(),
            "holdout_start": self.holdout_start.isoformat(),
            "holdout_end": self.holdout_end.isoformat(),
            "train_rows": int(self.train_rows),
            "holdout_rows": int(self.holdout_rows),
            "dataset_digest": self.dataset_digest,
            "code_version": self.code_version,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Lineage:
        """Read the form written by `to_dict`.

        Args:
            data: Mapping with the fields of `to_dict`.

        Returns:
            The lineage.
        """
        times = {
            k: datetime.fromisoformat(data[k]) for k in ("train_start", "train_end", "holdout_start", "holdout_end")
        }
        return cls(
            feature_service=data["feature_service"],
            feature_views=tuple(data["feature_views"]),
            train_rows=int(data["train_rows"]),
            holdout_rows=int(data["holdout_rows"]),
            dataset_digest=data["dataset_digest"],
            code_version=data.get("code_version"),
            **times,
        )

    def params(self) -> dict[str, str]:
        """The lineage as MLflow params, keys prefixed `lineage.`.

        Returns:
            Param name to string value (the code version only when known).
        """
        flat = self.to_dict()
        flat["feature_views"] = ",".join(self.feature_views)
        return {f"lineage.{k}": str(v) for k, v in flat.items() if v is not None}

    def tags(self) -> dict[str, str]:
        """The lineage as MLflow tags for search (feature service, digest, git commit).

        Returns:
            Tag name to value.
        """
        out = {"pumptwin.feature_service": self.feature_service, "pumptwin.dataset_digest": self.dataset_digest}
        if self.code_version:
            out["mlflow.source.git.commit"] = self.code_version
        return out


@dataclass(frozen=True, slots=True)
class TrainedRun:
    """What `log_training_run` logged.

    Args:
        run_id: MLflow run id.
        experiment_id: MLflow experiment id.
        model_id: MLflow logged-model id.
        model_uri: URI that loads the model (`models:/<model_id>`).
        predict_fn: Method that MLflow's pyfunc interface calls (`predict` or `predict_proba`).
        registered_name: Registered model name, if registered.
        version: Registered model version, if registered.
        reused: True when an earlier, interrupted try had registered the same training (same
            `training_key`) and never gated it: that version is returned, nothing new is logged.
    """

    run_id: str
    experiment_id: str
    model_id: str
    model_uri: str
    predict_fn: str
    registered_name: str | None
    version: int | None
    reused: bool = False


@dataclass(frozen=True, slots=True)
class RegisteredVersion:
    """One version of a registered model.

    Args:
        name: Registered model name.
        version: Version number.
        run_id: Training run that logged it.
        source: Artifact URI of the model.
        aliases: Aliases pointing at this version.
        tags: Version tags.
    """

    name: str
    version: int
    run_id: str | None
    source: str
    aliases: tuple[str, ...]
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PromotionDecision:
    """Outcome of `promote_if_better`.

    Args:
        name: Registered model name.
        version: Challenger version.
        promoted: Whether the challenger now holds the `champion` alias.
        metric: Name of the evaluation metric.
        window: The held-out window both models were evaluated on (free text, e.g. ISO range).
        higher_is_better: Direction of the metric.
        min_improvement: Margin the challenger had to beat the champion by, in metric units.
        challenger_score: Challenger's score.
        champion_version: Version of the champion it was compared with, or None if none.
        champion_score: Champion's score, or None if none.
        improvement: Challenger's gain over the champion in the metric's good direction, or None.
        reason: Why it was (not) promoted.
        run_id: Run of the `promotion` experiment that records the decision.
    """

    name: str
    version: int
    promoted: bool
    metric: str
    window: str
    higher_is_better: bool
    min_improvement: float
    challenger_score: float
    champion_version: int | None
    champion_score: float | None
    improvement: float | None
    reason: str
    run_id: str


# --- pure helpers --------------------------------------------------------------------------------


def frame_digest(frame: pd.DataFrame) -> str:
    """SHA-256 digest of a DataFrame's columns, dtypes, index and values.

    The same data in the same order gives the same digest across processes.

    Args:
        frame: The data.

    Returns:
        `sha256:<hex>`.
    """
    h = hashlib.sha256()
    h.update(json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode())
    h.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    return f"sha256:{h.hexdigest()}"


def artifact_listing(folder: Path) -> dict[str, str]:
    """SHA-256 digest of every file under `folder`, by path relative to it.

    Args:
        folder: A model's artifact folder, as downloaded.

    Returns:
        POSIX relative path to hex digest, sorted by path.

    Raises:
        ModelIntegrityError: If the folder holds anything but folders and regular files (a link).
    """
    listing: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if path.is_symlink() or not (path.is_dir() or path.is_file()):
            raise ModelIntegrityError(f"artifact entry {relative!r} is not a regular file")
        if path.is_file():
            digest = hashlib.sha256()
            with path.open("rb") as handle:
                while chunk := handle.read(_CHUNK_BYTES):
                    digest.update(chunk)
            listing[relative] = digest.hexdigest()
    return listing


def listing_json(listing: Mapping[str, str]) -> str:
    """The canonical JSON form of a file listing: keys sorted, no spaces.

    Args:
        listing: Relative path to hex digest (see `artifact_listing`).

    Returns:
        The JSON text.
    """
    return json.dumps(dict(listing), sort_keys=True, separators=(",", ":"))


def listing_digest(listing: Mapping[str, str]) -> str:
    """One digest over a file listing: SHA-256 of its canonical JSON.

    Args:
        listing: Relative path to hex digest (see `artifact_listing`).

    Returns:
        `sha256:<hex>`.

    Example:
        >>> listing_digest({"model.pkl": "00"}) == listing_digest({"model.pkl": "00"})
        True
    """
    return f"sha256:{hashlib.sha256(listing_json(listing).encode()).hexdigest()}"


def listing_difference(actual: Mapping[str, str], recorded: Mapping[str, str]) -> str:
    """The first difference between two file listings, for a message.

    Args:
        actual: The listing of the files as found.
        recorded: The listing recorded when the model was logged.

    Returns:
        E.g. `file 'model.pkl' changed`, `file 'x' was added`, or `the file listing changed`.
    """
    for path in sorted(set(actual) | set(recorded)):
        if path not in recorded:
            return f"file {path!r} was added"
        if path not in actual:
            return f"file {path!r} is missing"
        if actual[path] != recorded[path]:
            return f"file {path!r} changed (sha256 {actual[path][:12]}..., recorded {recorded[path][:12]}...)"
    return "the file listing changed"


def flatten_params(params: Mapping[str, object], prefix: str = "") -> dict[str, str]:
    """Flatten nested hyper-parameters into MLflow params with dotted keys and string values.

    Args:
        params: Hyper-parameters; nested mappings become `outer.inner` keys.
        prefix: Key prefix (used in recursion).

    Returns:
        Param name to string value.

    Example:
        >>> flatten_params({"lr": 0.01, "net": {"layers": [8, 4]}})
        {'lr': '0.01', 'net.layers': '[8, 4]'}
    """
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_params(value, f"{name}."))
        else:
            out[name] = str(value)
    return out


def predict_fn_for(model: object) -> str:
    """The method MLflow's pyfunc interface serves for `model` (see the module docstring).

    Args:
        model: A fitted scikit-learn-compatible estimator.

    Returns:
        `"predict_proba"` for classifiers that have it, else `"predict"`.

    Raises:
        RegistryError: If the model has no `predict`.
    """
    from sklearn.base import is_classifier

    classifier = hasattr(model, "__sklearn_tags__") and is_classifier(model)
    if classifier and callable(getattr(model, "predict_proba", None)):
        return "predict_proba"
    if callable(getattr(model, "predict", None)):
        return "predict"
    raise RegistryError(f"model {type(model).__name__} has no predict method")


def default_pip_requirements() -> list[str]:
    """Pinned requirements of a scikit-learn model serialized with cloudpickle.

    Versions are those installed here. Models that wrap PyTorch add `torch==<version>`.

    Returns:
        Requirement strings such as `scikit-learn==1.9.1`.
    """
    return [f"{pkg}=={metadata.version(pkg)}" for pkg in ("scikit-learn", "numpy", "pandas", "scipy", "cloudpickle")]


def check_name(name: str, what: str = "name", *, metric: bool = False) -> str:
    """Validate an experiment, registered model or metric name.

    Args:
        name: The name.
        what: What it names, for the error message.
        metric: Whether it names a metric, which may also contain `/`.

    Returns:
        The name.

    Raises:
        RegistryError: Unless it is letters, digits, `_`, `.`, `-` (and `/` for a metric),
            starting with a letter or digit.
    """
    pattern = _METRIC if metric else _NAME
    if not isinstance(name, str) or not pattern.match(name):
        raise RegistryError(f"{what}={name!r} must be letters, digits, '_', '.', '-' (starting with a letter or digit)")
    return name


def _finite(value: object, what: str) -> float:
    """`value` as a finite float, or a RegistryError naming it."""
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise RegistryError(f"{what}={value!r} is not a number") from exc
    if not math.isfinite(out):
        raise RegistryError(f"{what}={out} is not finite")
    return out


def decide(
    challenger_score: float,
    champion_score: float | None,
    *,
    higher_is_better: bool,
    min_improvement: float,
) -> tuple[bool, float | None, str]:
    """The promotion rule, on two scores.

    The challenger wins when there is no champion, or when it is strictly better and better by at
    least `min_improvement`; a tie keeps the champion.

    Args:
        challenger_score: Challenger's score.
        champion_score: Champion's score, or None when there is no champion.
        higher_is_better: Direction of the metric.
        min_improvement: Required margin, in metric units, at least 0.

    Returns:
        (promote, improvement in the good direction or None, reason).
    """
    if champion_score is None:
        return True, None, "no champion yet: the first model becomes champion"
    gain = challenger_score - champion_score if higher_is_better else champion_score - challenger_score
    if gain > 0 and gain >= min_improvement:
        return True, gain, f"challenger beats champion by {gain:.6g} (required {min_improvement:.6g})"
    if gain > 0:
        return False, gain, f"challenger better by only {gain:.6g}, less than the required {min_improvement:.6g}"
    return False, gain, f"challenger not better than champion (improvement {gain:.6g})"


# --- MLflow state --------------------------------------------------------------------------------


def open_client(tracking: Tracking) -> MlflowClient:
    """An MlflowClient bound to `tracking`; touches no global MLflow state.

    Args:
        tracking: Where MLflow keeps its data.

    Returns:
        The client (tracking and registry on the same URI).
    """
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking.tracking_uri, registry_uri=tracking.tracking_uri)


@contextmanager
def activated(tracking: Tracking) -> Iterator[MlflowClient]:
    """Point MLflow's global tracking and registry URIs at `tracking` for the block, then restore.

    MLflow's fluent API (model logging and loading by URI) reads these globals. The block holds a
    process-wide lock, so concurrent threads do not see each other's URIs. On exit the previous
    URIs, and the `MLFLOW_TRACKING_URI` / `MLFLOW_REGISTRY_URI` variables MLflow sets along with
    them, are put back as they were.

    Args:
        tracking: Where MLflow keeps its data.

    Yields:
        A client bound to `tracking`.
    """
    import mlflow
    from mlflow.environment_variables import MLFLOW_REGISTRY_URI, MLFLOW_TRACKING_URI
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    with _LOCK:
        old_tracking, old_registry = tracking_utils._tracking_uri, registry_utils._registry_uri
        old_env = {var: var.get_raw() for var in (MLFLOW_TRACKING_URI, MLFLOW_REGISTRY_URI)}
        try:
            mlflow.set_tracking_uri(tracking.tracking_uri)
            mlflow.set_registry_uri(tracking.tracking_uri)
            yield open_client(tracking)
        finally:
            mlflow.set_tracking_uri(old_tracking)  # type: ignore[arg-type]  # None unsets it
            registry_utils._registry_uri = old_registry
            for var, raw in old_env.items():
                if raw is None:
                    var.unset()
                else:
                    var.set(raw)


def ensure_experiment(tracking: Tracking, experiment: str) -> str:
    """Id of experiment `experiment`, created with its artifacts under `tracking.artifact_root` if new.

    Args:
        tracking: Where MLflow keeps its data.
        experiment: Experiment name (one per model family).

    Returns:
        The experiment id.

    Raises:
        RegistryError: If the experiment exists but was deleted.
    """
    from mlflow.exceptions import MlflowException

    check_name(experiment, "experiment")
    client = open_client(tracking)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        try:
            return str(client.create_experiment(experiment, artifact_location=tracking.artifact_location(experiment)))
        except MlflowException:  # created meanwhile by another process
            found = client.get_experiment_by_name(experiment)
            if found is None:
                raise
    if found.lifecycle_stage != "active":
        raise RegistryError(f"experiment {experiment!r} was deleted; restore it or choose another name")
    return str(found.experiment_id)


def _copy_plots(plots: Mapping[str, Path], folder: Path) -> None:
    """Copy each plot to `folder/<name>` (the source suffix is added when the name has none)."""
    for name, path in plots.items():
        source = Path(path)
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise RegistryError(f"plot name {name!r} must be a plain file name")
        if not source.is_file():
            raise RegistryError(f"plot {name!r}: file {source} does not exist")
        target = folder / (name if Path(name).suffix else f"{name}{source.suffix}")
        shutil.copyfile(source, target)


def _naive_utc(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every timezone-aware datetime column converted to UTC and made naive."""
    out = frame.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.DatetimeTZDtype):
            out[col] = out[col].dt.tz_convert("UTC").dt.tz_localize(None)
    return out


def training_key(
    *,
    registered_name: str,
    experiment: str,
    model: object,
    params: Mapping[str, str],
    lineage: Lineage,
    predict_fn: str,
) -> str:
    """A digest of one training: the registered name, experiment, estimator class and parameters, data.

    Two tries of the same training on the same data (same lineage, dataset digest and code version)
    get the same key; a different estimator, parameter or dataset gives another.

    Args:
        registered_name: Registered model name.
        experiment: Experiment of the run.
        model: The fitted estimator (its class and, when it has them, its `get_params()`).
        params: Flattened hyper-parameters (see `flatten_params`).
        lineage: Where the training data came from.
        predict_fn: Method pyfunc serves.

    Returns:
        ``sha256:<hex>``.
    """
    get_params = getattr(model, "get_params", None)
    estimator = repr(sorted(get_params(deep=True).items())) if callable(get_params) else ""
    document = {
        "registered_name": registered_name,
        "experiment": experiment,
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "estimator": estimator,
        "params": dict(sorted(params.items())),
        "lineage": dict(sorted(lineage.params().items())),
        "predict_fn": predict_fn,
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _ungated_version(client: MlflowClient, name: str, key: str) -> Any:  # noqa: ANN401 - mlflow's ModelVersion
    """The newest version of `name` registered with `key` that never went through the gate, or None."""
    from mlflow.exceptions import MlflowException

    try:
        found = client.search_model_versions(f"name = '{name}' and tags.`{TRAINING_KEY_TAG}` = '{key}'")
    except MlflowException as exc:
        if not _missing(exc):
            raise
        return None  # no such registered model yet
    ready = [
        mv
        for mv in found
        if DECISION_TAG not in (mv.tags or {}) and ARTIFACT_DIGEST_TAG in (mv.tags or {}) and mv.status == "READY"
    ]
    return max(ready, key=lambda mv: int(mv.version), default=None)


def _reused_run(client: MlflowClient, mv: Any, predict_fn: str) -> TrainedRun:  # noqa: ANN401
    """The `TrainedRun` of a version registered by an earlier try of the same training."""
    model_id = str(getattr(mv, "model_id", None) or str(mv.source).removeprefix("models:/"))
    run = client.get_run(mv.run_id)
    return TrainedRun(
        run_id=str(mv.run_id),
        experiment_id=str(run.info.experiment_id),
        model_id=model_id,
        model_uri=f"models:/{model_id}",
        predict_fn=str((mv.tags or {}).get("pumptwin.predict_fn", predict_fn)),
        registered_name=str(mv.name),
        version=int(mv.version),
        reused=True,
    )


def log_training_run(
    tracking: Tracking,
    *,
    experiment: str,
    model: object,
    params: Mapping[str, object],
    metrics: Mapping[str, float],
    plots: Mapping[str, Path],
    lineage: Lineage,
    input_example: pd.DataFrame,
    registered_name: str | None,
    tags: Mapping[str, str] | None = None,
    pip_requirements: Sequence[str] | None = None,
    run_name: str | None = None,
) -> TrainedRun:
    """Log one training run: params, metrics, plots, lineage and the model; register it if asked.

    Args:
        tracking: Where MLflow keeps its data.
        experiment: Experiment of the model family (created under `tracking.artifact_root` if new).
        model: Fitted scikit-learn-compatible estimator.
        params: Hyper-parameters, logged as given (nested mappings flattened with dotted keys,
            values as strings; see `flatten_params`).
        metrics: Held-out metrics; every value must be finite.
        plots: Plot files by artifact name, stored under `plots/`.
        lineage: Where the training data came from.
        input_example: A few input rows (the columns the model expects); also the basis of the
            signature.
        registered_name: Registered model to add this model to as a new version, or None.
        tags: Extra tags for the run and the model version.
        pip_requirements: Requirements of the model's environment; None uses
            `default_pip_requirements()`.
        run_name: Display name of the run; None lets MLflow choose one.

    Returns:
        Run id, model URI and registered version. When an earlier try registered the same training
        (same `training_key`) and it never went through the gate, that version (`reused`), and
        nothing new is logged.

    Raises:
        RegistryError: On a non-finite metric, a missing plot file, a bad name or an empty
            input example.
        MlflowException: When the tracking server does not answer (after MLflow's own retries,
            ``MLFLOW_HTTP_REQUEST_MAX_RETRIES``); a version is registered whole or not at all.
    """
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    if registered_name is not None:
        check_name(registered_name, "registered_name")
    clean_metrics = {check_name(k, "metric", metric=True): _finite(v, f"metric {k!r}") for k, v in metrics.items()}
    if not isinstance(input_example, pd.DataFrame) or input_example.empty:
        raise RegistryError("input_example must be a non-empty DataFrame")
    hyper = flatten_params(params)
    if clash := sorted(k for k in hyper if k.startswith("lineage.")):
        raise RegistryError(f"params {clash} clash with the lineage params (prefix 'lineage.')")
    predict_fn = predict_fn_for(model)
    output = np.asarray(getattr(model, predict_fn)(input_example))
    # MLflow's schema holds timezone-naive datetimes only: record UTC instants without their zone
    input_example = _naive_utc(input_example)
    signature = infer_signature(input_example, output)
    run_tags = {**lineage.tags(), **dict(tags or {}), "pumptwin.predict_fn": predict_fn}
    key = None
    if registered_name is not None:
        key = training_key(
            registered_name=registered_name,
            experiment=experiment,
            model=model,
            params=hyper,
            lineage=lineage,
            predict_fn=predict_fn,
        )
        earlier = _ungated_version(open_client(tracking), registered_name, key)
        if earlier is not None:
            return _reused_run(open_client(tracking), earlier, predict_fn)
    experiment_id = ensure_experiment(tracking, experiment)
    requirements = list(pip_requirements) if pip_requirements is not None else default_pip_requirements()

    with tempfile.TemporaryDirectory(prefix="pumptwin-plots-") as tmp:
        _copy_plots(plots, Path(tmp))
        with (
            activated(tracking),
            mlflow.start_run(
                experiment_id=experiment_id, run_name=run_name, tags=run_tags, nested=mlflow.active_run() is not None
            ) as run,
        ):
            mlflow.log_params({**hyper, **lineage.params()})
            if clean_metrics:
                mlflow.log_metrics(clean_metrics)
            if plots:
                mlflow.log_artifacts(tmp, artifact_path=PLOTS_DIR)
            mlflow.log_dict(lineage.to_dict(), LINEAGE_ARTIFACT)
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                serialization_format="cloudpickle",
                pip_requirements=requirements,
                signature=signature,
                input_example=input_example,
                pyfunc_predict_fn=predict_fn,
                tags=run_tags,
            )
            client = open_client(tracking)
            listing = _download_listing(client.get_logged_model(str(info.model_id)).artifact_location)
            client.set_tag(run.info.run_id, ARTIFACT_DIGEST_TAG, listing_digest(listing))
            version = None
            if registered_name is not None and key is not None:
                integrity = {ARTIFACT_DIGEST_TAG: listing_digest(listing), ARTIFACT_FILES_TAG: listing_json(listing)}
                registered = mlflow.register_model(
                    info.model_uri,
                    registered_name,
                    tags={**run_tags, **lineage.params(), **integrity, TRAINING_KEY_TAG: key},
                )
                version = registered.version
    return TrainedRun(
        run_id=run.info.run_id,
        experiment_id=experiment_id,
        model_id=str(info.model_id),
        model_uri=f"models:/{info.model_id}",
        predict_fn=predict_fn,
        registered_name=registered_name,
        version=int(version) if version is not None else None,
    )


def _download(artifact_uri: str, folder: Path) -> Path:
    """Download `artifact_uri` (a folder) into `folder`; call within `activated`.

    Returns:
        The local copy of the artifact folder.
    """
    import mlflow.artifacts

    return Path(mlflow.artifacts.download_artifacts(artifact_uri=artifact_uri, dst_path=str(folder)))


def _download_listing(artifact_uri: str) -> dict[str, str]:
    """The file listing (see `artifact_listing`) of the artifact folder at `artifact_uri`; call within `activated`."""
    with tempfile.TemporaryDirectory(prefix="pumptwin-model-") as tmp:
        return artifact_listing(_download(artifact_uri, Path(tmp)))


def read_lineage(tracking: Tracking, run_id: str) -> Lineage:
    """The lineage recorded by a training run.

    Args:
        tracking: Where MLflow keeps its data.
        run_id: The training run.

    Returns:
        Its `Lineage`.
    """
    from mlflow.artifacts import load_dict

    with activated(tracking):
        data = load_dict(f"runs:/{run_id}/{LINEAGE_ARTIFACT}")
    return Lineage.from_dict(data)


def _missing(exc: Exception) -> bool:
    """True when an MLflow error says the thing asked for does not exist (not that the server failed)."""
    return getattr(exc, "error_code", None) == "RESOURCE_DOES_NOT_EXIST"


def _registered(client: MlflowClient, name: str) -> RegisteredModel:
    """The registered model `name`, or a RegistryError naming it.

    A tracking server that does not answer is not a missing model: its `MlflowException` propagates.
    """
    from mlflow.exceptions import MlflowException

    check_name(name, "registered model name")
    try:
        return client.get_registered_model(name)
    except MlflowException as exc:
        if not _missing(exc):
            raise
        raise RegistryError(f"no registered model named {name!r}") from exc


def _version(client: MlflowClient, name: str, version: int) -> RegisteredVersion:
    """Version `version` of `name`, or a RegistryError naming both."""
    from mlflow.exceptions import MlflowException

    try:
        mv = client.get_model_version(name, str(int(version)))
    except MlflowException as exc:
        if not _missing(exc):
            raise
        raise RegistryError(f"registered model {name!r} has no version {version!r}") from exc
    return RegisteredVersion(
        name=mv.name,
        version=int(mv.version),
        run_id=mv.run_id,
        source=str(mv.source),
        aliases=tuple(mv.aliases or ()),
        tags=dict(mv.tags or {}),
    )


def champion_version(tracking: Tracking, name: str) -> RegisteredVersion | None:
    """The version of `name` that holds the `champion` alias.

    Args:
        tracking: Where MLflow keeps its data.
        name: Registered model name.

    Returns:
        The champion, or None when no version holds the alias yet.

    Raises:
        RegistryError: If no model `name` is registered.
    """
    client = open_client(tracking)
    aliases = dict(_registered(client, name).aliases or {})
    if CHAMPION not in aliases:
        return None
    return _version(client, name, int(aliases[CHAMPION]))


def load_model(
    tracking: Tracking,
    name: str,
    alias: str | None = CHAMPION,
    *,
    version: int | None = None,
) -> Any:  # noqa: ANN401 (the estimator's class is known only once it is loaded)
    """Load a registered model as its scikit-learn estimator, once its artifact is verified.

    The artifact is downloaded to a private temporary folder and every file is checked against
    the digests recorded when the model was logged (`ARTIFACT_DIGEST_TAG`); only that verified
    copy is unpickled.

    Args:
        tracking: Where MLflow keeps its data.
        name: Registered model name.
        alias: Alias to load (`champion` by default); ignored when `version` is given.
        version: A specific version to load.

    Returns:
        The estimator, as it was logged.

    Raises:
        RegistryError: If the model, the version or the alias does not exist.
        ModelIntegrityError: If the version has no recorded digest, or a file of its artifact was
            changed, removed or added since it was logged; nothing was unpickled.
    """
    import mlflow.sklearn

    client = open_client(tracking)
    registered = _registered(client, name)
    aliases = dict(registered.aliases or {})
    if version is not None:
        chosen = _version(client, name, version)
    elif alias is None:
        raise RegistryError("give an alias or a version to load")
    elif alias not in aliases:
        raise RegistryError(f"registered model {name!r} has no version with alias {alias!r}")
    else:
        chosen = _version(client, name, int(aliases[alias]))
    with tempfile.TemporaryDirectory(prefix="pumptwin-model-") as tmp, activated(tracking):
        local = _verified_copy(client, chosen, Path(tmp))
        return mlflow.sklearn.load_model(str(local))


def _verified_copy(client: MlflowClient, version: RegisteredVersion, folder: Path) -> Path:
    """Download `version`'s artifact into `folder` and check it against its recorded digests.

    Returns:
        The verified local copy.

    Raises:
        ModelIntegrityError: Naming the model, the version and the file that differs.
    """
    where = f"model {version.name!r} version {version.version}"
    expected = version.tags.get(ARTIFACT_DIGEST_TAG)
    if not expected:
        raise ModelIntegrityError(
            f"{where}: no artifact digest ({ARTIFACT_DIGEST_TAG}) was recorded, so its pickle cannot be "
            "verified and is not loaded; register it again with log_training_run"
        )
    local = _download(client.get_model_version_download_uri(version.name, str(version.version)), folder)
    try:
        actual = artifact_listing(local)
    except ModelIntegrityError as exc:
        raise ModelIntegrityError(f"{where}: {exc}; not loaded") from None
    if listing_digest(actual) != expected:
        recorded = _recorded_listing(version, expected)
        what = listing_difference(actual, recorded) if recorded else "its files changed"
        raise ModelIntegrityError(
            f"{where}: {what} since it was logged (artifact digest {listing_digest(actual)}, recorded {expected});"
            " not loaded"
        )
    return local


def _recorded_listing(version: RegisteredVersion, expected: str) -> dict[str, str]:
    """The file listing recorded with `version`, when it agrees with its recorded digest, else empty."""
    try:
        recorded = json.loads(version.tags.get(ARTIFACT_FILES_TAG, "{}"))
    except json.JSONDecodeError:
        return {}
    if not isinstance(recorded, dict) or listing_digest(recorded) != expected:
        return {}
    return {str(k): str(v) for k, v in recorded.items()}


def _champion_score(
    tracking: Tracking,
    name: str,
    champion: RegisteredVersion | None,
    evaluate: Callable[[Any], float],
    metric: str,
) -> tuple[float | None, ModelIntegrityError | None]:
    """Score the champion; an unverifiable one is not loaded and comes back as its error."""
    if champion is None:
        return None, None
    try:
        model = load_model(tracking, name, version=champion.version)
    except ModelIntegrityError as exc:  # never run an unverifiable pickle to score it
        return None, exc
    return _finite(evaluate(model), f"{metric} of champion {name} v{champion.version}"), None


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _naming_server(func: Callable[Concatenate[Tracking, _P], _R]) -> Callable[Concatenate[Tracking, _P], _R]:
    """``func`` whose MLflow errors name the tracking server; the error stays an `MlflowException`.

    A server that answers with its own error (its database down, say) does not say which server it is.
    """

    @wraps(func)
    def call(tracking: Tracking, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import ErrorCode

        try:
            return func(tracking, *args, **kwargs)
        except MlflowException as exc:
            uri = tracking.tracking_uri
            if uri in str(exc):
                raise
            code = ErrorCode.Value(exc.error_code)
            raise MlflowException(f"MLflow at {uri}: {exc.message}", error_code=code) from exc

    return call


@_naming_server
def promote_if_better(
    tracking: Tracking,
    name: str,
    version: int,
    *,
    evaluate: Callable[[Any], float],
    metric: str,
    higher_is_better: bool,
    window: str,
    min_improvement: float = 0.0,
    experiment: str = PROMOTION_EXPERIMENT,
) -> PromotionDecision:
    """Give version `version` of `name` the `champion` alias if it beats the current champion.

    Both models are loaded and scored with the same `evaluate` (which should score on the
    held-out `window`). The rule is `decide`. The decision, both scores, the window and the reason
    are logged as a run of `experiment` and as `promotion.*` tags on the challenger's version.
    A champion whose artifact cannot be verified (`ModelIntegrityError`: no digest, or files that
    changed) is never loaded; the verified challenger replaces it and the reason says why.

    Args:
        tracking: Where MLflow keeps its data.
        name: Registered model name.
        version: Challenger version.
        evaluate: Scores a loaded model; must return a finite number.
        metric: Name of the score (logged).
        higher_is_better: Direction of the score.
        window: The held-out window, as text (e.g. `2026-01-01T00:00Z/2026-01-08T00:00Z`).
        min_improvement: Margin the challenger must beat the champion by, in metric units (>= 0).
        experiment: Experiment that records promotion decisions.

    Returns:
        The decision with both scores.

    Raises:
        RegistryError: On an unknown model or version, a bad margin, or a non-finite score.
        MlflowException: When the tracking server does not answer or fails; the message names it.
    """
    from mlflow.entities import Metric, Param

    check_name(metric, "metric", metric=True)
    if not window:
        raise RegistryError("window must name the held-out window both models are scored on")
    margin = _finite(min_improvement, "min_improvement")
    if margin < 0:
        raise RegistryError(f"min_improvement={margin} must be at least 0")
    client = open_client(tracking)
    _registered(client, name)
    challenger = _version(client, name, version)
    champion = champion_version(tracking, name)

    challenger_score = _finite(
        evaluate(load_model(tracking, name, version=challenger.version)), f"{metric} of {name} v{challenger.version}"
    )
    gain: float | None
    champion_score: float | None = None
    label = "rejected"
    if champion is not None and champion.version == challenger.version:
        promoted, gain, reason = False, 0.0, f"version {challenger.version} already is the champion"
        champion_score, label = challenger_score, "unchanged"
    else:
        champion_score, unverified = _champion_score(tracking, name, champion, evaluate, metric)
        if unverified is not None and champion is not None:
            promoted, gain = True, None
            reason = f"champion v{champion.version} not loaded ({unverified}); the verified challenger replaces it"
        else:
            promoted, gain, reason = decide(
                challenger_score, champion_score, higher_is_better=higher_is_better, min_improvement=margin
            )
        if promoted:
            label = "promoted"

    experiment_id = ensure_experiment(tracking, experiment)
    decision_tags = {
        DECISION_TAG: label,
        "promotion.reason": reason,
        "promotion.metric": metric,
        "promotion.window": window,
        "promotion.challenger_score": repr(challenger_score),
        "promotion.champion_version": "" if champion is None else str(champion.version),
        "promotion.champion_score": "" if champion_score is None else repr(champion_score),
    }
    run = client.create_run(
        experiment_id,
        run_name=f"{name}-v{challenger.version}",
        tags={"pumptwin.model": name, "pumptwin.version": str(challenger.version), **decision_tags},
    )
    run_id = run.info.run_id
    params = {
        "model": name,
        "version": challenger.version,
        "champion_version": "none" if champion is None else champion.version,
        "metric": metric,
        "window": window,
        "higher_is_better": higher_is_better,
        "min_improvement": margin,
        "promoted": promoted,
    }
    now_ms = time.time_ns() // 1_000_000
    scores = {"challenger_score": challenger_score}
    if champion_score is not None:
        scores["champion_score"] = champion_score
    if gain is not None:
        scores["improvement"] = gain
    client.log_batch(
        run_id,
        metrics=[Metric(k, v, now_ms, 0) for k, v in scores.items()],
        params=[Param(k, str(v)) for k, v in params.items()],
    )
    if promoted:
        client.set_registered_model_alias(name, CHAMPION, str(challenger.version))
    decision_tags["promotion.run_id"] = run_id
    for key, value in decision_tags.items():
        client.set_model_version_tag(name, str(challenger.version), key, value)
    client.set_terminated(run_id)
    return PromotionDecision(
        name=name,
        version=challenger.version,
        promoted=promoted,
        metric=metric,
        window=window,
        higher_is_better=higher_is_better,
        min_improvement=margin,
        challenger_score=challenger_score,
        champion_version=None if champion is None else champion.version,
        champion_score=champion_score,
        improvement=gain,
        reason=reason,
        run_id=run_id,
    )
