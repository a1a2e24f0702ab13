"""Episodes of the closed-loop benchmark: plant histories with one load-dependent fault, or none.

An episode (`EpisodeSpec`) is one line of the reference pipeline (two stations of three pumps, two
on duty) run at 60 s steps with nominations every 4 h around a duty speed. A fault episode has
one pump fault with stress wear on (`pumptwin.plant.scenario.FaultSpec.stress`): its damage clock
runs at (s / s_duty)^p while the pump turns, so at the nominated duty its functional failure comes
at the drawn failure time, and the protection trips the pump then (every mode trips in this
benchmark). The fault starts after a healthy day (the twin learns its baselines) and reaches
functional failure `FAULT_DAYS` later. A planned maintenance window recurs every `WINDOW_PERIOD_S`;
its phase is drawn per episode so the first window after the nominal failure falls `WINDOW_AFTER_S`
after it. The episode ends at that window. Healthy episodes have no fault and last `HEALTHY_S`.

Everything is drawn from the seed, so the three ways of running an episode see the same plant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pumptwin.plant.health import MODE_INFO, PUMP_MODES, Mode, severity
from pumptwin.plant.scenario import FaultSpec, OperationsSpec, Scenario
from pumptwin.plant.sensors import SensorConfig
from pumptwin.plant.simulator import Plant

START = pd.Timestamp("2024-03-01T00:00:00Z")
STEP_S = 60.0
"""Plant time step, s."""
DAY_S = 86_400.0
ONSET_S = 1.0 * DAY_S
"""Healthy running before a fault starts, s."""
FAULT_DAYS = (2.0, 3.0)
"""Range of onset-to-failure times drawn, days."""
WINDOW_PERIOD_S = 7.0 * DAY_S
"""Planned maintenance windows recur this often, s."""
WINDOW_AFTER_S = (0.5 * DAY_S, 2.0 * DAY_S)
"""Range of the time from the nominal failure to the next planned window, s (the window's phase)."""
HEALTHY_S = 3.0 * DAY_S
"""Length of a healthy episode, s."""
DUTY_PUMPS = ("PS01.P1", "PS01.P2", "PS02.P1", "PS02.P2")
"""Pumps on duty at the start (the third pump of each station is its standby)."""
SPEEDS = (0.92, 0.98)
"""Range of the duty speeds drawn, relative to rated."""
SEVERITIES = (0.8, 1.0)
"""Range of the fault magnitude drawn, as a share of the mode's magnitude at failure (`MODE_INFO`)."""
ORACLE_SEVERITY = 0.3
"""True severity from which the stand-in classifier names the fault's mode."""
ORACLE_VERSION = "bench-oracle-diagnosis"
"""Model version written on the stand-in classifier's scores."""
FIELD_SENSORS = SensorConfig(drift_fraction=0.0, stuck_per_tag_day=0.0, outage_per_station_day=0.0)
"""Instruments: field noise, dropouts and spikes, no drift or outages."""


@dataclass(frozen=True)
class EpisodeSpec:
    """One plant history of the benchmark.

    Attributes:
        id: Name (``s3-bearing_wear``; ``s3-healthy``).
        seed: Plant seed.
        mode: Pump fault mode ("" for a healthy episode).
        target: Faulty pump ("" for a healthy episode).
        onset_s: Fault onset, s after the start.
        failure_s: Nominal functional failure (at the duty speed), s after the start.
        magnitude_share: Fault magnitude as a share of the mode's magnitude at failure.
        speed: Duty speed, relative to rated.
        end_s: The planned window that ends the episode, s after the start.
    """

    id: str
    seed: int
    mode: str
    target: str
    onset_s: float
    failure_s: float
    magnitude_share: float
    speed: float
    end_s: float

    @property
    def healthy(self) -> bool:
        """Whether the episode has no fault."""
        return not self.mode


def draw_episodes(seeds: tuple[int, ...], healthy: int = 1) -> list[EpisodeSpec]:
    """Per seed, one fault episode of every pump mode (on a duty pump drawn per mode) and ``healthy`` healthy ones."""
    out: list[EpisodeSpec] = []
    for seed in seeds:
        rng = np.random.default_rng([seed, 7001])
        for i, mode in enumerate(PUMP_MODES):
            failure = ONSET_S + float(np.round(rng.uniform(*FAULT_DAYS), 2)) * DAY_S
            after = float(np.round(rng.uniform(*WINDOW_AFTER_S) / 3600.0)) * 3600.0
            out.append(
                EpisodeSpec(
                    id=f"s{seed}-{mode.value}",
                    seed=seed * 100 + i,
                    mode=mode.value,
                    target=DUTY_PUMPS[int(rng.integers(len(DUTY_PUMPS)))],
                    onset_s=ONSET_S,
                    failure_s=failure,
                    magnitude_share=float(np.round(rng.uniform(*SEVERITIES), 3)),
                    speed=float(np.round(rng.uniform(*SPEEDS), 3)),
                    end_s=failure + after,
                )
            )
        for h in range(healthy):
            speed = float(np.round(rng.uniform(*SPEEDS), 3))
            out.append(
                EpisodeSpec(f"s{seed}-healthy-{h}", seed * 100 + 50 + h, "", "", 0.0, 0.0, 0.0, speed, HEALTHY_S)
            )
    return out


def scenario_of(spec: EpisodeSpec, *, faults: bool = True) -> Scenario:
    """The plant scenario of an episode (``faults=False``: the same plant and nominations without the fault)."""
    fault: tuple[FaultSpec, ...] = ()
    if faults and not spec.healthy:
        mode = Mode(spec.mode)
        info = MODE_INFO[mode]
        fault = (
            FaultSpec(
                mode,
                spec.target,
                spec.onset_s,
                spec.failure_s,
                info.law,
                spec.magnitude_share * info.magnitude,
                True,
                stress=True,
            ),
        )
    return Scenario(
        name=spec.id,
        start=START,
        duration_s=spec.end_s,
        step_s=STEP_S,
        seed=spec.seed,
        operations=OperationsSpec(speed=spec.speed),
        faults=fault,
        sensors=FIELD_SENSORS,
        truth_period_s=600.0,
    )


def oracle_scores(spec: EpisodeSpec, plant: Plant) -> pd.DataFrame | None:
    """A stand-in classifier's scores now: ``p_<mode>`` of the faulty pump from true severity `ORACLE_SEVERITY`.

    The probability is 0.5 + 0.45 x severity (an alert from the threshold on). None before that,
    after a repair and in healthy episodes: the stand-in never names a healthy pump.
    """
    if spec.healthy:
        return None
    clock = plant.damage_clocks_s().get(f"{spec.mode}@{spec.target}")
    if clock is None:
        return None
    law = MODE_INFO[Mode(spec.mode)].law
    sev = float(severity(clock, spec.onset_s, spec.failure_s, law))
    if sev < ORACLE_SEVERITY:
        return None
    return pd.DataFrame(
        {
            "asset": [spec.target],
            f"p_{spec.mode}": [min(0.5 + 0.45 * sev, 0.95)],
            "model_version": [ORACLE_VERSION],
            "event_timestamp": [plant.now],
        }
    )
