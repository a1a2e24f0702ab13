"""The approval step of the closed loop: requests, decisions, the automatic policy and a request's status.

A recommended action becomes an `ApprovalRequest` (its id is stable: the same recommendation gives
the same id, so a second run on it finds the first run's answers). `auto_verdict` says whether the
configured guardrails (`AutoPolicy`) let it be implemented without a person; otherwise a person
answers with a `Decision`, which `validate_decision` re-checks in code (a form's field limits are
not a safety mechanism). `Requests` reads a request's status from the audit log and enforces that
the first answer decides: a later answer is recorded and refused. A rejection as a false alarm
becomes a label row for training (`false_alarm_rows`, `append_labels`).

Speeds are relative to the pump's rated speed (1.0 = rated); pumps are named ``STATION.PUMP``
(``PS01.P1``). Times are timezone-aware UTC timestamps.
"""

from __future__ import annotations

import csv
import hashlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from pumptwin.agents.evidence import Candidate, Term
from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.times import to_utc

if TYPE_CHECKING:
    from pumptwin.control.audit import AuditLog, AuditRecord
    from pumptwin.control.interlocks import Expectation, SpeedRange

Status = Literal[
    "proposed", "approved", "rejected", "expired", "escalated", "implemented", "rolled_back", "refused", "unconfirmed"
]
"""Where a request stands; ``unconfirmed``: a write whose effect could not be read back."""
OPEN_STATUSES: tuple[str, ...] = ("proposed", "escalated")
"""Statuses in which an answer still decides the request."""
AUTO_KINDS: tuple[str, ...] = ("speed", "setpoint")
"""The only kinds of action the automatic policy may ever allow: speed changes of running pumps."""
NO_ACTION_KINDS: tuple[str, ...] = ("base", "maintenance")
"""Kinds that keep the plant running as now: nothing to write."""
FALSE_ALARM = "false alarm"
"""The rejection reason that turns a recommendation into a false-alarm label."""
REASONS: tuple[str, ...] = ("", FALSE_ALARM, "wrong action", "not now", "unsafe", "other")
"""Reasons an approver may give ("" when none)."""
FALSE_ALARMS_FILE = "false_alarms.csv"
"""False-alarm labels (``asset, ts, mode, request, approver, until``) in the labels folder."""
LABEL_COLUMNS: tuple[str, ...] = ("asset", "ts", "mode", "request", "approver", "until")
"""Columns of the false-alarm labels: ``ts`` the alert's start, ``until`` the end of the data the
approver judged (the twin state the recommendation answered; empty when unknown)."""
SPEED_MEASURE = " speed %"
"""Suffix of a pump's speed in a candidate's figures (``PS01.P1 speed %``, percent of rated)."""
SPEED_TOLERANCE = 1e-4
"""Relative speed difference below which two speeds are the same."""
CHANGE_SCALE = 2.5
"""The response tolerance also applies to this multiple of the predicted change (see
`response_expectations`): at a 10 % tolerance the plant must cover 75 % of a predicted change."""
ID_DIGEST_CHARS = 10
"""Hex characters of the action's digest in a request id."""
RESULT_STATUS: dict[str, str] = {
    "done": "implemented",
    "rolled_back": "rolled_back",
    "refused": "refused",
    "unconfirmed": "unconfirmed",
}
"""Request status after a record of these kinds: the interlocks' final record of an implementation
(`pumptwin.control.interlocks.Interlocked` names it by its status), or a refusal."""
_ALERT_LINE = re.compile(r"^\S+ (?P<asset>\S+) (?P<source>\S+) = .* since (?P<since>\S+)")


class ApprovalError(PumptwinError, ValueError):
    """A request, decision or policy that cannot be built as given; the message names the bad value."""


def request_id(line: int, recommended_at: pd.Timestamp, action: str) -> str:
    """The stable id of a request: line, recommendation time (UTC, to the microsecond) and a digest of the action.

    Lower-case letters, digits and dashes only, so it serves as a Prefect pause and artifact key.

    Example: ``request_id(1, to_utc("2026-03-01T12:00Z"), "PS01.P1: speed -5 %")`` is
    ``"line1-20260301t120000000000z-<10 hex>"``.
    """
    stamp = to_utc(recommended_at).strftime("%Y%m%dT%H%M%S%fZ").lower()
    digest = hashlib.sha256(action.encode("utf-8")).hexdigest()[:ID_DIGEST_CHARS]
    return f"line{int(line)}-{stamp}-{digest}"


def _iso(ts: pd.Timestamp) -> str:
    return to_utc(ts).isoformat()


@dataclass(frozen=True)
class ApprovalRequest:
    """A recommended action waiting for a decision.

    Attributes:
        id: Stable id (`request_id`).
        line: Line, 1-based.
        action: The action as an operator names it.
        kind: The candidate's kind (``speed``, ``setpoint``, ``stop``...).
        setpoints: Relative speed by pump that approving writes (0: stop the pump).
        numbers: The twin's predicted figures of the action, by label with unit.
        pumps: The line's pumps (those a modified setpoint may name).
        assets: The assets at risk.
        created: When the request was made (UTC).
        expires: When an unanswered request expires (UTC).
    """

    id: str
    line: int
    action: str
    kind: str
    setpoints: Mapping[str, float]
    numbers: Mapping[str, float]
    pumps: tuple[str, ...]
    assets: tuple[str, ...]
    created: pd.Timestamp
    expires: pd.Timestamp

    def __post_init__(self) -> None:
        """Refuse a request that expires before it is made."""
        if self.expires < self.created:
            raise ApprovalError(f"request {self.id}: expires {self.expires} before it is made ({self.created})")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record (times as ISO 8601)."""
        return {
            "id": self.id,
            "line": self.line,
            "action": self.action,
            "kind": self.kind,
            "setpoints": dict(self.setpoints),
            "numbers": dict(self.numbers),
            "pumps": list(self.pumps),
            "assets": list(self.assets),
            "created": _iso(self.created),
            "expires": _iso(self.expires),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ApprovalRequest:
        """The request of a `to_dict` record."""
        return cls(
            id=str(data["id"]),
            line=int(data["line"]),
            action=str(data["action"]),
            kind=str(data["kind"]),
            setpoints={str(k): float(v) for k, v in data["setpoints"].items()},
            numbers={str(k): float(v) for k, v in data["numbers"].items()},
            pumps=tuple(data["pumps"]),
            assets=tuple(data["assets"]),
            created=to_utc(data["created"]),
            expires=to_utc(data["expires"]),
        )


@dataclass(frozen=True)
class Decision:
    """A person's (or the automatic policy's) answer to a request.

    Attributes:
        approve: True approves, False rejects.
        approver: Who answered.
        comment: Free text.
        reason: One of `REASONS` (``false alarm`` on a rejection writes a label).
        setpoints: Modified relative speeds by pump that replace the request's (None: as requested).
        decided: When (UTC).
    """

    approve: bool
    approver: str
    comment: str = ""
    reason: str = ""
    setpoints: Mapping[str, float] | None = None
    decided: pd.Timestamp = field(default_factory=lambda: pd.Timestamp.now(tz="UTC"))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record (NaN speeds as None)."""
        speeds = None
        if self.setpoints is not None:
            speeds = {k: (float(v) if math.isfinite(v) else None) for k, v in self.setpoints.items()}
        return {
            "approve": self.approve,
            "approver": self.approver,
            "comment": self.comment,
            "reason": self.reason,
            "setpoints": speeds,
            "decided": _iso(self.decided),
        }


@dataclass(frozen=True)
class AutoPolicy:
    """The guardrails inside which an action is implemented without a person.

    Attributes:
        enabled: Automatic implementation on at all.
        off_stations: Stations (``PS01``) where it is off.
        max_speed_change: Largest change of any pump's relative speed.
        kinds: Kinds of action allowed (a subset of `AUTO_KINDS`: never start, stop, standby,
            throughput, reroute or shut-down).
        require_feasible: Only actions that keep every hard limit and margin (no rejections).
    """

    enabled: bool = True
    off_stations: frozenset[str] = frozenset()
    max_speed_change: float = 0.03
    kinds: tuple[str, ...] = AUTO_KINDS
    require_feasible: bool = True

    def __post_init__(self) -> None:
        """Refuse kinds outside `AUTO_KINDS` and a negative or non-finite speed change."""
        bad = [k for k in self.kinds if k not in AUTO_KINDS]
        if bad:
            raise ApprovalError(f"automatic implementation cannot allow {bad}: only {list(AUTO_KINDS)}")
        if not (math.isfinite(self.max_speed_change) and self.max_speed_change >= 0):
            raise ApprovalError(f"max_speed_change must be a number >= 0, got {self.max_speed_change}")


def candidate_from_dict(data: Mapping[str, Any]) -> Candidate:
    """A candidate of a recommendation's JSON record (`flows.recommend_steps.recommendation_dict`)."""
    return Candidate(
        name=str(data["name"]),
        kind=str(data["kind"]),
        rejected=tuple(str(r) for r in data.get("rejected", ())),
        numbers={str(k): float(v) for k, v in data.get("numbers", {}).items()},
        terms=tuple(
            Term(str(t["name"]), float(t["value"]), float(t["weight"]), str(t["unit"])) for t in data.get("terms", ())
        ),
        setpoints={str(k): float(v) for k, v in data.get("setpoints", {}).items()},
    )


def speeds_of(candidate: Candidate) -> dict[str, float]:
    """Relative speed by pump of the candidate's figures (``PS01.P1 speed %``; 0 for a stopped pump)."""
    return {
        k[: -len(SPEED_MEASURE)]: v / 100.0
        for k, v in candidate.numbers.items()
        if k.endswith(SPEED_MEASURE) and math.isfinite(v)
    }


def target_speeds(candidate: Candidate, base: Candidate | None) -> dict[str, float]:
    """The relative speeds the candidate sets, by pump: its setpoints, else the speeds that differ from the base case.

    A fixed speed-change candidate records its effect only in its figures: the pumps whose
    simulated speed differs from the base case's are the ones it changes (0: it stops the pump).
    Without a base case every pump's simulated speed is taken.
    """
    if candidate.setpoints:
        return {k: float(v) for k, v in candidate.setpoints.items()}
    mine = speeds_of(candidate)
    if base is None:
        return mine
    before = speeds_of(base)
    return {p: s for p, s in mine.items() if abs(s - before.get(p, math.nan)) > SPEED_TOLERANCE or p not in before}


def new_request(
    line: int,
    recommended_at: pd.Timestamp,
    candidate: Candidate,
    base: Candidate | None,
    assets: Sequence[str],
    created: pd.Timestamp,
    timeout_s: float,
) -> ApprovalRequest:
    """The request for a recommendation's chosen candidate, expiring ``timeout_s`` seconds after ``created``."""
    if not (math.isfinite(timeout_s) and timeout_s >= 0):
        raise ApprovalError(f"timeout_s must be a number >= 0, got {timeout_s}")
    created = to_utc(created)
    return ApprovalRequest(
        id=request_id(line, recommended_at, candidate.name),
        line=int(line),
        action=candidate.name,
        kind=candidate.kind,
        setpoints=target_speeds(candidate, base),
        numbers=dict(candidate.numbers),
        pumps=tuple(sorted(speeds_of(candidate) | ({} if base is None else speeds_of(base)))),
        assets=tuple(assets),
        created=created,
        expires=created + pd.Timedelta(seconds=timeout_s),
    )


def _station(pump: str) -> str:
    return pump.split(".", 1)[0]


def auto_verdict(
    candidate: Candidate, current_speeds: Mapping[str, float], policy: AutoPolicy
) -> tuple[bool, list[str]]:
    """Whether the policy lets ``candidate`` be implemented without a person, with a reason for each refusal.

    Args:
        candidate: The action, with ``setpoints`` the relative speeds it writes (see `target_speeds`).
        current_speeds: The pumps' current relative speed setpoints (from the control system).
        policy: The guardrails.

    Returns:
        ``(allowed, reasons)``: allowed only when ``reasons`` is empty.
    """
    reasons: list[str] = []
    if not policy.enabled:
        reasons.append("automatic implementation is off")
    if candidate.kind not in policy.kinds:
        reasons.append(f"{candidate.kind!r} actions always wait for a person (automatic: {', '.join(policy.kinds)})")
    if policy.require_feasible and candidate.rejected:
        reasons.append("the twin finds hard limits broken: " + "; ".join(candidate.rejected))
    if not candidate.setpoints:
        reasons.append("the action writes no speed setpoint")
    for pump, target in sorted(candidate.setpoints.items()):
        if _station(pump) in policy.off_stations:
            reasons.append(f"automatic implementation is off at station {_station(pump)} ({pump})")
        now = current_speeds.get(pump, math.nan)
        if not (math.isfinite(target) and math.isfinite(now)):
            reasons.append(f"{pump}: speed now {now:.4g}, target {target:.4g}: not both known")
        elif target <= 0:
            reasons.append(f"{pump}: a stop always waits for a person")
        elif abs(target - now) > policy.max_speed_change + 1e-12:
            reasons.append(
                f"{pump}: speed change {target - now:+.4f} (from {now:.4f} to {target:.4f}) exceeds the automatic "
                f"limit of {policy.max_speed_change:g}"
            )
    return not reasons, reasons


def validate_decision(decision: Decision, request: ApprovalRequest, ranges: Mapping[str, SpeedRange]) -> list[str]:
    """Problems with an answer as it came back from the form (empty: none); the form's limits are not relied on.

    Checks that the approver is named and the reason is known; on an approval, that every modified
    setpoint names a pump of the request's line, is finite and lies in the pump's speed range.

    Args:
        decision: The answer.
        request: The request it answers.
        ranges: Allowed relative speed range by pump (``.low``, ``.high``) from the control system.
    """
    problems: list[str] = []
    if not decision.approver.strip():
        problems.append("the approver must be named")
    if decision.reason not in REASONS:
        problems.append(f"reason {decision.reason!r} is not one of {list(REASONS)}")
    if not decision.approve or decision.setpoints is None:
        return problems
    for pump, value in sorted(decision.setpoints.items()):
        if pump not in request.pumps:
            problems.append(f"{pump}: not a pump of line {request.line} ({', '.join(request.pumps)})")
            continue
        if not isinstance(value, int | float) or not math.isfinite(value):
            problems.append(f"{pump}: modified speed {value!r} is not a finite number")
            continue
        rng = ranges.get(pump)
        if rng is None:
            problems.append(f"{pump}: the control system gives no speed range")
        elif not rng.low <= value <= rng.high:
            problems.append(f"{pump}: modified speed {value:.4g} outside its range {rng.low:.4g}-{rng.high:.4g}")
    return problems


def like_for_like(kind: str, setpoints: Mapping[str, float], now: Mapping[str, float]) -> dict[str, float]:
    """The setpoints of a request as they apply now: a switch to standby hands over the running pump's speed.

    A switch to standby stops one pump and starts its standby; while the request waited,
    nominations may have moved the running pump's speed, so the standby takes that pump's speed
    as the control system reads it now (``now``, relative speeds by pump) rather than its speed
    when the request was made. Anything else, or a switch whose pump no longer runs, is unchanged.
    """
    speeds = {p: float(s) for p, s in setpoints.items()}
    if kind != "standby":
        return speeds
    stopped = [p for p, s in speeds.items() if s <= 0 and now.get(p, 0.0) > 0]
    started = [p for p, s in speeds.items() if s > 0 and now.get(p, 0.0) <= 0]
    if len(stopped) == 1 and len(started) == 1:
        speeds[started[0]] = float(now[stopped[0]])
    return speeds


def final_setpoints(request: ApprovalRequest, decision: Decision, now: Mapping[str, float]) -> dict[str, float]:
    """The speeds an approval writes: the request's as they apply now (`like_for_like`), modified ones instead."""
    return {**like_for_like(request.kind, request.setpoints, now), **(decision.setpoints or {})}


def response_expectations(
    before: Mapping[str, float],
    twin_before: Mapping[str, float],
    twin_after: Mapping[str, float],
    tolerance: float,
) -> list[Expectation]:
    """What the plant should read after the change: its reading now moved by the change the twin predicts.

    The twin may be off the plant by a bias (an uncalibrated machine); the change it predicts is
    what it vouches for. The tolerance is a share of the expected value or of `CHANGE_SCALE` times
    the predicted change, whichever is larger: a tag that should fall to about zero (the flow of a
    pump being stopped) must cover most of its fall (75 % at a 10 % tolerance), not land within 10 %
    of zero.

    Args:
        before: The plant's readings now, by tag (engineering units).
        twin_before: The twin's value of each tag in the base case.
        twin_after: The twin's value of each tag after the action.
        tolerance: Allowed deviation as a share of the expected value (0.1: 10 %).
    """
    from pumptwin.control.interlocks import Expectation

    out = []
    for tag in sorted(twin_after):
        now, t0, t1 = before.get(tag, math.nan), twin_before.get(tag, math.nan), twin_after[tag]
        if not all(math.isfinite(x) for x in (now, t0, t1)):
            continue
        value = now + (t1 - t0)
        out.append(Expectation(tag, value, tolerance * max(abs(value), abs(t1), CHANGE_SCALE * abs(t1 - t0))))
    return out


def alert_labels(situation: Iterable[str]) -> list[tuple[str, str, pd.Timestamp]]:
    """``(asset, failure mode, since)`` of each alert line of a recommendation (`Alert.message`), without repeats."""
    from pumptwin.agents.recommend import failure_mode

    seen: dict[tuple[str, str], pd.Timestamp] = {}
    for text in situation:
        m = _ALERT_LINE.match(text)
        if m is None:
            continue
        mode = failure_mode(m["source"]) or m["source"]
        key = (m["asset"], mode)
        since = to_utc(m["since"])
        seen[key] = min(since, seen.get(key, since))
    return [(a, mode, ts) for (a, mode), ts in sorted(seen.items())]


def false_alarm_rows(
    request: ApprovalRequest, decision: Decision, situation: Iterable[str], seen_until: pd.Timestamp | None = None
) -> list[dict[str, str]]:
    """The label rows of a rejection as a false alarm: one per alerted asset and mode (empty otherwise).

    Args:
        request: The request rejected.
        decision: The answer.
        situation: The recommendation's alert lines (`Alert.message`).
        seen_until: When the twin state the recommendation answered was taken (UTC): the approver
            judged the asset healthy up to then. None: unknown (``until`` stays empty).
    """
    if decision.approve or decision.reason != FALSE_ALARM:
        return []
    labels = alert_labels(situation) or [(a, "", request.created) for a in request.assets]
    return [
        {
            "asset": a,
            "ts": _iso(ts),
            "mode": mode,
            "request": request.id,
            "approver": decision.approver,
            "until": _iso(max(ts, to_utc(seen_until))) if seen_until is not None else "",
        }
        for a, mode, ts in labels
    ]


def append_rows(path: Path, rows: Sequence[Mapping[str, str]], columns: Sequence[str]) -> int:
    """Append rows to a CSV file (header written when the file is new); returns the rows written.

    A file written with fewer columns (by an earlier version) is first rewritten, through a
    temporary file, with its columns and the missing ones after them (empty in its rows), so no
    row lands under another column's name.
    """
    if not rows:
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.is_file() or path.stat().st_size == 0
    header = list(columns) if new else _widened(path, columns)
    with path.open("a", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        if new:
            writer.writeheader()
        writer.writerows([{c: r.get(c, "") for c in header} for r in rows])
    return len(rows)


def _widened(path: Path, columns: Sequence[str]) -> list[str]:
    """The header of the CSV file ``path``, rewritten with the ``columns`` it lacks appended."""
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        header = list(reader.fieldnames or [])
        missing = [c for c in columns if c not in header]
        if not missing:
            return header
        kept = list(reader)
    header += missing
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header, restval="")
        writer.writeheader()
        writer.writerows(kept)
    tmp.replace(path)
    return header


def append_labels(path: Path, rows: Sequence[Mapping[str, str]]) -> int:
    """Append false-alarm label rows (`LABEL_COLUMNS`) to a CSV file; returns the rows written."""
    return append_rows(path, rows, LABEL_COLUMNS)


def _status_of(record: AuditRecord, status: str) -> str:
    data = record.data or {}
    kind = record.kind
    if kind == "recommendation":
        return "proposed" if status == "" else status
    if kind == "decision" and data.get("decides") and status in OPEN_STATUSES:
        return "approved" if data.get("approve") else "rejected"
    if kind in ("expired", "escalated") and status in OPEN_STATUSES:
        return kind
    if kind == "refused" and data.get("late_answer"):
        return status
    if kind in RESULT_STATUS and status not in ("", "expired", "rejected"):
        return RESULT_STATUS[kind]
    return status


class Requests:
    """The requests of an audit log: their status, and who decided them.

    Records read: ``recommendation`` (proposed), ``decision`` (``data``: the decision and
    ``decides``), ``expired``, ``escalated``, ``refused`` (an approval not carried out; with
    ``data["late_answer"]`` an answer that lost a race, which changes nothing) and the
    interlocks' final record of an implementation: ``done``, ``rolled_back``, ``refused`` or
    ``unconfirmed``.
    """

    def __init__(self, audit: AuditLog) -> None:
        """Read and write requests on ``audit``."""
        self.audit = audit

    def status(self, request: str) -> str:
        """The request's status ("" when the log does not know it)."""
        status = ""
        for record in self.audit.records(request=request):
            status = _status_of(record, status)
        return status

    def decider(self, request: str) -> AuditRecord | None:
        """The decision record that decided the request (None while undecided)."""
        status = ""
        for record in self.audit.records(request=request):
            before, status = status, _status_of(record, status)
            if record.kind == "decision" and before in OPEN_STATUSES and status in ("approved", "rejected"):
                return record
        return None

    def decide(self, request: ApprovalRequest, decision: Decision) -> bool:
        """Record an answer; True when it decides the request, False when it came too late (recorded, refused).

        The first answer to a proposed (or escalated) request decides it; any later answer, or one
        to an expired request, is written to the log with why it was refused. Two answers written
        at once both read the request open: the one the log holds first decides, and the other
        is followed by a ``refused`` record.
        """
        status = self.status(request.id)
        decides = status in OPEN_STATUSES
        why = decision.comment
        if not decides:
            first = self.decider(request.id)
            by = f" by {first.who}" if first is not None else ""
            why = f"refused: the request is already {status or 'unknown'}{by}"
        who = decision.approver or "(unnamed)"
        record = self.audit.append(
            "decision",
            request.id,
            who,
            "approve" if decision.approve else "reject",
            why=why,
            data={**decision.to_dict(), "decides": decides},
        )
        if not decides:
            return False
        first = self.decider(request.id)
        if first is not None and first.seq != record.seq:
            self.audit.append(
                "refused",
                request.id,
                who,
                "answer refused",
                why=f"answered at the same time as {first.who}, whose answer decides",
                data={"late_answer": True},
            )
            return False
        return True
