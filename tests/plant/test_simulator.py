"""The plant: determinism, fault signatures before failure, leaks, the step API, hydraulic equivalences."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from pumptwin.plant.health import Mode
from pumptwin.plant.scenario import FaultSpec, OperationsSpec, OpsEventSpec, Scenario
from pumptwin.plant.sensors import QUALITY_NAMES, SensorConfig
from pumptwin.plant.simulator import SPEED_KEY_QUANTUM, LineHydraulics, Plant, PlantError
from pumptwin.twin.hydraulic.eps import initial_batch
from pumptwin.twin.hydraulic.network import Network
from pumptwin.twin.hydraulic.pumps import Degradation, apply_degradation
from pumptwin.twin.hydraulic.solver import compile_network, solve_batch

H = 3600.0
MakeScenario = Callable[..., Scenario]


def series(readings: pd.DataFrame, tag: str) -> pd.Series:
    rows = readings[readings["tag"] == tag].sort_values("ts")
    return pd.Series(rows["value"].to_numpy(), index=pd.DatetimeIndex(rows["ts"]))


def fault(mode: Mode, target: str, onset_h: float, failure_h: float, **kw: object) -> FaultSpec:
    from pumptwin.plant.health import MODE_INFO

    info = MODE_INFO[mode]
    args: dict[str, object] = {"law": info.law, "magnitude": info.magnitude, "trip": info.trips, **kw}
    return FaultSpec(mode, target, onset_h * H, failure_h * H, **args)  # type: ignore[arg-type]


def test_readings_contract_and_determinism(network: Network, make_scenario: MakeScenario) -> None:
    scenario = make_scenario(
        sensors=SensorConfig(dropout_rate=0.01, questionable_rate=0.01, bad_rate=0.01),
        operations=OperationsSpec(nomination_s=1800.0),
        lines=2,
        duration_s=2 * H,
    )
    a = Plant(scenario, network).run()
    b = Plant(scenario, network).run()
    pd.testing.assert_frame_equal(a, b)
    c = Plant(replace(scenario, seed=99), network).run()
    assert not a["value"].equals(c["value"])
    assert list(a.columns) == ["tag", "ts", "value", "quality"]
    assert a["tag"].map(type).eq(str).all()
    assert str(a["ts"].dtype) == "datetime64[ns, UTC]"
    assert a["value"].dtype == np.float64
    assert set(a["quality"]) <= set(QUALITY_NAMES)
    assert {"PS04.P3.SEAL_LEAK", "LINE02.DEL.FLOW"} <= set(a["tag"])
    assert a["ts"].min() == scenario.start
    assert a["ts"].max() == scenario.start + pd.Timedelta(seconds=2 * H - 60)


def test_bearing_fault_shows_before_failure_then_trips(network: Network, make_scenario: MakeScenario) -> None:
    scenario = make_scenario(
        duration_s=10 * H, faults=(fault(Mode.BEARING_WEAR, "PS01.P1", 1.0, 8.0, law="exponential"),)
    )
    plant = Plant(scenario, network)
    r = plant.run()
    t = scenario.start
    at = lambda tag, h: series(r, tag).asof(t + pd.Timedelta(hours=h))  # noqa: E731
    for tag in ("PS01.P1.VIB_DE_RMS", "PS01.P1.BRG_DE_TEMP"):
        assert at(tag, 7.9) > at(tag, 1.0) + 2.0, tag
    assert at("PS01.P1.VIB_DE_RMS", 7.9) > 3 * at("PS01.P2.VIB_DE_RMS", 7.9)
    assert at("PS01.P1.BRG_DE_TEMP", 7.9) > at("PS01.P2.BRG_DE_TEMP", 7.9) + 10
    assert at("PS01.P1.STATUS", 7.9) == 1 and at("PS01.P1.STATUS", 8.5) == 0
    assert at("PS01.P3.STATUS", 8.5) == 1  # the standby took over
    assert at("PS01.P1.FLOW", 8.5) == 0
    truth = plant.ground_truth()
    label = truth.labels.iloc[0]
    assert (label["asset"], label["mode"], bool(label["trip"])) == ("PS01.P1", "bearing_wear", True)
    assert label["onset_ts"] == t + pd.Timedelta(hours=1) and label["failure_ts"] == t + pd.Timedelta(hours=8)
    hidden = truth.pumps[truth.pumps["asset"] == "PS01.P1"].set_index("ts")["bearing_de"]
    assert hidden.is_monotonic_increasing and hidden.iloc[0] == 0 and hidden.iloc[-1] == 1
    assert "trip" in set(truth.operations["action"])


def test_leak_reduces_downstream_flow(network: Network, make_scenario: MakeScenario) -> None:
    scenario = make_scenario(
        duration_s=2 * H, faults=(fault(Mode.LEAK, "LINE01.KP040", 1.0, 1.0, law="step", magnitude=50.0),)
    )
    plant = Plant(scenario, network)
    r = plant.run()
    before, after = scenario.start + pd.Timedelta(minutes=50), scenario.start + pd.Timedelta(minutes=110)
    delivered = series(r, "LINE01.DEL.FLOW")
    upstream = series(r, "LINE01.L000_005.FLOW")
    assert delivered[after] < delivered[before] - 10.0  # PS01 pumps more against the lower back pressure
    assert upstream[after] >= upstream[before]
    assert upstream[after] - series(r, "LINE01.L055_060.FLOW")[after] == pytest.approx(50.0, rel=0.2)
    leaks = plant.ground_truth().leaks.set_index("ts")["leak_m3h"]
    assert leaks[before] == 0 and leaks[after] == pytest.approx(50.0, rel=0.2)


def test_cavitation_from_clogged_strainer(network: Network, make_scenario: MakeScenario) -> None:
    scenario = make_scenario(
        duration_s=4 * H, faults=(fault(Mode.STRAINER_CLOG, "PS01.P2", 0.5, 3.0, law="linear", magnitude=1.5),)
    )
    plant = Plant(scenario, network)
    r = plant.run()
    at = lambda tag, h: series(r, tag).asof(scenario.start + pd.Timedelta(hours=h))  # noqa: E731
    assert at("PS01.P2.STRAINER_DP", 3.5) > at("PS01.P2.STRAINER_DP", 0.25) + 0.5
    assert at("PS01.P2.VIB_DE_RMS", 3.5) > at("PS01.P2.VIB_DE_RMS", 0.25) + 1.0
    assert at("PS01.P2.FLOW", 3.5) < at("PS01.P1.FLOW", 3.5) - 50.0  # head drop: the sick pump delivers less
    hidden = plant.ground_truth().pumps.set_index(["ts", "asset"])
    late = hidden.xs("PS01.P2", level="asset").iloc[-1]
    assert late["npsh_margin_m"] < 3.0 and late["cavitation"] > 0.3


def test_step_api_speed_setpoint(network: Network, make_scenario: MakeScenario) -> None:
    plant = Plant(make_scenario(step_s=1.0, duration_s=H), network)
    plant.advance(600.0)
    first = plant.read_tags()
    speed0 = series(first, "PS01.P1.SPEED").iloc[-1]
    flow0 = series(first, "PS01.P1.FLOW").iloc[-1]
    plant.write_setpoint("PS01.P1.SPEED", 1300.0)
    plant.advance(600.0)
    second = plant.read_tags()
    assert second["ts"].min() > first["ts"].max()  # only readings since the last read
    speed = series(second, "PS01.P1.SPEED")
    assert speed0 > 1350 and speed.iloc[-1] == pytest.approx(1300.0, abs=0.5)
    assert series(second, "PS01.P1.SPEED_SP").iloc[-1] == pytest.approx(1300.0, abs=0.5)
    assert 1300.5 < speed.iloc[0] < speed0 - 1  # at 1 s steps the ramp shows
    assert series(second, "PS01.P1.FLOW").iloc[-1] < flow0 - 50
    plant.write_setpoint("PS01.P1.STATUS", 0)
    plant.advance(120.0)
    third = plant.read_tags()
    assert series(third, "PS01.P1.STATUS").iloc[-1] == 0
    assert series(third, "PS01.P1.FLOW").iloc[-1] == 0
    with pytest.raises(PlantError):
        plant.write_setpoint("PS01.P9.SPEED", 1000.0)
    with pytest.raises(PlantError):
        plant.write_setpoint("PS01.P1.VIB_DE_RMS", 1.0)


def test_events_and_unknown_targets(network: Network, make_scenario: MakeScenario) -> None:
    ops = OperationsSpec(
        nomination_s=0.0,
        events=(OpsEventSpec(3600.0, "PS01.P1", "switch", to="P3"), OpsEventSpec(5400.0, "PS02", "speed", 0.85)),
    )
    r = Plant(make_scenario(operations=ops), network).run()
    t = make_scenario().start
    assert series(r, "PS01.P1.STATUS").asof(t + pd.Timedelta(hours=2)) == 0
    assert series(r, "PS01.P3.STATUS").asof(t + pd.Timedelta(hours=2)) == 1
    assert series(r, "PS02.P1.SPEED").asof(t + pd.Timedelta(hours=2)) == pytest.approx(0.85 * 1480)
    with pytest.raises(PlantError, match="PS07.P1"):
        Plant(make_scenario(faults=(fault(Mode.SEAL_FAILURE, "PS07.P1", 1, 2),)), network)
    with pytest.raises(PlantError, match="junction"):
        Plant(make_scenario(faults=(fault(Mode.LEAK, "LINE01.ORIGIN", 1, 1, law="step"),)), network)


def test_impeller_wear_is_diameter_affinity(network: Network) -> None:
    """Solving at effective speed (1 - w) s gives the flows of the network with degraded curves."""
    wear = 0.05
    worn = compile_network(apply_degradation(network, {"PS1-P1": Degradation(impeller_wear=wear)}))
    ref = solve_batch(worn, initial_batch(worn, 1))
    line = LineHydraulics(network, ["DEL"], ["PS1-D"], [])
    speed = np.array([[1.0 - wear, 1.0, 0.0, 1.0, 1.0, 0.0]])
    features = line.lookup(line.keys(speed, np.zeros((1, 0)), np.zeros(1, np.int64)))
    flows = line.pump_field(features, "flow_m3s")[0]
    k = [worn.link_index[p] for p in worn.pump_ids]
    np.testing.assert_allclose(flows[[0, 1, 3, 4]], ref.flow_m3s[0, k][[0, 1, 3, 4]], rtol=1e-5)
    assert line.meter_flows_m3s(features)[0, 0] == pytest.approx(ref.flow_m3s[0, worn.link_index["DEL"]], rel=1e-5)
    assert SPEED_KEY_QUANTUM <= 1e-3
    again = line.lookup(line.keys(speed, np.zeros((1, 0)), np.zeros(1, np.int64)))
    assert line.solved == 1 and np.array_equal(again, features)  # cached
