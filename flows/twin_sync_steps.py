"""The steps of the living twin: synchronise it with the raw readings, and weigh responses to its alerts.

Plain functions over the settings: the Prefect flow ``twin-sync`` (`flows.twin_sync`) wraps them
as tasks, the CLI (``pumptwin sync``) and the demo call them directly. The saved calibration and
state are found through `flows.twin_store`.

`sync_twin` reads the raw readings since the last calibration (on the first run, the last
``history_s`` of the store), folds them into the calibration window by window
(`twin.sync.fold_readings`), fuses it with the latest model scores into the twin state, fuses the
stored route evidence into it (`flows.inspection_steps.fuse_stored_routes`: the latest station
inspections and their sensor flags; a route store that cannot be read is named in the message and
left out), and saves ``<state_dir>/calibration.json``, ``<state_dir>/state.json`` and
``<state_dir>/state.md``.
An empty raw store or a window without readings leaves every file as it was.

`respond_to_alerts` runs the candidate responses (`twin.sync.candidate_responses`) of every
line with an active alert through the one what-if path, `flows.what_if_steps.run_whatif`, on the
calibrated twin, each line's into ``<whatif_dir>/<UTC stamp>-<suffix>/line<n>/``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pumptwin.features.ingest.rawstore import RawStore
from pumptwin.flows.build_features_steps import fleet_registry
from pumptwin.flows.inspection_steps import fuse_stored_routes
from pumptwin.flows.score_steps import read_latest_scores
from pumptwin.flows.settings import Settings
from pumptwin.flows.twin_store import load_twin, state_paths
from pumptwin.flows.what_if_steps import WhatIfRun, new_run_folder, run_whatif
from pumptwin.twin.assets import Registry
from pumptwin.twin.health.estimation import TwinCalibration
from pumptwin.twin.health.io import write_calibration, write_state
from pumptwin.twin.health.state import TwinState
from pumptwin.twin.hydraulic.io import load_network
from pumptwin.twin.inspection.routes import RouteError
from pumptwin.twin.sync import (
    SyncError,
    alerted_lines,
    candidate_responses,
    fold_readings,
    margins_frame,
    needs_attention,
    operating_network,
)
from pumptwin.twin.times import utc_or_none
from pumptwin.twin.units import DAY_S, MINUTE_S

DEFAULT_WINDOW_S = 15 * MINUTE_S
"""Window the readings are folded in, s (the estimator's design cadence: 15 min)."""
DEFAULT_HISTORY_S = 7 * DAY_S
"""Readings the first synchronisation reads back from the newest one, s."""


def _fmt(x: float, spec: str = ".3g") -> str:
    return "-" if not math.isfinite(x) else format(x, spec)


@dataclass(frozen=True)
class SyncReport:
    """What one synchronisation did.

    Attributes:
        state: The twin state (the previous one when nothing changed; None before any).
        calibration: The calibration (likewise).
        registry: The fleet synchronised (None when the raw store is empty).
        start: First reading time asked for (UTC; None: the store's beginning).
        end: End of the window asked for (UTC, exclusive; None: the newest reading).
        readings: Readings read.
        windows: Windows folded into the calibration.
        updated: Whether the calibration and state files were written.
        message: What happened, in one line.
        paths: Files written, by kind (``calibration``, ``state``, ``state_md``).
    """

    state: TwinState | None
    calibration: TwinCalibration | None
    registry: Registry | None
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    readings: int
    windows: int
    updated: bool
    message: str
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def attention(self) -> bool:
        """True when an asset of the state is in warning or alarm."""
        return self.state is not None and needs_attention(self.state)

    def margins_markdown(self) -> str:
        """The calibrated margins as a markdown table ("" without a calibration)."""
        if self.calibration is None:
            return ""
        frame = margins_frame(self.calibration)
        lines = ["| asset | margin | value | unit | where |", "|---|---|---:|---|---|"]
        lines += [
            f"| {r.asset} | {r.margin} | {_fmt(float(r.value))} | {r.unit} | {r.where} |" for r in frame.itertuples()
        ]
        return "\n".join(lines) + "\n"

    def to_markdown(self) -> str:
        """Health table, alerts with their evidence, and margins, as markdown."""
        out = ["# Twin sync", "", f"- {self.message}"]
        if self.calibration is not None and self.calibration.ts is not None:
            out.append(f"- calibrated to {self.calibration.ts.isoformat()} ({self.calibration.n_updates} windows)")
        out += [f"- {kind}: `{path}`" for kind, path in self.paths.items()]
        if self.state is not None:
            out += ["", "## Health", "", self.state.to_markdown().rstrip()]
            if self.state.alerts:
                out += ["", "## Alerts", ""]
                out += [f"- {a.message()}" + (f"; {a.detail}" if a.detail else "") for a in self.state.alerts]
        if self.calibration is not None:
            out += ["", "## Margins", "", self.margins_markdown().rstrip()]
        return "\n".join(out) + "\n"


def _newest_reading(store: RawStore) -> pd.Timestamp | None:
    marks = store.watermarks()
    return max(marks.values()) if marks else None


def sync_twin(
    settings: Settings,
    now: pd.Timestamp | str | None = None,
    window_s: float = DEFAULT_WINDOW_S,
    history_s: float = DEFAULT_HISTORY_S,
) -> SyncReport:
    """Fold the raw readings since the last calibration into the twin and save its state.

    Args:
        settings: Settings (raw store, state folder, network, scores).
        now: End of the window (UTC, exclusive) and time of the new state; None: up to the
            newest reading, and the state is timed at the calibration's end.
        window_s: Length of the windows the readings are folded in, s.
        history_s: How far the first synchronisation reads back from ``now`` (or the newest
            reading), s.

    Returns:
        The report; ``updated`` is False (and no file changes) when there was nothing to read.

    Raises:
        SyncError: A window or history that is not a positive number of seconds.
        ValueError: Unreadable saved files, malformed readings or scores (the message names them).
    """
    for name, value in (("window_s", window_s), ("history_s", history_s)):
        if not (math.isfinite(value) and value > 0):
            raise SyncError(f"{name} must be a number of seconds > 0, got {value}")
    cal, state = load_twin(settings)
    store = RawStore(settings.raw_dir)
    stations = sorted({s for s, _ in store.partitions()})
    end = utc_or_none(now, what="now")
    if not stations:
        msg = f"raw store {settings.raw_dir} holds no readings; twin state unchanged"
        return SyncReport(state, cal, None, None, end, 0, 0, False, msg)
    registry = fleet_registry(settings, stations)
    network = load_network(settings.twin.network)
    if cal is not None and cal.ts is not None:
        start: pd.Timestamp | None = cal.ts
    else:
        newest = end or _newest_reading(store)
        start = None if newest is None else newest - pd.Timedelta(seconds=history_s)
    readings = store.read(stations, start, end)
    if readings.empty:
        msg = f"no readings from {start} to {end or 'the newest'}; twin state unchanged"
        return SyncReport(state, cal, registry, start, end, 0, 0, False, msg)
    new_cal, new_state, n = fold_readings(
        cal, readings, registry, network, window_s, state=state, scores=read_latest_scores(settings), now=end
    )
    assert new_state is not None  # readings were folded
    try:
        new_state = fuse_stored_routes(settings, new_state, previous=state).state
        routes_note = ""
    except RouteError as exc:  # a damaged route store must not stop the twin
        routes_note = f"; route evidence not fused: {exc}"
    paths = state_paths(settings)
    write_calibration(new_cal, paths["calibration"])
    write_state(new_state, paths["state"])
    paths["state_md"].write_text(new_state.to_markdown(), encoding="utf-8")
    msg = f"folded {len(readings):,} readings in {n} windows of {window_s:g} s from {readings['ts'].min()}"
    msg += routes_note
    return SyncReport(new_state, new_cal, registry, start, end, len(readings), n, True, msg, paths)


def respond_to_alerts(settings: Settings, sync: SyncReport, *, plots: bool = True) -> list[WhatIfRun]:
    """Evaluate the candidate responses of every line with an active alert (none without alerts).

    Each line's scenarios go to ``<whatif_dir>/<UTC stamp>-<random suffix>/line<n>/``, a folder no
    other run shares.
    """
    if sync.state is None or sync.registry is None or sync.calibration is None or not sync.state.alerts:
        return []
    network = load_network(settings.twin.network)
    folder = new_run_folder(settings.whatif_dir)
    runs = []
    for line in alerted_lines(sync.state, sync.registry):
        current = operating_network(network, sync.calibration, line)
        specs = candidate_responses(sync.state, sync.registry, current, line)
        out = folder / f"line{line}"
        runs.append(run_whatif(settings, specs, line=line, out=out, plots=plots))
    return runs


def sync_markdown(sync: SyncReport, runs: Sequence[WhatIfRun] = ()) -> str:
    """The twin-sync artifact: health, alerts, margins, then the candidate what-ifs and their plots."""
    parts = [sync.to_markdown().rstrip()]
    if runs:
        parts += ["", "## Candidate responses"]
        for run in runs:
            parts += ["", run.to_markdown().rstrip().replace("# What-if scenarios", "### What-if scenarios", 1)]
    elif sync.state is not None:
        parts += ["", "No active alerts: no candidate responses to evaluate."]
    return "\n".join(parts) + "\n"
