"""Benchmark: does the closed loop pay? Fault episodes run three ways on the same plant histories.

``python -m benchmarks.loop`` draws episodes from seeds (`benchmarks.loop_episodes`): per seed one
fault of every pump mode of the plant (`pumptwin.plant.health.PUMP_MODES`) with load-dependent
stress wear on (the damage clock runs at (s / s_duty)^p while the pump turns and stands still while
it is stopped; the protection trips when it reaches the failure time), plus a healthy episode.
Each episode is run three ways on the same plant (same seed, same nominations):

- ``alarms``: conventional alarms only; the plant runs until its protection trips (the standby
  starts on its own after a trip) and nothing is asked of maintenance ahead of time;
- ``approver``: the loop with an approver who answers every request `LoopSettings.approver_delay_s`
  after it is made: approves what the twin finds feasible, rejects the rest, a controlled shut-down
  of the whole line (`APPROVER_REJECTS`) and any start of a pump tagged out for maintenance (one
  the loop took out of service and asked maintenance for);
- ``auto``: the loop with automatic implementation inside the guardrails
  (`pumptwin.control.approval.AutoPolicy`, `auto_verdict`); what the policy refuses waits for the
  approver as in ``approver``.

The loop runs every `LoopSettings.cycle_s` of plant time: the historian's readings since the last
cycle are folded into the twin (`pumptwin.twin.sync.fold_readings`, as the twin-sync flow does,
without model scores, Prefect, MLflow or Feast), the twin's line is built as the recommend flow
builds it, and `pumptwin.agents.recommend.recommend` (setpoint search on, no knowledge store: its
no-store path) chooses an action for a line with alerts. The request is decided per the way and an
approved action is written through `pumptwin.control.interlocks.Interlocked` on a
`pumptwin.control.simulated.SimulatedController` (ramped, read back, rolled back on failure). As
the implement flow does, an approved answer is first brought up to date (a switch to standby hands
the running pump's speed now to its standby, `pumptwin.control.approval.like_for_like`) and
simulated again on the twin synced at that moment (`pumptwin.agents.recommend.check_speeds`):
when it now breaks a hard limit nothing is written, and the next cycles recommend afresh without
proposing that action again for ``agents.refusal_hold_s`` (`pumptwin.agents.recommend.held_refusals`,
as the recommend flow reads the refusals from the audit log).

**Maintenance.** Planned windows recur every `benchmarks.loop_episodes.WINDOW_PERIOD_S`; at a
window every pump the loop asked maintenance for (an asset at risk of an approved or automatically
implemented request, including ``keep running, schedule maintenance``) is repaired: its fault is
removed and a trip lock-out reset. The episode ends at the first window after the fault's nominal
failure. A functional failure counts as **avoided** when the faulty pump did not trip before the
window and maintenance was asked for it (so it was repaired there); the weaker reading, no trip
before the window, is reported beside it.

Reported per way, over the episodes: failures avoided (share of fault episodes), trips, unplanned
downtime (h from each trip to the window that repairs it), throughput lost (% of what the same
plant without the fault delivers at the same nominations), pumping energy (MWh, motor input),
actions taken on healthy assets (implemented writes, and maintenance asked, for pumps without a
fault), hard-limit violations on the plant's own readings and truth (minutes: 10-minute medians of
a line pressure above MAOP or above the surge limit of 110 % MAOP, of a running pump's speed outside
its range; the truth's NPSH margin of a running pump under `Limits.min_npsh_margin_m`, on pumps
other than the faulty one, the faulty pump's own is reported apart as the fault itself), first
alert on the faulty pump before the nominal failure, and the wall time. Targets: at least 80 % of
the failures avoided with the loop, throughput loss under 2 %, no hard-limit violation. Each
episode's log lists every request with the twin's alarms that raised it (``alerts``).

The twin sees what its calibrated physics shows (bearing thermal drift, vibration excess, impeller
wear, efficiency loss, NPSH margin, seal leak, strainer loss, winding rise, the line's evidence),
without the model scores of the score flow. ``--diagnosis oracle`` adds a stand-in
classifier that names the true mode (an upper bound of what diagnosis models can add, not a
measurement of them). When the auto way never implements anything itself, every one of its
requests waited for the approver, so the approver way is the same run step for step and is not
run again (the row says ``same_run_as``).

``--quick`` runs three short episodes of one seed (a smoke test); ``--seeds`` picks the seeds;
``--jobs`` runs episodes in parallel processes. The JSON goes to
``<PUMPTWIN_HOME>/bench/loop.json`` (``--out`` to change it) and a markdown table is printed.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.figures import write_figures
from benchmarks.loop_episodes import (
    FAULT_DAYS,
    HEALTHY_S,
    ORACLE_SEVERITY,
    STEP_S,
    WINDOW_AFTER_S,
    WINDOW_PERIOD_S,
    EpisodeSpec,
    draw_episodes,
    oracle_scores,
    scenario_of,
)
from pumptwin.agents.recommend import Objective, Refusal, check_speeds, held_refusals, recommend
from pumptwin.agents.twin_view import TwinView
from pumptwin.control.approval import NO_ACTION_KINDS, AutoPolicy, auto_verdict, like_for_like, target_speeds
from pumptwin.control.interlocks import Interlocked, InterlockSettings
from pumptwin.control.simulated import SimulatedController
from pumptwin.flows.implement_steps import current_speeds, writes_for
from pumptwin.plant.health import STRESS_EXPONENT, Mode
from pumptwin.plant.simulator import Plant
from pumptwin.twin.health.estimation import calibrated_network
from pumptwin.twin.health.state import TwinState
from pumptwin.twin.hydraulic.io import load_network
from pumptwin.twin.hydraulic.network import Network
from pumptwin.twin.sync import alerted_lines, fold_readings, machine_conditions, operating_network, rated_speeds_rpm
from pumptwin.twin.whatif.limits import Limits

WAYS: tuple[str, ...] = ("alarms", "approver", "auto")
"""The three ways an episode is run."""
DEFAULT_SEEDS = (11, 12, 13, 14)
"""Seeds of a full run: 4 x 6 fault episodes and 4 healthy ones."""
QUICK_SEED = 11
QUICK_MODES = ("bearing_wear", "seal_failure")
"""Fault modes of a quick run (with the seed's healthy episode)."""
TARGETS = {"avoided_share": 0.8, "throughput_lost_pct": 2.0, "hard_limit_violation_min": 0}
SURGE_FACTOR = 1.1
"""Surge limit over MAOP."""
MEDIAN_S = 600.0
"""Readings are judged against hard limits as medians over this many seconds (one spike is not a violation)."""
LINE = 1
APPROVER_REJECTS: tuple[str, ...] = ("shutdown",)
"""Kinds of action the simulated approver always rejects: a controlled shut-down of the whole line."""


@dataclass(frozen=True)
class LoopSettings:
    """How the loop runs in the benchmark.

    Attributes:
        cycle_s: Plant time between cycles (readings -> twin -> recommendation), s.
        approver_delay_s: Time the approver takes to answer a request, s.
        fold_window_s: Window the readings are folded in, s (as the twin-sync flow).
        search: Setpoint search of the recommender.
        policy: Guardrails of automatic implementation (way ``auto``).
        interlocks: Interlock settings of every write.
        diagnosis: ``none``: the twin's physics evidence only; ``oracle``: also a stand-in failure-mode
            classifier's scores (`benchmarks.loop_episodes.oracle_scores`: the true mode of the faulty
            pump once its true severity passes `ORACLE_SEVERITY`, never a false one).
        refusal_hold_s: How long an approved action the twin's re-check refused is not proposed
            again, s (``agents.refusal_hold_s``, as the recommend flow holds it).
    """

    cycle_s: float = 6 * 3600.0
    approver_delay_s: float = 4 * 3600.0
    fold_window_s: float = 900.0
    search: bool = True
    policy: AutoPolicy = field(default_factory=AutoPolicy)
    interlocks: InterlockSettings = field(default_factory=InterlockSettings)
    diagnosis: str = "none"
    refusal_hold_s: float = 12 * 3600.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings."""
        return {
            "cycle_h": self.cycle_s / 3600.0,
            "approver_delay_h": self.approver_delay_s / 3600.0,
            "fold_window_s": self.fold_window_s,
            "search": self.search,
            "auto_policy": {
                "max_speed_change": self.policy.max_speed_change,
                "kinds": list(self.policy.kinds),
                "require_feasible": self.policy.require_feasible,
            },
            "interlocks": asdict(self.interlocks),
            "diagnosis": self.diagnosis,
            "refusal_hold_h": self.refusal_hold_s / 3600.0,
        }


# --------------------------------------------------------------------------------------------
# Metering a run
# --------------------------------------------------------------------------------------------


def maop_bar_by_tag(network: Network, plant: Plant) -> dict[str, float]:
    """MAOP in bar g at each line pressure meter of line 1: the least MAOP of the pipes at its node."""
    out: dict[str, float] = {}
    for m in plant.registry.meters:
        if m.line != LINE or m.measure != "PRESS":
            continue
        maops = [p.maop_pa for p in network.pipes if m.element in (p.start, p.end) and p.maop_pa is not None]
        if maops:
            out[m.tag] = min(maops) / 1e5
    return out


@dataclass
class Meter:
    """Running totals of what the plant did, from its readings (and, for the NPSH margin, its truth).

    Attributes:
        maop_bar: MAOP by line pressure tag, bar g.
        rated_rpm: Rated speed by pump, rpm.
        ranges: Allowed relative speed range by pump.
        faulty: The faulty pump ("" when none).
        energy_mwh: Motor input energy of every pump.
        violations_min: Minutes of hard-limit violation by limit.
    """

    maop_bar: Mapping[str, float]
    rated_rpm: Mapping[str, float]
    ranges: Mapping[str, tuple[float, float]]
    faulty: str
    energy_mwh: float = 0.0
    violations_min: dict[str, float] = field(
        default_factory=lambda: {"MAOP": 0.0, "SURGE": 0.0, "SPEED": 0.0, "NPSH": 0.0, "NPSH (faulty pump)": 0.0}
    )
    npsh_assets: set[str] = field(default_factory=set)

    def add(self, readings: pd.DataFrame) -> None:
        """Add a batch of readings (``tag, ts, value, quality``)."""
        if readings.empty:
            return
        good = readings[np.isfinite(readings["value"].to_numpy(dtype=np.float64))]
        ts = pd.to_datetime(good["ts"], utc=True)
        span_h = max((ts.max() - ts.min()).total_seconds() + STEP_S, 0.0) / 3600.0
        tags = good["tag"].to_numpy()
        power = good[np.char.endswith(tags.astype(str), ".MOTOR_POWER")]
        if not power.empty:
            self.energy_mwh += float(power.groupby("tag")["value"].mean().sum()) * span_h / 1000.0
        frame = good.assign(ts=ts).set_index("ts")
        rule = f"{int(MEDIAN_S)}s"
        med = frame.groupby("tag")["value"].resample(rule).median().dropna()
        status = frame[np.char.endswith(frame["tag"].to_numpy().astype(str), ".STATUS")]
        least = status.groupby("tag")["value"].resample(rule).min().dropna()
        minutes = MEDIAN_S / 60.0
        for tag, maop in self.maop_bar.items():
            if tag in med.index.get_level_values(0):
                v = med.loc[tag].to_numpy()
                self.violations_min["MAOP"] += minutes * float(np.sum(v > maop))
                self.violations_min["SURGE"] += minutes * float(np.sum(v > SURGE_FACTOR * maop))
        level0 = med.index.get_level_values(0)
        for pump, rpm in self.rated_rpm.items():
            s_tag, on_tag = f"{pump}.SPEED", f"{pump}.STATUS"
            if s_tag not in level0 or on_tag not in least.index.get_level_values(0):
                continue
            speed = med.loc[s_tag] / rpm
            on = least.loc[on_tag].reindex(speed.index) >= 0.5  # noqa: PLR2004 - running the whole bucket
            lo, hi = self.ranges[pump]
            bad = on & ((speed < lo - 0.01) | (speed > hi + 0.01))
            self.violations_min["SPEED"] += minutes * float(bad.sum())

    def add_truth(self, pumps: pd.DataFrame, limits: Limits, period_s: float) -> None:
        """Add the NPSH-margin minutes of the hidden truth table (running pumps, margin under the limit)."""
        run = pumps[pumps["running"].astype(bool)]
        low = run[run["npsh_margin_m"] < limits.min_npsh_margin_m]
        on_faulty = low["asset"] == self.faulty
        self.violations_min["NPSH"] += period_s / 60.0 * float((~on_faulty).sum())
        self.npsh_assets.update(str(a) for a in low.loc[~on_faulty, "asset"])
        self.violations_min["NPSH (faulty pump)"] += period_s / 60.0 * float(on_faulty.sum())


def delivered_m3(truth_pumps: pd.DataFrame, period_s: float, station: str = "PS01") -> float:
    """Volume pumped into the line (the first station's pumps' flow, from the plant's truth), m3."""
    rows = truth_pumps[truth_pumps["asset"].str.startswith(station + ".")]
    return float(rows["flow_m3h"].sum()) * period_s / 3600.0


# --------------------------------------------------------------------------------------------
# One way of one episode
# --------------------------------------------------------------------------------------------


@dataclass
class _Request:
    """A request waiting for the approver."""

    action: str
    kind: str
    feasible: bool
    setpoints: dict[str, float]
    assets: tuple[str, ...]
    answer_at_s: float


@dataclass
class _Loop:
    """The loop's state over one episode."""

    plant: Plant
    controller: SimulatedController
    network: Network
    spec: EpisodeSpec
    way: str
    settings: LoopSettings
    objective: Objective
    meter: Meter
    cal: Any = None
    state: TwinState | None = None
    pending: _Request | None = None
    maintenance: set[str] = field(default_factory=set)
    repaired: list[tuple[str, float]] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)
    first_alert_s: float | None = None
    recommend_s: float = 0.0
    recommendations: int = 0
    refusals: list[Refusal] = field(default_factory=list)

    # ---------------------------------------------------------------- cycle

    def sync(self) -> None:
        """Fold the historian's readings since the last sync into the twin, as the twin-sync flow does."""
        readings = self.plant.read_tags()
        self.meter.add(readings)
        scores = oracle_scores(self.spec, self.plant) if self.settings.diagnosis == "oracle" else None
        self.cal, self.state, _ = fold_readings(
            self.cal,
            readings,
            self.plant.registry,
            self.network,
            self.settings.fold_window_s,
            state=self.state,
            scores=scores,
            now=self.plant.now,
        )
        alerted = {a.asset for a in self.state.alerts} if self.state is not None else set()
        if self.first_alert_s is None and self.spec.target in alerted:
            self.first_alert_s = self.plant.elapsed_s

    def cycle(self) -> None:
        self.sync()
        registry = self.plant.registry
        state = self.state
        if state is None:
            return
        alerted = {a.asset for a in state.alerts}
        if self.pending is not None or LINE not in alerted_lines(state, registry):
            return
        ctl = self.controller
        pumps_alerted = [p.name for p in registry.pumps if p.name in alerted and p.line == LINE]
        if pumps_alerted and all(p in self.maintenance and not ctl.running(p) for p in pumps_alerted):
            return  # out of service, waiting for the window
        view = self.view()
        held = held_refusals(self.refusals, self.plant.now, self.settings.refusal_hold_s)
        run = recommend(state, view, self.objective, kb=None, search=self.settings.search, seed=0, refused=held)
        self.recommend_s += run.seconds
        self.recommendations += 1
        rec = run.recommendation
        chosen = rec.chosen
        if chosen.kind == "base":
            return
        base = next((c for c in (chosen, *rec.alternatives) if c.kind in NO_ACTION_KINDS), None)
        setpoints = {} if chosen.kind in NO_ACTION_KINDS else target_speeds(chosen, base)
        assets = tuple(a for a in rec.assets if a.count(".") == 1)
        entry = {
            "t_h": round(self.plant.elapsed_s / 3600.0, 2),
            "action": chosen.name,
            "kind": chosen.kind,
            "feasible": chosen.feasible,
            "assets": list(rec.assets),
            "alerts": sorted(f"{a.asset} {a.source} {a.value:.3g}" for a in state.alerts if a.level == "alarm"),
        }
        if self.way == "auto" and setpoints:
            cand = replace(chosen, setpoints=setpoints)
            ok, reasons = auto_verdict(cand, current_speeds(ctl, sorted(setpoints)), self.settings.policy)
            if ok:
                entry["decided"] = "auto"
                entry["result"] = self.implement(setpoints, assets)
                self.log.append(entry)
                return
            entry["auto_refused"] = reasons[0] if reasons else ""
        answer_at = self.plant.elapsed_s + self.settings.approver_delay_s
        self.pending = _Request(chosen.name, chosen.kind, chosen.feasible, setpoints, assets, answer_at)
        entry["decided"] = "waits for the approver"
        self.log.append(entry)

    def view(self) -> TwinView:
        """The twin's line as the recommend flow builds it from the calibration."""
        registry = self.plant.registry
        current = operating_network(self.network, self.cal, LINE)
        return TwinView(
            network=calibrated_network(current, self.cal, LINE),
            registry=registry,
            line=LINE,
            conditions=machine_conditions(self.cal, registry, self.network, LINE),
            rated_speed_rpm=rated_speeds_rpm(registry, LINE),
            basis=f"calibrated twin (calibration of {self.cal.ts})",
        )

    def answer(self) -> None:
        """The approver's answer to the pending request: approve what the twin finds feasible."""
        req = self.pending
        assert req is not None
        self.pending = None
        entry: dict[str, Any] = {
            "t_h": round(self.plant.elapsed_s / 3600.0, 2),
            "action": req.action,
            "assets": list(req.assets),
        }
        tagged_out = sorted(
            p for p, v in req.setpoints.items() if v > 0 and p in self.maintenance and not self.controller.running(p)
        )
        if not req.feasible:
            entry["decided"] = "rejected by the approver (the twin finds a hard limit broken)"
        elif req.kind in APPROVER_REJECTS:
            entry["decided"] = f"rejected by the approver ({req.kind}: out of proportion to the alerts)"
        elif tagged_out:
            entry["decided"] = f"rejected by the approver ({', '.join(tagged_out)} tagged out for maintenance)"
        else:
            line = [p.name for p in self.plant.registry.pumps if p.line == LINE]
            now = current_speeds(self.controller, line)
            speeds = like_for_like(req.kind, req.setpoints, now)
            if refused := self.recheck(speeds, now):
                entry["decided"] = f"approved, not written: the twin now finds {refused}"
                self.refusals.append(Refusal(req.action, self.plant.now, refused))
            else:
                entry["decided"] = "approved"
                entry["result"] = self.implement(speeds, req.assets) if speeds else "maintenance asked"
                if not speeds:
                    self.maintenance.update(req.assets)
        self.log.append(entry)

    def recheck(self, speeds: Mapping[str, float], now: Mapping[str, float]) -> str:
        """What the implement flow checks before writing an approved answer: the speeds on the twin synced now.

        Returns the first hard limit the speeds break on the plant as it runs now (``now``), "" when
        none or nothing is to be written.
        """
        if not speeds:
            return ""
        self.sync()
        check = check_speeds(self.view(), self.state, self.objective, speeds, now)
        return check.rejected[0] if check.rejected else ""

    def implement(self, setpoints: Mapping[str, float], assets: Sequence[str]) -> str:
        """Write the setpoints through the interlocks; an implemented request also asks maintenance for its assets."""
        ctl = self.controller
        writes = writes_for(setpoints, ctl)
        if not writes:
            self.maintenance.update(assets)
            return "nothing to write"
        lock = Interlocked(ctl, ctl.ranges(), self.settings.interlocks, request=f"bench-{self.spec.id}")
        result = lock.implement(writes)
        if result.status == "done":
            self.maintenance.update(assets)
        return result.status

    def window(self) -> None:
        """A planned maintenance window: repair every pump maintenance was asked for."""
        for pump in sorted(self.maintenance):
            self.plant.repair(pump)
            self.repaired.append((pump, self.plant.elapsed_s))
        self.maintenance.clear()


def _windows(spec: EpisodeSpec) -> list[float]:
    """Planned windows in the episode (s after the start), ending with the one that ends it."""
    out = []
    t = spec.end_s
    while t > 0:
        out.append(t)
        t -= WINDOW_PERIOD_S
    return sorted(out)


def run_way(spec: EpisodeSpec, way: str, settings: LoopSettings, objective: Objective) -> dict[str, Any]:
    """Run one episode one way; the row of figures."""
    t0 = time.perf_counter()
    network = load_network()
    plant = Plant(scenario_of(spec), network)
    ctl = SimulatedController(plant)
    ranges = {p.name: (p.min_speed, p.max_speed) for p in plant.registry.pumps}
    rated = {p.name: p.rated_speed_rpm for p in plant.registry.pumps}
    meter = Meter(maop_bar_by_tag(network, plant), rated, ranges, spec.target)
    loop = _Loop(plant, ctl, network, spec, way, settings, objective, meter)
    windows = _windows(spec)
    next_cycle = settings.cycle_s
    while plant.elapsed_s < spec.end_s - 1e-6:
        events = [spec.end_s, *[w for w in windows if w > plant.elapsed_s + 1e-6]]
        if way != "alarms":
            events.append(next_cycle)
            if loop.pending is not None:
                events.append(loop.pending.answer_at_s)
        else:
            events.append(next_cycle)  # read the historian in pieces (memory), nothing else
        t = min(events)
        if t > plant.elapsed_s:
            ctl.wait(t - plant.elapsed_s)
        now = plant.elapsed_s
        if loop.pending is not None and now >= loop.pending.answer_at_s - 1e-6:
            loop.answer()
        if now >= next_cycle - 1e-6:
            if way == "alarms":
                meter.add(plant.read_tags())
            else:
                loop.cycle()
            next_cycle += settings.cycle_s
        if any(abs(now - w) < STEP_S for w in windows) and way != "alarms":
            windows = [w for w in windows if abs(now - w) >= STEP_S]
            loop.window()
    meter.add(plant.read_tags())
    truth = plant.ground_truth()
    period = plant.scenario.truth_period_s
    meter.add_truth(truth.pumps, Limits(), period)
    ops = truth.operations
    trips = ops[(ops["action"] == "trip") & (ops["source"] == "protection")]
    trip_s = [(ts - plant.scenario.start).total_seconds() for ts in trips["ts"]]
    faulty_trips = [s for s, p in zip(trip_s, trips["pumps"], strict=True) if p == spec.target]
    tripped = bool(faulty_trips)
    asked = {p for p, _ in loop.repaired}
    writes = [e for e in loop.log if e.get("result") in ("done",)]
    healthy_writes = sum(1 for e in writes if any(a != spec.target for a in _pumps(e, loop)))
    row = {
        "episode": spec.id,
        "way": way,
        "mode": spec.mode or "healthy",
        "target": spec.target,
        "tripped": tripped,
        "trip_h": round(faulty_trips[0] / 3600.0, 2) if tripped else None,
        "failure_h": round(spec.failure_s / 3600.0, 2) if not spec.healthy else None,
        "end_h": round(spec.end_s / 3600.0, 2),
        "other_trips": len(trip_s) - len(faulty_trips),
        "no_trip_by_window": (not spec.healthy) and not tripped,
        "maintenance_asked": spec.target in asked,
        "avoided": (not spec.healthy) and not tripped and spec.target in asked,
        "unplanned_downtime_h": sum((spec.end_s - s) / 3600.0 for s in trip_s),
        "delivered_m3": delivered_m3(truth.pumps, period),
        "energy_mwh": meter.energy_mwh,
        "violations_min": dict(meter.violations_min),
        "npsh_violation_pumps": sorted(meter.npsh_assets),
        "actions_implemented": len(writes),
        "actions_on_healthy_assets": healthy_writes,
        "maintenance_on_healthy_assets": sorted(a for a in asked if a != spec.target),
        "requests": sum(1 for e in loop.log if e.get("decided") in ("auto", "waits for the approver")),
        "shutdowns_proposed": sum(1 for e in loop.log if e.get("kind") == "shutdown"),
        "auto_implemented": sum(1 for e in loop.log if e.get("decided") == "auto"),
        "first_alert_h": None if loop.first_alert_s is None else round(loop.first_alert_s / 3600.0, 2),
        "alert_lead_h": None
        if loop.first_alert_s is None or spec.healthy
        else round((spec.failure_s - loop.first_alert_s) / 3600.0, 2),
        "recommendations": loop.recommendations,
        "recommend_s": round(loop.recommend_s, 2),
        "log": loop.log,
        "wall_s": time.perf_counter() - t0,
    }
    return row


def _pumps(entry: Mapping[str, Any], loop: _Loop) -> list[str]:
    """The pumps an implemented entry acted for (its assets at risk)."""
    return [a for a in entry.get("assets", []) if a.count(".") == 1]


def reference_m3(spec: EpisodeSpec) -> float:
    """Volume the same plant delivers without the fault at the same nominations, m3."""
    plant = Plant(scenario_of(spec, faults=False), load_network())
    plant.advance(spec.end_s)
    plant.read_tags()
    return delivered_m3(plant.ground_truth().pumps, plant.scenario.truth_period_s)


def run_episode(spec: EpisodeSpec, settings: LoopSettings, objective: Objective) -> list[dict[str, Any]]:
    """The three ways of one episode, each with the throughput lost against the fault-free plant."""
    nominated = reference_m3(spec)
    done = {"alarms": run_way(spec, "alarms", settings, objective), "auto": run_way(spec, "auto", settings, objective)}
    if done["auto"]["auto_implemented"] == 0:
        # every request of the auto way waited for the approver: the approver way is the same run, step for step
        done["approver"] = {**copy.deepcopy(done["auto"]), "way": "approver", "same_run_as": "auto"}
    else:
        done["approver"] = run_way(spec, "approver", settings, objective)
    rows = []
    for way in WAYS:
        row = done[way]
        row["nominated_m3"] = nominated
        row["throughput_lost_pct"] = 100.0 * (nominated - row["delivered_m3"]) / nominated if nominated > 0 else None
        rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------------


def summarise(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Totals per way: failures avoided, downtime, throughput, energy, actions on healthy assets, violations."""
    out: dict[str, Any] = {}
    for way in WAYS:
        part = [r for r in rows if r["way"] == way]
        faults = [r for r in part if r["mode"] != "healthy"]
        healthy = [r for r in part if r["mode"] == "healthy"]
        nominated = sum(r["nominated_m3"] for r in part)
        delivered = sum(r["delivered_m3"] for r in part)
        violations: dict[str, float] = {}
        for r in part:
            for k, v in r["violations_min"].items():
                violations[k] = violations.get(k, 0.0) + v
        leads = [r["alert_lead_h"] for r in faults if r["alert_lead_h"] is not None]
        out[way] = {
            "fault_episodes": len(faults),
            "healthy_episodes": len(healthy),
            "avoided": sum(r["avoided"] for r in faults),
            "avoided_share": sum(r["avoided"] for r in faults) / len(faults) if faults else None,
            "no_trip_by_window_share": sum(r["no_trip_by_window"] for r in faults) / len(faults) if faults else None,
            "trips_of_faulty_pumps": sum(r["tripped"] for r in faults),
            "other_trips": sum(r["other_trips"] for r in part),
            "unplanned_downtime_h": sum(r["unplanned_downtime_h"] for r in part),
            "throughput_lost_pct": 100.0 * (nominated - delivered) / nominated if nominated > 0 else None,
            "energy_mwh": sum(r["energy_mwh"] for r in part),
            "actions_on_healthy_assets": sum(r["actions_on_healthy_assets"] for r in part),
            "actions_in_healthy_episodes": sum(r["actions_implemented"] for r in healthy),
            "maintenance_on_healthy_assets": sum(len(r["maintenance_on_healthy_assets"]) for r in part),
            "actions_implemented": sum(r["actions_implemented"] for r in part),
            "requests": sum(r["requests"] for r in part),
            "shutdowns_proposed": sum(r.get("shutdowns_proposed", 0) for r in part),
            "auto_decided": sum(r["auto_implemented"] for r in part),
            "auto_writes": sum(
                1 for r in part for e in r.get("log", []) if e.get("decided") == "auto" and e.get("result") == "done"
            ),
            "violations_min": violations,
            "hard_limit_violation_min": sum(v for k, v in violations.items() if k != "NPSH (faulty pump)"),
            "faults_alerted_before_failure": len([x for x in leads if x > 0]),
            "alert_lead_h_median": float(np.median(leads)) if leads else None,
            "wall_s": sum(r["wall_s"] for r in part),
        }
        s = out[way]
        s["targets_met"] = {
            "avoided_share": s["avoided_share"] is not None and s["avoided_share"] >= TARGETS["avoided_share"],
            "throughput_lost_pct": s["throughput_lost_pct"] is not None
            and s["throughput_lost_pct"] < TARGETS["throughput_lost_pct"],
            "hard_limit_violation_min": s["hard_limit_violation_min"] <= TARGETS["hard_limit_violation_min"],
        }
    by_mode: dict[str, dict[str, Any]] = {}
    for r in rows:
        m = by_mode.setdefault(r["mode"], {w: {"n": 0, "avoided": 0, "tripped": 0, "alerted": 0} for w in WAYS})
        b = m[r["way"]]
        b["n"] += 1
        b["avoided"] += int(r["avoided"])
        b["tripped"] += int(r["tripped"])
        b["alerted"] += int(r["first_alert_h"] is not None)
    out["by_mode"] = by_mode
    return out


def _pct(x: float | None, digits: int = 0) -> str:
    return "-" if x is None else f"{100 * x:.{digits}f} %"


def _num(x: float | None, spec: str = ".1f") -> str:
    return "-" if x is None else format(x, spec)


def markdown(record: Mapping[str, Any]) -> str:
    """The printed summary: one column per way, then per mode."""
    s = record["summary"]
    cfg = record["settings"]
    ep = record["episodes_design"]
    out = [
        "# Closed-loop benchmark",
        "",
        f"- episodes: {s['alarms']['fault_episodes']} fault + {s['alarms']['healthy_episodes']} healthy"
        f" (seeds {', '.join(map(str, record['seeds']))}), stress wear on, every failure trips",
        f"- loop every {cfg['cycle_h']:g} h; approver answers after {cfg['approver_delay_h']:g} h (approves what the"
        f" twin finds feasible, never a line shut-down or a tagged-out pump's start);"
        f" auto policy: speed changes up to {cfg['auto_policy']['max_speed_change']:g}",
        f"- planned windows every {ep['window_period_d']:g} d, the next {ep['window_after_d'][0]:g}-"
        f"{ep['window_after_d'][1]:g} d after the nominal failure; onset to failure {ep['fault_days'][0]:g}-"
        f"{ep['fault_days'][1]:g} d; stress exponents {ep['stress_exponents']}",
        "- twin: physics evidence only (no model scores); recommender without a knowledge store"
        if cfg["diagnosis"] == "none"
        else f"- twin: physics evidence plus a stand-in classifier naming the true mode from true severity"
        f" {ORACLE_SEVERITY:g} (no false diagnoses); recommender without a knowledge store",
        f"- machine: {record['machine']['cpu_count']} cores; command: `{record['command']}`;"
        f" wall {record['wall_s']:.0f} s",
        "",
        "| metric | alarms only | loop + approver | loop + auto | target |",
        "|---|---:|---:|---:|---:|",
    ]

    def line(name: str, key: str, fmt: Any, target: str = "") -> str:  # noqa: ANN401 - a formatter
        return f"| {name} | " + " | ".join(fmt(s[w][key]) for w in WAYS) + f" | {target} |"

    out += [
        line("failures avoided (no trip, repaired at a window)", "avoided_share", _pct, ">= 80 %"),
        line("no trip before the window", "no_trip_by_window_share", _pct),
        line("trips of faulty pumps", "trips_of_faulty_pumps", str),
        line("other trips", "other_trips", str),
        line("unplanned downtime, h", "unplanned_downtime_h", _num),
        line("throughput lost vs nominated", "throughput_lost_pct", lambda x: _num(x, ".2f") + " %", "< 2 %"),
        line("energy, MWh", "energy_mwh", _num),
        line("actions on healthy assets", "actions_on_healthy_assets", str),
        line("maintenance asked for healthy pumps", "maintenance_on_healthy_assets", str),
        line("actions implemented", "actions_implemented", str),
        line("of them written by the auto policy", "auto_writes", str),
        line("requests the auto policy decided (no-ops included)", "auto_decided", str),
        line("line shut-downs proposed (rejected)", "shutdowns_proposed", str),
        line("hard-limit violations, min", "hard_limit_violation_min", _num, "0"),
        line("faulty pump's own NPSH deficit, min", "violations_min", lambda v: _num(v["NPSH (faulty pump)"])),
        line("faults alerted before failure", "faults_alerted_before_failure", str),
        line("median alert lead before failure, h", "alert_lead_h_median", _num),
        line("wall time, s", "wall_s", lambda x: _num(x, ".0f")),
        "",
        "| mode | n | avoided: alarms / approver / auto | alerted by the twin (loop) |",
        "|---|---:|---|---:|",
    ]
    for mode, b in s["by_mode"].items():
        out.append(
            f"| {mode} | {b['alarms']['n']} | "
            + " / ".join(str(b[w]["avoided"]) for w in WAYS)
            + f" | {b['approver']['alerted']} |"
        )
    out += ["", "| episode | way | tripped at h (failure h) | avoided | actions |", "|---|---|---|---|---|"]
    for r in record["rows"]:
        if r["way"] == "alarms":
            continue
        acts = "; ".join(f"{e['t_h']}h {e['action']} [{e.get('decided', '')}]" for e in r["log"])[:200]
        out.append(
            f"| {r['episode']} | {r['way']} | {_num(r['trip_h'])} ({_num(r['failure_h'])}) |"
            f" {'yes' if r['avoided'] else 'no'} | {acts or '-'} |"
        )
    return "\n".join(out) + "\n"


def _episode_job(args: tuple[EpisodeSpec, LoopSettings, Objective]) -> list[dict[str, Any]]:
    spec, settings, objective = args
    return run_episode(spec, settings, objective)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table and write the JSON; exit 1 when a loop way misses a target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", help=f"seeds (default {DEFAULT_SEEDS})")
    parser.add_argument("--quick", action="store_true", help="three episodes of one seed (smoke test)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="parallel processes")
    parser.add_argument("--no-search", action="store_true", help="fixed candidates only")
    parser.add_argument(
        "--diagnosis",
        choices=("none", "oracle"),
        default="none",
        help="model scores beside the twin's physics: none, or a stand-in classifier that names the true mode",
    )
    parser.add_argument("--out", type=Path, help="JSON file (default <PUMPTWIN_HOME>/bench/loop.json)")
    args = parser.parse_args(argv)
    seeds = tuple(args.seeds) if args.seeds else ((QUICK_SEED,) if args.quick else DEFAULT_SEEDS)
    specs = draw_episodes(seeds)
    if args.quick:
        specs = [s for s in specs if s.mode in QUICK_MODES or s.healthy][:3]
        specs = [replace(s, end_s=min(s.end_s, s.failure_s + 0.5 * 86400.0)) if not s.healthy else s for s in specs]
        specs = [replace(s, end_s=2 * 86400.0) if s.healthy else s for s in specs]
    from pumptwin.flows.settings import get_settings

    hold_s = get_settings().agents.refusal_hold_s
    settings = LoopSettings(search=not args.no_search, diagnosis=args.diagnosis, refusal_hold_s=hold_s)
    from benchmarks.recommend import objective_from_settings

    objective = objective_from_settings()
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    jobs = [(s, settings, objective) for s in specs]
    if args.jobs > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            for i, part in enumerate(pool.map(_episode_job, jobs), 1):
                rows += part
                print(
                    f"[{i}/{len(jobs)}] {part[0]['episode']}: "
                    + ", ".join(
                        f"{r['way']} {'avoided' if r['avoided'] else ('tripped' if r['tripped'] else 'ok')}"
                        for r in part
                    ),
                    file=sys.stderr,
                )
    else:
        for i, job in enumerate(jobs, 1):
            part = _episode_job(job)
            rows += part
            print(f"[{i}/{len(jobs)}] {part[0]['episode']} done", file=sys.stderr)
    wall = time.perf_counter() - t0
    record = {
        "benchmark": "loop",
        "seeds": list(seeds),
        "quick": args.quick,
        "settings": settings.to_dict(),
        "episodes_design": {
            "fault_days": list(FAULT_DAYS),
            "window_period_d": WINDOW_PERIOD_S / 86400.0,
            "window_after_d": [x / 86400.0 for x in WINDOW_AFTER_S],
            "healthy_days": HEALTHY_S / 86400.0,
            "step_s": STEP_S,
            "stress_exponents": {m.value: p for m, p in STRESS_EXPONENT.items() if m is not Mode.LEAK},
        },
        "objective": asdict(objective),
        "command": " ".join(["python -m benchmarks.loop", *map(shlex.quote, sys.argv[1:] if argv is None else argv)]),
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "wall_s": wall,
        "targets": TARGETS,
        "summary": summarise(rows),
        "episodes": [asdict(s) for s in specs],
        "rows": rows,
    }
    out = write_figures(record, "loop", args.out)
    print(markdown(record))
    print(f"wrote {out}")
    s = record["summary"]
    return 0 if all(all(s[w]["targets_met"].values()) for w in ("approver", "auto")) else 1


if __name__ == "__main__":
    raise SystemExit(main())
