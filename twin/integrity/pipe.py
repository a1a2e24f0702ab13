"""Line pipe properties for integrity assessment, and the line's above-ground reference points.

An EPANET file knows a pipe's length, internal diameter and roughness; assessing a corrosion
feature needs more: the steel grade (SMYS and SMTS), the nominal wall thickness and the outside
diameter. They live in a YAML file beside the network (``<stem>.integrity.yaml``), with a
``default`` block that every pipe gets and per-pipe overrides::

    version: 1
    default: {grade: X52, outside_diameter_mm: 660, wall_mm: 7.9}
    pipes:
      L060-065: {grade: X42, wall_mm: 7.1}
      SUC1: {outside_diameter_mm: 762, wall_mm: 9.5, smys_mpa: 360, smts_mpa: 460}
    markers:
      - {name: AGM-010, chainage_km: 10.15, kind: marker}

A grade is a name from `GRADES` or any name with explicit ``smys_mpa`` and ``smts_mpa``
(which also override a known grade's values). Without an outside diameter a pipe takes its
network diameter. The ``markers`` list gives the above-ground markers, valves and pig traps an
in-line inspection tool detects, with their chainage along the line's main path; the ILI loader
maps the tool's odometer onto chainage through them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.hydraulic.io import read_yaml_mapping
from pumptwin.twin.hydraulic.network import Network
from pumptwin.twin.safety import shorten
from pumptwin.twin.units import M_PER_KM, PA_PER_MPA

INTEGRITY_FILE = "reference_pipeline.integrity.yaml"
"""File name of the reference line's pipe properties and reference points (beside its network)."""

MM_PER_M = 1e3
"""mm in one m."""

GRADES: dict[str, tuple[float, float]] = {
    "B": (245e6, 415e6),
    "X42": (290e6, 415e6),
    "X46": (320e6, 435e6),
    "X52": (360e6, 460e6),
    "X56": (390e6, 490e6),
    "X60": (415e6, 520e6),
    "X65": (450e6, 535e6),
    "X70": (485e6, 570e6),
    "X80": (555e6, 625e6),
}
"""API 5L / ISO 3183 (PSL 2) line pipe grades: (SMYS, SMTS) in Pa, the specified minimums."""

MARKER_KINDS = ("marker", "valve", "launcher", "receiver", "fitting")
"""Kinds of reference point a marker list may hold."""

MARKER_COLUMNS = ("name", "chainage_m", "kind")
"""Columns of `reference_markers`: name (str), chainage along the main path (m), kind (str)."""

_PIPE_KEYS = {"grade", "smys_mpa", "smts_mpa", "wall_mm", "outside_diameter_mm", "installed_year"}
_TOP_KEYS = {"version", "description", "default", "pipes", "markers"}


class PipeError(PumptwinError, ValueError):
    """Pipe properties or reference points that cannot be read; the message names the entry."""


@dataclass(frozen=True, slots=True)
class PipeProperties:
    """What an integrity assessment needs to know about a pipe.

    Attributes:
        grade: Steel grade name (``X52``), or a free name for a pipe with explicit strengths.
        smys_pa: Specified minimum yield strength, Pa.
        smts_pa: Specified minimum tensile strength, Pa (not below SMYS).
        wall_m: Nominal wall thickness, m.
        diameter_m: Outside diameter, m (more than twice the wall).
        installed_year: Year the pipe was laid (None: not recorded), for the age of its corrosion.

    Raises:
        PipeError: A non-finite or non-positive value, SMTS below SMYS, or a wall of half the
            diameter or more.
    """

    grade: str
    smys_pa: float
    smts_pa: float
    wall_m: float
    diameter_m: float
    installed_year: int | None = None

    def __post_init__(self) -> None:
        for name in ("smys_pa", "smts_pa", "wall_m", "diameter_m"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise PipeError(f"pipe grade {shorten(self.grade)}: {name} must be a number > 0, got {shorten(value)}")
        if self.smts_pa < self.smys_pa:
            raise PipeError(
                f"pipe grade {shorten(self.grade)}: SMTS {self.smts_pa / PA_PER_MPA:g} MPa is below "
                f"SMYS {self.smys_pa / PA_PER_MPA:g} MPa"
            )
        if 2 * self.wall_m >= self.diameter_m:
            raise PipeError(
                f"pipe grade {shorten(self.grade)}: wall {self.wall_m * MM_PER_M:g} mm is too thick for an outside "
                f"diameter of {self.diameter_m * MM_PER_M:g} mm"
            )

    @property
    def diameter_over_wall(self) -> float:
        """Outside diameter over nominal wall thickness, D/t (-)."""
        return self.diameter_m / self.wall_m


def packaged_integrity_file() -> Path:
    """Path of the packaged reference line's integrity file (beside ``reference_pipeline.inp``)."""
    return Path(str(resources.files("pumptwin.twin") / "networks" / INTEGRITY_FILE))


def load_pipe_properties(path: str | Path, network: Network) -> dict[str, PipeProperties]:
    """Read the pipe properties of every pipe of ``network`` from an integrity file.

    Args:
        path: The integrity YAML file.
        network: The network its pipe ids refer to.

    Returns:
        Properties by pipe id, one entry per pipe of the network.

    Raises:
        PipeError: An unreadable file, an unknown key, a pipe id the network does not have,
            an unknown grade without explicit strengths, a missing or non-positive number, or
            invalid properties; the message names the file and the entry.
    """
    src = Path(path)
    data = read_yaml_mapping(src, PipeError, "integrity file", label=src.name)
    _known(data, _TOP_KEYS, f"{src.name}")
    default = data.get("default") or {}
    overrides = data.get("pipes") or {}
    if not isinstance(default, dict):
        raise PipeError(f"{src.name}: default must be a mapping")
    if not isinstance(overrides, dict):
        raise PipeError(f"{src.name}: pipes must be a mapping of pipe id to properties")
    _known(default, _PIPE_KEYS, f"{src.name}: default")
    pipe_ids = {p.id: p for p in network.pipes}
    other_links = {link.id for link in network.links} - set(pipe_ids)
    for pid, entry in overrides.items():
        if pid in other_links:
            raise PipeError(f"{src.name}: pipes: {shorten(pid)} is a pump or valve, not a pipe")
        if pid not in pipe_ids:
            raise PipeError(f"{src.name}: pipes: pipe {shorten(pid)} does not exist in network {network.name!r}")
        if not isinstance(entry, dict):
            raise PipeError(f"{src.name}: pipes: {shorten(pid)} must be a mapping of properties")
        _known(entry, _PIPE_KEYS, f"{src.name}: pipes: {pid}")
    result: dict[str, PipeProperties] = {}
    for pid, pipe in pipe_ids.items():
        merged = {**default, **(overrides.get(pid) or {})}
        where = f"{src.name}: pipe {pid!r}"
        try:
            result[pid] = _properties(merged, pipe.diameter_m)
        except PipeError as exc:
            raise PipeError(f"{where}: {exc}") from None
    return result


def reference_markers(path: str | Path) -> pd.DataFrame:
    """The above-ground reference points of an integrity file: markers, valves, pig traps.

    Args:
        path: The integrity YAML file.

    Returns:
        One row per point, sorted by chainage, with `MARKER_COLUMNS`: ``name`` (str, unique),
        ``chainage_m`` (float, m along the line's main path) and ``kind`` (one of `MARKER_KINDS`).
        An empty frame with those columns when the file lists none.

    Raises:
        PipeError: An unreadable file, a point without a name or with a repeated name, a
            chainage that is missing, negative or not a number, or an unknown kind.
    """
    src = Path(path)
    data = read_yaml_mapping(src, PipeError, "integrity file", label=src.name)
    raw = data.get("markers") or []
    if not isinstance(raw, list):
        raise PipeError(f"{src.name}: markers must be a list")
    rows: list[tuple[str, float, str]] = []
    seen: set[str] = set()
    for i, entry in enumerate(raw, start=1):
        where = f"{src.name}: marker {i}"
        if not isinstance(entry, dict):
            raise PipeError(f"{where}: must be a mapping with name and chainage_km")
        _known(entry, {"name", "chainage_km", "chainage_m", "kind"}, where)
        name = str(entry.get("name", "")).strip()
        if not name:
            raise PipeError(f"{where}: has no name")
        if name in seen:
            raise PipeError(f"{where}: name {shorten(name)} is used twice")
        seen.add(name)
        where = f"{src.name}: marker {name!r}"
        if ("chainage_km" in entry) == ("chainage_m" in entry):
            raise PipeError(f"{where}: give exactly one of chainage_km or chainage_m")
        try:
            chainage = (
                _number(entry["chainage_km"], "chainage_km", positive=False) * M_PER_KM
                if "chainage_km" in entry
                else _number(entry["chainage_m"], "chainage_m", positive=False)
            )
        except PipeError as exc:
            raise PipeError(f"{where}: {exc}") from None
        kind = str(entry.get("kind", "marker")).strip().lower()
        if kind not in MARKER_KINDS:
            raise PipeError(f"{where}: kind {shorten(kind)} is not one of {', '.join(MARKER_KINDS)}")
        rows.append((name, chainage, kind))
    frame = pd.DataFrame(rows, columns=list(MARKER_COLUMNS))
    frame["chainage_m"] = frame["chainage_m"].astype(float)
    return frame.sort_values("chainage_m", kind="stable").reset_index(drop=True)


def _properties(entry: dict[str, Any], network_diameter_m: float) -> PipeProperties:
    """Pipe properties from one merged (default + override) entry of an integrity file."""
    grade = str(entry.get("grade", "")).strip()
    known = GRADES.get(grade.upper())
    has_explicit = "smys_mpa" in entry or "smts_mpa" in entry
    if known is None and not ("smys_mpa" in entry and "smts_mpa" in entry):
        if not grade:
            raise PipeError("has no grade (give one of " + ", ".join(GRADES) + ", or smys_mpa and smts_mpa)")
        raise PipeError(
            f"grade {shorten(grade)} is unknown (known: {', '.join(GRADES)}); give smys_mpa and smts_mpa for it"
        )
    smys, smts = known if known is not None else (math.nan, math.nan)
    if has_explicit:
        if "smys_mpa" in entry:
            smys = _number(entry["smys_mpa"], "smys_mpa") * PA_PER_MPA
        if "smts_mpa" in entry:
            smts = _number(entry["smts_mpa"], "smts_mpa") * PA_PER_MPA
    if "wall_mm" not in entry:
        raise PipeError("has no wall_mm")
    wall = _number(entry["wall_mm"], "wall_mm") / MM_PER_M
    diameter = (
        _number(entry["outside_diameter_mm"], "outside_diameter_mm") / MM_PER_M
        if "outside_diameter_mm" in entry
        else network_diameter_m
    )
    name = grade.upper() if known is not None else (grade or "custom")
    year = int(_number(entry["installed_year"], "installed_year")) if "installed_year" in entry else None
    return PipeProperties(grade=name, smys_pa=smys, smts_pa=smts, wall_m=wall, diameter_m=diameter, installed_year=year)


def _number(value: object, key: str, *, positive: bool = True) -> float:
    """A finite number from YAML (> 0, or >= 0 with ``positive`` False)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PipeError(f"{key} must be a number, got {shorten(value)}")
    if (positive and value <= 0) or value < 0:
        raise PipeError(f"{key} must be {'> 0' if positive else '>= 0'}, got {value:g}")
    return float(value)


def _known(entry: dict[Any, Any], allowed: set[str], where: str) -> None:
    """Refuse keys of a mapping that are not in ``allowed``."""
    unknown = sorted(str(k) for k in entry if k not in allowed)
    if unknown:
        raise PipeError(f"{where}: unknown key {shorten(unknown[0])} (allowed: {', '.join(sorted(allowed))})")
