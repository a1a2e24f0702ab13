"""Benchmark: peak memory of ``pumptwin ingest`` on a large wide CSV file.

``python -m benchmarks.ingest_memory [--size-gb 2.0]`` (``make bench-ingest-memory``) writes a wide
CSV file of the requested size (a timestamp column, 1 s apart, plus one column per tag of the
reference fleet's registry, every value within the tag's physical range) into a temporary folder
under ``<PUMPTWIN_HOME>/bench/tmp``, streaming it block by block. It then runs
``pumptwin ingest FILE --full`` in a subprocess whose ``PUMPTWIN_HOME`` is a fresh temporary home,
and measures the subprocess's peak resident memory (``getrusage(RUSAGE_CHILDREN).ru_maxrss``),
its wall time and readings per second, and counts the readings in its raw store and quarantine
against the readings written (from the parquet footers: the ingest compacts each partition it
wrote into one file at its end, so no stored row is counted twice), with the store's partitions
and data files. The figures are printed and written to
``<PUMPTWIN_HOME>/bench/ingest_memory.json``; the file and the temporary home are deleted.

Exit code 1 when the peak memory reaches the limit (``--limit-gb``, default 2 GB, decimal) or a
reading is lost (neither stored nor quarantined), else 0.

Example of the file (``--size-gb 0.001``, first columns)::

    ts,PS01.P1.SUCT_PRESS,PS01.P1.DISCH_PRESS,PS01.P1.FLOW,...
    2026-10-01T00:00:00Z,8.137,21.044,1187.512,...
    2026-10-01T00:00:01Z,2.904,37.560,402.118,...
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

GB = 1_000_000_000
"""Bytes in a (decimal) gigabyte: ``--size-gb`` and ``--limit-gb`` count in these."""
BODIES = 4096
"""Distinct rows of values the file cycles through (each drawn once within the tags' ranges)."""
BLOCK_ROWS = 20_000
"""Rows formatted and written at a time: the generator holds one block, never the file."""


@dataclass(frozen=True, slots=True)
class WideFile:
    """A generated wide CSV file.

    Attributes:
        path: The file.
        bytes: Its size, bytes.
        rows: Data rows (one timestamp each).
        tags: Tag columns (each row holds one reading per tag).
        start: Timestamp of the first row (UTC).
    """

    path: Path
    bytes: int
    rows: int
    tags: int
    start: pd.Timestamp

    @property
    def readings(self) -> int:
        """Readings in the file (every cell holds a value)."""
        return self.rows * self.tags


def registry_ranges() -> list[tuple[str, float, float]]:
    """Return (tag, low, high) of every tag of the reference fleet's registry (one line)."""
    from pumptwin.twin.assets import build_registry
    from pumptwin.twin.hydraulic.io import load_network

    return [(spec.tag, spec.low, spec.high) for spec in build_registry(load_network()).tags]


def row_bodies(ranges: list[tuple[str, float, float]], count: int, seed: int) -> list[str]:
    """Return `count` rows of values (no timestamp), each value well inside its tag's range.

    Args:
        ranges: (tag, low, high) per tag column, in column order.
        count: Rows to make.
        seed: Seed of the random values.

    Returns:
        Comma-joined values with 3 decimals, e.g. ``"8.137,21.044,1187.512"``.
    """
    rng = np.random.default_rng(seed)
    columns = []
    for _, low, high in ranges:
        values = low + (0.1 + 0.8 * rng.random(count)) * (high - low)
        columns.append([f"{v:.3f}" for v in values])
    return [",".join(cells) for cells in zip(*columns, strict=True)]


def write_wide_csv(
    path: Path, size_bytes: int, ranges: list[tuple[str, float, float]], start: pd.Timestamp, seed: int = 7
) -> WideFile:
    """Write a wide CSV file of at least `size_bytes` bytes, block by block.

    Args:
        path: Where to write it.
        size_bytes: Size to reach, bytes (the file ends at the first row boundary past it).
        ranges: (tag, low, high) per tag column.
        start: Timestamp of the first row; rows follow 1 s apart.
        seed: Seed of the values.

    Returns:
        What was written.
    """
    bodies = row_bodies(ranges, BODIES, seed)
    written = 0
    rows = 0
    t0 = np.datetime64(start.tz_convert("UTC").tz_localize(None).to_datetime64(), "s")
    with path.open("w", encoding="ascii", newline="\n") as out:
        header = "ts," + ",".join(tag for tag, _, _ in ranges) + "\n"
        out.write(header)
        written += len(header)
        while written < size_bytes:
            stamps = np.datetime_as_string(t0 + np.arange(rows, rows + BLOCK_ROWS), unit="s")
            lines = [f"{stamp}Z,{bodies[(rows + i) * 7919 % BODIES]}\n" for i, stamp in enumerate(stamps)]
            sizes = np.cumsum([len(line) for line in lines])
            take = min(int(np.searchsorted(sizes, size_bytes - written)) + 1, len(lines))
            block = "".join(lines[:take])
            out.write(block)
            written += len(block)
            rows += take
    return WideFile(path, path.stat().st_size, rows, len(ranges), start)


def parquet_rows(folder: Path, pattern: str) -> int:
    """Count the rows of the parquet files under `folder` matching `pattern` (from their footers)."""
    return sum(pq.ParquetFile(file).metadata.num_rows for file in folder.glob(pattern))


def pumptwin_command() -> list[str]:
    """Return the command that runs the ``pumptwin`` CLI of this environment."""
    script = Path(sys.executable).with_name("pumptwin")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from pumptwin.flows.cli import app; app()"]


def run_ingest(data: WideFile, home: Path, chunk_readings: int | None = None) -> dict[str, Any]:
    """Run ``pumptwin ingest FILE --full`` in a subprocess with its own home; return its figures.

    Args:
        data: The file to ingest.
        home: The subprocess's ``PUMPTWIN_HOME`` (its raw store and reports go there).
        chunk_readings: Readings per chunk (``PUMPTWIN_INGEST_CHUNK_READINGS``); None keeps the
            setting's default.

    Returns:
        Exit code, wall time, peak memory, rows stored and quarantined, partitions and their data
        files, and the output's tail.
    """
    env = {**os.environ, "PUMPTWIN_HOME": str(home)}
    if chunk_readings is not None:
        env["PUMPTWIN_INGEST_CHUNK_READINGS"] = str(chunk_readings)
    t0 = time.perf_counter()
    done = subprocess.run(
        [*pumptwin_command(), "ingest", str(data.path), "--full"],
        env=env,
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
    )
    seconds = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    raw = home / "raw"
    stored = parquet_rows(raw, "station=*/date=*/part-*.parquet") if raw.exists() else 0
    partitions = len(list(raw.glob("station=*/date=*"))) if raw.exists() else 0
    store_files = len(list(raw.glob("station=*/date=*/part-*.parquet"))) if raw.exists() else 0
    quarantined = parquet_rows(raw / "_quarantine", "**/*.parquet") if (raw / "_quarantine").exists() else 0
    return {
        "exit_code": done.returncode,
        "seconds": seconds,
        "peak_rss_mb": peak_kib / 1024.0,
        "peak_rss_bytes": peak_kib * 1024,
        "stored": stored,
        "quarantined": quarantined,
        "partitions": partitions,
        "store_files": store_files,
        "output_tail": (done.stdout + done.stderr)[-2000:],
    }


def summarise(data: WideFile, figures: dict[str, Any], limit_bytes: int) -> dict[str, Any]:
    """Combine the file's and the run's figures, and judge them against the limit."""
    lost = data.readings - figures["stored"] - figures["quarantined"]
    return {
        "benchmark": "ingest_memory",
        "file_bytes": data.bytes,
        "file_gb": data.bytes / GB,
        "csv_rows": data.rows,
        "tags": data.tags,
        "readings_expected": data.readings,
        "readings_lost": lost,
        "readings_per_s": data.readings / figures["seconds"] if figures["seconds"] > 0 else None,
        "csv_rows_per_s": data.rows / figures["seconds"] if figures["seconds"] > 0 else None,
        "limit_bytes": limit_bytes,
        "peak_over_file_size": figures["peak_rss_bytes"] / data.bytes,
        "passed": figures["exit_code"] in (0, 1) and figures["peak_rss_bytes"] < limit_bytes and lost == 0,
        **figures,
    }


def describe(report: dict[str, Any]) -> str:
    """Return the report as a few lines for the terminal."""
    verdict = "PASS" if report["passed"] else "FAIL"
    return "\n".join(
        [
            f"ingest_memory: {verdict}",
            f"  file: {report['file_gb']:.3f} GB, {report['csv_rows']:,} rows x {report['tags']} tags"
            f" = {report['readings_expected']:,} readings",
            f"  pumptwin ingest --full: exit {report['exit_code']}, {report['seconds']:.1f} s,"
            f" {report['readings_per_s'] or 0:,.0f} readings/s ({report['csv_rows_per_s'] or 0:,.0f} rows/s)",
            f"  peak RSS {report['peak_rss_mb']:,.0f} MB = {report['peak_over_file_size']:.2f} x the file"
            f" (limit {report['limit_bytes'] / GB:.2f} GB)",
            f"  stored {report['stored']:,}, quarantined {report['quarantined']:,}, lost {report['readings_lost']:,}"
            + (
                f" ({report['partitions']} partitions in {report['store_files']} files)"
                if "store_files" in report
                else ""
            ),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """Generate the file, run the ingest, print and write the figures; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=2.0, help="size of the generated CSV file, GB")
    parser.add_argument("--limit-gb", type=float, default=2.0, help="peak memory the ingest must stay under, GB")
    parser.add_argument("--chunk-readings", type=int, default=None, help="readings per chunk; default the setting's")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.size_gb <= 0:
        parser.error("--size-gb must be positive")
    from pumptwin.flows.settings import get_settings

    settings = get_settings()
    scratch = settings.bench_dir / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    ranges = registry_ranges()
    now = pd.Timestamp.now(tz="UTC").floor("D")
    with tempfile.TemporaryDirectory(prefix="ingest-memory-", dir=scratch) as tmp:
        rows_estimate = int(args.size_gb * GB / (len(row_bodies(ranges, 1, args.seed)[0]) + 22)) + 1
        start = now - pd.Timedelta(days=1) - pd.Timedelta(seconds=rows_estimate)
        t0 = time.perf_counter()
        data = write_wide_csv(Path(tmp) / "wide.csv", int(args.size_gb * GB), ranges, start, args.seed)
        print(f"wrote {data.bytes / GB:.3f} GB ({data.rows:,} rows) in {time.perf_counter() - t0:.1f} s")
        figures = run_ingest(data, Path(tmp) / "home", args.chunk_readings)
    report = summarise(data, figures, int(args.limit_gb * GB))
    report["chunk_readings"] = args.chunk_readings
    report["machine"] = {
        "cpu_count": os.cpu_count(),
        "memory_gb": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GB if hasattr(os, "sysconf") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    print(describe(report))
    if not report["passed"]:
        print(report["output_tail"])
    path = settings.bench_dir / "ingest_memory.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1))
    print(f"wrote {path}")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
