"""The EPANET 2.2 reference runner: agreement with wntr, unit conversion, scenario semantics."""

from __future__ import annotations

import ctypes
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import wntr
from wntr.epanet.toolkit import ENepanet

from benchmarks.epanet_reference import (
    EpanetResult,
    ScenarioSet,
    random_scenarios,
    read_network,
    solve_scenarios,
)

NETWORKS = Path(wntr.__file__).parent / "library" / "networks"
NET1 = NETWORKS / "Net1.inp"
NET3 = NETWORKS / "Net3.inp"
FT = 0.3048
GPM = 0.003785411784 / 60.0

# A small SI network (LPS) with a pump, a tank, a PRV, an emitter and demand patterns.
SMALL_SI_INP = """[TITLE]
Small SI test network

[JUNCTIONS]
;ID  Elev  Demand  Pattern
 J1  10    5       1
 J2  5     10      1
 J3  0     8       1
 J4  2     3
 J5  8     4       1
 PU  0     0

[RESERVOIRS]
 R1  20

[TANKS]
;ID Elev InitLvl MinLvl MaxLvl Diam MinVol
 T1  40   3       1      6      10   0

[PIPES]
;ID Node1 Node2 Length Diam Rough Minor Status
 P1  J1  J2  400  200  120  0  Open
 P2  J1  T1  300  150  120  0  Open
 P3  J3  J4  250  150  120  0  Open
 P4  J1  J5  350  150  120  0  Open
 P5  J5  J2  300  150  120  0  Open
 P6  PU  J1  10   300  120  0  Open

[PUMPS]
 PU1  R1  PU  HEAD C1

[VALVES]
;ID Node1 Node2 Diam Type Setting Minor
 V1  J2  J3  150  PRV  25  0

[CURVES]
 C1  50  40

[PATTERNS]
 1  1.5  1.0

[EMITTERS]
 J4  0.5

[OPTIONS]
 Units  LPS
 Headloss  H-W
 Trials  40
 Accuracy  0.001
 Unbalanced  Continue 10
 Pattern  1

[TIMES]
 Duration  24:00

[END]
"""


@pytest.fixture(scope="module")
def small_networks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The small network as an LPS/m file and, written by wntr, as a GPM/ft/psi file."""
    folder = tmp_path_factory.mktemp("small-network")
    si = folder / "small_si.inp"
    si.write_text(SMALL_SI_INP)
    us = folder / "small_us.inp"
    wntr.network.write_inpfile(wntr.network.WaterNetworkModel(str(si)), str(us), units="GPM")
    return si, us


def _epanet_simulator(inp: Path, prefix: Path) -> tuple[pd.Series, pd.Series]:
    """Heads (m) and flows (m3/s) of the file at time 0 from wntr.sim.EpanetSimulator at accuracy 1e-8."""
    wn = wntr.network.WaterNetworkModel(str(inp))
    wn.options.hydraulic.accuracy = 1e-8
    wn.options.hydraulic.trials = 200
    wn.options.time.duration = 0
    res = wntr.sim.EpanetSimulator(wn).run_sim(file_prefix=str(prefix))
    return res.node["head"].iloc[0], res.link["flowrate"].iloc[0]


def _float32_tolerance(reference: np.ndarray, atol: float) -> np.ndarray:
    """EpanetSimulator reads EPANET's binary output, which stores float32: allow three float32 steps on top."""
    return atol + 3.0 * np.spacing(np.abs(reference).astype(np.float32)).astype(np.float64)


def _row(sc: ScenarioSet, b: int) -> ScenarioSet:
    """Scenario b of a set, as a set of one."""
    fields = ("pump_speed", "link_open", "junction_demand_m3s", "emitter_coeff", "reservoir_head_m", "tank_level_m")
    kwargs = {f: {k: v[b : b + 1] for k, v in getattr(sc, f).items()} for f in fields}
    return ScenarioSet(n=1, valve_setting={k: v[b : b + 1] for k, v in sc.valve_setting.items()}, **kwargs)


def _link_flow(res: EpanetResult, link: str, b: int = 0) -> float:
    return float(res.flow_m3s[b, res.link_ids.index(link)])


def _head(res: EpanetResult, node: str, b: int = 0) -> float:
    return float(res.head_m[b, res.node_ids.index(node)])


# ---------------------------------------------------------------------------------------------
# Agreement with wntr and plain toolkit runs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("inp", [NET1, NET3], ids=["Net1", "Net3"])
def test_unmodified_network_reproduces_epanet_simulator(inp: Path, tmp_path: Path) -> None:
    heads, flows = _epanet_simulator(inp, tmp_path / "run")
    # EPANET's input parser raises ACCURACY to at least 1e-5 (input3.c), so the simulator's
    # "1e-8" run is a 1e-5 run: the same solve here reproduces it to its float32 output.
    same = solve_scenarios(inp, ScenarioSet(n=1), accuracy=1e-5, apply_controls=True)
    tight = solve_scenarios(inp, ScenarioSet(n=1), accuracy=1e-8, apply_controls=True)
    assert same.code.tolist() == tight.code.tolist() == [0]
    assert 0 < same.iterations[0] <= tight.iterations[0]
    h_ref = heads[same.node_ids].to_numpy(dtype=np.float64)
    q_ref = flows[same.link_ids].to_numpy(dtype=np.float64)
    assert np.all(np.abs(same.head_m[0] - h_ref) <= _float32_tolerance(h_ref, 1e-6))
    assert np.all(np.abs(same.flow_m3s[0] - q_ref) <= _float32_tolerance(q_ref, 1e-9))
    # Solved to 1e-8 the heads stay within the output's resolution; low flows move by up to ~1e-7 m3/s.
    assert np.all(np.abs(tight.head_m[0] - h_ref) <= _float32_tolerance(h_ref, 1e-6))
    np.testing.assert_allclose(tight.flow_m3s[0], q_ref, rtol=0, atol=2e-7)


@pytest.mark.parametrize("inp", [NET1, NET3], ids=["Net1", "Net3"])
def test_unmodified_network_matches_a_plain_toolkit_run_in_double_precision(inp: Path) -> None:
    en = ENepanet()
    en.ENopen(str(inp), "", "")
    try:
        assert en.ENgetflowunits() == 1  # GPM, with heads in ft
        en.ENsettimeparam(0, 0)
        assert en.ENlib.EN_setoption(en._project, ctypes.c_int(1), ctypes.c_double(1e-8)) == 0
        assert en.ENlib.EN_setoption(en._project, ctypes.c_int(0), ctypes.c_double(200.0)) == 0
        en.ENopenH()
        en.ENinitH(0)
        en.ENrunH()
        res = solve_scenarios(inp, ScenarioSet(n=1), accuracy=1e-8, trials=200, apply_controls=True)
        h_ref = np.array([en.ENgetnodevalue(en.ENgetnodeindex(i), 10) * FT for i in res.node_ids])
        q_ref = np.array([en.ENgetlinkvalue(en.ENgetlinkindex(i), 8) * GPM for i in res.link_ids])
        s_ref = np.array([en.ENgetlinkvalue(en.ENgetlinkindex(i), 11) for i in res.link_ids])
        en.ENcloseH()
    finally:
        en.ENclose()
    np.testing.assert_allclose(res.head_m[0], h_ref, rtol=0, atol=1e-6)
    np.testing.assert_allclose(res.flow_m3s[0], q_ref, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(res.status[0], s_ref)


def test_unit_conversion_of_a_gpm_ft_network(tmp_path: Path) -> None:
    info = read_network(NET3)
    assert info.flow_units == 1  # GPM
    assert info.flow_factor == pytest.approx(GPM, rel=1e-15)
    assert info.head_factor == FT
    res = solve_scenarios(NET3, ScenarioSet(n=1), apply_controls=True)
    # Fixed heads straight from the file: reservoir River at 220 ft, tank 1 at 131.9 + 13.1 ft.
    assert _head(res, "River") == pytest.approx(220.0 * FT, abs=1e-9)
    assert _head(res, "1") == pytest.approx((131.9 + 13.1) * FT, abs=1e-9)
    # A junction head and a pump flow as wntr reports them in SI.
    heads, flows = _epanet_simulator(NET3, tmp_path / "run")
    for node in ("10", "123", "275"):
        assert _head(res, node) == pytest.approx(float(heads[node]), abs=1e-4)
    assert _link_flow(res, "335") == pytest.approx(float(flows["335"]), rel=1e-6)
    assert _link_flow(res, "335") > 0.1  # m3/s, not GPM (thousands) nor cfs


def test_the_same_network_in_si_and_us_units_gives_the_same_si_results(small_networks: tuple[Path, Path]) -> None:
    sc = ScenarioSet(
        n=3,
        pump_speed={"PU1": np.array([1.0, 0.9, 1.05])},
        junction_demand_m3s={"J2": np.array([0.010, 0.012, 0.020])},
        emitter_coeff={"J4": np.array([0.0005, 0.0, 0.001])},
        reservoir_head_m={"R1": np.array([20.0, 19.0, 22.0])},
        tank_level_m={"T1": np.array([3.0, 1.5, 5.5])},
        valve_setting={"V1": np.array([25.0, 20.0, 30.0])},
    )
    si, us = (solve_scenarios(f, sc) for f in small_networks)
    assert si.code.tolist() == us.code.tolist() == [0, 0, 0]
    assert si.node_ids == us.node_ids
    # EPANET converts each unit system with its own rounded constants (e.g. 28.317 L/s per cfs):
    # the two files are the same network only to about 1e-5.
    np.testing.assert_allclose(si.head_m, us.head_m, rtol=0, atol=2e-4)
    np.testing.assert_allclose(si.flow_m3s, us.flow_m3s, rtol=1e-4, atol=1e-8)


# ---------------------------------------------------------------------------------------------
# Scenario semantics
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["si", "us"])
def test_scenario_values_mean_what_they_say(small_networks: tuple[Path, Path], which: str) -> None:
    inp = small_networks[0] if which == "si" else small_networks[1]
    c_leak = 0.001
    sc = ScenarioSet(
        n=2,
        junction_demand_m3s={"J2": np.array([0.012, 0.020]), "J4": np.array([0.001, 0.003])},
        emitter_coeff={"J4": np.array([0.0, c_leak])},
        reservoir_head_m={"R1": np.array([19.0, 22.0])},
        tank_level_m={"T1": np.array([1.5, 5.5])},
        valve_setting={"V1": np.array([20.0, 30.0])},
    )
    res = solve_scenarios(inp, sc)
    assert res.code.tolist() == [0, 0]
    q = {k: res.flow_m3s[:, i] for i, k in enumerate(res.link_ids)}
    h = {k: res.head_m[:, i] for i, k in enumerate(res.node_ids)}
    # J2's demand is the given value (its pattern multiplier 1.5 no longer applies).
    np.testing.assert_allclose(q["P1"] + q["P5"] - q["V1"], [0.012, 0.020], atol=1e-9)
    # J4 (elevation 2 m): demand plus emitter outflow C * sqrt(pressure head).
    np.testing.assert_allclose(q["P3"], [0.001, 0.003 + c_leak * math.sqrt(h["J4"][1] - 2.0)], atol=1e-9)
    np.testing.assert_allclose(h["R1"], [19.0, 22.0], atol=1e-9)
    np.testing.assert_allclose(h["T1"], [40.0 + 1.5, 40.0 + 5.5], atol=1e-9)
    # The PRV holds its setting as pressure head at J3 (elevation 0).
    np.testing.assert_allclose(h["J3"], [20.0, 30.0], atol=1e-6)


def test_pump_speed_and_pump_off_change_the_result() -> None:
    sc = ScenarioSet(n=3, pump_speed={"335": np.array([1.0, 0.9, 0.0])})
    res = solve_scenarios(NET3, sc)
    assert res.code.tolist() == [0, 0, 0]
    k = res.link_ids.index("335")
    q = res.flow_m3s[:, k]
    assert q[1] < q[0] - 1e-3
    assert q[2] == 0.0
    assert res.status[:, k].tolist() == [1, 1, 0]
    assert _head(res, "61", 1) < _head(res, "61", 0) - 0.1


def test_closing_a_pipe_changes_the_result() -> None:
    sc = ScenarioSet(n=3, link_open={"111": np.array([True, False, True])})
    res = solve_scenarios(NET1, sc)
    k = res.link_ids.index("111")
    assert res.flow_m3s[:, k].tolist()[1] == 0.0
    assert res.status[:, k].tolist() == [1, 0, 1]
    assert abs(res.flow_m3s[0, k]) > 1e-3
    assert np.abs(res.head_m[1] - res.head_m[0]).max() > 0.1
    # Scenario 2 reopens the pipe: the value set for scenario 1 does not leak into it.
    np.testing.assert_allclose(res.head_m[2], res.head_m[0], atol=1e-6)
    np.testing.assert_allclose(res.flow_m3s[2], res.flow_m3s[0], atol=1e-8)


def test_a_batch_gives_the_results_of_its_scenarios_solved_alone() -> None:
    sc = random_scenarios(NET3, 6, seed=3)
    batch = solve_scenarios(NET3, sc)
    for b in range(sc.n):
        alone = solve_scenarios(NET3, _row(sc, b))
        assert alone.code[0] == batch.code[b]
        if batch.code[b] == 0:
            # Each scenario starts from the previous one's flows: same solution to the accuracy.
            np.testing.assert_allclose(batch.head_m[b], alone.head_m[0], atol=1e-5)
            np.testing.assert_allclose(batch.flow_m3s[b], alone.flow_m3s[0], atol=1e-7)
    cold = solve_scenarios(NET3, sc, init_flows=True)
    ok = (cold.code == 0) & (batch.code == 0)
    np.testing.assert_allclose(cold.head_m[ok], batch.head_m[ok], atol=1e-5)
    assert cold.elapsed_s > 0 and batch.elapsed_s > 0


def test_controls_are_removed_unless_asked_for() -> None:
    # Net3: "Link 335 OPEN IF Node 1 BELOW 17.1" would reopen the pump at a level of 5 ft.
    sc = ScenarioSet(n=1, pump_speed={"335": np.array([0.0])}, tank_level_m={"1": np.array([5.0 * FT])})
    k = read_network(NET3).link_ids.index("335")
    assert solve_scenarios(NET3, sc).status[0, k] == 0
    assert solve_scenarios(NET3, sc, apply_controls=True).status[0, k] == 1


def test_invalid_scenarios_are_rejected() -> None:
    with pytest.raises(KeyError, match="nope"):
        solve_scenarios(NET1, ScenarioSet(n=1, pump_speed={"nope": np.ones(1)}))
    with pytest.raises(ValueError, match="shape"):
        solve_scenarios(NET1, ScenarioSet(n=2, pump_speed={"9": np.ones(3)}))
    with pytest.raises(ValueError, match="not a pump"):
        solve_scenarios(NET1, ScenarioSet(n=1, pump_speed={"10": np.ones(1)}))
    with pytest.raises(ValueError, match="within"):
        solve_scenarios(NET1, ScenarioSet(n=1, tank_level_m={"2": np.array([100.0])}))
    with pytest.raises(ValueError, match=">= 0"):
        solve_scenarios(NET1, ScenarioSet(n=1, emitter_coeff={"11": np.array([-1.0])}))


# ---------------------------------------------------------------------------------------------
# Random scenarios
# ---------------------------------------------------------------------------------------------


def _as_arrays(sc: ScenarioSet) -> dict[str, np.ndarray]:
    out = {}
    for name in ("pump_speed", "link_open", "junction_demand_m3s", "emitter_coeff", "reservoir_head_m", "tank_level_m"):
        for k, v in getattr(sc, name).items():
            out[f"{name}/{k}"] = v
    return out


def test_random_scenarios_are_deterministic_for_a_seed_and_vary_between_seeds() -> None:
    a, b, c = (random_scenarios(NET3, 50, seed=s) for s in (7, 7, 8))
    arrays_a, arrays_b, arrays_c = _as_arrays(a), _as_arrays(b), _as_arrays(c)
    assert arrays_a.keys() == arrays_b.keys()
    for k, v in arrays_a.items():
        np.testing.assert_array_equal(v, arrays_b[k])
    common = arrays_a.keys() & arrays_c.keys()
    assert any(not np.array_equal(arrays_a[k], arrays_c[k]) for k in common)


def test_random_scenarios_follow_their_distributions() -> None:
    n = 400
    info = read_network(NET3)
    sc = random_scenarios(NET3, n, seed=11)
    assert sc.n == n
    speeds = np.stack(list(sc.pump_speed.values()), axis=1)
    assert set(sc.pump_speed) == {"10", "335"}
    on = speeds > 0
    assert on.any(axis=1).all()
    assert ((speeds[on] >= 0.8) & (speeds[on] <= 1.05)).all()
    assert 0.05 < (~on).mean() < 0.25
    base = {k: info.base_demand_m3s[info.node_ids.index(k)] for k in sc.junction_demand_m3s}
    assert len(base) == int((info.node_types == 0).sum())
    for k, v in sc.junction_demand_m3s.items():
        assert ((v >= 0.6 * 0.9 * base[k] - 1e-15) & (v <= 1.4 * 1.1 * base[k] + 1e-15)).all()
    leaks = np.stack(list(sc.emitter_coeff.values()), axis=1)
    assert ((leaks > 0).sum(axis=1) <= 1).all()
    assert 0.4 < (leaks > 0).any(axis=1).mean() < 0.6
    q30 = leaks[leaks > 0] * math.sqrt(30.0)
    assert ((q30 >= 0.5e-3) & (q30 <= 5e-3)).all()
    for k, v in sc.tank_level_m.items():
        i = info.node_ids.index(k)
        assert ((v >= info.min_level_m[i]) & (v <= info.max_level_m[i])).all()
    assert not sc.reservoir_head_m
    assert not sc.link_open
    assert not sc.valve_setting
    # And they solve.
    res = solve_scenarios(NET3, random_scenarios(NET3, 20, seed=11), accuracy=1e-3)
    assert (res.code < 100).all()
    assert np.isfinite(res.head_m).all()
