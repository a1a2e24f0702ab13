"""The steps of the living twin: synchronise it with the raw readings, and run what-ifs on it.

Plain functions over the settings: the Prefect flows ``twin-sync`` (`flows.twin_sync`) and
``what-if`` (`flows.what_if`) wrap them as tasks, the CLI (``pumptwin sync``) and the demo
call them directly.

`sync_twin` reads the raw readings since the last calibration (on the first run, the last
``history_s`` of the store), folds them into the calibration window by window
(`twin.sync.fold_readings`), fuses it with the latest model scores into the twin state, and
saves ``<state_dir>/calibration.json``, ``<state_dir>/state.json`` and ``<state_dir>/state.md``.
An empty raw store or a window without readings leaves every file as it was.

`run_whatifs` evaluates declared scenarios on the calibrated network (calibrated impeller wear,
efficiency loss and line friction) with the calibrated machine condition of every pump
(vibration baseline, bearing damage, thermal resistance), and writes the table, the JSON and
the plots under ``<whatif_dir>/<timestamp>/``. `respond_to_alerts` runs the candidate responses
(`twin.sync.candidate_responses`) of every line with an active alert.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from pumptwin.features.ingest.rawstore import RawStore
from pumptwin.flows.build_features_steps import fleet_registry
from pumptwin.flows.score_steps import read_latest_scores
from pumptwin.flows.settings import Settings
from pumptwin.twin.assets import Registry, build_registry
from pumptwin.twin.health.estimation import TwinCalibration, calibrated_network
from pumptwin.twin.health.io import read_calibration, read_state, write_calibration, write_state
from pumptwin.twin.health.state import TwinState
from pumptwin.twin.hydraulic.io import load_network
from pumptwin.twin.hydraulic.network import Network
from pumptwin.twin.sync import (
    SyncError,
    alerted_lines,
    candidate_responses,
    fold_readings,
    machine_conditions,
    margins_frame,
    needs_attention,
    operating_network,
    rated_speeds_rpm,
)
from pumptwin.twin.whatif.engine import WhatIfReport
from pumptwin.twin.whatif.scenarios import (
    BASE_NAME,
    DEFAULT_RATED_RPM,
    ScenarioError,
    ScenarioSpec,
    read_scenarios,
    run_scenarios,
    scenario_from_flags,
)

DEFAULT_WINDOW_S = 900.0
"""Window the readings are folded in, s (the estimator's design cadence: 15 min)."""
DEFAULT_HISTORY_S = 7 * 86_400.0
"""Readings the first synchronisation reads back from the newest one, s."""
CALIBRATION_FILE = "calibration.json"
STATE_FILE = "state.json"
STATE_MARKDOWN = "state.md"


def _utc(moment: pd.Timestamp | str | None) -> pd.Timestamp | None:
    if moment is None:
        return None
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tz is None else stamp.tz_convert("UTC")


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


def state_paths(settings: Settings) -> dict[str, Path]:
    """Where the twin's calibration and state live."""
    folder = settings.state_dir
    return {
        "calibration": folder / CALIBRATION_FILE,
        "state": folder / STATE_FILE,
        "state_md": folder / STATE_MARKDOWN,
    }


def load_twin(settings: Settings) -> tuple[TwinCalibration | None, TwinState | None]:
    """The saved calibration and state (None for what is not saved yet)."""
    paths = state_paths(settings)
    cal = read_calibration(paths["calibration"]) if paths["calibration"].is_file() else None
    state = read_state(paths["state"], cal) if paths["state"].is_file() else None
    return cal, state


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
    end = _utc(now)
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
    paths = state_paths(settings)
    write_calibration(new_cal, paths["calibration"])
    write_state(new_state, paths["state"])
    paths["state_md"].write_text(new_state.to_markdown(), encoding="utf-8")
    msg = f"folded {len(readings):,} readings in {n} windows of {window_s:g} s from {readings['ts'].min()}"
    return SyncReport(new_state, new_cal, registry, start, end, len(readings), n, True, msg, paths)


# --------------------------------------------------------------------------------------------
# What-ifs on the calibrated twin
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WhatIfRun:
    """What-if results written to a folder.

    Attributes:
        report: The what-if report.
        folder: Where its files are.
        paths: Files by kind (``markdown``, ``json``, ``table``, ``pumps``, ``pump_curves``,
            ``pressure_profile``).
        calibrated_at: Time of the calibration used (None: the clean network).
        line: The line the scenarios ran on.
    """

    report: WhatIfReport
    folder: Path
    paths: dict[str, Path]
    calibrated_at: pd.Timestamp | None
    line: int = 1

    def to_markdown(self) -> str:
        """The scenario table, then the twin it ran on and the files (plots) written."""
        twin = (
            f"calibrated twin at {self.calibrated_at.isoformat()}"
            if self.calibrated_at is not None
            else "clean network (no calibration yet)"
        )
        files = [f"- {kind}: `{path}`" for kind, path in self.paths.items()]
        body = self.report.to_markdown().rstrip()
        return f"{body}\n\nLine {self.line}, {twin}.\n\nFiles:\n\n" + "\n".join(files) + "\n"


def _stamp() -> str:
    return pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%S%f")


def gather_specs(
    specs: Sequence[ScenarioSpec] = (),
    flags: Mapping[str, Any] | None = None,
    file: str | Path | None = None,
) -> tuple[list[ScenarioSpec], dict[str, Any]]:
    """Scenarios from specs, a scenario file and command-line style flags, with the file's settings.

    Args:
        specs: Declared scenarios.
        flags: Keyword arguments of `twin.scenarios.scenario_from_flags` (one scenario).
        file: A scenario file (YAML, schema version 1).

    Returns:
        The scenarios (specs, then the file's, then the flags') and the file's ``rated_speed_rpm``,
        ``ambient_c``, ``source`` and ``delivery`` (only those it sets).

    Raises:
        ScenarioError: An invalid file or flag.
    """
    out = list(specs)
    extra: dict[str, Any] = {}
    if file is not None:
        loaded = read_scenarios(file)
        out += list(loaded.scenarios)
        extra = {"rated_speed_rpm": loaded.rated_speed_rpm, "source": loaded.source, "delivery": loaded.delivery}
        if loaded.ambient_c is not None:
            extra["ambient_c"] = loaded.ambient_c
    if flags:
        one = scenario_from_flags(**flags)
        if one is not None:
            out.append(one)
    return out, extra


def run_whatifs(  # noqa: PLR0913 - the knobs of one what-if study
    settings: Settings,
    specs: Sequence[ScenarioSpec] = (),
    *,
    flags: Mapping[str, Any] | None = None,
    file: str | Path | None = None,
    line: int = 1,
    calibrated: bool = True,
    current_state: bool = True,
    ambient_c: float | None = None,
    out: Path | None = None,
    plots: bool = True,
) -> WhatIfRun:
    """Evaluate scenarios on the calibrated twin and write table, JSON and plots.

    With a saved calibration (and ``calibrated``), the network carries the calibrated wear and
    friction of ``line``, its pumps run as they did in the calibration's last window, and every
    pump has its calibrated machine condition; otherwise the clean network with rated conditions
    is used. The base case is put first unless the scenarios
    already hold one.

    Args:
        settings: Settings (network, state folder, what-if folder, solver accuracy).
        specs: Declared scenarios.
        flags: Keyword arguments of `twin.scenarios.scenario_from_flags` (one more scenario).
        file: A scenario file.
        line: Which line's calibration to apply, 1-based.
        calibrated: Use the saved calibration when there is one.
        current_state: With a calibration, start from the pumps that ran in its last window
            (`twin.sync.operating_network`), not from the network file's statuses.
        ambient_c: Ambient temperature, degC (default: the file's, else 25).
        out: Folder for the files (default ``<whatif_dir>/<UTC timestamp>``).
        plots: Also draw the pump curves and the pressure profile.

    Raises:
        ScenarioError: An invalid scenario, or one that names what the network lacks.
        ValueError: An unreadable calibration or a line it does not hold.
    """
    chosen, extra = gather_specs(specs, flags, file)
    network = load_network(settings.twin.network)
    cal = load_twin(settings)[0] if calibrated else None
    rated: float | dict[str, float] = extra.get("rated_speed_rpm", DEFAULT_RATED_RPM)
    conditions = None
    net = network
    if cal is not None:
        registry = build_registry(network, max(cal.lines, default=1))
        start = operating_network(network, cal, line) if current_state else network
        net = calibrated_network(start, cal, line)
        conditions = machine_conditions(cal, registry, network, line)
        if "rated_speed_rpm" not in extra:
            rated = rated_speeds_rpm(registry, line)
    include_base = not any(s.name == BASE_NAME for s in chosen)
    if not chosen and not include_base:
        raise ScenarioError("no scenarios to run")
    report = run_scenarios(
        net,
        chosen,
        rated_speed_rpm=rated,
        ambient_c=ambient_c if ambient_c is not None else float(extra.get("ambient_c", 25.0)),
        conditions=conditions,
        source=extra.get("source"),
        delivery=extra.get("delivery"),
        accuracy=settings.twin.accuracy,
        include_base=include_base,
    )
    folder = out or settings.whatif_dir / _stamp()
    paths = write_whatif(report, net, folder, plots=plots)
    return WhatIfRun(report, folder, paths, cal.ts if cal is not None else None, line)


def write_whatif(report: WhatIfReport, network: Network, folder: Path, *, plots: bool = True) -> dict[str, Path]:
    """Write a report's markdown, JSON, tables and (optionally) plots into ``folder``."""
    from pumptwin.twin.hydraulic.solver import compile_network

    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "markdown": folder / "whatif.md",
        "json": folder / "whatif.json",
        "table": folder / "whatif.csv",
        "pumps": folder / "pumps.csv",
    }
    paths["markdown"].write_text(report.to_markdown(), encoding="utf-8")
    paths["json"].write_text(json.dumps(report.to_dict(), indent=1), encoding="utf-8")
    report.to_frame().to_csv(paths["table"])
    report.pumps_frame().to_csv(paths["pumps"], index=False)
    if plots:
        from pumptwin.twin.whatif.plots import plot_pressure_profile, plot_pump_curves

        paths["pump_curves"] = plot_pump_curves(compile_network(network), report, folder / "pump_curves.png")
        paths["pressure_profile"] = plot_pressure_profile(report, folder / "pressure_profile.png")
    return paths


def respond_to_alerts(settings: Settings, sync: SyncReport, *, plots: bool = True) -> list[WhatIfRun]:
    """Evaluate the candidate responses of every line with an active alert (none without alerts).

    Each line's scenarios go to ``<whatif_dir>/<UTC timestamp>_line<n>/``.
    """
    if sync.state is None or sync.registry is None or sync.calibration is None or not sync.state.alerts:
        return []
    network = load_network(settings.twin.network)
    stamp = _stamp()
    runs = []
    for line in alerted_lines(sync.state, sync.registry):
        current = operating_network(network, sync.calibration, line)
        specs = candidate_responses(sync.state, sync.registry, current, line)
        out = settings.whatif_dir / f"{stamp}_line{line}"
        runs.append(run_whatifs(settings, specs, line=line, out=out, plots=plots))
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
