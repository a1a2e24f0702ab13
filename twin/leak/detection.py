"""Computational pipeline monitoring: compensated volume balance, CUSUM alarms, leak location and rate.

The detector sees only what the field sees: inlet and outlet flow meters and pressure
transmitters at known chainages, plus the twin's line model (length, diameter, roughness,
elevation profile, liquid and wave speed). It never reads a simulator's truth.

1. **Compensated volume balance.** For a window ``[t - W, t]``::

       I_W = (V_in - V_out - dLP) / W

   where ``V_in``, ``V_out`` are the metered volumes (trapezoid integrals of the flows) and
   ``LP = A / (rho a^2) * integral of p dx`` is the line pack (m3), taken from the measured
   pressures interpolated linearly between transmitters (held flat beyond the end ones). Windows
   of 1, 5, 15 and 60 min are evaluated every minute.
2. **Noise model learned on leak-free data** (`fit_noise_model`): the meters' systematic
   imbalance ``beta q + b0 r`` (relative and fixed bias; ``r`` is the share of the window with
   flow above the low-flow cut-off) by least squares on steady running periods; the
   spread ``sigma_W`` of each window's residual ``e_W = I_W - beta q - b0`` (robust scale on
   steady periods); the transient factor ``kappa_W``; the CUSUM thresholds. Nothing comes from
   knowledge of a leak.
3. **Transient tolerance.** The line-pack estimate is wrong while the pressure profile is
   changing (it is not linear between transmitters then). The unsteadiness at time t is
   ``tau(t)`` = the largest one-minute line-pack change over the preceding 5 min (m3); the
   residual's standard deviation is inflated to
   ``sqrt(sigma_W^2 + kappa_W^2 (tau(t)^2 + tau(t - W)^2) / W^2 + 2 (u q)^2)``, where the last
   term is the flow meters' stated long-term stability ``u`` (slow drift, which no window
   averages out and a short training run cannot see). Inflation depends on the
   window's two ends only, so once both ends are steady again a window that spans a start or a
   stop is trusted again: the long windows "catch up" on whatever happened during the transient.
4. **Sequential test.** A one-sided CUSUM per window on ``z = e_W / sigma_eff``:
   ``S = max(0, S + z - k_W)``; an alarm when ``S > h_W``. ``k_W`` and ``h_W`` come from the
   leak-free training run (its largest steady ``z`` and its largest ``S``, with margins). The time
   ``S`` last left zero is the estimated leak onset.
5. **Leak rate** = the residual imbalance averaged from onset (plus a settling time) to now.
6. **Leak location** by the hydraulic-gradient intersection: the upstream gradient starts at the
   inlet head and falls with the friction slope of the inlet flow, the downstream one ends at the
   outlet head with the slope of the (bias-corrected) outlet flow; they meet at the leak::

       x = (H_in - H_out - d - S_out L) / (S_in - S_out)

   with ``S(q) = c f q|q| / (2 g D A^2)`` (Darcy, Swamee-Jain) and ``c``, ``d`` calibrated on
   leak-free steady data.

Bad data: a missing meter column, an unsorted or duplicated time index, or a streamed chunk that
does not start after the last reading already seen raise `LeakError`; rows
with a NaN in a meter column are dropped (integrals bridge short gaps linearly); a window that
contains a gap longer than ``max_gap_s`` is not evaluated (its CUSUM is held) and the status says
so. Units are SI: m, s, m3/s, Pa (gauge), kg/m3.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from pumptwin.twin.hydraulic.network import G_M_S2

FloatArray = NDArray[np.float64]

DEFAULT_WINDOWS_S: tuple[float, ...] = (60.0, 300.0, 900.0, 3600.0)
"""Balance windows, in s (1, 5, 15 and 60 min)."""
_MAD_TO_SIGMA = 1.4826
_MIN_STEADY = 20
_TINY = 1e-12


class LeakError(ValueError):
    """Invalid leak-detection configuration or input; the message names the bad value."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise LeakError(message)


@dataclass(frozen=True, slots=True)
class LineModel:
    """What the twin knows of the line.

    Attributes:
        length_m: Line length between the inlet and outlet meters, in m.
        diameter_m: Inside diameter, in m.
        roughness_m: Absolute roughness, in m.
        wave_speed_m_s: Pressure wave speed, in m/s.
        density_kg_m3: Liquid density, in kg/m3.
        kinematic_viscosity_m2_s: Kinematic viscosity, in m2/s.
        profile: Elevation profile, (chainage m, elevation m) points spanning 0..length.
    """

    length_m: float
    diameter_m: float
    roughness_m: float = 4.5e-5
    wave_speed_m_s: float = 1_000.0
    density_kg_m3: float = 850.0
    kinematic_viscosity_m2_s: float = 1.0e-5
    profile: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        """Check positive sizes and properties."""
        for name in ("length_m", "diameter_m", "wave_speed_m_s", "density_kg_m3", "kinematic_viscosity_m2_s"):
            value = getattr(self, name)
            _check(math.isfinite(value) and value > 0, f"line {name} must be a finite number > 0, got {value}")
        _check(
            math.isfinite(self.roughness_m) and self.roughness_m >= 0,
            f"line roughness_m must be >= 0, got {self.roughness_m}",
        )
        if self.profile:
            xs = [p[0] for p in self.profile]
            _check(
                all(b > a for a, b in zip(xs, xs[1:], strict=False)), f"line profile chainages must increase, got {xs}"
            )

    @property
    def area_m2(self) -> float:
        """Flow area, in m2."""
        return math.pi * self.diameter_m**2 / 4.0

    def elevation_m(self, x_m: float) -> float:
        """Elevation at chainage ``x_m`` (m), in m; 0 without a profile."""
        if not self.profile:
            return 0.0
        return float(np.interp(x_m, [p[0] for p in self.profile], [p[1] for p in self.profile]))

    def friction_slope(self, flow_m3s: FloatArray | float) -> FloatArray:
        """Friction head loss per metre of line (m/m) at flow(s) in m3/s; signed like the flow.

        Darcy-Weisbach with 64/Re below Re 2000 and Swamee-Jain above (blended up to Re 4000).
        """
        q = np.asarray(flow_m3s, dtype=np.float64)
        area = self.area_m2
        re = np.maximum(np.abs(q) / area * self.diameter_m / self.kinematic_viscosity_m2_s, 1e-9)
        e = self.roughness_m / self.diameter_m
        sj = 0.25 / np.log10(e / 3.7 + 5.74 / np.maximum(re, 4000.0) ** 0.9) ** 2
        sj4 = 0.25 / math.log10(e / 3.7 + 5.74 / 4000.0**0.9) ** 2
        blend = np.clip((re - 2000.0) / 2000.0, 0.0, 1.0)
        f = np.where(re < 2000.0, 64.0 / re, np.where(re > 4000.0, sj, (1 - blend) * 0.032 + blend * sj4))  # noqa: PLR2004
        return np.asarray(f * q * np.abs(q) / (2.0 * G_M_S2 * self.diameter_m * area * area), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class MeterLayout:
    """Which columns of a readings frame hold which meter.

    Attributes:
        pressure_positions_m: Chainages of the pressure transmitters, in m, increasing; the first
            is the inlet and the last the outlet transmitter.
        pressure_columns: Column names of those transmitters (Pa gauge), same order.
        flow_in_column: Inlet flow-meter column (m3/s).
        flow_out_column: Outlet flow-meter column (m3/s).
    """

    pressure_positions_m: tuple[float, ...]
    pressure_columns: tuple[str, ...]
    flow_in_column: str = "flow_in_m3s"
    flow_out_column: str = "flow_out_m3s"

    def __post_init__(self) -> None:
        """Check matching lengths and increasing positions."""
        _check(len(self.pressure_positions_m) >= 2, "meters need at least 2 pressure transmitters (inlet and outlet)")  # noqa: PLR2004
        _check(
            len(self.pressure_positions_m) == len(self.pressure_columns),
            f"{len(self.pressure_positions_m)} pressure positions but {len(self.pressure_columns)} columns",
        )
        _check(
            all(b > a for a, b in zip(self.pressure_positions_m, self.pressure_positions_m[1:], strict=False)),
            f"pressure_positions_m must increase, got {list(self.pressure_positions_m)}",
        )

    @classmethod
    def numbered(cls, positions_m: Sequence[float]) -> MeterLayout:
        """Layout with columns ``pressure_<k>_pa`` (k = 0.. in chainage order), as the line simulator writes."""
        return cls(tuple(float(x) for x in positions_m), tuple(f"pressure_{k}_pa" for k in range(len(positions_m))))

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the detector needs."""
        return (self.flow_in_column, self.flow_out_column, *self.pressure_columns)


@dataclass(frozen=True, slots=True)
class NoiseModel:
    """What leak-free operation taught the detector (see the module docstring).

    Attributes:
        bias_frac: Systematic imbalance per unit inlet flow, beta (-).
        bias_m3s: Fixed systematic imbalance, b0, in m3/s.
        sigma_m3s: Steady residual standard deviation per window, in m3/s.
        kappa: Transient factor per window (-).
        cusum_k: CUSUM allowance per window (in standard deviations).
        cusum_h: CUSUM threshold per window.
        friction_scale: Calibration factor c of the friction slope (-).
        head_offset_m: Calibration offset d of the inlet-outlet head difference, in m.
        steady_unsteadiness_m3: Unsteadiness tau below which operation counts as steady, in m3.
    """

    bias_frac: float
    bias_m3s: float
    sigma_m3s: tuple[float, ...]
    kappa: tuple[float, ...]
    cusum_k: tuple[float, ...]
    cusum_h: tuple[float, ...]
    friction_scale: float = 1.0
    head_offset_m: float = 0.0
    steady_unsteadiness_m3: float = math.inf


@dataclass(frozen=True, slots=True)
class LeakConfig:
    """Detector configuration.

    Attributes:
        line: The twin's line model.
        meters: The meter layout.
        noise: The learned noise model; None means "not trained" (residuals only, no alarms).
        windows_s: Balance windows, in s.
        eval_s: Evaluation period, in s.
        transient_s: Look-back of the unsteadiness measure tau, in s.
        settle_s: Time after the estimated onset before rate and location are averaged, in s.
        max_gap_s: Longest gap between valid samples a window may contain, in s.
        low_flow_m3s: Inlet flow below which the line counts as shut in (the meters' low-flow
            cut-off: the fixed imbalance b0 applies only while running), in m3/s.
        baseline_s: Length of the pre-leak baseline for the rate and location estimates, in s.
        flow_stability_frac: Stated long-term stability (1 sigma) of each flow meter, as a fraction
            of reading. Slow meter drift does not average out in any window, so the residual's
            standard deviation is floored by ``sqrt(2) * flow_stability_frac * q``; a short
            training run cannot learn it.
    """

    line: LineModel
    meters: MeterLayout
    noise: NoiseModel | None = None
    windows_s: tuple[float, ...] = DEFAULT_WINDOWS_S
    eval_s: float = 60.0
    transient_s: float = 300.0
    settle_s: float = 180.0
    max_gap_s: float = 30.0
    low_flow_m3s: float = 0.005
    baseline_s: float = 900.0
    flow_stability_frac: float = 0.0005

    def __post_init__(self) -> None:
        """Check windows, periods and that the noise model matches the windows."""
        _check(len(self.windows_s) >= 1, "at least one window is needed")
        _check(self.flow_stability_frac >= 0, f"flow_stability_frac must be >= 0, got {self.flow_stability_frac}")
        for name in ("eval_s", "transient_s", "max_gap_s", "low_flow_m3s", "baseline_s"):
            value = getattr(self, name)
            _check(math.isfinite(value) and value > 0, f"{name} must be > 0, got {value}")
        _check(self.settle_s >= 0, f"settle_s must be >= 0, got {self.settle_s}")
        for w in self.windows_s:
            _check(math.isfinite(w) and w >= self.eval_s, f"window {w} s must be >= eval_s {self.eval_s} s")
        if self.noise is not None:
            n = len(self.windows_s)
            for name in ("sigma_m3s", "kappa", "cusum_k", "cusum_h"):
                _check(len(getattr(self.noise, name)) == n, f"noise model {name} needs {n} values, one per window")
        positions = self.meters.pressure_positions_m
        _check(
            positions[0] >= 0 and positions[-1] <= self.line.length_m,
            f"pressure positions {list(positions)} must lie within 0..{self.line.length_m} m",
        )


@dataclass(frozen=True, slots=True)
class LeakStatus:
    """The detector's view at one evaluation time.

    Attributes:
        t_s: Evaluation time, in s.
        alarm: Whether a leak alarm is raised (latched until `LeakMonitor.reset`).
        alarm_time_s: When the alarm was first raised, in s (nan without an alarm).
        alarm_window_s: The window whose CUSUM raised it, in s (nan without an alarm).
        imbalance_m3s: Compensated imbalance residual e_W per window, in m3/s (nan if not evaluated).
        zscore: Residual over its (inflated) standard deviation, per window.
        cusum: CUSUM statistic per window.
        unsteadiness_m3: tau at t, in m3.
        onset_s: Estimated leak onset, in s (nan without an alarm).
        leak_rate_m3s: Estimated leak rate, in m3/s (nan until available).
        leak_position_m: Estimated leak chainage, in m (nan until available).
        data_ok: False when some window was skipped for a data gap.
    """

    t_s: float
    alarm: bool
    alarm_time_s: float
    alarm_window_s: float
    imbalance_m3s: tuple[float, ...]
    zscore: tuple[float, ...]
    cusum: tuple[float, ...]
    unsteadiness_m3: float
    onset_s: float = math.nan
    leak_rate_m3s: float = math.nan
    leak_position_m: float = math.nan
    data_ok: bool = True


def line_pack_weights(line: LineModel, positions_m: Sequence[float]) -> FloatArray:
    """Weights w (m3/Pa) with line pack = sum_k w_k p_k, for pressures interpolated between transmitters.

    The pressure is linear between transmitters and flat beyond the first and the last; the line
    pack is ``A / (rho a^2)`` times its integral over 0..L.
    """
    x = np.asarray(positions_m, dtype=np.float64)
    w = np.zeros(len(x))
    seg = np.diff(x)
    w[:-1] += 0.5 * seg
    w[1:] += 0.5 * seg
    w[0] += x[0]
    w[-1] += line.length_m - x[-1]
    return np.asarray(w * line.area_m2 / (line.density_kg_m3 * line.wave_speed_m_s**2), dtype=np.float64)


def clean_readings(frame: pd.DataFrame, meters: MeterLayout) -> tuple[FloatArray, FloatArray]:
    """Times (s) and meter values (columns in `MeterLayout.columns` order) from a readings frame.

    The index is time: seconds (numbers) or timestamps (converted to seconds since the epoch). Rows
    with a NaN in any meter column are dropped.

    Raises:
        LeakError: For a missing column, an unsorted or duplicated index, or non-finite times.
    """
    missing = [c for c in meters.columns if c not in frame.columns]
    _check(not missing, f"readings lack meter column(s) {missing}")
    idx = frame.index
    if isinstance(idx, pd.DatetimeIndex):
        t = (idx.asi8 - pd.Timestamp("1970-01-01", tz=idx.tz).value) / 1e9 if idx.tz else idx.asi8 / 1e9
        t = np.asarray(t, dtype=np.float64)
    else:
        try:
            t = np.asarray(idx, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise LeakError(f"readings index must be seconds or timestamps, got {idx.dtype}") from exc
    _check(bool(np.all(np.isfinite(t))), "readings index has a non-finite time")
    if len(t) > 1 and np.any(np.diff(t) <= 0):
        bad = int(np.argmax(np.diff(t) <= 0))
        raise LeakError(f"readings index must increase strictly; at row {bad + 1} time {t[bad + 1]} follows {t[bad]}")
    values = frame.loc[:, list(meters.columns)].to_numpy(dtype=np.float64)
    ok = np.all(np.isfinite(values), axis=1)
    return t[ok], values[ok]


class _Buffer:
    """Cumulative integrals of the valid samples seen so far (kept for the longest look-back)."""

    def __init__(self, keep_s: float, low_flow_m3s: float) -> None:
        self.keep_s = keep_s
        self.low_flow_m3s = low_flow_m3s
        self.t = np.zeros(0)
        self.cum = np.zeros((0, 5))  # V_in, V_out, integral p_in dt, integral p_out dt, running time
        self.lp = np.zeros(0)
        self.gaps = np.zeros(0)  # cumulative count of long gaps up to each sample
        self.last: FloatArray | None = None

    def append(self, t: FloatArray, values: FloatArray, weights: FloatArray, max_gap_s: float) -> None:
        if len(t) == 0:
            return
        if len(self.t) and t[0] <= self.t[-1]:
            raise LeakError(f"readings at t={t[0]} s are not after the last reading already seen (t={self.t[-1]} s)")
        running = (values[:, 0] > self.low_flow_m3s).astype(np.float64)
        inst = np.column_stack([values[:, 0], values[:, 1], values[:, 2], values[:, -1], running])
        lp = values[:, 2:] @ weights
        if len(self.t):
            t_all = np.concatenate([[self.t[-1]], t])
            inst_all = np.vstack([np.asarray(self.last).reshape(1, -1), inst])
            base = self.cum[-1]
            gap0 = self.gaps[-1]
        else:
            t_all, inst_all, base, gap0 = t, inst, np.zeros(5), 0.0
        dt = np.diff(t_all)
        # flows are averages over the preceding sample period (backward rectangles); pressures
        # are instantaneous (trapezoids)
        incr = 0.5 * (inst_all[1:] + inst_all[:-1]) * dt[:, None]
        incr[:, :2] = inst_all[1:, :2] * dt[:, None]
        incr[:, 4] = inst_all[1:, 4] * dt
        cum = base + np.vstack([np.zeros((1, 5)), np.cumsum(incr, axis=0)])
        gaps = gap0 + np.concatenate([[0.0], np.cumsum(dt > max_gap_s)])
        if len(self.t):
            cum, gaps = cum[1:], gaps[1:]
        self.t = np.concatenate([self.t, t])
        self.cum = np.vstack([self.cum, cum])
        self.lp = np.concatenate([self.lp, lp])
        self.gaps = np.concatenate([self.gaps, gaps])
        self.last = inst[-1]
        cut = int(np.searchsorted(self.t, self.t[-1] - self.keep_s)) - 1
        if cut > 0:
            self.t, self.cum, self.lp, self.gaps = self.t[cut:], self.cum[cut:], self.lp[cut:], self.gaps[cut:]

    def at(self, te: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, NDArray[np.bool_]]:
        """Cumulative integrals, line pack, gap count and whether te is covered, at times te."""
        cum = np.column_stack([np.interp(te, self.t, self.cum[:, j]) for j in range(5)])
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


class LeakMonitor:
    """Streaming leak monitor: feed readings in time order, get a `LeakStatus` back.

    Usage example::

        monitor = LeakMonitor(config)
        for chunk in chunks:  # DataFrames of meter readings, index = time in s
            status = monitor.update(chunk)
            if status.alarm:
                print(status.alarm_time_s, status.leak_position_m, status.leak_rate_m3s)
    """

    def __init__(self, config: LeakConfig) -> None:
        """Store the configuration and start with empty history."""
        self.config = config
        self._weights = line_pack_weights(config.line, config.meters.pressure_positions_m)
        keep = max(config.windows_s) + 2 * config.transient_s + 2 * config.eval_s + 4 * 3600.0
        self._buf = _Buffer(keep, config.low_flow_m3s)
        self.history: list[LeakStatus] = []
        self._next_eval = math.nan
        self.reset()

    def reset(self) -> None:
        """Clear the CUSUMs and the alarm (history and buffered data are kept)."""
        n = len(self.config.windows_s)
        self._s = np.zeros(n)
        self._last_zero = np.full(n, math.nan)
        self._alarm_time = math.nan
        self._alarm_window = math.nan
        self._onset = math.nan
        self._baseline: _Means | None = None
        self._baseline_tried = False

    def update(self, readings: pd.DataFrame) -> LeakStatus:
        """Add readings (in time order) and evaluate every due evaluation time.

        Args:
            readings: Meter readings, index = time (s or timestamps), columns per `MeterLayout`.

        Returns:
            The status at the latest evaluation time (or an empty status before the first).

        Raises:
            LeakError: For missing columns, an unsorted index (see `clean_readings`) or readings
                that are not after the last one already seen.
        """
        cfg = self.config
        t, values = clean_readings(readings, cfg.meters)
        self._buf.append(t, values, self._weights, cfg.max_gap_s)
        if len(self._buf.t) == 0:
            return self._empty()
        if math.isnan(self._next_eval):
            self._next_eval = math.ceil((self._buf.t[0] + cfg.eval_s) / cfg.eval_s) * cfg.eval_s
        last = self._buf.t[-1]
        if self._next_eval > last:
            return self.history[-1] if self.history else self._empty()
        te = np.arange(self._next_eval, last + 1e-9, cfg.eval_s)
        self._next_eval = float(te[-1] + cfg.eval_s)
        ev = _evaluate(self._buf, te, cfg)
        for status in self._sequential(ev):
            self.history.append(status)
        return self.history[-1]

    def _empty(self) -> LeakStatus:
        n = len(self.config.windows_s)
        nan = (math.nan,) * n
        return LeakStatus(math.nan, False, math.nan, math.nan, nan, nan, (0.0,) * n, math.nan)

    def _sequential(self, ev: _Evaluation) -> list[LeakStatus]:
        cfg = self.config
        noise = cfg.noise
        windows = np.asarray(cfg.windows_s)
        out = []
        for i, te in enumerate(ev.te):
            valid = ev.valid[i]
            if noise is None:
                e = ev.imbalance[i]
                z = np.full(len(windows), math.nan)
            else:
                e = ev.imbalance[i] - noise.bias_frac * ev.flow[i] - noise.bias_m3s * ev.running[i]
                sig = np.sqrt(
                    np.asarray(noise.sigma_m3s) ** 2
                    + np.asarray(noise.kappa) ** 2 * (ev.tau_now[i] ** 2 + ev.tau_then[i] ** 2) / windows**2
                    + 2.0 * (cfg.flow_stability_frac * ev.flow[i]) ** 2
                )
                z = e / sig
                s_new = np.maximum(0.0, self._s + z - np.asarray(noise.cusum_k))
                self._s = np.where(valid, s_new, self._s)
                zero = valid & (self._s <= 0)
                self._last_zero = np.where(zero, te, self._last_zero)
                over = valid & (self._s > np.asarray(noise.cusum_h))
                if math.isnan(self._alarm_time) and np.any(over):
                    w = int(np.argmax(over))
                    self._alarm_time = float(te)
                    self._alarm_window = float(windows[w])
                    lz = self._last_zero[w]
                    self._onset = float(lz if np.isfinite(lz) else te - windows[w])
            e = np.where(valid, e, math.nan)
            rate, pos = (math.nan, math.nan)
            if not math.isnan(self._alarm_time) and noise is not None:
                rate, pos = self._estimate(float(te), noise)
            out.append(
                LeakStatus(
                    t_s=float(te),
                    alarm=not math.isnan(self._alarm_time),
                    alarm_time_s=self._alarm_time,
                    alarm_window_s=self._alarm_window,
                    imbalance_m3s=tuple(float(v) for v in e),
                    zscore=tuple(float(v) for v in np.where(valid, z, math.nan)),
                    cusum=tuple(float(v) for v in self._s),
                    unsteadiness_m3=float(ev.tau_now[i, 0]),
                    onset_s=self._onset,
                    leak_rate_m3s=rate,
                    leak_position_m=pos,
                    data_ok=bool(np.all(valid)),
                )
            )
        return out

    def _means(self, t0: float, t1: float, noise: NoiseModel) -> _Means | None:
        """Window means over [t0, t1] from the buffer, or None when not covered or gapped."""
        if t1 - t0 < self.config.eval_s or t0 < self._buf.t[0] or t1 > self._buf.t[-1]:
            return None
        cum, lp, gaps, _ = self._buf.at(np.array([t0, t1]))
        if gaps[1] != gaps[0]:
            return None
        span = t1 - t0
        d = (cum[1] - cum[0]) / span
        q_in, q_out, run = float(d[0]), float(d[1]), float(d[4])
        residual = q_in - q_out - float(lp[1] - lp[0]) / span - noise.bias_frac * q_in - noise.bias_m3s * run
        q_out_corr = q_out + noise.bias_frac * q_in + noise.bias_m3s * run
        return _Means(q_in, q_out_corr, float(d[2]), float(d[3]), residual)

    def _estimate(self, te: float, noise: NoiseModel) -> tuple[float, float]:
        """Leak rate (m3/s) and position (m) from onset + settle to ``te``; nan while too short.

        With a steady pre-leak baseline (``baseline_s`` ending one alarm window before the onset),
        the rate is the change of the residual imbalance and the location uses the changes of
        heads and flows, which cancels slow meter drift and calibration offsets; otherwise the
        absolute residual and gradients are used.
        """
        cfg = self.config
        post = self._means(max(self._onset + cfg.settle_s, self._buf.t[0]), te, noise)
        if post is None:
            return math.nan, math.nan
        if self._baseline is None and not self._baseline_tried:
            self._baseline_tried = True
            t1 = self._onset - self._alarm_window
            t0 = t1 - cfg.baseline_s
            base = self._means(t0, t1, noise)
            if base is not None and base.q_in_m3s > cfg.low_flow_m3s:
                tau = np.abs(np.diff(np.interp(np.arange(t0, t1 + 1e-9, cfg.eval_s), self._buf.t, self._buf.lp)))
                steady = float(np.max(tau)) if len(tau) else 0.0
                flows_steady = abs(base.q_in_m3s - post.q_in_m3s) < 0.2 * base.q_in_m3s  # noqa: PLR2004
                if steady <= 2.0 * noise.steady_unsteadiness_m3 and flows_steady:
                    self._baseline = base
        line, pos = cfg.line, cfg.meters.pressure_positions_m
        if self._baseline is None:
            x = locate_leak(line, pos, post.p_in_pa, post.p_out_pa, post.q_in_m3s, post.q_out_m3s, noise)
            return post.residual_m3s, x
        base = self._baseline
        x = locate_leak_change(line, pos, base, post, noise)
        return post.residual_m3s - base.residual_m3s, x


@dataclass(frozen=True, slots=True)
class _Means:
    """Mean inlet flow, corrected outlet flow (m3/s), inlet and outlet pressure (Pa), residual (m3/s)."""

    q_in_m3s: float
    q_out_m3s: float
    p_in_pa: float
    p_out_pa: float
    residual_m3s: float


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


def monitor_frame(config: LeakConfig, readings: pd.DataFrame, chunk_s: float = 3600.0) -> pd.DataFrame:
    """Run a `LeakMonitor` over a whole frame (in chunks) and return one row per evaluation.

    Args:
        config: Detector configuration (with a noise model for alarms).
        readings: Meter readings, index = time in s (or timestamps).
        chunk_s: Length of the chunks fed to the monitor, in s (results do not depend on it).

    Returns:
        Index ``t_s``; columns ``alarm``, ``alarm_time_s``, ``onset_s``, ``leak_rate_m3s``,
        ``leak_position_m``, ``unsteadiness_m3``, ``data_ok`` and, per window W (s),
        ``imbalance_<W>_m3s``, ``z_<W>``, ``cusum_<W>``.
    """
    t, _ = clean_readings(readings, config.meters)
    monitor = LeakMonitor(config)
    if len(t):
        edges = np.arange(t[0], t[-1] + chunk_s, chunk_s)
        tt = _index_seconds(readings)
        for a in edges:
            part = readings[(tt >= a) & (tt < a + chunk_s)]
            if len(part):
                monitor.update(part)
    return status_frame(monitor.history, config.windows_s)


def _index_seconds(frame: pd.DataFrame) -> FloatArray:
    idx = frame.index
    if isinstance(idx, pd.DatetimeIndex):
        t = (idx.asi8 - pd.Timestamp("1970-01-01", tz=idx.tz).value) / 1e9 if idx.tz else idx.asi8 / 1e9
        return np.asarray(t, dtype=np.float64)
    return np.asarray(idx, dtype=np.float64)


def status_frame(history: Sequence[LeakStatus], windows_s: Sequence[float]) -> pd.DataFrame:
    """One row per `LeakStatus` (see `monitor_frame` for the columns)."""
    rows = []
    for s in history:
        row: dict[str, float | bool] = {
            "t_s": s.t_s,
            "alarm": s.alarm,
            "alarm_time_s": s.alarm_time_s,
            "alarm_window_s": s.alarm_window_s,
            "onset_s": s.onset_s,
            "leak_rate_m3s": s.leak_rate_m3s,
            "leak_position_m": s.leak_position_m,
            "unsteadiness_m3": s.unsteadiness_m3,
            "data_ok": s.data_ok,
        }
        for w, e, z, c in zip(windows_s, s.imbalance_m3s, s.zscore, s.cusum, strict=True):
            row[f"imbalance_{w:g}_m3s"] = e
            row[f"z_{w:g}"] = z
            row[f"cusum_{w:g}"] = c
        rows.append(row)
    return pd.DataFrame(rows).set_index("t_s") if rows else pd.DataFrame(index=pd.Index([], name="t_s"))


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
    ``h_W = max(h_min, h_margin * largest CUSUM on the training data)``.

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
    )


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


@dataclass(frozen=True, slots=True)
class AlarmSummary:
    """First alarm of a monitored run, with the estimates a given time after it.

    Attributes:
        alarm_time_s: Time of the first alarm, in s (nan if none).
        alarm_window_s: Window that raised it, in s.
        leak_rate_m3s: Rate estimate at the later time, in m3/s.
        leak_position_m: Location estimate at the later time, in m.
        extra: Other figures (free form).
    """

    alarm_time_s: float
    alarm_window_s: float
    leak_rate_m3s: float
    leak_position_m: float
    extra: dict[str, float] = field(default_factory=dict)


def summarise_alarm(frame: pd.DataFrame, after_s: float = 900.0) -> AlarmSummary:
    """First alarm in a `monitor_frame` result and the estimates ``after_s`` seconds later (or the last)."""
    hit = frame[frame["alarm"]]
    if hit.empty:
        return AlarmSummary(math.nan, math.nan, math.nan, math.nan)
    t_alarm = float(hit["alarm_time_s"].iloc[0])
    later = hit[hit.index >= t_alarm + after_s]
    row = later.iloc[0] if len(later) else hit.iloc[-1]
    return AlarmSummary(
        t_alarm, float(hit["alarm_window_s"].iloc[0]), float(row["leak_rate_m3s"]), float(row["leak_position_m"])
    )
