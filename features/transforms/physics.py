"""Physics residuals against the rated curves, and each pump's vibration reference per %BEP bin."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pumptwin.features.transforms.schema import (
    _M3H_PER_M3S,
    _PA_PER_BAR,
    BEP_BIN_PCT,
    DEFAULT_EFFICIENCY,
    MAX_BEP_BIN,
    MIN_BASELINE_BINS,
    MIN_SPEED,
    RUNNING_RESIDUAL_FRACTION,
    VIB_SPEED_EXPONENT,
    FeatureError,
    FloatArray,
    IntArray,
)
from pumptwin.twin.assets import Registry
from pumptwin.twin.hydraulic.network import Network
from pumptwin.twin.units import G_M_S2

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
