"""The steps of the feedback flow: outcomes of implemented actions, labels from them, and the lineage of a retraining.

Plain functions over the settings, wrapped by the Prefect flow ``feedback`` (`flows.feedback`):

- `find_pending` reads the audit log for implementations (the interlocks' ``done`` records) without
  an ``outcome`` record, finds in the raw store when each took effect (plant time: the ramp of the
  pumps' ``SPEED_SP`` tags, `pumptwin.control.outcome.implementation_time`; the audit time when
  the historian carries no setpoint tags) and whether the raw store covers its verification window;
- `evaluate` reads the expectation tags and the tags of the assets at risk from the raw store and
  compares them with the twin's predictions (`pumptwin.control.outcome.evaluate_outcome`);
- `record_outcome` appends the outcome's label rows to ``<labels_dir>/action_outcomes.csv`` and
  writes the ``outcome`` record (predicted ``before``, observed ``after``) to the audit log;
- `confirm_faults` turns the maintenance records (``<labels_dir>/maintenance.csv``) into labels of
  the alerted requests: a finding confirms the fault (a fault record in
  ``<labels_dir>/confirmed_faults.parquet``, which training reads), a rejection as a false alarm
  that no finding contradicts stays one; each new label is a ``label`` record by ``feedback``;
- `lineage` names the audit records a retraining learns from (sequence numbers and hashes, the
  log's head) and the digest of the label files, for the training runs' ``pumptwin.lineage.*`` tags.

Every step is idempotent: an implementation with an ``outcome`` record, a label row of a request
already in the file and a label with a ``label`` record are never written again.
"""

from __future__ import annotations

import csv
import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pumptwin.control.approval import FALSE_ALARMS_FILE, append_rows
from pumptwin.control.audit import AuditLog, AuditRecord
from pumptwin.control.outcome import (
    ACTION_OUTCOME_COLUMNS,
    ACTION_OUTCOMES_FILE,
    CONFIRMED,
    CONFIRMED_FAULTS_FILE,
    FEEDBACK_WHO,
    LABEL_KIND,
    OUTCOME_KIND,
    Implementation,
    Outcome,
    alerted_requests,
    confirmed_fault_rows,
    effect_targets,
    evaluate_outcome,
    fingerprint_tags,
    implementation_time,
    implementations,
    outcome_labels,
    outcome_report_id,
    outcome_report_markdown,
    setpoint_tags,
)
from pumptwin.flows.implement_steps import audit_path, open_audit
from pumptwin.flows.settings import Settings
from pumptwin.flows.store_steps import raw_store
from pumptwin.flows.train_steps import read_maintenance
from pumptwin.twin.times import to_utc

MAX_TAG_CHARS = 5000
"""Longest lineage tag value written (MLflow refuses longer ones); a longer list names how many it left out."""
READING_COLUMNS = ["tag", "ts", "value", "quality"]
LABEL_FILES: tuple[str, ...] = (ACTION_OUTCOMES_FILE, CONFIRMED_FAULTS_FILE, FALSE_ALARMS_FILE)
"""The label files whose digest a retraining's lineage records."""


@dataclass(frozen=True)
class Pending:
    """An implementation without an outcome yet.

    Attributes:
        implementation: What the audit log records of it.
        implemented_at: When it took effect (plant time, UTC); None when the raw store does not show it yet.
        source: Where that time comes from: ``historian`` (the setpoint tags) or ``audit`` (the log's time).
        window_end: End of its verification window (None while ``implemented_at`` is unknown).
        ready: The raw store covers the verification window.
        reason: Why it is not ready ("" when it is).
    """

    implementation: Implementation
    implemented_at: pd.Timestamp | None
    source: str
    window_end: pd.Timestamp | None
    ready: bool
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "request": self.implementation.request,
            "action": self.implementation.action,
            "implemented_at": None if self.implemented_at is None else self.implemented_at.isoformat(),
            "source": self.source,
            "window_end": None if self.window_end is None else self.window_end.isoformat(),
            "ready": self.ready,
            "reason": self.reason,
        }


def _stations(tags: Sequence[str]) -> list[str]:
    return sorted({t.split(".", 1)[0] for t in tags})


def rated_speeds(settings: Settings, pumps: Sequence[str]) -> dict[str, float]:
    """Rated speed by pump, rpm, from the twin's registry of the fleet."""
    from pumptwin.flows.build_features_steps import fleet_registry

    if not pumps:
        return {}
    registry = fleet_registry(settings, _stations(pumps))
    return {p.name: float(p.rated_speed_rpm) for p in registry.pumps if p.name in set(pumps)}


def _outcome_times(records: Sequence[AuditRecord]) -> dict[str, pd.Timestamp]:
    out = {}
    for r in records:
        if r.kind == OUTCOME_KIND and r.who == FEEDBACK_WHO:
            at = (r.data or {}).get("implemented_at")
            out[r.request] = to_utc(at) if at else to_utc(r.ts)
    return out


def _read(
    settings: Settings, tags: Sequence[str], start: pd.Timestamp | None, end: pd.Timestamp | None
) -> pd.DataFrame:
    return raw_store(settings).read(_stations(tags), start, end, tags=sorted(set(tags)))


def _window_tags(impl: Implementation) -> list[str]:
    return [e.tag for e in impl.expectations] + [t for _, _, t in effect_targets(impl.at_risk)]


def find_pending(settings: Settings, request: str | None, window_s: float) -> list[Pending]:
    """The implementations without an outcome, when each took effect and whether its window is in the raw store.

    Implementations are taken in the order of the audit log; each is looked for in the historian
    after the previous one (and after its own alerts began), so the same speeds set twice are told
    apart. Attempts that were rolled back take part in that order but are not returned.

    Args:
        settings: The settings of this entry point.
        request: Only this request (None: every one).
        window_s: Length of the verification window, s.

    Returns:
        One `Pending` per ``done`` implementation without an outcome record (only ``request``'s when given).
    """
    records = open_audit(settings).records()
    have = _outcome_times(records)
    store = raw_store(settings)
    marks = store.watermarks()
    impls = implementations(records)
    rated = rated_speeds(settings, sorted({p for i in impls for p in i.speeds}))
    settle = pd.Timedelta(seconds=settings.control.settle_s)
    bound: pd.Timestamp | None = None
    out = []
    for impl in impls:
        if impl.request in have:
            bound = max(bound, have[impl.request]) if bound is not None else have[impl.request]
            continue
        not_before = max((t for t in (bound, impl.alerted_since) if t is not None), default=None)
        tags = setpoint_tags(impl)
        if not any(t in marks for t in tags):  # the historian has no setpoint tags: the log's time is plant time
            at, source = impl.recorded_at, "audit"
        else:
            found = _read(settings, [*tags, *fingerprint_tags(impl)], not_before, None)
            at = implementation_time(found, impl, rated, not_before, settle_s=settings.control.settle_s)
            source = "historian"
        if at is not None:
            bound = at
        if impl.status != "done" or (request is not None and impl.request != request):
            continue
        if at is None:
            out.append(Pending(impl, None, source, None, False, "the raw store shows no setpoint change for it yet"))
            continue
        end = at + settle + pd.Timedelta(seconds=window_s)
        needed = [t for t in [*tags, *_window_tags(impl)] if t in marks] if source == "historian" else []
        needed = needed or [t for t in _window_tags(impl) if t in marks]
        short = sorted(t for t in needed if marks[t] < end)
        if not needed or short:
            why = f"the raw store ends before {end.isoformat()}" + (
                f" ({short[0]} at {marks[short[0]]})" if short else ""
            )
            out.append(Pending(impl, at, source, end, False, why))
            continue
        out.append(Pending(impl, at, source, end, True))
    return out


def evaluate(settings: Settings, pending: Pending, window_s: float) -> Outcome:
    """Compare the raw store's readings over a ready implementation's window with the twin's predictions."""
    impl = pending.implementation
    if pending.implemented_at is None or pending.window_end is None:
        raise ValueError(f"request {impl.request}: not ready to evaluate ({pending.reason})")
    start = pending.implemented_at - pd.Timedelta(seconds=window_s)
    tags = _window_tags(impl)
    readings = _read(settings, tags, start, pending.window_end) if tags else pd.DataFrame(columns=READING_COLUMNS)
    return evaluate_outcome(
        impl.expectations,
        readings,
        pending.implemented_at,
        window_s,
        settle_s=settings.control.settle_s,
        request=impl.request,
        action=impl.action,
        at_risk=impl.at_risk,
    )


def _existing(path: Path, column: str) -> set[str]:
    if not path.is_file() or path.stat().st_size == 0:
        return set()
    with path.open(encoding="utf-8", newline="") as f:
        return {row.get(column, "") for row in csv.DictReader(f)}


def outcome_reports_dir(settings: Settings) -> Path:
    """Where outcome reports are written for the knowledge store: ``<home>/feedback/reports``."""
    return settings.home / "feedback" / "reports"


def write_outcome_report(settings: Settings, outcome: Outcome) -> Path:
    """Write (or replace) the outcome's report, a document the recommender retrieves and cites.

    Its failure modes are those of the outcome's trends that the knowledge corpus knows.
    """
    from pumptwin.agents.documents import FAILURE_MODES

    modes = [t.mode for t in outcome.effects if t.mode in FAILURE_MODES]
    path = outcome_reports_dir(settings) / f"{outcome_report_id(outcome.request)}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(outcome_report_markdown(outcome, modes), encoding="utf-8")
    tmp.replace(path)
    return path


def record_outcome(settings: Settings, pending: Pending, outcome: Outcome) -> dict[str, Any]:
    """Append the outcome's label rows (once per request), write its report and its ``outcome`` audit record.

    Returns:
        The outcome (`Outcome.to_dict`), the record's ``seq`` and ``hash``, the label rows written and
        the report's path.
    """
    impl = pending.implementation
    path = settings.labels_dir / ACTION_OUTCOMES_FILE
    rows = [] if outcome.request in _existing(path, "request") else outcome_labels(outcome)
    written = append_rows(path, rows, ACTION_OUTCOME_COLUMNS)
    report = write_outcome_report(settings, outcome)
    data = {
        **outcome.to_dict(),
        "implemented_at_source": pending.source,
        "implementation": {"seq": impl.seq, "hash": impl.hash, "status": impl.status},
        "labels_file": str(path),
        "label_rows": written,
    }
    record = open_audit(settings).append(
        OUTCOME_KIND,
        outcome.request,
        FEEDBACK_WHO,
        outcome.message(),
        why=f"plant response over {outcome.window_s:g} s after the action against the twin's prediction",
        before={c.tag: c.predicted for c in outcome.checks},
        after={c.tag: c.observed for c in outcome.checks},
        data=data,
    )
    return {
        "outcome": outcome.to_dict(),
        "seq": record.seq,
        "hash": record.hash,
        "label_rows": written,
        "report": str(report),
    }


def _feedback_labels(records: Sequence[AuditRecord]) -> set[tuple[str, str, str]]:
    return {
        (r.request, str((r.data or {}).get("asset", "")), str((r.data or {}).get("label", "")))
        for r in records
        if r.kind == LABEL_KIND and r.who == FEEDBACK_WHO
    }


def _write_confirmed(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Merge confirmed fault records into the parquet file (one per request and asset)."""
    new = pd.DataFrame(list(rows))
    for col in ("onset_ts", "failure_ts", "work_order_ts"):
        new[col] = pd.to_datetime(new[col], utc=True)
    if path.is_file():
        new = pd.concat([pd.read_parquet(path), new], ignore_index=True)
    new = new.drop_duplicates(subset=["request", "asset"], keep="first").reset_index(drop=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    new.to_parquet(tmp, index=False)
    tmp.replace(path)


def _iso(value: object) -> str | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).isoformat()


def confirm_faults(settings: Settings, horizon_s: float | None = None) -> list[dict[str, Any]]:
    """Labels of the alerted requests from the maintenance records, each new one recorded once.

    Returns:
        Per new label: request, asset, mode, label, times, and its audit record's ``seq`` and ``hash``.
    """
    from pumptwin.control.outcome import FAULT_HORIZON_S

    audit = open_audit(settings)
    records = audit.records()
    rows = confirmed_fault_rows(
        read_maintenance(settings), alerted_requests(records), FAULT_HORIZON_S if horizon_s is None else horizon_s
    )
    known = _feedback_labels(records)
    fresh = [r for r in rows if (r["request"], r["asset"], r["label"]) not in known]
    confirmed = [r for r in fresh if r["label"] == CONFIRMED]
    if confirmed:
        _write_confirmed(settings.labels_dir / CONFIRMED_FAULTS_FILE, confirmed)
    out = []
    for r in fresh:
        data = {
            "label": r["label"],
            "asset": r["asset"],
            "mode": r["mode"],
            "onset_ts": _iso(r["onset_ts"]),
            "failure_ts": _iso(r["failure_ts"]),
            "work_order_ts": _iso(r["work_order_ts"]),
        }
        if r["label"] == CONFIRMED:
            what = f"fault confirmed: {r['asset']} {r['mode']} (work order closed {data['work_order_ts']})"
            why = "a maintenance finding on the alerted asset within the horizon"
        else:
            what = f"false alarm stays: {r['asset']} {r['mode'] or '(mode unknown)'}"
            why = "rejected as a false alarm; no maintenance finding contradicts it"
        record = audit.append(LABEL_KIND, r["request"], FEEDBACK_WHO, what, why=why, data=data)
        out.append({"request": r["request"], **data, "seq": record.seq, "hash": record.hash})
    return out


def _joined(items: Sequence[str], limit: int = MAX_TAG_CHARS) -> str:
    """Items joined with commas, cut to whole items under ``limit`` characters (naming how many were left out)."""
    text = ""
    for i, item in enumerate(items):
        candidate = f"{text},{item}" if text else item
        if len(candidate) > limit - 20:
            return f"{text},(+{len(items) - i} more)"
        text = candidate
    return text


def labels_digest(settings: Settings) -> str:
    """SHA-256 over the label files (`LABEL_FILES`) as they are now: name and bytes of each that exists."""
    h = hashlib.sha256()
    for name in LABEL_FILES:
        path = settings.labels_dir / name
        if path.is_file():
            h.update(name.encode("utf-8") + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def lineage(
    settings: Settings, outcomes: Sequence[Mapping[str, Any]], labels: Sequence[Mapping[str, Any]]
) -> dict[str, str]:
    """What a retraining learns from, as ``pumptwin.lineage.*`` tag values (keys without the prefix).

    ``outcome_records`` and ``label_records`` list the audit records (``seq:hash``) of the new
    outcomes and labels, ``requests`` their requests, ``audit_head`` the log's last record then
    (``seq:hash``, which pins every record before it) and ``labels_digest`` the label files.
    """
    log = AuditLog(audit_path(settings))
    records = log.records()
    head = f"{records[-1].seq}:{records[-1].hash}" if records else ""
    requests = list(dict.fromkeys([*(o["outcome"]["request"] for o in outcomes), *(x["request"] for x in labels)]))
    tags = {
        "source": "feedback",
        "audit_log": str(log.path),
        "audit_head": head,
        "outcome_records": _joined([f"{o['seq']}:{o['hash']}" for o in outcomes]),
        "label_records": _joined([f"{x['seq']}:{x['hash']}" for x in labels]),
        "requests": _joined(requests),
        "labels_digest": labels_digest(settings),
    }
    return {k: v for k, v in tags.items() if v}


def _fmt(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.4g}"


def feedback_markdown(
    outcomes: Sequence[Mapping[str, Any]],
    pending: Sequence[Pending],
    labels: Sequence[Mapping[str, Any]],
    training: Sequence[Mapping[str, Any]] | None,
    message: str,
) -> str:
    """The run as markdown: each outcome's predictions against the plant, its effects, the labels and the training."""
    out = ["# Feedback", "", message, ""]
    for o in outcomes:
        d = o["outcome"]
        out += [
            f"## `{d['request']}`: {d['verdict']}",
            "",
            f"- action: **{d['action'] or '(unknown)'}**, in effect from {d['implemented_at']}",
            f"- verification window: {d['window_start']} to {d['window_end']}; audit record {o['seq']}",
            "",
            "| tag | predicted | observed | tolerance | error | readings |",
            "|---|---:|---:|---:|---:|---:|",
            *[
                f"| {c['tag']} | {_fmt(c['predicted'])} | {_fmt(c['observed'])} | {_fmt(c['tolerance'])} | "
                f"{_fmt(c['error'])} | {c['readings']} |"
                for c in d["checks"]
            ],
            "",
            *[
                f"- {t['tag']}: {_fmt(t['before_per_h'])} {t['unit']}/h before, {_fmt(t['after_per_h'])} "
                f"{t['unit']}/h after"
                for t in d["effects"]
            ],
            "",
        ]
    if pending:
        out += ["## Waiting", "", *[f"- `{p.implementation.request}`: {p.reason}" for p in pending if not p.ready], ""]
    if labels:
        out += ["## Labels from the field", "", "| request | asset | mode | label |", "|---|---|---|---|"]
        out += [f"| {x['request']} | {x['asset']} | {x['mode']} | {x['label']} |" for x in labels]
        out.append("")
    if training:
        out += ["## Retraining", "", "| family | status | version | gate | run |", "|---|---|---|---|---|"]
        out += [
            f"| {t['family']} | {t['status']} | {t.get('version', '')} | {t.get('decision', '')} | "
            f"{t.get('run_id', '')} |"
            for t in training
        ]
        out.append("")
    return "\n".join(out) + "\n"


def summary_line(
    outcomes: Sequence[Mapping[str, Any]],
    waiting: Sequence[Pending],
    counts: Mapping[str, int],
    training: Sequence[Mapping[str, Any]] | None,
) -> str:
    """The run in one line: outcomes by verdict, what waits, the new labels, the retraining and the main effects."""
    verdicts: dict[str, int] = {}
    for o in outcomes:
        verdicts[o["outcome"]["verdict"]] = verdicts.get(o["outcome"]["verdict"], 0) + 1
    by = ", ".join(f"{n} {v}" for v, n in sorted(verdicts.items()))
    parts = [f"{len(outcomes)} new outcome{'s' * (len(outcomes) != 1)}" + (f" ({by})" if by else "")]
    if waiting:
        parts.append(f"{len(waiting)} waiting for data")
    parts.append(
        f"labels: {counts.get('outcome_rows', 0)} outcome rows, {counts.get('confirmed', 0)} confirmed faults, "
        f"{counts.get('false_alarms', 0)} false alarms"
    )
    if training is None:
        parts.append("no retraining")
    else:
        parts.append(
            "retrained: "
            + ", ".join(
                f"{t['family']} {t['status']}" + (f" v{t['version']} {t['decision']}" if t.get("version") else "")
                for t in training
            )
        )
    effects = [
        f"{t['tag']} trend {_signed(t['before_per_h'])} {t['unit']}/h before, {_signed(t['after_per_h'])} after"
        for o in outcomes
        for t in _main(o["outcome"]["effects"])
    ]
    return "; ".join(parts + effects)


def _signed(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:+.2f}"


def _main(effects: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Per asset, its first effect with both trends known (else its first)."""
    out: dict[str, Mapping[str, Any]] = {}
    for t in effects:
        known = t["before_per_h"] is not None and t["after_per_h"] is not None
        old = out.get(t["asset"])
        if old is None or (known and (old["before_per_h"] is None or old["after_per_h"] is None)):
            out[t["asset"]] = t
    return list(out.values())
