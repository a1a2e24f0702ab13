"""`Plant`: a fleet of pump stations that behaves like a real one, seen only through tags.

The fleet is ``lines`` independent copies of a network (stations renamed ``PS01``...). Time
advances in blocks of steps; for each block the plant

1. plays the control system's commands (`Operations`): nominations, operator events,
   protection trips, setpoints written through the step API; speed ramps to its target;
2. evaluates the hidden degradation of every pump and line at each step (`health.severity`): of
   the time, or for a fault with stress wear of its damage clock (`health.damage_clock`), which
   runs with how hard the pump is driven; such a fault's protection trip comes when its damage
   clock reaches the failure time, found as the block is played (the block's commands are played
   again with the trip in place);
3. solves the hydraulics of every distinct operating state of the block in one
   `twin.hydraulics.solve_batch` call, reusing states solved before (`LineHydraulics`, keyed by
   quantised effective pump speeds, leak emitter coefficients and demand period). Impeller wear
   enters as an effective speed (1 - w) s, which is exactly the diameter affinity that
   `twin.pumps.degraded_points` applies; cavitation enters as a further head drop, solved in a
   second pass for the states that cavitate;
4. runs the health physics (`health.advance`) for temperatures, vibration, motor and seal;
5. turns the true values into readings with `sensors.apply_sensors`.

Readings come out through `Plant.read_tags` as the project's tag table; the ground truth
(fault labels, hidden state, leak flows, operations log) only through `Plant.ground_truth`.
The same scenario and seed, with the same calls, give the same readings.
"""

from __future__ import annotations

import copy
import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from pumptwin.plant.health import (
    EFFICIENCY_LOSS_PER_WEAR,
    MAX_HEAD_DROP,
    MODE_INFO,
    PUMP_MODES,
    HealthInputs,
    HealthState,
    Mode,
    advance,
    cavitation_head_drop,
    damage_clock,
    health_params_for,
    readings,
    severity,
    steady_state,
    strainer_dp_pa,
    stress_rate,
)
from pumptwin.plant.operations import Command, Operations, OperationsError, OpsTimeline
from pumptwin.plant.scenario import AmbientSpec, FaultSpec, Scenario, ScenarioError
from pumptwin.plant.sensors import ReadingBlock, SensorState, apply_sensors, readings_frame, tag_table, utc_timestamps
from pumptwin.twin.assets import BAR_PA, M3H_PER_M3S, PUMP_MEASURES, Registry, build_registry
from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.hydraulic.eps import initial_batch
from pumptwin.twin.hydraulic.io import load_network
from pumptwin.twin.hydraulic.metrics import pump_assets, pump_metrics
from pumptwin.twin.hydraulic.network import Network
from pumptwin.twin.hydraulic.solver import CLOSED, OPEN, compile_network, solve_batch
from pumptwin.twin.units import DAY_S, G_M_S2

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

SPEED_KEY_QUANTUM = 1e-3
"""Effective relative speeds are rounded to this for the hydraulic state cache."""
EMITTER_KEY_QUANTUM = 1e-7
"""Leak emitter coefficients (m3/s per m^n) are rounded to this for the cache."""
HEAD_DROP_RESOLVE = 2e-3
"""Cavitation head drops above this are solved again with the reduced head."""
CAVITATION_BISECTIONS = 7
"""Bisection steps for a consistent cavitation head drop (resolution 0.5 / 2^7 = 0.4 %)."""
CHUNK_VALUES = 2_000_000
"""True values (steps x tags) simulated per block."""
CLEAN_STRAINER_DP_PA = (4e3, 8e3)
"""Range of a clean suction strainer's loss at BEP flow, Pa."""
PUMP_FIELDS = (
    "flow_m3s",
    "head_m",
    "efficiency",
    "hydraulic_power_w",
    "npsh_available_m",
    "npsh_required_m",
    "percent_bep",
    "suction_pa",
    "discharge_pa",
)
"""Per-pump quantities a hydraulic state provides, in this order."""


class PlantError(PumptwinError, ValueError):
    """A plant cannot be built or a command is invalid; the message says which."""


# --------------------------------------------------------------------------------------------
# Hydraulics of one line, cached by operating state
# --------------------------------------------------------------------------------------------


class _Demands:
    """Junction demands (m3/s) per pattern period, as the network's patterns give them."""

    def __init__(self, network: Network, n_junctions: int) -> None:
        self.network = network
        self.n = n_junctions
        self.step_s = network.options.pattern_step_s
        self.start_s = network.options.pattern_start_s
        pats = [p for p in network.patterns]
        self.length = max((len(p.multipliers) for p in pats), default=1)
        self.patterned = any(d.base_m3s != 0 for j in network.junctions for d in j.demands) and bool(pats)
        self._cache: dict[int, FloatArray] = {}

    def period(self, t_s: FloatArray) -> IntArray:
        """Pattern period key at elapsed times ``t_s`` (0 when demands have no pattern)."""
        if not self.patterned:
            return np.zeros(np.shape(t_s), np.int64)
        return np.asarray(((t_s + self.start_s) // self.step_s) % self.length, dtype=np.int64)

    def at(self, period: int) -> FloatArray:
        """(n_junctions,) demands in m3/s in pattern period ``period``."""
        if period not in self._cache:
            d = np.zeros(self.n)
            default = self.network.options.default_pattern
            ids = {p.id for p in self.network.patterns}
            for j, junction in enumerate(self.network.junctions):
                for dem in junction.demands:
                    pid = dem.pattern or (default if default in ids else None)
                    mult = self.network.pattern(pid).at(period) if pid else 1.0
                    d[j] += dem.base_m3s * mult
            self._cache[period] = d
        return self._cache[period]


class LineHydraulics:
    """Steady states of one copy of the network, solved in batches and cached by operating state.

    A state is keyed by the effective relative speed of every pump (rounded to
    `SPEED_KEY_QUANTUM`; 0 is stopped), the extra emitter coefficient at each leak junction
    (rounded to `EMITTER_KEY_QUANTUM`) and the demand pattern period.

    Args:
        network: The line's network.
        flow_pipes: Pipes whose flow is metered.
        press_nodes: Nodes whose pressure is metered.
        leak_junctions: Junctions where leaks may open.
    """

    def __init__(
        self, network: Network, flow_pipes: Sequence[str], press_nodes: Sequence[str], leak_junctions: Sequence[str]
    ) -> None:
        self.network = network
        self.model = compile_network(network)
        self.assets = pump_assets(self.model)
        m = self.model
        self.n_pumps = len(m.pump_link)
        self.flow_links = np.array([m.link_index[p] for p in flow_pipes], dtype=np.int64)
        self.press_nodes = np.array([m.node_index[n] for n in press_nodes], dtype=np.int64)
        self.leak_nodes = np.array([m.node_index[j] for j in leak_junctions], dtype=np.int64)
        self.rho_g = network.fluid.density_kg_m3 * G_M_S2
        self.demands = _Demands(network, m.n_junctions)
        self._template = initial_batch(m, 1)
        self._cache: dict[bytes, int] = {}
        self._table = np.zeros((0, self.n_features))
        self.solved = 0
        self.not_converged = 0

    @property
    def n_features(self) -> int:
        """Values stored per state."""
        return len(PUMP_FIELDS) * self.n_pumps + self.flow_links.size + self.press_nodes.size + 2 * self.leak_nodes.size

    def pump_field(self, features: FloatArray, name: str) -> FloatArray:
        """(..., n_pumps) values of a per-pump quantity from stored features."""
        i = PUMP_FIELDS.index(name) * self.n_pumps
        return features[..., i : i + self.n_pumps]

    def _offset(self) -> int:
        return len(PUMP_FIELDS) * self.n_pumps

    def meter_flows_m3s(self, features: FloatArray) -> FloatArray:
        """(..., n_flow_meters) metered pipe flows in m3/s."""
        i = self._offset()
        return features[..., i : i + self.flow_links.size]

    def meter_pressures_pa(self, features: FloatArray) -> FloatArray:
        """(..., n_press_meters) metered gauge pressures in Pa."""
        i = self._offset() + self.flow_links.size
        return features[..., i : i + self.press_nodes.size]

    def leak_flows_m3s(self, features: FloatArray) -> FloatArray:
        """(..., n_leaks) emitter (leak) outflows in m3/s."""
        i = self._offset() + self.flow_links.size + self.press_nodes.size
        return features[..., i : i + self.leak_nodes.size]

    def leak_heads_m(self, features: FloatArray) -> FloatArray:
        """(..., n_leaks) pressure heads at the leak junctions in m."""
        i = self._offset() + self.flow_links.size + self.press_nodes.size + self.leak_nodes.size
        return features[..., i : i + self.leak_nodes.size]

    def keys(self, speed: FloatArray, emitter: FloatArray, period: IntArray) -> IntArray:
        """Cache keys (N, n_pumps + n_leaks + 1) of states.

        Args:
            speed: (N, n_pumps) effective relative speeds.
            emitter: (N, n_leaks) extra emitter coefficients at the leak junctions.
            period: (N,) demand pattern periods.
        """
        return np.concatenate(
            [
                np.rint(speed / SPEED_KEY_QUANTUM).astype(np.int64),
                np.rint(emitter / EMITTER_KEY_QUANTUM).astype(np.int64),
                period.reshape(-1, 1).astype(np.int64),
            ],
            axis=1,
        )

    def lookup(self, keys: IntArray) -> FloatArray:
        """Stored features (N, n_features) of each state in ``keys``, solving the new ones in one batch."""
        if keys.shape[0] == 0:
            return np.zeros((0, self.n_features))
        uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
        where = np.empty(uniq.shape[0], np.int64)
        missing: list[int] = []
        for i, row in enumerate(uniq):
            j = self._cache.get(row.tobytes())
            if j is None:
                missing.append(i)
            else:
                where[i] = j
        if missing:
            new = self._solve(uniq[missing])
            base = self._table.shape[0]
            self._table = np.concatenate([self._table, new], axis=0)
            for n, i in enumerate(missing):
                self._cache[uniq[i].tobytes()] = base + n
                where[i] = base + n
        return self._table[where[inverse.reshape(-1)]]

    def _solve(self, keys: IntArray) -> FloatArray:
        m = self.model
        n = keys.shape[0]
        np_, nl = self.n_pumps, self.leak_nodes.size
        batch = self._template.take(np.zeros(n, np.int64))
        speed = np.asarray(keys[:, :np_] * SPEED_KEY_QUANTUM, dtype=np.float64)
        batch.pump_speed[:] = speed
        batch.link_status[:, m.pump_link] = np.where(speed > 0, OPEN, CLOSED)
        if nl:
            batch.emitter_coeff[:, self.leak_nodes] += keys[:, np_ : np_ + nl] * EMITTER_KEY_QUANTUM
        for period in np.unique(keys[:, -1]):
            rows = keys[:, -1] == period
            batch.demand_m3s[rows] = self.demands.at(int(period))
        res = solve_batch(m, batch)
        self.solved += n
        self.not_converged += int((~res.converged).sum())
        pm = pump_metrics(m, self.assets, res.head_m, res.flow_m3s, res.status, speed)
        pressure = (res.head_m - m.elevation_m) * self.rho_g
        k = m.pump_link
        cols = [
            np.where(pm.running, pm.flow_m3s, 0.0),
            pm.head_m,
            pm.efficiency,
            pm.hydraulic_power_w,
            pm.npsh_available_m,
            pm.npsh_required_m,
            pm.percent_bep,
            pressure[:, m.link_n1[k]],
            pressure[:, m.link_n2[k]],
            res.flow_m3s[:, self.flow_links],
            pressure[:, self.press_nodes],
            res.emitter_flow_m3s[:, self.leak_nodes] if nl else np.zeros((n, 0)),
            pressure[:, self.leak_nodes] / self.rho_g,
        ]
        return np.concatenate(cols, axis=1)


# --------------------------------------------------------------------------------------------
# Weather, faults
# --------------------------------------------------------------------------------------------


def ambient_c(
    t_s: FloatArray, start_clock_s: float, spec: AmbientSpec, station_offset_c: FloatArray, seed: int
) -> FloatArray:
    """Ambient temperature (K, S) in degC at elapsed times ``t_s`` (K,) for S stations.

    A daily sine (coolest at 03:00) plus day-to-day weather drawn per day from ``seed`` and
    interpolated linearly between days, plus each station's offset.
    """
    clock = start_clock_s + t_s
    daily = spec.daily_amplitude_c * np.sin(2 * np.pi * ((clock / 3600.0) % 24.0 - 9.0) / 24.0)
    day = clock / DAY_S
    d0 = np.floor(day).astype(np.int64)
    days = np.arange(int(d0.min()), int(d0.max()) + 2)
    weather = np.array([np.random.default_rng([seed, 303, int(d)]).normal(0.0, spec.day_sd_c) for d in days])
    w = np.interp(day, days.astype(np.float64), weather)
    return np.asarray(spec.mean_c + (daily + w)[:, None] + station_offset_c[None, :], dtype=np.float64)


@dataclass(frozen=True, slots=True)
class _PumpFault:
    spec: FaultSpec
    pump: int


@dataclass(frozen=True, slots=True)
class _LeakFault:
    spec: FaultSpec
    line: int
    leak: int
    coeff: float


@dataclass(frozen=True, slots=True)
class GroundTruth:
    """What really happened; for evaluation and training labels only, never for the twin.

    Attributes:
        labels: One row per fault: ``asset, station, mode, onset_ts, failure_ts, law, magnitude,
            unit, trip, meaning`` (a leak's asset is ``LINEnn.<junction>``; its magnitude is the
            leak flow in m3/h at the junction's initial pressure).
        pumps: Hidden state per pump every truth period: ``ts, asset, running, speed, flow_m3h,
            head_m, percent_bep, npsh_margin_m, cavitation`` and the physical degradation
            (``bearing_de, bearing_nde, impeller_wear, npshr_rise, seal_leak_m3h,
            cooling_loss, strainer_dp_bar``).
        leaks: Leak outflow per leak every truth period: ``ts, asset, leak_m3h``.
        operations: Commands applied: ``ts, action, pumps, value, source`` (value: speed in rpm).
    """

    labels: pd.DataFrame
    pumps: pd.DataFrame
    leaks: pd.DataFrame
    operations: pd.DataFrame


_HIDDEN = (
    "running",
    "speed",
    "flow_m3h",
    "head_m",
    "percent_bep",
    "npsh_margin_m",
    "cavitation",
    "bearing_de",
    "bearing_nde",
    "impeller_wear",
    "npshr_rise",
    "seal_leak_m3h",
    "cooling_loss",
    "strainer_dp_bar",
)


# --------------------------------------------------------------------------------------------
# The plant
# --------------------------------------------------------------------------------------------


class Plant:
    """A simulated fleet of pump stations with a step API for the closed loop.

    Example::

        plant = Plant(shipped_scenario("bearing_failure"))
        readings = plant.run()  # tag, ts, value, quality
        truth = plant.ground_truth()  # for evaluation only

        plant = Plant(scenario)  # closed loop
        plant.write_setpoint("PS01.P1.SPEED", 1400.0)  # rpm
        plant.advance(600.0)
        new = plant.read_tags()

    Args:
        scenario: What to simulate.
        network: The line's network (default: the scenario's ``network``).

    Raises:
        PlantError: A fault or event names something that is not in the fleet.
    """

    def __init__(self, scenario: Scenario, network: Network | None = None) -> None:
        self.scenario = scenario
        self.network = network if network is not None else _scenario_network(scenario)
        self.registry: Registry = build_registry(self.network, scenario.lines)
        self.step_s = float(scenario.step_s)
        self._k = 0
        self._start_ns = int(scenario.start.value)
        self._clock_s = float((scenario.start - scenario.start.normalize()).total_seconds())
        rng = np.random.default_rng([scenario.seed, 1])
        reg = self.registry
        self._n_pumps = len(reg.pumps)
        self._ppl = self._n_pumps // reg.n_lines
        self.params = health_params_for(reg.pumps, rng)
        self._bep = np.array([p.bep_flow_m3s for p in reg.pumps])
        self._rpm = np.array([p.rated_speed_rpm for p in reg.pumps])
        self._clean_dp = rng.uniform(*CLEAN_STRAINER_DP_PA, self._n_pumps)
        self._station_offset = rng.normal(0.0, 1.5, len(reg.stations))
        self._pump_station = np.array([[s.name for s in reg.stations].index(p.station) for p in reg.pumps])
        line1 = [m for m in reg.meters if m.line == 1]
        self._flow_meters = [m.element for m in line1 if m.measure == "FLOW"]
        self._press_meters = [m.element for m in line1 if m.measure == "PRESS"]
        leak_specs = [f for f in scenario.faults if f.mode is Mode.LEAK]
        self._leak_junctions = sorted({_leak_target(f, reg, self.network)[1] for f in leak_specs})
        self.hydraulics = LineHydraulics(self.network, self._flow_meters, self._press_meters, self._leak_junctions)
        on0 = self.hydraulics.model.link_status0[self.hydraulics.model.pump_link] > CLOSED
        self.operations = Operations(
            reg, scenario.operations, self.step_s, self._clock_s, scenario.seed, np.tile(on0, reg.n_lines).tolist()
        )
        self._pump_faults = [_PumpFault(f, self._pump(f.target)) for f in scenario.faults if f.mode in PUMP_MODES]
        self._stress = [i for i, f in enumerate(self._pump_faults) if f.spec.stress]
        self._clock_state = {i: 0.0 for i in self._stress}  # damage clock at the next step, s
        self._tripped: set[int] = set()  # stress faults whose trip is scheduled
        self._repaired: set[int] = set()  # faults removed by a repair
        self._leaks = self._compile_leaks(leak_specs)
        self._schedule_scenario()
        self._columns()
        self._table = tag_table(reg.tags, self.step_s, scenario.sensors, np.random.default_rng([scenario.seed, 2]))
        self._sensor_state = SensorState.initial(self._table)
        self._health: HealthState | None = None
        self._blocks: list[ReadingBlock] = []
        self._truth_every = max(1, round(scenario.truth_period_s / self.step_s))
        self._truth_pumps: list[tuple[IntArray, dict[str, FloatArray]]] = []
        self._truth_leaks: list[tuple[IntArray, FloatArray]] = []
        self._ops_log: list[Command] = []

    # ------------------------------------------------------------------ set-up

    def _pump(self, target: str) -> int:
        try:
            return self.registry.pump_index(target)
        except ValueError as exc:
            raise PlantError(f"scenario {self.scenario.name!r}: {exc}") from None

    def _compile_leaks(self, specs: Sequence[FaultSpec]) -> list[_LeakFault]:
        if not specs:
            return []
        hyd = self.hydraulics
        speed0 = np.where(self.operations.on, self.operations.setpoint, 0.0)[: self._ppl]
        keys = hyd.keys(speed0[None, :], np.zeros((1, len(self._leak_junctions))), np.zeros(1, np.int64))
        head = hyd.leak_heads_m(hyd.lookup(keys))[0]
        exponent = self.network.options.emitter_exponent
        out = []
        for f in specs:
            line, junction = _leak_target(f, self.registry, self.network)
            i = self._leak_junctions.index(junction)
            if head[i] <= 0:
                raise PlantError(f"leak at {f.target}: the junction has no positive pressure to leak from")
            out.append(_LeakFault(f, line, i, f.magnitude_si / head[i] ** exponent))
        return out

    def _schedule_scenario(self) -> None:
        ops = self.operations
        for e in self.scenario.operations.events:
            step = round(e.at_s / self.step_s)
            try:
                pumps = ops.pumps_of(e.target)
                if e.action == "switch":
                    station = e.target.split(".")[0]
                    pumps = (*pumps, ops.pumps_of(f"{station}.{e.to}")[0])
            except OperationsError as exc:
                raise PlantError(f"scenario {self.scenario.name!r}: event at {e.at_s} s: {exc}") from None
            ops.schedule(step, e.action, pumps, math.nan if e.value is None else e.value, "scenario")
        for f in self._pump_faults:
            if f.spec.trip and not f.spec.stress:  # a stress fault's trip is found as the plant runs
                ops.schedule(math.ceil(f.spec.failure_s / self.step_s), "trip", (f.pump,), source="protection")

    def _columns(self) -> None:
        """Column index of each true value in registry tag order."""
        index = {t: i for i, t in enumerate(self.registry.tag_names)}
        reg = self.registry
        self._col = {m: np.array([index[f"{p.name}.{m}"] for p in reg.pumps]) for m in PUMP_MEASURES}
        self._col_ambient = np.array([index[f"{s.name}.SITE.AMBIENT_TEMP"] for s in reg.stations])
        by_line = {(m.line, m.element, m.measure): index[m.tag] for m in reg.meters}
        lines = range(1, reg.n_lines + 1)
        self._col_flow = np.array([[by_line[(ln, e, "FLOW")] for e in self._flow_meters] for ln in lines])
        self._col_press = np.array([[by_line[(ln, e, "PRESS")] for e in self._press_meters] for ln in lines])

    # ------------------------------------------------------------------ public API

    @property
    def now(self) -> pd.Timestamp:
        """Plant time (UTC) of the next step to simulate."""
        return self.scenario.start + pd.Timedelta(seconds=self._k * self.step_s)

    @property
    def elapsed_s(self) -> float:
        """Simulated time so far, s."""
        return self._k * self.step_s

    def write_setpoint(self, target: str, value: float) -> None:
        """Write a setpoint, as the control system would; it applies from the next step.

        Args:
            target: ``STATION.ASSET.SPEED`` or ``.SPEED_SP`` (value: speed setpoint in rpm, the
                pump stays on manual); ``STATION.ASSET.STATUS`` (1 start, 0 stop); ``STATION.ASSET``
                (rpm; 0 stops, more starts at that speed); or a station ``PS01`` (rpm for its pumps).
                A pump that tripped on a functional failure cannot be started again.
            value: The setpoint.

        Raises:
            PlantError: An unknown target or measure, or a negative value.
        """
        if not (math.isfinite(value) and value >= 0):
            raise PlantError(f"setpoint for {target!r} must be a number >= 0, got {value}")
        parts = target.split(".")
        ops = self.operations
        try:
            pumps = ops.pumps_of(".".join(parts[:2]) if len(parts) >= 2 else parts[0])  # noqa: PLR2004
        except OperationsError as exc:
            raise PlantError(str(exc)) from None
        rel = value / self._rpm[pumps[0]]
        measure = parts[2] if len(parts) == 3 else None  # noqa: PLR2004
        if measure in ("SPEED", "SPEED_SP") or len(parts) == 1:
            ops.schedule(self._k, "speed", pumps, rel, "setpoint")
        elif measure == "STATUS":
            ops.schedule(self._k, "start" if value >= 0.5 else "stop", pumps, source="setpoint")  # noqa: PLR2004
        elif measure is None:
            if value == 0:
                ops.schedule(self._k, "stop", pumps, source="setpoint")
            else:
                ops.schedule(self._k, "speed", pumps, rel, "setpoint")
                ops.schedule(self._k, "start", pumps, source="setpoint")
        else:
            raise PlantError(f"{target!r}: only SPEED, SPEED_SP and STATUS can be written")

    def advance(self, dt_s: float) -> None:
        """Simulate ``dt_s`` seconds, rounded to whole steps.

        Raises:
            PlantError: A negative or non-finite duration.
        """
        if not (math.isfinite(dt_s) and dt_s >= 0):
            raise PlantError(f"cannot advance by {dt_s} s")
        n = round(dt_s / self.step_s)
        per_block = max(1, CHUNK_VALUES // self._table.size)
        while n > 0:
            k = min(n, per_block)
            self._simulate(k)
            n -= k

    def repair(self, pump: str) -> int:
        """Repair a pump now, as maintenance would: its faults are removed and a trip lock-out is reset.

        The pump stays stopped (start it by writing a setpoint); a protection trip still pending
        for a removed fault is cancelled.

        Args:
            pump: ``STATION.ASSET``.

        Returns:
            How many faults were removed.

        Raises:
            PlantError: An unknown pump.
        """
        p = self._pump(pump)
        gone = [i for i, f in enumerate(self._pump_faults) if f.pump == p and i not in self._repaired]
        self._repaired.update(gone)
        ops = self.operations
        pending = [c for c in ops._queue if not (c.action == "trip" and c.source == "protection" and p in c.pumps)]
        if len(pending) != len(ops._queue):
            ops._queue = pending
            heapq.heapify(ops._queue)
        ops.available[p] = True
        self._ops_log.append(Command(self._k, -1, "repair", (p,), math.nan, "maintenance"))
        return len(gone)

    def damage_clocks_s(self) -> dict[str, float]:
        """Damage clock (s) of each active stress-wear fault at the next step, by ``mode@pump`` (truth only)."""
        return {
            f"{self._pump_faults[i].spec.mode.value}@{self._pump_faults[i].spec.target}": self._clock_state[i]
            for i in self._stress
            if i not in self._repaired
        }

    def read_tags(self) -> pd.DataFrame:
        """Readings since the last read, as the tag table ``tag, ts, value, quality`` in arrival order."""
        block = ReadingBlock.concat(self._blocks)
        self._blocks = []
        return readings_frame(block, self._table.names)

    def run(self) -> pd.DataFrame:
        """Simulate to the end of the scenario's duration and return the readings not yet read."""
        remaining = self.scenario.n_steps - self._k
        if remaining > 0:
            self.advance(remaining * self.step_s)
        return self.read_tags()

    # ------------------------------------------------------------------ one block

    def _simulate(self, k: int) -> None:  # noqa: PLR0915 - the block's steps read best in sequence
        k0 = self._k
        steps = k0 + np.arange(k, dtype=np.int64)
        t_s = np.asarray(steps * self.step_s, dtype=np.float64)
        ops, clocks = self._timeline(k0, k, t_s)
        self._ops_log.extend(ops.applied)
        on = ops.on
        running = on & (ops.speed > 0)
        hyd_speed = np.where(on, ops.speed, 0.0)
        wear = self._wear(t_s, clocks)
        impeller = wear["impeller_wear"]
        s_eff = hyd_speed * (1.0 - impeller)
        emitter = self._emitters(t_s)
        period = self.hydraulics.demands.period(t_s)
        dp_bep = self._clean_dp + wear["strainer_dp_pa"]
        state = self._cavitating(s_eff, emitter, period, running, dp_bep, wear["npshr_rise"])
        feats, pumps, strainer, ratio, s_eff = state
        eff = np.clip(pumps["efficiency"] * (1.0 - EFFICIENCY_LOSS_PER_WEAR * impeller), 0.01, 1.0)
        shaft = np.where(
            running,
            np.maximum(pumps["hydraulic_power_w"] / eff, self.params.shutoff_power_w * s_eff**3),
            0.0,
        )
        amb = ambient_c(t_s, self._clock_s, self.scenario.ambient, self._station_offset, self.scenario.seed)
        amb_p = amb[:, self._pump_station]
        suction = pumps["suction_pa"] - strainer
        inputs = HealthInputs(
            running=running,
            speed=ops.speed,
            flow_ratio=np.where(running, pumps["percent_bep"] / 100.0, 0.0),
            shaft_power_w=shaft,
            npsh_ratio=ratio,
            suction_pressure_pa=suction,
            ambient_c=amb_p,
            bearing_de=wear["bearing_de"],
            bearing_nde=wear["bearing_nde"],
            impeller_wear=impeller,
            seal_damage_m3s=wear["seal_damage_m3s"],
            cooling_loss=wear["cooling_loss"],
        )
        if self._health is None:
            self._health = steady_state(inputs.at(0), self.params)
        history, self._health = advance(self._health, inputs, self.params, self.step_s)
        rd = readings(history, inputs, self.params)
        values = np.empty((k, self._table.size))
        c = self._col
        flowing = hyd_speed > 0
        values[:, c["SUCT_PRESS"]] = suction / BAR_PA
        # the strainer sits between the suction header and the pump: the pump adds its head to the
        # pressure after the strainer (the line's hydraulics leave the strainer out)
        values[:, c["DISCH_PRESS"]] = np.where(flowing, pumps["discharge_pa"] - strainer, suction) / BAR_PA
        values[:, c["FLOW"]] = np.where(flowing, pumps["flow_m3s"], 0.0) * M3H_PER_M3S
        values[:, c["SPEED"]] = ops.speed * self._rpm
        values[:, c["SPEED_SP"]] = ops.setpoint * self._rpm
        values[:, c["MOTOR_CURRENT"]] = rd.motor_current_a
        values[:, c["MOTOR_POWER"]] = rd.motor_power_w / 1e3
        values[:, c["VIB_DE_RMS"]] = rd.vib_de_mm_s
        values[:, c["VIB_NDE_RMS"]] = rd.vib_nde_mm_s
        values[:, c["BRG_DE_TEMP"]] = rd.bearing_de_c
        values[:, c["BRG_NDE_TEMP"]] = rd.bearing_nde_c
        values[:, c["MOTOR_WINDING_TEMP"]] = rd.winding_c
        values[:, c["SEAL_LEAK"]] = rd.seal_leak_m3s * 3.6e6
        values[:, c["STRAINER_DP"]] = strainer / BAR_PA
        values[:, c["STATUS"]] = running
        values[:, self._col_ambient] = amb
        hyd = self.hydraulics
        values[:, self._col_flow.ravel()] = (hyd.meter_flows_m3s(feats) * M3H_PER_M3S).reshape(k, -1)
        values[:, self._col_press.ravel()] = (hyd.meter_pressures_pa(feats) / BAR_PA).reshape(k, -1)
        block, self._sensor_state = apply_sensors(
            values,
            k0,
            self._start_ns,
            self.step_s,
            self._table,
            self.scenario.sensors,
            self._sensor_state,
            np.random.default_rng([self.scenario.seed, 3, k0]),
        )
        self._blocks.append(block)
        self._record_truth(steps, ops.speed, running, pumps, ratio, rd.cavitation, wear, feats)
        self._k += k

    def _timeline(self, k0: int, k: int, t_s: FloatArray) -> tuple[OpsTimeline, dict[int, FloatArray]]:
        """The block's operations and the damage clock (K,) of every active stress-wear fault.

        The commands are played on a copy of the control system; where a stress fault's damage
        clock reaches its failure time inside the block, its protection trip is scheduled at that
        step and the block is played again, until no new trip falls in it.
        """
        active = [i for i in self._stress if i not in self._repaired]
        if not active:
            return self.operations.timeline(k0, k), {}
        base = self.operations
        while True:
            trial = copy.deepcopy(base, memo={id(base.registry): base.registry, id(base.spec): base.spec})
            ops = trial.timeline(k0, k)
            clocks: dict[int, FloatArray] = {}
            ends: dict[int, float] = {}
            first: tuple[int, int] | None = None
            for i in active:
                spec = self._pump_faults[i].spec
                reference = spec.stress_speed if spec.stress_speed is not None else self.scenario.operations.speed
                rate = stress_rate(ops.speed[:, self._pump_faults[i].pump], reference, spec.exponent)
                clocks[i], ends[i] = damage_clock(self._clock_state[i], t_s, rate, self.step_s, spec.onset_s)
                if spec.trip and i not in self._tripped:
                    hit = np.flatnonzero(clocks[i] >= spec.failure_s)
                    if hit.size and (first is None or hit[0] < first[0]):
                        first = (int(hit[0]), i)
            if first is None:
                break
            j, i = first
            base.schedule(k0 + j, "trip", (self._pump_faults[i].pump,), source="protection")
            self._tripped.add(i)
        self.operations = trial
        self._clock_state.update(ends)
        return ops, clocks

    def _cavitating(
        self,
        s_eff: FloatArray,
        emitter: FloatArray,
        period: IntArray,
        running: NDArray[np.bool_],
        dp_bep: FloatArray,
        npshr_rise: FloatArray,
    ) -> tuple[FloatArray, dict[str, FloatArray], FloatArray, FloatArray, FloatArray]:
        """Hydraulics with each pump's cavitation head drop consistent with its own NPSH ratio.

        The head drop d enters as an effective speed s sqrt(1 - d). Where a line cavitates, d is
        found by bisection on d = head_drop(ratio(d)) for all its pumps together (a lower head
        means less flow, a smaller strainer loss and NPSHr, so the ratio rises with d).

        Returns:
            (features (K, L, F), per-pump hydraulic view, strainer loss Pa, NPSH ratio, effective speed).
        """

        def evaluate(speed: FloatArray) -> tuple[FloatArray, dict[str, FloatArray], FloatArray, FloatArray]:
            feats = self._hydraulics(speed, emitter, period)
            pumps = self._pump_view(feats)
            strainer = strainer_dp_pa(pumps["flow_m3s"], self._bep, dp_bep)
            ratio = _npsh_ratio(pumps, strainer, self.hydraulics.rho_g, npshr_rise, running)
            return feats, pumps, strainer, ratio

        feats, pumps, strainer, ratio = evaluate(s_eff)
        drop = np.where(running, cavitation_head_drop(ratio), 0.0)
        k = s_eff.shape[0]
        lines = self.registry.n_lines
        cavitating = (drop > HEAD_DROP_RESOLVE).reshape(k, lines, self._ppl).any(axis=2)
        if not cavitating.any():
            return feats, pumps, strainer, ratio, s_eff
        in_line = np.repeat(cavitating, self._ppl, axis=1) & running
        lo = np.zeros_like(s_eff)
        hi = np.where(in_line, MAX_HEAD_DROP, 0.0)
        for _ in range(CAVITATION_BISECTIONS):
            mid = 0.5 * (lo + hi)
            _, _, _, r = evaluate(s_eff * np.sqrt(1.0 - mid))
            up = np.where(in_line, cavitation_head_drop(r), 0.0) > mid
            lo = np.where(up, mid, lo)
            hi = np.where(up, hi, mid)
        speed = s_eff * np.sqrt(1.0 - 0.5 * (lo + hi))
        feats, pumps, strainer, ratio = evaluate(speed)
        return feats, pumps, strainer, ratio, speed

    def _hydraulics(self, s_eff: FloatArray, emitter: FloatArray, period: IntArray) -> FloatArray:
        """Features (K, L, F) of each step's state on each line."""
        k = s_eff.shape[0]
        lines = self.registry.n_lines
        hyd = self.hydraulics
        speed = s_eff.reshape(k, lines, self._ppl).transpose(1, 0, 2).reshape(lines * k, self._ppl)
        em = emitter.transpose(1, 0, 2).reshape(lines * k, -1)
        keys = hyd.keys(speed, em, np.tile(period, lines))
        # States hold for long stretches: look up only where a line's state changes, then fill forward.
        change = np.ones(lines * k, dtype=bool)
        change[1:] = (keys[1:] != keys[:-1]).any(axis=1)
        change[::k] = True
        segment = np.cumsum(change) - 1
        feats = hyd.lookup(keys[change])[segment]
        return np.ascontiguousarray(feats.reshape(lines, k, -1).transpose(1, 0, 2))

    def _pump_view(self, feats: FloatArray) -> dict[str, FloatArray]:
        k = feats.shape[0]
        return {f: self.hydraulics.pump_field(feats, f).reshape(k, self._n_pumps) for f in PUMP_FIELDS}

    def _wear(self, t_s: FloatArray, clocks: dict[int, FloatArray] | None = None) -> dict[str, FloatArray]:
        """Physical degradation (K, P) of every pump at times ``t_s``: the worst fault of each mode.

        A stress-wear fault's severity is taken at its damage clock (``clocks``, by fault index);
        a repaired fault adds nothing.
        """
        clocks = clocks or {}
        shape = (t_s.size, self._n_pumps)
        out = {
            name: np.zeros(shape)
            for name in (
                "bearing_de",
                "bearing_nde",
                "impeller_wear",
                "npshr_rise",
                "seal_damage_m3s",
                "cooling_loss",
                "strainer_dp_pa",
            )
        }
        target = {
            Mode.IMPELLER_WEAR: "impeller_wear",
            Mode.CAVITATION: "npshr_rise",
            Mode.SEAL_FAILURE: "seal_damage_m3s",
            Mode.MOTOR_OVERHEATING: "cooling_loss",
            Mode.STRAINER_CLOG: "strainer_dp_pa",
        }
        for i, f in enumerate(self._pump_faults):
            if i in self._repaired:
                continue
            s = f.spec
            if s.mode is Mode.BEARING_WEAR:
                name = "bearing_de" if s.bearing == "DE" else "bearing_nde"
            else:
                name = target[s.mode]
            value = severity(clocks.get(i, t_s), s.onset_s, s.failure_s, s.law) * s.magnitude_si
            out[name][:, f.pump] = np.maximum(out[name][:, f.pump], value)
        return out

    def _emitters(self, t_s: FloatArray) -> FloatArray:
        """Leak emitter coefficients (K, L, n_leak_junctions)."""
        out = np.zeros((t_s.size, self.registry.n_lines, len(self._leak_junctions)))
        for f in self._leaks:
            s = f.spec
            out[:, f.line, f.leak] += severity(t_s, s.onset_s, s.failure_s, s.law) * f.coeff
        return out

    def _record_truth(
        self,
        steps: IntArray,
        speed: FloatArray,
        running: NDArray[np.bool_],
        pumps: dict[str, FloatArray],
        ratio: FloatArray,
        cavitation: FloatArray,
        wear: dict[str, FloatArray],
        feats: FloatArray,
    ) -> None:
        sel = np.flatnonzero(steps % self._truth_every == 0)
        if sel.size == 0:
            return
        npshr = pumps["npsh_required_m"][sel] * (1.0 + wear["npshr_rise"][sel])
        cols = {
            "running": running[sel].astype(np.float64),
            "speed": speed[sel],
            "flow_m3h": pumps["flow_m3s"][sel] * M3H_PER_M3S,
            "head_m": np.where(running[sel], pumps["head_m"][sel], 0.0),
            "percent_bep": pumps["percent_bep"][sel],
            "npsh_margin_m": np.where(np.isfinite(ratio[sel]), ratio[sel] * npshr - npshr, np.nan),
            "cavitation": cavitation[sel],
            "bearing_de": wear["bearing_de"][sel],
            "bearing_nde": wear["bearing_nde"][sel],
            "impeller_wear": wear["impeller_wear"][sel],
            "npshr_rise": wear["npshr_rise"][sel],
            "seal_leak_m3h": wear["seal_damage_m3s"][sel] * M3H_PER_M3S,
            "cooling_loss": wear["cooling_loss"][sel],
            "strainer_dp_bar": wear["strainer_dp_pa"][sel] / BAR_PA,
        }
        self._truth_pumps.append((steps[sel], cols))
        if self._leaks:
            flows = self.hydraulics.leak_flows_m3s(feats[sel])  # (n, L, n_leaks)
            per = np.stack([flows[:, f.line, f.leak] for f in self._leaks], axis=1)
            self._truth_leaks.append((steps[sel], per * M3H_PER_M3S))

    # ------------------------------------------------------------------ truth

    def _ts(self, steps: IntArray) -> pd.api.extensions.ExtensionArray:
        return utc_timestamps(self._start_ns + np.asarray(steps, dtype=np.int64) * round(self.step_s * 1e9))

    def ground_truth(self) -> GroundTruth:
        """Fault labels, hidden state, leak flows and the operations log so far (evaluation only)."""
        start = self.scenario.start
        rows = []
        for f in self.scenario.faults:
            info = MODE_INFO[f.mode]
            station = f.target.split(".")[0]
            rows.append(
                {
                    "asset": f.target,
                    "station": station,
                    "mode": f.mode.value,
                    "onset_ts": start + pd.Timedelta(seconds=f.onset_s),
                    "failure_ts": start + pd.Timedelta(seconds=f.failure_s),
                    "law": f.law,
                    "magnitude": f.magnitude,
                    "unit": info.unit,
                    "trip": f.trip and f.mode is not Mode.LEAK,
                    "meaning": info.meaning,
                }
            )
        labels = pd.DataFrame(
            rows,
            columns=[
                "asset",
                "station",
                "mode",
                "onset_ts",
                "failure_ts",
                "law",
                "magnitude",
                "unit",
                "trip",
                "meaning",
            ],
        )
        names = np.array([p.name for p in self.registry.pumps], dtype=object)
        if self._truth_pumps:
            steps = np.concatenate([s for s, _ in self._truth_pumps])
            data: dict[str, object] = {
                "ts": self._ts(np.repeat(steps, self._n_pumps)),
                "asset": np.tile(names, steps.size),
            }
            for col in _HIDDEN:
                data[col] = np.concatenate([c[col] for _, c in self._truth_pumps]).ravel()
            pumps = pd.DataFrame(data)
            pumps["running"] = pumps["running"].astype(bool)
        else:
            pumps = pd.DataFrame(columns=["ts", "asset", *_HIDDEN])
        leak_names = np.array([f.spec.target for f in self._leaks], dtype=object)
        if self._truth_leaks:
            steps = np.concatenate([s for s, _ in self._truth_leaks])
            flows = np.concatenate([v for _, v in self._truth_leaks])
            leaks = pd.DataFrame(
                {
                    "ts": self._ts(np.repeat(steps, len(self._leaks))),
                    "asset": np.tile(leak_names, steps.size),
                    "leak_m3h": flows.ravel(),
                }
            )
        else:
            leaks = pd.DataFrame(columns=["ts", "asset", "leak_m3h"])
        ops = pd.DataFrame(
            {
                "ts": self._ts(np.array([c.step for c in self._ops_log], dtype=np.int64)),
                "action": [c.action for c in self._ops_log],
                "pumps": [",".join(str(names[p]) for p in c.pumps) for c in self._ops_log],
                "value": [c.value * (self._rpm[c.pumps[0]] if c.action == "speed" else 1.0) for c in self._ops_log],
                "source": [c.source for c in self._ops_log],
            }
        )
        return GroundTruth(labels, pumps, leaks, ops)


def _npsh_ratio(
    pumps: dict[str, FloatArray],
    strainer_pa: FloatArray,
    rho_g: float,
    npshr_rise: FloatArray,
    running: NDArray[np.bool_],
) -> FloatArray:
    """NPSHa at the impeller eye (after the strainer) over NPSHr raised by cavitation damage; inf where unknown."""
    npsha = pumps["npsh_available_m"] - strainer_pa / rho_g
    npshr = pumps["npsh_required_m"] * (1.0 + npshr_rise)
    ok = running & np.isfinite(npshr) & (npshr > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.where(ok, npsha / np.where(ok, npshr, 1.0), np.inf), dtype=np.float64)


def _leak_target(fault: FaultSpec, registry: Registry, network: Network) -> tuple[int, str]:
    """(0-based line, junction id) of a leak's target ``LINEnn.<junction>``."""
    line_name, _, junction = fault.target.partition(".")
    if not (line_name.startswith("LINE") and line_name[4:].isdigit()):
        raise PlantError(f"leak target {fault.target!r}: must be LINEnn.<junction id>")
    line = int(line_name[4:])
    if not 1 <= line <= registry.n_lines:
        raise PlantError(f"leak target {fault.target!r}: the fleet has lines 1..{registry.n_lines}")
    if junction not in {j.id for j in network.junctions}:
        raise PlantError(f"leak target {fault.target!r}: {junction!r} is not a junction of {network.name!r}")
    return line - 1, junction


def _scenario_network(scenario: Scenario) -> Network:
    """The scenario's network: ``reference`` or a file path (relative to the scenario's folder)."""
    if scenario.network == "reference":
        return load_network()
    path = Path(scenario.network)
    if not path.is_absolute() and scenario.base_dir is not None:
        path = Path(scenario.base_dir) / path
    try:
        return load_network(path)
    except ValueError as exc:
        raise ScenarioError(f"scenario {scenario.name!r}: {exc}") from exc
