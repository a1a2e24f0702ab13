"""The streaming leak monitor: CUSUM alarms, onset, rate and location estimates; frame helpers.

See `pumptwin.twin.leak.detection` (steps 4 and 5) for the method. Units are SI.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pumptwin.twin.leak.balance import _Buffer, _evaluate, _Evaluation
from pumptwin.twin.leak.location import (
    _Means,
    locate_leak,
    locate_leak_absolute,
    locate_leak_change,
    locate_leak_profile,
)
from pumptwin.twin.leak.model import (
    LeakConfig,
    LeakStatus,
    NoiseModel,
    _index_seconds,
    clean_readings,
    line_pack_weights,
)
from pumptwin.twin.units import HOUR_S


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
        keep = max(config.windows_s) + 2 * config.transient_s + 2 * config.eval_s + 4 * HOUR_S
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
        cum, lp, gaps, _ = self._buf.at(np.array([t0, t1]), all_pressures=True)
        if gaps[1] != gaps[0]:
            return None
        span = t1 - t0
        d = (cum[1] - cum[0]) / span
        q_in, q_out, run = float(d[0]), float(d[1]), float(d[4])
        residual = q_in - q_out - float(lp[1] - lp[0]) / span - noise.bias_frac * q_in - noise.bias_m3s * run
        q_out_corr = q_out + noise.bias_frac * q_in + noise.bias_m3s * run
        return _Means(q_in, q_out_corr, float(d[2]), float(d[3]), residual, tuple(float(v) for v in d[5:]))

    def _flow_spread(self, q_m3s: float, noise: NoiseModel) -> float:
        """Spread of the inlet-outlet flow difference (m3/s): the balance window nearest ``baseline_s``."""
        cfg = self.config
        j = int(np.argmin(np.abs(np.asarray(cfg.windows_s) - cfg.baseline_s)))
        return math.sqrt(noise.sigma_m3s[j] ** 2 + 2.0 * (cfg.flow_stability_frac * q_m3s) ** 2)

    def _estimate(self, te: float, noise: NoiseModel) -> tuple[float, float]:
        """Leak rate (m3/s) and position (m) from onset + settle to ``te``; nan while too short.

        With a steady pre-leak baseline (``baseline_s`` ending one alarm window before the onset),
        the rate is the change of the residual imbalance and the location uses the changes of
        heads and flows, which cancels slow meter drift and calibration offsets; otherwise the
        absolute residual and gradients are used (with ``location_method="profile"``, the whole
        pressure profile against its segment calibration, `locate_leak_absolute`).
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
            x = math.nan
            if cfg.location_method == "profile" and post.q_in_m3s > cfg.low_flow_m3s:  # no gradient when shut in
                x = locate_leak_absolute(line, pos, post, noise, self._flow_spread(post.q_in_m3s, noise))
            if math.isnan(x):
                x = locate_leak(line, pos, post.p_in_pa, post.p_out_pa, post.q_in_m3s, post.q_out_m3s, noise)
            return post.residual_m3s, x
        base = self._baseline
        learnt = len(noise.head_change_sd_m) == len(pos) and math.isfinite(noise.flow_change_sd_frac)
        if cfg.location_method == "profile" and learnt:
            x = locate_leak_profile(line, pos, base, post, noise)
        else:
            x = locate_leak_change(line, pos, base, post, noise)
        return post.residual_m3s - base.residual_m3s, x


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
