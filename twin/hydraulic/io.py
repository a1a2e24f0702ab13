"""Loading networks: EPANET files plus the pipeline data EPANET cannot hold.

A network is an EPANET ``.inp`` file, optionally with a sidecar ``<stem>.yaml``
beside it that adds what pipeline engineers need and EPANET has no place for:
the fluid, atmospheric pressure, MAOP per pipe (MPa gauge), pump stations,
NPSH-required curves (m3/s, m) and speed limits. ``load_network`` reads both.
"""

from __future__ import annotations

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

REFERENCE_PIPELINE = "reference_pipeline.inp"


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
    """Read a YAML file whose top level is a mapping.

    Args:
        path: The file.
        error: The error raised on any problem; its message starts with the path.
        what: What the file is, for the "no such ..." message.
        empty_ok: Read an empty file as an empty mapping.
        label: How messages name the file (default: its path).

    Raises:
        ValueError: Of type ``error``: a missing file, invalid YAML, or no mapping at the top level.
    """
    name = label or str(path)
    if not path.is_file():
        raise error(f"{name}: no such {what}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise error(f"{name}: not valid YAML: {exc}") from exc
    if data is None and empty_ok:
        return {}
    if not isinstance(data, dict):
        raise error(f"{name}: expected a mapping at the top level")
    return data


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
        try:
            fluid = Fluid(**data["fluid"])
        except TypeError as exc:
            raise NetworkError(f"fluid: {exc}") from exc
    curves = list(network.curves)
    for cid, spec in (data.get("curves") or {}).items():
        points = tuple((float(x), float(y)) for x, y in spec.get("points", ()))
        curves.append(Curve(str(cid), points, str(spec.get("kind", "HEAD")).upper()))
    pump_data = data.get("pumps") or {}
    pump_ids = {p.id for p in network.pumps}
    for pid in pump_data:
        if pid not in pump_ids:
            raise NetworkError(f"pumps: pump {pid!r} does not exist")
    pumps = tuple(replace(p, **_pump_fields(pump_data.get(p.id) or {})) for p in network.pumps)
    maop = dict(data.get("maop_mpa") or {})
    pipe_ids = {p.id for p in network.pipes}
    for pid, value in maop.items():
        if pid not in pipe_ids:
            raise NetworkError(f"maop_mpa: pipe {pid!r} does not exist")
        try:
            mpa = float(value)
        except (TypeError, ValueError):
            raise NetworkError(f"maop_mpa: pipe {pid!r} needs a number, got {value!r}") from None
        maop[pid] = mpa
        if not mpa > 0:
            raise NetworkError(f"maop_mpa: pipe {pid!r} needs an MAOP > 0, got {value}")
    pipes = tuple(replace(p, maop_pa=float(maop[p.id]) * 1e6) if p.id in maop else p for p in network.pipes)
    atm = float(data.get("atmospheric_pressure_pa", network.atmospheric_pressure_pa))
    return replace(network, fluid=fluid, curves=tuple(curves), pumps=pumps, pipes=pipes, atmospheric_pressure_pa=atm)


def _pump_fields(spec: dict[str, Any]) -> dict[str, Any]:
    allowed = {"station", "npshr_curve", "efficiency_curve", "min_speed", "max_speed"}
    unknown = set(spec) - allowed
    if unknown:
        raise NetworkError(f"pumps: unknown fields {sorted(unknown)}")
    return {k: (float(v) if k.endswith("speed") else str(v)) for k, v in spec.items()}


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
