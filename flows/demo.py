"""Wiring for ``pumptwin demo``: the main job on the embedded default.

Plant data first: the plant simulator runs a shipped scenario (a bearing wearing
out at PS01.P1) for two days, and the readings go through the Prefect ``ingest``
flow (validation, raw store, quarantine, a markdown artifact). Then the physics
twin: the reference pipeline's steady state and a set of what-ifs solved in one
batch, printed as a table of throughput, pressures, margins and energy. Later
capabilities (features, models, the closed loop) extend this job.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

from flows.settings import Settings
from twin.hydraulics import compile_network
from twin.io import load_network
from twin.whatif import WhatIf, evaluate

THROUGHPUT_LINK = "DEL"
COLUMNS = (
    ("scenario", "what-if", 28, "{}"),
    ("throughput_m3h", "flow m3/h", 9, "{:.0f}"),
    ("pumps_running", "pumps", 5, "{}"),
    ("max_pressure_mpa", "pmax MPa", 8, "{:.2f}"),
    ("maop_use_pct", "MAOP %", 6, "{:.0f}"),
    ("min_npsh_margin_m", "NPSH m", 6, "{:.1f}"),
    ("shaft_power_kw", "power kW", 8, "{:.0f}"),
    ("specific_energy_kwh_m3", "kWh/m3", 6, "{:.3f}"),
    ("leak_m3h", "leak m3/h", 9, "{:.1f}"),
    ("violations", "limits violated", 16, "{}"),
)


def reference_whatifs() -> list[WhatIf]:
    """The demo's what-ifs on the reference pipeline."""
    return [
        WhatIf("base case"),
        WhatIf("all pumps speed -10 %", speed_factor=0.9),
        WhatIf("PS2-P2 trips", pumps_off=("PS2-P2",)),
        WhatIf("throughput +10 %", throughput_factor=1.1, throughput_link=THROUGHPUT_LINK),
        WhatIf("start standby PS1-P3", pumps_on=("PS1-P3",)),
        WhatIf("start standby PS2-P3", pumps_on=("PS2-P3",)),
        WhatIf("origin level -8 m (suction)", fixed_head_m={"ORIGIN": 56.0}),
        WhatIf("leak at KP090 (~2 % of flow)", leaks={"KP090": 0.0017}),
    ]


def _table(rows: list[dict[str, object]]) -> str:
    head = "  ".join(f"{title:<{w}}" for _, title, w, _ in COLUMNS)
    lines = [head, "-" * len(head)]
    for row in rows:
        cells = []
        for key, _, w, fmt in COLUMNS:
            cells.append(f"{fmt.format(row[key]):<{w}}")
        lines.append("  ".join(cells))
    return "\n".join(lines)


DEMO_SCENARIO = "bearing_failure"
DEMO_WINDOW_END = "2024-03-03T00:00:00Z"


def ingest_plant_data(settings: Settings) -> dict[str, object]:
    """Simulate two days of the demo scenario and ingest them through the Prefect flow."""
    from flows.ingest import ingest

    print(f"1. plant: simulating scenario {DEMO_SCENARIO!r} up to {DEMO_WINDOW_END}, ingesting through the")
    print("   Prefect flow 'ingest' (validation with Great Expectations, raw store, quarantine) ...")
    summary = ingest(
        source=f"simulator:{DEMO_SCENARIO}", end=datetime.fromisoformat(DEMO_WINDOW_END), incremental=False
    )
    rejected = summary.get("rejected_by_reason") or {}
    print(f"   rows in {summary['rows_in']:,}, stored {summary['stored']:,}, quarantined {summary['rejected']:,}")
    for reason, count in sorted(rejected.items(), key=lambda kv: -kv[1]):
        print(f"     {count:6,}  {reason}")
    print(f"   raw store: {settings.raw_dir}   validation reports: {settings.validation_dir}/index.html")
    return summary


def run(settings: Settings, network: Path | None = None) -> int:
    """Ingest simulated plant data, solve the network and its what-ifs, print the results; return an exit code."""
    t0 = time.perf_counter()
    if network is None:
        ingest_plant_data(settings)
        print()
        print("2. twin: the reference pipeline and its what-ifs")
    net = load_network(network or settings.twin.network)
    model = compile_network(net)
    print(f"network: {net.name}")
    print(f"  {len(net.junctions)} junctions, {len(net.pipes)} pipes, {len(net.pumps)} pumps, fluid {net.fluid.name}")
    scenarios = reference_whatifs() if network is None and settings.twin.network is None else [WhatIf("base case")]
    result = evaluate(model, scenarios, accuracy=settings.twin.accuracy)
    rows = result.summary(model, THROUGHPUT_LINK if THROUGHPUT_LINK in model.link_index else None)
    print()
    print(_table(rows))
    out = settings.home / "demo"
    out.mkdir(parents=True, exist_ok=True)
    (out / "whatif.json").write_text(json.dumps(rows, indent=1, default=str))
    print()
    print(f"solved {len(scenarios)} scenarios in one batch; all converged: {bool(result.converged.all())}")
    print(f"results: {out / 'whatif.json'}  ({time.perf_counter() - t0:.1f} s)")
    print("flow runs and their artifacts: `prefect server start` with PREFECT_HOME=" + str(settings.prefect_home))
    print("next: `pumptwin solve FILE.inp --json out.json` solves any EPANET network; see README.md")
    return 0 if result.converged.all() else 1
