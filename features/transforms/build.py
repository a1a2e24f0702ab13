"""`pump_features`: per pump every cadence, window statistics and physics residuals from tag readings."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pumptwin.features.transforms.physics import (
    BASELINE_COLUMNS,
    PumpPhysics,
    _baseline_frame,
    _baseline_tables,
    physics_residuals,
    pump_physics,
    vibration_baseline_ratio,
    vibration_baseline_table,
)
from pumptwin.features.transforms.schema import (
    _NS,
    _WHOLE_TOLERANCE,
    ALL_SAMPLE_MEASURES,
    AMBIENT_CARRY_S,
    DEFAULT_CADENCE_S,
    DEFAULT_LONG_WINDOW_S,
    DEFAULT_SHORT_WINDOW_S,
    MEASURE_COLUMNS,
    MIN_SPEED,
    RESIDUAL_COLUMNS,
    RUNNING_MASK_FRACTION,
    VIB_BASELINE_S,
    FeatureError,
    FloatArray,
    empty_features,
    feature_names,
    window_label,
)
from pumptwin.features.transforms.windows import (
    _MEASURES,
    _bin_mean,
    _bin_sums,
    _BinSums,
    _clean,
    _rows,
    _Samples,
    _window_mean,
    _window_stats,
    _window_sum,
)
from pumptwin.twin.assets import Registry
from pumptwin.twin.hydraulic.network import Network

# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def _window_bins(window_s: float, cadence_s: float, what: str) -> int:
    k = window_s / cadence_s
    if not (math.isfinite(k) and k >= 1 and abs(k - round(k)) < _WHOLE_TOLERANCE):
        raise FeatureError(f"{what} {window_s} s must be a whole number (>= 1) of cadence intervals of {cadence_s} s")
    return round(k)


def _ambient_per_pump(s: _Samples, ph: PumpPhysics, n_bins: int, carry_bins: int) -> FloatArray:
    n_st = len(ph.stations)
    flat = s.ambient_station * n_bins + s.ambient_bin
    n = np.bincount(flat, minlength=n_st * n_bins).reshape(n_st, n_bins)
    tot = np.bincount(flat, weights=s.ambient_value, minlength=n_st * n_bins).reshape(n_st, n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        amb = np.where(n > 0, tot / n, np.nan)
    amb = pd.DataFrame(amb.T).ffill(limit=carry_bins).to_numpy().T if n_st else amb
    out = np.full((len(ph.names), n_bins), np.nan)
    known = ph.station >= 0
    out[known] = amb[ph.station[known]]
    return out


@dataclass(frozen=True, slots=True)
class _Intervals:
    """Samples binned into cadence intervals: power sums, interval means, running fraction, residuals."""

    ph: PumpPhysics
    samples: _Samples
    sums: _BinSums
    means: dict[str, FloatArray]
    running: FloatArray
    residuals: dict[str, FloatArray]
    times_s: FloatArray
    cadence_ns: int


def _intervals(readings: pd.DataFrame, registry: Registry, network: Network, cadence_s: float) -> _Intervals | None:
    """Clean and bin the readings; None when no usable sample is left."""
    if not (math.isfinite(cadence_s) and cadence_s > 0 and float(cadence_s * 1e6).is_integer()):
        raise FeatureError(f"cadence must be a positive number of microseconds, got {cadence_s} s")
    ph = pump_physics(registry, network)
    cadence_ns = round(cadence_s * _NS)
    ranges = {t.tag: (t.low, t.high) for t in registry.tags}
    s = _clean(readings, ph, ranges, cadence_ns)
    if s is None:
        return None
    n_pumps = len(ph.names)
    codes = {m: i for i, m in enumerate(_MEASURES)}
    status_speed = (s.measure == codes["STATUS"]) | (s.measure == codes["SPEED"])
    m0 = s.measure[status_speed]
    first = _bin_sums(
        np.where(m0 == codes["STATUS"], 0, n_pumps) + s.pump[status_speed],
        s.bin[status_speed],
        s.t_h[status_speed],
        s.value[status_speed],
        (2 * n_pumps, s.n_bins),
    )
    status, speed0 = _rows(first, 0, n_pumps), _rows(first, n_pumps, 2 * n_pumps)
    with np.errstate(invalid="ignore", divide="ignore"):
        by_speed = np.where(speed0.n > 0, (_bin_mean(speed0) > MIN_SPEED * ph.rated_rpm[:, None]).astype(float), np.nan)
        running = np.where(status.n > 0, _bin_mean(status), by_speed)
    stopped = np.nan_to_num(running, nan=1.0) < RUNNING_MASK_FRACTION
    masked = np.array([m in MEASURE_COLUMNS and m not in ALL_SAMPLE_MEASURES for m in _MEASURES])
    keep = ~(masked[s.measure] & stopped[s.pump, s.bin])
    sums = _bin_sums(
        s.measure[keep] * n_pumps + s.pump[keep],
        s.bin[keep],
        s.t_h[keep],
        s.value[keep],
        (len(_MEASURES) * n_pumps, s.n_bins),
    )
    means = {m: _bin_mean(_rows(sums, codes[m] * n_pumps, (codes[m] + 1) * n_pumps)) for m in MEASURE_COLUMNS}
    ambient = _ambient_per_pump(s, ph, s.n_bins, max(1, math.ceil(AMBIENT_CARRY_S / cadence_s)))
    residuals = physics_residuals(means, running, ambient, ph)
    times_s = (s.origin_ns + np.arange(s.n_bins, dtype=np.int64) * cadence_ns) / _NS
    return _Intervals(ph, s, sums, means, running, residuals, times_s, cadence_ns)


def vibration_baseline(
    readings: pd.DataFrame,
    registry: Registry,
    network: Network,
    *,
    cadence_s: float = DEFAULT_CADENCE_S,
    baseline_s: float = VIB_BASELINE_S,
) -> pd.DataFrame:
    """Each pump's vibration baseline from a reference period of its readings, to reuse later.

    Fit it once on healthy history and pass it to `pump_features` (``vib_baseline=``), so that
    features built window by window compare against the same reference.

    Args:
        readings: Tag table ``tag, ts, value, quality``.
        registry: Fleet registry.
        network: The network the fleet copies.
        cadence_s: Interval length in s.
        baseline_s: Reference period from each pump's first running interval, s.

    Returns:
        ``pump_id, bearing ("de" | "nde"), bep_bin_pct (lower edge, %), vib_norm_mm_s`` (median of
        vib / s^1.5 in mm/s), one row per pump, bearing and %BEP bin with a value.

    Raises:
        FeatureError: Missing columns or an invalid cadence or period.
    """
    if not (math.isfinite(baseline_s) and baseline_s > 0):
        raise FeatureError(f"vibration baseline period must be > 0 s, got {baseline_s}")
    iv = _intervals(readings, registry, network, cadence_s)
    if iv is None:
        return pd.DataFrame(
            {c: pd.Series([], dtype=object if c in ("pump_id", "bearing") else float) for c in BASELINE_COLUMNS}
        )
    speed = iv.means["SPEED"] / iv.ph.rated_rpm[:, None]
    pct = iv.residuals["percent_bep"]
    tables = {
        side: vibration_baseline_table(iv.means[f"VIB_{side.upper()}_RMS"], speed, pct, iv.times_s, baseline_s)
        for side in ("de", "nde")
    }
    return _baseline_frame(iv.ph.names, tables)


def pump_features(
    readings: pd.DataFrame,
    registry: Registry,
    network: Network,
    *,
    cadence_s: float = DEFAULT_CADENCE_S,
    short_window_s: float = DEFAULT_SHORT_WINDOW_S,
    long_window_s: float = DEFAULT_LONG_WINDOW_S,
    baseline_s: float = VIB_BASELINE_S,
    vib_baseline: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Features of every pump on the cadence grid, from historian readings.

    Args:
        readings: Tag table ``tag, ts, value, quality`` (any order; repeats allowed).
        registry: Fleet registry: which pumps exist, their ratings and stations.
        network: The network the fleet copies: pump curves, fluid density, vapour pressure.
        cadence_s: Grid spacing in s (rows at multiples of it since the epoch).
        short_window_s: Short rolling window in s (a whole number of cadence intervals).
        long_window_s: Long rolling window in s (a whole number of cadence intervals).
        baseline_s: Length of each pump's vibration reference period in s, when the baseline is
            fitted on ``readings`` itself.
        vib_baseline: A fitted baseline (`vibration_baseline`); pumps and bearings it lists use
            it, the others are fitted on ``readings``.

    Returns:
        ``pump_id`` (``PS01.P1``), ``event_timestamp`` (datetime64[us, UTC]) and the float64
        columns of `feature_names`, one row per pump and grid time that has a sample of the pump
        within the long window before it; sorted by pump (registry order) and time.

    Raises:
        FeatureError: Missing columns, an unparseable ``ts`` or invalid windows.
    """
    k_short = _window_bins(short_window_s, cadence_s, "short window")
    k_long = _window_bins(long_window_s, cadence_s, "long window")
    names = feature_names(short_window_s, long_window_s)
    if not (math.isfinite(baseline_s) and baseline_s > 0):
        raise FeatureError(f"vibration baseline period must be > 0 s, got {baseline_s}")
    iv = _intervals(readings, registry, network, cadence_s)
    if iv is None:
        return empty_features(short_window_s, long_window_s)
    ph, s = iv.ph, iv.samples
    n_pumps = len(ph.names)
    shape = (n_pumps, s.n_bins)
    codes = {m: i for i, m in enumerate(_MEASURES)}
    windows = ((k_short, window_label(short_window_s)), (k_long, window_label(long_window_s)))
    cols: dict[str, FloatArray] = {}
    for measure, stem in MEASURE_COLUMNS.items():
        sums = _rows(iv.sums, codes[measure] * n_pumps, (codes[measure] + 1) * n_pumps)
        for k, w in windows:
            for stat, values in _window_stats(sums, k).items():
                cols[f"{stem}_{stat}_{w}"] = values
    residuals = dict(iv.residuals)
    speed = iv.means["SPEED"] / ph.rated_rpm[:, None]
    given = _baseline_tables(vib_baseline, ph.names) if vib_baseline is not None else {}
    for side in ("de", "nde"):
        vib = iv.means[f"VIB_{side.upper()}_RMS"]
        table = vibration_baseline_table(vib, speed, residuals["percent_bep"], iv.times_s, baseline_s)
        if side in given:
            listed = np.isfinite(given[side]).any(axis=1)
            table[listed] = given[side][listed]
        residuals[f"vib_{side}_baseline_ratio"] = vibration_baseline_ratio(table, vib, speed, residuals["percent_bep"])
    cols.update(residuals)
    for k, w in windows:
        cols[f"running_frac_{w}"] = _window_mean(iv.running, k)
        for r in RESIDUAL_COLUMNS:
            cols[f"{r}_mean_{w}"] = _window_mean(residuals[r], k)

    any_count = np.bincount(s.pump * s.n_bins + s.bin, minlength=shape[0] * shape[1]).reshape(shape)
    present = _window_sum(any_count.astype(np.float64), k_long) > 0
    rows = present.ravel()
    step_us = iv.cadence_ns // 1000
    grid_us = (s.origin_ns // 1000 + np.arange(s.n_bins, dtype=np.int64) * step_us).astype("datetime64[us]")
    data: dict[str, object] = {
        "pump_id": np.repeat(np.asarray(ph.names, dtype=object), s.n_bins)[rows],
        "event_timestamp": pd.DatetimeIndex(np.tile(grid_us, shape[0])[rows]).tz_localize("UTC"),
    }
    for name in names:
        data[name] = np.ascontiguousarray(cols[name].ravel()[rows], dtype=np.float64)
    return pd.DataFrame(data)
