"""Calibration and twin-state files: JSON that survives restarts and round-trips exactly.

`write_calibration`/`read_calibration` and `write_state`/`read_state` are symmetric; non-finite
numbers are written by name so the files stay strict JSON.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from pumptwin.twin.health.estimation import (
    Estimate,
    LineEstimate,
    PumpEstimate,
    RlsFit,
    TwinCalibration,
    VibrationBaseline,
)
from pumptwin.twin.health.state import Alert, AssetHealth, TwinState
from pumptwin.twin.hydraulic.network import NetworkError

CALIBRATION_FORMAT = "pumptwin.calibration"
CALIBRATION_VERSION = 2
"""Version of the calibration file layout `calibration_to_dict` writes (2: the twin's own condition models)."""
READABLE_VERSIONS = (1, 2)
"""Layouts `calibration_from_dict` reads. Version 1 held vibration baselines of another form: they are
dropped (relearnt from the next windows); everything else carries over."""
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


def _fit_out(f: RlsFit) -> dict[str, Any]:
    return {
        "info": [_num_out(v) for v in f.info],
        "rhs": [_num_out(v) for v in f.rhs],
        "weight": _num_out(f.weight),
        "noise": _num_out(f.noise),
    }


def _fit_in(x: object, where: str, like: RlsFit) -> RlsFit:
    if not isinstance(x, dict):
        raise NetworkError(f"calibration: {where} must be a mapping, got {x!r}")
    try:
        info = tuple(_num_in(v, f"{where}.info") for v in x["info"])
        rhs = tuple(_num_in(v, f"{where}.rhs") for v in x["rhs"])
        if len(info) != len(like.info) or len(rhs) != len(like.rhs):
            raise NetworkError(f"calibration: {where}: expected {len(like.info)} info and {len(like.rhs)} rhs values")
        return RlsFit(info, rhs, _num_in(x["weight"], f"{where}.weight"), _num_in(x["noise"], f"{where}.noise"))
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, NetworkError):
            raise
        raise NetworkError(f"calibration: {where}: missing or malformed {exc}") from exc


_PUMP_ESTIMATES = ("impeller_wear", "efficiency_loss", "thermal_de", "thermal_nde")
_PUMP_ESTIMATES_V2 = ("winding", "strainer_k")
_PUMP_BASELINES = ("vib_de", "vib_nde")
_PUMP_FITS = ("bearing_de", "bearing_nde", "seal")
_PUMP_FLOATS_V2 = ("seal_leak_l_h", "strainer_ref_k")
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
    out.update({k: _estimate_out(getattr(p, k)) for k in (*_PUMP_ESTIMATES, *_PUMP_ESTIMATES_V2)})
    out.update({k: _baseline_out(getattr(p, k)) for k in _PUMP_BASELINES})
    out.update({k: _fit_out(getattr(p, k)) for k in _PUMP_FITS})
    out.update({k: _num_out(getattr(p, k)) for k in (*_PUMP_FLOATS, *_PUMP_FLOATS_V2)})
    out["winding_ref_k"] = _num_out(p.winding_ref_k)
    out["n_samples"] = p.n_samples
    out["last_running_ts"] = _ts_out(p.last_running_ts)
    out["running_since_ts"] = _ts_out(p.running_since_ts)
    return out


def _pump_in(name: str, x: object, version: int) -> PumpEstimate:

    where = f"pumps.{name}"
    if not isinstance(x, dict):
        raise NetworkError(f"calibration: {where} must be a mapping, got {x!r}")
    try:
        fields: dict[str, Any] = {k: _estimate_in(x[k], f"{where}.{k}") for k in _PUMP_ESTIMATES}
        fields.update({k: _num_in(x[k], f"{where}.{k}") for k in _PUMP_FLOATS})
        if version >= 2:  # noqa: PLR2004 - the layout with the twin's own condition models
            empty = PumpEstimate(name, "", 1, Estimate(0.0, 0.0), Estimate(0.0, 0.0))
            fields.update({k: _estimate_in(x[k], f"{where}.{k}") for k in _PUMP_ESTIMATES_V2})
            fields.update({k: _baseline_in(x[k], f"{where}.{k}") for k in _PUMP_BASELINES})
            fields.update({k: _fit_in(x[k], f"{where}.{k}", getattr(empty, k)) for k in _PUMP_FITS})
            fields.update({k: _num_in(x[k], f"{where}.{k}") for k in _PUMP_FLOATS_V2})
        if "winding_ref_k" in x:  # written since the winding's reference; older files start it afresh
            fields["winding_ref_k"] = _num_in(x["winding_ref_k"], f"{where}.winding_ref_k")
        if "running_since_ts" in x:  # written since thermal settling; older files know no run start
            fields["running_since_ts"] = _ts_in(x["running_since_ts"], f"{where}.running_since_ts")
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
    """Read what `calibration_to_dict` wrote (this version, or version 1 without its vibration baselines).

    Raises:
        NetworkError: Another format or version, or a missing or malformed field (named).
    """
    if data.get("format") != CALIBRATION_FORMAT:
        raise NetworkError(f"calibration: format must be {CALIBRATION_FORMAT!r}, got {data.get('format')!r}")
    version = data.get("version")
    if isinstance(version, bool) or version not in READABLE_VERSIONS:
        raise NetworkError(f"calibration: version {version!r} is not supported (this reads {READABLE_VERSIONS})")
    pumps, lines = data.get("pumps"), data.get("lines")
    if not isinstance(pumps, dict) or not isinstance(lines, dict):
        raise NetworkError("calibration: pumps and lines must be mappings")
    n_updates = data.get("n_updates")
    if isinstance(n_updates, bool) or not isinstance(n_updates, int) or n_updates < 0:
        raise NetworkError(f"calibration: n_updates must be an integer >= 0, got {n_updates!r}")
    return TwinCalibration(
        ts=_ts_in(data.get("ts"), "ts"),
        pumps={str(name): _pump_in(str(name), p, int(version)) for name, p in pumps.items()},
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
