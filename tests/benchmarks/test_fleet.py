"""The fleet benchmark: its fleet, its exports, its meters, and (slow) one tiny run end to end."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks import fleet, fleet_setup


def test_lines_cover_the_pumps_in_stations_of_three() -> None:
    assert fleet_setup.lines_for(100) == 17 and fleet_setup.lines_for(300) == 50 and fleet_setup.lines_for(1000) == 167
    assert fleet_setup.lines_for(6) == 1 and fleet_setup.lines_for(7) == 2
    with pytest.raises(ValueError, match="got 0"):
        fleet_setup.lines_for(0)


def test_faults_fail_inside_the_history_or_develop_past_the_cycle() -> None:
    history = 3 * 86_400.0
    faults = fleet_setup.fleet_faults(17, history)
    assert len(faults) == 2  # lines 1 and 11
    scenario = fleet_setup.fleet_scenario(17, history)
    assert scenario.lines == 17 and scenario.duration_s == history + fleet_setup.CYCLE_S
    failing = [f for f in scenario.faults if f.failure_s <= history]
    developing = [f for f in scenario.faults if f.onset_s < history < f.failure_s]
    assert failing and developing and len(failing) + len(developing) == len(scenario.faults)
    stations = {int(f.target[2:4]) for f in scenario.faults}
    assert max(stations) <= 2 * 17


def test_export_writes_one_file_per_station(tmp_path: Path) -> None:
    readings = pd.DataFrame(
        {
            "tag": ["PS01.P1.SPEED", "PS02.P3.SPEED", "LINE01.KP010.PRESS", "PS01.P2.SPEED"],
            "ts": pd.to_datetime(["2024-03-01T00:00Z"] * 4, utc=True),
            "value": [1.0, 2.0, 3.0, 4.0],
            "quality": "good",
        }
    )
    paths = fleet_setup.export_per_station(readings, tmp_path / "export")
    assert [p.name for p in paths] == ["LINE01.parquet", "PS01.parquet", "PS02.parquet"]
    back = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
    assert sorted(back["value"]) == [1.0, 2.0, 3.0, 4.0]
    assert set(pd.read_parquet(paths[1])["tag"]) == {"PS01.P1.SPEED", "PS01.P2.SPEED"}


def test_growth_slope_is_the_log_log_slope() -> None:
    pumps = [100, 300, 1000]
    assert fleet.growth_slope(pumps, [2 * p for p in pumps]) == pytest.approx(1.0)
    assert fleet.growth_slope(pumps, [p**2 for p in pumps]) == pytest.approx(2.0)
    assert fleet.growth_slope(pumps, [5.0, 5.0, 5.0]) == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(fleet.growth_slope([100], [1.0]))


def test_memory_sampler_sees_a_child_process_grow() -> None:
    import subprocess
    import sys

    code = "import time; x = bytearray(200 * 2**20); x[::4096] = b'1' * len(x[::4096]); time.sleep(1.5)"
    with fleet.MemorySampler(period_s=0.05) as mem:
        base = fleet.MemorySampler.tree_rss_mb()
        subprocess.run([sys.executable, "-c", code], check=True)
    assert mem.peak_mb >= base + 150


def test_environment_is_restored() -> None:
    os.environ.pop("PUMPTWIN_FLEET_PROBE", None)
    with fleet.environment(PUMPTWIN_FLEET_PROBE="1"):
        assert os.environ["PUMPTWIN_FLEET_PROBE"] == "1"
    assert "PUMPTWIN_FLEET_PROBE" not in os.environ


def test_plot_draws_both_runners(tmp_path: Path) -> None:
    rows = [
        {"runner": r, "pumps": p, "seconds": {s: float(p) / 100 for s in (*fleet.STAGES, "total")}}
        for r in ("local", "dask")
        for p in (6, 12)
    ]
    path = fleet.plot(rows, tmp_path / "fleet.png")
    assert path.stat().st_size > 1000


@pytest.mark.slow
def test_a_tiny_fleet_runs_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUMPTWIN_HOME", str(tmp_path))
    code = fleet.main(["--pumps", "6", "12", "--runner", "local"])
    report = json.loads((tmp_path / "bench" / "fleet.json").read_text())
    assert (tmp_path / "bench" / "fleet.png").is_file()
    rows = report["results"]
    assert [r["pumps"] for r in rows] == [6, 12]
    for row in rows:
        assert row["readings_stored"] > 0 and row["pumps_scored"] == row["pumps"]
        assert all(np.isfinite(v) and v >= 0 for v in row["seconds"].values())
        assert row["peak_rss_mb"] > 0
    assert report["setup"]["6"]["training"]["anomaly"].startswith("trained")
    assert code in (0, 1)  # 1: a tiny fleet does not reach the 1,000-pump target
