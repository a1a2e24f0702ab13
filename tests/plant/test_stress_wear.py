"""Stress wear: a fault's damage clock runs with how hard the pump is driven, and its trip follows the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from pumptwin.plant.health import STRESS_EXPONENT, HealthError, Mode, damage_clock, severity, stress_rate
from pumptwin.plant.scenario import (
    FaultSpec,
    OperationsSpec,
    Scenario,
    ScenarioError,
    scenario_from_dict,
    scenario_to_dict,
)
from pumptwin.plant.simulator import Plant
from pumptwin.twin.hydraulic.network import Network

MakeScenario = Callable[..., Scenario]
HOUR = 3600.0


def bearing(stress: bool, **kw: object) -> FaultSpec:
    """DE bearing wear of PS01.P1 from 0.5 h to 2 h, linear, tripping at failure."""
    return FaultSpec(Mode.BEARING_WEAR, "PS01.P1", 0.5 * HOUR, 2 * HOUR, "linear", 1.0, True, stress=stress, **kw)  # type: ignore[arg-type]


def trip_times_s(plant: Plant, asset: str = "PS01.P1") -> list[float]:
    """Seconds after the start of each protection trip of ``asset``."""
    ops = plant.ground_truth().operations
    rows = ops[(ops["action"] == "trip") & (ops["source"] == "protection") & (ops["pumps"] == asset)]
    return [(ts - plant.scenario.start).total_seconds() for ts in rows["ts"]]


def damage(plant: Plant, asset: str = "PS01.P1") -> pd.Series:
    """The hidden DE bearing damage of ``asset`` by time."""
    pumps = plant.ground_truth().pumps
    return pumps[pumps["asset"] == asset].set_index("ts")["bearing_de"]


# ------------------------------------------------------------------ closed forms


def test_stress_rate_closed_form() -> None:
    rate = stress_rate(np.array([0.0, 0.5, 0.95, 1.0, -0.1]), 0.95, 3.0)
    np.testing.assert_allclose(rate, [0.0, (0.5 / 0.95) ** 3, 1.0, (1.0 / 0.95) ** 3, 0.0])
    with pytest.raises(HealthError, match="reference speed"):
        stress_rate([1.0], 0.0, 3.0)
    with pytest.raises(HealthError, match="exponent"):
        stress_rate([1.0], 1.0, -1.0)
    assert set(STRESS_EXPONENT) == {m for m in Mode if m is not Mode.LEAK}


def test_damage_clock_keeps_time_before_onset_and_runs_at_the_rate_after() -> None:
    t = np.arange(6) * 60.0
    starts, end = damage_clock(0.0, t, np.array([9.0, 9.0, 0.5, 0.5, 0.0, 2.0]), 60.0, onset_s=120.0)
    np.testing.assert_allclose(starts, [0.0, 60.0, 120.0, 150.0, 180.0, 180.0])
    assert end == pytest.approx(300.0)
    same, _ = damage_clock(0.0, t, np.ones(6), 60.0, onset_s=120.0)
    np.testing.assert_allclose(same, t)  # rate 1: the clock is the time
    np.testing.assert_allclose(severity(same, 120.0, 300.0, "linear"), severity(t, 120.0, 300.0, "linear"))


# ------------------------------------------------------------------ scenario fields


def test_stress_fields_read_write_and_validate(make_scenario: MakeScenario) -> None:
    scenario = make_scenario(faults=(bearing(True, stress_exponent=3.5, stress_speed=0.9), bearing(False)))
    data = scenario_to_dict(scenario)
    assert data["faults"][0]["stress"] is True and data["faults"][0]["stress_exponent"] == 3.5
    assert "stress" not in data["faults"][1]  # off: the record is as before
    back = scenario_from_dict(data)
    assert back.faults == scenario.faults
    assert back.faults[0].exponent == 3.5
    assert back.faults[1].exponent == STRESS_EXPONENT[Mode.BEARING_WEAR]
    data["faults"][0]["stress"] = "yes"
    with pytest.raises(ScenarioError, match="stress: expected true or false"):
        scenario_from_dict(data)
    with pytest.raises(ScenarioError, match="stress exponent"):
        bearing(True, stress_exponent=-1.0)
    with pytest.raises(ScenarioError, match="stress speed"):
        bearing(True, stress_speed=0.0)
    with pytest.raises(ScenarioError, match="pump modes only"):
        FaultSpec(Mode.LEAK, "LINE01.KP040", 0.0, 0.0, "step", 10.0, False, stress=True)


# ------------------------------------------------------------------ the plant


def test_stress_off_gives_the_same_readings_as_before(network: Network, make_scenario: MakeScenario) -> None:
    """A scenario without stress wear runs exactly as a plant that never heard of it (same trip, same values)."""
    scenario = make_scenario(faults=(bearing(False),))
    a, b = Plant(scenario, network), Plant(scenario, network)
    a.advance(3 * HOUR)
    for _ in range(6):  # in pieces, across the failure
        b.advance(0.5 * HOUR)
    ra, rb = a.read_tags(), b.read_tags()
    pd.testing.assert_frame_equal(ra, rb)
    assert trip_times_s(a) == [2 * HOUR]
    assert a.damage_clocks_s() == {}


def test_at_the_reference_speed_the_trip_comes_at_failure(network: Network, make_scenario: MakeScenario) -> None:
    """At the duty speed the damage clock keeps time: the same severities and trip step as without stress."""
    off = Plant(make_scenario(faults=(bearing(False),)), network)
    on = Plant(make_scenario(faults=(bearing(True),)), network)
    off.advance(3 * HOUR)
    for _ in range(9):  # blocks that do not line up with the trip
        on.advance(20 * 60.0)
    assert trip_times_s(on) == trip_times_s(off) == [2 * HOUR]
    pd.testing.assert_series_equal(damage(on), damage(off))
    pd.testing.assert_frame_equal(on.read_tags(), off.read_tags())


def test_slowing_the_pump_defers_the_trip(network: Network, make_scenario: MakeScenario) -> None:
    """Slowed to 0.8 of rated from 1 h, the rest of the damage accrues at (0.8/0.95)^4 of real time."""
    plant = Plant(make_scenario(faults=(bearing(True),)), network)
    plant.advance(HOUR)
    plant.write_setpoint("PS01.P1.SPEED_SP", 0.8 * 1480.0)
    plant.advance(3 * HOUR)
    rate = (0.8 / 0.95) ** STRESS_EXPONENT[Mode.BEARING_WEAR]
    expected = HOUR + HOUR / rate  # 0.5 h of damage done by 1 h, 1 h left at the lower rate
    (trip,) = trip_times_s(plant)
    assert trip == pytest.approx(expected, abs=120.0)
    assert trip > 2 * HOUR + 1800.0
    d = damage(plant)
    assert d.loc[plant.scenario.start + pd.Timedelta(hours=2)] < 0.8  # a steady pump would have failed


def test_stopping_the_pump_halts_wear_and_repair_removes_it(network: Network, make_scenario: MakeScenario) -> None:
    plant = Plant(make_scenario(faults=(bearing(True),), duration_s=6 * HOUR), network)
    plant.advance(HOUR)
    plant.write_setpoint("PS01.P1.STATUS", 0.0)
    plant.advance(3 * HOUR)
    assert trip_times_s(plant) == []
    d = damage(plant)
    stopped = d[d.index >= plant.scenario.start + pd.Timedelta(hours=1, minutes=2)]
    assert stopped.max() - stopped.min() < 1e-12  # no wear while stopped
    assert 0.2 < stopped.iloc[0] < 0.5
    clock = plant.damage_clocks_s()["bearing_wear@PS01.P1"]
    assert clock == pytest.approx(HOUR, abs=61.0)
    assert plant.repair("PS01.P1") == 1
    plant.write_setpoint("PS01.P1.STATUS", 1.0)
    plant.advance(2 * HOUR)
    assert trip_times_s(plant) == []
    assert damage(plant).iloc[-1] == 0.0
    assert "repair" in set(plant.ground_truth().operations["action"])


def test_repair_cancels_a_pending_trip_without_stress(network: Network, make_scenario: MakeScenario) -> None:
    plant = Plant(make_scenario(faults=(bearing(False),)), network)
    plant.advance(HOUR)
    assert plant.repair("PS01.P1") == 1
    plant.advance(2 * HOUR)
    assert trip_times_s(plant) == []


def test_a_trip_starts_the_standby_and_stops_the_clock(network: Network, make_scenario: MakeScenario) -> None:
    scenario = make_scenario(
        faults=(bearing(True),),
        operations=replace(
            OperationsSpec(speed=0.95, daily_swing=0.0, nomination_s=0.0, nomination_jitter=0.0), auto_standby=True
        ),
    )
    plant = Plant(scenario, network)
    plant.advance(3 * HOUR)
    assert trip_times_s(plant) == [2 * HOUR]
    assert plant.damage_clocks_s()["bearing_wear@PS01.P1"] == pytest.approx(2 * HOUR)
    assert bool(plant.operations.on[2])  # PS01.P3, the standby, took over
