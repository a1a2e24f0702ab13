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

A scenario's status says whether its steady result stands: besides a line that is cut, a target
out of reach or a solve that did not converge, a leak given as a flow that the line cannot feed
(the achieved leak differs from the requested one by more than the limits' tolerance) gives
``leak not reachable``, and a junction below the lowest physical pressure (EPANET's negative
pressures) gives ``negative pressure``. Either is not ``ok``; the limits are still checked on the
solution as it stands.

Surge after a pump trip is a transient question; a steady what-if reports the
state the line settles in after the trip. `assess` takes an optional
``surge_check`` callable that a transient solver can supply (see
`twin.whatif.surge.transient_surge_check`): it is called for every scenario with
tripped pumps and its violations and notes are added to that scenario's.

Given the line's assessed features (`twin.integrity.line.IntegrityLimits`), every solved scenario's
steady pressure at each feature is checked against the feature's usable safe pressure: a feature
over it is an ``INTEGRITY`` violation naming the feature, its pipe and chainage, even where the
pipe's MAOP is kept.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import numpy as np

from pumptwin.twin.health.condition import MachineCondition, predicted_bearing_c, predicted_vibration_mm_s
from pumptwin.twin.hydraulic.eps import NEGATIVE_PRESSURE_TOLERANCE_M
from pumptwin.twin.hydraulic.network import NetworkError
from pumptwin.twin.hydraulic.pumps import POR_FRACTIONS
from pumptwin.twin.hydraulic.solver import CLOSED, CONVERGED, DISCONNECTED, FloatArray, HydraulicModel, ScenarioBatch
from pumptwin.twin.integrity.line import MAX_LISTED, FeatureExcess, IntegrityLimits, envelope_excess, steady_excess
from pumptwin.twin.units import G_M_S2, J_PER_KWH, M3H_PER_M3S, M_PER_KM, PA_PER_MPA, W_PER_KW
from pumptwin.twin.whatif.engine import NO_FLOW_M3S, WhatIf, WhatIfResult
from pumptwin.twin.whatif.limits import Limits
from pumptwin.twin.whatif.path import LinePath, main_path
from pumptwin.twin.whatif.report import LeakOutcome, PumpPoint, ScenarioOutcome, Violation, WhatIfReport


@dataclass(frozen=True)
class SurgeFindings:
    """What a transient check found for one scenario: limits violated and notes (e.g. what was simulated)."""

    violations: tuple[Violation, ...] = ()
    notes: tuple[str, ...] = ()


LEAK_NOT_REACHABLE = "leak not reachable"
"""Status of a scenario whose leak, given as a flow, the line cannot feed."""
NEGATIVE_PRESSURE = "negative pressure"
"""Status of a scenario with a junction below the lowest physical pressure."""
SOLVED = ("ok", LEAK_NOT_REACHABLE, NEGATIVE_PRESSURE)
"""Statuses of a scenario whose solution stands, so that its limits are checked too."""
LEAK_EXHAUSTED_M = 1.0
"""Pressure head below which a leak that is not reached is the most the node can discharge, m."""
NODES_SHOWN = 3
"""Junctions named in a negative-pressure message (the worst first)."""

STEADY_INTEGRITY_UNIT = "MPa (safe pressure)"
"""Unit of a steady ``INTEGRITY`` violation."""
ENVELOPE_INTEGRITY_UNIT = "MPa (safe pressure, transient envelope)"
"""Unit of an ``INTEGRITY`` violation of the transient pressure envelope."""

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
    integrity: IntegrityLimits | None = None,
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
        integrity: Assessed features: every solved scenario's steady pressure at each is checked
            against its usable safe pressure (`twin.integrity.line.steady_violations`).

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
        if integrity is not None and outcome.status in SOLVED:
            outcome = replace(outcome, violations=outcome.violations + steady_violations(integrity, outcome))
        if surge_check is not None and sc.trips:
            found = surge_check(model, sc, result, row)
            outcome = replace(
                outcome, violations=outcome.violations + found.violations, notes=outcome.notes + found.notes
            )
        outcomes.append(outcome)
    return WhatIfReport(model.network.name, tuple(outcomes), ambient_c, limits, integrity)


def _integrity(excess: tuple[FeatureExcess, ...], unit: str) -> tuple[Violation, ...]:
    return tuple(Violation("INTEGRITY", e.where, e.value_mpa, e.limit_mpa, unit) for e in excess)


def steady_violations(
    limits: IntegrityLimits, outcome: ScenarioOutcome, *, max_listed: int = MAX_LISTED
) -> tuple[Violation, ...]:
    """Features whose steady pressure in a scenario is above their usable safe pressure, worst first.

    The pressure at each feature is interpolated along the scenario's main-path profile
    (`twin.integrity.line.pressure_at_features`); at most ``max_listed`` are listed, the last one
    listed counting the rest (``... and <n> more``).

    Returns:
        ``Violation("INTEGRITY", "<feature_id> (<pipe_id>, <km> km)", MPa, limit MPa, "MPa (safe pressure)")``.
    """
    found = steady_excess(limits, outcome.chainage_km, outcome.profile_pressure_mpa, max_listed=max_listed)
    return _integrity(found, STEADY_INTEGRITY_UNIT)


def envelope_violations(
    limits: IntegrityLimits, x_chainage_m: FloatArray, pressure_max_pa: FloatArray, *, max_listed: int = MAX_LISTED
) -> tuple[Violation, ...]:
    """Features on a simulated span whose transient pressure envelope passes their usable safe pressure.

    Args:
        limits: The features.
        x_chainage_m: (N,) line chainage of the transient grid's nodes, m (increasing).
        pressure_max_pa: (N,) highest transient pressure at the nodes, gauge Pa.
        max_listed: Most violations listed.

    Returns:
        ``INTEGRITY`` violations with the unit ``MPa (safe pressure, transient envelope)``; features
        off the span are not checked.
    """
    found = envelope_excess(limits, x_chainage_m, pressure_max_pa, max_listed=max_listed)
    return _integrity(found, ENVELOPE_INTEGRITY_UNIT)


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
    leaks = _leaks(model, result, row, limits)
    low = _negative_pressures(model, result, row, limits)
    if status == "ok" and not all(leak.reached for leak in leaks):
        status, message = LEAK_NOT_REACHABLE, "; ".join(_leak_message(leak) for leak in leaks if not leak.reached)
    elif status == "ok" and low:
        status, message = NEGATIVE_PRESSURE, _negative_pressure_message(low, rho_g, limits)
    solved = status in SOLVED
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
        if run and solved:
            violations += _pump_violations(point, pump.min_speed, pump.max_speed, limits)
    heads = result.head_m[row]
    pressure_mpa = result.line.pressure_pa[row] / PA_PER_MPA
    nj = model.n_junctions
    margin = result.line.maop_pa * limits.max_maop_use - result.line.pipe_max_pressure_pa[row]
    if np.isfinite(margin).any():
        k_min = int(np.nanargmin(margin))
        min_margin, min_at = float(margin[k_min]) / PA_PER_MPA, net.pipes[k_min].id
        if solved and margin[k_min] < 0:
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
    if solved and nj and result.line.pressure_pa[row, j_min] < vapour_gauge_pa:
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
        leaks=leaks,
        negative_pressure_m=tuple(low),
    )


def _leaks(model: HydraulicModel, result: WhatIfResult, row: int, limits: Limits) -> tuple[LeakOutcome, ...]:
    """Each leak the scenario gives as a flow: requested, achieved (m3/h) and the pressure head there (m)."""
    out = []
    for nid, requested_m3s in result.scenarios[row].leak_flow_m3s.items():
        j = model.node_index[nid]
        requested, achieved = requested_m3s * M3H_PER_M3S, float(result.leak_m3s[row, j]) * M3H_PER_M3S
        pressure = float(result.head_m[row, j] - model.elevation_m[j])
        out.append(LeakOutcome(nid, requested, achieved, pressure, limits.leak_reached(requested, achieved)))
    return tuple(out)


def _leak_message(leak: LeakOutcome) -> str:
    """Why a leak is not reached; "at most" when the node's pressure has fallen to about zero."""
    most = "at most" if leak.pressure_m < LEAK_EXHAUSTED_M else "achieved"
    return (
        f"leak not reachable: {leak.requested_m3h:.4g} m3/h requested, {leak.achieved_m3h:.4g} m3/h {most} "
        f"at {leak.node} (pressure {leak.pressure_m:.3g} m)"
    )


def _negative_pressures(
    model: HydraulicModel, result: WhatIfResult, row: int, limits: Limits
) -> list[tuple[str, float]]:
    """Junctions whose pressure head is below ``limits.min_pressure_m``, worst first: (id, m)."""
    nj = model.n_junctions
    pressure = result.head_m[row, :nj] - model.elevation_m[:nj]
    low = np.flatnonzero(pressure < limits.min_pressure_m - NEGATIVE_PRESSURE_TOLERANCE_M)
    return sorted(((model.node_ids[j], float(pressure[j])) for j in low), key=lambda item: item[1])


def _negative_pressure_message(low: list[tuple[str, float]], rho_g: float, limits: Limits) -> str:
    """The scenario's negative pressures: how many junctions and the worst ones, m and MPa gauge."""
    shown = ", ".join(f"{nid} {p:.4g} m ({p * rho_g / PA_PER_MPA:.3g} MPa g)" for nid, p in low[:NODES_SHOWN])
    more = f" and {len(low) - NODES_SHOWN} more" if len(low) > NODES_SHOWN else ""
    return (
        f"negative pressure at {len(low)} junction{'s' if len(low) > 1 else ''} (below {limits.min_pressure_m:g} m): "
        f"{shown}{more}; the steady result is not physical"
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
