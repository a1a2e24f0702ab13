"""Line estimation: friction multipliers, flow meter biases and MAOP margins from metered pressures and flows.

Pipe chains between nodes of known head (metered pressures, station headers, reservoirs) give
segments whose measured head loss H_a - H_b = m F(q) + M(q), with F the network's friction loss
(Darcy-Weisbach with Swamee-Jain, Hazen-Williams or Manning) and M the minor losses at the
metered flow; m is the line's friction multiplier, a slow random walk. Flow meters of a line
without intermediate withdrawals must agree: each meter's bias is its median deviation from the
meters' consensus in steady windows, re-centred on the median meter (only differences between
meters are observable). The MAOP margin is the smallest 1 - p / MAOP at a metered node.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import pandas as pd

from pumptwin.twin.assets import BAR_PA, M3H_PER_M3S, Registry
from pumptwin.twin.health.calibration import (
    Estimate,
    EstimatorSettings,
    LineEstimate,
    despike,
    kalman_step,
    nanmedian_rows,
    robust_mean,
    tag_column,
    walk_var,
)
from pumptwin.twin.hydraulic.friction import TURBULENT_RE, darcy_friction_factor
from pumptwin.twin.hydraulic.network import Junction, Network, Pipe, Tank
from pumptwin.twin.units import FT_M as _FT
from pumptwin.twin.units import G_EPANET_M_S2, G_M_S2

FloatArray = npt.NDArray[np.float64]

HW_EXPONENT = 1.852


@dataclass(frozen=True, slots=True)
class Segment:
    """A chain of pipes between two nodes of known head, with no withdrawal in between.

    Attributes:
        start: Node at one end (node a).
        end: Node at the other end (node b).
        pipes: Pipes in order from ``start``, each with +1 if it points from ``start`` towards ``end``.
    """

    start: str
    end: str
    pipes: tuple[tuple[Pipe, float], ...]

    @property
    def name(self) -> str:
        """``start>end``."""
        return f"{self.start}>{self.end}"


def line_segments(network: Network, known_nodes: Sequence[str]) -> tuple[Segment, ...]:
    """Pipe chains joining nodes of known head through junctions that only pass flow on.

    A junction passes flow on when it has exactly two pipes, no pump or valve, no demand and no
    emitter. Each chain is listed once.

    Args:
        network: The line's network.
        known_nodes: Nodes whose head is known (metered pressure, station headers, reservoirs).

    Returns:
        The segments, in order of discovery.
    """
    known = set(known_nodes)
    adjacent: dict[str, list[tuple[Pipe, str, float]]] = {}
    for p in network.pipes:
        adjacent.setdefault(p.start, []).append((p, p.end, 1.0))
        adjacent.setdefault(p.end, []).append((p, p.start, -1.0))
    other_links = {n for pump in network.pumps for n in (pump.start, pump.end)}
    other_links |= {n for valve in network.valves for n in (valve.start, valve.end)}

    def passes(node: str) -> bool:
        n = network.node(node)
        return (
            isinstance(n, Junction)
            and node not in other_links
            and len(adjacent.get(node, [])) == 2  # noqa: PLR2004 - a chain node has two pipes
            and n.base_demand_m3s == 0
            and n.emitter_coeff == 0
        )

    seen: set[frozenset[str]] = set()
    out: list[Segment] = []
    for a in known_nodes:
        for pipe, nxt, sign in adjacent.get(a, []):
            chain = [(pipe, sign)]
            node = nxt
            while node not in known and passes(node):
                step = next(x for x in adjacent[node] if x[0].id != chain[-1][0].id)
                chain.append((step[0], step[2]))
                node = step[1]
            if node in known and node != a:
                key = frozenset(p.id for p, _ in chain)
                if key not in seen:
                    seen.add(key)
                    out.append(Segment(a, node, tuple(chain)))
    return tuple(out)


def pipe_friction_loss_m(network: Network, pipe: Pipe, flow_m3s: npt.ArrayLike) -> FloatArray:
    """Friction head loss in m (sign of the flow) of a pipe at flows in m3/s, by the network's formula.

    Darcy-Weisbach with Swamee-Jain and EPANET's gravity, Hazen-Williams or Chezy-Manning, as the
    hydraulic solver uses them.
    """
    q = np.asarray(flow_m3s, dtype=np.float64)
    aq = np.abs(q)
    d, length = pipe.diameter_m, pipe.length_m
    formula = network.options.headloss
    if formula == "D-W":
        area = math.pi * d * d / 4.0
        re = aq / area * d / network.options.viscosity_m2_s
        f = darcy_friction_factor(re, pipe.roughness / d)
        h = f * length / d * (aq / area) ** 2 / (2.0 * G_EPANET_M_S2)
    elif formula == "H-W":
        r_us = 4.727 * (length / _FT) / pipe.roughness**HW_EXPONENT / (d / _FT) ** 4.871
        h = r_us * _FT ** (1.0 - 3.0 * HW_EXPONENT) * aq**HW_EXPONENT
    else:
        dd = d / _FT
        r_us = (4.0 * pipe.roughness / (1.49 * math.pi * dd * dd)) ** 2 * (dd / 4.0) ** -1.333 * (length / _FT)
        h = r_us * _FT ** (1.0 - 6.0) * aq * aq
    return np.asarray(np.sign(q) * h, dtype=np.float64)


def pipe_minor_loss_m(pipe: Pipe, flow_m3s: npt.ArrayLike) -> FloatArray:
    """Minor head loss K v^2 / (2 g) in m (sign of the flow), with EPANET's gravity."""
    q = np.asarray(flow_m3s, dtype=np.float64)
    area = math.pi * pipe.diameter_m**2 / 4.0
    return np.asarray(np.sign(q) * pipe.minor_loss * (q / area) ** 2 / (2.0 * G_EPANET_M_S2), dtype=np.float64)


def _elevation_m(network: Network, node: str) -> float:
    """Elevation in m of a node where pressure is measured (a reservoir's ground level)."""
    n = network.node(node)
    if isinstance(n, Junction | Tank):
        return n.elevation_m
    return n.ground_m


def _node_maop_pa(network: Network, node: str) -> float:
    n = network.node(node)
    values = [p.maop_pa for p in network.pipes if node in (p.start, p.end) and p.maop_pa is not None]
    if isinstance(n, Junction) and n.maop_pa is not None:
        values.append(n.maop_pa)
    return min(values) if values else math.nan


def _update_biases(
    prev: LineEstimate, flows: dict[str, FloatArray], dt_s: float, min_flow_m3s: float, settings: EstimatorSettings
) -> tuple[dict[str, Estimate], float]:
    """Meter biases from their deviations from the consensus in steady windows; also the line flow."""
    walk = walk_var(settings.bias_walk_sd_per_day_m3s, dt_s)
    tags = sorted(flows)
    prior = {t: prev.meter_bias_m3s.get(t, Estimate(0.0, settings.bias_prior_sd_m3s)) for t in tags}
    if not tags:
        return {}, math.nan
    raw = np.column_stack([flows[t] for t in tags])
    corrected = raw - np.array([prior[t].value for t in tags])[None, :]
    n_ok = np.isfinite(corrected).sum(axis=1)
    consensus = np.full(raw.shape[0], np.nan)
    rows = n_ok >= 1
    if rows.any():
        consensus[rows] = np.nanmedian(corrected[rows], axis=1)
    line_flow = float(np.nanmean(consensus)) if np.isfinite(consensus).any() else math.nan
    balanced = n_ok >= 3  # noqa: PLR2004 - a median needs three meters to outvote one
    c = consensus[balanced]
    steady = (
        c.size > 0
        and math.isfinite(line_flow)
        and line_flow > min_flow_m3s
        and float(np.ptp(c)) <= settings.bias_steady_tol * abs(line_flow)
    )
    out: dict[str, Estimate] = {}
    for j, t in enumerate(tags):
        z, r = math.nan, math.nan
        if steady:
            z, r, _ = robust_mean(raw[balanced, j] - c, 1e-4)
        out[t] = kalman_step(prior[t], walk, z, r)
    # Only differences between meters are observable: pin the common mode by taking the median meter as unbiased.
    centre = float(np.median([b.value for b in out.values()]))
    return {t: Estimate(b.value - centre, b.sd) for t, b in out.items()}, line_flow


def _friction_window(
    network: Network,
    segments: Sequence[Segment],
    heads: Mapping[str, FloatArray],
    flows: Mapping[str, FloatArray],
    meter_of_pipe: Mapping[str, str],
    min_flow_m3s: float,
) -> tuple[float, float]:
    """Least-squares friction multiplier of a window over all metered segments, and its variance."""
    xs: list[FloatArray] = []
    ys: list[FloatArray] = []
    for seg in segments:
        metered = [(meter_of_pipe[p.id], sign) for p, sign in seg.pipes if p.id in meter_of_pipe]
        if not metered:
            continue
        n = len(heads[seg.start])
        q = nanmedian_rows([flows[t] * sign for t, sign in metered], n)
        friction = np.zeros(n)
        minor = np.zeros(n)
        for pipe, sign in seg.pipes:
            friction += sign * pipe_friction_loss_m(network, pipe, sign * q)
            minor += sign * pipe_minor_loss_m(pipe, sign * q)
        y = heads[seg.start] - heads[seg.end] - minor
        ok = np.isfinite(y) & np.isfinite(friction) & (np.abs(q) > min_flow_m3s)
        xs.append(friction[ok])
        ys.append(y[ok])
    if not xs:
        return math.nan, math.nan
    x, y = np.concatenate(xs), np.concatenate(ys)
    den = float(x @ x)
    if x.size < 2 or den <= 0:  # noqa: PLR2004 - a variance needs two samples
        return math.nan, math.nan
    z = float(x @ y) / den
    sse = float(np.sum((y - z * x) ** 2))
    return z, max(sse / (x.size - 1), 1e-6) / den


def _maop_margin(network: Network, pressures: Mapping[str, FloatArray]) -> tuple[float, str]:
    """Smallest 1 - p / MAOP over the nodes (despiked maximum pressure) and where it occurs."""
    margin, element = math.nan, ""
    for node, p in pressures.items():
        maop = _node_maop_pa(network, node)
        if math.isfinite(maop) and np.isfinite(p).any():
            m = 1.0 - float(np.nanmax(despike(p))) / maop
            if not math.isfinite(margin) or m < margin:
                margin, element = m, node
    return margin, element


def update_line(  # noqa: PLR0913 - one line's window and its context
    prev: LineEstimate,
    registry: Registry,
    network: Network,
    wide: pd.DataFrame,
    header_pa: Mapping[str, FloatArray],
    dt_s: float,
    settings: EstimatorSettings,
) -> LineEstimate:
    """Fold one line's window into its estimate: meter biases, friction multiplier, MAOP margin."""
    line = prev.line
    rho_g = network.fluid.density_kg_m3 * G_M_S2
    pressures: dict[str, FloatArray] = dict(header_pa)
    flows: dict[str, FloatArray] = {}
    meter_of_pipe: dict[str, str] = {}
    for meter in registry.meters:
        if meter.line == line and meter.measure == "PRESS" and meter.element not in pressures:
            pressures[meter.element] = tag_column(wide, meter.tag) * BAR_PA
        elif meter.line == line and meter.measure == "FLOW":
            flows[meter.tag] = tag_column(wide, meter.tag) / M3H_PER_M3S
            meter_of_pipe[meter.element] = meter.tag
    bep = min((p.bep_flow_m3s for p in registry.pumps if p.line == line), default=0.0)
    min_flow = settings.min_line_flow_fraction * bep
    biases, line_flow = _update_biases(prev, flows, dt_s, min_flow, settings)
    heads = {node: p / rho_g + _elevation_m(network, node) for node, p in pressures.items()}
    heads.update({r.id: np.full(len(wide), r.head_m) for r in network.reservoirs})
    segments = line_segments(network, [*heads])
    corrected = {t: f - biases[t].value for t, f in flows.items()}
    z, r_var = _friction_window(network, segments, heads, corrected, meter_of_pipe, min_flow)
    friction = kalman_step(prev.friction_multiplier, walk_var(settings.friction_walk_sd_per_day, dt_s), z, r_var)
    margin, element = _maop_margin(network, pressures)
    return replace(
        prev,
        friction_multiplier=friction,
        meter_bias_m3s=biases,
        flow_m3s=line_flow if math.isfinite(line_flow) else prev.flow_m3s,
        maop_margin=margin if math.isfinite(margin) else prev.maop_margin,
        maop_element=element or prev.maop_element,
        segments=tuple(seg.name for seg in segments),
    )


def equivalent_roughness(network: Network, pipe: Pipe, multiplier: float, flow_m3s: float) -> float:
    """Roughness that scales the pipe's friction loss by ``multiplier`` at ``flow_m3s``.

    Hazen-Williams: C m^(-1/1.852); Manning: n sqrt(m); Darcy-Weisbach: Swamee-Jain inverted.
    """
    formula = network.options.headloss
    if formula == "H-W":
        return float(pipe.roughness * multiplier ** (-1.0 / HW_EXPONENT))
    if formula == "C-M":
        return float(pipe.roughness * math.sqrt(multiplier))
    d = pipe.diameter_m
    q = abs(flow_m3s) if math.isfinite(flow_m3s) and flow_m3s != 0 else math.pi * d * d / 4.0  # 1 m/s
    re = max(q / (math.pi * d * d / 4.0) * d / network.options.viscosity_m2_s, TURBULENT_RE)
    f_new = multiplier * float(darcy_friction_factor(re, pipe.roughness / d))
    rel = 3.7 * (10.0 ** (-1.0 / (2.0 * math.sqrt(f_new))) - 5.74 / re**0.9)
    return float(max(rel, 0.0) * d)
