"""Route evidence in the twin's health state, and route readings weighed against the online sensors.

**Evidence.** `route_evidence` takes, per asset and kind, the latest *visit*: the records within
`VISIT_WINDOW_S` of the asset's newest record of that kind, no older than ``max_age_days`` before
``now`` (records after ``now`` are kept: a route may be newer than the last synchronised
readings). Per asset it gives these evidence values (floats, so the state files keep them):

- ``route_vib_de_mm_s``, ``route_vib_nde_mm_s``: the largest overall velocity RMS over the
  directions measured at the bearing on that visit, mm/s;
- ``route_vib_de_iso``, ``route_vib_nde_iso``: that velocity graded in the ISO 10816-3 zones of
  `twin.whatif.limits.IsoZones` (default group 1, rigid: A/B 2.3, B/C 4.5, C/D 7.1 mm/s), piecewise
  linear so the A/B boundary grades 0.5 (watch), B/C 0.75 (warning: zone C, not for long-term
  operation) and C/D 1.0 (alarm: zone D, vibration causes damage); 0 at 0 mm/s, the zone-C slope
  beyond C/D;
- ``route_thermo_dk``: the delta-T of the visit's worst spot over its reference, K;
- ``route_thermo_grade``: each spot's rise over its reference graded by its component's bands
  (`thermo_bands_k`: bearing housings 40/50/60 K, motor frames 25/35/45 K, anything else the
  ANSI/NETA MTS over-ambient bands 10/20/40 K) to 0.5 (watch), 0.75 (warning) and 1.0 (alarm);
  the worst spot counts. The reference is the ambient air the surveyor records beside the spots;
  a survey that compares similar components instead needs the NETA similar-component bands
  (1/4/15 K) passed to `thermo_grade`;
- ``route_visual``: the highest visual severity of the visit, 0-4 (2 moderate is watch, 3 severe
  warning, 4 critical alarm);
- ``route_vib_time_s``, ``route_thermo_time_s``, ``route_visual_time_s``: when the graded record was
  taken, s since 1970-01-01 UTC (no rule: time, not health);
- ``sensor_flag`` (added by `fuse`): the number of the asset's online tags a route reading
  disputes; one is a warning, two an alarm.

The graded values get severities from `ROUTE_RULES` (1 = alarm), like every other piece of
evidence in `twin.health.state`; the asset's health index, status and driver follow from all its
evidence by the same functions (`twin.health.state.assess`). Sources (the route files) are kept in
`RouteEvidence.sources` and named in the alerts' ``model_version`` (``route:<kind>:<file>``).

**Sensor checks.** `sensor_flags` compares each route reading with the online tag around the same
time: the median of the tag's readings within ``window_s`` either side. What is compared:

- a vibration point's *horizontal* overall velocity with ``<asset>.VIB_DE_RMS`` /
  ``VIB_NDE_RMS`` (overall velocity RMS in the same band): the online sensors are taken to be
  mounted horizontally, as usual on horizontal pumps (the registry does not record their
  direction); a point without a horizontal reading is not compared. A flag when they differ by more
  than ``vibration_tolerance`` times the route value, or when the tag is flat (every reading in the
  window equal) or missing while the route reading shows a running machine (above
  `LIVE_VIBRATION_MM_S`);
- a bearing spot (component naming DE or NDE and a bearing) with ``BRG_DE_TEMP`` /
  ``BRG_NDE_TEMP``: a flag when they differ by more than ``temperature_tolerance_k`` (the housing
  surface is within a few K of the embedded sensor) or the tag is missing;
- a motor spot (``motor``, ``stator``, ``winding``) with ``MOTOR_WINDING_TEMP`` as a lower bound
  only: the winding runs hotter than the frame surface the camera sees, so only a winding reading
  below the spot by more than the tolerance is a flag.

A tag is "missing" only when other readings of the same asset exist in the window (the historian
was collecting); with no readings of the asset at all nothing is compared. Readings flagged
``bad`` are ignored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from pumptwin.twin.health.state import (
    ALARM_SEVERITY,
    CLEAR_FRACTION,
    DEFAULT_RULES,
    WARNING_SEVERITY,
    Alert,
    AssetHealth,
    Rule,
    TwinState,
    assess,
)
from pumptwin.twin.inspection.routes import KINDS, RouteBatch, RouteKind, empty_frame
from pumptwin.twin.units import HOUR_S, MINUTE_S
from pumptwin.twin.whatif.limits import IsoZones

RouteFrames = RouteBatch | Mapping[RouteKind, pd.DataFrame] | Mapping[str, pd.DataFrame]
"""Route records: a batch, or canonical frames by kind (missing kinds are empty)."""
VISIT_WINDOW_S = 12 * HOUR_S
"""Records of an asset within this time of its newest record of a kind belong to its latest visit, s."""
DEFAULT_MAX_AGE_DAYS = 182.0
"""Route records older than this are no evidence, days."""
DEFAULT_WINDOW_S = 15 * MINUTE_S
"""Online readings within this time either side of a route reading are compared with it, s."""
LIVE_VIBRATION_MM_S = 0.5
"""A route velocity above this shows a running machine, mm/s."""
VIBRATION_FLOOR_MM_S = 0.3
"""Difference between route and online vibration always tolerated, mm/s: near standstill a relative
tolerance would flag the floor's noise (a stopped pump reads a few hundredths of a mm/s)."""
THERMO_BANDS_K: tuple[float, float, float] = (10.0, 20.0, 40.0)
"""Rise over ambient air of a component without bands of its own (ANSI/NETA MTS over-ambient column:
possible, probable deficiency, major discrepancy), K."""
THERMO_COMPONENT_BANDS_K: dict[str, tuple[float, float, float]] = {
    "bearing": (40.0, 50.0, 60.0),
    "motor": (25.0, 35.0, 45.0),
}
"""Rise over ambient air of a bearing housing and a motor frame at watch, warning and alarm, K, by a word
of the component's name. A bearing housing of a pump in good order runs up to about 40 K over ambient
(API 610: 82 degC at 43 degC ambient); a TEFC motor frame of class B rise about 25 K."""
VISUAL_ALARM = 4.0
"""Visual severity at the alarm threshold (critical)."""
SENSOR_FLAG_ALARM = 1.0 / WARNING_SEVERITY
"""Disputed tags at the alarm threshold: one disputed tag is a warning, two an alarm."""
GRADE_POINTS: tuple[float, float, float] = (0.5, WARNING_SEVERITY, ALARM_SEVERITY)
"""Grades at the three band boundaries (watch, warning, alarm)."""
ROUTE_VERSION = "route"
"""Prefix of the model version of alerts from route evidence (``route:<kind>:<file>``)."""
SENSOR_CHECK = "sensor-check"
DEFAULT_ZONES = IsoZones()
"""ISO 10816-3 group 1, rigid foundation (the what-if limits' default)."""

ROUTE_RULES: tuple[Rule, ...] = (
    Rule("route_vib_de_iso", "physics", "ISO grade", alarm=1.0),
    Rule("route_vib_nde_iso", "physics", "ISO grade", alarm=1.0),
    Rule("route_thermo_grade", "physics", "NETA grade", alarm=1.0),
    Rule("route_visual", "physics", "0-4", alarm=VISUAL_ALARM),
    Rule("sensor_flag", "physics", "tags", alarm=SENSOR_FLAG_ALARM),
)
"""Severity rules of the route evidence (graded values: 1 is the alarm boundary)."""
RULES: tuple[Rule, ...] = DEFAULT_RULES + ROUTE_RULES
"""The state's default rules with the route rules."""
ROUTE_PREFIX = "route_"
SENSOR_FLAG = "sensor_flag"
_KIND_OF_SOURCE: dict[str, RouteKind] = {
    "route_vib_de_iso": "vibration",
    "route_vib_nde_iso": "vibration",
    "route_thermo_grade": "thermography",
    "route_visual": "visual",
}


def _is_route_key(key: str) -> bool:
    return key.startswith(ROUTE_PREFIX) or key == SENSOR_FLAG


@dataclass(frozen=True, slots=True)
class SensorFlag:
    """An online tag a route reading disputes.

    Attributes:
        asset: ``STATION.ASSET``.
        tag: The online tag (``PS01.P1.VIB_DE_RMS``).
        route_value: The route reading, mm/s or degC.
        online_value: The online tag's median around the route time (NaN when missing).
        ts: Time of the route reading (UTC).
        reason: Why (disagrees, flat, missing, below the surface).
    """

    asset: str
    tag: str
    route_value: float
    online_value: float
    ts: pd.Timestamp
    reason: str

    def message(self) -> str:
        """One line for reports."""
        return (
            f"{self.tag}: route {self.route_value:.3g}, online {self.online_value:.3g} at {self.ts.isoformat()}: "
            f"{self.reason}"
        )


@dataclass(frozen=True)
class RouteEvidence:
    """Route evidence per asset, with when and where it came from.

    Attributes:
        values: Evidence values by asset (keys in the module docstring).
        times: Time of each graded value by asset and key (UTC).
        sources: Route file of each graded value by asset and key.
        details: One line per graded value (what was seen) by asset and key.
    """

    values: dict[str, dict[str, float]] = field(default_factory=dict)
    times: dict[str, dict[str, pd.Timestamp]] = field(default_factory=dict)
    sources: dict[str, dict[str, str]] = field(default_factory=dict)
    details: dict[str, dict[str, str]] = field(default_factory=dict)

    def add(self, asset: str, key: str, value: float, ts: pd.Timestamp, source: str, detail: str) -> None:
        """Record one graded value (its time key is added to the values)."""
        self.values.setdefault(asset, {})[key] = float(value)
        self.times.setdefault(asset, {})[key] = ts
        self.sources.setdefault(asset, {})[key] = source
        self.details.setdefault(asset, {})[key] = detail


def grade(value: float, bounds: Sequence[float]) -> float:
    """Piecewise-linear grade: 0 at 0, `GRADE_POINTS` (0.5, 0.75, 1) at the three ``bounds``, last slope beyond.

    Args:
        value: The value (mm/s, K...); NaN gives NaN, values at or below 0 give 0.
        bounds: Three increasing boundaries in the value's unit.
    """
    if math.isnan(value):
        return math.nan
    if value <= 0:
        return 0.0
    xs = np.array([0.0, *bounds])
    ys = np.array([0.0, *GRADE_POINTS])
    if value <= xs[-1]:
        return float(np.interp(value, xs, ys))
    slope = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
    return float(ys[-1] + slope * (value - xs[-1]))


def iso_grade(velocity_mm_s: float, zones: IsoZones = DEFAULT_ZONES) -> float:
    """ISO 10816-3 grade of a velocity RMS in mm/s: 0.5 at A/B, 0.75 at B/C, 1 at C/D."""
    return grade(velocity_mm_s, (zones.ab_mm_s, zones.bc_mm_s, zones.cd_mm_s))


def thermo_bands_k(component: str) -> tuple[float, float, float]:
    """Watch, warning and alarm rise over ambient of a thermography component, K (`THERMO_COMPONENT_BANDS_K`)."""
    name = component.lower()
    return next((b for word, b in THERMO_COMPONENT_BANDS_K.items() if word in name), THERMO_BANDS_K)


def thermo_grade(delta_k: float, bands_k: Sequence[float] = THERMO_BANDS_K) -> float:
    """Grade of a rise over ambient, K: 0.5 at the first band, 0.75 at the second, 1 at the third."""
    return grade(delta_k, bands_k)


def _frames(batch_or_frames: RouteFrames) -> dict[RouteKind, pd.DataFrame]:
    if isinstance(batch_or_frames, RouteBatch):
        return batch_or_frames.frames()
    return {k: batch_or_frames.get(k, empty_frame(k)) for k in KINDS}


def latest_visits(
    batch_or_frames: RouteFrames,
    now: pd.Timestamp,
    max_age_days: float = DEFAULT_MAX_AGE_DAYS,
) -> dict[RouteKind, pd.DataFrame]:
    """Per kind, the rows of every asset's latest visit not older than ``max_age_days`` before ``now``.

    A visit is the asset's records within `VISIT_WINDOW_S` of its newest record of the kind.
    """
    start = pd.Timestamp(now) - pd.Timedelta(days=max_age_days)
    out: dict[RouteKind, pd.DataFrame] = {}
    for kind, frame in _frames(batch_or_frames).items():
        recent = frame[frame["ts"] >= start]
        if recent.empty:
            out[kind] = recent.reset_index(drop=True)
            continue
        newest = recent.groupby("asset")["ts"].transform("max")
        keep = recent["ts"] >= newest - pd.Timedelta(seconds=VISIT_WINDOW_S)
        out[kind] = recent[keep].reset_index(drop=True)
    return out


def route_evidence(
    batch_or_frames: RouteFrames,
    now: pd.Timestamp,
    max_age_days: float = DEFAULT_MAX_AGE_DAYS,
    zones: IsoZones = DEFAULT_ZONES,
) -> RouteEvidence:
    """Route evidence per asset from the latest visits (see the module docstring).

    Args:
        batch_or_frames: A `RouteBatch` or canonical frames by kind (e.g. `RouteStore.frames`).
        now: Time the age is counted from (UTC).
        max_age_days: Older records are no evidence, days.
        zones: ISO 10816-3 zone boundaries of the vibration grade.

    Returns:
        Values (``route_*`` keys), times, sources and details by asset.
    """
    ev = RouteEvidence()
    visits = latest_visits(batch_or_frames, now, max_age_days)
    vib = visits["vibration"]
    for (asset, point), rows in vib.groupby(["asset", "point"]):
        worst = rows.loc[rows["overall_mm_s"].idxmax()]
        v = float(worst["overall_mm_s"])
        p = str(point).lower()
        detail = f"{point} {worst['direction']} {v:.2f} mm/s, ISO zone {zones.zone(v)}"
        ev.add(str(asset), f"route_vib_{p}_iso", iso_grade(v, zones), worst["ts"], str(worst["source"]), detail)
        ev.values[str(asset)][f"route_vib_{p}_mm_s"] = v
    for asset, rows in vib.groupby("asset"):
        ev.values[str(asset)]["route_vib_time_s"] = rows["ts"].max().timestamp()
    thermo = visits["thermography"]
    for asset, rows in thermo.groupby("asset"):
        pairs = zip(rows["delta_k"], rows["component"], strict=True)
        grades = [thermo_grade(float(d), thermo_bands_k(str(c))) for d, c in pairs]
        worst = rows.iloc[int(np.argmax(grades))]
        d = float(worst["delta_k"])
        detail = f"{worst['component']} {worst['spot_c']:.1f} degC, {d:+.1f} K over {worst['reference_c']:.1f} degC"
        ev.add(str(asset), "route_thermo_grade", max(grades), worst["ts"], str(worst["source"]), detail)
        ev.values[str(asset)]["route_thermo_dk"] = d
        ev.values[str(asset)]["route_thermo_time_s"] = rows["ts"].max().timestamp()
    visual = visits["visual"]
    for asset, rows in visual.groupby("asset"):
        worst = rows.loc[rows["severity"].idxmax()]
        detail = f"{worst['method']}: {worst['finding']}" + (
            f" (photo {worst['photo_ref']})" if worst["photo_ref"] else ""
        )
        ev.add(str(asset), "route_visual", float(worst["severity"]), worst["ts"], str(worst["source"]), detail)
        ev.values[str(asset)]["route_visual_time_s"] = rows["ts"].max().timestamp()
    return ev


# --------------------------------------------------------------------------------------------
# Route readings against the online tags
# --------------------------------------------------------------------------------------------


def _component_tag(component: str) -> tuple[str, bool] | None:
    """(measure, lower bound only) of the online tag matching a thermography component, or None."""
    words = component.lower().replace("-", " ").replace("_", " ").split()
    if any(w in ("motor", "stator", "winding") for w in words):
        return "MOTOR_WINDING_TEMP", True
    if any(w.startswith("bearing") or w == "brg" for w in words):
        if "nde" in words or ("non" in words and "drive" in words):
            return "BRG_NDE_TEMP", False
        if "de" in words or "drive" in words:
            return "BRG_DE_TEMP", False
    return None


@dataclass(frozen=True)
class _Online:
    """Online readings indexed for window look-ups."""

    by_tag: dict[str, pd.DataFrame]
    by_asset: dict[str, np.ndarray]

    @classmethod
    def of(cls, online: pd.DataFrame) -> _Online:
        if online.empty:
            return cls({}, {})
        frame = online
        if "quality" in frame.columns:
            frame = frame[frame["quality"] != "bad"]
        frame = frame.assign(ts=pd.to_datetime(frame["ts"], utc=True).astype("datetime64[ns, UTC]")).sort_values("ts")
        by_tag = {str(t): g[["ts", "value"]] for t, g in frame.groupby("tag")}
        assets = frame["tag"].astype(str).str.rsplit(".", n=1).str[0]
        by_asset = {str(a): g["ts"].astype("int64").to_numpy() for a, g in frame.groupby(assets)}
        return cls(by_tag, by_asset)

    def window(self, tag: str, ts: pd.Timestamp, window_s: float) -> pd.Series:
        rows = self.by_tag.get(tag)
        if rows is None:
            return pd.Series([], dtype=float)
        w = pd.Timedelta(seconds=window_s)
        inside = (rows["ts"] >= ts - w) & (rows["ts"] <= ts + w)
        return rows.loc[inside, "value"].astype(float).dropna()

    def asset_seen(self, asset: str, ts: pd.Timestamp, window_s: float) -> bool:
        times = self.by_asset.get(asset)
        if times is None:
            return False
        w = pd.Timedelta(seconds=window_s)
        lo, hi = (ts - w).value, (ts + w).value
        return bool(((times >= lo) & (times <= hi)).any())


def _vibration_flags(vib: pd.DataFrame, online: _Online, tolerance: float, window_s: float) -> list[SensorFlag]:
    out: list[SensorFlag] = []
    for r in vib[vib["direction"] == "H"].itertuples(index=False):
        tag = f"{r.asset}.VIB_{r.point}_RMS"
        route, ts = float(r.overall_mm_s), r.ts
        values = online.window(tag, ts, window_s)
        live = route > LIVE_VIBRATION_MM_S
        if values.empty:
            if live and online.asset_seen(str(r.asset), ts, window_s):
                out.append(
                    SensorFlag(
                        str(r.asset),
                        tag,
                        route,
                        math.nan,
                        ts,
                        "online tag missing while the route shows a running machine",
                    )
                )
            continue
        median = float(values.median())
        if live and len(values) > 1 and float(values.max() - values.min()) == 0.0:
            out.append(
                SensorFlag(
                    str(r.asset),
                    tag,
                    route,
                    median,
                    ts,
                    "online tag flat (stuck) while the route shows a running machine",
                )
            )
        elif abs(median - route) > max(tolerance * route, VIBRATION_FLOOR_MM_S):
            out.append(
                SensorFlag(str(r.asset), tag, route, median, ts, f"differs from the route by more than {tolerance:.0%}")
            )
    return out


def _thermo_flags(thermo: pd.DataFrame, online: _Online, tolerance_k: float, window_s: float) -> list[SensorFlag]:
    out: list[SensorFlag] = []
    for r in thermo.itertuples(index=False):
        match = _component_tag(str(r.component))
        if match is None:
            continue
        measure, lower_bound = match
        tag = f"{r.asset}.{measure}"
        spot, ts = float(r.spot_c), r.ts
        values = online.window(tag, ts, window_s)
        if values.empty:
            if online.asset_seen(str(r.asset), ts, window_s):
                out.append(SensorFlag(str(r.asset), tag, spot, math.nan, ts, "online tag missing"))
            continue
        median = float(values.median())
        if lower_bound:
            if median < spot - tolerance_k:
                why = f"winding reads more than {tolerance_k:g} K below the frame surface"
                out.append(SensorFlag(str(r.asset), tag, spot, median, ts, why))
        elif abs(median - spot) > tolerance_k:
            out.append(
                SensorFlag(str(r.asset), tag, spot, median, ts, f"differs from the spot by more than {tolerance_k:g} K")
            )
    return out


def sensor_flags(
    route_frames: RouteFrames,
    online: pd.DataFrame,
    *,
    vibration_tolerance: float,
    temperature_tolerance_k: float,
    window_s: float = DEFAULT_WINDOW_S,
) -> list[SensorFlag]:
    """Online tags the route readings dispute (see the module docstring for what is compared).

    Args:
        route_frames: A `RouteBatch` or canonical frames by kind (every row is compared).
        online: Readings in long form ``ts, tag, value`` (``quality`` optional) around the route times.
        vibration_tolerance: Largest relative difference of a vibration tag from the route value.
        temperature_tolerance_k: Largest difference of a temperature tag from the spot, K.
        window_s: Online readings within this time either side of a route reading are used, s.

    Returns:
        One flag per disputed route reading, by time.

    Raises:
        ValueError: A tolerance or window that is not a positive number.
    """
    for name, value in (
        ("vibration_tolerance", vibration_tolerance),
        ("temperature_tolerance_k", temperature_tolerance_k),
        ("window_s", window_s),
    ):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a number > 0, got {value}")
    frames = _frames(route_frames)
    index = _Online.of(online)
    flags = _vibration_flags(frames["vibration"], index, vibration_tolerance, window_s)
    flags += _thermo_flags(frames["thermography"], index, temperature_tolerance_k, window_s)
    return sorted(flags, key=lambda f: (f.ts, f.asset, f.tag))


# --------------------------------------------------------------------------------------------
# Fusion into the state
# --------------------------------------------------------------------------------------------


def _route_alert(
    h: AssetHealth,
    source: str,
    rule: Rule,
    severity: float,
    when: pd.Timestamp,
    version: str,
    detail: str,
    old: Alert | None,
) -> Alert:
    return Alert(
        asset=h.asset,
        source=source,
        kind=rule.kind,
        level="alarm" if severity >= ALARM_SEVERITY else "warning",
        value=float(h.evidence[source]),
        threshold=rule.alarm,
        unit=rule.unit,
        severity=severity,
        since=old.since if old is not None else when,
        last_seen=when,
        model_version=version,
        detail=detail,
    )


def fuse(
    state: TwinState,
    evidence: RouteEvidence,
    flags: Sequence[SensorFlag] = (),
    *,
    rules: Sequence[Rule] = RULES,
    previous: TwinState | None = None,
) -> TwinState:
    """A new state whose assets carry the route evidence and sensor flags, re-assessed, with their alerts.

    Route keys (``route_*``, ``sensor_flag``) already in the state are replaced by ``evidence``
    (fusing the same evidence twice gives the same state). Assets the state lacks get a ``pump``
    row of their own. Health, status and driver come from all the asset's evidence through
    `twin.health.state.assess` with ``rules``. Alerts of other sources are kept as they are; a route
    source or sensor flag at warning severity or above raises an alert (kind ``physics``,
    ``model_version`` ``route:<kind>:<file>`` or ``route:sensor-check:<tags>``), which keeps the
    ``since`` of the same alert in ``state`` or ``previous`` while it holds (it clears below 90 % of the
    warning severity, as every alert).

    Args:
        state: The twin state.
        evidence: Route evidence (`route_evidence`).
        flags: Sensor flags (`sensor_flags`).
        rules: Severity rules (default the state's rules with `ROUTE_RULES`).
        previous: An earlier state whose route alerts' ``since`` carry over (e.g. before a resync).

    Returns:
        The new state (same time and calibration).
    """
    by_asset: dict[str, list[SensorFlag]] = {}
    for f in flags:
        by_asset.setdefault(f.asset, []).append(f)
    old_alerts = {a.key: a for s in (previous, state) if s is not None for a in s.alerts if _is_route_key(a.source)}
    names = [h.asset for h in state.health]
    extra = sorted((set(evidence.values) | set(by_asset)) - set(names))
    rows = {h.asset: h for h in state.health}
    health: list[AssetHealth] = []
    alerts = [a for a in state.alerts if not _is_route_key(a.source)]
    for name in names + extra:
        old = rows.get(name)
        base = {k: v for k, v in (old.evidence if old is not None else {}).items() if not _is_route_key(k)}
        values = {**base, **evidence.values.get(name, {})}
        if name in by_asset:
            values[SENSOR_FLAG] = float(len({f.tag for f in by_asset[name]}))
        h = assess(name, old.kind if old is not None else "pump", values, rules, old.model_version if old else "")
        health.append(h)
        for source, x in h.severities.items():
            if not _is_route_key(source):
                continue
            prior = old_alerts.get((name, source))
            if not (x >= WARNING_SEVERITY or (prior is not None and x >= CLEAR_FRACTION * WARNING_SEVERITY)):
                continue
            rule = next(r for r in rules if r.source == source)
            if source == SENSOR_FLAG:
                mine = by_asset[name]
                when = max(f.ts for f in mine)
                tags = ",".join(sorted({f.tag.rsplit(".", 1)[1] for f in mine}))
                version = f"{ROUTE_VERSION}:{SENSOR_CHECK}:{tags}"
                detail = "; ".join(f.message() for f in mine)
            else:
                when = evidence.times[name][source]
                version = f"{ROUTE_VERSION}:{_KIND_OF_SOURCE.get(source, 'route')}:{evidence.sources[name][source]}"
                detail = evidence.details[name][source]
            alerts.append(_route_alert(h, source, rule, x, when, version, detail, prior))
    return replace(state, health=tuple(health), alerts=tuple(alerts))
