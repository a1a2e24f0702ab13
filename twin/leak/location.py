"""Leak location from the hydraulic gradients, and pressure residuals against the twin's gradient.

See `pumptwin.twin.leak.detection` (step 6) for the method. Units are SI.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pumptwin.twin.leak.model import (
    _TINY,
    FloatArray,
    LeakConfig,
    LineModel,
    NoiseModel,
    clean_readings,
)
from pumptwin.twin.units import G_M_S2


@dataclass(frozen=True, slots=True)
class _Means:
    """Mean inlet flow, corrected outlet flow (m3/s), inlet and outlet pressure (Pa), residual (m3/s).

    ``p_pa`` holds the mean pressure of every transmitter (Pa), in chainage order.
    """

    q_in_m3s: float
    q_out_m3s: float
    p_in_pa: float
    p_out_pa: float
    residual_m3s: float
    p_pa: tuple[float, ...] = ()


def locate_leak_change(
    line: LineModel, positions_m: Sequence[float], before: _Means, after: _Means, noise: NoiseModel | None = None
) -> float:
    """Leak chainage (m) by intersecting the changes of the two hydraulic gradients from before to after.

    Upstream of the leak the head changes by ``dH_in - dS_u x``, downstream by
    ``dH_out + dS_d (L - x)``, with ``dS`` the change of friction slope for the change of inlet
    (upstream) or outlet (downstream) flow; the two meet at the leak. Meter biases and calibration
    offsets, common to both states, cancel.

    Returns:
        The chainage in m, clipped to the transmitter span; nan when the slopes do not change.
    """
    x0, x1 = float(positions_m[0]), float(positions_m[-1])
    rg = line.density_kg_m3 * G_M_S2
    c = noise.friction_scale if noise is not None else 1.0
    dh_in = (after.p_in_pa - before.p_in_pa) / rg
    dh_out = (after.p_out_pa - before.p_out_pa) / rg
    ds_u = c * float(line.friction_slope(after.q_in_m3s) - line.friction_slope(before.q_in_m3s))
    ds_d = c * float(line.friction_slope(after.q_out_m3s) - line.friction_slope(before.q_out_m3s))
    if abs(ds_u - ds_d) < _TINY:
        return math.nan
    span = x1 - x0
    x = (dh_in - dh_out - ds_d * span) / (ds_u - ds_d)
    return float(np.clip(x0 + x, x0, x1))


def profile_misfit(
    x_leak_m: FloatArray,
    positions_m: Sequence[float] | FloatArray,
    head_change_m: Sequence[float] | FloatArray,
    head_sd_m: Sequence[float] | FloatArray,
    slope_change: tuple[float, float],
    slope_sd: tuple[float, float],
) -> FloatArray:
    """Weighted residual sum of squares of a kinked head-change profile, for each trial leak chainage.

    The model is ``dH(x) = a - s_u min(x, x_L) - s_d max(x - x_L, 0)``: the head change falls with
    the upstream slope change ``s_u`` up to the leak and with the downstream one ``s_d`` beyond.
    For each trial ``x_L`` the offset ``a`` and both slopes are fitted by weighted least squares to
    the transmitters' head changes (spread ``head_sd_m``) and to the flow meters' slope changes
    ``slope_change`` (upstream, downstream; spread ``slope_sd``), which act as priors.

    Args:
        x_leak_m: Trial leak chainages, in m.
        positions_m: Transmitter chainages, in m.
        head_change_m: Change of each transmitter's head, in m.
        head_sd_m: Spread of each head change, in m (> 0).
        slope_change: Upstream and downstream friction-slope changes from the flow meters (m/m).
        slope_sd: Their spreads (m/m, > 0).

    Returns:
        The weighted residual sum of squares for each trial chainage (-).
    """
    x = np.asarray(positions_m, dtype=np.float64)
    xl = np.asarray(x_leak_m, dtype=np.float64)[:, None]
    w = 1.0 / np.asarray(head_sd_m, dtype=np.float64)
    n = len(xl)
    design = np.zeros((n, len(x) + 2, 3))
    design[:, : len(x), 0] = w
    design[:, : len(x), 1] = -np.minimum(x[None, :], xl) * w
    design[:, : len(x), 2] = -np.maximum(x[None, :] - xl, 0.0) * w
    design[:, len(x), 1] = 1.0 / slope_sd[0]
    design[:, len(x) + 1, 2] = 1.0 / slope_sd[1]
    y = np.concatenate([np.asarray(head_change_m) * w, [slope_change[0] / slope_sd[0], slope_change[1] / slope_sd[1]]])
    # scale the chainage columns so the normal equations stay well conditioned
    scale = np.array([1.0, max(float(np.ptp(x)), 1.0), max(float(np.ptp(x)), 1.0)])
    design = design * scale
    ata = np.einsum("nki,nkj->nij", design, design)
    aty = np.einsum("nki,k->ni", design, y)
    theta = np.linalg.solve(ata, aty[:, :, None])[:, :, 0]
    resid = np.einsum("nki,ni->nk", design, theta) - y[None, :]
    return np.asarray(np.sum(resid * resid, axis=1), dtype=np.float64)


def locate_leak_profile(
    line: LineModel, positions_m: Sequence[float], before: _Means, after: _Means, noise: NoiseModel
) -> float:
    """Leak chainage (m) from the change of the whole pressure profile, with the flow meters as priors.

    Fits the kinked head-change profile of `profile_misfit` to every transmitter's change of head
    from ``before`` to ``after`` (elevation and calibration offsets cancel) and to the friction-slope
    changes implied by the inlet and outlet flow changes, and returns the kink that fits best: a
    coarse grid over the transmitter span, then a fine one around its best point. The spreads are
    the noise model's ``head_change_sd_m`` and ``flow_change_sd_frac`` (learnt on leak-free data);
    a transmitter between two others ties the two gradients to the leak's segment, so the flow
    meters' errors act over one segment rather than the whole line.

    Returns:
        The chainage in m, within the span between the first and last transmitter; nan when the
        means lack the transmitters' pressures.
    """
    pos = np.asarray(positions_m, dtype=np.float64)
    if len(after.p_pa) != len(pos) or len(before.p_pa) != len(pos):
        return math.nan
    rg = line.density_kg_m3 * G_M_S2
    c = noise.friction_scale
    dh = (np.asarray(after.p_pa) - np.asarray(before.p_pa)) / rg
    q = np.array([before.q_in_m3s, after.q_in_m3s, before.q_out_m3s, after.q_out_m3s])
    q_mid = 0.5 * (q[[0, 2]] + q[[1, 3]])
    step = np.maximum(1e-4 * np.abs(q_mid), 1e-9)
    s = c * line.friction_slope(np.concatenate([q, q_mid + step, q_mid - step]))
    dsu, dsd = float(s[1] - s[0]), float(s[3] - s[2])
    # spread of a slope change: slope derivative x flow-change spread
    sd_slope = np.abs((s[4:6] - s[6:8]) / (2.0 * step)) * noise.flow_change_sd_frac * np.abs(q_mid)
    sd_u, sd_d = (max(float(v), _TINY) for v in sd_slope)
    head_sd = np.maximum(np.asarray(noise.head_change_sd_m, dtype=np.float64), 1e-6)
    x0 = float(pos[0])
    x_rel = fit_kinked_profile(pos - x0, dh, head_sd, (dsu, dsd), (sd_u, sd_d))
    return x0 + x_rel


def locate_leak_absolute(
    line: LineModel, positions_m: Sequence[float], post: _Means, noise: NoiseModel, flow_sd_m3s: float
) -> float:
    """Leak chainage (m) from the pressure profile alone, without a pre-leak baseline.

    Each transmitter's head minus the leak-free profile at the inlet flow, built down the segments
    with their own calibration (``segment_friction_scale``, ``segment_head_offset_m``), is flat
    upstream of the leak and tilts downstream of it by ``c (S(q_out) - S(q_in))``; the kink is fitted
    as in `fit_kinked_profile`, with the heads' spread ``head_model_sd_m`` and that tilt (and a
    zero upstream tilt) as priors whose spread follows from ``flow_sd_m3s``, the spread of the
    inlet-outlet flow difference.

    Returns:
        The chainage in m, within the span between the first and last transmitter; nan when the
        noise model lacks the segment calibration or the means lack the transmitters' pressures.
    """
    pos = np.asarray(positions_m, dtype=np.float64)
    n = len(pos)
    if not (len(post.p_pa) == len(noise.head_model_sd_m) == n and len(noise.segment_friction_scale) == n - 1):
        return math.nan
    rg = line.density_kg_m3 * G_M_S2
    z = np.array([line.elevation_m(float(x)) for x in pos])
    head = np.asarray(post.p_pa)[None, :] / rg + z[None, :]
    q_in, q_out = post.q_in_m3s, post.q_out_m3s
    step = max(1e-4 * abs(q_in), 1e-9)
    s = line.friction_slope(np.array([q_in, q_out, q_in + step, q_in - step]))
    resid = head_profile_residual(
        pos, head, s[:1], np.asarray(noise.segment_friction_scale), np.asarray(noise.segment_head_offset_m)
    )[0]
    c = noise.friction_scale
    sd_slope = max(abs(c * (s[2] - s[3]) / (2.0 * step)) * flow_sd_m3s, _TINY)
    head_sd = np.maximum(np.asarray(noise.head_model_sd_m, dtype=np.float64), 1e-6)
    tilt = c * float(s[1] - s[0])
    return float(pos[0]) + fit_kinked_profile(pos - pos[0], resid, head_sd, (0.0, tilt), (sd_slope, sd_slope))


def head_profile_residual(
    positions_m: FloatArray, head_m: FloatArray, slope: FloatArray, scales: FloatArray, offsets_m: FloatArray
) -> FloatArray:
    """Heads (m) minus the leak-free profile from the inlet head down calibrated segments.

    Args:
        positions_m: Transmitter chainages, in m.
        head_m: Heads (rows: times, columns: transmitters), in m.
        slope: Friction slope at each time's inlet flow (m/m).
        scales: Per-segment friction scale c_k (-).
        offsets_m: Per-segment head offset d_k, in m.

    Returns:
        ``H_k - (H_0 - sum_{j<k} (c_j S dx_j + d_j))``, same shape as ``head_m``; column 0 is zero.
    """
    drop = np.asarray(slope)[:, None] * (np.diff(positions_m) * scales)[None, :] + offsets_m[None, :]
    expected = head_m[:, :1] - np.concatenate([np.zeros((len(head_m), 1)), np.cumsum(drop, axis=1)], axis=1)
    return np.asarray(head_m - expected, dtype=np.float64)


def fit_kinked_profile(
    positions_m: FloatArray,
    head_change_m: FloatArray,
    head_sd_m: FloatArray,
    slope_change: tuple[float, float],
    slope_sd: tuple[float, float],
) -> float:
    """Chainage (m) of the kink that minimises `profile_misfit`, in closed form per segment.

    With the kink inside segment k the profile is two straight lines, ``a - s_u x`` through the
    transmitters up to k and ``b - s_d x`` through the rest, meeting at ``(a - b) / (s_u - s_d)``:
    a linear least-squares problem. A segment whose solution meets inside it is a candidate, and so
    is a kink at each transmitter; the candidate with the least weighted misfit wins.

    Args:
        positions_m: Transmitter chainages, in m, increasing.
        head_change_m: Change of each transmitter's head, in m.
        head_sd_m: Spread of each head change, in m (> 0).
        slope_change: Upstream and downstream friction-slope changes from the flow meters (m/m).
        slope_sd: Their spreads (m/m, > 0).

    Returns:
        The kink chainage in m, between the first and last transmitter.
    """
    x = np.asarray(positions_m, dtype=np.float64)
    n = len(x)
    w = 1.0 / np.asarray(head_sd_m, dtype=np.float64)
    scale = max(float(x[-1] - x[0]), 1.0)
    y = np.concatenate([np.asarray(head_change_m) * w, [slope_change[0] / slope_sd[0], slope_change[1] / slope_sd[1]]])
    # one design per segment k (rows: transmitters, then the two slope priors; columns a, b, s_u, s_d)
    up = np.arange(n)[None, :] <= np.arange(n - 1)[:, None]
    design = np.zeros((n - 1, n + 2, 4))
    design[:, :n, 0] = np.where(up, w, 0.0)
    design[:, :n, 1] = np.where(up, 0.0, w)
    design[:, :n, 2] = np.where(up, -x / scale * w, 0.0)
    design[:, :n, 3] = np.where(up, 0.0, -x / scale * w)
    design[:, n, 2] = 1.0 / (slope_sd[0] * scale)
    design[:, n + 1, 3] = 1.0 / (slope_sd[1] * scale)
    ata = np.einsum("kri,krj->kij", design, design)
    aty = np.einsum("kri,r->ki", design, y)
    theta = np.linalg.solve(ata, aty[:, :, None])[:, :, 0]
    resid = np.einsum("kri,ki->kr", design, theta) - y[None, :]
    dslope = (theta[:, 2] - theta[:, 3]) / scale
    with np.errstate(divide="ignore", invalid="ignore"):
        xl = np.where(np.abs(dslope) > _TINY, (theta[:, 0] - theta[:, 1]) / dslope, np.nan)
    inside = (xl > x[:-1]) & (xl < x[1:])
    candidates = np.concatenate([x, xl[inside]])
    misfits = np.concatenate(
        [profile_misfit(x, x, head_change_m, head_sd_m, slope_change, slope_sd), np.sum(resid**2, axis=1)[inside]]
    )
    return float(candidates[int(np.argmin(misfits))])


def locate_leak(  # noqa: PLR0913
    line: LineModel,
    positions_m: Sequence[float],
    p_in_pa: float,
    p_out_pa: float,
    q_in_m3s: float,
    q_out_m3s: float,
    noise: NoiseModel | None = None,
) -> float:
    """Leak chainage (m) by intersecting the upstream and downstream hydraulic gradients.

    Args:
        line: The twin's line model.
        positions_m: Transmitter chainages (m); the first and last are used.
        p_in_pa: Inlet pressure (gauge), in Pa.
        p_out_pa: Outlet pressure (gauge), in Pa.
        q_in_m3s: Inlet flow, in m3/s.
        q_out_m3s: Outlet flow (bias-corrected), in m3/s.
        noise: Calibration (friction scale and head offset); None uses the plain model.

    Returns:
        The chainage in m, clipped to the span between the first and last transmitter; nan when the
        two gradients are parallel (no flow difference).
    """
    x0, x1 = float(positions_m[0]), float(positions_m[-1])
    rg = line.density_kg_m3 * G_M_S2
    h_in = p_in_pa / rg + line.elevation_m(x0)
    h_out = p_out_pa / rg + line.elevation_m(x1)
    c = noise.friction_scale if noise is not None else 1.0
    d = noise.head_offset_m if noise is not None else 0.0
    s_in = c * float(line.friction_slope(q_in_m3s))
    s_out = c * float(line.friction_slope(q_out_m3s))
    if not (math.isfinite(s_in) and math.isfinite(s_out)) or abs(s_in - s_out) < _TINY:
        return math.nan
    span = x1 - x0
    x = (h_in - h_out - d - s_out * span) / (s_in - s_out)
    return float(np.clip(x0 + x, x0, x1))


def pressure_residuals(config: LeakConfig, readings: pd.DataFrame, noise: NoiseModel | None = None) -> pd.DataFrame:
    """Measured minus expected pressure at each transmitter (Pa), from the quasi-steady gradient.

    The expected profile starts at the measured inlet head and falls with the (calibrated) friction
    slope of the measured inlet flow; elevation from the line profile. Residuals grow downstream of
    a leak (the flow there is smaller, so the measured pressure is higher than expected); the flow
    residual ``flow_residual_m3s`` is inlet minus bias-corrected outlet flow.

    Args:
        config: Detector configuration.
        readings: Meter readings.
        noise: Calibration; None uses ``config.noise`` or, without one, the plain model.

    Returns:
        Index ``t_s``; one column per pressure column plus ``flow_residual_m3s``.
    """
    noise = noise if noise is not None else config.noise
    t, values = clean_readings(readings, config.meters)
    line, pos = config.line, np.asarray(config.meters.pressure_positions_m)
    c = noise.friction_scale if noise is not None else 1.0
    beta = noise.bias_frac if noise is not None else 0.0
    b0 = noise.bias_m3s if noise is not None else 0.0
    rg = line.density_kg_m3 * G_M_S2
    z = np.array([line.elevation_m(float(x)) for x in pos])
    h_in = values[:, 2] / rg + z[0]
    slope = c * line.friction_slope(values[:, 0])
    expected = (h_in[:, None] - slope[:, None] * (pos - pos[0])[None, :] - z[None, :]) * rg
    out = pd.DataFrame(
        values[:, 2:] - expected, index=pd.Index(t, name="t_s"), columns=list(config.meters.pressure_columns)
    )
    out["flow_residual_m3s"] = values[:, 0] - (values[:, 1] + beta * values[:, 0] + b0)
    return out
