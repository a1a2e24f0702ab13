"""Assessment of solved what-ifs: a `WhatIfReport` per batch, with predicted condition and violations.

`assess` turns a solved batch into a `WhatIfReport`: per scenario the operating
point of every pump (flow, head, speed, efficiency, power, % of BEP, NPSH
available, required and margin, inside the preferred operating region or not),
its predicted vibration and bearing temperature, the pressure profile along the
line's main path (chainage from cumulative pipe length), the margin to MAOP,
energy and throughput, and every limit violated with its value.

Predicted condition at an operating point uses the twin's own condition
models (`twin.health.condition`), learnt per pump from its history: vibration
velocity RMS from v^2 = a0 + a1 s^2 + a2 s^4 + s^4 (a3 d^2 + a4 d^3 + a5 d^4)
(s relative speed, d = q / q_BEP - 1), plus the current excess over that baseline and
a generic cavitation penalty below NPSHa / NPSHr = 1.3; the steady bearing
temperature is ambient plus R (c0 s + c1 s^2 (1 + c2 d^2)). A pump with
no history gets what an operator knows of a new machine: the ISO zone A/B
boundary at the BEP and a 40 K bearing rise. Vibration is graded
in ISO 10816-3 zones: A (new), B (unrestricted long-term operation), C (not for
long-term operation), D (damage). The default boundaries are those of group 1
machines (above 300 kW) on rigid foundations: 2.3, 4.5 and 7.1 mm/s.

Surge after a pump trip is a transient question; a steady what-if reports the
state the line settles in after the trip. `assess` takes an optional
``surge_check`` callable that a transient solver can supply (see
`twin.whatif.surge.transient_surge_check`): it is called for every scenario with
tripped pumps and its violations and notes are added to that scenario's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import numpy as np

from pumptwin.twin.health.condition import MachineCondition, predicted_bearing_c, predicted_vibration_mm_s
from pumptwin.twin.hydraulic.network import NetworkError
from pumptwin.twin.hydraulic.pumps import POR_FRACTIONS
from pumptwin.twin.hydraulic.solver import CLOSED, CONVERGED, DISCONNECTED, FloatArray, HydraulicModel, ScenarioBatch
from pumptwin.twin.units import G_M_S2, J_PER_KWH, M3H_PER_M3S, M_PER_KM, PA_PER_MPA, W_PER_KW
from pumptwin.twin.whatif.engine import NO_FLOW_M3S, WhatIf, WhatIfResult
from pumptwin.twin.whatif.limits import Limits
from pumptwin.twin.whatif.path import LinePath, main_path
from pumptwin.twin.whatif.report import PumpPoint, ScenarioOutcome, Violation, WhatIfReport


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
            flow_m3h=float(pm.flow_m3s[row, i]) * M3H_PER_M3S if run else 0.0,
            head_m=float(pm.head_m[row, i]) if run else nan,
            efficiency=float(pm.efficiency[row, i]) if run else nan,
            shaft_power_kw=float(pm.shaft_power_w[row, i]) / W_PER_KW if run else 0.0,
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
    pressure_mpa = result.line.pressure_pa[row] / PA_PER_MPA
    nj = model.n_junctions
    margin = result.line.maop_pa * limits.max_maop_use - result.line.pipe_max_pressure_pa[row]
    if np.isfinite(margin).any():
        k_min = int(np.nanargmin(margin))
        min_margin, min_at = float(margin[k_min]) / PA_PER_MPA, net.pipes[k_min].id
        if status == "ok" and margin[k_min] < 0:
            violations.append(
                Violation(
                    "MAOP",
                    min_at,
                    float(result.line.pipe_max_pressure_pa[row, k_min]) / PA_PER_MPA,
                    float(result.line.maop_pa[k_min]) * limits.max_maop_use / PA_PER_MPA,
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
                "VAPOUR",
                model.node_ids[j_min],
                pressure_mpa[j_min],
                vapour_gauge_pa / PA_PER_MPA,
                "MPa g (column separation)",
            )
        )
    nodes = np.array(path.nodes)
    return ScenarioOutcome(
        name=sc.name,
        status=status,
        message=message,
        throughput_m3h=thr * M3H_PER_M3S,
        power_kw=power / W_PER_KW,
        specific_energy_kwh_m3=power / J_PER_KWH / thr if thr > NO_FLOW_M3S else math.nan,
        leak_m3h=float(result.leak_m3s[row].sum()) * M3H_PER_M3S,
        min_maop_margin_mpa=min_margin,
        min_maop_margin_at=min_at,
        max_pressure_mpa=float(np.max(pressure_mpa[:nj])) if nj else math.nan,
        min_pressure_mpa=float(np.min(pressure_mpa[:nj])) if nj else math.nan,
        pumps=tuple(points),
        profile_nodes=tuple(model.node_ids[n] for n in path.nodes),
        chainage_km=path.chainage_m / M_PER_KM,
        profile_head_m=heads[nodes].copy(),
        profile_pressure_mpa=(heads[nodes] - model.elevation_m[nodes]) * rho_g / PA_PER_MPA,
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
            out[i] = maop_pa / PA_PER_MPA
    return out
