"""The Prefect ``implement`` flow: a recommended action carried out inside the guardrails, or once a person approves.

The closed loop's last step (after ``recommend``). For a line's latest recommendation (or a given
``recommendation.json``) the flow writes a ``recommendation`` record to the audit log, builds the
approval request (`pumptwin.control.approval`) and then

- stops when the action keeps the line running as now (nothing to write), or when the request
  was already decided, expired or carried out by an earlier run;
- implements at once when the automatic policy allows it (a small speed change that keeps every
  limit, at a station where automatic implementation is on): the audit log names
  ``auto-implement``;
- otherwise publishes the approval artifact (``approval-<request id>``: what approving writes, why
  it waits, and the recommendation with its evidence) and pauses with a typed input form
  (`flows.implement_steps.approval_form`), keyed by the request id. The approver answers in the
  Prefect UI (or with `flows.implement_steps.answer_request`). No answer within
  ``PUMPTWIN_CONTROL_APPROVAL_TIMEOUT_S``: the request is recorded ``expired`` or ``escalated``
  (with an ``escalation-<request id>`` artifact). A rejection is recorded (a false alarm also
  writes a label); an approval is re-checked in code and on the twin and written through the
  interlocks (`flows.implement_steps.carry_out`). The first answer decides; a second run's later
  answer is recorded and refused.

The control system is the settings' (``PUMPTWIN_CONTROL_BACKEND``): the simulated plant, loaded from
and saved back to ``PUMPTWIN_CONTROL_PLANT_FILE``, or an OPC UA endpoint. Tests and the demo may
pass a controller of their own (``controller``), which is used as it is and neither saved nor closed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_client, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.states import Running

from pumptwin.control.approval import NO_ACTION_KINDS, OPEN_STATUSES, Decision
from pumptwin.control.interface import Controller
from pumptwin.flows import implement_steps as steps
from pumptwin.flows.settings import Settings, get_settings

prepare_task = task(name="prepare-request", cache_policy=NO_CACHE)(steps.prepare)
carry_out_task = task(name="carry-out", cache_policy=NO_CACHE)(steps.carry_out)


@flow(name="implement")
def implement(line: int = 1, recommendation: str | None = None, controller: Any = None) -> dict[str, Any]:  # noqa: ANN401
    """Implement the latest recommendation of a line inside the guardrails, or after a person approves it.

    Args:
        line: The line whose latest recommendation is implemented.
        recommendation: A ``recommendation.json`` to implement instead of the line's latest.
        controller: A `pumptwin.control.interface.Controller` to use instead of the settings' one
            (in-process callers: the demo, tests); it is neither saved nor closed.

    Returns:
        The request id, its status afterwards, a message and the reasons (`steps.Outcome.to_dict`).
    """
    settings = get_settings()
    prepared = prepare_task(settings, line, Path(recommendation) if recommendation else None)
    request = prepared.request
    if request.kind in NO_ACTION_KINDS:
        outcome = steps.record_no_action(settings, prepared)
    elif prepared.status not in OPEN_STATUSES:
        outcome = steps.Outcome(request.id, prepared.status, f"request already {prepared.status}")
    else:
        ctl = controller if controller is not None else steps.open_controller(settings)
        outcome = steps.Outcome(request.id, "", "")
        try:
            outcome = _decide_and_carry_out(settings, prepared, ctl)
        finally:
            if controller is None:
                steps.close_controller(settings, ctl, save=outcome.wrote)
    get_run_logger().info("%s: %s", outcome.status, outcome.message)
    return outcome.to_dict()


def _decide_and_carry_out(settings: Settings, prepared: steps.Prepared, ctl: Controller) -> steps.Outcome:
    """The automatic policy's decision or a person's answer, then the rejection or the implementation."""
    request = prepared.request
    allowed, reasons = steps.auto_check(settings, prepared, ctl)
    if allowed:
        decision = Decision(True, steps.AUTO_WHO, comment="inside the automatic guardrails")
    else:
        answer = _ask(settings, prepared, ctl, reasons)
        if isinstance(answer, steps.Outcome):
            return answer
        decision = answer
    if not steps.decide(settings, request, decision):
        msg = f"answer by {decision.approver or '(unnamed)'} refused: the request was already decided"
        return steps.Outcome(request.id, steps.status(settings, request.id), msg, (msg,))
    if not decision.approve:
        return steps.record_rejection(settings, prepared, decision)
    return carry_out_task(settings, ctl, prepared, decision, decision.approver)


def _ask(settings: Settings, prepared: steps.Prepared, ctl: Controller, reasons: list[str]) -> Decision | steps.Outcome:
    """Publish the approval artifact and pause for the approver's answer; the timeout's outcome without one."""
    request = prepared.request
    now = steps.current_speeds(ctl, request.pumps)
    timeout = settings.control.approval_timeout_s
    create_markdown_artifact(
        key=f"approval-{request.id}",
        markdown=steps.approval_markdown(prepared, now, reasons, timeout),
        description=f"approval request: {request.action}",
    )
    try:
        answer = pause_flow_run(
            wait_for_input=steps.approval_form(request, now),
            timeout=timeout,
            poll_interval=settings.control.approval_poll_s,
            key=request.id,
        )
    except FlowPauseTimeout:
        _stop_waiting()
        outcome = steps.record_timeout(settings, request)
        if outcome.status == "escalated":
            create_markdown_artifact(
                key=f"escalation-{request.id}",
                markdown=steps.escalation_markdown(request, settings.control.escalate_to),
                description="escalated approval request",
            )
        return outcome
    return steps.decision_from_form(answer, request)


def _stop_waiting() -> None:
    """Take the timed-out run out of its pause, so it ends Completed and a late answer is refused by the server.

    Without this the run stays Paused after the client-side timeout (PrefectHQ/prefect#11414) and
    the server fails it when the flow returns ("completed and never resumed").
    """
    run = FlowRunContext.get()
    if run is None or run.flow_run is None:
        return
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run.flow_run.id, Running(name="Expired"), force=True)
