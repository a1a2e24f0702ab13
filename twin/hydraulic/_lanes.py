"""Row operations on scenarios solved side by side, as explicit SIMD code (numba intrinsics).

The batched solver keeps each quantity of `LANES` scenarios in one row of a C-contiguous
(n, LANES) array. A sparse update such as ``lval[d] -= lval[a] * lval[b]`` then touches three
whole rows, but the compiler cannot prove that rows picked by run-time indices do not
overlap, so it leaves a loop over the lanes scalar. These intrinsics load each row as one
vector of LANES doubles, compute, and store: the loads come before the store, which is
right whatever the rows are.

`twin.hydraulic._kernels` compiles these in, and numba's cache of the kernels follows
their own file only: after a change here, delete ``twin/hydraulic/__pycache__/*.nb*``.
"""

# numba intrinsics, typed by numba from their arguments (mypy skips them, as `_kernels`, in pyproject.toml):
# ruff: noqa: ANN001, ANN202, ARG001, PLR2004
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

LANES = 8
"""Scenarios solved side by side: the width of every row."""

_VEC = ir.VectorType(ir.DoubleType(), LANES)
_FLAGS = ("contract",)


def _row(context, builder, arrty, arr, idx):
    """Pointer to row ``idx`` of a (n, LANES) float64 array, as a vector pointer."""
    data = context.make_array(arrty)(context, builder, arr).data
    off = builder.mul(
        builder.sext(idx, ir.IntType(64)) if idx.type.width < 64 else idx, ir.Constant(ir.IntType(64), LANES)
    )
    return builder.bitcast(builder.gep(data, [off]), _VEC.as_pointer())


def _load(builder, ptr):
    """The row at ``ptr`` as a vector (rows are 8-byte aligned, not vector-aligned)."""
    return builder.load(ptr, align=8)


def _check_rows(*arrays: types.Type) -> None:
    for a in arrays:
        if not (isinstance(a, types.Array) and a.ndim == 2 and a.dtype == types.float64 and a.layout == "C"):
            raise TypeError("row operations take C-contiguous (n, LANES) float64 arrays")


@intrinsic
def rows_copy(typingctx, dst, i, src, j):  # pragma: no cover - compiled
    """dst[i] = src[j]."""
    _check_rows(dst, src)

    def codegen(context, builder, sig, args):
        d, iv, s, jv = args
        builder.store(
            _load(builder, _row(context, builder, sig.args[2], s, jv)),
            _row(context, builder, sig.args[0], d, iv),
            align=8,
        )
        return context.get_dummy_value()

    return types.void(dst, i, src, j), codegen


@intrinsic
def rows_mul(typingctx, dst, i, a, j, b, k):  # pragma: no cover - compiled
    """dst[i] = a[j] * b[k]."""
    _check_rows(dst, a, b)

    def codegen(context, builder, sig, args):
        d, iv, av, jv, bv, kv = args
        va = _load(builder, _row(context, builder, sig.args[2], av, jv))
        vb = _load(builder, _row(context, builder, sig.args[4], bv, kv))
        builder.store(builder.fmul(va, vb, flags=_FLAGS), _row(context, builder, sig.args[0], d, iv), align=8)
        return context.get_dummy_value()

    return types.void(dst, i, a, j, b, k), codegen


@intrinsic
def rows_sub_mul(typingctx, dst, i, a, j, b, k):  # pragma: no cover - compiled
    """dst[i] -= a[j] * b[k]."""
    _check_rows(dst, a, b)

    def codegen(context, builder, sig, args):
        d, iv, av, jv, bv, kv = args
        va = _load(builder, _row(context, builder, sig.args[2], av, jv))
        vb = _load(builder, _row(context, builder, sig.args[4], bv, kv))
        pd = _row(context, builder, sig.args[0], d, iv)
        vd = _load(builder, pd)
        builder.store(builder.fsub(vd, builder.fmul(va, vb, flags=_FLAGS), flags=_FLAGS), pd, align=8)
        return context.get_dummy_value()

    return types.void(dst, i, a, j, b, k), codegen


@intrinsic
def rows_recip_min(typingctx, dst, i, src, j, low):  # pragma: no cover - compiled
    """dst[i] = 1 / src[j], and low[0] = min(low[0], src[j]) (the smallest pivot per lane)."""
    _check_rows(dst, src, low)

    def codegen(context, builder, sig, args):
        d, iv, s, jv, lo = args
        vs = _load(builder, _row(context, builder, sig.args[2], s, jv))
        one = ir.Constant(_VEC, [1.0] * LANES)
        builder.store(builder.fdiv(one, vs, flags=("arcp",)), _row(context, builder, sig.args[0], d, iv), align=8)
        plo = _row(context, builder, sig.args[4], lo, ir.Constant(ir.IntType(64), 0))
        vlo = _load(builder, plo)
        builder.store(builder.select(builder.fcmp_ordered("<", vs, vlo), vs, vlo), plo, align=8)
        return context.get_dummy_value()

    return types.void(dst, i, src, j, low), codegen


@intrinsic
def link_assemble(typingctx, p, y, q, h, x, lval, aii, f, k, a, c, d):  # pragma: no cover - compiled
    """Add link k (from node a to node c, factor entry d) to the system of every lane.

    Where p[k] != 0: x[a] -= q[k], x[c] += q[k] (net inflow), lval[d] -= p[k], aii[a] += p[k],
    aii[c] += p[k], and the energy residual r = y[k] - p[k] (h[a] - h[c]) goes to f[a] += r,
    f[c] -= r. A lane with p[k] = 0 (an active control valve, assembled apart) adds only its p.
    """
    _check_rows(p, y, q, h, x, lval, aii, f)

    def codegen(context, builder, sig, args):
        pv, yv, qv, hv, xv, lv, av, fv, kv, ai, ci, di = args
        t = sig.args

        def row(n, arr, idx):
            return _row(context, builder, t[n], arr, idx)

        vp = _load(builder, row(0, pv, kv))
        zero = ir.Constant(_VEC, [0.0] * LANES)
        live = builder.fcmp_unordered("!=", vp, zero)
        vq = builder.select(live, _load(builder, row(2, qv, kv)), zero)
        dh = builder.fsub(_load(builder, row(3, hv, ai)), _load(builder, row(3, hv, ci)))
        res = builder.fsub(_load(builder, row(1, yv, kv)), builder.fmul(vp, dh, flags=_FLAGS), flags=_FLAGS)
        res = builder.select(live, res, zero)
        for n, arr, idx, op, val in (
            (4, xv, ai, builder.fsub, vq),
            (4, xv, ci, builder.fadd, vq),
            (5, lv, di, builder.fsub, vp),
            (6, av, ai, builder.fadd, vp),
            (6, av, ci, builder.fadd, vp),
            (7, fv, ai, builder.fadd, res),
            (7, fv, ci, builder.fsub, res),
        ):
            ptr = row(n, arr, idx)
            builder.store(op(_load(builder, ptr), val), ptr, align=8)
        return context.get_dummy_value()

    return types.void(p, y, q, h, x, lval, aii, f, k, a, c, d), codegen


@intrinsic
def link_update(typingctx, p, y, h, dh, q, relax, sums, k, a, c):  # pragma: no cover - compiled
    """New flow of link k in every lane: q[k] -= dq, dq = (y[k] - p[k] (h[a] - h[c] + dh[a] - dh[c])) relax[0].

    sums[0] += |q[k]| and sums[1] += |dq| (EPANET's convergence sums, per lane).
    """
    _check_rows(p, y, h, dh, q, relax, sums)

    def codegen(context, builder, sig, args):
        pv, yv, hv, dhv, qv, rv, sv, kv, ai, ci = args
        t = sig.args

        def row(n, arr, idx):
            return _row(context, builder, t[n], arr, idx)

        zero64 = ir.Constant(ir.IntType(64), 0)
        one64 = ir.Constant(ir.IntType(64), 1)
        head = builder.fsub(_load(builder, row(2, hv, ai)), _load(builder, row(2, hv, ci)))
        step = builder.fsub(_load(builder, row(3, dhv, ai)), _load(builder, row(3, dhv, ci)))
        vp = _load(builder, row(0, pv, kv))
        dq = builder.fsub(
            _load(builder, row(1, yv, kv)), builder.fmul(vp, builder.fadd(head, step), flags=_FLAGS), flags=_FLAGS
        )
        dq = builder.fmul(dq, _load(builder, row(5, rv, zero64)))
        pq = row(4, qv, kv)
        vq = builder.fsub(_load(builder, pq), dq)
        builder.store(vq, pq, align=8)
        fabs = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_VEC, [_VEC]), f"llvm.fabs.v{LANES}f64")
        for idx, val in ((zero64, vq), (one64, dq)):
            ps = row(6, sv, idx)
            builder.store(builder.fadd(_load(builder, ps), builder.call(fabs, [val])), ps, align=8)
        return context.get_dummy_value()

    return types.void(p, y, h, dh, q, relax, sums, k, a, c), codegen
