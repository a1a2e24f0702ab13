"""Situations of the recommendation benchmark and the oracle that judges a recommendation on the plant.

A situation (`SituationSpec`) is one line of the plant simulator in a steady operating point
(duty speed, source tank level) with at most one hidden fault switched on part-way through at a
given severity (a fraction of the mode's magnitude at functional failure, `MODE_INFO`). They are
drawn from seeds (`draw_situations`): per seed every pump fault mode at two severities on
different pumps and speeds, leaks at several places and sizes, low suction pressure, and healthy
controls.

`prepare` runs the plant through the situation (a healthy stretch, then the fault) and folds its
readings into the twin (`twin.sync.fold_readings`), giving the twin state with its alerts and the
`TwinView` the recommender simulates on. Model scores name the true mode of a pump fault (the
classifier's verdict is an input here, not what is measured; physics evidence comes from the
readings).

The oracle (`plant_outcome`, `oracle`) applies each candidate action to a copy of the plant, as
an operator would through the control system (the pumps' speed setpoints, starts and stops as the
twin resolved the candidate), lets it settle and reads the plant's truth with clean instruments:
every pump's speed, flow, bearing temperature and vibration (the higher of the two bearings), its
true NPSH margin and % of BEP, the motor input power; the line's pressures are the plant's own
network solved at the pumps' true effective speeds and the true leak. The result is a
`ScenarioOutcome` that the recommender's own `judge` scores with the same objective weights and
hard-limit rules, against the plant's base case settled over the same time. Surge after a stop is
a transient the steady plant does not show: the oracle checks no surge.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from pumptwin.agents.evidence import Candidate
from pumptwin.agents.recommend import (
    Action,
    Objective,
    Situation,
    _setpoint_action,
    base_action,
    fixed_actions,
    judge,
)
from pumptwin.agents.twin_view import TwinView
from pumptwin.plant.health import MODE_INFO, Mode
from pumptwin.plant.scenario import FaultSpec, OperationsSpec, Scenario
from pumptwin.plant.sensors import SensorConfig
from pumptwin.plant.simulator import Plant
from pumptwin.twin.health.estimation import calibrated_network
from pumptwin.twin.health.state import TwinState
from pumptwin.twin.hydraulic.io import load_network
from pumptwin.twin.hydraulic.network import LinkStatus, Network
from pumptwin.twin.hydraulic.pumps import POR_FRACTIONS
from pumptwin.twin.sync import fold_readings, machine_conditions, operating_network, rated_speeds_rpm
from pumptwin.twin.whatif.limits import Limits
from pumptwin.twin.whatif.report import PumpPoint, ScenarioOutcome, Violation
from pumptwin.twin.whatif.resolve import run_scenarios
from pumptwin.twin.whatif.spec import LeakSpec, ScenarioSpec, SpeedChange

START = pd.Timestamp("2024-03-01T00:00:00Z")
STEP_S = 60.0
"""Plant time step, s."""
HEALTHY_S = 10 * 3600.0
"""Healthy stretch before the fault, s (the twin learns its baselines)."""
FAULT_S = 6 * 3600.0
"""Time the fault is present before the recommendation, s (bearing temperatures settle)."""
WINDOW_S = 900.0
"""Window the readings are folded in, s."""
SETTLE_S = 4 * 3600.0
"""Time a candidate action is left to settle on the plant before its truth is read, s."""
AVERAGE_S = 900.0
"""The truth is the mean over the last this many seconds of the settling time, s."""
SOURCE = "ORIGIN"
"""The source tank of the reference line (its head sets the first station's suction)."""
NOMINAL_SOURCE_HEAD_M = 64.0
POR_LOW_PCT, POR_HIGH_PCT = 100.0 * POR_FRACTIONS[0], 100.0 * POR_FRACTIONS[1]
"""Preferred operating region, % of BEP flow."""
DUTY_PUMPS = ("PS01.P1", "PS01.P2", "PS02.P1", "PS02.P2")
"""Pumps running at the start (the third of each station is the standby)."""
LOW_SUCTION_PUMPS = ("PS01.P1", "PS01.P2")
"""Pumps the source tank feeds."""
SPEEDS = (0.94, 1.0)
"""Range of duty speeds drawn (relative to rated): every NPSH margin comfortable when healthy."""
LOW_SUCTION_HEADS_M = (57.0, 60.0)
"""Range of source tank heads of the low-suction situations, m (NPSH margin about 1.5 to 5 m)."""
LEAK_NODES = ("KP010", "KP025", "KP040", "KP050", "KP070", "KP090", "KP105")
"""Junctions a leak may open at."""
SEVERITY_BANDS = ((0.35, 0.55), (0.7, 1.0))
"""Fault severities (fraction of the magnitude at functional failure) drawn per mode: a low and a high band."""
MODEL_VERSION = "bench-oracle-diagnosis"
"""Version written on the model scores that carry the true mode."""
RELATED_MODES: dict[str, frozenset[str]] = {
    "bearing_wear": frozenset({"bearing_wear", "vibration"}),
    "impeller_wear": frozenset({"impeller_wear"}),
    "cavitation": frozenset({"cavitation"}),
    "seal_failure": frozenset({"seal_failure"}),
    "motor_overheating": frozenset({"motor_overheating"}),
    "strainer_clog": frozenset({"strainer_clog", "cavitation"}),
    "leak": frozenset({"leak"}),
}
"""Corpus failure modes that speak of a true mode (a worn bearing shows as vibration)."""
CLEAN_SENSORS = SensorConfig(
    noise_scale=0.0,
    quantise=False,
    drift_fraction=0.0,
    stuck_per_tag_day=0.0,
    outage_per_station_day=0.0,
    dropout_rate=0.0,
    spike_rate=0.0,
    duplicate_rate=0.0,
    out_of_order_rate=0.0,
    questionable_rate=0.0,
    bad_rate=0.0,
    substituted_rate=0.0,
)
"""Instruments of the oracle's copies: the readings are the plant's truth."""
FIELD_SENSORS = SensorConfig(drift_fraction=0.0, stuck_per_tag_day=0.0, outage_per_station_day=0.0)
"""Instruments the twin reads: noise, quantisation, dropouts and flags, no drift or stuck tags."""


class SituationError(ValueError):
    """A situation that cannot be built; the message names it."""


@dataclass(frozen=True)
class SituationSpec:
    """One benchmark situation.

    Attributes:
        id: Unique name (``s1001-bearing_wear-hi``).
        seed: Seed of the plant (its hidden machine constants, its instruments).
        kind: ``fault``, ``leak``, ``low_suction`` or ``healthy``.
        mode: True failure mode (`Mode` value; ``cavitation`` for low suction; "" when healthy).
        target: Faulty pump (``PS01.P1``), leak junction (``KP040``) or "".
        severity: Fraction of the mode's magnitude at functional failure (leak: size in m3/h).
        speed: Duty speed of the running pumps, relative to rated.
        source_head_m: Head of the source tank, m (the first station's suction).
    """

    id: str
    seed: int
    kind: str
    mode: str
    target: str
    severity: float
    speed: float
    source_head_m: float = NOMINAL_SOURCE_HEAD_M

    @property
    def asset(self) -> str:
        """Asset at risk as the twin names it (a pump, ``LINE01`` for a leak, "" when healthy)."""
        if self.kind == "leak":
            return "LINE01"
        return self.target

    @property
    def assets(self) -> tuple[str, ...]:
        """Every asset really at risk: low suction starves both duty pumps of the first station."""
        if self.kind == "low_suction":
            return tuple(dict.fromkeys((self.target, *LOW_SUCTION_PUMPS)))
        return (self.asset,) if self.asset else ()


def draw_situations(seeds: Sequence[int]) -> list[SituationSpec]:
    """The situations of ``seeds``: 20 per seed, in a fixed order.

    Per seed: each of the six pump fault modes at a low and a high severity (different duty
    pumps and speeds), three leaks (places and sizes), two low suction pressures (one with an
    NPSHr rise) and three healthy controls.
    """
    out: list[SituationSpec] = []
    modes = [m.value for m in Mode if m is not Mode.LEAK]
    for seed in seeds:
        rng = np.random.default_rng([seed, 4242])
        pumps = list(rng.permutation(DUTY_PUMPS))
        k = 0
        for mode in modes:
            for band, tag in zip(SEVERITY_BANDS, ("lo", "hi"), strict=True):
                pump = str(pumps[k % len(pumps)])
                k += 1
                sev = float(np.round(rng.uniform(*band), 2))
                speed = float(np.round(rng.uniform(*SPEEDS), 3))
                out.append(SituationSpec(f"s{seed}-{mode}-{tag}", seed * 100 + k, "fault", mode, pump, sev, speed))
        for i, node in enumerate(rng.choice(LEAK_NODES, 3, replace=False)):
            size = float(np.round(rng.uniform(15.0, 60.0), 1))
            speed = float(np.round(rng.uniform(*SPEEDS), 3))
            out.append(
                SituationSpec(f"s{seed}-leak-{node}", seed * 100 + 20 + i, "leak", "leak", str(node), size, speed)
            )
        for i in range(2):
            head = float(np.round(rng.uniform(*LOW_SUCTION_HEADS_M), 1))
            pump = str(rng.choice(LOW_SUCTION_PUMPS))
            sev = 0.4 if i else 0.0
            speed = float(np.round(rng.uniform(0.95, 1.0), 3))
            out.append(
                SituationSpec(
                    f"s{seed}-low_suction-{i}", seed * 100 + 30 + i, "low_suction", "cavitation", pump, sev, speed, head
                )
            )
        for i in range(3):
            speed = float(np.round(rng.uniform(*SPEEDS), 3))
            out.append(SituationSpec(f"s{seed}-healthy-{i}", seed * 100 + 40 + i, "healthy", "", "", 0.0, speed))
    return out


QUICK_KINDS = (
    "bearing_wear-hi",
    "impeller_wear-hi",
    "cavitation-hi",
    "strainer_clog-hi",
    "motor_overheating-hi",
    "leak-",
    "low_suction-0",
    "healthy-0",
)
"""Situations of a quick run (one seed): one per kind, by id fragment."""


def quick_situations(seed: int) -> list[SituationSpec]:
    """Eight situations of one seed: five pump faults at high severity, a leak, low suction, a healthy control."""
    every = draw_situations([seed])
    out = []
    for frag in QUICK_KINDS:
        out.append(next(s for s in every if frag in s.id))
    return out


def scenario_of(spec: SituationSpec) -> Scenario:
    """The plant scenario of a situation: steady duty speed, no nominations, the fault at `HEALTHY_S`."""
    faults: tuple[FaultSpec, ...] = ()
    if spec.kind == "leak":
        faults = (FaultSpec(Mode.LEAK, f"LINE01.{spec.target}", HEALTHY_S, HEALTHY_S, "step", spec.severity, False),)
    elif spec.mode and spec.severity > 0:
        mode = Mode(spec.mode)
        magnitude = spec.severity * MODE_INFO[mode].magnitude
        faults = (FaultSpec(mode, spec.target, HEALTHY_S, HEALTHY_S, "step", magnitude, False),)
    return Scenario(
        name=spec.id,
        start=START,
        duration_s=HEALTHY_S + FAULT_S,
        step_s=STEP_S,
        seed=spec.seed,
        operations=OperationsSpec(speed=spec.speed, daily_swing=0.0, nomination_s=0.0, auto_standby=False),
        faults=faults,
        sensors=FIELD_SENSORS,
    )


def network_of(spec: SituationSpec, base: Network | None = None) -> Network:
    """The reference network with the situation's source tank level (known to the operator)."""
    net = base if base is not None else load_network()
    if spec.source_head_m == NOMINAL_SOURCE_HEAD_M:
        return net
    tanks = tuple(replace(r, head_m=spec.source_head_m) if r.id == SOURCE else r for r in net.reservoirs)
    return replace(net, reservoirs=tanks)


def diagnosis_scores(spec: SituationSpec, now: pd.Timestamp) -> pd.DataFrame | None:
    """Model scores naming the true mode of a fault (None for a healthy control).

    The probability grows with the severity, from 0.55 at the lowest to 0.95 at failure.
    """
    if not spec.mode:
        return None
    p = float(np.clip(0.5 + 0.45 * max(spec.severity if spec.kind != "leak" else 1.0, 0.1), 0.0, 0.95))
    return pd.DataFrame(
        {
            "asset": [spec.asset],
            f"p_{spec.mode}": [p],
            "model_version": [MODEL_VERSION],
            "event_timestamp": [now],
        }
    )


@dataclass
class Prepared:
    """A situation run on the plant and folded into the twin.

    Attributes:
        spec: The situation.
        plant: The plant at the moment of the recommendation (readings read).
        state: The twin state.
        view: The twin's line, ready to simulate.
        readings: Readings folded.
    """

    spec: SituationSpec
    plant: Plant
    state: TwinState
    view: TwinView
    readings: int


def prepare(spec: SituationSpec) -> Prepared:
    """Run the plant through the situation and fold its readings into the twin.

    Raises:
        SituationError: No readings were folded.
    """
    network = network_of(spec)
    plant = Plant(scenario_of(spec), network=network)
    plant.advance(HEALTHY_S + FAULT_S)
    readings = plant.read_tags()
    now = START + pd.Timedelta(seconds=HEALTHY_S + FAULT_S)
    scores = diagnosis_scores(spec, now - pd.Timedelta(seconds=WINDOW_S))
    cal, state, _ = fold_readings(None, readings, plant.registry, network, WINDOW_S, scores=scores, now=now)
    if state is None:
        raise SituationError(f"situation {spec.id}: no readings folded")
    current = operating_network(network, cal, 1)
    view = TwinView(
        network=calibrated_network(current, cal, 1),
        registry=plant.registry,
        line=1,
        conditions=machine_conditions(cal, plant.registry, network, 1),
        rated_speed_rpm=rated_speeds_rpm(plant.registry, 1),
        basis=f"calibrated twin (calibration of {cal.ts})",
    )
    return Prepared(spec, plant, state, view, len(readings))


def true_situations(spec: SituationSpec, view: TwinView, seen: Sequence[Situation]) -> list[Situation]:
    """The situation as it really is: the true asset and mode; the twin's severity when it saw the asset, else 1."""
    out = []
    for asset in spec.assets:
        pump = view.pump(asset)
        severity = next((s.severity for s in seen if s.asset == asset), 1.0)
        out.append(
            Situation(
                asset=asset,
                mode=spec.mode,
                severity=severity,
                level="alarm",
                pump_id=pump.pump_id if pump is not None else None,
                alerts=(),
            )
        )
    return out


def actions_of(
    names: Mapping[str, tuple[str, Mapping[str, float]]], sits: Sequence[Situation], view: TwinView
) -> dict[str, Action]:
    """The actions behind candidate names: ``{name: (kind, setpoints)}`` to `Action` (unknown names left out).

    Fixed candidates are rebuilt from the recommender's own lists; searched setpoints and searched
    switches to standby from their relative speeds by pump asset name (0: the pump stopped).
    """
    known = {a.name: a for a in (base_action(sits), *fixed_actions(sits, view))}
    ids = {p.name: p.pump_id for p in view.pumps}
    out: dict[str, Action] = {}
    for name, (kind, setpoints) in names.items():
        if name in known:
            out[name] = known[name]
        elif kind == "setpoint" and setpoints:
            action = _setpoint_action({ids[a]: float(s) for a, s in setpoints.items() if a in ids}, view)
            out[name] = replace(action, name=name, kind=kind)
        elif kind == "standby" and setpoints:  # a searched switch: the pump stopped, the others' speeds set
            speeds = {ids[a]: float(s) for a, s in setpoints.items() if a in ids}
            spec = ScenarioSpec(
                name=name,
                stop=tuple(sorted(p for p, s in speeds.items() if s <= 0)),
                speeds=tuple(view.speed_change(p, s) for p, s in sorted(speeds.items()) if s > 0),
            )
            out[name] = Action(name, kind, spec, setpoints=dict(setpoints), out_of_service=0.5, stops=True)
        elif kind == "base":
            out[name] = Action(name, "base", ScenarioSpec(name="base case"))
    return out


# --------------------------------------------------------------------------------------------
# The plant's truth after an action
# --------------------------------------------------------------------------------------------


def commands(twin_outcome: ScenarioOutcome, view: TwinView) -> dict[str, float]:
    """Speed setpoints in rpm by pump asset name that carry out a resolved candidate (0: stop)."""
    names = {p.pump_id: p.name for p in view.pumps}
    out: dict[str, float] = {}
    for pt in twin_outcome.pumps:
        if pt.pump in names:
            rated = view.rated_speed_rpm.get(pt.pump, 1480.0)
            out[names[pt.pump]] = float(pt.speed * rated) if pt.running else 0.0
    return out


def apply(plant: Plant, setpoints: Mapping[str, float]) -> Plant:
    """A copy of ``plant`` with clean instruments, the setpoints written and settled for `SETTLE_S`."""
    twin = copy.deepcopy(plant)
    twin.scenario = replace(twin.scenario, sensors=CLEAN_SENSORS)
    now = {p.name: p for p in twin.registry.pumps}
    for asset, rpm in setpoints.items():
        if asset in now:
            twin.write_setpoint(asset, rpm)
    twin.advance(SETTLE_S)
    return twin


def _mean_by_tag(readings: pd.DataFrame, since: pd.Timestamp) -> dict[str, float]:
    ts = pd.to_datetime(readings["ts"], utc=True)
    recent = readings[(ts >= since).to_numpy()]
    return {str(k): float(v) for k, v in recent.groupby("tag")["value"].mean().items()}


def plant_outcome(plant: Plant, name: str, setpoints: Mapping[str, float], view: TwinView) -> ScenarioOutcome:
    """The plant's truth after carrying out ``setpoints`` and settling, as a `ScenarioOutcome`.

    Line quantities (throughput, pressure profile, MAOP margin, vapour) come from the plant's
    network solved at the pumps' true effective speeds (speed x (1 - impeller wear)) and the
    true leak flow; pump quantities from the clean readings and the hidden state.
    """
    settled = apply(plant, setpoints)
    readings = settled.read_tags()
    since = settled.now - pd.Timedelta(seconds=AVERAGE_S)
    tags = _mean_by_tag(readings, since)
    truth = settled.ground_truth()
    last = truth.pumps[truth.pumps["ts"] == truth.pumps["ts"].max()].set_index("asset")
    reg = {p.name: p for p in settled.registry.pumps if p.line == 1}
    network = settled.network
    in_net = {p.id: p.status != LinkStatus.CLOSED for p in network.pumps}
    speeds, stop, start = [], [], []
    for asset, spec in reg.items():
        row = last.loc[asset]
        running = bool(row["running"])
        if running:
            eff = float(row["speed"]) * (1.0 - float(row["impeller_wear"]))
            speeds.append(SpeedChange(spec.pump_id, rpm=eff * spec.rated_speed_rpm))
            if not in_net.get(spec.pump_id, False):
                start.append(spec.pump_id)
        elif in_net.get(spec.pump_id, False):
            stop.append(spec.pump_id)
    leaks: tuple[LeakSpec, ...] = ()
    if not truth.leaks.empty:
        lk = truth.leaks[truth.leaks["ts"] == truth.leaks["ts"].max()]
        leaks = tuple(
            LeakSpec(node=str(a).split(".", 1)[1], flow_m3s=float(q) / 3600.0)
            for a, q in zip(lk["asset"], lk["leak_m3h"], strict=True)
            if q > 0
        )
    rated = {p.pump_id: p.rated_speed_rpm for p in reg.values()}
    scenario = ScenarioSpec(name=name, speeds=tuple(speeds), stop=tuple(stop), start=tuple(start), leaks=leaks)
    line = run_scenarios(
        network, [scenario], rated_speed_rpm=rated, ambient_c=view.ambient_c, limits=view.limits, include_base=False
    ).outcomes[0]
    points = []
    violations = [v for v in line.violations if v.limit in ("MAOP", "VAPOUR")]
    lim: Limits = view.limits
    for pt in line.pumps:
        owner = next((a for a, s in reg.items() if s.pump_id == pt.pump), None)
        if owner is None:
            points.append(pt)
            continue
        row = last.loc[owner]
        running = bool(row["running"])
        vib = max(tags.get(f"{owner}.VIB_DE_RMS", math.nan), tags.get(f"{owner}.VIB_NDE_RMS", math.nan))
        brg = max(tags.get(f"{owner}.BRG_DE_TEMP", math.nan), tags.get(f"{owner}.BRG_NDE_TEMP", math.nan))
        power = tags.get(f"{owner}.MOTOR_POWER", 0.0) if running else 0.0
        margin = float(row["npsh_margin_m"]) if running else math.nan
        bep = float(row["percent_bep"]) if running else math.nan
        spec_p = reg[owner]
        point = replace(
            pt,
            running=running,
            speed=float(row["speed"]) if running else 0.0,
            speed_rpm=float(row["speed"]) * spec_p.rated_speed_rpm if running else 0.0,
            flow_m3h=tags.get(f"{owner}.FLOW", 0.0) if running else 0.0,
            shaft_power_kw=power,
            percent_bep=bep,
            in_por=bool(running and POR_LOW_PCT <= bep <= POR_HIGH_PCT),
            npsh_margin_m=margin,
            npsh_available_m=margin + pt.npsh_required_m if running else math.nan,
            vibration_mm_s=vib if running else vib,
            vibration_zone=lim.zones.zone(vib) if running else "-",
            bearing_c=brg,
        )
        points.append(point)
        if running:
            violations += _pump_violations(point, spec_p.min_speed, spec_p.max_speed, lim)
    power_kw = float(sum(p.shaft_power_kw for p in points))
    thr = line.throughput_m3h
    return replace(
        line,
        pumps=tuple(points),
        power_kw=power_kw,
        specific_energy_kwh_m3=power_kw / thr if thr > 0 else math.nan,
        violations=tuple(violations),
    )


def _pump_violations(point: PumpPoint, min_speed: float, max_speed: float, lim: Limits) -> list[Violation]:
    """The hard limits of a running pump, as the twin checks them, on the plant's truth."""
    out = []
    pid = point.pump
    if math.isfinite(point.npsh_margin_m) and point.npsh_margin_m < lim.min_npsh_margin_m:
        out.append(Violation("NPSH", pid, point.npsh_margin_m, lim.min_npsh_margin_m, "m margin"))
    if math.isfinite(point.percent_bep) and not point.in_por:
        edge = POR_LOW_PCT if point.percent_bep < POR_LOW_PCT else POR_HIGH_PCT
        out.append(Violation("POR", pid, point.percent_bep, edge, "% of BEP"))
    if math.isfinite(point.vibration_mm_s) and point.vibration_mm_s >= lim.zones.bc_mm_s:
        out.append(Violation("VIBRATION", pid, point.vibration_mm_s, lim.zones.bc_mm_s, "mm/s"))
    if math.isfinite(point.bearing_c) and point.bearing_c > lim.bearing_alarm_c:
        out.append(Violation("BEARING", pid, point.bearing_c, lim.bearing_alarm_c, "C"))
    if point.speed < min_speed - 1e-6 or point.speed > max_speed + 1e-6:
        out.append(Violation("SPEED", pid, point.speed, min_speed if point.speed < min_speed else max_speed, "x rated"))
    return out


@dataclass(frozen=True)
class OracleVerdict:
    """Every candidate of a recommendation judged on the plant.

    Attributes:
        candidates: Plant-judged candidate by name (rejected when a hard limit breaks on the plant).
        best: Name of the feasible candidate with the highest plant score ("" when none is feasible).
        base: The plant's outcome without change.
    """

    candidates: dict[str, Candidate]
    best: str
    base: ScenarioOutcome


def oracle(
    prepared: Prepared,
    actions: Mapping[str, Action],
    sits: Sequence[Situation],
    objective: Objective,
) -> OracleVerdict:
    """Simulate every action on the plant and score it with the recommender's objective and rules.

    The twin resolves each action to speeds and starts/stops (throughput targets included); the
    plant runs them. A healthy control's best is the base case by definition (no change).
    """
    view = prepared.view
    names = list(actions)
    report = view.simulate([actions[n].spec for n in names])
    twin_base, resolved = report.outcomes[0], report.outcomes[1:]
    base = plant_outcome(prepared.plant, "base case", commands(twin_base, view), view)
    judged = {}
    for name, outcome in zip(names, resolved, strict=True):
        action = actions[name]
        setpoints = commands(twin_base if action.kind in ("base", "maintenance") else outcome, view)
        truth = plant_outcome(prepared.plant, name, setpoints, view)
        judged[name] = judge(action, truth, base, sits, view, objective, backoff=False)
    feasible = [c for c in judged.values() if c.feasible]
    if not prepared.spec.mode:
        best = next((n for n, a in actions.items() if a.kind in ("base", "maintenance")), "")
    else:
        best = max(feasible, key=lambda c: (c.score, c.name)).name if feasible else ""
    return OracleVerdict(judged, best, base)
