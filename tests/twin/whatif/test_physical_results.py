"""What-ifs whose answer is not physical: a leak the line cannot feed, negative pressures, oversized batches.

Tiny lines built in code, checked against closed forms (Hazen-Williams, EPANET's SI form
h = 10.667 C^-1.852 d^-4.871 L q^1.852).
"""

from __future__ import annotations

import json
import math

import pytest

from pumptwin.twin.hydraulic.network import Junction, Network, Pipe, Reservoir
from pumptwin.twin.hydraulic.solver import compile_network
from pumptwin.twin.whatif.assess import LEAK_NOT_REACHABLE, NEGATIVE_PRESSURE
from pumptwin.twin.whatif.limits import Limits
from pumptwin.twin.whatif.resolve import batch_bytes
from pumptwin.twin.whatif.scenarios import LeakSpec, ScenarioError, ScenarioSpec, run_scenarios

LENGTH_M, DIAMETER_M, HW_C = 1000.0, 0.3, 100.0
UP_M, DOWN_M = 50.0, 40.0
"""Heads of the upstream and downstream reservoirs, m."""


def hw_flow_m3s(head_loss_m: float) -> float:
    """Flow through one of the line's pipes for a head loss, m3/s (Hazen-Williams, SI)."""
    r = 10.667 * LENGTH_M / (HW_C**1.852 * DIAMETER_M**4.871)
    return (head_loss_m / r) ** (1 / 1.852)


def line(high_point_m: float = 0.0) -> Network:
    """Reservoir UP (50 m) -> P1 -> J1 (at ``high_point_m``) -> P2 -> reservoir DOWN (40 m)."""
    pipe = {"length_m": LENGTH_M, "diameter_m": DIAMETER_M, "roughness": HW_C}
    return Network(
        name="tiny line",
        junctions=(Junction("J1", high_point_m),),
        reservoirs=(Reservoir("UP", UP_M), Reservoir("DOWN", DOWN_M)),
        pipes=(Pipe("P1", "UP", "J1", **pipe), Pipe("P2", "J1", "DOWN", **pipe)),
    )


def leak(m3h: float) -> ScenarioSpec:
    return ScenarioSpec(f"leak {m3h:g} m3/h", leaks=(LeakSpec(node="J1", flow_m3s=m3h / 3600),))


def test_the_most_the_junction_can_leak_is_both_pipes_at_zero_pressure() -> None:
    # With J1 at zero pressure, UP feeds it over 50 m and DOWN over 40 m of head.
    most_m3h = (hw_flow_m3s(UP_M) + hw_flow_m3s(DOWN_M)) * 3600
    report = run_scenarios(line(), [leak(500.0), leak(5000.0)], source="UP", delivery="DOWN")
    reached, too_big = report.outcome("leak 500 m3/h"), report.outcome("leak 5000 m3/h")

    assert reached.status == "ok" and reached.message == ""
    assert reached.leak_m3h == pytest.approx(500.0, rel=1e-4)
    assert reached.leaks[0].reached and reached.leaks[0].requested_m3h == pytest.approx(500.0)

    assert too_big.status == LEAK_NOT_REACHABLE and not too_big.within_limits
    got = too_big.leaks[0]
    assert (got.node, got.requested_m3h, got.reached) == ("J1", pytest.approx(5000.0), False)
    assert got.achieved_m3h == pytest.approx(most_m3h, rel=5e-3)
    assert got.achieved_m3h == pytest.approx(too_big.leak_m3h)
    assert abs(got.pressure_m) < 1e-2
    assert too_big.message.startswith("leak not reachable: 5000 m3/h requested, ")
    assert f"{got.achieved_m3h:.4g} m3/h at most at J1 (pressure" in too_big.message
    assert not report.within_limits


def test_requested_and_achieved_leaks_are_in_the_table_json_and_markdown() -> None:
    report = run_scenarios(line(), [leak(5000.0)], source="UP", delivery="DOWN")
    row = report.outcome("leak 5000 m3/h").row()
    assert row["leak_requested_m3h"] == pytest.approx(5000.0) and row["leak_m3h"] < 5000.0
    assert math.isnan(report.outcome("base case").row()["leak_requested_m3h"])
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    leaks = data["scenarios"][1]["leaks"]
    assert leaks[0]["node"] == "J1" and leaks[0]["requested_m3h"] == pytest.approx(5000.0)
    assert leaks[0]["achieved_m3h"] < 5000.0 and leaks[0]["reached"] is False
    assert data["limits"]["leak_tolerance"] == 0.02 and data["limits"]["leak_tolerance_m3h"] == 1.0
    md = report.to_markdown()
    assert "leak asked m3/h" in md and "leak not reachable: 5000 m3/h requested" in md


@pytest.mark.parametrize(
    ("requested", "achieved", "reached"),
    [(500.0, 490.5, True), (500.0, 489.0, False), (20.0, 19.2, True), (20.0, 18.9, False)],
)
def test_a_leak_is_reached_within_2_percent_or_1_m3h(requested: float, achieved: float, reached: bool) -> None:
    assert Limits().leak_reached(requested, achieved) is reached


def test_a_high_point_below_zero_pressure_is_not_ok() -> None:
    # J1 lies 60 m up, between heads of 50 and 40 m: with equal pipes its head is their mean, 45 m.
    report = run_scenarios(line(high_point_m=60.0), [], source="UP", delivery="DOWN")
    base = report.outcomes[0]
    assert base.status == NEGATIVE_PRESSURE and not report.within_limits
    assert base.negative_pressure_m == (("J1", pytest.approx(45.0 - 60.0, abs=1e-6)),)
    assert base.message.startswith("negative pressure at 1 junction (below 0 m): J1 -15 m")
    assert "not physical" in base.message
    assert json.loads(json.dumps(report.to_dict()))["scenarios"][0]["negative_pressure_nodes"] == {
        "J1": pytest.approx(-15.0, abs=1e-6)
    }


def test_a_line_above_zero_pressure_stays_ok() -> None:
    report = run_scenarios(line(), [], source="UP", delivery="DOWN")
    assert report.outcomes[0].status == "ok" and report.within_limits


def test_a_batch_above_the_memory_limit_is_refused() -> None:
    model = compile_network(line())
    assert batch_bytes(model, 10) == 10 * batch_bytes(model, 1) > 0
    limit_mb = 1.5 * batch_bytes(model, 2) / 1e6
    assert run_scenarios(line(), [leak(100.0)], source="UP", delivery="DOWN", max_memory_mb=limit_mb)
    with pytest.raises(ScenarioError, match=r"4 scenarios on tiny line: the batch would need about .* MB, above"):
        run_scenarios(line(), [leak(1.0), leak(2.0), leak(3.0)], source="UP", delivery="DOWN", max_memory_mb=limit_mb)
