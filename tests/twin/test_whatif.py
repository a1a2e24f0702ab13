"""Tests for `twin.whatif` on the reference pipeline: directional what-ifs, targets, leaks and bad ids."""

from __future__ import annotations

import math

import numpy as np
import pytest

from twin.hydraulics import HydraulicModel, compile_network
from twin.io import load_network
from twin.network import NetworkError
from twin.whatif import WhatIf, WhatIfResult, build_batch, evaluate

THROUGHPUT = "DEL"
"""The delivery pipe into the terminal: the pipeline's throughput."""
LEAK_C = 5e-3
"""Leak emitter coefficient (m3/s per m^0.5): about 100 L/s at 400 m of head."""


@pytest.fixture(scope="module")
def model() -> HydraulicModel:
    return compile_network(load_network())


@pytest.fixture(scope="module")
def result(model: HydraulicModel) -> WhatIfResult:
    scenarios = [
        WhatIf("base"),
        WhatIf("speed -10 %", speed_factor=0.9),
        WhatIf("PS2-P2 off", pumps_off=("PS2-P2",)),
        WhatIf("start PS1-P3", pumps_on=("PS1-P3",)),
        WhatIf("throughput +10 %", throughput_factor=1.1, throughput_link=THROUGHPUT),
        WhatIf("leak at KP080", leaks={"KP080": LEAK_C}),
    ]
    res = evaluate(model, scenarios)
    assert res.converged.all()
    return res


def row(res: WhatIfResult, name: str) -> int:
    return [s.name for s in res.scenarios].index(name)


def throughput(model: HydraulicModel, res: WhatIfResult, name: str) -> float:
    return float(res.flow_m3s[row(res, name), model.link_index[THROUGHPUT]])


def discharge_pressure(model: HydraulicModel, res: WhatIfResult, name: str, node: str = "PS1-D") -> float:
    return float(res.line.pressure_pa[row(res, name), model.node_index[node]])


def test_base_is_the_networks_own_state(model: HydraulicModel, result: WhatIfResult) -> None:
    base = row(result, "base")
    assert result.pumps.running[base].sum() == 4
    assert 0.5 < throughput(model, result, "base") < 0.7  # two duty pumps, about 585 L/s
    assert result.leak_m3s[base].sum() == 0


def test_speed_minus_10_percent_lowers_throughput_and_discharge_pressure(
    model: HydraulicModel, result: WhatIfResult
) -> None:
    assert throughput(model, result, "speed -10 %") < throughput(model, result, "base")
    assert discharge_pressure(model, result, "speed -10 %") < discharge_pressure(model, result, "base")
    assert discharge_pressure(model, result, "speed -10 %", "PS2-D") < discharge_pressure(
        model, result, "base", "PS2-D"
    )
    np.testing.assert_allclose(result.batch.pump_speed[row(result, "speed -10 %")], 0.9)


def test_a_pump_off_lowers_throughput(model: HydraulicModel, result: WhatIfResult) -> None:
    i = row(result, "PS2-P2 off")
    assert throughput(model, result, "PS2-P2 off") < throughput(model, result, "base")
    assert not result.pumps.running[i, list(model.pump_ids).index("PS2-P2")]
    assert result.pumps.running[i].sum() == 3


def test_starting_the_standby_pump_raises_ps1_discharge_pressure(model: HydraulicModel, result: WhatIfResult) -> None:
    i = row(result, "start PS1-P3")
    assert result.pumps.running[i, list(model.pump_ids).index("PS1-P3")]
    assert discharge_pressure(model, result, "start PS1-P3") > discharge_pressure(model, result, "base")
    assert throughput(model, result, "start PS1-P3") > throughput(model, result, "base")


def test_throughput_target_is_met(model: HydraulicModel, result: WhatIfResult) -> None:
    target = 1.1 * throughput(model, result, "base")
    assert throughput(model, result, "throughput +10 %") == pytest.approx(target, rel=5e-3)
    speeds = result.batch.pump_speed[row(result, "throughput +10 %")]
    assert (speeds > 1.0).all() and np.ptp(speeds) == pytest.approx(0.0)  # one common factor


def test_leak_produces_leak_flow_and_reduces_delivery(model: HydraulicModel, result: WhatIfResult) -> None:
    i = row(result, "leak at KP080")
    j = model.node_index["KP080"]
    leak = result.leak_m3s[i, j]
    pressure_head = result.head_m[i, j] - model.elevation_m[j]
    assert leak == pytest.approx(LEAK_C * math.sqrt(pressure_head), rel=1e-6)
    assert leak > 0.01
    assert result.leak_m3s[i].sum() == pytest.approx(leak)
    assert throughput(model, result, "leak at KP080") < throughput(model, result, "base")
    # Upstream of the leak the line carries more (lower back pressure), downstream less.
    k_up = model.link_index["L000-005"]
    assert result.flow_m3s[i, k_up] > result.flow_m3s[row(result, "base"), k_up]
    assert result.flow_m3s[i, k_up] - leak == pytest.approx(throughput(model, result, "leak at KP080"), abs=1e-6)


def test_summary_rows(model: HydraulicModel, result: WhatIfResult) -> None:
    rows = result.summary(model, THROUGHPUT)
    assert [r["scenario"] for r in rows] == [s.name for s in result.scenarios]
    base = rows[row(result, "base")]
    assert base["throughput_m3h"] == pytest.approx(throughput(model, result, "base") * 3600)
    assert base["pumps_running"] == 4
    assert rows[row(result, "leak at KP080")]["leak_m3h"] > 0
    assert all(isinstance(r["violations"], str) for r in rows)


def test_scenarios_are_independent_of_their_neighbours(model: HydraulicModel, result: WhatIfResult) -> None:
    """The leak solved alone gives what it gave in the batch."""
    alone = evaluate(model, [WhatIf("leak at KP080", leaks={"KP080": LEAK_C})])
    np.testing.assert_allclose(alone.head_m[0], result.head_m[row(result, "leak at KP080")], atol=1e-9)


@pytest.mark.parametrize(
    ("whatif", "name"),
    [
        (WhatIf("x", pumps_off=("NOPE",)), "NOPE"),
        (WhatIf("x", pumps_on=("NOPE",)), "NOPE"),
        (WhatIf("x", leaks={"NOPE": 0.01}), "NOPE"),
        (WhatIf("x", leaks={"ORIGIN": 0.01}), "ORIGIN"),
        (WhatIf("x", fixed_head_m={"NOPE": 10.0}), "NOPE"),
        (WhatIf("x", fixed_head_m={"KP010": 10.0}), "KP010"),
    ],
    ids=["pump-off", "pump-on", "leak", "leak-at-reservoir", "head", "head-at-junction"],
)
def test_unknown_ids_raise_network_error(model: HydraulicModel, whatif: WhatIf, name: str) -> None:
    with pytest.raises(NetworkError, match=name):
        build_batch(model, [whatif])
    with pytest.raises(NetworkError, match=name):
        evaluate(model, [WhatIf("ok"), whatif])


def test_unknown_throughput_link_raises_network_error(model: HydraulicModel) -> None:
    with pytest.raises(NetworkError, match="NOPE"):
        evaluate(model, [WhatIf("x", throughput_factor=1.1, throughput_link="NOPE")])


def test_invalid_what_ifs_are_rejected() -> None:
    with pytest.raises(NetworkError, match="'bad'"):
        WhatIf("bad", speed_factor=-0.1)
    with pytest.raises(NetworkError, match="'bad'"):
        WhatIf("bad", throughput_factor=1.1)  # no link
    with pytest.raises(NetworkError, match="'bad'"):
        WhatIf("bad", throughput_factor=0.0, throughput_link=THROUGHPUT)


def test_unreachable_throughput_target_is_an_error(model: HydraulicModel) -> None:
    with pytest.raises(NetworkError, match="out of reach"):
        evaluate(model, [WhatIf("too much", throughput_factor=3.0, throughput_link=THROUGHPUT)])
