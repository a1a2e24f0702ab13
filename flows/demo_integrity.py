"""Inspection and integrity in ``pumptwin demo``: the line's ILI list, the dig list, a refused what-if, the round.

After the closed loop (steps 1-8 in `flows.demo` and `flows.demo_loop`) the demo turns to the
inspections, on the same reference line and the same simulated plant:

9. integrity: two in-line inspection runs of the reference line, five years apart, as the vendor
   delivers them (the plant's hidden corrosion sampled with the tool's sizing noise and odometer
   error, `pumptwin.plant.corrosion`; the newer one with a few bad rows), go through the
   ``integrity`` flow: loaded and quarantined, assessed by ASME B31G modified, growth between the
   runs, the dig list. Then the twin is asked for 5 % more throughput: MAOP holds, but a corroded
   feature downstream of the second station would be over its safe pressure, so the what-if is a
   violation naming the feature, and the derating says how much throughput the line may carry;
10. rounds: a technician's route through the first line's pumps (portable vibration,
    thermography, a visual check; `pumptwin.plant.rounds`) goes through the ``inspection-ingest``
    flow (validated, stored, weighed against the online sensors, fused into the twin's state),
    and the ``rounds`` flow plans the week's condition-based round: which pumps need a visit,
    and which the twin covers.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pumptwin.flows.demo import fmt_num, print_table, show
from pumptwin.flows.settings import Settings

if TYPE_CHECKING:
    from pumptwin.control.simulated import SimulatedController

RUNS = (("2021-05-01", -5.0, 5, 0), ("2026-05-01", 0.0, 17, 3))
"""The ILI runs written: (date, years from the plant's corrosion survey date, seed of the tool's errors, bad rows)."""
LAUNCH_CHAINAGE_M = 200.0
"""Where the tool is launched: the first station's discharge, m of chainage."""
FLOW_CHANGE_PCT = 5.0
"""The what-if asked of the twin: more throughput, %."""
DIG_ROWS = 4
"""Rows of the dig list shown."""
ROUTE_SEED = 3
"""Seed of the route instruments' errors."""
DIG_COLUMNS = {
    "rank": "rank",
    "feature_id": "feature",
    "km": "km",
    "clock": "clock",
    "depth_pct": "depth %",
    "length_mm": "length mm",
    "safe_mpa": "safe MPa",
    "erf": "ERF",
    "category": "category",
    "dig_by": "dig by",
}
"""Dig-list columns shown, with their headings."""


def plural(n: int, noun: str) -> str:
    """``n noun`` with an ``s`` unless n is 1."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def write_ili_exports(folder: Path) -> list[Path]:
    """Write the reference line's two ILI runs as the vendor delivers them (CSV, dated in the name)."""
    from pumptwin.plant.corrosion import grow, ili_export, reference_population

    folder.mkdir(parents=True, exist_ok=True)
    population = reference_population(0)
    written = []
    for date, years, seed, bad in RUNS:
        export = ili_export(
            grow(population, years),
            pd.Timestamp(date, tz="UTC"),
            np.random.default_rng(seed),
            launch_chainage_m=LAUNCH_CHAINAGE_M,
            bad_rows=bad,
        )
        path = folder / f"LINE01_MFL_{date}.csv"
        export.to_csv(path, index=False)
        written.append(path)
    return written


def dig_table(dig: pd.DataFrame) -> pd.DataFrame:
    """The top of the dig list in an excavation crew's units."""
    top = dig.head(DIG_ROWS)
    out = pd.DataFrame(
        {
            "rank": top["rank"],
            "feature_id": top["feature_id"],
            "km": (top["chainage_m"] / 1e3).round(2),
            "clock": top["clock_h"].map(lambda h: f"{int(h):d}:{round(60 * (h % 1)):02d}"),
            "depth_pct": (100 * top["depth_frac"]).round(0).astype(int),
            "length_mm": (1e3 * top["length_m"]).round(0).astype(int),
            "safe_mpa": (top["safe_pa"] / 1e6).round(2),
            "erf": top["erf"].round(2),
            "category": top["category"],
            "dig_by": top["dig_by"],
        }
    )
    return out.rename(columns=DIG_COLUMNS)


def integrity_step(settings: Settings) -> dict[str, Any]:
    """Step 9: the ILI runs through the integrity flow, the dig list, and a what-if the twin refuses."""
    from pumptwin.flows.integrity import integrity
    from pumptwin.flows.what_if import what_if

    show()
    show("9. integrity: flow 'integrity' (ILI list, ASME B31G modified, growth between runs, dig list) ...")
    folder = settings.integrity.ili_dir or settings.integrity_dir / "ili"
    written = write_ili_exports(folder)
    show(f"   the vendor's exports of line 1: {', '.join(p.name for p in written)} in {folder}")
    result = integrity(line=1)
    assessed = pd.read_parquet(result["files"]["assessed"])
    kinds = assessed["feature_type"].value_counts()
    counts = result["counts"]
    quarantined = sum(1 for _ in (settings.home / "quarantine" / "ili").glob("*.csv"))
    show(
        f"   run {result['assessed_run']}: {len(assessed)} features ({int(kinds.get('metal_loss', 0))} metal loss); "
        f"immediate {counts.get('immediate', 0)}, scheduled {counts.get('scheduled', 0)}, "
        f"monitor {counts.get('monitor', 0)}; bad rows quarantined with their reasons: "
        f"{quarantined} file(s) in {settings.home / 'quarantine' / 'ili'}"
    )
    if result["growth"] is not None:
        g = result["growth"]
        show(
            f"   growth since {g['from']} ({g['years']:.1f} years): {g['matched']} features matched after weld "
            f"alignment, {g['new']} new"
        )
    dig = pd.read_csv(result["files"]["dig_list"])
    show(f"   dig list ({len(dig)} features; {result['files']['dig_list']}):")
    print_table(dig_table(dig))
    if len(dig):
        show(f"   1: {dig['reason'].iloc[0]}")
    show()
    show(f"   what-if: {FLOW_CHANGE_PCT:+.0f} % throughput, checked against MAOP and every feature's safe pressure:")
    run = what_if(flow_change_pct=FLOW_CHANGE_PCT, line=1)
    report = json.loads((Path(run["folder"]) / "whatif.json").read_text(encoding="utf-8"))
    show_refusal(report)
    show(f"   ({run['integrity']}; files in {run['folder']})")
    return result


def show_refusal(report: dict[str, Any]) -> None:
    """Print the changed scenario's verdict: its integrity violations, its MAOP margin and the derating."""
    outcome = report["scenarios"][-1]
    integrity_hits = [v for v in outcome["violations"] if v["limit"] == "INTEGRITY"]
    maop_hits = [v for v in outcome["violations"] if v["limit"] == "MAOP"]
    verdict = "refused" if outcome["violations"] else "within limits"
    show(f"   {outcome['scenario']}: {verdict}, {fmt_num(outcome['throughput_m3h'], 4)} m3/h")
    for v in integrity_hits:
        show(
            f"     corroded feature {v['where']}: {v['value']:.2f} MPa against its safe pressure "
            f"{v['limit_value']:.2f} MPa"
        )
    margin = outcome.get("min_maop_margin_mpa")
    if not maop_hits and margin is not None and math.isfinite(margin):
        show(f"     MAOP kept: least margin {margin:.2f} MPa")
    for v in outcome["violations"]:
        if v["limit"] != "INTEGRITY":
            show(f"     {v['limit']} {v['where']}: {v['value']:.4g} {v['unit']} (limit {v['limit_value']:.4g})")
    derating = report.get("derating")
    if derating:
        station, limit = min(derating["discharge_limit_mpa"].items(), key=lambda kv: kv[1])
        show(
            f"   derating: at most {fmt_num(derating['throughput_m3h'], 4)} m3/h (now "
            f"{fmt_num(derating['current_throughput_m3h'], 4)}; MAOP alone would allow "
            f"{fmt_num(derating['maop_throughput_m3h'], 4)}) and {station}'s discharge at most {limit:.2f} MPa, "
            f"bound by feature {derating['binding_feature']}; the recommender treats both as hard limits"
        )


def rounds_step(settings: Settings, controller: SimulatedController) -> dict[str, Any]:
    """Step 10: a route through line 1's pumps, admitted and fused, then the week's condition-based round."""
    from pumptwin.flows.inspection import inspection_ingest
    from pumptwin.flows.rounds import rounds
    from pumptwin.plant.rounds import export_route_files, route_readings

    show()
    show("10. rounds: flows 'inspection-ingest' (route data into the twin) and 'rounds' (the week's round) ...")
    plant = controller.plant
    now = pd.Timestamp(plant.now)
    pumps = [f"{p.station}.{p.asset}" for p in plant.registry.pumps if p.station in ("PS01", "PS02")]
    frames = route_readings(plant, pumps, now, np.random.default_rng(ROUTE_SEED), collector="demo technician")
    incoming = settings.inspection.route_dir or settings.inspection_dir / "incoming"
    files = export_route_files(frames, incoming)
    show(f"   a technician's route through {len(pumps)} pumps: {', '.join(p.name for p in files)}")
    admitted = inspection_ingest(now=now.isoformat())
    show(f"   {admitted['message']}")
    for flag in admitted["flags"][:3]:
        show(f"   sensor flag: {flag}")
    planned = rounds(now=now.isoformat())
    visits = pd.read_csv(planned["paths"]["csv"])
    show(
        f"   {planned['key']}: visit {plural(len(planned['visits']), 'pump')} at "
        f"{plural(len(planned['stations']), 'station')}, {planned['hours']:.1f} h; "
        f"{plural(len(planned['covered']), 'pump')} covered by the twin "
        f"(a calendar route visits all {len(planned['visits']) + len(planned['covered'])})"
    )
    if len(visits):
        print_table(visits[["rank", "asset", "hours", "reason"]])
    show(f"   round: {planned['paths']['markdown']}")
    return planned
