"""Condition-based round planner: which pumps need a physical visit this week, and which the twin covers.

The planner sees what the twin knows: its `TwinState` (health, severity and the calibration
behind them), the asset registry, the route history (last visit per asset) and active sensor
flags. It never sees the plant.

**Conditions** (`conditions_from_state`), one row per pump, in the planner input frame of the
inspection contract:

- ``health_index`` and ``severity`` (1 = alarm): the state's, raised by three pieces of evidence
  the calibration holds but the state's default rules do not grade (`PlannerSettings`): the seal
  leak of the last window over ``seal_alarm_l_h``; the strainer loss coefficient's rise over its
  clean reference (`PumpEstimate.strainer_drift`) over ``strainer_alarm_drift``; and, given a
  ``reference`` state (e.g. four weeks earlier), the winding rise's relative rise since then over
  ``winding_alarm_drift`` (lost motor cooling). ``driver`` names the worst evidence.
- ``uncertainty`` in [0, 1]: how little the twin knows about the pump, 1 - prod(1 - u_i) of
  - *samples*: 1 - n / ``samples_full`` of the calibration's running samples n (few samples:
    the baselines are not learnt yet);
  - *stale data*: the calibration's age at ``now`` beyond ``stale_hours``, reaching 1 at twice
    that (1 when the pump is missing from the calibration: no online data);
  - *idle*: days since the pump last ran over ``idle_days`` (1 for a pump never seen running):
    a standby's vibration and temperatures say nothing;
  - *sensor flag*: ``flag_uncertainty`` while a sensor of the pump is flagged;
  - *route age*: days since the last route visit over ``route_age_days`` (1 never visited).
  ``uncertainty_driver`` names the largest term.
- ``consequence`` (1 typical): x ``no_spare_factor`` for a running pump whose station has no
  stopped pump to take over (from the calibration's running fractions), x ``upstream_factor`` for
  the first station of a line (its outage stops the whole line).
- ``last_visit`` (NaT never) and ``sensor_flag`` from the route history and the flags. A flag
  that names its tag (``PS01.P1.VIB_DE_RMS``) voids the evidence resting on that measure
  (`EVIDENCE_TAGS`): a disputed sensor's alarm is no alarm, and the flag itself asks for a visit.

**What a visit has already seen**: given ``seen``, the severity of each piece of evidence when a
route last visited the pump (`seen_after_round` keeps it from round to round), a condition a route
has looked at is news again only as it worsens, and the reassurance of a visit fades. Per piece of
evidence, the *news* (`news_severity`) is min(severity, ``severity_cap``) x clip((severity / s - 1)
/ (``escalation`` - 1), 0, 1) with s = seen x 0.5 ** (d / ``seen_half_life_days``): nothing while
the severity stays where the route saw it, the whole (capped) severity once it has grown by the
factor ``escalation`` over what the route saw, faded; a pump far in alarm is news by its growth,
not its size. Evidence seen at 0 (healthy) or not seen counts whole, so a new failure mode on a
pump visited for another is news at once. Column ``news`` is the largest; ``seen_severity`` the
driver's seen severity, for reasons.

**Plan** (`plan_round`): with ``news`` the severity where the frame has no such column (or a
NaN), score = consequence x (``severity_weight`` x min(news, ``severity_cap``) x min(d / R, 1) +
``uncertainty_weight`` x uncertainty) + ``overdue_weight`` x min(d / D, 1) with d the days since
the last visit, R ``alarm_revisit_days`` (a pump a route saw d < R days ago adds less news) and D
``max_interval_days``. Must visit, ranked first and whatever the budget: alarms (news >=
``alarm_severity``, unless visited less than ``alarm_revisit_days`` ago), sensor flags, overdue
assets (d >= D). Then the others by score, from ``min_score`` on, while ``budget_h`` allows, each
costing ``visit_hours`` plus ``travel_hours`` when its station is not yet on the round; finally
assets at stations already on the round whose score reaches ``pull_in_score`` are pulled in for
their visit hours alone. Every asset not visited is *covered* by the twin, with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from pumptwin.twin.assets import Registry
from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.health.calibration import PumpEstimate
from pumptwin.twin.health.state import TwinState, health_index
from pumptwin.twin.safety import shorten
from pumptwin.twin.times import to_utc
from pumptwin.twin.units import DAY_S, HOUR_S

CONDITION_COLUMNS: tuple[str, ...] = (
    "asset",
    "station",
    "health_index",
    "severity",
    "uncertainty",
    "last_visit",
    "consequence",
    "sensor_flag",
)
"""Columns the planner needs (``news`` is used when present, ``seen_severity``, ``driver`` and
``uncertainty_driver`` for reasons)."""
VISIT_COLUMNS: tuple[str, ...] = ("rank", "asset", "station", "score", "reason", "hours")
COVERED_COLUMNS: tuple[str, ...] = ("asset", "station", "score", "reason")


class PlannerError(PumptwinError, ValueError):
    """Invalid planner settings or conditions; the message names the value."""


@dataclass(frozen=True, slots=True)
class PlannerSettings:
    """Budget, costs, weights and thresholds of the round planner (see the module docstring).

    Attributes:
        budget_h: Hours a round may take beyond its must-visits, h.
        max_interval_days: Longest time between two visits of an asset, days.
        visit_hours: Hours on site per asset visited, h.
        travel_hours: Hours to reach a station (counted once per station on the round), h.
        severity_weight: Weight of the severity in the score.
        uncertainty_weight: Weight of the uncertainty in the score.
        overdue_weight: Weight of the share of the interval elapsed in the score.
        severity_cap: Severity counted in the score at most.
        min_score: Score from which an asset is worth a trip.
        pull_in_score: Score from which an asset at a station already on the round is added.
        alarm_severity: Severity from which an asset must be visited.
        alarm_revisit_days: An alarm asset visited less than this ago is not a must-visit again, and
            its severity counts in the score in proportion to the days since that visit, days.
        escalation: Factor by which a severity a route has seen must grow to count whole again (> 1).
        seen_half_life_days: Half-life of what a visit has seen, days.
        samples_full: Running samples after which the calibration counts as learnt.
        stale_hours: Age of the calibration from which online data count as stale, h.
        idle_days: Days without running at which an idle pump's uncertainty is 1, days.
        route_age_days: Age of the last route visit at which its uncertainty term is 1, days.
        flag_uncertainty: Uncertainty term of a pump with a flagged sensor.
        no_spare_factor: Consequence factor of a station without a stopped pump.
        upstream_factor: Consequence factor of a line's first station.
        seal_alarm_l_h: Seal leak at severity 1, L/h.
        strainer_alarm_drift: Strainer loss coefficient's rise over its reference at severity 1 (-).
        winding_alarm_drift: Winding rise's relative rise over the reference state at severity 1 (-).
    """

    budget_h: float = 16.0
    max_interval_days: float = 182.0
    visit_hours: float = 1.0
    travel_hours: float = 2.0
    severity_weight: float = 1.0
    uncertainty_weight: float = 0.3
    overdue_weight: float = 0.3
    severity_cap: float = 2.0
    min_score: float = 0.8
    pull_in_score: float = 0.5
    alarm_severity: float = 1.0
    alarm_revisit_days: float = 7.0
    escalation: float = 2.0
    seen_half_life_days: float = 180.0
    samples_full: float = 1000.0
    stale_hours: float = 24.0
    idle_days: float = 60.0
    route_age_days: float = 365.0
    flag_uncertainty: float = 1.0
    no_spare_factor: float = 1.5
    upstream_factor: float = 1.25
    seal_alarm_l_h: float = 5.0
    strainer_alarm_drift: float = 1.0
    winding_alarm_drift: float = 0.5

    def __post_init__(self) -> None:
        """Check every setting is a finite number of the right sign."""
        positive = {
            "max_interval_days",
            "alarm_severity",
            "samples_full",
            "stale_hours",
            "idle_days",
            "route_age_days",
            "seal_alarm_l_h",
            "strainer_alarm_drift",
            "winding_alarm_drift",
            "seen_half_life_days",
        }
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise PlannerError(f"planner setting {f.name} must be a finite number, got {value!r}")
            if value < 0 or (f.name in positive and value == 0):
                raise PlannerError(
                    f"planner setting {f.name} must be {'> 0' if f.name in positive else '>= 0'}, got {value}"
                )
        if self.escalation <= 1:
            raise PlannerError(f"planner setting escalation must be > 1, got {self.escalation}")
        if self.flag_uncertainty > 1:
            raise PlannerError(f"planner setting flag_uncertainty must be in [0, 1], got {self.flag_uncertainty}")
        if self.no_spare_factor < 1 or self.upstream_factor < 1:
            raise PlannerError("consequence factors no_spare_factor and upstream_factor must be >= 1")

    def to_dict(self) -> dict[str, float]:
        """The settings as plain data."""
        return {f.name: float(getattr(self, f.name)) for f in fields(self)}


# --------------------------------------------------------------------------------------------
# Conditions from the twin state
# --------------------------------------------------------------------------------------------


def _days(a: pd.Timestamp, b: pd.Timestamp | None) -> float:
    """Days from ``b`` to ``a`` (inf when ``b`` is None or NaT)."""
    if b is None or pd.isna(b):
        return math.inf
    return float((a - b).total_seconds()) / DAY_S


EVIDENCE_TAGS: dict[str, str] = {
    "vib_excess_de_mm_s": "VIB_DE_RMS",
    "vib_excess_nde_mm_s": "VIB_NDE_RMS",
    "thermal_drift_de": "BRG_DE_TEMP",
    "thermal_drift_nde": "BRG_NDE_TEMP",
    "winding_drift": "MOTOR_WINDING_TEMP",
    "seal_leak_l_h": "SEAL_LEAK",
    "strainer_drift": "STRAINER_DP",
}
"""The online measure each piece of evidence rests on: a flag on that tag voids the evidence."""


def disputed_sources(flags: Sequence[object], asset: str) -> set[str]:
    """Evidence of ``asset`` resting on a flagged tag (flags with a ``tag`` such as ``PS01.P1.VIB_DE_RMS``)."""
    measures = {
        str(getattr(f, "tag", "")).rsplit(".", 1)[-1]
        for f in flags
        if str(getattr(f, "asset", "")) == asset and getattr(f, "tag", None)
    }
    return {source for source, measure in EVIDENCE_TAGS.items() if measure in measures}


def extra_severities(
    estimate: PumpEstimate | None, reference: PumpEstimate | None, settings: PlannerSettings
) -> dict[str, float]:
    """Severities (1 = alarm) of calibrated evidence the state's default rules leave out.

    Args:
        estimate: The pump's calibration now (None: none).
        reference: Its calibration in an earlier state (None: no winding drift).
        settings: Alarm levels.

    Returns:
        ``seal_leak_l_h``, ``strainer_drift`` and ``winding_drift`` severities where known.
    """
    out: dict[str, float] = {}
    if estimate is None:
        return out
    if math.isfinite(estimate.seal_leak_l_h):
        out["seal_leak_l_h"] = max(0.0, estimate.seal_leak_l_h / settings.seal_alarm_l_h)
    drift = estimate.strainer_drift
    if math.isfinite(drift):
        out["strainer_drift"] = max(0.0, drift / settings.strainer_alarm_drift)
    if reference is not None:
        now, ref = estimate.winding.value, reference.winding.value
        if math.isfinite(now) and math.isfinite(ref) and ref > 0:
            out["winding_drift"] = max(0.0, (now / ref - 1.0) / settings.winding_alarm_drift)
    return out


def uncertainty_terms(  # noqa: PLR0913 - the pieces of what the twin does not know
    estimate: PumpEstimate | None,
    calibration_ts: pd.Timestamp | None,
    last_visit: pd.Timestamp | None,
    flagged: bool,
    now: pd.Timestamp,
    settings: PlannerSettings,
) -> dict[str, float]:
    """The uncertainty terms of one pump, each in [0, 1] (see the module docstring).

    Returns:
        ``samples``, ``stale``, ``idle``, ``sensor_flag`` and ``route_age``.
    """
    if estimate is None or calibration_ts is None:
        samples = stale = idle = 1.0
    else:
        samples = max(0.0, 1.0 - estimate.n_samples / settings.samples_full)
        age_h = _days(now, calibration_ts) * DAY_S / HOUR_S
        stale = float(np.clip(age_h / settings.stale_hours - 1.0, 0.0, 1.0))
        idle = min(1.0, max(0.0, _days(now, estimate.last_running_ts)) / settings.idle_days)
    route = min(1.0, max(0.0, _days(now, last_visit)) / settings.route_age_days)
    return {
        "samples": samples,
        "stale": stale,
        "idle": idle,
        "sensor_flag": settings.flag_uncertainty if flagged else 0.0,
        "route_age": route,
    }


def combine_uncertainty(terms: Mapping[str, float]) -> float:
    """1 - prod(1 - u_i) of terms in [0, 1]: any one term of 1 makes the whole 1."""
    keep = 1.0
    for u in terms.values():
        keep *= 1.0 - float(np.clip(u, 0.0, 1.0))
    return 1.0 - keep


def news_severity(  # noqa: PLR0913 - the severity, what was seen, and how to weigh them
    severity: np.ndarray,
    seen: np.ndarray,
    days: np.ndarray,
    escalation: float,
    half_life_days: float,
    cap: float = math.inf,
) -> np.ndarray:
    """The part of each severity a route has not seen yet (see the module docstring).

    Args:
        severity: Severities now (1 = alarm).
        seen: Severities when a route last visited (0 or NaN: nothing seen).
        days: Days since that visit (inf: never visited).
        escalation: Growth factor at which the whole severity counts again (> 1).
        half_life_days: Half-life of what a visit has seen, days.
        cap: Severity counted at most (the score's ``severity_cap``): a pump far in alarm is news
            by its relative growth, not by its size.

    Returns:
        min(severity, cap) x clip((severity / s - 1) / (escalation - 1), 0, 1) with s the seen
        severity faded by its half-life; min(severity, cap) where nothing was seen.
    """
    sev = np.asarray(severity, dtype=np.float64)
    base = np.nan_to_num(np.asarray(seen, dtype=np.float64), nan=0.0)
    base = base * np.exp2(-np.asarray(days, dtype=np.float64) / half_life_days)
    with np.errstate(all="ignore"):
        growth = np.where(base > 0, (sev / np.where(base > 0, base, 1.0) - 1.0) / (escalation - 1.0), 1.0)
    out: np.ndarray = np.minimum(sev, cap) * np.clip(growth, 0.0, 1.0)
    return out


def seen_after_round(
    seen: Mapping[str, Mapping[str, float]], conditions: pd.DataFrame, visited: Sequence[str]
) -> dict[str, dict[str, float]]:
    """What routes have seen, per pump and piece of evidence, after a round that visited ``visited``.

    Args:
        seen: What was seen before the round (per asset, severity per piece of evidence).
        conditions: The round's planner input (`conditions_from_state`: its ``severities`` column).
        visited: Assets the round visited.

    Returns:
        ``seen`` with each visited asset's finite severities now in place of its earlier ones (an
        infinite one, e.g. a time to failure already past, is left unseen: news at every round).
    """
    out = {str(a): dict(v) for a, v in seen.items()}
    now = dict(zip(conditions["asset"].astype(str), conditions["severities"], strict=True))
    for asset in visited:
        if asset in now:
            out[asset] = {str(k): float(v) for k, v in now[asset].items() if math.isfinite(v)}
    return out


@dataclass(frozen=True)
class SeenMemory:
    """What routes have seen, kept between rounds by a planner that does not see the visits happen.

    A round planned at ``ts`` records its assets' severities as *planned*; they become *seen* once
    the route store shows a visit of the asset at or after ``ts`` (`confirmed`). An asset planned
    again before its visit keeps the newer plan.

    Attributes:
        seen: Per asset, the severity of each piece of evidence when a route last visited it.
        planned: Per asset, the plan's time and its severities, awaiting the visit.
    """

    seen: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    planned: Mapping[str, tuple[pd.Timestamp, Mapping[str, float]]] = field(default_factory=dict)

    def confirmed(self, last_visits: Mapping[str, pd.Timestamp]) -> SeenMemory:
        """The memory with every planned asset that a route has visited since moved to ``seen``."""
        seen = {a: dict(v) for a, v in self.seen.items()}
        planned: dict[str, tuple[pd.Timestamp, Mapping[str, float]]] = {}
        for asset, (ts, severities) in self.planned.items():
            visit = last_visits.get(asset)
            if visit is not None and not pd.isna(visit) and to_utc(visit, what=f"visit of {asset}") >= ts:
                seen[asset] = dict(severities)
            else:
                planned[asset] = (ts, severities)
        return SeenMemory(seen, planned)

    def after_plan(self, conditions: pd.DataFrame, plan: RoundPlan) -> SeenMemory:
        """The memory with ``plan``'s assets and their severities (from ``conditions``) as planned."""
        planned = dict(self.planned)
        for asset, severities in seen_after_round({}, conditions, plan.assets).items():
            planned[asset] = (plan.ts, severities)
        return SeenMemory(self.seen, planned)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (timestamps ISO 8601)."""
        return {
            "seen": {a: dict(v) for a, v in sorted(self.seen.items())},
            "planned": {
                a: {"ts": ts.isoformat(), "severities": dict(v)} for a, (ts, v) in sorted(self.planned.items())
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SeenMemory:
        """The memory from `to_dict`'s form.

        Raises:
            PlannerError: A malformed entry (the message names it).
        """
        try:
            seen = {str(a): {str(k): float(x) for k, x in v.items()} for a, v in data.get("seen", {}).items()}
            planned = {
                str(a): (
                    to_utc(pd.Timestamp(v["ts"]), what=f"planned visit of {a}"),
                    {str(k): float(x) for k, x in v["severities"].items()},
                )
                for a, v in data.get("planned", {}).items()
            }
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise PlannerError(f"malformed seen-severity memory: {shorten(str(exc))}") from exc
        for name, values in [*seen.items(), *((a, v) for a, (_, v) in planned.items())]:
            if any(not math.isfinite(x) or x < 0 for x in values.values()):
                raise PlannerError(f"seen-severity memory: severities of {name} must be finite and >= 0")
        return cls(seen, planned)


def _consequences(registry: Registry, state: TwinState, settings: PlannerSettings) -> dict[str, float]:
    """Consequence factor per pump: no stopped pump at its station, first station of its line."""
    cal = state.calibration
    first: dict[int, str] = {}
    for station in registry.stations:
        first.setdefault(station.line, station.name)
    out: dict[str, float] = {}
    for pump in registry.pumps:
        others = [p for p in registry.pumps if p.station == pump.station and p.name != pump.name]
        if cal is None:
            spare = bool(others)
        else:
            spare = any(o.name in cal.pumps and cal.pumps[o.name].running_fraction < 0.5 for o in others)  # noqa: PLR2004
        running = cal is not None and pump.name in cal.pumps and cal.pumps[pump.name].running_fraction >= 0.5  # noqa: PLR2004
        factor = settings.no_spare_factor if running and not spare else 1.0
        if first.get(pump.line) == pump.station:
            factor *= settings.upstream_factor
        out[pump.name] = factor
    return out


def conditions_from_state(  # noqa: PLR0913 - the twin's view in one frame
    state: TwinState,
    registry: Registry,
    last_visits: Mapping[str, pd.Timestamp],
    flags: Sequence[object],
    now: pd.Timestamp,
    *,
    reference: TwinState | None = None,
    settings: PlannerSettings | None = None,
    seen: Mapping[str, Mapping[str, float]] | None = None,
) -> pd.DataFrame:
    """The planner input frame from the twin's state (see the module docstring for every term).

    Args:
        state: The twin's current state (its calibration gives samples, data age and running).
        registry: The fleet: pumps and stations.
        last_visits: Latest route visit per asset (`RouteStore.last_visits`).
        flags: Active sensor flags, anything with an ``asset`` attribute.
        now: Time of the plan (UTC).
        reference: An earlier state, for the winding drift (None: left out).
        settings: Thresholds and factors (default `PlannerSettings`).
        seen: Per asset, the severity of each piece of evidence when a route last visited it
            (`seen_after_round`; None: nothing seen).

    Returns:
        One row per registry pump: the contract's columns plus ``news``, ``seen_severity``,
        ``severities`` (per piece of evidence), ``driver`` and ``uncertainty_driver``.
    """
    st = settings or PlannerSettings()
    ts = to_utc(now, what="plan time")
    cal = state.calibration
    ref_cal = reference.calibration if reference is not None else None
    health = {h.asset: h for h in state.health}
    flagged = {str(getattr(f, "asset", "")) for f in flags}
    consequence = _consequences(registry, state, st)
    visits = {str(k): to_utc(v, what=f"last visit of {k}") for k, v in last_visits.items() if not pd.isna(v)}
    rows: list[dict[str, Any]] = []
    for pump in registry.pumps:
        name = pump.name
        h = health.get(name)
        severities = dict(h.severities) if h is not None else {}
        estimate = cal.pumps.get(name) if cal is not None else None
        ref_estimate = ref_cal.pumps.get(name) if ref_cal is not None else None
        severities.update(extra_severities(estimate, ref_estimate, st))
        for source in disputed_sources(flags, name):
            severities.pop(source, None)
        driver, worst = "", 0.0
        for source, x in severities.items():
            if x > worst:
                driver, worst = source, x
        terms = uncertainty_terms(
            estimate, cal.ts if cal is not None else None, visits.get(name), name in flagged, ts, st
        )
        u_driver = max(terms, key=lambda k: terms[k]) if any(v > 0 for v in terms.values()) else ""
        seen_here = (seen or {}).get(name, {})
        news = 0.0
        if severities:
            sources = list(severities)
            news = float(
                news_severity(
                    np.array([severities[k] for k in sources]),
                    np.array([seen_here.get(k, 0.0) for k in sources]),
                    np.full(len(sources), _days(ts, visits.get(name))),
                    st.escalation,
                    st.seen_half_life_days,
                    st.severity_cap,
                ).max()
            )
        rows.append(
            {
                "asset": name,
                "station": pump.station,
                "health_index": health_index(severities),
                "severity": worst,
                "uncertainty": combine_uncertainty(terms),
                "last_visit": visits.get(name, pd.NaT),
                "consequence": consequence[name],
                "sensor_flag": name in flagged,
                "news": news,
                "seen_severity": float(seen_here.get(driver, 0.0)),
                "severities": severities,
                "driver": driver,
                "uncertainty_driver": u_driver,
            }
        )
    extra = ["news", "seen_severity", "severities", "driver", "uncertainty_driver"]
    frame = pd.DataFrame(rows, columns=[*CONDITION_COLUMNS, *extra])
    frame["last_visit"] = pd.to_datetime(frame["last_visit"], utc=True)
    return frame


# --------------------------------------------------------------------------------------------
# The round
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoundPlan:
    """A week's round: the visits, ranked, and the assets the twin covers.

    Attributes:
        ts: Time of the plan (UTC).
        visits: ``rank, asset, station, score, reason, hours`` (hours: visit hours plus the
            station's travel on its first asset).
        covered: ``asset, station, score, reason``: left to the twin, with why.
        hours: Total hours of the round, travel included, h.
        budget_h: The budget the optional visits kept to, h.
    """

    ts: pd.Timestamp
    visits: pd.DataFrame
    covered: pd.DataFrame
    hours: float
    budget_h: float

    @property
    def assets(self) -> list[str]:
        """Assets visited, in rank order."""
        return [str(a) for a in self.visits["asset"]]

    @property
    def stations(self) -> list[str]:
        """Stations on the round, in order of their first visit."""
        return list(dict.fromkeys(str(s) for s in self.visits["station"]))

    def to_markdown(self) -> str:
        """The round as Markdown: the visits, then what the twin covers."""
        lines = [
            f"Inspection round for {self.ts.isoformat()}: {len(self.visits)} visits at "
            f"{len(self.stations)} stations, {self.hours:.1f} h (budget {self.budget_h:.1f} h beyond must-visits)",
            "",
            "| rank | asset | station | score | hours | why |",
            "|---:|---|---|---:|---:|---|",
        ]
        for r in self.visits.itertuples(index=False):
            lines.append(f"| {r.rank} | {r.asset} | {r.station} | {r.score:.2f} | {r.hours:.1f} | {r.reason} |")
        lines += ["", "Covered by the twin:", "", "| asset | station | score | why |", "|---|---|---:|---|"]
        for r in self.covered.itertuples(index=False):
            lines.append(f"| {r.asset} | {r.station} | {r.score:.2f} | {r.reason} |")
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (timestamps ISO 8601)."""
        return {
            "ts": self.ts.isoformat(),
            "hours": float(self.hours),
            "budget_h": float(self.budget_h),
            "stations": self.stations,
            "visits": [
                {
                    "rank": int(r.rank),
                    "asset": str(r.asset),
                    "station": str(r.station),
                    "score": float(r.score),
                    "reason": str(r.reason),
                    "hours": float(r.hours),
                }
                for r in self.visits.itertuples(index=False)
            ],
            "covered": [
                {"asset": str(r.asset), "station": str(r.station), "score": float(r.score), "reason": str(r.reason)}
                for r in self.covered.itertuples(index=False)
            ],
        }


def _check_conditions(conditions: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in CONDITION_COLUMNS if c not in conditions.columns]
    if missing:
        raise PlannerError(f"planner conditions lack columns {missing}")
    df = conditions.reset_index(drop=True).copy()
    if df["asset"].duplicated().any():
        raise PlannerError(
            f"planner conditions list assets twice: {sorted(set(df['asset'][df['asset'].duplicated()]))}"
        )
    for col in ("health_index", "severity", "uncertainty", "consequence"):
        values = pd.to_numeric(df[col], errors="coerce")
        bad = df["asset"][~np.isfinite(values.to_numpy(dtype=np.float64)) | (values < 0).to_numpy()]
        if len(bad):
            raise PlannerError(f"planner conditions: {col} must be a finite number >= 0 (assets {sorted(bad)})")
        df[col] = values.astype(np.float64)
    df["last_visit"] = pd.to_datetime(df["last_visit"], utc=True)
    df["sensor_flag"] = df["sensor_flag"].fillna(False).astype(bool)
    news = pd.to_numeric(df["news"], errors="coerce") if "news" in df.columns else df["severity"]
    news = news.fillna(df["severity"])  # not known: the whole severity is news
    bad = df["asset"][~np.isfinite(news.to_numpy(dtype=np.float64)) | (news < 0).to_numpy()]
    if len(bad):
        raise PlannerError(f"planner conditions: news must be a finite number >= 0 (assets {sorted(bad)})")
    df["news"] = news.astype(np.float64)
    seen = pd.to_numeric(df["seen_severity"], errors="coerce") if "seen_severity" in df.columns else 0.0
    df["seen_severity"] = pd.Series(seen, index=df.index).fillna(0.0).astype(np.float64)
    return df


def _why(row: pd.Series, days: float) -> str:
    """Condition text of an asset for reasons: severity, uncertainty and last visit."""
    driver = str(row.get("driver", "") or "")
    sev = f"severity {row['severity']:.2f}" + (f" ({driver})" if driver and row["severity"] > 0 else "")
    if row["seen_severity"] > 0:
        sev += f" ({row['seen_severity']:.2f} when last visited, news {row['news']:.2f})"
    u_driver = str(row.get("uncertainty_driver", "") or "")
    unc = f"uncertainty {row['uncertainty']:.2f}" + (f" ({u_driver})" if u_driver else "")
    last = "never visited" if math.isinf(days) else f"last visit {days:.0f} d ago"
    return f"{sev}, {unc}, {last}"


def plan_round(conditions: pd.DataFrame, now: pd.Timestamp, settings: PlannerSettings | None = None) -> RoundPlan:  # noqa: PLR0912, PLR0915 - one ranking in sequence
    """Plan a round: must-visits, then the best scores the budget allows (see the module docstring).

    Args:
        conditions: The planner input frame (`conditions_from_state`, or built by hand).
        now: Time of the plan (UTC).
        settings: Budget, costs, weights, thresholds (default `PlannerSettings`).

    Returns:
        The round: ranked visits, covered assets with reasons, total hours.

    Raises:
        PlannerError: Missing columns, duplicate assets or invalid values.
    """
    st = settings or PlannerSettings()
    ts = to_utc(now, what="plan time")
    df = _check_conditions(conditions)
    days = np.array([_days(ts, v) for v in df["last_visit"]], dtype=np.float64)
    overdue = days / st.max_interval_days
    recency = np.minimum(days / st.alarm_revisit_days, 1.0)
    news = df["news"].to_numpy()
    risk = st.severity_weight * np.minimum(news, st.severity_cap) * recency
    risk = risk + st.uncertainty_weight * df["uncertainty"].to_numpy()
    score = df["consequence"].to_numpy() * risk + st.overdue_weight * np.minimum(overdue, 1.0)
    df["score"] = score
    df["days"] = days
    must: list[tuple[int, int, str]] = []  # (category, row, reason)
    for i, row in df.iterrows():
        idx = int(str(i))
        why = _why(row, days[idx])
        if news[idx] >= st.alarm_severity and days[idx] >= st.alarm_revisit_days:
            must.append((0, idx, f"alarm: {why}"))
        elif row["sensor_flag"]:
            must.append((1, idx, f"sensor flag: {why}"))
        elif overdue[idx] >= 1.0:
            late = "never visited" if math.isinf(days[idx]) else f"{days[idx]:.0f} d since the last visit"
            must.append((2, idx, f"overdue: {late} (max {st.max_interval_days:g} d); {why}"))
    must.sort(key=lambda m: (m[0], -score[m[1]]))
    chosen: list[tuple[int, str]] = [(i, reason) for _, i, reason in must]
    stations = {str(df.at[i, "station"]) for i, _ in chosen}
    hours = len(chosen) * st.visit_hours + len(stations) * st.travel_hours
    optional_h = 0.0
    taken = {i for i, _ in chosen}
    skipped: dict[int, str] = {}
    for i in np.argsort(-score, kind="stable"):
        idx = int(i)
        if idx in taken:
            continue
        row = df.iloc[idx]
        station = str(row["station"])
        cost = st.visit_hours + (0.0 if station in stations else st.travel_hours)
        why = _why(row, days[idx])
        if score[idx] < st.min_score:
            skipped[idx] = f"below the visit threshold (score {score[idx]:.2f} < {st.min_score:g}): {why}"
            continue
        if optional_h + cost > st.budget_h + 1e-9:
            skipped[idx] = f"over budget ({optional_h:.1f} + {cost:.1f} h > {st.budget_h:g} h): {why}"
            continue
        chosen.append((idx, f"score {score[idx]:.2f}: {why}"))
        taken.add(idx)
        stations.add(station)
        optional_h += cost
        hours += cost
    for i in np.argsort(-score, kind="stable"):
        idx = int(i)
        if idx in taken or str(df.at[idx, "station"]) not in stations or score[idx] < st.pull_in_score:
            continue
        if optional_h + st.visit_hours > st.budget_h + 1e-9:
            continue
        chosen.append(
            (idx, f"pulled in at a station on the round (score {score[idx]:.2f}): {_why(df.iloc[idx], days[idx])}")
        )
        taken.add(idx)
        skipped.pop(idx, None)
        optional_h += st.visit_hours
        hours += st.visit_hours
    visit_rows: list[dict[str, Any]] = []
    travelled: set[str] = set()
    for rank, (idx, reason) in enumerate(chosen, 1):
        station = str(df.at[idx, "station"])
        h = st.visit_hours + (st.travel_hours if station not in travelled else 0.0)
        travelled.add(station)
        visit_rows.append(
            {
                "rank": rank,
                "asset": str(df.at[idx, "asset"]),
                "station": station,
                "score": float(score[idx]),
                "reason": reason,
                "hours": h,
            }
        )
    covered_rows = [
        {
            "asset": str(df.at[idx, "asset"]),
            "station": str(df.at[idx, "station"]),
            "score": float(score[idx]),
            "reason": skipped.get(idx, f"covered by the twin: {_why(df.iloc[idx], days[idx])}"),
        }
        for idx in range(len(df))
        if idx not in taken
    ]
    covered = pd.DataFrame(covered_rows, columns=list(COVERED_COLUMNS))
    covered = covered.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
    return RoundPlan(ts, pd.DataFrame(visit_rows, columns=list(VISIT_COLUMNS)), covered, float(hours), st.budget_h)
