"""The Prefect ``score`` flow: online features -> champion models -> scores written for the twin.

Deployed from ``prefect.yaml`` as ``flows/score.py:score`` (after each feature build). The step is
`flows.score_steps.score_fleet`; the run publishes the scores per pump as a markdown artifact.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from pumptwin.flows.score_steps import score_fleet
from pumptwin.flows.settings import get_settings

score_fleet_task = task(name="score-fleet")(score_fleet)


@flow(name="score")
def score() -> dict[str, Any]:
    """Score every pump's latest features with the champion models and write the scores."""
    settings = get_settings()
    report = score_fleet_task(settings)
    create_markdown_artifact(key="scores", markdown=report.to_markdown(), description="score")
    alarms = int(report.scores["alarm"].sum()) if "alarm" in report.scores else 0
    get_run_logger().info("scored %d pumps, %d in alarm, champions %s", len(report.scores), alarms, report.versions)
    return {"pumps": len(report.scores), "alarms": alarms, "versions": report.versions, "path": str(report.path)}
