"""Loading networks: EPANET files plus the pipeline data EPANET cannot hold.

A network is an EPANET ``.inp`` file, optionally with a sidecar ``<stem>.yaml``
beside it that adds what pipeline engineers need and EPANET has no place for:
the fluid, atmospheric pressure, MAOP per pipe (MPa gauge), pump stations,
NPSH-required curves (m3/s, m) and speed limits. ``load_network`` reads both.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import yaml

from twin.eps import EpsResult
from twin.hydraulics import STATUS_NAMES, HydraulicModel
from twin.inp import read_inp
from twin.metrics import line_metrics, pump_assets, pump_metrics
from twin.network import Curve, Fluid, Network, NetworkError

if TYPE_CHECKING:
    from twin.estimation import Estimate, LineEstimate, PumpEstimate, TwinCalibration, VibrationBaseline
    from twin.state import TwinState

REFERENCE_PIPELINE = "reference_pipeline.inp"


def reference_pipeline_path() -> Path:
    """Path of the packaged reference pipeline (.inp; its .yaml sidecar lies beside it)."""
    return Path(str(resources.files("twin") / "networks" / REFERENCE_PIPELINE))


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

CALIBRATION_FORMAT = "pumptwin.calibration"
CALIBRATION_VERSION = 1
"""Version of the calibration file layout `calibration_to_dict` writes."""
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _num_out(x: float) -> float | str:
    """A float for JSON: finite values as they are (exact through ``repr``), others as a name."""
    v = float(x)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return v


def _num_in(x: object, where: str) -> float:
    if isinstance(x, str) and x in _NON_FINITE:
        return _NON_FINITE[x]
    if isinstance(x, bool) or not isinstance(x, int | float):
        raise NetworkError(f"calibration: {where} must be a number, got {x!r}")
    return float(x)


def _ts_out(ts: pd.Timestamp | None) -> str | None:
    return None if ts is None else pd.Timestamp(ts).isoformat()


def _ts_in(x: object, where: str) -> pd.Timestamp | None:
    if x is None:
        return None
    try:
        return pd.Timestamp(str(x))
    except ValueError as exc:
        raise NetworkError(f"calibration: {where} is no timestamp: {x!r}") from exc


def _estimate_out(e: Estimate) -> dict[str, float | str]:
    return {"value": _num_out(e.value), "sd": _num_out(e.sd)}


def _estimate_in(x: object, where: str) -> Estimate:
    from twin.estimation import Estimate

    if not isinstance(x, dict) or set(x) != {"value", "sd"}:
        raise NetworkError(f"calibration: {where} must be a mapping of value and sd, got {x!r}")
    value, sd = _num_in(x["value"], f"{where}.value"), _num_in(x["sd"], f"{where}.sd")
    try:
        return Estimate(value, sd)
    except ValueError as exc:
        raise NetworkError(f"calibration: {where}: {exc}") from exc


def _baseline_out(b: VibrationBaseline) -> dict[str, Any]:
    return {
        "info": [_num_out(v) for v in b.info],
        "rhs": [_num_out(v) for v in b.rhs],
        "weight": _num_out(b.weight),
        "noise_mm_s": _num_out(b.noise_mm_s),
    }


def _baseline_in(x: object, where: str) -> VibrationBaseline:
    from twin.estimation import VibrationBaseline

    if not isinstance(x, dict):
        raise NetworkError(f"calibration: {where} must be a mapping, got {x!r}")
    try:
        info = tuple(_num_in(v, f"{where}.info") for v in x["info"])
        rhs = tuple(_num_in(v, f"{where}.rhs") for v in x["rhs"])
        base = VibrationBaseline()
        if len(info) != len(base.info) or len(rhs) != len(base.rhs):
            raise NetworkError(f"calibration: {where}: expected {len(base.info)} info and {len(base.rhs)} rhs values")
        return VibrationBaseline(info, rhs, _num_in(x["weight"], f"{where}.weight"), _num_in(x["noise_mm_s"], where))
    except (KeyError, TypeError) as exc:
        raise NetworkError(f"calibration: {where}: missing or malformed {exc}") from exc


_PUMP_ESTIMATES = ("impeller_wear", "efficiency_loss", "thermal_de", "thermal_nde")
_PUMP_BASELINES = ("vib_de", "vib_nde")
_PUMP_FLOATS = (
    "vib_de_mm_s",
    "vib_nde_mm_s",
    "vib_excess_de_mm_s",
    "vib_excess_nde_mm_s",
    "thermal_ref_de_k",
    "thermal_ref_nde_k",
    "npsh_margin_m",
    "running_fraction",
)


def _pump_out(p: PumpEstimate) -> dict[str, Any]:
    out: dict[str, Any] = {"pump_id": p.pump_id, "line": p.line}
    out.update({k: _estimate_out(getattr(p, k)) for k in _PUMP_ESTIMATES})
    out.update({k: _baseline_out(getattr(p, k)) for k in _PUMP_BASELINES})
    out.update({k: _num_out(getattr(p, k)) for k in _PUMP_FLOATS})
    out["n_samples"] = p.n_samples
    out["last_running_ts"] = _ts_out(p.last_running_ts)
    return out


def _pump_in(name: str, x: object) -> PumpEstimate:
    from twin.estimation import PumpEstimate

    where = f"pumps.{name}"
    if not isinstance(x, dict):
        raise NetworkError(f"calibration: {where} must be a mapping, got {x!r}")
    try:
        fields: dict[str, Any] = {k: _estimate_in(x[k], f"{where}.{k}") for k in _PUMP_ESTIMATES}
        fields.update({k: _baseline_in(x[k], f"{where}.{k}") for k in _PUMP_BASELINES})
        fields.update({k: _num_in(x[k], f"{where}.{k}") for k in _PUMP_FLOATS})
        return PumpEstimate(
            pump=name,
            pump_id=str(x["pump_id"]),
            line=int(x["line"]),
            n_samples=int(x["n_samples"]),
            last_running_ts=_ts_in(x["last_running_ts"], f"{where}.last_running_ts"),
            **fields,
        )
    except KeyError as exc:
        raise NetworkError(f"calibration: {where}: missing {exc}") from exc


def _line_out(ln: LineEstimate) -> dict[str, Any]:
    return {
        "friction_multiplier": _estimate_out(ln.friction_multiplier),
        "meter_bias_m3s": {tag: _estimate_out(b) for tag, b in ln.meter_bias_m3s.items()},
        "flow_m3s": _num_out(ln.flow_m3s),
        "maop_margin": _num_out(ln.maop_margin),
        "maop_element": ln.maop_element,
        "segments": list(ln.segments),
    }


def _line_in(key: str, x: object) -> LineEstimate:
    from twin.estimation import LineEstimate

    where = f"lines.{key}"
    if not isinstance(x, dict):
        raise NetworkError(f"calibration: {where} must be a mapping, got {x!r}")
    try:
        line = int(key)
    except ValueError:
        raise NetworkError(f"calibration: line key {key!r} is not a line number") from None
    try:
        return LineEstimate(
            line=line,
            friction_multiplier=_estimate_in(x["friction_multiplier"], f"{where}.friction_multiplier"),
            meter_bias_m3s={
                str(t): _estimate_in(b, f"{where}.meter_bias_m3s.{t}") for t, b in x["meter_bias_m3s"].items()
            },
            flow_m3s=_num_in(x["flow_m3s"], f"{where}.flow_m3s"),
            maop_margin=_num_in(x["maop_margin"], f"{where}.maop_margin"),
            maop_element=str(x["maop_element"]),
            segments=tuple(str(s) for s in x["segments"]),
        )
    except (KeyError, AttributeError) as exc:
        raise NetworkError(f"calibration: {where}: missing or malformed {exc}") from exc


def calibration_to_dict(calibration: TwinCalibration) -> dict[str, Any]:
    """The calibration as JSON-safe plain data that `calibration_from_dict` reads back exactly.

    Floats keep every bit (JSON writes ``repr``); NaN and infinities are the strings ``NaN``,
    ``Infinity`` and ``-Infinity``; timestamps are ISO 8601; line numbers become string keys.
    The mapping carries ``format`` and ``version`` (`CALIBRATION_VERSION`).
    """
    return {
        "format": CALIBRATION_FORMAT,
        "version": CALIBRATION_VERSION,
        "ts": _ts_out(calibration.ts),
        "n_updates": calibration.n_updates,
        "pumps": {name: _pump_out(p) for name, p in calibration.pumps.items()},
        "lines": {str(n): _line_out(ln) for n, ln in calibration.lines.items()},
    }


def calibration_from_dict(data: Mapping[str, Any]) -> TwinCalibration:
    """Read what `calibration_to_dict` wrote.

    Raises:
        NetworkError: Another format or version, or a missing or malformed field (named).
    """
    from twin.estimation import TwinCalibration

    if data.get("format") != CALIBRATION_FORMAT:
        raise NetworkError(f"calibration: format must be {CALIBRATION_FORMAT!r}, got {data.get('format')!r}")
    if data.get("version") != CALIBRATION_VERSION:
        raise NetworkError(
            f"calibration: version {data.get('version')!r} is not supported (this reads {CALIBRATION_VERSION})"
        )
    pumps, lines = data.get("pumps"), data.get("lines")
    if not isinstance(pumps, dict) or not isinstance(lines, dict):
        raise NetworkError("calibration: pumps and lines must be mappings")
    n_updates = data.get("n_updates")
    if isinstance(n_updates, bool) or not isinstance(n_updates, int) or n_updates < 0:
        raise NetworkError(f"calibration: n_updates must be an integer >= 0, got {n_updates!r}")
    return TwinCalibration(
        ts=_ts_in(data.get("ts"), "ts"),
        pumps={str(name): _pump_in(str(name), p) for name, p in pumps.items()},
        lines={int(k): _line_in(str(k), v) for k, v in lines.items()},
        n_updates=n_updates,
    )


def write_calibration(calibration: TwinCalibration, path: str | Path) -> Path:
    """Write the calibration as JSON (`calibration_to_dict`), atomically; returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(calibration_to_dict(calibration), indent=1, allow_nan=False), encoding="utf-8")
    tmp.replace(out)
    return out


def _read_json_mapping(path: str | Path, what: str) -> tuple[Path, dict[str, Any]]:
    """The JSON object in ``path``; `NetworkError` naming the file when it is missing or not an object."""
    src = Path(path)
    if not src.is_file():
        raise NetworkError(f"{src}: no such {what} file")
    try:
        data = json.loads(src.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise NetworkError(f"{src}: not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise NetworkError(f"{src}: expected a mapping at the top level")
    return src, data


def read_calibration(path: str | Path) -> TwinCalibration:
    """Read a calibration written by `write_calibration`.

    Raises:
        NetworkError: A missing file, invalid JSON, or an unreadable calibration (naming the file).
    """
    src, data = _read_json_mapping(path, "calibration")
    try:
        return calibration_from_dict(data)
    except NetworkError as exc:
        raise NetworkError(f"{src}: {exc}") from exc


def _opt_float(x: object) -> float:
    return math.nan if x is None else float(x)  # type: ignore[arg-type]


def state_from_dict(data: Mapping[str, Any], calibration: TwinCalibration | None = None) -> TwinState:
    """Read back `TwinState.to_dict` (None values become NaN); the calibration is kept separately.

    Args:
        data: What `TwinState.to_dict` returned.
        calibration: The calibration to attach (its own file, `read_calibration`).

    Raises:
        NetworkError: A missing or malformed field (named).
    """
    from twin.state import Alert, AssetHealth, TwinState

    try:
        health = tuple(
            AssetHealth(
                asset=str(h["asset"]),
                kind=h["kind"],
                health_index=_opt_float(h["health_index"]),
                status=h["status"],
                severity=_opt_float(h["severity"]),
                driver=str(h["driver"]),
                evidence={str(k): _opt_float(v) for k, v in h["evidence"].items()},
                severities={str(k): _opt_float(v) for k, v in h["severities"].items()},
                model_version=str(h.get("model_version", "")),
            )
            for h in data["health"]
        )
        alerts = tuple(
            Alert(
                asset=str(a["asset"]),
                source=str(a["source"]),
                kind=a["kind"],
                level=a["level"],
                value=_opt_float(a["value"]),
                threshold=_opt_float(a["threshold"]),
                unit=str(a["unit"]),
                severity=_opt_float(a["severity"]),
                since=pd.Timestamp(a["since"]),
                last_seen=pd.Timestamp(a["last_seen"]),
                model_version=str(a["model_version"]),
                detail=str(a.get("detail", "")),
            )
            for a in data["alerts"]
        )
        return TwinState(pd.Timestamp(data["ts"]), health, alerts, calibration)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise NetworkError(f"twin state: missing or malformed {exc}") from exc


def write_state(state: TwinState, path: str | Path) -> Path:
    """Write the twin state as JSON (`TwinState.to_json`), atomically; returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(state.to_json(), encoding="utf-8")
    tmp.replace(out)
    return out


def read_state(path: str | Path, calibration: TwinCalibration | None = None) -> TwinState:
    """Read a twin state written by `write_state`, attaching ``calibration``.

    Raises:
        NetworkError: A missing file, invalid JSON or a malformed state (naming the file).
    """
    src, data = _read_json_mapping(path, "twin state")
    try:
        return state_from_dict(data, calibration)
    except NetworkError as exc:
        raise NetworkError(f"{src}: {exc}") from exc
