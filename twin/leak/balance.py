"""Compensated volume balance over windows and the noise model learnt on leak-free operation.

See `pumptwin.twin.leak.detection` (steps 1 to 3) for the method. Units are SI.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from pumptwin.twin.leak.location import head_profile_residual
from pumptwin.twin.leak.model import (
    _MAD_TO_SIGMA,
    _MIN_STEADY,
    _TINY,
    FloatArray,
    LeakConfig,
    LeakError,
    NoiseModel,
    _check,
    clean_readings,
    line_pack_weights,
)
from pumptwin.twin.units import G_M_S2


class _Buffer:
    """Cumulative integrals of the valid samples seen so far (kept for the longest look-back)."""

    def __init__(self, keep_s: float, low_flow_m3s: float) -> None:
        self.keep_s = keep_s
        self.low_flow_m3s = low_flow_m3s
        self.t = np.zeros(0)
        # V_in, V_out, integral p_in dt, integral p_out dt, running time, then integral p_k dt per transmitter
        self.cum = np.zeros((0, 0))
        self.lp = np.zeros(0)
        self.gaps = np.zeros(0)  # cumulative count of long gaps up to each sample
        self.last: FloatArray | None = None

    def append(self, t: FloatArray, values: FloatArray, weights: FloatArray, max_gap_s: float) -> None:
        if len(t) == 0:
            return
        if len(self.t) and t[0] <= self.t[-1]:
            raise LeakError(f"readings at t={t[0]} s are not after the last reading already seen (t={self.t[-1]} s)")
        running = (values[:, 0] > self.low_flow_m3s).astype(np.float64)
        inst = np.column_stack([values[:, 0], values[:, 1], values[:, 2], values[:, -1], running, values[:, 2:]])
        width = inst.shape[1]
        lp = values[:, 2:] @ weights
        if len(self.t):
            t_all = np.concatenate([[self.t[-1]], t])
            inst_all = np.vstack([np.asarray(self.last).reshape(1, -1), inst])
            base = self.cum[-1]
            gap0 = self.gaps[-1]
        else:
            t_all, inst_all, base, gap0 = t, inst, np.zeros(width), 0.0
        dt = np.diff(t_all)
        # flows are averages over the preceding sample period (backward rectangles); pressures
        # are instantaneous (trapezoids)
        incr = 0.5 * (inst_all[1:] + inst_all[:-1]) * dt[:, None]
        incr[:, :2] = inst_all[1:, :2] * dt[:, None]
        incr[:, 4] = inst_all[1:, 4] * dt
        cum = base + np.vstack([np.zeros((1, width)), np.cumsum(incr, axis=0)])
        gaps = gap0 + np.concatenate([[0.0], np.cumsum(dt > max_gap_s)])
        if len(self.t):
            cum, gaps = cum[1:], gaps[1:]
        self.t = np.concatenate([self.t, t])
        self.cum = np.vstack([self.cum, cum]) if len(self.cum) else cum
        self.lp = np.concatenate([self.lp, lp])
        self.gaps = np.concatenate([self.gaps, gaps])
        self.last = inst[-1]
        cut = int(np.searchsorted(self.t, self.t[-1] - self.keep_s)) - 1
        if cut > 0:
            self.t, self.cum, self.lp, self.gaps = self.t[cut:], self.cum[cut:], self.lp[cut:], self.gaps[cut:]

    def at(
        self, te: FloatArray, all_pressures: bool = False
    ) -> tuple[FloatArray, FloatArray, FloatArray, NDArray[np.bool_]]:
        """Cumulative integrals, line pack, gap count and whether te is covered, at times te.

        The integrals are the first 5 columns (see ``cum``), or every column with ``all_pressures``.
        """
        n = self.cum.shape[1] if all_pressures else 5
        cum = np.column_stack([np.interp(te, self.t, self.cum[:, j]) for j in range(n)])
        lp = np.interp(te, self.t, self.lp)
        gaps = np.interp(te, self.t, self.gaps)
        covered = (te >= self.t[0]) & (te <= self.t[-1]) if len(self.t) else np.zeros(len(te), dtype=bool)
        return cum, lp, gaps, covered


@dataclass(slots=True)
class _Evaluation:
    """Raw window quantities at a batch of evaluation times (arrays: evaluations x windows)."""

    te: FloatArray
    imbalance: FloatArray
    flow: FloatArray
    running: FloatArray
    tau_now: FloatArray
    tau_then: FloatArray
    valid: NDArray[np.bool_]


def _evaluate(buf: _Buffer, te: FloatArray, cfg: LeakConfig) -> _Evaluation:
    """Window imbalances, mean inflows, unsteadiness and validity at evaluation times te."""
    windows = np.asarray(cfg.windows_s)
    cum_now, lp_now, gap_now, cov_now = buf.at(te)
    lags = np.arange(0.0, cfg.transient_s + 1e-9, cfg.eval_s)

    def tau(t: FloatArray) -> FloatArray:
        out = np.zeros(len(t))
        for lag in lags:
            a = np.interp(t - lag, buf.t, buf.lp)
            b = np.interp(t - lag - cfg.eval_s, buf.t, buf.lp)
            out = np.maximum(out, np.abs(a - b))
        return out

    tau_now = tau(te)
    n, m = len(te), len(windows)
    imb = np.full((n, m), math.nan)
    flow = np.full((n, m), math.nan)
    running = np.full((n, m), math.nan)
    tau_then = np.zeros((n, m))
    valid = np.zeros((n, m), dtype=bool)
    for j, w in enumerate(windows):
        t0 = te - w
        cum0, lp0, gap0, cov0 = buf.at(t0)
        vin = cum_now[:, 0] - cum0[:, 0]
        vout = cum_now[:, 1] - cum0[:, 1]
        imb[:, j] = (vin - vout - (lp_now - lp0)) / w
        flow[:, j] = vin / w
        running[:, j] = (cum_now[:, 4] - cum0[:, 4]) / w
        tau_then[:, j] = tau(t0)
        valid[:, j] = cov_now & cov0 & (gap_now == gap0) & (t0 - cfg.transient_s - cfg.eval_s >= buf.t[0])
    return _Evaluation(te, imb, flow, running, np.repeat(tau_now[:, None], m, axis=1), tau_then, valid)


def fit_noise_model(  # noqa: PLR0915
    config: LeakConfig,
    readings: pd.DataFrame,
    *,
    k_margin: float = 1.5,
    h_margin: float = 2.0,
    k_min: float = 3.0,
    h_min: float = 10.0,
) -> NoiseModel:
    """Learn the noise model from leak-free readings (steady running, starts, stops, speed changes).

    Steady evaluations are those whose window ends both have unsteadiness below three times the
    median unsteadiness. On them: the systematic imbalance ``beta q + b0 r`` (least squares on the
    longest window, running throughout), each window's robust spread ``sigma_W`` and the friction
    calibration ``c``, ``d`` (least squares of ``H_in - H_out`` on ``S(q_in) L`` over the steady
    windows nearest 5 min; ``d = 0`` when the flows hardly vary). On the unsteady ones:
    ``kappa_W`` so that every residual lies within three inflated standard deviations. Then
    ``k_W = max(k_min, k_margin * largest steady |z|)`` and
    ``h_W = max(h_min, h_margin * largest CUSUM on the training data)``. For location: the spreads
    of head and flow changes between steady windows (`_change_spread`) and a friction calibration
    per segment between transmitters, with the heads' spread about it (`_calibrate_segments`).

    Args:
        config: Detector configuration (its ``noise`` is ignored).
        readings: Leak-free readings, index = time in s.
        k_margin: Margin on the largest steady z for the CUSUM allowance.
        h_margin: Margin on the largest training CUSUM for the threshold.
        k_min: Smallest allowance.
        h_min: Smallest threshold.

    Raises:
        LeakError: When the readings hold too few steady evaluations to learn from.
    """
    cfg = replace(config, noise=None)
    windows = np.asarray(cfg.windows_s)
    t, values = clean_readings(readings, cfg.meters)
    _check(len(t) > 1, "training readings are empty")
    buf = _Buffer(math.inf, cfg.low_flow_m3s)
    buf.append(t, values, line_pack_weights(cfg.line, cfg.meters.pressure_positions_m), cfg.max_gap_s)
    te = np.arange(math.ceil(t[0] / cfg.eval_s) * cfg.eval_s, t[-1] + 1e-9, cfg.eval_s)
    ev = _evaluate(buf, te, cfg)
    tau_floor = 3.0 * float(np.median(ev.tau_now[:, 0])) + 1e-9
    steady = ev.valid & (ev.tau_now <= tau_floor) & (ev.tau_then <= tau_floor)
    jl = len(windows) - 1
    ok = steady[:, jl] & (ev.running[:, jl] > 0.999)  # noqa: PLR2004
    _check(
        int(ok.sum()) >= _MIN_STEADY,
        f"training readings give only {int(ok.sum())} steady running evaluations of the longest window",
    )
    a = np.column_stack([ev.flow[ok, jl], np.ones(int(ok.sum()))])
    if np.ptp(ev.flow[ok, jl]) > 0.05 * max(float(np.max(np.abs(ev.flow[ok, jl]))), 1e-12):  # noqa: PLR2004
        beta, b0 = np.linalg.lstsq(a, ev.imbalance[ok, jl], rcond=None)[0]
    else:
        beta, b0 = 0.0, float(np.mean(ev.imbalance[ok, jl]))
    resid = ev.imbalance - beta * ev.flow - b0 * ev.running
    sigma, kappa = [], []
    for j, w in enumerate(windows):
        r = resid[steady[:, j], j]
        _check(len(r) >= _MIN_STEADY, f"training readings give only {len(r)} steady evaluations of window {w:g} s")
        s = max(_MAD_TO_SIGMA * float(np.median(np.abs(r - np.median(r)))), 1e-9)
        sigma.append(s)
        un = ev.valid[:, j] & ~steady[:, j]
        tt = np.sqrt(ev.tau_now[un, j] ** 2 + ev.tau_then[un, j] ** 2) / w
        need = (np.abs(resid[un, j]) / 3.0) ** 2 - s * s - 2.0 * (cfg.flow_stability_frac * ev.flow[un, j]) ** 2
        ratio = np.sqrt(np.maximum(need, 0.0)) / np.maximum(tt, 1e-12)
        kappa.append(float(np.max(ratio)) if len(ratio) else 0.0)
    sig = np.sqrt(
        np.asarray(sigma) ** 2
        + np.asarray(kappa) ** 2 * (ev.tau_now**2 + ev.tau_then**2) / windows**2
        + 2.0 * (cfg.flow_stability_frac * ev.flow) ** 2
    )
    z = resid / sig
    k = [max(k_min, k_margin * float(np.max(np.abs(z[steady[:, j], j])))) for j in range(len(windows))]
    s_run = np.zeros(len(windows))
    s_max = np.zeros(len(windows))
    for i in range(len(te)):
        s_new = np.maximum(0.0, s_run + z[i] - np.asarray(k))
        s_run = np.where(ev.valid[i], s_new, s_run)
        s_max = np.maximum(s_max, s_run)
    h = [max(h_min, h_margin * float(v)) for v in s_max]
    jc = int(np.argmin(np.abs(windows - 300.0)))
    friction_scale, head_offset = _calibrate_friction(cfg, buf, te[steady[:, jc]], windows[jc])
    quiet = ev.valid[:, 0] & (ev.tau_now[:, 0] <= tau_floor) & (ev.running[:, 0] > 0.999)  # noqa: PLR2004
    head_sd, flow_sd = _change_spread(cfg, buf, te, quiet)
    seg_c, seg_d, model_sd = _calibrate_segments(cfg, buf, te[steady[:, jc]], windows[jc])
    return NoiseModel(
        bias_frac=float(beta),
        bias_m3s=float(b0),
        sigma_m3s=tuple(sigma),
        kappa=tuple(kappa),
        cusum_k=tuple(k),
        cusum_h=tuple(h),
        friction_scale=friction_scale,
        head_offset_m=head_offset,
        steady_unsteadiness_m3=tau_floor,
        head_change_sd_m=head_sd,
        flow_change_sd_frac=flow_sd,
        segment_friction_scale=seg_c,
        segment_head_offset_m=seg_d,
        head_model_sd_m=model_sd,
    )


def _calibrate_segments(
    cfg: LeakConfig, buf: _Buffer, te: FloatArray, window_s: float
) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """Per-segment friction scale c_k and offset d_k (m), and the head spread about that profile (m).

    Least squares of ``H_k - H_k+1`` on ``S(q_in) dx_k`` over steady running windows (``d_k = 0``
    when the flows hardly vary); then, per transmitter, the robust spread of its head about the
    profile built from the inlet head down the calibrated segments. Transmitter biases, local
    roughness and the line model's errors in the shape of ``S(q)`` over the trained flows go into
    ``c_k``, ``d_k``.

    Returns:
        ``(segment_friction_scale, segment_head_offset_m, head_model_sd_m)``; empty tuples with
        fewer than 20 steady running windows.
    """
    line, pos = cfg.line, np.asarray(cfg.meters.pressure_positions_m)
    if len(te) == 0:
        return (), (), ()
    cum1 = buf.at(te, all_pressures=True)[0]
    cum0 = buf.at(te - window_s, all_pressures=True)[0]
    mean = (cum1 - cum0) / window_s
    q = mean[:, 0]
    running = q > 0.2 * float(np.max(q))  # noqa: PLR2004
    if int(running.sum()) < _MIN_STEADY:
        return (), (), ()
    rg = line.density_kg_m3 * G_M_S2
    z = np.array([line.elevation_m(float(x)) for x in pos])
    head = mean[running, 5:] / rg + z[None, :]
    s = line.friction_slope(q[running])
    scales, offsets = [], []
    for k in range(len(pos) - 1):
        drop = head[:, k] - head[:, k + 1]
        sl = s * (pos[k + 1] - pos[k])
        if np.ptp(sl) > 0.05 * float(np.max(np.abs(sl))):  # noqa: PLR2004
            c, d = np.linalg.lstsq(np.column_stack([sl, np.ones(len(sl))]), drop, rcond=None)[0]
        else:
            c, d = float(np.sum(drop * sl) / np.sum(sl * sl)), 0.0
        scales.append(float(c))
        offsets.append(float(d))
    resid = head_profile_residual(pos, head, s, np.asarray(scales), np.asarray(offsets))
    spread = [max(_MAD_TO_SIGMA * float(np.median(np.abs(r - np.median(r)))), 1e-6) for r in resid.T[1:]]
    # the inlet transmitter anchors the profile (its residual is zero): give it its neighbours' weight
    return tuple(scales), tuple(offsets), (min(spread), *spread)


def _change_spread(
    cfg: LeakConfig, buf: _Buffer, te: FloatArray, quiet: NDArray[np.bool_]
) -> tuple[tuple[float, ...], float]:
    """Spread of the change of window means over steady leak-free running (see `NoiseModel`).

    Pairs of ``baseline_s`` windows, the second starting ``baseline_s`` after the first ends, with
    every evaluation time they span steady and running (``quiet``) and no data gap. The true flows
    and pressures do not change over such a pair, so what changes is meter error: per transmitter
    the robust spread of its head change (m); for the flow meters, the robust spread of the change
    of ``(q_in - q_out) / q`` over sqrt 2 (each meter's share, as a fraction of flow).

    Returns:
        ``(head_change_sd_m, flow_change_sd_frac)``; ``((), nan)`` with fewer than 20 pairs.
    """
    w = cfg.baseline_s
    span = 3.0 * w
    steps = int(round(span / cfg.eval_s))
    bad = np.concatenate([[0], np.cumsum(~quiet)])
    idx = np.arange(steps, len(te))
    ok = idx[(bad[idx + 1] - bad[idx - steps]) == 0] if len(idx) else idx
    if len(ok) < _MIN_STEADY:
        return (), math.nan
    t1 = te[ok]
    marks = [buf.at(t1 - span + k * w, all_pressures=True) for k in (0, 1, 2, 3)]
    if any(np.any(m[2] != marks[0][2]) for m in marks):
        same = np.all([m[2] == marks[0][2] for m in marks], axis=0)
        marks = [(m[0][same], m[1][same], m[2][same], m[3][same]) for m in marks]
        if int(np.sum(same)) < _MIN_STEADY:
            return (), math.nan
    before = (marks[1][0] - marks[0][0]) / w
    after = (marks[3][0] - marks[2][0]) / w
    rg = cfg.line.density_kg_m3 * G_M_S2
    dh = (after[:, 5:] - before[:, 5:]) / rg
    q = 0.5 * (after[:, 0] + before[:, 0])
    dq = ((after[:, 0] - after[:, 1]) - (before[:, 0] - before[:, 1])) / np.maximum(np.abs(q), _TINY)

    def robust(v: FloatArray) -> float:
        return max(_MAD_TO_SIGMA * float(np.median(np.abs(v - np.median(v)))), 1e-9)

    return tuple(robust(dh[:, k]) for k in range(dh.shape[1])), robust(dq) / math.sqrt(2.0)


def _calibrate_friction(cfg: LeakConfig, buf: _Buffer, te: FloatArray, window_s: float) -> tuple[float, float]:
    """Friction scale c and head offset d (m) from steady windows: H_in - H_out = c S(q) L + d."""
    line, pos = cfg.line, cfg.meters.pressure_positions_m
    cum1, _, _, _ = buf.at(te)
    cum0, _, _, _ = buf.at(te - window_s)
    mean = (cum1 - cum0) / window_s
    q = mean[:, 0]
    running = q > 0.2 * float(np.max(q)) if len(q) else np.zeros(0, dtype=bool)
    if int(running.sum()) < _MIN_STEADY:
        return 1.0, 0.0
    rg = line.density_kg_m3 * G_M_S2
    dh = (mean[running, 2] - mean[running, 3]) / rg + line.elevation_m(pos[0]) - line.elevation_m(pos[-1])
    sl = line.friction_slope(q[running]) * (pos[-1] - pos[0])
    if np.ptp(sl) > 0.05 * float(np.max(np.abs(sl))):
        c, d = np.linalg.lstsq(np.column_stack([sl, np.ones(len(sl))]), dh, rcond=None)[0]
        return float(c), float(d)
    return float(np.sum(dh * sl) / np.sum(sl * sl)), 0.0
