"""Branch-free log, exp and power of doubles for the compiled hydraulic kernels (numba).

libm's ``pow`` is a call the compiler cannot vectorise; these are plain arithmetic on the
bits of a double, so a loop over a network's pipes compiles to SIMD code. Relative error
below 2e-14 (log below 5e-16), far under the 1e-6 accuracy the solver iterates to. They
are meant for positive, finite, normal arguments (``fpow`` clamps its base at `TINY`).
"""

# numba kernels, typed by numba from their arguments (mypy skips them, as `_kernels`, in pyproject.toml):
# ruff: noqa: ANN001, ANN202, ARG001
from __future__ import annotations

import math

import numba as nb
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

LN2_HI = 6.93147180369123816490e-01
LN2_LO = 1.90821492927058770002e-10
LOG2_E = 1.4426950408889634
SQRT2 = 1.4142135623730951
T_MIN = -708.0
T_MAX = 709.0
TINY = 1.0e-200
"""Smallest base `fpow` works with (m3/s); anything below is raised to it."""
MANTISSA = 0x000FFFFFFFFFFFFF
ONE_EXPONENT = 0x3FF0000000000000
EXP_BIAS = 1023

# No reassociation here: the reductions below rely on the order written.
_JIT = {"nogil": True, "cache": True, "fastmath": {"contract", "nsz", "arcp"}, "error_model": "numpy"}


@intrinsic
def _bits(typingctx, x):  # pragma: no cover - compiled
    """The 64 bits of a double as an int64."""
    sig = types.int64(types.float64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return sig, codegen


@intrinsic
def _double(typingctx, x):  # pragma: no cover - compiled
    """The double whose 64 bits are the int64 ``x``."""
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


@nb.njit(inline="always", **_JIT)
def flog(x: float) -> float:  # pragma: no cover - compiled
    """Natural logarithm of a positive normal double: x = 2^e m, log m from the atanh series."""
    bits = _bits(x)
    e = (bits >> 52) - EXP_BIAS
    m = _double((bits & MANTISSA) | ONE_EXPONENT)
    big = m > SQRT2
    m = m * 0.5 if big else m
    e = e + 1 if big else e
    s = (m - 1.0) / (m + 1.0)  # |s| <= 0.172: eleven terms reach double precision
    z = s * s
    p = 1.0 / 21.0 + z * (1.0 / 23.0 + z * (1.0 / 25.0))
    p = 1.0 / 15.0 + z * (1.0 / 17.0 + z * (1.0 / 19.0 + z * p))
    p = 1.0 / 9.0 + z * (1.0 / 11.0 + z * (1.0 / 13.0 + z * p))
    p = 1.0 + z * (1.0 / 3.0 + z * (1.0 / 5.0 + z * (1.0 / 7.0 + z * p)))
    fe = float(e)
    return fe * LN2_HI + (fe * LN2_LO + 2.0 * s * p)


@nb.njit(inline="always", **_JIT)
def fexp(t: float) -> float:  # pragma: no cover - compiled
    """Exponential: 2^n exp(r) with |r| <= ln2 / 2 and a degree-13 Taylor polynomial; t is held to [-708, 709]."""
    t = min(max(t, T_MIN), T_MAX)
    n = math.floor(t * LOG2_E + 0.5)
    r = (t - n * LN2_HI) - n * LN2_LO
    p = 1.0 / 6227020800.0
    p = 1.0 / 479001600.0 + r * p
    p = 1.0 / 39916800.0 + r * p
    p = 1.0 / 3628800.0 + r * p
    p = 1.0 / 362880.0 + r * p
    p = 1.0 / 40320.0 + r * p
    p = 1.0 / 5040.0 + r * p
    p = 1.0 / 720.0 + r * p
    p = 1.0 / 120.0 + r * p
    p = 1.0 / 24.0 + r * p
    p = 1.0 / 6.0 + r * p
    p = 0.5 + r * p
    p = 1.0 + r * p
    p = 1.0 + r * p
    return p * _double((int(n) + EXP_BIAS) << 52)


@nb.njit(inline="always", **_JIT)
def fpow(x: float, a: float) -> float:  # pragma: no cover - compiled
    """x^a for x >= 0 (x below `TINY` is taken as `TINY`; results beyond the double range are held at its ends)."""
    return fexp(a * flog(max(x, TINY)))
