"""The living twin's bridge: readings to calibration, calibration to what-if conditions and responses.

Synchronising the twin folds the raw readings since the last calibration into it window by
window (`fold_readings`, each window one `twin.estimation.update_calibration`), then fuses the
calibration with the model scores into the `twin.state.TwinState`. This module holds the pure
steps between those pieces and the declarative what-ifs of `twin.scenarios`:

**Machine condition** (`machine_condition`). The what-ifs predict vibration and bearing
temperature with the twin's own condition models (`twin.health.condition`); a pump's
`MachineCondition` carries what its calibration has learnt: the drive-end vibration baseline's
coefficients (once it has `EstimatorSettings.vib_min_samples` samples), the vibration above that
baseline in the last window as a root-sum-square excess sqrt(v^2 - (v - excess)^2) (at the
window's speed, taken as rated), the drive-end bearing rise R at rated speed and the BEP (the
current estimate, so a hotter bearing shows) and its learnt load shape. What is not known yet
keeps the generic values of a new machine.

**Candidate responses** (`candidate_responses`). For each pump of the line with an active alert:
slow it by 5 % and 10 %, switch to its station's standby (when one is stopped), stop it, and
reduce the line's throughput by 10 %; for an alert on the line itself (friction change, leak
suspicion, meter bias, MAOP margin): reduce the throughput by 10 % and stop the upstream
station. The base case comes first.

All numbers are SI except where a name says otherwise (``_mm_s``, ``_k``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pandas as pd

from pumptwin.twin.assets import Registry
from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.health.condition import MachineCondition, bearing_shape
from pumptwin.twin.health.estimation import (
    EstimatorSettings,
    PumpEstimate,
    TwinCalibration,
    initial_calibration,
    update_calibration,
)
from pumptwin.twin.health.state import TwinState, update_state
from pumptwin.twin.hydraulic.network import LinkStatus, Network
from pumptwin.twin.whatif.scenarios import BASE_NAME, ScenarioSpec, SpeedChange

SPEED_STEPS = (0.95, 0.90)
"""Speed factors offered for a pump with an alert."""
THROUGHPUT_FACTOR = 0.9
"""Throughput factor offered for any alert on a line."""
ATTENTION: tuple[str, ...] = ("warning", "alarm")
"""Statuses that need an operator's attention."""


class SyncError(PumptwinError, ValueError):
    """A calibration, state or window that cannot be synchronised; the message names the value."""


def line_name(line: int) -> str:
    """Asset name of a line in the twin state (``LINE01``)."""
    return f"LINE{line:02d}"


def align_calibration(
    calibration: TwinCalibration | None, registry: Registry, settings: EstimatorSettings | None = None
) -> TwinCalibration:
    """The calibration with prior estimates added for pumps and lines of ``registry`` it lacks.

    A station added to the raw store after the first synchronisation thus starts from the prior
    while the others keep what they learnt. None gives `initial_calibration`.
    """
    prior = initial_calibration(registry, settings)
    if calibration is None:
        return prior
    pumps = {**{k: v for k, v in prior.pumps.items() if k not in calibration.pumps}, **calibration.pumps}
    lines = {**{k: v for k, v in prior.lines.items() if k not in calibration.lines}, **calibration.lines}
    if len(pumps) == len(calibration.pumps) and len(lines) == len(calibration.lines):
        return calibration
    return replace(calibration, pumps=pumps, lines=dict(sorted(lines.items())))


def windows(start: pd.Timestamp, end: pd.Timestamp, window_s: float) -> Iterator[tuple[pd.Timestamp, pd.Timestamp]]:
    """Consecutive [a, b) windows of ``window_s`` seconds covering [start, end) (the last may be shorter).

    Raises:
        SyncError: A window length that is not a positive number.
    """
    if not (math.isfinite(window_s) and window_s > 0):
        raise SyncError(f"window must be a number of seconds > 0, got {window_s}")
    step = pd.Timedelta(seconds=window_s)
    a = start
    while a < end:
        b = min(a + step, end)
        yield a, b
        a = b


def fold_readings(  # noqa: PLR0913 - the pieces of one synchronisation
    calibration: TwinCalibration | None,
    readings: pd.DataFrame,
    registry: Registry,
    network: Network,
    window_s: float,
    settings: EstimatorSettings | None = None,
    *,
    state: TwinState | None = None,
    scores: pd.DataFrame | None = None,
    now: pd.Timestamp | None = None,
) -> tuple[TwinCalibration, TwinState | None, int]:
    """Fold readings into the calibration window by window, assessing the state after each.

    The estimator treats each window's robust mean as one measurement, so a long backlog is
    folded in the windows it would have been folded in live, not as one; the state is updated
    after every window (timed at the window's end), so an alert's ``since`` is the first window
    in which it held.

    Args:
        calibration: The previous calibration (None: the prior).
        readings: Long tag table ``tag, ts, value, quality`` (ts UTC).
        registry: The fleet.
        network: One line's network.
        window_s: Window length, s.
        settings: Estimator constants.
        state: The previous twin state (None: none yet).
        scores: The latest model scores (see `twin.state.update_state`); a window sees only the
            rows whose ``event_timestamp`` (when given) is not after its end.
        now: Time of the final state (default: the calibration's end); never before the previous state.

    Returns:
        The calibration, the state (the previous one when no window held readings) and the
        number of windows that held readings.
    """
    cal = align_calibration(calibration, registry, settings)
    if readings.empty:
        return cal, state, 0
    ts = pd.to_datetime(readings["ts"], utc=True)
    first, last = ts.min(), ts.max()
    count = 0
    for a, b in windows(first, last + pd.Timedelta(seconds=1), window_s):
        part = readings[(ts >= a) & (ts < b)]
        if part.empty:
            continue
        cal = update_calibration(cal, part, registry, network, settings)
        assert cal.ts is not None  # a window with readings was folded in
        when = cal.ts if state is None else max(cal.ts, state.ts)
        state = update_state(state, cal, scores_known_at(scores, when), when)
        count += 1
    if count and now is not None and state is not None and now > state.ts:
        state = update_state(state, cal, scores, now)
    return cal, state, count


def scores_known_at(scores: pd.DataFrame | None, when: pd.Timestamp) -> pd.DataFrame | None:
    """The score rows whose features were computed by ``when`` (all of them without ``event_timestamp``).

    Folding a backlog must not let scores of the newest features speak for earlier windows: an
    alert raised by a model then starts when the model saw it, not at the start of the backlog.
    """
    if scores is None or scores.empty or "event_timestamp" not in scores.columns:
        return scores
    stamps = pd.to_datetime(scores["event_timestamp"], utc=True)
    return scores[(stamps <= when).to_numpy()]


def operating_network(
    network: Network, calibration: TwinCalibration, line: int = 1, min_running_fraction: float = 0.5
) -> Network:
    """The network with its pumps open or closed as they ran in the calibration's last window.

    A pump counts as running when it ran at least ``min_running_fraction`` of that window. Pumps
    the calibration has not seen keep their status, and a calibration without running data
    leaves the network as it is.
    """
    seen = {p.pump_id: p for p in calibration.pumps.values() if p.line == line}
    if not any(p.n_samples > 0 for p in seen.values()):
        return network
    pumps = tuple(
        replace(
            p,
            status=LinkStatus.OPEN if seen[p.id].running_fraction >= min_running_fraction else LinkStatus.CLOSED,
        )
        if p.id in seen
        else p
        for p in network.pumps
    )
    return replace(network, pumps=pumps)


# --------------------------------------------------------------------------------------------
# Calibration -> what-if machine condition
# --------------------------------------------------------------------------------------------


def vibration_excess_mm_s(mean_mm_s: float, excess_mm_s: float) -> float:
    """Root-sum-square vibration above the baseline, sqrt(v^2 - (v - excess)^2) in mm/s (0 when none)."""
    if not (math.isfinite(mean_mm_s) and math.isfinite(excess_mm_s)) or excess_mm_s <= 0:
        return 0.0
    base = max(mean_mm_s - excess_mm_s, 0.0)
    return math.sqrt(max(mean_mm_s**2 - base**2, 0.0))


def machine_condition(estimate: PumpEstimate, min_samples: float | None = None) -> MachineCondition:
    """The what-if `MachineCondition` of one calibrated pump (see the module docstring).

    Args:
        estimate: The pump's calibration.
        min_samples: Forgotten sample weight a vibration baseline needs to be used
            (default `EstimatorSettings.vib_min_samples`).
    """
    need = EstimatorSettings().vib_min_samples if min_samples is None else min_samples
    default = MachineCondition()
    fields: dict[str, Any] = {}
    if estimate.vib_de.weight >= need:
        coefficients = tuple(float(a) for a in estimate.vib_de.coefficients())
        if all(math.isfinite(a) for a in coefficients):
            fields["vibration_mm2_s2"] = coefficients
            fields["vibration_excess_mm_s"] = vibration_excess_mm_s(estimate.vib_de_mm_s, estimate.vib_excess_de_mm_s)
    rise = estimate.thermal_de.value
    if math.isfinite(rise) and rise > 0:
        fields["bearing_rise_k"] = rise
        fields["bearing_load_shape"] = bearing_shape(estimate.bearing_de, rise)
    return replace(default, **fields)


def machine_conditions(
    calibration: TwinCalibration, registry: Registry, network: Network, line: int = 1
) -> dict[str, MachineCondition]:
    """Calibrated `MachineCondition` by network pump id, for the pumps of ``line``.

    Pumps of the network that the calibration or the registry does not know keep the rated
    defaults (they are left out of the mapping).

    Raises:
        SyncError: A registry pump of the line whose id is not in the network.
    """
    ids = {p.id for p in network.pumps}
    out: dict[str, MachineCondition] = {}
    for spec in registry.pumps:
        if spec.line != line:
            continue
        if spec.pump_id not in ids:
            raise SyncError(f"pump {spec.name} ({spec.pump_id!r}) is not in network {network.name!r}")
        estimate = calibration.pumps.get(spec.name)
        if estimate is not None:
            out[spec.pump_id] = machine_condition(estimate)
    return out


# --------------------------------------------------------------------------------------------
# Margins and alerts -> candidate responses
# --------------------------------------------------------------------------------------------


def margins_frame(calibration: TwinCalibration) -> pd.DataFrame:
    """The calibrated margins: NPSH per pump (m) and MAOP per line (fraction below MAOP).

    Example rows: ``PS01.P1, npsh_margin, 7.9, m, PS1-S`` and ``LINE01, maop_margin, 0.21, -, KP040``.
    """
    rows: list[dict[str, object]] = [
        {
            "asset": name,
            "margin": "npsh_margin",
            "value": p.npsh_margin_m,
            "unit": "m",
            "where": p.pump_id,
        }
        for name, p in calibration.pumps.items()
        if p.n_samples > 0
    ]
    rows += [
        {
            "asset": line_name(n),
            "margin": "maop_margin",
            "value": ln.maop_margin,
            "unit": "-",
            "where": ln.maop_element or "-",
        }
        for n, ln in calibration.lines.items()
    ]
    return pd.DataFrame(rows, columns=["asset", "margin", "value", "unit", "where"])


def needs_attention(state: TwinState) -> bool:
    """True when any asset is in warning or alarm."""
    return any(h.status in ATTENTION for h in state.health)


def alerted_assets(state: TwinState) -> list[str]:
    """Assets with at least one active alert, in the state's order."""
    names = {a.asset for a in state.alerts}
    return [h.asset for h in state.health if h.asset in names]


def _spare_at_station(network: Network, pump_id: str) -> bool:
    pumps = {p.id: p for p in network.pumps}
    station = pumps[pump_id].station
    if station is None:
        return False
    return any(p.station == station and p.id != pump_id and p.status == LinkStatus.CLOSED for p in network.pumps)


def _running(network: Network, pump_id: str) -> bool:
    return any(p.id == pump_id and p.status != LinkStatus.CLOSED for p in network.pumps)


def _pump_responses(asset: str, pump_id: str, network: Network) -> list[ScenarioSpec]:
    specs = [
        ScenarioSpec(name=f"{asset}: speed -{round((1 - f) * 100)} %", speeds=(SpeedChange(pump_id, factor=f),))
        for f in SPEED_STEPS
    ]
    if _spare_at_station(network, pump_id):
        specs.append(ScenarioSpec(name=f"{asset}: switch to standby", standby=(pump_id,)))
    specs.append(ScenarioSpec(name=f"{asset}: stop", stop=(pump_id,)))
    return specs


def _upstream_station(registry: Registry, line: int) -> str | None:
    for station in registry.stations:
        if station.line == line:
            return station.network_station
    return None


def candidate_responses(state: TwinState, registry: Registry, network: Network, line: int = 1) -> list[ScenarioSpec]:
    """The responses an operator would weigh for the active alerts of ``line``, after the base case.

    Args:
        state: The twin state with its active alerts.
        registry: The fleet (pump names to network pump ids, stations).
        network: The line's network (standby pumps are those closed in it).
        line: Which line, 1-based.

    Returns:
        ``base case`` first, then per alerted pump that runs in ``network`` (pass
        `operating_network` for the current state): speed -5 %, speed -10 %, switch to standby
        (when its station has a stopped pump), stop; then throughput -10 %; for a line alert
        also the upstream station stopped. Only the base case when nothing is alerted.

    Raises:
        SyncError: An alerted pump that is not in the network.
    """
    specs: list[ScenarioSpec] = [ScenarioSpec(name=BASE_NAME)]
    ids = {p.id for p in network.pumps}
    by_name = {p.name: p for p in registry.pumps}
    throughput = False
    line_alert = False
    for asset in alerted_assets(state):
        spec = by_name.get(asset)
        if spec is not None and spec.line == line:
            if spec.pump_id not in ids:
                raise SyncError(f"alerted pump {asset} ({spec.pump_id!r}) is not in network {network.name!r}")
            if _running(network, spec.pump_id):
                specs += _pump_responses(asset, spec.pump_id, network)
            throughput = True
        elif asset == line_name(line):
            line_alert = throughput = True
    if throughput:
        specs.append(ScenarioSpec(name=f"{line_name(line)}: throughput -10 %", flow_factor=THROUGHPUT_FACTOR))
    station = _upstream_station(registry, line) if line_alert else None
    if station is not None:
        running = tuple(p.id for p in network.pumps if p.station == station and p.status != LinkStatus.CLOSED)
        if running:
            specs.append(ScenarioSpec(name=f"{line_name(line)}: stop {station}", stop=running))
    return specs


def alerted_lines(state: TwinState, registry: Registry) -> list[int]:
    """Lines with an alert on the line itself or on one of its pumps, ascending."""
    names = set(alerted_assets(state))
    lines = {p.line for p in registry.pumps if p.name in names}
    lines |= {n for n in range(1, registry.n_lines + 1) if line_name(n) in names}
    return sorted(lines)


def rated_speeds_rpm(registry: Registry, line: int = 1) -> dict[str, float]:
    """Rated speed in rpm by network pump id for the pumps of ``line``."""
    return {p.pump_id: float(p.rated_speed_rpm) for p in registry.pumps if p.line == line}
