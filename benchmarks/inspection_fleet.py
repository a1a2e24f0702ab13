"""Fleets of the inspection benchmark: a year of pump degradation on two lines, drawn from a seed.

A fleet is two lines of the reference pipeline (four stations ``PS01``..``PS04``, three pumps
each: ``P1`` and ``P2`` on duty, ``P3`` the standby), run for `YEAR_DAYS` days at `STEP_S` steps
with throughput nominated twice a day and the field instruments' full realism
(`pumptwin.plant.sensors.SensorConfig` defaults: noise, 5 % of the tags drifting, stuck values,
communication outages, dropouts, spikes).

**Faults** (`draw_faults`): each of the eight duty pumps degrades once in the year; the eight modes
are every pump mode (`PUMP_MODES`: bearing wear, impeller wear, cavitation, seal failure, motor
overheating, strainer clog) plus two drawn again, shuffled over the pumps, cavitation on the first
station of a line (suction from the source tank). Onset to functional
failure is drawn per mode from `PF_DAYS` (days for a strainer, weeks for seals, motors and
cavitation, months for bearings and impellers); failures fall between `FIRST_FAILURE_DAY` and
`LAST_FAILURE_DAY` and no fault starts before `LEARN_DAYS` (the twin learns its baselines). The
laws and magnitudes at failure are the modes' defaults (`MODE_INFO`), except cavitation: its NPSHr
rise at failure is sized per fault (`npsh_by_day`, `cavitation_magnitude`) so that NPSHa / NPSHr
reaches `CAVITATION_RATIO` at failure (the stations' NPSH margins are large and change over the
year as the line's tanks fill and drain; a doubled NPSHr would often not cavitate). Faults follow
the clock (no stress wear). Pipeline leaks are left to leak detection and in-line inspection, not
to station rounds.

Each pump has one fault, so a repair (`Plant.repair` removes a pump's faults) never removes
another fault.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pumptwin.plant.health import MODE_INFO, PUMP_MODES, Mode
from pumptwin.plant.scenario import FaultSpec, OperationsSpec, Scenario
from pumptwin.plant.sensors import SensorConfig
from pumptwin.plant.simulator import Plant
from pumptwin.twin.units import DAY_S

START = pd.Timestamp("2024-01-01T00:00:00Z")
"""Start of every fleet's year."""
STEP_S = 600.0
"""Plant time step, s (10 min)."""
YEAR_DAYS = 364
"""Length of the year simulated, days (52 weeks)."""
LINES = 2
"""Lines in a fleet."""
DUTY = ("P1", "P2")
"""Duty pumps of every station (``P3`` is the standby)."""
STANDBY = "P3"
PF_DAYS: dict[Mode, tuple[float, float]] = {
    Mode.STRAINER_CLOG: (5.0, 20.0),
    Mode.SEAL_FAILURE: (21.0, 56.0),
    Mode.MOTOR_OVERHEATING: (21.0, 56.0),
    Mode.CAVITATION: (28.0, 70.0),
    Mode.BEARING_WEAR: (90.0, 180.0),
    Mode.IMPELLER_WEAR: (120.0, 240.0),
}
"""Range of the onset-to-failure time of each mode, days."""
LEARN_DAYS = 21.0
"""No fault starts before this day."""
FIRST_FAILURE_DAY = 35.0
LAST_FAILURE_DAY = 355.0
"""Functional failures fall in [FIRST_FAILURE_DAY, LAST_FAILURE_DAY] days."""
EXTRA_MODES = 2
"""Modes drawn a second time (eight duty pumps, six modes)."""
CAVITATION_RATIO = 0.85
"""NPSHa / NPSHr at a cavitation fault's functional failure."""
CAVITATION_PROBE_RISE = 0.1
"""NPSHr rise of the probe run that measures each pump's NPSHa and NPSHr."""
FIELD_SENSORS = SensorConfig()
"""Field instruments: every imperfection at its default rate."""
OPERATIONS = OperationsSpec(nomination_s=12 * 3600.0)
"""Throughput nominated twice a day (at 00:00 and 12:00) around the daily cycle."""


@dataclass(frozen=True)
class FaultDraw:
    """One pump fault of a fleet.

    Attributes:
        asset: ``STATION.ASSET``.
        mode: Pump mode.
        onset_day: Onset, days after the start.
        failure_day: Functional failure, days after the start.
        magnitude: Size at failure, in the mode's `MODE_INFO` unit.
        bearing: ``DE`` or ``NDE`` (bearing wear).
    """

    asset: str
    mode: str
    onset_day: float
    failure_day: float
    magnitude: float
    bearing: str = "DE"

    @property
    def onset_ts(self) -> pd.Timestamp:
        """Onset time (UTC)."""
        return START + pd.Timedelta(days=self.onset_day)

    @property
    def failure_ts(self) -> pd.Timestamp:
        """Functional failure time (UTC)."""
        return START + pd.Timedelta(days=self.failure_day)

    def spec(self) -> FaultSpec:
        """The plant's fault."""
        mode = Mode(self.mode)
        info = MODE_INFO[mode]
        return FaultSpec(
            mode,
            self.asset,
            self.onset_day * DAY_S,
            self.failure_day * DAY_S,
            info.law,
            self.magnitude,
            info.trips,
            bearing=self.bearing,
        )


def duty_pumps(lines: int = LINES) -> list[str]:
    """Duty pumps of a fleet of ``lines`` lines (two stations per line)."""
    return [f"PS{s:02d}.{p}" for s in range(1, 2 * lines + 1) for p in DUTY]


def fleet_scenario(seed: int, faults: tuple[FaultDraw, ...], days: float = YEAR_DAYS, lines: int = LINES) -> Scenario:
    """The plant scenario of a fleet: ``lines`` lines, ``days`` days at `STEP_S`, field sensors, the faults."""
    return Scenario(
        name=f"inspection-s{seed}",
        start=START,
        duration_s=days * DAY_S,
        step_s=STEP_S,
        seed=seed,
        lines=lines,
        faults=tuple(f.spec() for f in faults),
        operations=OPERATIONS,
        sensors=FIELD_SENSORS,
        truth_period_s=STEP_S,
    )


def npsh_by_day(seed: int, lines: int = LINES, days: float = YEAR_DAYS) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Daily median NPSH available at the impeller eye and NPSH required of every duty pump (m), by day.

    The suction conditions change over the year (the line's tanks fill and drain), so a cavitation
    fault is sized at its own failure time. Two healthy runs of the fleet with ideal instruments, one
    with every duty pump's NPSHr raised by `CAVITATION_PROBE_RISE`, give the true NPSH margins
    m0 = a - r and m1 = a - r (1 + rho), hence r = (m0 - m1) / rho and a = m0 + r.

    Returns:
        (NPSHa, NPSHr): frames indexed by day (0-based), one column per duty pump, m.
    """
    pumps = duty_pumps(lines)
    margins = []
    for rise in (0.0, CAVITATION_PROBE_RISE):
        faults = tuple(FaultSpec(Mode.CAVITATION, p, 0.0, 0.0, "step", rise, False) for p in pumps) if rise else ()
        base = fleet_scenario(seed, (), days=days, lines=lines)
        plant = Plant(
            Scenario(
                name=base.name,
                start=base.start,
                duration_s=base.duration_s,
                step_s=base.step_s,
                seed=base.seed,
                lines=lines,
                faults=faults,
                operations=OPERATIONS,
                sensors=SensorConfig.ideal(),
                truth_period_s=3600.0,
            )
        )
        plant.run()
        truth = plant.ground_truth().pumps
        truth = truth[truth["asset"].isin(pumps) & truth["running"]]
        day = ((truth["ts"] - START).dt.total_seconds() // DAY_S).astype(int)
        margins.append(truth.assign(day=day).pivot_table(index="day", columns="asset", values="npsh_margin_m"))
    r = (margins[0] - margins[1]) / CAVITATION_PROBE_RISE
    return margins[0] + r, r


def cavitation_magnitude(npsha: pd.DataFrame, npshr: pd.DataFrame, asset: str, failure_day: float) -> float:
    """NPSHr rise that brings NPSHa / NPSHr to `CAVITATION_RATIO` at ``failure_day`` (median of the 3 days before).

    At least 0.3, at most 20; 2 when the pump's NPSH is unknown then.
    """
    days = [d for d in range(int(failure_day) - 3, int(failure_day) + 1) if d in npsha.index]
    if asset not in npsha.columns or not days:
        return 2.0
    a = float(np.nanmedian(npsha.loc[days, asset]))
    r = float(np.nanmedian(npshr.loc[days, asset]))
    if not (np.isfinite(a) and np.isfinite(r) and r > 0):
        return 2.0
    return float(np.clip(a / (CAVITATION_RATIO * r) - 1.0, 0.3, 20.0))


def _first_stations(lines: int) -> set[str]:
    """The first station of every line (two stations per line)."""
    return {f"PS{2 * line + 1:02d}" for line in range(lines)}


def draw_faults(
    seed: int, lines: int = LINES, npsh: tuple[pd.DataFrame, pd.DataFrame] | None = None
) -> tuple[FaultDraw, ...]:
    """The fleet's faults: one per duty pump, every mode at least once (see the module docstring).

    Args:
        seed: Fleet seed.
        lines: Lines in the fleet.
        npsh: Daily NPSHa and NPSHr per duty pump (default `npsh_by_day`, run only when a cavitation
            fault is drawn).
    """
    rng = np.random.default_rng([seed, 4242])
    pumps = duty_pumps(lines)
    extra = max(0, len(pumps) - len(PUMP_MODES))
    modes = list(PUMP_MODES) + [PUMP_MODES[int(i)] for i in rng.integers(len(PUMP_MODES), size=extra)]
    modes = modes[: len(pumps)]
    order = [int(i) for i in rng.permutation(len(pumps))]
    # cavitation goes to the first station of a line: its suction comes from the source tank, so its
    # NPSH available does not change with the line's flow (a downstream station's does, by tens of m)
    upstream = [k for k, i in enumerate(order) if pumps[i].split(".", 1)[0] in _first_stations(lines)]
    for k, mode in enumerate(list(modes)):
        if mode is Mode.CAVITATION and k not in upstream:
            j = next(u for u in upstream if modes[u] is not Mode.CAVITATION)
            modes[k], modes[j] = modes[j], modes[k]
    out: list[FaultDraw] = []
    for k, i in enumerate(order):
        mode = modes[k]
        asset = pumps[i]
        lo, hi = PF_DAYS[mode]
        duration = float(np.round(rng.uniform(lo, hi), 1))
        earliest = max(FIRST_FAILURE_DAY, LEARN_DAYS + duration)
        failure = float(np.round(rng.uniform(earliest, LAST_FAILURE_DAY), 1))
        if mode is Mode.CAVITATION:
            npsh = npsh if npsh is not None else npsh_by_day(seed, lines)
            magnitude = cavitation_magnitude(npsh[0], npsh[1], asset, failure)
        else:
            magnitude = MODE_INFO[mode].magnitude
        bearing = "DE" if rng.random() < 0.6 else "NDE"  # noqa: PLR2004 - drive-end bearings fail more often
        out.append(FaultDraw(asset, mode.value, round(failure - duration, 1), failure, round(magnitude, 3), bearing))
    return tuple(sorted(out, key=lambda f: f.asset))
