"""What the estimator knows: estimates with their uncertainty, the calibration, and its small statistics.

`TwinCalibration` holds one `PumpEstimate` per pump and one `LineEstimate` per line;
`twin.health.estimation.update_calibration` folds windows of readings into it. Scalar states are
random walks tracked by a Kalman filter (`kalman_step`), each window's measurement a robust mean
(`robust_mean`: median with a MAD-based standard error). Readings become a wide table per
resampling period (`resample_readings`). All numbers are SI except where a name says otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.health.condition import (
    BEARING_FEATURES,
    SEAL_FEATURES,
    RlsFit,
    VibrationBaseline,
)
from pumptwin.twin.hydraulic.pumps import Degradation
from pumptwin.twin.units import DAY_S

FloatArray = npt.NDArray[np.float64]

GOOD_QUALITY = "good"
MAD_TO_SD = 1.4826
"""Scale from the median absolute deviation to the standard deviation of a normal sample."""
MEDIAN_EFFICIENCY = 1.2533
"""Standard error of a median over that of a mean, for normal samples (sqrt(pi / 2))."""


class EstimationError(PumptwinError, ValueError):
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
        thermal_prior_sd_k: Prior standard deviation of a bearing rise at rated speed and the BEP, K.
        thermal_walk_sd_per_day_k: Random walk of that rise, K per day.
        thermal_ref_time_s: Time constant of the thermal reference, s.
        thermal_ref_gate: Relative drift above which the reference stops following.
        steady_speed_tol: Relative speed range within a window for it to count as steady.
        common_head_jump: A window in which two or more running pumps of a station read their
            head-speed factor this much below their wear estimates at once is a condition of the
            station (a starved suction, the pumps cavitating together), not wear, which is slow and
            per pump: it updates neither their wear nor their efficiency loss (-).
        thermal_settle_s: How long a pump must have run since it started before its bearing and
            winding temperatures count, s: they lag a start by their thermal time constants (motor
            and bearing housings settle within one to three hours of a start, as commissioning
            practice waits for them), so a cold start would read as a low rise and, on a pump the
            twin has not seen run, set its references low.
        friction_prior_sd: Prior standard deviation of a line's friction multiplier (-).
        friction_walk_sd_per_day: Random walk of the friction multiplier per day (-).
        bias_prior_sd_m3s: Prior standard deviation of a flow meter's bias, m3/s.
        bias_walk_sd_per_day_m3s: Random walk of a flow meter's bias per day, m3/s.
        bias_steady_tol: Relative flow range within a window for meter balancing.
        min_line_flow_fraction: Smallest line flow, as a fraction of the BEP flow, for friction.
        bearing_memory_s: Memory of the learnt bearing load shape (forgetting time constant), s.
        winding_walk_sd_per_day_k: Random walk of a winding's rise at rated current, K per day.
        seal_memory_s: Memory of the learnt seal leak line, s.
        strainer_walk_per_day: Relative random walk of a strainer's loss coefficient per day (-).
        strainer_ref_time_s: Time constant of the strainer's clean reference, s.
        strainer_min_flow_fraction: Smallest pump flow, as a fraction of the BEP flow, for the strainer.
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
    thermal_settle_s: float = 2.0 * 3600.0
    common_head_jump: float = 0.03
    friction_prior_sd: float = 0.3
    friction_walk_sd_per_day: float = 0.005
    bias_prior_sd_m3s: float = 0.01
    bias_walk_sd_per_day_m3s: float = 2e-4
    bias_steady_tol: float = 0.03
    min_line_flow_fraction: float = 0.2
    bearing_memory_s: float = 14.0 * DAY_S
    winding_walk_sd_per_day_k: float = 2.0
    seal_memory_s: float = 3.0 * DAY_S
    strainer_walk_per_day: float = 0.05
    strainer_ref_time_s: float = 14.0 * DAY_S
    strainer_min_flow_fraction: float = 0.3

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


def _bearing_fit() -> RlsFit:
    return RlsFit.empty(BEARING_FEATURES)


def _seal_fit() -> RlsFit:
    return RlsFit.empty(SEAL_FEATURES)


@dataclass(frozen=True, slots=True)
class PumpEstimate:
    """Calibrated state of one pump.

    Attributes:
        pump: ``STATION.ASSET``.
        pump_id: Pump link id in the network.
        line: Line number, 1-based.
        impeller_wear: Loss of effective impeller diameter (-).
        efficiency_loss: Efficiency lost, efficiency x (1 - loss) (-).
        vib_de, vib_nde: Vibration baselines (`twin.health.condition.VibrationBaseline`).
        vib_de_mm_s, vib_nde_mm_s: Mean RMS of the last window with running data, mm/s.
        vib_excess_de_mm_s, vib_excess_nde_mm_s: That RMS minus the baseline, mm/s (NaN: no baseline).
        thermal_de, thermal_nde: Bearing rise at rated speed and the BEP (R of rise = R L), K.
        thermal_ref_de_k, thermal_ref_nde_k: Slow reference of that rise, K.
        bearing_de, bearing_nde: Least squares of the bearing rise on (s, s^2, s^2 (r - 1)^2), K.
        winding: Winding rise over ambient at rated current, K.
        winding_ref_k: Slow reference of that rise, K.
        seal: Least squares of the seal leak (L/h) on (1, suction pressure in bar g).
        seal_leak_l_h: Mean seal leak of the last window with running data, L/h.
        strainer_k: Strainer loss coefficient k of dP = k q^2, Pa s^2 / m^6.
        strainer_ref_k: Slow (clean) reference of that coefficient, Pa s^2 / m^6.
        npsh_margin_m: Smallest NPSHa - NPSHr of the last window with running data, m.
        running_fraction: Share of the last window the pump ran.
        n_samples: Running samples used so far.
        last_running_ts: Last time the pump was seen running.
        running_since_ts: When the run going on at the end of the last window started (None: not
            running then, or running since before the twin's first window).
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
    bearing_de: RlsFit = field(default_factory=_bearing_fit)
    bearing_nde: RlsFit = field(default_factory=_bearing_fit)
    winding: Estimate = Estimate(math.nan, math.inf)
    winding_ref_k: float = math.nan
    seal: RlsFit = field(default_factory=_seal_fit)
    seal_leak_l_h: float = math.nan
    strainer_k: Estimate = Estimate(math.nan, math.inf)
    strainer_ref_k: float = math.nan
    npsh_margin_m: float = math.nan
    running_fraction: float = 0.0
    n_samples: int = 0
    last_running_ts: pd.Timestamp | None = None
    running_since_ts: pd.Timestamp | None = None

    def degradation(self) -> Degradation:
        """The estimate as `twin.pumps.Degradation`, clipped to its valid ranges."""
        return Degradation(
            impeller_wear=float(np.clip(self.impeller_wear.value, 0.0, 0.5)),
            efficiency_loss=float(np.clip(self.efficiency_loss.value, 0.0, 0.5)),
        )

    @property
    def thermal_drift_de(self) -> float:
        """Relative rise of the DE bearing rise over its reference (-); NaN if unknown."""
        return drift(self.thermal_de.value, self.thermal_ref_de_k)

    @property
    def thermal_drift_nde(self) -> float:
        """Relative rise of the NDE bearing rise over its reference (-); NaN if unknown."""
        return drift(self.thermal_nde.value, self.thermal_ref_nde_k)

    @property
    def winding_drift(self) -> float:
        """Relative rise of the winding rise over its reference (-); NaN if unknown (lost cooling raises it)."""
        return drift(self.winding.value, self.winding_ref_k)

    @property
    def strainer_drift(self) -> float:
        """Relative rise of the strainer loss coefficient over its clean reference (-); NaN if unknown."""
        return drift(self.strainer_k.value, self.strainer_ref_k)


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


def drift(value: float, ref: float) -> float:
    """Relative rise value / ref - 1 (-); NaN unless both are finite and ref > 0."""
    if not (math.isfinite(value) and math.isfinite(ref) and ref > 0):
        return math.nan
    return value / ref - 1.0


def kalman_step(prior: Estimate, walk_var: float, z: float, r_var: float) -> Estimate:
    """Random-walk Kalman step: inflate the variance by ``walk_var``, then fold in ``z`` (variance ``r_var``)."""
    p = prior.sd**2 + walk_var
    if not (math.isfinite(z) and math.isfinite(r_var) and r_var > 0):
        return Estimate(prior.value, math.sqrt(p))
    if not math.isfinite(prior.value) or not math.isfinite(p):
        return Estimate(z, math.sqrt(r_var))
    gain = p / (p + r_var)
    return Estimate(prior.value + gain * (z - prior.value), math.sqrt((1.0 - gain) * p))


def robust_mean(x: FloatArray, sd_floor: float) -> tuple[float, float, int]:
    """(median, variance of the median, n) of the finite values; NaNs when there are none."""
    v = x[np.isfinite(x)]
    if v.size == 0:
        return math.nan, math.nan, 0
    med = float(np.median(v))
    sd = max(MAD_TO_SD * float(np.median(np.abs(v - med))), sd_floor)
    return med, (MEDIAN_EFFICIENCY * sd) ** 2 / v.size, int(v.size)


def walk_var(sd_per_day: float, dt_s: float) -> float:
    """Variance a random walk of ``sd_per_day`` gains over ``dt_s`` seconds."""
    return sd_per_day**2 * max(dt_s, 0.0) / DAY_S


def nanmedian_rows(columns: Sequence[FloatArray], n: int) -> FloatArray:
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


def despike(x: FloatArray) -> FloatArray:
    """Centred running median of three, so single spikes do not set a window's extreme."""
    if x.size < 3:  # noqa: PLR2004 - the filter's width
        return x
    return np.asarray(pd.Series(x).rolling(3, center=True, min_periods=1).median().to_numpy(), dtype=np.float64)


def tag_column(wide: pd.DataFrame, tag: str) -> FloatArray:
    """A tag's column of a wide table as floats (all NaN when the tag is missing)."""
    if tag in wide.columns:
        return np.asarray(wide[tag].to_numpy(dtype=np.float64), dtype=np.float64)
    return np.full(len(wide), np.nan)
