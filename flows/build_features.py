"""The Prefect ``build-features`` flow: raw readings to checked features in the feature store.

Deployed from ``prefect.yaml`` as ``flows/build_features.py:build_features``. The steps are the
plain functions of `flows.build_features_steps`: compute per-pump features over the window, check them
(Great Expectations; failing rows go to quarantine with their reasons), write the good rows to
Feast's offline store, register the definitions and materialise them to the online store. The run
publishes a markdown artifact with the counts and the checks.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from pumptwin.flows.build_features_steps import compute_features, store_features
from pumptwin.flows.settings import get_settings

compute_features_task = task(name="compute-features")(compute_features)
store_features_task = task(name="check-store-materialise")(store_features)


@flow(name="build-features")
def build_features(start: datetime | None = None, end: datetime | None = None) -> dict[str, Any]:
    """Compute, check, store and materialise per-pump features over [start, end).

    Args:
        start: First feature timestamp (UTC); None starts with the raw store's data.
        end: End of the window (UTC, exclusive); None runs to the latest reading.
    """
    settings = get_settings()
    frame = compute_features_task(settings, start, end)
    build = store_features_task(settings, frame)
    create_markdown_artifact(key="feature-build", markdown=build.to_markdown(), description="build-features")
    get_run_logger().info("stored %d feature rows for %d pumps", build.stored, build.pumps)
    return build.summary()
