"""Tests for `twin.plots`: the figures of a what-if report are written as PNG files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pumptwin.twin.hydraulic.io import load_network
from pumptwin.twin.hydraulic.solver import HydraulicModel, compile_network
from pumptwin.twin.whatif.plots import plot_pressure_profile, plot_pump_curves
from pumptwin.twin.whatif.report import WhatIfReport
from pumptwin.twin.whatif.scenarios import ScenarioSpec, run_scenarios

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def solved() -> tuple[HydraulicModel, WhatIfReport]:
    net = load_network()
    specs = [ScenarioSpec("stop PS2-P2", stop=("PS2-P2",)), ScenarioSpec("closed", links={"L050-055": "CLOSED"})]
    return compile_network(net), run_scenarios(net, specs)


def test_pump_curves_png(solved: tuple[HydraulicModel, WhatIfReport], tmp_path: Path) -> None:
    model, report = solved
    out = plot_pump_curves(model, report, tmp_path / "sub" / "curves.png")
    assert out == tmp_path / "sub" / "curves.png"
    assert out.read_bytes()[:8] == PNG_MAGIC and out.stat().st_size > 10_000


def test_pressure_profile_png(solved: tuple[HydraulicModel, WhatIfReport], tmp_path: Path) -> None:
    _, report = solved
    out = plot_pressure_profile(report, tmp_path / "profile.png")
    assert out.read_bytes()[:8] == PNG_MAGIC and out.stat().st_size > 10_000


def test_matplotlib_is_imported_lazily() -> None:
    code = "import sys, pumptwin.twin.whatif.plots; sys.exit(1 if 'matplotlib' in sys.modules else 0)"
    done = subprocess.run([sys.executable, "-c", code], check=False, cwd=Path(__file__).parents[3])
    assert done.returncode == 0
