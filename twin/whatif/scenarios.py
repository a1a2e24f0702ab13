"""Declarative what-if scenarios: a versioned YAML schema, command-line actions, and their resolution.

A scenario file (schema version 1) holds several scenarios; each is a mapping of
actions, all optional::

    version: 1
    rated_speed_rpm: 1480          # one number, or {pump id: rpm}; needed for speeds in rpm
    ambient_c: 25                  # for predicted bearing temperatures
    scenarios:
      - name: throughput +10 %
        flow: +10%                 # change of delivered flow (%, or a target such as 2300 m3/h)
      - name: PS2 slower, standby at PS1
        speed: {PS2: 0.95, PS1-P1: 1400rpm}   # pump, station or "all": factor on the current speed, or rpm
        standby: [PS1-P1]          # stop the pump and start a stopped pump of its station
      - name: leak and low suction
        leak: {km: 90, size: 50 m3/h}         # or size: 2% (of the base throughput); or node: KP090
        suction_drop: 0.5 bar      # the source's head falls by dp / (rho g)

Other actions: ``stop``, ``start``, ``trip`` (lists of pump ids; a trip is a stop in the steady
result), ``links`` ({pipe or valve: open | closed}), ``valves`` ({valve: open | closed | setting},
a number throttles: PRV/PSV/PBV m, FCV m3/s, TCV loss coefficient), ``demand_factor``,
``demand`` ({junction: flow}), ``fixed_heads`` ({reservoir or tank: head m}), ``rupture``
({km or node, area_fraction}: a line break).

Resolution against the network (`resolve`) needs the line's main path and its base solution:

- **Chainage** is cumulative pipe length along the main path from its source (`twin.whatif.main_path`).
  A leak or rupture given by km is placed at the junction of the main path nearest to that
  chainage; the note on the result names the junction and its chainage.
- **Leak size** in m3/h, L/s or m3/s, or % of the base throughput, becomes a leak flow; the
  solver finds the emitter coefficient C (q = C p^0.5, p in m of pressure head) that discharges
  that flow in the scenario's own pressures.
- **Rupture**: an orifice of the pipe bore, q = Cd A sqrt(2 g p) with Cd = 0.6 and A the
  largest adjacent pipe's bore area times ``area_fraction``, i.e. C = Cd A sqrt(2 g).
- **Speeds**: a plain number is a factor on the pump's base speed (1.0 = rated for a stopped
  pump, which it starts); ``NNNNrpm`` is an absolute speed over the rated rpm. A station or
  ``all`` means its pumps that run in the base state.
- **Flow** ``+10%`` is a throughput target of 1.10 x base, met by scaling every running pump's
  speed by one common factor.

Errors raise `ScenarioError` naming the file, the scenario and the bad key or value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pumptwin.twin.hydraulic.io import read_yaml_mapping
from pumptwin.twin.hydraulic.network import G_M_S2, Network, NetworkError
from pumptwin.twin.hydraulic.solver import OPEN, HydraulicModel, compile_network, solve_batch
from pumptwin.twin.whatif.engine import (
    Limits,
    LinePath,
    MachineCondition,
    SurgeCheck,
    SurgeFindings,
    Violation,
    WhatIf,
    WhatIfReport,
    WhatIfResult,
    assess,
    evaluate,
    main_path,
)

SCHEMA_VERSION = 1
"""Version of the scenario file schema this module reads."""
DEFAULT_RATED_RPM = 1480.0
"""Rated speed assumed when none is given, rpm (a 4-pole motor at 50 Hz)."""
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

_NUMBER = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([a-zA-Z%/0-9]*)\s*$")
_FLOW_UNITS = {"m3/h": 1 / 3600.0, "m3/s": 1.0, "l/s": 1e-3, "lps": 1e-3, "": 1 / 3600.0}
_PRESSURE_UNITS = {"bar": 1e5, "kpa": 1e3, "mpa": 1e6, "pa": 1.0, "": 1e5}


class ScenarioError(ValueError):
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
        rated_speed_rpm: Rated speed in rpm, one for every pump or by pump id.
        ambient_c: Ambient temperature, degC (None: the caller's default).
        source, delivery: Main path ends (None: found from the network).
    """

    scenarios: tuple[ScenarioSpec, ...]
    rated_speed_rpm: float | dict[str, float] = DEFAULT_RATED_RPM
    ambient_c: float | None = None
    source: str | None = None
    delivery: str | None = None


# --------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------


def _split(value: object, where: str) -> tuple[float, str]:
    if isinstance(value, bool):
        raise ScenarioError(f"{where}: expected a number, got {value!r}")
    if isinstance(value, int | float):
        return float(value), ""
    m = _NUMBER.match(str(value))
    if m is None:
        raise ScenarioError(f"{where}: expected a number with an optional unit, got {value!r}")
    return float(m.group(1)), m.group(2).lower()


def parse_number(value: object, where: str) -> float:
    """A plain finite number.

    Raises:
        ScenarioError: Naming ``where`` when ``value`` is not a finite number without unit.
    """
    x, unit = _split(value, where)
    if unit or not math.isfinite(x):
        raise ScenarioError(f"{where}: expected a plain number, got {value!r}")
    return x


def parse_pressure_pa(value: object, where: str) -> float:
    """A pressure difference in Pa from ``0.5 bar``, ``50 kPa``, ``0.05 MPa`` or a number in bar.

    Raises:
        ScenarioError: Naming ``where`` for a bad number or unit.
    """
    x, unit = _split(value, where)
    if unit not in _PRESSURE_UNITS:
        raise ScenarioError(f"{where}: unknown pressure unit {unit!r} in {value!r} (use bar, kPa, MPa or Pa)")
    return x * _PRESSURE_UNITS[unit]


def parse_flow(value: object, where: str) -> tuple[float | None, float | None]:
    """A flow: (m3/s, None) from ``50 m3/h``, ``14 L/s``, ``0.01 m3/s`` or a number (m3/h), (None, share) from ``2%``.

    Raises:
        ScenarioError: Naming ``where`` for a bad number or unit, or a negative flow.
    """
    x, unit = _split(value, where)
    if x < 0:
        raise ScenarioError(f"{where}: a flow must be >= 0, got {value!r}")
    if unit == "%":
        return None, x / 100.0
    if unit not in _FLOW_UNITS:
        raise ScenarioError(f"{where}: unknown flow unit {unit!r} in {value!r} (use m3/h, L/s, m3/s or %)")
    return x * _FLOW_UNITS[unit], None


def parse_flow_change(value: object, where: str) -> tuple[float | None, float | None]:
    """A throughput change as (factor, None) from ``+10%`` / ``-5 %`` or (None, m3/s) from a flow with unit.

    Raises:
        ScenarioError: Naming ``where`` for a bad value or a factor that is not > 0.
    """
    x, unit = _split(value, where)
    if unit == "%":
        factor = 1.0 + x / 100.0
        if factor <= 0:
            raise ScenarioError(f"{where}: a flow change of {value!r} leaves no flow")
        return factor, None
    if unit == "":
        raise ScenarioError(f"{where}: give a change in % (e.g. +10%) or a flow with a unit (e.g. 2300 m3/h)")
    q, _ = parse_flow(value, where)
    if not q:
        raise ScenarioError(f"{where}: a flow target must be > 0, got {value!r}")
    return None, q


def parse_speed(target: str, value: object, where: str) -> SpeedChange:
    """A speed from ``1400rpm`` (absolute) or a number (factor on the base speed).

    Raises:
        ScenarioError: Naming ``where`` for a bad number, unit or a negative speed.
    """
    x, unit = _split(value, where)
    if x < 0:
        raise ScenarioError(f"{where}: speed of {target!r} must be >= 0, got {value!r}")
    if unit == "rpm":
        return SpeedChange(target, rpm=x)
    if unit in ("", "x"):
        return SpeedChange(target, factor=x)
    raise ScenarioError(f"{where}: unknown speed unit {unit!r} in {value!r} (use rpm or a factor)")


def parse_location(value: object, where: str) -> tuple[str | None, float | None]:
    """A place as (node id, None) or (None, km) from a number or ``NN km``.

    Raises:
        ScenarioError: Naming ``where`` for an empty value or an unknown unit.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        return None, float(value)
    text = str(value).strip()
    if not text:
        raise ScenarioError(f"{where}: empty location")
    m = _NUMBER.match(text)
    if m is not None:
        unit = m.group(2).lower()
        if unit not in ("", "km"):
            raise ScenarioError(f"{where}: a chainage is in km, got {value!r}")
        return None, float(m.group(1))
    return text, None


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def read_scenarios(path: str | Path) -> ScenarioSet:
    """Read a scenario file (YAML, schema version 1).

    Raises:
        ScenarioError: For a missing or invalid file, naming the file and the bad key or value.
    """
    p = Path(path)
    data = read_yaml_mapping(p, ScenarioError, "scenario file", label=p.name)
    return parse_scenarios(data, p.name)


def parse_scenarios(data: Mapping[str, Any], source: str = "scenarios") -> ScenarioSet:
    """Parse the mapping of a scenario file.

    Args:
        data: The file's top-level mapping.
        source: How messages name the file.

    Raises:
        ScenarioError: Naming the file, the scenario and the bad key or value.
    """
    unknown = sorted(set(data) - set(FILE_KEYS))
    if unknown:
        raise ScenarioError(f"{source}: unknown key {unknown[0]!r} (known: {', '.join(FILE_KEYS)})")
    if "version" not in data:
        raise ScenarioError(f"{source}: missing key 'version' (this reader knows version {SCHEMA_VERSION})")
    if data["version"] != SCHEMA_VERSION:
        raise ScenarioError(f"{source}: version {data['version']!r} is not supported (expected {SCHEMA_VERSION})")
    items = data.get("scenarios")
    if not isinstance(items, list) or not items:
        raise ScenarioError(f"{source}: 'scenarios' must be a non-empty list")
    rated: float | dict[str, float] = DEFAULT_RATED_RPM
    if "rated_speed_rpm" in data:
        raw = data["rated_speed_rpm"]
        if isinstance(raw, Mapping):
            rated = {str(k): _positive(v, f"{source}: rated_speed_rpm.{k}") for k, v in raw.items()}
        else:
            rated = _positive(raw, f"{source}: rated_speed_rpm")
    ambient = parse_number(data["ambient_c"], f"{source}: ambient_c") if "ambient_c" in data else None
    specs = [parse_scenario(item, f"{source}: scenario {i + 1}") for i, item in enumerate(items)]
    names = [s.name for s in specs]
    for name in names:
        if names.count(name) > 1 or name == BASE_NAME:
            raise ScenarioError(f"{source}: scenario name {name!r} is used twice (or is reserved)")
    src = data.get("source")
    dst = data.get("delivery")
    return ScenarioSet(
        tuple(specs), rated, ambient, None if src is None else str(src), None if dst is None else str(dst)
    )


def _positive(value: object, where: str) -> float:
    x = parse_number(value, where)
    if x <= 0:
        raise ScenarioError(f"{where}: must be > 0, got {value!r}")
    return x


def _ids(value: object, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ScenarioError(f"{where}: expected an id or a list of ids, got {value!r}")


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ScenarioError(f"{where}: expected a mapping, got {value!r}")
    return value


def _status(value: object, where: str) -> str:
    text = str(value).strip().upper()
    if isinstance(value, bool):
        text = "OPEN" if value else "CLOSED"
    if text not in ("OPEN", "CLOSED"):
        raise ScenarioError(f"{where}: expected open or closed, got {value!r}")
    return text


def parse_scenario(item: object, where: str) -> ScenarioSpec:  # noqa: PLR0912 - one branch per action
    """Parse one scenario mapping.

    Raises:
        ScenarioError: Naming ``where``, the scenario and the bad key or value.
    """
    spec = _mapping(item, where)
    name = str(spec.get("name", "")).strip()
    if not name:
        raise ScenarioError(f"{where}: needs a 'name'")
    at = f"{where} ({name!r})"
    unknown = sorted(set(spec) - set(SCENARIO_KEYS))
    if unknown:
        raise ScenarioError(f"{at}: unknown key {unknown[0]!r} (known: {', '.join(SCENARIO_KEYS)})")
    kw: dict[str, Any] = {"name": name}
    if "flow" in spec:
        kw["flow_factor"], kw["flow_m3s"] = parse_flow_change(spec["flow"], f"{at}: flow")
    if "speed" in spec:
        kw["speeds"] = tuple(
            parse_speed(str(t), v, f"{at}: speed.{t}") for t, v in _mapping(spec["speed"], f"{at}: speed").items()
        )
    for key in ("stop", "start", "standby", "trip"):
        if key in spec:
            kw[key] = _ids(spec[key], f"{at}: {key}")
    if "links" in spec:
        kw["links"] = {
            str(k): _status(v, f"{at}: links.{k}") for k, v in _mapping(spec["links"], f"{at}: links").items()
        }
    if "valves" in spec:
        links = dict(kw.get("links", {}))
        valves: dict[str, float] = {}
        for k, v in _mapping(spec["valves"], f"{at}: valves").items():
            if isinstance(v, str) and v.strip().upper() in ("OPEN", "CLOSED"):
                links[str(k)] = v.strip().upper()
            else:
                valves[str(k)] = parse_number(v, f"{at}: valves.{k}")
        kw["links"], kw["valves"] = links, valves
    if "demand_factor" in spec:
        kw["demand_factor"] = parse_number(spec["demand_factor"], f"{at}: demand_factor")
        if kw["demand_factor"] < 0:
            raise ScenarioError(f"{at}: demand_factor must be >= 0, got {spec['demand_factor']!r}")
    if "demand" in spec:
        demand: dict[str, float] = {}
        for k, v in _mapping(spec["demand"], f"{at}: demand").items():
            q, frac = parse_flow(v, f"{at}: demand.{k}")
            if q is None:
                raise ScenarioError(f"{at}: demand.{k}: give a flow, not a percentage ({v!r})")
            demand[str(k)] = q
        kw["demand_m3s"] = demand
    if "fixed_heads" in spec:
        kw["fixed_head_m"] = {
            str(k): parse_number(v, f"{at}: fixed_heads.{k}")
            for k, v in _mapping(spec["fixed_heads"], f"{at}: fixed_heads").items()
        }
    if "suction_drop" in spec:
        kw["suction_drop_pa"] = parse_pressure_pa(spec["suction_drop"], f"{at}: suction_drop")
    if "leak" in spec:
        kw["leaks"] = tuple(_leak(x, f"{at}: leak") for x in _list_of_mappings(spec["leak"], f"{at}: leak"))
    if "rupture" in spec:
        kw["ruptures"] = tuple(
            _rupture(x, f"{at}: rupture") for x in _list_of_mappings(spec["rupture"], f"{at}: rupture")
        )
    return ScenarioSpec(**kw)


def _list_of_mappings(value: object, where: str) -> list[Mapping[str, Any]]:
    items = value if isinstance(value, list) else [value]
    return [_mapping(v, where) for v in items]


def _place(spec: Mapping[str, Any], where: str) -> tuple[str | None, float | None]:
    if ("km" in spec) == ("node" in spec):
        raise ScenarioError(f"{where}: give exactly one of 'km' or 'node'")
    if "km" in spec:
        return None, parse_number(spec["km"], f"{where}.km")
    return str(spec["node"]), None


def _leak(spec: Mapping[str, Any], where: str) -> LeakSpec:
    unknown = sorted(set(spec) - {"km", "node", "size"})
    if unknown:
        raise ScenarioError(f"{where}: unknown key {unknown[0]!r} (known: km, node, size)")
    node, km = _place(spec, where)
    if "size" not in spec:
        raise ScenarioError(f"{where}: needs a 'size' (e.g. 50 m3/h or 2%)")
    q, frac = parse_flow(spec["size"], f"{where}.size")
    return LeakSpec(node, km, q, frac)


def _rupture(spec: Mapping[str, Any], where: str) -> RuptureSpec:
    unknown = sorted(set(spec) - {"km", "node", "area_fraction"})
    if unknown:
        raise ScenarioError(f"{where}: unknown key {unknown[0]!r} (known: km, node, area_fraction)")
    node, km = _place(spec, where)
    frac = parse_number(spec.get("area_fraction", 1.0), f"{where}.area_fraction")
    if not 0 < frac <= 1:
        raise ScenarioError(f"{where}.area_fraction: must be in (0, 1], got {frac}")
    return RuptureSpec(node, km, frac)


def scenario_from_flags(  # noqa: PLR0913 - one argument per command-line option
    *,
    flow: str | None = None,
    speed: Sequence[str] = (),
    stop: Sequence[str] = (),
    start: Sequence[str] = (),
    standby: Sequence[str] = (),
    trip: Sequence[str] = (),
    leak: Sequence[str] = (),
    suction_drop: str | None = None,
    name: str | None = None,
) -> ScenarioSpec | None:
    """One scenario from command-line actions, or None when no action is given.

    Args:
        flow: Throughput change, ``+10%`` or a flow such as ``2300m3/h``.
        speed: ``TARGET=VALUE`` items (``PS1-P1=1400rpm``, ``PS2=0.95``, ``all=0.9``).
        stop: Pumps to stop.
        start: Pumps to start.
        standby: Pumps to stop, each with a stopped pump beside it started.
        trip: Pumps that trip.
        leak: ``KM=SIZE`` or ``NODE=SIZE`` items (``90=50m3/h``, ``KP090=2%``).
        suction_drop: Pressure drop at the source, ``0.5`` (bar) or ``50kPa``.
        name: Scenario name (default: the actions, joined).

    Raises:
        ScenarioError: Naming the option and the bad value.
    """
    parts: list[str] = []
    kw: dict[str, Any] = {}
    if flow is not None:
        kw["flow_factor"], kw["flow_m3s"] = parse_flow_change(flow, "--flow")
        parts.append(f"flow {flow}")
    speeds = []
    for item in speed:
        target, value = _pair(item, "--speed", "PUMP=1400rpm or STATION=0.9")
        speeds.append(parse_speed(target, value, f"--speed {item}"))
        parts.append(f"speed {item}")
    kw["speeds"] = tuple(speeds)
    for key, ids in (("stop", stop), ("start", start), ("standby", standby), ("trip", trip)):
        kw[key] = tuple(ids)
        parts += [f"{key} {i}" for i in ids]
    leaks = []
    for item in leak:
        where, size = _pair(item, "--leak", "KM=SIZE, e.g. 90=50m3/h or KP090=2%")
        node, km = parse_location(where, f"--leak {item}")
        q, frac = parse_flow(size, f"--leak {item}")
        leaks.append(LeakSpec(node, km, q, frac))
        parts.append(f"leak {item}")
    kw["leaks"] = tuple(leaks)
    if suction_drop is not None:
        kw["suction_drop_pa"] = parse_pressure_pa(suction_drop, "--suction-drop")
        parts.append(f"suction drop {suction_drop}")
    if not parts:
        return None
    return ScenarioSpec(name=name or ", ".join(parts), **kw)


def _pair(item: str, option: str, example: str) -> tuple[str, str]:
    left, sep, right = item.partition("=")
    if not sep or not left.strip() or not right.strip():
        raise ScenarioError(f"{option}: expected {example}, got {item!r}")
    return left.strip(), right.strip()


# --------------------------------------------------------------------------------------------
# Resolution against a network
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineContext:
    """What resolving a scenario needs: the compiled network, its main path and base solution.

    Attributes:
        model: Compiled network.
        path: The line's main path.
        base: The base case solved alone.
        rated_speed_rpm: Rated rpm by pump id.
    """

    model: HydraulicModel
    path: LinePath
    base: WhatIfResult
    rated_speed_rpm: dict[str, float]

    @property
    def base_throughput_m3s(self) -> float:
        """Flow at the delivery in the base case, m3/s."""
        sign = 1.0 if self.path.forward[-1] else -1.0
        return sign * float(self.base.flow_m3s[0, self.path.delivery_link])

    def nearest_junction(self, km: float, where: str) -> tuple[str, float]:
        """The main-path junction nearest to chainage ``km`` and its chainage in km."""
        nj = self.model.n_junctions
        cand = [(i, c) for i, c in zip(self.path.nodes, self.path.chainage_m, strict=True) if i < nj]
        length_km = float(self.path.chainage_m[-1]) / 1e3
        if not cand or not -KM_TOLERANCE <= km <= length_km + KM_TOLERANCE:
            raise ScenarioError(f"{where}: km {km:g} is outside the line (0 to {length_km:.3g} km)")
        i, c = min(cand, key=lambda ic: abs(ic[1] / 1e3 - km))
        return self.model.node_ids[i], float(c) / 1e3

    def station_pumps(self, station: str) -> list[int]:
        """Indices of the pumps of a station."""
        return [i for i, p in enumerate(self.model.network.pumps) if p.station == station]


def line_context(
    model: HydraulicModel,
    *,
    source: str | None = None,
    delivery: str | None = None,
    rated_speed_rpm: float | Mapping[str, float] = DEFAULT_RATED_RPM,
    accuracy: float = 1e-6,
) -> LineContext:
    """Find the main path and solve the base case.

    Raises:
        ScenarioError: When a rated speed names a pump that does not exist, or no path joins
            source and delivery.
    """
    try:
        path = main_path(model, source, delivery)
    except NetworkError as exc:
        raise ScenarioError(str(exc)) from exc
    if isinstance(rated_speed_rpm, Mapping):
        for pid in rated_speed_rpm:
            if pid not in model.pump_ids:
                raise ScenarioError(f"rated_speed_rpm: pump {pid!r} does not exist")
        rated = {pid: float(rated_speed_rpm.get(pid, DEFAULT_RATED_RPM)) for pid in model.pump_ids}
    else:
        rated = dict.fromkeys(model.pump_ids, float(rated_speed_rpm))
    base = evaluate(model, [WhatIf(BASE_NAME)], accuracy=accuracy)
    return LineContext(model, path, base, rated)


def resolve(spec: ScenarioSpec, ctx: LineContext) -> WhatIf:  # noqa: PLR0912, PLR0915 - one block per action
    """Turn a declared scenario into a `WhatIf` on this network.

    Raises:
        ScenarioError: When an action names a pump, station, node or place that does not exist,
            or cannot be carried out (no standby pump, a suction drop on a junction, ...).
    """
    model, net = ctx.model, ctx.model.network
    at = f"scenario {spec.name!r}"
    pump_ids = list(model.pump_ids)
    base_speed = ctx.base.batch.pump_speed[0]
    base_running = ctx.base.pumps.running[0]
    notes: list[str] = []

    def pump(pid: str, key: str) -> int:
        if pid not in pump_ids:
            raise ScenarioError(f"{at}: {key}: pump {pid!r} does not exist (pumps: {', '.join(pump_ids)})")
        return pump_ids.index(pid)

    off = [pump_ids[pump(p, "stop")] for p in spec.stop]
    on = [pump_ids[pump(p, "start")] for p in spec.start]
    trips = [pump_ids[pump(p, "trip")] for p in spec.trip]
    for pid in spec.standby:
        i = pump(pid, "standby")
        station = net.pumps[i].station
        same = ctx.station_pumps(station) if station is not None else _parallel(model, i)
        spare = [j for j in same if j != i and not base_running[j] and pump_ids[j] not in on]
        if not spare:
            raise ScenarioError(f"{at}: standby: pump {pid!r} has no stopped pump beside it to start")
        off.append(pid)
        on.append(pump_ids[spare[0]])
        notes.append(f"standby: {pid} stopped, {pump_ids[spare[0]]} started")
    speeds: dict[str, float] = {}
    for change in spec.speeds:
        if change.target in pump_ids:
            targets = [pump_ids.index(change.target)]
        elif change.target == "all":
            targets = [i for i in range(len(pump_ids)) if base_running[i]]
        else:
            stations = sorted({p.station for p in net.pumps if p.station})
            if change.target not in stations:
                raise ScenarioError(
                    f"{at}: speed: {change.target!r} is no pump, station or 'all' "
                    f"(stations: {', '.join(stations) or 'none'})"
                )
            targets = [i for i in ctx.station_pumps(change.target) if base_running[i]]
            if not targets:
                raise ScenarioError(f"{at}: speed: station {change.target!r} has no running pump")
        for i in targets:
            pid = pump_ids[i]
            if change.rpm is not None:
                speeds[pid] = change.rpm / ctx.rated_speed_rpm[pid]
            else:
                assert change.factor is not None
                current = float(base_speed[i]) if base_running[i] and base_speed[i] > 0 else 1.0
                speeds[pid] = change.factor * current
    flow_factor = spec.flow_factor
    if spec.flow_m3s is not None:
        flow_factor = spec.flow_m3s / ctx.base_throughput_m3s if ctx.base_throughput_m3s > 0 else None
        if flow_factor is None:
            raise ScenarioError(f"{at}: flow: the base case delivers nothing, so a flow target cannot be scaled")
    fixed_delta: dict[str, float] = {}
    if spec.suction_drop_pa:
        src = ctx.path.source
        if src < model.n_junctions:
            raise ScenarioError(
                f"{at}: suction_drop: the line's source {model.node_ids[src]!r} is no reservoir or tank"
            )
        dh = spec.suction_drop_pa / (net.fluid.density_kg_m3 * G_M_S2)
        fixed_delta[model.node_ids[src]] = -dh
        notes.append(f"suction drop {spec.suction_drop_pa / 1e5:g} bar: {model.node_ids[src]} head -{dh:.2f} m")
    leak_flow: dict[str, float] = {}
    for leak in spec.leaks:
        node = _place_node(ctx, leak.node, leak.km, f"{at}: leak", notes)
        q = leak.flow_m3s if leak.flow_m3s is not None else (leak.fraction or 0.0) * ctx.base_throughput_m3s
        leak_flow[node] = leak_flow.get(node, 0.0) + q
        notes.append(f"leak {q * 3600:.1f} m3/h at {node}")
    coeffs: dict[str, float] = {}
    if spec.ruptures and abs(model.emitter_exp - 0.5) > EXPONENT_TOLERANCE:
        raise ScenarioError(
            f"{at}: rupture: needs the orifice emitter exponent 0.5, the network uses {model.emitter_exp}"
        )
    for rupture in spec.ruptures:
        node = _place_node(ctx, rupture.node, rupture.km, f"{at}: rupture", notes)
        j = model.node_index[node]
        diam = max(
            (p.diameter_m for p in net.pipes if model.node_index[p.start] == j or model.node_index[p.end] == j),
            default=0.0,
        )
        if diam <= 0:
            raise ScenarioError(f"{at}: rupture: junction {node!r} has no pipe")
        area = rupture.area_fraction * math.pi * diam**2 / 4.0
        coeffs[node] = RUPTURE_DISCHARGE_COEFF * area * math.sqrt(2.0 * G_M_S2)
        notes.append(f"rupture at {node}: orifice {rupture.area_fraction:g} x bore of {diam:.3f} m, Cd 0.6")
    for key, ids in (("links", spec.links), ("valves", spec.valves)):
        for lid in ids:
            if lid not in model.link_index:
                raise ScenarioError(f"{at}: {key}: link {lid!r} does not exist")
    for nid in (*spec.demand_m3s, *spec.fixed_head_m):
        if nid not in model.node_index:
            raise ScenarioError(f"{at}: node {nid!r} does not exist")
    try:
        return WhatIf(
            spec.name,
            pumps_off=tuple(off),
            pumps_on=tuple(on),
            trips=tuple(trips),
            pump_speed=speeds,
            demand_factor=spec.demand_factor,
            demand_m3s=dict(spec.demand_m3s),
            fixed_head_m=dict(spec.fixed_head_m),
            fixed_head_delta_m=fixed_delta,
            link_status=dict(spec.links),
            valve_setting=dict(spec.valves),
            leaks=coeffs,
            leak_flow_m3s=leak_flow,
            throughput_factor=flow_factor,
            throughput_link=model.link_ids[ctx.path.delivery_link] if flow_factor is not None else None,
            notes=tuple(notes),
        )
    except NetworkError as exc:
        raise ScenarioError(str(exc)) from exc


def _parallel(model: HydraulicModel, i: int) -> list[int]:
    """Pumps between the same suction and discharge nodes as pump ``i``."""
    k = model.pump_link
    return [
        j
        for j in range(len(k))
        if model.link_n1[k[j]] == model.link_n1[k[i]] and model.link_n2[k[j]] == model.link_n2[k[i]]
    ]


def _place_node(ctx: LineContext, node: str | None, km: float | None, where: str, notes: list[str]) -> str:
    if node is not None:
        j = ctx.model.node_index.get(node)
        if j is None or j >= ctx.model.n_junctions:
            raise ScenarioError(f"{where}: node {node!r} is not a junction")
        return node
    assert km is not None
    nid, c = ctx.nearest_junction(km, where)
    notes.append(f"km {km:g} -> junction {nid} at chainage {c:.3f} km (nearest on the main path)")
    return nid


def run_scenarios(  # noqa: PLR0913 - the knobs of one what-if study
    network: Network,
    specs: Sequence[ScenarioSpec],
    *,
    rated_speed_rpm: float | Mapping[str, float] = DEFAULT_RATED_RPM,
    ambient_c: float = 25.0,
    conditions: Mapping[str, MachineCondition] | None = None,
    limits: Limits | None = None,
    source: str | None = None,
    delivery: str | None = None,
    accuracy: float = 1e-6,
    include_base: bool = True,
    surge_check: SurgeCheck | None = None,
) -> WhatIfReport:
    """Resolve declared scenarios on a (possibly calibrated) network, solve them in one batch, report.

    Args:
        network: The network (its pump curves may carry calibrated wear).
        specs: Declared scenarios.
        rated_speed_rpm: Rated rpm, one for all or by pump id.
        ambient_c: Ambient temperature, degC.
        conditions: Machine condition by pump id (calibrated vibration baselines, bearing rise).
        limits: Limits to check.
        source: Main path source node (default: found from the network).
        delivery: Main path delivery node (default: found from the network).
        accuracy: Solver convergence limit.
        include_base: Put the base case first.
        surge_check: Optional transient check of scenarios with pump trips.

    Raises:
        ScenarioError: When a scenario cannot be resolved on this network.
    """
    model = compile_network(network)
    ctx = line_context(model, source=source, delivery=delivery, rated_speed_rpm=rated_speed_rpm, accuracy=accuracy)
    whatifs = ([WhatIf(BASE_NAME)] if include_base else []) + [resolve(s, ctx) for s in specs]
    if not whatifs:
        raise ScenarioError("no scenarios to run")
    try:
        result = evaluate(model, whatifs, accuracy=accuracy, strict=False)
        return assess(
            model,
            result,
            path=ctx.path,
            conditions=conditions,
            ambient_c=ambient_c,
            limits=limits,
            surge_check=surge_check,
            rated_speed_rpm=ctx.rated_speed_rpm,
        )
    except NetworkError as exc:
        raise ScenarioError(str(exc)) from exc


# --------------------------------------------------------------------------------------------
# Surge after a pump trip (optional, through the transient solver)
# --------------------------------------------------------------------------------------------


def transient_surge_check(
    *,
    duration_s: float = 120.0,
    trip_time_s: float = 1.0,
    max_reach_m: float = 1000.0,
    rated_speed_rpm: float = DEFAULT_RATED_RPM,
) -> SurgeCheck:
    """A surge check for `run_scenarios` / `twin.whatif.assess` built on `twin.transients`.

    For each station with a tripped pump it rebuilds the scenario's state before the trip
    (the same batch row with the tripped pumps running), then simulates by the method of
    characteristics the pipe chain from the station's discharge to the next pump suction or
    the delivery along the main path. The transient model trips every running pump of the
    station together, so for one pump of several the result is on the severe side. It adds a
    SURGE violation where the pressure passes 110 % of MAOP and a COLUMN SEPARATION violation
    where a vapour cavity forms; a case the transient model cannot build becomes a note.

    Args:
        duration_s: Simulated time after the start, s.
        trip_time_s: Time of the trip, s.
        max_reach_m: Longest MOC reach, m.
        rated_speed_rpm: Rated pump speed for the run-down, rpm.

    Returns:
        The check.
    """

    def check(model: HydraulicModel, sc: WhatIf, result: WhatIfResult, row: int) -> SurgeFindings:
        from dataclasses import replace

        from pumptwin.twin.surge.transients import TransientError, line_from_network, simulate

        net = model.network
        pump_ids = list(model.pump_ids)
        pre = result.batch.take(np.array([row]))
        for pid in sc.trips:
            pre.link_status[0, model.pump_link[pump_ids.index(pid)]] = OPEN
        sol = solve_batch(model, pre)
        speeds = pre.pump_speed[0]
        net_pre = replace(net, pumps=tuple(replace(p, speed=float(speeds[i])) for i, p in enumerate(net.pumps)))
        path = main_path(model)
        suctions = {model.node_index[p.start] for p in net.pumps}
        violations: list[Violation] = []
        notes: list[str] = []
        for start in sorted({net.pumps[pump_ids.index(pid)].end for pid in sc.trips}):
            j = model.node_index[start]
            if j not in path.nodes:
                notes.append(f"surge: {start} is not on the main path; not simulated")
                continue
            after = path.nodes[path.nodes.index(j) + 1 :]
            end = next((n for n in after if n in suctions or n == path.delivery), path.delivery)
            span = f"{start}->{model.node_ids[end]}"
            try:
                case = line_from_network(
                    net_pre,
                    start,
                    model.node_ids[end],
                    head_m=sol.head_m[0],
                    flow_m3s=sol.flow_m3s[0],
                    rated_speed_rpm=rated_speed_rpm,
                    trip_time_s=trip_time_s,
                )
                res = simulate(case, duration_s, max_reach_m=max_reach_m)
            except TransientError as exc:
                notes.append(f"surge on {span} not simulated: {exc}")
                continue
            summary = res.summary()
            notes.append(
                f"surge: station trip at {start} simulated for {duration_s:g} s on {span}: "
                f"max {summary['max_pressure_mpa']:.2f} MPa, min {summary['min_pressure_mpa']:.2f} MPa g"
            )
            if res.surge_violation.any():
                i = int(np.nanargmin(res.surge_margin_pa))
                where = f"{res.pipe_names[int(res.pipe_of_node[i])]} ({span}, {res.x_m[i] / 1e3:.1f} km)"
                limit = float(res.surge_limit_pa[i]) / 1e6
                violations.append(
                    Violation("SURGE", where, float(res.pressure_max_pa[i]) / 1e6, limit, "MPa (110 % MAOP)")
                )
            if res.column_separation.any():
                i = int(np.argmin(res.pressure_min_pa))
                where = f"{int(res.column_separation.sum())} points on {span}"
                vapour = res.vapour_pressure_pa / 1e6
                violations.append(
                    Violation("COLUMN SEPARATION", where, float(res.pressure_min_pa[i]) / 1e6, vapour, "MPa g")
                )
        return SurgeFindings(tuple(violations), tuple(notes))

    return check
