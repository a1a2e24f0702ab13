"""Wiring for ``pumptwin demo``: the whole loop on the embedded default, no servers.

A fault develops in the simulated plant and the twin catches it:

1. plant: the ``developing_faults`` scenario (the drive-end bearing of PS01.P1 starts to wear on
   day 7 and would fail on day 17; the impeller of PS02.P1 wears slowly from day 3) is simulated up
   to day 15.5 and its readings go through the Prefect ``ingest`` flow (validation, raw store,
   quarantine);
2. features: the ``build-features`` flow computes per-pump features and physics residuals,
   checks them and writes them to Feast (offline store, materialised online);
3. models: as in the field, the models learn only what the field knows. The failure-mode
   classifier and the time-to-failure model learn from *other* histories: another line of the
   fleet (stations PS03 and PS04, `history_scenario`, simulated with another seed over the same
   days) whose pumps failed and were found by maintenance (`maintenance_records`: mode, onset and
   failure of each failure that happened before the data ends); its features join the feature
   store. The demo's own developing faults have not failed yet, so they label nothing
   (`flows.train_steps.known_fault_labels`), and the anomaly detector's baseline is each pump's
   first days after commissioning, chosen without labels. The ``train`` flow trains the three
   families on the earlier days, judges them on the later ones, logs them to MLflow and promotes
   champions through the gate; the ``score`` flow scores the latest features;
4. twin: the ``twin-sync`` flow calibrates the twin from the tags (wear, vibration baselines,
   thermal resistance, line friction), fuses the scores into a health index with alerts and
   their evidence, and simulates candidate responses on the calibrated twin;
5. agent: the ``recommend`` flow ranks the responses and justifies the best with evidence;
6-8. the closed loop (`flows.demo_loop`): the ``implement`` flow asks for approval (answered in
   demo mode by an automatic approver through Prefect's API) and writes through the interlocks to
   the same simulated plant, which runs on; its new readings are ingested and the measured effect
   printed; the ``feedback`` flow labels the outcome, retrains through the gate and recalibrates;
9-10. inspections (`flows.demo_integrity`): two ILI runs of the line through the ``integrity`` flow
   (dig list, growth), a what-if the twin refuses because a corroded feature would be over its safe
   pressure though MAOP holds, then a technician's route through ``inspection-ingest`` and the
   week's condition-based round from the ``rounds`` flow.

The plant of step 1 is kept for the loop: it is simulated here (`demo_plant`), its readings are
written to ``<home>/plant/`` and ingested from there, and a `SimulatedController` drives it on.

It prints what each step did, with the operator's tag names and numbers for people, and where to
look (files, MLflow, Prefect, Feast, the audit log). The libraries' warnings and the orchestrator's
logs go to ``<home>/logs/demo.log``, not to the terminal. ``--network`` solves a given network's
base case instead.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import pandas as pd

from pumptwin.flows.settings import Settings
from pumptwin.twin.hydraulic.io import load_network
from pumptwin.twin.hydraulic.solver import compile_network
from pumptwin.twin.whatif.engine import WhatIf, evaluate

if TYPE_CHECKING:
    from pumptwin.control.simulated import SimulatedController
    from pumptwin.plant.scenario import Scenario
    from pumptwin.twin.assets import Registry

DEMO_SCENARIO = "developing_faults"
DEMO_WINDOW_END = "2024-03-16T12:00:00Z"
"""Day 15.5 of the scenario: a day and a half before the bearing's functional failure."""
HISTORY_SEED = 7
"""Seed of the fleet history (the demo scenario has its own)."""
HISTORY_STATIONS = ("PS03", "PS04")
"""Stations of the fleet history: the fleet's second line, none of the demo's pumps."""
HISTORY_FAULTS: tuple[dict[str, Any], ...] = (
    {"mode": "bearing_wear", "target": "PS03.P1", "onset": "1d", "failure": "8d", "bearing": "DE"},
    {"mode": "impeller_wear", "target": "PS04.P1", "onset": "12h", "failure": "9d", "law": "linear"},
    {"mode": "bearing_wear", "target": "PS04.P2", "onset": "6d", "failure": "14d", "bearing": "NDE"},
    {"mode": "impeller_wear", "target": "PS03.P2", "onset": "5d", "failure": "15d", "law": "linear"},
)
"""Failures on the history line, spread so that some fail in the training window and some in the held-out one."""
FINDING = "inspect"
"""Maintenance action of a failure found in the field: a finding; the fault stays open (its later rows are left out)."""
SYNC_WINDOW_S = 3600.0
"""The demo folds 16 days of readings in hourly windows (the deployment runs every 15 min)."""
SYNC_HISTORY_S = 16 * 86_400.0

CONNECT_S = 600.0
"""Plant time the controller reads the plant's tags after the ingest window before the loop starts, s: the
longest sample period of a tag, so it knows every tag's latest reading."""
PLANT_FOLDER = "plant"
"""Folder under the home where the demo writes the plant's readings before ingesting them."""
LOG_FILE = Path("logs") / "demo.log"
"""The libraries' warnings and the orchestrator's logs, under the home."""

HEALTH_COLUMNS = {
    "asset": "asset",
    "health_index": "health",
    "status": "status",
    "driver": "driver",
    "alerts": "alerts",
}
WHATIF_COLUMNS = {
    "status": "status",
    "throughput_m3h": "flow m3/h",
    "power_kw": "power kW",
    "specific_energy_kwh_m3": "kWh/m3",
    "min_maop_margin_mpa": "MAOP margin bar",
    "min_npsh_margin_m": "NPSH margin m",
    "max_vibration_mm_s": "vib mm/s",
    "worst_zone": "zone",
    "max_bearing_c": "bearing degC",
    "violations": "limits violated",
}
WHATIF_FORMATS: dict[str, str] = {
    "throughput_m3h": "{:,.0f}",
    "power_kw": "{:,.0f}",
    "specific_energy_kwh_m3": "{:.2f}",
    "min_maop_margin_mpa": "{:.1f}",
    "min_npsh_margin_m": "{:.1f}",
    "max_vibration_mm_s": "{:.2f}",
    "max_bearing_c": "{:.1f}",
}
BAR_PER_MPA = 10.0
VIOLATIONS_SHOWN = 70
"""Characters of a what-if's violated limits shown in the table (the full text is in whatif.csv)."""
QUARANTINE_REASONS: dict[str, str] = {
    "expect_column_values_to_not_be_null(value)": "no value (bad reading)",
    "expect_column_values_to_be_between(ts_seen_before)": "timestamp already seen",
    "expect_column_values_to_be_between(ts_behind_s)": "behind the tag's newest reading",
    "expect_column_values_to_be_between(range_excess)": "outside the tag's range",
}
"""The validation checks of the ingest flow in words (the validation report names the checks)."""
UNIT_OF_MEASURE: dict[str, str] = {
    "FLOW": "m3/h",
    "DISCH_PRESS": "bar",
    "SUCT_PRESS": "bar",
    "PRESS": "bar",
    "BRG_DE_TEMP": "degC",
    "BRG_NDE_TEMP": "degC",
    "MOTOR_WINDING_TEMP": "degC",
    "AMBIENT_TEMP": "degC",
    "VIB_DE_RMS": "mm/s",
    "VIB_NDE_RMS": "mm/s",
    "MOTOR_POWER": "kW",
    "MOTOR_CURRENT": "A",
}
"""Units shown with a tag's values (the registry's engineering units)."""


# ---------------------------------------------------------------------------------------- for people


def show(text: str = "") -> None:
    """Print one line of the demo's story to the terminal."""
    print(text, flush=True)


def fmt_num(x: float | None, digits: int = 3) -> str:
    """A number for people: ``2,093``, ``33.9``, ``0.734``, ``<0.01``; ``-`` for none. Never an exponent."""
    if x is None or not math.isfinite(x):
        return "-"
    a = abs(x)
    if a == 0:
        return "0"
    if a >= 10 ** (digits - 1) or float(x).is_integer():
        return f"{x:,.0f}"
    if a < 0.01:  # noqa: PLR2004 - below the second decimal
        return "<0.01" if x > 0 else ">-0.01"
    decimals = max(0, digits - 1 - math.floor(math.log10(a)))
    return f"{x:,.{decimals}f}"


def fmt_signed(x: float | None) -> str:
    """A change for people, with its sign: ``+0.80``, ``-1.25``, ``n/a``."""
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:+.2f}"


def fmt_fraction(x: float | None) -> str:
    """A health index or probability in [0, 1]: two decimals, ``<0.01`` and ``>0.99`` at the ends."""
    if x is None or not math.isfinite(x):
        return "-"
    if 0 < x < 0.005:  # noqa: PLR2004 - would round to 0.00
        return "<0.01"
    if 0.995 <= x < 1:  # noqa: PLR2004 - would round to 1.00
        return ">0.99"
    return f"{x:.2f}"


def fmt_time(moment: object) -> str:
    """An instant for people: ``2024-03-16 12:00 UTC`` (the text as it is when it is not a time)."""
    try:
        ts = pd.Timestamp(moment)
    except (TypeError, ValueError):
        return str(moment)
    if pd.isna(ts):
        return "-"
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return f"{ts:%Y-%m-%d %H:%M} UTC"


_ISO_UTC = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(\+00:00|Z)")


def readable_times(text: str) -> str:
    """A flow's message with its UTC instants for people (``2024-03-01 00:00:00+00:00`` -> ``2024-03-01 00:00 UTC``)."""
    return _ISO_UTC.sub(lambda m: fmt_time(m.group(0)), text)


def fmt_duration(seconds: float) -> str:
    """A duration for people: ``45 min``, ``5.2 h``, ``4.4 d``."""
    if not math.isfinite(seconds):
        return "-"
    if abs(seconds) < 3600:  # noqa: PLR2004 - an hour
        return f"{seconds / 60:.0f} min"
    if abs(seconds) < 2 * 86_400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} d"


def fmt_quantity(x: float | None, tag: str) -> str:
    """A tag's value with its unit: ``1,013 m3/h``, ``27.4 bar``, ``61.2 degC``."""
    unit = UNIT_OF_MEASURE.get(tag.rsplit(".", 1)[-1], "")
    if x is None or not math.isfinite(x):
        return "-"
    value = f"{x:,.0f}" if abs(x) >= 100 else f"{x:.1f}" if abs(x) >= 10 else f"{x:.2f}"  # noqa: PLR2004
    return f"{value} {unit}".rstrip()


def evidence_name(source: str) -> str:
    """An evidence's name for people: ``p_bearing_wear`` -> ``P(bearing wear)``, ``ttf_s`` -> ``time to failure``."""
    if source in ("ttf_s", "ttf"):
        return "time to failure"
    if source.startswith("p_"):
        return f"P({source[2:].replace('_', ' ')})"
    words = re.sub(r"_(mm_s|s|c|m)$", "", source).replace("_de", " DE").replace("_nde", " NDE").replace("_", " ")
    return re.sub(r"\b(maop|npsh|bep|ttf)\b", lambda m: m.group(1).upper(), words)


def alert_line(alert: Any) -> str:  # noqa: ANN401 - a pumptwin.twin.health.state.Alert
    """One alert for people: level, asset, evidence, value against its threshold, since when, from what."""
    if alert.unit == "s":
        value, threshold = fmt_duration(alert.value), fmt_duration(alert.threshold)
    else:
        unit = "" if alert.unit in ("", "-") else f" {alert.unit}"
        value, threshold = fmt_num(alert.value) + unit, fmt_num(alert.threshold) + unit
    since = pd.Timestamp(alert.since).tz_convert("UTC")
    return (
        f"{alert.level.upper():<7} {alert.asset} {evidence_name(alert.source)} {value} (alarm at {threshold})"
        f" since {since:%Y-%m-%d %H:%M} UTC [{alert.model_version}]"
    )


def operator_names(registry: Registry, line: int) -> dict[str, str]:
    """The operator's names of a line's network elements: pump links (``PS1-P2`` -> ``PS01.P2``) and station headers."""
    out = {p.pump_id: p.name for p in registry.pumps if p.line == line}
    for s in registry.stations:
        if s.line == line:
            out[s.suction_node] = f"{s.name} suction"
            out[s.discharge_node] = f"{s.name} discharge"
    return out


def rename(text: str, names: Mapping[str, str]) -> str:
    """Replace the network's element ids in ``text`` by the operator's names (whole ids only)."""
    if not names or not isinstance(text, str):
        return text
    ids = "|".join(re.escape(k) for k in sorted(names, key=len, reverse=True))
    pattern = re.compile(r"(?<![\w-])(" + ids + r")(?![\w-])")
    return pattern.sub(lambda m: names[m.group(1)], text)


def print_table(frame: pd.DataFrame, indent: str = "   ") -> None:
    """Print a table already formatted as text, without its index."""
    text = frame.to_string(index=False, max_colwidth=VIOLATIONS_SHOWN + 5)
    for line in text.splitlines():
        show(indent + line)


def health_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The twin's health table for people: health index to two decimals, drivers named in words."""
    out = frame[[c for c in HEALTH_COLUMNS if c in frame.columns]].copy()
    if "health_index" in out:
        out["health_index"] = [fmt_fraction(x) for x in out["health_index"]]
    if "driver" in out:
        out["driver"] = [evidence_name(str(x)) if isinstance(x, str) and x else "-" for x in out["driver"]]
    return out.rename(columns=HEALTH_COLUMNS)


def whatif_table(frame: pd.DataFrame, names: Mapping[str, str]) -> pd.DataFrame:
    """A what-if table for people: units in the headers, sensible decimals, the operator's names."""
    keep = ["scenario", *[c for c in WHATIF_COLUMNS if c in frame.columns]]
    out = frame[keep].copy()
    if "min_maop_margin_mpa" in out:
        out["min_maop_margin_mpa"] = out["min_maop_margin_mpa"] * BAR_PER_MPA
    for col, spec in WHATIF_FORMATS.items():
        if col in out:
            out[col] = [spec.format(x) if isinstance(x, int | float) and math.isfinite(x) else "-" for x in out[col]]
    for col in ("scenario", "violations"):
        if col in out:
            out[col] = [rename(str(x), names) for x in out[col]]
    if "violations" in out:
        out["violations"] = [
            x if len(x) <= VIOLATIONS_SHOWN else x[: VIOLATIONS_SHOWN - 3] + "..." for x in out["violations"]
        ]
    return out.rename(columns=WHATIF_COLUMNS)


_LOG_STREAMS: list[TextIO] = []
"""The log files opened by `library_output_to`, kept open for the process's life (see there)."""


@contextmanager
def library_output_to(path: Path) -> Iterator[None]:
    """Send everything written to the process's standard error (warnings, library and orchestrator logs) to ``path``.

    The demo's story goes to standard output. For the block, standard error goes to the log file
    (appended to): file descriptor 2, so that child processes such as Prefect's temporary server
    and handlers holding the old stream write there too, and ``sys.stderr``; Python's warnings are
    written there too. Afterwards all three are as they were, but the log file stays open: logging
    handlers configured during the block hold it, and Prefect's still logs to it when
    its temporary server stops at exit.
    """
    import warnings

    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    log = path.open("a", encoding="utf-8", buffering=1)
    _LOG_STREAMS.append(log)
    log.write(f"\n==== pumptwin demo {datetime.now().astimezone().isoformat(timespec='seconds')} ====\n")
    log.flush()
    saved_fd, saved_stream = os.dup(2), sys.stderr
    os.dup2(log.fileno(), 2)
    sys.stderr = log
    # Warnings are written to the file by a display function of our own: `logging.captureWarnings`
    # does nothing when a library switched it on before and left it on.
    saved_showwarning = warnings.showwarning

    def to_log(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        log.write(warnings.formatwarning(message, category, filename, lineno, line))

    warnings.showwarning = to_log
    try:
        yield
    finally:
        warnings.showwarning = saved_showwarning
        log.flush()
        sys.stderr = saved_stream
        os.dup2(saved_fd, 2)
        os.close(saved_fd)


# ---------------------------------------------------------------------------------------- 1. plant


def demo_plant(settings: Settings) -> tuple[pd.DataFrame, SimulatedController]:
    """Simulate the demo scenario up to `DEMO_WINDOW_END`; its readings and a controller on the same plant.

    The readings are those the ``simulator:`` source of the ingest flow reads for the same window
    (the plant is advanced in one go, as it does), and the scenario's fault labels are written as it
    writes them. The controller then takes over the plant and reads its tags for `CONNECT_S`, so it
    knows every tag's latest reading; those readings wait in the controller until taken.
    """
    from pumptwin.control.simulated import SimulatedController
    from pumptwin.flows.ingest_steps import write_fault_labels
    from pumptwin.plant.scenario import shipped_scenario
    from pumptwin.plant.simulator import Plant

    scenario = shipped_scenario(DEMO_SCENARIO)
    plant = Plant(scenario)
    end_s = (pd.Timestamp(DEMO_WINDOW_END) - scenario.start).total_seconds()
    plant.advance(max(0.0, min(end_s, scenario.n_steps * plant.step_s)))
    readings = plant.read_tags()
    write_fault_labels(plant.ground_truth().labels, scenario.name, settings)
    controller = SimulatedController(plant)
    controller.wait(CONNECT_S)
    controller.read(list(plant.registry.tag_names))
    return readings, controller


def plant_readings_file(settings: Settings, readings: pd.DataFrame, what: str) -> Path:
    """Write the plant's readings to ``<home>/plant/<what>-<first>-<last>.parquet`` for the ``ingest`` flow."""
    ts = pd.to_datetime(readings["ts"], utc=True)
    span = f"{ts.min():%Y%m%dT%H%M}-{ts.max():%Y%m%dT%H%M}" if len(ts) else "empty"
    path = settings.home / PLANT_FOLDER / f"{what}-{span}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    readings.astype({"tag": str, "quality": str}).to_parquet(path, index=False)
    return path


def ingest_plant_data(settings: Settings) -> tuple[dict[str, object], SimulatedController]:
    """Simulate the demo scenario up to day 15.5, ingest it through the Prefect flow; the plant's controller."""
    from pumptwin.flows.ingest import ingest

    show(f"1. plant: scenario {DEMO_SCENARIO!r} (PS01.P1's bearing wears from day 7 and fails on day 17;")
    show("   PS02.P1's impeller wears slowly from day 3),")
    end = pd.Timestamp(DEMO_WINDOW_END)
    show(f"   simulated up to {end:%Y-%m-%d %H:%M} UTC and ingested through the Prefect flow 'ingest' ...")
    readings, controller = demo_plant(settings)
    path = plant_readings_file(settings, readings, DEMO_SCENARIO)
    del readings
    summary = ingest(source=str(path), end=end.to_pydatetime(), incremental=False)
    rejected = summary.get("rejected_by_reason") or {}
    show(f"   rows in {summary['rows_in']:,}, stored {summary['stored']:,}, quarantined {summary['rejected']:,}")
    for reason, count in sorted(rejected.items(), key=lambda kv: -kv[1])[:5]:
        words = "; ".join(QUARANTINE_REASONS.get(r.strip(), r.strip()) for r in str(reason).split(";"))
        show(f"     {count:8,}  {words}")
    show(f"   readings file: {path}")
    show(f"   raw store: {settings.raw_dir}   validation reports: {settings.validation_dir}/index.html")
    return summary, controller


def history_scenario() -> Scenario:
    """The fleet history: two lines of the reference pipeline over the demo's days, failures on line 2 only.

    Only line 2 (`HISTORY_STATIONS`) is kept; line 1 is simulated because a fleet is built line by
    line, and dropped (the demo's own line 1 is the ``developing_faults`` scenario).
    """
    from pumptwin.plant.scenario import scenario_from_dict

    start = pd.Timestamp("2024-03-01T00:00:00Z")
    return scenario_from_dict(
        {
            "version": 1,
            "name": "fleet_history",
            "start": start.isoformat(),
            "duration": (pd.Timestamp(DEMO_WINDOW_END) - start).total_seconds(),
            "step": 60,
            "seed": HISTORY_SEED,
            "fleet": {"network": "reference", "lines": 2},
            "operations": {"speed": 0.95, "daily_swing": 0.03, "nomination": "4h"},
            "faults": [dict(f) for f in HISTORY_FAULTS],
        }
    )


def maintenance_records(labels: pd.DataFrame, until: pd.Timestamp) -> pd.DataFrame:
    """The maintenance findings of the faults that failed by ``until``, as a field team records them.

    Args:
        labels: Fault records ``asset, mode, onset_ts, failure_ts`` of the history.
        until: End of the data: a fault failing later is not known yet.

    Returns:
        ``asset, ts, action, mode, onset_ts, failure_ts`` (`features.labels`): one finding
        (`FINDING`) per known failure, dated at the failure.
    """
    failure = pd.to_datetime(labels["failure_ts"], utc=True)
    known = labels[(failure <= until).to_numpy()]
    return pd.DataFrame(
        {
            "asset": known["asset"].astype(str).to_numpy(),
            "ts": pd.to_datetime(known["failure_ts"], utc=True).to_numpy(),
            "action": FINDING,
            "mode": known["mode"].astype(str).to_numpy(),
            "onset_ts": pd.to_datetime(known["onset_ts"], utc=True).to_numpy(),
            "failure_ts": pd.to_datetime(known["failure_ts"], utc=True).to_numpy(),
        }
    )


def fleet_history(settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate the fleet history; its features (history stations only) and its maintenance records."""
    from pumptwin.features.transforms.build import pump_features
    from pumptwin.plant.simulator import Plant

    plant = Plant(history_scenario())
    readings = plant.run()
    readings = readings[readings["tag"].str.split(".", n=1).str[0].isin(HISTORY_STATIONS).to_numpy()]
    cfg = settings.models
    features = pump_features(
        readings,
        plant.registry,
        plant.network,
        cadence_s=cfg.cadence_s,
        short_window_s=cfg.short_window_s,
        long_window_s=cfg.long_window_s,
    )
    return features, maintenance_records(plant.ground_truth().labels, pd.Timestamp(DEMO_WINDOW_END))


def add_fleet_history(settings: Settings) -> None:
    """Put the fleet history's features in the feature store and its findings in the maintenance records."""
    from pumptwin.flows.build_features_steps import store_features
    from pumptwin.flows.train_steps import MAINTENANCE_FILE

    features, records = fleet_history(settings)
    stored = store_features(settings, features)
    path = settings.labels_dir / MAINTENANCE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file():
        old = pd.read_csv(path)
        records = pd.concat([old, records.astype({c: str for c in ("ts", "onset_ts", "failure_ts")})])
        records = records.drop_duplicates(subset=["asset", "ts", "action", "mode"], keep="last")
    records.to_csv(path, index=False)
    found = ", ".join(f"{a} {m.replace('_', ' ')}" for a, m in zip(records["asset"], records["mode"], strict=True))
    show(
        f"   fleet history: stations {', '.join(HISTORY_STATIONS)} over the same days (seed {HISTORY_SEED}),"
        f" {stored.stored:,} feature rows; failures found by maintenance: {found} ({path})"
    )


def build_and_train(settings: Settings) -> None:
    """Features into Feast, the three model families through MLflow and the gate, then scores."""
    from pumptwin.flows.build_features import build_features
    from pumptwin.flows.score import score
    from pumptwin.flows.train import train

    show("2. features: flow 'build-features' (rolling statistics, physics residuals, checks, Feast) ...")
    built = build_features()
    show(
        f"   {built['stored']:,} feature rows for {built['pumps']} pumps"
        f" ({fmt_time(built['start'])} .. {fmt_time(built['end'])}),"
        f" {built['quarantined']} quarantined; Feast repo features/, stores in {settings.feast_dir}"
    )
    add_fleet_history(settings)
    show("3. models: flow 'train' (anomaly detector, failure mode, time to failure; MLflow, promotion gate) ...")
    show("   diagnosis and time to failure learn from the fleet history's failures, not from the faults flagged here")
    for o in train():
        gate = f"{o['decision']}" + (f" ({o['reason']})" if o["reason"] else "")
        metrics = ", ".join(f"{k.replace('_', ' ')} {fmt_num(v)}" for k, v in (o["metrics"] or {}).items())
        version = f"v{o['version']}" if o["version"] else "-"
        show(f"   {o['family']:<9} {o['status']:<8} {version:<4} gate: {gate}")
        if metrics:
            show(f"             held-out: {metrics}")
    scored = score()
    versions = ", ".join(f"{k} v{v}" for k, v in scored["versions"].items()) or "none"
    show(f"   flow 'score': {scored['pumps']} pumps scored by the champions ({versions}), {scored['alarms']} in alarm")


BEARING_ALARM_C = 85.0
"""DCS high alarm of a rolling-element bearing temperature, degC (trip at `BEARING_TRIP_C`)."""
BEARING_TRIP_C = 95.0


def conventional_alarms(settings: Settings, pump: str = "PS01.P1") -> str:
    """What a DCS would have said so far: the pump's worst vibration and bearing temperature against its levels.

    The levels of ``benchmarks.early_warning``'s DCS scheme: vibration zone B/C (alarm) and C/D
    (trip) of ISO 10816-3, bearing temperature 85 degC (alarm) and 95 degC (trip); a level must be
    held by two consecutive samples (the DCS's on-delay ignores a single spike).
    """
    from pumptwin.features.ingest.rawstore import RawStore
    from pumptwin.twin.whatif.limits import IsoZones

    tags = [f"{pump}.VIB_DE_RMS", f"{pump}.VIB_NDE_RMS", f"{pump}.BRG_DE_TEMP", f"{pump}.BRG_NDE_TEMP"]
    readings = RawStore(settings.raw_dir).read(pump.split(".", maxsplit=1)[0], tags=tags)
    good = readings[readings["quality"] == "good"].sort_values(["tag", "ts"])
    held = good.groupby("tag")["value"].transform(lambda v: v.rolling(2).min())
    vib = held[good["tag"].str.contains("VIB")].max()
    temp = held[good["tag"].str.contains("BRG")].max()
    zones = IsoZones()
    fired = bool(vib >= zones.bc_mm_s or temp >= BEARING_ALARM_C)
    return (
        f"   DCS alarms on {pump} so far: vibration max {vib:.2f} mm/s"
        f" (alarm {zones.bc_mm_s:g}, trip {zones.cd_mm_s:g}),"
        f" bearing max {temp:.1f} degC (alarm {BEARING_ALARM_C:g}, trip {BEARING_TRIP_C:g}):"
        f" {'fired' if fired else 'none yet'}"
    )


RUNNERS_UP = 3
"""Alternatives the demo prints under a recommendation."""
ALERTS_SHOWN = 8
"""Alerts the demo prints (all of them are in the twin's state.md)."""


def line_names(settings: Settings, line: int = 1) -> dict[str, str]:
    """The operator's names of the network elements of ``line`` (`operator_names`), from the asset registry."""
    from pumptwin.twin.assets import build_registry

    return operator_names(build_registry(load_network(settings.twin.network), line), line)


def sync_and_respond(settings: Settings) -> dict[str, Any]:
    """Run the twin-sync flow and print the health table, alerts and candidate responses."""
    from pumptwin.flows.twin_sync import twin_sync

    show("4. twin: flow 'twin-sync' (calibration from tags, health index and alerts, candidate responses) ...")
    result = twin_sync(window_s=SYNC_WINDOW_S, history_s=SYNC_HISTORY_S)
    show(f"   {readable_times(str(result['message']))}")
    state_file = settings.state_dir / "state.json"
    if state_file.is_file():
        from pumptwin.flows.twin_store import load_twin

        _, state = load_twin(settings)
        if state is not None:
            show()
            show("   health index (1 healthy, 0 at failure), status and what drives it:")
            print_table(health_table(state.to_frame()))
            if state.alerts:
                show()
                show("   alerts, with their evidence:")
                for alert in state.alerts[:ALERTS_SHOWN]:
                    show(f"   - {alert_line(alert)}")
                if len(state.alerts) > ALERTS_SHOWN:
                    show(f"   ... and {len(state.alerts) - ALERTS_SHOWN} more in {settings.state_dir}/state.md")
            show(conventional_alarms(settings))
    for folder in result["whatif_folders"]:
        table = Path(folder) / "whatif.csv"
        if table.is_file():
            line = int(m.group(1)) if (m := re.search(r"line(\d+)$", str(folder))) else 1
            show()
            show(f"   candidate responses, simulated on the calibrated twin ({folder}):")
            print_table(whatif_table(pd.read_csv(table), line_names(settings, line)))
    show_recommendation(settings, result.get("recommendation"))
    return result


def show_recommendation(settings: Settings, result: dict[str, Any] | None) -> None:
    """Print the recommend flow's chosen action per line, the runners-up and the start of the justification."""
    if not result or not result.get("lines"):
        return
    show()
    show("5. agent: flow 'recommend' (candidates and a setpoint search on the twin, ranked, evidence cited) ...")
    for line in result["lines"]:
        names = line_names(settings, int(line["line"]))
        data = json.loads((Path(line["folder"]) / "recommendation.json").read_text(encoding="utf-8"))
        chosen = data["chosen"]
        score, writer = chosen["score"], data["generator"]
        show(f"   line {line['line']}: recommended: {chosen['name']} (score {fmt_num(score)}, text: {writer})")
        for alt in data["alternatives"][:RUNNERS_UP]:
            rejected = rename("; ".join(alt["rejected"]), names)
            why = "rejected: " + rejected[:90] if alt["rejected"] else f"score {fmt_num(alt['score'])}"
            show(f"     instead of {alt['name']}: {why}")
        show(f"   cites {len(data['citations'])} passages: {', '.join(c['id'] for c in data['citations'][:6])}")
        show(f"   approver's page: {line['folder']}/recommendation.md")


def where_to_look(settings: Settings, request: str) -> None:
    """Print where the results are, how to open the user interfaces on them and how to approve by hand."""
    from pumptwin.flows.demo_loop import audit_summary
    from pumptwin.flows.feedback_steps import outcome_reports_dir
    from pumptwin.flows.implement_steps import audit_path

    home = settings.home
    audit = audit_path(settings)
    show()
    show("where to look:")
    show(f"  audit log        {audit} ({audit_summary(audit)})")
    show(f"  twin state       {settings.state_dir}/state.md (health, alerts), calibration.json")
    show(f"  what-ifs         {settings.whatif_dir}/ (tables, JSON, pump curves, pressure profile plots)")
    show(f"  recommendation   {settings.recommend_dir}/ (action, alternatives, justification, citations, plots)")
    show(f"  scores           {settings.scores_dir}/latest.parquet   plots: {home}/plots/")
    show(f"  labels           {settings.labels_dir}/ (action outcomes, confirmed faults, false alarms)")
    show(f"  outcome reports  {outcome_reports_dir(settings)}/ (what each action did, cited by the agents)")
    show(f"  integrity        {settings.integrity_dir}/ (assessed features, dig list, growth, reports/ for the agents)")
    show(f"  inspections      {settings.inspection_dir}/ (route store, rounds/ with the week's round)")
    show(f"  Prefect UI       PREFECT_HOME={settings.prefect_home} .venv/bin/prefect server start")
    show("                   flow runs: ingest, train, twin-sync, recommend, implement, feedback, integrity,")
    show("                   inspection-ingest, rounds;")
    if request:
        show(f"                   the implement run's artifact 'approval-{request}' (the approver's form and page)")
    show(f"  MLflow UI        .venv/bin/mlflow ui --backend-store-uri {settings.mlflow_tracking_uri}")
    show("                   the retrained runs carry their lineage as tags pumptwin.lineage.*")
    show("  Feast UI         cd features && ../.venv/bin/feast ui")
    show("  ask the twin     .venv/bin/pumptwin whatif --flow +10%   (see README.md)")
    show('  ask the docs     .venv/bin/pumptwin ask "why is PS01.P1 in alarm?"')
    show(
        "  approve by hand  next time, with the Prefect server above running (PREFECT_API_URL=http://127.0.0.1:4200/api):"
    )
    show("                   .venv/bin/pumptwin implement --line 1   waits for a person (request id in the artifact);")
    show("                   answer it in the UI's form, or: .venv/bin/pumptwin approve REQUEST_ID --approver NAME")
    show(f"  demo log         {home / LOG_FILE} (library warnings, orchestrator logs)")


def run(settings: Settings, network: Path | None = None) -> int:
    """Run the demo; return an exit code (0 when every step ran)."""
    t0 = time.perf_counter()
    if network is not None:
        return solve_base_case(network, settings)
    os.environ.setdefault("PREFECT_LOGGING_COLORS", "false")
    log = settings.home / LOG_FILE
    try:
        with library_output_to(log):
            from pumptwin.flows.demo_loop import closed_loop

            _, controller = ingest_plant_data(settings)
            build_and_train(settings)
            result = sync_and_respond(settings)
            request = closed_loop(settings, result.get("recommendation"), controller)
            from pumptwin.flows.demo_integrity import integrity_step, rounds_step

            integrity_step(settings)
            rounds_step(settings, controller)
    except BaseException:
        show(f"\nthe demo stopped; the libraries' and orchestrator's log: {log}")
        raise
    where_to_look(settings, request)
    elapsed = time.perf_counter() - t0
    show(f"\ndone in {elapsed:.0f} s ({elapsed / 60:.1f} min)")
    return 0


def solve_base_case(network: Path, settings: Settings) -> int:
    """Solve a network's base case and print its headline figures."""
    net = load_network(network)
    model = compile_network(net)
    result = evaluate(model, [WhatIf("base case")], accuracy=settings.twin.accuracy)
    show(f"network: {net.name}: {len(net.junctions)} junctions, {len(net.pipes)} pipes, {len(net.pumps)} pumps")
    for row in result.summary(model, None):
        show("  " + ", ".join(f"{k}={fmt_num(v) if isinstance(v, float) else v}" for k, v in row.items()))
    return 0 if result.converged.all() else 1
