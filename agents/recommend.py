"""The recommender: from the twin's alerts to the best action, simulated, ranked and justified.

For a line with active alerts it

1. reads the situations (`situations`): per alerted asset its failure mode (from the evidence that
   fired), severity and the alert lines;
2. builds the fixed candidates an operator weighs (`fixed_actions`): slow the pump at risk by 5 or
   10 %, the same with its running sisters raised to hold the throughput, switch it to the standby,
   stop it, cut the throughput by 10 or 20 %, stop the upstream station, a controlled shut-down of
   the line, and keep running with maintenance scheduled;
3. searches the continuous setpoints (`search_setpoints`): the speeds of every running pump of the
   line, sampled in their allowed ranges and refined around the best, solved in batches on the twin;
   and, for a switch to standby rejected on its own, the same switch with the speeds of the pumps
   that keep running (`search_switches`). An approved action the twin refused at the answer, or
   that the plant did not deliver as predicted (rolled back), is held back while its refusal holds
   (`held_refusals`, `hold_refused`);
4. simulates every candidate on the twin (`TwinView.simulate`), rejects those that break a hard
   limit (`rejections`: MAOP, surge at 110 % of MAOP and column separation for any pump stop,
   vapour pressure, speed range, the safe pressure of every assessed pipe feature (steady and
   transient envelope) and the integrity derating (throughput and station discharge pressures,
   `derating_violations`); NPSH margin, preferred operating region (which holds the minimum
   flow), vibration and bearing limits and the stations' low suction alarm on the asset at risk,
   or new or worse on any other; a pump diagnosed cavitating takes the NPSHr its cavitation shows,
   `observed_npshr_factors`) and
   scores the rest with a transparent objective (`judge`): risk reduced, least margin gained,
   energy added, throughput lost, pumps out of service, each term with its weight (settings);
5. gathers the evidence from the knowledge store (`gather_evidence`): the procedure for the
   failure mode and for the chosen action, the asset's past work orders, inspection findings and
   datasheet limits, and the models' scores with their versions;
6. writes the justification (`pumptwin.agents.generate.write_justification`): the grounded
   generator by default, a language model when configured, checked either way.

How much an action relieves an asset (`relief`, 0 to 1) is the operator's reading of the twin's
simulated operating point: the share of the pump's load removed (its shaft power), of its
bearing-temperature rise or vibration removed, of the NPSH margin missing to the comfortable
margin restored, of its strainer loss removed (which goes with the flow squared), or for a line the
share of its pressure removed; a stopped pump is fully relieved, except from low NPSH, which is the
station's suction and is relieved only by a better margin on every pump running there.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd

from pumptwin.agents.evidence import Candidate, Check, Evidence, ModelScore, Passage, Recommendation, Term
from pumptwin.agents.twin_view import TwinView
from pumptwin.twin.assets import PumpSpec
from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.health.state import DEFAULT_RULES, Alert, TwinState
from pumptwin.twin.hydraulic.network import LinkStatus
from pumptwin.twin.whatif.report import PumpPoint, ScenarioOutcome, Violation
from pumptwin.twin.whatif.spec import BASE_NAME, ScenarioSpec, SpeedChange

MODE_OF_SOURCE: dict[str, str] = {
    "thermal_drift_de": "bearing_wear",
    "thermal_drift_nde": "bearing_wear",
    "vib_excess_de_mm_s": "vibration",
    "vib_excess_nde_mm_s": "vibration",
    "impeller_wear": "impeller_wear",
    "efficiency_loss": "impeller_wear",
    "npsh_margin_m": "cavitation",
    "seal_leak_l_h": "seal_failure",
    "strainer_drift": "strainer_clog",
    "winding_drift": "motor_overheating",
    "maop_margin": "surge",
    "friction_multiplier": "leak",
    "meter_bias_fraction": "leak",
}
"""Failure mode suggested by the physics evidence that fired (model probabilities name theirs: ``p_<mode>``)."""
MODE_WORDS: dict[str, str] = {
    "bearing_wear": "high bearing temperature bearing wear",
    "vibration": "high vibration",
    "impeller_wear": "impeller wear efficiency loss",
    "cavitation": "low NPSH margin cavitation suction pressure",
    "seal_failure": "mechanical seal leak",
    "motor_overheating": "high motor winding temperature",
    "strainer_clog": "clogged suction strainer differential pressure",
    "leak": "suspected pipeline leak flow imbalance",
    "surge": "surge pressure transient MAOP",
}
"""Words a search for a failure mode's procedures and records uses."""
CONSEQUENCE: dict[str, float] = {"leak": 5.0, "surge": 3.0, "seal_failure": 1.5}
"""How much worse a failure of the mode is than a machine failure (1): a pipeline leak loses containment
along the line, a surge past MAOP can rupture it, a failed seal leaks crude at the station."""
OPERATION_OF_KIND: dict[str, str] = {
    "speed": "speed_change",
    "setpoint": "speed_change",
    "standby": "standby_switch",
    "stop": "shut_down",
    "throughput": "throughput_reduction",
    "reroute": "reroute",
    "shutdown": "shut_down",
    "maintenance": "maintenance",
    "base": "",
}
"""The operation (procedure subject) each kind of action is carried out by."""
OPERATION_WORDS: dict[str, str] = {
    "speed_change": "change pump speed VFD setpoint",
    "standby_switch": "switch to the standby pump changeover",
    "shut_down": "pump shut-down stop",
    "throughput_reduction": "reduce line throughput flow rate change",
    "reroute": "reroute line rate change",
    "maintenance": "raise maintenance work request scheduling",
}
"""Words a search for an operation's procedure uses."""

ALWAYS_HARD = ("MAOP", "SURGE", "COLUMN SEPARATION", "VAPOUR", "SPEED", "INTEGRITY", "DERATING")
"""Limits that reject a candidate wherever they are broken."""
ASSET_HARD = ("NPSH", "POR", "VIBRATION", "BEARING", "SUCTION")
"""Limits that reject a candidate when broken on the asset at risk, or new or worse on any other."""
SPEED_STEPS = (0.95, 0.90)
"""Speed factors of the fixed speed-change candidates."""
THROUGHPUT_STEPS = (0.9, 0.8)
"""Throughput factors of the fixed throughput candidates."""
SISTER_FACTORS = tuple(np.round(np.arange(1.0, 1.105, 0.01), 3))
"""Speed factors tried on the running sisters to hold the throughput when a pump is slowed."""
SPEED_QUANTUM = 0.005
"""Resolution of a searched speed setpoint (relative to rated)."""
COMFORT_NPSH_M = next(r.zero for r in DEFAULT_RULES if r.source == "npsh_margin_m")
"""NPSH margin at which the twin's rule sees no risk, m."""
SEARCH_BACKOFF_BAR = 0.3
"""Suction pressure a searched setpoint keeps above the low suction alarm, bar."""
SEARCH_BACKOFF_M = 1.0
"""NPSH margin a searched setpoint keeps above the NPSH limit, m."""
SEARCH_BACKOFF_MAOP = 0.03
"""Share of the allowed pressure (MAOP x `Limits.max_maop_use`) a searched setpoint keeps below it."""
BAR_PER_MPA = 10.0
HOURS_PER_DAY = 24.0
KWH_PER_MWH = 1000.0
AT_REST_STATUSES = ("disconnected", "not converged")
"""Statuses a controlled shut-down of the whole line may end in without being rejected."""
LOOKUP_LIMIT = 200
OUTCOMES_SHOWN = 2
"""Outcome reports of earlier actions cited per asset at risk (the newest)."""
"""Work orders read per metadata lookup before the date filter."""
WORSE_TOLERANCE = 1e-6
"""Relative change below which a violation on another asset counts as unchanged."""
SUCTION_RESOLUTION_BAR = 0.005
"""Change of a station's suction pressure below which it counts as unchanged, bar: a switch between
pumps of the same header moves it by millibars, below what the twin resolves."""
NPSH_SEEN_M = 1e-6
"""NPSH margin of the base case at which a diagnosed pump's NPSHr is the one its cavitation shows, m."""
DERATING_TOLERANCE = 1e-3
"""Relative excess over the integrity derating below which a candidate still counts as within it."""
PLANT_AS_NOW_FAILED = "twin, plant as now"
"""How a re-check's refusal begins when the twin could not simulate the plant as it runs now (`check_speeds`)."""


class RecommendError(PumptwinError, ValueError):
    """A situation the recommender cannot work on (no line, an asset not in the twin); the message says which."""


@dataclass(frozen=True)
class Objective:
    """Weights of the score's terms (``settings.agents``); a candidate's score is their weighted sum.

    Attributes:
        risk: Per unit of risk removed (severity x consequence of the mode x relief).
        margin: Per unit of least relative margin gained (fraction).
        energy_per_mwh: Per MWh/day of shaft energy added.
        throughput_per_pct: Per % of throughput lost.
        maintenance: Per pump taken out of service (a switch to standby counts half).
        min_gain: Least score an action must gain over keeping on as now to be recommended
            (operators do not touch a running line for a marginal gain).
    """

    risk: float = 10.0
    margin: float = 1.0
    energy_per_mwh: float = 0.5
    throughput_per_pct: float = 1.0
    maintenance: float = 1.0
    min_gain: float = 1.0


@dataclass(frozen=True)
class Situation:
    """An asset at risk on the line.

    Attributes:
        asset: Asset name (``PS01.P1`` or ``LINE01``).
        mode: Failure mode (vocabulary of `MODE_WORDS`).
        severity: Largest severity of its alerts (1: alarm threshold).
        level: ``warning`` or ``alarm``.
        pump_id: The pump's id in the network (None for the line).
        alerts: The alerts, one line each.
        diagnosed: A model's probability of the mode is at its alarm threshold (the diagnosis,
            rather than the twin's physics alone, names the mode).
    """

    asset: str
    mode: str
    severity: float
    level: str
    pump_id: str | None
    alerts: tuple[str, ...]
    diagnosed: bool = False


@dataclass(frozen=True)
class Action:
    """A candidate action before simulation.

    Attributes:
        name: As an operator names it.
        kind: See `Candidate.kind`.
        spec: The scenario that simulates it.
        setpoints: Relative speeds it sets, by pump asset name.
        out_of_service: Pumps it takes out of service (a switch to standby counts half).
        stops: Whether it stops pumps (then the surge of a trip is checked).
    """

    name: str
    kind: str
    spec: ScenarioSpec
    setpoints: Mapping[str, float] = field(default_factory=dict)
    out_of_service: float = 0.0
    stops: bool = False


def failure_mode(source: str) -> str:
    """The failure mode an alert's evidence points at (``p_bearing_wear`` -> ``bearing_wear``)."""
    if source.startswith("p_"):
        return source[2:]
    return MODE_OF_SOURCE.get(source, "")


def _mode_of(alerts: Sequence[Alert]) -> str:
    """The failure mode of an asset's alerts: the most severe model probability, else physics."""
    ordered = sorted(alerts, key=lambda a: (a.kind != "model" or not a.source.startswith("p_"), -a.severity))
    for a in ordered:
        mode = failure_mode(a.source)
        if mode:
            return mode
    return ""


def situations(state: TwinState, view: TwinView) -> list[Situation]:
    """The line's assets at risk, worst first (pumps of the line and the line itself)."""
    line_asset = f"LINE{view.line:02d}"
    pumps = {p.name: p for p in view.pumps}
    by_asset: dict[str, list[Alert]] = {}
    for a in state.alerts:
        if a.asset in pumps or a.asset == line_asset:
            by_asset.setdefault(a.asset, []).append(a)
    out = []
    for asset, alerts in by_asset.items():
        worst = max(alerts, key=lambda a: a.severity)
        spec = pumps.get(asset)
        mode = _mode_of(alerts)
        out.append(
            Situation(
                asset=asset,
                mode=mode,
                severity=float(min(worst.severity, 10.0)),
                level=worst.level,
                pump_id=spec.pump_id if spec is not None else None,
                alerts=tuple(a.message() for a in alerts),
                diagnosed=any(
                    a.kind == "model" and a.level == "alarm" and failure_mode(a.source) == mode for a in alerts
                ),
            )
        )
    return sorted(out, key=lambda s: (-s.severity, s.asset))


def _sisters(view: TwinView, pump: PumpSpec) -> list[str]:
    """Running pumps of ``pump``'s station other than it, by id (those that hold the station's head)."""
    station = {p.id: p.station for p in view.network.pumps}
    mine = station.get(pump.pump_id)
    return [pid for pid in view.running() if pid != pump.pump_id and mine is not None and station.get(pid) == mine]


def _station_spare(view: TwinView, pump: PumpSpec) -> bool:
    station = next((p.station for p in view.network.pumps if p.id == pump.pump_id), None)
    return station is not None and any(
        p.station == station and p.id != pump.pump_id and p.status == LinkStatus.CLOSED for p in view.network.pumps
    )


def _names(view: TwinView) -> dict[str, str]:
    """Asset name by pump id."""
    return {p.pump_id: p.name for p in view.pumps}


def fixed_actions(sits: Sequence[Situation], view: TwinView) -> list[Action]:
    """The fixed candidates for the situations (the base case excluded; see the module docstring)."""
    line = f"LINE{view.line:02d}"
    running = set(view.running())
    out: list[Action] = []
    for sit in sits:
        pump = view.pump(sit.asset)
        if pump is None or pump.pump_id not in running:
            continue
        pid = pump.pump_id
        for f in SPEED_STEPS:
            pct = round((1 - f) * 100)
            spec = ScenarioSpec(name=f"{sit.asset}: speed -{pct} %", speeds=(SpeedChange(pid, factor=f),))
            out.append(Action(spec.name, "speed", spec))
            for g in SISTER_FACTORS[1:]:
                sisters = tuple(SpeedChange(s, factor=float(g)) for s in _sisters(view, pump))
                if not sisters:
                    break
                name = f"{sit.asset}: speed -{pct} %, sisters +{round((g - 1) * 100)} %"
                out.append(
                    Action(name, "speed", ScenarioSpec(name=name, speeds=(SpeedChange(pid, factor=f), *sisters)))
                )
        if _station_spare(view, pump):
            name = f"{sit.asset}: switch to standby"
            out.append(Action(name, "standby", ScenarioSpec(name=name, standby=(pid,)), out_of_service=0.5, stops=True))
        name = f"{sit.asset}: stop"
        out.append(Action(name, "stop", ScenarioSpec(name=name, stop=(pid,)), out_of_service=1.0, stops=True))
    if sits:
        for f in THROUGHPUT_STEPS:
            name = f"{line}: throughput -{round((1 - f) * 100)} %"
            out.append(Action(name, "throughput", ScenarioSpec(name=name, flow_factor=f)))
        stations = sorted({p.station for p in view.network.pumps if p.id in running and p.station})
        if stations and any(s.pump_id is None for s in sits):
            first = stations[0]
            ids = tuple(p.id for p in view.network.pumps if p.station == first and p.id in running)
            name = f"{line}: stop station {first}"
            out.append(Action(name, "stop", ScenarioSpec(name=name, stop=ids), out_of_service=len(ids), stops=True))
        if running:
            name = f"{line}: controlled shut-down"
            spec = ScenarioSpec(name=name, stop=tuple(sorted(running)))
            out.append(Action(name, "shutdown", spec, out_of_service=len(running), stops=True))
    return out


def _point(outcome: ScenarioOutcome, pump_id: str) -> PumpPoint | None:
    return next((p for p in outcome.pumps if p.pump == pump_id), None)


def _fraction(removed: float, whole: float) -> float:
    return float(np.clip(removed / whole, 0.0, 1.0)) if whole > 0 and math.isfinite(removed) else 0.0


def _mean_pressure(outcome: ScenarioOutcome) -> float:
    p = np.asarray(outcome.profile_pressure_mpa, dtype=float)
    p = p[np.isfinite(p)]
    return float(np.mean(np.maximum(p, 0.0))) if p.size else math.nan


def _station_npsh(outcome: ScenarioOutcome, station: str | None) -> float:
    """Least NPSH margin of the running pumps of ``station``, m (inf when none runs)."""
    margins = [p.npsh_margin_m for p in outcome.pumps if p.running and p.station == station]
    margins = [m for m in margins if math.isfinite(m)]
    return min(margins) if margins else math.inf


def _station_npsh_relief(outcome: ScenarioOutcome, base: ScenarioOutcome, station: str | None, load: float) -> float:
    """Relief of low NPSH at a station: the share of the missing margin restored on every pump running there.

    Low suction pressure is the station's, not one pump's: a standby started in the same suction
    header sees the same margin, so only raising the suction pressure or lowering the flow helps.
    """
    old, new = _station_npsh(base, station), _station_npsh(outcome, station)
    if not math.isfinite(new):
        return 1.0
    if old >= COMFORT_NPSH_M:
        return load
    return _fraction(new - old, COMFORT_NPSH_M - old)


def relief(  # noqa: PLR0911 - one reading per failure mode
    sit: Situation, outcome: ScenarioOutcome, base: ScenarioOutcome, ambient_c: float
) -> float:
    """How much ``outcome`` relieves the asset of ``sit`` against ``base``, 0 (nothing) to 1 (fully).

    See the module docstring for the reading per failure mode.
    """
    if sit.pump_id is None:
        return _fraction(_mean_pressure(base) - _mean_pressure(outcome), _mean_pressure(base))
    new, old = _point(outcome, sit.pump_id), _point(base, sit.pump_id)
    if old is None or not old.running:
        return 0.0
    if new is None or not new.running:
        return _station_npsh_relief(outcome, base, old.station, 1.0) if sit.mode == "cavitation" else 1.0
    load = _fraction(old.shaft_power_kw - new.shaft_power_kw, old.shaft_power_kw)
    mode = sit.mode
    if mode == "cavitation":
        return _station_npsh_relief(outcome, base, old.station, load)
    if mode in ("bearing_wear", "motor_overheating"):
        return max(load, _fraction(old.bearing_c - new.bearing_c, old.bearing_c - ambient_c))
    if mode == "vibration":
        return max(0.5 * load, _fraction(old.vibration_mm_s - new.vibration_mm_s, old.vibration_mm_s))
    if mode == "strainer_clog":
        gain = (
            _fraction(new.npsh_margin_m - old.npsh_margin_m, COMFORT_NPSH_M - old.npsh_margin_m)
            if old.npsh_margin_m < COMFORT_NPSH_M
            else load
        )
        if old.flow_m3h > 0:
            gain = max(gain, _fraction(old.flow_m3h**2 - new.flow_m3h**2, old.flow_m3h**2))
        return gain
    if mode == "seal_failure":
        return 0.3 * load
    if mode == "impeller_wear":
        return 0.5 * load
    return load


def least_margin(outcome: ScenarioOutcome, view: TwinView) -> float:
    """Least relative margin to any limit over the line and its running pumps (fraction; < 0: broken)."""
    lim = view.limits
    p = np.asarray(outcome.profile_pressure_mpa, dtype=float)
    maop = np.asarray(outcome.maop_mpa, dtype=float) * lim.max_maop_use
    ok = np.isfinite(p) & np.isfinite(maop) & (maop > 0)
    margins = [float(np.min((maop[ok] - p[ok]) / maop[ok]))] if ok.any() else []
    for pt in outcome.pumps:
        if not pt.running:
            continue
        if math.isfinite(pt.npsh_margin_m) and pt.npsh_required_m > 0:
            margins.append(pt.npsh_margin_m / pt.npsh_required_m)
        if math.isfinite(pt.vibration_mm_s):
            margins.append((lim.zones.bc_mm_s - pt.vibration_mm_s) / lim.zones.bc_mm_s)
        if math.isfinite(pt.bearing_c):
            margins.append((lim.bearing_alarm_c - pt.bearing_c) / max(lim.bearing_alarm_c - view.ambient_c, 1.0))
        if math.isfinite(pt.percent_bep):
            margins.append(min(pt.percent_bep - 70.0, 120.0 - pt.percent_bep) / 100.0)
    return min(margins) if margins else math.nan


def _worse(v: Violation, before: Violation | None) -> bool:
    if before is None:
        return True
    scale = max(abs(before.value), 1e-9) * WORSE_TOLERANCE
    if v.limit == "SUCTION":
        scale = max(scale, SUCTION_RESOLUTION_BAR)
    if v.limit in ("NPSH", "SUCTION"):  # limits from below: lower is worse
        return v.value < before.value - scale
    if v.limit == "POR":
        return abs(v.value - v.limit_value) > abs(before.value - before.limit_value) + scale
    return v.value > before.value + scale


def rejections(
    outcome: ScenarioOutcome,
    base: ScenarioOutcome,
    at_risk: Iterable[str],
    surge: Sequence[Violation] = (),
    *,
    at_rest: bool = False,
) -> tuple[str, ...]:
    """Why a simulated candidate is not allowed (empty: allowed); see the module docstring for the rules.

    Args:
        outcome: The candidate's simulated outcome.
        base: The base case (for violations that were there before).
        at_risk: Pump ids of the assets at risk.
        surge: Violations of the transient check of its pump stops.
        at_rest: The candidate stops the whole line (a controlled shut-down): a line with no path
            from source to delivery is its purpose, not a failure.
    """
    if outcome.status != "ok" and not (at_rest and outcome.status in AT_REST_STATUSES):
        return (f"{outcome.status}: {outcome.message}",)
    risky = set(at_risk)
    before = {(v.limit, v.where): v for v in base.violations}
    reasons = []
    for v in (*outcome.violations, *surge):
        if v.limit in ALWAYS_HARD or v.where in risky or _worse(v, before.get((v.limit, v.where))):
            reasons.append(str(v))
    return tuple(reasons)


def numbers(outcome: ScenarioOutcome, view: TwinView, sits: Sequence[Situation]) -> dict[str, float]:
    """The simulated figures an approver checks, by label with unit."""
    out = {
        "throughput m3/h": outcome.throughput_m3h,
        "shaft power kW": outcome.power_kw,
        "min MAOP margin MPa": outcome.min_maop_margin_mpa,
        "max pressure MPa": outcome.max_pressure_mpa,
    }
    names = _names(view)
    risky = {s.pump_id for s in sits if s.pump_id is not None}
    for pt in outcome.pumps:
        name = names.get(pt.pump, pt.pump)
        if pt.pump not in names:
            continue
        out[f"{name} speed %"] = 100.0 * pt.speed
        if pt.pump in risky:
            out[f"{name} flow m3/h"] = pt.flow_m3h
            if pt.running:
                out[f"{name} % of BEP"] = pt.percent_bep
                out[f"{name} NPSH margin m"] = pt.npsh_margin_m
                out[f"{name} vibration mm/s"] = pt.vibration_mm_s
                out[f"{name} bearing C"] = pt.bearing_c
                out[f"{name} shaft power kW"] = pt.shaft_power_kw
    return {k: float(v) for k, v in out.items() if math.isfinite(v)}


def _energy_added_mwh_day(outcome: ScenarioOutcome, base: ScenarioOutcome) -> float:
    """Shaft energy added per day at the base throughput, MWh/day: the change of specific energy times the base volume.

    Energy saved by delivering less is not counted here (the throughput term prices the volume
    lost), so a line that delivers nothing (at rest, or before) adds none.
    """
    e_new, e_old = outcome.specific_energy_kwh_m3, base.specific_energy_kwh_m3
    if math.isfinite(e_new) and math.isfinite(e_old) and base.throughput_m3h > 0:
        return (e_new - e_old) * base.throughput_m3h * HOURS_PER_DAY / KWH_PER_MWH
    return 0.0


def suction_violations(outcome: ScenarioOutcome, view: TwinView, backoff_bar: float = 0.0) -> tuple[Violation, ...]:
    """Stations with a running pump whose suction is below the low suction alarm plus ``backoff_bar`` (bar g)."""
    if outcome.status not in ("ok",):
        return ()
    where = dict(zip(outcome.profile_nodes, np.asarray(outcome.profile_pressure_mpa, dtype=float), strict=False))
    running = {p.station for p in outcome.pumps if p.running}
    limit = view.min_suction_bar + backoff_bar
    out = []
    for station, node in sorted(view.suction_nodes().items()):
        p_mpa = where.get(node)
        if station in running and p_mpa is not None and p_mpa * BAR_PER_MPA < limit:
            out.append(Violation("SUCTION", node, float(p_mpa * BAR_PER_MPA), limit, "bar g"))
    return tuple(out)


def derating_violations(outcome: ScenarioOutcome, view: TwinView) -> tuple[Violation, ...]:
    """A candidate above the line's integrity derating: its throughput, or a station's discharge pressure.

    The derating (`TwinView.derating`) is the largest throughput and the highest discharge pressure
    per station that keep every assessed feature at or below its safe pressure; above either is a
    ``DERATING`` violation (a hard limit), beyond `DERATING_TOLERANCE`.
    """
    d = view.derating
    if d is None or outcome.status != "ok":
        return ()
    out = []
    bound = f"integrity derating, bound by {d.binding_feature}"
    limit = d.throughput_m3h
    if math.isfinite(limit) and outcome.throughput_m3h > limit * (1.0 + DERATING_TOLERANCE):
        out.append(Violation("DERATING", "throughput", outcome.throughput_m3h, limit, f"m3/h ({bound})"))
    where = dict(zip(outcome.profile_nodes, np.asarray(outcome.profile_pressure_mpa, dtype=float), strict=False))
    for station, p_max in d.discharge_limit_mpa.items():
        p = where.get(d.discharge_node.get(station, ""))
        if p is not None and math.isfinite(p_max) and p > p_max + abs(p_max) * DERATING_TOLERANCE:
            out.append(Violation("DERATING", f"{station} discharge", float(p), p_max, "MPa (integrity derating)"))
    return tuple(out)


def doubted_npsh_violations(
    outcome: ScenarioOutcome, view: TwinView, stations: Iterable[str | None]
) -> tuple[Violation, ...]:
    """NPSH margins below the search's back-off on the running pumps of ``stations``.

    Where a pump is diagnosed cavitating with margin left on its datasheet NPSHr, the datasheet is
    not trusted to the metre at its station: a standby or sister started there keeps the search's
    back-off (`SEARCH_BACKOFF_M`) above the NPSH limit in every candidate, not only in searched ones.
    """
    where = set(stations)
    need = view.limits.min_npsh_margin_m + SEARCH_BACKOFF_M
    return tuple(
        Violation("NPSH", p.pump, p.npsh_margin_m, need, "m margin")
        for p in outcome.pumps
        if p.running and p.station in where and math.isfinite(p.npsh_margin_m) and p.npsh_margin_m < need
    )


def backoff_violations(outcome: ScenarioOutcome, view: TwinView) -> tuple[Violation, ...]:
    """The suction, NPSH and MAOP limits tightened by the search's back-off.

    A search for the best setpoints ends on the edge of whichever limit binds, where a small error of
    the twin puts the plant over it; the searched candidates keep this much more margin
    (`SEARCH_BACKOFF_BAR`, `SEARCH_BACKOFF_M`, `SEARCH_BACKOFF_MAOP`).
    """
    out = list(suction_violations(outcome, view, SEARCH_BACKOFF_BAR))
    if outcome.status == "ok":
        need = view.limits.min_npsh_margin_m + SEARCH_BACKOFF_M
        out += [
            Violation("NPSH", p.pump, p.npsh_margin_m, need, "m margin")
            for p in outcome.pumps
            if p.running and math.isfinite(p.npsh_margin_m) and p.npsh_margin_m < need
        ]
        p_mpa = np.asarray(outcome.profile_pressure_mpa, dtype=float)
        cap = np.asarray(outcome.maop_mpa, dtype=float) * view.limits.max_maop_use * (1.0 - SEARCH_BACKOFF_MAOP)
        over = np.isfinite(p_mpa) & np.isfinite(cap) & (cap > 0) & (p_mpa > cap)
        if over.any():
            i = int(np.argmax(np.where(over, p_mpa - cap, -np.inf)))
            out.append(Violation("MAOP", outcome.profile_nodes[i], float(p_mpa[i]), float(cap[i]), "MPa"))
    return tuple(out)


def judge(
    action: Action,
    outcome: ScenarioOutcome,
    base: ScenarioOutcome,
    sits: Sequence[Situation],
    view: TwinView,
    objective: Objective,
    surge: Sequence[Violation] = (),
    *,
    backoff: bool | None = None,
) -> Candidate:
    """The candidate of a simulated action: its rejections, figures and score terms.

    ``backoff`` applies the search's tighter suction, NPSH and MAOP limits (`backoff_violations`);
    None applies them to searched setpoints only. Judging an action on the plant's truth, as an
    oracle does, takes the limits themselves (False).
    """
    at_risk = [s.pump_id for s in sits if s.pump_id is not None]
    tight = action.kind == "setpoint" if backoff is None else backoff
    doubted = {
        pt.station
        for s in sits
        if s.mode == "cavitation" and s.diagnosed and s.pump_id is not None
        for pt in base.pumps
        if pt.pump == s.pump_id
    }

    def extra(o: ScenarioOutcome, v: TwinView) -> tuple[Violation, ...]:
        if tight:
            return backoff_violations(o, v)
        return (*suction_violations(o, v), *doubted_npsh_violations(o, v, doubted))

    risk = sum(s.severity * CONSEQUENCE.get(s.mode, 1.0) * relief(s, outcome, base, view.ambient_c) for s in sits)
    thr_base = base.throughput_m3h
    lost = 100.0 * (thr_base - outcome.throughput_m3h) / thr_base if thr_base > 0 else 0.0
    energy = _energy_added_mwh_day(outcome, base)
    margin_gain = least_margin(outcome, view) - least_margin(base, view)
    terms = (
        Term("risk reduction", risk, objective.risk, "severity"),
        Term("least margin gained", margin_gain if math.isfinite(margin_gain) else 0.0, objective.margin, "-"),
        Term("energy added at base throughput", energy, -objective.energy_per_mwh, "MWh/day"),
        Term("throughput lost", max(lost, 0.0), -objective.throughput_per_pct, "%"),
        Term("pumps out of service", action.out_of_service, -objective.maintenance, "pumps"),
    )
    return Candidate(
        name=action.name,
        kind=action.kind,
        procedure=OPERATION_OF_KIND.get(action.kind, ""),
        rejected=rejections(
            replace(
                outcome, violations=(*outcome.violations, *extra(outcome, view), *derating_violations(outcome, view))
            ),
            replace(base, violations=(*base.violations, *extra(base, view))),
            at_risk,
            surge,
            at_rest=action.kind == "shutdown",
        ),
        numbers=numbers(outcome, view, sits),
        terms=terms,
        setpoints=dict(action.setpoints),
        spec=action.spec,
    )


def base_action(sits: Sequence[Situation]) -> Action:
    """Keep running as now: ``keep running, schedule maintenance`` with a situation, else ``no change``."""
    if sits:
        return Action("keep running, schedule maintenance", "maintenance", ScenarioSpec(name=BASE_NAME))
    return Action("no change", "base", ScenarioSpec(name=BASE_NAME))


def observed_npshr_factors(sits: Sequence[Situation], base: ScenarioOutcome) -> dict[str, float]:
    """By pump id, the factor on the datasheet NPSHr of each pump diagnosed cavitating with margin left on the twin.

    A pump that cavitates has no NPSH margin left, whatever its datasheet NPSHr says: a risen
    NPSHr (a worn or fouled impeller eye, entrained gas) is invisible to the twin's curves but not
    to the diagnosis. The factor ``NPSHa / NPSHr`` at the base point makes the pump's margin zero
    there; with the affinity laws the same factor scales its NPSHr at every other operating point
    (`with_observed_npshr`). Pumps without a model's cavitation alarm (the twin's own NPSH rule
    already reads their margin), and those whose margin on the datasheet is already gone, keep
    the datasheet.
    """
    out: dict[str, float] = {}
    for sit in sits:
        if sit.mode != "cavitation" or not sit.diagnosed or sit.pump_id is None:
            continue
        pt = _point(base, sit.pump_id)
        if pt is None or not pt.running or not (math.isfinite(pt.npsh_required_m) and pt.npsh_required_m > 0):
            continue
        if math.isfinite(pt.npsh_available_m) and pt.npsh_available_m > pt.npsh_required_m:
            out[sit.pump_id] = pt.npsh_available_m / pt.npsh_required_m
    return out


def with_observed_npshr(outcome: ScenarioOutcome, factors: Mapping[str, float], limit_m: float) -> ScenarioOutcome:
    """``outcome`` with the NPSHr of the pumps of ``factors`` scaled (`observed_npshr_factors`).

    Their margins and NPSH violations (margin below ``limit_m``, m) are worked out again; the rest
    of the outcome is unchanged.
    """
    if not factors:
        return outcome
    pumps = []
    changed: dict[str, PumpPoint] = {}
    for pt in outcome.pumps:
        k = factors.get(pt.pump)
        if k is not None and pt.running and math.isfinite(pt.npsh_required_m):
            req = k * pt.npsh_required_m
            changed[pt.pump] = replace(pt, npsh_required_m=req, npsh_margin_m=pt.npsh_available_m - req)
        pumps.append(changed.get(pt.pump, pt))
    violations = [v for v in outcome.violations if not (v.limit == "NPSH" and v.where in changed)]
    violations += [
        Violation("NPSH", pid, pt.npsh_margin_m, limit_m, "m margin")
        for pid, pt in changed.items()
        if pt.npsh_margin_m < limit_m
    ]
    return replace(outcome, pumps=tuple(pumps), violations=tuple(violations))


def as_diagnosed(
    outcomes: Sequence[ScenarioOutcome], sits: Sequence[Situation], view: TwinView
) -> list[ScenarioOutcome]:
    """``outcomes`` (the base case first) with the NPSHr each diagnosed cavitating pump shows in the base.

    See `observed_npshr_factors` and `with_observed_npshr`.
    """
    factors = observed_npshr_factors(sits, outcomes[0])
    return [with_observed_npshr(o, factors, view.limits.min_npsh_margin_m) for o in outcomes]


@dataclass(frozen=True)
class Refusal:
    """An approved action that was not carried out as the twin predicted.

    Attributes:
        action: The action's name as it was recommended (`Candidate.name`).
        at: When it was refused or undone (UTC).
        reason: The first hard limit the re-check found broken, or the first expectation the
            plant's response missed, as worded there.
        by: ``twin``: the twin's re-check refused it before anything was written (`check_speeds`);
            ``plant``: it was written, the plant did not respond as the twin predicted, and the
            interlocks rolled it back.
    """

    action: str
    at: pd.Timestamp
    reason: str
    by: Literal["twin", "plant"] = "twin"


def held_refusals(refusals: Iterable[Refusal], now: pd.Timestamp, hold_s: float) -> tuple[Refusal, ...]:
    """The latest refusal of each action within ``hold_s`` (s) up to ``now``, by action name.

    An action that a person approved and the twin then refused on the plant as it ran, or that
    was written and rolled back because the plant did not respond as the twin predicted, is not
    proposed again while its refusal holds: the approver is not asked again for what would be
    refused or undone again, and the next best candidate gets its turn. A refusal because the twin could
    not simulate the plant as it ran (`PLANT_AS_NOW_FAILED`) says nothing of the action and holds
    nothing back.
    """
    latest: dict[str, Refusal] = {}
    for r in refusals:
        if r.reason.startswith(PLANT_AS_NOW_FAILED):
            continue
        age_s = (now - r.at).total_seconds()
        if 0.0 <= age_s <= hold_s and (r.action not in latest or r.at > latest[r.action].at):
            latest[r.action] = r
    return tuple(latest[a] for a in sorted(latest))


def refusal_text(r: Refusal) -> str:
    """How a held refusal is worded in a candidate's rejections and the recommendation's notes."""
    at = r.at.strftime("%Y-%m-%d %H:%M")
    if r.by == "plant":
        return f"approved, written and rolled back at {at} UTC (the plant did not respond as predicted): {r.reason}"
    return f"approved, then refused by the twin's re-check at {at} UTC: {r.reason}"


def hold_refused(candidates: Sequence[Candidate], refused: Sequence[Refusal]) -> list[Candidate]:
    """``candidates`` with each one named by a held refusal (`held_refusals`) rejected for it."""
    by_name = {r.action: r for r in refused}
    return [
        replace(c, rejected=(*c.rejected, refusal_text(by_name[c.name]))) if c.name in by_name else c
        for c in candidates
    ]


def simulate(
    actions: Sequence[Action],
    sits: Sequence[Situation],
    view: TwinView,
    objective: Objective,
    *,
    backoff: bool | None = None,
) -> tuple[ScenarioOutcome, list[Candidate]]:
    """Simulate ``actions`` in one batch; the base outcome and one candidate per action, in order.

    The NPSHr of a pump diagnosed cavitating is the one its cavitation shows
    (`observed_npshr_factors`), in the base and in every candidate. ``backoff`` is `judge`'s.
    """
    report = view.simulate([a.spec for a in actions])
    base, *outcomes = as_diagnosed(report.outcomes, sits, view)
    cands = []
    for action, outcome in zip(actions, outcomes, strict=True):
        surge = view.surge(action.spec) if action.stops and outcome.status == "ok" else ()
        cands.append(judge(action, outcome, base, sits, view, objective, surge, backoff=backoff))
    return base, cands


def prune(candidates: Sequence[Candidate], base_throughput_m3h: float) -> list[Candidate]:
    """Keep the sister-compensation variant of each speed step that holds the throughput best.

    Variants are named ``<asset>: speed -N %, sisters +M %``; feasible ones are preferred, and
    other candidates pass unchanged.
    """
    groups: dict[str, list[Candidate]] = {}
    out: list[Candidate] = []
    for c in candidates:
        if ", sisters +" in c.name:
            groups.setdefault(c.name.split(", sisters +")[0], []).append(c)
        else:
            out.append(c)
    for variants in groups.values():
        out.append(
            min(
                variants,
                key=lambda c: (
                    not c.feasible,
                    abs(c.numbers.get("throughput m3/h", math.inf) - base_throughput_m3h),
                    c.name,
                ),
            )
        )
    return out


def _setpoint_action(speeds: Mapping[str, float], view: TwinView) -> Action:
    names = _names(view)
    label = ", ".join(f"{names.get(pid, pid)} {100 * s:.1f} %" for pid, s in sorted(speeds.items()))
    spec = ScenarioSpec(
        name=f"setpoints: {label}",
        speeds=tuple(view.speed_change(pid, s) for pid, s in speeds.items()),
    )
    return Action(spec.name, "setpoint", spec, setpoints={names.get(p, p): s for p, s in speeds.items()})


@dataclass(frozen=True)
class SpeedCheck:
    """Final speeds simulated on the twin against the plant as it runs now.

    Attributes:
        rejected: Hard limits the speeds break, as candidates' rejections are worded (empty: none),
            or why the plant as it runs now could not be simulated.
        base: The twin's outcome of the plant as it runs now.
        outcome: The twin's outcome with the speeds.
        numbers: The action's figures (`Candidate.numbers`).
        running: Pumps (asset names) running both now and with the speeds.
    """

    rejected: tuple[str, ...]
    base: ScenarioOutcome
    outcome: ScenarioOutcome
    numbers: Mapping[str, float]
    running: frozenset[str]


def check_speeds(
    view: TwinView,
    state: TwinState | None,
    objective: Objective,
    speeds: Mapping[str, float],
    now: Mapping[str, float],
) -> SpeedCheck:
    """Simulate relative speeds by pump (0: stop) on the twin, from the plant's speeds now, and judge them.

    What a person approved hours ago is checked again before anything is written: the plant may
    have moved since. Both cases are simulated on the twin's line: the plant as it runs now
    (``now``: the control system's speed of each pump; pumps the twin does not see running are
    left out) and with ``speeds`` on top. The second is judged against the first as candidates
    are (`judge`, the hard limits without the search's back-off), with the twin's current alerts
    as the situation; a stop is also checked for surge.

    Raises:
        RecommendError: A pump of ``speeds`` that is not a pump of the view's line.
    """
    by_name = {p.name: p for p in view.pumps}
    unknown = sorted(p for p in speeds if p not in by_name)
    if unknown:
        raise RecommendError(f"not a pump of line {view.line} in the twin: {', '.join(unknown)}")
    in_twin = set(view.running())
    as_now = {by_name[p].pump_id: float(s) for p, s in now.items() if p in by_name and s > 0}
    as_now = {pid: s for pid, s in as_now.items() if pid in in_twin}
    after = {**as_now, **{by_name[p].pump_id: float(s) for p, s in speeds.items() if s > 0}}
    stops = tuple(sorted(by_name[p].pump_id for p, s in speeds.items() if s <= 0))
    before_action = _setpoint_action(as_now, view)
    action = _setpoint_action({pid: s for pid, s in after.items() if pid not in stops}, view)
    if stops:
        spec = replace(action.spec, name=f"{action.spec.name}; stop {', '.join(stops)}", stop=stops)
        action = Action(spec.name, "setpoint", spec, action.setpoints, out_of_service=len(stops), stops=True)
    report = view.simulate([before_action.spec, action.spec])
    sits = situations(state, view) if state is not None else []
    base, outcome = as_diagnosed(report.outcomes[1:3], sits, view)
    surge = view.surge(action.spec) if action.stops and outcome.status == "ok" else ()
    cand = judge(action, outcome, base, sits, view, objective, surge, backoff=False)
    rejected = tuple(cand.rejected) if base.status == "ok" else (f"{PLANT_AS_NOW_FAILED}: {base.status}",)
    running = frozenset(p for p, s in speeds.items() if s > 0 and by_name[p].pump_id in as_now)
    return SpeedCheck(rejected, base, outcome, dict(cand.numbers), running)


def _switch_action(switch: Action, speeds: Mapping[str, float], view: TwinView, base: ScenarioOutcome) -> Action | None:
    """``switch`` (a switch to standby) with the speeds by pump id of the pumps that keep running beside it.

    The standby takes the outgoing pump's speed now, as the control system hands it over
    (`pumptwin.control.approval.like_for_like`). None when the outgoing pump does not run or has
    no stopped pump beside it.
    """
    (outgoing,) = switch.spec.standby
    out = _point(base, outgoing)
    spare = next((p for p in base.pumps if out is not None and p.station == out.station and not p.running), None)
    if out is None or not out.running or spare is None:
        return None
    names = _names(view)
    label = ", ".join(f"{names.get(pid, pid)} {100 * s:.1f} %" for pid, s in sorted(speeds.items()))
    spec = ScenarioSpec(
        name=f"{switch.name}, setpoints: {label}",
        standby=(outgoing,),
        speeds=(
            view.speed_change(spare.pump, out.speed),
            *(view.speed_change(pid, s) for pid, s in speeds.items()),
        ),
    )
    setpoints = {names.get(outgoing, outgoing): 0.0, names.get(spare.pump, spare.pump): out.speed}
    setpoints |= {names.get(p, p): s for p, s in speeds.items()}
    return Action(spec.name, "standby", spec, setpoints=setpoints, out_of_service=0.5, stops=True)


def search_setpoints(
    sits: Sequence[Situation],
    view: TwinView,
    objective: Objective,
    base: ScenarioOutcome,
    *,
    samples: int = 64,
    rounds: int = 3,
    seed: int = 0,
    switch: Action | None = None,
) -> tuple[Candidate | None, int]:
    """The best feasible speeds of the line's running pumps, found by sampling and refining.

    Round one samples ``samples`` speed vectors uniformly in the pumps' allowed ranges (plus the
    current speeds); each later round samples around the best so far with half the radius. Speeds
    are quantised to `SPEED_QUANTUM`. Every vector is simulated on the twin in one batch per round
    and judged like the fixed candidates, with the suction and NPSH limits tightened by the
    search's back-off (`backoff_violations`).

    With ``switch`` (a switch to standby), the speeds searched are those of the pumps that keep
    running beside the switch (`_switch_action`): a switch the line cannot take as it runs (a
    suction already low at the station) may pass with the other stations' speeds moved with it.

    Returns:
        The best feasible candidate (None when none is) and the number of vectors simulated.
    """
    running = view.running()
    specs = {p.pump_id: p for p in view.pumps}
    leaving = set(switch.spec.standby) if switch is not None else set()
    ids = [pid for pid in running if pid in specs and pid not in leaving]
    if not ids:
        return None, 0
    lo = np.array([specs[p].min_speed for p in ids])
    hi = np.array([specs[p].max_speed for p in ids])
    now = np.array([next(pt.speed for pt in base.pumps if pt.pump == p) for p in ids])
    rng = np.random.default_rng(seed)
    best: Candidate | None = None
    centre, radius = now, (hi - lo)
    n_eval = 0
    for r in range(rounds):
        draws = (
            centre + (rng.random((samples, len(ids))) - 0.5) * radius
            if r
            else lo + rng.random((samples, len(ids))) * (hi - lo)
        )
        draws = np.clip(np.round(draws / SPEED_QUANTUM) * SPEED_QUANTUM, lo, hi)
        if r == 0:
            draws = np.vstack([np.clip(np.round(now / SPEED_QUANTUM) * SPEED_QUANTUM, lo, hi), draws])
        vectors = np.unique(draws, axis=0)
        if switch is None:
            actions = [_setpoint_action(dict(zip(ids, map(float, v), strict=True)), view) for v in vectors]
        else:
            made = [_switch_action(switch, dict(zip(ids, map(float, v), strict=True)), view, base) for v in vectors]
            if made[0] is None:
                return None, n_eval
            actions = [a for a in made if a is not None]
        _, cands = simulate(actions, sits, view, objective, backoff=True)
        n_eval += len(cands)
        feasible = [(c, v) for c, v in zip(cands, vectors, strict=True) if c.feasible]
        if feasible:
            top, vec = max(feasible, key=lambda cv: (cv[0].score, cv[0].name))
            if best is None or top.score > best.score:
                best, centre = top, vec
        radius = radius / 2
    return best, n_eval


def search_switches(
    actions: Sequence[Action],
    candidates: Sequence[Candidate],
    sits: Sequence[Situation],
    view: TwinView,
    objective: Objective,
    base: ScenarioOutcome,
    *,
    seed: int = 0,
) -> tuple[list[Candidate], int]:
    """For each switch to standby rejected on its own, the best feasible switch with searched speeds.

    A switch is rejected when it breaks a hard limit, or while a refusal of it holds
    (`hold_refused`): the searched switch keeps the search's back-off and moves the speeds of the
    pumps that keep running with it.

    Returns:
        The feasible switches found (`search_setpoints` with ``switch``) and the vectors simulated.
    """
    blocked = {c.name for c in candidates if c.kind == "standby" and not c.feasible}
    found: list[Candidate] = []
    n_eval = 0
    for action in actions:
        if action.kind == "standby" and action.name in blocked and len(action.spec.standby) == 1:
            best, n = search_setpoints(sits, view, objective, base, seed=seed, switch=action)
            n_eval += n
            if best is not None:
                found.append(best)
    return found, n_eval


def rank(candidates: Iterable[Candidate]) -> list[Candidate]:
    """Feasible candidates by score (best first, ties by name), then rejected ones by name."""
    cands = list(candidates)
    ok = sorted((c for c in cands if c.feasible), key=lambda c: (-c.score, c.name))
    bad = sorted((c for c in cands if not c.feasible), key=lambda c: c.name)
    return ok + bad


def model_scores(state: TwinState, assets: Iterable[str]) -> tuple[ModelScore, ...]:
    """The models' evidence on ``assets`` (probabilities, anomaly score, time to failure) with versions."""
    wanted = set(assets)
    out = []
    for h in state.health:
        if h.asset not in wanted or not h.model_version:
            continue
        for key, value in sorted(h.evidence.items()):
            if (key.startswith("p_") or key in ("anomaly_score", "ttf_s")) and math.isfinite(value):
                out.append(ModelScore(h.asset, key, float(value), h.model_version))
    return tuple(out)


def _known_by(work_order: Passage, until: str) -> bool:
    """Whether a work order was closed (or, without a closing date, opened) on or before ``until`` (ISO)."""
    day = str(work_order.meta.get("closed") or work_order.meta.get("date") or "")[:10]
    return day <= until


def past_work_orders(
    kb: object, asset: str, modes: list[str] | None, top_k: int, until: str | None = None
) -> list[Passage]:
    """Past work orders, newest first: the asset's for the mode, else the mode's on any asset, else the asset's.

    Only work orders closed on or before ``until`` (an ISO date; None: all) count: an outcome known
    only after the situation cannot be evidence for it (a work order without a closing date counts
    by its opening date).
    """
    look = kb.lookup  # type: ignore[attr-defined]
    for assets, wanted in (([asset], modes), (None, modes), ([asset], None)):
        if wanted is None and assets is None:
            continue
        found: list[Passage] = look(doc_types=["work_order"], assets=assets, failure_modes=wanted, limit=LOOKUP_LIMIT)
        found = [p for p in found if until is None or _known_by(p, until)]
        if found:
            return found[:top_k]
    return []


def past_outcomes(
    kb: object, asset: str, modes: list[str] | None, top_k: int, until: str | None = None
) -> list[Passage]:
    """What earlier actions of the loop did on ``asset`` (for the mode when one is known), newest first.

    Only outcomes of actions in effect on or before ``until`` (an ISO date; None: all) count.
    """
    look = kb.lookup  # type: ignore[attr-defined]
    found: list[Passage] = look(doc_types=["outcome"], assets=[asset], failure_modes=modes, limit=LOOKUP_LIMIT)
    return [p for p in found if until is None or str(p.meta.get("date", ""))[:10] <= until][:top_k]


def gather_evidence(
    kb: object, sits: Sequence[Situation], chosen: Candidate, top_k: int = 3, until: str | None = None
) -> Evidence:
    """Passages for the situation and the chosen action from a `pumptwin.agents.retrieval.KnowledgeBase`.

    Evidence is gathered for the worst situation and for the next one when it is at alarm level:
    a warning on another asset is shown by its alert line, without procedures and records of its
    own that would only dilute the evidence for what the action answers. Work orders closed and
    inspection reports dated on or before ``until`` (the state's day, ISO; None: all) count;
    procedures, manuals and datasheets are the current revisions.

    Raises:
        pumptwin.agents.retrieval.KnowledgeError: An empty or unreachable store.
    """
    procedures: list[Passage] = []
    work_orders: list[Passage] = []
    outcomes: list[Passage] = []
    inspections: list[Passage] = []
    manuals: list[Passage] = []
    answered = [sit for i, sit in enumerate(sits[:2]) if i == 0 or sit.level == "alarm"]
    for sit in answered:
        words = MODE_WORDS.get(sit.mode, sit.mode.replace("_", " "))
        modes = [sit.mode] if sit.mode else None
        procedures += kb.search(f"{words}: what to do, response steps", doc_types=["procedure"], top_k=top_k)  # type: ignore[attr-defined]
        work_orders += past_work_orders(kb, sit.asset, modes, top_k, until)
        outcomes += past_outcomes(kb, sit.asset, modes, OUTCOMES_SHOWN, until)
        inspections += kb.search(  # type: ignore[attr-defined]
            f"{sit.asset} {words} inspection finding", doc_types=["inspection"], top_k=2, until=until
        )
        manuals += kb.search(  # type: ignore[attr-defined]
            f"{sit.asset} {words} alarm and trip limits", doc_types=["datasheet", "manual"], top_k=2
        )
    op = chosen.procedure
    if op in OPERATION_WORDS:
        procedures = kb.search(f"{OPERATION_WORDS[op]} procedure steps", doc_types=["procedure"], top_k=2) + procedures  # type: ignore[attr-defined]
    return Evidence(
        procedures=_unique(procedures),
        work_orders=_unique(work_orders),
        inspections=_unique(inspections),
        manuals=_unique(manuals),
        outcomes=_unique(outcomes),
    )


def _unique(passages: Iterable[Passage]) -> tuple[Passage, ...]:
    seen: dict[str, Passage] = {}
    for p in passages:
        seen.setdefault(p.id, p)
    return tuple(seen.values())


@dataclass(frozen=True)
class RecommendRun:
    """A recommendation with how it was found.

    Attributes:
        recommendation: The recommendation.
        evaluated: Scenarios simulated (fixed candidates and searched setpoints).
        seconds: Wall time, s.
        searched: The best searched setpoint candidate (None without a search or a feasible one).
        best_fixed: The best feasible fixed candidate (None when none is).
        state_ts: When the twin state it answers was taken (UTC, the plant's clock), None if unknown.
    """

    recommendation: Recommendation
    evaluated: int
    seconds: float
    searched: Candidate | None
    best_fixed: Candidate | None
    state_ts: pd.Timestamp | None = None


def run_notes(
    sits: Sequence[Situation],
    base: ScenarioOutcome,
    view: TwinView,
    refused: Sequence[Refusal],
    candidates: Sequence[Candidate],
) -> list[str]:
    """The recommendation's notes on how it was simulated: the twin, diagnosed NPSHr, derating, held refusals."""
    notes: list[str] = [f"simulated on the {view.basis}, line {view.line}"]
    offered = {c.name for c in candidates}
    notes += [f"{r.action}: {refusal_text(r)}; not proposed again yet" for r in refused if r.action in offered]
    for sit in sits:
        pt = _point(base, sit.pump_id) if sit.pump_id is not None else None
        seen = pt is not None and pt.running and abs(pt.npsh_margin_m) < NPSH_SEEN_M
        if sit.mode == "cavitation" and sit.diagnosed and pt is not None and seen:
            notes.append(
                f"{sit.asset} cavitates with margin left on its datasheet NPSHr: its NPSHr is taken as the "
                f"{pt.npsh_required_m:.1f} m it cavitates at now, scaled with its operating point in every candidate"
            )
    if view.derating is not None:
        d = view.derating
        notes.append(
            f"integrity: {d.features} assessed features; derated throughput {d.throughput_m3h:.0f} m3/h "
            f"(bound by {d.binding_feature}) is a hard limit"
        )
    return notes


def recommend(
    state: TwinState,
    view: TwinView,
    objective: Objective | None = None,
    *,
    kb: object | None = None,
    generator: object | None = None,
    search: bool = True,
    seed: int = 0,
    agent: object | None = None,
    refused: Sequence[Refusal] = (),
) -> RecommendRun:
    """The recommendation for ``view``'s line from the twin's state (see the module docstring).

    Args:
        state: The twin state with its alerts.
        view: The line of the twin to simulate on.
        objective: Weights of the score (default `Objective()`).
        kb: A `pumptwin.agents.retrieval.KnowledgeBase` (None: no evidence passages, noted).
        generator: A `pumptwin.agents.generate.Generator` for the text (None: grounded).
        search: Also search the continuous setpoints.
        seed: Seed of the setpoint search.
        agent: A `pumptwin.agents.generate.LLMConfig`: also run the tool-using agent
            (`pumptwin.agents.agent_tools.with_agent`), whose proposals the twin simulates and the
            same hard limits and objective judge.
        refused: Approved actions the twin's re-check refused or the plant did not deliver, still
            held (`held_refusals`): each is rejected with its reason wherever it comes up again
            (`hold_refused`).

    Returns:
        The recommendation and how it was found. Without an alert on the line the chosen action
        is ``no change``.
    """
    from pumptwin.agents.generate import write_justification

    t0 = time.perf_counter()
    objective = objective or Objective()
    sits = situations(state, view)
    actions = [base_action(sits), *fixed_actions(sits, view)]
    base, cands = simulate(actions, sits, view, objective)
    cands = prune(cands, base.throughput_m3h)
    evaluated = len(actions)
    searched, extra = None, []
    cands = hold_refused(cands, refused)
    if search and sits:
        searched, n = search_setpoints(sits, view, objective, base, seed=seed)
        switches, n_switch = search_switches(actions, cands, sits, view, objective, base, seed=seed)
        extra = [*([searched] if searched is not None else []), *switches]
        evaluated += n + n_switch
    extra = hold_refused(extra, refused)
    searched = extra[0] if searched is not None else None
    fixed_ok = [c for c in cands if c.feasible]
    best_fixed = rank(fixed_ok)[0] if fixed_ok else None
    ranked = rank([*cands, *extra])
    notes = run_notes(sits, base, view, refused, [*cands, *extra])
    chosen = ranked[0]
    keep = next((c for c in ranked if c.kind in ("base", "maintenance")), None)
    if keep is not None and keep.feasible and chosen is not keep and chosen.score - keep.score < objective.min_gain:
        notes.append(
            f"{chosen.name} would gain {chosen.score - keep.score:.3g} over keeping on, less than the "
            f"least gain worth acting on ({objective.min_gain:g})"
        )
        ranked = [keep, *[c for c in ranked if c is not keep]]
        chosen = keep
    if not chosen.feasible:
        notes.append("no candidate keeps every hard limit: the least harmful is shown, do not act on it unreviewed")
    evidence = Evidence(models=model_scores(state, [s.asset for s in sits]))
    if kb is not None and sits:
        try:
            found = gather_evidence(kb, sits, chosen, until=state.ts.date().isoformat())
            evidence = Evidence(
                found.procedures, found.work_orders, found.inspections, found.manuals, evidence.models, found.outcomes
            )
        except PumptwinError as exc:
            notes.append(f"knowledge store unavailable, no passages cited: {exc}")
    elif kb is None and sits:
        notes.append("no knowledge store given, no passages cited")
    rec = Recommendation(
        situation=tuple(line for s in sits for line in s.alerts),
        assets=tuple(s.asset for s in sits),
        chosen=chosen,
        alternatives=tuple(c for c in ranked[1:]),
        evidence=evidence,
        check=Check(),
        notes=tuple(notes),
    )
    if agent is not None and sits:
        from pumptwin.agents.agent_tools import TwinTools, with_agent

        tools = TwinTools(state, view, sits, objective, kb)
        rec = with_agent(rec, tools, agent)
    else:
        rec = write_justification(rec, generator)  # type: ignore[arg-type]
    return RecommendRun(rec, evaluated, time.perf_counter() - t0, searched, best_fixed, state.ts)
