"""The learning step of the closed loop: what the plant did after an action, against what the twin predicted.

After the interlocks implement an action (the audit log's ``done`` record) the plant keeps running;
once the historian's readings of the following hours reach the raw store, `evaluate_outcome` compares
them with the expectations the interlocks checked the action against (the ``verified`` record's
``data["expect"]``: tag, predicted value, tolerance):

- the **observed** value of each expectation tag is the median of its good readings over the
  verification window, ``[implemented_at + settle_s, implemented_at + settle_s + window_s)``;
- the **verdict** is ``confirmed`` when every tag lies within its tolerance, ``deviated`` when
  any observed tag lies outside it, ``no_data`` when a tag has no reading in the window (or there
  was nothing to compare: no expectations);
- the **effect** on each asset at risk is the trend of the tag its failure mode shows (bearing
  wear: the bearing temperatures; see `EFFECT_MEASURES`), as a least-squares slope per hour over
  ``window_s`` before the action and over the verification window after it
  (``PS01.P1.BRG_DE_TEMP trend +0.80 degC/h before, +0.10 degC/h after``).

An outcome becomes label rows (`outcome_labels`, the columns of `ACTION_OUTCOME_COLUMNS` in
``<labels_dir>/action_outcomes.csv``). Requests also become fault labels when the field confirms
them (`confirmed_fault_rows`): a maintenance work order with a finding on the alerted asset, closed
within `FAULT_HORIZON_S` after the alert, confirms the fault; a rejection as a false alarm that no
work order contradicts stays a false alarm.

When the action took effect is read in plant time from the historian (`implementation_time`): the
first reading of each written pump's setpoint tag (``STATION.PUMP.SPEED_SP``, rpm) at its new value
reached by a ramp from its value before (a start or stop without a speed write: ``STATUS``). The
audit log's times are the wall clock of the system that wrote them, which on a live plant is also
plant time and serves when the historian carries no setpoint tags.

Everything here is pure: audit records, readings (the tag table ``tag, ts, value, quality``) and
work orders come in as values; nothing is read or written.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from pumptwin.control.approval import FALSE_ALARM, alert_labels
from pumptwin.control.interlocks import Expectation
from pumptwin.twin.assets import PUMP_MEASURES
from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.times import to_utc

if TYPE_CHECKING:
    from pumptwin.control.audit import AuditRecord

Verdict = Literal["confirmed", "deviated", "no_data"]
"""How the plant's response compared with the prediction."""
OUTCOME_KIND = "outcome"
"""Audit record kind of an evaluated outcome."""
LABEL_KIND = "label"
"""Audit record kind of a label (the feedback's records name `FEEDBACK_WHO`)."""
FEEDBACK_WHO = "feedback"
"""Who the audit log names for what the feedback step records."""
FINAL_KINDS: tuple[str, ...] = ("done", "rolled_back", "unconfirmed")
"""The interlocks' final record of an implementation that may have written to the plant."""
ACTION_OUTCOMES_FILE = "action_outcomes.csv"
"""Outcome labels (`ACTION_OUTCOME_COLUMNS`) in the labels folder."""
ACTION_OUTCOME_COLUMNS: tuple[str, ...] = (
    "asset",
    "ts",
    "action",
    "verdict",
    "effect",
    "mode",
    "tag",
    "trend_before_per_h",
    "trend_after_per_h",
    "request",
)
"""Columns of the outcome labels: ``effect`` is the change of the asset's trend (after minus before,
the tag's unit per hour; empty when unknown), ``ts`` the implementation time (UTC ISO 8601)."""
CONFIRMED_FAULTS_FILE = "confirmed_faults.parquet"
"""Fault records the field confirmed (``asset, station, mode, onset_ts, failure_ts`` and where they
come from), in the labels folder, where training reads every fault-label file."""
CONFIRMED = "confirmed"
"""Label of an alert a work order confirmed."""
FALSE_ALARM_LABEL = "false_alarm"
"""Label of an alert rejected as a false alarm that no work order contradicted."""
GOOD_QUALITY: frozenset[str] = frozenset({"good"})
"""Reading qualities that count (questionable, bad and substituted readings do not)."""
MIN_TREND_READINGS = 3
"""Fewest readings a trend is fitted to."""
HOUR_S = 3600.0
FAULT_HORIZON_S = 30 * 86_400.0
"""How long after an alert a work order's finding confirms it, s."""
SETPOINT_TOLERANCE = 0.003
"""Relative speed within which a setpoint reading equals a target (the historian rounds to ~1 rpm)."""
FINGERPRINT_SLACK_S = 600.0
"""How far past its settling the historian is searched for the values the interlocks read, s."""
AUDIT_MATCH_S = 86_400.0
"""Largest gap between a candidate's settling and the final record's time for the record to pick it, s."""
EFFECT_MEASURES: dict[str, tuple[str, ...]] = {
    "bearing_wear": ("BRG_DE_TEMP", "BRG_NDE_TEMP"),
    "vibration": ("VIB_DE_RMS", "VIB_NDE_RMS"),
    "motor_overheating": ("MOTOR_WINDING_TEMP",),
    "seal_failure": ("SEAL_LEAK",),
    "strainer_clog": ("STRAINER_DP",),
    "cavitation": ("VIB_DE_RMS", "SUCT_PRESS"),
    "impeller_wear": ("VIB_DE_RMS", "BRG_DE_TEMP"),
}
"""The tags (pump measures) whose trend shows a failure mode's progress, first the main one."""
DEFAULT_EFFECT_MEASURES: tuple[str, ...] = ("BRG_DE_TEMP", "VIB_DE_RMS")
"""Measures trended for an asset at risk of an unknown mode."""


class OutcomeError(PumptwinError, ValueError):
    """Readings, expectations or windows an outcome cannot be evaluated on; the message names the value."""


# ---------------------------------------------------------------------------------------- results


def _num(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _signed(x: float, spec: str = "+.2f") -> str:
    return format(x, spec) if math.isfinite(x) else "n/a"


@dataclass(frozen=True)
class TagCheck:
    """One expectation against what the plant read over the verification window.

    Attributes:
        tag: Tag name (``PS01.P1.FLOW``).
        predicted: What the twin predicted, in the tag's engineering unit.
        observed: Median of the good readings in the window (NaN when none).
        tolerance: Largest acceptable absolute difference, same unit.
        readings: Good readings in the window.
    """

    tag: str
    predicted: float
    observed: float
    tolerance: float
    readings: int

    @property
    def error(self) -> float:
        """Observed minus predicted (NaN without readings)."""
        return self.observed - self.predicted

    @property
    def within(self) -> bool:
        """Whether the observed value lies within the tolerance (never without readings)."""
        return math.isfinite(self.observed) and abs(self.error) <= self.tolerance

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record (NaN as None)."""
        return {
            "tag": self.tag,
            "predicted": _num(self.predicted),
            "observed": _num(self.observed),
            "tolerance": _num(self.tolerance),
            "error": _num(self.error),
            "readings": self.readings,
            "within": self.within,
        }


@dataclass(frozen=True)
class Trend:
    """The trend of one tag of an asset at risk, before and after the action.

    Attributes:
        asset: The asset (``PS01.P1``).
        mode: The failure mode it is at risk of ("" when unknown).
        tag: The trended tag (``PS01.P1.BRG_DE_TEMP``).
        before_per_h: Least-squares slope over the window before, tag unit per hour (NaN: too few readings).
        after_per_h: The same over the verification window.
    """

    asset: str
    mode: str
    tag: str
    before_per_h: float
    after_per_h: float

    @property
    def change_per_h(self) -> float:
        """After minus before, tag unit per hour."""
        return self.after_per_h - self.before_per_h

    @property
    def unit(self) -> str:
        """The tag's engineering unit ("" for a measure the registry does not know)."""
        unit = PUMP_MEASURES.get(self.tag.rsplit(".", 1)[-1], "")
        return "" if unit == "-" else unit

    def describe(self) -> str:
        """One line: ``PS01.P1.BRG_DE_TEMP trend +0.80 degC/h before, +0.10 degC/h after``."""
        per = f" {self.unit}/h" if self.unit else "/h"
        return f"{self.tag} trend {_signed(self.before_per_h)}{per} before, {_signed(self.after_per_h)}{per} after"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record (NaN as None)."""
        return {
            "asset": self.asset,
            "mode": self.mode,
            "tag": self.tag,
            "unit": self.unit,
            "before_per_h": _num(self.before_per_h),
            "after_per_h": _num(self.after_per_h),
            "change_per_h": _num(self.change_per_h),
        }


@dataclass(frozen=True)
class Outcome:
    """What the plant did after an action, against what the twin predicted.

    Attributes:
        request: The request id.
        action: The action as an operator names it.
        implemented_at: When the action took effect (plant time, UTC).
        window_start: Start of the verification window (UTC, included).
        window_end: End of the verification window (UTC, excluded).
        checks: One per expectation.
        verdict: ``confirmed``, ``deviated`` or ``no_data``.
        effects: The trends of the assets at risk.
        assets: The assets at risk (the expectations' pumps when none was named).
    """

    request: str
    action: str
    implemented_at: pd.Timestamp
    window_start: pd.Timestamp
    window_end: pd.Timestamp
    checks: tuple[TagCheck, ...]
    verdict: Verdict
    effects: tuple[Trend, ...] = ()
    assets: tuple[str, ...] = ()

    @property
    def window_s(self) -> float:
        """Length of the verification window, s."""
        return float((self.window_end - self.window_start).total_seconds())

    def main_effects(self) -> list[Trend]:
        """Per asset, its first trend with both slopes known (else its first trend)."""
        out: dict[str, Trend] = {}
        for t in self.effects:
            known = math.isfinite(t.before_per_h) and math.isfinite(t.after_per_h)
            if t.asset not in out or (known and not _known(out[t.asset])):
                out[t.asset] = t
        return list(out.values())

    def message(self) -> str:
        """One line: the verdict, how many expectations held, and the main effect on each asset."""
        within = sum(c.within for c in self.checks)
        head = (
            f"{self.verdict}: {within} of {len(self.checks)} predictions within tolerance over "
            f"{self.window_s:g} s from {self.window_start.isoformat()}"
        )
        if not self.checks:
            head = f"{self.verdict}: no predictions to compare (the interlocks recorded no expectations)"
        effects = "; ".join(t.describe() for t in self.main_effects())
        return f"{head}; {effects}" if effects else head

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record (times as ISO 8601, NaN as None)."""
        return {
            "request": self.request,
            "action": self.action,
            "implemented_at": self.implemented_at.isoformat(),
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "verdict": self.verdict,
            "checks": [c.to_dict() for c in self.checks],
            "effects": [t.to_dict() for t in self.effects],
            "assets": list(self.assets),
            "message": self.message(),
        }


def _known(t: Trend) -> bool:
    return math.isfinite(t.before_per_h) and math.isfinite(t.after_per_h)


# ---------------------------------------------------------------------------------------- readings


def _utc(moment: object, what: str) -> pd.Timestamp:
    try:
        return to_utc(moment, what=what)
    except (TypeError, ValueError) as exc:
        raise OutcomeError(f"{what}: {exc}") from None


def _check_readings(readings: pd.DataFrame) -> None:
    missing = [c for c in ("tag", "ts", "value", "quality") if c not in readings.columns]
    if missing:
        raise OutcomeError(f"readings: missing columns {missing} (need tag, ts, value, quality)")


def _series(readings: pd.DataFrame, tag: str, start: pd.Timestamp | None, end: pd.Timestamp | None) -> pd.DataFrame:
    """Good, finite readings of ``tag`` in ``[start, end)`` as ``ts, value`` sorted by time."""
    _check_readings(readings)
    rows = readings[(readings["tag"] == tag).to_numpy()]
    if rows.empty:
        return pd.DataFrame({"ts": pd.Series(dtype="datetime64[ns, UTC]"), "value": pd.Series(dtype=np.float64)})
    ts = pd.to_datetime(rows["ts"], utc=True)
    value = pd.to_numeric(rows["value"], errors="coerce").to_numpy(dtype=np.float64)
    keep = rows["quality"].astype(str).isin(GOOD_QUALITY).to_numpy() & np.isfinite(value)
    if start is not None:
        keep &= (ts >= start).to_numpy()
    if end is not None:
        keep &= (ts < end).to_numpy()
    out = pd.DataFrame({"ts": ts.reset_index(drop=True), "value": value}).loc[keep]
    return out.sort_values("ts", kind="stable").reset_index(drop=True)


def trend_per_hour(readings: pd.DataFrame, tag: str, start: object, end: object) -> float:
    """The least-squares slope of a tag's good readings over ``[start, end)``, in the tag's unit per hour.

    Args:
        readings: The tag table ``tag, ts, value, quality`` (other tags are ignored).
        tag: The tag to trend.
        start: First time included (timezone-aware, or naive UTC).
        end: First time excluded.

    Returns:
        The slope per hour; NaN with fewer than `MIN_TREND_READINGS` readings or all at one time.

    Raises:
        OutcomeError: Readings without the tag table's columns, or an unreadable time.
    """
    series = _series(readings, tag, _utc(start, "trend start"), _utc(end, "trend end"))
    if len(series) < MIN_TREND_READINGS:
        return math.nan
    t_h = (series["ts"] - series["ts"].iloc[0]).dt.total_seconds().to_numpy() / HOUR_S
    if np.ptp(t_h) <= 0:
        return math.nan
    slope = np.polyfit(t_h, series["value"].to_numpy(), 1)[0]
    return float(slope)


def observed_median(readings: pd.DataFrame, tag: str, start: object, end: object) -> tuple[float, int]:
    """The median of a tag's good readings over ``[start, end)`` and how many there were (NaN, 0 when none)."""
    series = _series(readings, tag, _utc(start, "window start"), _utc(end, "window end"))
    if series.empty:
        return math.nan, 0
    return float(np.median(series["value"].to_numpy())), len(series)


def effect_targets(at_risk: Iterable[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """``(asset, mode, tag)`` to trend for each ``(asset, mode)`` at risk, by `EFFECT_MEASURES`, without repeats."""
    out: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    for asset, mode in at_risk:
        for measure in EFFECT_MEASURES.get(mode, DEFAULT_EFFECT_MEASURES):
            tag = f"{asset}.{measure}"
            if tag not in seen:
                seen.add(tag)
                out.append((asset, mode, tag))
    return out


def evaluate_outcome(
    expectations: Sequence[Expectation],
    readings: pd.DataFrame,
    implemented_at: object,
    window_s: float,
    *,
    settle_s: float = 0.0,
    request: str = "",
    action: str = "",
    at_risk: Sequence[tuple[str, str]] = (),
) -> Outcome:
    """Compare the plant's readings after an action with the twin's predictions, and trend the assets at risk.

    Args:
        expectations: What the twin predicted (tag, value, tolerance), as the interlocks checked it.
        readings: The tag table ``tag, ts, value, quality`` covering ``window_s`` before the action
            to the end of the verification window (only good, finite readings count).
        implemented_at: When the action took effect (plant time; naive is UTC).
        window_s: Length of the verification window and of the trend window before the action, s.
        settle_s: Wait after ``implemented_at`` before the verification window opens, s.
        request: The request id.
        action: The action as an operator names it.
        at_risk: ``(asset, failure mode)`` of each asset at risk ("" mode: unknown).

    Returns:
        The outcome: per expectation the median observed over the window and its error, the
        verdict, and the trends of the assets at risk before and after.

    Raises:
        OutcomeError: A window or settle time that is not a positive (non-negative) finite number,
            readings without the tag table's columns, or an unreadable time.
    """
    if not (math.isfinite(window_s) and window_s > 0):
        raise OutcomeError(f"window_s must be a number > 0, got {window_s}")
    if not (math.isfinite(settle_s) and settle_s >= 0):
        raise OutcomeError(f"settle_s must be a number >= 0, got {settle_s}")
    _check_readings(readings)
    at = _utc(implemented_at, "implemented_at")
    start = at + pd.Timedelta(seconds=settle_s)
    end = start + pd.Timedelta(seconds=window_s)
    checks = []
    for e in expectations:
        observed, n = observed_median(readings, e.tag, start, end)
        checks.append(TagCheck(e.tag, float(e.value), observed, float(e.tolerance), n))
    if any(c.readings and not c.within for c in checks):
        verdict: Verdict = "deviated"
    elif not checks or any(c.readings == 0 for c in checks):
        verdict = "no_data"
    else:
        verdict = "confirmed"
    before = at - pd.Timedelta(seconds=window_s)
    effects = tuple(
        Trend(asset, mode, tag, trend_per_hour(readings, tag, before, at), trend_per_hour(readings, tag, start, end))
        for asset, mode, tag in effect_targets(at_risk)
    )
    assets = tuple(dict.fromkeys(a for a, _ in at_risk)) or tuple(
        dict.fromkeys(".".join(e.tag.split(".")[:2]) for e in expectations)
    )
    return Outcome(request, action, at, start, end, tuple(checks), verdict, effects, assets)


def outcome_labels(outcome: Outcome) -> list[dict[str, str]]:
    """The label rows of an outcome (`ACTION_OUTCOME_COLUMNS`): one per asset, with its main trend.

    An asset without a trend (no tag to trend) still gets its row, with the effect empty.
    """
    main = {t.asset: t for t in outcome.main_effects()}
    rows = []
    for asset in outcome.assets:
        t = main.get(asset)
        rows.append(
            {
                "asset": asset,
                "ts": outcome.implemented_at.isoformat(),
                "action": outcome.action,
                "verdict": outcome.verdict,
                "effect": _text(t.change_per_h) if t else "",
                "mode": t.mode if t else "",
                "tag": t.tag if t else "",
                "trend_before_per_h": _text(t.before_per_h) if t else "",
                "trend_after_per_h": _text(t.after_per_h) if t else "",
                "request": outcome.request,
            }
        )
    return rows


def _text(x: float) -> str:
    return repr(float(x)) if math.isfinite(x) else ""


VERDICT_WORDS: dict[str, str] = {
    "confirmed": "the plant responded as the twin predicted",
    "deviated": "the plant did not respond as the twin predicted",
    "no_data": "the historian had no readings to compare with the twin's prediction",
}
"""How an outcome report words each verdict."""


def outcome_report_id(request: str) -> str:
    """The knowledge document id of a request's outcome report (``OUT-<request>``, spaces and '#' replaced)."""
    return "OUT-" + re.sub(r"[^A-Za-z0-9._:-]", "-", request)


def outcome_report_markdown(outcome: Outcome, failure_modes: Iterable[str] = ()) -> str:
    """The outcome as a document of the knowledge corpus (`pumptwin.agents.documents` reads it), to be cited.

    YAML front matter (``id``, ``doc_type: outcome``, ``title``, the assets at risk, ``failure_modes``
    as given, ``date`` of the implementation) and one passage: the action, when it took effect, the
    verdict with how many predictions held, and each asset's main trend before and after.
    """
    day = outcome.implemented_at.strftime("%Y-%m-%d")
    assets = outcome.assets or tuple(t.asset for t in outcome.main_effects())
    title = f"Outcome of {outcome.action}, {day}"
    within = sum(c.within for c in outcome.checks)
    held = (
        f"{within} of {len(outcome.checks)} predictions within tolerance over {outcome.window_s / 3600.0:g} h"
        if outcome.checks
        else "no predictions to compare"
    )
    lines = [
        f"Action: {outcome.action} (request {outcome.request}), in effect from "
        f"{outcome.implemented_at.strftime('%Y-%m-%d %H:%M')} UTC.",
        f"Verdict: {outcome.verdict}, {VERDICT_WORDS[outcome.verdict]} ({held}).",
    ]
    for t in outcome.main_effects():
        mode = f" ({t.mode.replace('_', ' ')})" if t.mode else ""
        lines.append(f"Effect on {t.asset}{mode}: {t.describe()}.")
    quoted = title.replace("\\", "\\\\").replace('"', '\\"')
    front = [
        "---",
        f"id: {outcome_report_id(outcome.request)}",
        "doc_type: outcome",
        f'title: "{quoted}"',
        f"assets: [{', '.join(assets)}]",
        f"failure_modes: [{', '.join(dict.fromkeys(failure_modes))}]",
        f"date: {day}",
        "revision: 1",
        "---",
        f"# {title}",
        "",
    ]
    return "\n".join([*front, " ".join(lines), ""])


# ---------------------------------------------------------------------------------------- the audit log


@dataclass(frozen=True)
class Implementation:
    """An implementation attempt as the audit log records it.

    Attributes:
        request: The request id.
        action: The action ("" when the log has no recommendation record for it).
        status: The interlocks' final record: ``done``, ``rolled_back`` or ``unconfirmed``.
        seq: Sequence number of that final record.
        hash: Its hash.
        recorded_at: Its time (the writer's wall clock, UTC).
        speeds: Relative speed by pump the implementation wrote (the last ``implement`` write of each).
        running: Running state by pump a start or stop wrote (1 or 0).
        before: The state before (``PUMP.speed`` relative, ``PUMP.running`` 1/0).
        expectations: What the interlocks checked the response against (the ``verified`` record's).
        observed: The expectation tags as read after settling.
        at_risk: ``(asset, failure mode)`` of each asset at risk, from the recommendation.
        alerted_since: Earliest start of the recommendation's alerts (plant time; None without alerts).
    """

    request: str
    action: str
    status: str
    seq: int
    hash: str
    recorded_at: pd.Timestamp
    speeds: Mapping[str, float] = field(default_factory=dict)
    running: Mapping[str, float] = field(default_factory=dict)
    before: Mapping[str, float] = field(default_factory=dict)
    expectations: tuple[Expectation, ...] = ()
    observed: Mapping[str, float] = field(default_factory=dict)
    at_risk: tuple[tuple[str, str], ...] = ()
    alerted_since: pd.Timestamp | None = None

    @property
    def pumps(self) -> tuple[str, ...]:
        """The pumps written to."""
        return tuple(sorted(set(self.speeds) | set(self.running)))


def situation_of(record: AuditRecord) -> list[str]:
    """The alert lines of a ``recommendation`` record (its ``why`` joins the situation with ``"; "``)."""
    return [s for s in record.why.split("; ") if s] if record.why else []


def _float_map(data: object) -> dict[str, float]:
    if not isinstance(data, Mapping):
        return {}
    out = {}
    for k, v in data.items():
        try:
            out[str(k)] = float(v)
        except (TypeError, ValueError):
            out[str(k)] = math.nan
    return out


def _expectations(record: AuditRecord | None) -> tuple[Expectation, ...]:
    if record is None:
        return ()
    out = []
    for item in (record.data or {}).get("expect", ()):
        try:
            tag, value, tolerance = item
            out.append(Expectation(str(tag), float(value), float(tolerance)))
        except (TypeError, ValueError) as exc:
            raise OutcomeError(f"audit record {record.seq}: expectation {item!r} cannot be read: {exc}") from None
    return tuple(out)


def _at_risk(recommendation: AuditRecord | None) -> tuple[tuple[tuple[str, str], ...], pd.Timestamp | None]:
    if recommendation is None:
        return (), None
    alerts = alert_labels(situation_of(recommendation))
    modes: dict[str, str] = {}
    for asset, mode, _ in alerts:
        modes.setdefault(asset, mode)
    for asset in (recommendation.data or {}).get("assets", ()):
        modes.setdefault(str(asset), "")
    since = min((ts for _, _, ts in alerts), default=None)
    return tuple(modes.items()), since


def implementations(records: Sequence[AuditRecord]) -> list[Implementation]:
    """Every implementation attempt that may have written to the plant, in the order of the log.

    Reads, per request: the ``recommendation`` record (action, assets, situation), the ``write``
    records of the ``implement`` phase (speeds and starts/stops), the ``verified`` record
    (expectations) and the final record (`FINAL_KINDS`, with ``data["steps"]`` > 0).
    """
    recommendation: dict[str, AuditRecord] = {}
    writes: dict[str, list[AuditRecord]] = {}
    verified: dict[str, AuditRecord] = {}
    out = []
    for r in records:
        data = r.data or {}
        if r.kind == "recommendation":
            recommendation.setdefault(r.request, r)
        elif r.kind == "write" and data.get("phase") == "implement":
            writes.setdefault(r.request, []).append(r)
        elif r.kind == "verified":
            verified[r.request] = r
        elif r.kind in FINAL_KINDS and int(data.get("steps", 0) or 0) > 0:
            speeds: dict[str, float] = {}
            running: dict[str, float] = {}
            for w in writes.get(r.request, []):
                target = str(next(iter((w.after or {}).keys()), "")).rsplit(".", 1)[0]
                kind = w.data.get("kind")
                if kind == "speed" and target:
                    speeds[target] = float(w.data["value"])
                elif kind in ("start", "stop") and target:
                    running[target] = 1.0 if kind == "start" else 0.0
            rec = recommendation.get(r.request)
            at_risk, since = _at_risk(rec)
            out.append(
                Implementation(
                    request=r.request,
                    action=rec.what if rec is not None else "",
                    status=r.kind,
                    seq=r.seq,
                    hash=r.hash,
                    recorded_at=to_utc(r.ts),
                    speeds=speeds,
                    running=running,
                    before=_float_map(r.before),
                    expectations=_expectations(verified.get(r.request)) if r.kind == "done" else (),
                    observed=_float_map(data.get("observed")),
                    at_risk=at_risk,
                    alerted_since=since,
                )
            )
    return out


# ---------------------------------------------------------------------------------------- when it took effect


def ramp_arrivals(
    series: pd.DataFrame, before: float, target: float, tolerance: float, not_before: pd.Timestamp | None = None
) -> list[pd.Timestamp]:
    """Every time a series reaches ``target`` by a ramp from ``before``, at or after ``not_before``, in order.

    A ramp: the reading at ``target`` (within ``tolerance``) follows readings between ``before`` and
    ``target``, the earliest of them at ``before``.

    Args:
        series: ``ts, value`` sorted by time.
        before: The value before the change.
        target: The value after it.
        tolerance: Within this two values are the same.
        not_before: Earliest time the change may lie at (None: any).

    Returns:
        The time of the first reading at ``target`` of each such ramp.
    """
    values = series["value"].to_numpy(dtype=np.float64)
    times = pd.to_datetime(series["ts"], utc=True)
    lo, hi = min(before, target) - tolerance, max(before, target) + tolerance
    at_target = np.abs(values - target) <= tolerance
    out = []
    for i in np.flatnonzero(at_target[1:] & ~at_target[:-1]) + 1:
        if not_before is not None and times.iloc[i] < not_before:
            continue
        j = i - 1
        while j >= 0 and lo <= values[j] <= hi and abs(values[j] - before) > tolerance:
            j -= 1
        if j >= 0 and abs(values[j] - before) <= tolerance:
            out.append(pd.Timestamp(times.iloc[i]))
    return out


def ramp_arrival(
    series: pd.DataFrame, before: float, target: float, tolerance: float, not_before: pd.Timestamp | None = None
) -> pd.Timestamp | None:
    """The first of `ramp_arrivals` (None when there is none)."""
    found = ramp_arrivals(series, before, target, tolerance, not_before)
    return found[0] if found else None


def setpoint_tags(impl: Implementation) -> list[str]:
    """The historian tags that show when the implementation took effect (``SPEED_SP``, else ``STATUS``)."""
    return [f"{p}.SPEED_SP" if p in impl.speeds else f"{p}.STATUS" for p in impl.pumps]


def fingerprint_tags(impl: Implementation) -> list[str]:
    """The tags the interlocks read after settling (their values identify the moment in the historian)."""
    return sorted(t for t, v in impl.observed.items() if math.isfinite(v))


def _seen(readings: pd.DataFrame, observed: Mapping[str, float], start: pd.Timestamp, end: pd.Timestamp) -> bool:
    """Whether every finite observed value is among the good readings of its tag in ``[start, end)``."""
    tags = [t for t, v in observed.items() if math.isfinite(v)]
    for tag in tags:
        values = _series(readings, tag, start, end)["value"].to_numpy()
        if not np.isclose(values, observed[tag], rtol=1e-12, atol=0.0).any():
            return False
    return bool(tags)


def _choose(
    candidates: Sequence[pd.Timestamp], readings: pd.DataFrame, impl: Implementation, settle_s: float
) -> pd.Timestamp | None:
    """The candidate arrival that the implementation's own records point at.

    First the one after which the historian holds exactly the values the interlocks read on
    settling (the same readings, archived); else the one whose settling ends nearest the final
    record's time, if within `AUDIT_MATCH_S` (a live plant's wall clock is plant time); else the first.
    """
    if not candidates:
        return None
    settle = pd.Timedelta(seconds=settle_s)
    slack = pd.Timedelta(seconds=FINGERPRINT_SLACK_S)
    for t in candidates:
        if _seen(readings, impl.observed, t, t + settle + slack):
            return t
    gaps = [abs((t + settle - impl.recorded_at).total_seconds()) for t in candidates]
    best = int(np.argmin(gaps))
    return candidates[best] if gaps[best] <= AUDIT_MATCH_S else candidates[0]


def implementation_time(
    readings: pd.DataFrame,
    impl: Implementation,
    rated_rpm: Mapping[str, float],
    not_before: pd.Timestamp | None = None,
    tolerance: float = SETPOINT_TOLERANCE,
    settle_s: float = 0.0,
) -> pd.Timestamp | None:
    """When an implementation took effect in plant time: the last of its pumps' setpoint changes in the readings.

    Each pump with a speed write must show a ramp of ``STATION.PUMP.SPEED_SP`` (rpm, divided by the
    pump's rated speed) from its speed before to the written one; a pump only started or stopped,
    a change of ``STATUS``. A pump whose speed did not change is not looked for. When a pump shows
    several such changes (the same speeds set by hand, an automatic schedule), the one its records
    point at is taken (see `_choose`): the readings of `fingerprint_tags` settle the question when given.

    Args:
        readings: Tag table with the pumps' ``SPEED_SP`` and ``STATUS`` readings (and, to tell
            candidates apart, the readings of `fingerprint_tags`).
        impl: The implementation.
        rated_rpm: Rated speed by pump, rpm.
        not_before: Earliest time the change may lie at (plant time).
        tolerance: Relative speed within which a reading equals a target.
        settle_s: The interlocks' wait between the last write and reading the response, s.

    Returns:
        The time of the last pump's arrival at its new setpoint; None when a pump shows no such change.
    """
    found: list[pd.Timestamp] = []
    for pump in impl.pumps:
        if pump in impl.speeds:
            rated = float(rated_rpm.get(pump, math.nan))
            before = impl.before.get(f"{pump}.speed", math.nan)
            target = impl.speeds[pump]
            if not (math.isfinite(rated) and rated > 0 and math.isfinite(before)):
                return None
            if abs(before - target) <= tolerance:
                continue
            series = _series(readings, f"{pump}.SPEED_SP", None, None)
            series["value"] = series["value"] / rated
            candidates = ramp_arrivals(series, before, target, tolerance, not_before)
        else:
            target = impl.running[pump]
            if impl.before.get(f"{pump}.running", math.nan) == target:
                continue
            series = _series(readings, f"{pump}.STATUS", None, None)
            candidates = ramp_arrivals(series, 1.0 - target, target, 0.5, not_before)
        at = _choose(candidates, readings, impl, settle_s)
        if at is None:
            return None
        found.append(at)
    return max(found) if found else None


# ---------------------------------------------------------------------------------------- field confirmation


@dataclass(frozen=True)
class AlertedRequest:
    """An asset a request named at risk, as the field may later confirm or refute.

    Attributes:
        request: The request id.
        asset: The asset (``PS01.P1``).
        mode: The failure mode alerted ("" when unknown).
        since: When the alert began (plant time, UTC).
        false_alarm: The request was rejected as a false alarm.
    """

    request: str
    asset: str
    mode: str
    since: pd.Timestamp
    false_alarm: bool = False


def alerted_requests(records: Sequence[AuditRecord]) -> list[AlertedRequest]:
    """The alerted assets of every ``recommendation`` record, with whether a decision rejected it as a false alarm.

    The time of each is its alert's start (plant time); an asset named without an alert line takes
    the request's creation time.
    """
    false_alarms = {
        r.request
        for r in records
        if r.kind == "decision"
        and (r.data or {}).get("decides")
        and not (r.data or {}).get("approve")
        and (r.data or {}).get("reason") == FALSE_ALARM
    }
    out: list[AlertedRequest] = []
    seen: set[tuple[str, str]] = set()
    done: set[str] = set()
    for r in records:
        if r.kind != "recommendation" or r.request in done:
            continue
        done.add(r.request)
        alerts = alert_labels(situation_of(r))
        named = [(a, m, ts) for a, m, ts in alerts]
        created = (r.data or {}).get("created")
        for asset in (r.data or {}).get("assets", ()):
            if created and all(a != asset for a, _, _ in alerts):
                named.append((str(asset), "", to_utc(created)))
        for asset, mode, since in named:
            if (r.request, asset) not in seen:
                seen.add((r.request, asset))
                out.append(AlertedRequest(r.request, asset, mode, since, r.request in false_alarms))
    return out


def _findings(work_orders: pd.DataFrame | None) -> pd.DataFrame:
    """Work orders with a finding (a failure mode other than healthy), ``asset, ts, mode, onset_ts, failure_ts``."""
    cols = ["asset", "ts", "mode", "onset_ts", "failure_ts"]
    if work_orders is None or work_orders.empty or not {"asset", "ts", "mode"} <= set(work_orders.columns):
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    mode = work_orders["mode"].fillna("").astype(str).str.strip()
    rows = work_orders[((mode != "") & (mode.str.lower() != "healthy")).to_numpy()]
    out = pd.DataFrame(
        {
            "asset": rows["asset"].astype(str).to_numpy(),
            "ts": pd.to_datetime(rows["ts"], utc=True).to_numpy(),
            "mode": mode[rows.index].to_numpy(),
        }
    )
    for c in ("onset_ts", "failure_ts"):
        out[c] = pd.to_datetime(rows[c], utc=True).to_numpy() if c in rows.columns else pd.NaT
    out["ts"] = pd.to_datetime(out["ts"], utc=True)
    return out.sort_values("ts", kind="stable").reset_index(drop=True)


def confirmed_fault_rows(
    work_orders: pd.DataFrame | None, requests: Sequence[AlertedRequest], horizon_s: float = FAULT_HORIZON_S
) -> list[dict[str, Any]]:
    """What the field says of each alerted asset: a fault confirmed by a work order, or a false alarm that stays one.

    A work order with a finding (``mode`` other than empty or ``healthy``) on the asset, closed
    (``ts``) within ``horizon_s`` after the alert began, confirms the fault: label `CONFIRMED`,
    as a fault record with the work order's mode, onset (its ``onset_ts``, else the alert's start)
    and failure (its ``failure_ts``, else when it was closed). A request rejected as a false alarm
    that no such work order confirms stays a false alarm (`FALSE_ALARM_LABEL`, no failure). Any
    other request says nothing yet.

    Args:
        work_orders: The maintenance records (``asset, ts, action[, mode, onset_ts, failure_ts]``).
        requests: The alerted assets (`alerted_requests`).
        horizon_s: How long after the alert a finding confirms it, s.

    Returns:
        Rows ``asset, station, mode, onset_ts, failure_ts, request, label, work_order_ts``.
    """
    if not (math.isfinite(horizon_s) and horizon_s >= 0):
        raise OutcomeError(f"horizon_s must be a number >= 0, got {horizon_s}")
    found = _findings(work_orders)
    horizon = pd.Timedelta(seconds=horizon_s)
    rows: list[dict[str, Any]] = []
    for r in requests:
        match = found[
            ((found["asset"] == r.asset) & (found["ts"] >= r.since) & (found["ts"] <= r.since + horizon)).to_numpy()
        ]
        station = r.asset.split(".", 1)[0]
        if len(match):
            wo = match.iloc[0]
            onset = wo["onset_ts"] if pd.notna(wo["onset_ts"]) else r.since
            failure = wo["failure_ts"] if pd.notna(wo["failure_ts"]) else wo["ts"]
            rows.append(
                {
                    "asset": r.asset,
                    "station": station,
                    "mode": str(wo["mode"]),
                    "onset_ts": pd.Timestamp(onset),
                    "failure_ts": pd.Timestamp(failure),
                    "request": r.request,
                    "label": CONFIRMED,
                    "work_order_ts": pd.Timestamp(wo["ts"]),
                }
            )
        elif r.false_alarm:
            rows.append(
                {
                    "asset": r.asset,
                    "station": station,
                    "mode": r.mode,
                    "onset_ts": r.since,
                    "failure_ts": pd.NaT,
                    "request": r.request,
                    "label": FALSE_ALARM_LABEL,
                    "work_order_ts": pd.NaT,
                }
            )
    return rows
