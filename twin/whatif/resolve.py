"""Resolving declared scenarios against a network, and running them in one batch.

`resolve` turns a `ScenarioSpec` into a `twin.whatif.engine.WhatIf` on one network: it needs the
line's main path and base solution (`line_context`) to place a leak by chainage, scale a flow
target, find a standby pump or turn rpm into a speed factor. `run_scenarios` resolves, solves and
assesses a list of them (see `twin.whatif.scenarios` for the rules).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from pumptwin.twin.health.condition import MachineCondition
from pumptwin.twin.hydraulic.eps import BYTES_PER_MB
from pumptwin.twin.hydraulic.network import Network, NetworkError
from pumptwin.twin.hydraulic.solver import HydraulicModel, compile_network
from pumptwin.twin.integrity.line import IntegrityLimits, derate
from pumptwin.twin.units import G_M_S2, PA_PER_BAR
from pumptwin.twin.whatif.assess import SurgeCheck, assess
from pumptwin.twin.whatif.engine import WhatIf, WhatIfResult, evaluate
from pumptwin.twin.whatif.limits import Limits
from pumptwin.twin.whatif.path import LinePath, main_path
from pumptwin.twin.whatif.report import WhatIfReport
from pumptwin.twin.whatif.spec import (
    BASE_NAME,
    DEFAULT_AMBIENT_C,
    DEFAULT_RATED_RPM,
    EXPONENT_TOLERANCE,
    KM_TOLERANCE,
    RUPTURE_DISCHARGE_COEFF,
    ScenarioError,
    ScenarioSpec,
)

SCENARIO_ARRAYS = 6
"""Arrays of a value per node and two per link that a scenario of a batch takes (inputs, solution, metrics)."""
PUMP_BYTES = 2_000
"""Memory per pump and scenario: its metrics and its operating point in the report, bytes."""
PATH_BYTES = 64
"""Memory per main-path node and scenario: the profile's arrays in the report, bytes."""


@dataclass(frozen=True)
class LineContext:
    """What resolving a scenario needs: the compiled network, its main path and base solution.

    Attributes:
        model: Compiled network.
        path: The line's main path.
        base: The base case solved alone.
        rated_speed_rpm: Rated rpm by pump id.
    """

    model: HydraulicModel
    path: LinePath
    base: WhatIfResult
    rated_speed_rpm: dict[str, float]

    @property
    def base_throughput_m3s(self) -> float:
        """Flow at the delivery in the base case, m3/s."""
        sign = 1.0 if self.path.forward[-1] else -1.0
        return sign * float(self.base.flow_m3s[0, self.path.delivery_link])

    def nearest_junction(self, km: float, where: str) -> tuple[str, float]:
        """The main-path junction nearest to chainage ``km`` and its chainage in km."""
        nj = self.model.n_junctions
        cand = [(i, c) for i, c in zip(self.path.nodes, self.path.chainage_m, strict=True) if i < nj]
        length_km = float(self.path.chainage_m[-1]) / 1e3
        if not cand or not -KM_TOLERANCE <= km <= length_km + KM_TOLERANCE:
            raise ScenarioError(f"{where}: km {km:g} is outside the line (0 to {length_km:.3g} km)")
        i, c = min(cand, key=lambda ic: abs(ic[1] / 1e3 - km))
        return self.model.node_ids[i], float(c) / 1e3

    def station_pumps(self, station: str) -> list[int]:
        """Indices of the pumps of a station."""
        return [i for i, p in enumerate(self.model.network.pumps) if p.station == station]


def line_context(
    model: HydraulicModel,
    *,
    source: str | None = None,
    delivery: str | None = None,
    rated_speed_rpm: float | Mapping[str, float] = DEFAULT_RATED_RPM,
    accuracy: float = 1e-6,
) -> LineContext:
    """Find the main path and solve the base case.

    Raises:
        ScenarioError: When a rated speed names a pump that does not exist, or no path joins
            source and delivery.
    """
    try:
        path = main_path(model, source, delivery)
    except NetworkError as exc:
        raise ScenarioError(str(exc)) from exc
    if isinstance(rated_speed_rpm, Mapping):
        for pid in rated_speed_rpm:
            if pid not in model.pump_ids:
                raise ScenarioError(f"rated_speed_rpm: pump {pid!r} does not exist")
        rated = {pid: float(rated_speed_rpm.get(pid, DEFAULT_RATED_RPM)) for pid in model.pump_ids}
    else:
        rated = dict.fromkeys(model.pump_ids, float(rated_speed_rpm))
    base = evaluate(model, [WhatIf(BASE_NAME)], accuracy=accuracy)
    return LineContext(model, path, base, rated)


def resolve(spec: ScenarioSpec, ctx: LineContext) -> WhatIf:  # noqa: PLR0912, PLR0915 - one block per action
    """Turn a declared scenario into a `WhatIf` on this network.

    Raises:
        ScenarioError: When an action names a pump, station, node or place that does not exist,
            or cannot be carried out (no standby pump, a suction drop on a junction, ...).
    """
    model, net = ctx.model, ctx.model.network
    at = f"scenario {spec.name!r}"
    pump_ids = list(model.pump_ids)
    base_speed = ctx.base.batch.pump_speed[0]
    base_running = ctx.base.pumps.running[0]
    notes: list[str] = []

    def pump(pid: str, key: str) -> int:
        if pid not in pump_ids:
            raise ScenarioError(f"{at}: {key}: pump {pid!r} does not exist (pumps: {', '.join(pump_ids)})")
        return pump_ids.index(pid)

    off = [pump_ids[pump(p, "stop")] for p in spec.stop]
    on = [pump_ids[pump(p, "start")] for p in spec.start]
    trips = [pump_ids[pump(p, "trip")] for p in spec.trip]
    for pid in spec.standby:
        i = pump(pid, "standby")
        station = net.pumps[i].station
        same = ctx.station_pumps(station) if station is not None else _parallel(model, i)
        spare = [j for j in same if j != i and not base_running[j] and pump_ids[j] not in on]
        if not spare:
            raise ScenarioError(f"{at}: standby: pump {pid!r} has no stopped pump beside it to start")
        off.append(pid)
        on.append(pump_ids[spare[0]])
        notes.append(f"standby: {pid} stopped, {pump_ids[spare[0]]} started")
    speeds: dict[str, float] = {}
    for change in spec.speeds:
        if change.target in pump_ids:
            targets = [pump_ids.index(change.target)]
        elif change.target == "all":
            targets = [i for i in range(len(pump_ids)) if base_running[i]]
        else:
            stations = sorted({p.station for p in net.pumps if p.station})
            if change.target not in stations:
                raise ScenarioError(
                    f"{at}: speed: {change.target!r} is no pump, station or 'all' "
                    f"(stations: {', '.join(stations) or 'none'})"
                )
            targets = [i for i in ctx.station_pumps(change.target) if base_running[i]]
            if not targets:
                raise ScenarioError(f"{at}: speed: station {change.target!r} has no running pump")
        for i in targets:
            pid = pump_ids[i]
            if change.rpm is not None:
                speeds[pid] = change.rpm / ctx.rated_speed_rpm[pid]
            else:
                assert change.factor is not None
                current = float(base_speed[i]) if base_running[i] and base_speed[i] > 0 else 1.0
                speeds[pid] = change.factor * current
    flow_factor = spec.flow_factor
    if spec.flow_m3s is not None:
        flow_factor = spec.flow_m3s / ctx.base_throughput_m3s if ctx.base_throughput_m3s > 0 else None
        if flow_factor is None:
            raise ScenarioError(f"{at}: flow: the base case delivers nothing, so a flow target cannot be scaled")
    fixed_delta: dict[str, float] = {}
    if spec.suction_drop_pa:
        src = ctx.path.source
        if src < model.n_junctions:
            raise ScenarioError(
                f"{at}: suction_drop: the line's source {model.node_ids[src]!r} is no reservoir or tank"
            )
        dh = spec.suction_drop_pa / (net.fluid.density_kg_m3 * G_M_S2)
        fixed_delta[model.node_ids[src]] = -dh
        notes.append(f"suction drop {spec.suction_drop_pa / PA_PER_BAR:g} bar: {model.node_ids[src]} head -{dh:.2f} m")
    leak_flow: dict[str, float] = {}
    for leak in spec.leaks:
        node = _place_node(ctx, leak.node, leak.km, f"{at}: leak", notes)
        q = leak.flow_m3s if leak.flow_m3s is not None else (leak.fraction or 0.0) * ctx.base_throughput_m3s
        leak_flow[node] = leak_flow.get(node, 0.0) + q
        notes.append(f"leak {q * 3600:.1f} m3/h requested at {node}")
    coeffs: dict[str, float] = {}
    if spec.ruptures and abs(model.emitter_exp - 0.5) > EXPONENT_TOLERANCE:
        raise ScenarioError(
            f"{at}: rupture: needs the orifice emitter exponent 0.5, the network uses {model.emitter_exp}"
        )
    for rupture in spec.ruptures:
        node = _place_node(ctx, rupture.node, rupture.km, f"{at}: rupture", notes)
        j = model.node_index[node]
        diam = max(
            (p.diameter_m for p in net.pipes if model.node_index[p.start] == j or model.node_index[p.end] == j),
            default=0.0,
        )
        if diam <= 0:
            raise ScenarioError(f"{at}: rupture: junction {node!r} has no pipe")
        area = rupture.area_fraction * math.pi * diam**2 / 4.0
        coeffs[node] = RUPTURE_DISCHARGE_COEFF * area * math.sqrt(2.0 * G_M_S2)
        notes.append(f"rupture at {node}: orifice {rupture.area_fraction:g} x bore of {diam:.3f} m, Cd 0.6")
    for key, ids in (("links", spec.links), ("valves", spec.valves)):
        for lid in ids:
            if lid not in model.link_index:
                raise ScenarioError(f"{at}: {key}: link {lid!r} does not exist")
    for nid in (*spec.demand_m3s, *spec.fixed_head_m):
        if nid not in model.node_index:
            raise ScenarioError(f"{at}: node {nid!r} does not exist")
    try:
        return WhatIf(
            spec.name,
            pumps_off=tuple(off),
            pumps_on=tuple(on),
            trips=tuple(trips),
            pump_speed=speeds,
            demand_factor=spec.demand_factor,
            demand_m3s=dict(spec.demand_m3s),
            fixed_head_m=dict(spec.fixed_head_m),
            fixed_head_delta_m=fixed_delta,
            link_status=dict(spec.links),
            valve_setting=dict(spec.valves),
            leaks=coeffs,
            leak_flow_m3s=leak_flow,
            throughput_factor=flow_factor,
            throughput_link=model.link_ids[ctx.path.delivery_link] if flow_factor is not None else None,
            notes=tuple(notes),
        )
    except NetworkError as exc:
        raise ScenarioError(str(exc)) from exc


def batch_bytes(model: HydraulicModel, n_scenarios: int) -> int:
    """Estimated memory of solving and assessing ``n_scenarios`` what-ifs in one batch, bytes.

    Per scenario: the batch's inputs and the solution (a value per node and two per link, in
    `SCENARIO_ARRAYS` arrays of 8 bytes), `PUMP_BYTES` per pump (metrics and the operating
    point) and `PATH_BYTES` per node of the profile.
    """
    per = 8 * SCENARIO_ARRAYS * (model.n_nodes + 2 * model.n_links)
    per += PUMP_BYTES * len(model.pump_link) + PATH_BYTES * model.n_nodes
    return n_scenarios * per


def _parallel(model: HydraulicModel, i: int) -> list[int]:
    """Pumps between the same suction and discharge nodes as pump ``i``."""
    k = model.pump_link
    return [
        j
        for j in range(len(k))
        if model.link_n1[k[j]] == model.link_n1[k[i]] and model.link_n2[k[j]] == model.link_n2[k[i]]
    ]


def _place_node(ctx: LineContext, node: str | None, km: float | None, where: str, notes: list[str]) -> str:
    if node is not None:
        j = ctx.model.node_index.get(node)
        if j is None or j >= ctx.model.n_junctions:
            raise ScenarioError(f"{where}: node {node!r} is not a junction")
        return node
    assert km is not None
    nid, c = ctx.nearest_junction(km, where)
    notes.append(f"km {km:g} -> junction {nid} at chainage {c:.3f} km (nearest on the main path)")
    return nid


def run_scenarios(  # noqa: PLR0913 - the knobs of one what-if study
    network: Network,
    specs: Sequence[ScenarioSpec],
    *,
    rated_speed_rpm: float | Mapping[str, float] = DEFAULT_RATED_RPM,
    ambient_c: float = DEFAULT_AMBIENT_C,
    conditions: Mapping[str, MachineCondition] | None = None,
    limits: Limits | None = None,
    source: str | None = None,
    delivery: str | None = None,
    accuracy: float = 1e-6,
    include_base: bool = True,
    surge_check: SurgeCheck | None = None,
    max_memory_mb: float | None = None,
    integrity: IntegrityLimits | None = None,
    derating: bool = False,
) -> WhatIfReport:
    """Resolve declared scenarios on a (possibly calibrated) network, solve them in one batch, report.

    Args:
        network: The network (its pump curves may carry calibrated wear).
        specs: Declared scenarios.
        rated_speed_rpm: Rated rpm, one for all or by pump id.
        ambient_c: Ambient temperature, degC.
        conditions: Machine condition by pump id (calibrated vibration baselines, bearing rise).
        limits: Limits to check.
        source: Main path source node (default: found from the network).
        delivery: Main path delivery node (default: found from the network).
        accuracy: Solver convergence limit.
        include_base: Put the base case first.
        surge_check: Optional transient check of scenarios with pump trips.
        max_memory_mb: Largest estimated memory of the batch, MB (None: no limit); checked before
            the scenarios are resolved and solved.
        integrity: The line's assessed features: every scenario's steady pressure is checked against
            each one's usable safe pressure (give the same to ``surge_check`` for the transient envelope).
        derating: With ``integrity``, also find the largest throughput and station discharge
            pressures that keep every feature safe from the base state (`twin.integrity.line.derate`)
            and put it in the report.

    Raises:
        ScenarioError: When a scenario cannot be resolved on this network, or the batch is above
            ``max_memory_mb``.
    """
    model = compile_network(network)
    if max_memory_mb is not None:
        n_scenarios = len(specs) + int(include_base)
        needed = batch_bytes(model, n_scenarios)
        if needed > max_memory_mb * BYTES_PER_MB:
            raise ScenarioError(
                f"{n_scenarios} scenarios on {model.network.name}: the batch would need about "
                f"{needed / BYTES_PER_MB:.4g} MB, above the limit of {max_memory_mb:g} MB; run fewer scenarios at once"
            )
    ctx = line_context(model, source=source, delivery=delivery, rated_speed_rpm=rated_speed_rpm, accuracy=accuracy)
    whatifs = ([WhatIf(BASE_NAME)] if include_base else []) + [resolve(s, ctx) for s in specs]
    if not whatifs:
        raise ScenarioError("no scenarios to run")
    try:
        result = evaluate(model, whatifs, accuracy=accuracy, strict=False)
        report = assess(
            model,
            result,
            path=ctx.path,
            conditions=conditions,
            ambient_c=ambient_c,
            limits=limits,
            surge_check=surge_check,
            rated_speed_rpm=ctx.rated_speed_rpm,
            integrity=integrity,
        )
        if integrity is not None and derating and len(integrity):
            found = derate(
                model,
                integrity,
                path=ctx.path,
                base=ctx.base.batch,
                accuracy=accuracy,
                max_maop_use=report.limits.max_maop_use,
            )
            report = replace(report, derating=found)
        return report
    except NetworkError as exc:
        raise ScenarioError(str(exc)) from exc
