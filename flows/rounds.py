"""The Prefect ``rounds`` flow: this week's condition-based inspection round.

Builds the planner's conditions from the saved twin state fused with the stored route evidence
(`twin.inspection.planner.conditions_from_state`: health, uncertainty, time since the last visit,
consequence, sensor flags) and plans the round with the inspection settings' budget and costs
(`twin.inspection.planner.plan_round`). The round is written to
``<home>/inspection/rounds/round-<year>-w<week>.csv`` (visits), ``-covered.csv`` (assets the twin
covers) and ``.md``, and published as a markdown artifact under the same key
(``round-2026-w49``). The step is `flows.inspection_steps.plan_week`.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from pumptwin.flows import inspection_steps as steps
from pumptwin.flows.settings import get_settings

plan_task = task(name="plan-round", cache_policy=NO_CACHE)(steps.plan_week)


@flow(name="rounds")
def rounds(now: str | None = None) -> dict[str, Any]:
    """Plan and publish this week's inspection round.

    Args:
        now: Time of the plan (ISO 8601, UTC); None: the wall clock.

    Returns:
        ``key``, ``visits`` (assets in rank order), ``stations``, ``hours``, ``covered`` (assets left
        to the twin) and ``paths`` of the files written.
    """
    settings = get_settings()
    report = plan_task(settings, now)
    create_markdown_artifact(key=report.key, markdown=report.to_markdown(), description="rounds")
    plan = report.plan
    get_run_logger().info(
        "%s: %d visits at %d stations, %.1f h; %d assets covered by the twin",
        report.key,
        len(plan.visits),
        len(plan.stations),
        plan.hours,
        len(plan.covered),
    )
    return {
        "key": report.key,
        "visits": plan.assets,
        "stations": plan.stations,
        "hours": plan.hours,
        "covered": [str(a) for a in plan.covered["asset"]],
        "paths": {k: str(p) for k, p in report.paths.items()},
    }
