"""The steps of the implement flow: from a recommendation to a decision and, if approved, to the plant.

Plain functions over the settings, wrapped by the Prefect flow ``implement`` (`flows.implement`):

- `prepare` reads the latest ``recommendation.json`` of a line (or a given file), builds the
  `ApprovalRequest` and writes its ``recommendation`` record to the audit log (once per request);
- `open_controller` / `close_controller` open the control system of the settings (the simulated
  plant saved in ``PUMPTWIN_CONTROL_PLANT_FILE``, or an OPC UA endpoint) and save or close it;
- `auto_check` asks the automatic policy (`pumptwin.control.approval.auto_verdict`);
- `approval_form`, `approval_markdown` and `decision_from_form` are the approver's side: the
  typed input form of the paused run, the artifact it reads, and the answer as a `Decision`;
- `carry_out` re-checks an approved decision in code, simulates the final speeds on the twin
  (the recommender's own `judge` and hard limits), implements them through the interlocks with
  the twin's predicted response as expectations, and records the result;
- `record_timeout`, `record_rejection` close a request that was not approved;
- `find_paused_run`, `form_answer` and `answer_request` find a paused run by its request id and
  resume it with an answer, as the Prefect UI's form does (for a CLI or a script).

The audit log is ``<home>/control/audit.jsonl`` unless ``PUMPTWIN_CONTROL_AUDIT_PATH`` names another.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

import pandas as pd
from pydantic import Field, create_model

from pumptwin.agents.evidence import Candidate
from pumptwin.agents.recommend import Refusal
from pumptwin.control.approval import (
    FALSE_ALARMS_FILE,
    NO_ACTION_KINDS,
    REASONS,
    RESULT_STATUS,
    SPEED_TOLERANCE,
    ApprovalRequest,
    AutoPolicy,
    Decision,
    Requests,
    append_labels,
    auto_verdict,
    candidate_from_dict,
    false_alarm_rows,
    final_setpoints,
    new_request,
    response_expectations,
    validate_decision,
)
from pumptwin.control.audit import AuditLog
from pumptwin.control.interface import Controller, Write
from pumptwin.flows.settings import Settings
from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.times import STAMP_FORMAT, to_utc

_LOG = logging.getLogger(__name__)

RECOMMENDATION_FILE = "recommendation.json"
"""The recommendation of one line, in ``<recommend_dir>/<UTC stamp>-<suffix>/line<n>/``."""
AUTO_WHO = "auto-implement"
"""Who the audit log names for what the automatic policy decides and implements."""
FLOW_WHO = "implement"
"""Who the audit log names for what the flow itself records."""
UNDELIVERED = "undelivered"
"""Audit kind of an approved action written and rolled back because the plant did not respond as
the twin predicted (``data``: ``line``, ``action``, ``unmet``, ``modified``); the recommender holds it back."""
BAR_PER_MPA = 10.0
RESUME_ATTEMPTS = 20
"""Tries of a resume the server answers with "schema not found" (it was sent before the form was saved)."""
RESUME_WAIT_S = 0.5
"""Wait between those tries, s."""
_STAMP = re.compile(r"^(\d{8}T\d{12}Z)")


class ImplementError(PumptwinError, ValueError):
    """A recommendation or answer the implement flow cannot work with; the message names it."""


@dataclass(frozen=True)
class LoadedRecommendation:
    """A recommendation as the recommend flow wrote it.

    Attributes:
        path: Its ``recommendation.json``.
        data: The JSON record (`flows.recommend_steps.recommendation_dict`).
        line: The line, 1-based.
        recommended_at: When it was made: its run folder's UTC stamp (the file's time without one).
        chosen: The chosen candidate.
        base: The base case (keep running as now), None when the record has none.
        markdown: Its ``recommendation.md`` ("" when missing).
    """

    path: Path
    data: Mapping[str, Any]
    line: int
    recommended_at: pd.Timestamp
    chosen: Candidate
    base: Candidate | None
    markdown: str


@dataclass(frozen=True)
class Prepared:
    """A request ready to be decided.

    Attributes:
        recommendation: The recommendation it comes from.
        request: The request.
        status: Its status in the audit log before this run (``proposed`` when new).
    """

    recommendation: LoadedRecommendation
    request: ApprovalRequest
    status: str


@dataclass(frozen=True)
class TwinCheck:
    """The final speeds simulated on the twin.

    Attributes:
        rejected: Hard limits broken (empty: none), as the recommender words them.
        before: The twin's value of each checked tag in the base case (engineering units).
        after: The twin's value of each checked tag with the speeds.
        numbers: The twin's figures of the action.
    """

    rejected: tuple[str, ...]
    before: Mapping[str, float] = field(default_factory=dict)
    after: Mapping[str, float] = field(default_factory=dict)
    numbers: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """What the flow did with a request.

    Attributes:
        request: The request id.
        status: The request's status afterwards (`pumptwin.control.approval.Status`, or
            ``no_action`` for an action that writes nothing).
        message: One line.
        reasons: Why it was refused or not implemented automatically.
        before: Relative speeds (and readings) before.
        after: Relative speeds (and readings) after.
        wrote: Whether this run wrote to the control system (rolled back or not).
    """

    request: str
    status: str
    message: str
    reasons: tuple[str, ...] = ()
    before: Mapping[str, float] = field(default_factory=dict)
    after: Mapping[str, float] = field(default_factory=dict)
    wrote: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "request": self.request,
            "status": self.status,
            "message": self.message,
            "reasons": list(self.reasons),
            "before": dict(self.before),
            "after": dict(self.after),
            "wrote": self.wrote,
        }


# ---------------------------------------------------------------------------------------- settings


def audit_path(settings: Settings) -> Path:
    """The audit log of the settings (default ``<home>/control/audit.jsonl``)."""
    return settings.control.audit_path or settings.home / "control" / "audit.jsonl"


def plant_file(settings: Settings) -> Path:
    """The saved simulated plant of the settings (default ``<home>/control/plant.pkl``)."""
    return settings.control.plant_file or settings.home / "control" / "plant.pkl"


def open_audit(settings: Settings) -> AuditLog:
    """The audit log of the settings."""
    return AuditLog(audit_path(settings))


def auto_policy(settings: Settings) -> AutoPolicy:
    """The automatic policy of ``PUMPTWIN_CONTROL_AUTO_*``."""
    c = settings.control
    return AutoPolicy(
        enabled=c.auto_implement,
        off_stations=frozenset(s.strip().upper() for s in c.auto_off_stations),
        max_speed_change=c.auto_max_speed_change,
    )


def interlock_settings(settings: Settings) -> Any:  # noqa: ANN401 - pumptwin.control.interlocks.InterlockSettings
    """The interlocks' settings of ``PUMPTWIN_CONTROL_*``."""
    from pumptwin.control.interlocks import InterlockSettings

    c = settings.control
    return InterlockSettings(
        max_rate_per_s=c.max_rate_per_s,
        ramp_step=c.ramp_step,
        settle_s=c.settle_s,
        readback_tolerance=c.readback_tolerance,
        retries=c.retries,
        retry_wait_s=c.retry_wait_s,
    )


# ---------------------------------------------------------------------------------------- recommendation


def latest_recommendation(settings: Settings, line: int) -> Path:
    """The newest ``recommendation.json`` of ``line`` under the settings' recommend folder.

    Raises:
        ImplementError: When the recommend flow has written none for the line.
    """
    found = sorted(settings.recommend_dir.glob(f"*/line{int(line)}/{RECOMMENDATION_FILE}"))
    if not found:
        raise ImplementError(
            f"no recommendation for line {line} in {settings.recommend_dir}: run the recommend flow first"
        )
    return found[-1]


def recommended_at(path: Path) -> pd.Timestamp:
    """When a recommendation was made: the UTC stamp of its run folder, else the file's modification time."""
    for folder in (path.parent.parent, path.parent):
        m = _STAMP.match(folder.name)
        if m is not None:
            return pd.Timestamp(pd.to_datetime(m.group(1), format=STAMP_FORMAT, utc=True))
    return to_utc(pd.Timestamp(path.stat().st_mtime, unit="s"))


def load_recommendation(path: Path) -> LoadedRecommendation:
    """Read a ``recommendation.json`` (and the ``recommendation.md`` beside it).

    Raises:
        ImplementError: A missing or unreadable file, or one without a chosen action.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        chosen = candidate_from_dict(data["chosen"])
        alternatives = [candidate_from_dict(c) for c in data.get("alternatives", ())]
        line = int(data["line"])
    except FileNotFoundError:
        raise ImplementError(f"no recommendation file {path}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ImplementError(f"{path} is not a recommendation: {exc}") from None
    base = next((c for c in (chosen, *alternatives) if c.kind in NO_ACTION_KINDS), None)
    md = path.with_suffix(".md")
    return LoadedRecommendation(
        path=path,
        data=data,
        line=line,
        recommended_at=recommended_at(path),
        chosen=chosen,
        base=base,
        markdown=md.read_text(encoding="utf-8") if md.is_file() else "",
    )


def prepare(settings: Settings, line: int, recommendation: Path | None = None) -> Prepared:
    """Read the recommendation, build its request and write its ``recommendation`` record (once per request)."""
    rec = load_recommendation(recommendation or latest_recommendation(settings, line))
    request = new_request(
        rec.line,
        rec.recommended_at,
        rec.chosen,
        rec.base,
        rec.data.get("assets", ()),
        pd.Timestamp.now(tz="UTC"),
        settings.control.approval_timeout_s,
    )
    audit = open_audit(settings)
    status = Requests(audit).status(request.id)
    if not status:
        audit.append(
            "recommendation",
            request.id,
            "recommend",
            request.action,
            why="; ".join(rec.data.get("situation", ())),
            data={**request.to_dict(), "file": str(rec.path), "rejected": list(rec.chosen.rejected)},
        )
        status = "proposed"
    return Prepared(rec, request, status)


def twin_refusals(settings: Settings, line: int) -> list[Refusal]:
    """Approved actions on ``line`` not carried out as the twin predicted (`carry_out`), from the audit log.

    Those the twin's re-check refused before writing, and those written and rolled back because
    the plant did not respond as the twin predicted (`UNDELIVERED`). An answer with modified
    setpoints, refused or undelivered, does not count against the action.

    An audit log that cannot be read gives none: the recommendation goes on without holding
    anything back (the implement flow re-checks every answer again anyway).
    """
    path = audit_path(settings)
    if not path.exists():
        return []
    try:
        records = open_audit(settings).records()
    except PumptwinError as exc:
        _LOG.warning("audit log %s not read, no refused action held back: %s", path, exc)
        return []
    out = []
    for r in records:
        if r.data.get("line") != line or not isinstance(r.data.get("action"), str):
            continue
        if r.kind == "refused" and (reasons := r.data.get("twin")) and not r.data.get("modified"):
            out.append(Refusal(str(r.data["action"]), to_utc(r.ts), str(reasons[0])))
        elif r.kind == UNDELIVERED and (unmet := r.data.get("unmet")) and not r.data.get("modified"):
            out.append(Refusal(str(r.data["action"]), to_utc(r.ts), str(unmet[0]), by="plant"))
    return out


def record_no_action(settings: Settings, prepared: Prepared) -> Outcome:
    """Record that the recommendation keeps the plant as it runs: nothing to write."""
    request = prepared.request
    msg = f"{request.action!r} keeps the line running as now: nothing to write"
    open_audit(settings).append("no-action", request.id, FLOW_WHO, msg)
    return Outcome(request.id, "no_action", msg)


# ---------------------------------------------------------------------------------------- control system


def open_controller(settings: Settings) -> Controller:
    """The control system of the settings.

    ``plant``: the simulated plant saved in `plant_file` (a new one from the scenario
    ``PUMPTWIN_CONTROL_PLANT_SCENARIO`` when the file does not exist yet); ``opcua``: the OPC UA
    endpoint ``PUMPTWIN_CONTROL_OPCUA_URL``, rated speeds from the twin's registry.

    Raises:
        ImplementError: The ``opcua`` backend without a URL.
    """
    c = settings.control
    if c.backend == "opcua":
        if not c.opcua_url:
            raise ImplementError("PUMPTWIN_CONTROL_OPCUA_URL is not set: the opcua backend needs an endpoint")
        from pumptwin.control.opcua import OpcUaController

        registry = _registry(settings)
        rated = {p.name: float(p.rated_speed_rpm) for p in registry.pumps}
        return OpcUaController(c.opcua_url, rated, timeout_s=c.opcua_timeout_s)
    from pumptwin.control.simulated import SimulatedController

    path = plant_file(settings)
    if path.is_file():
        return SimulatedController.load(path)
    return SimulatedController.from_scenario(c.plant_scenario)


def close_controller(settings: Settings, controller: Controller, *, save: bool) -> None:
    """Close the control system: save a simulated plant that was written to (``save``) so the next run continues it.

    A run that wrote nothing does not save: another run may have changed the plant file meanwhile.
    """
    if save and settings.control.backend == "plant" and hasattr(controller, "save"):
        controller.save(plant_file(settings))
    close = getattr(controller, "close", None)
    if callable(close):
        close()


def _registry(settings: Settings) -> Any:  # noqa: ANN401 - pumptwin.twin.assets.Registry
    from pumptwin.flows.recommend_steps import twin_view
    from pumptwin.flows.twin_store import load_twin

    cal, _ = load_twin(settings)
    return twin_view(settings, cal, 1).registry


def speed_ranges(settings: Settings, controller: Controller) -> dict[str, Any]:
    """Each pump's allowed relative speed range: the control system's own, else the twin registry's."""
    ranges = getattr(controller, "ranges", None)
    if callable(ranges):
        return dict(ranges())
    from pumptwin.control.interlocks import SpeedRange

    return {p.name: SpeedRange(p.min_speed, p.max_speed) for p in _registry(settings).pumps}


def current_speeds(controller: Controller, pumps: Sequence[str]) -> dict[str, float]:
    """The control system's relative speed setpoint of each pump (0 for a pump not running)."""
    return {p: float(controller.speed_setpoint(p)) if controller.running(p) else 0.0 for p in pumps}


def writes_for(setpoints: Mapping[str, float], controller: Controller) -> list[Write]:
    """The writes that bring each pump to its relative speed, in the order an operator switches.

    Pumps that start come first (started, then set), then speed changes of running pumps, and
    stops last (SOP-104: the standby carries the flow before the outgoing pump is unloaded), so a
    switch never leaves the station a pump short. 0 stops a pump.
    """
    starts: list[Write] = []
    changes: list[Write] = []
    stops: list[Write] = []
    for pump, target in sorted(setpoints.items()):
        running = controller.running(pump)
        if target <= 0:
            if running:
                stops.append(Write(pump, "stop"))
        elif not running:
            starts += [Write(pump, "start"), Write(pump, "speed", float(target))]
        elif abs(controller.speed_setpoint(pump) - target) > SPEED_TOLERANCE:
            changes.append(Write(pump, "speed", float(target)))
    return [*starts, *changes, *stops]


# ---------------------------------------------------------------------------------------- automatic policy


def auto_check(settings: Settings, prepared: Prepared, controller: Controller) -> tuple[bool, list[str]]:
    """Whether the automatic policy implements the request without a person, and why not."""
    request = prepared.request
    cand = replace(prepared.recommendation.chosen, setpoints=dict(request.setpoints))
    now = current_speeds(controller, sorted(request.setpoints))
    return auto_verdict(cand, now, auto_policy(settings))


# ---------------------------------------------------------------------------------------- approver's side


FORM_PREFIX = "speed_"
"""Prefix of the form's per-pump speed fields (``speed_ps01_p1``)."""


def form_field(pump: str) -> str:
    """The form field of a pump's modified speed (``PS01.P1`` -> ``speed_ps01_p1``)."""
    return FORM_PREFIX + re.sub(r"[^a-z0-9]+", "_", pump.lower()).strip("_")


def approval_form(request: ApprovalRequest, now: Mapping[str, float]) -> type[Any]:
    """The typed input form of the paused run: approve, approver, comment, reason and an optional speed per pump.

    Pumps offered are those the request writes and those running now (a modified speed never
    starts a pump). Whatever comes back is checked again in code (`validate_decision`).
    """
    from prefect.input import RunInput

    reason = Literal[REASONS]  # type: ignore[valid-type]
    fields: dict[str, Any] = {
        "approve": (bool, Field(default=False, title="Approve", description="Tick to approve; leave to reject.")),
        "approver": (str, Field(default="", title="Approver", description="Your name (required).")),
        "comment": (str, Field(default="", title="Comment", description="Why, in a sentence.")),
        "reason": (
            reason,
            Field(default="", title="Reason", description="For a rejection: 'false alarm' labels the alert."),
        ),
    }
    pumps = sorted(set(request.setpoints) | {p for p, s in now.items() if s > 0})
    for pump in pumps:
        requested = request.setpoints.get(pump)
        told = f"requested {requested:.3f}" if requested is not None else "not changed by the request"
        fields[form_field(pump)] = (
            float | None,
            Field(
                default=None,
                title=f"{pump} speed (relative to rated)",
                description=f"Now {now.get(pump, math.nan):.3f}, {told}; leave empty to keep the request.",
            ),
        )
    return create_model("ApprovalForm", __base__=RunInput, **fields)


def form_answer(
    approve: bool,
    approver: str,
    *,
    comment: str = "",
    reason: str = "",
    speeds: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """An answer as the approval form sends it (for `answer_request`): modified speeds under their field names."""
    out: dict[str, Any] = {"approve": approve, "approver": approver, "comment": comment, "reason": reason}
    out |= {form_field(p): float(v) for p, v in (speeds or {}).items()}
    return out


def decision_from_form(answer: Any, request: ApprovalRequest) -> Decision:  # noqa: ANN401 - an ApprovalForm
    """The `Decision` of a form's answer (modified speeds only for the fields filled in)."""
    values = answer.model_dump() if hasattr(answer, "model_dump") else dict(answer)
    pumps = {form_field(p): p for p in (*request.pumps, *request.setpoints)}
    speeds = {pumps[k]: float(v) for k, v in values.items() if k in pumps and v is not None}
    return Decision(
        approve=bool(values.get("approve", False)),
        approver=str(values.get("approver", "")).strip(),
        comment=str(values.get("comment", "")),
        reason=str(values.get("reason", "")),
        setpoints=speeds or None,
    )


def _speed(x: float) -> str:
    return "stop" if x <= 0 else f"{x:.3f}"


def approval_markdown(prepared: Prepared, now: Mapping[str, float], reasons: Sequence[str], timeout_s: float) -> str:
    """The approver's artifact: the request, what approving writes, why it waits, then the recommendation."""
    r = prepared.request
    out = [
        f"# Approval request `{r.id}`",
        "",
        f"- action: **{r.action}** ({r.kind}), line {r.line}",
        f"- requested: {r.created.isoformat()}; expires: {r.expires.isoformat()} (after {timeout_s:g} s)",
        f"- recommendation: `{prepared.recommendation.path}`",
        "",
        "## What approving writes",
        "",
        "| pump | now | after |",
        "|---|---:|---:|",
        *[f"| {p} | {_speed(now.get(p, math.nan))} | {_speed(s)} |" for p, s in sorted(r.setpoints.items())],
        "",
        "Speeds are relative to rated. Each write goes through the interlocks (speed range, ramp rate, "
        "read-back) and is rolled back if the plant does not respond as the twin predicts.",
        "",
        "## Why this waits for a person",
        "",
        *[f"- {x}" for x in reasons],
        "",
        "Answer in the form of this paused run: approve (optionally with modified speeds, which are "
        "simulated on the twin again) or reject with a reason ('false alarm' labels the alert).",
        "",
        "---",
        "",
        prepared.recommendation.markdown,
    ]
    return "\n".join(out) + "\n"


def escalation_markdown(request: ApprovalRequest, to: str) -> str:
    """The artifact of an unanswered request escalated to ``to``."""
    return (
        f"# Escalated: approval request `{request.id}`\n\n"
        f"No answer to **{request.action}** (line {request.line}) by {request.expires.isoformat()}.\n\n"
        f"Escalated to: **{to}**. Start the implement flow on the same recommendation to ask again.\n"
    )


def record_timeout(settings: Settings, request: ApprovalRequest) -> Outcome:
    """Record an unanswered request as ``expired`` or ``escalated`` (to ``PUMPTWIN_CONTROL_ESCALATE_TO``)."""
    c = settings.control
    audit = open_audit(settings)
    if c.on_timeout == "escalate":
        msg = f"no answer within {c.approval_timeout_s} s: escalated to {c.escalate_to}"
        audit.append("escalated", request.id, FLOW_WHO, msg, data={"to": c.escalate_to})
        return Outcome(request.id, "escalated", msg)
    msg = f"no answer within {c.approval_timeout_s} s: expired"
    audit.append("expired", request.id, FLOW_WHO, msg)
    return Outcome(request.id, "expired", msg)


def record_rejection(settings: Settings, prepared: Prepared, decision: Decision) -> Outcome:
    """A decided rejection: nothing is written; a false alarm appends label rows to ``false_alarms.csv``."""
    request = prepared.request
    data = prepared.recommendation.data
    seen = pd.to_datetime(data.get("state_ts"), utc=True, errors="coerce")  # None or unreadable: NaT
    seen = None if pd.isna(seen) else seen
    rows = false_alarm_rows(request, decision, data.get("situation", ()), seen)
    n = append_labels(settings.labels_dir / FALSE_ALARMS_FILE, rows)
    if n:
        open_audit(settings).append(
            "label", request.id, decision.approver, f"{n} false-alarm label(s)", data={"rows": rows}
        )
    reason = f" ({decision.reason})" if decision.reason else ""
    return Outcome(request.id, "rejected", f"rejected by {decision.approver}{reason}; nothing written")


def decide(settings: Settings, request: ApprovalRequest, decision: Decision) -> bool:
    """Record an answer; True when it decides the request (the first answer), False when refused as late."""
    return Requests(open_audit(settings)).decide(request, decision)


def status(settings: Settings, request: str) -> str:
    """The request's status in the audit log."""
    return Requests(open_audit(settings)).status(request)


# ---------------------------------------------------------------------------------------- implementation


def twin_check(settings: Settings, line: int, speeds: Mapping[str, float], now: Mapping[str, float]) -> TwinCheck:
    """Simulate relative speeds by pump on the twin as last synced, from the plant's speeds now; limits and response.

    The judgement is the recommender's (`pumptwin.agents.recommend.check_speeds`). The response is
    the flow (``STATION.PUMP.FLOW``, m3/h) of each pump set and the discharge pressure
    (``STATION.PUMP.DISCH_PRESS``, bar g, the station's discharge header) of each pump set that runs
    both before and after: a stopped pump's discharge transmitter sits behind its closed check valve
    and reads its suction side, which the twin does not model.
    """
    from pumptwin.agents.recommend import RecommendError, check_speeds
    from pumptwin.flows.recommend_steps import objective, twin_view
    from pumptwin.flows.twin_store import load_twin

    cal, state = load_twin(settings)
    view = twin_view(settings, cal, line)
    try:
        check = check_speeds(view, state, objective(settings), speeds, now)
    except RecommendError as exc:
        return TwinCheck((str(exc),))
    by_name = {p.name: p for p in view.pumps}
    discharge = {s.name: s.discharge_node for s in view.registry.stations if s.line == line}

    def tags(out: Any) -> dict[str, float]:  # noqa: ANN401 - a ScenarioOutcome
        nodes = dict(zip(out.profile_nodes, out.profile_pressure_mpa, strict=False))
        values: dict[str, float] = {}
        for name in speeds:
            spec = by_name[name]
            pt = next((x for x in out.pumps if x.pump == spec.pump_id), None)
            if pt is not None:
                values[f"{name}.FLOW"] = float(pt.flow_m3h)
            if name in check.running:
                header = nodes.get(discharge.get(spec.station, ""), math.nan)
                values[f"{name}.DISCH_PRESS"] = float(header) * BAR_PER_MPA
        return {k: v for k, v in values.items() if math.isfinite(v)}

    return TwinCheck(check.rejected, tags(check.base), tags(check.outcome), dict(check.numbers))


def carry_out(settings: Settings, controller: Controller, prepared: Prepared, decision: Decision, who: str) -> Outcome:
    """Implement a decided approval: check it, simulate it on the twin, write it through the interlocks, record it.

    Refused (recorded, nothing written) when the answer fails `validate_decision`, when the twin
    finds a hard limit broken by the final speeds, or when there is nothing to write. Otherwise
    `pumptwin.control.interlocks.Interlocked` writes the speeds (ramped, read back) and checks the
    plant's response against the twin's predicted change; its result is recorded with the speeds
    before and after.
    """
    from pumptwin.control.interlocks import Interlocked

    request = prepared.request
    audit = open_audit(settings)
    ranges = speed_ranges(settings, controller)
    problems = validate_decision(decision, request, ranges)
    asked = set(request.pumps) | set(request.setpoints) | set(decision.setpoints or {})
    line_now = current_speeds(controller, sorted(asked))
    speeds = final_setpoints(request, decision, line_now)
    now = {p: line_now[p] for p in sorted(speeds)}
    starts = {p for p, s in request.setpoints.items() if s > 0}
    problems += [
        f"{p}: not running; a modified speed may not start it"
        for p in sorted(decision.setpoints or {})
        if now.get(p, 0.0) <= 0 and p not in starts
    ]
    twin_refused: list[str] = []
    if not problems:
        check = twin_check(settings, request.line, speeds, line_now)
        twin_refused = list(check.rejected)
        problems += [f"twin: {r}" for r in twin_refused]
    writes = [] if problems else writes_for(speeds, controller)
    if not problems and not writes:
        problems.append(f"{request.action!r}: nothing to write (the plant already runs at these speeds)")
    if problems:
        msg = "refused: " + "; ".join(problems)
        data = {
            "speeds": speeds,
            "line": request.line,
            "action": request.action,
            "twin": twin_refused,
            "modified": bool(decision.setpoints),
        }
        audit.append("refused", request.id, who, f"not implemented: {request.action}", why=msg, data=data)
        return Outcome(request.id, "refused", msg, tuple(problems), now)
    readings = controller.read(sorted(check.after))
    expect = response_expectations(readings, check.before, check.after, settings.control.response_tolerance)
    lock = Interlocked(controller, ranges, interlock_settings(settings), audit=audit, request=request.id, who=who)
    result = lock.implement(writes, expect=expect)
    if result.status == "rolled_back" and result.unmet:
        data = {
            "line": request.line,
            "action": request.action,
            "unmet": list(result.unmet),
            "modified": bool(decision.setpoints),
        }
        msg = f"{request.action}: the plant did not respond as the twin predicted"
        audit.append(UNDELIVERED, request.id, who, msg, why=result.unmet[0], data=data)
    after = current_speeds(controller, sorted(speeds))
    return Outcome(
        request.id, RESULT_STATUS[result.status], result.message, tuple(result.reasons), now, after, bool(result.steps)
    )


# ---------------------------------------------------------------------------------------- Prefect API


def find_paused_run(request: str) -> UUID | None:
    """The id of the paused flow run waiting for an answer to ``request`` (its pause key), None when none is."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    paused = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])))
    with get_client(sync_client=True) as client:
        for run in client.read_flow_runs(flow_run_filter=paused):
            if run.state is not None and run.state.state_details.pause_key == request:
                return run.id
    return None


def answer_request(run_id: UUID, answer: Mapping[str, Any]) -> None:
    """Resume a paused run with an answer, as the Prefect UI's form does.

    A resume sent before the paused run saved its form's schema is refused by the server
    ("Run input schema not found"); it is retried for a few seconds.

    Raises:
        RuntimeError: The server refused the answer (the message says why).
    """
    from prefect.flow_runs import resume_flow_run

    for attempt in range(RESUME_ATTEMPTS):
        try:
            resume_flow_run(run_id, run_input=dict(answer))
            return
        except RuntimeError as exc:
            if "schema not found" not in str(exc).lower() or attempt == RESUME_ATTEMPTS - 1:
                raise
            time.sleep(RESUME_WAIT_S)
