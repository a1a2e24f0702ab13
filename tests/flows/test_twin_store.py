"""The twin's saved files (`flows.twin_store`): read once while unchanged, read again after any save."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from pumptwin.flows.settings import Settings
from pumptwin.flows.twin_store import lines_registry, load_calibration, load_twin, state_paths
from pumptwin.twin.assets import build_registry
from pumptwin.twin.health.estimation import initial_calibration
from pumptwin.twin.health.io import write_calibration, write_state
from pumptwin.twin.health.state import TwinState
from pumptwin.twin.hydraulic.io import load_network, reference_pipeline_path

TS = pd.Timestamp("2024-03-02T06:00:00Z")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = Settings(home=tmp_path / "home")
    cal = replace(initial_calibration(build_registry(load_network(), 2)), ts=TS)
    paths = state_paths(settings)
    write_calibration(cal, paths["calibration"])
    write_state(TwinState(TS, (), (), cal), paths["state"])
    return settings


def test_an_unchanged_calibration_and_state_are_parsed_once(settings: Settings) -> None:
    cal, state = load_twin(settings)
    again, state_again = load_twin(settings)
    assert again is cal and state_again is state
    assert load_calibration(settings) is cal
    assert state is not None and state.calibration is cal


def test_a_save_of_the_same_size_is_read_again(settings: Settings) -> None:
    cal, state = load_twin(settings)
    assert cal is not None
    changed = replace(cal, ts=TS + pd.Timedelta(hours=1))  # the same number of characters on disk
    write_calibration(changed, state_paths(settings)["calibration"])
    new_cal, new_state = load_twin(settings)
    assert new_cal is not None and new_cal.ts == changed.ts
    assert new_state is not state and new_state is not None and new_state.calibration is new_cal


def test_a_save_of_the_same_content_keeps_what_was_parsed(settings: Settings) -> None:
    cal, state = load_twin(settings)
    assert cal is not None and state is not None
    write_calibration(cal, state_paths(settings)["calibration"])  # a new file, the same bytes
    write_state(state, state_paths(settings)["state"])
    assert load_twin(settings) == (cal, state)
    again = load_twin(settings)
    assert again[0] is cal and again[1] is state


def test_a_new_state_file_is_read_again(settings: Settings) -> None:
    cal, state = load_twin(settings)
    later = TwinState(TS + pd.Timedelta(minutes=5), (), (), cal)
    write_state(later, state_paths(settings)["state"])
    _, reread = load_twin(settings)
    assert reread is not state and reread is not None and reread.ts == later.ts


def test_a_removed_state_file_is_none_again(settings: Settings) -> None:
    load_twin(settings)
    state_paths(settings)["state"].unlink()
    assert load_twin(settings)[1] is None


def test_the_registry_of_lines_is_built_once_per_network_and_line_count(tmp_path: Path) -> None:
    inp = tmp_path / "line.inp"
    shutil.copy(reference_pipeline_path(), inp)
    shutil.copy(reference_pipeline_path().with_suffix(".yaml"), inp.with_suffix(".yaml"))
    two = lines_registry(inp, 2)
    assert lines_registry(inp, 2) is two
    assert lines_registry(None, 2) == two  # the packaged file, the same content
    three = lines_registry(inp, 3)
    assert len(three.pumps) == 3 * len(two.pumps) // 2
    assert lines_registry(inp, 2) == build_registry(load_network(inp), 2)


def test_a_changed_sidecar_rebuilds_the_registry_of_lines(tmp_path: Path) -> None:
    inp = tmp_path / "line.inp"
    shutil.copy(reference_pipeline_path(), inp)
    sidecar = inp.with_suffix(".yaml")
    shutil.copy(reference_pipeline_path().with_suffix(".yaml"), sidecar)
    before = lines_registry(inp, 1)
    sidecar.unlink()
    after = lines_registry(inp, 1)
    assert after is not before
    assert after == build_registry(load_network(inp), 1)
