"""Benchmark: one full hourly cycle of a fleet of 100, 300 and 1,000 pumps, in-process and on Dask.

``python -m benchmarks.fleet --pumps 100 300 1000 --runner local dask`` prepares, per fleet size, a
fleet of ``ceil(pumps / 6)`` copies of the reference pipeline (stations of three pumps) in its own
home folder under a temporary folder (`benchmarks.fleet_setup.prepare`: simulate the history and the
cycle's hour, ingest the history, build its features, train the three model families, synchronise
the twin, index the knowledge store; its time is reported, not counted). Then, per runner, on a
fresh copy of that home, it runs the Prefect ``cycle`` flow once over the next hour's window,
ingesting the hour from the per-station files of a historian export, and reports the wall time of
each stage (ingest + validation, features, scores, twin sync, scenarios + recommendations for the
lines on alert), the total, the assets on alert, and the peak memory (RSS of this process and
all its children, the Dask workers included, sampled every ``SAMPLE_S``).

Runners: ``local`` (Prefect's thread pool in the flow's process, ``--workers`` threads) and ``dask``
(Prefect's Dask task runner on a `distributed.LocalCluster` of ``--workers`` single-threaded worker
processes, started once before any cycle is timed: its start time is reported apart; one untimed
warm-up cycle on a copy of the first fleet lets its workers import the stack and compile the
solver's kernels, as a long-lived cluster's workers have, and its time is reported too). A temporary
Prefect API server is started once (`prefect.testing.utilities.prefect_test_harness`).

The figures go to ``<bench_dir>/fleet.json`` and a plot of the stage times against the fleet size
to ``<bench_dir>/fleet.png``. The growth exponent of each runner is the log-log slope of the total
time against the pumps. The target: a cycle of 1,000 pumps in under ``TARGET_S`` and growth no worse
than linear (slope <= ``MAX_SLOPE``); missing it prints ``target missed`` on stderr and exits 1.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.fleet_setup import Fleet, lines_for, prepare

TARGET_S = 300.0
"""A full cycle of 1,000 pumps must take less than this, s."""
TARGET_PUMPS = 1000
MAX_SLOPE = 1.1
"""Largest log-log slope of total time against pumps that counts as linear growth."""
HISTORY_S = 3 * 86_400.0
"""History simulated before the cycle: the 24 h feature window, then enough rows to train on."""
SAMPLE_S = 0.2
MIN_SIZES = 2
"""Fleet sizes a growth slope needs."""
"""Memory sampling period, s."""
STAGES = ("ingest", "features", "score", "twin_sync", "respond")


class MemorySampler:
    """Peak RSS of this process and all its descendants, sampled in a thread.

    Usage example:
    ```python
    with MemorySampler() as mem:
        work()
    mem.peak_mb
    ```
    """

    def __init__(self, period_s: float = SAMPLE_S) -> None:
        """Store the sampling period; nothing is sampled before `__enter__`."""
        self.period_s = period_s
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def tree_rss_mb() -> float:
        """RSS of this process and its descendants now, MB."""
        import psutil

        me = psutil.Process()
        total = 0
        for proc in [me, *me.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return total / 2**20

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, self.tree_rss_mb())
            self._stop.wait(self.period_s)

    def __enter__(self) -> MemorySampler:
        """Start sampling."""
        self.peak_mb = self.tree_rss_mb()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop sampling (one last sample)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak_mb = max(self.peak_mb, self.tree_rss_mb())


@contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables for the block, then restore them."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def growth_slope(pumps: Sequence[float], seconds: Sequence[float]) -> float:
    """Least-squares slope of log(seconds) against log(pumps) (NaN with fewer than two sizes)."""
    x = np.log(np.asarray(pumps, dtype=float))
    y = np.log(np.maximum(np.asarray(seconds, dtype=float), 1e-9))
    if len(x) < MIN_SIZES or np.ptp(x) == 0:
        return math.nan
    return float(np.polyfit(x, y, 1)[0])


def home_env(home: Path, runner: str, workers: int, address: str | None) -> dict[str, str]:
    """The environment the cycle flow reads its settings from."""
    env = {
        "PUMPTWIN_HOME": str(home),
        "PUMPTWIN_RUNNER_KIND": runner,
        "PUMPTWIN_RUNNER_WORKERS": str(workers),
        "PUMPTWIN_MODELS_AUTOENCODER": "false",
    }
    if address is not None:
        env["PUMPTWIN_RUNNER_ADDRESS"] = address
    return env


def run_cycle(fleet: Fleet, home: Path, runner: str, workers: int, address: str | None) -> dict[str, Any]:
    """Run the ``cycle`` flow once on ``home`` with ``runner``; stage times, peak memory and counts."""
    from pumptwin.flows.cycle import cycle
    from pumptwin.flows.runner import with_runner
    from pumptwin.flows.settings import get_settings

    with environment(**home_env(home, runner, workers, address)):
        settings = get_settings()
        flow_obj = with_runner(cycle, settings)
        with MemorySampler() as mem:
            t = time.perf_counter()
            summary = flow_obj(source=str(home / "export"), start=fleet.start, end=fleet.end)
            wall = time.perf_counter() - t
    seconds = {k: float(summary["seconds"][k]) for k in (*STAGES, "total")}
    return {
        "runner": runner,
        "seconds": seconds,
        "flow_wall_s": wall,
        "peak_rss_mb": mem.peak_mb,
        "readings_in": summary["ingest"]["rows_in"],
        "readings_stored": summary["ingest"]["stored"],
        "feature_rows": summary["features"]["stored"],
        "pumps_scored": summary["score"]["pumps"],
        "pumps_in_alarm": summary["score"]["alarms"],
        "assets_on_alert": len(summary["twin"]["assets_on_alert"]),
        "lines_on_alert": len(summary["twin"]["lines_on_alert"]),
        "scenario_runs": len(summary["scenarios"]),
        "recommendations": len(summary["recommendations"]),
    }


def prepare_size(root: Path, pumps: int, knowledge: Path | None) -> tuple[Fleet, float]:
    """Prepare the fleet of ``pumps`` in ``<root>/fleet-<pumps>/base``; the knowledge folder is copied in."""
    from pumptwin.flows.settings import get_settings

    home = root / f"fleet-{pumps}" / "base"
    home.mkdir(parents=True, exist_ok=True)
    with environment(PUMPTWIN_HOME=str(home), PUMPTWIN_MODELS_AUTOENCODER="false"):
        settings = get_settings()
        if knowledge is not None:
            shutil.copytree(knowledge, settings.knowledge_dir, dirs_exist_ok=True)
        t = time.perf_counter()
        fleet = prepare(settings, lines_for(pumps), HISTORY_S, knowledge=True)
        return fleet, time.perf_counter() - t


def plot(results: list[dict[str, Any]], path: Path) -> Path:
    """Stage times against pumps, one panel per runner (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runners = sorted({r["runner"] for r in results})
    fig, axes = plt.subplots(1, len(runners), figsize=(6 * len(runners), 4.5), squeeze=False, sharey=True)
    for ax, runner in zip(axes[0], runners, strict=True):
        rows = sorted((r for r in results if r["runner"] == runner), key=lambda r: r["pumps"])
        x = [r["pumps"] for r in rows]
        for stage in (*STAGES, "total"):
            ax.plot(x, [r["seconds"][stage] for r in rows], marker="o", label=stage, lw=2.5 if stage == "total" else 1)
        ax.axhline(TARGET_S, color="red", ls="--", lw=1, label="target (1,000 pumps)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("pumps")
        ax.set_title(f"runner: {runner}")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("wall time of one cycle, s")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _load() -> dict[str, float]:
    one, five, fifteen = os.getloadavg()
    return {"load_1m": one, "load_5m": five, "load_15m": fifteen}


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0912, PLR0915 - one linear report
    """Prepare each fleet, time one cycle per runner, print the table, write JSON and plot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pumps", type=int, nargs="+", default=[100, 300, 1000])
    parser.add_argument("--runner", nargs="+", choices=["local", "dask"], default=["local", "dask"])
    parser.add_argument("--workers", type=int, default=2, help="threads (local) or worker processes (dask)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary homes")
    args = parser.parse_args(argv)
    from prefect.testing.utilities import prefect_test_harness

    from pumptwin.flows.settings import get_settings

    out_dir = Path(get_settings().bench_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="pumptwin-fleet-"))
    results: list[dict[str, Any]] = []
    setups: dict[int, dict[str, Any]] = {}
    cluster = client = None
    cluster_start_s = None
    warmup_s: float | None = None
    knowledge: Path | None = None
    try:
        with prefect_test_harness(server_startup_timeout=120):
            if "dask" in args.runner:
                from distributed import Client, LocalCluster

                t = time.perf_counter()
                cluster = LocalCluster(
                    n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None
                )
                client = Client(cluster)
                client.wait_for_workers(args.workers)
                cluster_start_s = time.perf_counter() - t
                print(f"dask: LocalCluster of {args.workers} worker processes started in {cluster_start_s:.1f} s")
            for pumps in args.pumps:
                load_before = _load()
                fleet, setup_s = prepare_size(root, pumps, knowledge)
                if knowledge is None and fleet.settings.knowledge_dir.is_dir():
                    knowledge = root / "knowledge"
                    shutil.copytree(fleet.settings.knowledge_dir, knowledge)
                setups[pumps] = {
                    "pumps": fleet.pumps,
                    "lines": fleet.lines,
                    "stations": fleet.stations,
                    "history_s": HISTORY_S,
                    "history_readings": fleet.history_rows,
                    "cycle_readings": fleet.cycle_rows,
                    "training": fleet.training,
                    "setup_s": setup_s,
                    "setup_stages_s": fleet.setup_s,
                    "load_before": load_before,
                }
                print(f"{pumps} pumps ({fleet.pumps} simulated): setup {setup_s:.0f} s {fleet.setup_s}", flush=True)
                if "dask" in args.runner and warmup_s is None:
                    # fresh worker processes import the stack and compile the solver's kernels on their
                    # first tasks: one untimed cycle first, so the timed ones show a long-lived cluster
                    home = root / f"fleet-{pumps}" / "warmup"
                    shutil.copytree(fleet.settings.home, home)
                    address = cluster.scheduler_address if cluster is not None else None
                    warmup_s = run_cycle(fleet, home, "dask", args.workers, address)["seconds"]["total"]
                    print(f"dask: untimed warm-up cycle of {pumps} pumps took {warmup_s:.1f} s", flush=True)
                    shutil.rmtree(home, ignore_errors=True)
                for runner in args.runner:
                    home = root / f"fleet-{pumps}" / runner
                    shutil.copytree(fleet.settings.home, home)
                    address = cluster.scheduler_address if runner == "dask" and cluster is not None else None
                    row = run_cycle(fleet, home, runner, args.workers, address)
                    row.update({"pumps": pumps, "load_after": _load()})
                    results.append(row)
                    s = row["seconds"]
                    print(
                        f"{pumps:>5} pumps {runner:>5}: "
                        + " ".join(f"{k} {s[k]:.1f}" for k in (*STAGES, "total"))
                        + f" s; peak {row['peak_rss_mb']:,.0f} MB; on alert {row['assets_on_alert']} assets"
                        f" / {row['lines_on_alert']} lines",
                        flush=True,
                    )
                    if not args.keep:
                        shutil.rmtree(home, ignore_errors=True)
                if not args.keep:
                    shutil.rmtree(fleet.settings.home, ignore_errors=True)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    slopes = {}
    for runner in args.runner:
        rows = sorted((r for r in results if r["runner"] == runner), key=lambda r: r["pumps"])
        slopes[runner] = {
            "total": growth_slope([r["pumps"] for r in rows], [r["seconds"]["total"] for r in rows]),
            **{s: growth_slope([r["pumps"] for r in rows], [r["seconds"][s] for r in rows]) for s in STAGES},
            "peak_rss": growth_slope([r["pumps"] for r in rows], [r["peak_rss_mb"] for r in rows]),
        }
        print(f"growth ({runner}): " + ", ".join(f"{k} {v:.2f}" for k, v in slopes[runner].items()))
    report = {
        "benchmark": "fleet",
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_at_end": _load(),
            "note": "shared machine: other work ran beside the benchmark (see the load averages)",
        },
        "settings": {
            "workers": args.workers,
            "history_s": HISTORY_S,
            "long_window_s": get_settings().models.long_window_s,
            "plots": False,
        },
        "dask_cluster_start_s": cluster_start_s,
        "dask_warmup_cycle_s": warmup_s,
        "setup": setups,
        "results": results,
        "growth_slopes": slopes,
        "target": {"pumps": TARGET_PUMPS, "seconds": TARGET_S, "max_slope": MAX_SLOPE},
    }
    out = out_dir / "fleet.json"
    out.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    if results:
        print(f"wrote {out} and {plot(results, out_dir / 'fleet.png')}")
    missed = [
        f"{r['runner']}: {r['seconds']['total']:.0f} s for {r['pumps']} pumps"
        for r in results
        if r["pumps"] >= TARGET_PUMPS and r["seconds"]["total"] >= TARGET_S
    ]
    missed += [f"{k}: growth slope {v['total']:.2f}" for k, v in slopes.items() if v["total"] > MAX_SLOPE]
    if missed:
        print("target missed: " + "; ".join(missed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
