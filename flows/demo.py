"""Wiring for ``pumptwin demo``: the whole loop on the embedded default, no servers.

A fault develops in the simulated plant and the twin catches it:

1. plant: the ``developing_faults`` scenario (the drive-end bearing of PS01.P1 starts to wear on
   day 7 and would fail on day 17; the impeller of PS02.P1 wears slowly from day 3) is simulated up
   to day 15.5 and its readings go through the Prefect ``ingest`` flow (validation, raw store,
   quarantine);
2. features: the ``build-features`` flow computes per-pump features and physics residuals,
   checks them and writes them to Feast (offline store, materialised online);
3. models: the ``train`` flow trains the anomaly detector, the failure-mode classifier and the
   time-to-failure model on the earlier days, judges them on the later ones, logs them to MLflow
   and promotes champions through the gate; the ``score`` flow scores the latest features;
4. twin: the ``twin-sync`` flow calibrates the twin from the tags (wear, vibration baselines,
   thermal resistance, line friction), fuses the scores into a health index with alerts and
   their evidence, and simulates candidate responses on the calibrated twin.

It prints what each step did and where to look (files, MLflow, Prefect, Feast). ``--network``
solves a given network's base case instead.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from pumptwin.flows.settings import Settings
from pumptwin.twin.hydraulic.io import load_network
from pumptwin.twin.hydraulic.solver import compile_network
from pumptwin.twin.whatif.engine import WhatIf, evaluate

DEMO_SCENARIO = "developing_faults"
DEMO_WINDOW_END = "2024-03-16T12:00:00Z"
"""Day 15.5 of the scenario: a day and a half before the bearing's functional failure."""
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
    print("3. models: flow 'train' (anomaly detector, failure mode, time to failure; MLflow, promotion gate) ...")
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


def conventional_alarms(settings: Settings, pump: str = "PS01.P1") -> str:
    """What a DCS would have said so far: the pump's worst vibration and bearing temperature against their limits."""
    from pumptwin.features.ingest.rawstore import RawStore
    from pumptwin.twin.whatif.engine import IsoZones, Limits

    tags = [f"{pump}.VIB_DE_RMS", f"{pump}.VIB_NDE_RMS", f"{pump}.BRG_DE_TEMP", f"{pump}.BRG_NDE_TEMP"]
    readings = RawStore(settings.raw_dir).read(pump.split(".", maxsplit=1)[0], tags=tags)
    good = readings[readings["quality"] == "good"].sort_values(["tag", "ts"])
    # a limit must hold for two consecutive samples (a DCS's on-delay ignores a single spike)
    held = good.groupby("tag")["value"].transform(lambda v: v.rolling(2).min())
    vib = held[good["tag"].str.contains("VIB")].max()
    temp = held[good["tag"].str.contains("BRG")].max()
    zone_d, trip = IsoZones().cd_mm_s, Limits().bearing_alarm_c
    fired = bool(vib >= zone_d or temp >= trip)
    return (
        f"   conventional alarms on {pump} so far: vibration max {vib:.2f} mm/s (zone D at {zone_d:g}),"
        f" bearing max {temp:.1f} degC (alarm at {trip:g}): {'fired' if fired else 'none yet'}"
    )


def sync_and_respond(settings: Settings) -> dict[str, Any]:
    """Run the twin-sync flow and print the health table, alerts and candidate responses."""
    from pumptwin.flows.twin_sync import twin_sync

    print("4. twin: flow 'twin-sync' (calibration from tags, health index and alerts, candidate responses) ...")
    result = twin_sync(window_s=SYNC_WINDOW_S, history_s=SYNC_HISTORY_S)
    print(f"   {result['message']}")
    state_file = settings.state_dir / "state.json"
    if state_file.is_file():
        from pumptwin.flows.twin_sync_steps import load_twin

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
    return result


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
    print("  ask the twin     .venv/bin/pumptwin whatif --flow +10%   (see README.md)")


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
