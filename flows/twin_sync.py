"""The Prefect ``twin-sync`` flow: synchronise the twin with the plant, then weigh responses to its alerts.

Deployed from ``prefect.yaml`` as ``flows/twin_sync.py:twin_sync`` (every 15 minutes, after
ingestion and scoring). The steps are the plain functions of `flows.twin_sync_steps`: fold the readings
since the last calibration into the twin and save its calibration and state, then evaluate the
candidate responses (`twin.sync.candidate_responses`) of every line with an active alert on the
calibrated twin. The run publishes one markdown artifact (``twin-state``): the health table, the
alerts with their evidence, the margins, the candidate what-if table per line and the paths of
its plots. When an alert is active it then runs the ``recommend`` flow (`flows.recommend`) as a
subflow, which publishes the recommended action with its evidence.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from pumptwin.flows.settings import get_settings
from pumptwin.flows.twin_sync_steps import (
    DEFAULT_HISTORY_S,
    DEFAULT_WINDOW_S,
    respond_to_alerts,
    sync_markdown,
    sync_twin,
)

sync_twin_task = task(name="sync-twin")(sync_twin)
respond_task = task(name="candidate-responses")(respond_to_alerts)


@flow(name="twin-sync")
def twin_sync(
    window_s: float = DEFAULT_WINDOW_S, history_s: float = DEFAULT_HISTORY_S, recommend: bool = True
) -> dict[str, Any]:
    """Fold the new readings into the twin, assess its health, and evaluate responses to its alerts.

    Args:
        window_s: Length of the windows readings are folded in, s.
        history_s: How far back the first synchronisation reads, s.
        recommend: Run the ``recommend`` flow when an alert is active.
    """
    settings = get_settings()
    report = sync_twin_task(settings, window_s=window_s, history_s=history_s)
    runs = respond_task(settings, report)
    create_markdown_artifact(key="twin-state", markdown=sync_markdown(report, runs), description="twin-sync")
    alerts = len(report.state.alerts) if report.state is not None else 0
    get_run_logger().info("%s; %d active alerts, %d what-if studies", report.message, alerts, len(runs))
    recommended: dict[str, Any] | None = None
    if recommend and alerts:
        from pumptwin.flows.recommend import recommend as recommend_flow

        recommended = recommend_flow()
    return {
        "recommendation": recommended,
        "updated": report.updated,
        "message": report.message,
        "alerts": alerts,
        "attention": report.attention,
        "whatif_folders": [str(r.folder) for r in runs],
    }
