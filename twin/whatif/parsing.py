"""Reading declared scenarios: numbers with units, scenario files (schema version 1) and command-line flags.

Values carry their unit (``50 m3/h``, ``0.5 bar``, ``1400rpm``, ``+10%``, ``90 km``) and become SI
(`twin.units`); a file is a versioned YAML mapping (`read_scenarios`, `parse_scenarios`); flags
are the command line's and the Prefect form's actions (`scenario_from_flags`). Every error is a
`ScenarioError` naming the file, the scenario and the bad key or value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pumptwin.twin.hydraulic.io import read_yaml_mapping
from pumptwin.twin.safety import printable, shorten
from pumptwin.twin.units import LPS_PER_M3S, M3H_PER_M3S, PA_PER_BAR, PA_PER_KPA, PA_PER_MPA
from pumptwin.twin.whatif.spec import (
    BASE_NAME,
    FILE_KEYS,
    SCENARIO_KEYS,
    SCHEMA_VERSION,
    LeakSpec,
    RuptureSpec,
    ScenarioError,
    ScenarioSet,
    ScenarioSpec,
    SpeedChange,
)

MAX_VALUE_CHARS = 64
"""Longest text of a value with its unit (``2300 m3/h``); longer text is refused before it is parsed."""

MAX_NAME_CHARS = 100
"""Longest scenario name in a scenario file."""

MAX_ID_CHARS = 64
"""Longest id of a pump, station, link or node (EPANET's own ids have at most 31 characters)."""

# One way to split a value: the unit cannot start with a digit (no backtracking on long input)
_NUMBER = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*((?:[a-zA-Z%/][a-zA-Z%/0-9]*)?)\s*$")
_KEY_CHARS = 40
_FLOW_UNITS = {
    "m3/h": 1 / M3H_PER_M3S,
    "m3/s": 1.0,
    "l/s": 1 / LPS_PER_M3S,
    "lps": 1 / LPS_PER_M3S,
    "": 1 / M3H_PER_M3S,
}
_PRESSURE_UNITS = {"bar": PA_PER_BAR, "kpa": PA_PER_KPA, "mpa": PA_PER_MPA, "pa": 1.0, "": PA_PER_BAR}


# --------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------


def _key(key: object) -> str:
    """A key from input for a message: as it is when short and printable, else bounded and quoted."""
    text = str(key)
    return text if len(text) <= _KEY_CHARS and text.isprintable() else shorten(text, limit=_KEY_CHARS)


def element_id(value: object, where: str) -> str:
    """An id of a network element (pump, station, link, node) given in a file or a flag.

    Raises:
        ScenarioError: Naming ``where`` when the id is empty, longer than `MAX_ID_CHARS` or not
            printable (a newline or a terminal escape), shown bounded.
    """
    text = str(value).strip()
    if not text or len(text) > MAX_ID_CHARS or not text.isprintable():
        raise ScenarioError(f"{where}: {shorten(text)} is no id (1 to {MAX_ID_CHARS} printable characters)")
    return text


def _split(value: object, where: str) -> tuple[float, str]:
    if isinstance(value, bool):
        raise ScenarioError(f"{where}: expected a number, got {shorten(value)}")
    if isinstance(value, int | float):
        return float(value), ""
    text = value if isinstance(value, str) else ""
    m = _NUMBER.match(text) if len(text) <= MAX_VALUE_CHARS else None
    if m is None:
        raise ScenarioError(f"{where}: expected a number with an optional unit, got {shorten(value)}")
    return float(m.group(1)), m.group(2).lower()


def parse_number(value: object, where: str) -> float:
    """A plain finite number.

    Raises:
        ScenarioError: Naming ``where`` when ``value`` is not a finite number without unit.
    """
    x, unit = _split(value, where)
    if unit or not math.isfinite(x):
        raise ScenarioError(f"{where}: expected a plain number, got {shorten(value)}")
    return x


def parse_pressure_pa(value: object, where: str) -> float:
    """A pressure difference in Pa from ``0.5 bar``, ``50 kPa``, ``0.05 MPa`` or a number in bar.

    Raises:
        ScenarioError: Naming ``where`` for a bad number or unit.
    """
    x, unit = _split(value, where)
    if unit not in _PRESSURE_UNITS:
        raise ScenarioError(
            f"{where}: unknown pressure unit {shorten(unit)} in {shorten(value)} (use bar, kPa, MPa or Pa)"
        )
    return x * _PRESSURE_UNITS[unit]


def parse_flow(value: object, where: str) -> tuple[float | None, float | None]:
    """A flow: (m3/s, None) from ``50 m3/h``, ``14 L/s``, ``0.01 m3/s`` or a number (m3/h), (None, share) from ``2%``.

    Raises:
        ScenarioError: Naming ``where`` for a bad number or unit, or a negative flow.
    """
    x, unit = _split(value, where)
    if x < 0:
        raise ScenarioError(f"{where}: a flow must be >= 0, got {shorten(value)}")
    if unit == "%":
        return None, x / 100.0
    if unit not in _FLOW_UNITS:
        raise ScenarioError(
            f"{where}: unknown flow unit {shorten(unit)} in {shorten(value)} (use m3/h, L/s, m3/s or %)"
        )
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
            raise ScenarioError(f"{where}: a flow change of {shorten(value)} leaves no flow")
        return factor, None
    if unit == "":
        raise ScenarioError(f"{where}: give a change in % (e.g. +10%) or a flow with a unit (e.g. 2300 m3/h)")
    q, _ = parse_flow(value, where)
    if not q:
        raise ScenarioError(f"{where}: a flow target must be > 0, got {shorten(value)}")
    return None, q


def parse_speed(target: str, value: object, where: str) -> SpeedChange:
    """A speed from ``1400rpm`` (absolute) or a number (factor on the base speed).

    Raises:
        ScenarioError: Naming ``where`` for a bad number, unit or a negative speed.
    """
    x, unit = _split(value, where)
    if x < 0:
        raise ScenarioError(f"{where}: speed of {shorten(target)} must be >= 0, got {shorten(value)}")
    if unit == "rpm":
        return SpeedChange(target, rpm=x)
    if unit in ("", "x"):
        return SpeedChange(target, factor=x)
    raise ScenarioError(f"{where}: unknown speed unit {shorten(unit)} in {shorten(value)} (use rpm or a factor)")


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
            raise ScenarioError(f"{where}: a chainage is in km, got {shorten(value)}")
        return None, float(m.group(1))
    return element_id(text, where), None


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def read_scenarios(path: str | Path) -> ScenarioSet:
    """Read a scenario file (YAML, schema version 1).

    Raises:
        ScenarioError: For a missing or invalid file, naming the file and the bad key or value.
    """
    p = Path(path)
    data = read_yaml_mapping(p, ScenarioError, "scenario file", label=printable(p.name))
    return parse_scenarios(data, printable(p.name))


def parse_scenarios(data: Mapping[str, Any], source: str = "scenarios") -> ScenarioSet:
    """Parse the mapping of a scenario file.

    Args:
        data: The file's top-level mapping.
        source: How messages name the file.

    Raises:
        ScenarioError: Naming the file, the scenario and the bad key or value.
    """
    unknown = sorted(set(data) - set(FILE_KEYS), key=str)
    if unknown:
        raise ScenarioError(f"{source}: unknown key {shorten(unknown[0])} (known: {', '.join(FILE_KEYS)})")
    if "version" not in data:
        raise ScenarioError(f"{source}: missing key 'version' (this reader knows version {SCHEMA_VERSION})")
    if data["version"] != SCHEMA_VERSION:
        raise ScenarioError(
            f"{source}: version {shorten(data['version'])} is not supported (expected {SCHEMA_VERSION})"
        )
    items = data.get("scenarios")
    if not isinstance(items, list) or not items:
        raise ScenarioError(f"{source}: 'scenarios' must be a non-empty list")
    rated: float | dict[str, float] | None = None
    if "rated_speed_rpm" in data:
        raw = data["rated_speed_rpm"]
        if isinstance(raw, Mapping):
            rated = {
                element_id(k, f"{source}: rated_speed_rpm"): _positive(v, f"{source}: rated_speed_rpm.{_key(k)}")
                for k, v in raw.items()
            }
        else:
            rated = _positive(raw, f"{source}: rated_speed_rpm")
    ambient = parse_number(data["ambient_c"], f"{source}: ambient_c") if "ambient_c" in data else None
    specs = [parse_scenario(item, f"{source}: scenario {i + 1}") for i, item in enumerate(items)]
    names = [s.name for s in specs]
    seen: set[str] = set()
    for name in names:
        if name in seen or name == BASE_NAME:
            raise ScenarioError(f"{source}: scenario name {shorten(name)} is used twice (or is reserved)")
        seen.add(name)
    src = data.get("source")
    dst = data.get("delivery")
    return ScenarioSet(
        tuple(specs),
        rated,
        ambient,
        None if src is None else element_id(src, f"{source}: source"),
        None if dst is None else element_id(dst, f"{source}: delivery"),
    )


def _positive(value: object, where: str) -> float:
    x = parse_number(value, where)
    if x <= 0:
        raise ScenarioError(f"{where}: must be > 0, got {shorten(value)}")
    return x


def _ids(value: object, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (element_id(value, where),)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(element_id(v, where) for v in value)
    raise ScenarioError(f"{where}: expected an id or a list of ids, got {shorten(value)}")


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ScenarioError(f"{where}: expected a mapping, got {shorten(value)}")
    return value


def _status(value: object, where: str) -> str:
    text = str(value).strip().upper()
    if isinstance(value, bool):
        text = "OPEN" if value else "CLOSED"
    if text not in ("OPEN", "CLOSED"):
        raise ScenarioError(f"{where}: expected open or closed, got {shorten(value)}")
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
    if len(name) > MAX_NAME_CHARS or not name.isprintable():
        raise ScenarioError(
            f"{where}: scenario name {shorten(name)} must be at most {MAX_NAME_CHARS} printable characters"
        )
    at = f"{where} ({shorten(name)})"
    unknown = sorted(set(spec) - set(SCENARIO_KEYS), key=str)
    if unknown:
        raise ScenarioError(f"{at}: unknown key {shorten(unknown[0])} (known: {', '.join(SCENARIO_KEYS)})")
    kw: dict[str, Any] = {"name": name}
    if "flow" in spec:
        kw["flow_factor"], kw["flow_m3s"] = parse_flow_change(spec["flow"], f"{at}: flow")
    if "speed" in spec:
        kw["speeds"] = tuple(
            parse_speed(element_id(t, f"{at}: speed"), v, f"{at}: speed.{_key(t)}")
            for t, v in _mapping(spec["speed"], f"{at}: speed").items()
        )
    for key in ("stop", "start", "standby", "trip"):
        if key in spec:
            kw[key] = _ids(spec[key], f"{at}: {key}")
    if "links" in spec:
        kw["links"] = {
            element_id(k, f"{at}: links"): _status(v, f"{at}: links.{_key(k)}")
            for k, v in _mapping(spec["links"], f"{at}: links").items()
        }
    if "valves" in spec:
        links = dict(kw.get("links", {}))
        valves: dict[str, float] = {}
        for k, v in _mapping(spec["valves"], f"{at}: valves").items():
            if isinstance(v, str) and v.strip().upper() in ("OPEN", "CLOSED"):
                links[element_id(k, f"{at}: valves")] = v.strip().upper()
            else:
                valves[element_id(k, f"{at}: valves")] = parse_number(v, f"{at}: valves.{_key(k)}")
        kw["links"], kw["valves"] = links, valves
    if "demand_factor" in spec:
        kw["demand_factor"] = parse_number(spec["demand_factor"], f"{at}: demand_factor")
        if kw["demand_factor"] < 0:
            raise ScenarioError(f"{at}: demand_factor must be >= 0, got {shorten(spec['demand_factor'])}")
    if "demand" in spec:
        demand: dict[str, float] = {}
        for k, v in _mapping(spec["demand"], f"{at}: demand").items():
            q, frac = parse_flow(v, f"{at}: demand.{_key(k)}")
            if q is None:
                raise ScenarioError(f"{at}: demand.{_key(k)}: give a flow, not a percentage ({shorten(v)})")
            demand[element_id(k, f"{at}: demand")] = q
        kw["demand_m3s"] = demand
    if "fixed_heads" in spec:
        kw["fixed_head_m"] = {
            element_id(k, f"{at}: fixed_heads"): parse_number(v, f"{at}: fixed_heads.{_key(k)}")
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
    return element_id(spec["node"], f"{where}.node"), None


def _leak(spec: Mapping[str, Any], where: str) -> LeakSpec:
    unknown = sorted(set(spec) - {"km", "node", "size"}, key=str)
    if unknown:
        raise ScenarioError(f"{where}: unknown key {shorten(unknown[0])} (known: km, node, size)")
    node, km = _place(spec, where)
    if "size" not in spec:
        raise ScenarioError(f"{where}: needs a 'size' (e.g. 50 m3/h or 2%)")
    q, frac = parse_flow(spec["size"], f"{where}.size")
    return LeakSpec(node, km, q, frac)


def _rupture(spec: Mapping[str, Any], where: str) -> RuptureSpec:
    unknown = sorted(set(spec) - {"km", "node", "area_fraction"}, key=str)
    if unknown:
        raise ScenarioError(f"{where}: unknown key {shorten(unknown[0])} (known: km, node, area_fraction)")
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
        target = element_id(target, "--speed")
        speeds.append(parse_speed(target, value, f"--speed {_key(item)}"))
        parts.append(f"speed {item}")
    kw["speeds"] = tuple(speeds)
    for key, ids in (("stop", stop), ("start", start), ("standby", standby), ("trip", trip)):
        kw[key] = tuple(element_id(i, f"--{key}") for i in ids)
        parts += [f"{key} {i}" for i in ids]
    leaks = []
    for item in leak:
        where, size = _pair(item, "--leak", "KM=SIZE, e.g. 90=50m3/h or KP090=2%")
        node, km = parse_location(where, f"--leak {_key(item)}")
        q, frac = parse_flow(size, f"--leak {_key(item)}")
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
        raise ScenarioError(f"{option}: expected {example}, got {shorten(item)}")
    return left.strip(), right.strip()
