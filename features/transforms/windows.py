"""Cleaning the readings into per-pump samples, and causal window statistics over bins."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pumptwin.features.transforms.physics import PumpPhysics
from pumptwin.features.transforms.schema import (
    _MIN_KURT_SAMPLES,
    _NS_PER_H,
    GOOD_QUALITIES,
    MEASURE_COLUMNS,
    FeatureError,
    FloatArray,
    IntArray,
)

# --------------------------------------------------------------------------------------------
# Cleaning and binning
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Samples:
    """Clean samples: pump (or station) index, measure code, bin, time in h since origin, value."""

    pump: IntArray
    measure: IntArray
    bin: IntArray
    t_h: FloatArray
    value: FloatArray
    ambient_station: IntArray
    ambient_bin: IntArray
    ambient_value: FloatArray
    origin_ns: int
    n_bins: int


_MEASURES = (*MEASURE_COLUMNS, "STATUS")


def _timestamps_ns(ts: pd.Series) -> IntArray:
    """UTC nanoseconds of a timestamp column (naive values are taken as UTC)."""
    try:
        idx = pd.DatetimeIndex(pd.to_datetime(ts, utc=True))
    except (ValueError, TypeError) as exc:
        raise FeatureError(f"readings: column 'ts' is not a timestamp column: {exc}") from None
    return np.asarray(idx.as_unit("ns").asi8, dtype=np.int64)


def _last_of_each(codes: IntArray, ts_ns: IntArray, n_tags: int) -> IntArray | None:
    """Indices of the last-arriving row of each repeated (tag, ts), in time order; None without repeats.

    Sorting by the time-major key (ts, tag) is stable and nearly linear on historian data, which
    arrives close to time order; equal neighbours are repeats.
    """
    t_min = int(ts_ns.min())
    span = int(ts_ns.max()) - t_min + 1
    if span * (n_tags + 1) < 2**62:
        key = (ts_ns - t_min) * (n_tags + 1) + codes
        order = np.argsort(key, kind="stable")
        ks = key[order]
        repeat = ks[:-1] == ks[1:]
    else:
        order = np.lexsort((codes, ts_ns))
        repeat = (ts_ns[order][:-1] == ts_ns[order][1:]) & (codes[order][:-1] == codes[order][1:])
    if not repeat.any():
        return None
    keep = np.ones(order.size, dtype=bool)
    keep[:-1] = ~repeat
    return np.asarray(order[keep], dtype=np.int64)


def _clean(
    readings: pd.DataFrame, physics: PumpPhysics, ranges: Mapping[str, tuple[float, float]], cadence_ns: int
) -> _Samples | None:
    """Good, finite, in-range, de-duplicated samples of known pumps and stations, binned; None when none."""
    missing = [c for c in ("tag", "ts", "value", "quality") if c not in readings.columns]
    if missing:
        raise FeatureError(f"readings: missing columns {missing}; expected tag, ts, value, quality")
    if readings.empty:
        return None
    quality_codes, qualities = pd.factorize(readings["quality"], use_na_sentinel=True)
    good_q = np.array([str(q).strip().lower() in GOOD_QUALITIES for q in qualities] + [False], dtype=bool)
    value = pd.to_numeric(readings["value"], errors="coerce").to_numpy(dtype=np.float64)
    tag_codes, tags = pd.factorize(readings["tag"], use_na_sentinel=True)
    pump_index = {name: i for i, name in enumerate(physics.names)}
    station_index = {name: i for i, name in enumerate(physics.stations)}
    measure_index = {m: i for i, m in enumerate(_MEASURES)}
    n_tags = len(tags)
    tag_pump = np.full(n_tags + 1, -1, dtype=np.int64)  # the last entry stands for a missing tag (code -1)
    tag_measure = np.full(n_tags + 1, -1, dtype=np.int64)
    tag_station = np.full(n_tags + 1, -1, dtype=np.int64)
    low = np.full(n_tags + 1, np.nan)  # NaN bounds drop every value of a tag that is not used
    high = np.full(n_tags + 1, np.nan)
    for k, tag in enumerate(tags):
        station, _, rest = str(tag).partition(".")
        asset, _, measure = rest.partition(".")
        if asset == "SITE" and measure == "AMBIENT_TEMP":
            tag_station[k] = station_index.get(station, -1)
        elif measure in measure_index:
            tag_pump[k] = pump_index.get(f"{station}.{asset}", -1)
            tag_measure[k] = measure_index[measure] if tag_pump[k] >= 0 else -1
        if tag_pump[k] >= 0 or tag_station[k] >= 0:
            low[k], high[k] = ranges.get(str(tag), (-np.inf, np.inf))
    with np.errstate(invalid="ignore"):
        keep = good_q[quality_codes] & np.isfinite(value) & (value >= low[tag_codes]) & (value <= high[tag_codes])
    rows = np.flatnonzero(keep)
    if rows.size == 0:
        return None
    ts_ns = _timestamps_ns(readings["ts"])[rows]
    codes = tag_codes[rows]
    value = value[rows]
    valid_ts = ts_ns != np.iinfo(np.int64).min
    if not valid_ts.all():
        ts_ns, codes, value = ts_ns[valid_ts], codes[valid_ts], value[valid_ts]
        if ts_ns.size == 0:
            return None
    unique = _last_of_each(codes, ts_ns, n_tags)
    if unique is not None:
        ts_ns, codes, value = ts_ns[unique], codes[unique], value[unique]
    t_min = int(ts_ns.min())
    origin = (t_min // cadence_ns) * cadence_ns
    bins = -((origin - ts_ns) // cadence_ns)  # ceil: an interval (T - cadence, T] is labelled T
    n_bins = int(bins.max()) + 1
    is_pump = tag_pump[codes] >= 0
    amb = ~is_pump
    return _Samples(
        pump=tag_pump[codes[is_pump]],
        measure=tag_measure[codes[is_pump]],
        bin=bins[is_pump],
        t_h=(ts_ns[is_pump] - origin) / _NS_PER_H,
        value=value[is_pump],
        ambient_station=tag_station[codes[amb]],
        ambient_bin=bins[amb],
        ambient_value=value[amb],
        origin_ns=int(origin),
        n_bins=n_bins,
    )


# --------------------------------------------------------------------------------------------
# Window arithmetic on (pumps, bins) arrays
# --------------------------------------------------------------------------------------------


def _window_sum(a: FloatArray, k: int) -> FloatArray:
    """Sum over the trailing ``k`` bins (this one included) along axis 1."""
    c = np.zeros((a.shape[0], a.shape[1] + 1))
    np.cumsum(a, axis=1, out=c[:, 1:])
    lo = np.maximum(np.arange(1, a.shape[1] + 1) - k, 0)
    return np.asarray(c[:, 1:] - c[:, lo], dtype=np.float64)


def _window_max(a: FloatArray, k: int) -> FloatArray:
    """Maximum over the trailing ``k`` bins along axis 1 (NaN bins ignored; NaN when all are)."""
    from scipy.ndimage import maximum_filter1d  # noqa: PLC0415 - keeps module import light

    filled = np.where(np.isnan(a), -np.inf, a)
    out = maximum_filter1d(filled, size=k, axis=1, origin=(k - 1) // 2, mode="constant", cval=-np.inf)
    return np.asarray(np.where(np.isneginf(out), np.nan, out), dtype=np.float64)


def _window_mean(a: FloatArray, k: int) -> FloatArray:
    """Mean of the finite values over the trailing ``k`` bins (NaN when none)."""
    ok = np.isfinite(a)
    n = _window_sum(ok.astype(np.float64), k)
    s = _window_sum(np.where(ok, a, 0.0), k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.where(n > 0, s / n, np.nan), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class _BinSums:
    """Per (pump, bin) power sums of one measure's centred samples."""

    n: FloatArray
    s1: FloatArray
    s2: FloatArray
    s3: FloatArray
    s4: FloatArray
    st: FloatArray
    stt: FloatArray
    stx: FloatArray
    bin_max: FloatArray
    centre: FloatArray


def _bin_sums(series: IntArray, bins: IntArray, t_h: FloatArray, x: FloatArray, shape: tuple[int, int]) -> _BinSums:
    """Power sums per (series, bin) of samples centred on their series mean; arrays of ``shape``."""
    n_series, n_bins = shape
    count = np.bincount(series, minlength=n_series).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = np.where(count > 0, np.bincount(series, weights=x, minlength=n_series) / count, 0.0)
    xc = x - centre[series]
    flat = series * n_bins + bins
    size = n_series * n_bins

    def total(w: FloatArray | None) -> FloatArray:
        return np.bincount(flat, weights=w, minlength=size).astype(np.float64).reshape(shape)

    x2 = xc * xc
    bin_max = np.full(size, -np.inf)
    np.maximum.at(bin_max, flat, xc)
    bin_max[np.isneginf(bin_max)] = np.nan
    return _BinSums(
        n=total(None),
        s1=total(xc),
        s2=total(x2),
        s3=total(x2 * xc),
        s4=total(x2 * x2),
        st=total(t_h),
        stt=total(t_h * t_h),
        stx=total(t_h * xc),
        bin_max=bin_max.reshape(shape),
        centre=centre,
    )


def _rows(b: _BinSums, lo: int, hi: int) -> _BinSums:
    """The series ``lo:hi`` of ``b`` (views)."""
    return _BinSums(
        n=b.n[lo:hi],
        s1=b.s1[lo:hi],
        s2=b.s2[lo:hi],
        s3=b.s3[lo:hi],
        s4=b.s4[lo:hi],
        st=b.st[lo:hi],
        stt=b.stt[lo:hi],
        stx=b.stx[lo:hi],
        bin_max=b.bin_max[lo:hi],
        centre=b.centre[lo:hi],
    )


def _window_stats(b: _BinSums, k: int) -> dict[str, FloatArray]:
    """Mean, std, max, excess kurtosis and slope per hour over the trailing ``k`` bins."""
    n = _window_sum(b.n, k)
    s1, s2, s3, s4 = (_window_sum(a, k) for a in (b.s1, b.s2, b.s3, b.s4))
    st, stt, stx = (_window_sum(a, k) for a in (b.st, b.stt, b.stx))
    centre = b.centre[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = s1 / n
        m2 = np.maximum(s2 / n - mu * mu, 0.0)
        m4 = s4 / n - 4.0 * mu * s3 / n + 6.0 * mu * mu * s2 / n - 3.0 * mu**4
        spread = m2 > 1e-12 * np.maximum(mu * mu + centre * centre, 1e-12)
        std = np.where(n > 1, np.sqrt(m2 * n / np.maximum(n - 1.0, 1.0)), np.nan)
        kurt = np.where((n >= _MIN_KURT_SAMPLES) & spread, m4 / (m2 * m2) - 3.0, np.nan)
        t_var = n * stt - st * st
        slope = np.where((n > 1) & (t_var > 1e-12 * n * n), (n * stx - st * s1) / t_var, np.nan)
        mean = np.where(n > 0, mu + centre, np.nan)
    return {
        "mean": np.asarray(mean, dtype=np.float64),
        "std": np.asarray(std, dtype=np.float64),
        "max": _window_max(b.bin_max, k) + centre,
        "kurt": np.asarray(kurt, dtype=np.float64),
        "slope_per_h": np.asarray(slope, dtype=np.float64),
    }


def _bin_mean(b: _BinSums) -> FloatArray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.where(b.n > 0, b.s1 / b.n + b.centre[:, None], np.nan), dtype=np.float64)
