"""The SKAB benchmark driver: the setting grid, leave-one-group-out headline, JSON and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pumptwin.flows.bench_steps import skab
from pumptwin.models import skab_benchmark as bench
from pumptwin.models.ensemble import CalibratedEnsemble, skab_ensemble
from pumptwin.models.skab import FEATURES, labelled_files


def write_skab(root: Path, groups: tuple[str, ...] = ("valve8", "valve9"), drop: float = 8.0, n: int = 600) -> None:
    """A tiny SKAB-like folder: per group one labelled file whose flow drops by ``drop`` from row 480.

    The ``anomaly-free`` file is 1200 healthy rows: one segment of `bench.HEALTHY_SEGMENT_ROWS`.
    """
    onset = 480
    rng = np.random.default_rng(0)

    def table(rows: int) -> pd.DataFrame:
        df = pd.DataFrame({c: 10.0 + rng.normal(size=rows) for c in FEATURES})
        df.insert(0, "datetime", pd.date_range("2020-01-01", periods=rows, freq="1s").strftime("%Y-%m-%d %H:%M:%S"))
        return df

    (root / "anomaly-free").mkdir(parents=True)
    table(1200).to_csv(root / "anomaly-free" / "anomaly-free.csv", sep=";", index=False)
    for group in groups:
        df = table(n)
        df.loc[onset:, "Volume Flow RateRMS"] -= drop
        df["anomaly"] = (np.arange(n) >= onset).astype(float)
        df["changepoint"] = (np.arange(n) == onset).astype(float)
        (root / group).mkdir()
        df.to_csv(root / group / "0.csv", sep=";", index=False)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("PUMPTWIN_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_grid_is_small_general_and_buildable():
    grid = bench.grid()
    assert len(grid) == len(bench.TARGET_FARS) * len(bench.MIN_RUNS) * len(bench.SMOOTHS) == 27
    assert grid["far0.1-run20-smooth10"] == bench.Setting(target_far=0.1, min_run=20, smooth=10)
    ens = grid["far0.02-run40-smooth5"].ensemble()
    assert isinstance(ens, CalibratedEnsemble)
    assert (ens.target_far, ens.min_run, ens.detectors[0].smooth) == (0.02, 40, 5)
    # the default SKAB ensemble is a point of the grid
    default = skab_ensemble()
    assert bench.Setting(default.target_far, default.min_run, default.detectors[0].smooth).name in grid


def test_headline_is_leave_one_group_out_and_exit_0_when_met(tmp_path, home, capsys):
    data = tmp_path / "skab"
    write_skab(data)
    assert [p.parent.name for p in labelled_files(data)] == ["valve8", "valve9"]
    out = tmp_path / "pred.csv"
    assert skab(data, out) == 0
    printed = capsys.readouterr().out
    assert "leave-one-group-out (headline)" in printed and "optimistic" in printed and "met" in printed
    figures = json.loads((home / "bench" / "skab.json").read_text())
    assert figures["headline"] == "leave_one_group_out"
    logo = figures["leave_one_group_out"]
    assert [f["held_out"] for f in logo["folds"]] == ["valve8", "valve9"]
    assert all(f["chosen"] in figures["grid"] for f in logo["folds"])
    assert figures["f1"] == logo["f1"] > 0.9 and figures["nab_standard"] == logo["nab_standard"] > 30
    assert figures["in_sample"]["chosen"] in figures["grid"]
    assert figures["healthy_segments"] == 1
    assert all(0 <= v <= 100 for v in figures["healthy_far_pct"].values())
    assert figures["met"] is True and figures["missed"] == []
    table = pd.read_csv(out)
    assert list(table.columns) == ["file", "datetime", "anomaly", "changepoint"]
    assert len(table) == 400 and set(table["file"]) == {"valve8/0.csv", "valve9/0.csv"}


def test_exit_1_when_the_headline_misses_a_target(tmp_path, home, capsys):
    data = tmp_path / "skab"
    write_skab(data, drop=0.0)  # labelled faults the sensors never show
    assert skab(data, None) == 1
    assert "MISSED: F1" in capsys.readouterr().out
    figures = json.loads((home / "bench" / "skab.json").read_text())
    assert figures["met"] is False and figures["missed"][0].startswith("F1")


def test_exit_2_on_a_missing_folder_or_a_single_group(tmp_path, home, capsys):
    assert skab(tmp_path / "nowhere", None) == 2
    assert "nowhere not found" in capsys.readouterr().err
    data = tmp_path / "skab"
    write_skab(data, groups=("valve9",))
    assert skab(data, None) == 2
    assert "at least two groups" in capsys.readouterr().err
    assert not (home / "bench" / "skab.json").exists()


def test_cli_passes_the_exit_code_on(tmp_path, home):
    from pumptwin.flows.cli import app

    result = CliRunner().invoke(app, ["bench", "skab", "--data", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
