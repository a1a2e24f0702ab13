"""The steps of training: labelled training sets from Feast, three model families, MLflow and the gate.

Plain functions over the settings: the Prefect flow ``train`` (`flows.train`) wraps them as tasks.
For each family (anomaly, diagnosis, time to failure) a point-in-time-correct training set is
read through the family's Feast feature service, joined with the fault labels known by the end of
the data (`known_fault_labels`: fault records whose functional failure lies within the data, and
maintenance records, `features.labels.pump_labels`), split in time, trained and judged on the
held-out window (`models.training`), logged to MLflow with its lineage and plots, registered, and
put through the promotion gate (`models.registry.promote_if_better`).

What the field would not know, the models do not learn from: a fault that has not failed yet is
no label, and the anomaly detector's baseline rows are chosen without labels, by time since
commissioning or since the last repair or replacement in the maintenance records
(`models.training.baseline_mask`, `pump_restarts`). The labels train diagnosis and time to
failure, and judge every family on the held-out window.
"""

from __future__ import annotations

import logging
import math
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pumptwin.flows.build_features_steps import read_fault_labels
from pumptwin.flows.settings import Settings
from pumptwin.models.training import (
    FamilyResult,
    TimeSplit,
    TrainConfig,
    time_split,
    train_anomaly,
    train_diagnosis,
    train_ttf,
)

Trainer = Callable[[pd.DataFrame, TimeSplit, TrainConfig, Path], FamilyResult]

_LOG = logging.getLogger(__name__)

FAMILIES: dict[str, tuple[str, str, Trainer]] = {
    "anomaly": ("anomaly_detector", "pump-anomaly", train_anomaly),
    "diagnosis": ("failure_diagnosis", "pump-failure-mode", train_diagnosis),
    "ttf": ("time_to_failure", "pump-time-to-failure", train_ttf),
}
"""Family -> (Feast feature service, registered model name, trainer)."""

MAINTENANCE_FILE = "maintenance.csv"
"""Maintenance records (``asset, ts, action[, mode, onset_ts, failure_ts]``) in the labels folder."""
LINEAGE_TAG_PREFIX = "pumptwin.lineage."
"""Prefix of the run tags that name what a training run learnt from beyond the feature store (`lineage_tags`)."""


@dataclass(frozen=True)
class FamilyOutcome:
    """What training one family did.

    Attributes:
        family: Model family.
        status: ``trained`` or ``skipped``.
        reason: Why it was skipped, or the gate's reason.
        metrics: Held-out metrics.
        run_id: MLflow run.
        version: Registered version.
        decision: Gate decision (``promoted``, ``rejected``, ``not gated``).
        challenger_score: The challenger's gate metric on the held-out window.
        champion_score: The champion's, on the same window (NaN when there was none).
        champion: Champion version after the gate.
    """

    family: str
    status: str
    reason: str = ""
    metrics: dict[str, float] | None = None
    run_id: str = ""
    version: str = ""
    decision: str = ""
    challenger_score: float = math.nan
    champion_score: float = math.nan
    champion: str = ""


def train_config(settings: Settings) -> TrainConfig:
    """The training settings of the settings object."""
    m = settings.models
    return TrainConfig(
        m.target_far,
        m.min_run,
        m.seed,
        m.train_fraction,
        m.autoencoder,
        warmup_s=m.long_window_s,
        max_threshold_raise=m.max_threshold_raise,
        confirmed_weight=m.confirmed_weight,
    )


def tracking(settings: Settings) -> Any:  # noqa: ANN401 - models.registry.Tracking, imported lazily
    """MLflow's tracking configuration from the settings."""
    from pumptwin.models.registry import Tracking

    return Tracking(settings.mlflow_tracking_uri, settings.mlflow_artifact_root)


def code_version() -> str | None:
    """Git commit of the working tree, or None outside a checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False)
    except OSError:
        return None
    return out.stdout.strip() or None


def read_maintenance(settings: Settings) -> pd.DataFrame | None:
    """Maintenance records from ``<labels_dir>/maintenance.csv``, if there are any."""
    path = settings.labels_dir / MAINTENANCE_FILE
    if not path.is_file():
        return None
    frame = pd.read_csv(path)
    for col in ("ts", "onset_ts", "failure_ts"):
        if col in frame.columns:
            frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame


def healthy_windows(settings: Settings) -> pd.DataFrame:
    """Stretches confirmed healthy: ``pump_id, start, end`` of each false-alarm label of a pump.

    A rejection as a false alarm (``<labels_dir>/false_alarms.csv``, written by the implement
    flow) says the alarmed pump ran as it should from the alert's start up to the twin state the
    approver judged (the label's ``until``); its rows count as healthy from the start to that
    time, and for at least ``settings.models.false_alarm_window_s``. Labels of the line, rows
    without a time and an unreadable file are left out (the file is kept as it is).
    """
    from pumptwin.control.approval import FALSE_ALARMS_FILE

    empty = pd.DataFrame(
        {
            "pump_id": pd.Series(dtype=str),
            "start": pd.Series(dtype="datetime64[ns, UTC]"),
            "end": pd.Series(dtype="datetime64[ns, UTC]"),
        }
    )
    path = settings.labels_dir / FALSE_ALARMS_FILE
    if not path.is_file():
        return empty
    try:
        labels = pd.read_csv(path, dtype=str)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        _LOG.warning("false-alarm labels %s not read, nothing learnt from them: %s", path, exc)
        return empty
    if not {"asset", "ts"} <= set(labels.columns):
        _LOG.warning("false-alarm labels %s lack the columns asset and ts: nothing learnt from them", path)
        return empty
    start = pd.to_datetime(labels["ts"], utc=True, errors="coerce")
    asset = labels["asset"].astype(str)
    if start.isna().any():
        _LOG.warning("false-alarm labels %s: %d row(s) without a readable ts left out", path, int(start.isna().sum()))
    keep = start.notna().to_numpy() & ~asset.str.startswith("LINE").to_numpy()
    window = pd.Timedelta(seconds=settings.models.false_alarm_window_s)
    until = labels["until"] if "until" in labels.columns else pd.Series(None, index=labels.index, dtype=object)
    out = pd.DataFrame({"pump_id": asset[keep].to_numpy(), "start": start[keep].to_numpy()})
    out["start"] = pd.to_datetime(out["start"], utc=True)
    seen = pd.to_datetime(until[keep].reset_index(drop=True), utc=True, errors="coerce")  # empty: NaT
    end = out["start"] + window
    out["end"] = end.where(~(seen > end), seen)
    return out.drop_duplicates().reset_index(drop=True) if len(out) else empty


def known_fault_labels(labels: pd.DataFrame, until: pd.Timestamp) -> pd.DataFrame:
    """The fault records known at ``until``: those whose functional failure lies at or before it.

    A fault still developing at the end of the data is not known in the field (nor is its failure
    time): it labels nothing.
    """
    if labels.empty or "failure_ts" not in labels.columns:
        return labels
    failure = pd.to_datetime(labels["failure_ts"], utc=True)
    return labels[(failure <= until).to_numpy()].reset_index(drop=True)


def pump_restarts(maintenance: pd.DataFrame | None) -> pd.DataFrame:
    """Repairs and replacements ``pump_id, ts`` in the maintenance records: where a pump's life restarts."""
    from pumptwin.features.labels import RESET_ACTIONS

    if maintenance is None or maintenance.empty or not {"asset", "ts", "action"} <= set(maintenance.columns):
        return pd.DataFrame({"pump_id": pd.Series(dtype=str), "ts": pd.Series(dtype="datetime64[ns, UTC]")})
    reset = maintenance["action"].astype(str).str.strip().str.lower().isin(RESET_ACTIONS).to_numpy()
    rows = maintenance[reset]
    return pd.DataFrame({"pump_id": rows["asset"].astype(str).to_numpy(), "ts": pd.to_datetime(rows["ts"], utc=True)})


def labelled_training_set(settings: Settings, service: str) -> pd.DataFrame:
    """Every offline feature row's features through ``service``, point-in-time joined, with the known labels."""
    from pumptwin.features.labels import pump_labels
    from pumptwin.features.store import apply_definitions, offline_path, training_set
    from pumptwin.flows.store_steps import feature_store

    path = offline_path(settings.feast_dir)
    if not path.is_file():
        return pd.DataFrame()
    keys = pd.read_parquet(path, columns=["pump_id", "event_timestamp"]).drop_duplicates()
    known = known_fault_labels(read_fault_labels(settings), pd.to_datetime(keys["event_timestamp"], utc=True).max())
    entity = pump_labels(keys, known, read_maintenance(settings))
    store = feature_store(settings)
    apply_definitions(store)
    frame = training_set(store, entity, service)
    return frame.sort_values(["pump_id", "event_timestamp"], kind="stable").reset_index(drop=True)


def lineage_tags(lineage: Mapping[str, str] | None) -> dict[str, str]:
    """The caller's lineage (e.g. the audit records a retraining learnt from) as run tags ``pumptwin.lineage.<key>``."""
    return {f"{LINEAGE_TAG_PREFIX}{k}": str(v) for k, v in (lineage or {}).items()}


def train_family(settings: Settings, family: str, lineage: Mapping[str, str] | None = None) -> FamilyOutcome:
    """Train one family, log and register it, and gate its promotion; a family without data is skipped.

    Args:
        settings: The settings of this entry point.
        family: ``anomaly``, ``diagnosis`` or ``ttf``.
        lineage: Extra lineage, set on the run and the model version as tags ``pumptwin.lineage.<key>``.
    """
    from pumptwin.features.definitions import SERVICES
    from pumptwin.models.registry import (
        Lineage,
        default_pip_requirements,
        frame_digest,
        log_training_run,
        promote_if_better,
    )
    from pumptwin.models.training import TrainingError

    service, name, trainer = FAMILIES[family]
    frame = labelled_training_set(settings, service)
    if frame.empty:
        return FamilyOutcome(family, "skipped", "no features in the offline store: run build-features first")
    config = train_config(settings)
    try:
        split = time_split(frame["event_timestamp"], config.train_fraction)
        plot_dir = settings.home / "plots" / family / pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%S")
        if family == "anomaly":
            result = train_anomaly(
                frame,
                split,
                config,
                plot_dir,
                restarts=pump_restarts(read_maintenance(settings)),
                healthy_windows=healthy_windows(settings),
            )
        elif family == "diagnosis":
            result = train_diagnosis(frame, split, config, plot_dir, healthy_windows=healthy_windows(settings))
        else:
            result = trainer(frame, split, config, plot_dir)
    except (TrainingError, ValueError) as exc:  # one family's bad data must not stop the others
        return FamilyOutcome(family, "skipped", str(exc))
    data_lineage = Lineage(
        feature_service=service,
        feature_views=SERVICES[service],
        train_start=split.train_start.to_pydatetime(),
        train_end=split.train_end.to_pydatetime(),
        holdout_start=split.heldout_start.to_pydatetime(),
        holdout_end=(split.heldout_end + pd.Timedelta(microseconds=1)).to_pydatetime(),
        train_rows=result.train_rows,
        holdout_rows=result.heldout_rows,
        dataset_digest=frame_digest(frame),
        code_version=code_version(),
    )
    finite = {k: float(v) for k, v in result.metrics.items() if math.isfinite(v)}
    requirements = [*default_pip_requirements(), "torch==2.13.0"] if family == "anomaly" else None
    track = tracking(settings)
    run = log_training_run(
        track,
        experiment=f"pumptwin-{family}",
        model=result.model,
        params=result.params,
        metrics=finite,
        plots=result.plots,
        lineage=data_lineage,
        input_example=result.input_example,
        registered_name=name,
        pip_requirements=requirements,
        tags={**({"pumptwin.notes": "; ".join(result.notes)} if result.notes else {}), **lineage_tags(lineage)} or None,
        run_name=f"{family}-{split.train_end:%Y%m%d}",
    )
    version = str(run.version)
    if not math.isfinite(result.metrics.get(result.gate_metric, math.nan)):
        reason = f"{result.gate_metric} undefined on the held-out window ({result.heldout_rows} rows): champion kept"
        return FamilyOutcome(family, "trained", reason, finite, run.run_id, version, "not gated")
    decision = promote_if_better(
        track,
        name,
        int(version),
        evaluate=result.evaluate,
        metric=result.gate_metric,
        higher_is_better=result.higher_is_better,
        window=split.window,
        min_improvement=settings.models.min_improvement,
    )
    champion = version if decision.promoted else str(decision.champion_version or "")
    return FamilyOutcome(
        family,
        "trained",
        decision.reason,
        finite,
        run.run_id,
        version,
        "promoted" if decision.promoted else "rejected",
        decision.challenger_score,
        decision.champion_score if decision.champion_score is not None else math.nan,
        champion,
    )


def outcomes_markdown(outcomes: list[FamilyOutcome]) -> str:
    """The training run as markdown: one row per family with its gate decision and metrics."""
    lines = [
        "# Training",
        "",
        "| family | status | version | gate | challenger | champion score | champion | metrics |",
        "|---|---|---|---|---:|---:|---|---|",
    ]
    for o in outcomes:
        metrics = ", ".join(f"{k}={v:.3g}" for k, v in (o.metrics or {}).items())
        lines.append(
            f"| {o.family} | {o.status} | {o.version} | {o.decision}{': ' + o.reason if o.reason else ''} | "
            f"{o.challenger_score:.4g} | {o.champion_score:.4g} | {o.champion} | {metrics} |"
        )
    return "\n".join(lines)
