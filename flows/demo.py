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
   their evidence, and simulates candidate responses on the calibrated twin.

It prints what each step did and where to look (files, MLflow, Prefect, Feast). ``--network``
solves a given network's base case instead.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from pumptwin.flows.settings import Settings
from pumptwin.twin.hydraulic.io import load_network
from pumptwin.twin.hydraulic.solver import compile_network
from pumptwin.twin.whatif.engine import WhatIf, evaluate

if TYPE_CHECKING:
    from pumptwin.plant.scenario import Scenario

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

HEALTH_COLUMNS = ("asset", "health_index", "status", "driver", "alerts")
WHATIF_COLUMNS = {
    "status": "status",
    "throughput_m3h": "flow m3/h",
    "power_kw": "power kW",
    "specific_energy_kwh_m3": "kWh/m3",
    "min_maop_margin_mpa": "MAOP margin MPa",
    "min_npsh_margin_m": "NPSH m",
    "max_vibration_mm_s": "vib mm/s",
    "worst_zone": "zone",
    "max_bearing_c": "bearing C",
    "violations": "limits violated",
}


def _print_table(frame: pd.DataFrame, indent: str = "   ") -> None:
    text = frame.to_string(index=False, float_format=lambda x: f"{x:.3g}", max_colwidth=60)
    for line in text.splitlines():
        print(indent + line)


def ingest_plant_data(settings: Settings) -> dict[str, object]:
    """Simulate the demo scenario up to day 15.5 and ingest it through the Prefect flow."""
    from pumptwin.flows.ingest import ingest

    print(f"1. plant: scenario {DEMO_SCENARIO!r} (PS01.P1's bearing wears from day 7 and fails on day 17;")
    print("   PS02.P1's impeller wears slowly from day 3),")
    print(f"   simulated up to {DEMO_WINDOW_END} and ingested through the Prefect flow 'ingest' ...")
    summary = ingest(
        source=f"simulator:{DEMO_SCENARIO}", end=datetime.fromisoformat(DEMO_WINDOW_END), incremental=False
    )
    rejected = summary.get("rejected_by_reason") or {}
    print(f"   rows in {summary['rows_in']:,}, stored {summary['stored']:,}, quarantined {summary['rejected']:,}")
    for reason, count in sorted(rejected.items(), key=lambda kv: -kv[1])[:5]:
        print(f"     {count:8,}  {reason}")
    print(f"   raw store: {settings.raw_dir}   validation reports: {settings.validation_dir}/index.html")
    return summary


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
    found = ", ".join(f"{a} {m}" for a, m in zip(records["asset"], records["mode"], strict=True))
    print(
        f"   fleet history: stations {', '.join(HISTORY_STATIONS)} over the same days (seed {HISTORY_SEED}),"
        f" {stored.stored:,} feature rows; failures found by maintenance: {found} ({path})"
    )


def build_and_train(settings: Settings) -> None:
    """Features into Feast, the three model families through MLflow and the gate, then scores."""
    from pumptwin.flows.build_features import build_features
    from pumptwin.flows.score import score
    from pumptwin.flows.train import train

    print("2. features: flow 'build-features' (rolling statistics, physics residuals, checks, Feast) ...")
    built = build_features()
    print(
        f"   {built['stored']:,} feature rows for {built['pumps']} pumps ({built['start']} .. {built['end']}),"
        f" {built['quarantined']} quarantined; Feast repo features/, stores in {settings.feast_dir}"
    )
    add_fleet_history(settings)
    print("3. models: flow 'train' (anomaly detector, failure mode, time to failure; MLflow, promotion gate) ...")
    print("   diagnosis and time to failure learn from the fleet history's failures, not from the faults flagged here")
    for o in train():
        gate = f"{o['decision']}" + (f" ({o['reason']})" if o["reason"] else "")
        metrics = ", ".join(f"{k} {v:.3g}" for k, v in (o["metrics"] or {}).items())
        version = f"v{o['version']}" if o["version"] else "-"
        print(f"   {o['family']:<9} {o['status']:<8} {version:<4} gate: {gate}")
        if metrics:
            print(f"             held-out: {metrics}")
    scored = score()
    versions = ", ".join(f"{k} v{v}" for k, v in scored["versions"].items()) or "none"
    print(f"   flow 'score': {scored['pumps']} pumps scored by the champions ({versions}), {scored['alarms']} in alarm")


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


def sync_and_respond(settings: Settings) -> dict[str, Any]:
    """Run the twin-sync flow and print the health table, alerts and candidate responses."""
    from pumptwin.flows.twin_sync import twin_sync

    print("4. twin: flow 'twin-sync' (calibration from tags, health index and alerts, candidate responses) ...")
    result = twin_sync(window_s=SYNC_WINDOW_S, history_s=SYNC_HISTORY_S)
    print(f"   {result['message']}")
    state_file = settings.state_dir / "state.json"
    if state_file.is_file():
        from pumptwin.flows.twin_store import load_twin

        _, state = load_twin(settings)
        if state is not None:
            frame = state.to_frame()
            print()
            _print_table(frame[[c for c in HEALTH_COLUMNS if c in frame.columns]])
            if state.alerts:
                print()
                print("   alerts, with their evidence:")
                for alert in state.alerts[:8]:
                    print(f"   - {alert.message()}")
            print(conventional_alarms(settings))
    for folder in result["whatif_folders"]:
        table = Path(folder) / "whatif.csv"
        if table.is_file():
            frame = pd.read_csv(table)
            keep = ["scenario", *[c for c in WHATIF_COLUMNS if c in frame.columns]]
            print()
            print(f"   candidate responses, simulated on the calibrated twin ({folder}):")
            _print_table(frame[keep].rename(columns=WHATIF_COLUMNS))
    show_recommendation(result.get("recommendation"))
    return result


def show_recommendation(result: dict[str, Any] | None) -> None:
    """Print the recommend flow's chosen action per line, the runners-up and the start of the justification."""
    if not result or not result.get("lines"):
        return
    print()
    print("5. agent: flow 'recommend' (candidates and a setpoint search on the twin, ranked, evidence cited) ...")
    for line in result["lines"]:
        data = json.loads((Path(line["folder"]) / "recommendation.json").read_text(encoding="utf-8"))
        chosen = data["chosen"]
        score, writer = chosen["score"], data["generator"]
        print(f"   line {line['line']}: recommended: {chosen['name']} (score {score:.3g}, text: {writer})")
        for alt in data["alternatives"][:RUNNERS_UP]:
            why = "rejected: " + "; ".join(alt["rejected"])[:90] if alt["rejected"] else f"score {alt['score']:.3g}"
            print(f"     instead of {alt['name']}: {why}")
        print(f"   cites {len(data['citations'])} passages: {', '.join(c['id'] for c in data['citations'][:6])}")
        print(f"   approver's page: {line['folder']}/recommendation.md")


def where_to_look(settings: Settings) -> None:
    """Print where the results are and how to open the user interfaces on them."""
    home = settings.home
    print()
    print("where to look:")
    print(f"  twin state       {settings.state_dir}/state.md (health, alerts), calibration.json")
    print(f"  what-ifs         {settings.whatif_dir}/ (tables, JSON, pump curves, pressure profile plots)")
    print(f"  scores           {settings.scores_dir}/latest.parquet   plots: {home}/plots/")
    print(f"  MLflow UI        .venv/bin/mlflow ui --backend-store-uri {settings.mlflow_tracking_uri}")
    print("  Feast UI         cd features && ../.venv/bin/feast ui")
    print(f"  Prefect UI       PREFECT_HOME={settings.prefect_home} .venv/bin/prefect server start  (runs, artifacts)")
    print(f"  recommendation   {settings.recommend_dir}/ (action, alternatives, justification, citations, plots)")
    print("  ask the twin     .venv/bin/pumptwin whatif --flow +10%   (see README.md)")
    print('  ask the docs     .venv/bin/pumptwin ask "why is PS01.P1 in alarm?"')


def run(settings: Settings, network: Path | None = None) -> int:
    """Run the demo; return an exit code (0 when every step ran)."""
    t0 = time.perf_counter()
    if network is not None:
        return solve_base_case(network, settings)
    ingest_plant_data(settings)
    build_and_train(settings)
    sync_and_respond(settings)
    where_to_look(settings)
    print(f"\ndone in {time.perf_counter() - t0:.0f} s")
    return 0


def solve_base_case(network: Path, settings: Settings) -> int:
    """Solve a network's base case and print its headline figures."""
    net = load_network(network)
    model = compile_network(net)
    result = evaluate(model, [WhatIf("base case")], accuracy=settings.twin.accuracy)
    print(f"network: {net.name}: {len(net.junctions)} junctions, {len(net.pipes)} pipes, {len(net.pumps)} pumps")
    for row in result.summary(model, None):
        print("  " + ", ".join(f"{k}={v}" for k, v in row.items()))
    return 0 if result.converged.all() else 1
