"""The hydraulic speed benchmark: scenario splitting, EPANET timings, checks of what is timed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import wntr

from benchmarks import hydraulics as bench
from benchmarks.epanet_reference import (
    EpanetResult,
    ScenarioSet,
    concat_results,
    random_scenarios,
    read_network,
    solve_scenarios,
    solve_scenarios_parallel,
    split_bounds,
    take_scenarios,
)

NETWORKS = Path(wntr.__file__).parent / "library" / "networks"
NET1 = NETWORKS / "Net1.inp"
NET3 = NETWORKS / "Net3.inp"


def _result(n: int, *, started_s: float, elapsed_s: float, solver_s: float, set_s: float, value: float) -> EpanetResult:
    return EpanetResult(
        node_ids=["a", "b"],
        link_ids=["p"],
        head_m=np.full((n, 2), value),
        flow_m3s=np.full((n, 1), value),
        status=np.ones((n, 1), np.int32),
        elapsed_s=elapsed_s,
        iterations=np.full(n, 3),
        code=np.zeros(n, np.int32),
        solver_s=solver_s,
        set_s=set_s,
        started_s=started_s,
    )


@pytest.mark.parametrize(("n", "parts"), [(10, 2), (11, 2), (7, 3), (2, 4), (0, 2), (5, 1)])
def test_split_bounds_covers_every_scenario_once_in_near_equal_parts(n: int, parts: int) -> None:
    bounds = split_bounds(n, parts)
    assert len(bounds) == parts
    covered = [i for a, b in bounds for i in range(a, b)]
    assert covered == list(range(n))
    sizes = [b - a for a, b in bounds]
    assert max(sizes) - min(sizes) <= 1


def test_split_bounds_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="parts"):
        split_bounds(4, 0)
    with pytest.raises(ValueError, match="n >= 0"):
        split_bounds(-1, 2)


def test_take_scenarios_cuts_every_field_alike() -> None:
    sc = ScenarioSet(
        n=5,
        pump_speed={"P": np.arange(5.0)},
        link_open={"L": np.array([True, False, True, False, True])},
        junction_demand_m3s={"J": np.arange(5.0) / 10},
        emitter_coeff={"E": np.arange(5.0) + 1},
        reservoir_head_m={"R": np.arange(5.0) + 2},
        tank_level_m={"T": np.arange(5.0) + 3},
        valve_setting={"V": np.arange(5.0) + 4},
    )
    part = take_scenarios(sc, 1, 4)
    assert part.n == 3
    np.testing.assert_array_equal(part.pump_speed["P"], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(part.link_open["L"], [False, True, False])
    np.testing.assert_array_equal(part.valve_setting["V"], [5.0, 6.0, 7.0])
    np.testing.assert_array_equal(part.tank_level_m["T"], [4.0, 5.0, 6.0])
    part.pump_speed["P"][0] = 99.0
    assert sc.pump_speed["P"][1] == 1.0  # a copy, not a view
    with pytest.raises(ValueError, match="not within"):
        take_scenarios(sc, 3, 6)


def test_concat_results_spans_the_loops_run_side_by_side() -> None:
    first = _result(2, started_s=10.0, elapsed_s=1.0, solver_s=0.4, set_s=0.1, value=1.0)
    second = _result(3, started_s=10.2, elapsed_s=1.5, solver_s=0.7, set_s=0.2, value=2.0)
    joined = concat_results([first, second])
    assert joined.elapsed_s == pytest.approx(1.7)  # 10.0 to 11.7
    assert joined.solver_s == pytest.approx(0.7)
    assert joined.set_s == pytest.approx(0.2)
    assert joined.started_s == 10.0
    np.testing.assert_array_equal(joined.head_m[:, 0], [1.0, 1.0, 2.0, 2.0, 2.0])
    assert joined.flow_m3s.shape == (5, 1)
    assert joined.code.shape == joined.iterations.shape == (5,)
    with pytest.raises(ValueError, match="no results"):
        concat_results([])


def test_solve_scenarios_times_the_solver_and_the_set_calls_inside_the_loop() -> None:
    sc = random_scenarios(NET1, 20, seed=3)
    res = solve_scenarios(NET1, sc, init_flows=True)
    assert res.elapsed_s > 0
    assert 0 < res.solver_s < res.elapsed_s
    assert 0 < res.set_s < res.elapsed_s
    assert res.solver_s + res.set_s < res.elapsed_s
    figures = bench.epanet_figures(res)
    assert figures["solver_only_scen_per_s"] > figures["scen_per_s"] > 0
    shares = figures["set_calls_share"] + figures["solver_share"] + figures["read_share"]
    assert shares == pytest.approx(1.0)
    assert min(figures["set_calls_share"], figures["solver_share"], figures["read_share"]) > 0


def test_cold_start_results_do_not_depend_on_the_order_or_the_split() -> None:
    sc = random_scenarios(NET3, 30, seed=5)
    whole = solve_scenarios(NET3, sc, accuracy=1e-6, init_flows=True)
    parts = [
        solve_scenarios(NET3, take_scenarios(sc, a, b), accuracy=1e-6, init_flows=True) for a, b in [(0, 13), (13, 30)]
    ]
    joined = concat_results(parts)
    np.testing.assert_array_equal(joined.head_m, whole.head_m)
    np.testing.assert_array_equal(joined.flow_m3s, whole.flow_m3s)


@pytest.mark.slow
def test_solve_scenarios_parallel_matches_one_process() -> None:
    sc = random_scenarios(NET3, 24, seed=7)
    one = solve_scenarios(NET3, sc, accuracy=1e-6, init_flows=True)
    two = solve_scenarios_parallel(NET3, sc, 2, accuracy=1e-6, init_flows=True)
    np.testing.assert_array_equal(two.head_m, one.head_m)
    np.testing.assert_array_equal(two.flow_m3s, one.flow_m3s)
    np.testing.assert_array_equal(two.code, one.code)
    assert two.node_ids == one.node_ids
    assert two.elapsed_s > 0 and two.solver_s > 0 and two.set_s > 0


@pytest.mark.slow
def test_solve_scenarios_parallel_reports_a_failing_worker_without_hanging_the_others() -> None:
    info = read_network(NET3)
    tank = info.ids_of_node_type(2)[0]
    level = np.full(4, info.min_level_m[info.node_ids.index(tank)])
    level[3] = -1.0  # below the tank's minimum, in the second process's part only
    sc = ScenarioSet(n=4, tank_level_m={tank: level})
    with pytest.raises(RuntimeError, match=r"1: ValueError: tank_level_m"):
        solve_scenarios_parallel(NET3, sc, 2)


def test_best_of_takes_the_fastest_loop_and_the_fastest_solver() -> None:
    runs = [
        {"scen_per_s": 100.0, "solver_only_scen_per_s": 300.0, "set_calls_share": 0.2},
        {"scen_per_s": 120.0, "solver_only_scen_per_s": 250.0, "set_calls_share": 0.1},
    ]
    best = bench.best_of(runs)
    assert best == {"scen_per_s": 120.0, "solver_only_scen_per_s": 300.0, "set_calls_share": 0.1}
    with pytest.raises(ValueError, match="no runs"):
        bench.best_of([])


def test_worst_and_within_tolerance() -> None:
    ok = {"max_head_dev_m": 1e-5, "heads_outside_tolerance": 0, "flows_outside_tolerance": 0}
    bad = {"max_head_dev_m": 0.06, "heads_outside_tolerance": 3, "flows_outside_tolerance": 0}
    merged = bench.worst([ok, bad])
    assert merged == {"max_head_dev_m": 0.06, "heads_outside_tolerance": 3, "flows_outside_tolerance": 0}
    assert bench.within_tolerance(ok)
    assert not bench.within_tolerance(merged)
    assert not bench.within_tolerance({**ok, "flows_outside_tolerance": 1})


def test_ratios_compare_like_with_like() -> None:
    rates = {
        "epanet_1proc_scen_per_s": 1000.0,
        "epanet_1proc_solver_only_scen_per_s": 2000.0,
        "pumptwin_1thread_scen_per_s": 5000.0,
        "epanet_parallel_scen_per_s": 1800.0,
        "epanet_parallel_solver_only_scen_per_s": 3600.0,
        "pumptwin_parallel_scen_per_s": 9000.0,
    }
    r = bench.ratios(rates)
    assert r["ratio_per_core"] == pytest.approx(5.0)
    assert r["ratio_per_core_vs_solver_only"] == pytest.approx(2.5)
    assert r["ratio_parallel"] == pytest.approx(5.0)
    assert r["ratio_parallel_vs_solver_only"] == pytest.approx(2.5)
    assert r["ratio_threads_vs_1proc"] == pytest.approx(9.0)
    single = bench.ratios({k: v for k, v in rates.items() if "parallel" not in k})
    assert set(single) == {"ratio_per_core", "ratio_per_core_vs_solver_only"}


def test_run_network_checks_every_timed_result() -> None:
    row = bench.run_network("Net3", NET3, 16, seed=11, accuracy=1e-6, repeats=2, cores=1)
    assert row["timed_results_within_tolerance"]
    assert row["epanet_start"] == "cold"
    assert "EN_initH(10)" in row["epanet_start_call"]
    assert row["check_epanet_timed_vs_cold"]["max_head_dev_m"] == 0.0  # cold starts are the reference
    assert row["check_pumptwin_vs_epanet_cold"]["max_head_dev_m"] < bench.HEAD_TOL_M
    assert row["epanet_warm_1proc_scen_per_s"] > 0
    assert row["epanet_1proc_solver_only_scen_per_s"] > row["epanet_1proc_scen_per_s"]
    assert row["ratio_per_core"] == pytest.approx(row["pumptwin_1thread_scen_per_s"] / row["epanet_1proc_scen_per_s"])
    assert "ratio_parallel" not in row
    text = bench.format_row(row)
    assert "per core" in text and "cold-started" in text
    with pytest.raises(ValueError, match="epanet_start"):
        bench.run_network("Net3", NET3, 2, seed=1, accuracy=1e-6, epanet_start="tepid")


def test_main_fails_when_a_timed_result_is_outside_tolerance(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bench, "HEAD_TOL_M", 0.0)  # every live head now deviates "too much"
    rc = bench.main(["--scenarios", "8", "--repeats", "1", "--cores", "1"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "FAILED: timed results outside tolerance" in out
    path = Path(out.split("wrote ")[1].split()[0])
    report = json.loads(path.read_text())
    assert report["epanet_start"] == "cold"
    assert {r["network"] for r in report["results"]} == {"Net3", "reference pipeline"}
    assert not any(r["timed_results_within_tolerance"] for r in report["results"])


def test_main_passes_with_the_real_tolerances(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--scenarios", "8", "--repeats", "1", "--cores", "1"]) == 0
    assert "FAILED" not in capsys.readouterr().out


def test_deviations_flag_heads_and_flows_beyond_tolerance_and_count_their_scenarios() -> None:
    model = bench.compile_network(bench.load_network(NET3))
    sc = random_scenarios(NET3, 4, seed=13)
    ref = solve_scenarios(NET3, sc, accuracy=1e-6, init_flows=True)
    node_cols = [ref.node_ids.index(i) for i in model.node_ids]
    link_cols = [ref.link_ids.index(i) for i in model.link_ids]
    ref_head, ref_flow = ref.head_m[:, node_cols], ref.flow_m3s[:, link_cols]
    same = bench.deviations(model, bench._as_result(ref, node_cols, link_cols), ref_head, ref_flow)
    assert same["max_head_dev_m"] == 0.0
    assert bench.within_tolerance(same) and same["scenarios_outside_tolerance"] == 0

    off = bench._as_result(ref, node_cols, link_cols)
    live_link = int(np.argmax(np.abs(ref_flow[1])))
    live_node = int(model.link_n1[live_link])
    off.head_m[1, live_node] += 2 * bench.HEAD_TOL_M
    off.flow_m3s[1, live_link] *= 1 + 2 * bench.FLOW_TOL_REL
    off.flow_m3s[2, live_link] *= 1 + 0.5 * bench.FLOW_TOL_REL  # within the relative tolerance
    dev = bench.deviations(model, off, ref_head, ref_flow)
    assert dev["heads_outside_tolerance"] == 1
    assert dev["flows_outside_tolerance"] == 1
    assert dev["scenarios_outside_tolerance"] == 1
    assert dev["max_head_dev_m"] == pytest.approx(2 * bench.HEAD_TOL_M)
    assert not bench.within_tolerance(dev)
