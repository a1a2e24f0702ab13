"""The what-if report: per scenario the pumps' operating points, the pressure profile, margins and violations.

`WhatIfReport` is what `twin.whatif.assess.assess` returns and what the CLI, the flows and the
plots read: a table (`to_frame`, `to_markdown`), the pumps (`pumps_frame`), the profiles
(`profile_frame`) and a JSON-ready dict (`to_dict`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pumptwin.twin.hydraulic.solver import FloatArray
from pumptwin.twin.whatif.limits import Limits

if TYPE_CHECKING:
    import pandas as pd

    from pumptwin.twin.integrity.line import Derating, IntegrityLimits


@dataclass(frozen=True)
class Violation:
    """A limit a scenario violates.

    Attributes:
        limit: Which limit (MAOP, NPSH, POR, VIBRATION, BEARING, SPEED, VAPOUR, ...).
        where: The pump, pipe or node.
        value: The value reached.
        limit_value: The limit.
        unit: Unit of both.
    """

    limit: str
    where: str
    value: float
    limit_value: float
    unit: str

    def __str__(self) -> str:
        return f"{self.limit} {self.where}: {self.value:.4g} {self.unit} (limit {self.limit_value:.4g})"


@dataclass(frozen=True)
class PumpPoint:
    """Operating point and predicted condition of one pump in one scenario (NaN where not running)."""

    pump: str
    station: str | None
    running: bool
    speed: float
    speed_rpm: float
    flow_m3h: float
    head_m: float
    efficiency: float
    shaft_power_kw: float
    percent_bep: float
    in_por: bool
    npsh_available_m: float
    npsh_required_m: float
    npsh_margin_m: float
    vibration_mm_s: float
    vibration_zone: str
    bearing_c: float


@dataclass(frozen=True)
class LeakOutcome:
    """A leak given as a flow: what was requested and what the line achieves there.

    Attributes:
        node: Junction of the leak.
        requested_m3h: Leak requested, m3/h.
        achieved_m3h: Leak the solved scenario discharges, m3/h.
        pressure_m: Pressure head at the junction, m.
        reached: Whether the achieved leak matches the requested one within the limits' tolerance.
    """

    node: str
    requested_m3h: float
    achieved_m3h: float
    pressure_m: float
    reached: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the leak."""
        return _jsonable(
            {
                "node": self.node,
                "requested_m3h": self.requested_m3h,
                "achieved_m3h": self.achieved_m3h,
                "pressure_m": self.pressure_m,
                "reached": self.reached,
            }
        )


@dataclass(frozen=True)
class ScenarioOutcome:
    """The full result of one scenario.

    Attributes:
        name: Scenario name.
        status: ``ok``, ``not converged``, ``disconnected``, ``infeasible``, ``leak not reachable``
            (a leak given as a flow the line cannot feed) or ``negative pressure`` (a junction below
            the lowest physical pressure: the steady result is not physical).
        message: Why the status is not ``ok`` ("" when it is).
        throughput_m3h: Flow at the delivery, m3/h.
        power_kw: Total shaft power, kW.
        specific_energy_kwh_m3: Shaft energy per delivered volume, kWh/m3.
        leak_m3h: Total leak (emitter) outflow achieved, m3/h.
        min_maop_margin_mpa: Least MAOP minus pressure over the line's pipes, MPa.
        min_maop_margin_at: The pipe where it occurs.
        max_pressure_mpa, min_pressure_mpa: Extreme gauge pressures at the junctions, MPa.
        pumps: Operating point of every pump.
        chainage_km, profile_head_m, profile_pressure_mpa, elevation_m, maop_mpa: The line's
            main path, one value per node (MAOP: of the path pipe leaving the node).
        profile_nodes: Node ids along the main path.
        violations: Limits violated, with their values.
        notes: How the scenario's inputs were resolved.
        leaks: The leaks given as a flow: requested and achieved.
        negative_pressure_m: Junctions below the lowest physical pressure, worst first: (id, pressure head m).
    """

    name: str
    status: str
    message: str
    throughput_m3h: float
    power_kw: float
    specific_energy_kwh_m3: float
    leak_m3h: float
    min_maop_margin_mpa: float
    min_maop_margin_at: str
    max_pressure_mpa: float
    min_pressure_mpa: float
    pumps: tuple[PumpPoint, ...]
    profile_nodes: tuple[str, ...]
    chainage_km: FloatArray
    profile_head_m: FloatArray
    profile_pressure_mpa: FloatArray
    elevation_m: FloatArray
    maop_mpa: FloatArray
    violations: tuple[Violation, ...]
    notes: tuple[str, ...] = ()
    leaks: tuple[LeakOutcome, ...] = ()
    negative_pressure_m: tuple[tuple[str, float], ...] = ()

    @property
    def leak_requested_m3h(self) -> float:
        """Total leak requested as a flow, m3/h (NaN when no leak was given as a flow)."""
        return sum(leak.requested_m3h for leak in self.leaks) if self.leaks else math.nan

    @property
    def within_limits(self) -> bool:
        """True when the scenario solved and violates no limit."""
        return self.status == "ok" and not self.violations

    def running(self) -> tuple[PumpPoint, ...]:
        """The pumps that run."""
        return tuple(p for p in self.pumps if p.running)

    def row(self) -> dict[str, Any]:
        """One flat row for tables (SI-derived units in the keys)."""
        run = self.running()
        npsh = [p.npsh_margin_m for p in run if math.isfinite(p.npsh_margin_m)]
        zones = [p.vibration_zone for p in run]
        return {
            "scenario": self.name,
            "status": self.status,
            "throughput_m3h": self.throughput_m3h,
            "pumps_running": len(run),
            "power_kw": self.power_kw,
            "specific_energy_kwh_m3": self.specific_energy_kwh_m3,
            "max_pressure_mpa": self.max_pressure_mpa,
            "min_maop_margin_mpa": self.min_maop_margin_mpa,
            "min_npsh_margin_m": min(npsh) if npsh else math.nan,
            "bep_pct_min": min((p.percent_bep for p in run), default=math.nan),
            "bep_pct_max": max((p.percent_bep for p in run), default=math.nan),
            "all_in_por": all(p.in_por for p in run),
            "max_vibration_mm_s": max((p.vibration_mm_s for p in run), default=math.nan),
            "worst_zone": max(zones) if zones else "-",
            "max_bearing_c": max((p.bearing_c for p in run), default=math.nan),
            "leak_requested_m3h": self.leak_requested_m3h,
            "leak_m3h": self.leak_m3h,
            "violations": "; ".join(str(v) for v in self.violations) or "none",
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the row, every pump, the profile, violations and notes."""
        return {
            **_jsonable(self.row()),
            "message": self.message,
            "notes": list(self.notes),
            "leaks": [leak.to_dict() for leak in self.leaks],
            "negative_pressure_nodes": {nid: p for nid, p in self.negative_pressure_m},
            "violations": [
                {"limit": v.limit, "where": v.where, "value": v.value, "limit_value": v.limit_value, "unit": v.unit}
                for v in self.violations
            ],
            "pumps": [_jsonable(vars_of(p)) for p in self.pumps],
            "profile": {
                "node": list(self.profile_nodes),
                "chainage_km": _floats(self.chainage_km),
                "head_m": _floats(self.profile_head_m),
                "pressure_mpa": _floats(self.profile_pressure_mpa),
                "elevation_m": _floats(self.elevation_m),
                "maop_mpa": _floats(self.maop_mpa),
            },
        }


def vars_of(point: PumpPoint) -> dict[str, Any]:
    """The fields of a pump point as a dict."""
    return {f: getattr(point, f) for f in point.__dataclass_fields__}


def _floats(values: FloatArray) -> list[float | None]:
    return [float(v) if math.isfinite(v) else None for v in np.asarray(values, dtype=np.float64)]


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}


MARKDOWN_COLUMNS = (
    ("scenario", "scenario", "{}"),
    ("status", "status", "{}"),
    ("throughput_m3h", "flow m3/h", "{:.0f}"),
    ("pumps_running", "pumps", "{}"),
    ("power_kw", "power kW", "{:.0f}"),
    ("specific_energy_kwh_m3", "kWh/m3", "{:.3f}"),
    ("max_pressure_mpa", "pmax MPa", "{:.2f}"),
    ("min_maop_margin_mpa", "MAOP margin MPa", "{:.2f}"),
    ("min_npsh_margin_m", "NPSH margin m", "{:.1f}"),
    ("bep_pct_min", "BEP % min", "{:.0f}"),
    ("bep_pct_max", "BEP % max", "{:.0f}"),
    ("max_vibration_mm_s", "vib mm/s", "{:.2f}"),
    ("worst_zone", "zone", "{}"),
    ("max_bearing_c", "bearing C", "{:.0f}"),
    ("leak_requested_m3h", "leak asked m3/h", "{:.0f}"),
    ("leak_m3h", "leak m3/h", "{:.0f}"),
    ("violations", "limits violated", "{}"),
)
"""Columns of the markdown table: key, title, format."""


@dataclass(frozen=True)
class WhatIfReport:
    """Full results of a batch of scenarios on one network.

    Attributes:
        network: Network name.
        outcomes: One per scenario, in order.
        ambient_c: Ambient temperature used for bearing temperatures, degC.
        limits: The limits checked.
        integrity: The assessed features whose safe pressures were checked (None: not checked).
        derating: The largest throughput and station discharge pressures that keep every feature
            safe (None: not asked for or no features).
    """

    network: str
    outcomes: tuple[ScenarioOutcome, ...]
    ambient_c: float
    limits: Limits
    integrity: IntegrityLimits | None = None
    derating: Derating | None = None

    @property
    def within_limits(self) -> bool:
        """True when every scenario solved and violates no limit."""
        return all(o.within_limits for o in self.outcomes)

    def outcome(self, name: str) -> ScenarioOutcome:
        """The outcome of the scenario called ``name``."""
        for o in self.outcomes:
            if o.name == name:
                return o
        raise KeyError(name)

    def to_frame(self) -> pd.DataFrame:
        """One row per scenario (see `ScenarioOutcome.row`)."""
        import pandas as pd

        return pd.DataFrame([o.row() for o in self.outcomes]).set_index("scenario")

    def pumps_frame(self) -> pd.DataFrame:
        """One row per scenario and pump: operating point and predicted condition."""
        import pandas as pd

        return pd.DataFrame([{"scenario": o.name, **vars_of(p)} for o in self.outcomes for p in o.pumps])

    def profile_frame(self) -> pd.DataFrame:
        """One row per scenario and main-path node: chainage, head, pressure, elevation and MAOP."""
        import pandas as pd

        frames = [
            pd.DataFrame(
                {
                    "scenario": o.name,
                    "node": o.profile_nodes,
                    "chainage_km": o.chainage_km,
                    "head_m": o.profile_head_m,
                    "pressure_mpa": o.profile_pressure_mpa,
                    "elevation_m": o.elevation_m,
                    "maop_mpa": o.maop_mpa,
                }
            )
            for o in self.outcomes
        ]
        return pd.concat(frames, ignore_index=True)

    def to_markdown(self) -> str:
        """The scenarios as a markdown table, then each scenario's violations and notes."""
        head = "| " + " | ".join(t for _, t, _ in MARKDOWN_COLUMNS[:-1]) + " |"
        lines = [f"# What-if scenarios on {self.network}", "", head, "|" + "---|" * (len(MARKDOWN_COLUMNS) - 1)]
        for o in self.outcomes:
            row = o.row()
            cells = [_cell(fmt, row[key]) for key, _, fmt in MARKDOWN_COLUMNS[:-1]]
            lines.append("| " + " | ".join(cells) + " |")
        lines += [
            "",
            f"Bearing temperatures at {self.ambient_c:g} C ambient. Vibration zones ISO 10816-3, boundaries "
            f"A/B {self.limits.zones.ab_mm_s:g}, B/C {self.limits.zones.bc_mm_s:g}, "
            f"C/D {self.limits.zones.cd_mm_s:g} mm/s.",
        ]
        for o in self.outcomes:
            if o.violations or o.notes or o.message:
                lines += ["", f"**{o.name}**"]
                lines += [f"- {o.message}" for _ in (1,) if o.message]
                lines += [f"- note: {n}" for n in o.notes]
                lines += [f"- violates {v}" for v in o.violations]
        if self.integrity is not None:
            lines += ["", "## Integrity", "", self.integrity_phrase()]
            if self.derating is not None:
                lines += ["", *self.derating.to_lines()]
        return "\n".join(lines) + "\n"

    def integrity_phrase(self) -> str:
        """One sentence: how many features were checked, at which share of their safe pressure, from where."""
        if self.integrity is None:
            return "Integrity not checked."
        src = f" from {self.integrity.source}" if self.integrity.source else ""
        return (
            f"{len(self.integrity)} features checked against {100 * self.integrity.margin:g} % of their safe "
            f"pressure{src}."
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every scenario."""
        z = self.limits.zones
        return {
            "network": self.network,
            "ambient_c": self.ambient_c,
            "limits": {
                "min_npsh_margin_m": self.limits.min_npsh_margin_m,
                "bearing_alarm_c": self.limits.bearing_alarm_c,
                "max_maop_use": self.limits.max_maop_use,
                "min_pressure_m": self.limits.min_pressure_m,
                "leak_tolerance": self.limits.leak_tolerance,
                "leak_tolerance_m3h": self.limits.leak_tolerance_m3h,
                "iso_10816_3_mm_s": {"A/B": z.ab_mm_s, "B/C": z.bc_mm_s, "C/D": z.cd_mm_s},
            },
            "within_limits": self.within_limits,
            "integrity": None
            if self.integrity is None
            else {
                "features": len(self.integrity),
                "margin": self.integrity.margin,
                "source": self.integrity.source,
            },
            "derating": None if self.derating is None else self.derating.to_dict(),
            "scenarios": [o.to_dict() for o in self.outcomes],
        }


def _cell(fmt: str, value: object) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "-"
    return fmt.format(value)
