"""Benchmark: ingest and validate 10 M readings of simulated plant data.

``python -m benchmarks.ingest`` (``make bench-ingest``) simulates the ``fleet_month`` fleet
(20 stations, 60 pumps, 1,020 tags at 1 minute, realistic sensor faults) until it has at least
``--rows`` readings, writes them to a Parquet file, then, in a fresh worker process, reads the
file and runs ``ingest_frame`` with the Great Expectations validation hook into an empty raw
store: validation, quarantine and partitioned, deduplicated Parquet writes. It prints rows,
seconds, rows/s and the worker's peak memory, and writes them to
``<PUMPTWIN_HOME>/bench/ingest.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

MINUTES_PER_DAY = 1440


def make_data(rows: int, path: Path, seed: int) -> int:
    """Simulate enough fleet data for ``rows`` readings and write it to ``path``; return its row count."""
    from pumptwin.plant.scenario import shipped_scenario
    from pumptwin.plant.simulator import Plant

    scenario = shipped_scenario("fleet_month")
    plant = Plant(dataclasses.replace(scenario, seed=seed))
    tags = len(plant.registry.tags)
    minutes = -(-rows // tags) * 11 // 10  # dropouts and slower tags: simulate 10 % more, then cut
    plant.advance(minutes * 60.0)
    frame = plant.read_tags().iloc[:rows]
    frame.to_parquet(path, index=False)
    return len(frame)


def worker(data: Path, store_root: Path, report_dir: Path) -> dict[str, Any]:
    """Read the data, then time ingestion with validation; return the figures (run in a fresh process)."""
    from pumptwin.features.ingest.pipeline import ingest_frame
    from pumptwin.features.ingest.rawstore import RawStore
    from pumptwin.features.validation import TagValidator
    from pumptwin.twin.assets import build_registry, measure_ranges
    from pumptwin.twin.hydraulic.io import load_network

    frame = pd.read_parquet(data)
    ranges = measure_ranges(build_registry(load_network()))
    validator = TagValidator(ranges, report_dir=report_dir, now=frame["ts"].max(), source=str(data))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    summary = ingest_frame(frame, RawStore(store_root), validate=validator, source_name="bench")
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {
        "rows": len(frame),
        "seconds": seconds,
        "rows_per_s": len(frame) / seconds,
        "stored": summary.stored,
        "quarantined": summary.rejected,
        "peak_rss_mb": peak_mb,
        "rss_before_ingest_mb": rss_before / 1024.0,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or, with ``--worker``, the timed part); print and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="readings to ingest")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--worker", nargs=3, metavar=("DATA", "STORE", "REPORTS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        data, store, reports = (Path(p) for p in args.worker)
        print(json.dumps(worker(data, store, reports)))
        return 0
    from pumptwin.flows.settings import get_settings

    settings = get_settings()
    with tempfile.TemporaryDirectory(prefix="pumptwin-bench-") as tmp:
        data = Path(tmp) / "readings.parquet"
        t0 = time.perf_counter()
        rows = make_data(args.rows, data, args.seed)
        print(f"simulated {rows:,} readings in {time.perf_counter() - t0:.1f} s")
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.ingest", "--worker", str(data), f"{tmp}/raw", f"{tmp}/validation"],
            check=True,
            capture_output=True,
            text=True,
        )
        figures = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        f"ingest + validate: {figures['rows']:,} rows in {figures['seconds']:.1f} s"
        f" = {figures['rows_per_s']:,.0f} rows/s;"
        f" stored {figures['stored']:,}, quarantined {figures['quarantined']:,};"
        f" worker peak memory {figures['peak_rss_mb']:,.0f} MB ({figures['rss_before_ingest_mb']:,.0f} MB with the"
        " data loaded, before ingesting)"
    )
    report = {
        "benchmark": "ingest",
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        **figures,
    }
    path = settings.bench_dir / "ingest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
