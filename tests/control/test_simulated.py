"""The plant simulator behind the control interface: writes, readbacks, responses, trips, waits, save and load."""

from __future__ import annotations

import math
import pickle
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from pumptwin.control.interface import ControlError, Controller, Write
from pumptwin.control.interlocks import SpeedRange
from pumptwin.control.simulated import SimulatedController
from pumptwin.plant.health import MODE_INFO, Mode
from pumptwin.plant.scenario import FaultSpec, Scenario, shipped_scenario
from pumptwin.plant.sensors import SensorConfig
from pumptwin.plant.simulator import Plant

STEP_S = 2.0


def small(ideal: bool = True, **changes: object) -> Scenario:
    """The shipped healthy month cut to one steady hour at 2 s steps (ideal sensors unless told)."""
    base = shipped_scenario("healthy_month")
    ops = replace(base.operations, nomination_s=0.0, daily_swing=0.0, nomination_jitter=0.0, events=())
    scenario = replace(base, step_s=STEP_S, duration_s=3600.0, operations=ops, **changes)
    return replace(scenario, sensors=SensorConfig.ideal()) if ideal else scenario


@pytest.fixture
def ctl() -> SimulatedController:
    c = SimulatedController(Plant(small()))
    c.wait(300.0)
    return c


def test_is_a_controller_with_the_registry_ranges(ctl: SimulatedController) -> None:
    assert isinstance(ctl, Controller)
    ranges = ctl.ranges()
    assert set(ranges) == {p.name for p in ctl.plant.registry.pumps} and len(ranges) == 6
    assert ranges["PS01.P1"] == SpeedRange(0.7, 1.05)


def test_speed_write_is_read_back_and_flow_follows(ctl: SimulatedController) -> None:
    before = ctl.read(["PS01.P1.FLOW", "PS01.P1.SPEED_SP"])
    assert ctl.speed_setpoint("PS01.P1") == pytest.approx(0.95)
    assert before["PS01.P1.SPEED_SP"] == pytest.approx(0.95 * 1480, abs=0.5)
    t0 = ctl.plant.elapsed_s
    ctl.apply(Write("PS01.P1", "speed", 0.88))
    assert ctl.plant.elapsed_s == t0 + STEP_S  # one scan
    assert ctl.speed_setpoint("PS01.P1") == pytest.approx(0.88)  # the control system's own state, at once
    ctl.wait(120.0)
    after = ctl.read(["PS01.P1.FLOW", "PS01.P1.SPEED_SP", "PS01.P1.SPEED"])
    assert after["PS01.P1.SPEED_SP"] == pytest.approx(0.88 * 1480, abs=0.5)
    assert after["PS01.P1.SPEED"] == pytest.approx(0.88 * 1480, abs=0.5)
    assert after["PS01.P1.FLOW"] < before["PS01.P1.FLOW"] - 20  # slower pump, less flow
    ctl.apply(Write("PS01.P1", "speed", 1.0))
    ctl.wait(120.0)
    assert ctl.read(["PS01.P1.FLOW"])["PS01.P1.FLOW"] > before["PS01.P1.FLOW"] + 20


def test_start_and_stop_are_confirmed(ctl: SimulatedController) -> None:
    assert ctl.running("PS01.P1") and not ctl.running("PS01.P3")
    ctl.apply(Write("PS01.P3", "start"))
    assert ctl.running("PS01.P3")
    assert ctl.speed_setpoint("PS01.P3") == pytest.approx(0.95)  # a start takes the station's speed
    ctl.apply(Write("PS01.P1", "stop"))
    assert not ctl.running("PS01.P1")
    ctl.wait(120.0)
    now = ctl.read(["PS01.P1.STATUS", "PS01.P1.FLOW", "PS01.P3.STATUS", "PS01.P3.FLOW"])
    assert now["PS01.P1.STATUS"] == 0 and now["PS01.P1.FLOW"] == 0
    assert now["PS01.P3.STATUS"] == 1 and now["PS01.P3.FLOW"] > 100


def test_refusals_name_the_problem(ctl: SimulatedController) -> None:
    with pytest.raises(ControlError, match="no pump 'PS09.P1'"):
        ctl.apply(Write("PS09.P1", "speed", 0.9))
    with pytest.raises(ControlError, match="no pump"):
        ctl.speed_setpoint("PS01")
    with pytest.raises(ControlError, match="no controllable valves"):
        ctl.apply(Write("V1", "valve", 0.5))
    with pytest.raises(ControlError, match=r"outside its range 0.7..1.05"):
        ctl.apply(Write("PS01.P1", "speed", 1.2))
    with pytest.raises(ControlError, match="outside its range"):
        ctl.apply(Write("PS01.P1", "speed", math.nan))
    with pytest.raises(ControlError, match="'PS01.P1.NOPE' is not in the simulated plant"):
        ctl.read(["PS01.P1.FLOW", "PS01.P1.NOPE"])
    with pytest.raises(ControlError, match="cannot wait"):
        ctl.wait(-1.0)
    assert ctl.speed_setpoint("PS01.P1") == pytest.approx(0.95)  # nothing refused was written


def test_tripped_pump_is_locked_out() -> None:
    info = MODE_INFO[Mode.BEARING_WEAR]
    trip = FaultSpec(Mode.BEARING_WEAR, "PS01.P1", 0.0, 120.0, law="linear", magnitude=info.magnitude, trip=True)
    ctl = SimulatedController(Plant(small(faults=(trip,))))
    ctl.wait(200.0)
    assert not ctl.running("PS01.P1")
    with pytest.raises(ControlError, match="PS01.P1 tripped on a protection and is locked out: cannot start"):
        ctl.apply(Write("PS01.P1", "start"))
    with pytest.raises(ControlError, match="locked out: cannot speed"):
        ctl.apply(Write("PS01.P1", "speed", 0.9))
    ctl.apply(Write("PS01.P1", "stop"))  # stopping a tripped pump is harmless
    assert not ctl.running("PS01.P1")


def test_read_before_any_reading_is_nan_and_cached_values_persist() -> None:
    ctl = SimulatedController(Plant(small(ideal=False)))
    assert math.isnan(ctl.read(["PS01.P1.FLOW"])["PS01.P1.FLOW"])
    ctl.wait(600.0)
    first = ctl.read(["PS01.P1.FLOW", "LINE01.DEL.FLOW"])
    assert all(math.isfinite(v) for v in first.values())
    assert ctl.read(["PS01.P1.FLOW", "LINE01.DEL.FLOW"]) == first  # nothing new: the cache answers


def test_wait_carries_part_steps() -> None:
    ctl = SimulatedController(Plant(small()))
    for _ in range(4):
        ctl.wait(0.5)
    assert ctl.plant.elapsed_s == STEP_S
    ctl.wait(5.0)
    assert ctl.plant.elapsed_s == 3 * STEP_S
    ctl.wait(1.0)  # 1 s carried + 1 s = one step
    assert ctl.plant.elapsed_s == 4 * STEP_S


def test_saved_plant_continues_identically(tmp_path: Path) -> None:
    ctl = SimulatedController(Plant(small(ideal=False)))
    ctl.wait(300.0)
    ctl.read(["PS01.P1.FLOW"])
    path = tmp_path / "state" / "plant.pkl"
    ctl.save(path)
    assert [p.name for p in path.parent.iterdir()] == ["plant.pkl"]  # no temporary file left
    loaded = SimulatedController.load(path)
    assert loaded.read(["PS01.P1.FLOW"]) == ctl.read(["PS01.P1.FLOW"])
    for c in (ctl, loaded):
        c.apply(Write("PS01.P2", "speed", 0.9))
        c.wait(301.0)
    a, b = ctl.plant.read_tags(), loaded.plant.read_tags()
    assert len(a) > 1000
    pd.testing.assert_frame_equal(a, b)
    assert ctl.plant.ground_truth().pumps.equals(loaded.plant.ground_truth().pumps)
    ctl.save(path)  # replaces the file
    assert SimulatedController.load(path).plant.elapsed_s == ctl.plant.elapsed_s


def test_load_refuses_other_files(tmp_path: Path) -> None:
    with pytest.raises(ControlError, match="cannot load"):
        SimulatedController.load(tmp_path / "missing.pkl")
    junk = tmp_path / "junk.pkl"
    junk.write_bytes(b"not a pickle")
    with pytest.raises(ControlError, match="not a saved simulated plant"):
        SimulatedController.load(junk)
    other = tmp_path / "other.pkl"
    other.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ControlError, match="holds a dict"):
        SimulatedController.load(other)
