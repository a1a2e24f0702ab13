"""Wiring for ``pumptwin demo``: the main job on the embedded default.

For now the main job is the physics twin: load the reference pipeline, solve
its steady state, run a set of what-ifs in one batch and print a table of
throughput, pressures, margins and energy. Later capabilities (plant data,
features, models, the closed loop) extend this job.
"""

from __future__ import annotations

import json
import time
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


def run(settings: Settings, network: Path | None = None) -> int:
    """Solve the network and its what-ifs, print the table, write the results; return an exit code."""
    t0 = time.perf_counter()
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
    print("next: `pumptwin solve FILE.inp --json out.json` solves any EPANET network; see README.md")
    return 0 if result.converged.all() else 1
