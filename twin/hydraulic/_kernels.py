"""Compiled kernels of the hydraulic solver (numba): the global gradient algorithm, `LANES` scenarios at once.

Every constant is EPANET 2.2's, converted from ft and cfs to SI. The kernels are
typed by numba from the arrays `twin.hydraulics` passes; they are not called
directly. Status codes: a link is closed when its status <= CLOSED.

Speed: each thread solves `LANES` scenarios side by side, every per-link and per-node
quantity a row of (n, LANES), so one pass over the network's links, one factorisation
stream and one pair of triangular solves serve them all in SIMD code (the row operations
of `twin.hydraulic._lanes`). Each scenario keeps its own statuses, relaxation, iteration
count and convergence, checked per lane as EPANET checks them; a lane whose scenario
ends takes the next one. Pipes come first and are computed without dispatch, over
(pipe, lane) as one flat range, with powers, logs and exponentials from
`twin.hydraulic._fastmath` (plain arithmetic the compiler turns into SIMD code); the
assembly has no branches; the numeric factorisation runs as one flat stream of updates.
"""

# ruff: noqa: ANN001, ANN202, PLR0912, PLR0913, PLR0915, PLR0917, PLR1714, PLR2004, C901
from __future__ import annotations

import math

import numba as nb
import numpy as np
from numpy.typing import NDArray

from pumptwin.twin.hydraulic._fastmath import fexp, flog, fpow
from pumptwin.twin.hydraulic._lanes import (
    LANES,
    link_assemble,
    link_update,
    rows_copy,
    rows_mul,
    rows_recip_min,
    rows_sub_mul,
)

FloatArray = NDArray[np.float64]

FT = 0.3048
CFS = FT**3
# EPANET's tolerances and magic numbers, converted from ft / cfs to SI.
CBIG = 1.0e8
CSMALL = 1.0e-6
RQTOL = 1.0e-7 * FT / CFS
HTOL = 0.0005 * FT
QTOL = 0.0001 * CFS
QZERO = 1.0e-6 * CFS
HW_EXP = 1.852

# Link types.
PIPE, CVPIPE, PUMP, PRV, PSV, PBV, FCV, TCV, GPV = range(9)
# Link status codes; a link is closed when its status <= CLOSED.
XHEAD, TEMPCLOSED, CLOSED, OPEN, ACTIVE, XFCV, XPRESSURE = range(7)
# Pump kinds.
POWER_FUNC, CUSTOM, CONST_HP = range(3)
# Scenario outcome flags.
CONVERGED, NOT_CONVERGED, ILL_CONDITIONED, DISCONNECTED = range(4)

# --------------------------------------------------------------------------------------------

_JIT = {"nogil": True, "cache": True, "fastmath": {"afn", "arcp", "contract", "nsz", "reassoc"}, "error_model": "numpy"}


@nb.njit(inline="always", **_JIT)
def _friction_factor(q: float, e: float, s: float, inv_s: float) -> tuple[float, float]:  # pragma: no cover
    """Darcy friction factor and its derivative in q (EPANET: Swamee-Jain above Re 4000, Dunlop's cubic below).

    ``s`` is viscosity x diameter (m3/s) and ``inv_s`` its reciprocal; ``e`` the relative roughness.
    """
    a1 = 3.14159265358979323850e03
    a2 = 1.57079632679489661930e03
    a8 = 4.61841319859066668690e00
    a9 = -8.68588963806503655300e-01
    ab = 3.28895476345399058690e-03
    ac = -5.14214965799093883760e-03
    w = q * inv_s
    if w >= a1:
        y1 = a8 * fexp(-0.9 * flog(w))
        y2 = e / 3.7 + y1
        y3 = a9 * flog(y2)
        inv_y3 = 1.0 / y3
        f = inv_y3 * inv_y3
        dfdq = 1.8 * f * y1 * a9 * inv_y3 / (y2 * q)
        return f, dfdq
    y2 = e / 3.7 + ab
    y3 = a9 * flog(y2)
    fa = 1.0 / (y3 * y3)
    fb = (2.0 + ac / (y2 * y3)) * fa
    r = w / a2
    x1 = 7.0 * fa - fb
    x2 = 0.128 - 17.0 * fa + 2.5 * fb
    x3 = -0.128 + 13.0 * fa - (fb + fb)
    x4 = 0.032 - 3.0 * fa + 0.5 * fb
    f = x1 + r * (x2 + r * (x3 + r * x4))
    dfdq = (x2 + r * (2.0 * x3 + r * 3.0 * x4)) / s / a2
    return f, dfdq


@nb.njit(inline="always", **_JIT)
def _hw_pq(qk, closed, c, ml, hexp, inv_hexp, cbig_p):  # pragma: no cover - compiled
    """P and Y of a Hazen-Williams (or Chezy-Manning) pipe, branch-free; ``c`` is hexp R (EPANET pipecoeff)."""
    aq = abs(qk)
    hgrad = c * fpow(aq, hexp - 1.0)
    small = hgrad < RQTOL
    hloss = RQTOL * inv_hexp * aq if small else hgrad * aq * inv_hexp
    hgrad = RQTOL * inv_hexp if small else hgrad
    hloss = hloss + ml * aq * aq
    hgrad = hgrad + 2.0 * ml * aq
    hloss = -hloss if qk < 0.0 else hloss
    pk = 1.0 / hgrad
    return (cbig_p if closed else pk), (qk if closed else hloss * pk)


@nb.njit(inline="always", **_JIT)
def _dw_pq(qk, closed, r, ml, rough, s_v, inv_sv, cbig_p):  # pragma: no cover - compiled
    """P and Y of a Darcy-Weisbach pipe (EPANET pipecoeff with DW): laminar 64/Re, else the friction factor."""
    if closed:
        return cbig_p, qk
    aq = abs(qk)
    if aq <= 1.57079632679489661930e03 * s_v:
        r = 16.0 * math.pi * s_v * r
        hloss = qk * (r + ml * aq)
        hgrad = r + 2.0 * ml * aq
    else:
        fr, dfdq = _friction_factor(aq, rough, s_v, inv_sv)
        r1 = fr * r + ml
        hloss = r1 * aq * qk
        hgrad = 2.0 * r1 * aq + dfdq * r * aq * aq
    pk = 1.0 / hgrad
    return pk, hloss * pk


@nb.njit(inline="always", **_JIT)
def _emitter_loss(ke: float, q: float, qexp: float) -> tuple[float, float]:  # pragma: no cover - compiled
    """Head loss (m) and its gradient through an emitter h = ke |q|^qexp (EPANET emitterheadloss)."""
    kk = max(CSMALL * FT / CFS**qexp, ke)
    hgrad = qexp * kk * fpow(abs(q), qexp - 1.0)
    if hgrad < RQTOL:
        hgrad = RQTOL / qexp
        return hgrad * q, hgrad
    return hgrad * q / qexp, hgrad


@nb.njit(inline="always", **_JIT)
def _valve_pq(q: float, km: float, closed: bool) -> tuple[float, float]:  # pragma: no cover - compiled
    """P and Y of an open, closed or throttled valve (EPANET valvecoeff)."""
    if closed:
        return 1.0 / (CBIG * (FT / CFS)), q
    if km > 0.0:
        hgrad = 2.0 * km * abs(q)
        if hgrad < RQTOL:
            hgrad = RQTOL / 2.0
            hloss = q * hgrad
        else:
            hloss = q * hgrad / 2.0
        return 1.0 / hgrad, hloss / hgrad
    return 1.0 / (CSMALL * (FT / CFS)), q


@nb.njit(**_JIT)
def _curve_segment(x: FloatArray, y: FloatArray, i0: int, i1: int, q: float) -> tuple[float, float]:  # pragma: no cover
    """Intercept and slope of the curve segment bracketing q (EPANET curvecoeff)."""
    npts = i1 - i0
    k2 = 0
    while k2 < npts and x[i0 + k2] < q:
        k2 += 1
    if k2 == 0:
        k2 = 1
    elif k2 == npts:
        k2 -= 1
    k1 = k2 - 1
    r = (y[i0 + k2] - y[i0 + k1]) / (x[i0 + k2] - x[i0 + k1])
    return y[i0 + k1] - r * x[i0 + k1], r


@nb.njit(inline="always", **_JIT)
def _cv_status(s: int, dh: float, q: float) -> int:  # pragma: no cover - compiled
    """Check-valve status from head loss dh (m) and flow q (m3/s) (EPANET cvstatus)."""
    if abs(dh) > HTOL:
        if dh < -HTOL:
            return CLOSED
        if q < -QTOL:
            return CLOSED
        return OPEN
    if q < -QTOL:
        return CLOSED
    return s


@nb.njit(inline="always", **_JIT)
def _pump_pq(qk, s, kind, h0, r0, n, cs, ce, cx, cy, cbig_p):  # pragma: no cover - compiled
    """P and Y of a running pump at relative speed s (EPANET pumpcoeff)."""
    aq = abs(qk)
    if abs(n - 1.0) < 1e-6:
        n = 1.0
    if kind == POWER_FUNC:
        return _power_pump_pq(qk, s, False, h0, r0, n, cbig_p)
    if kind == CUSTOM:
        c0, c1 = _curve_segment(cx, cy, cs, ce, aq / s)
        hgrad = -c1 * s
        hloss = -c0 * s * s + hgrad * qk
    else:  # constant power
        r = r0 * fpow(s, 2.0 - n)
        hgrad = -r / aq / aq
        if hgrad > CBIG * (FT / CFS):
            return cbig_p, qk
        if hgrad < CSMALL * (FT / CFS):
            return 1.0 / (CSMALL * (FT / CFS)), qk
        hloss = r / qk
    pk = 1.0 / hgrad
    return pk, hloss * pk


@nb.njit(inline="always", **_JIT)
def _power_pump_pq(qk, s, closed, h0, r0, n, cbig_p):  # pragma: no cover - compiled
    """P and Y of a pump with a power-function curve (`_pump_pq`), branch-free for SIMD code; n is 1 or not near it."""
    s = 1.0 if closed else s
    r = r0 * fpow(s, 2.0 - n)
    hgrad = n * r * fpow(abs(qk), n - 1.0)  # r when n is 1
    small = hgrad < RQTOL and n != 1.0
    hgrad = RQTOL if small else hgrad
    h0 = s * s * h0
    hloss = h0 + hgrad * qk if small else h0 + hgrad * qk / n
    pk = 1.0 / hgrad
    return (cbig_p if closed else pk), (qk if closed else hloss * pk)


@nb.njit(**_JIT)
def _pressure_valve_status(lane, st, setting, q, h, ltype, n1s, n2s, lml, elev, valve_link):  # pragma: no cover
    """EPANET's PRV and PSV status changes of one lane (valvestatus); True when any changed."""
    change = False
    for iv in range(valve_link.shape[0]):
        k = valve_link[iv]
        t = ltype[k]
        if np.isnan(setting[k, lane]) or (t != PRV and t != PSV):
            continue
        s0 = st[k, lane]
        h1 = h[n1s[k], lane]
        h2 = h[n2s[k], lane]
        qk = q[k, lane]
        hml = lml[k] * qk * qk
        ns = s0
        if t == PRV:
            hset = elev[n2s[k]] + setting[k, lane]
            if s0 == ACTIVE:
                if qk < -QTOL:
                    ns = CLOSED
                elif h1 - hml < hset - HTOL:
                    ns = OPEN
            elif s0 == OPEN:
                if qk < -QTOL:
                    ns = CLOSED
                elif h2 >= hset + HTOL:
                    ns = ACTIVE
            elif s0 == CLOSED:
                if h1 >= hset + HTOL and h2 < hset - HTOL:
                    ns = ACTIVE
                elif h1 < hset - HTOL and h1 > h2 + HTOL:
                    ns = OPEN
            elif s0 == XPRESSURE and qk < -QTOL:
                ns = CLOSED
        else:
            hset = elev[n1s[k]] + setting[k, lane]
            if s0 == ACTIVE:
                if qk < -QTOL:
                    ns = CLOSED
                elif h2 + hml > hset + HTOL:
                    ns = OPEN
            elif s0 == OPEN:
                if qk < -QTOL:
                    ns = CLOSED
                elif h1 < hset - HTOL:
                    ns = ACTIVE
            elif s0 == CLOSED:
                if h2 > hset + HTOL and h1 > h2 + HTOL:
                    ns = OPEN
                elif h1 >= hset + HTOL and h1 > h2 + HTOL:
                    ns = ACTIVE
            elif s0 == XPRESSURE and qk < -QTOL:
                ns = CLOSED
        if ns != s0:
            st[k, lane] = ns
            change = True
    return change


@nb.njit(parallel=True, **_JIT)
def _gga_batch(  # noqa: PLR0912, PLR0915, C901
    demand,
    fixed_head,
    pump_speed,
    status_in,
    valve_setting,
    emitter_c,
    q_init,
    warm,
    elev,
    fixed_is_tank,
    fixed_hmin,
    fixed_hmax,
    ltype,
    n1s,
    n2s,
    lr,
    lml,
    ldiam,
    lrough,
    ndx,
    hexp,
    darcy,
    visc,
    emit_exp,
    pump_link,
    pump_kind,
    pump_h0,
    pump_r,
    pump_n,
    pump_q0,
    pump_hmax,
    pump_cs,
    pump_ce,
    valve_link,
    valve_cs,
    valve_ce,
    cx,
    cy,
    col_ptr,
    col_rows,
    node_pos,
    upd_ptr,
    upd_a,
    upd_b,
    upd_dst,
    hacc,
    hacc_ok,
    max_iter,
    extra_iter,
    check_freq,
    max_check,
    damp_limit,
    n_chunks,
    out_h,
    out_q,
    out_status,
    out_qe,
    out_fixed_in,
    out_iter,
    out_err,
    out_flag,
):  # pragma: no cover - compiled
    """Solve every scenario of the batch, LANES side by side per thread.

    The threads share the batch in parts of consecutive scenarios. Within a part, a lane whose
    scenario has finished (converged, out of trials, or ill-conditioned) writes its results and
    takes the next scenario, so no lane waits for the slowest of its group.
    """
    n_b = demand.shape[0]
    nj = demand.shape[1]
    nl = ltype.shape[0]
    nn = elev.shape[0]
    npump = pump_link.shape[0]
    nv = valve_link.shape[0]
    nnz = col_rows.shape[0]
    cbig_p = 1.0 / (CBIG * (FT / CFS))
    qexp = 1.0 / emit_exp
    inv_hexp = 1.0 / hexp
    max_trials = max_iter + extra_iter
    n_chunks = min(n_b, n_chunks)
    for chunk in nb.prange(n_chunks):
        b_first = chunk * n_b // n_chunks
        b_end = (chunk + 1) * n_b // n_chunks
        # Per lane: every array below has a column per lane, the lane innermost.
        h_flat = np.zeros(nn * LANES)
        h = h_flat.reshape((nn, LANES))
        q_flat = np.zeros(nl * LANES)
        q = q_flat.reshape((nl, LANES))
        st_flat = np.zeros(nl * LANES, np.int64)
        st = st_flat.reshape((nl, LANES))
        set_flat = np.zeros(nl * LANES)
        setting = set_flat.reshape((nl, LANES))
        p_flat = np.zeros(nl * LANES)
        p = p_flat.reshape((nl, LANES))
        y_flat = np.zeros(nl * LANES)
        y = y_flat.reshape((nl, LANES))
        # Every node gets a row of aii and f and every link an entry of lval (links to a fixed-head node
        # write to the spare row at the end), so the assembly has no branches; rows of fixed-head
        # nodes are never read. lval holds the factor's entries, then the pivots (nnz + position).
        aii = np.zeros((nn, LANES))
        f_flat = np.zeros(nn * LANES)
        f = f_flat.reshape((nn, LANES))
        x_flat = np.zeros(nn * LANES)
        x = x_flat.reshape((nn, LANES))
        lval = np.zeros((nnz + nj + 1, LANES))
        lsc = np.zeros((nnz, LANES))
        diag = np.zeros((nj, LANES))
        rhs = np.zeros((nj, LANES))
        dh_flat = np.zeros(nn * LANES)
        dh = dh_flat.reshape((nn, LANES))  # head change of the iteration (0 at fixed-head nodes)
        qe = np.zeros((nj, LANES))
        ke = np.zeros((nj, LANES))
        dem_flat = np.zeros(nj * LANES)
        dem = dem_flat.reshape((nj, LANES))
        lane_b = np.full(LANES, -1, np.int64)  # the scenario in each lane; -1 when the lane is idle
        it = np.ones(LANES, np.int64)
        next_check = np.zeros(LANES, np.int64)
        relax = np.ones((1, LANES))
        relerr = np.zeros(LANES)
        sums = np.zeros((2, LANES))  # sum |q| and sum |dq| of the iteration
        dmin = np.zeros((1, LANES))  # smallest pivot of the factorisation
        parent = np.empty(nn, np.int64)
        state = (h, q, st, setting, qe, ke, dem)
        inputs = (demand, fixed_head, pump_speed, status_in, valve_setting, emitter_c, q_init)
        out = (out_h, out_q, out_status, out_qe, out_fixed_in, out_iter, out_err, out_flag)
        ndx2 = np.empty(nl, np.int64)
        for k in range(nl):
            ndx2[k] = ndx[k] if ndx[k] >= 0 else nnz + nj
        # The numeric factorisation as one flat stream of updates lval[dst] -= lval[a] lval[b] / pivot,
        # column by column (the pivot's row first, then the column's outer products); op_ptr marks the columns.
        op_ptr = np.empty(nj + 1, np.int64)
        nops = nnz + upd_ptr[nj]
        op_dst = np.empty(nops, np.int64)
        op_a = np.empty(nops, np.int64)
        op_b = np.empty(nops, np.int64)
        col_of = np.empty(nnz, np.int64)
        i_op = 0
        for col in range(nj):
            op_ptr[col] = i_op
            for pp in range(col_ptr[col], col_ptr[col + 1]):
                col_of[pp] = col
                op_dst[i_op] = nnz + col_rows[pp]
                op_a[i_op] = pp
                op_b[i_op] = pp
                i_op += 1
            for u in range(upd_ptr[col], upd_ptr[col + 1]):
                op_dst[i_op] = upd_dst[u]
                op_a[i_op] = upd_a[u]
                op_b[i_op] = upd_b[u]
                i_op += 1
        op_ptr[nj] = i_op
        inv_sv = np.empty(nl)
        hw_c = np.empty(nl)
        for k in range(nl):
            inv_sv[k] = 1.0 / (visc * ldiam[k]) if ldiam[k] > 0.0 else 0.0
            hw_c[k] = hexp * lr[k]
        npipe = 0  # links [0, npipe) are pipes (compile_network orders pipes, pumps, valves)
        while npipe < nl and ltype[npipe] <= CVPIPE:
            npipe += 1
        # The pipes' constants repeated per lane, so their loop runs over (pipe, lane) as one flat range.
        npl = npipe * LANES
        c_r = np.empty(npl)
        c_ml = np.empty(npl)
        c_rough = np.empty(npl)
        c_sv = np.empty(npl)
        c_isv = np.empty(npl)
        for kl in range(npl):
            k = kl // LANES
            c_r[kl] = hw_c[k] if not darcy else lr[k]
            c_ml[kl] = lml[k]
            c_rough[kl] = lrough[k]
            c_sv[kl] = visc * ldiam[k]
            c_isv[kl] = inv_sv[k]
        # Pumps with a power-function curve that follow the pipes, [npipe, npipe + npow), go in a flat range too.
        npow = 0
        while npow < npump and pump_link[npow] == npipe + npow and pump_kind[npow] == POWER_FUNC:
            npow += 1
        c_h0 = np.empty(npow * LANES)
        c_pr = np.empty(npow * LANES)
        c_pn = np.empty(npow * LANES)
        for jl in range(npow * LANES):
            ip = jl // LANES
            c_h0[jl] = pump_h0[ip]
            c_pr[jl] = pump_r[ip]
            c_pn[jl] = 1.0 if abs(pump_n[ip] - 1.0) < 1e-6 else pump_n[ip]
        pump_of = np.full(nl, -1, np.int64)
        valve_of = np.full(nl, -1, np.int64)
        for i in range(npump):
            pump_of[pump_link[i]] = i
        for i in range(nv):
            valve_of[valve_link[i]] = i
        # Junctions with an emitter in any scenario of the chunk: only these rows are visited.
        n_em = 0
        em_node = np.empty(nj, np.int64)
        for i in range(nj):
            for b in range(b_first, b_end):
                if emitter_c[b, i] > 0.0:
                    em_node[n_em] = i
                    n_em += 1
                    break
        b_next = b_first
        n_live = 0
        for lane in range(LANES):
            # A lane without a scenario of its own carries a copy of the first, solved and never stored.
            b = b_next if b_next < b_end else b_first
            _load_lane(lane, b, state, inputs, warm, elev, ltype, ldiam, pump_link, pump_q0, pump_of, valve_link, qexp)
            it[lane] = 1
            next_check[lane] = check_freq
            relax[0, lane] = 1.0
            if b_next < b_end:
                lane_b[lane] = b_next
                b_next += 1
                n_live += 1
        while n_live > 0:
            # ---- head-loss coefficients P = 1/grad, Y = hloss/grad, every lane at once ----
            if darcy:
                for kl in range(npl):
                    p_flat[kl], y_flat[kl] = _dw_pq(
                        q_flat[kl], st_flat[kl] <= CLOSED, c_r[kl], c_ml[kl], c_rough[kl], c_sv[kl], c_isv[kl], cbig_p
                    )
            else:
                for kl in range(npl):
                    p_flat[kl], y_flat[kl] = _hw_pq(
                        q_flat[kl], st_flat[kl] <= CLOSED, c_r[kl], c_ml[kl], hexp, inv_hexp, cbig_p
                    )
            for jl in range(npow * LANES):
                kl = npl + jl
                p_flat[kl], y_flat[kl] = _power_pump_pq(
                    q_flat[kl], set_flat[kl], st_flat[kl] <= CLOSED, c_h0[jl], c_pr[jl], c_pn[jl], cbig_p
                )
            for k in range(npipe + npow, nl):
                t = ltype[k]
                for lane in range(LANES):
                    qk = q[k, lane]
                    closed = st[k, lane] <= CLOSED
                    sk = setting[k, lane]
                    if t in (PIPE, CVPIPE):
                        if darcy:
                            pk, yk = _dw_pq(qk, closed, lr[k], lml[k], lrough[k], visc * ldiam[k], inv_sv[k], cbig_p)
                        else:
                            pk, yk = _hw_pq(qk, closed, hw_c[k], lml[k], hexp, inv_hexp, cbig_p)
                    elif t == PUMP:
                        if closed or sk == 0.0:
                            pk, yk = cbig_p, qk
                        else:
                            ip = pump_of[k]
                            pk, yk = _pump_pq(
                                qk,
                                sk,
                                pump_kind[ip],
                                pump_h0[ip],
                                pump_r[ip],
                                pump_n[ip],
                                pump_cs[ip],
                                pump_ce[ip],
                                cx,
                                cy,
                                cbig_p,
                            )
                    elif t == PBV:
                        if np.isnan(sk) or sk == 0.0 or lml[k] * qk * qk > sk:
                            pk, yk = _valve_pq(qk, lml[k], closed)
                        else:  # hold the head loss at the setting: EPANET's P = CBIG (cfs/ft) in SI
                            pk = CBIG * (CFS / FT)
                            yk = sk * pk
                    elif t == TCV:
                        km = lml[k] if np.isnan(sk) else 0.02517 * sk / ldiam[k] ** 4 / FT
                        pk, yk = _valve_pq(qk, km, closed)
                    elif t == GPV:
                        if st[k, lane] == CLOSED:
                            pk, yk = _valve_pq(qk, lml[k], True)
                        else:
                            iv = valve_of[k]
                            qq = max(abs(qk), 1e-6 * CFS)
                            c0, c1 = _curve_segment(cx, cy, valve_cs[iv], valve_ce[iv], qq)
                            c1 = max(c1, 1e-6)
                            pk = 1.0 / c1
                            yk = (c0 / c1 + qq) * (1.0 if qk >= 0.0 else -1.0)
                    elif np.isnan(sk):  # PRV, PSV, FCV fixed open or closed
                        pk, yk = _valve_pq(qk, lml[k], closed)
                    else:  # an active PRV, PSV or FCV is assembled below
                        pk, yk = 0.0, y[k, lane]
                    p[k, lane] = pk
                    y[k, lane] = yk
            # ---- matrix coefficients; f is the residual F - A h of EPANET's system A h = F ----
            # Each link adds its energy residual y - p (h1 - h2), formed from head differences, so a
            # still pipe of conductance 1/RQTOL at a head of 2,000 m adds no rounding of order
            # eps |h| / RQTOL to the flow updates (which would hold sum|dq| / sum|q| near 1e-5).
            aii[:] = 0.0
            f[:] = 0.0
            x[:] = 0.0
            lval[:] = 0.0
            for k in range(nl):
                link_assemble(p, y, q, h, x, lval, aii, f, k, n1s[k], n2s[k], ndx2[k])
            for e in range(n_em):
                i = em_node[e]
                for lane in range(LANES):
                    if ke[i, lane] > 0.0:
                        qi = qe[i, lane]
                        hloss, hgrad = _emitter_loss(ke[i, lane], qi, qexp)
                        aii[i, lane] += 1.0 / hgrad
                        f[i, lane] += (hloss - (h[i, lane] - elev[i])) / hgrad
                        x[i, lane] -= qi
            for il in range(nj * LANES):  # junction rows come first: one flat range
                x_flat[il] -= dem_flat[il]
                f_flat[il] += x_flat[il]
            for iv in range(nv):
                k = valve_link[iv]
                t = ltype[k]
                if t != PRV and t != PSV and t != FCV:
                    continue
                a = n1s[k]
                c = n2s[k]
                for lane in range(LANES):
                    sk = setting[k, lane]
                    if np.isnan(sk):
                        continue
                    if t == PRV and st[k, lane] == ACTIVE:
                        hset = elev[c] + sk
                        p[k, lane] = 0.0
                        y[k, lane] = q[k, lane] + x[c, lane]
                        f[c, lane] += (hset - h[c, lane]) * CBIG
                        aii[c, lane] += CBIG
                        if x[c, lane] < 0.0:
                            f[a, lane] += x[c, lane]
                        continue
                    if t == PSV and st[k, lane] == ACTIVE:
                        hset = elev[a] + sk
                        p[k, lane] = 0.0
                        y[k, lane] = q[k, lane] - x[a, lane]
                        f[a, lane] += (hset - h[a, lane]) * CBIG
                        aii[a, lane] += CBIG
                        if x[a, lane] > 0.0:
                            f[c, lane] += x[a, lane]
                        lval[ndx2[k], lane] -= 1.0 / CBIG
                        aii[c, lane] += 1.0 / CBIG
                        f[a, lane] += h[c, lane] / CBIG
                        f[c, lane] += (h[a, lane] - h[c, lane]) / CBIG
                        continue
                    if t == FCV and st[k, lane] == ACTIVE:
                        x[a, lane] -= sk
                        x[c, lane] += sk
                        y[k, lane] = q[k, lane] - sk
                        f[a, lane] -= sk
                        f[c, lane] += sk
                        pk = cbig_p
                    else:
                        pk, yk = _valve_pq(q[k, lane], lml[k], st[k, lane] <= CLOSED)
                        y[k, lane] = yk
                        f[a, lane] += yk - q[k, lane]
                        f[c, lane] -= yk - q[k, lane]
                    p[k, lane] = pk
                    lval[ndx2[k], lane] -= pk
                    aii[a, lane] += pk
                    aii[c, lane] += pk
                    res = pk * (h[a, lane] - h[c, lane])
                    f[a, lane] -= res
                    f[c, lane] += res
            # ---- sparse LDL^T factorisation in elimination order, then solve ----
            # Solved for the head change, A dh = F - A h: EPANET's GGA step in increment form, so the
            # flow updates below see head differences free of the rounding of absolute heads.
            for i in range(nj):
                rows_copy(lval, nnz + node_pos[i], aii, i)
                rows_copy(rhs, node_pos[i], f, i)
            dmin[:] = 1.0
            for col in range(nj):
                # The column's pivot is final here: lsc takes the column of the unit factor L, and the
                # updates lval[dst] -= lval[a] lval[b] / pivot read it as lsc[a] lval[b].
                rows_recip_min(diag, col, lval, nnz + col, dmin)
                for pp in range(col_ptr[col], col_ptr[col + 1]):
                    rows_mul(lsc, pp, lval, pp, diag, col)
                for o in range(op_ptr[col], op_ptr[col + 1]):
                    rows_sub_mul(lval, op_dst[o], lsc, op_a[o], lval, op_b[o])
            for lane in range(LANES):
                if lane_b[lane] >= 0 and dmin[0, lane] <= 0.0:
                    _store_lane(
                        lane,
                        lane_b[lane],
                        ILL_CONDITIONED,
                        min(it[lane], max_trials),
                        relerr[lane],
                        state,
                        demand,
                        n1s,
                        n2s,
                        parent,
                        out,
                    )
                    lane_b[lane] = -1
                    n_live -= 1
            for pp in range(nnz):
                rows_sub_mul(rhs, col_rows[pp], lsc, pp, rhs, col_of[pp])
            for col in range(nj):
                rows_mul(rhs, col, rhs, col, diag, col)
            for pp in range(nnz - 1, -1, -1):
                rows_sub_mul(rhs, col_of[pp], lsc, pp, rhs, col_rows[pp])
            for i in range(nj):
                rows_copy(dh, i, rhs, node_pos[i])
            # ---- new flows ----
            sums[:] = 0.0
            for k in range(npipe):
                link_update(p, y, h, dh, q, relax, sums, k, n1s[k], n2s[k])
            for k in range(npipe, nl):
                a = n1s[k]
                c = n2s[k]
                const_hp = ltype[k] == PUMP and pump_kind[pump_of[k]] == CONST_HP
                for lane in range(LANES):
                    dq = (y[k, lane] - p[k, lane] * ((h[a, lane] - h[c, lane]) + (dh[a, lane] - dh[c, lane]))) * relax[
                        0, lane
                    ]
                    if const_hp and dq > q[k, lane]:
                        dq = q[k, lane] / 2.0
                    q[k, lane] -= dq
                    sums[0, lane] += abs(q[k, lane])
                    sums[1, lane] += abs(dq)
            for il in range(nj * LANES):
                h_flat[il] += dh_flat[il]
            for e in range(n_em):
                i = em_node[e]
                for lane in range(LANES):
                    if ke[i, lane] > 0.0:
                        qi = qe[i, lane]
                        hloss, hgrad = _emitter_loss(ke[i, lane], qi, qexp)
                        dq = (hloss - (h[i, lane] - elev[i])) / hgrad * relax[0, lane]
                        qe[i, lane] -= dq
                        sums[0, lane] += abs(qe[i, lane])
                        sums[1, lane] += abs(dq)
            # ---- per lane: damping, valve and link status, convergence; a finished lane takes the next scenario ----
            for lane in range(LANES):
                b = lane_b[lane]
                if b < 0:
                    continue
                # EPANET's relative change, its total flow and fallback in cfs as it keeps them
                err = sums[1, lane] / sums[0, lane] if sums[0, lane] > hacc * CFS else sums[1, lane] / CFS
                relerr[lane] = err
                relax[0, lane] = 1.0
                valve_change = False
                if damp_limit <= 0.0 or err <= damp_limit:
                    if damp_limit > 0.0:
                        relax[0, lane] = 0.6
                    if nv > 0:
                        valve_change = _pressure_valve_status(
                            lane, st, setting, q, h, ltype, n1s, n2s, lml, elev, valve_link
                        )
                flag = NOT_CONVERGED
                i_t = it[lane]
                balanced = err <= hacc
                if balanced and i_t > max_iter:  # balanced in the extra trials, statuses no longer checked (EPANET)
                    flag = CONVERGED
                elif balanced or (i_t <= max_check and i_t == next_check[lane]):
                    # Statuses are checked when balanced (a change means more trials) and every check_freq
                    # trials up to max_check before that.
                    changed = _link_status(
                        lane,
                        st,
                        setting,
                        q,
                        h,
                        ltype,
                        n1s,
                        n2s,
                        nj,
                        fixed_is_tank,
                        fixed_hmin,
                        fixed_hmax,
                        pump_of,
                        pump_kind,
                        pump_hmax,
                    )
                    if not balanced:
                        next_check[lane] += check_freq
                    elif changed or valve_change:
                        next_check[lane] = i_t + check_freq
                    else:
                        flag = CONVERGED
                if flag == NOT_CONVERGED and i_t < max_trials:
                    it[lane] = i_t + 1
                    continue
                if flag == NOT_CONVERGED and err <= hacc_ok:
                    # Out of trials, stalled above hacc by rounding (flow updates y - p dh of stiff links) but
                    # balanced by the network's own criterion: the numbers meet EPANET's test, so it converged.
                    flag = CONVERGED
                _store_lane(lane, b, flag, i_t, err, state, demand, n1s, n2s, parent, out)
                lane_b[lane] = -1
                n_live -= 1
            for lane in range(LANES):
                if lane_b[lane] >= 0 or b_next >= b_end:
                    continue
                _load_lane(
                    lane, b_next, state, inputs, warm, elev, ltype, ldiam, pump_link, pump_q0, pump_of, valve_link, qexp
                )
                it[lane] = 1
                next_check[lane] = check_freq
                relax[0, lane] = 1.0
                relerr[lane] = 0.0
                lane_b[lane] = b_next
                b_next += 1
                n_live += 1


@nb.njit(**_JIT)
def _load_lane(
    lane, b, state, inputs, warm, elev, ltype, ldiam, pump_link, pump_q0, pump_of, valve_link, qexp
):  # pragma: no cover
    """Put scenario b into a lane: heads at elevation, EPANET's initial flows (or the warm start), its inputs.

    ``state`` is the lanes' (h, q, st, setting, qe, ke, dem); ``inputs`` the batch's (demand,
    fixed_head, pump_speed, status_in, valve_setting, emitter_c, q_init).
    """
    h, q, st, setting, qe, ke, dem = state
    demand, fixed_head, pump_speed, status_in, valve_setting, emitter_c, q_init = inputs
    nj = demand.shape[1]
    nn = h.shape[0]
    nl = q.shape[0]
    for k in range(nl):
        setting[k, lane] = np.nan
        st[k, lane] = status_in[b, k]
    for i in range(nj):
        h[i, lane] = elev[i]
        dem[i, lane] = demand[b, i]
        c = emitter_c[b, i]
        ke[i, lane] = c ** (-qexp) if c > 0.0 else 0.0
        qe[i, lane] = CFS if c > 0.0 else 0.0
    for i in range(nn - nj):
        h[nj + i, lane] = fixed_head[b, i]
    for i in range(pump_link.shape[0]):
        k = pump_link[i]
        setting[k, lane] = pump_speed[b, i]
        if pump_speed[b, i] == 0.0:
            st[k, lane] = CLOSED
    for i in range(valve_link.shape[0]):
        k = valve_link[i]
        setting[k, lane] = valve_setting[b, i]
        if np.isnan(valve_setting[b, i]) and st[k, lane] == ACTIVE:
            st[k, lane] = OPEN
    for k in range(nl):
        closed = st[k, lane] <= CLOSED
        if warm and (closed or abs(q_init[b, k]) > 2.0 * QZERO):
            q[k, lane] = q_init[b, k]
        elif closed:
            q[k, lane] = QZERO
        elif ltype[k] == PUMP:
            q[k, lane] = setting[k, lane] * pump_q0[pump_of[k]]
        else:
            q[k, lane] = math.pi * ldiam[k] ** 2 / 4.0 * FT


@nb.njit(**_JIT)
def _store_lane(lane, b, flag, iters, err, state, demand, n1s, n2s, parent, out):  # pragma: no cover - compiled
    """Write a lane's solution as scenario b's result; a closed link carries no flow (EPANET's report).

    ``state`` is the lanes' arrays as `_load_lane` takes them; ``out`` the kernel's outputs
    (out_h, out_q, out_status, out_qe, out_fixed_in, out_iter, out_err, out_flag).
    """
    h, q, st, _, qe, ke, _ = state
    out_h, out_q, out_status, out_qe, out_fixed_in, out_iter, out_err, out_flag = out
    nj = qe.shape[0]
    nn = h.shape[0]
    for i in range(nn):
        out_h[b, i] = h[i, lane]
    for i in range(nn - nj):
        out_fixed_in[b, i] = 0.0
    for k in range(q.shape[0]):
        s = st[k, lane]
        out_q[b, k] = q[k, lane] if s > CLOSED else 0.0
        out_status[b, k] = s
        if s > CLOSED:
            if n1s[k] >= nj:
                out_fixed_in[b, n1s[k] - nj] -= q[k, lane]
            if n2s[k] >= nj:
                out_fixed_in[b, n2s[k] - nj] += q[k, lane]
    for i in range(nj):
        out_qe[b, i] = qe[i, lane]
    if flag == CONVERGED and _disconnected(lane, st, n1s, n2s, nj, nn, demand[b], ke, parent):
        flag = DISCONNECTED
    out_iter[b] = iters
    out_err[b] = err
    out_flag[b] = flag


@nb.njit(**_JIT)
def _find(parent, i):  # pragma: no cover - compiled
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@nb.njit(**_JIT)
def _disconnected(lane, st, n1s, n2s, nj, nn, demand_row, ke, parent):  # pragma: no cover - compiled
    """True when, in one lane, a junction with demand or an emitter has no open path to a reservoir or tank."""
    for i in range(nn):
        parent[i] = i
    for i in range(nj, nn):
        parent[i] = nj  # every fixed-head node in one set
    for k in range(n1s.shape[0]):
        if st[k, lane] > CLOSED:
            a = _find(parent, n1s[k])
            c = _find(parent, n2s[k])
            if a != c:
                if a == nj:
                    parent[c] = a
                else:
                    parent[a] = c
    root = _find(parent, nj)
    for i in range(nj):  # noqa: SIM110 - numba compiles loops, not generator expressions
        if (demand_row[i] != 0.0 or ke[i, lane] > 0.0) and _find(parent, i) != root:
            return True
    return False


@nb.njit(**_JIT)
def _link_status(
    lane, st, setting, q, h, ltype, n1s, n2s, nj, fixed_is_tank, fixed_hmin, fixed_hmax, pump_of, pump_kind, pump_hmax
):  # pragma: no cover - compiled
    """EPANET linkstatus() of one lane: check valves, pumps beyond shut-off, FCVs, links to full or empty tanks."""
    change = False
    for k in range(ltype.shape[0]):
        a = n1s[k]
        c = n2s[k]
        dh = h[a, lane] - h[c, lane]
        qk = q[k, lane]
        sk = setting[k, lane]
        s0 = st[k, lane]
        s1 = OPEN if s0 in (XHEAD, TEMPCLOSED) else s0
        t = ltype[k]
        if t == CVPIPE:
            s1 = _cv_status(s1, dh, qk)
        if t == PUMP and s1 >= OPEN and sk > 0.0:
            ip = pump_of[k]
            hmax = 1.0e30 if pump_kind[ip] == CONST_HP else sk * sk * pump_hmax[ip]
            if -dh > hmax + HTOL:
                s1 = XHEAD
        if t == FCV and not np.isnan(sk):
            if dh < -HTOL or qk < -QTOL:
                s1 = XFCV
            elif s0 == XFCV and qk >= sk:
                s1 = ACTIVE
        if (a >= nj or c >= nj) and s1 > CLOSED:
            s1 = _tank_link_status(s1, a, c, qk, h[a, lane], h[c, lane], t, nj, fixed_is_tank, fixed_hmin, fixed_hmax)
        st[k, lane] = s1
        if s1 != s0:
            change = True
    return change


@nb.njit(**_JIT)
def _tank_link_status(s, a, c, qk, ha, hc, t, nj, fixed_is_tank, fixed_hmin, fixed_hmax):  # pragma: no cover
    """Status s of a link from node a to node c, heads ha and hc (m), after EPANET's tanklinkstatus.

    The link is closed (TEMPCLOSED) if it would fill a full tank or drain an empty one.
    """
    if a >= nj and c >= nj:
        return s
    tank = a
    h_tank = ha
    h_other = hc
    qq = qk
    if a < nj:
        tank = c
        h_tank = hc
        h_other = ha
        qq = -qk
    it = tank - nj
    if not fixed_is_tank[it]:
        return s
    dh = h_tank - h_other
    if h_tank >= fixed_hmax[it] - HTOL:
        if t == PUMP:
            if c == tank:
                s = TEMPCLOSED
        elif _cv_status(OPEN, dh, qq) == CLOSED:
            s = TEMPCLOSED
    if h_tank <= fixed_hmin[it] + HTOL:
        if t == PUMP:
            if a == tank:
                s = TEMPCLOSED
        elif _cv_status(CLOSED, dh, qq) == OPEN:
            s = TEMPCLOSED
    return s
