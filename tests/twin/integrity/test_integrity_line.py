"""Integrity along the line: pressure at features, their violations in what-ifs and the surge check, the derating.

Tiny lines built in code and checked against closed forms: head falls linearly along a pipe of one
flow, and with a fixed-head delivery the pressure at a feature is the delivery head plus the
Hazen-Williams loss downstream of it (EPANET's SI form h = 10.667 C^-1.852 d^-4.871 L q^1.852),
so the throughput at which it reaches its safe pressure has a closed form.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from pumptwin.twin.hydraulic.network import Curve, Junction, Network, Pipe, Pump, Reservoir
from pumptwin.twin.hydraulic.solver import compile_network
from pumptwin.twin.integrity.line import (
    MAX_LISTED,
    IntegrityLimits,
    LineCheckError,
    derate,
    envelope_excess,
    integrity_limits,
    over_limit,
    pressure_at_features,
)
from pumptwin.twin.units import G_M_S2, M3H_PER_M3S, PA_PER_MPA
from pumptwin.twin.whatif.assess import ENVELOPE_INTEGRITY_UNIT, STEADY_INTEGRITY_UNIT, envelope_violations
from pumptwin.twin.whatif.path import main_path
from pumptwin.twin.whatif.plots import OVER_LABEL, SAFE_LABEL, pressure_profile_figure
from pumptwin.twin.whatif.report import Violation, WhatIfReport
from pumptwin.twin.whatif.scenarios import ScenarioSpec, run_scenarios
from pumptwin.twin.whatif.surge import transient_surge_check

HW = 10.667
"""EPANET's SI Hazen-Williams constant."""
L1 = L2 = 5000.0
DIAMETER_M, HW_C = 0.3, 120.0
DELIVERY_M, J_ELEVATION_M = 30.0, 20.0
FEATURE_AT_M = 2000.0
"""Chainage of the binding feature on P1 (from the pump's discharge), m."""
TARGET_M3S = 0.12
"""Throughput at which the binding feature reaches its safe pressure (by construction), m3/s."""


def hw_loss_m(q_m3s: float, length_m: float) -> float:
    return HW * length_m * q_m3s**1.852 / (HW_C**1.852 * DIAMETER_M**4.871)


def pump_line(maop_pa: float = 5e6, suction_m: float = 0.0) -> Network:
    """SRC (20 m) -> pump PU (station PS) -> D (0 m) -> P1 5 km -> J (20 m) -> P2 5 km -> DEL (30 m, fixed).

    With ``suction_m``, a suction pipe PS of that length (1 m bore) joins SRC to the pump's suction S.
    """
    pipe = {"length_m": L1, "diameter_m": DIAMETER_M, "roughness": HW_C, "maop_pa": maop_pa}
    suction = (Pipe("PS", "SRC", "S", suction_m, 1.0, HW_C),) if suction_m else ()
    return Network(
        name="pump line",
        junctions=(Junction("D", 0.0), Junction("J", J_ELEVATION_M), *((Junction("S", 0.0),) if suction_m else ())),
        reservoirs=(Reservoir("SRC", 20.0, elevation_m=0.0), Reservoir("DEL", DELIVERY_M, elevation_m=DELIVERY_M)),
        pipes=(*suction, Pipe("P1", "D", "J", **pipe), Pipe("P2", "J", "DEL", **pipe)),
        pumps=(Pump("PU", "S" if suction_m else "SRC", "D", head_curve="C1", station="PS", max_speed=1.2),),
        curves=(Curve("C1", ((0.0, 120.0), (0.1, 100.0), (0.2, 60.0))),),
    )


def rho_g() -> float:
    return pump_line().fluid.density_kg_m3 * G_M_S2


def safe_at(q_m3s: float, chainage_m: float) -> float:
    """Gauge pressure at a feature on P1 at flow q (closed form), Pa: DEL's head plus the loss downstream."""
    z = J_ELEVATION_M * chainage_m / L1
    return rho_g() * (DELIVERY_M + hw_loss_m(q_m3s, L1 + L2 - chainage_m) - z)


def frame(rows: list[tuple[str, float, float, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["feature_id", "chainage_m", "safe_pa", "pipe_id"])


def features(margin: float = 1.0) -> IntegrityLimits:
    """F1 binds at `TARGET_M3S`; F2 on P2 has room; F3 is off the line; F4 is no metal loss (no safe pressure)."""
    rows = [
        ("F1", FEATURE_AT_M, safe_at(TARGET_M3S, FEATURE_AT_M), "P1"),
        ("F2", 7500.0, 2.0 * safe_at(TARGET_M3S, 7500.0), "P2"),
        ("F3", 12_000.0, 1e5, "P9"),
        ("F4", 3000.0, math.nan, "P1"),
    ]
    return integrity_limits(frame(rows), margin, source="assessed_line01.parquet")


# --- pressure at features ----------------------------------------------------------------------


def test_pressure_at_a_feature_is_linear_in_head_and_elevation_along_a_pipe() -> None:
    # UP (50 m) -> P1 1 km -> J1 (10 m) -> P2 1 km -> DOWN (40 m): equal pipes, so J1's head is 45 m.
    pipe = {"length_m": 1000.0, "diameter_m": 0.3, "roughness": 100.0}
    net = Network(
        name="two pipes",
        junctions=(Junction("J1", 10.0),),
        reservoirs=(Reservoir("UP", 50.0, elevation_m=0.0), Reservoir("DOWN", 40.0, elevation_m=0.0)),
        pipes=(Pipe("P1", "UP", "J1", **pipe), Pipe("P2", "J1", "DOWN", **pipe)),
    )
    report = run_scenarios(net, [], source="UP", delivery="DOWN")
    base = report.outcomes[0]
    limits = integrity_limits(frame([("A", 1300.0, 1e6, "P2"), ("B", 400.0, 1e6, "P1")]))
    got = pressure_at_features(limits, base.chainage_km, base.profile_pressure_mpa)
    rho_g_ = net.fluid.density_kg_m3 * G_M_S2
    # B at 0.4 km of P1: head 50 - 5 x 0.4 = 48 m, elevation 10 x 0.4 = 4 m; A at 0.3 km of P2: 43.5 m and 7 m.
    np.testing.assert_allclose(got, np.array([44.0, 36.5]) * rho_g_ / PA_PER_MPA, rtol=1e-6)


def test_pressure_at_a_feature_matches_the_hazen_williams_loss_downstream_of_it() -> None:
    base = run_scenarios(pump_line(), []).outcomes[0]
    q = base.throughput_m3h / M3H_PER_M3S
    limits = integrity_limits(frame([("F1", FEATURE_AT_M, 1e7, "P1"), ("F2", 7500.0, 1e7, "P2")]))
    got = pressure_at_features(limits, base.chainage_km, base.profile_pressure_mpa)
    f2 = rho_g() * (DELIVERY_M + hw_loss_m(q, 2500.0) - J_ELEVATION_M - (DELIVERY_M - J_ELEVATION_M) * 0.5)
    np.testing.assert_allclose(got * PA_PER_MPA, [safe_at(q, FEATURE_AT_M), f2], rtol=1e-4)


def test_a_feature_at_a_station_reads_the_discharge_side() -> None:
    model = compile_network(pump_line())
    report = run_scenarios(pump_line(), [])
    base = report.outcomes[0]
    limits = integrity_limits(frame([("AT-PS", 0.0, 1e7, "P1")]))
    got = pressure_at_features(limits, base.chainage_km, base.profile_pressure_mpa)
    discharge = base.profile_pressure_mpa[list(base.profile_nodes).index("D")]
    assert got[0] == pytest.approx(discharge) and discharge > 0.5
    assert main_path(model).chainage_m[list(base.profile_nodes).index("D")] == 0.0


def test_integrity_limits_drop_unusable_rows_sort_by_chainage_and_apply_the_margin() -> None:
    rows = [("B", 200.0, 5e6, "P1"), ("A", 100.0, 4e6, "P1"), ("C", math.nan, 4e6, "P1"), ("D", 50.0, math.nan, "")]
    full, share = integrity_limits(frame(rows)), integrity_limits(frame(rows), 0.8)
    assert list(full.feature_ids) == ["A", "B"] and len(full) == 2
    np.testing.assert_allclose(full.chainage_m, [100.0, 200.0])
    np.testing.assert_allclose(share.safe_pa, 0.8 * full.safe_pa)
    assert share.margin == 0.8 and full.label(0) == "A (P1, 0.1 km)"
    with pytest.raises(LineCheckError, match="margin"):
        integrity_limits(frame(rows), 1.2)
    with pytest.raises(LineCheckError, match="safe_pa"):
        integrity_limits(frame(rows).drop(columns="safe_pa"))
    assert len(IntegrityLimits.empty()) == 0


def test_a_feature_with_no_safe_pressure_left_is_kept_and_always_over() -> None:
    limits = integrity_limits(frame([("OK", 100.0, 5e6, "P1"), ("GONE", 300.0, -2e5, "P1")]))
    assert list(limits.feature_ids) == ["OK", "GONE"] and limits.safe_pa[1] == 0.0
    (e,) = over_limit(limits, np.array([1.0, 0.01]))
    assert e.where == "GONE (P1, 0.3 km)" and e.limit_mpa == 0.0


def test_violations_are_one_per_feature_worst_first_and_the_last_counts_the_rest() -> None:
    n = MAX_LISTED + 3
    limits = integrity_limits(frame([(f"F{i}", 100.0 * i, 1e6, "P1") for i in range(n)]))
    pressure = np.linspace(1.1, 1.9, n)  # every one over its 1 MPa, the last the worst
    found = over_limit(limits, pressure)
    assert len(found) == MAX_LISTED
    assert [e.value_mpa for e in found] == sorted((e.value_mpa for e in found), reverse=True)
    assert found[0].where == f"F{n - 1} (P1, 0.{n - 1} km)"
    assert found[-1].where.endswith(" and 3 more")
    assert over_limit(limits, np.full(n, 0.99)) == ()


# --- what-ifs ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def report_over() -> WhatIfReport:
    """Base and +10 % flow: the +10 % keeps MAOP (5 MPa) but passes F1's safe pressure at 0.118 m3/s."""
    rows = [("F1", FEATURE_AT_M, safe_at(0.118, FEATURE_AT_M), "P1"), ("F2", 7500.0, 1e7, "P2")]
    limits = integrity_limits(frame(rows), source="assessed_line01.parquet")
    return run_scenarios(pump_line(), [ScenarioSpec("flow +10%", flow_factor=1.1)], integrity=limits, derating=True)


def test_a_scenario_within_maop_but_over_a_features_safe_pressure_is_a_violation(report_over: WhatIfReport) -> None:
    base, more = report_over.outcomes
    assert base.within_limits
    assert more.min_maop_margin_mpa > 0  # MAOP kept
    (v,) = [v for v in more.violations if v.limit == "INTEGRITY"]
    assert v.where == "F1 (P1, 2.0 km)" and v.unit == STEADY_INTEGRITY_UNIT
    assert v.value > v.limit_value == pytest.approx(safe_at(0.118, FEATURE_AT_M) / PA_PER_MPA)
    assert not more.within_limits and not report_over.within_limits
    assert "INTEGRITY F1 (P1, 2.0 km)" in more.row()["violations"]


def test_the_margin_turns_a_safe_scenario_into_a_violation() -> None:
    base = run_scenarios(pump_line(), []).outcomes[0]
    one = integrity_limits(frame([("F1", FEATURE_AT_M, 1.0, "P1")]))
    base_p = pressure_at_features(one, base.chainage_km, base.profile_pressure_mpa)[0]
    safe = base_p * PA_PER_MPA / 0.95  # the base uses 95 % of F1's safe pressure
    rows = frame([("F1", FEATURE_AT_M, safe, "P1")])
    whole = run_scenarios(pump_line(), [], integrity=integrity_limits(rows, 1.0)).outcomes[0]
    ninety = run_scenarios(pump_line(), [], integrity=integrity_limits(rows, 0.9)).outcomes[0]
    assert whole.within_limits
    (v,) = ninety.violations
    assert v.limit == "INTEGRITY" and v.limit_value == pytest.approx(0.9 * safe / PA_PER_MPA)


def test_empty_limits_change_nothing() -> None:
    specs = [ScenarioSpec("flow +10%", flow_factor=1.1), ScenarioSpec("flow -10%", flow_factor=0.9)]
    plain = run_scenarios(pump_line(), specs)
    empty = run_scenarios(pump_line(), specs, integrity=IntegrityLimits.empty(), derating=True)
    assert [o.violations for o in empty.outcomes] == [o.violations for o in plain.outcomes]
    assert empty.derating is None and empty.within_limits == plain.within_limits
    assert "0 features checked" in empty.to_markdown()


def test_the_report_carries_the_integrity_check_and_the_derating(report_over: WhatIfReport) -> None:
    data = json.loads(json.dumps(report_over.to_dict()))
    assert data["integrity"] == {"features": 2, "margin": 1.0, "source": "assessed_line01.parquet"}
    assert data["derating"]["binding_feature"] == "F1 (P1, 2.0 km)"
    assert data["derating"]["throughput_m3h"] == pytest.approx(0.118 * M3H_PER_M3S, rel=2e-3)
    md = report_over.to_markdown()
    assert "2 features checked against 100 % of their safe pressure from assessed_line01.parquet" in md
    assert "derated throughput 425 m3/h" in md and "PS discharge (D) at most" in md


# --- derating ----------------------------------------------------------------------------------


def test_derating_finds_the_closed_form_throughput_within_a_tenth_of_a_percent() -> None:
    model = compile_network(pump_line())
    limits = features()
    d = derate(model, limits, path=main_path(model))
    assert d.reached and d.features == 3
    assert d.throughput_m3h == pytest.approx(TARGET_M3S * M3H_PER_M3S, rel=1e-3)
    assert d.binding_feature == "F1 (P1, 2.0 km)" and d.binding_chainage_km == pytest.approx(2.0)
    # F1 binds, so PS may discharge what it does at the derated flow: DEL's head plus both pipes' loss.
    discharge = rho_g() * (DELIVERY_M + hw_loss_m(TARGET_M3S, L1 + L2)) / PA_PER_MPA
    assert d.discharge_node == {"PS": "D"}
    assert d.discharge_limit_mpa["PS"] == pytest.approx(discharge, rel=2e-3)
    assert d.current_throughput_m3h < d.throughput_m3h < d.speed_throughput_m3h
    assert "1 feature(s) off the main path" in " ".join(d.notes)
    data = json.loads(json.dumps(d.to_dict()))
    assert data["first_limit"] == d.first_limit == "integrity"


def test_derating_with_a_margin_is_lower_and_maop_can_bind_first() -> None:
    model = compile_network(pump_line(maop_pa=1.2e6))
    full = derate(model, features(), path=main_path(model))
    share = derate(model, features(0.9), path=main_path(model))
    assert share.throughput_m3h < full.throughput_m3h
    expect = math.inf
    for q in np.linspace(0.05, TARGET_M3S, 4001):  # F1 at 90 % of its safe pressure: invert the closed form
        if safe_at(q, FEATURE_AT_M) > 0.9 * safe_at(TARGET_M3S, FEATURE_AT_M):
            expect = q
            break
    assert share.throughput_m3h == pytest.approx(expect * M3H_PER_M3S, rel=2e-3)
    assert full.maop_throughput_m3h < full.throughput_m3h and full.first_limit == "MAOP"


def test_a_feature_over_its_limit_at_any_speed_has_no_derated_throughput() -> None:
    model = compile_network(pump_line())
    limits = integrity_limits(frame([("LOW", 9000.0, 1e3, "P2")]))
    d = derate(model, limits, path=main_path(model))
    assert math.isnan(d.throughput_m3h) and not d.reached and d.first_limit == "integrity"
    assert "even at speed factor" in d.notes[0]


# --- surge -------------------------------------------------------------------------------------


def test_envelope_violations_map_the_span_onto_the_line() -> None:
    limits = integrity_limits(frame([("IN", 3000.0, 1e6, "P1"), ("OUT", 500.0, 1e5, "P1")]))
    x = 1000.0 + np.linspace(0.0, 4000.0, 9)  # a span from 1 km to 5 km
    env = np.full(x.size, 1.5e6)
    (v,) = envelope_violations(limits, x, env)
    assert v == Violation("INTEGRITY", "IN (P1, 3.0 km)", 1.5, 1.0, ENVELOPE_INTEGRITY_UNIT)
    assert envelope_excess(limits, x, np.full(x.size, 0.5e6)) == ()


def test_the_surge_check_compares_the_transient_envelope_with_features_on_the_span() -> None:
    # A 1 km suction pipe puts the pump's discharge D (the simulated span's upstream end) at 1 km.
    net = pump_line(suction_m=1000.0)
    before = run_scenarios(net, []).outcomes[0]
    at = [1000.0 + FEATURE_AT_M, 500.0]
    probe = integrity_limits(frame([("F1", at[0], 1.0, "P1"), ("SUC", at[1], 1.0, "PS")]))
    p_f1, p_suc = pressure_at_features(probe, before.chainage_km, before.profile_pressure_mpa)[[1, 0]]
    # F1's safe pressure is below its steady pressure before the trip, so the envelope passes it; SUC,
    # on the suction pipe, is off the simulated span (its steady pressure after the trip is checked).
    rows = [("F1", at[0], 0.9 * p_f1 * PA_PER_MPA, "P1"), ("SUC", at[1], 0.5 * p_suc * PA_PER_MPA, "PS")]
    limits = integrity_limits(frame([*rows, ("F2", 8500.0, 1e8, "P2")]))
    trip = [ScenarioSpec("trip", trip=("PU",))]
    plain = run_scenarios(net, trip, integrity=limits, include_base=False).outcomes[0]
    assert not [v for v in plain.violations if v.unit == ENVELOPE_INTEGRITY_UNIT]  # no surge check asked
    check = transient_surge_check(duration_s=20.0, max_reach_m=500.0, integrity=limits)
    surged = run_scenarios(net, trip, integrity=limits, include_base=False, surge_check=check).outcomes[0]
    found = [v for v in surged.violations if v.unit == ENVELOPE_INTEGRITY_UNIT]
    assert [v.where for v in found] == ["F1 (P1, 3.0 km)"]
    assert found[0].value >= p_f1 * 0.999 and found[0].limit_value == pytest.approx(0.9 * p_f1)
    assert any(n.startswith("surge: station trip at D") for n in surged.notes)


# --- plot --------------------------------------------------------------------------------------


def test_the_pressure_profile_draws_each_features_safe_pressure_and_marks_violations(report_over: WhatIfReport) -> None:
    fig = pressure_profile_figure(report_over)
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    safe = lines[SAFE_LABEL]
    np.testing.assert_allclose(safe.get_xdata(), [2.0, 7.5])
    np.testing.assert_allclose(safe.get_ydata(), report_over.integrity.safe_pa / PA_PER_MPA)
    over = lines[OVER_LABEL.format(name="flow +10%")]
    np.testing.assert_allclose(over.get_xdata(), [2.0])
    assert over.get_marker() == "X" and safe.get_marker() == "v"
    assert OVER_LABEL.format(name="base case") not in lines and "MAOP" in lines
    import matplotlib.pyplot as plt

    plt.close(fig)
