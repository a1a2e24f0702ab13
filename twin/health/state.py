"""The twin's synchronised state: health index, status and alerts per asset.

Each asset's evidence is a set of named values: the calibrated physics of `twin.estimation`
(impeller wear, efficiency loss, vibration excess, bearing thermal-resistance drift, NPSH
margin; for a line its friction multiplier, flow-meter biases and MAOP margin) and the model
outputs (``anomaly_score`` normalised so 1 is the alarm threshold, failure-mode probabilities
``p_<mode>``, time to failure ``ttf_s`` with its interval, ``model_version``).

**Severity.** Every value v is mapped by its `Rule` to a severity x >= 0 with x = 1 at the
alarm threshold:

- rising evidence (wear, loss, excess, drift, score, probability):
  x = max(0, (v - zero) / (alarm - zero));
- falling margins (NPSH, MAOP), where ``alarm < zero``: the same formula, so x grows as the
  margin shrinks;
- time to failure: x = alarm / v (1 when the predicted failure is ``alarm`` seconds away);
- deviations either way (friction multiplier, meter bias as a fraction of the line flow): the
  rule applies to |v - centre|.

A missing (NaN) value is no evidence: severity 0.

**Health index** H = 0.3 ** (x_max ** 2), with x_max the largest severity of the asset: 1 for
an asset with no adverse evidence, 0.3 at the alarm threshold, towards 0 beyond. H is in
[0, 1] and is non-increasing in every severity, hence monotone in every input (non-increasing
in wear, loss, excess, drift, score, probabilities; non-decreasing in margins and time to
failure).

**Status** from x_max: ``normal`` below 0.5, ``watch`` below 0.75, ``warning`` below 1,
``alarm`` from 1.

**Alerts** are raised for every piece of evidence at warning severity or above, each with the
rule that fired, the value and threshold, the model version, and ``since``: the first
timestamp the condition held, carried across updates. An active alert clears once its severity
falls below 90 % of the warning level (hysteresis), and a new one starts a new ``since``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.health.estimation import LineEstimate, PumpEstimate, TwinCalibration
from pumptwin.twin.times import to_utc
from pumptwin.twin.units import WEEK_S

Status = Literal["normal", "watch", "warning", "alarm"]
STATUSES: tuple[Status, ...] = ("normal", "watch", "warning", "alarm")
WATCH_SEVERITY = 0.5
WARNING_SEVERITY = 0.75
ALARM_SEVERITY = 1.0
HEALTH_AT_ALARM = 0.3
"""Health index of an asset whose worst evidence sits exactly at its alarm threshold."""
CLEAR_FRACTION = 0.9
"""An active alert clears below this fraction of the warning severity."""
PHYSICS_VERSION = "physics"
"""Model version recorded on alerts raised by calibrated physics."""
PROBABILITY_PREFIX = "p_"


class StateError(PumptwinError, ValueError):
    """Invalid scores, rules or state; the message names the value."""


@dataclass(frozen=True, slots=True)
class Rule:
    """How one piece of evidence becomes a severity (1 = alarm threshold).

    Attributes:
        source: Evidence name (``impeller_wear``, ``anomaly_score``, ``p_`` for every probability).
        kind: ``physics`` (calibrated twin) or ``model`` (model scores).
        unit: Unit of the value, for reports.
        alarm: Value at which the severity is 1.
        zero: Value at which the severity is 0 (ignored for ``inverse`` rules).
        inverse: Severity alarm / v (time to failure).
        centre: If set, the rule applies to |v - centre| (deviations either way).
    """

    source: str
    kind: Literal["physics", "model"]
    unit: str
    alarm: float
    zero: float = 0.0
    inverse: bool = False
    centre: float | None = None

    def __post_init__(self) -> None:
        """Check the thresholds."""
        if not (math.isfinite(self.alarm) and math.isfinite(self.zero)) or self.alarm == self.zero:
            raise StateError(f"rule {self.source!r}: alarm and zero must be finite and differ, got {self.alarm}")
        if self.inverse and self.alarm <= 0:
            raise StateError(f"rule {self.source!r}: an inverse rule needs alarm > 0, got {self.alarm}")

    def severity(self, value: float) -> float:
        """Severity (>= 0) of ``value``; 0 for NaN (no evidence)."""
        if math.isnan(value):
            return 0.0
        v = abs(value - self.centre) if self.centre is not None else value
        if self.inverse:
            return math.inf if v <= 0 else self.alarm / v
        return max(0.0, (v - self.zero) / (self.alarm - self.zero))


DEFAULT_RULES: tuple[Rule, ...] = (
    Rule("impeller_wear", "physics", "-", alarm=0.05),
    Rule("efficiency_loss", "physics", "-", alarm=0.08),
    Rule("vib_excess_de_mm_s", "physics", "mm/s", alarm=2.0),
    Rule("vib_excess_nde_mm_s", "physics", "mm/s", alarm=2.0),
    Rule("thermal_drift_de", "physics", "-", alarm=0.25),
    Rule("thermal_drift_nde", "physics", "-", alarm=0.25),
    Rule("npsh_margin_m", "physics", "m", alarm=1.0, zero=6.0),
    Rule("seal_leak_l_h", "physics", "L/h", alarm=2.0, zero=0.5),
    Rule("strainer_drift", "physics", "-", alarm=1.0),
    Rule("winding_drift", "physics", "-", alarm=0.5),
    Rule("maop_margin", "physics", "-", alarm=0.05, zero=0.3),
    Rule("friction_multiplier", "physics", "-", alarm=0.25, centre=1.0),
    Rule("meter_bias_fraction", "physics", "-", alarm=0.03, centre=0.0),
    Rule("anomaly_score", "model", "-", alarm=1.0),
    Rule(PROBABILITY_PREFIX, "model", "-", alarm=0.5),
    Rule("ttf_s", "model", "s", alarm=WEEK_S, inverse=True),
)
"""Default thresholds: wear 5 % of diameter, 8 % efficiency, 2 mm/s over baseline, +25 % thermal
resistance, 1 m NPSH margin, seal leak 2 L/h (0 at the 0.5 L/h a healthy seal stays below: the
seal datasheets' normal and alarm), strainer loss coefficient twice its clean reference (about
0.3 bar at rated flow against a clean 0.10-0.20 bar, ahead of the 0.5 bar DCS alarm), +50 % winding
rise at rated current (lost motor cooling, ahead of the 130 degC winding alarm), 5 % below
MAOP, friction 25 % off, 3 % meter bias, score 1, probability 0.5, failure within 7 days."""


def _rule_for(source: str, rules: Sequence[Rule]) -> Rule | None:
    for r in rules:
        if r.source == source:
            return r
    if source.startswith(PROBABILITY_PREFIX):
        return next((r for r in rules if r.source == PROBABILITY_PREFIX), None)
    return None


def severities(evidence: Mapping[str, float], rules: Sequence[Rule] = DEFAULT_RULES) -> dict[str, float]:
    """Severity of every piece of evidence that has a rule (1 = alarm threshold)."""
    out: dict[str, float] = {}
    for source, value in evidence.items():
        rule = _rule_for(source, rules)
        if rule is not None:
            out[source] = rule.severity(float(value))
    return out


def health_index(severity: Mapping[str, float]) -> float:
    """Health index in [0, 1]: 0.3 ** (x_max ** 2) of the largest severity (1 with none)."""
    x = max((v for v in severity.values() if not math.isnan(v)), default=0.0)
    if math.isinf(x):
        return 0.0
    return float(HEALTH_AT_ALARM ** (max(x, 0.0) ** 2))


def status_of(severity: float) -> Status:
    """Status for a worst severity: normal < 0.5 <= watch < 0.75 <= warning < 1 <= alarm."""
    if severity >= ALARM_SEVERITY:
        return "alarm"
    if severity >= WARNING_SEVERITY:
        return "warning"
    if severity >= WATCH_SEVERITY:
        return "watch"
    return "normal"


@dataclass(frozen=True, slots=True)
class AssetHealth:
    """Health of one asset at one time.

    Attributes:
        asset: ``STATION.ASSET`` for a pump, ``LINEnn`` for a line.
        kind: ``pump`` or ``line``.
        health_index: In [0, 1] (1 healthy).
        status: ``normal``, ``watch``, ``warning`` or ``alarm``.
        severity: Largest severity.
        driver: Evidence with the largest severity ("" with none).
        evidence: Values by source, in their rule's units.
        severities: Severity by source.
        model_version: Version of the model scores used ("" with none).
    """

    asset: str
    kind: Literal["pump", "line"]
    health_index: float
    status: Status
    severity: float
    driver: str
    evidence: Mapping[str, float]
    severities: Mapping[str, float]
    model_version: str = ""


@dataclass(frozen=True, slots=True)
class Alert:
    """An active alert with its evidence.

    Attributes:
        asset: Asset it concerns.
        source: Evidence that fired (``impeller_wear``, ``anomaly_score``, ``p_bearing_wear``...).
        kind: ``physics`` or ``model``.
        level: ``warning`` or ``alarm``.
        value: The evidence value, in ``unit``.
        threshold: The alarm threshold of the rule, in ``unit``.
        unit: Unit of value and threshold.
        severity: Severity (1 = alarm threshold).
        since: First timestamp the condition held (UTC), kept across updates.
        last_seen: Latest timestamp it held.
        model_version: Model version for model evidence, `PHYSICS_VERSION` for the calibrated twin.
        detail: Further evidence (e.g. the time-to-failure interval).
    """

    asset: str
    source: str
    kind: Literal["physics", "model"]
    level: Literal["warning", "alarm"]
    value: float
    threshold: float
    unit: str
    severity: float
    since: pd.Timestamp
    last_seen: pd.Timestamp
    model_version: str
    detail: str = ""

    @property
    def key(self) -> tuple[str, str]:
        """(asset, source): identifies the condition across updates."""
        return self.asset, self.source

    def message(self) -> str:
        """One line for reports."""
        return (
            f"{self.level.upper()} {self.asset} {self.source} = {_fmt(self.value)} {self.unit} "
            f"(alarm at {_fmt(self.threshold)}) since {self.since.isoformat()} [{self.model_version}]"
        )


def _fmt(x: float) -> str:
    return "nan" if not math.isfinite(x) else f"{x:.4g}"


# --------------------------------------------------------------------------------------------
# Evidence
# --------------------------------------------------------------------------------------------


def pump_evidence(estimate: PumpEstimate) -> dict[str, float]:
    """Calibrated physics of a pump as evidence values."""
    return {
        "impeller_wear": estimate.impeller_wear.value,
        "efficiency_loss": estimate.efficiency_loss.value,
        "vib_excess_de_mm_s": estimate.vib_excess_de_mm_s,
        "vib_excess_nde_mm_s": estimate.vib_excess_nde_mm_s,
        "thermal_drift_de": estimate.thermal_drift_de,
        "thermal_drift_nde": estimate.thermal_drift_nde,
        "npsh_margin_m": estimate.npsh_margin_m,
        "seal_leak_l_h": estimate.seal_leak_l_h,
        "strainer_drift": estimate.strainer_drift,
        "winding_drift": estimate.winding_drift,
    }


def line_evidence(estimate: LineEstimate) -> dict[str, float]:
    """Calibrated physics of a line as evidence values (largest meter bias relative to the line flow)."""
    flow = estimate.flow_m3s
    bias = math.nan
    if math.isfinite(flow) and flow > 0 and estimate.meter_bias_m3s:
        bias = max(abs(b.value) for b in estimate.meter_bias_m3s.values()) / flow
    return {
        "friction_multiplier": estimate.friction_multiplier.value,
        "meter_bias_fraction": bias,
        "maop_margin": estimate.maop_margin,
    }


def _scores_by_asset(scores: pd.DataFrame | None) -> dict[str, dict[str, Any]]:
    """Model scores as a dict per asset; the asset is the ``asset`` column or the index."""
    if scores is None or scores.empty:
        return {}
    df = scores.set_index("asset") if "asset" in scores.columns else scores
    if df.index.has_duplicates:
        dupes = sorted(set(df.index[df.index.duplicated()].astype(str)))
        raise StateError(f"scores list assets {dupes} more than once")
    out: dict[str, dict[str, Any]] = {}
    for asset, row in df.iterrows():
        out[str(asset)] = {str(k): v for k, v in row.items()}
    return out


def _model_evidence(row: Mapping[str, Any]) -> tuple[dict[str, float], str, str]:
    """(numeric model evidence, model version, time-to-failure interval text) from a scores row."""
    ev: dict[str, float] = {}
    for key in ("anomaly_score", "ttf_s"):
        if key in row:
            ev[key] = _num(row[key], key)
    for key, value in row.items():
        if key.startswith(PROBABILITY_PREFIX):
            p = _num(value, key)
            if not (math.isnan(p) or 0.0 <= p <= 1.0):
                raise StateError(f"score {key} must be a probability in [0, 1], got {p}")
            ev[key] = p
    version = row.get("model_version")
    version_s = "" if version is None or (isinstance(version, float) and math.isnan(version)) else str(version)
    low, high = _num(row.get("ttf_low_s", math.nan), "ttf_low_s"), _num(row.get("ttf_high_s", math.nan), "ttf_high_s")
    interval = f"ttf interval [{_fmt(low)}, {_fmt(high)}] s" if math.isfinite(low) or math.isfinite(high) else ""
    return ev, version_s, interval


def _num(value: Any, name: str) -> float:  # noqa: ANN401 - a DataFrame cell
    try:
        return float(value) if value is not None else math.nan
    except (TypeError, ValueError):
        raise StateError(f"score {name} must be a number, got {value!r}") from None


# --------------------------------------------------------------------------------------------
# The state
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TwinState:
    """The twin's state at ``ts``: health per asset, active alerts and the calibration.

    Attributes:
        ts: Time of the state (UTC).
        health: One row per asset.
        alerts: Active alerts.
        calibration: The calibration the physics evidence came from.
    """

    ts: pd.Timestamp
    health: tuple[AssetHealth, ...]
    alerts: tuple[Alert, ...] = ()
    calibration: TwinCalibration | None = field(default=None, repr=False)

    def asset(self, name: str) -> AssetHealth:
        """Health row of ``name``.

        Raises:
            StateError: No such asset.
        """
        for h in self.health:
            if h.asset == name:
                return h
        raise StateError(f"asset {name!r} is not in the twin state")

    def to_frame(self) -> pd.DataFrame:
        """Health table, one row per asset.

        Columns: ``asset, kind, health_index, status, severity, driver, alerts, model_version`` and
        one column per evidence value (NaN where an asset has none). Example row:
        ``PS02.P2, pump, 0.41, warning, 0.84, impeller_wear, 1, champion-3, ...``.
        """
        counts: dict[str, int] = {}
        for a in self.alerts:
            counts[a.asset] = counts.get(a.asset, 0) + 1
        rows = [
            {
                "asset": h.asset,
                "kind": h.kind,
                "health_index": h.health_index,
                "status": h.status,
                "severity": h.severity,
                "driver": h.driver,
                "alerts": counts.get(h.asset, 0),
                "model_version": h.model_version,
                **h.evidence,
            }
            for h in self.health
        ]
        head = ["asset", "kind", "health_index", "status", "severity", "driver", "alerts", "model_version"]
        return pd.DataFrame(rows, columns=head + sorted({k for r in rows for k in r} - set(head)))

    def to_markdown(self) -> str:
        """The health table and the active alerts as Markdown, for reports."""
        lines = [
            f"Twin state at {self.ts.isoformat()}",
            "",
            "| asset | health | status | driver | severity | alerts |",
            "|---|---:|---|---|---:|---:|",
        ]
        frame = self.to_frame()
        for r in frame.itertuples(index=False):
            lines.append(
                f"| {r.asset} | {r.health_index:.2f} | {r.status} | {r.driver or '-'} | {r.severity:.2f} | {r.alerts} |"
            )
        if self.alerts:
            lines += [
                "",
                "| level | asset | evidence | value | alarm at | since | model |",
                "|---|---|---|---:|---:|---|---|",
            ]
            for a in self.alerts:
                lines.append(
                    f"| {a.level} | {a.asset} | {a.source} | {_fmt(a.value)} {a.unit} | {_fmt(a.threshold)} | "
                    f"{a.since.isoformat()} | {a.model_version} |"
                )
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (NaN and inf become None, timestamps ISO 8601)."""
        data: dict[str, Any] = {
            "ts": self.ts.isoformat(),
            "health": [
                {
                    "asset": h.asset,
                    "kind": h.kind,
                    "health_index": h.health_index,
                    "status": h.status,
                    "severity": h.severity,
                    "driver": h.driver,
                    "model_version": h.model_version,
                    "evidence": dict(h.evidence),
                    "severities": dict(h.severities),
                }
                for h in self.health
            ],
            "alerts": [
                {
                    "asset": a.asset,
                    "source": a.source,
                    "kind": a.kind,
                    "level": a.level,
                    "value": a.value,
                    "threshold": a.threshold,
                    "unit": a.unit,
                    "severity": a.severity,
                    "since": a.since.isoformat(),
                    "last_seen": a.last_seen.isoformat(),
                    "model_version": a.model_version,
                    "detail": a.detail,
                }
                for a in self.alerts
            ],
            "calibration": _calibration_dict(self.calibration),
        }
        cleaned: dict[str, Any] = _clean(data)
        return cleaned

    def to_json(self) -> str:
        """`to_dict` as JSON text."""
        return json.dumps(self.to_dict(), allow_nan=False)


def _calibration_dict(cal: TwinCalibration | None) -> dict[str, Any] | None:
    if cal is None:
        return None
    return {
        "ts": cal.ts.isoformat() if cal.ts is not None else None,
        "n_updates": cal.n_updates,
        "pumps": {
            name: {
                "pump_id": p.pump_id,
                "line": p.line,
                "impeller_wear": p.impeller_wear.value,
                "impeller_wear_sd": p.impeller_wear.sd,
                "efficiency_loss": p.efficiency_loss.value,
                "efficiency_loss_sd": p.efficiency_loss.sd,
                "vib_de_mm_s": p.vib_de_mm_s,
                "vib_excess_de_mm_s": p.vib_excess_de_mm_s,
                "vib_nde_mm_s": p.vib_nde_mm_s,
                "vib_excess_nde_mm_s": p.vib_excess_nde_mm_s,
                "thermal_de_k": p.thermal_de.value,
                "thermal_de_sd_k": p.thermal_de.sd,
                "thermal_ref_de_k": p.thermal_ref_de_k,
                "thermal_nde_k": p.thermal_nde.value,
                "thermal_nde_sd_k": p.thermal_nde.sd,
                "thermal_ref_nde_k": p.thermal_ref_nde_k,
                "winding_k": p.winding.value,
                "winding_ref_k": p.winding_ref_k,
                "npsh_margin_m": p.npsh_margin_m,
                "running_fraction": p.running_fraction,
                "n_samples": p.n_samples,
            }
            for name, p in cal.pumps.items()
        },
        "lines": {
            str(n): {
                "friction_multiplier": ln.friction_multiplier.value,
                "friction_multiplier_sd": ln.friction_multiplier.sd,
                "flow_m3s": ln.flow_m3s,
                "maop_margin": ln.maop_margin,
                "maop_element": ln.maop_element,
                "meter_bias_m3s": {t: {"value": b.value, "sd": b.sd} for t, b in ln.meter_bias_m3s.items()},
            }
            for n, ln in cal.lines.items()
        },
    }


def _clean(x: Any) -> Any:  # noqa: ANN401 - recursive over plain data
    """Replace non-finite floats by None and numpy scalars by Python ones, recursively."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if hasattr(x, "item") and not isinstance(x, str):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def assess(
    asset: str,
    kind: Literal["pump", "line"],
    evidence: Mapping[str, float],
    rules: Sequence[Rule] = DEFAULT_RULES,
    model_version: str = "",
) -> AssetHealth:
    """Health, status and driver of one asset from its evidence values.

    Args:
        asset: Asset name.
        kind: ``pump`` or ``line``.
        evidence: Values by source (NaN: no evidence).
        rules: Severity rules.
        model_version: Version of the model scores in the evidence.
    """
    sev = severities(evidence, rules)
    driver, worst = "", 0.0
    for source, x in sev.items():
        if x > worst:
            driver, worst = source, x
    return AssetHealth(
        asset=asset,
        kind=kind,
        health_index=health_index(sev),
        status=status_of(worst),
        severity=worst,
        driver=driver,
        evidence=dict(evidence),
        severities=sev,
        model_version=model_version,
    )


def update_state(
    prev: TwinState | None,
    calibration: TwinCalibration,
    scores: pd.DataFrame | None,
    now: pd.Timestamp,
    rules: Sequence[Rule] = DEFAULT_RULES,
) -> TwinState:
    """Fuse the calibration and the model scores into the new twin state.

    Args:
        prev: The previous state (None at start): alerts still active keep their ``since``.
        calibration: The latest calibration.
        scores: Model scores, one row per asset (``asset`` column or index) with any of
            ``anomaly_score, p_<mode>, ttf_s, ttf_low_s, ttf_high_s, model_version``; None or
            empty for none. Assets not in the calibration are assessed on their scores alone.
        now: Time of the new state (UTC).
        rules: Severity rules.

    Returns:
        Health rows (pumps, then lines, then other scored assets) and active alerts.

    Raises:
        StateError: Duplicate or malformed scores, or time going backwards.
    """
    ts = to_utc(now, what="state time")
    if prev is not None and ts < prev.ts:
        raise StateError(f"state time {ts} is before the previous state's {prev.ts}")
    by_asset = _scores_by_asset(scores)
    entries: list[tuple[str, Literal["pump", "line"], dict[str, float], str, str]] = []
    for name, pe in calibration.pumps.items():
        model, version, interval = _model_evidence(by_asset.pop(name, {}))
        entries.append((name, "pump", {**pump_evidence(pe), **model}, version, interval))
    for n, le in calibration.lines.items():
        name = f"LINE{n:02d}"
        model, version, interval = _model_evidence(by_asset.pop(name, {}))
        entries.append((name, "line", {**line_evidence(le), **model}, version, interval))
    for name, row in by_asset.items():
        model, version, interval = _model_evidence(row)
        entries.append((name, "pump" if "." in name else "line", model, version, interval))
    active = {a.key: a for a in prev.alerts} if prev is not None else {}
    health: list[AssetHealth] = []
    alerts: list[Alert] = []
    for name, kind, evidence, version, interval in entries:
        h = assess(name, kind, evidence, rules, version)
        health.append(h)
        for source, x in h.severities.items():
            old = active.get((name, source))
            holds = x >= WARNING_SEVERITY or (old is not None and x >= CLEAR_FRACTION * WARNING_SEVERITY)
            if not holds:
                continue
            rule = _rule_for(source, rules)
            if rule is None:  # severities only lists sources with rules
                continue
            alerts.append(
                Alert(
                    asset=name,
                    source=source,
                    kind=rule.kind,
                    level="alarm" if x >= ALARM_SEVERITY else "warning",
                    value=float(evidence[source]),
                    threshold=rule.alarm if rule.centre is None else rule.centre + rule.alarm,
                    unit=rule.unit,
                    severity=x,
                    since=old.since if old is not None else ts,
                    last_seen=ts,
                    model_version=(version or "unknown") if rule.kind == "model" else PHYSICS_VERSION,
                    detail=interval if source == "ttf_s" else "",
                )
            )
    return TwinState(ts, tuple(health), tuple(alerts), calibration)
