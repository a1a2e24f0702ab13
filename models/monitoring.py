"""The production pump detector: drift-aware, tolerance-scaled physics inputs and a calibrated CUSUM.

One pump is watched through nine inputs that stay level on a healthy pump at any operating point
(`INPUTS`), all built from `features.transforms.build.pump_features` columns (`SOURCE_FEATURES`):

- 24 h means of the vibration baseline ratios (DE, NDE), seal leak, strainer loss, head and
  efficiency residuals (relative to the sister pumps, below) and NPSH margin;
- two temperature differences of 24 h means: DE minus NDE bearing, and winding minus NDE
  bearing. A difference of two sensors on the same machine cancels the ambient and fluid
  temperature, the load, and a drift of the ambient sensor.

**Sister pumps.** The head and efficiency residuals (`SISTER_INPUTS`) are read relative to the
pump's sister pumps: the pump's value minus the mean of the other pumps of the same station
(``PSnn`` of ``PSnn.Pk``) running through the same hour. Pumps of one station share the suction
and discharge headers and run at the same operating point, so a change common to all of them (a
hydraulic change elsewhere on the line moving every pump along its curve, where the rated curve
fits a little less well) is not a pump fault and cancels, while a fault of one pump (a worn
impeller, cavitation) remains. A pump running without a sister has no such reference: its rows
are not scored (NaN inputs) until a sister runs again.

Each input is compared with a baseline learnt on the pump's own healthy rows and divided by a
physical tolerance (the change taken as one unit of evidence, `INPUTS`), or by the input's robust
spread where that is larger. Movement against the input's direction of deterioration (a vibration
ratio falling, a seal weeping less) is not evidence of a fault and is clipped to 0.

**Drift-aware baseline.** Analogue instruments drift slowly and roughly linearly from their last
calibration, so a healthy pump's inputs can show a trend already in the training rows. The
baseline is therefore a straight line fitted by least squares against operating time on the
training rows, not a constant, and the deviation from it is divided by the line's prediction
uncertainty at that time:

    z(t) = (x(t) - a - b (t - t_m)) / sqrt(s^2 + (se_b (t - t_m))^2),
    se_b = s sqrt(m / sum (t_i - t_m)^2),

where ``s = max(1.4826 MAD of the line's residuals, tolerance)`` and ``m`` (`CORRELATED_ROWS`)
is the number of rows one independent value spans: a 24 h mean sampled every 10 minutes changes
by one independent value per day, so the slope's standard error is ``sqrt(144)`` times the white
noise figure. A trend learnt in five days is thus extrapolated with a growing band: weeks later a
slow instrument drift stays inside it, while a fault, which starts after training and progresses
over days, leaves it. A fault that was already developing during training is part of the
baseline; retraining on recent healthy history keeps the line short.

**Detector.** A two-sided CUSUM per input (`models.residual.ResidualCusumDetector`, allowance
``k = 0.5`` of a tolerance) accumulates persistent deviations and forgets noise. It is wrapped in
`models.ensemble.CalibratedEnsemble`: fitted on the first three quarters of the healthy rows, its
alarm threshold set on the held-out last quarter to ``target_far``, never below the CUSUM's own
boundary (``min_scale = min_threshold = 1``), and an alarm must persist ``min_run`` rows. With
``autoencoder`` a `models.autoencoder.WindowAutoencoder` on the same scaled inputs joins as a
second member (max fusion: either member may alarm); it is off by default because, measured by
``benchmarks.early_warning --autoencoder`` on the design seeds (never on the reported ones), it
raised many false alarms on healthy runs.

`build_pump_detector` returns that template; `models.fleet.FleetDetector` clones it per pump
with `add_detector_inputs` as its input step, which is how the ``train`` flow trains and
registers it and how ``benchmarks.early_warning`` measures it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from pumptwin.twin.errors import PumptwinError

MAD_TO_STD = 1.4826
"""Factor from the median absolute deviation to the standard deviation of a normal distribution."""
CORRELATED_ROWS = 144
"""Rows one independent value of a 24 h mean spans at the 10-minute feature cadence."""
TIME_COLUMN = "operating_time_h"
"""Detector column with the row's time in hours since 1970-01-01 UTC (the baseline's time axis)."""
RUNNING_COLUMN = "running_frac_1h"
"""Fraction of the last hour the pump ran; only rows run throughout are trained on or scored."""
RUNNING_FRACTION = 0.99
"""Running fraction from which a pump counts as running through the hour (a sister reference)."""
_NS_PER_H = 3.6e12


class MonitoringError(PumptwinError, ValueError):
    """Bad settings or input for the pump detector; the message names the value."""


@dataclass(frozen=True, slots=True)
class InputSpec:
    """One detector input.

    Attributes:
        tolerance: Change taken as one unit of evidence, in the input's unit.
        direction: Direction of deterioration: +1 a rise, -1 a fall, 0 either.
        meaning: What the input is and why the tolerance.
    """

    tolerance: float
    direction: int
    meaning: str


INPUTS: dict[str, InputSpec] = {
    "brg_de_minus_nde_k": InputSpec(2.0, 0, "DE minus NDE bearing temperature, 24 h means; 2 K between bearings"),
    "winding_minus_brg_nde_k": InputSpec(
        5.0, 1, "winding minus NDE bearing temperature, 24 h means; 5 K of winding rise"
    ),
    "vib_de_baseline_ratio_mean_24h": InputSpec(
        0.25, 1, "DE vibration over its baseline; ISO 10816-3 calls a 25 % change significant"
    ),
    "vib_nde_baseline_ratio_mean_24h": InputSpec(0.25, 1, "NDE vibration over its baseline; 25 % as for DE"),
    "seal_leak_l_h_mean_24h": InputSpec(2.0, 1, "seal leak, L/h; 2 L/h"),
    "strainer_dp_bar_mean_24h": InputSpec(0.05, 1, "strainer loss, bar; 0.05 bar"),
    "head_residual_pct_mean_24h": InputSpec(2.0, -1, "head residual vs sister pumps, % of the curve; 2 % of head"),
    "efficiency_residual_mean_24h": InputSpec(0.02, -1, "efficiency residual vs sister pumps, fraction; 2 points"),
    "npsh_margin_m_mean_24h": InputSpec(2.0, -1, "NPSH available minus required, m; 2 m of margin"),
}
"""Detector inputs with their tolerance and direction of deterioration (order = matrix columns)."""

SISTER_INPUTS = ("head_residual_pct_mean_24h", "efficiency_residual_mean_24h")
"""Inputs read relative to the mean of the pump's running sister pumps at the same station."""
SOURCE_FEATURES: tuple[str, ...] = (
    "brg_de_temp_c_mean_24h",
    "brg_nde_temp_c_mean_24h",
    "winding_temp_c_mean_24h",
    "vib_de_baseline_ratio_mean_24h",
    "vib_nde_baseline_ratio_mean_24h",
    "seal_leak_l_h_mean_24h",
    "strainer_dp_bar_mean_24h",
    "head_residual_pct_mean_24h",
    "efficiency_residual_mean_24h",
    "npsh_margin_m_mean_24h",
)
"""`pump_features` columns the inputs are built from."""
DETECTOR_COLUMNS: tuple[str, ...] = (*INPUTS, TIME_COLUMN)
"""Columns the detector reads, in order: the inputs, then the time axis of the baseline."""


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    """Settings of the pump detector.

    Attributes:
        target_far: Row-wise false-alarm rate the threshold is calibrated to on held-out rows.
        min_run: Rows (10 min each) an alarm must persist.
        autoencoder: Add the convolutional autoencoder as a second member.
        seed: Seed of the autoencoder.
        correlated_rows: Rows one independent value of an input spans (`CORRELATED_ROWS`).
        trend: Learn a drift-aware (straight-line) baseline; False: a constant median.
    """

    target_far: float = 0.005
    min_run: int = 6
    autoencoder: bool = False
    seed: int = 7
    correlated_rows: int = CORRELATED_ROWS
    trend: bool = True


def detector_inputs(features: pd.DataFrame) -> pd.DataFrame:
    """The detector's columns (`DETECTOR_COLUMNS`) from `pump_features` rows, same index.

    Args:
        features: Rows of any pumps with ``pump_id``, ``event_timestamp``, `RUNNING_COLUMN` and
            the `SOURCE_FEATURES` columns; the sister pumps of a row are the other rows of its
            station at the same time.

    Returns:
        The nine inputs (`INPUTS`, `SISTER_INPUTS` relative to the running sister pumps, NaN
        where none ran) and `TIME_COLUMN` (hours since 1970-01-01 UTC).

    Raises:
        MonitoringError: A column is missing.
    """
    missing = [c for c in ("pump_id", "event_timestamp", RUNNING_COLUMN, *SOURCE_FEATURES) if c not in features.columns]
    if missing:
        raise MonitoringError(f"feature frame lacks column(s) {missing}")
    out = pd.DataFrame(index=features.index)
    out["brg_de_minus_nde_k"] = features["brg_de_temp_c_mean_24h"] - features["brg_nde_temp_c_mean_24h"]
    out["winding_minus_brg_nde_k"] = features["winding_temp_c_mean_24h"] - features["brg_nde_temp_c_mean_24h"]
    for name in INPUTS:
        if name not in out:
            out[name] = features[name].astype(float)
    for name in SISTER_INPUTS:
        out[name] = out[name].to_numpy() - sister_mean(features, name)
    ts = pd.to_datetime(features["event_timestamp"], utc=True)
    out[TIME_COLUMN] = ts.astype("int64").to_numpy() / _NS_PER_H if len(ts) else np.zeros(0)
    return out[list(DETECTOR_COLUMNS)]


def sister_mean(features: pd.DataFrame, column: str) -> np.ndarray:
    """Per row, the mean of ``column`` over the other pumps of the row's station running at the same time.

    A pump runs when its `RUNNING_COLUMN` is at least `RUNNING_FRACTION` and ``column`` is
    defined; the station is the part of ``pump_id`` before the first dot.

    Returns:
        Float array aligned with the rows; NaN where no sister pump ran.
    """
    station = features["pump_id"].astype(str).str.split(".", n=1).str[0].to_numpy()
    running = features[RUNNING_COLUMN].to_numpy(dtype=float, na_value=np.nan) >= RUNNING_FRACTION
    value = features[column].to_numpy(dtype=float, na_value=np.nan)
    value = np.where(running, value, np.nan)
    frame = pd.DataFrame({"station": station, "ts": features["event_timestamp"].to_numpy(), "v": value})
    group = frame.groupby(["station", "ts"], sort=False)["v"]
    total = group.transform("sum").to_numpy()
    count = group.transform("count").to_numpy()
    own = np.isfinite(value)
    others = count - own.astype(int)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (total - np.where(own, value, 0.0)) / others
    return np.where(others > 0, mean, np.nan)


def add_detector_inputs(features: pd.DataFrame) -> pd.DataFrame:
    """``features`` with the detector's columns added (the input step of `models.fleet.FleetDetector`)."""
    inputs = detector_inputs(features)
    return features.assign(**{c: inputs[c].to_numpy() for c in inputs.columns})


class ToleranceScaler(TransformerMixin, BaseEstimator):
    """Deviation from a healthy baseline in units of max(robust spread, tolerance), one-sided where asked.

    With ``trend=False`` the baseline is each column's training median. With ``trend=True`` the
    last column of ``X`` is the time in hours; each other column's baseline is a least-squares
    line against it, and the deviation is divided by the line's prediction uncertainty (see the
    module docstring); the output drops the time column.

    Args:
        tolerances: Per input column, the smallest scale (the column's unit).
        directions: Per input column, +1 keeps only rises, -1 only falls, 0 both.
        trend: Fit a straight-line baseline against the last (time) column.
        correlated_rows: Rows one independent value spans (inflates the slope's standard error).

    Attributes:
        median_: Baseline at the training rows' median time (the median with ``trend=False``).
        slope_: Baseline slope per hour (zeros with ``trend=False``).
        scale_: Per column ``max(1.4826 MAD, tolerance)`` of the deviations from the baseline.
        slope_se_: Standard error of the slope per hour, inflated by ``sqrt(correlated_rows)``.
        t_mid_h_: Median training time, h.
    """

    def __init__(
        self,
        tolerances: Sequence[float] = (),
        directions: Sequence[int] = (),
        trend: bool = False,
        correlated_rows: int = CORRELATED_ROWS,
    ) -> None:
        self.tolerances = tolerances
        self.directions = directions
        self.trend = trend
        self.correlated_rows = correlated_rows

    def _split(self, X: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        A = np.asarray(X, dtype=float)
        if A.ndim != 2:  # noqa: PLR2004 - a matrix
            raise MonitoringError(f"ToleranceScaler reads a 2-d matrix, got shape {A.shape}")
        if self.trend:
            return A[:, :-1], A[:, -1]
        return A, np.zeros(len(A))

    def fit(self, X: ArrayLike, y: object = None) -> ToleranceScaler:
        """Learn each column's baseline and scale on healthy rows ``X`` (time last when ``trend``).

        Raises:
            MonitoringError: Column count not matching the tolerances, a non-positive tolerance,
                ``correlated_rows`` below 1, or (with ``trend``) rows all at one time.
        """
        values, t = self._split(X)
        if values.shape[1] != len(self.tolerances) or len(self.tolerances) != len(self.directions):
            raise MonitoringError(
                f"{values.shape[1]} input columns for {len(self.tolerances)} tolerances"
                f" and {len(self.directions)} directions"
            )
        if np.any(np.asarray(self.tolerances, dtype=float) <= 0) or self.correlated_rows < 1:
            raise MonitoringError(
                f"tolerances {list(self.tolerances)} must be positive and correlated_rows={self.correlated_rows} >= 1"
            )
        tol = np.asarray(self.tolerances, dtype=float)
        if self.trend:
            self.t_mid_h_ = float(np.median(t))
            dt = t - self.t_mid_h_
            sxx = float(np.sum((dt - dt.mean()) ** 2))
            if sxx <= 0:
                raise MonitoringError("a trend baseline needs training rows at more than one time")
            design = np.column_stack([np.ones_like(dt), dt])
            coef = np.linalg.lstsq(design, values, rcond=None)[0]
            self.median_, self.slope_ = coef[0], coef[1]
            resid = values - design @ coef
            mad = np.median(np.abs(resid - np.median(resid, axis=0)), axis=0)
            self.scale_ = np.maximum(MAD_TO_STD * mad, tol)
            self.slope_se_ = self.scale_ * np.sqrt(self.correlated_rows / sxx)
        else:
            self.t_mid_h_ = 0.0
            self.median_ = np.median(values, axis=0)
            mad = np.median(np.abs(values - self.median_), axis=0)
            self.scale_ = np.maximum(MAD_TO_STD * mad, tol)
            self.slope_ = np.zeros_like(self.scale_)
            self.slope_se_ = np.zeros_like(self.scale_)
        return self

    def transform(self, X: ArrayLike) -> np.ndarray:
        """Scaled deviations from the baseline, clipped at 0 against each column's direction."""
        check_is_fitted(self, "scale_")
        values, t = self._split(X)
        if values.shape[1] != len(self.scale_):
            raise MonitoringError(f"{values.shape[1]} input columns, fitted on {len(self.scale_)}")
        dt = (t - self.t_mid_h_)[:, None]
        spread = np.sqrt(self.scale_**2 + (self.slope_se_ * dt) ** 2)
        z = (values - self.median_ - self.slope_ * dt) / spread
        d = np.asarray(self.directions)
        return np.where(d > 0, np.maximum(z, 0.0), np.where(d < 0, np.minimum(z, 0.0), z))


def input_scaler(config: MonitorConfig) -> ToleranceScaler:
    """The `ToleranceScaler` of `INPUTS` (a straight-line baseline unless ``config.trend`` is False)."""
    return ToleranceScaler(
        [s.tolerance for s in INPUTS.values()],
        [s.direction for s in INPUTS.values()],
        trend=config.trend,
        correlated_rows=config.correlated_rows,
    )


def build_pump_detector(config: MonitorConfig | None = None) -> BaseEstimator:
    """The unfitted detector of one pump, reading `DETECTOR_COLUMNS` in time order.

    Args:
        config: Settings (defaults: `MonitorConfig`).

    Returns:
        A `models.ensemble.CalibratedEnsemble` of the tolerance-scaled CUSUM (and the
        autoencoder when ``config.autoencoder``); its ``score_samples`` is minus the score over
        the alarm threshold, ``predict`` -1 where an alarm persists ``config.min_run`` rows.
    """
    from sklearn.pipeline import Pipeline

    from pumptwin.models.ensemble import CalibratedEnsemble
    from pumptwin.models.residual import ResidualCusumDetector

    config = config or MonitorConfig()
    # Without a trend the time column is dropped before scaling.
    head: list[tuple[str, BaseEstimator]] = [] if config.trend else [("select", _inputs_only())]
    members: list[BaseEstimator] = [
        Pipeline([*head, ("scale", input_scaler(config)), ("cusum", ResidualCusumDetector(k=0.5, scale_floor=1.0))])
    ]
    if config.autoencoder:
        from pumptwin.models.autoencoder import WindowAutoencoder

        autoencoder = WindowAutoencoder(
            window=12, hidden=8, latent=4, epochs=30, patience=5, score_smooth=6, random_state=config.seed
        )
        members.append(Pipeline([*head, ("scale", input_scaler(config)), ("autoencoder", autoencoder)]))
    return CalibratedEnsemble(
        members,
        target_far=config.target_far,
        min_run=config.min_run,
        fusion="max",
        calibration_fraction=0.25,
        min_scale=1.0,
        min_threshold=1.0,
    )


def _inputs_only() -> BaseEstimator:
    from sklearn.compose import ColumnTransformer

    return ColumnTransformer([("inputs", "passthrough", list(range(len(INPUTS))))])


def describe(config: MonitorConfig | None = None) -> str:
    """One line naming the detector and its settings (for reports and run parameters)."""
    config = config or MonitorConfig()
    baseline = f"straight-line baseline, correlated_rows={config.correlated_rows}" if config.trend else "median"
    extra = " + WindowAutoencoder" if config.autoencoder else ""
    return (
        f"CalibratedEnsemble(ResidualCusumDetector(k=0.5){extra} on tolerance-scaled inputs"
        f" (head, efficiency vs sister pumps), {baseline};"
        f" target_far={config.target_far}, min_run={config.min_run})"
    )
