"""What-if scenarios on a network, solved together in one batch.

A `WhatIf` is a named list of changes to the base operating state (pump speed
factors, pumps started or stopped, demand factors, fixed-head changes, leaks);
`evaluate` turns a list of them into one `ScenarioBatch`, solves it and
summarises each scenario against the limits (MAOP, NPSH margin, preferred
operating region). A flow target ("throughput +10 %") is met by solving a
batch of speed factors and interpolating, so it costs two batched solves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from twin.hydraulics import CLOSED, OPEN, HydraulicModel, ScenarioBatch, base_batch, solve_batch
from twin.metrics import LineMetrics, PumpMetrics, line_metrics, pump_assets, pump_metrics
from twin.network import NetworkError
from twin.pumps import POR_FRACTIONS


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
            base; running pump speeds are scaled together to meet it.
        throughput_link: Link whose flow is the throughput.
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

    def __post_init__(self) -> None:
        if not self.speed_factor >= 0 or not self.demand_factor >= 0:
            raise NetworkError(f"what-if {self.name!r}: factors must be >= 0")
        if self.throughput_factor is not None and (self.throughput_link is None or self.throughput_factor <= 0):
            raise NetworkError(f"what-if {self.name!r}: a throughput target needs a link and a factor > 0")


@dataclass
class WhatIfResult:
    """Solved what-ifs: the batch, its solution and derived metrics (leading axis = scenario)."""

    scenarios: tuple[WhatIf, ...]
    batch: ScenarioBatch
    head_m: np.ndarray
    flow_m3s: np.ndarray
    status: np.ndarray
    converged: np.ndarray
    pumps: PumpMetrics
    line: LineMetrics
    leak_m3s: np.ndarray

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
    """One batch row per what-if, applied to ``base`` (default: the network's own state)."""
    base = base if base is not None else base_batch(model)
    batch = base.take(np.zeros(len(scenarios), dtype=np.int64))
    pump_index = {pid: i for i, pid in enumerate(model.pump_ids)}
    fixed_index = {nid: i - model.n_junctions for i, nid in enumerate(model.node_ids) if i >= model.n_junctions}
    for row, sc in enumerate(scenarios):
        for pid in (*sc.pumps_off, *sc.pumps_on):
            if pid not in pump_index:
                raise NetworkError(f"what-if {sc.name!r}: pump {pid!r} does not exist")
        for pid in sc.pumps_on:
            batch.link_status[row, model.pump_link[pump_index[pid]]] = OPEN
            if batch.pump_speed[row, pump_index[pid]] == 0:
                batch.pump_speed[row, pump_index[pid]] = 1.0
        for pid in sc.pumps_off:
            batch.link_status[row, model.pump_link[pump_index[pid]]] = CLOSED
        batch.pump_speed[row] *= sc.speed_factor
        batch.demand_m3s[row] *= sc.demand_factor
        for nid, head in sc.fixed_head_m.items():
            if nid not in fixed_index:
                raise NetworkError(f"what-if {sc.name!r}: {nid!r} is not a reservoir or tank")
            batch.fixed_head_m[row, fixed_index[nid]] = head
        for nid, coeff in sc.leaks.items():
            j = model.node_index.get(nid)
            if j is None or j >= model.n_junctions:
                raise NetworkError(f"what-if {sc.name!r}: leak node {nid!r} is not a junction")
            batch.emitter_coeff[row, j] = coeff
    return batch


def evaluate(
    model: HydraulicModel, scenarios: list[WhatIf], *, accuracy: float = 1e-6, base: ScenarioBatch | None = None
) -> WhatIfResult:
    """Solve every what-if in one batch and derive its margins and energy."""
    batch = build_batch(model, scenarios, base)
    for row, sc in enumerate(scenarios):
        if sc.throughput_factor is not None:
            assert sc.throughput_link is not None
            batch.pump_speed[row] *= _speed_for_throughput(model, batch.take(np.array([row])), sc, accuracy)
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
    )


def _speed_for_throughput(model: HydraulicModel, row: ScenarioBatch, sc: WhatIf, accuracy: float) -> float:
    """Common speed factor on running pumps that meets the throughput target (one batched solve of 41 factors)."""
    assert sc.throughput_link is not None and sc.throughput_factor is not None
    if sc.throughput_link not in model.link_index:
        raise NetworkError(f"what-if {sc.name!r}: throughput link {sc.throughput_link!r} does not exist")
    k = model.link_index[sc.throughput_link]
    base_flow = solve_batch(model, row, accuracy=accuracy).flow_m3s[0, k]
    factors = np.linspace(0.6, 1.4, 41)
    grid = row.take(np.zeros(factors.size, dtype=np.int64))
    grid.pump_speed *= factors[:, None]
    flows = solve_batch(model, grid, accuracy=accuracy).flow_m3s[:, k]
    target = sc.throughput_factor * base_flow
    order = np.argsort(flows)
    if not flows.min() <= target <= flows.max():
        raise NetworkError(f"what-if {sc.name!r}: throughput target is out of reach with speed factors 0.6-1.4")
    return float(np.interp(target, flows[order], factors[order]))
