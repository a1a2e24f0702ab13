"""Batched steady-state hydraulics: the global gradient algorithm (Todini-Pilati).

`compile_network` turns a `Network` into flat arrays once: node and link
tables, head-loss coefficients in SI, pump curves, and a fill-reducing
elimination order with the symbolic sparse Cholesky factor of the nodal
matrix. `solve_batch` then solves a batch of scenarios that differ in pump
speeds and status, demands, fixed heads, valve settings and leak emitters, in
one compiled kernel that runs the scenarios in parallel threads; there is no
Python loop over scenarios.

The iteration follows EPANET 2.2 (hydcoeffs.c, hydsolver.c, hydstatus.c):
the same head-loss formulas and constants (EPANET works in feet; every
constant here is its exact SI conversion), the same treatment of closed links,
check valves, pumps that cannot deliver their head, links to full or empty
tanks, and PRV/PSV/FCV/PBV/TCV/GPV valves. Converged results agree with EPANET
run to the same accuracy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numba as nb
import numpy as np
from numpy.typing import NDArray

from pumptwin.twin.hydraulic._kernels import (  # noqa: F401 - re-exported constants
    ACTIVE,
    CBIG,
    CFS,
    CLOSED,
    CONST_HP,
    CONVERGED,
    CSMALL,
    CUSTOM,
    CVPIPE,
    DISCONNECTED,
    FCV,
    FT,
    GPV,
    HTOL,
    HW_EXP,
    ILL_CONDITIONED,
    LANES,
    NOT_CONVERGED,
    OPEN,
    PBV,
    PIPE,
    POWER_FUNC,
    PRV,
    PSV,
    PUMP,
    QTOL,
    QZERO,
    RQTOL,
    TCV,
    TEMPCLOSED,
    XFCV,
    XHEAD,
    XPRESSURE,
    _gga_batch,
)
from pumptwin.twin.hydraulic.network import Network, NetworkError, Pump, ValveType
from pumptwin.twin.units import G_EPANET_M_S2

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

THREE_POINTS = 3
MAX_CURVE_EXPONENT = 20.0

VALVE_CODES = {
    ValveType.PRV: PRV,
    ValveType.PSV: PSV,
    ValveType.PBV: PBV,
    ValveType.FCV: FCV,
    ValveType.TCV: TCV,
    ValveType.GPV: GPV,
}
STATUS_NAMES = {
    XHEAD: "CLOSED",
    TEMPCLOSED: "CLOSED",
    CLOSED: "CLOSED",
    OPEN: "OPEN",
    ACTIVE: "ACTIVE",
    XFCV: "OPEN",
    XPRESSURE: "OPEN",
}


@dataclass(frozen=True)
class HydraulicModel:
    """A network compiled to arrays for the solver (SI units throughout).

    Nodes are ordered junctions first, then reservoirs, then tanks; links are
    pipes, then pumps, then valves, as in `Network`.
    """

    network: Network
    node_ids: tuple[str, ...]
    link_ids: tuple[str, ...]
    n_junctions: int
    elevation_m: FloatArray
    base_demand_m3s: FloatArray
    fixed_head_m: FloatArray
    fixed_is_tank: NDArray[np.bool_]
    fixed_hmin_m: FloatArray
    fixed_hmax_m: FloatArray
    link_type: IntArray
    link_n1: IntArray
    link_n2: IntArray
    link_r: FloatArray
    link_ml: FloatArray
    link_diameter_m: FloatArray
    link_rel_roughness: FloatArray
    link_status0: IntArray
    link_setting0: FloatArray
    link_ndx: IntArray
    headloss_exp: float
    darcy: bool
    viscosity_m2_s: float
    emitter_coeff0: FloatArray
    emitter_exp: float
    pump_link: IntArray
    pump_kind: IntArray
    pump_h0: FloatArray
    pump_r: FloatArray
    pump_n: FloatArray
    pump_q0: FloatArray
    pump_hmax: FloatArray
    pump_curve_start: IntArray
    pump_curve_end: IntArray
    valve_link: IntArray
    valve_curve_start: IntArray
    valve_curve_end: IntArray
    curve_x: FloatArray
    curve_y: FloatArray
    col_ptr: IntArray
    col_rows: IntArray
    node_pos: IntArray
    upd_ptr: IntArray
    upd_a: IntArray
    upd_b: IntArray
    upd_dst: IntArray
    link_index: dict[str, int] = field(repr=False)
    node_index: dict[str, int] = field(repr=False)

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.node_ids)

    @property
    def n_links(self) -> int:
        """Number of links."""
        return len(self.link_ids)

    @property
    def pump_ids(self) -> tuple[str, ...]:
        """Pump ids in pump order."""
        return tuple(self.link_ids[k] for k in self.pump_link)

    @property
    def valve_ids(self) -> tuple[str, ...]:
        """Valve ids in valve order."""
        return tuple(self.link_ids[k] for k in self.valve_link)


@dataclass
class ScenarioBatch:
    """Inputs of B scenarios, each row one scenario (SI units).

    Attributes:
        demand_m3s: (B, n_junctions) junction demands in m3/s.
        fixed_head_m: (B, n_reservoirs + n_tanks) heads of reservoirs and tanks in m.
        pump_speed: (B, n_pumps) relative speeds; 0 stops the pump.
        link_status: (B, n_links) initial status codes (OPEN, CLOSED, ACTIVE).
        valve_setting: (B, n_valves) settings (m of head, m3/s or -); NaN fixes the
            valve at its status (no control).
        emitter_coeff: (B, n_junctions) emitter coefficients C (m3/s per m^n).
    """

    demand_m3s: FloatArray
    fixed_head_m: FloatArray
    pump_speed: FloatArray
    link_status: IntArray
    valve_setting: FloatArray
    emitter_coeff: FloatArray

    @property
    def size(self) -> int:
        """Number of scenarios B."""
        return int(self.demand_m3s.shape[0])

    def take(self, rows: IntArray | slice) -> ScenarioBatch:
        """A batch of the selected scenarios."""
        return ScenarioBatch(*(np.array(getattr(self, f)[rows], copy=True, order="C") for f in _BATCH_FIELDS))


_BATCH_FIELDS = ("demand_m3s", "fixed_head_m", "pump_speed", "link_status", "valve_setting", "emitter_coeff")


@dataclass
class BatchResult:
    """Solution of a scenario batch (SI units).

    Attributes:
        head_m: (B, n_nodes) hydraulic heads in m.
        flow_m3s: (B, n_links) link flows in m3/s (positive from start to end node; 0 through closed links).
        status: (B, n_links) final link status codes.
        emitter_flow_m3s: (B, n_junctions) emitter (leak) outflows in m3/s.
        fixed_inflow_m3s: (B, n_fixed) net inflow into each reservoir and tank in m3/s.
        iterations: (B,) iterations used.
        relative_error: (B,) final sum|dq| / sum|q|.
        flag: (B,) CONVERGED (sum|dq| / sum|q| within the accuracy, or within the tolerance when the
            trials ran out), NOT_CONVERGED, ILL_CONDITIONED or DISCONNECTED (a junction with demand
            has no open path to a reservoir or tank).
    """

    head_m: FloatArray
    flow_m3s: FloatArray
    status: IntArray
    emitter_flow_m3s: FloatArray
    fixed_inflow_m3s: FloatArray
    iterations: IntArray
    relative_error: FloatArray
    flag: IntArray

    @property
    def converged(self) -> NDArray[np.bool_]:
        """(B,) True where the scenario converged."""
        return np.asarray(self.flag == CONVERGED)


# --------------------------------------------------------------------------------------------
# Compilation
# --------------------------------------------------------------------------------------------


def _pump_params(
    network: Network, pump: Pump
) -> tuple[int, float, float, float, float, float, tuple[float, ...], tuple[float, ...]]:
    """EPANET pump parameters: (kind, h0, r, n, q0, hmax, curve x, curve y) in head-loss convention."""
    if pump.power_w is not None:
        # h q = 8.814 P[hp] in ft and cfs (water), converted to m and m3/s.
        r = -8.814 * (pump.power_w / 745.699872) * FT**4
        return CONST_HP, 0.0, r, -1.0, CFS, 1.0e10, (), ()
    assert pump.head_curve is not None
    curve = network.curve(pump.head_curve)
    xs, ys = curve.x, curve.y
    if len(xs) == 1 or (len(xs) == THREE_POINTS and xs[0] == 0.0):
        if len(xs) == 1:
            q1, h1 = xs[0], ys[0]
            h0, q2, h2 = 1.33334 * h1, 2.0 * q1, 0.0
        else:
            h0, q1, h1, q2, h2 = ys[0], xs[1], ys[1], xs[2], ys[2]
        a, b, c = _power_curve(pump.id, h0, h1, h2, q1, q2)
        return POWER_FUNC, -a, b, c, q1, h0, (), ()
    for y0, y1 in zip(ys, ys[1:], strict=False):
        if y1 >= y0:
            raise NetworkError(f"pump {pump.id!r}: head curve {curve.id!r} must fall with flow")
    return CUSTOM, 0.0, 0.0, 1.0, 0.5 * (xs[0] + xs[-1]), ys[0], xs, ys


def _power_curve(pump_id: str, h0: float, h1: float, h2: float, q1: float, q2: float) -> tuple[float, float, float]:
    """Fit h = a - b q^c (b > 0) through (0, h0), (q1, h1), (q2, h2), as EPANET's powercurve()."""
    tiny = 1e-6
    if h0 < tiny or h0 - h1 < tiny or h1 - h2 < tiny or q1 < tiny or q2 - q1 < tiny:
        raise NetworkError(f"pump {pump_id!r}: head curve points do not define a falling curve")
    a = h0
    h4 = h0 - h1
    h5 = h0 - h2
    c = math.log(h5 / h4) / math.log(q2 / q1)
    if c <= 0.0 or c > MAX_CURVE_EXPONENT:
        raise NetworkError(f"pump {pump_id!r}: head curve exponent {c:.3g} is out of range")
    b = -h4 / q1**c
    if b >= 0.0:
        raise NetworkError(f"pump {pump_id!r}: head curve does not fall with flow")
    return a, -b, c


def _resistance(network: Network, length_m: float, diameter_m: float, roughness: float, pipe_id: str) -> float:
    """Pipe resistance R (SI) with h = R q^n (H-W, C-M) or h = f R q^2 (D-W), from EPANET's ft formulas."""
    formula = network.options.headloss
    d = diameter_m / FT
    length = length_m / FT
    if formula == "H-W":
        if roughness <= 0:
            raise NetworkError(f"pipe {pipe_id!r}: Hazen-Williams C must be > 0")
        r_us = 4.727 * length / roughness**HW_EXP / d**4.871
        return float(r_us * FT ** (1.0 - 3.0 * HW_EXP))
    if formula == "D-W":
        return float(length_m) / 2.0 / G_EPANET_M_S2 / diameter_m / (math.pi * diameter_m**2 / 4.0) ** 2
    r_us = (4.0 * roughness / (1.49 * math.pi * d * d)) ** 2 * (d / 4.0) ** -1.333 * length
    return float(r_us * FT ** (1.0 - 6.0))


def _minor_loss(k: float, diameter_m: float) -> float:
    """Minor-loss coefficient ml (SI) with h = ml q^2, EPANET's 0.02517 K / d^4 in ft and cfs."""
    return 0.02517 * k / diameter_m**4 / FT


def compile_network(network: Network) -> HydraulicModel:  # noqa: PLR0915 - one pass over each element table
    """Compile ``network`` into arrays and a symbolic factorisation for `solve_batch`.

    Raises:
        NetworkError: For a pump curve that does not fall, a control valve
            connected directly to a reservoir or tank, or junctions that no
            fixed-head node can reach.
    """
    opts = network.options
    node_ids = tuple(n.id for n in network.nodes)
    node_index = {nid: i for i, nid in enumerate(node_ids)}
    nj = len(network.junctions)
    links = network.links
    link_ids = tuple(link.id for link in links)
    nl = len(links)
    elevation = np.array(
        [n.elevation_m for n in network.junctions]
        + [r.ground_m for r in network.reservoirs]
        + [t.elevation_m for t in network.tanks],
        dtype=np.float64,
    )
    fixed_head = np.array(
        [r.head_m for r in network.reservoirs] + [t.elevation_m + t.init_level_m for t in network.tanks],
        dtype=np.float64,
    )
    nr = len(network.reservoirs)
    fixed_is_tank = np.array([False] * nr + [True] * len(network.tanks))
    hmin = np.array([-1e30] * nr + [t.elevation_m + t.min_level_m for t in network.tanks], dtype=np.float64)
    hmax = np.array([1e30] * nr + [t.elevation_m + t.max_level_m for t in network.tanks], dtype=np.float64)

    ltype = np.zeros(nl, np.int64)
    n1 = np.array([node_index[link.start] for link in links], np.int64)
    n2 = np.array([node_index[link.end] for link in links], np.int64)
    r = np.zeros(nl)
    ml = np.zeros(nl)
    diam = np.zeros(nl)
    rel_rough = np.zeros(nl)
    status0 = np.full(nl, OPEN, np.int64)
    setting0 = np.full(nl, np.nan)
    for k, pipe in enumerate(network.pipes):
        ltype[k] = CVPIPE if pipe.check_valve else PIPE
        r[k] = _resistance(network, pipe.length_m, pipe.diameter_m, pipe.roughness, pipe.id)
        ml[k] = _minor_loss(pipe.minor_loss, pipe.diameter_m)
        diam[k] = pipe.diameter_m
        rel_rough[k] = pipe.roughness / pipe.diameter_m
        status0[k] = CLOSED if pipe.status == "CLOSED" else OPEN

    npump = len(network.pumps)
    pump_link = np.arange(len(network.pipes), len(network.pipes) + npump, dtype=np.int64)
    pump_kind = np.zeros(npump, np.int64)
    pump_h0, pump_r, pump_n, pump_q0, pump_hmax = (np.zeros(npump) for _ in range(5))
    curve_x: list[float] = []
    curve_y: list[float] = []
    pump_cs = np.zeros(npump, np.int64)
    pump_ce = np.zeros(npump, np.int64)
    for i, pump in enumerate(network.pumps):
        k = int(pump_link[i])
        ltype[k] = PUMP
        kind, h0, pr, pn, q0, hm, xs, ys = _pump_params(network, pump)
        pump_kind[i], pump_h0[i], pump_r[i], pump_n[i], pump_q0[i], pump_hmax[i] = kind, h0, pr, pn, q0, hm
        pump_cs[i] = len(curve_x)
        curve_x.extend(xs)
        curve_y.extend(ys)
        pump_ce[i] = len(curve_x)
        setting0[k] = pump.speed
        status0[k] = CLOSED if pump.status == "CLOSED" or pump.speed == 0.0 else OPEN

    nv = len(network.valves)
    valve_link = np.arange(nl - nv, nl, dtype=np.int64)
    valve_cs = np.zeros(nv, np.int64)
    valve_ce = np.zeros(nv, np.int64)
    for i, valve in enumerate(network.valves):
        k = int(valve_link[i])
        code = VALVE_CODES[valve.valve_type]
        ltype[k] = code
        diam[k] = valve.diameter_m
        ml[k] = _minor_loss(valve.minor_loss, valve.diameter_m)
        valve_cs[i] = len(curve_x)
        if valve.curve is not None:
            c = network.curve(valve.curve)
            curve_x.extend(c.x)
            curve_y.extend(c.y)
        valve_ce[i] = len(curve_x)
        if code in (PRV, PSV, FCV) and (n1[k] >= nj or n2[k] >= nj):
            raise NetworkError(f"valve {valve.id!r}: a {valve.valve_type.value} cannot connect to a reservoir or tank")
        if valve.status == "ACTIVE":
            status0[k] = ACTIVE if code in (PRV, PSV, FCV) else OPEN
            setting0[k] = valve.setting
        else:
            status0[k] = OPEN if valve.status == "OPEN" else CLOSED
        if code == GPV and valve.status == "ACTIVE":
            status0[k] = OPEN

    emitter0 = np.array([j.emitter_coeff for j in network.junctions], dtype=np.float64)
    base_demand = np.array([j.base_demand_m3s for j in network.junctions], dtype=np.float64) * opts.demand_multiplier

    _check_connected(network, nj, n1, n2)
    col_ptr, col_rows, pos, upd_ptr, upd_a, upd_b, upd_dst, ndx = _symbolic(nj, n1, n2)
    return HydraulicModel(
        network=network,
        node_ids=node_ids,
        link_ids=link_ids,
        n_junctions=nj,
        elevation_m=elevation,
        base_demand_m3s=base_demand,
        fixed_head_m=fixed_head,
        fixed_is_tank=fixed_is_tank,
        fixed_hmin_m=hmin,
        fixed_hmax_m=hmax,
        link_type=ltype,
        link_n1=n1,
        link_n2=n2,
        link_r=r,
        link_ml=ml,
        link_diameter_m=diam,
        link_rel_roughness=rel_rough,
        link_status0=status0,
        link_setting0=setting0,
        link_ndx=ndx,
        headloss_exp=HW_EXP if opts.headloss == "H-W" else 2.0,
        darcy=opts.headloss == "D-W",
        viscosity_m2_s=opts.viscosity_m2_s,
        emitter_coeff0=emitter0,
        emitter_exp=opts.emitter_exponent,
        pump_link=pump_link,
        pump_kind=pump_kind,
        pump_h0=pump_h0,
        pump_r=pump_r,
        pump_n=pump_n,
        pump_q0=pump_q0,
        pump_hmax=pump_hmax,
        pump_curve_start=pump_cs,
        pump_curve_end=pump_ce,
        valve_link=valve_link,
        valve_curve_start=valve_cs,
        valve_curve_end=valve_ce,
        curve_x=np.array(curve_x, np.float64),
        curve_y=np.array(curve_y, np.float64),
        col_ptr=col_ptr,
        col_rows=col_rows,
        node_pos=pos,
        upd_ptr=upd_ptr,
        upd_a=upd_a,
        upd_b=upd_b,
        upd_dst=upd_dst,
        link_index={lid: i for i, lid in enumerate(link_ids)},
        node_index=node_index,
    )


def _check_connected(network: Network, nj: int, n1: IntArray, n2: IntArray) -> None:
    """Raise when a junction has no path (through any link) to a reservoir or tank."""
    nn = len(network.nodes)
    parent = list(range(nn))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in zip(n1.tolist(), n2.tolist(), strict=True):
        parent[find(a)] = find(b)
    fixed_roots = {find(i) for i in range(nj, nn)}
    orphans = [network.junctions[i].id for i in range(nj) if find(i) not in fixed_roots]
    if orphans:
        shown = ", ".join(repr(o) for o in orphans[:5])
        raise NetworkError(f"junctions {shown} are not connected to any reservoir or tank")


def _symbolic(  # noqa: PLR0912 - ordering and symbolic factorisation in one pass
    nj: int, n1: IntArray, n2: IntArray
) -> tuple[IntArray, IntArray, IntArray, IntArray, IntArray, IntArray, IntArray, IntArray]:
    """Minimum-degree ordering and symbolic Cholesky factor of the junction matrix.

    Returns the factor's column pointers and row positions (column k holds the
    rows below the diagonal, ascending), each junction's position in the
    elimination order, the flattened update lists (for column k, entries a and b
    update entry dst by -L[a] L[b]) and each link's off-diagonal entry (-1 when
    it touches a fixed-head node).
    """
    adj: list[set[int]] = [set() for _ in range(nj)]
    for a, b in zip(n1.tolist(), n2.tolist(), strict=True):
        if a < nj and b < nj and a != b:
            adj[a].add(b)
            adj[b].add(a)
    graph = [set(s) for s in adj]
    eliminated = np.zeros(nj, dtype=bool)
    pos = np.full(nj, -1, np.int64)
    pattern: list[list[int]] = []
    # Bucketed minimum degree (ties by node index, deterministic).
    import heapq

    heap = [(len(graph[i]), i) for i in range(nj)]
    heapq.heapify(heap)
    k = 0
    while heap:
        deg, v = heapq.heappop(heap)
        if eliminated[v] or deg != len(graph[v]):
            continue
        eliminated[v] = True
        pos[v] = k
        k += 1
        nbrs = list(graph[v])
        pattern.append(nbrs)
        for u in nbrs:
            graph[u].discard(v)
        for i, u in enumerate(nbrs):
            for w in nbrs[i + 1 :]:
                if w not in graph[u]:
                    graph[u].add(w)
                    graph[w].add(u)
        for u in nbrs:
            heapq.heappush(heap, (len(graph[u]), u))
    col_ptr = np.zeros(nj + 1, np.int64)
    rows_by_col = [sorted(int(pos[u]) for u in nbrs) for nbrs in pattern]
    for c, rows in enumerate(rows_by_col):
        col_ptr[c + 1] = col_ptr[c] + len(rows)
    col_rows = np.array([r for rows in rows_by_col for r in rows], np.int64)
    entry = {(r, c): int(col_ptr[c]) + i for c, rows in enumerate(rows_by_col) for i, r in enumerate(rows)}
    upd_ptr = np.zeros(nj + 1, np.int64)
    ua: list[int] = []
    ub: list[int] = []
    ud: list[int] = []
    for c, rows in enumerate(rows_by_col):
        base = int(col_ptr[c])
        for i, ri in enumerate(rows):
            for j in range(i + 1, len(rows)):
                ua.append(base + j)
                ub.append(base + i)
                ud.append(entry[(rows[j], ri)])
        upd_ptr[c + 1] = len(ua)
    ndx = np.full(len(n1), -1, np.int64)
    for k_link, (a, b) in enumerate(zip(n1.tolist(), n2.tolist(), strict=True)):
        if a < nj and b < nj:
            pa, pb = int(pos[a]), int(pos[b])
            ndx[k_link] = entry[(max(pa, pb), min(pa, pb))]
    return (
        col_ptr,
        col_rows,
        pos,
        upd_ptr,
        np.array(ua, np.int64),
        np.array(ub, np.int64),
        np.array(ud, np.int64),
        ndx,
    )


# --------------------------------------------------------------------------------------------
# Scenario construction
# --------------------------------------------------------------------------------------------


def base_batch(model: HydraulicModel, size: int = 1) -> ScenarioBatch:
    """A batch of ``size`` copies of the network's own initial conditions (period 0, no patterns)."""
    nv = len(model.valve_link)
    return ScenarioBatch(
        demand_m3s=np.tile(model.base_demand_m3s, (size, 1)),
        fixed_head_m=np.tile(model.fixed_head_m, (size, 1)),
        pump_speed=np.tile(model.link_setting0[model.pump_link], (size, 1)),
        link_status=np.tile(model.link_status0, (size, 1)),
        valve_setting=np.tile(model.link_setting0[model.valve_link], (size, 1)) if nv else np.zeros((size, 0)),
        emitter_coeff=np.tile(model.emitter_coeff0, (size, 1)),
    )


def _chunks(size: int) -> int:
    """Parts of a kernel call the threads share: a few per thread, each filling its lanes several times over."""
    return max(1, min(4 * nb.get_num_threads(), size // (2 * LANES)))


def solve_batch(
    model: HydraulicModel,
    batch: ScenarioBatch,
    *,
    accuracy: float = 1e-6,
    max_trials: int | None = None,
    initial_flow_m3s: FloatArray | None = None,
    chunk: int = 2048,
    tolerance: float | None = None,
) -> BatchResult:
    """Solve every scenario of ``batch`` to steady state.

    Args:
        model: Compiled network.
        batch: Scenario inputs (SI).
        accuracy: Convergence limit on sum|dq| / sum|q| (EPANET's ACCURACY) the iteration aims for.
        max_trials: Iteration limit (default: the network's TRIALS option; extra trials follow its
            UNBALANCED option, and a solve balanced within them has converged, as in EPANET).
        initial_flow_m3s: (B, n_links) or (n_links,) warm-start flows, e.g. from the
            previous time step or a base case; links opened since start cold (EPANET's
            initial flows). Default: EPANET's cold start for every link.
        chunk: Scenarios per kernel call (keeps the working set in cache).
        tolerance: sum|dq| / sum|q| at which a solve that runs out of trials still counts as converged
            (rounding through stiff links can hold it just above a tight ``accuracy``). Default: the
            network's ACCURACY option, EPANET's own test; never below ``accuracy``.

    Returns:
        Heads, flows, statuses, emitter flows and a convergence report per scenario.
    """
    opts = model.network.options
    trials = max_trials if max_trials is not None else opts.trials
    accept = max(accuracy, opts.accuracy if tolerance is None else tolerance)
    extra = opts.unbalanced_continue if opts.unbalanced_continue is not None else 0
    b_total = batch.size
    nn, nl, nj = model.n_nodes, model.n_links, model.n_junctions
    nf = nn - nj
    out = BatchResult(
        head_m=np.empty((b_total, nn)),
        flow_m3s=np.empty((b_total, nl)),
        status=np.empty((b_total, nl), np.int64),
        emitter_flow_m3s=np.zeros((b_total, nj)),
        fixed_inflow_m3s=np.zeros((b_total, nf)),
        iterations=np.zeros(b_total, np.int64),
        relative_error=np.zeros(b_total),
        flag=np.zeros(b_total, np.int64),
    )
    warm = initial_flow_m3s is not None
    q_init = np.zeros((b_total, nl)) if initial_flow_m3s is None else np.broadcast_to(initial_flow_m3s, (b_total, nl))
    for start in range(0, b_total, chunk):
        s = slice(start, min(start + chunk, b_total))
        _gga_batch(
            np.ascontiguousarray(batch.demand_m3s[s], np.float64),
            np.ascontiguousarray(batch.fixed_head_m[s], np.float64),
            np.ascontiguousarray(batch.pump_speed[s], np.float64),
            np.ascontiguousarray(batch.link_status[s], np.int64),
            np.ascontiguousarray(batch.valve_setting[s], np.float64),
            np.ascontiguousarray(batch.emitter_coeff[s], np.float64),
            np.ascontiguousarray(q_init[s], np.float64),
            warm,
            model.elevation_m,
            model.fixed_is_tank,
            model.fixed_hmin_m,
            model.fixed_hmax_m,
            model.link_type,
            model.link_n1,
            model.link_n2,
            model.link_r,
            model.link_ml,
            model.link_diameter_m,
            model.link_rel_roughness,
            model.link_ndx,
            model.headloss_exp,
            model.darcy,
            model.viscosity_m2_s,
            model.emitter_exp,
            model.pump_link,
            model.pump_kind,
            model.pump_h0,
            model.pump_r,
            model.pump_n,
            model.pump_q0,
            model.pump_hmax,
            model.pump_curve_start,
            model.pump_curve_end,
            model.valve_link,
            model.valve_curve_start,
            model.valve_curve_end,
            model.curve_x,
            model.curve_y,
            model.col_ptr,
            model.col_rows,
            model.node_pos,
            model.upd_ptr,
            model.upd_a,
            model.upd_b,
            model.upd_dst,
            accuracy,
            accept,
            trials,
            extra,
            opts.check_frequency,
            opts.max_check,
            opts.damp_limit,
            _chunks(s.stop - s.start),
            out.head_m[s],
            out.flow_m3s[s],
            out.status[s],
            out.emitter_flow_m3s[s],
            out.fixed_inflow_m3s[s],
            out.iterations[s],
            out.relative_error[s],
            out.flag[s],
        )
    return out
