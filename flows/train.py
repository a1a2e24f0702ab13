"""The Prefect ``train`` flow: train, evaluate, register and gate every model family.

Deployed from ``prefect.yaml`` as ``flows/train.py:train`` (nightly). Each family is one task
(`flows.train_steps.train_family`): a point-in-time-correct training set through its Feast feature
service, labels of the faults known by the end of the data (fault records that have failed, and
maintenance records) for diagnosis, time to failure and judging, an anomaly baseline chosen
without labels (time since commissioning or repair), training on the earlier window and
evaluation on the later held-out window, an MLflow run with parameters,
metrics, plots and lineage, a new registered version, and the promotion gate, which moves the
``champion`` alias only when the challenger beats the champion on the same held-out window. A
family without enough data is skipped with its reason; the run's markdown artifact lists every
family's outcome.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from pumptwin.flows.settings import get_settings
from pumptwin.flows.train_steps import FAMILIES, outcomes_markdown, train_family

train_family_task = task(name="train-family")(train_family)


@flow(name="train")
def train(families: list[str] | None = None, lineage: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Train the model families (all of them when ``families`` is None) and gate their promotion.

    Args:
        families: Any of ``anomaly``, ``diagnosis``, ``ttf``.
        lineage: What this training learnt from beyond the feature store (e.g. the audit records of
            the outcomes and labels behind a retraining), set on every run as tags ``pumptwin.lineage.<key>``.
    """
    settings = get_settings()
    chosen = list(FAMILIES) if families is None else families
    unknown = sorted(set(chosen) - set(FAMILIES))
    if unknown:
        raise ValueError(f"unknown model families {unknown}; choose from {list(FAMILIES)}")
    outcomes = [train_family_task(settings, family, lineage) for family in chosen]
    create_markdown_artifact(key="training", markdown=outcomes_markdown(outcomes), description="train")
    logger = get_run_logger()
    for o in outcomes:
        logger.info("%s: %s %s %s", o.family, o.status, o.decision, o.reason)
    return [asdict(o) for o in outcomes]
