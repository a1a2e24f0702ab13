"""The Prefect ``cycle`` flow: one hourly cycle of the fleet, spread over stations and lines.

Deployed from ``prefect.yaml`` through ``flows/cycle.py:hourly_cycle`` (five past each hour, over the last
full hour, on the settings' task runner). Over the window [start, end):

1. ingest and validate, one task per group of stations (`flows.cycle_steps.ingest_stations`: the
   per-station files of an operator's historian export, or ``pi:<station>.*`` per station);
2. features, one task per group of stations (`station_features`), then one check, write and
   materialisation into the feature store (`store_cycle_features`);
3. scores, one task per group of pumps (`score_group`), then one write of the fleet's scores;
4. the twin's synchronisation up to the window's end (`sync_fleet`);
5. for each line with an alert: its candidate responses (what-ifs, one task per line) and the
   recommendation (`recommend_for_lines`: one task per line with a Qdrant server, one for all
   lines on a local knowledge folder, which takes one client at a time).

The task runner is not fixed here: `flows.runner.with_runner` applies the settings' runner
(threads, or Prefect's Dask task runner on a local or remote cluster). Every task takes picklable
arguments only and opens its own stores. Each stage's wall time is returned and published in the
``cycle`` artifact. A window already completed is not run again (the run returns its record)
unless ``force``; every stage is idempotent either way (see `flows.cycle_steps`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

import pandas as pd
from prefect import Task, flow, get_run_logger, task, unmapped
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from pumptwin.flows.cycle_steps import (
    fleet_pumps,
    ingest_stations,
    line_scenarios,
    pumps_by_station,
    raw_stations,
    read_cycle,
    recommend_for_lines,
    record_cycle,
    score_group,
    split,
    station_features,
    station_sources,
    store_cycle_features,
    sync_fleet,
    window_key,
    write_cycle_scores,
)
from pumptwin.flows.settings import get_settings
from pumptwin.flows.twin_sync_steps import DEFAULT_HISTORY_S, DEFAULT_WINDOW_S
from pumptwin.twin.assets import LINE_PREFIX
from pumptwin.twin.times import to_utc

P = ParamSpec("P")
R = TypeVar("R")

GROUPS_PER_WORKER = 4
"""Groups of stations (or pumps) per worker of the runner: enough to balance, few enough to keep overheads small."""
STAGES = ("ingest", "features", "score", "twin_sync", "respond")
"""The cycle's stages, in order, as named in its timings."""
RETRIES = 2
"""Retries of a failed task (every step is idempotent for its window)."""


def _task(name: str) -> Callable[[Callable[P, R]], Task[P, R]]:
    """A task of the cycle: retried, never cached (a forced re-run redoes the work; frames are not hashed)."""
    return task(name=name, retries=RETRIES, retry_delay_seconds=1, cache_policy=NO_CACHE)


ingest_task = _task("ingest-stations")(ingest_stations)
features_task = _task("station-features")(station_features)
store_features_task = _task("store-features")(store_cycle_features)
score_task = _task("score-pumps")(score_group)
write_scores_task = _task("write-scores")(write_cycle_scores)
sync_task = _task("sync-twin")(sync_fleet)
scenarios_task = _task("line-scenarios")(line_scenarios)
recommend_task = _task("recommend-lines")(recommend_for_lines)


def _markdown(summary: dict[str, Any]) -> str:
    rows = [f"| {stage} | {summary['seconds'][stage]:.2f} |" for stage in (*STAGES, "total")]
    return "\n".join(
        [
            f"# Cycle {summary['window']}",
            "",
            f"- readings stored: {summary['ingest']['stored']:,} of {summary['ingest']['rows_in']:,}"
            f" (quarantined {summary['ingest']['rejected']:,})",
            f"- feature rows stored: {summary['features']['stored']:,} for {summary['features']['pumps']} pumps",
            f"- pumps scored: {summary['score']['pumps']}, in alarm: {summary['score']['alarms']}",
            f"- twin: {summary['twin']['message']}",
            f"- assets on alert: {len(summary['twin']['assets_on_alert'])}, lines: {summary['twin']['lines_on_alert']}",
            f"- recommendations: {len(summary['recommendations'])}",
            "",
            "| stage | s |",
            "|---|---:|",
            *rows,
        ]
    )


@flow(name="cycle")
def cycle(  # noqa: PLR0913 - the knobs of one cycle
    source: str,
    start: datetime,
    end: datetime | None = None,
    force: bool = False,
    search: bool = True,
    plots: bool = False,
    groups: int | None = None,
) -> dict[str, Any]:
    """Run one cycle over [start, end): ingest, features, scores, the twin, responses to its alerts.

    Args:
        source: A folder of per-station files (historian export), a file, ``pi:`` (every station
            of the raw store) or ``simulator:SCENARIO``.
        start: Start of the window (UTC).
        end: End of the window (UTC, exclusive); default one hour after ``start``.
        force: Run again a window already completed (every stage is idempotent).
        search: Let the recommender search continuous pump speeds.
        plots: Draw the what-ifs' and recommendations' plots.
        groups: Groups of stations or pumps per stage; default 4 per worker of the runner.
    """
    settings = get_settings()
    first = to_utc(start)
    last = to_utc(end) if end is not None else first + pd.Timedelta(hours=1)
    key = window_key(first, last)
    logger = get_run_logger()
    done = read_cycle(settings, key)
    if done is not None and not force:
        logger.info("cycle %s already completed: nothing to do", key)
        return {**done, "skipped": True}
    parts = groups or GROUPS_PER_WORKER * settings.runner.workers
    seconds: dict[str, float] = {}
    t0 = t = time.perf_counter()

    sources = station_sources(source, settings)
    ingested = ingest_task.map(unmapped(settings), split(sources, parts), unmapped(first), unmapped(last)).result()
    ingest = {k: sum(r[k] for r in ingested) for k in ("rows_in", "stored", "duplicates", "rejected")}
    seconds["ingest"], t = time.perf_counter() - t, time.perf_counter()

    fleet = raw_stations(settings)
    stations = [s for s in fleet if not s.startswith(LINE_PREFIX)]
    feature_parts = features_task.map(
        unmapped(settings), split(stations, parts), unmapped(fleet), unmapped(first), unmapped(last)
    ).result()
    features = store_features_task.submit(settings, feature_parts).result()
    seconds["features"], t = time.perf_counter() - t, time.perf_counter()

    pumps = fleet_pumps(settings, last)
    scored = score_task.map(unmapped(settings), pumps_by_station(pumps, parts), unmapped(last)).result()
    score = write_scores_task.submit(settings, scored).result()
    seconds["score"], t = time.perf_counter() - t, time.perf_counter()

    twin = sync_task.submit(settings, last, DEFAULT_WINDOW_S, DEFAULT_HISTORY_S).result()
    seconds["twin_sync"], t = time.perf_counter() - t, time.perf_counter()

    lines = list(twin["lines_on_alert"])
    scenarios = scenarios_task.map(unmapped(settings), lines, unmapped(key), unmapped(plots)).result() if lines else []
    per_line = settings.agents.qdrant_url is not None  # a server takes many clients; a local folder one
    batches = [[line] for line in lines] if per_line else ([lines] if lines else [])
    recommended = recommend_task.map(
        unmapped(settings), batches, unmapped(key), unmapped(search), unmapped(plots)
    ).result()
    seconds["respond"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t0

    summary = {
        "window": key,
        "start": first.isoformat(),
        "end": last.isoformat(),
        "runner": settings.runner.kind,
        "groups": parts,
        "stations": len(stations),
        "ingest": ingest,
        "features": features,
        "score": score,
        "twin": twin,
        "scenarios": scenarios,
        "recommendations": [r for batch in recommended for r in batch],
        "seconds": seconds,
        "skipped": False,
    }
    record_cycle(settings, key, summary)
    create_markdown_artifact(key="cycle", markdown=_markdown(summary), description=f"cycle {key}")
    logger.info("cycle %s in %.1f s: %s", key, seconds["total"], {k: round(v, 1) for k, v in seconds.items()})
    return summary


def last_full_hour(now: datetime | pd.Timestamp | None = None) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The last hour that has ended by ``now`` (default the wall clock): [start, end) on whole hours, UTC."""
    wall = to_utc(now) if now is not None else pd.Timestamp.now(tz="UTC")
    end = wall.floor("h")
    return end - pd.Timedelta(hours=1), end


@flow(name="hourly-cycle")
def hourly_cycle(
    source: str = "pi:", start: datetime | None = None, force: bool = False, search: bool = True
) -> dict[str, Any]:
    """Run `cycle` on the task runner of the settings over one hour (default the last full hour).

    The entry point of the hourly deployment: the runner (threads, or Dask by address or a local
    cluster) is chosen here, from ``PUMPTWIN_RUNNER_*``, when the run starts, and the cycle runs as
    its subflow.

    Args:
        source: What `cycle` ingests (``pi:`` reads every station of the raw store from the historian).
        start: Start of the hour (UTC); default the last full hour.
        force: Run again an hour already completed.
        search: Let the recommender search continuous pump speeds.
    """
    from pumptwin.flows.runner import with_runner

    first, last = last_full_hour() if start is None else (to_utc(start), to_utc(start) + pd.Timedelta(hours=1))
    on_runner = with_runner(cycle, get_settings())
    return on_runner(source=source, start=first.to_pydatetime(), end=last.to_pydatetime(), force=force, search=search)
