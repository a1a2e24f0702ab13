"""What-if scenarios on a network: changes to the base operating state, solved together in one batch.

A `WhatIf` is a named list of changes to the base operating state: pump speeds
(one factor for every running pump, or a speed per pump), pumps started,
stopped or tripped, link status and valve settings (rerouting, throttling),
demand factors and demands, fixed heads (absolute or as a change, e.g. a lower
suction level), leaks by emitter coefficient or by leak flow, and a throughput
target. `evaluate` turns a list of them into one `ScenarioBatch` and solves it.
A throughput target (a factor on the base state's flow, whatever else the
what-if changes) costs two more batched solves: the base state, and a grid of
41 common speed factors on the running pumps, interpolated. A leak given as a
flow costs a few more: its emitter coefficient C in q = C p^n is found by a
secant iteration on ln C until the solved leak matches. A leak larger than the
line can feed at that node (its pressure falls to zero as C grows) is not
reached; the result holds the leak achieved and `twin.whatif.assess` reports both.

The results are read by the modules beside this one: the line's main path and its chainage in
`twin.whatif.path`, the limits a scenario is checked against in `twin.whatif.limits`, the report
(operating points, pressure profile, margins, energy, violations) in `twin.whatif.report`, and
`twin.whatif.assess`, which turns a solved batch into that report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from pumptwin.twin.hydraulic.metrics import LineMetrics, PumpMetrics, line_metrics, pump_assets, pump_metrics
from pumptwin.twin.hydraulic.network import NetworkError
from pumptwin.twin.hydraulic.pumps import POR_FRACTIONS
from pumptwin.twin.hydraulic.solver import (
    ACTIVE,
    CLOSED,
    OPEN,
    FloatArray,
    HydraulicModel,
    ScenarioBatch,
    base_batch,
    solve_batch,
)
from pumptwin.twin.units import J_PER_KWH, M3H_PER_M3S, PA_PER_MPA, W_PER_KW

LINK_STATUS_CODES = {"OPEN": OPEN, "CLOSED": CLOSED, "ACTIVE": ACTIVE}
"""Link status names a what-if may set."""
LEAK_ITERATIONS = 10
"""Most batched solves used to match leaks given as a flow (a secant step on ln C each)."""
LEAK_MATCH = 1e-4
"""Relative difference of solved and requested leak at which the iteration stops (-)."""
LEAK_COEFF_MAX_M3S = 1e3
"""Largest emitter coefficient tried, m3/s per m^n: an opening so large that the node's pressure is ~0."""
LEAK_STEP_MAX = math.log(1e3)
"""Largest change of ln C in one iteration (-)."""
LEAK_STEP_MIN = 1e-12
"""Change of ln C below which a leak's secant slope is not updated (-)."""
LEAK_ELASTICITY_MIN = 0.02
"""Smallest d ln q / d ln C used in a secant step (-): a leak the line can hardly feed more takes long steps."""
NO_FLOW_M3S = 1e-6
"""Flow below which a line counts as not delivering, m3/s."""


@dataclass(frozen=True)
class WhatIf:
    """A named change to the base operating state.

    Attributes:
        name: Label shown in reports.
        speed_factor: Multiplier on the speed of every running pump (1.0 = unchanged).
        pumps_off: Pump ids to stop.
        pumps_on: Pump ids to start (at their rated speed unless speed_factor applies).
        demand_factor: Multiplier on every junction demand.
        fixed_head_m: New heads (m) for reservoirs or tanks, by id.
        leaks: Junction id to leak emitter coefficient C (m3/s per m^0.5 of pressure head).
        throughput_factor: Target flow through ``throughput_link`` relative to the
            base state (not to this what-if's other changes); running pump speeds are
            scaled together to meet it.
        throughput_link: Link whose flow is the throughput.
        pump_speed: Relative speed (1.0 = rated) by pump id; a stopped pump given a speed > 0
            starts, 0 stops it. Applied after ``speed_factor``.
        trips: Pump ids that trip: stopped in the steady result and checked for surge when a
            surge check is given to `assess`.
        link_status: ``OPEN`` or ``CLOSED`` (or ``ACTIVE`` for a control valve) by pipe or valve id.
        valve_setting: New setting by valve id (PRV/PSV/PBV m of head, FCV m3/s, TCV loss
            coefficient); the valve becomes active.
        demand_m3s: New demand (m3/s) by junction id, applied after ``demand_factor``.
        fixed_head_delta_m: Change of head (m) by reservoir or tank id (negative: lower).
        leak_flow_m3s: Leak flow (m3/s) by junction id; its emitter coefficient is found so that
            the solved leak equals it.
        notes: Free text shown with the result (e.g. how a leak's place was chosen).
    """

    name: str
    speed_factor: float = 1.0
    pumps_off: tuple[str, ...] = ()
    pumps_on: tuple[str, ...] = ()
    demand_factor: float = 1.0
    fixed_head_m: dict[str, float] = field(default_factory=dict)
    leaks: dict[str, float] = field(default_factory=dict)
    throughput_factor: float | None = None
    throughput_link: str | None = None
    pump_speed: dict[str, float] = field(default_factory=dict)
    trips: tuple[str, ...] = ()
    link_status: dict[str, str] = field(default_factory=dict)
    valve_setting: dict[str, float] = field(default_factory=dict)
    demand_m3s: dict[str, float] = field(default_factory=dict)
    fixed_head_delta_m: dict[str, float] = field(default_factory=dict)
    leak_flow_m3s: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.speed_factor >= 0 or not self.demand_factor >= 0:
            raise NetworkError(f"what-if {self.name!r}: factors must be >= 0")
        if self.throughput_factor is not None and (self.throughput_link is None or self.throughput_factor <= 0):
            raise NetworkError(f"what-if {self.name!r}: a throughput target needs a link and a factor > 0")
        for pid, speed in self.pump_speed.items():
            if not (math.isfinite(speed) and speed >= 0):
                raise NetworkError(f"what-if {self.name!r}: speed of pump {pid!r} must be >= 0, got {speed}")
        for lid, status in self.link_status.items():
            if status not in LINK_STATUS_CODES:
                raise NetworkError(
                    f"what-if {self.name!r}: status of link {lid!r} must be OPEN or CLOSED, got {status!r}"
                )
        for what, values in (("leak", self.leaks), ("leak flow", self.leak_flow_m3s), ("demand", self.demand_m3s)):
            for nid, value in values.items():
                if not (math.isfinite(value) and (value >= 0 or what == "demand")):
                    raise NetworkError(f"what-if {self.name!r}: {what} at {nid!r} must be a number >= 0, got {value}")
        for vid, setting in self.valve_setting.items():
            if not math.isfinite(setting):
                raise NetworkError(f"what-if {self.name!r}: setting of valve {vid!r} is not a number")


@dataclass
class WhatIfResult:
    """Solved what-ifs: the batch, its solution and derived metrics (leading axis = scenario).

    Attributes:
        flag: (B,) solver flag per scenario (CONVERGED, NOT_CONVERGED, ILL_CONDITIONED, DISCONNECTED).
        failures: Per scenario, why its target could not be met (None when it was).
    """

    scenarios: tuple[WhatIf, ...]
    batch: ScenarioBatch
    head_m: np.ndarray
    flow_m3s: np.ndarray
    status: np.ndarray
    converged: np.ndarray
    pumps: PumpMetrics
    line: LineMetrics
    leak_m3s: np.ndarray
    flag: np.ndarray | None = None
    failures: tuple[str | None, ...] = ()

    def summary(self, model: HydraulicModel, throughput_link: str | None = None) -> list[dict[str, object]]:
        """One row per scenario: throughput, pressures, margins, energy and violated limits."""
        if throughput_link is not None and throughput_link not in model.link_index:
            raise NetworkError(f"throughput link {throughput_link!r} does not exist")
        k_thr = model.link_index[throughput_link] if throughput_link else None
        rows: list[dict[str, object]] = []
        for i, sc in enumerate(self.scenarios):
            p = self.pumps
            run = p.running[i]
            maop_util = (
                np.nanmax(self.line.pipe_max_pressure_pa[i] / self.line.maop_pa)
                if np.isfinite(self.line.maop_pa).any()
                else np.nan
            )
            npsh = p.npsh_margin_m[i][run]
            pct = p.percent_bep[i][run]
            thr = float(self.flow_m3s[i, k_thr]) if k_thr is not None else float(np.sum(self.batch.demand_m3s[i]))
            energy = float(np.sum(p.shaft_power_w[i]))
            violations = []
            if np.isfinite(maop_util) and maop_util > 1.0:
                violations.append("MAOP")
            if npsh.size and np.nanmin(npsh) < 0:
                violations.append("NPSH")
            if pct.size and (pct.min() < 100 * POR_FRACTIONS[0] or pct.max() > 100 * POR_FRACTIONS[1]):
                violations.append("POR")
            if not self.converged[i]:
                violations.append("NOT CONVERGED")
            rows.append(
                {
                    "scenario": sc.name,
                    "throughput_m3h": thr * M3H_PER_M3S,
                    "pumps_running": int(run.sum()),
                    "max_pressure_mpa": float(np.nanmax(self.line.pressure_pa[i])) / PA_PER_MPA,
                    "min_pressure_mpa": float(np.nanmin(self.line.pressure_pa[i][: model.n_junctions])) / PA_PER_MPA,
                    "maop_use_pct": 100.0 * float(maop_util),
                    "min_npsh_margin_m": float(np.nanmin(npsh)) if npsh.size and np.isfinite(npsh).any() else np.nan,
                    "bep_pct_range": (float(pct.min()), float(pct.max())) if pct.size else (np.nan, np.nan),
                    "shaft_power_kw": energy / W_PER_KW,
                    "specific_energy_kwh_m3": energy / J_PER_KWH / thr if thr > 0 else np.nan,
                    "leak_m3h": float(self.leak_m3s[i].sum()) * M3H_PER_M3S,
                    "violations": ", ".join(violations) or "none",
                }
            )
        return rows


def build_batch(model: HydraulicModel, scenarios: list[WhatIf], base: ScenarioBatch | None = None) -> ScenarioBatch:
    """One batch row per what-if, applied to ``base`` (default: the network's own state).

    Raises:
        NetworkError: When a what-if names a pump, link, valve or node that does not exist
            or is of the wrong kind.
    """
    base = base if base is not None else base_batch(model)
    batch = base.take(np.zeros(len(scenarios), dtype=np.int64))
    for row, sc in enumerate(scenarios):
        _apply(model, batch, row, sc)
    return batch


def _apply(model: HydraulicModel, batch: ScenarioBatch, row: int, sc: WhatIf) -> None:  # noqa: PLR0912 - one branch per kind of change
    pump_index = {pid: i for i, pid in enumerate(model.pump_ids)}
    valve_index = {vid: i for i, vid in enumerate(model.valve_ids)}
    fixed_index = {nid: i - model.n_junctions for i, nid in enumerate(model.node_ids) if i >= model.n_junctions}
    if sc.throughput_link is not None and sc.throughput_link not in model.link_index:
        raise NetworkError(f"what-if {sc.name!r}: throughput link {sc.throughput_link!r} does not exist")
    for pid in (*sc.pumps_off, *sc.pumps_on, *sc.trips, *sc.pump_speed):
        if pid not in pump_index:
            raise NetworkError(f"what-if {sc.name!r}: pump {pid!r} does not exist")
    for pid in sc.pumps_on:
        batch.link_status[row, model.pump_link[pump_index[pid]]] = OPEN
        if batch.pump_speed[row, pump_index[pid]] == 0:
            batch.pump_speed[row, pump_index[pid]] = 1.0
    for pid in (*sc.pumps_off, *sc.trips):
        batch.link_status[row, model.pump_link[pump_index[pid]]] = CLOSED
    batch.pump_speed[row] *= sc.speed_factor
    for pid, speed in sc.pump_speed.items():
        i = pump_index[pid]
        batch.pump_speed[row, i] = speed
        batch.link_status[row, model.pump_link[i]] = OPEN if speed > 0 else CLOSED
    for lid, status in sc.link_status.items():
        k = model.link_index.get(lid)
        if k is None:
            raise NetworkError(f"what-if {sc.name!r}: link {lid!r} does not exist")
        if lid in pump_index:
            raise NetworkError(f"what-if {sc.name!r}: {lid!r} is a pump; start or stop it instead")
        batch.link_status[row, k] = LINK_STATUS_CODES[status]
        if lid in valve_index and status != "ACTIVE":
            batch.valve_setting[row, valve_index[lid]] = np.nan  # fixed open or closed, no control
    for vid, setting in sc.valve_setting.items():
        if vid not in valve_index:
            raise NetworkError(f"what-if {sc.name!r}: valve {vid!r} does not exist")
        batch.valve_setting[row, valve_index[vid]] = setting
        batch.link_status[row, model.valve_link[valve_index[vid]]] = ACTIVE
    batch.demand_m3s[row] *= sc.demand_factor
    for nid, demand in sc.demand_m3s.items():
        batch.demand_m3s[row, _junction(model, nid, sc, "demand")] = demand
    for nid, head in sc.fixed_head_m.items():
        if nid not in fixed_index:
            raise NetworkError(f"what-if {sc.name!r}: {nid!r} is not a reservoir or tank")
        batch.fixed_head_m[row, fixed_index[nid]] = head
    for nid, delta in sc.fixed_head_delta_m.items():
        if nid not in fixed_index:
            raise NetworkError(f"what-if {sc.name!r}: {nid!r} is not a reservoir or tank")
        batch.fixed_head_m[row, fixed_index[nid]] += delta
    for nid, coeff in sc.leaks.items():
        batch.emitter_coeff[row, _junction(model, nid, sc, "leak")] = coeff
    for nid in sc.leak_flow_m3s:
        _junction(model, nid, sc, "leak")


def _junction(model: HydraulicModel, node_id: str, sc: WhatIf, what: str) -> int:
    j = model.node_index.get(node_id)
    if j is None or j >= model.n_junctions:
        raise NetworkError(f"what-if {sc.name!r}: {what} node {node_id!r} is not a junction")
    return j


def evaluate(
    model: HydraulicModel,
    scenarios: list[WhatIf],
    *,
    accuracy: float = 1e-6,
    base: ScenarioBatch | None = None,
    strict: bool = True,
) -> WhatIfResult:
    """Solve every what-if in one batch and derive its margins and energy.

    Args:
        model: Compiled network.
        scenarios: The what-ifs.
        accuracy: Solver convergence limit.
        base: Base operating state (default: the network's own).
        strict: Raise when a throughput target is out of reach; otherwise record it in
            ``failures`` and solve that scenario without the target.

    Raises:
        NetworkError: For an unknown id, or (``strict``) an unreachable target.
    """
    batch = build_batch(model, scenarios, base)
    failures: list[str | None] = [None] * len(scenarios)
    base_res = None
    for row, sc in enumerate(scenarios):
        if sc.throughput_factor is not None:
            if base_res is None:
                base_res = solve_batch(model, base if base is not None else base_batch(model), accuracy=accuracy)
            try:
                factor = _speed_for_throughput(model, batch.take(np.array([row])), sc, base_res.flow_m3s[0], accuracy)
                batch.pump_speed[row] *= factor
            except NetworkError as exc:
                if strict:
                    raise
                failures[row] = str(exc)
    _match_leak_flows(model, batch, scenarios, accuracy)
    res = solve_batch(model, batch, accuracy=accuracy)
    assets = pump_assets(model)
    return WhatIfResult(
        scenarios=tuple(scenarios),
        batch=batch,
        head_m=res.head_m,
        flow_m3s=res.flow_m3s,
        status=res.status,
        converged=res.converged,
        pumps=pump_metrics(model, assets, res.head_m, res.flow_m3s, res.status, batch.pump_speed),
        line=line_metrics(model, res.head_m),
        leak_m3s=res.emitter_flow_m3s,
        flag=res.flag,
        failures=tuple(failures),
    )


def _match_leak_flows(model: HydraulicModel, batch: ScenarioBatch, scenarios: list[WhatIf], accuracy: float) -> None:
    """Set emitter coefficients so each leak given as a flow discharges that flow (batched secant on ln C).

    Starts from C = q / p^n at a nominal 10 m pressure head. The leak q = C p^n grows with C by
    an elasticity d ln q / d ln C between 0 and 1 (the node's pressure falls as C grows), so each
    step moves ln C by ln(target / solved) over the last secant slope (1 at first, at least
    `LEAK_ELASTICITY_MIN`), at most `LEAK_STEP_MAX` and to at most `LEAK_COEFF_MAX_M3S`. A
    leak the line cannot feed leaves C large and the node's pressure near zero: the final solve
    then gives the most the node can discharge.
    """
    rows = [r for r, sc in enumerate(scenarios) if sc.leak_flow_m3s]
    if not rows:
        return
    n = model.emitter_exp
    targets = np.zeros((len(rows), model.n_junctions))
    for i, r in enumerate(rows):
        for nid, q in scenarios[r].leak_flow_m3s.items():
            targets[i, model.node_index[nid]] = q
    mask = targets > 0
    sub = batch.take(np.array(rows))
    log_c = np.log(np.where(mask, targets, 1.0) / 10.0**n)
    log_c_max = math.log(LEAK_COEFF_MAX_M3S)
    prev_c: FloatArray | None = None
    prev_f: FloatArray | None = None
    for _ in range(LEAK_ITERATIONS):
        sub.emitter_coeff[mask] = np.exp(log_c[mask])
        solved = solve_batch(model, sub, accuracy=accuracy).emitter_flow_m3s
        f = np.log(np.maximum(solved, NO_FLOW_M3S * 1e-3) / np.where(mask, targets, 1.0))
        if np.all(np.abs(np.expm1(f[mask])) <= LEAK_MATCH):
            break
        slope = np.ones_like(f)
        if prev_c is not None and prev_f is not None:
            dx = log_c - prev_c
            moved = np.abs(dx) > LEAK_STEP_MIN
            slope[moved] = np.clip((f[moved] - prev_f[moved]) / dx[moved], LEAK_ELASTICITY_MIN, 1.0)
        prev_c, prev_f = log_c.copy(), f
        step = np.clip(-f / slope, -LEAK_STEP_MAX, LEAK_STEP_MAX)
        log_c = np.where(mask, np.minimum(log_c + step, log_c_max), log_c)
    sub.emitter_coeff[mask] = np.exp(log_c[mask])
    batch.emitter_coeff[rows] = np.where(mask, sub.emitter_coeff, batch.emitter_coeff[rows])


def _speed_for_throughput(
    model: HydraulicModel, row: ScenarioBatch, sc: WhatIf, base_flow_m3s: FloatArray, accuracy: float
) -> float:
    """Common speed factor on running pumps that meets the throughput target (one batched solve of 41 factors).

    The target is ``throughput_factor`` times the flow in the base state (``base_flow_m3s``, per link),
    whatever else the what-if changes.
    """
    assert sc.throughput_link is not None and sc.throughput_factor is not None
    k = model.link_index[sc.throughput_link]
    base_flow = base_flow_m3s[k]
    factors = np.linspace(0.6, 1.4, 41)
    grid = row.take(np.zeros(factors.size, dtype=np.int64))
    grid.pump_speed *= factors[:, None]
    flows = solve_batch(model, grid, accuracy=accuracy).flow_m3s[:, k]
    target = sc.throughput_factor * base_flow
    order = np.argsort(flows)
    if not flows.min() <= target <= flows.max():
        raise NetworkError(f"what-if {sc.name!r}: throughput target is out of reach with speed factors 0.6-1.4")
    return float(np.interp(target, flows[order], factors[order]))
