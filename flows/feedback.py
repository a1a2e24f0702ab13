"""The Prefect ``feedback`` flow: the closed loop learns from what the plant did after an action.

For every implemented action (the audit log's ``done`` records) whose verification window the raw
store now covers and that has no outcome yet, the flow compares the plant's readings with the
twin's predictions (the expectations the interlocks checked), writes an ``outcome`` record to the
audit log and appends label rows to ``<labels_dir>/action_outcomes.csv``; it turns maintenance
findings after alerts into confirmed-fault labels (and lets unrefuted false alarms stand). When
there are new labels it retrains through the ``train`` flow, whose promotion gate still decides,
with the audit records it learnt from as the runs' ``pumptwin.lineage.*`` tags; then it
recalibrates the twin through ``twin-sync`` (without starting a new recommendation). The run
publishes a markdown artifact ``feedback``. A second run on the same data adds nothing.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from pumptwin.flows import feedback_steps as steps
from pumptwin.flows.settings import get_settings

find_pending_task = task(name="find-implemented-actions", cache_policy=NO_CACHE)(steps.find_pending)
evaluate_task = task(name="evaluate-outcome", cache_policy=NO_CACHE)(steps.evaluate)
record_outcome_task = task(name="record-outcome", cache_policy=NO_CACHE)(steps.record_outcome)
confirm_faults_task = task(name="confirm-faults", cache_policy=NO_CACHE)(steps.confirm_faults)


@flow(name="feedback")
def feedback(
    request: str | None = None, window_s: float = 3600.0, retrain: bool = True, recalibrate: bool = True
) -> dict[str, Any]:
    """Evaluate implemented actions against the twin's predictions, label them, retrain and recalibrate.

    Args:
        request: Only this request's outcome (None: every implemented request without one).
        window_s: Verification window after the action (and trend window before it), s.
        retrain: Run the ``train`` flow when there are new labels.
        recalibrate: Run the ``twin-sync`` flow afterwards.

    Returns:
        ``outcomes`` (each outcome with its audit record and ``report``, the path of the document the
        recommender cites it by), ``pending`` (implementations still
        waiting for data), ``labels`` (counts of new label rows and records), ``training`` (the
        train flow's outcomes, None when not run), ``recalibration`` (the twin-sync summary, None
        when not run) and ``message``.
    """
    settings = get_settings()
    found = find_pending_task(settings, request, window_s)
    outcomes = [record_outcome_task(settings, p, evaluate_task(settings, p, window_s)) for p in found if p.ready]
    labels = confirm_faults_task(settings)
    counts = {
        "outcome_rows": sum(o["label_rows"] for o in outcomes),
        "outcomes": len(outcomes),
        "confirmed": sum(x["label"] == steps.CONFIRMED for x in labels),
        "false_alarms": sum(x["label"] != steps.CONFIRMED for x in labels),
    }
    training = None
    if retrain and (outcomes or labels):
        from pumptwin.flows.train import train

        training = train(lineage=steps.lineage(settings, outcomes, labels))
    recalibration = None
    if recalibrate:
        from pumptwin.flows.twin_sync import twin_sync

        recalibration = twin_sync(recommend=False)
    waiting = [p for p in found if not p.ready]
    message = steps.summary_line(outcomes, waiting, counts, training)
    create_markdown_artifact(
        key="feedback",
        markdown=steps.feedback_markdown(outcomes, waiting, labels, training, message),
        description="feedback",
    )
    get_run_logger().info(message)
    return {
        "outcomes": [o["outcome"] | {"seq": o["seq"], "hash": o["hash"], "report": o["report"]} for o in outcomes],
        "pending": [p.to_dict() for p in waiting],
        "labels": counts,
        "training": training,
        "recalibration": recalibration,
        "message": message,
    }
