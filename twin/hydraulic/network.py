"""The network model: nodes, links, curves, patterns, controls and options.

Everything is in SI units: metres (m), cubic metres per second (m3/s), seconds
(s), pascals (Pa), kilograms per cubic metre (kg/m3). Elements are frozen
dataclasses validated on construction; a `Network` checks that every link
connects existing nodes and names the offending element when it does not.
File formats live in `twin.inp` (EPANET) and `twin.io` (YAML), never here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.units import (
    ATMOSPHERIC_PRESSURE_PA,
    WATER_DENSITY_KG_M3,
    WATER_VAPOUR_PRESSURE_PA,
    WATER_VISCOSITY_M2_S,
)


class NetworkError(PumptwinError, ValueError):
    """A network element or reference is invalid; the message names the element."""


class LinkStatus(StrEnum):
    """Initial status of a link as written in a network file."""

    OPEN = "OPEN"
    CLOSED = "CLOSED"
    ACTIVE = "ACTIVE"


class ValveType(StrEnum):
    """EPANET control valve kinds."""

    PRV = "PRV"
    PSV = "PSV"
    PBV = "PBV"
    FCV = "FCV"
    TCV = "TCV"
    GPV = "GPV"


HeadlossFormula = Literal["H-W", "D-W", "C-M"]


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise NetworkError(message)


def _finite(value: float) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


@dataclass(frozen=True, slots=True)
class Fluid:
    """Fluid properties.

    Attributes:
        name: Label, e.g. ``"water"`` or ``"crude"``.
        density_kg_m3: Density in kg/m3.
        kinematic_viscosity_m2_s: Kinematic viscosity in m2/s.
        vapour_pressure_pa: Absolute vapour pressure at operating temperature, in Pa.
    """

    name: str = "water"
    density_kg_m3: float = WATER_DENSITY_KG_M3
    kinematic_viscosity_m2_s: float = WATER_VISCOSITY_M2_S
    vapour_pressure_pa: float = WATER_VAPOUR_PRESSURE_PA

    def __post_init__(self) -> None:
        _require(_finite(self.density_kg_m3) and self.density_kg_m3 > 0, f"fluid {self.name!r}: density must be > 0")
        _require(
            _finite(self.kinematic_viscosity_m2_s) and self.kinematic_viscosity_m2_s > 0,
            f"fluid {self.name!r}: kinematic viscosity must be > 0",
        )
        _require(
            _finite(self.vapour_pressure_pa) and self.vapour_pressure_pa >= 0,
            f"fluid {self.name!r}: vapour pressure must be >= 0",
        )

    @property
    def specific_gravity(self) -> float:
        """Density relative to water at 4 C (1000 kg/m3)."""
        return self.density_kg_m3 / 1000.0


FLUIDS: dict[str, Fluid] = {
    "water": Fluid("water", WATER_DENSITY_KG_M3, 1.004e-6, WATER_VAPOUR_PRESSURE_PA),
    "crude": Fluid("crude", 850.0, 1.0e-5, 30_000.0),
    "diesel": Fluid("diesel", 832.0, 3.0e-6, 1_000.0),
    "gasoline": Fluid("gasoline", 740.0, 6.0e-7, 55_000.0),
}
"""Typical fluids at about 15-20 C (kinematic viscosity in m2/s, vapour pressure in Pa)."""


@dataclass(frozen=True, slots=True)
class Curve:
    """A piecewise curve of (x, y) points, e.g. pump head (m) against flow (m3/s)."""

    id: str
    points: tuple[tuple[float, float], ...]
    kind: str = "HEAD"

    def __post_init__(self) -> None:
        _require(len(self.points) >= 1, f"curve {self.id!r}: needs at least one point")
        for x, y in self.points:
            _require(_finite(x) and _finite(y), f"curve {self.id!r}: non-finite point ({x}, {y})")
        xs = [p[0] for p in self.points]
        _require(all(b > a for a, b in zip(xs, xs[1:], strict=False)), f"curve {self.id!r}: x values must increase")

    @property
    def x(self) -> tuple[float, ...]:
        """The x values."""
        return tuple(p[0] for p in self.points)

    @property
    def y(self) -> tuple[float, ...]:
        """The y values."""
        return tuple(p[1] for p in self.points)


@dataclass(frozen=True, slots=True)
class Pattern:
    """Multipliers applied over successive pattern time steps (cyclic)."""

    id: str
    multipliers: tuple[float, ...]

    def __post_init__(self) -> None:
        _require(len(self.multipliers) >= 1, f"pattern {self.id!r}: needs at least one multiplier")
        _require(all(_finite(m) for m in self.multipliers), f"pattern {self.id!r}: non-finite multiplier")

    def at(self, period: int) -> float:
        """Multiplier for pattern period ``period`` (0-based, wraps around)."""
        return self.multipliers[period % len(self.multipliers)]


@dataclass(frozen=True, slots=True)
class Demand:
    """One demand category at a junction: base flow (m3/s) times a pattern."""

    base_m3s: float
    pattern: str | None = None


@dataclass(frozen=True, slots=True)
class Junction:
    """A node with fixed elevation where flow is withdrawn.

    Attributes:
        id: Element id.
        elevation_m: Elevation in m.
        demands: Demand categories (base in m3/s, optional pattern id).
        emitter_coeff: Emitter discharge coefficient C in q = C p^n, with q in
            m3/s and p in m of pressure head (leaks, sprinklers).
        maop_pa: Maximum allowable operating pressure at this point, gauge Pa (optional).
    """

    id: str
    elevation_m: float
    demands: tuple[Demand, ...] = ()
    emitter_coeff: float = 0.0
    maop_pa: float | None = None

    def __post_init__(self) -> None:
        _require(_finite(self.elevation_m), f"junction {self.id!r}: elevation is not a finite number")
        _require(
            _finite(self.emitter_coeff) and self.emitter_coeff >= 0,
            f"junction {self.id!r}: emitter coefficient must be >= 0",
        )
        for d in self.demands:
            _require(_finite(d.base_m3s), f"junction {self.id!r}: demand is not a finite number")

    @property
    def base_demand_m3s(self) -> float:
        """Sum of the base demands in m3/s (without patterns)."""
        return sum(d.base_m3s for d in self.demands)


@dataclass(frozen=True, slots=True)
class Reservoir:
    """A fixed-head node (m), optionally varied by a head pattern."""

    id: str
    head_m: float
    pattern: str | None = None
    elevation_m: float | None = None

    def __post_init__(self) -> None:
        _require(_finite(self.head_m), f"reservoir {self.id!r}: head is not a finite number")

    @property
    def ground_m(self) -> float:
        """Ground elevation used for pressure (m): the head if none was given."""
        return self.head_m if self.elevation_m is None else self.elevation_m


@dataclass(frozen=True, slots=True)
class Tank:
    """A storage tank: cylindrical unless a volume curve (volume m3 against depth m) is given."""

    id: str
    elevation_m: float
    init_level_m: float
    min_level_m: float
    max_level_m: float
    diameter_m: float
    min_volume_m3: float = 0.0
    volume_curve: str | None = None
    overflow: bool = False

    def __post_init__(self) -> None:
        _require(_finite(self.elevation_m), f"tank {self.id!r}: elevation is not a finite number")
        _require(_finite(self.diameter_m) and self.diameter_m > 0, f"tank {self.id!r}: diameter must be > 0")
        _require(
            self.min_level_m <= self.init_level_m <= self.max_level_m,
            f"tank {self.id!r}: needs min level <= initial level <= max level",
        )


@dataclass(frozen=True, slots=True)
class Pipe:
    """A pipe segment.

    Attributes:
        roughness: Hazen-Williams C (-), Darcy-Weisbach absolute roughness (m)
            or Manning n, following the network's head-loss formula.
        minor_loss: Minor loss coefficient K (-).
        status: Initial status; ``check_valve`` lets flow only from start to end.
        maop_pa: Maximum allowable operating pressure of the segment, gauge Pa.
    """

    id: str
    start: str
    end: str
    length_m: float
    diameter_m: float
    roughness: float
    minor_loss: float = 0.0
    status: LinkStatus = LinkStatus.OPEN
    check_valve: bool = False
    maop_pa: float | None = None

    def __post_init__(self) -> None:
        _require(
            _finite(self.length_m) and self.length_m > 0, f"pipe {self.id!r}: length must be > 0 m, got {self.length_m}"
        )
        _require(
            _finite(self.diameter_m) and self.diameter_m > 0,
            f"pipe {self.id!r}: diameter must be > 0 m, got {self.diameter_m}",
        )
        _require(_finite(self.roughness) and self.roughness >= 0, f"pipe {self.id!r}: roughness must be >= 0")
        _require(_finite(self.minor_loss) and self.minor_loss >= 0, f"pipe {self.id!r}: minor loss must be >= 0")
        _require(self.start != self.end, f"pipe {self.id!r}: starts and ends at the same node {self.start!r}")


@dataclass(frozen=True, slots=True)
class Pump:
    """A pump link (start = suction node, end = discharge node).

    Either ``head_curve`` (id of a HEAD curve in m against m3/s) or ``power_w``
    (constant-power pump) is given.

    Attributes:
        speed: Relative speed setting (1.0 = rated).
        speed_pattern: Pattern id whose multipliers replace the speed over time.
        efficiency_curve: Curve id of efficiency (fraction 0..1) against flow (m3/s).
        npshr_curve: Curve id of NPSH required (m) against flow (m3/s).
        station: Pump station the pump belongs to.
        min_speed, max_speed: Allowed relative speed range.
    """

    id: str
    start: str
    end: str
    head_curve: str | None = None
    power_w: float | None = None
    speed: float = 1.0
    speed_pattern: str | None = None
    status: LinkStatus = LinkStatus.OPEN
    efficiency_curve: str | None = None
    npshr_curve: str | None = None
    station: str | None = None
    min_speed: float = 0.0
    max_speed: float = 1.2

    def __post_init__(self) -> None:
        _require(
            (self.head_curve is None) != (self.power_w is None),
            f"pump {self.id!r}: give exactly one of a head curve or a power",
        )
        _require(_finite(self.speed) and self.speed >= 0, f"pump {self.id!r}: speed must be >= 0")
        if self.power_w is not None:
            _require(_finite(self.power_w) and self.power_w > 0, f"pump {self.id!r}: power must be > 0 W")
        _require(self.start != self.end, f"pump {self.id!r}: starts and ends at the same node {self.start!r}")


@dataclass(frozen=True, slots=True)
class Valve:
    """A control valve.

    ``setting`` means, by type: PRV/PSV/PBV pressure head (m), FCV flow (m3/s),
    TCV loss coefficient (-), GPV the id of a head-loss curve (in ``curve``).
    ``status`` OPEN or CLOSED fixes the valve; ACTIVE lets it control.
    """

    id: str
    start: str
    end: str
    diameter_m: float
    valve_type: ValveType
    setting: float = 0.0
    minor_loss: float = 0.0
    status: LinkStatus = LinkStatus.ACTIVE
    curve: str | None = None

    def __post_init__(self) -> None:
        _require(
            _finite(self.diameter_m) and self.diameter_m > 0,
            f"valve {self.id!r}: diameter must be > 0 m, got {self.diameter_m}",
        )
        _require(_finite(self.setting), f"valve {self.id!r}: setting is not a finite number")
        _require(self.valve_type != ValveType.GPV or self.curve is not None, f"valve {self.id!r}: a GPV needs a curve")
        _require(self.start != self.end, f"valve {self.id!r}: starts and ends at the same node {self.start!r}")


@dataclass(frozen=True, slots=True)
class Control:
    """A simple control: set a link's status or setting when a condition holds.

    Conditions: ``node`` with ``above``/``below`` a value (tank level in m above
    the tank bottom, or junction pressure head in m), ``time_s`` (elapsed
    simulation time) or ``clocktime_s`` (time of day).
    """

    link: str
    status: LinkStatus | None = None
    setting: float | None = None
    node: str | None = None
    above: float | None = None
    below: float | None = None
    time_s: float | None = None
    clocktime_s: float | None = None

    def __post_init__(self) -> None:
        kinds = sum(x is not None for x in (self.node, self.time_s, self.clocktime_s))
        _require(kinds == 1, f"control on link {self.link!r}: needs exactly one condition")
        if self.node is not None:
            _require(
                (self.above is None) != (self.below is None),
                f"control on link {self.link!r}: a node condition needs ABOVE or BELOW",
            )
        _require(
            self.status is not None or self.setting is not None,
            f"control on link {self.link!r}: needs a status or setting",
        )


RuleVariable = Literal[
    "DEMAND", "HEAD", "GRADE", "LEVEL", "PRESSURE", "FLOW", "STATUS", "SETTING", "TIME", "CLOCKTIME", "FILLTIME",
    "DRAINTIME",
]  # fmt: skip
RULE_RELATIONS = ("=", "<>", "<", ">", "<=", ">=")
_NODE_VARIABLES = frozenset({"DEMAND", "HEAD", "GRADE", "LEVEL", "PRESSURE", "FILLTIME", "DRAINTIME"})
_LINK_VARIABLES = frozenset({"FLOW", "STATUS", "SETTING"})
_SYSTEM_VARIABLES = frozenset({"DEMAND", "TIME", "CLOCKTIME"})


@dataclass(frozen=True, slots=True)
class RulePremise:
    """One condition of a rule-based control: ``<object> <id> <variable> <relation> <value>``.

    Values are SI: m (head, grade, level; pressure as head of the fluid), m3/s (demand, flow), s
    (times, fill and drain times), a pump's relative speed or a valve's setting as `Valve.setting`.
    A node's DEMAND is its demand (a tank's: its net inflow), the SYSTEM's the total demand.

    Attributes:
        object: ``NODE``, ``LINK`` or ``SYSTEM``.
        element: The node or link id (None for the system).
        variable: What is compared.
        relation: One of `RULE_RELATIONS`.
        value: The threshold (None when a link's status is compared).
        status: ``OPEN``, ``CLOSED`` or ``ACTIVE`` when a link's status is compared.
        tolerance: Margin of the comparison, in the value's unit (EPANET: 0.001 of the file's unit).
        join: ``AND`` or ``OR`` with the premises before (the first one's is ``AND``).
    """

    object: Literal["NODE", "LINK", "SYSTEM"]
    element: str | None
    variable: RuleVariable
    relation: str
    value: float | None = None
    status: LinkStatus | None = None
    tolerance: float = field(default=0.0, compare=False)
    join: Literal["AND", "OR"] = "AND"

    def __post_init__(self) -> None:
        """Check the object, variable, relation and value fit together."""
        allowed = {"NODE": _NODE_VARIABLES, "LINK": _LINK_VARIABLES, "SYSTEM": _SYSTEM_VARIABLES}[self.object]
        _require(self.variable in allowed, f"rule premise: {self.object} has no {self.variable}")
        _require((self.element is None) == (self.object == "SYSTEM"), "rule premise: only the SYSTEM has no id")
        _require(self.relation in RULE_RELATIONS, f"rule premise: unknown relation {self.relation!r}")
        _require(
            (self.status is None) != (self.value is None) and (self.status is None or self.object == "LINK"),
            "rule premise: needs a value, or a status for a link",
        )
        _require(self.value is None or _finite(self.value), "rule premise: value must be finite")


@dataclass(frozen=True, slots=True)
class RuleAction:
    """What a rule does to one link: set its status, or its setting (SI, as `Control.setting`)."""

    link: str
    status: LinkStatus | None = None
    setting: float | None = None

    def __post_init__(self) -> None:
        """Exactly one of status and setting; a setting is finite and >= 0."""
        _require((self.status is None) != (self.setting is None), f"rule action on {self.link!r}: status or setting")
        _require(
            self.setting is None or (_finite(self.setting) and self.setting >= 0),
            f"rule action on {self.link!r}: setting must be finite and >= 0",
        )


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule-based control (EPANET [RULES]): IF premises THEN actions ELSE actions, with a priority.

    Checked between hydraulic time steps at the rule time step; where rules act on the same link,
    the one of higher priority wins (the first to act among equals).
    """

    id: str
    premises: tuple[RulePremise, ...]
    then: tuple[RuleAction, ...]
    otherwise: tuple[RuleAction, ...] = ()
    priority: float = 0.0
    enabled: bool = True

    def __post_init__(self) -> None:
        """A rule needs a premise and an action."""
        _require(len(self.premises) > 0 and len(self.then) > 0, f"rule {self.id!r}: needs IF and THEN clauses")


def _check_rules(rules: tuple[Rule, ...], nodes: set[str], links: set[str], tanks: set[str]) -> None:
    """Rule ids are unique and every node, tank and link a rule names exists."""
    _dupes([r.id for r in rules], "rule")
    for rule in rules:
        for p in rule.premises:
            where = nodes if p.object == "NODE" else links
            _require(
                p.element is None or p.element in where, f"rule {rule.id!r}: {p.object} {p.element!r} does not exist"
            )
            _require(
                p.variable not in ("FILLTIME", "DRAINTIME") or p.element in tanks,
                f"rule {rule.id!r}: {p.variable} of {p.element!r}, which is not a tank",
            )
        for a in (*rule.then, *rule.otherwise):
            _require(a.link in links, f"rule {rule.id!r}: link {a.link!r} does not exist")


@dataclass(frozen=True, slots=True)
class Options:
    """Hydraulic and time options (EPANET's [OPTIONS] and [TIMES]), in SI.

    ``rule_step_s`` is the rule time step; 0 takes a tenth of the hydraulic step (EPANET's default).
    ``demand_model`` and the pressures (m of the fluid) and exponent after it are the file's
    pressure-driven demand options; the solver is demand-driven and `pumptwin solve` says where a
    pressure-driven answer would differ.
    """

    headloss: HeadlossFormula = "H-W"
    viscosity_m2_s: float = WATER_VISCOSITY_M2_S
    specific_gravity: float = 1.0
    trials: int = 200
    accuracy: float = 1e-3
    unbalanced_continue: int | None = 10
    demand_multiplier: float = 1.0
    emitter_exponent: float = 0.5
    check_frequency: int = 2
    max_check: int = 10
    damp_limit: float = 0.0
    default_pattern: str | None = "1"
    duration_s: float = 0.0
    hydraulic_step_s: float = 3600.0
    pattern_step_s: float = 3600.0
    pattern_start_s: float = 0.0
    report_step_s: float = 3600.0
    report_start_s: float = 0.0
    start_clocktime_s: float = 0.0
    rule_step_s: float = 0.0
    demand_model: Literal["DDA", "PDA"] = "DDA"
    minimum_pressure_m: float = 0.0
    required_pressure_m: float = 0.1
    pressure_exponent: float = 0.5

    def __post_init__(self) -> None:
        _require(self.headloss in ("H-W", "D-W", "C-M"), f"options: unknown head-loss formula {self.headloss!r}")
        _require(self.trials > 0, "options: trials must be > 0")
        _require(self.accuracy > 0, "options: accuracy must be > 0")
        _require(self.viscosity_m2_s > 0, "options: viscosity must be > 0")
        _require(self.emitter_exponent > 0, "options: emitter exponent must be > 0")
        _require(self.hydraulic_step_s > 0 and self.pattern_step_s > 0, "options: time steps must be > 0")
        _require(self.demand_model in ("DDA", "PDA"), f"options: unknown demand model {self.demand_model!r}")
        _require(
            _finite(self.minimum_pressure_m) and _finite(self.required_pressure_m) and self.pressure_exponent > 0,
            "options: pressure-driven demand needs finite pressures and an exponent > 0",
        )


@dataclass(frozen=True, slots=True)
class Network:
    """A pipe network with pump stations: the twin's physical model.

    ``source_encoding`` is the text encoding of the file the network was read from (``utf-8``,
    ``cp1252``, ...; None when built in code); it does not take part in comparisons.

    Raises:
        NetworkError: When ids repeat, a link names a node that does not exist,
            or a pump, control or pattern refers to something missing.
    """

    name: str = "network"
    junctions: tuple[Junction, ...] = ()
    reservoirs: tuple[Reservoir, ...] = ()
    tanks: tuple[Tank, ...] = ()
    pipes: tuple[Pipe, ...] = ()
    pumps: tuple[Pump, ...] = ()
    valves: tuple[Valve, ...] = ()
    curves: tuple[Curve, ...] = ()
    patterns: tuple[Pattern, ...] = ()
    controls: tuple[Control, ...] = ()
    options: Options = field(default_factory=Options)
    fluid: Fluid = field(default_factory=Fluid)
    atmospheric_pressure_pa: float = ATMOSPHERIC_PRESSURE_PA
    source_encoding: str | None = field(default=None, compare=False)
    rules: tuple[Rule, ...] = ()

    def __post_init__(self) -> None:
        node_ids = [n.id for n in self.nodes]
        link_ids = [link.id for link in self.links]
        _require(len(node_ids) > 0, f"network {self.name!r}: has no nodes")
        _require(len(self.reservoirs) + len(self.tanks) > 0, f"network {self.name!r}: needs a reservoir or tank")
        _dupes(node_ids, "node")
        _dupes(link_ids, "link")
        _dupes([c.id for c in self.curves], "curve")
        _dupes([p.id for p in self.patterns], "pattern")
        nodes = set(node_ids)
        links = set(link_ids)
        curves = {c.id for c in self.curves}
        patterns = {p.id for p in self.patterns}
        for link in self.links:
            kind = type(link).__name__.lower()
            for end in (link.start, link.end):
                _require(end in nodes, f"{kind} {link.id!r}: node {end!r} does not exist")
        for pump in self.pumps:
            for cid in (pump.head_curve, pump.efficiency_curve, pump.npshr_curve):
                _require(cid is None or cid in curves, f"pump {pump.id!r}: curve {cid!r} does not exist")
            _require(
                pump.speed_pattern is None or pump.speed_pattern in patterns,
                f"pump {pump.id!r}: pattern {pump.speed_pattern!r} does not exist",
            )
        for valve in self.valves:
            _require(
                valve.curve is None or valve.curve in curves,
                f"valve {valve.id!r}: curve {valve.curve!r} does not exist",
            )
        for j in self.junctions:
            for d in j.demands:
                _require(
                    d.pattern is None or d.pattern in patterns,
                    f"junction {j.id!r}: pattern {d.pattern!r} does not exist",
                )
        for r in self.reservoirs:
            _require(
                r.pattern is None or r.pattern in patterns, f"reservoir {r.id!r}: pattern {r.pattern!r} does not exist"
            )
        for t in self.tanks:
            _require(
                t.volume_curve is None or t.volume_curve in curves,
                f"tank {t.id!r}: volume curve {t.volume_curve!r} does not exist",
            )
        for c in self.controls:
            _require(c.link in links, f"control: link {c.link!r} does not exist")
            _require(c.node is None or c.node in nodes, f"control on link {c.link!r}: node {c.node!r} does not exist")
        _check_rules(self.rules, nodes, links, {t.id for t in self.tanks})

    @property
    def nodes(self) -> tuple[Junction | Reservoir | Tank, ...]:
        """Junctions, then reservoirs, then tanks."""
        return (*self.junctions, *self.reservoirs, *self.tanks)

    @property
    def links(self) -> tuple[Pipe | Pump | Valve, ...]:
        """Pipes, then pumps, then valves."""
        return (*self.pipes, *self.pumps, *self.valves)

    def curve(self, curve_id: str) -> Curve:
        """The curve with id ``curve_id``."""
        for c in self.curves:
            if c.id == curve_id:
                return c
        raise NetworkError(f"curve {curve_id!r} does not exist")

    def pattern(self, pattern_id: str) -> Pattern:
        """The pattern with id ``pattern_id``."""
        for p in self.patterns:
            if p.id == pattern_id:
                return p
        raise NetworkError(f"pattern {pattern_id!r} does not exist")

    def node(self, node_id: str) -> Junction | Reservoir | Tank:
        """The node with id ``node_id``."""
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise NetworkError(f"node {node_id!r} does not exist")

    def link(self, link_id: str) -> Pipe | Pump | Valve:
        """The link with id ``link_id``."""
        for link in self.links:
            if link.id == link_id:
                return link
        raise NetworkError(f"link {link_id!r} does not exist")


def _dupes(ids: Iterable[str], kind: str) -> None:
    seen: set[str] = set()
    for i in ids:
        _require(i not in seen, f"{kind} id {i!r} is used twice")
        seen.add(i)
