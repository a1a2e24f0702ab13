"""EPANET ``.inp`` files: read them into a SI `Network` and write a `Network` back.

The reader converts every quantity to SI (m, m3/s, s, W) with exact factors
(1 ft = 0.3048 m, 1 US gal = 0.003785411784 m3) and, for pressures, EPANET's own
0.4333 psi per ft of water divided by the specific gravity, so results match
EPANET. The writer uses SI file units (LPS flows, m lengths, mm diameters,
METERS pressure) so that ``read_inp(write_inp(read_inp(f)))`` gives back the
same model. Errors raise `NetworkError` naming the file, line, section and element.

Files are decoded without losing a byte (`decode_inp`): UTF-8 or UTF-16/32 with a byte-order
mark, else Windows-1252 (what the EPANET GUI writes on Windows), else Latin-1; the network's
``source_encoding`` says which, and a file that is not text is refused.
"""

from __future__ import annotations

import codecs
import logging
import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from pumptwin.twin.hydraulic.network import (
    Control,
    Curve,
    Demand,
    Junction,
    LinkStatus,
    Network,
    NetworkError,
    Options,
    Pattern,
    Pipe,
    Pump,
    Reservoir,
    Rule,
    RuleAction,
    RulePremise,
    Tank,
    Valve,
    ValveType,
)
from pumptwin.twin.safety import shorten
from pumptwin.twin.units import HOUR_S, WATER_VISCOSITY_M2_S

__all__ = ["decode_inp", "format_inp", "parse_inp", "read_inp", "write_inp"]

FT_M, HP_W, _GAL_M3 = 0.3048, 745.699872, 0.003785411784  # m per ft, W per hp, m3 per US gallon (all exact)
PSI_PER_FT, KPA_PER_PSI = 0.4333, 6.894757  # EPANET's own factors (psi per ft of water, kPa per psi)
_EPANET_PER_CFS = {
    "CFS": 1.0, "GPM": 448.831, "MGD": 0.64632, "IMGD": 0.5382, "AFD": 1.9837, "LPS": 28.317, "LPM": 1699.0,
    "MLD": 2.4466, "CMH": 101.94, "CMD": 2446.6, "CMS": 0.028317,
}  # fmt: skip
FLOW_UNITS_M3S: dict[str, float] = {unit: FT_M**3 / per_cfs for unit, per_cfs in _EPANET_PER_CFS.items()}
"""Cubic metres per second in one of each EPANET flow unit, by EPANET 2.2's own factors (types.h:
LPSperCFS = 28.317 and so on), so that a file means to us what it means to EPANET (1 LPS = 0.99999 L/s)."""
US_FLOW_UNITS = frozenset({"CFS", "GPM", "MGD", "IMGD", "AFD"})
_FLOW_UNIT_ALIASES = {"SI": "LPS"}  # EPANET's input parser (input3.c) reads UNITS SI as LPS
_ABSOLUTE_VISCOSITY_MAX = 1e-3  # EPANET: a VISCOSITY above this is relative to water at 20 C, else absolute

_DATA = (
    "TITLE JUNCTIONS RESERVOIRS TANKS PIPES PUMPS VALVES DEMANDS EMITTERS PATTERNS CURVES CONTROLS RULES STATUS ENERGY"
)
_SKIPPED = "QUALITY REACTIONS SOURCES MIXING REPORT COORDINATES VERTICES LABELS BACKDROP TAGS END"
_KNOWN_SECTIONS = frozenset(f"{_DATA} OPTIONS TIMES {_SKIPPED}".split())
# curve kind -> (hint word written, x quantity, y quantity); quantities are `_units` keys
_CURVE_AXES: dict[str, tuple[str, str, str]] = {
    "HEAD": ("PUMP", "flow", "length"), "EFFICIENCY": ("EFFICIENCY", "flow", "percent"),
    "VOLUME": ("VOLUME", "length", "volume"), "HEADLOSS": ("HEADLOSS", "flow", "length"),
    "NPSHR": ("NPSHR", "flow", "length"), "GENERIC": ("GENERIC", "one", "one"),
}  # fmt: skip
_HINTS = {hint: kind for kind, (hint, _, _) in _CURVE_AXES.items()} | {"HEAD": "HEAD", "GENERAL": "GENERIC"}
_VALVE_SETTING = {"PRV": "pressure", "PSV": "pressure", "PBV": "pressure", "FCV": "flow", "TCV": "one", "GPV": "one"}
_TOKEN = re.compile(r'"[^"]*"|\S+')
# [OPTIONS] keyword -> (Options field, parser); UNITS, PRESSURE, UNBALANCED and PATTERN are read apart, and
# VISCOSITY is converted to SI once the file's units are known
_OPTION_FIELDS: dict[str, tuple[str, Callable[[str], object]]] = {
    "SPECIFIC GRAVITY": ("specific_gravity", float), "DEMAND MULTIPLIER": ("demand_multiplier", float),
    "EMITTER EXPONENT": ("emitter_exponent", float), "TRIALS": ("trials", lambda s: int(float(s))),
    "ACCURACY": ("accuracy", float), "CHECKFREQ": ("check_frequency", lambda s: int(float(s))),
    "MAXCHECK": ("max_check", lambda s: int(float(s))), "DAMPLIMIT": ("damp_limit", float),
    "HEADLOSS": ("headloss", str.upper), "VISCOSITY": ("viscosity_m2_s", float),
    "DEMAND MODEL": ("demand_model", str.upper), "PRESSURE EXPONENT": ("pressure_exponent", float),
    "MINIMUM PRESSURE": ("minimum_pressure_m", float), "REQUIRED PRESSURE": ("required_pressure_m", float),
}  # fmt: skip
_TIME_FIELDS = {
    "DURATION": "duration_s", "HYDRAULIC TIMESTEP": "hydraulic_step_s", "PATTERN TIMESTEP": "pattern_step_s",
    "PATTERN START": "pattern_start_s", "REPORT TIMESTEP": "report_step_s", "REPORT START": "report_start_s",
    "START CLOCKTIME": "start_clocktime_s", "RULE TIMESTEP": "rule_step_s",
}  # fmt: skip
# [RULES] words as EPANET matches them (a token matches the first word it begins with, any case; "<=" before "<")
_RULE_OBJECTS = {"JUNC": "NODE", "RESER": "NODE", "TANK": "NODE", "NODE": "NODE", "PIPE": "LINK", "PUMP": "LINK",
                 "VALVE": "LINK", "LINK": "LINK", "SYS": "SYSTEM"}  # fmt: skip
_RULE_VARIABLES = {"DEMA": "DEMAND", "HEAD": "HEAD", "GRAD": "GRADE", "LEVE": "LEVEL", "PRES": "PRESSURE",
                   "FLOW": "FLOW", "STAT": "STATUS", "SETT": "SETTING", "TIME": "TIME", "CLOC": "CLOCKTIME",
                   "FILL": "FILLTIME", "DRAI": "DRAINTIME"}  # fmt: skip
_RULE_RELATIONS = {"=": "=", "<>": "<>", "<=": "<=", ">=": ">=", "<": "<", ">": ">", "IS": "=", "NOT": "<>",
                   "BELOW": "<", "ABOVE": ">"}  # fmt: skip
_RULE_TOLERANCE = 1e-3
"""EPANET compares a rule's value within 0.001 of the file's unit."""
_T = TypeVar("_T")
_RESERVOIR_TANK_TOKENS = 3  # id, head and an optional head pattern
_NOON_H, _MAX_HMS_PARTS = 12.0, 3
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
         (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))  # fmt: skip
# control characters no text file holds (tab, line feed, vertical tab, form feed and carriage return are text)
_BINARY = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
_log = logging.getLogger(__name__)


class _Bad(NetworkError):
    """An error without location; `_Reader.at` adds file, line, section and element."""


class _Located(NetworkError):
    """An error that already names its file and line."""


def _units(flow_units: str, pressure_units: str, specific_gravity: float, headloss: str) -> dict[str, float]:
    """SI value of one file unit of each quantity (m, m3/s, m of fluid head, W, m3)."""
    us = flow_units in US_FLOW_UNITS
    length = FT_M if us else 1.0
    per_ft = {"PSI": PSI_PER_FT, "KPA": KPA_PER_PSI * PSI_PER_FT, "METERS": FT_M}[pressure_units]
    return {
        "flow": FLOW_UNITS_M3S[flow_units], "length": length, "diameter": 0.0254 if us else 1e-3,
        "pressure": FT_M / (per_ft * specific_gravity), "power": HP_W if us else 1e3, "volume": length**3,
        "roughness": 1e-3 * length if headloss == "D-W" else 1.0, "percent": 0.01, "one": 1.0,
    }  # fmt: skip


@dataclass(slots=True)
class _Row:
    no: int
    section: str
    tokens: list[str]
    text: str
    hint: str

    def tok(self, i: int, what: str | None = None) -> str | None:
        """Token ``i``; None when absent (or ``*``), an error naming ``what`` if it is required."""
        if i < len(self.tokens) and self.tokens[i] != "*":
            return self.tokens[i]
        if what is not None:
            raise _Bad(f"missing {what} (field {i + 1})")
        return None

    def word(self, i: int, what: str, allowed: Iterable[str], default: str | None = None) -> str:
        """Field ``i`` upper-cased, which must be one of ``allowed`` (``default`` when absent)."""
        word = (self.tok(i, None if default else what) or default or "").upper()
        if word not in (allowed := tuple(allowed)):
            raise _Bad(f"{what} must be one of {', '.join(allowed)}, got {shorten(self.tokens[i])}")
        return word

    def num(self, i: int, what: str, scale: float = 1.0, default: float | None = None) -> float:
        """Field ``i`` as a finite float times ``scale``; ``default`` (unscaled) when absent."""
        if (tok := self.tok(i, None if default is not None else what)) is None:
            return default or 0.0
        try:
            value = float(tok)
        except ValueError:
            raise _Bad(f"malformed number {shorten(tok)} for {what}") from None
        if not math.isfinite(value):
            raise _Bad(f"{what} is not a finite number: {shorten(tok)}")
        return value * scale


def _split(text: str, source: str) -> defaultdict[str, list[_Row]]:
    sections: defaultdict[str, list[_Row]] = defaultdict(list)
    current: str | None = None
    hint = ""
    for no, raw in enumerate(text.splitlines(), 1):
        body, semicolon, comment = raw.partition(";")
        body = body.strip()
        if not body:
            hint = comment.strip() if semicolon else hint
            continue
        if body.startswith("["):
            name = body[1 : body.find("]")].strip().upper()
            if "]" not in body or name not in _KNOWN_SECTIONS:
                raise _Located(f"{source} line {no}: unknown section {shorten(body.split()[0])}")
            if name == "END":
                break
            current, hint = name, ""
            continue
        if current is None:
            raise _Located(f"{source} line {no}: data before the first [SECTION] header")
        tokens = [t[1:-1] if t.startswith('"') and len(t) > 1 else t for t in _TOKEN.findall(body)]
        sections[current].append(_Row(no, current, tokens, body, hint))
        hint = ""
    return sections


def _premise_scale(variable: str, link: Pipe | Pump | Valve | None, units: Mapping[str, float]) -> float:
    """SI value of one file unit of a rule premise's variable (a SETTING's by its link)."""
    if variable in ("FILLTIME", "DRAINTIME"):
        return HOUR_S
    if variable == "SETTING":
        if isinstance(link, Valve) and link.valve_type != ValveType.GPV:
            return units[_VALVE_SETTING[link.valve_type.value]]
        return 1.0
    return units[{"DEMAND": "flow", "FLOW": "flow", "PRESSURE": "pressure"}.get(variable, "length")]


def _rule_lines(rule: Rule, network: Network, u: Mapping[str, float]) -> list[str]:
    """The [RULES] lines of ``rule`` in the file units ``u``."""
    lines = [f"RULE {_id(rule.id)}"]
    for i, p in enumerate(rule.premises):
        word = "IF" if i == 0 else p.join
        if p.object == "SYSTEM":
            value = _time(p.value or 0.0) if p.variable in ("TIME", "CLOCKTIME") else _f((p.value or 0.0) / u["flow"])
            lines.append(f"{word} SYSTEM {p.variable} {p.relation} {value}")
            continue
        if p.status is not None:
            value = p.status.value
        else:
            link = network.link(p.element or "") if p.object == "LINK" else None
            value = _f((p.value or 0.0) / _premise_scale(p.variable, link, u))
        lines.append(f"{word} {p.object} {_id(p.element)} {p.variable} {p.relation} {value}")
    for clause, actions in (("THEN", rule.then), ("ELSE", rule.otherwise)):
        for i, a in enumerate(actions):
            link = network.link(a.link)
            if a.status is not None:
                what = f"STATUS IS {a.status.value}"
            else:
                scale = 1.0 if isinstance(link, Pump) else u[_VALVE_SETTING[link.valve_type.value]]  # type: ignore[union-attr]
                what = f"SETTING IS {_f((a.setting or 0.0) / scale)}"
            lines.append(f"{clause if i == 0 else 'AND'} LINK {_id(a.link)} {what}")
    if rule.priority:
        lines.append(f"PRIORITY {_f(rule.priority)}")
    if not rule.enabled:
        lines.append("DISABLED")
    return lines


def _rule_word(token: str, words: Mapping[str, str], what: str) -> str:
    """The [RULES] word ``token`` stands for: the first it begins with (EPANET's findmatch), any case."""
    upper = token.upper()
    for key, word in words.items():
        if upper.startswith(key):
            return word
    raise _Bad(f"unknown rule {what} {shorten(token)}")


def _only(items: Iterable[object], kind: type[_T]) -> tuple[_T, ...]:
    return tuple(x for x in items if isinstance(x, kind))


def _key(row: _Row, table: Mapping[str, object]) -> tuple[str, int]:
    """The (one- or two-word) keyword of an [OPTIONS] or [TIMES] row and how many tokens it takes."""
    two = " ".join(row.tokens[:2]).upper()
    return (two, 2) if two in table else (row.tokens[0].upper(), 1)


def _set(options: Options, name: str, value: object) -> Options:
    return replace(options, **{name: value})  # type: ignore[arg-type]


def _seconds(value: str, unit: str = "") -> float:
    """EPANET time ``h``, ``h:mm``, ``h:mm:ss`` or a number with SEC/MIN/HOURS/DAYS or AM/PM, in s."""
    parts = value.split(":")
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        raise _Bad(f"malformed time {shorten(value)}") from None
    if len(parts) > _MAX_HMS_PARTS or any(n < 0 or not math.isfinite(n) for n in numbers):
        raise _Bad(f"malformed time {shorten(value)}")
    hours = sum(n / 60.0**i for i, n in enumerate(numbers))
    u = unit.upper()
    scales = {"SEC": 1 / 3600, "MIN": 1 / 60, "HOU": 1.0, "DAY": 24.0}
    if u and len(parts) == 1 and u[:3] in scales:
        hours *= scales[u[:3]]
    elif u in ("AM", "PM"):
        if hours >= _NOON_H + 1:
            raise _Bad(f"malformed clock time {value} {unit}")
        hours = (hours % _NOON_H) + (_NOON_H if u == "PM" else 0.0)
    elif u:
        raise _Bad(f"unknown time unit {shorten(unit)}")
    return float(math.floor(hours * HOUR_S + 0.5))


class _Reader:
    """Builds a `Network` from the rows of an .inp file, section by section in dependency order."""

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.rows = _split(text, source)
        self.nodes: dict[str, Junction | Reservoir | Tank] = {}
        self.links: dict[str, Pipe | Pump | Valve] = {}
        self.patterns: dict[str, list[float]] = {}
        self.curves: dict[str, list[tuple[float, float]]] = {}
        self.first_row: dict[tuple[str, str], _Row] = {}  # (section, id) -> row that defined it
        self.curve_kind: dict[str, tuple[str, bool]] = {}  # id -> (kind, set by use rather than hint)
        self.controls: list[Control] = []
        self.rules: list[Rule] = []
        self.replaced_demand: set[str] = set()
        self.options = Options(unbalanced_continue=None)
        self.units = _units("GPM", "PSI", 1.0, "H-W")

    @contextmanager
    def at(self, row: _Row, kind: str = "", index: int = 0) -> Iterator[None]:
        """Re-raise any error inside naming file, line, section and the element (``kind`` + token ``index``)."""
        where = f"{self.source} line {row.no} [{row.section}]"
        label = f" {kind} {shorten(row.tokens[index])}:" if kind and index < len(row.tokens) else ""
        try:
            yield
        except _Located:
            raise
        except _Bad as e:
            raise _Located(f"{where}{label} {e}") from e
        except NetworkError as e:
            raise _Located(f"{where} {e}") from e
        except (ValueError, TypeError, IndexError, KeyError, ArithmeticError) as e:
            raise _Located(f"{where}{label} {type(e).__name__}: {e}") from e

    def ref(self, table: Mapping[str, object], kind: str, ref_id: str | None) -> str | None:
        if ref_id is not None and ref_id not in table:
            raise _Bad(f"{kind} {shorten(ref_id)} does not exist")
        return ref_id

    def use_curve(self, curve_id: str | None, kind: str) -> str | None:
        """Check that ``curve_id`` exists and record that it is used as a ``kind`` curve."""
        if curve_id is None or self.ref(self.curves, "curve", curve_id) is None:
            return None
        old, by_use = self.curve_kind.get(curve_id, (kind, False))
        if by_use and old != kind:
            raise _Bad(f"curve {shorten(curve_id)} is used both as a {old} and as a {kind} curve")
        self.curve_kind[curve_id] = (kind, True)
        return curve_id

    def add(self, element: Junction | Reservoir | Tank | Pipe | Pump | Valve) -> None:
        table: dict[str, object] = self.links if isinstance(element, Pipe | Pump | Valve) else self.nodes  # type: ignore[assignment]
        if element.id in table:
            raise _Bad(f"{'link' if table is self.links else 'node'} id is used twice")
        table[element.id] = element

    def ends(self, row: _Row) -> tuple[str, str]:
        start, end = row.tok(1, "start node") or "", row.tok(2, "end node") or ""
        return self.ref(self.nodes, "node", start) or start, self.ref(self.nodes, "node", end) or end

    def read(self) -> Network:
        """Parse every section and build the network."""
        self.read_options()
        for row in self.rows["PATTERNS"]:
            with self.at(row, "pattern"):
                self.first_row.setdefault(("PATTERNS", row.tokens[0]), row)
                multipliers = self.patterns.setdefault(row.tokens[0], [])
                multipliers += [row.num(i, "multiplier") for i in range(1, len(row.tokens))]
        for row in self.rows["CURVES"]:
            with self.at(row, "curve"):
                cid = row.tokens[0]
                if cid not in self.curves:
                    hint = re.match(r"\s*(\w+)\s*:", row.hint)
                    if hint and hint.group(1).upper() in _HINTS:
                        self.curve_kind[cid] = (_HINTS[hint.group(1).upper()], False)
                    self.curves[cid], self.first_row["CURVES", cid] = [], row
                x, y, points = row.num(1, "x value"), row.num(2, "y value"), self.curves[cid]
                if points and x <= points[-1][0]:
                    raise _Bad(f"x values must increase, got {x} after {points[-1][0]}")
                points.append((x, y))
        self.read_nodes()
        self.read_links()
        self.read_changes()
        for row in self.rows["CONTROLS"]:
            with self.at(row, "control on link", 1):
                self.read_control(row)
        self.read_rules()
        return self.build()

    def read_options(self) -> None:
        """[OPTIONS] and [TIMES]; the file units follow from UNITS, PRESSURE, SPECIFIC GRAVITY and HEADLOSS."""
        units, pressure = "GPM", "METERS"
        for row in self.rows["OPTIONS"]:
            word, (key, n) = [t.upper() for t in row.tokens] + [""], _key(row, _OPTION_FIELDS)
            with self.at(row, "option"):
                if spec := _OPTION_FIELDS.get(key):
                    tok = row.tok(n, "value") or ""
                    try:
                        value = spec[1](tok)
                    except ValueError:
                        raise _Bad(f"malformed value {shorten(tok)}") from None
                    if key == "SPECIFIC GRAVITY" and not float(tok) > 0:
                        raise _Bad(f"specific gravity must be > 0, got {tok}")
                    self.options = _set(self.options, spec[0], value)
                elif key == "UNITS":
                    units = row.word(1, "flow units", [*FLOW_UNITS_M3S, *_FLOW_UNIT_ALIASES])
                    units = _FLOW_UNIT_ALIASES.get(units, units)
                elif key == "PRESSURE" and word[1] in ("KPA", "METERS"):
                    pressure = word[1]
                elif key == "UNBALANCED":
                    extra = None if word[1] == "STOP" else int(row.num(2, "extra trials", default=0.0))
                    self.options = replace(self.options, unbalanced_continue=extra)
                elif key == "PATTERN":
                    self.options = replace(self.options, default_pattern=row.tok(1))
        pressure = "PSI" if units in US_FLOW_UNITS else pressure
        self.units = _units(units, pressure, self.options.specific_gravity, self.options.headloss)
        self.pda_pressures_in_si()
        if any(_key(row, _OPTION_FIELDS)[0] == "VISCOSITY" for row in self.rows["OPTIONS"]):
            given = self.options.viscosity_m2_s  # as written: relative to water, or absolute in file units
            absolute = given <= _ABSOLUTE_VISCOSITY_MAX
            si = given * self.units["length"] ** 2 if absolute else given * WATER_VISCOSITY_M2_S
            self.options = replace(self.options, viscosity_m2_s=si)
        for row in self.rows["TIMES"]:
            with self.at(row, "option"):
                key, n = _key(row, _TIME_FIELDS)
                if key in _TIME_FIELDS:
                    value = _seconds(row.tok(n, "time") or "", row.tok(n + 1) or "")
                    self.options = _set(self.options, _TIME_FIELDS[key], value)

    def pda_pressures_in_si(self) -> None:
        """Pressure-driven demand pressures are in the file's pressure unit (EPANET's defaults too, for PDA)."""
        written = {_key(row, _OPTION_FIELDS)[0] for row in self.rows["OPTIONS"]}
        pda = self.options.demand_model == "PDA"
        for key, name in (("MINIMUM PRESSURE", "minimum_pressure_m"), ("REQUIRED PRESSURE", "required_pressure_m")):
            if pda or key in written:
                self.options = _set(self.options, name, getattr(self.options, name) * self.units["pressure"])

    def read_nodes(self) -> None:
        """[JUNCTIONS] [RESERVOIRS] [TANKS]."""
        u = self.units
        for row in self.rows["JUNCTIONS"]:
            with self.at(row, "junction"):
                base, pattern = row.num(2, "demand", u["flow"], 0.0), self.ref(self.patterns, "pattern", row.tok(3))
                demands = (Demand(base, pattern),) if base != 0 or pattern is not None else ()
                self.add(Junction(row.tokens[0], row.num(1, "elevation", u["length"]), demands))
        for row in self.rows["RESERVOIRS"]:
            with self.at(row, "reservoir"):
                pattern = self.ref(self.patterns, "pattern", row.tok(2))
                self.add(Reservoir(row.tokens[0], row.num(1, "head", u["length"]), pattern))
        for row in self.rows["TANKS"]:
            with self.at(row, "tank"):
                if len(row.tokens) <= _RESERVOIR_TANK_TOKENS:  # EPANET: a tank given by its head alone is a reservoir
                    pattern = self.ref(self.patterns, "pattern", row.tok(2))
                    self.add(Reservoir(row.tokens[0], row.num(1, "head", u["length"]), pattern))
                    continue
                names = ("elevation", "initial level", "min level", "max level", "diameter")
                elev, init, low, high, diameter = (row.num(i, what, u["length"]) for i, what in enumerate(names, 1))
                overflow = row.word(8, "overflow", ("YES", "NO"), "NO")
                min_volume, curve = row.num(6, "min volume", u["volume"], 0.0), self.use_curve(row.tok(7), "VOLUME")
                self.add(Tank(row.tokens[0], elev, init, low, high, diameter, min_volume, curve, overflow == "YES"))

    def read_links(self) -> None:
        """[PIPES] [PUMPS] [VALVES]."""
        u = self.units
        for row in self.rows["PIPES"]:
            with self.at(row, "pipe"):
                start, end = self.ends(row)
                status = row.word(7, "status", ("OPEN", "CLOSED", "CV"), "OPEN")
                length, diameter = row.num(3, "length", u["length"]), row.num(4, "diameter", u["diameter"])
                roughness, minor = row.num(5, "roughness", u["roughness"]), row.num(6, "minor loss", default=0.0)
                fixed = LinkStatus.CLOSED if status == "CLOSED" else LinkStatus.OPEN
                self.add(Pipe(row.tokens[0], start, end, length, diameter, roughness, minor, fixed, status == "CV"))
        for row in self.rows["PUMPS"]:
            with self.at(row, "pump"):
                start, end = self.ends(row)
                at = {row.tokens[i].upper(): i + 1 for i in range(3, len(row.tokens), 2)}
                if unknown := sorted(set(at) - {"HEAD", "POWER", "SPEED", "PATTERN"}):
                    raise _Bad(f"unknown pump keyword {shorten(unknown[0])} (expected HEAD, POWER, SPEED or PATTERN)")
                head = self.use_curve(row.tok(at["HEAD"], "head curve id"), "HEAD") if "HEAD" in at else None
                power = row.num(at["POWER"], "power", u["power"]) if "POWER" in at else None
                speed = row.num(at["SPEED"], "speed") if "SPEED" in at else 1.0
                pattern = row.tok(at["PATTERN"], "pattern id") if "PATTERN" in at else None
                pattern = self.ref(self.patterns, "pattern", pattern)
                self.add(Pump(row.tokens[0], start, end, head, power, speed, pattern))
        for row in self.rows["VALVES"]:
            with self.at(row, "valve"):
                start, end = self.ends(row)
                kind = row.word(4, "valve type", _VALVE_SETTING)
                curve = self.use_curve(row.tok(5, "curve id"), "HEADLOSS") if kind == "GPV" else None
                setting = 0.0 if curve else row.num(5, "setting", u[_VALVE_SETTING[kind]])
                diameter, minor = row.num(3, "diameter", u["diameter"]), row.num(6, "minor loss", default=0.0)
                self.add(Valve(row.tokens[0], start, end, diameter, ValveType(kind), setting, minor, curve=curve))

    def setting_scale(self, link: Pipe | Pump | Valve) -> float:
        """SI value of one file unit of ``link``'s setting; an error for pipes and GPVs."""
        if isinstance(link, Pump):
            return 1.0
        if isinstance(link, Pipe) or link.valve_type == ValveType.GPV:
            raise _Bad(f"link {link.id!r} takes OPEN or CLOSED, not a numeric setting")
        return self.units[_VALVE_SETTING[link.valve_type.value]]

    def junction(self, junction_id: str) -> Junction:
        junction = self.nodes.get(junction_id)
        if not isinstance(junction, Junction):
            raise _Bad("junction does not exist")
        return junction

    def read_changes(self) -> None:
        """[DEMANDS] [EMITTERS] [STATUS] and pump efficiency curves from [ENERGY]."""
        u = self.units
        for row in self.rows["DEMANDS"]:
            with self.at(row, "junction"):
                jid = row.tokens[0]
                demand = Demand(row.num(1, "demand", u["flow"]), self.ref(self.patterns, "pattern", row.tok(2)))
                kept = self.junction(jid).demands if jid in self.replaced_demand else ()
                self.nodes[jid] = replace(self.junction(jid), demands=(*kept, demand))
                self.replaced_demand.add(jid)
        for row in self.rows["EMITTERS"]:
            with self.at(row, "junction"):
                scale = u["flow"] / u["pressure"] ** self.options.emitter_exponent
                coeff = row.num(1, "emitter coefficient", scale)
                self.nodes[row.tokens[0]] = replace(self.junction(row.tokens[0]), emitter_coeff=coeff)
        for row in self.rows["STATUS"]:
            with self.at(row, "link"):
                link = self.links[self.ref(self.links, "link", row.tokens[0]) or ""]
                word = (row.tok(1, "status or setting") or "").upper()
                if word in ("OPEN", "CLOSED") or (word == "ACTIVE" and isinstance(link, Valve)):
                    link = replace(link, status=LinkStatus(word))
                elif isinstance(link, Pump):
                    speed = row.num(1, "speed")
                    link = replace(link, speed=speed, status=LinkStatus.CLOSED if speed == 0 else LinkStatus.OPEN)
                elif isinstance(link, Valve):
                    setting = row.num(1, "setting", self.setting_scale(link))
                    link = replace(link, setting=setting, status=LinkStatus.ACTIVE)
                else:
                    raise _Bad("a pipe takes OPEN or CLOSED, not a setting")
                self.links[link.id] = link
        for row in self.rows["ENERGY"]:
            if [t.upper()[:5] for t in row.tokens[:4:2]] == ["PUMP", "EFFIC"] and row.tokens[3:]:
                with self.at(row, "pump", 1):
                    pump = self.links.get(row.tokens[1])
                    if not isinstance(pump, Pump):
                        raise _Bad("pump does not exist")
                    self.links[pump.id] = replace(pump, efficiency_curve=self.use_curve(row.tokens[3], "EFFICIENCY"))

    def read_rules(self) -> None:  # noqa: PLR0912 - one branch per clause keyword
        """[RULES]: ``RULE id``, ``IF``/``AND``/``OR`` premises, ``THEN``/``ELSE``/``AND`` actions, ``PRIORITY``."""
        rule: dict[str, Any] | None = None
        for row in self.rows["RULES"]:
            word = row.tokens[0].upper()
            if word == "RULE":
                self.finish_rule(rule)
            with self.at(row):
                if word == "RULE":
                    if len(row.tokens) != 2:  # noqa: PLR2004 - RULE and its id
                        raise _Bad(f"RULE takes one id, got {shorten(row.text)}")
                    rule = {
                        "id": row.tokens[1],
                        "premises": [],
                        "then": [],
                        "otherwise": [],
                        "state": "RULE",
                        "row": row,
                    }
                    continue
                if rule is None:
                    raise _Bad(f"{row.tokens[0]} before the first RULE")
                state = rule["state"]
                if word in ("IF", "OR") or (word == "AND" and state == "IF"):
                    if (word == "IF") != (state == "RULE") or state not in ("RULE", "IF"):
                        raise _Bad(f"misplaced {word} clause in rule {rule['id']!r}")
                    rule["premises"].append(self.rule_premise(row, "OR" if word == "OR" else "AND"))
                    rule["state"] = "IF"
                elif word in ("THEN", "ELSE", "AND"):
                    expected = {"THEN": ("IF",), "ELSE": ("THEN",), "AND": ("THEN", "ELSE")}[word]
                    if state not in expected:
                        raise _Bad(f"misplaced {word} clause in rule {rule['id']!r}")
                    rule["state"] = state if word == "AND" else word
                    rule["then" if rule["state"] == "THEN" else "otherwise"].append(self.rule_action(row))
                elif word == "PRIORITY":
                    if state not in ("THEN", "ELSE"):
                        raise _Bad(f"misplaced PRIORITY in rule {rule['id']!r}")
                    rule["priority"] = row.num(1, "priority")
                    rule["state"] = "PRIORITY"
                elif word == "DISABLED":
                    rule["enabled"] = False
                else:
                    raise _Bad(f"unknown rule clause {shorten(row.tokens[0])}")
        self.finish_rule(rule)

    def finish_rule(self, rule: dict[str, Any] | None) -> None:
        """Add a parsed rule; one without THEN actions is an error."""
        if rule is None:
            return
        with self.at(rule["row"]):
            if not rule["then"]:
                raise _Bad(f"rule {rule['id']!r} has no IF and THEN clauses")
            self.rules.append(
                Rule(
                    rule["id"], tuple(rule["premises"]), tuple(rule["then"]), tuple(rule["otherwise"]),
                    rule.get("priority", 0.0), rule.get("enabled", True),
                )
            )  # fmt: skip

    def rule_premise(self, row: _Row, join: str) -> RulePremise:
        """``<object> <id> <variable> <relation> <value>`` or ``SYSTEM <variable> <relation> <value> [AM|PM]``."""
        toks = row.tokens
        obj = _rule_word(toks[1] if len(toks) > 1 else "", _RULE_OBJECTS, "object")
        system = obj == "SYSTEM"
        if len(toks) not in ((5, 6) if system else (6,)):
            raise _Bad(f"a premise has {'5 or 6' if system else '6'} words, got {shorten(row.text)}")
        element = None if system else toks[2]
        variable = _rule_word(toks[2 if system else 3], _RULE_VARIABLES, "variable")
        relation = _rule_word(toks[3 if system else 4], _RULE_RELATIONS, "relation")
        value_tok = toks[4 if system else 5]
        if element is not None:
            table = self.nodes if obj == "NODE" else self.links
            if element not in table:
                raise _Bad(f"{obj.lower()} {shorten(element)} does not exist")
        if variable in ("TIME", "CLOCKTIME"):
            unit = toks[5] if system and len(toks) == 6 else ""  # noqa: PLR2004 - the optional AM/PM
            return RulePremise(obj, element, variable, relation, float(round(_seconds(value_tok, unit))), join=join)  # type: ignore[arg-type]
        if variable in ("FILLTIME", "DRAINTIME") and not isinstance(self.nodes.get(element or ""), Tank):
            raise _Bad(f"{variable} of {shorten(element)}, which is not a tank")
        if value_tok.upper() in ("OPEN", "CLOSED", "ACTIVE"):
            return RulePremise(obj, element, variable, relation, status=LinkStatus(value_tok.upper()), join=join)  # type: ignore[arg-type]
        if variable == "STATUS":
            raise _Bad(f"a STATUS premise takes OPEN, CLOSED or ACTIVE, got {shorten(value_tok)}")
        scale = self.premise_scale(variable, element)
        value = row.num(len(toks) - 1, "value", scale)
        return RulePremise(obj, element, variable, relation, value, None, _RULE_TOLERANCE * scale, join)  # type: ignore[arg-type]

    def premise_scale(self, variable: str, element: str | None) -> float:
        """SI value of one file unit of a premise's variable."""
        link = self.links.get(element or "") if variable == "SETTING" else None
        return _premise_scale(variable, link, self.units)

    def rule_action(self, row: _Row) -> RuleAction:
        """``THEN|ELSE|AND <object> <id> STATUS|SETTING IS <value>``."""
        toks = row.tokens
        if len(toks) != 6:  # noqa: PLR2004 - EPANET's one action form
            raise _Bad(f"an action has 6 words, got {shorten(row.text)}")
        link = self.links.get(toks[2])
        if link is None:
            raise _Bad(f"link {shorten(toks[2])} does not exist")
        if isinstance(link, Pipe) and link.check_valve:
            raise _Bad(f"pipe {link.id!r} has a check valve, which rules cannot control")
        value = toks[5].upper()
        if value in ("OPEN", "CLOSED", "ACTIVE"):
            return RuleAction(link.id, status=LinkStatus(value))
        if isinstance(link, Pipe):
            return RuleAction(link.id, status=LinkStatus.CLOSED if row.num(5, "setting") == 0 else LinkStatus.OPEN)
        setting = row.num(5, "setting", self.setting_scale(link))
        if setting < 0:
            raise _Bad(f"a setting must be >= 0, got {shorten(toks[5])}")
        return RuleAction(link.id, setting=setting)

    def read_control(self, row: _Row) -> None:
        """``LINK id status|setting IF NODE id ABOVE|BELOW v`` or ``LINK id status|setting AT TIME|CLOCKTIME t``."""
        word = [t.upper() for t in row.tokens] + [""] * 8
        link = self.links.get(row.tokens[1]) if word[0] == "LINK" and len(row.tokens) > 1 else None
        if link is None:
            raise _Bad(f"needs LINK <existing link id>, got {shorten(row.text)}")
        status = LinkStatus(word[2]) if word[2] in ("OPEN", "CLOSED", "ACTIVE") else None
        setting = None if status else row.num(2, "setting", self.setting_scale(link))
        node, above, below, time_s, clock_s = None, None, None, None, None
        if word[3:5] == ["IF", "NODE"] and word[6] in ("ABOVE", "BELOW"):
            node = self.ref(self.nodes, "node", row.tok(5, "node id"))
            scale = self.units["pressure"] if isinstance(self.nodes[node or ""], Junction) else self.units["length"]
            value = row.num(7, "threshold", scale)
            above, below = (value, None) if word[6] == "ABOVE" else (None, value)
        elif word[3:5] in (["AT", "TIME"], ["AT", "CLOCKTIME"]):
            seconds = _seconds(row.tok(5, "time") or "", row.tok(6) or "")
            time_s, clock_s = (seconds, None) if word[4] == "TIME" else (None, seconds)
        else:
            raise _Bad(f"expected IF NODE id ABOVE|BELOW value or AT TIME|CLOCKTIME t in {shorten(row.text)}")
        self.controls.append(Control(link.id, status, setting, node, above, below, time_s, clock_s))

    def build(self) -> Network:
        """Convert curves by kind (use, else comment hint, else GENERIC) and assemble the network."""
        curves, patterns = [], []
        for cid, points in self.curves.items():
            with self.at(self.first_row["CURVES", cid], "curve"):
                kind = self.curve_kind.get(cid, ("GENERIC", False))[0]
                sx, sy = (self.units[q] for q in _CURVE_AXES[kind][1:])
                curves.append(Curve(cid, tuple((x * sx, y * sy) for x, y in points), kind))
        for pid, multipliers in self.patterns.items():
            with self.at(self.first_row["PATTERNS", pid], "pattern"):
                patterns.append(Pattern(pid, tuple(multipliers)))
        title = next((r.text for r in self.rows["TITLE"]), "") or Path(self.source).stem
        nodes, links = self.nodes.values(), self.links.values()
        try:
            return Network(
                title, _only(nodes, Junction), _only(nodes, Reservoir), _only(nodes, Tank), _only(links, Pipe),
                _only(links, Pump), _only(links, Valve), tuple(curves), tuple(patterns), tuple(self.controls),
                self.options, rules=tuple(self.rules),
            )  # fmt: skip
        except NetworkError as e:
            raise _Located(f"{self.source}: {e}") from e


def parse_inp(text: str, name: str = "network.inp") -> Network:
    """Parse the text of an EPANET .inp file into a `Network` in SI units.

    Args:
        text: The file contents.
        name: Source name used in error messages; its stem names the network
            when the file has no [TITLE] text (else the first title line does).

    Returns:
        The network, all values in SI (m, m3/s, s, W, m3).

    Raises:
        NetworkError: On malformed or inconsistent input, naming file, line, section and element.
    """
    return _Reader(text, name).read()


def decode_inp(data: bytes, source: str = "network.inp") -> tuple[str, str]:
    """The text of an .inp file's bytes and the encoding it was read in, every byte kept.

    A UTF-16 or UTF-32 byte-order mark selects that encoding. Otherwise the bytes are read as
    UTF-8 (with or without a byte-order mark) when they are valid UTF-8, else as Windows-1252
    (what the EPANET GUI writes on Windows), else as Latin-1 (for the five bytes Windows-1252
    leaves undefined). No byte is replaced, so two ids that differ in one accented letter stay
    two ids.

    Args:
        data: The file's bytes.
        source: The file's name, for messages.

    Returns:
        The text and the encoding used (``utf-8``, ``utf-16``, ``utf-32``, ``cp1252`` or ``latin-1``).

    Raises:
        NetworkError: When the bytes are not text (NUL or other control bytes, or invalid UTF-16/32
            after its byte-order mark).
    """
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return _check_text(data[len(bom) :].decode(codec), source, codec), codec[:6]
            except UnicodeDecodeError as exc:
                raise NetworkError(
                    f"{source}: not a text file: invalid {codec.upper()} at byte {exc.start} after its byte-order mark"
                ) from None
    for codec in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        return _check_text(text, source, codec), codec.removesuffix("-sig")
    raise NetworkError(f"{source}: cannot be read as text")  # pragma: no cover - latin-1 decodes every byte


def _check_text(text: str, source: str, codec: str) -> str:
    """``text`` without a trailing DOS end-of-file mark; an error when it holds control characters."""
    text = text.rstrip("\x1a")
    bad = _BINARY.search(text)
    if bad is not None:
        line = text.count("\n", 0, bad.start()) + 1
        raise NetworkError(
            f"{source}: not a text file: control character {bad.group()!r} on line {line} (read as {codec}); "
            "an EPANET .inp file is text in UTF-8, UTF-16 or Windows-1252"
        )
    return text


def read_inp(path: str | Path) -> Network:
    """Read an EPANET .inp file (see `parse_inp` and, for the encoding, `decode_inp`).

    The network's ``source_encoding`` says which encoding was used; one other than UTF-8 is also
    logged.

    Raises:
        NetworkError: On a file that is not text or malformed input, naming file, line, section and element.
    """
    path = Path(path)
    text, encoding = decode_inp(path.read_bytes(), path.name)
    if encoding != "utf-8":
        _log.info("%s: read as %s (not valid UTF-8)", path.name, encoding)
    return replace(parse_inp(text, path.name), source_encoding=encoding)


def _f(value: float) -> str:
    return f"{value:.12g}"


def _viscosity(viscosity_m2_s: float) -> str:
    """VISCOSITY as written in an SI file: relative to water, or absolute (m2/s) where EPANET would read it so."""
    relative = viscosity_m2_s / WATER_VISCOSITY_M2_S
    return _f(relative) if relative > _ABSOLUTE_VISCOSITY_MAX else _f(viscosity_m2_s)


def _id(element_id: str | None) -> str:
    element_id = element_id or ""
    return f'"{element_id}"' if re.search(r"\s", element_id) else element_id


def _time(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s == seconds else f"{_f(seconds)} SEC"


def _row(*items: object) -> str:
    text = " ".join(_f(x) if isinstance(x, float) else _id(x) if isinstance(x, str | None) else str(x) for x in items)
    return text.rstrip()


def _write_elements(network: Network, u: dict[str, float], out: dict[str, list[str]]) -> None:
    """Append the node, link, demand, emitter, status and energy lines of ``network`` to ``out``."""
    for j in network.junctions:
        inline = len(j.demands) == 1 and (j.demands[0].base_m3s != 0 or j.demands[0].pattern is not None)
        first = j.demands[0] if inline else Demand(0.0)
        out["JUNCTIONS"].append(_row(j.id, j.elevation_m, first.base_m3s / u["flow"], first.pattern))
        if not inline:
            out["DEMANDS"] += [_row(j.id, d.base_m3s / u["flow"], d.pattern) for d in j.demands]
        if j.emitter_coeff > 0:
            coeff = j.emitter_coeff * u["pressure"] ** network.options.emitter_exponent / u["flow"]
            out["EMITTERS"].append(_row(j.id, coeff))
    out["RESERVOIRS"] += [_row(r.id, r.head_m, r.pattern) for r in network.reservoirs]
    for t in network.tanks:
        levels = (t.elevation_m, t.init_level_m, t.min_level_m, t.max_level_m, t.diameter_m, t.min_volume_m3)
        out["TANKS"].append(_row(t.id, *levels, t.volume_curve or "*", "YES" if t.overflow else "NO"))
    for p in network.pipes:
        status = "CV" if p.check_valve else ("CLOSED" if p.status == LinkStatus.CLOSED else "OPEN")
        size = (p.length_m, p.diameter_m / u["diameter"], p.roughness / u["roughness"], p.minor_loss)
        out["PIPES"].append(_row(p.id, p.start, p.end, *size, status))
        if p.check_valve and p.status == LinkStatus.CLOSED:
            out["STATUS"].append(_row(p.id, "CLOSED"))
    for m in network.pumps:
        spec: list[object] = ["HEAD", m.head_curve] if m.head_curve else ["POWER", (m.power_w or 0.0) / u["power"]]
        spec += ["SPEED", m.speed] if m.speed != 1.0 else []
        spec += ["PATTERN", m.speed_pattern] if m.speed_pattern else []
        out["PUMPS"].append(_row(m.id, m.start, m.end, *spec))
        if m.status == LinkStatus.CLOSED:
            out["STATUS"].append(_row(m.id, "CLOSED"))
        if m.efficiency_curve:
            out["ENERGY"].append(_row("PUMP", m.id, "EFFIC", m.efficiency_curve))
    for v in network.valves:
        kind = v.valve_type.value
        setting = v.curve if v.valve_type == ValveType.GPV else v.setting / u[_VALVE_SETTING[kind]]
        out["VALVES"].append(_row(v.id, v.start, v.end, v.diameter_m / u["diameter"], kind, setting, v.minor_loss))
        if v.status != LinkStatus.ACTIVE:
            out["STATUS"].append(_row(v.id, v.status.value))


def format_inp(network: Network) -> str:
    """The EPANET .inp text of ``network`` in SI file units (LPS, m, mm, METERS).

    Args:
        network: The network to write.

    Returns:
        The file contents; `parse_inp` reads them back to an equal network (to ~1e-12 relative).
    """
    o = network.options
    u = _units("LPS", "METERS", o.specific_gravity, o.headloss)
    out: dict[str, list[str]] = {s: [] for s in _DATA.split()}
    out["TITLE"].append(network.name)
    _write_elements(network, u, out)
    for pat in network.patterns:
        out["PATTERNS"] += [_row(pat.id, *pat.multipliers[i : i + 8]) for i in range(0, len(pat.multipliers), 8)]
    for c in network.curves:
        hint, xq, yq = _CURVE_AXES.get(c.kind, _CURVE_AXES["GENERIC"])
        out["CURVES"] += [f";{hint}:"] + [_row(c.id, x / u[xq], y / u[yq]) for x, y in c.points]
    for k in network.controls:
        link = network.link(k.link)
        scale = 1.0 if isinstance(link, Pump | Pipe) else u[_VALVE_SETTING[link.valve_type.value]]
        action = k.status.value if k.status is not None else _f((k.setting or 0.0) / scale)
        if k.node is not None:
            scale = u["pressure"] if isinstance(network.node(k.node), Junction) else u["length"]
            word, value = ("ABOVE", k.above) if k.above is not None else ("BELOW", k.below)
            condition = f"IF NODE {_row(k.node, word, (value or 0.0) / scale)}"
        elif k.time_s is not None:
            condition = f"AT TIME {_time(k.time_s)}"
        else:
            condition = f"AT CLOCKTIME {_time(k.clocktime_s or 0.0)}"
        out["CONTROLS"].append(f"LINK {_id(k.link)} {action} {condition}")
    for rule in network.rules:
        out["RULES"] += [*_rule_lines(rule, network, u), ""]
    unbalanced = "STOP" if o.unbalanced_continue is None else f"CONTINUE {o.unbalanced_continue}"
    out["OPTIONS"] = [
        "UNITS LPS", "PRESSURE METERS", f"HEADLOSS {o.headloss}",
        f"VISCOSITY {_viscosity(o.viscosity_m2_s)}", f"SPECIFIC GRAVITY {_f(o.specific_gravity)}",
        f"TRIALS {o.trials}", f"ACCURACY {_f(o.accuracy)}",
        f"UNBALANCED {unbalanced}", f"PATTERN {_id(o.default_pattern)}", f"DEMAND MULTIPLIER {_f(o.demand_multiplier)}",
        f"EMITTER EXPONENT {_f(o.emitter_exponent)}", f"CHECKFREQ {o.check_frequency}", f"MAXCHECK {o.max_check}",
        f"DAMPLIMIT {_f(o.damp_limit)}",
    ]  # fmt: skip
    if (o.demand_model, o.minimum_pressure_m, o.required_pressure_m, o.pressure_exponent) != ("DDA", 0.0, 0.1, 0.5):
        out["OPTIONS"] += [
            f"DEMAND MODEL {o.demand_model}", f"MINIMUM PRESSURE {_f(o.minimum_pressure_m / u['pressure'])}",
            f"REQUIRED PRESSURE {_f(o.required_pressure_m / u['pressure'])}",
            f"PRESSURE EXPONENT {_f(o.pressure_exponent)}",
        ]  # fmt: skip
    out["TIMES"] = [
        f"{key} {_time(getattr(o, name))}"
        for key, name in _TIME_FIELDS.items()
        if key != "RULE TIMESTEP" or o.rule_step_s
    ]
    return "".join(f"[{s}]\n" + "".join(f" {line}\n" for line in lines) + "\n" for s, lines in out.items()) + "[END]\n"


def write_inp(network: Network, path: str | Path) -> None:
    """Write ``network`` to ``path`` as an EPANET .inp file in SI file units (see `format_inp`)."""
    Path(path).write_text(format_inp(network), encoding="utf-8")
