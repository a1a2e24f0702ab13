"""The simulated controller hands over every reading the plant produced, for the historian to ingest."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from pumptwin.control import simulated
from pumptwin.control.interface import Write
from pumptwin.control.simulated import SimulatedController
from pumptwin.plant.scenario import Scenario, shipped_scenario
from pumptwin.plant.simulator import Plant

STEP_S = 60.0


def scenario() -> Scenario:
    """The shipped healthy month cut to two hours at 60 s steps, with the scenario's own (noisy) sensors."""
    return replace(shipped_scenario("healthy_month"), step_s=STEP_S, duration_s=7200.0)


def test_take_readings_returns_everything_read_drained_and_the_rest() -> None:
    reader = SimulatedController(Plant(scenario()))
    reader.wait(1200.0)
    latest = reader.read(["PS01.P1.FLOW"])  # drains the plant into the cache
    reader.apply(Write("PS01.P1", "speed", 0.9))
    reader.wait(600.0)
    taken = reader.take_readings()

    untouched = Plant(scenario())  # the same plant, never read through a controller
    untouched.advance(1200.0)
    untouched.write_setpoint("PS01.P1.SPEED_SP", 0.9 * untouched.registry.pumps[0].rated_speed_rpm)
    untouched.advance(STEP_S)  # the controller's scan of the write
    untouched.advance(600.0)
    expected = untouched.read_tags()

    assert list(taken.columns) == ["tag", "ts", "value", "quality"]
    assert taken["tag"].dtype == object and taken["quality"].dtype == object
    assert str(taken["ts"].dtype) == "datetime64[ns, UTC]"

    # nothing lost, nothing twice, bad readings included (the order of late arrivals depends on when drained)
    def ordered(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.sort_values(["ts", "tag", "quality"], kind="stable").reset_index(drop=True)

    pd.testing.assert_frame_equal(ordered(taken), ordered(expected))
    assert set(taken["quality"]) > {"good"}
    assert taken["ts"].max() >= pd.Timestamp(reader.plant.now) - pd.Timedelta(seconds=2 * STEP_S)
    # read() keeps working as before: the latest good value, from the cache
    assert latest["PS01.P1.FLOW"] > 0
    assert reader.read(["PS01.P1.FLOW"])["PS01.P1.FLOW"] != latest["PS01.P1.FLOW"]
    # taken once: the next call returns only what came after
    assert reader.take_readings().empty
    reader.wait(120.0)
    again = reader.take_readings()
    assert len(again) and again["ts"].min() > taken["ts"].max()


def test_the_buffer_is_bounded_and_saved_with_the_controller(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctl = SimulatedController(Plant(scenario()))
    ctl.wait(600.0)
    full = SimulatedController(Plant(scenario()))
    full.wait(600.0)
    everything = full.take_readings()
    monkeypatch.setattr(simulated, "MAX_BUFFERED_READINGS", 500)
    ctl.read(["PS01.P1.FLOW"])
    ctl.save(tmp_path / "plant.pkl")
    loaded = SimulatedController.load(tmp_path / "plant.pkl")
    kept = loaded.take_readings()
    assert len(kept) == 500 and loaded.readings_dropped == len(everything) - 500
    pd.testing.assert_frame_equal(kept, everything.iloc[-500:].reset_index(drop=True))
