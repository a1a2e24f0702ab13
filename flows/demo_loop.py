"""The closed loop of ``pumptwin demo``: approve, implement and verify on the plant, then learn from the outcome.

After the demo's recommendation (steps 1-5 in `flows.demo`) the loop goes on, on the same simulated
plant that produced the ingested readings:

6. approve: the Prefect ``implement`` flow builds the approval request and pauses for a person
   (automatic implementation is off for this run). In demo mode an automatic approver answers
   from another thread through Prefect's API, with the same answer the UI form sends
   (`flows.implement_steps.find_paused_run`, `answer_request`, `form_answer`). An action that keeps
   the line running as now (or only asks for maintenance) writes nothing, and the loop goes to 8;
7. implement and verify: the flow writes through the interlocks to the simulated plant, which then
   runs on for `RUN_ON_S` of plant time; its new readings go through the ``ingest`` flow, and the
   measured effect is printed: the twin's predicted against the plant's observed flow and
   pressure of the pumps changed, and the trend of each asset at risk before and after;
8. learn: the ``feedback`` flow records the outcome and its labels, retrains through the promotion
   gate with the audit records as the runs' lineage, and recalibrates the twin.
"""

from __future__ import annotations

import contextvars
import math
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pumptwin.flows.demo import fmt_num, fmt_quantity, fmt_signed, plant_readings_file, readable_times, show
from pumptwin.flows.settings import Settings

if TYPE_CHECKING:
    from uuid import UUID

    from pumptwin.control.simulated import SimulatedController

APPROVER = "demo approver"
"""Who the automatic approver signs as in the audit log."""
DEMO_MODE_NOTE = "demo mode: an automatic approver answers through Prefect's API exactly as the UI form would"
DEMO_CONTROL_ENV: dict[str, str] = {
    "PUMPTWIN_CONTROL_AUTO_IMPLEMENT": "false",
    "PUMPTWIN_CONTROL_APPROVAL_POLL_S": "1",
    "PUMPTWIN_CONTROL_APPROVAL_TIMEOUT_S": "600",
}
"""The control settings of the demo's implement run: every request waits for a person, who is answered quickly."""
PAUSE_WAIT_S = 600.0
"""Longest wall time the automatic approver waits for the paused run, s."""
POLL_S = 0.5
"""How often the automatic approver looks for the paused run, s."""
RUN_ON_S = 3 * 3600.0
"""Plant time the plant runs on after the change before its readings are ingested, s."""
REASONS_SHOWN = 5
"""Reasons of a refusal or rollback shown (all of them are in the audit log)."""
TAG_SHOWN = 80
"""Characters of a lineage tag shown (the full value is on the MLflow run)."""
FEEDBACK_WINDOW_S = 3600.0
"""Verification window after the change (and trend window before it), s."""


# ---------------------------------------------------------------------------------------- settings


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the block (the flows build their settings from them), then restore them."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# ---------------------------------------------------------------------------------------- approver


@dataclass
class AutoApprover:
    """Answers one request's paused run from another thread, as a person in the Prefect UI would.

    Args:
        request: The request id (the paused run's key).
        answer: The form's answer (`flows.implement_steps.form_answer`).
        timeout_s: Longest wall time to wait for the paused run, s.
    """

    request: str
    answer: Mapping[str, Any]
    timeout_s: float = PAUSE_WAIT_S
    run_id: UUID | None = None
    waited_s: float = math.nan
    error: str = ""
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Start looking for the paused run in a thread (with the caller's Prefect context)."""
        ctx = contextvars.copy_context()
        self._thread = threading.Thread(target=ctx.run, args=(self._answer,), name="demo-approver", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop looking (the flow ended) and wait for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _answer(self) -> None:
        from pumptwin.flows.implement_steps import answer_request, find_paused_run

        t0 = time.monotonic()
        try:
            while not self._stop.is_set() and time.monotonic() - t0 < self.timeout_s:
                run_id = find_paused_run(self.request)
                if run_id is not None:
                    answer_request(run_id, self.answer)
                    self.run_id, self.waited_s = run_id, time.monotonic() - t0
                    return
                self._stop.wait(POLL_S)
            if not self._stop.is_set():
                self.error = f"no paused run for request {self.request} within {self.timeout_s:g} s"
        except Exception as exc:  # noqa: BLE001 - reported on screen; the flow then times out on its own
            self.error = f"{type(exc).__name__}: {exc}"


def flow_run_name(run_id: UUID) -> str:
    """The Prefect name of a flow run (``dynamic-tiger``), "" when it cannot be read."""
    from prefect import get_client

    try:
        with get_client(sync_client=True) as client:
            return str(client.read_flow_run(run_id).name)
    except Exception:  # noqa: BLE001 - a name is only shown
        return ""


# ---------------------------------------------------------------------------------------- 6 and 7


@dataclass(frozen=True)
class Approval:
    """What step 6 did: the request, its outcome from the implement flow and the paused run answered."""

    request: str
    action: str
    outcome: Mapping[str, Any]
    run_id: UUID | None = None


def _speed(x: float) -> str:
    return "stopped" if not math.isfinite(x) or x <= 0 else f"{100 * x:.1f} %"


_READ_EXPECTED = re.compile(r"(?P<tag>[A-Z0-9_.]+) read (?P<read>\S+), expected (?P<value>\S+) ± (?P<tol>[^\s;,)]+)")


def for_people(text: str) -> str:
    """The interlocks' and flow's messages with their readings in engineering units and sensible decimals."""

    def repl(m: re.Match[str]) -> str:
        tag = m["tag"]
        try:
            read, value, tol = float(m["read"]), float(m["value"]), float(m["tol"])
        except ValueError:
            return m.group(0)
        q = fmt_quantity
        return f"{tag} read {q(read, tag)}, the twin expected {q(value, tag)} ± {q(tol, tag)}"

    return _READ_EXPECTED.sub(repl, text)


def approve_and_implement(settings: Settings, recommendation: Path, controller: SimulatedController) -> Approval | None:
    """Step 6: run ``implement`` on the recommendation, answered by the automatic approver; None for no action."""
    from pumptwin.control.approval import NO_ACTION_KINDS, request_id, target_speeds
    from pumptwin.flows import implement_steps as steps
    from pumptwin.flows.implement import implement

    rec = steps.load_recommendation(recommendation)
    action = rec.chosen.name
    request = request_id(rec.line, rec.recommended_at, action)
    show()
    show(f"6. approve: flow 'implement' on line {rec.line}'s recommendation: {action}")
    if rec.chosen.kind in NO_ACTION_KINDS:
        show(f"   {action!r} keeps the line running as now (or asks only for maintenance): nothing to approve")
        show("   or write; on to step 8")
        return None
    writes = target_speeds(rec.chosen, rec.base)
    pumps = sorted(writes)
    show("   what approving writes: " + (", ".join(f"{p} {_speed(s)}" for p, s in sorted(writes.items())) or "nothing"))
    show(f"   request {request} waits for a person (automatic implementation is off for this run);")
    show(f"   its approval form and artifact 'approval-{request}' are on the paused run in the Prefect UI")
    show(f"   {DEMO_MODE_NOTE}")
    answer = steps.form_answer(True, APPROVER, comment="demo: approved as recommended")
    approver = AutoApprover(request, answer)
    with environment(DEMO_CONTROL_ENV):
        approver.start()
        try:
            outcome = implement(line=rec.line, recommendation=str(recommendation), controller=controller)
        finally:
            approver.stop()
    if approver.run_id is not None:
        name = flow_run_name(approver.run_id)
        show(
            f"   paused run {name or approver.run_id} answered after {approver.waited_s:.0f} s:"
            f" approved by {APPROVER!r} (pumps {', '.join(pumps)})"
        )
    elif approver.error:
        show(f"   the automatic approver did not answer: {approver.error}")
    return Approval(request, action, outcome, approver.run_id)


def show_implementation(settings: Settings, approval: Approval) -> bool:
    """Print what the flow did on the plant and the interlocks' check after settling; True when implemented."""
    from pumptwin.control.audit import AuditLog
    from pumptwin.flows.implement_steps import audit_path

    out = approval.outcome
    show()
    status = str(out.get("status", "")).replace("_", " ")
    show(f"7. implement: flow 'implement' through the interlocks to the simulated plant: {status}")
    show(f"   {for_people(str(out.get('message', '')))}")
    before, after = out.get("before") or {}, out.get("after") or {}
    for pump in sorted(set(before) | set(after)):
        show(f"   {pump}: speed {_speed(before.get(pump, math.nan))} -> {_speed(after.get(pump, math.nan))}")
    reasons = [str(r) for r in out.get("reasons") or []]
    for reason in reasons[1:REASONS_SHOWN] if len(reasons) > 1 else []:
        show(f"   - {for_people(reason)}")
    verified = AuditLog(audit_path(settings)).records(request=approval.request, kind="verified")
    if verified:
        record = verified[-1]
        observed = record.after or {}
        settle = fmt_num(settings.control.settle_s)
        show(f"   checked after {settle} s: the twin's predicted change against the plant's readings")
        for tag, value, tol in (record.data or {}).get("expect", []):
            seen = observed.get(tag, math.nan)
            show(
                f"     {tag:<22} twin {fmt_quantity(float(value), tag)}, plant {fmt_quantity(float(seen), tag)}"
                f" (tolerance ±{fmt_quantity(float(tol), tag)})"
            )
    return out.get("status") == "implemented"


def run_on_and_ingest(settings: Settings, controller: SimulatedController) -> dict[str, Any]:
    """Let the plant run on for `RUN_ON_S`, then ingest its new readings through the ``ingest`` flow."""
    from pumptwin.flows.ingest import ingest

    controller.wait(RUN_ON_S)
    readings = controller.take_readings()
    path = plant_readings_file(settings, readings, "after-action")
    summary = ingest(source=str(path), incremental=False)
    show(
        f"   the plant ran on {fmt_num(RUN_ON_S / 3600)} h to {controller.plant.now:%Y-%m-%d %H:%M} UTC;"
        f" {summary['rows_in']:,} new readings through flow 'ingest' ({summary['stored']:,} stored,"
        f" {summary['rejected']:,} quarantined) from {path}"
    )
    return summary


def show_effect(settings: Settings, request: str) -> None:
    """Print the measured effect of the request: predictions against the plant, trends of the assets at risk."""
    from pumptwin.flows import feedback_steps

    pending = [p for p in feedback_steps.find_pending(settings, request, FEEDBACK_WINDOW_S) if p.ready]
    if not pending:
        show("   measured effect: the raw store does not cover the verification window yet")
        return
    outcome = feedback_steps.evaluate(settings, pending[0], FEEDBACK_WINDOW_S)
    show(
        f"   measured effect over the hour from {outcome.window_start:%Y-%m-%d %H:%M} UTC"
        f" (median of the plant's readings): {outcome.verdict}"
    )
    for c in outcome.checks:
        verdict = "within" if c.within else "outside"
        show(
            f"     {c.tag:<22} twin {fmt_quantity(c.predicted, c.tag)}, plant {fmt_quantity(c.observed, c.tag)}"
            f" ({verdict} ±{fmt_quantity(c.tolerance, c.tag)})"
        )
    for t in outcome.effects:
        unit = f" {t.unit}/h" if t.unit else "/h"
        show(
            f"     {t.tag:<22} trend {fmt_signed(t.before_per_h)}{unit} before, {fmt_signed(t.after_per_h)}{unit} after"
            + (f" ({t.mode.replace('_', ' ')})" if t.mode else "")
        )


# ---------------------------------------------------------------------------------------- 8


def lineage_tags(settings: Settings, run_id: str) -> dict[str, str]:
    """The ``pumptwin.lineage.*`` tags of an MLflow run (empty when it cannot be read)."""
    from pumptwin.flows.train_steps import tracking
    from pumptwin.models.registry import open_client

    try:
        run = open_client(tracking(settings)).get_run(run_id)
    except Exception:  # noqa: BLE001 - the lineage is only shown
        return {}
    prefix = "pumptwin.lineage."
    return {k.removeprefix(prefix): v for k, v in run.data.tags.items() if k.startswith(prefix)}


def learn(settings: Settings) -> dict[str, Any]:
    """Step 8: run the ``feedback`` flow and print the outcome, the labels, the retraining and its lineage."""
    from pumptwin.flows.feedback import feedback

    show()
    show("8. learn: flow 'feedback' (outcome against the twin, labels, retraining through the gate, recalibration) ...")
    result = feedback(request=None, window_s=FEEDBACK_WINDOW_S, retrain=True, recalibrate=True)
    for o in result.get("outcomes", []):
        within = sum(bool(c.get("within")) for c in o.get("checks", []))
        show(
            f"   outcome of {o.get('action') or o.get('request')}: {o.get('verdict')}"
            f" ({within} of {len(o.get('checks', []))} predictions within tolerance), audit record {o.get('seq')}"
        )
    for p in result.get("pending", []):
        show(f"   waiting: {p.get('request', '')}: {readable_times(str(p.get('reason', '')))}")
    labels = result.get("labels") or {}
    show(
        f"   labels written: {labels.get('outcome_rows', 0)} action-outcome rows, {labels.get('confirmed', 0)}"
        f" confirmed faults, {labels.get('false_alarms', 0)} false alarms (in {settings.labels_dir})"
    )
    training = result.get("training")
    if training is None:
        show("   no retraining: no new labels")
    else:
        show_training(settings, training)
    recal = result.get("recalibration")
    if recal:
        show(f"   twin recalibrated by flow 'twin-sync': {readable_times(str(recal.get('message', '')))}")
    return result


def show_training(settings: Settings, training: list[Mapping[str, Any]]) -> None:
    """Print each family's retraining, the gate's decision and the lineage of its MLflow run."""
    show("   retrained through flow 'train'; the promotion gate decides:")
    shown = False
    for t in training:
        gate = str(t.get("decision") or "-") + (f" ({t['reason']})" if t.get("reason") else "")
        version = f"v{t['version']}" if t.get("version") else "-"
        show(f"     {t['family']:<9} {t['status']:<8} {version:<4} gate: {gate}")
        if t.get("run_id") and not shown:
            tags = lineage_tags(settings, str(t["run_id"]))
            if tags:
                shown = True
                show(f"     MLflow run {t['run_id']} ({t['family']}) lineage:")
                for key in ("source", "requests", "outcome_records", "label_records", "audit_head", "labels_digest"):
                    if tags.get(key):
                        value = tags[key] if len(tags[key]) <= TAG_SHOWN else tags[key][: TAG_SHOWN - 3] + "..."
                        show(f"       {key:<16} {value}")


# ---------------------------------------------------------------------------------------- the loop


def closed_loop(settings: Settings, recommendation: Mapping[str, Any] | None, controller: SimulatedController) -> str:
    """Steps 6-8 on the recommendation of line 1 (the demo's line); the request id ("" when none)."""
    from pumptwin.flows.implement_steps import plant_file

    lines = (recommendation or {}).get("lines") or []
    request = ""
    if not lines:
        show()
        show("6. approve: no recommendation (no active alert): nothing to approve; on to step 8")
    else:
        line = next((x for x in lines if int(x["line"]) == 1), lines[0])
        approval = approve_and_implement(settings, Path(line["folder"]) / "recommendation.json", controller)
        if approval is not None:
            request = approval.request
            implemented = show_implementation(settings, approval)
            run_on_and_ingest(settings, controller)
            if implemented:
                show_effect(settings, request)
            else:
                show("   nothing was changed on the plant: no effect to measure")
    learn(settings)
    saved = plant_file(settings)
    controller.save(saved)
    show(f"   the simulated plant goes on from {saved} (the 'plant' control backend)")
    return request


def audit_summary(path: Path) -> str:
    """How many records the audit log holds and whether its hash chain verifies."""
    from pumptwin.control.audit import AuditError, AuditLog

    if not path.is_file():
        return "no records yet"
    try:
        n = AuditLog(path).verify()
    except AuditError as exc:
        return f"its hash chain does NOT verify: {exc}"
    return f"{n:,} records, hash chain verified"
