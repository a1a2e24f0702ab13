"""The steps of station inspections: admit route files, check the online sensors, fuse into the twin, plan rounds.

Plain functions over the settings, wrapped by the Prefect flows ``inspection-ingest``
(`flows.inspection`) and ``rounds`` (`flows.rounds`); `flows.twin_sync_steps` calls
`fuse_stored_routes` every time it writes the twin state.

Where things live (from the settings):

- drop folder: ``settings.inspection.route_dir`` (None: ``<home>/inspection/incoming``); files read
  are moved to its ``processed/`` folder;
- route store: ``<home>/inspection/routes`` (`twin.inspection.routes.RouteStore`);
- quarantine: ``<home>/quarantine/routes/``: a file that cannot be read or recognised is moved
  there with ``<name>.reason.txt``; the rows a file's validation rejected go to
  ``<name>.quarantined.csv`` with their line and reason;
- rounds: ``<home>/inspection/rounds/round-<year>-w<week>.csv`` and ``.md``; ``seen.json`` there
  is the planner's memory of what routes have seen (`twin.inspection.planner.SeenMemory`: the
  severities of each planned asset, confirmed as seen once the route store shows its visit). A
  memory that cannot be read is set aside as ``seen.json.unreadable`` with a warning and the
  round is planned without it (more visits, never fewer).

Route assets are checked against the fleet's registry: the stations in the raw store and the
saved calibration (one line of the network when neither has any). Route evidence in the twin is
the latest visit per asset and kind no older than ``settings.inspection.max_interval_days`` (the
longest an asset goes between visits) before the state's time; sensor flags compare those visits
with the raw store's readings around them (``vibration_tolerance``, ``temperature_tolerance_k``).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pumptwin.flows.build_features_steps import fleet_registry
from pumptwin.flows.settings import Settings
from pumptwin.flows.store_steps import raw_store
from pumptwin.flows.twin_store import load_twin, state_paths
from pumptwin.twin.assets import Registry
from pumptwin.twin.health.io import write_state
from pumptwin.twin.health.state import TwinState
from pumptwin.twin.inspection.fusion import (
    DEFAULT_WINDOW_S,
    RouteEvidence,
    SensorFlag,
    fuse,
    latest_visits,
    route_evidence,
    sensor_flags,
)
from pumptwin.twin.inspection.planner import (
    PlannerError,
    PlannerSettings,
    RoundPlan,
    SeenMemory,
    conditions_from_state,
    plan_round,
)
from pumptwin.twin.inspection.routes import KINDS, RouteBatch, RouteError, RouteKind, RouteStore, load_route
from pumptwin.twin.safety import shorten
from pumptwin.twin.times import to_utc, utc_now, utc_stamp

_LOG = logging.getLogger(__name__)

PROCESSED = "processed"
"""Sub-folder of the drop folder that files go to once read."""
ROUTE_SUFFIXES = (".csv", ".txt", ".xlsx", ".xlsm")
"""Suffixes of route files; other files in the drop folder are refused as unreadable."""
IGNORED_SUFFIXES = (".tmp", ".part", ".partial")
"""Files still being copied into the drop folder: left for a later run."""
ONLINE_MEASURES: tuple[str, ...] = (
    "VIB_DE_RMS",
    "VIB_NDE_RMS",
    "BRG_DE_TEMP",
    "BRG_NDE_TEMP",
    "MOTOR_WINDING_TEMP",
    "SPEED",
)
"""Online measures read around route times (``SPEED`` tells that the historian was collecting)."""


def route_dir(settings: Settings) -> Path:
    """The drop folder of route files."""
    return settings.inspection.route_dir or settings.inspection_dir / "incoming"


def route_store(settings: Settings) -> RouteStore:
    """The route store, ``<home>/inspection/routes``."""
    return RouteStore(settings.inspection_dir / "routes")


def route_quarantine_dir(settings: Settings) -> Path:
    """Where refused files and rejected rows go, ``<home>/quarantine/routes``."""
    return settings.home / "quarantine" / "routes"


def rounds_dir(settings: Settings) -> Path:
    """Where planned rounds are written, ``<home>/inspection/rounds``."""
    return settings.inspection_dir / "rounds"


def fleet(settings: Settings) -> Registry:
    """The fleet's registry: the stations in the raw store and in the saved calibration."""
    stations = {s for s, _ in raw_store(settings).partitions()}
    try:
        cal, _ = load_twin(settings)
    except ValueError:
        cal = None
    if cal is not None:
        stations |= {name.split(".", 1)[0] for name in cal.pumps}
    return fleet_registry(settings, sorted(stations))


def _free_name(folder: Path, name: str) -> Path:
    """``folder / name``, or with a UTC stamp in front when that exists already."""
    target = folder / name
    return target if not target.exists() else folder / f"{utc_stamp()}-{name}"


@dataclass(frozen=True)
class FileOutcome:
    """What happened to one route file.

    Attributes:
        name: File name.
        kind: Kind recognised ("" when refused).
        rows: Good rows.
        stored: Rows new to the store.
        quarantined: Rows rejected.
        reasons: Rejected rows by reason (the reason's text before its first ``:``).
        error: Why the whole file was refused (None when it was read).
        moved_to: Where the file went (``processed/`` or the quarantine).
        rows_file: The rejected rows' CSV (None without any).
    """

    name: str
    kind: str
    rows: int
    stored: int
    quarantined: int
    reasons: dict[str, int]
    error: str | None
    moved_to: Path
    rows_file: Path | None = None


@dataclass(frozen=True)
class Admission:
    """The route files of one run.

    Attributes:
        files: One outcome per file, by name.
        batches: The batches read (files refused have none).
    """

    files: tuple[FileOutcome, ...] = ()
    batches: tuple[RouteBatch, ...] = field(default=(), repr=False)

    @property
    def stored(self) -> int:
        """Rows new to the store."""
        return sum(f.stored for f in self.files)

    @property
    def quarantined(self) -> int:
        """Rows rejected, plus one per refused file."""
        return sum(f.quarantined for f in self.files) + sum(f.error is not None for f in self.files)


def route_files(folder: Path) -> list[Path]:
    """Files waiting in the drop folder, by name (hidden files and files still being copied are skipped)."""
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and not p.name.lower().endswith(IGNORED_SUFFIXES)
    )


def _refuse(settings: Settings, path: Path, why: str) -> FileOutcome:
    folder = route_quarantine_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    target = _free_name(folder, path.name)
    path.replace(target)
    target.with_name(target.name + ".reason.txt").write_text(why + "\n", encoding="utf-8")
    return FileOutcome(path.name, "", 0, 0, 0, {}, why, target)


def admit_routes(settings: Settings, now: pd.Timestamp | str | None = None) -> Admission:
    """Read, validate and store every route file in the drop folder; quarantine what is bad; move the files.

    Args:
        settings: The settings of this entry point.
        now: Latest acceptable route time (UTC); default the wall clock.

    Returns:
        One outcome per file and the batches read.

    Raises:
        RouteError: The route store cannot be written (an unreadable store file or a lock held too long).
    """
    files = route_files(route_dir(settings))
    if not files:
        return Admission()
    clock = utc_now() if now is None else to_utc(now, what="now")
    assets = [p.name for p in fleet(settings).pumps]
    store = route_store(settings)
    outcomes: list[FileOutcome] = []
    batches: list[RouteBatch] = []
    for path in files:
        try:
            batch = load_route(path, assets, now=clock)
        except RouteError as exc:
            outcomes.append(_refuse(settings, path, str(exc)))
            continue
        stored = store.append(batch)
        rows_file = None
        if len(batch.quarantined):
            folder = route_quarantine_dir(settings)
            folder.mkdir(parents=True, exist_ok=True)
            rows_file = _free_name(folder, f"{path.name}.quarantined.csv")
            batch.quarantined.to_csv(rows_file, index=False)
        processed = route_dir(settings) / PROCESSED
        processed.mkdir(parents=True, exist_ok=True)
        target = _free_name(processed, path.name)
        path.replace(target)
        reasons = (
            Counter(str(r).split(":", 1)[0] for r in batch.quarantined["reason"]) if len(batch.quarantined) else {}
        )
        kind = next((k for k in KINDS if len(batch.frame(k))), "")
        outcomes.append(
            FileOutcome(
                path.name, kind, batch.rows, stored, len(batch.quarantined), dict(reasons), None, target, rows_file
            )
        )
        batches.append(batch)
    return Admission(tuple(outcomes), tuple(batches))


def _clusters(times: Sequence[pd.Timestamp], gap: pd.Timedelta) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Sorted times grouped into spans whose neighbours lie within ``gap``."""
    spans: list[tuple[pd.Timestamp, pd.Timestamp]] = []
    for t in sorted(times):
        if spans and t - spans[-1][1] <= gap:
            spans[-1] = (spans[-1][0], t)
        else:
            spans.append((t, t))
    return spans


def online_around(
    settings: Settings, frames: Mapping[RouteKind, pd.DataFrame], window_s: float = DEFAULT_WINDOW_S
) -> pd.DataFrame:
    """The raw store's readings of the route assets' sensors within ``window_s`` of the route times."""
    rows = [f[["asset", "ts"]] for f in frames.values() if len(f)]
    if not rows:
        return pd.DataFrame(columns=["tag", "ts", "value", "quality"])
    points = pd.concat(rows, ignore_index=True)
    store = raw_store(settings)
    have = {s for s, _ in store.partitions()}
    w = pd.Timedelta(seconds=window_s)
    parts = []
    for station, group in points.groupby(points["asset"].str.split(".").str[0]):
        if station not in have:
            continue
        tags = [f"{a}.{m}" for a in sorted(set(group["asset"])) for m in ONLINE_MEASURES]
        for start, end in _clusters(list(group["ts"]), 2 * w):
            parts.append(store.read([str(station)], start - w, end + w + pd.Timedelta(1), tags=tags))
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["tag", "ts", "value", "quality"])


def check_sensors(settings: Settings, frames: RouteBatch | Mapping[RouteKind, pd.DataFrame]) -> list[SensorFlag]:
    """Sensor flags of route readings against the raw store (the inspection settings' tolerances)."""
    by_kind = frames.frames() if isinstance(frames, RouteBatch) else dict(frames)
    online = online_around(settings, by_kind)
    return sensor_flags(
        by_kind,
        online,
        vibration_tolerance=settings.inspection.vibration_tolerance,
        temperature_tolerance_k=settings.inspection.temperature_tolerance_k,
    )


def batch_flags(settings: Settings, admission: Admission) -> list[SensorFlag]:
    """Sensor flags of every reading the run's files held."""
    return [f for b in admission.batches for f in check_sensors(settings, b)]


@dataclass(frozen=True)
class Fusion:
    """Route evidence fused into a twin state.

    Attributes:
        state: The state with the route evidence (the state given when the store is empty).
        evidence: Route evidence of the latest visits.
        flags: Sensor flags of the latest visits.
    """

    state: TwinState
    evidence: RouteEvidence
    flags: tuple[SensorFlag, ...]


def fuse_stored_routes(settings: Settings, state: TwinState, *, previous: TwinState | None = None) -> Fusion:
    """Fuse the stored route records (latest visits within ``max_interval_days`` of ``state.ts``) into ``state``.

    Args:
        settings: The settings of this entry point.
        state: The twin state.
        previous: An earlier state whose route alerts' ``since`` carry over.

    Returns:
        The fused state, the evidence and the sensor flags; ``state`` itself when no route was ever stored.
    """
    store = route_store(settings)
    if not store.root.is_dir():
        return Fusion(state, RouteEvidence(), ())
    max_age = settings.inspection.max_interval_days
    since = state.ts - pd.Timedelta(days=max_age)
    visits = latest_visits(store.frames(since), state.ts, max_age)
    evidence = route_evidence(visits, state.ts, max_age)
    flags = tuple(check_sensors(settings, visits))
    return Fusion(fuse(state, evidence, flags, previous=previous), evidence, flags)


def save_state(settings: Settings, state: TwinState) -> dict[str, Path]:
    """Write the twin state and its markdown where `flows.twin_store` finds them."""
    paths = state_paths(settings)
    write_state(state, paths["state"])
    paths["state_md"].write_text(state.to_markdown(), encoding="utf-8")
    return {"state": paths["state"], "state_md": paths["state_md"]}


def fuse_saved_state(settings: Settings) -> Fusion | None:
    """Fuse the stored route records into the saved twin state and save it (None before the first synchronisation)."""
    _, state = load_twin(settings)
    if state is None:
        return None
    fusion = fuse_stored_routes(settings, state)
    save_state(settings, fusion.state)
    return fusion


# --------------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------------


def _fmt(x: float) -> str:
    return "-" if not math.isfinite(x) else f"{x:.3g}"


def flags_markdown(flags: Iterable[SensorFlag]) -> list[str]:
    """Sensor flags as a markdown table (lines)."""
    rows = list(flags)
    if not rows:
        return ["No sensor flags: the online tags agree with the route readings."]
    out = ["| asset | tag | route | online | time | reason |", "|---|---|---:|---:|---|---|"]
    out += [
        f"| {f.asset} | {f.tag} | {_fmt(f.route_value)} | {_fmt(f.online_value)} | {f.ts.isoformat()} | {f.reason} |"
        for f in rows
    ]
    return out


def findings_markdown(fusion: Fusion) -> list[str]:
    """Route findings per asset (graded evidence, its time and file) and the asset's status, as markdown lines."""
    ev = fusion.evidence
    if not ev.details:
        return ["No route evidence within the evidence age."]
    out = ["| asset | evidence | grade | status | seen | file | what |", "|---|---|---:|---|---|---|---|"]
    for asset in sorted(ev.details):
        status = next((h.status for h in fusion.state.health if h.asset == asset), "-")
        for key, detail in sorted(ev.details[asset].items()):
            out.append(
                f"| {asset} | {key} | {_fmt(ev.values[asset][key])} | {status} | "
                f"{ev.times[asset][key].isoformat()} | {ev.sources[asset][key]} | {shorten(detail, 120)} |"
            )
    return out


def inspection_markdown(admission: Admission, flags: Sequence[SensorFlag], fusion: Fusion | None) -> str:
    """The inspection-ingest artifact: files, rows stored, quarantine with reasons, sensor flags, route findings."""
    out = ["# Route data", ""]
    if not admission.files:
        out.append("No route files waiting.")
    else:
        out += [
            f"{len(admission.files)} files, {admission.stored} rows stored, {admission.quarantined} quarantined.",
            "",
            "| file | kind | rows | stored | quarantined | outcome |",
            "|---|---|---:|---:|---:|---|",
        ]
        for f in admission.files:
            outcome = f"refused: {shorten(f.error, 160)}" if f.error else f"moved to `{f.moved_to}`"
            out.append(f"| {f.name} | {f.kind or '-'} | {f.rows} | {f.stored} | {f.quarantined} | {outcome} |")
        reasons = [(f, r, n) for f in admission.files for r, n in sorted(f.reasons.items())]
        if reasons:
            out += ["", "## Quarantined rows", "", "| file | reason | rows |", "|---|---|---:|"]
            out += [f"| {f.name} | {r} | {n} |" for f, r, n in reasons]
            out += [f"- rows of {f.name}: `{f.rows_file}`" for f in admission.files if f.rows_file is not None]
    out += ["", "## Sensor flags", "", *flags_markdown(flags)]
    out += ["", "## Route findings", ""]
    if fusion is None:
        out.append("No twin state yet: the route evidence is stored and fused at the next synchronisation.")
    else:
        out += findings_markdown(fusion)
        alerts = [a for a in fusion.state.alerts if a.model_version.startswith("route:")]
        if alerts:
            out += ["", *[f"- {a.message()}; {a.detail}" for a in alerts]]
    return "\n".join(out) + "\n"


def _s(n: int) -> str:
    """The plural ending of a count."""
    return "" if n == 1 else "s"


def summary_line(admission: Admission, flags: Sequence[SensorFlag], fusion: Fusion | None) -> str:
    """One line for the log."""
    fused = "no twin state to fuse into" if fusion is None else "fused into the twin state"
    return (
        f"{len(admission.files)} route file{_s(len(admission.files))}: {admission.stored} rows stored, "
        f"{admission.quarantined} quarantined, {len(flags)} sensor flag{_s(len(flags))}; {fused}"
    )


# --------------------------------------------------------------------------------------------
# The week's round
# --------------------------------------------------------------------------------------------


def round_key(now: pd.Timestamp) -> str:
    """Artifact key and file stem of the round of ``now``'s ISO week (``round-2026-w49``)."""
    iso = to_utc(now, what="round time").isocalendar()
    return f"round-{iso.year}-w{iso.week:02d}"


def planner_settings(settings: Settings) -> PlannerSettings:
    """The planner's budget and costs from the inspection settings."""
    ins = settings.inspection
    return PlannerSettings(
        budget_h=ins.round_budget_h,
        max_interval_days=ins.max_interval_days,
        visit_hours=ins.visit_hours,
        travel_hours=ins.travel_hours,
        escalation=ins.escalation,
        seen_half_life_days=ins.seen_half_life_days,
    )


@dataclass(frozen=True)
class RoundReport:
    """The week's round and where it was written.

    Attributes:
        key: ``round-<ISO year>-w<ISO week>``.
        plan: The round.
        conditions: The planner's input, one row per pump.
        flags: Sensor flags of the latest route visits.
        paths: Files written (``csv``: the visits, ``covered``: the assets left to the twin, ``markdown``,
            ``seen``: the planner's memory).
        state_ts: Time of the twin state planned on (None: no state yet, routes and registry only).
    """

    key: str
    plan: RoundPlan
    conditions: pd.DataFrame
    flags: tuple[SensorFlag, ...]
    paths: dict[str, Path]
    state_ts: pd.Timestamp | None

    def to_markdown(self) -> str:
        """The round artifact: the plan, then the sensor flags behind it."""
        basis = f"twin state of {self.state_ts.isoformat()}" if self.state_ts is not None else "no twin state yet"
        out = [f"# Inspection round {self.key}", "", f"- planned on the {basis}"]
        out += [f"- {kind}: `{path}`" for kind, path in self.paths.items()]
        out += ["", self.plan.to_markdown().rstrip(), "", "## Sensor flags", "", *flags_markdown(self.flags)]
        return "\n".join(out) + "\n"


SEEN_FILE = "seen.json"
"""The planner's memory of what routes have seen, in the rounds folder."""


def load_seen(settings: Settings) -> SeenMemory:
    """The planner's memory (empty before the first round; an unreadable file is set aside with a warning)."""
    path = rounds_dir(settings) / SEEN_FILE
    if not path.is_file():
        return SeenMemory()
    try:
        return SeenMemory.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, PlannerError) as exc:
        aside = path.with_name(f"{SEEN_FILE}.unreadable")
        os.replace(path, aside)
        _LOG.warning("planner memory %s unreadable (%s); moved to %s, planning without it", path, exc, aside.name)
        return SeenMemory()


def save_seen(settings: Settings, memory: SeenMemory) -> Path:
    """Write the planner's memory whole (a temporary file, then a rename)."""
    path = rounds_dir(settings) / SEEN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{SEEN_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(memory.to_dict(), indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)
    return path


def plan_week(settings: Settings, now: pd.Timestamp | str | None = None) -> RoundReport:
    """Plan this week's round on the twin state fused with the stored routes, and write it under ``rounds/``.

    Args:
        settings: The settings of this entry point.
        now: Time of the plan (UTC); default the wall clock.

    Returns:
        The round, its conditions and the files written.
    """
    ts = utc_now() if now is None else to_utc(now, what="now")
    _, saved = load_twin(settings)
    fusion = fuse_stored_routes(settings, saved if saved is not None else TwinState(ts, ()))
    store = route_store(settings)
    visits = store.last_visits() if store.root.is_dir() else {}
    memory = load_seen(settings).confirmed(visits)
    planner = planner_settings(settings)
    conditions = conditions_from_state(
        fusion.state, fleet(settings), visits, fusion.flags, ts, settings=planner, seen=memory.seen
    )
    plan = plan_round(conditions, ts, planner)
    key = round_key(ts)
    folder = rounds_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"csv": folder / f"{key}.csv", "covered": folder / f"{key}-covered.csv", "markdown": folder / f"{key}.md"}
    plan.visits.to_csv(paths["csv"], index=False)
    plan.covered.to_csv(paths["covered"], index=False)
    report = RoundReport(key, plan, conditions, fusion.flags, paths, saved.ts if saved is not None else None)
    paths["markdown"].write_text(report.to_markdown(), encoding="utf-8")
    paths["seen"] = save_seen(settings, memory.after_plan(conditions, plan))
    return report
