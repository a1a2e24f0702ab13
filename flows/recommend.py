"""The Prefect ``recommend`` flow: the best action per alerted line, simulated, ranked and justified with evidence.

Run by ``twin-sync`` when its state has an alert (and deployed from ``prefect.yaml`` to run on
demand). The steps are the plain functions of `flows.recommend_steps`: open (or build) the knowledge
store, recommend for every line with an active alert on the calibrated twin, and write the files.
The run publishes one markdown artifact per line (``recommendation-line<n>``): the action, its
expected effect with the twin's numbers, the score's terms, the ranked alternatives and why each
lost, the justification with its citations, the model scores and the plots' paths.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from pumptwin.flows.recommend_steps import recommend_lines, recommendation_markdown
from pumptwin.flows.settings import get_settings

recommend_task = task(name="recommend-lines")(recommend_lines)


@flow(name="recommend")
def recommend(search: bool = True, plots: bool = True) -> dict[str, Any]:
    """Recommend an action for every line with an active alert and publish it for the approver.

    Args:
        search: Also search the continuous pump speeds for the best operating point.
        plots: Draw the pump curves and the pressure profile of the chosen action.
    """
    settings = get_settings()
    report = recommend_task(settings, search=search, plots=plots)
    for item in report.lines:
        create_markdown_artifact(
            key=f"recommendation-line{item.line}", markdown=recommendation_markdown(item), description="recommend"
        )
    logger = get_run_logger()
    logger.info("%s", report.message)
    return {
        "message": report.message,
        "lines": [
            {
                "line": item.line,
                "action": item.run.recommendation.chosen.name,
                "generator": item.run.recommendation.generator,
                "folder": str(item.folder),
            }
            for item in report.lines
        ],
    }
