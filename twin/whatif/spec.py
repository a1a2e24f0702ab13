"""The declared what-if scenario: its actions, its file's settings, the names and defaults they share.

A `ScenarioSpec` is one scenario as an operator declares it (in a scenario file, on the command
line, in the Prefect form or as a candidate response of the twin), before it is resolved against
a network (`twin.whatif.resolve`). `twin.whatif.parsing` reads files and flags into these; the
schema is described in `twin.whatif.scenarios`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pumptwin.twin.assets import DEFAULT_RATED_SPEED_RPM
from pumptwin.twin.errors import PumptwinError

SCHEMA_VERSION = 1
"""Version of the scenario file schema this module reads."""
DEFAULT_RATED_RPM = DEFAULT_RATED_SPEED_RPM
"""Rated speed assumed when none is given, rpm (the fleet registry's default: a 4-pole motor at 50 Hz)."""
DEFAULT_AMBIENT_C = 25.0
"""Ambient temperature assumed when none is given, degC."""
RUPTURE_DISCHARGE_COEFF = 0.6
"""Discharge coefficient Cd of a pipe break (sharp-edged orifice)."""
BASE_NAME = "base case"
"""Name of the base scenario (reserved)."""
EXPONENT_TOLERANCE = 1e-9
"""Slack on the emitter exponent a rupture (an orifice, exponent 0.5) needs."""
KM_TOLERANCE = 1e-9
"""Slack on the line's ends when checking a chainage, km."""

FILE_KEYS = ("version", "rated_speed_rpm", "ambient_c", "source", "delivery", "scenarios")
SCENARIO_KEYS = (
    "name",
    "flow",
    "speed",
    "stop",
    "start",
    "standby",
    "trip",
    "links",
    "valves",
    "demand_factor",
    "demand",
    "fixed_heads",
    "suction_drop",
    "leak",
    "rupture",
)


class ScenarioError(PumptwinError, ValueError):
    """A scenario file, flag or action is invalid; the message names the bad key or value."""


@dataclass(frozen=True)
class SpeedChange:
    """A speed for a pump, a station or ``all``: a factor on the base speed or an absolute rpm."""

    target: str
    factor: float | None = None
    rpm: float | None = None


@dataclass(frozen=True)
class LeakSpec:
    """A leak at a node or a chainage (km), of a flow (m3/s) or a fraction of the base throughput."""

    node: str | None = None
    km: float | None = None
    flow_m3s: float | None = None
    fraction: float | None = None


@dataclass(frozen=True)
class RuptureSpec:
    """A line break at a node or chainage (km): an orifice of ``area_fraction`` of the pipe bore."""

    node: str | None = None
    km: float | None = None
    area_fraction: float = 1.0


@dataclass(frozen=True)
class ScenarioSpec:
    """One declared scenario before it is resolved against a network (see the module docstring)."""

    name: str
    flow_factor: float | None = None
    flow_m3s: float | None = None
    speeds: tuple[SpeedChange, ...] = ()
    stop: tuple[str, ...] = ()
    start: tuple[str, ...] = ()
    standby: tuple[str, ...] = ()
    trip: tuple[str, ...] = ()
    links: dict[str, str] = field(default_factory=dict)
    valves: dict[str, float] = field(default_factory=dict)
    demand_factor: float = 1.0
    demand_m3s: dict[str, float] = field(default_factory=dict)
    fixed_head_m: dict[str, float] = field(default_factory=dict)
    suction_drop_pa: float = 0.0
    leaks: tuple[LeakSpec, ...] = ()
    ruptures: tuple[RuptureSpec, ...] = ()


@dataclass(frozen=True)
class ScenarioSet:
    """Scenarios with the settings of their file.

    Attributes:
        scenarios: The scenarios, in order.
        rated_speed_rpm: Rated speed in rpm, one for every pump or by pump id (None: the caller's default).
        ambient_c: Ambient temperature, degC (None: the caller's default).
        source, delivery: Main path ends (None: found from the network).
    """

    scenarios: tuple[ScenarioSpec, ...]
    rated_speed_rpm: float | dict[str, float] | None = None
    ambient_c: float | None = None
    source: str | None = None
    delivery: str | None = None
