"""Surge after a pump trip: a what-if check that runs the transient solver (method of characteristics).

A steady what-if reports the state a line settles in after a trip; `transient_surge_check` builds
the `twin.whatif.assess.SurgeCheck` that `run_scenarios` / `assess` call for every scenario with
tripped pumps, so its surge and column-separation findings join that scenario's violations.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from pumptwin.twin.hydraulic.solver import OPEN, HydraulicModel, solve_batch
from pumptwin.twin.integrity.line import IntegrityLimits
from pumptwin.twin.whatif.assess import SurgeCheck, SurgeFindings, envelope_violations
from pumptwin.twin.whatif.engine import WhatIf, WhatIfResult
from pumptwin.twin.whatif.path import main_path
from pumptwin.twin.whatif.report import Violation
from pumptwin.twin.whatif.spec import DEFAULT_RATED_RPM


def transient_surge_check(
    *,
    duration_s: float = 120.0,
    trip_time_s: float = 1.0,
    max_reach_m: float = 1000.0,
    rated_speed_rpm: float | Mapping[str, float] = DEFAULT_RATED_RPM,
    max_memory_mb: float | None = None,
    integrity: IntegrityLimits | None = None,
) -> SurgeCheck:
    """A surge check for `run_scenarios` / `twin.whatif.assess` built on `twin.transients`.

    For each station with a tripped pump it rebuilds the scenario's state before the trip
    (the same batch row with the tripped pumps running), then simulates by the method of
    characteristics the pipe chain from the station's discharge to the next pump suction or
    the delivery along the main path. The transient model trips every running pump of the
    station together, so for one pump of several the result is on the severe side. It adds a
    SURGE violation where the pressure passes 110 % of MAOP and a COLUMN SEPARATION violation
    where a vapour cavity forms; a case the transient model cannot build becomes a note. With the
    line's assessed features, the transient pressure envelope on the simulated span (the MOC grid's
    distance from the span's upstream end plus that end's chainage on the main path) is compared
    with each feature on the span: a feature it passes is an ``INTEGRITY`` violation whose unit says
    it is the transient envelope.

    Args:
        duration_s: Simulated time after the start, s.
        trip_time_s: Time of the trip, s.
        max_reach_m: Longest MOC reach, m.
        rated_speed_rpm: Rated pump speed for the run-down, rpm: one for every pump or by pump id
            (a station's run-down uses its first tripped pump's; `DEFAULT_RATED_RPM` for a pump not
            named).
        max_memory_mb: Largest estimated memory of one transient simulation, MB (None: the
            transient model's default); a finer grid or longer run is a note, not a result.
        integrity: The line's assessed features (None: no integrity check).

    Returns:
        The check.
    """

    def check(model: HydraulicModel, sc: WhatIf, result: WhatIfResult, row: int) -> SurgeFindings:
        from dataclasses import replace

        from pumptwin.twin.surge.transients import TransientError, line_from_network, simulate

        net = model.network
        pump_ids = list(model.pump_ids)
        pre = result.batch.take(np.array([row]))
        for pid in sc.trips:
            pre.link_status[0, model.pump_link[pump_ids.index(pid)]] = OPEN
        sol = solve_batch(model, pre)
        speeds = pre.pump_speed[0]
        net_pre = replace(net, pumps=tuple(replace(p, speed=float(speeds[i])) for i, p in enumerate(net.pumps)))
        path = main_path(model)
        suctions = {model.node_index[p.start] for p in net.pumps}
        violations: list[Violation] = []
        notes: list[str] = []
        tripped: dict[str, str] = {}
        for pid in sc.trips:
            tripped.setdefault(net.pumps[pump_ids.index(pid)].end, pid)
        for start, first in sorted(tripped.items()):
            j = model.node_index[start]
            if j not in path.nodes:
                notes.append(f"surge: {start} is not on the main path; not simulated")
                continue
            after = path.nodes[path.nodes.index(j) + 1 :]
            end = next((n for n in after if n in suctions or n == path.delivery), path.delivery)
            span = f"{start}->{model.node_ids[end]}"
            try:
                case = line_from_network(
                    net_pre,
                    start,
                    model.node_ids[end],
                    head_m=sol.head_m[0],
                    flow_m3s=sol.flow_m3s[0],
                    rated_speed_rpm=_rated_of(rated_speed_rpm, first),
                    trip_time_s=trip_time_s,
                )
                res = (
                    simulate(case, duration_s, max_reach_m=max_reach_m)
                    if max_memory_mb is None
                    else simulate(case, duration_s, max_reach_m=max_reach_m, max_memory_mb=max_memory_mb)
                )
            except TransientError as exc:
                notes.append(f"surge on {span} not simulated: {exc}")
                continue
            summary = res.summary()
            notes.append(
                f"surge: station trip at {start} simulated for {duration_s:g} s on {span}: "
                f"max {summary['max_pressure_mpa']:.2f} MPa, min {summary['min_pressure_mpa']:.2f} MPa g"
            )
            if res.surge_violation.any():
                i = int(np.nanargmin(res.surge_margin_pa))
                where = f"{res.pipe_names[int(res.pipe_of_node[i])]} ({span}, {res.x_m[i] / 1e3:.1f} km)"
                limit = float(res.surge_limit_pa[i]) / 1e6
                violations.append(
                    Violation("SURGE", where, float(res.pressure_max_pa[i]) / 1e6, limit, "MPa (110 % MAOP)")
                )
            if integrity is not None:
                x_chainage_m = float(path.chainage_m[path.nodes.index(j)]) + res.x_m
                violations += envelope_violations(integrity, x_chainage_m, res.pressure_max_pa)
            if res.column_separation.any():
                i = int(np.argmin(res.pressure_min_pa))
                where = f"{int(res.column_separation.sum())} points on {span}"
                vapour = res.vapour_pressure_pa / 1e6
                violations.append(
                    Violation("COLUMN SEPARATION", where, float(res.pressure_min_pa[i]) / 1e6, vapour, "MPa g")
                )
        return SurgeFindings(tuple(violations), tuple(notes))

    return check


def _rated_of(rated_speed_rpm: float | Mapping[str, float], pump_id: str) -> float:
    """Rated speed of one pump, rpm, from one for every pump or a mapping by pump id."""
    if isinstance(rated_speed_rpm, Mapping):
        return float(rated_speed_rpm.get(pump_id, DEFAULT_RATED_RPM))
    return float(rated_speed_rpm)
