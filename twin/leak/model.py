"""Leak detection's vocabulary: the twin's line model, meter layout, noise model, configuration and status.

Also the input checks shared by the other modules (`clean_readings`) and the line-pack weights.
See `pumptwin.twin.leak.detection` for the method. Units are SI: m, s, m3/s, Pa (gauge), kg/m3.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.hydraulic.friction import darcy_friction_factor
from pumptwin.twin.units import G_M_S2

FloatArray = NDArray[np.float64]


DEFAULT_WINDOWS_S: tuple[float, ...] = (60.0, 300.0, 900.0, 3600.0)
"""Balance windows, in s (1, 5, 15 and 60 min)."""


LOCATION_METHODS: tuple[str, ...] = ("profile", "ends")
"""Leak location methods (see `LeakConfig.location_method`)."""


_MAD_TO_SIGMA = 1.4826


_MIN_STEADY = 20


_TINY = 1e-12


class LeakError(PumptwinError, ValueError):
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

        Darcy-Weisbach with the solver's friction factor (`twin.hydraulic.friction.darcy_friction_factor`).
        """
        q = np.asarray(flow_m3s, dtype=np.float64)
        area = self.area_m2
        re = np.abs(q) / area * self.diameter_m / self.kinematic_viscosity_m2_s
        f = darcy_friction_factor(re, self.roughness_m / self.diameter_m)
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
        head_change_sd_m: Per transmitter, the spread (1 sigma) of the change of its mean head
            between two ``baseline_s`` windows a ``baseline_s`` apart in steady leak-free running, in
            m; empty when not learnt (location then uses the end transmitters only).
        flow_change_sd_frac: The same spread for one flow meter's mean flow, as a fraction of
            the flow (-); nan when not learnt.
        segment_friction_scale: Per segment between neighbouring transmitters, its own friction
            calibration factor c_k (-); empty when not learnt.
        segment_head_offset_m: Per segment, its head offset d_k, in m (``H_k - H_k+1 = c_k S(q)
            dx_k + d_k`` with elevation in H); empty when not learnt.
        head_model_sd_m: Per transmitter, the spread of its head about that calibrated leak-free
            profile (anchored at the inlet transmitter) in steady running, in m; empty when not
            learnt.
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
    head_change_sd_m: tuple[float, ...] = ()
    flow_change_sd_frac: float = math.nan
    segment_friction_scale: tuple[float, ...] = ()
    segment_head_offset_m: tuple[float, ...] = ()
    head_model_sd_m: tuple[float, ...] = ()


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
        location_method: ``"profile"`` fits the change of every transmitter's head with the flow
            meters as priors (`locate_leak_profile`; needs a noise model that learnt the spreads),
            ``"ends"`` intersects the gradient changes at the end transmitters only
            (`locate_leak_change`).
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
    location_method: str = "profile"

    def __post_init__(self) -> None:
        """Check windows, periods and that the noise model matches the windows."""
        _check(len(self.windows_s) >= 1, "at least one window is needed")
        _check(
            self.location_method in LOCATION_METHODS,
            f"location_method must be one of {LOCATION_METHODS}, got {self.location_method!r}",
        )
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


def _index_seconds(frame: pd.DataFrame) -> FloatArray:
    idx = frame.index
    if isinstance(idx, pd.DatetimeIndex):
        t = (idx.asi8 - pd.Timestamp("1970-01-01", tz=idx.tz).value) / 1e9 if idx.tz else idx.asi8 / 1e9
        return np.asarray(t, dtype=np.float64)
    return np.asarray(idx, dtype=np.float64)
