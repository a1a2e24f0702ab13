"""What `twin.hydraulic.eps` refuses before it runs (durations, time steps, memory) and what it flags after."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from pumptwin.twin.hydraulic.eps import (
    BYTES_PER_MB,
    STEP_BOOKKEEPING_BYTES,
    negative_pressures,
    result_bytes,
    run_times,
    simulate,
)
from pumptwin.twin.hydraulic.network import Demand, Junction, Network, NetworkError, Options, Pattern, Pipe, Reservoir
from pumptwin.twin.hydraulic.solver import HydraulicModel, compile_network

HEAD_M = 50.0
"""Reservoir head, m."""


def line(demand_m3s: float = 0.01, options: Options | None = None, multipliers: tuple[float, ...] = (1.0,)) -> Network:
    """Reservoir R (50 m) -> P1 -> J1 (no demand, 10 m up) -> P2 -> J2 (demand, pattern D)."""
    return Network(
        name="line",
        junctions=(Junction("J1", 10.0), Junction("J2", 0.0, (Demand(demand_m3s, "D"),))),
        reservoirs=(Reservoir("R", HEAD_M),),
        pipes=(Pipe("P1", "R", "J1", 1000.0, 0.2, 100.0), Pipe("P2", "J1", "J2", 1000.0, 0.2, 100.0)),
        patterns=(Pattern("D", multipliers),),
        options=options or Options(duration_s=4 * 3600.0),
    )


@pytest.fixture(scope="module")
def model() -> HydraulicModel:
    return compile_network(line())


@pytest.mark.parametrize("duration_s", [-1.0, -3600.0, math.nan, math.inf, -math.inf])
def test_a_duration_that_is_not_a_finite_number_of_seconds_is_refused(model: HydraulicModel, duration_s: float) -> None:
    with pytest.raises(NetworkError, match="duration must be a finite number of seconds >= 0"):
        simulate(model, duration_s=duration_s)


@pytest.mark.parametrize(
    ("field", "value", "what"),
    [
        ("hydraulic_step_s", math.inf, "hydraulic time step"),
        ("hydraulic_step_s", 0.3, "hydraulic time step"),  # 0 s once rounded to EPANET's whole seconds
        ("pattern_step_s", 0.2, "pattern time step"),
        ("report_step_s", math.inf, "report time step"),
    ],
)
def test_a_time_step_under_one_second_or_infinite_is_refused(field: str, value: float, what: str) -> None:
    model = compile_network(line(options=replace(Options(duration_s=3600.0), **{field: value})))
    with pytest.raises(NetworkError, match=f"line: {what} must be a finite time of at least 1 s"):
        simulate(model)


def test_run_times_counts_the_reporting_times(model: HydraulicModel) -> None:
    assert run_times(model).n_report_times == 5  # 0, 1, 2, 3, 4 h
    assert run_times(model, 0.0).n_report_times == 1
    assert run_times(model, 1e9 * 3600).n_report_times == 1_000_000_001  # counted, not listed


def test_result_memory_grows_with_reporting_times_nodes_and_links(model: HydraulicModel) -> None:
    per_row = 8 * (3 + 2 * 2 + 2 + 0) + 1  # heads, flows and statuses, demands, no pump speeds; the flag
    assert result_bytes(model, 10, 3) == 10 * (3 * per_row + 8 + STEP_BOOKKEEPING_BYTES)


def test_a_run_above_the_memory_limit_is_refused_before_it_starts(model: HydraulicModel) -> None:
    needed_mb = result_bytes(model, 1_000_000_001) / BYTES_PER_MB
    with pytest.raises(
        NetworkError, match=rf"about {needed_mb:.4g} MB, above the limit of 4096 MB".replace("+", r"\+")
    ):
        simulate(model, duration_s=1e9 * 3600, max_memory_mb=4096)
    small = result_bytes(model, 5) / BYTES_PER_MB
    assert simulate(model, max_memory_mb=small).times_s.size == 5
    with pytest.raises(NetworkError, match="above the limit"):
        simulate(model, max_memory_mb=0.99 * small)


def test_negative_pressure_at_a_junction_with_demand_is_found_with_its_time() -> None:
    # J2's demand is possible at 1x and impossible at 30x (second hour): the head at J2 falls below its ground.
    model = compile_network(line(multipliers=(1.0, 30.0, 1.0)))
    result = simulate(model, duration_s=3 * 3600.0)
    low = negative_pressures(model, result)
    assert [n.node for n in low] == ["J2"]
    assert low[0].time_s == 3600
    assert low[0].pressure_m < 0
    assert low[0].pressure_m == pytest.approx(float(result.head_m[1, 0, 1]))  # elevation 0: pressure = head


def test_only_junctions_with_demand_count_unless_asked(model: HydraulicModel) -> None:
    # J1 lies 10 m up; with a large demand at J2 its head falls below 10 m, but it has no demand (EPANET).
    big = compile_network(line(demand_m3s=0.08))
    result = simulate(big, duration_s=0.0)
    pressure_j1 = float(result.head_m[0, 0, 0]) - 10.0
    assert pressure_j1 < 0
    with_demand = {n.node for n in negative_pressures(big, result)}
    assert "J1" not in with_demand
    assert "J1" in {n.node for n in negative_pressures(big, result, demand_only=False)}
