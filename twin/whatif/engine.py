"""What-if scenarios on a network, solved together in one batch, and their full results.

A `WhatIf` is a named list of changes to the base operating state: pump speeds
(one factor for every running pump, or a speed per pump), pumps started,
stopped or tripped, link status and valve settings (rerouting, throttling),
demand factors and demands, fixed heads (absolute or as a change, e.g. a lower
suction level), leaks by emitter coefficient or by leak flow, and a throughput
target. `evaluate` turns a list of them into one `ScenarioBatch` and solves it.
A throughput target (a factor on the base state's flow, whatever else the
what-if changes) costs two more batched solves: the base state, and a grid of
41 common speed factors on the running pumps, interpolated. A leak given as a
flow costs a few more: its emitter coefficient C in q = C p^n is rescaled by
target / solved flow until the solved leak matches.

`assess` turns a solved batch into a `WhatIfReport`: per scenario the operating
point of every pump (flow, head, speed, efficiency, power, % of BEP, NPSH
available, required and margin, inside the preferred operating region or not),
its predicted vibration and bearing temperature, the pressure profile along the
line's main path (chainage from cumulative pipe length), the margin to MAOP,
energy and throughput, and every limit violated with its value.

Predicted condition at an operating point uses the same closed forms as the
plant's health physics (`pumptwin.plant.health`): vibration velocity RMS is the root
sum of squares of imbalance (~ s^2), misalignment (~ s), hydraulic excitation
(zero at the BEP, growing off it), bearing defects and cavitation (from
NPSHa / NPSHr); the steady bearing temperature is ambient plus a rise
rise_rated s^1.5 (0.6 + 0.4 (1 + 1.5 (q/q_BEP - 1)^2)) (1 + 1.2 d^2). The
machine's current condition (baseline vibration components, bearing damage,
rated bearing rise, i.e. thermal resistance times rated friction heat) comes
from calibration; the defaults are mid-range rated values. Vibration is graded
in ISO 10816-3 zones: A (new), B (unrestricted long-term operation), C (not for
long-term operation), D (damage). The default boundaries are those of group 1
machines (above 300 kW) on rigid foundations: 2.3, 4.5 and 7.1 mm/s.

Surge after a pump trip is a transient question; a steady what-if reports the
state the line settles in after the trip. `assess` takes an optional
``surge_check`` callable that a transient solver can supply (see
`twin.scenarios.transient_surge_check`): it is called for every scenario with
tripped pumps and its violations and notes are added to that scenario's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from pumptwin.plant.health import (
    IDLE_VIBRATION_MM_S,
    bearing_rise_k,
    cavitation_intensity,
    vibration_rms_mm_s,
)
from pumptwin.twin.hydraulic.metrics import LineMetrics, PumpMetrics, line_metrics, pump_assets, pump_metrics
from pumptwin.twin.hydraulic.network import G_M_S2, NetworkError
from pumptwin.twin.hydraulic.pumps import POR_FRACTIONS
from pumptwin.twin.hydraulic.solver import (
    ACTIVE,
    CLOSED,
    CONVERGED,
    DISCONNECTED,
    OPEN,
    FloatArray,
    HydraulicModel,
    ScenarioBatch,
    base_batch,
    solve_batch,
)

if TYPE_CHECKING:
    import pandas as pd

LINK_STATUS_CODES = {"OPEN": OPEN, "CLOSED": CLOSED, "ACTIVE": ACTIVE}
"""Link status names a what-if may set."""
LEAK_ITERATIONS = 3
"""Batched solves used to match leaks given as a flow (each rescales C by target / solved flow)."""
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
                    "throughput_m3h": thr * 3600.0,
                    "pumps_running": int(run.sum()),
                    "max_pressure_mpa": float(np.nanmax(self.line.pressure_pa[i])) / 1e6,
                    "min_pressure_mpa": float(np.nanmin(self.line.pressure_pa[i][: model.n_junctions])) / 1e6,
                    "maop_use_pct": 100.0 * float(maop_util),
                    "min_npsh_margin_m": float(np.nanmin(npsh)) if npsh.size and np.isfinite(npsh).any() else np.nan,
                    "bep_pct_range": (float(pct.min()), float(pct.max())) if pct.size else (np.nan, np.nan),
                    "shaft_power_kw": energy / 1e3,
                    "specific_energy_kwh_m3": energy / 3.6e6 / thr if thr > 0 else np.nan,
                    "leak_m3h": float(self.leak_m3s[i].sum()) * 3600.0,
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
    """Set emitter coefficients so each leak given as a flow discharges that flow (batched fixed point).

    Starts from C = q / p^n at a nominal 10 m pressure head, then rescales C by target / solved
    flow; the leak flow is proportional to C at a given pressure, so this converges quickly.
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
    sub.emitter_coeff[mask] = targets[mask] / 10.0**n
    for _ in range(LEAK_ITERATIONS):
        res = solve_batch(model, sub, accuracy=accuracy)
        solved = res.emitter_flow_m3s
        ok = mask & (solved > NO_FLOW_M3S)
        sub.emitter_coeff[ok] *= targets[ok] / solved[ok]
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


# --------------------------------------------------------------------------------------------
# The line's main path
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinePath:
    """The main path of a line from its source to its delivery, for profiles and chainage.

    Attributes:
        nodes: Node indices along the path, source first.
        links: Link indices along the path (one fewer than nodes).
        forward: For each link, whether the path runs from its start to its end node.
        chainage_m: Cumulative pipe length at each node from the source, in m (pumps and
            valves add no length).
    """

    nodes: tuple[int, ...]
    links: tuple[int, ...]
    forward: tuple[bool, ...]
    chainage_m: FloatArray

    @property
    def source(self) -> int:
        """Index of the source node."""
        return self.nodes[0]

    @property
    def delivery(self) -> int:
        """Index of the delivery node."""
        return self.nodes[-1]

    @property
    def delivery_link(self) -> int:
        """Index of the last link, whose flow (along the path) is the throughput."""
        return self.links[-1]


def main_path(model: HydraulicModel, source: str | None = None, delivery: str | None = None) -> LinePath:
    """The shortest path by pipe length between a source and a delivery node, ignoring link status.

    By default the two reservoirs or tanks farthest apart along the pipes are taken (with one
    fixed node: it and the junction farthest from it), oriented so that pumps on the path are
    run through from suction to discharge.

    Args:
        model: Compiled network.
        source: Source node id (default as above).
        delivery: Delivery node id (default as above).

    Raises:
        NetworkError: When a node does not exist or no path joins the two.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import dijkstra

    net = model.network
    for nid in (source, delivery):
        if nid is not None and nid not in model.node_index:
            raise NetworkError(f"line path: node {nid!r} does not exist")
    npipe = len(net.pipes)
    length = np.array([p.length_m for p in net.pipes] + [1e-6] * (model.n_links - npipe))
    n1, n2 = model.link_n1, model.link_n2
    graph = coo_matrix(
        (np.concatenate([length, length]), (np.concatenate([n1, n2]), np.concatenate([n2, n1]))),
        shape=(model.n_nodes, model.n_nodes),
    ).tocsr()
    fixed = list(range(model.n_junctions, model.n_nodes))
    if source is not None and delivery is not None:
        a, b = model.node_index[source], model.node_index[delivery]
    else:
        ends = fixed if len(fixed) > 1 else list(range(model.n_junctions))
        starts = [model.node_index[source]] if source is not None else fixed
        targets = [model.node_index[delivery]] if delivery is not None else ends
        dist = np.asarray(dijkstra(graph, indices=starts))
        dist[~np.isfinite(dist)] = -1.0
        sub = dist[:, targets]
        i, j = np.unravel_index(int(np.argmax(sub)), sub.shape)
        a, b = starts[i], targets[j]
    dist_a, pred = dijkstra(graph, indices=a, return_predecessors=True)
    if not np.isfinite(dist_a[b]) or a == b:
        raise NetworkError(f"line path: no path from {model.node_ids[a]!r} to {model.node_ids[b]!r}")
    nodes = [b]
    while nodes[-1] != a:
        nodes.append(int(pred[nodes[-1]]))
    nodes.reverse()
    links, forward = _path_links(model, nodes, length)
    pump_links = set(model.pump_link.tolist())
    backwards = [not f for k, f in zip(links, forward, strict=True) if k in pump_links]
    if backwards and all(backwards) and source is None and delivery is None:
        nodes.reverse()
        links, forward = _path_links(model, nodes, length)
    steps = [length[k] if k < npipe else 0.0 for k in links]
    return LinePath(tuple(nodes), tuple(links), tuple(forward), np.concatenate([[0.0], np.cumsum(steps)]))


def _path_links(model: HydraulicModel, nodes: list[int], length: FloatArray) -> tuple[list[int], list[bool]]:
    links: list[int] = []
    forward: list[bool] = []
    for a, b in zip(nodes[:-1], nodes[1:], strict=True):
        cand = np.flatnonzero(
            ((model.link_n1 == a) & (model.link_n2 == b)) | ((model.link_n1 == b) & (model.link_n2 == a))
        )
        k = int(cand[np.argmin(length[cand])])
        links.append(k)
        forward.append(bool(model.link_n1[k] == a))
    return links, forward


# --------------------------------------------------------------------------------------------
# Predicted machine condition
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IsoZones:
    """ISO 10816-3 vibration zone boundaries (velocity RMS, mm/s).

    The default is group 1 (rated power above 300 kW) on a rigid foundation. Group 1 flexible:
    3.5, 7.1, 11.0; group 2 (15-300 kW) rigid: 1.4, 2.8, 4.5; group 2 flexible: 2.3, 4.5, 7.1.

    Attributes:
        ab_mm_s: Boundary between zones A (new machines) and B (long-term operation).
        bc_mm_s: Boundary between B and C (not for long-term operation): the alarm limit.
        cd_mm_s: Boundary between C and D (vibration causes damage).
    """

    ab_mm_s: float = 2.3
    bc_mm_s: float = 4.5
    cd_mm_s: float = 7.1

    def __post_init__(self) -> None:
        if not 0 < self.ab_mm_s < self.bc_mm_s < self.cd_mm_s:
            raise NetworkError(
                f"ISO zones: need 0 < A/B < B/C < C/D, got {self.ab_mm_s}, {self.bc_mm_s}, {self.cd_mm_s} mm/s"
            )

    def zone(self, vibration_mm_s: float) -> str:
        """Zone letter A, B, C or D of a vibration velocity RMS in mm/s."""
        if vibration_mm_s < self.ab_mm_s:
            return "A"
        if vibration_mm_s < self.bc_mm_s:
            return "B"
        return "C" if vibration_mm_s < self.cd_mm_s else "D"


@dataclass(frozen=True)
class MachineCondition:
    """The current condition of one pump and its bearings, from calibration or rated data.

    Attributes:
        imbalance_mm_s: Imbalance vibration at rated speed, mm/s.
        misalignment_mm_s: Misalignment vibration at rated speed, mm/s.
        hydraulic_mm_s: Hydraulic vibration at 30 % off the BEP at rated speed, mm/s.
        bearing_damage: Bearing damage index d (0 new, 1 at ISO zone D).
        impeller_wear: Impeller diameter loss (fraction); raises imbalance by (1 + 10 w).
        bearing_rise_rated_k: Bearing temperature rise over ambient at rated speed and the BEP
            with a new bearing, K (thermal resistance times rated friction heat).
    """

    imbalance_mm_s: float = 0.9
    misalignment_mm_s: float = 0.55
    hydraulic_mm_s: float = 1.1
    bearing_damage: float = 0.0
    impeller_wear: float = 0.0
    bearing_rise_rated_k: float = 36.0

    def __post_init__(self) -> None:
        for name in (
            "imbalance_mm_s",
            "misalignment_mm_s",
            "hydraulic_mm_s",
            "bearing_damage",
            "impeller_wear",
            "bearing_rise_rated_k",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise NetworkError(f"machine condition: {name} must be a number >= 0, got {value}")


@dataclass(frozen=True)
class Limits:
    """Limits a scenario is checked against.

    Attributes:
        min_npsh_margin_m: Least NPSHa - NPSHr, m.
        bearing_alarm_c: Highest bearing temperature, degC.
        zones: Vibration zone boundaries; zone C or D is a violation.
        max_maop_use: Highest pressure as a fraction of MAOP (1.0: at MAOP).
    """

    min_npsh_margin_m: float = 1.0
    bearing_alarm_c: float = 90.0
    zones: IsoZones = field(default_factory=IsoZones)
    max_maop_use: float = 1.0


def predicted_vibration_mm_s(
    speed: float, flow_ratio: float, npsh_ratio: float, running: bool, condition: MachineCondition
) -> float:
    """Steady vibration velocity RMS (mm/s) at an operating point (`pumptwin.plant.health` closed forms).

    Args:
        speed: Relative speed.
        flow_ratio: Flow over the BEP flow at that speed.
        npsh_ratio: NPSHa / NPSHr (inf when there is no NPSHr curve).
        running: Whether the pump runs; a stopped pump reads the idle level.
        condition: The machine's current condition.
    """
    if not running:
        return IDLE_VIBRATION_MM_S
    cav = cavitation_intensity(npsh_ratio if math.isfinite(npsh_ratio) else np.inf)
    return float(
        vibration_rms_mm_s(
            speed,
            flow_ratio,
            True,
            condition.imbalance_mm_s,
            condition.misalignment_mm_s,
            condition.hydraulic_mm_s,
            condition.bearing_damage,
            cav,
            condition.impeller_wear,
        )
    )


def predicted_bearing_c(
    speed: float, flow_ratio: float, running: bool, condition: MachineCondition, ambient_c: float
) -> float:
    """Steady bearing temperature (degC) at an operating point: ambient plus the friction-heat rise."""
    if not running:
        return ambient_c
    rise = bearing_rise_k(speed, flow_ratio, condition.bearing_damage, condition.bearing_rise_rated_k)
    return ambient_c + float(rise)


# --------------------------------------------------------------------------------------------
# Full results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    """A limit a scenario violates.

    Attributes:
        limit: Which limit (MAOP, NPSH, POR, VIBRATION, BEARING, SPEED, VAPOUR, ...).
        where: The pump, pipe or node.
        value: The value reached.
        limit_value: The limit.
        unit: Unit of both.
    """

    limit: str
    where: str
    value: float
    limit_value: float
    unit: str

    def __str__(self) -> str:
        return f"{self.limit} {self.where}: {self.value:.4g} {self.unit} (limit {self.limit_value:.4g})"


@dataclass(frozen=True)
class PumpPoint:
    """Operating point and predicted condition of one pump in one scenario (NaN where not running)."""

    pump: str
    station: str | None
    running: bool
    speed: float
    speed_rpm: float
    flow_m3h: float
    head_m: float
    efficiency: float
    shaft_power_kw: float
    percent_bep: float
    in_por: bool
    npsh_available_m: float
    npsh_required_m: float
    npsh_margin_m: float
    vibration_mm_s: float
    vibration_zone: str
    bearing_c: float


@dataclass(frozen=True)
class ScenarioOutcome:
    """The full result of one scenario.

    Attributes:
        name: Scenario name.
        status: ``ok``, ``not converged``, ``disconnected`` or ``infeasible``.
        message: Why the status is not ``ok`` ("" when it is).
        throughput_m3h: Flow at the delivery, m3/h.
        power_kw: Total shaft power, kW.
        specific_energy_kwh_m3: Shaft energy per delivered volume, kWh/m3.
        leak_m3h: Total leak (emitter) outflow, m3/h.
        min_maop_margin_mpa: Least MAOP minus pressure over the line's pipes, MPa.
        min_maop_margin_at: The pipe where it occurs.
        max_pressure_mpa, min_pressure_mpa: Extreme gauge pressures at the junctions, MPa.
        pumps: Operating point of every pump.
        chainage_km, profile_head_m, profile_pressure_mpa, elevation_m, maop_mpa: The line's
            main path, one value per node (MAOP: of the path pipe leaving the node).
        profile_nodes: Node ids along the main path.
        violations: Limits violated, with their values.
        notes: How the scenario's inputs were resolved.
    """

    name: str
    status: str
    message: str
    throughput_m3h: float
    power_kw: float
    specific_energy_kwh_m3: float
    leak_m3h: float
    min_maop_margin_mpa: float
    min_maop_margin_at: str
    max_pressure_mpa: float
    min_pressure_mpa: float
    pumps: tuple[PumpPoint, ...]
    profile_nodes: tuple[str, ...]
    chainage_km: FloatArray
    profile_head_m: FloatArray
    profile_pressure_mpa: FloatArray
    elevation_m: FloatArray
    maop_mpa: FloatArray
    violations: tuple[Violation, ...]
    notes: tuple[str, ...] = ()

    @property
    def within_limits(self) -> bool:
        """True when the scenario solved and violates no limit."""
        return self.status == "ok" and not self.violations

    def running(self) -> tuple[PumpPoint, ...]:
        """The pumps that run."""
        return tuple(p for p in self.pumps if p.running)

    def row(self) -> dict[str, Any]:
        """One flat row for tables (SI-derived units in the keys)."""
        run = self.running()
        npsh = [p.npsh_margin_m for p in run if math.isfinite(p.npsh_margin_m)]
        zones = [p.vibration_zone for p in run]
        return {
            "scenario": self.name,
            "status": self.status,
            "throughput_m3h": self.throughput_m3h,
            "pumps_running": len(run),
            "power_kw": self.power_kw,
            "specific_energy_kwh_m3": self.specific_energy_kwh_m3,
            "max_pressure_mpa": self.max_pressure_mpa,
            "min_maop_margin_mpa": self.min_maop_margin_mpa,
            "min_npsh_margin_m": min(npsh) if npsh else math.nan,
            "bep_pct_min": min((p.percent_bep for p in run), default=math.nan),
            "bep_pct_max": max((p.percent_bep for p in run), default=math.nan),
            "all_in_por": all(p.in_por for p in run),
            "max_vibration_mm_s": max((p.vibration_mm_s for p in run), default=math.nan),
            "worst_zone": max(zones) if zones else "-",
            "max_bearing_c": max((p.bearing_c for p in run), default=math.nan),
            "leak_m3h": self.leak_m3h,
            "violations": "; ".join(str(v) for v in self.violations) or "none",
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the row, every pump, the profile, violations and notes."""
        return {
            **_jsonable(self.row()),
            "message": self.message,
            "notes": list(self.notes),
            "violations": [
                {"limit": v.limit, "where": v.where, "value": v.value, "limit_value": v.limit_value, "unit": v.unit}
                for v in self.violations
            ],
            "pumps": [_jsonable(vars_of(p)) for p in self.pumps],
            "profile": {
                "node": list(self.profile_nodes),
                "chainage_km": _floats(self.chainage_km),
                "head_m": _floats(self.profile_head_m),
                "pressure_mpa": _floats(self.profile_pressure_mpa),
                "elevation_m": _floats(self.elevation_m),
                "maop_mpa": _floats(self.maop_mpa),
            },
        }


def vars_of(point: PumpPoint) -> dict[str, Any]:
    """The fields of a pump point as a dict."""
    return {f: getattr(point, f) for f in point.__dataclass_fields__}


def _floats(values: FloatArray) -> list[float | None]:
    return [float(v) if math.isfinite(v) else None for v in np.asarray(values, dtype=np.float64)]


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}


MARKDOWN_COLUMNS = (
    ("scenario", "scenario", "{}"),
    ("status", "status", "{}"),
    ("throughput_m3h", "flow m3/h", "{:.0f}"),
    ("pumps_running", "pumps", "{}"),
    ("power_kw", "power kW", "{:.0f}"),
    ("specific_energy_kwh_m3", "kWh/m3", "{:.3f}"),
    ("max_pressure_mpa", "pmax MPa", "{:.2f}"),
    ("min_maop_margin_mpa", "MAOP margin MPa", "{:.2f}"),
    ("min_npsh_margin_m", "NPSH margin m", "{:.1f}"),
    ("bep_pct_min", "BEP % min", "{:.0f}"),
    ("bep_pct_max", "BEP % max", "{:.0f}"),
    ("max_vibration_mm_s", "vib mm/s", "{:.2f}"),
    ("worst_zone", "zone", "{}"),
    ("max_bearing_c", "bearing C", "{:.0f}"),
    ("leak_m3h", "leak m3/h", "{:.0f}"),
    ("violations", "limits violated", "{}"),
)
"""Columns of the markdown table: key, title, format."""


@dataclass(frozen=True)
class WhatIfReport:
    """Full results of a batch of scenarios on one network.

    Attributes:
        network: Network name.
        outcomes: One per scenario, in order.
        ambient_c: Ambient temperature used for bearing temperatures, degC.
        limits: The limits checked.
    """

    network: str
    outcomes: tuple[ScenarioOutcome, ...]
    ambient_c: float
    limits: Limits

    @property
    def within_limits(self) -> bool:
        """True when every scenario solved and violates no limit."""
        return all(o.within_limits for o in self.outcomes)

    def outcome(self, name: str) -> ScenarioOutcome:
        """The outcome of the scenario called ``name``."""
        for o in self.outcomes:
            if o.name == name:
                return o
        raise KeyError(name)

    def to_frame(self) -> pd.DataFrame:
        """One row per scenario (see `ScenarioOutcome.row`)."""
        import pandas as pd

        return pd.DataFrame([o.row() for o in self.outcomes]).set_index("scenario")

    def pumps_frame(self) -> pd.DataFrame:
        """One row per scenario and pump: operating point and predicted condition."""
        import pandas as pd

        return pd.DataFrame([{"scenario": o.name, **vars_of(p)} for o in self.outcomes for p in o.pumps])

    def profile_frame(self) -> pd.DataFrame:
        """One row per scenario and main-path node: chainage, head, pressure, elevation and MAOP."""
        import pandas as pd

        frames = [
            pd.DataFrame(
                {
                    "scenario": o.name,
                    "node": o.profile_nodes,
                    "chainage_km": o.chainage_km,
                    "head_m": o.profile_head_m,
                    "pressure_mpa": o.profile_pressure_mpa,
                    "elevation_m": o.elevation_m,
                    "maop_mpa": o.maop_mpa,
                }
            )
            for o in self.outcomes
        ]
        return pd.concat(frames, ignore_index=True)

    def to_markdown(self) -> str:
        """The scenarios as a markdown table, then each scenario's violations and notes."""
        head = "| " + " | ".join(t for _, t, _ in MARKDOWN_COLUMNS[:-1]) + " |"
        lines = [f"# What-if scenarios on {self.network}", "", head, "|" + "---|" * (len(MARKDOWN_COLUMNS) - 1)]
        for o in self.outcomes:
            row = o.row()
            cells = [_cell(fmt, row[key]) for key, _, fmt in MARKDOWN_COLUMNS[:-1]]
            lines.append("| " + " | ".join(cells) + " |")
        lines += [
            "",
            f"Bearing temperatures at {self.ambient_c:g} C ambient. Vibration zones ISO 10816-3, boundaries "
            f"A/B {self.limits.zones.ab_mm_s:g}, B/C {self.limits.zones.bc_mm_s:g}, "
            f"C/D {self.limits.zones.cd_mm_s:g} mm/s.",
        ]
        for o in self.outcomes:
            if o.violations or o.notes or o.message:
                lines += ["", f"**{o.name}**"]
                lines += [f"- {o.message}" for _ in (1,) if o.message]
                lines += [f"- note: {n}" for n in o.notes]
                lines += [f"- violates {v}" for v in o.violations]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every scenario."""
        z = self.limits.zones
        return {
            "network": self.network,
            "ambient_c": self.ambient_c,
            "limits": {
                "min_npsh_margin_m": self.limits.min_npsh_margin_m,
                "bearing_alarm_c": self.limits.bearing_alarm_c,
                "max_maop_use": self.limits.max_maop_use,
                "iso_10816_3_mm_s": {"A/B": z.ab_mm_s, "B/C": z.bc_mm_s, "C/D": z.cd_mm_s},
            },
            "within_limits": self.within_limits,
            "scenarios": [o.to_dict() for o in self.outcomes],
        }


def _cell(fmt: str, value: object) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "-"
    return fmt.format(value)


@dataclass(frozen=True)
class SurgeFindings:
    """What a transient check found for one scenario: limits violated and notes (e.g. what was simulated)."""

    violations: tuple[Violation, ...] = ()
    notes: tuple[str, ...] = ()


SurgeCheck = Callable[[HydraulicModel, WhatIf, "WhatIfResult", int], SurgeFindings]
"""Transient check of a scenario with tripped pumps: (model, what-if, result, row) -> findings."""


def assess(
    model: HydraulicModel,
    result: WhatIfResult,
    *,
    path: LinePath | None = None,
    conditions: Mapping[str, MachineCondition] | None = None,
    ambient_c: float = 25.0,
    limits: Limits | None = None,
    surge_check: SurgeCheck | None = None,
    rated_speed_rpm: Mapping[str, float] | None = None,
) -> WhatIfReport:
    """Full results of solved what-ifs: operating points, condition, profile, margins, violations.

    Args:
        model: Compiled network.
        result: From `evaluate`.
        path: The line's main path (default `main_path`).
        conditions: Machine condition by pump id (default `MachineCondition()` for each).
        ambient_c: Ambient temperature for bearing temperatures, degC.
        limits: Limits to check (default `Limits()`).
        surge_check: Optional transient check called for every scenario with tripped pumps.
        rated_speed_rpm: Rated speed by pump id, rpm, for speeds in rpm (NaN where not given).

    Raises:
        NetworkError: When a condition names a pump that does not exist.
    """
    path = path if path is not None else main_path(model)
    limits = limits if limits is not None else Limits()
    conditions = dict(conditions or {})
    for pid in conditions:
        if pid not in model.pump_ids:
            raise NetworkError(f"machine condition: pump {pid!r} does not exist")
    outcomes = []
    for row, sc in enumerate(result.scenarios):
        outcome = _outcome(model, result, row, path, conditions, ambient_c, limits, dict(rated_speed_rpm or {}))
        if surge_check is not None and sc.trips:
            found = surge_check(model, sc, result, row)
            outcome = replace(
                outcome, violations=outcome.violations + found.violations, notes=outcome.notes + found.notes
            )
        outcomes.append(outcome)
    return WhatIfReport(model.network.name, tuple(outcomes), ambient_c, limits)


def _connected(model: HydraulicModel, batch: ScenarioBatch, row: int, a: int, b: int) -> bool:
    """Whether nodes a and b are joined by links that are not closed (and pumps that turn)."""
    parent = list(range(model.n_nodes))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    speed = np.ones(model.n_links)
    speed[model.pump_link] = batch.pump_speed[row]
    open_links = (batch.link_status[row] != CLOSED) & (speed > 0)
    for k in np.flatnonzero(open_links):
        parent[find(int(model.link_n1[k]))] = find(int(model.link_n2[k]))
    return find(a) == find(b)


def _outcome(  # noqa: PLR0913, PLR0915 - one pass over every quantity of a scenario
    model: HydraulicModel,
    result: WhatIfResult,
    row: int,
    path: LinePath,
    conditions: Mapping[str, MachineCondition],
    ambient_c: float,
    limits: Limits,
    rated_rpm: Mapping[str, float],
) -> ScenarioOutcome:
    net = model.network
    sc = result.scenarios[row]
    rho_g = net.fluid.density_kg_m3 * G_M_S2
    flag = int(result.flag[row]) if result.flag is not None else (CONVERGED if result.converged[row] else -1)
    failure = result.failures[row] if result.failures else None
    status, message = "ok", ""
    if not _connected(model, result.batch, row, path.source, path.delivery):
        status, message = "disconnected", "no open path from the source to the delivery"
    elif failure is not None:
        status, message = "infeasible", failure
    elif flag == DISCONNECTED:
        status, message = "disconnected", "a junction with demand has no open path to a reservoir or tank"
    elif flag != CONVERGED:
        status, message = "not converged", "the hydraulic solver did not converge"
    k_del = path.delivery_link
    sign = 1.0 if path.forward[-1] else -1.0
    thr = sign * float(result.flow_m3s[row, k_del])
    pm = result.pumps
    power = float(np.sum(pm.shaft_power_w[row]))
    violations: list[Violation] = []
    points: list[PumpPoint] = []
    for i, pid in enumerate(model.pump_ids):
        pump = net.pumps[i]
        run = bool(pm.running[row, i])
        speed = float(pm.speed[row, i])
        ratio = float(pm.percent_bep[row, i]) / 100.0
        npsha, npshr = float(pm.npsh_available_m[row, i]), float(pm.npsh_required_m[row, i])
        cond = conditions.get(pid, MachineCondition())
        npsh_ratio = npsha / npshr if math.isfinite(npshr) and npshr > 0 else math.inf
        vib = predicted_vibration_mm_s(speed, ratio, npsh_ratio, run, cond)
        brg = predicted_bearing_c(speed, ratio, run, cond, ambient_c)
        nan = math.nan
        point = PumpPoint(
            pump=pid,
            station=pump.station,
            running=run,
            speed=speed if run else 0.0,
            speed_rpm=speed * rated_rpm.get(pid, math.nan) if run else 0.0,
            flow_m3h=float(pm.flow_m3s[row, i]) * 3600.0 if run else 0.0,
            head_m=float(pm.head_m[row, i]) if run else nan,
            efficiency=float(pm.efficiency[row, i]) if run else nan,
            shaft_power_kw=float(pm.shaft_power_w[row, i]) / 1e3 if run else 0.0,
            percent_bep=100.0 * ratio if run else nan,
            in_por=bool(pm.in_por[row, i]),
            npsh_available_m=npsha if run else nan,
            npsh_required_m=npshr if run else nan,
            npsh_margin_m=npsha - npshr if run else nan,
            vibration_mm_s=vib,
            vibration_zone=limits.zones.zone(vib) if run else "-",
            bearing_c=brg,
        )
        points.append(point)
        if run and status == "ok":
            violations += _pump_violations(point, pump.min_speed, pump.max_speed, limits)
    heads = result.head_m[row]
    pressure_mpa = result.line.pressure_pa[row] / 1e6
    nj = model.n_junctions
    margin = result.line.maop_pa * limits.max_maop_use - result.line.pipe_max_pressure_pa[row]
    if np.isfinite(margin).any():
        k_min = int(np.nanargmin(margin))
        min_margin, min_at = float(margin[k_min]) / 1e6, net.pipes[k_min].id
        if status == "ok" and margin[k_min] < 0:
            violations.append(
                Violation(
                    "MAOP",
                    min_at,
                    float(result.line.pipe_max_pressure_pa[row, k_min]) / 1e6,
                    float(result.line.maop_pa[k_min]) * limits.max_maop_use / 1e6,
                    "MPa",
                )
            )
    else:
        min_margin, min_at = math.nan, ""
    vapour_gauge_pa = net.fluid.vapour_pressure_pa - net.atmospheric_pressure_pa
    j_min = int(np.argmin(result.line.pressure_pa[row, :nj])) if nj else 0
    if status == "ok" and nj and result.line.pressure_pa[row, j_min] < vapour_gauge_pa:
        violations.append(
            Violation(
                "VAPOUR", model.node_ids[j_min], pressure_mpa[j_min], vapour_gauge_pa / 1e6, "MPa g (column separation)"
            )
        )
    nodes = np.array(path.nodes)
    return ScenarioOutcome(
        name=sc.name,
        status=status,
        message=message,
        throughput_m3h=thr * 3600.0,
        power_kw=power / 1e3,
        specific_energy_kwh_m3=power / 3.6e6 / thr if thr > NO_FLOW_M3S else math.nan,
        leak_m3h=float(result.leak_m3s[row].sum()) * 3600.0,
        min_maop_margin_mpa=min_margin,
        min_maop_margin_at=min_at,
        max_pressure_mpa=float(np.max(pressure_mpa[:nj])) if nj else math.nan,
        min_pressure_mpa=float(np.min(pressure_mpa[:nj])) if nj else math.nan,
        pumps=tuple(points),
        profile_nodes=tuple(model.node_ids[n] for n in path.nodes),
        chainage_km=path.chainage_m / 1e3,
        profile_head_m=heads[nodes].copy(),
        profile_pressure_mpa=(heads[nodes] - model.elevation_m[nodes]) * rho_g / 1e6,
        elevation_m=model.elevation_m[nodes].copy(),
        maop_mpa=_path_maop_mpa(model, path),
        violations=tuple(violations),
        notes=sc.notes,
    )


def _pump_violations(point: PumpPoint, min_speed: float, max_speed: float, limits: Limits) -> list[Violation]:
    out: list[Violation] = []
    pid = point.pump
    if math.isfinite(point.npsh_margin_m) and point.npsh_margin_m < limits.min_npsh_margin_m:
        out.append(Violation("NPSH", pid, point.npsh_margin_m, limits.min_npsh_margin_m, "m margin"))
    lo, hi = 100 * POR_FRACTIONS[0], 100 * POR_FRACTIONS[1]
    if not point.in_por:
        out.append(Violation("POR", pid, point.percent_bep, lo if point.percent_bep < lo else hi, "% of BEP"))
    if point.vibration_mm_s >= limits.zones.bc_mm_s:
        out.append(
            Violation(
                "VIBRATION", pid, point.vibration_mm_s, limits.zones.bc_mm_s, f"mm/s (zone {point.vibration_zone})"
            )
        )
    if point.bearing_c > limits.bearing_alarm_c:
        out.append(Violation("BEARING", pid, point.bearing_c, limits.bearing_alarm_c, "C"))
    if point.speed < min_speed - 1e-9:
        out.append(Violation("SPEED", pid, point.speed, min_speed, "x rated"))
    if point.speed > max_speed + 1e-9:
        out.append(Violation("SPEED", pid, point.speed, max_speed, "x rated"))
    return out


def _path_maop_mpa(model: HydraulicModel, path: LinePath) -> FloatArray:
    """MAOP at each path node: that of the path pipe leaving it (the last node: the pipe entering), MPa.

    NaN where that link is a pump or valve or has no MAOP; plotted as steps, it traces each pipe's MAOP.
    """
    pipes = model.network.pipes
    out = np.full(len(path.nodes), np.nan)
    for i, k in enumerate((*path.links, path.links[-1])):
        maop_pa = pipes[k].maop_pa if k < len(pipes) else None
        if maop_pa is not None:
            out[i] = maop_pa / 1e6
    return out
