"""Plant scenarios: the fleet, its operations, hidden faults and sensor settings, read from YAML.

A scenario file looks like this (times are seconds, or strings such as ``90s``, ``15m``,
``6h``, ``2d``, ``1w``, ``1d12h``; fault and event times may also be ISO timestamps)::

    version: 1
    name: bearing_failure
    description: DE bearing of PS01.P1 wears out over two weeks; the protection trips it.
    start: 2024-03-01T00:00:00Z
    duration: 21d
    step: 60s
    seed: 11
    fleet: {network: reference, lines: 1}      # or a path to an .inp, relative to this file
    operations:
      speed: 0.95              # relative duty speed
      daily_swing: 0.03        # throughput nominations follow a daily cycle of +-3 % speed
      nomination: 4h           # a new speed nomination every 4 h (0: none)
      events:
        - {at: 6d, target: PS02, action: speed, value: 0.9}
        - {at: 9d, target: PS01.P2, action: switch, to: P3}
    ambient: {mean_c: 12, daily_amplitude_c: 6}
    sensors: {dropout_rate: 0.002}             # `SensorConfig` fields
    faults:
      - {mode: bearing_wear, target: PS01.P1, onset: 4d, failure: 18d}
      - {mode: leak, target: LINE01.KP040, onset: 3d, failure: 3d, magnitude: 40}   # m3/h
      - {mode: seal_failure, target: PS02.P1, onset: 2d, failure: 9d, stress: true}  # wear with load

Fault magnitudes are in the unit `MODE_INFO` gives for the mode (leak m3/h, seal leak L/h,
strainer loss bar, fractions otherwise); a missing magnitude, law or trip takes the mode's default.
``stress: true`` makes a pump fault wear with how hard the pump is driven (`FaultSpec.stress`;
``stress_exponent`` and ``stress_speed`` tune it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, Literal, cast

import pandas as pd
import yaml

from pumptwin.plant.health import LAWS, MODE_INFO, STRESS_EXPONENT, Law, Mode
from pumptwin.plant.sensors import SensorConfig, SensorError
from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.hydraulic.io import read_yaml_mapping
from pumptwin.twin.safety import clip, printable, shorten
from pumptwin.twin.times import UtcTimeError, to_utc

SCENARIO_VERSION = 1
"""Version of the scenario file layout."""

Action = Literal["speed", "start", "stop", "switch"]
ACTIONS: tuple[Action, ...] = ("speed", "start", "stop", "switch")
MAX_RELATIVE_SPEED = 2.0
MAX_STRESS_EXPONENT = 10.0
"""Largest stress exponent a fault may have."""
_UNITS_S = {"w": 604_800.0, "d": 86_400.0, "h": 3_600.0, "m": 60.0, "s": 1.0}
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([wdhms])")
MAX_NAME_LENGTH = 100
"""Longest scenario name, in characters."""
_SCENARIO_NAME = re.compile(rf"[A-Za-z0-9_\-][A-Za-z0-9_.\-]{{0,{MAX_NAME_LENGTH - 1}}}")
_MAX_VALUE_CHARS = 64  # a duration or timestamp is short; longer text is refused before any parsing


class ScenarioError(PumptwinError, ValueError):
    """A scenario is invalid; the message names the file and the field."""


def check_name(name: str) -> str:
    """Return ``name`` when it can name a scenario, and the files written after it.

    A name is 1 to `MAX_NAME_LENGTH` letters, digits, ``_``, ``-`` and ``.``, not starting with a
    dot, so it never leaves the folder it is used in (no ``/``, no ``..``) and never hides a file.

    Example:
        >>> check_name("bearing_failure-2.v1")
        'bearing_failure-2.v1'

    Raises:
        ScenarioError: For any other name, shown bounded and printable.
    """
    if not isinstance(name, str) or _SCENARIO_NAME.fullmatch(name) is None:
        raise ScenarioError(
            f"scenario name {shorten(name)} must be 1 to {MAX_NAME_LENGTH} letters, digits, '_', '-' or '.',"
            " not starting with '.'"
        )
    return name


def parse_duration(value: object, what: str = "duration") -> float:
    """Seconds from a number (s) or a string like ``90s``, ``15m``, ``6h``, ``2d``, ``1w`` or ``1d12h``.

    Raises:
        ScenarioError: Anything else, or a negative or non-finite number.
    """
    if isinstance(value, bool):
        raise ScenarioError(f"{what}: expected a duration, got {shorten(value)}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if len(text) > _MAX_VALUE_CHARS:
            raise ScenarioError(f"{what}: cannot read {shorten(value)} as a duration (e.g. 90s, 15m, 6h, 2d)")
        parts = _DURATION.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            try:
                seconds = float(text)
            except ValueError:
                raise ScenarioError(
                    f"{what}: cannot read {shorten(value)} as a duration (e.g. 90s, 15m, 6h, 2d)"
                ) from None
        else:
            seconds = sum(float(n) * _UNITS_S[u] for n, u in parts)
    else:
        raise ScenarioError(f"{what}: expected a duration, got {shorten(value)}")
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ScenarioError(f"{what}: must be a finite duration >= 0, got {shorten(value)}")
    return seconds


def parse_timestamp(value: object, what: str = "start") -> pd.Timestamp:
    """A UTC timestamp from an ISO string or datetime (naive values are taken as UTC).

    Raises:
        ScenarioError: Not a timestamp.
    """
    if isinstance(value, str) and len(value) > _MAX_VALUE_CHARS:  # the parser is slow on long text
        raise ScenarioError(f"{what}: cannot read {shorten(value)} as a timestamp")
    try:
        return to_utc(cast(Any, value), what=what)
    except UtcTimeError:
        raise ScenarioError(f"{what}: cannot read {shorten(value)} as a timestamp") from None


def parse_offset(value: object, start: pd.Timestamp, what: str) -> float:
    """Seconds after ``start`` given a duration or an absolute timestamp.

    Raises:
        ScenarioError: Neither, or a timestamp before ``start``.
    """
    if isinstance(value, datetime) or (isinstance(value, str) and re.match(r"^\d{4}-\d{2}-\d{2}", value.strip())):
        seconds = (parse_timestamp(value, what) - start).total_seconds()
        if seconds < 0:
            raise ScenarioError(f"{what}: {shorten(value)} is before the scenario start {start}")
        return float(seconds)
    return parse_duration(value, what)


@dataclass(frozen=True, slots=True)
class OpsEventSpec:
    """An operator action at a time.

    Attributes:
        at_s: Time after the start, s.
        target: A pump ``PS01.P1``, a station ``PS01``, a line ``LINE01`` or ``*`` (every station).
        action: ``speed`` (relative speed ``value``), ``start``, ``stop``, or ``switch`` (stop the
            target pump and start the standby ``to`` at the same station).
        value: Relative speed for ``speed``.
        to: Standby asset (``P3``) for ``switch``.
    """

    at_s: float
    target: str
    action: Action
    value: float | None = None
    to: str | None = None

    def __post_init__(self) -> None:
        """Check the action and its arguments."""
        if self.action not in ACTIONS:
            raise ScenarioError(f"event at {self.at_s} s: unknown action {shorten(self.action)}; use one of {ACTIONS}")
        if self.action == "speed" and (self.value is None or not 0 < self.value <= MAX_RELATIVE_SPEED):
            raise ScenarioError(f"event at {self.at_s} s: a speed event needs a relative speed in (0, 2]")
        if self.action == "switch" and (not self.to or self.target.count(".") != 1):
            raise ScenarioError(f"event at {self.at_s} s: switch needs a pump target and `to` (a standby asset)")


@dataclass(frozen=True, slots=True)
class OperationsSpec:
    """How the stations are run.

    Attributes:
        speed: Relative duty speed at the start.
        daily_swing: Amplitude of the daily throughput cycle, as a fraction of speed.
        nomination_s: Interval of throughput nominations (speed changes), s; 0 turns them off.
        nomination_jitter: Standard deviation of each nomination around the daily cycle (relative speed).
        ramp_per_s: Speed ramp rate, relative speed per s.
        auto_standby: Start a station's standby pump when a duty pump trips.
        standby_delay_s: Delay before the standby starts, s.
        events: Scheduled operator actions.
    """

    speed: float = 0.95
    daily_swing: float = 0.03
    nomination_s: float = 14_400.0
    nomination_jitter: float = 0.01
    ramp_per_s: float = 0.02
    auto_standby: bool = True
    standby_delay_s: float = 120.0
    events: tuple[OpsEventSpec, ...] = ()

    def __post_init__(self) -> None:
        """Check ranges."""
        if not 0 < self.speed <= MAX_RELATIVE_SPEED:
            raise ScenarioError(f"operations.speed must be a relative speed in (0, 2], got {self.speed}")
        for name in ("daily_swing", "nomination_s", "nomination_jitter", "standby_delay_s"):
            if not getattr(self, name) >= 0:
                raise ScenarioError(f"operations.{name} must be >= 0")
        if not self.ramp_per_s > 0:
            raise ScenarioError("operations.ramp_per_s must be > 0")


@dataclass(frozen=True, slots=True)
class AmbientSpec:
    """Ambient temperature at the stations: a daily cycle and day-to-day weather.

    Attributes:
        mean_c: Mean temperature, degC.
        daily_amplitude_c: Half the day-night difference, K.
        day_sd_c: Standard deviation of the day-to-day variation, K.
    """

    mean_c: float = 15.0
    daily_amplitude_c: float = 5.0
    day_sd_c: float = 2.0


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """A hidden degradation.

    Attributes:
        mode: Degradation mode.
        target: Pump ``PS01.P1``; for a leak, ``LINE01.<junction id>``.
        onset_s: Onset, s after the start.
        failure_s: Functional failure (severity 1), s after the start.
        law: Progression law.
        magnitude: Physical size at failure in the mode's `MODE_INFO` unit.
        trip: Whether the protection trips the pump at failure.
        bearing: ``DE`` or ``NDE``, the worn bearing (bearing wear only).
        stress: Stress wear (pump modes only): the severity follows a damage clock that runs at
            (s / stress_speed)^p of real time while the pump turns and stands still while it is
            stopped (`pumptwin.plant.health.damage_clock`), and the protection trips when that
            clock reaches ``failure_s``. Off: the severity follows the clock and the trip comes at
            ``failure_s``.
        stress_exponent: Exponent p (None: the mode's `STRESS_EXPONENT`).
        stress_speed: Relative speed at which the damage clock keeps real time (None: the
            scenario's duty speed ``operations.speed``).
    """

    mode: Mode
    target: str
    onset_s: float
    failure_s: float
    law: Law
    magnitude: float
    trip: bool
    bearing: str = "DE"
    stress: bool = False
    stress_exponent: float | None = None
    stress_speed: float | None = None

    def __post_init__(self) -> None:
        """Check times, law and magnitude."""
        where = f"fault {self.mode.value} on {shorten(self.target)}"
        if self.law not in LAWS:
            raise ScenarioError(f"{where}: unknown law {shorten(self.law)}; use one of {LAWS}")
        if not (0 <= self.onset_s <= self.failure_s) or (self.onset_s == self.failure_s and self.law != "step"):
            raise ScenarioError(f"{where}: needs 0 <= onset < failure (equal only for the step law)")
        if not (math.isfinite(self.magnitude) and self.magnitude > 0):
            raise ScenarioError(f"{where}: magnitude must be > 0")
        if self.mode is Mode.IMPELLER_WEAR and self.magnitude > 0.3:  # noqa: PLR2004 - physical limit
            raise ScenarioError(f"{where}: impeller wear above 0.3 of the diameter is not a pump any more")
        if self.mode is Mode.MOTOR_OVERHEATING and self.magnitude >= 0.95:  # noqa: PLR2004 - physical limit
            raise ScenarioError(f"{where}: cooling loss must be < 0.95")
        if self.bearing not in ("DE", "NDE"):
            raise ScenarioError(f"{where}: bearing must be DE or NDE")
        if self.target.count(".") < 1:
            raise ScenarioError(f"{where}: target must be STATION.ASSET (or LINEnn.<junction> for a leak)")
        if self.stress and self.mode is Mode.LEAK:
            raise ScenarioError(f"{where}: stress wear applies to pump modes only")
        if self.stress_exponent is not None and not (
            math.isfinite(self.stress_exponent) and 0 <= self.stress_exponent <= MAX_STRESS_EXPONENT
        ):
            raise ScenarioError(f"{where}: stress exponent must be in 0..{MAX_STRESS_EXPONENT:g}")
        if self.stress_speed is not None and not (
            math.isfinite(self.stress_speed) and 0 < self.stress_speed <= MAX_RELATIVE_SPEED
        ):
            raise ScenarioError(f"{where}: stress speed must be a relative speed in (0, 2]")

    @property
    def magnitude_si(self) -> float:
        """The magnitude in SI units (m3/s, Pa or a fraction)."""
        return self.magnitude * MODE_INFO[self.mode].si_factor

    @property
    def exponent(self) -> float:
        """The stress exponent p in use (the mode's default unless set)."""
        if self.stress_exponent is not None:
            return self.stress_exponent
        return STRESS_EXPONENT.get(self.mode, 0.0)


@dataclass(frozen=True, slots=True)
class Scenario:
    """Everything a `Plant` run needs besides the network.

    Attributes:
        name: Scenario name.
        start: Start time (UTC).
        duration_s: Length of `Plant.run`, s.
        step_s: Simulation time step, s (1 s to 1 min is typical).
        seed: Random seed: the same seed gives the same readings.
        lines: Copies of the network in the fleet.
        network: ``reference`` or a path to an EPANET file (relative to ``base_dir``).
        description: What happens.
        operations: How the stations are run.
        ambient: Ambient temperature.
        faults: Hidden degradations.
        sensors: Sensor realism.
        truth_period_s: Sampling period of the hidden-state truth table, s.
        base_dir: Folder that relative network paths start from.
    """

    name: str
    start: pd.Timestamp
    duration_s: float
    step_s: float = 60.0
    seed: int = 0
    lines: int = 1
    network: str = "reference"
    description: str = ""
    operations: OperationsSpec = field(default_factory=OperationsSpec)
    ambient: AmbientSpec = field(default_factory=AmbientSpec)
    faults: tuple[FaultSpec, ...] = ()
    sensors: SensorConfig = field(default_factory=SensorConfig)
    truth_period_s: float = 600.0
    base_dir: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        """Check the name, times and sizes."""
        check_name(self.name)
        if not (math.isfinite(self.step_s) and self.step_s > 0):
            raise ScenarioError(f"scenario {self.name!r}: step must be > 0 s")
        if not (math.isfinite(self.duration_s) and self.duration_s >= self.step_s):
            raise ScenarioError(f"scenario {self.name!r}: duration must be at least one step")
        if self.lines < 1:
            raise ScenarioError(f"scenario {self.name!r}: the fleet needs at least one line")
        if not self.truth_period_s > 0:
            raise ScenarioError(f"scenario {self.name!r}: truth period must be > 0 s")

    @property
    def n_steps(self) -> int:
        """Time steps in the scenario's duration."""
        return int(self.duration_s // self.step_s)


# --------------------------------------------------------------------------------------------
# Reading and writing
# --------------------------------------------------------------------------------------------


def _known(data: object, allowed: set[str], where: str) -> Mapping[str, Any]:
    """``data`` when it is a mapping of allowed fields, else a ScenarioError naming ``where``."""
    if not isinstance(data, Mapping):
        raise ScenarioError(f"{where}: expected a mapping, got {shorten(data)}")
    unknown = set(data) - allowed
    if unknown:
        shown = sorted(shorten(k) for k in unknown)
        more = f" and {len(shown) - 5} more" if len(shown) > 5 else ""  # noqa: PLR2004 - shown in a message
        raise ScenarioError(f"{where}: unknown fields [{', '.join(shown[:5])}]{more}; allowed: {sorted(allowed)}")
    return data


def _required(data: Mapping[str, Any], key: str, where: str) -> Any:  # noqa: ANN401 - a value from YAML
    """``data[key]``, or a ScenarioError naming ``where`` and the missing field."""
    if key not in data:
        raise ScenarioError(f"{where}: missing field {key!r}")
    return data[key]


def _float(value: object, where: str) -> float:
    """``value`` as a float, or a ScenarioError naming ``where`` and the value."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ScenarioError(f"{where}: expected a number, got {shorten(value)}")
    try:
        return float(value)
    except ValueError:
        raise ScenarioError(f"{where}: expected a number, got {shorten(value)}") from None


def _int(value: object, where: str) -> int:
    """``value`` as an int (a whole float too), or a ScenarioError naming ``where`` and the value."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number = _float(value, where)
    if not (math.isfinite(number) and number == int(number)):
        raise ScenarioError(f"{where}: expected a whole number, got {shorten(value)}")
    return int(number)


def _bool(value: object, where: str) -> bool:
    """``value`` when it is a boolean, or a ScenarioError naming ``where`` and the value."""
    if not isinstance(value, bool):
        raise ScenarioError(f"{where}: expected true or false, got {shorten(value)}")
    return value


def _list(value: object, where: str) -> list[Any]:
    """``value`` as a list (None as an empty one), or a ScenarioError naming ``where``."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ScenarioError(f"{where}: expected a list, got {shorten(value)}")
    return value


def _event(raw: object, start: pd.Timestamp) -> OpsEventSpec:
    where = "operations.events"
    data = _known(raw, {"at", "target", "action", "value", "to"}, where)
    return OpsEventSpec(
        at_s=parse_offset(data.get("at", 0), start, "event time"),
        target=str(_required(data, "target", where)),
        action=cast(Action, str(_required(data, "action", where))),
        value=None if data.get("value") is None else _float(data["value"], f"{where}.value"),
        to=None if data.get("to") is None else str(data["to"]),
    )


def _operations(raw: object, start: pd.Timestamp) -> OperationsSpec:
    allowed = {"speed", "daily_swing", "nomination", "nomination_jitter", "ramp_per_s", "auto_standby"}
    data = _known(raw, allowed | {"standby_delay", "events"}, "operations")
    kw: dict[str, Any] = {
        k: _float(data[k], f"operations.{k}") for k in allowed - {"nomination", "auto_standby"} if k in data
    }
    if "nomination" in data:
        kw["nomination_s"] = parse_duration(data["nomination"], "operations.nomination")
    if "standby_delay" in data:
        kw["standby_delay_s"] = parse_duration(data["standby_delay"], "operations.standby_delay")
    if "auto_standby" in data:
        kw["auto_standby"] = bool(data["auto_standby"])
    events = tuple(_event(e, start) for e in _list(data.get("events"), "operations.events"))
    return OperationsSpec(**kw, events=events)


def _fault(raw: object, start: pd.Timestamp) -> FaultSpec:
    allowed = {"mode", "target", "onset", "failure", "law", "magnitude", "trip", "bearing"}
    data = _known(raw, allowed | {"stress", "stress_exponent", "stress_speed"}, "faults")
    mode_name = _required(data, "mode", "faults")
    try:
        mode = Mode(str(mode_name))
    except ValueError:
        raise ScenarioError(
            f"faults: unknown mode {shorten(mode_name)}; use one of {[m.value for m in Mode]}"
        ) from None
    info = MODE_INFO[mode]
    onset = parse_offset(data.get("onset", 0), start, f"fault {mode.value} onset")
    failure = parse_offset(data.get("failure", onset), start, f"fault {mode.value} failure")
    return FaultSpec(
        mode=mode,
        target=str(_required(data, "target", "faults")),
        onset_s=onset,
        failure_s=failure,
        law=cast(Law, str(data.get("law", info.law))),
        magnitude=_float(data.get("magnitude", info.magnitude), f"fault {mode.value} magnitude"),
        trip=bool(data.get("trip", info.trips)),
        bearing=str(data.get("bearing", "DE")).upper(),
        stress=_bool(data.get("stress", False), f"fault {mode.value} stress"),
        stress_exponent=None
        if data.get("stress_exponent") is None
        else _float(data["stress_exponent"], f"fault {mode.value} stress_exponent"),
        stress_speed=None
        if data.get("stress_speed") is None
        else _float(data["stress_speed"], f"fault {mode.value} stress_speed"),
    )


def scenario_from_dict(data: Mapping[str, Any], base_dir: str | Path | None = None) -> Scenario:
    """Build a scenario from parsed YAML.

    Raises:
        ScenarioError: Wrong version, missing or unknown fields, or invalid values.
    """
    if data.get("version", SCENARIO_VERSION) != SCENARIO_VERSION:
        raise ScenarioError(
            f"scenario version {shorten(data.get('version'))} is not supported (expected {SCENARIO_VERSION})"
        )
    top = {"version", "name", "description", "start", "duration", "step", "seed", "fleet", "operations"}
    _known(data, top | {"ambient", "sensors", "faults", "truth_period"}, "scenario")
    for required in ("name", "start", "duration"):
        _required(data, required, "scenario")
    name = check_name(str(data["name"]))
    start = parse_timestamp(data["start"])
    fleet = _known(data.get("fleet") or {}, {"network", "lines"}, "fleet")
    ambient = _known(data.get("ambient") or {}, {f.name for f in fields(AmbientSpec)}, "ambient")
    sensors = _known(data.get("sensors") or {}, {f.name for f in fields(SensorConfig)}, "sensors")
    try:
        sensor_config = SensorConfig(**sensors)
    except (SensorError, TypeError, ValueError) as exc:
        raise ScenarioError(f"sensors: {clip(str(exc))}") from None
    return Scenario(
        name=name,
        description=str(data.get("description", "")).strip(),
        start=start,
        duration_s=parse_duration(data["duration"], "duration"),
        step_s=parse_duration(data.get("step", 60), "step"),
        seed=_int(data.get("seed", 0), "seed"),
        lines=_int(fleet.get("lines", 1), "fleet.lines"),
        network=str(fleet.get("network", "reference")),
        operations=_operations(data.get("operations") or {}, start),
        ambient=AmbientSpec(**{k: _float(v, f"ambient.{k}") for k, v in ambient.items()}),
        faults=tuple(_fault(f, start) for f in _list(data.get("faults"), "faults")),
        sensors=sensor_config,
        truth_period_s=parse_duration(data.get("truth_period", 600), "truth_period"),
        base_dir=None if base_dir is None else str(base_dir),
    )


def scenario_to_dict(scenario: Scenario) -> dict[str, Any]:
    """Plain-data form of a scenario (times in seconds), readable by `scenario_from_dict`."""

    def drop_none(d: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in d.items() if v is not None}

    ops = scenario.operations
    return {
        "version": SCENARIO_VERSION,
        "name": scenario.name,
        "description": scenario.description,
        "start": scenario.start.isoformat(),
        "duration": scenario.duration_s,
        "step": scenario.step_s,
        "seed": scenario.seed,
        "fleet": {"network": scenario.network, "lines": scenario.lines},
        "operations": {
            "speed": ops.speed,
            "daily_swing": ops.daily_swing,
            "nomination": ops.nomination_s,
            "nomination_jitter": ops.nomination_jitter,
            "ramp_per_s": ops.ramp_per_s,
            "auto_standby": ops.auto_standby,
            "standby_delay": ops.standby_delay_s,
            "events": [
                drop_none({"at": e.at_s, "target": e.target, "action": e.action, "value": e.value, "to": e.to})
                for e in ops.events
            ],
        },
        "ambient": asdict(scenario.ambient),
        "sensors": asdict(scenario.sensors),
        "faults": [_fault_dict(f) for f in scenario.faults],
        "truth_period": scenario.truth_period_s,
    }


def _fault_dict(f: FaultSpec) -> dict[str, Any]:
    """Plain-data form of a fault; the stress fields only when stress wear is on."""
    out: dict[str, Any] = {
        "mode": f.mode.value,
        "target": f.target,
        "onset": f.onset_s,
        "failure": f.failure_s,
        "law": f.law,
        "magnitude": f.magnitude,
        "trip": f.trip,
        "bearing": f.bearing,
    }
    if f.stress:
        out["stress"] = True
        if f.stress_exponent is not None:
            out["stress_exponent"] = f.stress_exponent
        if f.stress_speed is not None:
            out["stress_speed"] = f.stress_speed
    return out


def read_scenario(path: str | Path) -> Scenario:
    """Read a scenario YAML file; relative network paths resolve against its folder.

    Raises:
        ScenarioError: Missing file, invalid YAML or content; the message names the file.
    """
    src = Path(path)
    data = read_yaml_mapping(src, ScenarioError, "scenario file")
    try:
        return scenario_from_dict(data, base_dir=src.parent)
    except ScenarioError as exc:
        raise ScenarioError(f"{printable(str(src))}: {exc}") from exc
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ScenarioError(f"{printable(str(src))}: {clip(str(exc))}") from exc


def write_scenario(scenario: Scenario, path: str | Path) -> Path:
    """Write ``scenario`` as YAML and return the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(scenario_to_dict(scenario), sort_keys=False, width=120), encoding="utf-8")
    return out


def scenarios_dir() -> Path:
    """Folder of the scenarios shipped with pumptwin."""
    return Path(str(resources.files("pumptwin.plant") / "scenarios"))


def shipped_scenarios() -> dict[str, Path]:
    """Shipped scenario files by name (file stem)."""
    return {p.stem: p for p in sorted(scenarios_dir().glob("*.yaml"))}


def shipped_scenario(name: str) -> Scenario:
    """Read a shipped scenario by name, e.g. ``shipped_scenario("bearing_failure")``.

    Raises:
        ScenarioError: No scenario of that name.
    """
    files = shipped_scenarios()
    if name not in files:
        raise ScenarioError(f"no shipped scenario {shorten(name)}; available: {sorted(files)}")
    return read_scenario(files[name])
