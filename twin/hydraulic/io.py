"""Loading networks: EPANET files plus the pipeline data EPANET cannot hold.

A network is an EPANET ``.inp`` file, optionally with a sidecar ``<stem>.yaml``
beside it that adds what pipeline engineers need and EPANET has no place for:
the fluid, atmospheric pressure, MAOP per pipe (MPa gauge), pump stations,
NPSH-required curves (m3/s, m) and speed limits. ``load_network`` reads both.
"""

from __future__ import annotations

from dataclasses import fields as dataclass_fields
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from pumptwin.twin.hydraulic.eps import EpsResult
from pumptwin.twin.hydraulic.inp import read_inp
from pumptwin.twin.hydraulic.metrics import line_metrics, pump_assets, pump_metrics
from pumptwin.twin.hydraulic.network import Curve, Fluid, Network, NetworkError
from pumptwin.twin.hydraulic.solver import STATUS_NAMES, HydraulicModel
from pumptwin.twin.safety import clip, printable, shorten

REFERENCE_PIPELINE = "reference_pipeline.inp"

MAX_YAML_BYTES = 2 * 1024 * 1024
"""Largest YAML file `read_yaml_mapping` reads, in bytes (the registry of a 100-line fleet is 1.7 MB)."""

MAX_YAML_ALIASES = 100
"""Most aliases (``*name``) in one YAML document."""

MAX_YAML_NODES = 300_000
"""Most nodes in one YAML document, each alias counted as the nodes it stands for.

The registry of a 100-line fleet has about 200,000; PyYAML needs some 300 bytes and 30 us a node.
"""

MAX_YAML_DEPTH = 64
"""Deepest nesting of sequences and mappings in one YAML document."""


def reference_pipeline_path() -> Path:
    """Path of the packaged reference pipeline (.inp; its .yaml sidecar lies beside it)."""
    return Path(str(resources.files("pumptwin.twin") / "networks" / REFERENCE_PIPELINE))


def load_network(path: str | Path | None = None) -> Network:
    """Read an EPANET file and apply its sidecar ``.yaml`` when one exists.

    Args:
        path: The ``.inp`` file; None loads the packaged reference pipeline.

    Raises:
        NetworkError: For an unreadable or invalid file, naming file and element.
    """
    inp = Path(path) if path is not None else reference_pipeline_path()
    if not inp.is_file():
        raise NetworkError(f"{inp}: no such network file")
    network = read_inp(inp)
    sidecar = inp.with_suffix(".yaml")
    if sidecar.is_file():
        data = read_yaml_mapping(sidecar, NetworkError, "sidecar file", empty_ok=True, label=sidecar.name)
        try:
            network = apply_assets(network, data)
        except NetworkError as exc:
            raise NetworkError(f"{sidecar.name}: {exc}") from exc
    return network


def read_yaml_mapping(
    path: Path, error: type[ValueError], what: str = "file", *, empty_ok: bool = False, label: str | None = None
) -> dict[str, Any]:
    """Read a YAML file whose top level is a mapping, within bounds that hostile files cannot pass.

    The file must be at most `MAX_YAML_BYTES` long and UTF-8 text (a byte-order mark is
    accepted). It is read with `BoundedLoader`, PyYAML's safe loader with limits on aliases,
    nesting depth and nodes (an alias counts as every node it stands for), so an alias bomb of a
    few hundred bytes is refused after a few hundred nodes instead of growing without end.

    Args:
        path: The file.
        error: The error raised on any problem; its message starts with the path.
        what: What the file is, for the "no such ..." message.
        empty_ok: Read an empty file as an empty mapping.
        label: How messages name the file (default: its path).

    Raises:
        ValueError: Of type ``error``: a missing, too large or non-UTF-8 file, invalid YAML, a
            file beyond the loader's limits, or no mapping at the top level.
    """
    name = printable(label or str(path))
    if not path.is_file():
        raise error(f"{name}: no such {what}")
    text = _read_text(path, name, error)
    try:
        data = yaml.load(text, Loader=BoundedLoader)  # noqa: S506 - BoundedLoader is a SafeLoader
    except yaml.YAMLError as exc:
        raise error(f"{name}: not valid YAML: {_yaml_problem(exc)}") from None
    except (ValueError, OverflowError) as exc:  # a scalar PyYAML resolves but cannot build (2024-13-45)
        raise error(f"{name}: not valid YAML: {clip(str(exc))}") from None
    if data is None and empty_ok:
        return {}
    if not isinstance(data, dict):
        raise error(f"{name}: expected a mapping at the top level")
    return data


class BoundedLoader(yaml.SafeLoader):
    r"""PyYAML's safe loader with a bound on aliases, nodes and depth.

    Aliases are counted as the whole subtree they repeat, so nine levels of nine aliases (a
    "billion laughs") are refused when the count passes `MAX_YAML_NODES`, long before anything
    is expanded. An alias to a node that is still being read (a recursive structure) is refused
    too. A refusal is a `yaml.composer.ComposerError` at the offending alias or node.

    Example:
        >>> yaml.load("a: &x [1, 2]\nb: *x\n", Loader=BoundedLoader)
        {'a': [1, 2], 'b': [1, 2]}
    """

    def __init__(self, stream: str) -> None:
        """Start reading ``stream`` with empty counters."""
        super().__init__(stream)
        self._aliases = 0
        self._nodes = 0
        self._depth = 0
        self._sizes: dict[str, int] = {}

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        """Compose one node, counting it (an alias as its subtree) against the limits.

        Raises:
            yaml.composer.ComposerError: Past a limit, or at an alias to an unfinished node.
        """
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            return self._alias(event, parent, index)
        if self._depth >= MAX_YAML_DEPTH:
            raise _limit(f"nesting deeper than {MAX_YAML_DEPTH} levels", event)
        before = self._nodes
        self._count(1, event)
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            self._sizes[anchor] = self._nodes - before
        return node

    def _alias(self, event: yaml.AliasEvent, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        anchor = event.anchor
        self._aliases += 1
        if self._aliases > MAX_YAML_ALIASES:
            raise _limit(f"more than {MAX_YAML_ALIASES} aliases", event)
        if anchor in self.anchors and anchor not in self._sizes:
            raise _limit(f"alias {shorten(anchor)} refers to a node that contains it", event)
        self._count(self._sizes.get(anchor or "", 1), event)
        return super().compose_node(parent, index)

    def _count(self, nodes: int, event: yaml.Event) -> None:
        self._nodes += nodes
        if self._nodes > MAX_YAML_NODES:
            raise _limit(f"more than {MAX_YAML_NODES} nodes (aliases counted as what they repeat)", event)


def _limit(problem: str, event: yaml.Event) -> yaml.YAMLError:
    return yaml.composer.ComposerError(None, None, problem, event.start_mark)  # type: ignore[arg-type]


def _read_text(path: Path, name: str, error: type[ValueError]) -> str:
    """The file's text: at most `MAX_YAML_BYTES`, strict UTF-8 (a byte-order mark is dropped)."""
    try:
        size = path.stat().st_size
        if size > MAX_YAML_BYTES:
            raise error(f"{name}: {size} bytes is more than the {MAX_YAML_BYTES} bytes a YAML file may have")
        with path.open("rb") as handle:
            raw = handle.read(min(size, MAX_YAML_BYTES) + 1)
    except OSError as exc:
        raise error(f"{name}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_YAML_BYTES:
        raise error(f"{name}: more than the {MAX_YAML_BYTES} bytes a YAML file may have")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad = raw[exc.start : exc.start + 1].hex()
        raise error(f"{name}: not UTF-8 text (byte 0x{bad} at position {exc.start}); save it as UTF-8") from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """Where and what the YAML problem is, bounded and printable (no snippet of the file)."""
    if isinstance(exc, yaml.reader.ReaderError) and isinstance(exc.character, int):
        return f"character U+{exc.character:04X} at position {exc.position}: {exc.reason}"
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    context = getattr(exc, "context", None)
    if problem is None:
        text = " ".join(str(exc).split())
    else:
        text = f"{context}, {problem}" if context else str(problem)
        if mark is not None:
            text = f"line {mark.line + 1}, column {mark.column + 1}: {text}"
    return clip(text)


def apply_assets(network: Network, data: dict[str, Any]) -> Network:
    """Return ``network`` with the sidecar's fluid, curves, pump data and MAOPs applied.

    Args:
        network: The network read from the EPANET file.
        data: Parsed sidecar: ``fluid`` (Fluid fields), ``atmospheric_pressure_pa``,
            ``curves`` ({id: {kind, points}}), ``pumps`` ({id: {station,
            npshr_curve, efficiency_curve, min_speed, max_speed}}), ``maop_mpa``
            ({pipe id: MPa}).

    Raises:
        NetworkError: When an id names no pipe, pump or curve, or a value is invalid.
    """
    fluid = network.fluid
    if "fluid" in data:
        fluid = _fluid(_sidecar_mapping(data["fluid"], "fluid"))
    curves = list(network.curves)
    for cid, raw in _sidecar_mapping(data.get("curves"), "curves").items():
        where = f"curves.{shorten(cid)}"
        spec = _sidecar_mapping(raw, where)
        points = tuple(_point(xy, f"{where}.points") for xy in spec.get("points") or ())
        try:
            curves.append(Curve(str(cid), points, str(spec.get("kind", "HEAD")).upper()))
        except NetworkError as exc:
            raise NetworkError(clip(str(exc))) from None
    pump_data = _sidecar_mapping(data.get("pumps"), "pumps")
    pump_ids = {p.id for p in network.pumps}
    for pid in pump_data:
        if pid not in pump_ids:
            raise NetworkError(f"pumps: pump {shorten(pid)} does not exist")
    pumps = tuple(
        replace(p, **_pump_fields(_sidecar_mapping(pump_data.get(p.id), f"pumps.{p.id}"))) for p in network.pumps
    )
    maop = dict(_sidecar_mapping(data.get("maop_mpa"), "maop_mpa"))
    pipe_ids = {p.id for p in network.pipes}
    for pid, value in maop.items():
        if pid not in pipe_ids:
            raise NetworkError(f"maop_mpa: pipe {shorten(pid)} does not exist")
        mpa = _sidecar_number(value, f"maop_mpa: pipe {shorten(pid)}")
        maop[pid] = mpa
        if not mpa > 0:
            raise NetworkError(f"maop_mpa: pipe {shorten(pid)} needs an MAOP > 0, got {shorten(value)}")
    pipes = tuple(replace(p, maop_pa=float(maop[p.id]) * 1e6) if p.id in maop else p for p in network.pipes)
    atm = _sidecar_number(
        data.get("atmospheric_pressure_pa", network.atmospheric_pressure_pa), "atmospheric_pressure_pa"
    )
    return replace(network, fluid=fluid, curves=tuple(curves), pumps=pumps, pipes=pipes, atmospheric_pressure_pa=atm)


def _fluid(spec: dict[Any, Any]) -> Fluid:
    """The sidecar's ``fluid``: a name and numbers, each named in a NetworkError when bad."""
    known = [f.name for f in dataclass_fields(Fluid)]
    unknown = set(spec) - set(known)
    if unknown:
        raise NetworkError(f"fluid: unknown fields {_names(unknown)}; known: {known}")
    values: dict[str, Any] = {
        str(k): str(v) if k == "name" else _sidecar_number(v, f"fluid.{k}") for k, v in spec.items()
    }
    try:
        return Fluid(**values)
    except NetworkError as exc:
        raise NetworkError(clip(str(exc))) from None


def _pump_fields(spec: dict[str, Any]) -> dict[str, Any]:
    allowed = {"station", "npshr_curve", "efficiency_curve", "min_speed", "max_speed"}
    unknown = set(spec) - allowed
    if unknown:
        raise NetworkError(f"pumps: unknown fields {_names(unknown)}")
    return {k: (_sidecar_number(v, f"pumps: {k}") if k.endswith("speed") else str(v)) for k, v in spec.items()}


def _sidecar_mapping(value: object, where: str) -> dict[Any, Any]:
    """``value`` as a mapping (None as an empty one), or a NetworkError naming ``where``."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise NetworkError(f"{where}: expected a mapping, got {shorten(value)}")
    return value


def _sidecar_number(value: object, where: str) -> float:
    """``value`` as a float, or a NetworkError naming ``where`` and the value."""
    if isinstance(value, bool):
        raise NetworkError(f"{where}: needs a number, got {shorten(value)}")
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise NetworkError(f"{where}: needs a number, got {shorten(value)}") from None


def _point(value: object, where: str) -> tuple[float, float]:
    """A curve point ``[x, y]``, or a NetworkError naming ``where`` and the value."""
    if not isinstance(value, list | tuple) or len(value) != 2:  # noqa: PLR2004 - a point has x and y
        raise NetworkError(f"{where}: expected a point [x, y], got {shorten(value)}")
    return _sidecar_number(value[0], where), _sidecar_number(value[1], where)


def _names(keys: set[Any]) -> str:
    """Keys from input for a message: sorted, each bounded, at most five."""
    shown = sorted(shorten(k) for k in keys)
    more = f" and {len(shown) - 5} more" if len(shown) > 5 else ""  # noqa: PLR2004 - shown in a message
    return f"[{', '.join(shown[:5])}]{more}"


def solution_to_dict(model: HydraulicModel, result: EpsResult, scenario: int = 0) -> dict[str, Any]:
    """Nodes' heads and pressures (m) and links' flows (m3/s) and status, keyed by the file's ids.

    A steady state (one reporting time) gives flat values; an extended period
    gives one list per element over ``times_s``.
    """
    single = result.times_s.size == 1
    heads = result.head_m[:, scenario, :]
    pressures = heads - model.elevation_m
    flows = result.flow_m3s[:, scenario, :]
    status = result.status[:, scenario, :]

    def pick(values: np.ndarray) -> float | list[float]:
        return float(values[0]) if single else [float(v) for v in values]

    def pick_status(values: np.ndarray) -> str | list[str]:
        names = [STATUS_NAMES[int(v)] for v in values]
        return names[0] if single else names

    pm = pump_metrics(model, pump_assets(model), heads, flows, status, result.pump_speed[:, scenario, :])
    lm = line_metrics(model, heads)
    pumps = {
        pid: {
            "running": [bool(v) for v in pm.running[:, i]] if not single else bool(pm.running[0, i]),
            "speed": pick(pm.speed[:, i]),
            "head_gain_m": pick(pm.head_m[:, i]),
            "percent_of_bep": pick(pm.percent_bep[:, i]),
            "in_preferred_region": [bool(v) for v in pm.in_por[:, i]] if not single else bool(pm.in_por[0, i]),
            "efficiency": pick(pm.efficiency[:, i]),
            "hydraulic_power_kw": pick(pm.hydraulic_power_w[:, i] / 1e3),
            "shaft_power_kw": pick(pm.shaft_power_w[:, i] / 1e3),
            "specific_energy_kwh_m3": pick(pm.specific_energy_kwh_m3[:, i]),
            "npsh_available_m": pick(pm.npsh_available_m[:, i]),
            "npsh_required_m": pick(pm.npsh_required_m[:, i]),
            "npsh_margin_m": pick(pm.npsh_margin_m[:, i]),
        }
        for i, pid in enumerate(model.pump_ids)
    }
    pipes = {
        p.id: {
            "max_pressure_mpa": pick(lm.pipe_max_pressure_pa[:, k] / 1e6),
            "maop_mpa": None if p.maop_pa is None else p.maop_pa / 1e6,
            "maop_margin_mpa": None if p.maop_pa is None else pick(lm.maop_margin_pa[:, k] / 1e6),
        }
        for k, p in enumerate(model.network.pipes)
    }
    return {
        "network": model.network.name,
        "units": {"head": "m", "pressure": "m", "flow": "m3/s", "time": "s", "power": "kW", "npsh": "m"},
        "times_s": [int(t) for t in result.times_s],
        "converged": bool(result.converged[:, scenario].all()),
        "nodes": {
            nid: {"head_m": pick(heads[:, i]), "pressure_m": pick(pressures[:, i])}
            for i, nid in enumerate(model.node_ids)
        },
        "links": {
            lid: {"flow_m3s": pick(flows[:, k]), "status": pick_status(status[:, k])}
            for k, lid in enumerate(model.link_ids)
        },
        "pumps": pumps,
        "pipes": pipes,
    }


# --------------------------------------------------------------------------------------------
# Calibration and twin state files
# --------------------------------------------------------------------------------------------
