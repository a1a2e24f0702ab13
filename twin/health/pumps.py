"""Pump estimation: wear and efficiency loss from the hydraulics, condition models from the rest.

Each running sample (flow q, speed s, head h) of a pump is inverted for its impeller wear (the
clean head curve at an effective speed s (1 - w)) and, with the motor input inverted for shaft
power, for its efficiency loss; both are random walks in a Kalman filter, each window's median
the measurement. The condition models of `twin.health.condition` are learnt from the same
windows: the vibration baselines by forgetting least squares (gated so a fault is not learnt as
normal), the bearing rise R and its load shape, the winding rise at rated current, the seal leak
line and the strainer loss coefficient. Steady windows (running throughout, speed within
`EstimatorSettings.steady_speed_tol`) feed the temperatures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import pandas as pd

from pumptwin.twin.assets import BAR_PA, M3H_PER_M3S, PumpSpec, Registry, StationSpec
from pumptwin.twin.health.calibration import (
    DAY_S,
    MAD_TO_SD,
    Estimate,
    EstimationError,
    EstimatorSettings,
    PumpEstimate,
    despike,
    kalman_step,
    nanmedian_rows,
    robust_mean,
    tag_column,
    walk_var,
)
from pumptwin.twin.health.condition import (
    BEARING_STIFFNESS,
    DATASHEET_BEARING_RISE_K,
    RlsFit,
    VibrationBaseline,
    bearing_features,
    bearing_load,
    bearing_prior,
    bearing_shape,
    rated_current_a,
    seal_features,
    seal_leak_l_h,
    winding_load,
)
from pumptwin.twin.hydraulic.network import Network, NetworkError
from pumptwin.twin.hydraulic.pumps import (
    EfficiencyCurve,
    HeadCurve,
    NpshrCurve,
    fit_efficiency_curve,
    fit_head_curve,
    fit_npshr_curve,
)
from pumptwin.twin.units import G_M_S2

FloatArray = npt.NDArray[np.float64]

THERMAL_SD_FLOOR_K = 0.2
"""Smallest per-sample standard deviation of a temperature rise, K."""
SEAL_GATE_RATIO = 1.5
"""Windows whose mean seal leak exceeds this x the learnt line (plus `SEAL_GATE_L_H`) do not teach it."""
SEAL_GATE_L_H = 0.5
OUTLIER_MADS = 6.0
"""Samples further than this many scaled MADs from a window's median are spikes."""
OPERATING_POINT_FLOOR = 0.2
"""Speed and flow samples more than 20 % off their window's median (and spread) are spikes to condition models."""
MIN_RUNNING_SPEED = 0.3
"""Smallest relative speed at which a pump counts as running."""
_K_BOUNDS = (0.4, 1.6)


# --------------------------------------------------------------------------------------------
# Rated data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RatedCurves:
    """Clean curves of one pump, from the network."""

    head: HeadCurve
    efficiency: EfficiencyCurve | None
    npshr: NpshrCurve | None


def rated_curves(network: Network, pump_id: str) -> RatedCurves:
    """The clean head, efficiency and NPSHr curves of a network pump.

    Raises:
        EstimationError: No such pump, or a pump without a head curve.
    """
    try:
        pump = network.link(pump_id)
    except NetworkError as exc:
        raise EstimationError(f"pump {pump_id!r}: {exc}") from None
    head_id = getattr(pump, "head_curve", None)
    if head_id is None:
        raise EstimationError(f"pump {pump_id!r}: has no head curve to calibrate against")
    eff_id = getattr(pump, "efficiency_curve", None)
    npshr_id = getattr(pump, "npshr_curve", None)
    return RatedCurves(
        fit_head_curve(network.curve(head_id)),
        fit_efficiency_curve(network.curve(eff_id)) if eff_id else None,
        fit_npshr_curve(network.curve(npshr_id)) if npshr_id else None,
    )


def _head_speed_factor(curve: HeadCurve, q: FloatArray, s: FloatArray, h: FloatArray) -> FloatArray:
    """Factor k with curve.head(q, s k) = h for each sample (vectorised bisection); NaN if out of range."""
    lo = np.full(q.shape, _K_BOUNDS[0])
    hi = np.full(q.shape, _K_BOUNDS[1])

    def head(k: FloatArray) -> FloatArray:
        se = s * k
        return np.asarray(se * se * curve.h0_m - curve.r * se ** (2.0 - curve.n) * q**curve.n, dtype=np.float64)

    ok = (head(lo) <= h) & (head(hi) >= h)
    for _ in range(48):
        mid = 0.5 * (lo + hi)
        above = head(mid) > h
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    return np.where(ok, 0.5 * (lo + hi), np.nan)


def motor_shaft_power_w(electrical_w: npt.ArrayLike, spec: PumpSpec) -> FloatArray:
    """Shaft power in W from motor input power in W, inverting the rated motor loss model.

    Input = P + P_rated c (0.35 + 0.65 (P / P_rated)^2), c = 1 / eta_rated - 1.
    """
    e = np.asarray(electrical_w, dtype=np.float64)
    rated = spec.motor_rated_w
    c = 1.0 / spec.motor_efficiency - 1.0
    a = 0.65 * c / rated
    c0 = 0.35 * rated * c - e
    disc = 1.0 - 4.0 * a * c0
    with np.errstate(invalid="ignore"):
        p = (-1.0 + np.sqrt(np.where(disc >= 0, disc, np.nan))) / (2.0 * a)
    return np.asarray(np.where(p > 0, p, np.nan), dtype=np.float64)


# --------------------------------------------------------------------------------------------
# Windows of one pump
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PumpWindow:
    """Per-sample quantities of one pump over a window (arrays of the window's length)."""

    running: npt.NDArray[np.bool_]
    speed: FloatArray
    flow_m3s: FloatArray
    head_m: FloatArray
    electrical_w: FloatArray
    current_a: FloatArray
    vib_de: FloatArray
    vib_nde: FloatArray
    brg_de_c: FloatArray
    brg_nde_c: FloatArray
    winding_c: FloatArray
    ambient_c: FloatArray
    suction_pa: FloatArray
    seal_l_h: FloatArray
    strainer_pa: FloatArray


def station_pressures(
    wide: pd.DataFrame, registry: Registry, station: StationSpec
) -> tuple[FloatArray, FloatArray, dict[str, npt.NDArray[np.bool_]]]:
    """Suction (before the strainer) and discharge header pressures in Pa, each the median of its instruments."""
    n = len(wide)
    suction: list[FloatArray] = []
    discharge: list[FloatArray] = []
    running: dict[str, npt.NDArray[np.bool_]] = {}
    for asset in station.assets:
        base = f"{station.name}.{asset}"
        spec = registry.pumps[registry.pump_index(base)]
        status = tag_column(wide, f"{base}.STATUS")
        speed = tag_column(wide, f"{base}.SPEED") / spec.rated_speed_rpm
        flow = tag_column(wide, f"{base}.FLOW")
        on = (status >= 0.5) & (speed >= MIN_RUNNING_SPEED) & (flow > 0)  # noqa: PLR2004 - status is 0 or 1
        running[base] = on
        strainer = tag_column(wide, f"{base}.STRAINER_DP")
        strainer = np.where(
            np.isfinite(strainer), strainer, np.nanmedian(strainer) if np.isfinite(strainer).any() else 0.0
        )
        suction.append(np.where(on, tag_column(wide, f"{base}.SUCT_PRESS") + strainer, np.nan) * BAR_PA)
        discharge.append(np.where(on, tag_column(wide, f"{base}.DISCH_PRESS"), np.nan) * BAR_PA)
    for meter in registry.meters:
        if meter.line != station.line or meter.measure != "PRESS":
            continue
        if meter.element == station.suction_node:
            suction.append(tag_column(wide, meter.tag) * BAR_PA)
        elif meter.element == station.discharge_node:
            discharge.append(tag_column(wide, meter.tag) * BAR_PA)
    return nanmedian_rows(suction, n), nanmedian_rows(discharge, n), running


def pump_window(
    wide: pd.DataFrame,
    spec: PumpSpec,
    running: npt.NDArray[np.bool_],
    suction_header_pa: FloatArray,
    discharge_header_pa: FloatArray,
    rho_g: float,
) -> PumpWindow:
    """The pump's samples of a window, with its head from the station's header pressures."""
    base = spec.name
    speed = tag_column(wide, f"{base}.SPEED") / spec.rated_speed_rpm
    ambient = tag_column(wide, f"{spec.station}.SITE.AMBIENT_TEMP")
    if np.isfinite(ambient).any():
        ambient = pd.Series(ambient).interpolate(limit_direction="both").to_numpy(dtype=np.float64)
    return PumpWindow(
        running=running,
        speed=speed,
        flow_m3s=tag_column(wide, f"{base}.FLOW") / M3H_PER_M3S,
        head_m=(discharge_header_pa - suction_header_pa) / rho_g,
        electrical_w=tag_column(wide, f"{base}.MOTOR_POWER") * 1e3,
        current_a=tag_column(wide, f"{base}.MOTOR_CURRENT"),
        vib_de=tag_column(wide, f"{base}.VIB_DE_RMS"),
        vib_nde=tag_column(wide, f"{base}.VIB_NDE_RMS"),
        brg_de_c=tag_column(wide, f"{base}.BRG_DE_TEMP"),
        brg_nde_c=tag_column(wide, f"{base}.BRG_NDE_TEMP"),
        winding_c=tag_column(wide, f"{base}.MOTOR_WINDING_TEMP"),
        ambient_c=ambient,
        suction_pa=tag_column(wide, f"{base}.SUCT_PRESS") * BAR_PA,
        seal_l_h=tag_column(wide, f"{base}.SEAL_LEAK"),
        strainer_pa=tag_column(wide, f"{base}.STRAINER_DP") * BAR_PA,
    )


# --------------------------------------------------------------------------------------------
# Condition models
# --------------------------------------------------------------------------------------------


def without_outliers(x: FloatArray, k: float = OUTLIER_MADS, floor: float = 1.0) -> FloatArray:
    """``x`` with NaN where negative or further off the median than ``k`` scaled MADs and ``floor`` x the median."""
    v = np.where(np.isfinite(x) & (x >= 0), x, np.nan)
    if not np.isfinite(v).any():
        return v
    med = float(np.nanmedian(v))
    spread = max(k * MAD_TO_SD * float(np.nanmedian(np.abs(v - med))), floor * abs(med))
    return np.where(np.abs(v - med) <= spread, v, np.nan)


def _forget(dt_s: float, memory_s: float) -> float:
    return math.exp(-max(dt_s, 0.0) / memory_s)


def update_vibration(
    prev: VibrationBaseline,
    speed: FloatArray,
    ratio: FloatArray,
    vib: FloatArray,
    dt_s: float,
    settings: EstimatorSettings,
) -> tuple[VibrationBaseline, float, float]:
    """Fold a window into a baseline; return (baseline, mean RMS mm/s, excess mm/s).

    Spikes are removed first (`without_outliers`), since one squared spike would outweigh a day of
    samples. Once established (`EstimatorSettings.vib_min_samples`), a window whose mean RMS
    exceeds `EstimatorSettings.vib_gate_ratio` x the baseline at the same points does not update it.
    """
    vib = without_outliers(vib)
    ok = np.isfinite(speed) & np.isfinite(ratio) & np.isfinite(vib) & (vib >= 0)
    if not ok.any():
        return prev, math.nan, math.nan
    s, r, v = speed[ok], ratio[ok], vib[ok]
    mean_v = float(np.mean(v))
    excess = math.nan
    established = prev.weight >= settings.vib_min_samples
    if established:
        base = float(np.mean(prev.predict_mm_s(s, r)))
        excess = mean_v - base
        if mean_v > settings.vib_gate_ratio * base:
            return prev, mean_v, excess
    forget = _forget(dt_s, settings.vib_memory_s)
    new = prev.folded(s, r, v, forget)
    resid = v - new.predict_mm_s(s, r)
    noise = float(np.sqrt(np.mean(resid * resid)))
    old = prev.noise_mm_s if math.isfinite(prev.noise_mm_s) else noise
    new = replace(new, noise_mm_s=math.sqrt(forget * old**2 + (1.0 - forget) * noise**2) if established else noise)
    if not established and new.weight >= settings.vib_min_samples:
        excess = mean_v - float(np.mean(new.predict_mm_s(s, r)))
    return new, mean_v, excess


def _track(prev: Estimate, walk: float, z: float, r_var: float) -> Estimate:
    """Kalman step, or the first measurement itself when nothing is known yet."""
    if math.isinf(prev.sd) and math.isfinite(z) and math.isfinite(r_var):
        return Estimate(z, math.sqrt(r_var))
    return kalman_step(prev, walk, z, r_var)


def _follow(est: Estimate, ref: float, dt_s: float, time_s: float, gate: float) -> float:
    """A slow reference: starts at the estimate, then follows it while it is within ``gate`` of the reference."""
    if not math.isfinite(est.value):
        return ref
    if not math.isfinite(ref):
        return est.value
    if abs(est.value / ref - 1.0) < gate:
        return ref + (1.0 - math.exp(-max(dt_s, 0.0) / time_s)) * (est.value - ref)
    return ref


def update_bearing(  # noqa: PLR0913 - one bearing's window and its state
    prev: Estimate,
    ref: float,
    fit: RlsFit,
    rise_k: FloatArray,
    speed: FloatArray,
    ratio: FloatArray,
    steady: bool,
    dt_s: float,
    settings: EstimatorSettings,
) -> tuple[Estimate, float, RlsFit]:
    """Fold a steady window into a bearing's rise R, its reference and its load shape.

    R is measured as the median of rise / L(s, r) with the learnt shape (`bearing_shape`); the
    shape's least squares learns only while R is within `EstimatorSettings.thermal_ref_gate` of
    its reference, so a damaged bearing does not reshape its own load.
    """
    rise_prior = next((x for x in (ref, prev.value) if math.isfinite(x) and x > 0), DATASHEET_BEARING_RISE_K)
    shape = bearing_shape(fit, rise_prior)
    z, r_var = math.nan, math.nan
    ok = np.isfinite(rise_k) & np.isfinite(speed) & np.isfinite(ratio)
    if steady and ok.any():
        load = bearing_load(speed[ok], ratio[ok], shape)
        z, r_var, _ = robust_mean(rise_k[ok] / np.where(load > 0, load, np.nan), THERMAL_SD_FLOOR_K)
    est = _track(prev, walk_var(settings.thermal_walk_sd_per_day_k, dt_s), z, r_var)
    healthy = not math.isfinite(ref) or (
        math.isfinite(est.value) and abs(est.value / ref - 1.0) < settings.thermal_ref_gate
    )
    if steady and ok.any() and healthy:
        prior = bearing_prior(est.value if math.isfinite(est.value) else rise_prior, shape)
        fit = fit.folded(
            bearing_features(speed[ok], ratio[ok]),
            rise_k[ok],
            _forget(dt_s, settings.bearing_memory_s),
            prior,
            BEARING_STIFFNESS,
        )
    ref = _follow(est, ref, dt_s, settings.thermal_ref_time_s, settings.thermal_ref_gate)
    return est, ref, fit


def hydraulic_samples(win: PumpWindow) -> npt.NDArray[np.bool_]:
    """Running samples with a speed and flow, less the first and last of a run that starts or stops in the window.

    A sample next to a start or stop catches the pump and the station between two operating
    points; it says nothing of the impeller.
    """
    run = win.running & np.isfinite(win.speed) & np.isfinite(win.flow_m3s)
    on = np.asarray(win.running, dtype=bool)
    before = np.concatenate(([True], on[:-1]))
    after = np.concatenate((on[1:], [True]))
    return np.asarray(run & before & after, dtype=bool)


def head_wear_sample(rated: RatedCurves, win: PumpWindow, sd_floor: float) -> tuple[float, float]:
    """The window's measurement of impeller wear, 1 - k of the head curve (median, its variance; NaN if none)."""
    run = hydraulic_samples(win)
    if not run.any():
        return math.nan, math.nan
    k = _head_speed_factor(rated.head, win.flow_m3s[run], win.speed[run], win.head_m[run])
    z, r_var, _ = robust_mean(1.0 - k, sd_floor)
    return z, r_var


def common_head_loss(innovations: Sequence[float], jump: float) -> list[bool]:
    """Which pumps of a station lost head together: each of two or more reads this much (``jump``) below its wear.

    ``innovations`` are each running pump's window wear measurement minus its estimate (NaN: no
    measurement). Wear is slow and per pump; a sudden loss two pumps share is the station's.
    """
    lost = [math.isfinite(v) and v > jump for v in innovations]
    return lost if sum(lost) >= 2 else [False] * len(lost)  # noqa: PLR2004 - two pumps make a common mode


def thermal_settled(
    on: npt.NDArray[np.bool_],
    times: pd.DatetimeIndex,
    continues: bool,
    continuing_since: pd.Timestamp | None,
    settle_s: float,
) -> tuple[npt.NDArray[np.bool_], pd.Timestamp | None]:
    """Which samples are far enough into their run for temperatures to count, and when the last run began.

    Bearing and winding temperatures lag a start by their thermal time constants; a sample
    counts once its run has lasted ``settle_s``.

    Args:
        on: Running flag per sample.
        times: Sample times (UTC).
        continues: The pump ran to the end of the previous window, so a run at this window's
            start goes on from there.
        continuing_since: When that run began (None: before the twin's first window, long settled).
        settle_s: Settling time after a start, s.

    Returns:
        (settled per sample, start of the run going on at the last sample: None when the pump is
        not running then or the run began before the twin's first window).
    """
    on = np.asarray(on, dtype=bool)
    if not on.any():
        return np.zeros(len(on), dtype=bool), None
    t_s = np.asarray(times.asi8, dtype=np.float64) / 1e9
    begins = on & ~np.concatenate(([False], on[:-1]))
    first = np.flatnonzero(begins)
    start_s = t_s[first]
    carried = bool(on[0] and continues)
    if carried:
        start_s[0] = -math.inf if continuing_since is None else continuing_since.value / 1e9
    run = np.maximum(np.cumsum(begins) - 1, 0)
    settled = on & (t_s - start_s[run] >= settle_s)
    if not on[-1]:
        return settled, None
    if carried and len(first) == 1:
        return settled, continuing_since
    return settled, pd.Timestamp(times[first[-1]])


def update_winding(  # noqa: PLR0913 - the winding's window and its state
    prev: Estimate,
    ref: float,
    rise_k: FloatArray,
    load: FloatArray,
    steady: bool,
    dt_s: float,
    settings: EstimatorSettings,
) -> tuple[Estimate, float]:
    """Fold a steady window into the winding rise at rated current and its slow reference.

    The rise is the median of rise / (I / I_rated)^2; the reference follows it only while it stays
    within the bearings' gate (`EstimatorSettings.thermal_ref_gate`), so lost cooling stands out.
    """
    z, r_var = math.nan, math.nan
    if steady:
        z, r_var, _ = robust_mean(rise_k / np.where(load > 0, load, np.nan), THERMAL_SD_FLOOR_K)
    est = _track(prev, walk_var(settings.winding_walk_sd_per_day_k, dt_s), z, r_var)
    return est, _follow(est, ref, dt_s, settings.thermal_ref_time_s, settings.thermal_ref_gate)


def update_seal(
    prev: RlsFit, suction_bar: FloatArray, leak_l_h: FloatArray, dt_s: float, settings: EstimatorSettings
) -> tuple[RlsFit, float]:
    """Fold a window into the seal leak line; return (fit, mean leak L/h). A leaking window does not teach it."""
    leak_l_h = without_outliers(leak_l_h)
    ok = np.isfinite(suction_bar) & np.isfinite(leak_l_h)
    if not ok.any():
        return prev, math.nan
    p, leak = suction_bar[ok], leak_l_h[ok]
    mean = float(np.mean(leak))
    if prev.weight >= settings.vib_min_samples:
        expected = float(np.mean(seal_leak_l_h(prev, p)))
        if mean > SEAL_GATE_RATIO * max(expected, 0.0) + SEAL_GATE_L_H:
            return prev, mean
    return prev.folded(seal_features(p), leak, _forget(dt_s, settings.seal_memory_s), (0.0, 0.0)), mean


def update_strainer(
    prev: Estimate,
    ref: float,
    dp_pa: FloatArray,
    flow_m3s: FloatArray,
    min_flow_m3s: float,
    dt_s: float,
    settings: EstimatorSettings,
) -> tuple[Estimate, float]:
    """Fold a window into the strainer coefficient k = dP / q^2 (Pa s^2 / m^6) and its clean reference."""
    ok = np.isfinite(dp_pa) & np.isfinite(flow_m3s) & (flow_m3s > min_flow_m3s)
    z, r_var = math.nan, math.nan
    if ok.any():
        k = dp_pa[ok] / flow_m3s[ok] ** 2
        z, r_var, _ = robust_mean(k, 1.0)
    scale = prev.value if math.isfinite(prev.value) else z
    walk = (settings.strainer_walk_per_day * scale) ** 2 * max(dt_s, 0.0) / DAY_S if math.isfinite(scale) else 0.0
    est = _track(prev, walk, z, r_var)
    return est, _follow(est, ref, dt_s, settings.strainer_ref_time_s, settings.thermal_ref_gate)


# --------------------------------------------------------------------------------------------
# One pump
# --------------------------------------------------------------------------------------------


def update_pump(  # noqa: PLR0913 - one pump's window and its context
    prev: PumpEstimate,
    spec: PumpSpec,
    rated: RatedCurves,
    win: PumpWindow,
    network: Network,
    dt_s: float,
    last_running: pd.Timestamp | None,
    settled: npt.NDArray[np.bool_],
    running_since: pd.Timestamp | None,
    settings: EstimatorSettings,
    *,
    head_wear: tuple[float, float],
    station_head_loss: bool = False,
) -> PumpEstimate:
    """Fold one pump's window into its estimate (see the module docstring).

    ``settled`` flags the samples far enough into their run for temperatures to count
    (`thermal_settled`); ``running_since`` is when the run at the window's end began;
    ``head_wear`` is the window's wear measurement (`head_wear_sample`, computed once by the
    caller, which also needs it for `common_head_loss`); ``station_head_loss`` keeps the window
    from wear and efficiency loss.
    """
    rho_g = network.fluid.density_kg_m3 * G_M_S2
    run = win.running & np.isfinite(win.speed) & np.isfinite(win.flow_m3s)
    n_run = int(run.sum())
    frac = n_run / max(len(run), 1)
    s, q = win.speed[run], win.flow_m3s[run]
    # Wear from the head curve.
    z_w, r_w = (math.nan, math.nan) if station_head_loss else head_wear
    wear = kalman_step(prev.impeller_wear, walk_var(settings.wear_walk_sd_per_day, dt_s), z_w, r_w)
    # Efficiency loss from motor power.
    z_l, r_l = math.nan, math.nan
    k_hat = 1.0 - (wear.value if math.isfinite(wear.value) else 0.0)
    hyd = hydraulic_samples(win)
    if rated.efficiency is not None and hyd.any() and not station_head_loss:
        q_h = win.flow_m3s[hyd]
        shaft = motor_shaft_power_w(win.electrical_w[hyd], spec)
        eta_meas = rho_g * q_h * win.head_m[hyd] / shaft
        eta_clean = _eta_at(rated.efficiency, q_h / (win.speed[hyd] * k_hat))
        z_l, r_l, _ = robust_mean(1.0 - eta_meas / eta_clean, settings.sample_sd_floor)
    loss = kalman_step(prev.efficiency_loss, walk_var(settings.loss_walk_sd_per_day, dt_s), z_l, r_l)
    last = last_running if last_running is not None else prev.last_running_ts
    if n_run == 0:
        return replace(
            prev,
            impeller_wear=wear,
            efficiency_loss=loss,
            running_fraction=0.0,
            last_running_ts=last,
            running_since_ts=running_since,
        )
    # Spiking speed or flow readings would put the condition models far outside their history.
    s_c = without_outliers(s, floor=OPERATING_POINT_FLOOR)
    ratio = without_outliers(q, floor=OPERATING_POINT_FLOOR) / (spec.bep_flow_m3s * s_c)
    vib_de, v_de, x_de = update_vibration(prev.vib_de, s_c, ratio, win.vib_de[run], dt_s, settings)
    vib_nde, v_nde, x_nde = update_vibration(prev.vib_nde, s_c, ratio, win.vib_nde[run], dt_s, settings)
    steady = bool(run.all()) and float(np.ptp(s)) <= settings.steady_speed_tol * float(np.mean(s))
    steady = steady and bool(np.asarray(settled, dtype=bool)[run].all())  # temperatures still rising after a start
    amb = win.ambient_c[run]
    th_de, ref_de, fit_de = update_bearing(
        prev.thermal_de,
        prev.thermal_ref_de_k,
        prev.bearing_de,
        win.brg_de_c[run] - amb,
        s_c,
        ratio,
        steady,
        dt_s,
        settings,
    )
    th_nde, ref_nde, fit_nde = update_bearing(
        prev.thermal_nde,
        prev.thermal_ref_nde_k,
        prev.bearing_nde,
        win.brg_nde_c[run] - amb,
        s_c,
        ratio,
        steady,
        dt_s,
        settings,
    )
    winding, winding_ref = update_winding(
        prev.winding,
        prev.winding_ref_k,
        win.winding_c[run] - amb,
        winding_load(win.current_a[run], rated_current_a(spec)),
        steady,
        dt_s,
        settings,
    )
    seal, seal_mean = update_seal(prev.seal, win.suction_pa[run] / BAR_PA, win.seal_l_h[run], dt_s, settings)
    strainer, strainer_ref = update_strainer(
        prev.strainer_k,
        prev.strainer_ref_k,
        win.strainer_pa[run],
        q,
        settings.strainer_min_flow_fraction * spec.bep_flow_m3s,
        dt_s,
        settings,
    )
    npsh = math.nan
    if rated.npshr is not None:
        vap = (network.atmospheric_pressure_pa - network.fluid.vapour_pressure_pa) / rho_g
        npsha = win.suction_pa[run] / rho_g + vap
        margin = despike(npsha - rated.npshr.npshr_m(q / s, 1.0) * s * s)
        if np.isfinite(margin).any():
            npsh = float(np.nanmin(margin))
    return replace(
        prev,
        impeller_wear=wear,
        efficiency_loss=loss,
        vib_de=vib_de,
        vib_nde=vib_nde,
        vib_de_mm_s=v_de,
        vib_nde_mm_s=v_nde,
        vib_excess_de_mm_s=x_de,
        vib_excess_nde_mm_s=x_nde,
        thermal_de=th_de,
        thermal_nde=th_nde,
        thermal_ref_de_k=ref_de,
        thermal_ref_nde_k=ref_nde,
        bearing_de=fit_de,
        bearing_nde=fit_nde,
        winding=winding,
        winding_ref_k=winding_ref,
        seal=seal,
        seal_leak_l_h=seal_mean if math.isfinite(seal_mean) else prev.seal_leak_l_h,
        strainer_k=strainer,
        strainer_ref_k=strainer_ref,
        npsh_margin_m=npsh,
        running_fraction=frac,
        n_samples=prev.n_samples + n_run,
        last_running_ts=last,
        running_since_ts=running_since,
    )


def _eta_at(curve: EfficiencyCurve, homologous_flow_m3s: FloatArray) -> FloatArray:
    """Clean efficiency at rated speed at homologous flows (NaN where it is not positive)."""
    x = np.asarray(homologous_flow_m3s, dtype=np.float64)
    eta = x * (curve.a + curve.b * x + curve.c * x * x)
    return np.asarray(np.where(eta > 0, eta, np.nan), dtype=np.float64)
