"""State estimation: calibrate the twin's degradation and line parameters from tag readings.

The twin never sees the plant's hidden state; it sees readings (``tag, ts, value, quality``) and
the rated data of the registry and the network. Every 15 minutes (or any window) the readings
are resampled per tag (`resample_readings`, good-quality finite values only) and
`update_calibration` folds them into the previous `TwinCalibration`:

- **Impeller wear** w is the loss of effective diameter, which by the affinity laws acts as an
  effective speed s (1 - w) on the clean head curve: h = (s k)^2 h0 - r (s k)^(2-n) q^n with
  k = 1 - w. Each running sample (flow q, speed s, head h) is inverted exactly for k. Head is
  (discharge - suction) pressure over rho g; the suction pressure is taken before the strainer
  (pump suction plus its strainer loss), and each header pressure is the median of every
  instrument that sees it (the running pumps' flanges and the line meter), so one drifting
  transmitter does not bias the wear.
- **Efficiency loss** L: the motor's electrical input (rated motor data: losses are 35 % fixed
  and 65 % load-squared at the rated efficiency) is inverted for shaft power; the measured pump
  efficiency rho g q h / P_shaft over the clean curve at the homologous flow q / (s k) gives
  1 - L. These are the `twin.pumps.Degradation` parameters `apply_degradation` understands.
- Both are scalar random walks tracked by a Kalman filter: the window's robust mean (median,
  with a MAD-based standard error) is the measurement; the process noise lets the estimate follow
  progressive wear. With no running data the estimate only grows more uncertain.
- **Vibration baseline** (per bearing): v^2 = a s^4 + b s^2 + c s^4 x(q)^2, with x the
  hydraulic excitation that is least at the BEP (imbalance, misalignment and bearing terms, and
  the hydraulic term), fitted by recursive least squares with exponential forgetting in
  information form. Windows whose vibration exceeds the baseline by more than
  `EstimatorSettings.vib_gate_ratio` do not update it, so a fault is not learnt as normal; the
  excess is the window's mean RMS minus the baseline at the same operating points.
- **Bearing thermal resistance** R (K per unit load) = (bearing - ambient temperature) over the
  friction-heat load factor s^1.5 (0.6 + 0.4 (1 + 1.5 (q/q_BEP - 1)^2)), from windows in which
  the pump ran steadily throughout; a slow, gated reference gives its drift.
- **Lines**: pipe chains between nodes of known head (metered pressures, station headers,
  reservoirs) give segments whose measured head loss H_a - H_b = m F(q) + M(q), with F the
  network's friction loss (Darcy-Weisbach with Swamee-Jain, Hazen-Williams or Manning) and M the
  minor losses at the metered flow; m is the line's friction multiplier, a slow random walk.
  Flow meters of a line without intermediate withdrawals must agree: each meter's bias is its
  median deviation from the meters' consensus in steady windows. Only differences between
  meters are observable, so the biases are re-centred on the median meter (taken as unbiased).
- **Margins**: NPSH margin (NPSHa at the impeller eye from the suction pressure, minus the
  rated NPSHr curve at the flow and speed; the velocity head is left out, which is
  conservative) and MAOP margin (1 - p / MAOP at every metered node).

All numbers are SI (m3/s, m, Pa, W, K) except where a name says otherwise (``_mm_s``).
`calibrated_network` applies the estimates to a copy of the network, so what-ifs run on the
calibrated twin.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt
import pandas as pd

from pumptwin.twin.assets import BAR_PA, M3H_PER_M3S, PumpSpec, Registry, StationSpec
from pumptwin.twin.hydraulic.network import G_EPANET_M_S2, G_M_S2, Junction, Network, NetworkError, Pipe, Tank
from pumptwin.twin.hydraulic.pumps import (
    Degradation,
    EfficiencyCurve,
    HeadCurve,
    NpshrCurve,
    apply_degradation,
    fit_efficiency_curve,
    fit_head_curve,
    fit_npshr_curve,
)

FloatArray = npt.NDArray[np.float64]

DAY_S = 86_400.0
GOOD_QUALITY = "good"
MAD_TO_SD = 1.4826
"""Scale from the median absolute deviation to the standard deviation of a normal sample."""
MEDIAN_EFFICIENCY = 1.2533
"""Standard error of a median over that of a mean, for normal samples (sqrt(pi / 2))."""
HW_EXPONENT = 1.852
THERMAL_SD_FLOOR_K = 0.2
"""Smallest per-sample standard deviation of a thermal resistance, K per unit load."""
_SJ_RE_MIN = 4000.0
_VIB_FEATURES = 3
_MIN_RUNNING_SPEED = 0.3
_K_BOUNDS = (0.4, 1.6)


class EstimationError(ValueError):
    """Readings, a registry or a calibration that cannot be used; the message names the value."""


@dataclass(frozen=True, slots=True)
class EstimatorSettings:
    """Tunable constants of the estimator.

    Attributes:
        period_s: Resampling period of the readings, s.
        wear_prior_sd: Prior standard deviation of impeller wear (-).
        wear_walk_sd_per_day: Random-walk standard deviation of wear per day (-).
        loss_prior_sd: Prior standard deviation of efficiency loss (-).
        loss_walk_sd_per_day: Random-walk standard deviation of efficiency loss per day (-).
        sample_sd_floor: Smallest per-sample standard deviation of wear or loss (-).
        vib_memory_s: Memory of the vibration baseline (forgetting time constant), s.
        vib_gate_ratio: Windows whose RMS exceeds this x the baseline do not update it.
        vib_min_samples: Samples needed before a baseline is reported.
        thermal_prior_sd_k: Prior standard deviation of a thermal resistance, K per unit load.
        thermal_walk_sd_per_day_k: Random walk of a thermal resistance, K per unit load per day.
        thermal_ref_time_s: Time constant of the thermal reference, s.
        thermal_ref_gate: Relative drift above which the reference stops following.
        steady_speed_tol: Relative speed range within a window for it to count as steady.
        friction_prior_sd: Prior standard deviation of a line's friction multiplier (-).
        friction_walk_sd_per_day: Random walk of the friction multiplier per day (-).
        bias_prior_sd_m3s: Prior standard deviation of a flow meter's bias, m3/s.
        bias_walk_sd_per_day_m3s: Random walk of a flow meter's bias per day, m3/s.
        bias_steady_tol: Relative flow range within a window for meter balancing.
        min_line_flow_fraction: Smallest line flow, as a fraction of the BEP flow, for friction.
    """

    period_s: float = 60.0
    wear_prior_sd: float = 0.05
    wear_walk_sd_per_day: float = 0.01
    loss_prior_sd: float = 0.1
    loss_walk_sd_per_day: float = 0.015
    sample_sd_floor: float = 1e-3
    vib_memory_s: float = 3.0 * DAY_S
    vib_gate_ratio: float = 1.25
    vib_min_samples: int = 30
    thermal_prior_sd_k: float = 20.0
    thermal_walk_sd_per_day_k: float = 1.0
    thermal_ref_time_s: float = 14.0 * DAY_S
    thermal_ref_gate: float = 0.1
    steady_speed_tol: float = 0.02
    friction_prior_sd: float = 0.3
    friction_walk_sd_per_day: float = 0.005
    bias_prior_sd_m3s: float = 0.01
    bias_walk_sd_per_day_m3s: float = 2e-4
    bias_steady_tol: float = 0.03
    min_line_flow_fraction: float = 0.2

    def __post_init__(self) -> None:
        """Check every constant is finite and positive."""
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise EstimationError(f"estimator setting {name} must be a finite number > 0, got {value}")


@dataclass(frozen=True, slots=True)
class Estimate:
    """A scalar estimate with its standard deviation (same unit).

    Attributes:
        value: Best estimate (NaN: nothing known yet).
        sd: Standard deviation (>= 0; inf when nothing is known).
    """

    value: float
    sd: float

    def __post_init__(self) -> None:
        """Reject a negative or NaN standard deviation."""
        if math.isnan(self.sd) or self.sd < 0:
            raise EstimationError(f"estimate standard deviation must be >= 0, got {self.sd}")


@dataclass(frozen=True, slots=True)
class VibrationBaseline:
    """Recursive least squares of v^2 on (s^4, s^2, s^4 x^2), in information form.

    Attributes:
        info: Forgotten sum of phi phi^T, row-major (9 values).
        rhs: Forgotten sum of phi v^2 (3 values, (mm/s)^2).
        weight: Forgotten number of samples.
        noise_mm_s: Root mean square residual of the RMS about the baseline, mm/s.
    """

    info: tuple[float, ...] = (0.0,) * (_VIB_FEATURES * _VIB_FEATURES)
    rhs: tuple[float, ...] = (0.0,) * _VIB_FEATURES
    weight: float = 0.0
    noise_mm_s: float = math.nan

    def coefficients(self) -> FloatArray:
        """(a, b, c) in (mm/s)^2 with a tiny ridge so a narrow operating range stays solvable."""
        a = np.asarray(self.info, dtype=np.float64).reshape(_VIB_FEATURES, _VIB_FEATURES)
        ridge = 1e-6 * max(float(np.trace(a)), 1e-12)
        return np.asarray(np.linalg.solve(a + ridge * np.eye(_VIB_FEATURES), np.asarray(self.rhs)), dtype=np.float64)

    def predict_mm_s(self, speed: FloatArray, flow_ratio: FloatArray) -> FloatArray:
        """Baseline RMS in mm/s at relative speeds and flow ratios (q / q_BEP at speed)."""
        v2 = _vib_features(speed, flow_ratio) @ self.coefficients()
        return np.asarray(np.sqrt(np.maximum(v2, 0.0)), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class PumpEstimate:
    """Calibrated state of one pump.

    Attributes:
        pump: ``STATION.ASSET``.
        pump_id: Pump link id in the network.
        line: Line number, 1-based.
        impeller_wear: Loss of effective impeller diameter (-).
        efficiency_loss: Efficiency lost, efficiency x (1 - loss) (-).
        vib_de, vib_nde: Vibration baselines.
        vib_de_mm_s, vib_nde_mm_s: Mean RMS of the last window with running data, mm/s.
        vib_excess_de_mm_s, vib_excess_nde_mm_s: That RMS minus the baseline, mm/s (NaN: no baseline).
        thermal_de, thermal_nde: Bearing thermal resistance, K per unit load.
        thermal_ref_de_k, thermal_ref_nde_k: Slow reference of the thermal resistance, K per unit load.
        npsh_margin_m: Smallest NPSHa - NPSHr of the last window with running data, m.
        running_fraction: Share of the last window the pump ran.
        n_samples: Running samples used so far.
        last_running_ts: Last time the pump was seen running.
    """

    pump: str
    pump_id: str
    line: int
    impeller_wear: Estimate
    efficiency_loss: Estimate
    vib_de: VibrationBaseline = field(default_factory=VibrationBaseline)
    vib_nde: VibrationBaseline = field(default_factory=VibrationBaseline)
    vib_de_mm_s: float = math.nan
    vib_nde_mm_s: float = math.nan
    vib_excess_de_mm_s: float = math.nan
    vib_excess_nde_mm_s: float = math.nan
    thermal_de: Estimate = Estimate(math.nan, math.inf)
    thermal_nde: Estimate = Estimate(math.nan, math.inf)
    thermal_ref_de_k: float = math.nan
    thermal_ref_nde_k: float = math.nan
    npsh_margin_m: float = math.nan
    running_fraction: float = 0.0
    n_samples: int = 0
    last_running_ts: pd.Timestamp | None = None

    def degradation(self) -> Degradation:
        """The estimate as `twin.pumps.Degradation`, clipped to its valid ranges."""
        return Degradation(
            impeller_wear=float(np.clip(self.impeller_wear.value, 0.0, 0.5)),
            efficiency_loss=float(np.clip(self.efficiency_loss.value, 0.0, 0.5)),
        )

    @property
    def thermal_drift_de(self) -> float:
        """Relative rise of the DE thermal resistance over its reference (-); NaN if unknown."""
        return _drift(self.thermal_de.value, self.thermal_ref_de_k)

    @property
    def thermal_drift_nde(self) -> float:
        """Relative rise of the NDE thermal resistance over its reference (-); NaN if unknown."""
        return _drift(self.thermal_nde.value, self.thermal_ref_nde_k)


@dataclass(frozen=True, slots=True)
class LineEstimate:
    """Calibrated state of one line.

    Attributes:
        line: Line number, 1-based.
        friction_multiplier: Multiplier on the network's friction loss (-).
        meter_bias_m3s: Flow meter bias (reading minus truth) by tag, m3/s.
        flow_m3s: Mean line flow of the last window, m3/s (NaN: unknown).
        maop_margin: Smallest 1 - p / MAOP over metered nodes in the last window (-).
        maop_element: Node where that margin occurs.
        segments: Pipe chains used for friction, as ``node_a>node_b``.
    """

    line: int
    friction_multiplier: Estimate
    meter_bias_m3s: Mapping[str, Estimate] = field(default_factory=dict)
    flow_m3s: float = math.nan
    maop_margin: float = math.nan
    maop_element: str = ""
    segments: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TwinCalibration:
    """Everything the estimator knows at ``ts``.

    Attributes:
        ts: End of the last window folded in (UTC); None before any data.
        pumps: Pump estimates by ``STATION.ASSET``.
        lines: Line estimates by line number.
        n_updates: Windows folded in.
    """

    ts: pd.Timestamp | None
    pumps: Mapping[str, PumpEstimate]
    lines: Mapping[int, LineEstimate]
    n_updates: int = 0

    def pump(self, name: str) -> PumpEstimate:
        """Estimate of the pump ``STATION.ASSET``.

        Raises:
            EstimationError: No such pump.
        """
        try:
            return self.pumps[name]
        except KeyError:
            raise EstimationError(f"pump {name!r} is not in the calibration") from None

    def degradations(self, line: int | None = None) -> dict[str, Degradation]:
        """`Degradation` by network pump id, for the pumps of ``line`` (all lines if None)."""
        return {p.pump_id: p.degradation() for p in self.pumps.values() if line is None or p.line == line}


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _drift(value: float, ref: float) -> float:
    if not (math.isfinite(value) and math.isfinite(ref) and ref > 0):
        return math.nan
    return value / ref - 1.0


def _kalman(prior: Estimate, walk_var: float, z: float, r_var: float) -> Estimate:
    """Random-walk Kalman step: inflate the variance by ``walk_var``, then fold in ``z`` (variance ``r_var``)."""
    p = prior.sd**2 + walk_var
    if not (math.isfinite(z) and math.isfinite(r_var) and r_var > 0):
        return Estimate(prior.value, math.sqrt(p))
    if not math.isfinite(prior.value) or not math.isfinite(p):
        return Estimate(z, math.sqrt(r_var))
    gain = p / (p + r_var)
    return Estimate(prior.value + gain * (z - prior.value), math.sqrt((1.0 - gain) * p))


def _robust_mean(x: FloatArray, sd_floor: float) -> tuple[float, float, int]:
    """(median, variance of the median, n) of the finite values; NaNs when there are none."""
    v = x[np.isfinite(x)]
    if v.size == 0:
        return math.nan, math.nan, 0
    med = float(np.median(v))
    sd = max(MAD_TO_SD * float(np.median(np.abs(v - med))), sd_floor)
    return med, (MEDIAN_EFFICIENCY * sd) ** 2 / v.size, int(v.size)


def _walk(sd_per_day: float, dt_s: float) -> float:
    return sd_per_day**2 * max(dt_s, 0.0) / DAY_S


def _nanmedian_rows(columns: Sequence[FloatArray], n: int) -> FloatArray:
    """Row-wise median over the finite values of several columns (NaN where none)."""
    if not columns:
        return np.full(n, np.nan)
    stack = np.column_stack(columns)
    out = np.full(n, np.nan)
    ok = np.isfinite(stack).any(axis=1)
    if ok.any():
        out[ok] = np.nanmedian(stack[ok], axis=1)
    return out


# --------------------------------------------------------------------------------------------
# Readings
# --------------------------------------------------------------------------------------------


def resample_readings(readings: pd.DataFrame, period_s: float = 60.0) -> pd.DataFrame:
    """Good-quality readings as a wide table: index = period start (UTC), columns = tags, mean values.

    Args:
        readings: Long table ``tag, ts, value, quality`` (``quality`` optional: all good).
        period_s: Resampling period in s (> 0).

    Returns:
        One row per period with any reading, one column per tag; NaN where a tag has no good value.

    Raises:
        EstimationError: A missing column or a bad period.
    """
    missing = {"tag", "ts", "value"} - set(readings.columns)
    if missing:
        raise EstimationError(f"readings lack columns {sorted(missing)}")
    if not (math.isfinite(period_s) and period_s > 0):
        raise EstimationError(f"resampling period must be > 0 s, got {period_s}")
    df = readings
    if "quality" in df.columns:
        df = df[df["quality"].astype(str) == GOOD_QUALITY]
    values = pd.to_numeric(df["value"], errors="coerce")
    df = df.assign(value=values)[np.isfinite(values.to_numpy(dtype=np.float64))]
    if df.empty:
        return pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC"))
    ts = pd.to_datetime(df["ts"], utc=True).dt.floor(pd.Timedelta(seconds=period_s))
    wide = df.assign(ts=ts).pivot_table(index="ts", columns="tag", values="value", aggfunc="mean")
    wide.columns.name = None
    return wide.sort_index()


def _despike(x: FloatArray) -> FloatArray:
    """Centred running median of three, so single spikes do not set a window's extreme."""
    if x.size < 3:  # noqa: PLR2004 - the filter's width
        return x
    return np.asarray(pd.Series(x).rolling(3, center=True, min_periods=1).median().to_numpy(), dtype=np.float64)


def _col(wide: pd.DataFrame, tag: str) -> FloatArray:
    if tag in wide.columns:
        return np.asarray(wide[tag].to_numpy(dtype=np.float64), dtype=np.float64)
    return np.full(len(wide), np.nan)


# --------------------------------------------------------------------------------------------
# Rated data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Rated:
    """Clean curves of one pump, from the network."""

    head: HeadCurve
    efficiency: EfficiencyCurve | None
    npshr: NpshrCurve | None


def _rated(network: Network, pump_id: str) -> _Rated:
    try:
        pump = network.link(pump_id)
    except NetworkError as exc:
        raise EstimationError(f"pump {pump_id!r}: {exc}") from None
    head_id = getattr(pump, "head_curve", None)
    if head_id is None:
        raise EstimationError(f"pump {pump_id!r}: has no head curve to calibrate against")
    eff_id = getattr(pump, "efficiency_curve", None)
    npshr_id = getattr(pump, "npshr_curve", None)
    return _Rated(
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


def hydraulic_excitation(flow_ratio: npt.ArrayLike) -> FloatArray:
    """Hydraulic vibration shape x^2 / (1 + x^2 / 6) (7 / 6), x = (q / q_BEP - 1) / 0.3; 0 at the BEP."""
    x = (np.asarray(flow_ratio, dtype=np.float64) - 1.0) / 0.3
    return np.asarray(x * x / (1.0 + x * x / 6.0) * (7.0 / 6.0), dtype=np.float64)


def bearing_load_factor(speed: npt.ArrayLike, flow_ratio: npt.ArrayLike) -> FloatArray:
    """Friction-heat load of a bearing relative to rated speed at the BEP: s^1.5 (0.6 + 0.4 (1 + 1.5 (r - 1)^2))."""
    s = np.maximum(np.asarray(speed, dtype=np.float64), 0.0)
    r = np.asarray(flow_ratio, dtype=np.float64)
    return np.asarray(s**1.5 * (0.6 + 0.4 * (1.0 + 1.5 * (r - 1.0) ** 2)), dtype=np.float64)


def _vib_features(speed: FloatArray, flow_ratio: FloatArray) -> FloatArray:
    s2 = np.asarray(speed, dtype=np.float64) ** 2
    x = hydraulic_excitation(flow_ratio)
    return np.column_stack([s2 * s2, s2, s2 * s2 * x * x])


# --------------------------------------------------------------------------------------------
# Pumps
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _PumpWindow:
    """Per-sample quantities of one pump over a window (arrays of the window's length)."""

    running: npt.NDArray[np.bool_]
    speed: FloatArray
    flow_m3s: FloatArray
    head_m: FloatArray
    electrical_w: FloatArray
    vib_de: FloatArray
    vib_nde: FloatArray
    brg_de_c: FloatArray
    brg_nde_c: FloatArray
    ambient_c: FloatArray
    suction_pa: FloatArray


def _station_pressures(
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
        status = _col(wide, f"{base}.STATUS")
        speed = _col(wide, f"{base}.SPEED") / spec.rated_speed_rpm
        flow = _col(wide, f"{base}.FLOW")
        on = (status >= 0.5) & (speed >= _MIN_RUNNING_SPEED) & (flow > 0)  # noqa: PLR2004 - status is 0 or 1
        running[base] = on
        strainer = _col(wide, f"{base}.STRAINER_DP")
        strainer = np.where(
            np.isfinite(strainer), strainer, np.nanmedian(strainer) if np.isfinite(strainer).any() else 0.0
        )
        suction.append(np.where(on, _col(wide, f"{base}.SUCT_PRESS") + strainer, np.nan) * BAR_PA)
        discharge.append(np.where(on, _col(wide, f"{base}.DISCH_PRESS"), np.nan) * BAR_PA)
    for meter in registry.meters:
        if meter.line != station.line or meter.measure != "PRESS":
            continue
        if meter.element == station.suction_node:
            suction.append(_col(wide, meter.tag) * BAR_PA)
        elif meter.element == station.discharge_node:
            discharge.append(_col(wide, meter.tag) * BAR_PA)
    return _nanmedian_rows(suction, n), _nanmedian_rows(discharge, n), running


def _pump_window(
    wide: pd.DataFrame,
    spec: PumpSpec,
    running: npt.NDArray[np.bool_],
    suction_header_pa: FloatArray,
    discharge_header_pa: FloatArray,
    rho_g: float,
) -> _PumpWindow:
    base = spec.name
    speed = _col(wide, f"{base}.SPEED") / spec.rated_speed_rpm
    ambient = _col(wide, f"{spec.station}.SITE.AMBIENT_TEMP")
    if np.isfinite(ambient).any():
        ambient = pd.Series(ambient).interpolate(limit_direction="both").to_numpy(dtype=np.float64)
    return _PumpWindow(
        running=running,
        speed=speed,
        flow_m3s=_col(wide, f"{base}.FLOW") / M3H_PER_M3S,
        head_m=(discharge_header_pa - suction_header_pa) / rho_g,
        electrical_w=_col(wide, f"{base}.MOTOR_POWER") * 1e3,
        vib_de=_col(wide, f"{base}.VIB_DE_RMS"),
        vib_nde=_col(wide, f"{base}.VIB_NDE_RMS"),
        brg_de_c=_col(wide, f"{base}.BRG_DE_TEMP"),
        brg_nde_c=_col(wide, f"{base}.BRG_NDE_TEMP"),
        ambient_c=ambient,
        suction_pa=_col(wide, f"{base}.SUCT_PRESS") * BAR_PA,
    )


def _update_vibration(
    prev: VibrationBaseline,
    speed: FloatArray,
    ratio: FloatArray,
    vib: FloatArray,
    dt_s: float,
    settings: EstimatorSettings,
) -> tuple[VibrationBaseline, float, float]:
    """Fold a window into a baseline; return (baseline, mean RMS mm/s, excess mm/s)."""
    ok = np.isfinite(speed) & np.isfinite(ratio) & np.isfinite(vib)
    if not ok.any():
        return prev, math.nan, math.nan
    s, r, v = speed[ok], ratio[ok], vib[ok]
    mean_v = float(np.mean(v))
    excess = math.nan
    established = prev.weight >= settings.vib_min_samples
    if established:
        base = prev.predict_mm_s(s, r)
        excess = mean_v - float(np.mean(base))
        if mean_v > settings.vib_gate_ratio * float(np.mean(base)):
            return prev, mean_v, excess
    phi = _vib_features(s, r)
    forget = math.exp(-max(dt_s, 0.0) / settings.vib_memory_s)
    info = forget * np.asarray(prev.info).reshape(_VIB_FEATURES, _VIB_FEATURES) + phi.T @ phi
    rhs = forget * np.asarray(prev.rhs) + phi.T @ (v * v)
    new = VibrationBaseline(
        tuple(float(x) for x in info.ravel()), tuple(float(x) for x in rhs), forget * prev.weight + v.size
    )
    resid = v - new.predict_mm_s(s, r)
    noise = float(np.sqrt(np.mean(resid * resid)))
    old = prev.noise_mm_s if math.isfinite(prev.noise_mm_s) else noise
    new = replace(new, noise_mm_s=math.sqrt(forget * old**2 + (1.0 - forget) * noise**2) if established else noise)
    if not established and new.weight >= settings.vib_min_samples:
        excess = mean_v - float(np.mean(new.predict_mm_s(s, r)))
    return new, mean_v, excess


def _update_thermal(
    prev: Estimate,
    ref: float,
    rise_k: FloatArray,
    load: FloatArray,
    steady: bool,
    dt_s: float,
    settings: EstimatorSettings,
) -> tuple[Estimate, float]:
    """Fold a window's thermal resistance into the estimate and its reference."""
    walk = _walk(settings.thermal_walk_sd_per_day_k, dt_s)
    z, r_var = math.nan, math.nan
    if steady:
        z, r_var, _ = _robust_mean(rise_k / np.where(load > 0, load, np.nan), THERMAL_SD_FLOOR_K)
    first = math.isinf(prev.sd) and math.isfinite(z)
    est = Estimate(z, math.sqrt(r_var)) if first else _kalman(prev, walk, z, r_var)
    if not math.isfinite(est.value):
        return est, ref
    if not math.isfinite(ref):
        return est, est.value
    if abs(est.value / ref - 1.0) < settings.thermal_ref_gate:
        a = 1.0 - math.exp(-max(dt_s, 0.0) / settings.thermal_ref_time_s)
        ref = ref + a * (est.value - ref)
    return est, ref


def _update_pump(  # noqa: PLR0913 - one pump's window and its context
    prev: PumpEstimate,
    spec: PumpSpec,
    rated: _Rated,
    win: _PumpWindow,
    network: Network,
    dt_s: float,
    last_running: pd.Timestamp | None,
    settings: EstimatorSettings,
) -> PumpEstimate:
    rho_g = network.fluid.density_kg_m3 * G_M_S2
    run = win.running & np.isfinite(win.speed) & np.isfinite(win.flow_m3s)
    n_run = int(run.sum())
    frac = n_run / max(len(run), 1)
    s, q = win.speed[run], win.flow_m3s[run]
    # Wear from the head curve.
    k = _head_speed_factor(rated.head, q, s, win.head_m[run]) if n_run else np.zeros(0)
    z_w, r_w, _ = _robust_mean(1.0 - k, settings.sample_sd_floor)
    wear = _kalman(prev.impeller_wear, _walk(settings.wear_walk_sd_per_day, dt_s), z_w, r_w)
    # Efficiency loss from motor power.
    z_l, r_l = math.nan, math.nan
    k_hat = 1.0 - (wear.value if math.isfinite(wear.value) else 0.0)
    if rated.efficiency is not None and n_run:
        shaft = motor_shaft_power_w(win.electrical_w[run], spec)
        eta_meas = rho_g * q * win.head_m[run] / shaft
        eta_clean = _eta_at(rated.efficiency, q / (s * k_hat))
        z_l, r_l, _ = _robust_mean(1.0 - eta_meas / eta_clean, settings.sample_sd_floor)
    loss = _kalman(prev.efficiency_loss, _walk(settings.loss_walk_sd_per_day, dt_s), z_l, r_l)
    if n_run == 0:
        return replace(
            prev,
            impeller_wear=wear,
            efficiency_loss=loss,
            running_fraction=0.0,
            last_running_ts=last_running if last_running is not None else prev.last_running_ts,
        )
    ratio = q / (spec.bep_flow_m3s * s)
    vib_de, v_de, x_de = _update_vibration(prev.vib_de, s, ratio, win.vib_de[run], dt_s, settings)
    vib_nde, v_nde, x_nde = _update_vibration(prev.vib_nde, s, ratio, win.vib_nde[run], dt_s, settings)
    steady = bool(run.all()) and float(np.ptp(s)) <= settings.steady_speed_tol * float(np.mean(s))
    load = bearing_load_factor(s, ratio)
    th_de, ref_de = _update_thermal(
        prev.thermal_de, prev.thermal_ref_de_k, win.brg_de_c[run] - win.ambient_c[run], load, steady, dt_s, settings
    )
    th_nde, ref_nde = _update_thermal(
        prev.thermal_nde, prev.thermal_ref_nde_k, win.brg_nde_c[run] - win.ambient_c[run], load, steady, dt_s, settings
    )
    npsh = math.nan
    if rated.npshr is not None:
        vap = (network.atmospheric_pressure_pa - network.fluid.vapour_pressure_pa) / rho_g
        npsha = win.suction_pa[run] / rho_g + vap
        margin = _despike(npsha - rated.npshr.npshr_m(q / s, 1.0) * s * s)
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
        npsh_margin_m=npsh,
        running_fraction=frac,
        n_samples=prev.n_samples + n_run,
        last_running_ts=last_running if last_running is not None else prev.last_running_ts,
    )


def _eta_at(curve: EfficiencyCurve, homologous_flow_m3s: FloatArray) -> FloatArray:
    """Clean efficiency at rated speed at homologous flows (NaN where it is not positive)."""
    x = np.asarray(homologous_flow_m3s, dtype=np.float64)
    eta = x * (curve.a + curve.b * x + curve.c * x * x)
    return np.asarray(np.where(eta > 0, eta, np.nan), dtype=np.float64)


# --------------------------------------------------------------------------------------------
# Lines
# --------------------------------------------------------------------------------------------

_FT = 0.3048


@dataclass(frozen=True, slots=True)
class Segment:
    """A chain of pipes between two nodes of known head, with no withdrawal in between.

    Attributes:
        start: Node at one end (node a).
        end: Node at the other end (node b).
        pipes: Pipes in order from ``start``, each with +1 if it points from ``start`` towards ``end``.
    """

    start: str
    end: str
    pipes: tuple[tuple[Pipe, float], ...]

    @property
    def name(self) -> str:
        """``start>end``."""
        return f"{self.start}>{self.end}"


def line_segments(network: Network, known_nodes: Sequence[str]) -> tuple[Segment, ...]:
    """Pipe chains joining nodes of known head through junctions that only pass flow on.

    A junction passes flow on when it has exactly two pipes, no pump or valve, no demand and no
    emitter. Each chain is listed once.

    Args:
        network: The line's network.
        known_nodes: Nodes whose head is known (metered pressure, station headers, reservoirs).

    Returns:
        The segments, in order of discovery.
    """
    known = set(known_nodes)
    adjacent: dict[str, list[tuple[Pipe, str, float]]] = {}
    for p in network.pipes:
        adjacent.setdefault(p.start, []).append((p, p.end, 1.0))
        adjacent.setdefault(p.end, []).append((p, p.start, -1.0))
    other_links = {n for pump in network.pumps for n in (pump.start, pump.end)}
    other_links |= {n for valve in network.valves for n in (valve.start, valve.end)}

    def passes(node: str) -> bool:
        n = network.node(node)
        return (
            isinstance(n, Junction)
            and node not in other_links
            and len(adjacent.get(node, [])) == 2  # noqa: PLR2004 - a chain node has two pipes
            and n.base_demand_m3s == 0
            and n.emitter_coeff == 0
        )

    seen: set[frozenset[str]] = set()
    out: list[Segment] = []
    for a in known_nodes:
        for pipe, nxt, sign in adjacent.get(a, []):
            chain = [(pipe, sign)]
            node = nxt
            while node not in known and passes(node):
                step = next(x for x in adjacent[node] if x[0].id != chain[-1][0].id)
                chain.append((step[0], step[2]))
                node = step[1]
            if node in known and node != a:
                key = frozenset(p.id for p, _ in chain)
                if key not in seen:
                    seen.add(key)
                    out.append(Segment(a, node, tuple(chain)))
    return tuple(out)


def swamee_jain_friction(reynolds: npt.ArrayLike, relative_roughness: float) -> FloatArray:
    """Darcy friction factor: Swamee-Jain above Re 4000 (as EPANET), 64 / Re below."""
    re = np.maximum(np.asarray(reynolds, dtype=np.float64), 1e-9)
    turbulent = 0.25 / np.log10(relative_roughness / 3.7 + 5.74 / np.maximum(re, _SJ_RE_MIN) ** 0.9) ** 2
    return np.asarray(np.where(re >= _SJ_RE_MIN, turbulent, 64.0 / re), dtype=np.float64)


def pipe_friction_loss_m(network: Network, pipe: Pipe, flow_m3s: npt.ArrayLike) -> FloatArray:
    """Friction head loss in m (sign of the flow) of a pipe at flows in m3/s, by the network's formula.

    Darcy-Weisbach with Swamee-Jain and EPANET's gravity, Hazen-Williams or Chezy-Manning, as the
    hydraulic solver uses them.
    """
    q = np.asarray(flow_m3s, dtype=np.float64)
    aq = np.abs(q)
    d, length = pipe.diameter_m, pipe.length_m
    formula = network.options.headloss
    if formula == "D-W":
        area = math.pi * d * d / 4.0
        re = aq / area * d / network.options.viscosity_m2_s
        f = swamee_jain_friction(re, pipe.roughness / d)
        h = f * length / d * (aq / area) ** 2 / (2.0 * G_EPANET_M_S2)
    elif formula == "H-W":
        r_us = 4.727 * (length / _FT) / pipe.roughness**HW_EXPONENT / (d / _FT) ** 4.871
        h = r_us * _FT ** (1.0 - 3.0 * HW_EXPONENT) * aq**HW_EXPONENT
    else:
        dd = d / _FT
        r_us = (4.0 * pipe.roughness / (1.49 * math.pi * dd * dd)) ** 2 * (dd / 4.0) ** -1.333 * (length / _FT)
        h = r_us * _FT ** (1.0 - 6.0) * aq * aq
    return np.asarray(np.sign(q) * h, dtype=np.float64)


def pipe_minor_loss_m(pipe: Pipe, flow_m3s: npt.ArrayLike) -> FloatArray:
    """Minor head loss K v^2 / (2 g) in m (sign of the flow), with EPANET's gravity."""
    q = np.asarray(flow_m3s, dtype=np.float64)
    area = math.pi * pipe.diameter_m**2 / 4.0
    return np.asarray(np.sign(q) * pipe.minor_loss * (q / area) ** 2 / (2.0 * G_EPANET_M_S2), dtype=np.float64)


def _elevation_m(network: Network, node: str) -> float:
    """Elevation in m of a node where pressure is measured (a reservoir's ground level)."""
    n = network.node(node)
    if isinstance(n, Junction | Tank):
        return n.elevation_m
    return n.ground_m


def _node_maop_pa(network: Network, node: str) -> float:
    n = network.node(node)
    values = [p.maop_pa for p in network.pipes if node in (p.start, p.end) and p.maop_pa is not None]
    if isinstance(n, Junction) and n.maop_pa is not None:
        values.append(n.maop_pa)
    return min(values) if values else math.nan


@dataclass(frozen=True, slots=True)
class _LineData:
    heads_m: dict[str, FloatArray]
    pressures_pa: dict[str, FloatArray]
    flows_m3s: dict[str, FloatArray]
    meter_of_pipe: dict[str, str]


def _update_biases(
    prev: LineEstimate, flows: dict[str, FloatArray], dt_s: float, min_flow_m3s: float, settings: EstimatorSettings
) -> tuple[dict[str, Estimate], float]:
    """Meter biases from their deviations from the consensus in steady windows; also the line flow."""
    walk = _walk(settings.bias_walk_sd_per_day_m3s, dt_s)
    tags = sorted(flows)
    prior = {t: prev.meter_bias_m3s.get(t, Estimate(0.0, settings.bias_prior_sd_m3s)) for t in tags}
    if not tags:
        return {}, math.nan
    raw = np.column_stack([flows[t] for t in tags])
    corrected = raw - np.array([prior[t].value for t in tags])[None, :]
    n_ok = np.isfinite(corrected).sum(axis=1)
    consensus = np.full(raw.shape[0], np.nan)
    rows = n_ok >= 1
    if rows.any():
        consensus[rows] = np.nanmedian(corrected[rows], axis=1)
    line_flow = float(np.nanmean(consensus)) if np.isfinite(consensus).any() else math.nan
    balanced = n_ok >= 3  # noqa: PLR2004 - a median needs three meters to outvote one
    c = consensus[balanced]
    steady = (
        c.size > 0
        and math.isfinite(line_flow)
        and line_flow > min_flow_m3s
        and float(np.ptp(c)) <= settings.bias_steady_tol * abs(line_flow)
    )
    out: dict[str, Estimate] = {}
    for j, t in enumerate(tags):
        z, r = math.nan, math.nan
        if steady:
            z, r, _ = _robust_mean(raw[balanced, j] - c, 1e-4)
        out[t] = _kalman(prior[t], walk, z, r)
    # Only differences between meters are observable: pin the common mode by taking the median meter as unbiased.
    centre = float(np.median([b.value for b in out.values()]))
    return {t: Estimate(b.value - centre, b.sd) for t, b in out.items()}, line_flow


def _friction_window(
    network: Network,
    segments: Sequence[Segment],
    heads: Mapping[str, FloatArray],
    flows: Mapping[str, FloatArray],
    meter_of_pipe: Mapping[str, str],
    min_flow_m3s: float,
) -> tuple[float, float]:
    """Least-squares friction multiplier of a window over all metered segments, and its variance."""
    xs: list[FloatArray] = []
    ys: list[FloatArray] = []
    for seg in segments:
        metered = [(meter_of_pipe[p.id], sign) for p, sign in seg.pipes if p.id in meter_of_pipe]
        if not metered:
            continue
        n = len(heads[seg.start])
        q = _nanmedian_rows([flows[t] * sign for t, sign in metered], n)
        friction = np.zeros(n)
        minor = np.zeros(n)
        for pipe, sign in seg.pipes:
            friction += sign * pipe_friction_loss_m(network, pipe, sign * q)
            minor += sign * pipe_minor_loss_m(pipe, sign * q)
        y = heads[seg.start] - heads[seg.end] - minor
        ok = np.isfinite(y) & np.isfinite(friction) & (np.abs(q) > min_flow_m3s)
        xs.append(friction[ok])
        ys.append(y[ok])
    if not xs:
        return math.nan, math.nan
    x, y = np.concatenate(xs), np.concatenate(ys)
    den = float(x @ x)
    if x.size < 2 or den <= 0:  # noqa: PLR2004 - a variance needs two samples
        return math.nan, math.nan
    z = float(x @ y) / den
    sse = float(np.sum((y - z * x) ** 2))
    return z, max(sse / (x.size - 1), 1e-6) / den


def _maop_margin(network: Network, pressures: Mapping[str, FloatArray]) -> tuple[float, str]:
    """Smallest 1 - p / MAOP over the nodes (despiked maximum pressure) and where it occurs."""
    margin, element = math.nan, ""
    for node, p in pressures.items():
        maop = _node_maop_pa(network, node)
        if math.isfinite(maop) and np.isfinite(p).any():
            m = 1.0 - float(np.nanmax(_despike(p))) / maop
            if not math.isfinite(margin) or m < margin:
                margin, element = m, node
    return margin, element


def _update_line(  # noqa: PLR0913 - one line's window and its context
    prev: LineEstimate,
    registry: Registry,
    network: Network,
    wide: pd.DataFrame,
    header_pa: Mapping[str, FloatArray],
    dt_s: float,
    settings: EstimatorSettings,
) -> LineEstimate:
    line = prev.line
    rho_g = network.fluid.density_kg_m3 * G_M_S2
    pressures: dict[str, FloatArray] = dict(header_pa)
    flows: dict[str, FloatArray] = {}
    meter_of_pipe: dict[str, str] = {}
    for meter in registry.meters:
        if meter.line == line and meter.measure == "PRESS" and meter.element not in pressures:
            pressures[meter.element] = _col(wide, meter.tag) * BAR_PA
        elif meter.line == line and meter.measure == "FLOW":
            flows[meter.tag] = _col(wide, meter.tag) / M3H_PER_M3S
            meter_of_pipe[meter.element] = meter.tag
    bep = min((p.bep_flow_m3s for p in registry.pumps if p.line == line), default=0.0)
    min_flow = settings.min_line_flow_fraction * bep
    biases, line_flow = _update_biases(prev, flows, dt_s, min_flow, settings)
    heads = {node: p / rho_g + _elevation_m(network, node) for node, p in pressures.items()}
    heads.update({r.id: np.full(len(wide), r.head_m) for r in network.reservoirs})
    segments = line_segments(network, [*heads])
    corrected = {t: f - biases[t].value for t, f in flows.items()}
    z, r_var = _friction_window(network, segments, heads, corrected, meter_of_pipe, min_flow)
    friction = _kalman(prev.friction_multiplier, _walk(settings.friction_walk_sd_per_day, dt_s), z, r_var)
    margin, element = _maop_margin(network, pressures)
    return replace(
        prev,
        friction_multiplier=friction,
        meter_bias_m3s=biases,
        flow_m3s=line_flow if math.isfinite(line_flow) else prev.flow_m3s,
        maop_margin=margin if math.isfinite(margin) else prev.maop_margin,
        maop_element=element or prev.maop_element,
        segments=tuple(seg.name for seg in segments),
    )


# --------------------------------------------------------------------------------------------
# Public steps
# --------------------------------------------------------------------------------------------


def initial_calibration(registry: Registry, settings: EstimatorSettings | None = None) -> TwinCalibration:
    """The prior before any data: no wear, no loss, friction multiplier 1, unbiased meters.

    Args:
        registry: The fleet.
        settings: Prior standard deviations (defaults if None).
    """
    st = settings or EstimatorSettings()
    pumps = {
        p.name: PumpEstimate(
            pump=p.name,
            pump_id=p.pump_id,
            line=p.line,
            impeller_wear=Estimate(0.0, st.wear_prior_sd),
            efficiency_loss=Estimate(0.0, st.loss_prior_sd),
        )
        for p in registry.pumps
    }
    lines = {
        ln: LineEstimate(
            line=ln,
            friction_multiplier=Estimate(1.0, st.friction_prior_sd),
            meter_bias_m3s={
                m.tag: Estimate(0.0, st.bias_prior_sd_m3s)
                for m in registry.meters
                if m.line == ln and m.measure == "FLOW"
            },
        )
        for ln in range(1, registry.n_lines + 1)
    }
    return TwinCalibration(None, pumps, lines, 0)


def update_calibration(
    prev: TwinCalibration | None,
    readings: pd.DataFrame,
    registry: Registry,
    network: Network,
    settings: EstimatorSettings | None = None,
) -> TwinCalibration:
    """Fold a window of readings into the calibration (run it every 15 min, or on any window).

    Readings older than the previous calibration's time are ignored, so overlapping windows are
    not counted twice. Stopped pumps, missing tags, bad-quality and NaN values only leave the
    affected estimates to their prior, whose uncertainty grows with the elapsed time.

    Args:
        prev: The previous calibration (None: start from `initial_calibration`).
        readings: Long tag table ``tag, ts, value, quality``.
        registry: The fleet's registry.
        network: The network of one line (the fleet's lines are copies of it).
        settings: Estimator constants (defaults if None).

    Returns:
        The new calibration, timed at the end of the window.

    Raises:
        EstimationError: Malformed readings, or a registry that does not match the network.
    """
    st = settings or EstimatorSettings()
    base = prev if prev is not None else initial_calibration(registry, st)
    missing = [p.name for p in registry.pumps if p.name not in base.pumps]
    if missing:
        raise EstimationError(f"calibration has no estimate for pumps {missing}; start from initial_calibration")
    wide = resample_readings(readings, st.period_s)
    if base.ts is not None and len(wide):
        wide = wide[wide.index >= base.ts]
    if wide.empty:
        return base
    period = pd.Timedelta(seconds=st.period_s)
    end = wide.index.max() + period
    dt_s = float((end - base.ts).total_seconds()) if base.ts is not None else 0.0
    rho_g = network.fluid.density_kg_m3 * G_M_S2
    rated_cache: dict[str, _Rated] = {}
    pumps = dict(base.pumps)
    headers: dict[int, dict[str, FloatArray]] = {ln: {} for ln in range(1, registry.n_lines + 1)}
    for station in registry.stations:
        suction, discharge, running = _station_pressures(wide, registry, station)
        headers[station.line][station.suction_node] = suction
        headers[station.line][station.discharge_node] = discharge
        for name, on in running.items():
            spec = registry.pumps[registry.pump_index(name)]
            if spec.pump_id not in rated_cache:
                rated_cache[spec.pump_id] = _rated(network, spec.pump_id)
            win = _pump_window(wide, spec, on, suction, discharge, rho_g)
            last = wide.index[on][-1] + period if on.any() else None
            pumps[name] = _update_pump(pumps[name], spec, rated_cache[spec.pump_id], win, network, dt_s, last, st)
    lines = {
        ln: _update_line(est, registry, network, wide, headers.get(ln, {}), dt_s, st) for ln, est in base.lines.items()
    }
    return TwinCalibration(end, pumps, lines, base.n_updates + 1)


def _equivalent_roughness(network: Network, pipe: Pipe, multiplier: float, flow_m3s: float) -> float:
    """Roughness that scales the pipe's friction loss by ``multiplier`` at ``flow_m3s``."""
    formula = network.options.headloss
    if formula == "H-W":
        return float(pipe.roughness * multiplier ** (-1.0 / HW_EXPONENT))
    if formula == "C-M":
        return float(pipe.roughness * math.sqrt(multiplier))
    d = pipe.diameter_m
    q = abs(flow_m3s) if math.isfinite(flow_m3s) and flow_m3s != 0 else math.pi * d * d / 4.0  # 1 m/s
    re = max(q / (math.pi * d * d / 4.0) * d / network.options.viscosity_m2_s, _SJ_RE_MIN)
    f_new = multiplier * float(swamee_jain_friction(re, pipe.roughness / d))
    rel = 3.7 * (10.0 ** (-1.0 / (2.0 * math.sqrt(f_new))) - 5.74 / re**0.9)
    return float(max(rel, 0.0) * d)


def calibrated_network(network: Network, calibration: TwinCalibration, line: int = 1) -> Network:
    """A copy of ``network`` with the calibrated pump degradation and pipe friction of ``line``.

    Worn pumps get `apply_degradation` with their estimated wear and efficiency loss (clipped
    to the valid ranges); pipe roughness is changed so that the friction loss at the line's
    estimated flow is multiplied by the friction multiplier (Darcy-Weisbach: Swamee-Jain
    inverted; Hazen-Williams: C m^(-1/1.852); Manning: n sqrt(m)).

    Args:
        network: The clean network of one line.
        calibration: The calibration.
        line: Which line's estimates to apply, 1-based.

    Raises:
        EstimationError: An unknown line, or a pump of the line missing from the network.
    """
    if line not in calibration.lines:
        raise EstimationError(f"line {line} is not in the calibration (lines {sorted(calibration.lines)})")
    ids = {p.id for p in network.pumps}
    wear = {pid: d for pid, d in calibration.degradations(line).items() if d != Degradation()}
    unknown = sorted(set(wear) - ids)
    if unknown:
        raise EstimationError(f"pumps {unknown} of line {line} are not in network {network.name!r}")
    out = apply_degradation(network, wear)
    est = calibration.lines[line]
    m = est.friction_multiplier.value
    if not (math.isfinite(m) and m > 0) or m == 1.0:
        return out
    pipes = tuple(replace(p, roughness=_equivalent_roughness(out, p, m, est.flow_m3s)) for p in out.pipes)
    return replace(out, pipes=pipes)
