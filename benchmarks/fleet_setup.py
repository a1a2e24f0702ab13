"""Setup of the fleet benchmark: a simulated fleet with its history ingested, featured, trained and synchronised.

`prepare` builds one fleet of ``lines`` copies of the reference pipeline (2 stations x 3 pumps per
line) in a fresh home folder, as an operator's plant would look just before an hourly cycle:

1. the plant simulates ``history_s`` of history plus the cycle's hour at 60 s steps, with pump
   faults on some lines (`fleet_faults`): some fail inside the history (labels for diagnosis and
   time to failure), the others are still developing at the cycle's hour (assets on alert);
2. the history is ingested through the ingest steps, ``CHUNK_S`` of simulated time at a time
   (the simulator's readings are never held whole);
3. features are built over the history per group of stations and stored once
   (`flows.cycle_steps`), the three model families trained and gated (`flows.train_steps`);
4. the twin is synchronised up to the cycle's start and the knowledge store indexed;
5. the cycle's hour is exported as one Parquet file per station (``<home>/export/<station>.parquet``),
   like a historian export, for the cycle to ingest.

Each setup stage's wall time is kept in `Fleet.setup_s`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from pumptwin.flows.settings import Settings
from pumptwin.plant.health import PUMP_MODES
from pumptwin.plant.scenario import Scenario, scenario_from_dict
from pumptwin.plant.simulator import Plant

PUMPS_PER_LINE = 6
"""Two stations of three pumps on each copy of the reference pipeline."""
START = pd.Timestamp("2024-03-01T00:00:00Z")
"""First instant of the simulated history."""
CYCLE_S = 3600.0
"""The cycle's window, s."""
CHUNK_S = 6 * 3600.0
"""Simulated time ingested at a time during the setup, s."""
STEP_S = 60.0
"""Plant step (historian sampling), s."""
FAULT_SHARE = 0.1
"""Share of lines with a pump fault (at least one line)."""
SYNC_HISTORY_S = 6 * 3600.0
"""History the setup's first synchronisation of the twin folds, s."""


def lines_for(pumps: int) -> int:
    """Lines of the reference pipeline that carry at least ``pumps`` pumps."""
    if pumps < 1:
        raise ValueError(f"pumps must be >= 1, got {pumps}")
    return math.ceil(pumps / PUMPS_PER_LINE)


def fleet_faults(lines: int, history_s: float) -> list[dict[str, Any]]:
    """Pump faults on every ``1 / FAULT_SHARE``-th line, modes in turn.

    Odd-numbered faults fail at 60 % of the history (they label the training set); the others
    start at 30 % and fail a day after the cycle (still developing when it runs: assets on alert).
    """
    step = max(1, round(1 / FAULT_SHARE))
    faults = []
    for i, line in enumerate(range(1, lines + 1, step)):
        mode = PUMP_MODES[i % len(PUMP_MODES)].value
        station = 2 * line - (i % 2)
        target = f"PS{station:02d}.P{1 + i % 2}"
        if i % 2 == 0:
            onset, failure = 0.2 * history_s, 0.6 * history_s
        else:
            onset, failure = 0.3 * history_s, history_s + CYCLE_S + 86_400.0
        faults.append({"mode": mode, "target": target, "onset": f"{onset:.0f}s", "failure": f"{failure:.0f}s"})
    return faults


def fleet_scenario(lines: int, history_s: float, seed: int = 42) -> Scenario:
    """The fleet's scenario: ``lines`` copies, the history and the cycle's hour, faults from `fleet_faults`."""
    return scenario_from_dict(
        {
            "version": 1,
            "name": f"fleet_{lines}",
            "start": START.isoformat(),
            "duration": f"{history_s + CYCLE_S:.0f}s",
            "step": f"{STEP_S:.0f}s",
            "seed": seed,
            "fleet": {"network": "reference", "lines": lines},
            "operations": {"speed": 0.95, "daily_swing": 0.03},
            "faults": fleet_faults(lines, history_s),
        }
    )


@dataclass(frozen=True)
class Fleet:
    """A prepared fleet.

    Attributes:
        settings: The settings of its home folder.
        lines: Copies of the reference pipeline.
        pumps: Pumps of the fleet.
        stations: Pump stations.
        export: The cycle hour's per-station files.
        start: Start of the cycle's window (UTC).
        end: End of the cycle's window (UTC, exclusive).
        history_rows: Readings ingested during the setup.
        cycle_rows: Readings in the export.
        training: Outcome per model family (status, decision).
        setup_s: Wall time of each setup stage, s.
    """

    settings: Settings
    lines: int
    pumps: int
    stations: int
    export: Path
    start: pd.Timestamp
    end: pd.Timestamp
    history_rows: int
    cycle_rows: int
    training: dict[str, str] = field(default_factory=dict)
    setup_s: dict[str, float] = field(default_factory=dict)


def export_per_station(readings: pd.DataFrame, folder: Path) -> list[Path]:
    """Write the readings as one Parquet file per station (``PS01.parquet``, ``LINE01.parquet``)."""
    folder.mkdir(parents=True, exist_ok=True)
    station = readings["tag"].str.split(".", n=1).str[0]
    paths = []
    for name, rows in readings.groupby(station, sort=True):
        path = folder / f"{name}.parquet"
        rows.to_parquet(path, index=False)
        paths.append(path)
    return paths


def prepare(  # noqa: PLR0915 - the setup's stages in order
    settings: Settings, lines: int, history_s: float, *, seed: int = 42, knowledge: bool = True
) -> Fleet:
    """Simulate, ingest, feature, train and synchronise a fleet in ``settings.home``; export the cycle's hour.

    Args:
        settings: Settings of a fresh home folder.
        lines: Copies of the reference pipeline.
        history_s: History before the cycle's hour, s (at least two long windows of the features).
        seed: The plant's seed.
        knowledge: Index the knowledge store (the recommender's) during the setup.
    """
    from pumptwin.flows.cycle_steps import raw_stations, split, station_features, store_cycle_features
    from pumptwin.flows.ingest_steps import read_source, store_source, write_fault_labels
    from pumptwin.flows.train_steps import FAMILIES, train_family
    from pumptwin.flows.twin_sync_steps import sync_twin

    if history_s < 2 * settings.models.long_window_s:
        raise ValueError(
            f"history of {history_s:g} s is shorter than two long feature windows ({settings.models.long_window_s:g} s)"
        )
    timings: dict[str, float] = {}
    scenario = fleet_scenario(lines, history_s, seed)
    plant = Plant(scenario)
    staging = settings.home / "staging"
    staging.mkdir(parents=True, exist_ok=True)
    simulate_s = ingest_s = 0.0
    history_rows = 0
    done = 0.0
    while done < history_s:
        step = min(CHUNK_S, history_s - done)
        t = time.perf_counter()
        plant.advance(step)
        chunk = plant.read_tags()
        path = staging / "chunk.parquet"
        chunk.to_parquet(path, index=False)
        history_rows += len(chunk)
        del chunk
        simulate_s += time.perf_counter() - t
        t = time.perf_counter()
        store_source(read_source(str(path), settings), settings)
        ingest_s += time.perf_counter() - t
        done += step
    path.unlink()
    write_fault_labels(plant.ground_truth().labels, scenario.name, settings)
    t = time.perf_counter()
    plant.advance(CYCLE_S)
    export = settings.home / "export"
    hour = plant.read_tags()
    export_per_station(hour, export)
    timings["simulate"] = simulate_s + time.perf_counter() - t
    timings["ingest_history"] = ingest_s
    start = START + pd.Timedelta(seconds=history_s)

    t = time.perf_counter()
    fleet = raw_stations(settings)
    stations = [s for s in fleet if not s.startswith("LINE")]
    parts = [station_features(settings, group, fleet, START, start) for group in split(stations, max(1, lines // 10))]
    store_cycle_features(settings, parts)
    del parts
    timings["features_history"] = time.perf_counter() - t

    t = time.perf_counter()
    training = {}
    for family in FAMILIES:
        outcome = train_family(settings, family)
        training[family] = f"{outcome.status} {outcome.decision}".strip() or outcome.reason
    timings["train"] = time.perf_counter() - t

    t = time.perf_counter()
    sync_twin(settings, now=start, history_s=SYNC_HISTORY_S)
    timings["twin_sync_history"] = time.perf_counter() - t
    if knowledge:
        from pumptwin.flows.recommend_steps import index_knowledge

        t = time.perf_counter()
        index_knowledge(settings)
        timings["knowledge_index"] = time.perf_counter() - t
    return Fleet(
        settings=settings,
        lines=lines,
        pumps=lines * PUMPS_PER_LINE,
        stations=len(stations),
        export=export,
        start=start,
        end=start + pd.Timedelta(seconds=CYCLE_S),
        history_rows=history_rows,
        cycle_rows=len(hour),
        training=training,
        setup_s=timings,
    )
