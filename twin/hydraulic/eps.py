"""Extended-period simulation: patterns, simple controls and tank levels over time.

Each scenario of a batch advances on its own clock, with EPANET 2.2's time-step
rules (hydraulic step, next pattern period, next report time, time for a tank
to fill or drain, time for a tank to reach a control level, time controls),
while every step's hydraulics is one batched solve. A steady state is the
first step of this loop, so single-period solves see the same patterns and
controls at time 0 that EPANET applies.

Simplification: controls on junction pressures are evaluated between time
steps, not inside the solver's iterations as EPANET's pswitch does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pumptwin.twin.hydraulic.network import LinkStatus, NetworkError, Rule, RuleAction, RulePremise
from pumptwin.twin.hydraulic.solver import (
    ACTIVE,
    CLOSED,
    FCV,
    FT,
    GPV,
    HTOL,
    OPEN,
    PBV,
    PIPE,
    PRV,
    PSV,
    PUMP,
    QZERO,
    BatchResult,
    FloatArray,
    HydraulicModel,
    IntArray,
    ScenarioBatch,
    base_batch,
    solve_batch,
)
from pumptwin.twin.safety import shorten
from pumptwin.twin.units import DAY_S

LOW, HIGH, TIMER, TIMEOFDAY = range(4)
BYTES_PER_MB = 1e6
"""Bytes in one MB, as memory limits are given."""
STEP_BOOKKEEPING_BYTES = 160
"""Memory of one reporting time besides its arrays: its time in a list and in an index (Python objects), bytes."""
NEGATIVE_PRESSURE_TOLERANCE_M = 1e-6
"""Pressure head below which a junction counts as under negative pressure, m (rounding aside, EPANET's < 0)."""


@dataclass(frozen=True, slots=True)
class NegativePressure:
    """The lowest pressure a junction reaches over a run.

    Attributes:
        node: Junction id.
        pressure_m: Lowest pressure head, m (negative).
        time_s: Reporting time at which it occurs, s.
    """

    node: str
    pressure_m: float
    time_s: int


@dataclass(frozen=True, slots=True)
class RunTimes:
    """Validated clock of an extended-period run, whole seconds (EPANET counts in seconds).

    Attributes:
        duration_s: Simulated time, s (0: the steady state at time 0).
        hydraulic_step_s: Hydraulic time step, s (>= 1).
        report_step_s: Reporting time step, s (>= 1).
        report_start_s: First reporting time, s.
    """

    duration_s: int
    hydraulic_step_s: int
    report_step_s: int
    report_start_s: int

    @property
    def n_report_times(self) -> int:
        """How many reporting times the run records (1 for a steady state)."""
        if self.duration_s <= 0:
            return 1
        return max(0, (self.duration_s - self.report_start_s) // self.report_step_s + 1)


def run_times(model: HydraulicModel, duration_s: float | None = None) -> RunTimes:
    """The run's duration and time steps, checked before anything is allocated.

    Args:
        model: Compiled network (its [TIMES] options apply).
        duration_s: Simulated time in s (default: the network's DURATION).

    Returns:
        Duration and steps in whole seconds.

    Raises:
        NetworkError: A duration that is not a finite number >= 0, or a hydraulic, pattern or
            report time step that is not a finite number of at least 1 s.
    """
    opts = model.network.options
    duration = opts.duration_s if duration_s is None else duration_s
    if not (isinstance(duration, int | float) and math.isfinite(duration) and duration >= 0):
        raise NetworkError(f"duration must be a finite number of seconds >= 0, got {shorten(duration)} s")
    steps = {
        "hydraulic time step": opts.hydraulic_step_s,
        "pattern time step": opts.pattern_step_s,
        "report time step": opts.report_step_s,
    }
    for what, value in steps.items():
        if not (math.isfinite(value) and round(value) >= 1):
            raise NetworkError(f"{model.network.name}: {what} must be a finite time of at least 1 s, got {value:g} s")
    if not math.isfinite(opts.report_start_s) or opts.report_start_s < 0:
        raise NetworkError(
            f"{model.network.name}: report start must be a finite time >= 0, got {opts.report_start_s} s"
        )
    return RunTimes(
        duration_s=int(round(duration)),
        hydraulic_step_s=int(round(opts.hydraulic_step_s)),
        report_step_s=int(round(opts.report_step_s)),
        report_start_s=int(round(opts.report_start_s)),
    )


def result_bytes(model: HydraulicModel, n_times: int, n_scenarios: int = 1) -> int:
    """Memory of an `EpsResult`, bytes: heads, flows, statuses, demands, speeds and flags at every reporting time.

    Args:
        model: Compiled network.
        n_times: Reporting times.
        n_scenarios: Scenarios in the batch.

    Returns:
        Bytes the result arrays and their bookkeeping take.
    """
    per_row = 8 * (model.n_nodes + 2 * model.n_links + model.n_junctions + len(model.pump_link)) + 1
    return n_times * (n_scenarios * per_row + 8 + STEP_BOOKKEEPING_BYTES)


def check_memory(needed_bytes: float, limit_mb: float, what: str, setting: str = "") -> None:
    """Refuse a run whose estimated memory is above the limit.

    Args:
        needed_bytes: Estimated memory, bytes.
        limit_mb: Largest memory allowed, MB.
        what: The run, for the message (e.g. ``Net1: 3600 s in 2 reporting times``).
        setting: Where the limit is set, for the message.

    Raises:
        NetworkError: When ``needed_bytes`` is above ``limit_mb``; the message names both.
    """
    if not needed_bytes <= limit_mb * BYTES_PER_MB:
        raise NetworkError(
            f"{what}: the results would need about {needed_bytes / BYTES_PER_MB:.4g} MB, "
            f"above the limit of {limit_mb:g} MB{f' ({setting})' if setting else ''}; "
            "shorten the run or lengthen its report step"
        )


def negative_pressures(
    model: HydraulicModel, result: EpsResult, scenario: int = 0, *, demand_only: bool = True
) -> list[NegativePressure]:
    """Junctions whose pressure falls below zero at some reporting time, worst first (EPANET's warning).

    EPANET warns of "negative pressures" at junctions that have a demand (or an emitter) where
    the pressure head is below zero: the demand cannot be delivered there, so the result is not
    physical. ``demand_only=False`` looks at every junction.

    Args:
        model: Compiled network.
        result: From `simulate`.
        scenario: Batch row.
        demand_only: Only junctions with a positive demand at that time or an emitter.

    Returns:
        One entry per junction: its lowest pressure head (m) and when (s).
    """
    return pressures_below(model, result, -NEGATIVE_PRESSURE_TOLERANCE_M, scenario, demand_only=demand_only)


def pressures_below(
    model: HydraulicModel, result: EpsResult, threshold_m: float, scenario: int = 0, *, demand_only: bool = True
) -> list[NegativePressure]:
    """Junctions whose pressure head falls below ``threshold_m`` (m) at some reporting time, worst first.

    As `negative_pressures` (which is this below zero), with any threshold: e.g. the required pressure
    of pressure-driven demand, below which EPANET would deliver less than the demand.
    """
    nj = model.n_junctions
    pressure = result.head_m[:, scenario, :nj] - model.elevation_m[:nj]
    low = pressure < threshold_m
    if demand_only:
        emitters = np.array([j.emitter_coeff > 0 for j in model.network.junctions], dtype=bool)
        low &= (result.demand_m3s[:, scenario, :] > 0) | emitters
    masked = np.where(low, pressure, np.inf)
    worst_t = np.argmin(masked, axis=0)
    worst = masked[worst_t, np.arange(nj)]
    out = [
        NegativePressure(model.node_ids[j], float(worst[j]), int(result.times_s[worst_t[j]]))
        for j in np.flatnonzero(np.isfinite(worst))
    ]
    return sorted(out, key=lambda n: n.pressure_m)


@dataclass(frozen=True)
class _Controls:
    """Simple controls as arrays: kind, link, node (-1 for time), grade head (m), time (s), status, setting."""

    kind: IntArray
    link: IntArray
    node: IntArray
    grade_m: FloatArray
    time_s: IntArray
    status: IntArray
    setting: FloatArray


@dataclass
class EpsResult:
    """Results at each reporting time (SI).

    Attributes:
        times_s: (T,) reporting times in s.
        head_m: (T, B, n_nodes) heads in m.
        flow_m3s: (T, B, n_links) flows in m3/s.
        status: (T, B, n_links) link status codes.
        demand_m3s: (T, B, n_junctions) junction demands applied in m3/s.
        pump_speed: (T, B, n_pumps) relative pump speeds applied.
        converged: (T, B) whether each solve converged.
    """

    times_s: IntArray
    head_m: FloatArray
    flow_m3s: FloatArray
    status: IntArray
    demand_m3s: FloatArray
    converged: NDArray[np.bool_]
    pump_speed: FloatArray


def _compile_controls(model: HydraulicModel) -> _Controls:
    net = model.network
    rows: list[tuple[int, int, int, float, int, int, float]] = []
    for c in net.controls:
        k = model.link_index[c.link]
        ltype = int(model.link_type[k])
        status, setting = _control_action(ltype, c.status, c.setting)
        if c.node is not None:
            n = model.node_index[c.node]
            level = c.above if c.above is not None else c.below
            assert level is not None
            rows.append((HIGH if c.above is not None else LOW, k, n, model.elevation_m[n] + level, -1, status, setting))
        elif c.time_s is not None:
            rows.append((TIMER, k, -1, 0.0, round(c.time_s), status, setting))
        else:
            assert c.clocktime_s is not None
            rows.append((TIMEOFDAY, k, -1, 0.0, round(c.clocktime_s) % int(DAY_S), status, setting))
    cols = list(zip(*rows, strict=True)) if rows else [()] * 7
    return _Controls(
        kind=np.array(cols[0], np.int64),
        link=np.array(cols[1], np.int64),
        node=np.array(cols[2], np.int64),
        grade_m=np.array(cols[3], np.float64),
        time_s=np.array(cols[4], np.int64),
        status=np.array(cols[5], np.int64),
        setting=np.array(cols[6], np.float64),
    )


def _control_action(ltype: int, status: LinkStatus | None, setting: float | None) -> tuple[int, float]:
    """Status code and setting a control imposes (EPANET setlinkstatus / setlinksetting)."""
    if setting is not None:
        if ltype == PUMP:
            return (CLOSED if setting == 0.0 else OPEN), setting
        if ltype in (PIPE, GPV):
            return OPEN, np.nan
        return ACTIVE, setting
    is_open = status != LinkStatus.CLOSED
    if ltype == PUMP:
        return (OPEN, 1.0) if is_open else (CLOSED, 0.0)
    return (OPEN if is_open else CLOSED), np.nan


class _Patterns:
    """Pattern multipliers by period, for demands, reservoir heads and pump speeds."""

    def __init__(self, model: HydraulicModel) -> None:
        net = model.network
        self.step = int(round(net.options.pattern_step_s))
        self.start = int(round(net.options.pattern_start_s))
        ids = {p.id: p for p in net.patterns}
        default = net.options.default_pattern if net.options.default_pattern in ids else None
        self._ids = ids
        self._cats = [
            (j, d.base_m3s * net.options.demand_multiplier, d.pattern if d.pattern is not None else default)
            for j, junction in enumerate(net.junctions)
            for d in junction.demands
        ]
        self._res = [(i, r.head_m, r.pattern) for i, r in enumerate(net.reservoirs) if r.pattern is not None]
        self._pumps = [(i, p.speed_pattern) for i, p in enumerate(net.pumps) if p.speed_pattern is not None]
        self.nj = model.n_junctions
        self._cache: dict[int, FloatArray] = {}

    def _mult(self, pattern: str | None, period: int) -> float:
        return 1.0 if pattern is None else self._ids[pattern].at(period)

    def period(self, t_s: IntArray) -> IntArray:
        """Pattern period index at times ``t_s``."""
        return (t_s + self.start) // self.step

    def demand(self, period: int) -> FloatArray:
        """(n_junctions,) network demand in m3/s in a pattern period."""
        if period not in self._cache:
            d = np.zeros(self.nj)
            for j, base, pat in self._cats:
                d[j] += base * self._mult(pat, period)
            self._cache[period] = d
        return self._cache[period]

    def apply(
        self,
        rows: IntArray,
        periods: IntArray,
        batch: ScenarioBatch,
        scale: FloatArray,
        speeds: FloatArray,
        status: IntArray,
        pump_link: IntArray,
    ) -> None:
        """Write demands, reservoir heads and pump speeds of ``rows`` at their periods into ``batch`` and state."""
        for period in np.unique(periods):
            sel = rows[periods == period]
            batch.demand_m3s[sel] = self.demand(int(period)) * scale[sel]
            for i, head, pat in self._res:
                batch.fixed_head_m[sel, i] = head * self._mult(pat, int(period))
            for i, pat in self._pumps:
                s = self._mult(pat, int(period))
                speeds[sel, i] = s
                k = pump_link[i]
                if s == 0.0:
                    status[sel, k] = CLOSED
                else:
                    status[sel, k] = np.where(status[sel, k] <= CLOSED, OPEN, status[sel, k])


class _Tanks:
    """Tank geometry: volume (m3) from head (m) and back, cylindrical or from a volume curve."""

    def __init__(self, model: HydraulicModel) -> None:
        net = model.network
        self.offset = len(net.reservoirs)
        self.elev = np.array([t.elevation_m for t in net.tanks])
        self.area = np.array([np.pi * t.diameter_m**2 / 4.0 for t in net.tanks])
        self.hmin = np.array([t.elevation_m + t.min_level_m for t in net.tanks])
        self.hmax = np.array([t.elevation_m + t.max_level_m for t in net.tanks])
        self.overflow = np.array([t.overflow for t in net.tanks], dtype=bool)
        self.curves = [net.curve(t.volume_curve) if t.volume_curve else None for t in net.tanks]
        self.vmin = np.array(
            [
                self._curve_volume(i, t.min_level_m)
                if self.curves[i] is not None
                else (t.min_volume_m3 if t.min_volume_m3 > 0 else self.area[i] * t.min_level_m)
                for i, t in enumerate(net.tanks)
            ]
        )
        self.vmax = self.volume(self.hmax[None, :])[0] if len(net.tanks) else np.zeros(0)

    def _curve_volume(self, i: int, depth: float | FloatArray) -> FloatArray:
        c = self.curves[i]
        assert c is not None
        return np.asarray(np.interp(depth, c.x, c.y), dtype=np.float64)

    def volume(self, head: FloatArray) -> FloatArray:
        """(B, n_tanks) volumes in m3 at heads ``head`` (B, n_tanks) in m."""
        v: FloatArray = self.vmin + (head - self.hmin) * self.area
        for i, c in enumerate(self.curves):
            if c is not None:
                v[:, i] = self._curve_volume(i, head[:, i] - self.elev[i])
        return v

    def head(self, volume: FloatArray) -> FloatArray:
        """(B, n_tanks) heads in m for volumes (B, n_tanks) in m3."""
        h: FloatArray = self.hmin + (volume - self.vmin) / self.area
        for i, c in enumerate(self.curves):
            if c is not None:
                h[:, i] = self.elev[i] + np.interp(volume[:, i], c.y, c.x)
        return h


def simulate(  # noqa: PLR0915 - the time loop reads best in one place
    model: HydraulicModel,
    batch: ScenarioBatch | None = None,
    *,
    duration_s: float | None = None,
    accuracy: float = 1e-6,
    max_trials: int | None = None,
    max_memory_mb: float | None = None,
) -> EpsResult:
    """Run an extended-period simulation of every scenario in ``batch``.

    Args:
        model: Compiled network (its patterns, controls and time options apply).
        batch: Initial conditions per scenario (default: the network's own). Its
            demands scale the network's patterned demands junction by junction
            (a demand of twice the base doubles that junction's demand at every
            step); its tank heads are the initial levels.
        duration_s: Simulated time in s (default: the network's DURATION; 0 gives
            the steady state at time 0).
        accuracy: Convergence limit of each solve (relative flow change).
        max_trials: Iteration limit per solve.
        max_memory_mb: Largest memory the results may take, MB (None: no limit); checked
            before anything is allocated.

    Returns:
        Heads, flows, statuses and demands at each reporting time.

    Raises:
        NetworkError: A duration that is not a finite number >= 0, a time step under 1 s, or
            results above ``max_memory_mb``.
    """
    net = model.network
    opts = net.options
    batch = batch if batch is not None else base_batch(model)
    n_b = batch.size
    times = run_times(model, duration_s)
    if max_memory_mb is not None:
        check_memory(
            result_bytes(model, times.n_report_times, n_b),
            max_memory_mb,
            f"{net.name}: {times.duration_s} s in {times.n_report_times} reporting times",
        )
    duration, hstep = times.duration_s, times.hydraulic_step_s
    rstep, rstart = times.report_step_s, times.report_start_s
    tstart = int(round(opts.start_clocktime_s))
    nj = model.n_junctions
    nr = len(net.reservoirs)
    patterns = _Patterns(model)
    tanks = _Tanks(model)
    controls = _compile_controls(model)

    base = model.base_demand_m3s
    scale = np.where(base != 0.0, batch.demand_m3s / np.where(base != 0.0, base, 1.0), 1.0)
    work = batch.take(slice(None))
    status = work.link_status.copy()
    speeds = work.pump_speed.copy()
    vset = work.valve_setting.copy()
    tank_v = tanks.volume(work.fixed_head_m[:, nr:]) if len(net.tanks) else np.zeros((n_b, 0))
    tank_inflow = np.zeros((n_b, len(net.tanks)))
    fixed_inflow = np.zeros((n_b, model.n_nodes - nj))
    rules = _Rules(model) if net.rules else None
    htime = np.zeros(n_b, np.int64)
    rtime = np.full(n_b, rstart, np.int64)
    flows: FloatArray | None = None
    report_times = list(range(rstart, duration + 1, rstep)) if duration > 0 else [0]
    n_t = len(report_times)
    out = EpsResult(
        times_s=np.array(report_times, np.int64),
        head_m=np.full((n_t, n_b, model.n_nodes), np.nan),
        flow_m3s=np.full((n_t, n_b, model.n_links), np.nan),
        status=np.zeros((n_t, n_b, model.n_links), np.int64),
        demand_m3s=np.zeros((n_t, n_b, nj)),
        pump_speed=np.zeros((n_t, n_b, len(model.pump_link))),
        converged=np.zeros((n_t, n_b), dtype=bool),
    )
    report_index = {t: i for i, t in enumerate(report_times)}
    heads = np.tile(model.elevation_m, (n_b, 1))
    heads[:, nj:] = work.fixed_head_m
    active = np.ones(n_b, dtype=bool)
    while active.any():
        rows = np.flatnonzero(active)
        patterns.apply(rows, patterns.period(htime[rows]), work, scale, speeds, status, model.pump_link)
        if len(net.tanks):
            heads[rows, nj + nr :] = tanks.head(tank_v[rows])
            work.fixed_head_m[rows, nr:] = heads[rows, nj + nr :]
        heads[rows, nj : nj + nr] = work.fixed_head_m[rows, :nr]
        _apply_controls(
            controls, rows, htime, tstart, heads, tanks, tank_v, tank_inflow, nj, nr, status, speeds, vset, model
        )
        step = ScenarioBatch(
            demand_m3s=work.demand_m3s[rows],
            fixed_head_m=work.fixed_head_m[rows],
            pump_speed=speeds[rows],
            link_status=status[rows],
            valve_setting=vset[rows],
            emitter_coeff=work.emitter_coeff[rows],
        )
        res = solve_batch(
            model,
            step,
            accuracy=accuracy,
            max_trials=max_trials,
            initial_flow_m3s=None if flows is None else flows[rows],
        )
        if flows is None:
            flows = np.zeros((n_b, model.n_links))
        flows[rows] = res.flow_m3s
        status[rows] = res.status
        heads[rows] = res.head_m
        tank_inflow[rows] = res.fixed_inflow_m3s[:, nr:]
        fixed_inflow[rows] = res.fixed_inflow_m3s
        _record(out, report_index, rows, htime, res, step)
        finished = htime[rows] >= duration
        active[rows[finished]] = False
        go = rows[~finished]
        if go.size == 0:
            break
        tstep = _time_step(
            go,
            htime,
            rtime,
            duration,
            hstep,
            patterns,
            tanks,
            tank_v,
            tank_inflow,
            heads,
            nj,
            nr,
            controls,
            tstart,
            status,
            speeds,
            vset,
            model,
        )
        if rules is not None and rules.rules:
            tstep = rules.advance(
                go,
                tstep,
                _State(htime, heads, flows, status, speeds, vset, work.demand_m3s, fixed_inflow, tank_v, tank_inflow,
                       tanks, tstart, nj, nr),
            )  # fmt: skip
        else:
            _update_tanks(go, tstep, tanks, tank_v, tank_inflow)
        htime[go] += tstep
        rtime[go] = np.where(htime[go] >= rtime[go], rtime[go] + rstep, rtime[go])
    return out


def _record(
    out: EpsResult, report_index: dict[int, int], rows: IntArray, htime: IntArray, res: BatchResult, step: ScenarioBatch
) -> None:
    for j, b in enumerate(rows):
        i = report_index.get(int(htime[b]))
        if i is not None:
            out.head_m[i, b] = res.head_m[j]
            out.flow_m3s[i, b] = res.flow_m3s[j]
            out.status[i, b] = res.status[j]
            out.demand_m3s[i, b] = step.demand_m3s[j]
            out.pump_speed[i, b] = step.pump_speed[j]
            out.converged[i, b] = res.flag[j] == 0


def _apply_controls(
    c: _Controls,
    rows: IntArray,
    htime: IntArray,
    tstart: int,
    heads: FloatArray,
    tanks: _Tanks,
    tank_v: FloatArray,
    inflow: FloatArray,
    nj: int,
    nr: int,
    status: IntArray,
    speeds: FloatArray,
    vset: FloatArray,
    model: HydraulicModel,
) -> None:
    """Apply simple controls whose condition holds (EPANET controls(), tank volumes within one second of flow)."""
    for i in range(len(c.kind)):
        kind = int(c.kind[i])
        if kind == TIMER:
            fire = htime[rows] == c.time_s[i]
        elif kind == TIMEOFDAY:
            fire = (htime[rows] + tstart) % int(DAY_S) == c.time_s[i]
        else:
            n = int(c.node[i])
            if n >= nj + nr:
                t = n - nj - nr
                v1 = tank_v[rows, t]
                v2 = tanks.volume(np.full((1, len(tanks.elev)), c.grade_m[i]))[0, t]
                vplus = np.abs(inflow[rows, t])
                fire = v1 <= v2 + vplus if kind == LOW else v1 >= v2 - vplus
            else:
                h = heads[rows, n]
                fire = h <= c.grade_m[i] + HTOL if kind == LOW else h >= c.grade_m[i] - HTOL
        if not fire.any():
            continue
        sel = rows[fire]
        _set_link(model, int(c.link[i]), sel, int(c.status[i]), float(c.setting[i]), status, speeds, vset)


def _set_link(
    model: HydraulicModel,
    k: int,
    sel: IntArray,
    new_status: int,
    new_setting: float,
    status: IntArray,
    speeds: FloatArray,
    vset: FloatArray,
) -> None:
    status[sel, k] = new_status
    if model.link_type[k] == PUMP:
        speeds[sel, int(np.flatnonzero(model.pump_link == k)[0])] = new_setting
    elif k in model.valve_link:
        vset[sel, int(np.flatnonzero(model.valve_link == k)[0])] = new_setting


def _time_step(
    go: IntArray,
    htime: IntArray,
    rtime: IntArray,
    duration: int,
    hstep: int,
    patterns: _Patterns,
    tanks: _Tanks,
    tank_v: FloatArray,
    inflow: FloatArray,
    heads: FloatArray,
    nj: int,
    nr: int,
    c: _Controls,
    tstart: int,
    status: IntArray,
    speeds: FloatArray,
    vset: FloatArray,
    model: HydraulicModel,
) -> IntArray:
    """Next time step (s) per scenario in ``go`` (EPANET timestep(), tanktimestep(), controltimestep())."""
    t_now = htime[go]
    tstep = np.full(go.size, hstep, np.int64)

    def shorten(t: IntArray, where: NDArray[np.bool_] | None = None) -> None:
        ok = (t > 0) & (t < tstep)
        if where is not None:
            ok &= where
        tstep[ok] = t[ok]

    shorten(((t_now + patterns.start) // patterns.step + 1) * patterns.step - patterns.start - t_now)
    shorten(rtime[go] - t_now)
    if tanks.elev.size:
        q = inflow[go]
        h = heads[go, nj + nr :]
        v = tank_v[go]
        fill = (q > QZERO) & (h < tanks.hmax)
        drain = (q < -QZERO) & (h > tanks.hmin)
        dv = np.where(fill, tanks.vmax - v, np.where(drain, tanks.vmin - v, 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(fill | drain, np.round(dv / np.where(q == 0, 1.0, q)), 0).astype(np.int64)
        for i in range(t.shape[1]):
            shorten(t[:, i])
    for i in range(len(c.kind)):
        kind = int(c.kind[i])
        t = np.zeros(go.size, np.int64)
        if kind in (LOW, HIGH):
            n = int(c.node[i])
            if n < nj + nr:
                continue
            ti = n - nj - nr
            h = heads[go, n]
            q = inflow[go, ti]
            grade = float(c.grade_m[i])
            reach = (np.abs(q) > QZERO) & (
                ((h < grade) & (kind == HIGH) & (q > 0)) | ((h > grade) & (kind == LOW) & (q < 0))
            )
            vg = tanks.volume(np.full((1, tanks.elev.size), grade))[0, ti]
            with np.errstate(divide="ignore", invalid="ignore"):
                t = np.where(reach, np.round((vg - tank_v[go, ti]) / np.where(q == 0, 1.0, q)), 0).astype(np.int64)
        elif kind == TIMER:
            t = np.where(c.time_s[i] > t_now, c.time_s[i] - t_now, 0)
        else:
            t1 = (t_now + tstart) % DAY_S
            t2 = int(c.time_s[i])
            t = np.where(t2 >= t1, t2 - t1, DAY_S - t1 + t2)
        k = int(c.link[i])
        changes = status[go, k] != c.status[i]
        if model.link_type[k] == PUMP:
            changes |= speeds[go, int(np.flatnonzero(model.pump_link == k)[0])] != c.setting[i]
        shorten(t, changes)
    return tstep


def _update_tanks(go: IntArray, tstep: IntArray, tanks: _Tanks, tank_v: FloatArray, inflow: FloatArray) -> None:
    """Advance tank volumes by net inflow times the step, clamped within a second of full or empty."""
    if not tanks.elev.size:
        return
    q = inflow[go]
    v = tank_v[go] + q * tstep[:, None]
    v = np.where((v + q >= tanks.vmax) & ~tanks.overflow, tanks.vmax, v)
    v = np.where(v - q <= tanks.vmin, tanks.vmin, v)
    tank_v[go] = v


_RELATIONS = {"=": 0, "<>": 1, "<": 2, ">": 3, "<=": 4, ">=": 5}
_SETTING_TOL = {PRV: 1e-3 * FT, PSV: 1e-3 * FT, PBV: 1e-3 * FT, FCV: 1e-3 * FT**3}
"""EPANET compares a rule's new setting with the link's within 0.001 of its internal unit (ft, cfs; else 0.001)."""


def _holds(x: float, relation: int, value: float, tol: float) -> bool:
    """EPANET's checkvalue: ``x <relation> value`` within ``tol``."""
    return not (
        (relation == 0 and abs(x - value) > tol)
        or (relation == 1 and abs(x - value) < tol)
        or (relation == 2 and x > value + tol)  # noqa: PLR2004 - relation codes of _RELATIONS
        or (relation == 4 and x > value - tol)  # noqa: PLR2004
        or (relation == 3 and x < value - tol)  # noqa: PLR2004
        or (relation == 5 and x < value + tol)  # noqa: PLR2004
    )


def _time_holds(t1: int, t2: int, relation: int, value: float) -> bool:
    """EPANET's checktime: inequalities against the time now, (in)equality within the interval since the last check."""
    if relation >= 2:  # noqa: PLR2004 - <, >, <=, >=
        return {2: t2 < value, 3: t2 > value, 4: t2 <= value, 5: t2 >= value}[relation]
    within = (value >= t1 or value <= t2) if t2 < t1 else (t1 <= value <= t2)
    return within if relation == 0 else not within


class _Rules:
    """Rule-based controls (EPANET rules.c), checked per scenario between hydraulic steps at the rule step."""

    def __init__(self, model: HydraulicModel) -> None:
        net = model.network
        self.model = model
        self.rules = [r for r in net.rules if r.enabled]
        hstep = int(round(net.options.hydraulic_step_s))
        step = int(round(net.options.rule_step_s)) or hstep // 10
        self.step = max(1, min(step, hstep))
        self.pump_of = {int(k): i for i, k in enumerate(model.pump_link)}
        self.valve_of = {int(k): i for i, k in enumerate(model.valve_link)}

    def advance(self, go: IntArray, tstep: IntArray, state: _State) -> IntArray:
        """Step tank levels through each scenario's time step at the rule step, stopping where a rule acts.

        Returns the time steps taken (EPANET ruletimestep); tank volumes are advanced in place.
        """
        taken = tstep.copy()
        for j, b in enumerate(go):
            tnow = int(state.htime[b])
            tmax = tnow + int(tstep[j])
            dt = min(self.step, int(tstep[j]))
            dt1 = min(self.step - tnow % self.step, int(tstep[j])) or dt
            t = tnow
            while True:
                t += dt1
                _update_tanks(np.array([b]), np.array([dt1]), state.tanks, state.tank_v, state.tank_inflow)
                if state.tanks.elev.size:
                    state.heads[b, state.nj + state.nr :] = state.tanks.head(state.tank_v[[b]])[0]
                if self.check(b, t, dt1, state):
                    break
                dt = min(dt, tmax - t)
                dt1 = dt
                if dt <= 0:
                    break
            taken[j] = t - tnow
        return taken

    def check(self, b: int, t: int, dt: int, state: _State) -> int:
        """Apply the actions of every rule whose premises hold (ELSE actions otherwise); how many changed a link."""
        chosen: dict[int, tuple[float, RuleAction]] = {}
        for rule in self.rules:
            actions = rule.then if self.premises(rule, b, t - dt + 1, t, state) else rule.otherwise
            for a in actions:
                k = self.model.link_index[a.link]
                if k not in chosen or rule.priority > chosen[k][0]:
                    chosen[k] = (rule.priority, a)
        return sum(self.act(b, k, a, state) for k, (_, a) in chosen.items())

    def premises(self, rule: Rule, b: int, t1: int, t2: int, state: _State) -> bool:
        """EPANET's evalpremises: AND binds each premise to the result so far, OR takes it when that is false."""
        result = True
        for p in rule.premises:
            if p.join == "OR":
                if not result:
                    result = self.premise(p, b, t1, t2, state)
            else:
                if not result:
                    return False
                result = self.premise(p, b, t1, t2, state)
        return result

    def premise(self, p: RulePremise, b: int, t1: int, t2: int, state: _State) -> bool:  # noqa: PLR0911, C901
        """Whether one premise holds in scenario ``b`` now."""
        m = self.model
        relation = _RELATIONS[p.relation]
        if p.variable in ("TIME", "CLOCKTIME"):
            if p.variable == "CLOCKTIME":
                t1, t2 = (t1 + state.tstart) % int(DAY_S), (t2 + state.tstart) % int(DAY_S)
            return _time_holds(t1, t2, relation, float(p.value or 0.0))
        if p.status is not None:
            code = int(state.status[b, m.link_index[p.element or ""]])
            now = "CLOSED" if code <= CLOSED else "ACTIVE" if code == ACTIVE else "OPEN"
            return (now == p.status.value) == (relation == 0)
        value, tol = float(p.value or 0.0), p.tolerance
        if p.object == "SYSTEM":
            d = state.demand[b]
            return _holds(float(d[d > 0].sum()), relation, value, tol)
        if p.object == "LINK":
            k = m.link_index[p.element or ""]
            if p.variable == "FLOW":
                return _holds(abs(float(state.flows[b, k])), relation, value, tol)
            if k in self.pump_of:
                return _holds(float(state.speeds[b, self.pump_of[k]]), relation, value, tol)
            setting = float(state.vset[b, self.valve_of[k]]) if k in self.valve_of else math.nan
            return not math.isnan(setting) and _holds(setting, relation, value, tol)
        n = m.node_index[p.element or ""]
        fixed = n - state.nj
        if p.variable in ("HEAD", "GRADE"):
            return _holds(float(state.heads[b, n]), relation, value, tol)
        if p.variable in ("PRESSURE", "LEVEL"):
            return _holds(float(state.heads[b, n] - m.elevation_m[n]), relation, value, tol)
        inflow = float(state.fixed_inflow[b, fixed]) if fixed >= 0 else float(state.demand[b, n])
        if p.variable == "DEMAND":
            return _holds(inflow, relation, value, tol)
        ti = fixed - state.nr
        if p.variable == "FILLTIME" and inflow > QZERO:
            return _holds((state.tanks.vmax[ti] - state.tank_v[b, ti]) / inflow, relation, value, tol)
        if p.variable == "DRAINTIME" and inflow < -QZERO:
            return _holds((state.tanks.vmin[ti] - state.tank_v[b, ti]) / inflow, relation, value, tol)
        return False

    def act(self, b: int, k: int, a: RuleAction, state: _State) -> bool:  # noqa: PLR0911 - one per outcome
        """EPANET's takeactions for one link: open, close or set it when that changes it; whether it did."""
        m = self.model
        s = int(state.status[b, k])
        ltype = int(m.link_type[k])
        ip, iv = self.pump_of.get(k), self.valve_of.get(k)
        if a.status is not None and a.status != LinkStatus.ACTIVE and (s <= CLOSED) == (a.status == LinkStatus.OPEN):
            opening = a.status == LinkStatus.OPEN
            state.status[b, k] = OPEN if opening else CLOSED
            if ip is not None:
                state.speeds[b, ip] = 1.0 if opening else 0.0
            elif iv is not None and ltype != GPV:
                state.vset[b, iv] = np.nan
            return True
        if a.setting is None:
            return False
        x = float(a.setting)
        if ip is not None:
            if abs(x - state.speeds[b, ip]) <= _SETTING_TOL.get(PUMP, 1e-3):
                return False
            state.speeds[b, ip] = x
            if x > 0 and s <= CLOSED:
                state.status[b, k] = OPEN
            elif x == 0 and s > CLOSED:
                state.status[b, k] = CLOSED
            return True
        if iv is None:
            return False
        now = float(state.vset[b, iv])
        if not math.isnan(now) and abs(x - now) <= _SETTING_TOL.get(ltype, 1e-3):
            return False
        if ltype == FCV:
            state.status[b, k] = ACTIVE
        elif math.isnan(now) and s <= CLOSED:
            state.status[b, k] = OPEN
        state.vset[b, iv] = x
        return True


@dataclass(slots=True)
class _State:
    """The time loop's arrays that rules read and change (rows are scenarios)."""

    htime: IntArray
    heads: FloatArray
    flows: FloatArray
    status: IntArray
    speeds: FloatArray
    vset: FloatArray
    demand: FloatArray
    fixed_inflow: FloatArray
    tank_v: FloatArray
    tank_inflow: FloatArray
    tanks: _Tanks
    tstart: int
    nj: int
    nr: int


def initial_batch(model: HydraulicModel, size: int = 1) -> ScenarioBatch:
    """``size`` copies of the network's state at time 0: period-0 demands, reservoir heads and pump speeds.

    Controls are not applied (`simulate` applies them); the batch is ready for `solve_batch`.
    """
    batch = base_batch(model, size)
    patterns = _Patterns(model)
    rows = np.arange(size)
    patterns.apply(
        rows,
        np.zeros(size, np.int64),
        batch,
        np.ones((size, model.n_junctions)),
        batch.pump_speed,
        batch.link_status,
        model.pump_link,
    )
    return batch
