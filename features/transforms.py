"""Per-pump features from historian readings: rolling statistics and physics residuals.

`pump_features` turns the tag table (``tag, ts, value, quality``; tags ``STATION.ASSET.MEASURE``)
into one row per pump and time on a regular grid (``pump_id`` ``PS01.P1``, ``event_timestamp`` a
multiple of the cadence, UTC, microseconds), with float64 feature columns only. Everything is
vectorised: samples are binned once into cadence intervals, and every window statistic comes from
running sums of per-bin power sums, so a month of a 20-station fleet takes seconds.

Cleaning
    Rows whose quality is not ``good`` or ``substituted``, whose value is not finite or lies
    outside the tag's physical range in the registry (as validation would quarantine it), are
    dropped; a repeated (tag, ts) keeps its last row; order does not matter. Tags of pumps that
    are not in the registry, and measures not listed here, are ignored. A pump without a reading
    gives no rows; a missing measure gives NaN in its columns.

Causal windows
    The row at time T uses the samples with T - W < ts <= T for a window W (a whole number of
    cadence intervals). Per measure and window: ``mean``, ``std`` (sample, ddof 1), ``max``,
    ``kurt`` (excess kurtosis, population moments; NaN below 4 samples or with no spread) and
    ``slope_per_h`` (least-squares slope against time, units per hour). The process measures
    (speed, flow, pressures, motor power and current, vibration, strainer loss) use only the
    samples of cadence intervals in which the pump was running (``STATUS`` mean >= 0.5, or speed
    above 5 % of rated when ``STATUS`` is missing), so a stop does not read as spread; the
    temperatures and the seal leak use every sample. ``running_frac_<w>`` is the mean ``STATUS``
    (0..1) over the window. Columns are named ``<measure>_<unit>_<stat>_<window>``, e.g.
    ``vib_de_rms_mm_s_mean_1h``, ``brg_de_temp_c_slope_per_h_24h``.

Physics residuals (at T, from the means of the last cadence interval (T - cadence, T])
    With flow q (m3/s), relative speed s = rpm / rated rpm, suction and discharge gauge pressures
    p_s, p_d (Pa), density rho and g from the network:

    - ``head_residual_m`` = (p_d - p_s) / (rho g) - H(q, s), where H is the rated head curve by
      affinity, s^2 h0 - r s^(2-n) q^n (`twin.pumps.HeadCurve`); ``head_residual_pct`` is it as a
      percentage of H. The velocity-head and gauge-elevation differences are neglected.
    - ``power_residual_kw`` = measured motor power - rho g q H(q, s) / eta(q, s) / eta_motor,
      eta the rated efficiency curve by affinity eta(q / s) (0.75 without a curve) and eta_motor
      the motor's rated efficiency; ``power_residual_pct`` relative to the expected power.
    - ``efficiency_residual`` = rho g q (p_d - p_s)/(rho g) / (P_motor eta_motor) - eta(q, s)
      (fraction).
    - ``npsh_available_m`` = p_s / (rho g) + (p_atm - p_vap) / (rho g) + v^2 / (2 g), v the
      velocity in the suction pipe; ``npsh_margin_m`` = NPSHa - s^2 NPSHr(q / s) (NaN without an
      NPSHr curve). The suction pressure is read after the strainer, so a clogging strainer lowers
      the margin.
    - ``percent_bep`` = 100 q / (s q_BEP).
    - ``brg_de_rise_norm_k``, ``brg_nde_rise_norm_k``: bearing temperature minus station ambient
      (``PSnn.SITE.AMBIENT_TEMP``, carried forward up to an hour) over the friction-heat load
      s^1.5 (0.6 + 0.4 (1 + 1.5 (q/q_BEP(s) - 1)^2)): constant for a healthy bearing across speed
      and flow, in K.
    - ``winding_rise_norm_k``: winding minus ambient over 0.25 + 0.75 (I / I_rated)^2, in K.
    - ``vib_de_baseline_ratio``, ``vib_nde_baseline_ratio``: vibration over its expected value at
      the same operating point. Expected = s^1.5 x the median of vib / s^1.5 in the pump's own
      reference period (its first `VIB_BASELINE_S` of running data in the frame), per 10 %-wide
      bin of %BEP (a bin with fewer than `MIN_BASELINE_BINS` intervals falls back to the pump's
      median over all bins). A robust median per bin needs no model form and tolerates outliers;
      the speed factor spans imbalance (s^2) and misalignment (s). Inside the reference period
      the ratio is in-sample. Features built window by window should use one fixed reference:
      fit it once with `vibration_baseline` on healthy history and pass it as ``vib_baseline``.

    Residuals are NaN when the pump is not running through the whole interval (``STATUS`` mean
    below 0.99), at speed below 5 % of rated, at zero flow or when an input is missing, so a stop
    never produces a residual. Each residual also has causal window means (``_mean_1h``,
    ``_mean_24h``) over the intervals where it is defined.

The column lists are fixed by the window lengths (`feature_names`, `feature_groups`); the Feast
definitions use the same lists.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from pumptwin.twin.assets import Registry
from pumptwin.twin.hydraulic.network import G_M_S2, Network

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

KEY_COLUMNS = ("pump_id", "event_timestamp")
"""Entity key and timestamp of every feature row."""
GOOD_QUALITIES = frozenset({"good", "substituted"})
"""Quality flags whose readings are used."""
MEASURE_COLUMNS: dict[str, str] = {
    "SPEED": "speed_rpm",
    "FLOW": "flow_m3h",
    "SUCT_PRESS": "suct_press_bar",
    "DISCH_PRESS": "disch_press_bar",
    "MOTOR_POWER": "motor_power_kw",
    "MOTOR_CURRENT": "motor_current_a",
    "VIB_DE_RMS": "vib_de_rms_mm_s",
    "VIB_NDE_RMS": "vib_nde_rms_mm_s",
    "BRG_DE_TEMP": "brg_de_temp_c",
    "BRG_NDE_TEMP": "brg_nde_temp_c",
    "MOTOR_WINDING_TEMP": "winding_temp_c",
    "SEAL_LEAK": "seal_leak_l_h",
    "STRAINER_DP": "strainer_dp_bar",
}
"""Pump measures with rolling statistics, and their column stem (snake case with unit)."""
ALL_SAMPLE_MEASURES = frozenset({"BRG_DE_TEMP", "BRG_NDE_TEMP", "MOTOR_WINDING_TEMP", "SEAL_LEAK"})
"""Measures whose statistics use stopped intervals too (the others use running intervals only)."""
STATS = ("mean", "std", "max", "kurt", "slope_per_h")
"""Rolling statistics per measure and window."""
RESIDUAL_COLUMNS = (
    "percent_bep",
    "head_residual_m",
    "head_residual_pct",
    "power_residual_kw",
    "power_residual_pct",
    "efficiency_residual",
    "npsh_available_m",
    "npsh_margin_m",
    "brg_de_rise_norm_k",
    "brg_nde_rise_norm_k",
    "winding_rise_norm_k",
    "vib_de_baseline_ratio",
    "vib_nde_baseline_ratio",
)
"""Physics residuals at the row's cadence interval."""
DEFAULT_CADENCE_S = 600.0
DEFAULT_SHORT_WINDOW_S = 3600.0
DEFAULT_LONG_WINDOW_S = 86400.0
DEFAULT_EFFICIENCY = 0.75
"""Pump efficiency assumed without an efficiency curve (EPANET's global default)."""
RUNNING_MASK_FRACTION = 0.5
"""An interval whose mean STATUS reaches this counts as running for the process statistics."""
RUNNING_RESIDUAL_FRACTION = 0.99
"""An interval needs this mean STATUS for residuals (running throughout)."""
MIN_SPEED = 0.05
"""Relative speed below which a pump counts as stopped."""
VIB_BASELINE_S = 3 * 86400.0
"""Length of each pump's vibration reference period, s."""
BEP_BIN_PCT = 10.0
"""Width of the %BEP bins of the vibration baseline, %."""
MAX_BEP_BIN = 20
"""Last %BEP bin (200 % and above)."""
MIN_BASELINE_BINS = 6
"""Fewest intervals in a %BEP bin for its own baseline median."""
VIB_SPEED_EXPONENT = 1.5
"""Speed exponent of the expected vibration."""
AMBIENT_CARRY_S = 3600.0
"""How long a station ambient reading is carried forward, s."""
_NS = 1_000_000_000
_NS_PER_H = 3.6e12
_PA_PER_BAR = 1e5
_M3H_PER_M3S = 3600.0
_MIN_KURT_SAMPLES = 4
_WHOLE_TOLERANCE = 1e-9


class FeatureError(ValueError):
    """Invalid readings or feature settings; the message names the value."""


# --------------------------------------------------------------------------------------------
# Column names
# --------------------------------------------------------------------------------------------


def window_label(window_s: float) -> str:
    """Short label of a window length: ``1h``, ``24h``, ``30min``, ``45s``.

    Raises:
        FeatureError: A window that is not a positive whole number of seconds.
    """
    if not (math.isfinite(window_s) and window_s > 0 and float(window_s).is_integer()):
        raise FeatureError(f"window must be a positive whole number of seconds, got {window_s}")
    s = int(window_s)
    if s % 3600 == 0:
        return f"{s // 3600}h"
    if s % 60 == 0:
        return f"{s // 60}min"
    return f"{s}s"


def window_columns(window_s: float) -> list[str]:
    """Feature columns of one window: measure statistics, running fraction and residual means."""
    w = window_label(window_s)
    cols = [f"{stem}_{stat}_{w}" for stem in MEASURE_COLUMNS.values() for stat in STATS]
    cols.append(f"running_frac_{w}")
    cols.extend(f"{r}_mean_{w}" for r in RESIDUAL_COLUMNS)
    return cols


def feature_groups(
    short_window_s: float = DEFAULT_SHORT_WINDOW_S, long_window_s: float = DEFAULT_LONG_WINDOW_S
) -> dict[str, list[str]]:
    """Feature columns by group: ``rolling_short``, ``rolling_long`` and ``physics`` (residuals now).

    Raises:
        FeatureError: Equal or invalid windows.
    """
    if window_label(short_window_s) == window_label(long_window_s):
        raise FeatureError(f"short and long windows must differ, both are {short_window_s} s")
    return {
        "rolling_short": window_columns(short_window_s),
        "rolling_long": window_columns(long_window_s),
        "physics": list(RESIDUAL_COLUMNS),
    }


def feature_names(
    short_window_s: float = DEFAULT_SHORT_WINDOW_S, long_window_s: float = DEFAULT_LONG_WINDOW_S
) -> list[str]:
    """Every feature column `pump_features` produces for these windows, in output order."""
    groups = feature_groups(short_window_s, long_window_s)
    return [*groups["physics"], *groups["rolling_short"], *groups["rolling_long"]]


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """Every column of ``frame`` except the keys (`KEY_COLUMNS`)."""
    return [c for c in frame.columns if c not in KEY_COLUMNS]


def empty_features(
    short_window_s: float = DEFAULT_SHORT_WINDOW_S, long_window_s: float = DEFAULT_LONG_WINDOW_S
) -> pd.DataFrame:
    """A feature frame with no rows and every column, typed."""
    data: dict[str, object] = {
        "pump_id": pd.Series([], dtype=object),
        "event_timestamp": pd.Series([], dtype="datetime64[us, UTC]"),
    }
    data.update({c: pd.Series([], dtype=np.float64) for c in feature_names(short_window_s, long_window_s)})
    return pd.DataFrame(data)


# --------------------------------------------------------------------------------------------
# Pump physics from the registry and the network
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PumpPhysics:
    """Rated curves and ratings of the registry's pumps, one array entry per pump (NaN: unknown).

    Attributes:
        names: ``STATION.ASSET`` of each pump.
        station: Index of each pump's station in ``stations``.
        stations: Station names.
        h0_m, r, n: Rated head curve h0 - r q^n (m, q in m3/s).
        eff_a, eff_b, eff_c: Rated efficiency a q + b q^2 + c q^3 (NaN: `DEFAULT_EFFICIENCY`).
        npshr_a, npshr_b, npshr_c: Rated NPSHr a + b q + c q^2 in m.
        suction_area_m2: Cross-section of the suction pipe, m2.
        bep_flow_m3s: Best-efficiency flow at rated speed, m3/s.
        rated_rpm: Speed at relative speed 1, rpm.
        motor_efficiency: Motor rated efficiency (fraction).
        rated_current_a: Motor rated current, A.
        density_kg_m3: Fluid density, kg/m3.
        pressure_head_m: (p_atm - p_vap) / (rho g), m.
    """

    names: tuple[str, ...]
    station: IntArray
    stations: tuple[str, ...]
    h0_m: FloatArray
    r: FloatArray
    n: FloatArray
    eff_a: FloatArray
    eff_b: FloatArray
    eff_c: FloatArray
    npshr_a: FloatArray
    npshr_b: FloatArray
    npshr_c: FloatArray
    suction_area_m2: FloatArray
    bep_flow_m3s: FloatArray
    rated_rpm: FloatArray
    motor_efficiency: FloatArray
    rated_current_a: FloatArray
    density_kg_m3: float
    pressure_head_m: float


def pump_physics(registry: Registry, network: Network) -> PumpPhysics:
    """Rated curves of every registry pump from its network pump (NaN where a curve is missing).

    Args:
        registry: The fleet's registry (pumps name their network pump in ``pump_id``).
        network: The network the fleet copies.
    """
    from pumptwin.twin.hydraulic.metrics import pump_assets  # noqa: PLC0415
    from pumptwin.twin.hydraulic.pumps import fit_head_curve  # noqa: PLC0415
    from pumptwin.twin.hydraulic.solver import compile_network  # noqa: PLC0415 - keeps module import light

    assets = pump_assets(compile_network(network))
    index = {p.id: i for i, p in enumerate(network.pumps)}
    nan = float("nan")
    rows: list[tuple[float, ...]] = []
    for spec in registry.pumps:
        i = index.get(spec.pump_id)
        h0 = r = n = ea = eb = ec = na = nb = nc = area = nan
        if i is not None:
            pump = network.pumps[i]
            if pump.head_curve is not None:
                hc = fit_head_curve(network.curve(pump.head_curve).points, pump.head_curve)
                h0, r, n = hc.h0_m, hc.r, hc.n
            eff = assets.efficiency[i]
            if eff is not None:
                ea, eb, ec = eff.a, eff.b, eff.c
            npshr = assets.npshr[i]
            if npshr is not None:
                na, nb, nc = npshr.a_m, npshr.b, npshr.c
            area = math.pi * float(assets.suction_diameter_m[i]) ** 2 / 4.0
        rows.append((h0, r, n, ea, eb, ec, na, nb, nc, area))
    cols = np.array(rows, dtype=np.float64).reshape(len(registry.pumps), 10).T
    stations = tuple(s.name for s in registry.stations)
    station_index = {s: k for k, s in enumerate(stations)}
    rho = network.fluid.density_kg_m3
    return PumpPhysics(
        names=tuple(p.name for p in registry.pumps),
        station=np.array([station_index.get(p.station, -1) for p in registry.pumps], dtype=np.int64),
        stations=stations,
        h0_m=cols[0],
        r=cols[1],
        n=cols[2],
        eff_a=cols[3],
        eff_b=cols[4],
        eff_c=cols[5],
        npshr_a=cols[6],
        npshr_b=cols[7],
        npshr_c=cols[8],
        suction_area_m2=cols[9],
        bep_flow_m3s=np.array([p.bep_flow_m3s for p in registry.pumps], dtype=np.float64),
        rated_rpm=np.array([p.rated_speed_rpm for p in registry.pumps], dtype=np.float64),
        motor_efficiency=np.array([p.motor_efficiency for p in registry.pumps], dtype=np.float64),
        rated_current_a=np.array([p.motor_rated_current_a for p in registry.pumps], dtype=np.float64),
        density_kg_m3=rho,
        pressure_head_m=(network.atmospheric_pressure_pa - network.fluid.vapour_pressure_pa) / (rho * G_M_S2),
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


# --------------------------------------------------------------------------------------------
# Physics residuals on interval means
# --------------------------------------------------------------------------------------------


def _col(a: FloatArray) -> FloatArray:
    return a[:, None]


def physics_residuals(
    means: Mapping[str, FloatArray], running: FloatArray, ambient_c: FloatArray, ph: PumpPhysics
) -> dict[str, FloatArray]:
    """Residuals of interval means against the rated curves; NaN where the pump is not running.

    Args:
        means: Interval means (pumps, bins) by measure (``FLOW`` m3/h, ``SPEED`` rpm, pressures
            bar g, ``MOTOR_POWER`` kW, ``MOTOR_CURRENT`` A, temperatures degC, vibration mm/s).
        running: (pumps, bins) fraction of the interval running (NaN unknown).
        ambient_c: (pumps, bins) station ambient temperature, degC.
        ph: Pump physics from `pump_physics`.

    Returns:
        Every column of `RESIDUAL_COLUMNS` except the vibration ratios, (pumps, bins) float64.
    """
    rho_g = ph.density_kg_m3 * G_M_S2
    q = means["FLOW"] / _M3H_PER_M3S
    s = means["SPEED"] / _col(ph.rated_rpm)
    on = (np.nan_to_num(running, nan=0.0) >= RUNNING_RESIDUAL_FRACTION) & (s > MIN_SPEED) & (q > 0)
    out: dict[str, FloatArray] = {}
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        s_ok = np.where(on, s, np.nan)
        q_ok = np.where(on, q, np.nan)
        head = (means["DISCH_PRESS"] - means["SUCT_PRESS"]) * _PA_PER_BAR / rho_g
        rated = s_ok**2 * _col(ph.h0_m) - _col(ph.r) * s_ok ** (2.0 - _col(ph.n)) * q_ok ** _col(ph.n)
        x = q_ok / s_ok
        eta = x * (_col(ph.eff_a) + _col(ph.eff_b) * x + _col(ph.eff_c) * x * x)
        eta = np.where(np.isnan(_col(ph.eff_a)), DEFAULT_EFFICIENCY, np.clip(eta, 0.01, 1.0))
        expected_w = rho_g * q_ok * rated / eta / _col(ph.motor_efficiency)
        power_w = means["MOTOR_POWER"] * 1e3
        ratio = q_ok / (s_ok * _col(ph.bep_flow_m3s))
        out["percent_bep"] = 100.0 * ratio
        out["head_residual_m"] = head - rated
        out["head_residual_pct"] = 100.0 * (head - rated) / rated
        out["power_residual_kw"] = (power_w - expected_w) / 1e3
        out["power_residual_pct"] = 100.0 * (power_w - expected_w) / expected_w
        out["efficiency_residual"] = rho_g * q_ok * head / (power_w * _col(ph.motor_efficiency)) - eta
        velocity = q_ok / _col(ph.suction_area_m2)
        npsha = means["SUCT_PRESS"] * _PA_PER_BAR / rho_g + ph.pressure_head_m + velocity**2 / (2.0 * G_M_S2)
        npshr = s_ok**2 * np.maximum(_col(ph.npshr_a) + _col(ph.npshr_b) * x + _col(ph.npshr_c) * x * x, 0.0)
        out["npsh_available_m"] = npsha
        out["npsh_margin_m"] = npsha - npshr
        load = s_ok**1.5 * (0.6 + 0.4 * (1.0 + 1.5 * (ratio - 1.0) ** 2))
        out["brg_de_rise_norm_k"] = (means["BRG_DE_TEMP"] - ambient_c) / load
        out["brg_nde_rise_norm_k"] = (means["BRG_NDE_TEMP"] - ambient_c) / load
        current = means["MOTOR_CURRENT"] / _col(ph.rated_current_a)
        out["winding_rise_norm_k"] = (means["MOTOR_WINDING_TEMP"] - ambient_c) / (0.25 + 0.75 * current**2)
    return {k: np.asarray(np.where(on & np.isfinite(v), v, np.nan), dtype=np.float64) for k, v in out.items()}


def _bep_bins(percent_bep: FloatArray) -> IntArray:
    with np.errstate(invalid="ignore"):
        b = np.floor(np.nan_to_num(percent_bep, nan=0.0) / BEP_BIN_PCT)
    return np.asarray(np.clip(b, 0, MAX_BEP_BIN), dtype=np.int64)


def _speed_factor(speed: FloatArray) -> FloatArray:
    with np.errstate(invalid="ignore"):
        return np.asarray(np.where(speed > MIN_SPEED, speed, np.nan) ** VIB_SPEED_EXPONENT, dtype=np.float64)


def vibration_baseline_table(
    vib_mm_s: FloatArray, speed: FloatArray, percent_bep: FloatArray, times_s: FloatArray, baseline_s: float
) -> FloatArray:
    """Expected speed-normalised vibration per pump and %BEP bin, from each pump's reference period.

    Args:
        vib_mm_s: (pumps, bins) interval mean vibration, mm/s.
        speed: (pumps, bins) relative speed.
        percent_bep: (pumps, bins) %BEP, NaN where the pump is not running.
        times_s: (bins,) interval times in s.
        baseline_s: Length of the reference period from each pump's first running interval, s.

    Returns:
        (pumps, `MAX_BEP_BIN` + 1) median of vib / s^1.5 in mm/s per bin; a bin with fewer than
        `MIN_BASELINE_BINS` intervals holds the pump's median over all bins; NaN for a pump
        without reference data.
    """
    n_pumps, n_bins = vib_mm_s.shape
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = vib_mm_s / _speed_factor(speed)
        ok = np.isfinite(norm) & np.isfinite(percent_bep) & (norm > 0)
    bep_bin = _bep_bins(percent_bep)
    first = np.where(ok.any(axis=1), np.argmax(ok, axis=1), n_bins)
    start_s = np.where(first < n_bins, times_s[np.minimum(first, n_bins - 1)], np.inf)
    ref = ok & (times_s[None, :] < (start_s + baseline_s)[:, None])
    pump_idx = np.broadcast_to(np.arange(n_pumps)[:, None], ok.shape)
    frame = pd.DataFrame({"pump": pump_idx[ref], "bin": bep_bin[ref], "norm": norm[ref]})
    per_bin = frame.groupby(["pump", "bin"])["norm"].agg(["median", "size"])
    per_bin = per_bin[per_bin["size"] >= MIN_BASELINE_BINS]
    per_pump = frame.groupby("pump")["norm"].median()
    fallback = np.full(n_pumps, np.nan)
    fallback[per_pump.index.to_numpy(dtype=np.int64)] = per_pump.to_numpy()
    table = np.repeat(fallback[:, None], MAX_BEP_BIN + 1, axis=1)
    if len(per_bin):
        p = per_bin.index.get_level_values("pump").to_numpy(dtype=np.int64)
        b = per_bin.index.get_level_values("bin").to_numpy(dtype=np.int64)
        table[p, b] = per_bin["median"].to_numpy()
    return table


def vibration_baseline_ratio(
    table: FloatArray, vib_mm_s: FloatArray, speed: FloatArray, percent_bep: FloatArray
) -> FloatArray:
    """Vibration over its expected value s^1.5 x table[pump, %BEP bin]; NaN where undefined.

    Args:
        table: From `vibration_baseline_table`, (pumps, `MAX_BEP_BIN` + 1), mm/s.
        vib_mm_s: (pumps, bins) interval mean vibration, mm/s.
        speed: (pumps, bins) relative speed.
        percent_bep: (pumps, bins) %BEP, NaN where the pump is not running.
    """
    factor = _speed_factor(speed)
    expected = np.take_along_axis(table, _bep_bins(percent_bep), axis=1) * factor
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = vib_mm_s / expected
    ok = np.isfinite(percent_bep) & np.isfinite(ratio) & (vib_mm_s > 0)
    return np.asarray(np.where(ok, ratio, np.nan), dtype=np.float64)


BASELINE_COLUMNS = ("pump_id", "bearing", "bep_bin_pct", "vib_norm_mm_s")
"""Columns of a vibration baseline table (`vibration_baseline`)."""


def _baseline_frame(names: tuple[str, ...], tables: Mapping[str, FloatArray]) -> pd.DataFrame:
    parts = []
    for bearing, table in tables.items():
        p, b = np.nonzero(np.isfinite(table))
        parts.append(
            pd.DataFrame(
                {
                    "pump_id": np.asarray(names, dtype=object)[p],
                    "bearing": bearing,
                    "bep_bin_pct": b * BEP_BIN_PCT,
                    "vib_norm_mm_s": table[p, b],
                }
            )
        )
    return pd.concat(parts, ignore_index=True)[list(BASELINE_COLUMNS)]


def _baseline_tables(baseline: pd.DataFrame, names: tuple[str, ...]) -> dict[str, FloatArray]:
    missing = [c for c in BASELINE_COLUMNS if c not in baseline.columns]
    if missing:
        raise FeatureError(f"vibration baseline: missing columns {missing}")
    index = {n: i for i, n in enumerate(names)}
    out = {}
    for bearing in ("de", "nde"):
        table = np.full((len(names), MAX_BEP_BIN + 1), np.nan)
        rows = baseline[(baseline["bearing"] == bearing) & baseline["pump_id"].isin(index)]
        p = rows["pump_id"].map(index).to_numpy(dtype=np.int64)
        b = np.clip(np.round(rows["bep_bin_pct"].to_numpy(dtype=np.float64) / BEP_BIN_PCT), 0, MAX_BEP_BIN)
        table[p, b.astype(np.int64)] = rows["vib_norm_mm_s"].to_numpy(dtype=np.float64)
        out[bearing] = table
    return out


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
