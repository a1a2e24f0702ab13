"""Compiled kernels of the hydraulic solver (numba): one scenario of the global gradient algorithm per loop.

Every constant is EPANET 2.2's, converted from ft and cfs to SI. The kernels are
typed by numba from the arrays `twin.hydraulics` passes; they are not called
directly. Status codes: a link is closed when its status <= CLOSED.

Speed: pipes come first and are computed without dispatch, with powers, logs and
exponentials from `twin.hydraulic._fastmath` (plain arithmetic the compiler turns into
SIMD code, where libm's ``pow`` was a third of the time); the assembly has no branches;
the numeric factorisation runs as one flat stream of updates instead of nested loops of
two or three entries, whose exits the branch predictor missed.
"""

# ruff: noqa: ANN001, ANN202, PLR0912, PLR0913, PLR0915, PLR0917, PLR1714, PLR2004, C901
from __future__ import annotations

import math

import numba as nb
import numpy as np
from numpy.typing import NDArray

from pumptwin.twin.hydraulic._fastmath import fexp, flog, fpow

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
    n_chunks = min(n_b, n_chunks)
    for chunk in nb.prange(n_chunks):
        # Work arrays are allocated once per chunk of scenarios, not per scenario.
        h = np.empty(nn)
        q = np.empty(nl)
        st = np.empty(nl, np.int64)
        setting = np.empty(nl)
        p = np.zeros(nl)
        y = np.zeros(nl)
        # Every node gets a row of aii and f and every link an entry of lval (links to a fixed-head node
        # write to the spare slot at the end), so the assembly has no branches; rows of fixed-head
        # nodes are never read. lval holds the factor's entries, then the pivots (nnz + position).
        aii = np.zeros(nn)
        lval = np.zeros(nnz + nj + 1)
        f = np.zeros(nn)
        lsc = np.zeros(nnz)
        ndx2 = np.empty(nl, np.int64)
        for k in range(nl):
            ndx2[k] = ndx[k] if ndx[k] >= 0 else nnz + nj
        # The numeric factorisation as one flat stream of updates lval[dst] -= lval[a] lval[b] / lval[piv],
        # column by column (the pivot's row first, then the column's outer products): no inner loops
        # of two or three entries whose exits the branch predictor misses.
        nops = nnz + upd_ptr[nj]
        op_dst = np.empty(nops, np.int64)
        op_a = np.empty(nops, np.int64)
        op_b = np.empty(nops, np.int64)
        op_piv = np.empty(nops, np.int64)
        col_of = np.empty(nnz, np.int64)
        i_op = 0
        for col in range(nj):
            for pp in range(col_ptr[col], col_ptr[col + 1]):
                col_of[pp] = col
                op_dst[i_op] = nnz + col_rows[pp]
                op_a[i_op] = pp
                op_b[i_op] = pp
                op_piv[i_op] = nnz + col
                i_op += 1
            for u in range(upd_ptr[col], upd_ptr[col + 1]):
                op_dst[i_op] = upd_dst[u]
                op_a[i_op] = upd_a[u]
                op_b[i_op] = upd_b[u]
                op_piv[i_op] = nnz + col
                i_op += 1
        x = np.zeros(nn)
        qe = np.zeros(nj)
        ke = np.zeros(nj)
        diag = np.empty(nj)
        rhs = np.empty(nj)
        parent = np.empty(nn, np.int64)
        dh = np.zeros(nn)  # head change of the iteration (0 at fixed-head nodes)
        inv_sv = np.empty(nl)
        hw_c = np.empty(nl)
        for k in range(nl):
            inv_sv[k] = 1.0 / (visc * ldiam[k]) if ldiam[k] > 0.0 else 0.0
            hw_c[k] = hexp * lr[k]
        npipe = 0  # links [0, npipe) are pipes (compile_network orders pipes, pumps, valves)
        while npipe < nl and ltype[npipe] <= CVPIPE:
            npipe += 1
        pump_of = np.full(nl, -1, np.int64)
        valve_of = np.full(nl, -1, np.int64)
        for i in range(npump):
            pump_of[pump_link[i]] = i
        for i in range(nv):
            valve_of[valve_link[i]] = i
        for b in range(chunk * n_b // n_chunks, (chunk + 1) * n_b // n_chunks):
            for k in range(nl):
                setting[k] = np.nan
            for i in range(nj):
                ke[i] = 0.0
                qe[i] = 0.0
            for i in range(nj):
                h[i] = elev[i]
                c = emitter_c[b, i]
                if c > 0.0:
                    ke[i] = c ** (-qexp)
                    qe[i] = CFS
            for i in range(nn - nj):
                h[nj + i] = fixed_head[b, i]
            for k in range(nl):
                st[k] = status_in[b, k]
            for i in range(npump):
                k = pump_link[i]
                setting[k] = pump_speed[b, i]
                if setting[k] == 0.0:
                    st[k] = CLOSED
            for i in range(nv):
                k = valve_link[i]
                setting[k] = valve_setting[b, i]
                if np.isnan(setting[k]) and st[k] == ACTIVE:
                    st[k] = OPEN
            # Initial flows.
            for k in range(nl):
                if warm and (st[k] <= CLOSED or abs(q_init[b, k]) > 2.0 * QZERO):
                    q[k] = q_init[b, k]
                elif st[k] <= CLOSED:
                    q[k] = QZERO
                elif ltype[k] == PUMP:
                    q[k] = setting[k] * pump_q0[pump_of[k]]
                else:
                    q[k] = math.pi * ldiam[k] ** 2 / 4.0 * FT
            next_check = check_freq
            relax = 1.0
            it = 1
            relerr = 0.0
            flag = NOT_CONVERGED
            max_trials = max_iter + extra_iter
            while it <= max_trials:
                # ---- head-loss coefficients P = 1/grad, Y = hloss/grad ----
                # Pipes come first and take no dispatch: the Hazen-Williams loop compiles to SIMD code.
                if darcy:
                    for k in range(npipe):
                        p[k], y[k] = _dw_pq(
                            q[k], st[k] <= CLOSED, lr[k], lml[k], lrough[k], visc * ldiam[k], inv_sv[k], cbig_p
                        )
                else:
                    for k in range(npipe):
                        p[k], y[k] = _hw_pq(q[k], st[k] <= CLOSED, hw_c[k], lml[k], hexp, inv_hexp, cbig_p)
                for k in range(npipe, nl):
                    t = ltype[k]
                    qk = q[k]
                    aq = abs(qk)
                    closed = st[k] <= CLOSED
                    if t in (PIPE, CVPIPE):
                        if darcy:
                            p[k], y[k] = _dw_pq(
                                qk, closed, lr[k], lml[k], lrough[k], visc * ldiam[k], inv_sv[k], cbig_p
                            )
                        else:
                            p[k], y[k] = _hw_pq(qk, closed, hw_c[k], lml[k], hexp, inv_hexp, cbig_p)
                    elif t == PUMP:
                        s = setting[k]
                        if closed or s == 0.0:
                            p[k] = cbig_p
                            y[k] = qk
                            continue
                        ip = pump_of[k]
                        kind = pump_kind[ip]
                        if kind == CUSTOM:
                            c0, c1 = _curve_segment(cx, cy, pump_cs[ip], pump_ce[ip], aq / s)
                            hgrad = -c1 * s
                            hloss = -c0 * s * s + hgrad * qk
                        else:
                            h0 = s * s * pump_h0[ip]
                            n = pump_n[ip]
                            if abs(n - 1.0) < 1e-6:
                                n = 1.0
                            r = pump_r[ip] * fpow(s, 2.0 - n)
                            if kind == CONST_HP:
                                hgrad = -r / aq / aq
                                if hgrad > CBIG * (FT / CFS):
                                    p[k] = cbig_p
                                    y[k] = qk
                                    continue
                                if hgrad < CSMALL * (FT / CFS):
                                    p[k] = 1.0 / (CSMALL * (FT / CFS))
                                    y[k] = qk
                                    continue
                                hloss = r / qk
                            elif n != 1.0:
                                hgrad = n * r * fpow(aq, n - 1.0)
                                if hgrad < RQTOL:
                                    hgrad = RQTOL
                                    hloss = h0 + hgrad * qk
                                else:
                                    hloss = h0 + hgrad * qk / n
                            else:
                                hgrad = r
                                hloss = h0 + hgrad * qk
                        pk = 1.0 / hgrad
                        p[k] = pk
                        y[k] = hloss * pk
                    elif t == PBV:
                        sv = setting[k]
                        if np.isnan(sv) or sv == 0.0 or lml[k] * qk * qk > sv:
                            p[k], y[k] = _valve_pq(qk, lml[k], closed)
                        else:  # hold the head loss at the setting: EPANET's P = CBIG (cfs/ft) in SI
                            p[k] = CBIG * (CFS / FT)
                            y[k] = sv * p[k]
                    elif t == TCV:
                        sv = setting[k]
                        km = lml[k] if np.isnan(sv) else 0.02517 * sv / ldiam[k] ** 4 / FT
                        p[k], y[k] = _valve_pq(qk, km, closed)
                    elif t == GPV:
                        if st[k] == CLOSED:
                            p[k], y[k] = _valve_pq(qk, lml[k], True)
                        else:
                            iv = valve_of[k]
                            qq = max(aq, 1e-6 * CFS)
                            c0, c1 = _curve_segment(cx, cy, valve_cs[iv], valve_ce[iv], qq)
                            c1 = max(c1, 1e-6)
                            p[k] = 1.0 / c1
                            y[k] = (c0 / c1 + qq) * (1.0 if qk >= 0.0 else -1.0)
                    elif np.isnan(setting[k]):  # PRV, PSV, FCV fixed open or closed
                        p[k], y[k] = _valve_pq(qk, lml[k], closed)
                    else:
                        p[k] = 0.0
                # ---- matrix coefficients; f is the residual F - A h of EPANET's system A h = F ----
                # Each link adds its energy residual y - p (h1 - h2), formed from head differences, so a
                # still pipe of conductance 1/RQTOL at a head of 2,000 m adds no rounding of order
                # eps |h| / RQTOL to the flow updates (which would hold sum|dq| / sum|q| near 1e-5).
                for i in range(nn):
                    aii[i] = 0.0
                    f[i] = 0.0
                    x[i] = 0.0
                for i in range(nnz + nj + 1):
                    lval[i] = 0.0
                for k in range(nl):
                    pk = p[k]
                    a = n1s[k]
                    c = n2s[k]
                    live = pk != 0.0  # an active PRV, PSV or FCV (P = 0) is assembled below
                    qk = q[k] if live else 0.0
                    res = y[k] - pk * (h[a] - h[c]) if live else 0.0
                    x[a] -= qk
                    x[c] += qk
                    lval[ndx2[k]] -= pk
                    aii[a] += pk
                    f[a] += res
                    aii[c] += pk
                    f[c] -= res
                for i in range(nj):
                    if ke[i] > 0.0:
                        qi = qe[i]
                        hloss, hgrad = _emitter_loss(ke[i], qi, qexp)
                        aii[i] += 1.0 / hgrad
                        f[i] += (hloss - (h[i] - elev[i])) / hgrad
                        x[i] -= qi
                for i in range(nj):
                    x[i] -= demand[b, i]
                    f[i] += x[i]
                for iv in range(nv):
                    k = valve_link[iv]
                    if np.isnan(setting[k]):
                        continue
                    t = ltype[k]
                    a = n1s[k]
                    c = n2s[k]
                    if t != PRV and t != PSV and t != FCV:
                        continue
                    if t == PRV and st[k] == ACTIVE:
                        hset = elev[c] + setting[k]
                        p[k] = 0.0
                        y[k] = q[k] + x[c]
                        f[c] += (hset - h[c]) * CBIG
                        aii[c] += CBIG
                        if x[c] < 0.0:
                            f[a] += x[c]
                        continue
                    if t == PSV and st[k] == ACTIVE:
                        hset = elev[a] + setting[k]
                        p[k] = 0.0
                        y[k] = q[k] - x[a]
                        f[a] += (hset - h[a]) * CBIG
                        aii[a] += CBIG
                        if x[a] > 0.0:
                            f[c] += x[a]
                        lval[ndx[k]] -= 1.0 / CBIG
                        aii[c] += 1.0 / CBIG
                        f[a] += h[c] / CBIG
                        f[c] += (h[a] - h[c]) / CBIG
                        continue
                    if t == FCV and st[k] == ACTIVE:
                        qs = setting[k]
                        x[a] -= qs
                        x[c] += qs
                        y[k] = q[k] - qs
                        f[a] -= qs
                        f[c] += qs
                        p[k] = cbig_p
                    else:
                        p[k], y[k] = _valve_pq(q[k], lml[k], st[k] <= CLOSED)
                        f[a] += y[k] - q[k]
                        f[c] -= y[k] - q[k]
                    lval[ndx[k]] -= p[k]
                    aii[a] += p[k]
                    aii[c] += p[k]
                    res = p[k] * (h[a] - h[c])
                    f[a] -= res
                    f[c] += res
                # ---- sparse LDL^T factorisation in elimination order, then solve ----
                # Solved for the head change, A dh = F - A h: EPANET's GGA step in increment form, so the
                # flow updates below see head differences free of the rounding of absolute heads.
                for i in range(nj):
                    lval[nnz + node_pos[i]] = aii[i]
                    rhs[node_pos[i]] = f[i]
                for i_op in range(nops):
                    lval[op_dst[i_op]] -= lval[op_a[i_op]] * lval[op_b[i_op]] / lval[op_piv[i_op]]
                bad = False
                for col in range(nj):
                    dk = lval[nnz + col]
                    bad |= dk <= 0.0
                    diag[col] = 1.0 / dk
                if bad:
                    flag = ILL_CONDITIONED
                    break
                for pp in range(nnz):
                    lsc[pp] = lval[pp] * diag[col_of[pp]]  # the unit lower factor L
                for pp in range(nnz):
                    rhs[col_rows[pp]] -= lsc[pp] * rhs[col_of[pp]]
                for col in range(nj):
                    rhs[col] *= diag[col]
                for pp in range(nnz - 1, -1, -1):
                    rhs[col_of[pp]] -= lsc[pp] * rhs[col_rows[pp]]
                for i in range(nj):
                    dh[i] = rhs[node_pos[i]]
                # ---- new flows ----
                qsum = 0.0
                dqsum = 0.0
                for k in range(npipe):
                    dq = (y[k] - p[k] * ((h[n1s[k]] - h[n2s[k]]) + (dh[n1s[k]] - dh[n2s[k]]))) * relax
                    q[k] -= dq
                    qsum += abs(q[k])
                    dqsum += abs(dq)
                for k in range(npipe, nl):
                    a = n1s[k]
                    c = n2s[k]
                    dq = (y[k] - p[k] * ((h[a] - h[c]) + (dh[a] - dh[c]))) * relax
                    if ltype[k] == PUMP and pump_kind[pump_of[k]] == CONST_HP and dq > q[k]:
                        dq = q[k] / 2.0
                    q[k] -= dq
                    qsum += abs(q[k])
                    dqsum += abs(dq)
                for i in range(nj):
                    h[i] += dh[i]
                for i in range(nj):
                    if ke[i] > 0.0:
                        qi = qe[i]
                        hloss, hgrad = _emitter_loss(ke[i], qi, qexp)
                        dq = (hloss - (h[i] - elev[i])) / hgrad * relax
                        qe[i] -= dq
                        qsum += abs(qe[i])
                        dqsum += abs(dq)
                relerr = dqsum / qsum if qsum > hacc else dqsum
                # ---- damping and valve status ----
                relax = 1.0
                valve_change = False
                if damp_limit <= 0.0 or relerr <= damp_limit:
                    if damp_limit > 0.0:
                        relax = 0.6
                    for iv in range(nv):
                        k = valve_link[iv]
                        t = ltype[k]
                        if np.isnan(setting[k]) or (t != PRV and t != PSV):
                            continue
                        s0 = st[k]
                        a = n1s[k]
                        c = n2s[k]
                        h1 = h[a]
                        h2 = h[c]
                        hml = lml[k] * q[k] * q[k]
                        ns = s0
                        if t == PRV:
                            hset = elev[c] + setting[k]
                            if s0 == ACTIVE:
                                if q[k] < -QTOL:
                                    ns = CLOSED
                                elif h1 - hml < hset - HTOL:
                                    ns = OPEN
                            elif s0 == OPEN:
                                if q[k] < -QTOL:
                                    ns = CLOSED
                                elif h2 >= hset + HTOL:
                                    ns = ACTIVE
                            elif s0 == CLOSED:
                                if h1 >= hset + HTOL and h2 < hset - HTOL:
                                    ns = ACTIVE
                                elif h1 < hset - HTOL and h1 > h2 + HTOL:
                                    ns = OPEN
                            elif s0 == XPRESSURE and q[k] < -QTOL:
                                ns = CLOSED
                        else:
                            hset = elev[a] + setting[k]
                            if s0 == ACTIVE:
                                if q[k] < -QTOL:
                                    ns = CLOSED
                                elif h2 + hml > hset + HTOL:
                                    ns = OPEN
                            elif s0 == OPEN:
                                if q[k] < -QTOL:
                                    ns = CLOSED
                                elif h1 < hset - HTOL:
                                    ns = ACTIVE
                            elif s0 == CLOSED:
                                if h2 > hset + HTOL and h1 > h2 + HTOL:
                                    ns = OPEN
                                elif h1 >= hset + HTOL and h1 > h2 + HTOL:
                                    ns = ACTIVE
                            elif s0 == XPRESSURE and q[k] < -QTOL:
                                ns = CLOSED
                        if ns != s0:
                            st[k] = ns
                            valve_change = True
                converged = relerr <= hacc
                if converged:
                    if it > max_iter:  # balanced in the extra trials, statuses no longer checked (EPANET)
                        flag = CONVERGED
                        break
                    changed = valve_change
                    if _link_status(
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
                    ):
                        changed = True
                    if not changed:
                        flag = CONVERGED
                        break
                    next_check = it + check_freq
                elif it <= max_check and it == next_check:
                    _link_status(
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
                    next_check += check_freq
                it += 1
            if flag == NOT_CONVERGED and relerr <= hacc_ok:
                # Out of trials, stalled above hacc by rounding (flow updates y - p dh of stiff links) but
                # balanced by the network's own criterion: the numbers meet EPANET's test, so it converged.
                flag = CONVERGED
            # ---- outputs ----
            for i in range(nn):
                out_h[b, i] = h[i]
            for i in range(nn - nj):
                out_fixed_in[b, i] = 0.0
            for k in range(nl):
                out_q[b, k] = q[k] if st[k] > CLOSED else 0.0  # a closed link carries no flow (EPANET's report)
                out_status[b, k] = st[k]
                if st[k] > CLOSED:
                    if n1s[k] >= nj:
                        out_fixed_in[b, n1s[k] - nj] -= q[k]
                    if n2s[k] >= nj:
                        out_fixed_in[b, n2s[k] - nj] += q[k]
            for i in range(nj):
                out_qe[b, i] = qe[i]
            if flag == CONVERGED and _disconnected(st, n1s, n2s, nj, nn, demand[b], ke, parent):
                flag = DISCONNECTED
            out_iter[b] = min(it, max_trials)
            out_err[b] = relerr
            out_flag[b] = flag


@nb.njit(**_JIT)
def _find(parent, i):  # pragma: no cover - compiled
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@nb.njit(**_JIT)
def _disconnected(st, n1s, n2s, nj, nn, demand_row, ke, parent):  # pragma: no cover - compiled
    """True when a junction with demand or an emitter has no open path to a reservoir or tank."""
    for i in range(nn):
        parent[i] = i
    for i in range(nj, nn):
        parent[i] = nj  # every fixed-head node in one set
    for k in range(n1s.shape[0]):
        if st[k] > CLOSED:
            a = _find(parent, n1s[k])
            c = _find(parent, n2s[k])
            if a != c:
                if a == nj:
                    parent[c] = a
                else:
                    parent[a] = c
    root = _find(parent, nj)
    for i in range(nj):  # noqa: SIM110 - numba compiles loops, not generator expressions
        if (demand_row[i] != 0.0 or ke[i] > 0.0) and _find(parent, i) != root:
            return True
    return False


@nb.njit(**_JIT)
def _link_status(
    st, setting, q, h, ltype, n1s, n2s, nj, fixed_is_tank, fixed_hmin, fixed_hmax, pump_of, pump_kind, pump_hmax
):  # pragma: no cover - compiled
    """EPANET linkstatus(): check valves, pumps beyond shut-off, FCVs, links to full or empty tanks."""
    change = False
    for k in range(ltype.shape[0]):
        a = n1s[k]
        c = n2s[k]
        dh = h[a] - h[c]
        s0 = st[k]
        if s0 in (XHEAD, TEMPCLOSED):
            st[k] = OPEN
        t = ltype[k]
        if t == CVPIPE:
            st[k] = _cv_status(st[k], dh, q[k])
        if t == PUMP and st[k] >= OPEN and setting[k] > 0.0:
            ip = pump_of[k]
            hmax = 1.0e30 if pump_kind[ip] == CONST_HP else setting[k] * setting[k] * pump_hmax[ip]
            if -dh > hmax + HTOL:
                st[k] = XHEAD
        if t == FCV and not np.isnan(setting[k]):
            if h[a] - h[c] < -HTOL or q[k] < -QTOL:
                st[k] = XFCV
            elif s0 == XFCV and q[k] >= setting[k]:
                st[k] = ACTIVE
        if (a >= nj or c >= nj) and st[k] > CLOSED:
            _tank_link_status(st, k, a, c, q[k], h, t, nj, fixed_is_tank, fixed_hmin, fixed_hmax)
        if st[k] != s0:
            change = True
    return change


@nb.njit(**_JIT)
def _tank_link_status(st, k, a, c, qk, h, t, nj, fixed_is_tank, fixed_hmin, fixed_hmax):  # pragma: no cover
    """Close a link that would fill a full tank or drain an empty one (EPANET tanklinkstatus)."""
    if a >= nj and c >= nj:
        return
    tank = a
    other = c
    qq = qk
    if a < nj:
        tank = c
        other = a
        qq = -qk
    it = tank - nj
    if not fixed_is_tank[it]:
        return
    dh = h[tank] - h[other]
    if h[tank] >= fixed_hmax[it] - HTOL:
        if t == PUMP:
            if c == tank:
                st[k] = TEMPCLOSED
        elif _cv_status(OPEN, dh, qq) == CLOSED:
            st[k] = TEMPCLOSED
    if h[tank] <= fixed_hmin[it] + HTOL:
        if t == PUMP:
            if a == tank:
                st[k] = TEMPCLOSED
        elif _cv_status(CLOSED, dh, qq) == OPEN:
            st[k] = TEMPCLOSED
