"""The steps of one hourly cycle, split by station and by line so a task runner can spread them.

Plain functions of picklable arguments (the settings, strings, timestamps, DataFrames): every step
opens its own raw store, feature store, model registry or knowledge store, so the steps run as
well in a thread of the flow's process as in a Dask worker on another machine. The Prefect flow
``cycle`` (`flows.cycle`) wires them; each step reuses the existing steps of ingestion
(`flows.ingest_steps.read_source` / `store_source`), features (`features.transforms.build.pump_features`,
`flows.build_features_steps.store_features`), scoring (the helpers of `flows.score_steps`), the
twin (`flows.twin_sync_steps.sync_twin`), the what-ifs (`flows.what_if_steps.run_whatif`) and the
recommender (`flows.recommend_steps`).

Every step is idempotent for its window: the raw store keeps one row per (tag, ts), a feature
window replaces the stored rows of its pumps, score history keeps one row per (asset, time), the
twin folds only readings after its calibration, and the scenarios and recommendations of a window
go to folders named by the window (``<whatif_dir>/cycle-<window>/line<n>/``,
``<recommend_dir>/cycle-<window>/line<n>/``) with a ``done.json`` written last, so a re-run (or a
task retried after its worker died) redoes unfinished work and never doubles finished work.
A completed cycle is recorded in ``<state_dir>/cycles/<window>.json`` (`record_cycle`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pumptwin.features.ingest.rawstore import RawStore
from pumptwin.features.ingest.sources import SourceResult
from pumptwin.flows.build_features_steps import FeatureBuild, save_baselines, store_features
from pumptwin.flows.ingest_steps import PI, SIMULATOR, PathSource, read_source, store_source
from pumptwin.flows.settings import Settings
from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.times import to_utc

CYCLES_FOLDER = "cycles"
"""Folder under the state folder where completed cycles are recorded."""
DONE_FILE = "done.json"
"""Written last into a line's scenario or recommendation folder: the line is finished for the window."""
SOURCE_SUFFIXES = (".csv", ".parquet", ".pq")
"""Files of a per-station export folder that are read."""


class CycleError(PumptwinError, ValueError):
    """A cycle window or source that cannot be run; the message names it."""


def window_key(start: datetime | pd.Timestamp | str, end: datetime | pd.Timestamp | str) -> str:
    """The window's name in file names, e.g. ``20240303T000000Z-20240303T010000Z``.

    Raises:
        CycleError: An empty or reversed window.
    """
    first, last = to_utc(start), to_utc(end)
    if not last > first:
        raise CycleError(f"cycle window must end after it starts, got {first} .. {last}")
    return f"{first:%Y%m%dT%H%M%S}Z-{last:%Y%m%dT%H%M%S}Z"


def split(items: Sequence[Any], parts: int) -> list[list[Any]]:
    """``items`` in at most ``parts`` contiguous groups of near-equal size (none empty), order kept.

    Args:
        items: What to split (stations, pumps, lines).
        parts: Most groups wanted (>= 1).
    """
    if parts < 1:
        raise CycleError(f"parts must be >= 1, got {parts}")
    n = min(parts, len(items))
    if n == 0:
        return []
    bounds = np.linspace(0, len(items), n + 1).round().astype(int)
    return [list(items[bounds[i] : bounds[i + 1]]) for i in range(n)]


def station_sources(source: str, settings: Settings) -> list[str]:
    """The per-station sources of a cycle's source, one per station the source holds.

    - a folder: its data files (an operator's historian export, one file per station, e.g.
      ``PS01.parquet``, ``LINE01.csv``), by name;
    - ``pi:`` or ``pi:*``: ``pi:<station>.*`` for every station the raw store holds;
    - anything else (one file, a ``simulator:`` scenario, a ``pi:`` filter): the source itself.

    Raises:
        CycleError: A folder without data files.
    """
    if source.startswith(SIMULATOR):
        return [source]
    if source.startswith(PI):
        if source.removeprefix(PI) not in ("", "*"):
            return [source]
        stations = sorted({s for s, _ in RawStore(settings.raw_dir).partitions()})
        return [f"{PI}{s}.*" for s in stations]
    path = Path(source)
    if path.is_dir():
        files = sorted(
            p for p in path.iterdir() if p.is_file() and p.suffix in SOURCE_SUFFIXES and not p.name.startswith(".")
        )
        if not files:
            raise CycleError(f"source folder {path} holds no {'/'.join(SOURCE_SUFFIXES)} files")
        return [str(p) for p in files]
    return [source]


@dataclass(frozen=True)
class StationFiles(PathSource):
    """Several station files read as one source, chunk by chunk and file by file (see `PathSource`).

    Attributes:
        paths: The files, in the order read.
    """

    paths: tuple[Path, ...] = field(default=())

    @property
    def source(self) -> str:
        """The source's name: its folder and the files' names."""
        names = ",".join(p.name for p in self.paths)
        return f"{self.path}/{{{names}}}" if len(self.paths) > 1 else str(self.paths[0] if self.paths else self.path)

    def chunks(self) -> Iterator[SourceResult]:
        """The readings of every file in [start, end), small files joined into chunks of up to ``chunk_readings``.

        Each reading keeps the file it came from (``origin``), so quarantined rows still name their file.
        """
        held: list[SourceResult] = []
        size = 0
        for p in self.paths:
            for chunk in PathSource(p, self.start, self.end, self.chunk_readings).chunks():
                if held and size + len(chunk.readings) > self.chunk_readings:
                    yield join_chunks(held, self.source)
                    held, size = [], 0
                held.append(chunk)
                size += len(chunk.readings)
        if held:
            yield join_chunks(held, self.source)


def join_chunks(chunks: Sequence[SourceResult], source: str) -> SourceResult:
    """One chunk of several (of different files): readings, rejected rows and problems together, origins kept."""
    if len(chunks) == 1:
        return chunks[0]
    readings = pd.concat([c.readings for c in chunks], ignore_index=True)
    origin = pd.concat(
        [
            c.origin.reset_index(drop=True)
            if c.origin is not None
            else pd.Series(c.source, index=range(len(c.readings)), dtype=object)
            for c in chunks
        ],
        ignore_index=True,
    )
    rejected = pd.concat([c.rejected for c in chunks if len(c.rejected)] or [chunks[0].rejected], ignore_index=True)
    problems = tuple(p for c in chunks for p in c.problems)
    return SourceResult(readings, rejected, problems, source, origin)


def ingest_stations(
    settings: Settings,
    sources: Sequence[str],
    start: datetime | pd.Timestamp,
    end: datetime | pd.Timestamp,
    now: pd.Timestamp | None = None,
) -> dict[str, Any]:
    """Read, validate and store the readings of some stations over [start, end).

    Each source is read with `read_source`; the files among them are validated and stored as one
    source by `store_source` (one validation, one store pass), the others one by one.

    Args:
        settings: The settings of the cycle.
        sources: Per-station sources (`station_sources`).
        start: Start of the window (UTC).
        end: End of the window (UTC, exclusive).
        now: The wall clock of the freshness check; default the current time.

    Returns:
        The summaries' counts (``rows_in``, ``stored``, ``duplicates``, ``rejected``, ``quarantined_files``,
        ``stations``), added up.
    """
    results = [read_source(s, settings, start, end) for s in sources]
    files = [r for r in results if isinstance(r, PathSource)]
    others: list[SourceResult | PathSource] = [r for r in results if not isinstance(r, PathSource)]
    if files:
        chunk = settings.ingest.chunk_readings
        paths = tuple(f.path for f in files)
        others.append(StationFiles(paths[0].parent, to_utc(start), to_utc(end), chunk, paths))
    totals: dict[str, Any] = {"rows_in": 0, "stored": 0, "duplicates": 0, "rejected": 0, "quarantine_files": []}
    stations: set[str] = set()
    for result in others:
        summary = store_source(result, settings, now=now).summary
        totals["rows_in"] += summary.rows_in
        totals["stored"] += summary.stored
        totals["duplicates"] += summary.duplicates
        totals["rejected"] += summary.rejected
        totals["quarantine_files"] += list(summary.quarantine_files)
        stations |= set(summary.per_station)
    totals["stations"] = sorted(stations)
    return totals


def raw_stations(settings: Settings) -> list[str]:
    """Stations (and line meters) the raw store holds, sorted."""
    return sorted({s for s, _ in RawStore(settings.raw_dir).partitions()})


def station_features(
    settings: Settings,
    stations: Sequence[str],
    fleet: Sequence[str],
    start: datetime | pd.Timestamp,
    end: datetime | pd.Timestamp,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-pump features of some stations' pumps over [start, end), as `compute_features` builds them.

    Readings are read from one long window before ``start``. Pumps without a stored vibration
    reference get one fitted on these readings; it is returned, not written (`store_cycle_features`
    writes the fleet's once).

    Args:
        settings: The settings of the cycle.
        stations: The stations whose pumps are featured.
        fleet: Every station of the fleet (sizes the registry).
        start: First feature timestamp (UTC).
        end: End of the window (UTC, exclusive).

    Returns:
        The feature rows inside the window, and the newly fitted vibration references (maybe empty).
    """
    from pumptwin.flows.build_features_steps import features_and_new_baselines, fleet_registry
    from pumptwin.twin.hydraulic.io import load_network

    first, last = to_utc(start), to_utc(end)
    long_window = pd.Timedelta(seconds=settings.models.long_window_s)
    readings = RawStore(settings.raw_dir).read(list(stations), first - long_window, last)
    network = load_network(settings.twin.network)
    frame, fitted = features_and_new_baselines(settings, readings, fleet_registry(settings, list(fleet)), network)
    frame = frame[(frame["event_timestamp"] >= first) & (frame["event_timestamp"] < last)]
    return frame.reset_index(drop=True), fitted


def store_cycle_features(settings: Settings, parts: Sequence[tuple[pd.DataFrame, pd.DataFrame]]) -> dict[str, Any]:
    """Write the stations' features once: new vibration references, then check, store and materialise.

    Args:
        settings: The settings of the cycle.
        parts: What `station_features` returned per group of stations.

    Returns:
        ``rows``, ``stored``, ``quarantined``, ``pumps`` and the window written (ISO strings or None).
    """
    save_baselines(settings, [f for _, f in parts])
    frames = [f for f, _ in parts if len(f)]
    frame = pd.concat(frames, ignore_index=True) if frames else (parts[0][0] if parts else pd.DataFrame())
    if frame.empty:
        return {"rows": 0, "stored": 0, "quarantined": 0, "pumps": 0, "start": None, "end": None}
    frame = frame.sort_values(["pump_id", "event_timestamp"], kind="stable").reset_index(drop=True)
    build: FeatureBuild = store_features(settings, frame)
    return build.summary()


def fleet_pumps(settings: Settings, end: datetime | pd.Timestamp) -> list[str]:
    """Pumps with feature rows in the scoring history before ``end``, sorted."""
    from pumptwin.flows.score_steps import _recent_history

    history = _recent_history(settings, to_utc(end))
    return [] if history.empty else sorted(history["pump_id"].unique())


def station_of(asset: str) -> str:
    """The station of a pump (``PS01`` of ``PS01.P2``)."""
    return asset.split(".", 1)[0]


def pumps_by_station(pumps: Sequence[str], parts: int) -> list[list[str]]:
    """``pumps`` in at most ``parts`` groups of whole stations (the detector compares a pump with its sisters)."""
    stations: dict[str, list[str]] = {}
    for pump in sorted(pumps):
        stations.setdefault(station_of(pump), []).append(pump)
    return [[p for station in group for p in stations[station]] for group in split(sorted(stations), parts)]


def score_group(settings: Settings, pumps: Sequence[str], now: datetime | pd.Timestamp) -> pd.DataFrame:
    """Score a group of whole stations' pumps as `flows.score_steps.score_fleet` does; nothing is written.

    Args:
        settings: The settings of the cycle.
        pumps: The pumps to score (every pump of their stations: `pumps_by_station`).
        now: Newest feature time to score at (UTC).

    Returns:
        One row per pump (see `flows.score_steps.score_pumps`); empty without features or champions
        (`write_cycle_scores` writes the fleet's).
    """
    from pumptwin.flows.score_steps import score_pumps

    if not pumps:
        return pd.DataFrame()
    out, versions = score_pumps(settings, to_utc(now), pumps)
    return out if versions else pd.DataFrame()


def write_cycle_scores(settings: Settings, parts: Sequence[pd.DataFrame]) -> dict[str, Any]:
    """Write the fleet's scores once (latest file and history, `flows.score_steps.write_scores`).

    Returns:
        ``pumps``, ``alarms`` (pumps in alarm), ``assets_on_alarm`` and ``path`` (None when nothing was scored).
    """
    from pumptwin.flows.score_steps import write_scores

    frames = [p for p in parts if len(p)]
    if not frames:
        return {"pumps": 0, "alarms": 0, "assets_on_alarm": [], "path": None}
    scores = pd.concat(frames, ignore_index=True).sort_values("asset", kind="stable").reset_index(drop=True)
    path = write_scores(settings, scores)
    alarmed = scores.loc[scores["alarm"].fillna(False).astype(bool), "asset"] if "alarm" in scores else []
    return {"pumps": len(scores), "alarms": len(alarmed), "assets_on_alarm": sorted(alarmed), "path": str(path)}


def sync_fleet(settings: Settings, end: datetime | pd.Timestamp, window_s: float, history_s: float) -> dict[str, Any]:
    """Fold the readings up to ``end`` into the twin (`sync_twin`) and name the lines and assets on alert.

    Returns:
        ``updated``, ``message``, ``readings``, ``alerts`` (count), ``assets_on_alert`` and ``lines_on_alert``.
    """
    from pumptwin.flows.twin_sync_steps import sync_twin
    from pumptwin.twin.sync import alerted_assets, alerted_lines

    report = sync_twin(settings, now=to_utc(end), window_s=window_s, history_s=history_s)
    state, registry = report.state, report.registry
    assets: list[str] = []
    lines: list[int] = []
    if state is not None and registry is not None and state.alerts:
        assets, lines = sorted(alerted_assets(state)), alerted_lines(state, registry)
    return {
        "updated": report.updated,
        "message": report.message,
        "readings": report.readings,
        "alerts": len(state.alerts) if state is not None else 0,
        "assets_on_alert": assets,
        "lines_on_alert": lines,
    }


def _done(folder: Path) -> dict[str, Any] | None:
    path = folder / DONE_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _mark_done(folder: Path, record: dict[str, Any]) -> dict[str, Any]:
    tmp = folder / f".{DONE_FILE}.tmp"
    tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")
    os.replace(tmp, folder / DONE_FILE)
    return record


def cycle_folder(parent: Path, key: str) -> Path:
    """The folder of a window's per-line results under ``parent`` (``<parent>/cycle-<key>``)."""
    return parent / f"cycle-{key}"


def line_scenarios(settings: Settings, line: int, key: str, plots: bool = False) -> dict[str, Any]:
    """Evaluate the candidate responses of one alerted line on the calibrated twin (`run_whatif`).

    Written to ``<whatif_dir>/cycle-<key>/line<n>/``; a line already done for the window is not redone.

    Returns:
        ``line``, ``scenarios``, ``folder`` and ``skipped`` (True when it was already done).
    """
    from pumptwin.flows.twin_store import lines_registry, load_twin
    from pumptwin.flows.what_if_steps import run_whatif
    from pumptwin.twin.hydraulic.io import load_network
    from pumptwin.twin.sync import candidate_responses, operating_network

    folder = cycle_folder(settings.whatif_dir, key) / f"line{line}"
    done = _done(folder)
    if done is not None:
        return {**done, "skipped": True}
    cal, state = load_twin(settings)
    if cal is None or state is None:
        return {"line": line, "scenarios": 0, "folder": None, "skipped": False}
    network = load_network(settings.twin.network)
    registry = lines_registry(settings.twin.network, max(cal.lines, default=1))
    current = operating_network(network, cal, line)
    specs = candidate_responses(state, registry, current, line)
    folder.mkdir(parents=True, exist_ok=True)
    run = run_whatif(settings, specs, line=line, out=folder, plots=plots)
    record = {"line": line, "scenarios": len(run.report.outcomes), "folder": str(folder)}
    return {**_mark_done(folder, record), "skipped": False}


def recommend_for_lines(
    settings: Settings, lines: Sequence[int], key: str, search: bool = True, plots: bool = False
) -> list[dict[str, Any]]:
    """Recommend an action for each of ``lines`` from the saved twin state, as `recommend_lines` does.

    One knowledge store is opened for all of them (a local Qdrant folder takes one client at a
    time). Each line's files go to ``<recommend_dir>/cycle-<key>/line<n>/``; a line already done for
    the window is not redone.

    Returns:
        Per line: ``line``, ``action``, ``generator``, ``folder`` and ``skipped``.
    """
    from pumptwin.flows.recommend_steps import (
        LineRecommendation,
        generator,
        knowledge_or_unavailable,
        recommend_line,
        twin_view,
        write_recommendation,
    )
    from pumptwin.flows.twin_store import load_twin

    parent = cycle_folder(settings.recommend_dir, key)
    out: list[dict[str, Any]] = []
    todo = []
    for line in lines:
        done = _done(parent / f"line{line}")
        if done is not None:
            out.append({**done, "skipped": True})
        else:
            todo.append(line)
    if not todo:
        return out
    cal, state = load_twin(settings)
    if state is None:
        return out
    kb = knowledge_or_unavailable(settings)
    gen = generator(settings)
    for line in todo:
        view = twin_view(settings, cal, line)
        run = recommend_line(settings, state, view, kb, gen, search=search)
        folder = parent / f"line{line}"
        write_recommendation(LineRecommendation(line, run), view, folder, plots=plots)
        rec = run.recommendation
        record = {"line": line, "action": rec.chosen.name, "generator": rec.generator, "folder": str(folder)}
        out.append({**_mark_done(folder, record), "skipped": False})
    return sorted(out, key=lambda r: int(r["line"]))


def cycle_record_path(settings: Settings, key: str) -> Path:
    """Where a completed cycle of window ``key`` is recorded."""
    return settings.state_dir / CYCLES_FOLDER / f"{key}.json"


def read_cycle(settings: Settings, key: str) -> dict[str, Any] | None:
    """The record of a completed cycle of window ``key`` (None when it has not completed)."""
    path = cycle_record_path(settings, key)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def record_cycle(settings: Settings, key: str, summary: dict[str, Any]) -> Path:
    """Record a completed cycle (atomically): a later run of the same window finds it done."""
    path = cycle_record_path(settings, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(summary, indent=1, default=_jsonable), encoding="utf-8")
    os.replace(tmp, path)
    return path


def _jsonable(value: Any) -> Any:  # noqa: ANN401 - json's default hook
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
