"""The asset and tag registry of a fleet of pump stations, built from a network.

A fleet is ``n_lines`` independent copies of a network. Its stations are renamed ``PS01``,
``PS02``... line by line (the reference pipeline's PS1 and PS2 on line 2 become PS03 and PS04),
its pumps keep their own short names (``PS1-P2`` becomes asset ``P2`` of its station), and every
measurement is a tag ``STATION.ASSET.MEASURE`` in engineering units, as a PI archive holds it:

======================  =======  =============================================
measure                 unit     what
======================  =======  =============================================
SUCT_PRESS              bar g    pump suction flange pressure (after strainer)
DISCH_PRESS             bar g    pump discharge pressure (before check valve)
FLOW                    m3/h     pump flow
SPEED, SPEED_SP         rpm      shaft speed and its setpoint
MOTOR_CURRENT           A        motor line current
MOTOR_POWER             kW       motor electrical input power
VIB_DE_RMS, VIB_NDE_RMS mm/s     bearing housing vibration velocity RMS
BRG_DE_TEMP,            degC     bearing temperatures
BRG_NDE_TEMP
MOTOR_WINDING_TEMP      degC     stator winding temperature
SEAL_LEAK               L/h      mechanical seal leakage
STRAINER_DP             bar      suction strainer differential pressure
STATUS                  -        1 running, 0 stopped
======================  =======  =============================================

Each station also has ``PSnn.SITE.AMBIENT_TEMP`` (degC), and each line has meters
``LINEnn.<ELEMENT>.FLOW`` (m3/h, pipes) and ``LINEnn.<ELEMENT>.PRESS`` (bar g, nodes) at the
stations' suction and discharge and at the delivery points. Every tag carries a physical range
(``low``, ``high``) that validation uses, and a sampling period. The registry is stored as a
versioned YAML file (`write_registry`, `read_registry`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.hydraulic.io import read_yaml_mapping
from pumptwin.twin.hydraulic.metrics import DEFAULT_EFFICIENCY, pump_assets
from pumptwin.twin.hydraulic.network import Network, NetworkError, Pipe, Pump, Reservoir
from pumptwin.twin.hydraulic.pumps import fit_head_curve
from pumptwin.twin.hydraulic.solver import compile_network
from pumptwin.twin.safety import clip, printable, shorten
from pumptwin.twin.tags import is_tag
from pumptwin.twin.units import G_M_S2, M3H_PER_M3S
from pumptwin.twin.units import PA_PER_BAR as BAR_PA

REGISTRY_VERSION = 1
"""Version of the registry file layout written by `write_registry`."""

PUMP_MEASURES: dict[str, str] = {
    "SUCT_PRESS": "bar g",
    "DISCH_PRESS": "bar g",
    "FLOW": "m3/h",
    "SPEED": "rpm",
    "SPEED_SP": "rpm",
    "MOTOR_CURRENT": "A",
    "MOTOR_POWER": "kW",
    "VIB_DE_RMS": "mm/s",
    "VIB_NDE_RMS": "mm/s",
    "BRG_DE_TEMP": "degC",
    "BRG_NDE_TEMP": "degC",
    "MOTOR_WINDING_TEMP": "degC",
    "SEAL_LEAK": "L/h",
    "STRAINER_DP": "bar",
    "STATUS": "-",
}
"""Measures of every pump and their engineering units."""

STATION_MEASURES: dict[str, str] = {"AMBIENT_TEMP": "degC"}
"""Measures of every station (asset ``SITE``)."""

LINE_MEASURES: dict[str, str] = {"FLOW": "m3/h", "PRESS": "bar g"}
"""Measures of line meters: flow in pipes, pressure at nodes."""

DEFAULT_SAMPLE_PERIOD_S: dict[str, float] = {
    "SUCT_PRESS": 5.0,
    "DISCH_PRESS": 5.0,
    "FLOW": 5.0,
    "SPEED": 5.0,
    "SPEED_SP": 60.0,
    "MOTOR_CURRENT": 5.0,
    "MOTOR_POWER": 10.0,
    "VIB_DE_RMS": 10.0,
    "VIB_NDE_RMS": 10.0,
    "BRG_DE_TEMP": 60.0,
    "BRG_NDE_TEMP": 60.0,
    "MOTOR_WINDING_TEMP": 60.0,
    "SEAL_LEAK": 300.0,
    "STRAINER_DP": 60.0,
    "STATUS": 1.0,
    "AMBIENT_TEMP": 600.0,
    "PRESS": 5.0,
}
"""Sampling period in s per measure (line ``FLOW`` uses the pump ``FLOW`` period)."""

SITE_ASSET = "SITE"
LINE_PREFIX = "LINE"
STATION_PREFIX = "PS"
DEFAULT_RATED_SPEED_RPM = 1480.0
MOTOR_SERVICE_FACTOR = 1.1
MOTOR_STEP_W = 50e3
HV_MOTOR_W = 200e3
HV_VOLTAGE_V = 6600.0
LV_VOLTAGE_V = 400.0
FALLBACK_PRESSURE_BAR = 100.0
_NAME = re.compile(r"[^A-Z0-9_]")
_STATION_NUMBER = re.compile(rf"^{STATION_PREFIX}(\d+)$")


class RegistryError(PumptwinError, ValueError):
    """A registry entry or file is invalid; the message names the entry or file."""


def sanitize(name: str) -> str:
    """Upper-case ``name`` with every character outside ``A-Z0-9_`` replaced by ``_``.

    Example: ``sanitize("DEL-IN") == "DEL_IN"``.
    """
    out = _NAME.sub("_", name.strip().upper())
    if not out:
        raise RegistryError(f"name {shorten(name)} leaves nothing after sanitising")
    return out


@dataclass(frozen=True, slots=True)
class TagSpec:
    """One measurement as the historian names and bounds it.

    Attributes:
        tag: ``STATION.ASSET.MEASURE``.
        station: Station (``PS01``) or line (``LINE01``).
        asset: Pump (``P2``), ``SITE`` or a line element (``DEL_IN``).
        measure: What is measured (``VIB_DE_RMS``).
        unit: Engineering unit of the values (``mm/s``).
        low: Lowest physically possible value, in ``unit``.
        high: Highest physically possible value, in ``unit``.
        sample_period_s: Sampling period in s.
    """

    tag: str
    station: str
    asset: str
    measure: str
    unit: str
    low: float
    high: float
    sample_period_s: float

    def __post_init__(self) -> None:
        """Check the name and the ranges."""
        if not is_tag(self.tag) or self.tag != f"{self.station}.{self.asset}.{self.measure}":
            raise RegistryError(f"tag {shorten(self.tag)}: must be STATION.ASSET.MEASURE in A-Z, 0-9 and _")
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise RegistryError(
                f"tag {shorten(self.tag)}: needs finite low < high, got {shorten(self.low)}, {shorten(self.high)}"
            )
        if not (math.isfinite(self.sample_period_s) and self.sample_period_s > 0):
            raise RegistryError(f"tag {shorten(self.tag)}: sample period must be > 0 s")


@dataclass(frozen=True, slots=True)
class StationSpec:
    """A pump station of the fleet.

    Attributes:
        name: Fleet name, ``PS01``...
        line: Line number, 1-based.
        network_station: The station's name in the network (``PS1``).
        suction_node: Suction header node id in the network.
        discharge_node: Discharge header node id in the network.
        assets: Pump asset names at the station (``P1``, ``P2``...).
    """

    name: str
    line: int
    network_station: str
    suction_node: str
    discharge_node: str
    assets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PumpSpec:
    """A pump and its motor.

    Attributes:
        station: Fleet station name (``PS01``).
        asset: Asset name at the station (``P2``).
        line: Line number, 1-based.
        pump_id: Pump link id in the network (``PS1-P2``).
        rated_speed_rpm: Speed at relative speed 1, in rpm.
        min_speed: Lowest allowed relative speed.
        max_speed: Highest allowed relative speed.
        bep_flow_m3s: Best-efficiency flow at rated speed, in m3/s.
        bep_head_m: Head at the BEP flow at rated speed, in m.
        bep_shaft_power_w: Shaft power at the BEP at rated speed, in W.
        motor_rated_w: Motor rated output, in W.
        motor_voltage_v: Motor line voltage, in V.
        motor_efficiency: Motor efficiency at rated load (fraction).
        motor_power_factor: Power factor at rated load.
    """

    station: str
    asset: str
    line: int
    pump_id: str
    rated_speed_rpm: float
    min_speed: float
    max_speed: float
    bep_flow_m3s: float
    bep_head_m: float
    bep_shaft_power_w: float
    motor_rated_w: float
    motor_voltage_v: float
    motor_efficiency: float = 0.96
    motor_power_factor: float = 0.88

    @property
    def name(self) -> str:
        """``STATION.ASSET``."""
        return f"{self.station}.{self.asset}"

    @property
    def motor_rated_current_a(self) -> float:
        """Rated line current in A: P / (sqrt(3) V eta pf)."""
        return self.motor_rated_w / (
            math.sqrt(3.0) * self.motor_voltage_v * self.motor_efficiency * self.motor_power_factor
        )


@dataclass(frozen=True, slots=True)
class MeterSpec:
    """A line meter: flow in a pipe or pressure at a node.

    Attributes:
        line: Line number, 1-based.
        element: Pipe or node id in the network.
        measure: ``FLOW`` (pipe) or ``PRESS`` (node).
        tag: Its tag name.
    """

    line: int
    element: str
    measure: str
    tag: str


@dataclass(frozen=True, slots=True)
class Registry:
    """Stations, pumps, meters and tags of a fleet (SI inside, tags in engineering units).

    Attributes:
        network: Name of the network the fleet copies.
        n_lines: Number of independent copies of the network.
        stations: Stations, line by line in network order.
        pumps: Pumps, line by line in network pump order.
        meters: Line meters.
        tags: Every tag: pumps, then station ambient, then line meters.
        version: File layout version.
    """

    network: str
    n_lines: int
    stations: tuple[StationSpec, ...]
    pumps: tuple[PumpSpec, ...]
    meters: tuple[MeterSpec, ...]
    tags: tuple[TagSpec, ...]
    version: int = REGISTRY_VERSION
    _by_tag: dict[str, TagSpec] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Check tag names are unique and index them."""
        for t in self.tags:
            if t.tag in self._by_tag:
                raise RegistryError(f"tag {shorten(t.tag)} is listed twice")
            self._by_tag[t.tag] = t
        if self.n_lines < 1:
            raise RegistryError("a fleet needs at least one line")

    @property
    def tag_names(self) -> tuple[str, ...]:
        """Tag names in registry order."""
        return tuple(t.tag for t in self.tags)

    def tag(self, name: str) -> TagSpec:
        """The tag called ``name``.

        Raises:
            RegistryError: No such tag.
        """
        try:
            return self._by_tag[name]
        except KeyError:
            raise RegistryError(f"tag {shorten(name)} is not in the registry") from None

    def pump_index(self, name: str) -> int:
        """Index in `pumps` of the pump ``STATION.ASSET``.

        Raises:
            RegistryError: No such pump.
        """
        for i, p in enumerate(self.pumps):
            if p.name == name:
                return i
        raise RegistryError(f"pump {shorten(name)} is not in the registry")


# --------------------------------------------------------------------------------------------
# Building a registry from a network
# --------------------------------------------------------------------------------------------


def network_stations(network: Network) -> list[tuple[str, tuple[Pump, ...]]]:
    """Stations of a network in order of first appearance, with their pumps.

    A pump without a station belongs to the station named by its id's prefix before ``-``
    (``A-P1`` to ``A``), or to ``ST`` when the id has none.
    """
    groups: dict[str, list[Pump]] = {}
    for p in network.pumps:
        groups.setdefault(_station_of(p), []).append(p)
    return [(name, tuple(pumps)) for name, pumps in groups.items()]


def _station_of(pump: Pump) -> str:
    if pump.station:
        return pump.station
    return pump.id.split("-", 1)[0] if "-" in pump.id else "ST"


def pump_asset_name(pump: Pump) -> str:
    """Asset name of a pump at its station: the id without the station prefix (``PS1-P2`` to ``P2``)."""
    station = _station_of(pump)
    rest = pump.id[len(station) :].lstrip("-_. ") if pump.id.startswith(station) else pump.id
    return sanitize(rest or pump.id)


def default_meters(network: Network) -> tuple[tuple[str, str], ...]:
    """Line meters ``(element id, measure)``: station suction and discharge, and delivery points.

    At each station: pressure at the suction and discharge headers and flow in the pipes that
    join them. At each delivery reservoir (one not feeding a pump suction): flow in its pipe and
    pressure at the node upstream. At each junction with a base demand: pressure.
    """
    pumps_at = network_stations(network)
    suction = {p.start for _, ps in pumps_at for p in ps}
    out: list[tuple[str, str]] = []

    def add(element: str, measure: str) -> None:
        if (element, measure) not in out:
            out.append((element, measure))

    for _, pumps in pumps_at:
        s_node, d_node = pumps[0].start, pumps[0].end
        for pipe in network.pipes:
            if s_node in (pipe.start, pipe.end):
                add(pipe.id, "FLOW")
        add(s_node, "PRESS")
        add(d_node, "PRESS")
        for pipe in network.pipes:
            if d_node in (pipe.start, pipe.end):
                add(pipe.id, "FLOW")
    for res in network.reservoirs:
        pipes = [p for p in network.pipes if res.id in (p.start, p.end)]
        if any((p.end if p.start == res.id else p.start) in suction for p in pipes):
            continue
        for p in pipes:
            add(p.id, "FLOW")
            other = p.start if p.end == res.id else p.end
            if not isinstance(network.node(other), Reservoir):
                add(other, "PRESS")
    for j in network.junctions:
        if j.base_demand_m3s > 0:
            add(j.id, "PRESS")
    return tuple(out)


def _motor_rating_w(shaft_w: float, max_speed: float) -> float:
    """Standard motor size in W: the BEP shaft power at max speed (cubic affinity) plus 10 %, rounded up."""
    need = shaft_w * max(max_speed, 1.0) ** 3 * MOTOR_SERVICE_FACTOR
    return max(MOTOR_STEP_W, math.ceil(need / MOTOR_STEP_W) * MOTOR_STEP_W)


def _pump_design(network: Network) -> dict[str, tuple[float, float, float]]:
    """Per pump id: (BEP flow m3/s, head at BEP m, shaft power at BEP W), at rated speed."""
    model = compile_network(network)
    assets = pump_assets(model)
    rho_g = network.fluid.density_kg_m3 * G_M_S2
    out: dict[str, tuple[float, float, float]] = {}
    for i, pump in enumerate(network.pumps):
        eff = assets.efficiency[i]
        eta = eff.peak_efficiency if eff is not None else DEFAULT_EFFICIENCY
        if pump.head_curve is None:
            power = float(pump.power_w or 0.0)
            q = float(assets.bep_flow_m3s[i]) if math.isfinite(assets.bep_flow_m3s[i]) else 0.1
            out[pump.id] = (q, power * eta / (rho_g * q), power)
            continue
        q = float(assets.bep_flow_m3s[i])
        head = float(fit_head_curve(network.curve(pump.head_curve).points, pump.head_curve).head_m(q))
        out[pump.id] = (q, head, rho_g * q * head / eta)
    return out


def _pressure_high_bar(network: Network, node: str) -> float:
    """Upper range of a pressure at ``node`` in bar g: 1.5 x the highest MAOP of its pipes (100 bar without MAOP)."""
    maops = [p.maop_pa for p in network.pipes if node in (p.start, p.end) and p.maop_pa is not None]
    return 1.5 * max(maops) / BAR_PA if maops else FALLBACK_PRESSURE_BAR


def build_registry(
    network: Network,
    n_lines: int = 1,
    *,
    rated_speed_rpm: float = DEFAULT_RATED_SPEED_RPM,
    sample_periods_s: Mapping[str, float] | None = None,
    meters: Sequence[tuple[str, str]] | None = None,
) -> Registry:
    """The registry of ``n_lines`` copies of ``network``.

    Args:
        network: The network (pumps grouped by ``Pump.station``).
        n_lines: Number of independent copies (lines) in the fleet.
        rated_speed_rpm: Shaft speed at relative speed 1, in rpm.
        sample_periods_s: Sampling periods in s by measure, overriding `DEFAULT_SAMPLE_PERIOD_S`.
        meters: Line meters as ``(element id, "FLOW" | "PRESS")``; default `default_meters`.

    Returns:
        Stations ``PS01``.., pumps, meters and every tag with its range and period.

    Raises:
        RegistryError: No pumps, an unknown meter element, or a bad period.
    """
    if n_lines < 1:
        raise RegistryError("a fleet needs at least one line")
    if not network.pumps:
        raise RegistryError(f"network {shorten(network.name)} has no pumps to build stations from")
    periods = {**DEFAULT_SAMPLE_PERIOD_S, **(sample_periods_s or {})}
    design = _pump_design(network)
    groups = network_stations(network)
    meter_list = tuple(meters) if meters is not None else default_meters(network)
    stations: list[StationSpec] = []
    pumps: list[PumpSpec] = []
    tags: list[TagSpec] = []
    meter_specs: list[MeterSpec] = []
    for line in range(1, n_lines + 1):
        for s, (net_station, net_pumps) in enumerate(groups):
            name = f"{STATION_PREFIX}{(line - 1) * len(groups) + s + 1:02d}"
            assets = tuple(pump_asset_name(p) for p in net_pumps)
            if len(set(assets)) != len(assets):
                raise RegistryError(f"station {shorten(net_station)}: pump asset names repeat: {assets}")
            stations.append(StationSpec(name, line, net_station, net_pumps[0].start, net_pumps[0].end, assets))
            for pump, asset in zip(net_pumps, assets, strict=True):
                q, head, shaft = design[pump.id]
                spec = PumpSpec(
                    station=name,
                    asset=asset,
                    line=line,
                    pump_id=pump.id,
                    rated_speed_rpm=rated_speed_rpm,
                    min_speed=pump.min_speed,
                    max_speed=pump.max_speed,
                    bep_flow_m3s=q,
                    bep_head_m=head,
                    bep_shaft_power_w=shaft,
                    motor_rated_w=_motor_rating_w(shaft, pump.max_speed),
                    motor_voltage_v=HV_VOLTAGE_V if shaft >= HV_MOTOR_W else LV_VOLTAGE_V,
                )
                pumps.append(spec)
                tags.extend(_pump_tags(network, spec, periods))
            tags.append(
                TagSpec(f"{name}.{SITE_ASSET}.AMBIENT_TEMP", name, SITE_ASSET, "AMBIENT_TEMP", "degC", -50.0, 60.0,
                        periods["AMBIENT_TEMP"])
            )  # fmt: skip
        design_flow_m3h = max(sum(design[p.id][0] * p.max_speed for p in ps) for _, ps in groups) * M3H_PER_M3S
        for element, measure in meter_list:
            spec_m = _meter_tag(network, line, element, measure, design_flow_m3h, periods)
            meter_specs.append(MeterSpec(line, element, measure, spec_m.tag))
            tags.append(spec_m)
    return Registry(network.name, n_lines, tuple(stations), tuple(pumps), tuple(meter_specs), tuple(tags))


def lines_for_stations(network: Network, stations: Iterable[str]) -> int:
    """How many lines a fleet of ``network`` copies needs to hold stations named ``stations``.

    Stations are numbered line by line (`build_registry`), so ``PS05`` on a two-station network
    lies on line 3. Names that are not ``PSnn`` (``LINE01`` meters, ``SITE``) are ignored.

    Args:
        network: The network every line copies.
        stations: Station names seen in the data, e.g. the raw store's partitions.

    Returns:
        The number of lines, at least 1.
    """
    per_line = max(len(network_stations(network)), 1)
    numbers = [int(m.group(1)) for s in stations if (m := _STATION_NUMBER.match(s))]
    return max(1, math.ceil(max(numbers, default=1) / per_line))


def _pump_tags(network: Network, pump: PumpSpec, periods: Mapping[str, float]) -> list[TagSpec]:
    net_pump = network.link(pump.pump_id)
    s_high = _pressure_high_bar(network, net_pump.start)
    d_high = _pressure_high_bar(network, net_pump.end)
    q_high = 2.0 * pump.bep_flow_m3s * max(pump.max_speed, 1.0) * M3H_PER_M3S
    rpm_high = 1.1 * pump.max_speed * pump.rated_speed_rpm
    ranges: dict[str, tuple[float, float]] = {
        "SUCT_PRESS": (-1.0, s_high),
        "DISCH_PRESS": (-1.0, d_high),
        "FLOW": (-0.05 * q_high, q_high),
        "SPEED": (0.0, rpm_high),
        "SPEED_SP": (0.0, rpm_high),
        "MOTOR_CURRENT": (0.0, 2.0 * pump.motor_rated_current_a),
        "MOTOR_POWER": (0.0, 1.5 * pump.motor_rated_w / pump.motor_efficiency / 1e3),
        "VIB_DE_RMS": (0.0, 50.0),
        "VIB_NDE_RMS": (0.0, 50.0),
        "BRG_DE_TEMP": (-40.0, 150.0),
        "BRG_NDE_TEMP": (-40.0, 150.0),
        "MOTOR_WINDING_TEMP": (-40.0, 220.0),
        "SEAL_LEAK": (0.0, 500.0),
        "STRAINER_DP": (-0.5, 5.0),
        "STATUS": (0.0, 1.0),
    }
    return [
        TagSpec(f"{pump.name}.{m}", pump.station, pump.asset, m, unit, *ranges[m], periods[m])
        for m, unit in PUMP_MEASURES.items()
    ]


def _meter_tag(
    network: Network, line: int, element: str, measure: str, design_flow_m3h: float, periods: Mapping[str, float]
) -> TagSpec:
    station = f"{LINE_PREFIX}{line:02d}"
    asset = sanitize(element)
    if measure == "FLOW":
        try:
            link = network.link(element)
        except NetworkError as exc:
            raise RegistryError(f"meter {shorten(element)}: {clip(str(exc))}") from None
        if not isinstance(link, Pipe):
            raise RegistryError(f"meter {shorten(element)}: a FLOW meter needs a pipe")
        low, high = -0.1 * design_flow_m3h, 1.5 * design_flow_m3h
    elif measure == "PRESS":
        try:
            network.node(element)
        except NetworkError as exc:
            raise RegistryError(f"meter {shorten(element)}: {clip(str(exc))}") from None
        low, high = -1.0, _pressure_high_bar(network, element)
    else:
        raise RegistryError(f"meter {shorten(element)}: measure must be FLOW or PRESS, got {shorten(measure)}")
    period = periods["FLOW"] if measure == "FLOW" else periods["PRESS"]
    return TagSpec(f"{station}.{asset}.{measure}", station, asset, measure, LINE_MEASURES[measure], low, high, period)


# --------------------------------------------------------------------------------------------
# Tables and files
# --------------------------------------------------------------------------------------------


def registry_frame(registry: Registry) -> pd.DataFrame:
    """The tags as a DataFrame, one row per tag.

    Columns: ``tag, station, asset, measure, unit, low, high, sample_period_s``. Example row:
    ``PS01.P2.VIB_DE_RMS, PS01, P2, VIB_DE_RMS, mm/s, 0.0, 50.0, 10.0``.
    """
    return pd.DataFrame([asdict(t) for t in registry.tags], columns=list(TagSpec.__dataclass_fields__))


def registry_to_dict(registry: Registry) -> dict[str, Any]:
    """Plain-data form of a registry (YAML-ready)."""
    return {
        "version": registry.version,
        "network": registry.network,
        "n_lines": registry.n_lines,
        "stations": [{**asdict(s), "assets": list(s.assets)} for s in registry.stations],
        "pumps": [asdict(p) for p in registry.pumps],
        "meters": [asdict(m) for m in registry.meters],
        "tags": [asdict(t) for t in registry.tags],
    }


def registry_from_dict(data: Mapping[str, Any]) -> Registry:
    """Inverse of `registry_to_dict`.

    Raises:
        RegistryError: A missing field, an unknown version or an invalid entry.
    """
    version = data.get("version")
    if version != REGISTRY_VERSION:
        raise RegistryError(f"registry version {shorten(version)} is not supported (expected {REGISTRY_VERSION})")
    try:
        return Registry(
            network=str(data["network"]),
            n_lines=int(data["n_lines"]),
            stations=tuple(StationSpec(**{**s, "assets": tuple(s["assets"])}) for s in data["stations"]),
            pumps=tuple(PumpSpec(**p) for p in data["pumps"]),
            meters=tuple(MeterSpec(**m) for m in data["meters"]),
            tags=tuple(TagSpec(**t) for t in data["tags"]),
            version=int(version),
        )
    except RegistryError:
        raise
    except KeyError as exc:
        raise RegistryError(f"registry: missing field {shorten(exc.args[0] if exc.args else '')}") from exc
    except (TypeError, ValueError, AttributeError) as exc:
        raise RegistryError(f"registry: invalid or unknown field: {clip(str(exc))}") from exc


def write_registry(registry: Registry, path: str | Path) -> Path:
    """Write ``registry`` to a versioned YAML file and return its path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(registry_to_dict(registry), sort_keys=False, default_flow_style=None, width=120)
    out.write_text(f"# pumptwin asset and tag registry (version {registry.version})\n{text}", encoding="utf-8")
    return out


def read_registry(path: str | Path) -> Registry:
    """Read a registry written by `write_registry`.

    Raises:
        RegistryError: Missing or unreadable file, invalid YAML or content; the message names the file.
    """
    src = Path(path)
    data = read_yaml_mapping(src, RegistryError, "registry file")
    try:
        return registry_from_dict(data)
    except RegistryError as exc:
        raise RegistryError(f"{printable(str(src))}: {exc}") from exc


def measure_ranges(registry: Registry) -> dict[str, tuple[float, float, str]]:
    """Physical range and unit per measure (``VIB_DE_RMS`` -> (low, high, "mm/s")), widest over the fleet.

    Validation uses these for any tag ``STATION.ASSET.MEASURE`` of the measure, so files from
    stations outside the registry are still range-checked.
    """
    out: dict[str, tuple[float, float, str]] = {}
    for spec in registry.tags:
        low, high, unit = out.get(spec.measure, (spec.low, spec.high, spec.unit))
        out[spec.measure] = (min(low, spec.low), max(high, spec.high), unit)
    return out
