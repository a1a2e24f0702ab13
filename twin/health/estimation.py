"""State estimation: calibrate the twin's degradation, condition and line parameters from tag readings.

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
- **Condition models** (`twin.health.condition`, learnt in `twin.health.pumps`): per bearing a
  vibration baseline v^2 = a0 + a1 s^2 + a2 s^4 + s^4 (a3 d^2 + a4 d^3 + a5 d^4), d = r - 1, by
  recursive least squares with exponential forgetting, not updated by windows whose vibration
  exceeds it by more than `EstimatorSettings.vib_gate_ratio` (the excess is the window's mean
  RMS minus the baseline at the same operating points); the bearing rise over ambient R L(s, r)
  with a learnt load shape, R a random walk with a slow, gated reference that gives its drift;
  the winding rise at rated current; the seal leak line; the strainer loss coefficient.
- **Lines** (`twin.health.line`): friction multipliers from metered segments, flow meter biases
  from the meters' consensus in steady windows, MAOP margins.
- **Margins**: NPSH margin (NPSHa at the impeller eye from the suction pressure, minus the
  rated NPSHr curve at the flow and speed; the velocity head is left out, which is
  conservative) and MAOP margin (1 - p / MAOP at every metered node).

All numbers are SI (m3/s, m, Pa, W, K) except where a name says otherwise (``_mm_s``).
`calibrated_network` applies the estimates to a copy of the network, so what-ifs run on the
calibrated twin. The types and helpers of the split modules are importable from here.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import numpy.typing as npt
import pandas as pd

from pumptwin.twin.assets import Registry
from pumptwin.twin.health.calibration import (
    DAY_S,
    Estimate,
    EstimationError,
    EstimatorSettings,
    LineEstimate,
    PumpEstimate,
    TwinCalibration,
    resample_readings,
)
from pumptwin.twin.health.condition import MachineCondition, RlsFit, VibrationBaseline
from pumptwin.twin.health.line import (
    Segment,
    equivalent_roughness,
    line_segments,
    pipe_friction_loss_m,
    pipe_minor_loss_m,
    update_line,
)
from pumptwin.twin.health.pumps import (
    RatedCurves,
    common_head_loss,
    head_wear_sample,
    motor_shaft_power_w,
    pump_window,
    rated_curves,
    station_pressures,
    thermal_settled,
    update_pump,
)
from pumptwin.twin.hydraulic.network import Network
from pumptwin.twin.hydraulic.pumps import Degradation, apply_degradation
from pumptwin.twin.units import G_M_S2

FloatArray = npt.NDArray[np.float64]

__all__ = [
    "DAY_S",
    "Estimate",
    "EstimationError",
    "EstimatorSettings",
    "LineEstimate",
    "MachineCondition",
    "PumpEstimate",
    "RlsFit",
    "Segment",
    "TwinCalibration",
    "VibrationBaseline",
    "calibrated_network",
    "initial_calibration",
    "line_segments",
    "motor_shaft_power_w",
    "pipe_friction_loss_m",
    "pipe_minor_loss_m",
    "resample_readings",
    "update_calibration",
]


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
    rated_cache: dict[str, RatedCurves] = {}
    pumps = dict(base.pumps)
    headers: dict[int, dict[str, FloatArray]] = {ln: {} for ln in range(1, registry.n_lines + 1)}
    for station in registry.stations:
        suction, discharge, running = station_pressures(wide, registry, station)
        headers[station.line][station.suction_node] = suction
        headers[station.line][station.discharge_node] = discharge
        wins = {}
        for name, on in running.items():
            spec = registry.pumps[registry.pump_index(name)]
            if spec.pump_id not in rated_cache:
                rated_cache[spec.pump_id] = rated_curves(network, spec.pump_id)
            wins[name] = (spec, pump_window(wide, spec, on, suction, discharge, rho_g))
        samples = {
            name: head_wear_sample(rated_cache[spec.pump_id], win, st.sample_sd_floor)
            for name, (spec, win) in wins.items()
        }
        jumps = [samples[name][0] - pumps[name].impeller_wear.value for name in wins]
        shared = dict(zip(wins, common_head_loss(jumps, st.common_head_jump), strict=True))
        for name, on in running.items():
            spec, win = wins[name]
            last = wide.index[on][-1] + period if on.any() else None
            before = pumps[name]
            ran_on = before.last_running_ts is not None and base.ts is not None and before.last_running_ts >= base.ts
            settled, since = thermal_settled(
                on, wide.index, base.ts is None or ran_on, before.running_since_ts, st.thermal_settle_s
            )
            pumps[name] = update_pump(
                before,
                spec,
                rated_cache[spec.pump_id],
                win,
                network,
                dt_s,
                last,
                settled,
                since,
                st,
                head_wear=samples[name],
                station_head_loss=shared[name],
            )
    lines = {
        ln: update_line(est, registry, network, wide, headers.get(ln, {}), dt_s, st) for ln, est in base.lines.items()
    }
    return TwinCalibration(end, pumps, lines, base.n_updates + 1)


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
    pipes = tuple(replace(p, roughness=equivalent_roughness(out, p, m, est.flow_m3s)) for p in out.pipes)
    return replace(out, pipes=pipes)
