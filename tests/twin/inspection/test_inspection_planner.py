"""Tests of the condition-based round planner."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pumptwin.twin.assets import build_registry
from pumptwin.twin.health.calibration import Estimate, PumpEstimate, TwinCalibration
from pumptwin.twin.health.state import TwinState, assess
from pumptwin.twin.hydraulic.io import load_network
from pumptwin.twin.inspection.planner import (
    CONDITION_COLUMNS,
    PlannerError,
    PlannerSettings,
    SeenMemory,
    combine_uncertainty,
    conditions_from_state,
    news_severity,
    plan_round,
    seen_after_round,
)

NOW = pd.Timestamp("2024-06-03T00:00:00Z")


def _conditions(rows: list[dict[str, object]]) -> pd.DataFrame:
    base = {
        "health_index": 1.0,
        "severity": 0.0,
        "uncertainty": 0.0,
        "last_visit": NOW - pd.Timedelta(days=30),
        "consequence": 1.0,
        "sensor_flag": False,
    }
    extra = [c for r in rows for c in r if c not in CONDITION_COLUMNS]
    return pd.DataFrame([{**base, **r} for r in rows], columns=list(dict.fromkeys([*CONDITION_COLUMNS, *extra])))


def test_alarm_ranks_first_then_flag_then_overdue() -> None:
    cond = _conditions(
        [
            {"asset": "PS01.P1", "station": "PS01", "last_visit": NOW - pd.Timedelta(days=200)},
            {"asset": "PS02.P1", "station": "PS02", "sensor_flag": True},
            {"asset": "PS03.P1", "station": "PS03", "severity": 1.4, "health_index": 0.1},
            {"asset": "PS04.P1", "station": "PS04", "severity": 0.2},
        ]
    )
    plan = plan_round(cond, NOW, PlannerSettings(budget_h=0.0))
    assert plan.assets == ["PS03.P1", "PS02.P1", "PS01.P1"]
    assert plan.visits["reason"].iloc[0].startswith("alarm")
    assert plan.visits["reason"].iloc[1].startswith("sensor flag")
    assert plan.visits["reason"].iloc[2].startswith("overdue: 200 d")
    assert list(plan.covered["asset"]) == ["PS04.P1"]
    assert "below the visit threshold" in plan.covered["reason"].iloc[0]


def test_overdue_and_never_visited_are_must_visits_even_over_budget() -> None:
    cond = _conditions(
        [
            {"asset": "PS01.P1", "station": "PS01", "last_visit": pd.NaT},
            {"asset": "PS01.P2", "station": "PS01", "last_visit": NOW - pd.Timedelta(days=183)},
            {"asset": "PS01.P3", "station": "PS01", "last_visit": NOW - pd.Timedelta(days=181)},
        ]
    )
    plan = plan_round(cond, NOW, PlannerSettings(budget_h=0.0, max_interval_days=182.0, pull_in_score=10.0))
    assert set(plan.assets) == {"PS01.P1", "PS01.P2"}
    assert "never visited" in plan.visits.set_index("asset").at["PS01.P1", "reason"]


def test_budget_is_respected_for_the_optional_visits() -> None:
    cond = _conditions(
        [
            {"asset": f"PS0{i}.P1", "station": f"PS0{i}", "severity": 0.95, "last_visit": NOW - pd.Timedelta(days=60)}
            for i in range(1, 5)
        ]
    )
    st = PlannerSettings(budget_h=7.0, visit_hours=1.0, travel_hours=2.0, min_score=0.5)
    plan = plan_round(cond, NOW, st)
    assert len(plan.assets) == 2  # 3 h each: a third would take 9 h
    assert plan.hours == pytest.approx(6.0)
    assert plan.hours <= st.budget_h
    assert all("over budget" in r for r in plan.covered["reason"])


def test_travel_counted_once_per_station_and_assets_pulled_in() -> None:
    cond = _conditions(
        [
            {"asset": "PS01.P1", "station": "PS01", "severity": 1.5},
            {"asset": "PS01.P2", "station": "PS01", "severity": 1.2},
            {"asset": "PS01.P3", "station": "PS01", "uncertainty": 1.0},
            {"asset": "PS02.P1", "station": "PS02", "uncertainty": 1.0},
        ]
    )
    st = PlannerSettings(visit_hours=1.0, travel_hours=2.0, uncertainty_weight=0.5, overdue_weight=0.0)
    st = replace(st, min_score=0.8, pull_in_score=0.4)
    plan = plan_round(cond, NOW, st)
    assert plan.assets == ["PS01.P1", "PS01.P2", "PS01.P3"]
    assert plan.hours == pytest.approx(3 * 1.0 + 2.0)
    assert list(plan.visits["hours"]) == [3.0, 1.0, 1.0]
    assert "pulled in" in plan.visits["reason"].iloc[2]
    assert plan.covered.set_index("asset").at["PS02.P1", "reason"].startswith("below the visit threshold")
    assert "PS02" not in plan.stations


def test_recent_visit_tempers_an_alarm() -> None:
    cond = _conditions(
        [{"asset": "PS01.P1", "station": "PS01", "severity": 1.5, "last_visit": NOW - pd.Timedelta(days=3)}]
    )
    plan = plan_round(cond, NOW, PlannerSettings(alarm_revisit_days=14.0, min_score=1.0))
    assert plan.assets == []
    later = plan_round(cond, NOW + pd.Timedelta(days=14), PlannerSettings(alarm_revisit_days=14.0, min_score=1.0))
    assert later.assets == ["PS01.P1"]


def test_markdown_and_dict() -> None:
    cond = _conditions(
        [{"asset": "PS01.P1", "station": "PS01", "severity": 2.0}, {"asset": "PS01.P2", "station": "PS01"}]
    )
    plan = plan_round(cond, NOW)
    text = plan.to_markdown()
    assert "| 1 | PS01.P1 | PS01 |" in text and "Covered by the twin" in text and "PS01.P2" in text
    data = plan.to_dict()
    assert data["visits"][0]["asset"] == "PS01.P1" and data["covered"][0]["asset"] == "PS01.P2"
    assert data["hours"] == pytest.approx(3.0)


def test_invalid_inputs() -> None:
    with pytest.raises(PlannerError, match="budget_h"):
        PlannerSettings(budget_h=-1.0)
    with pytest.raises(PlannerError, match="max_interval_days"):
        PlannerSettings(max_interval_days=0.0)
    with pytest.raises(PlannerError, match="lack columns"):
        plan_round(pd.DataFrame({"asset": ["PS01.P1"]}), NOW)
    bad = _conditions([{"asset": "PS01.P1", "station": "PS01", "severity": math.nan}])
    with pytest.raises(PlannerError, match="severity"):
        plan_round(bad, NOW)


def test_combine_uncertainty() -> None:
    assert combine_uncertainty({"a": 0.0, "b": 0.0}) == 0.0
    assert combine_uncertainty({"a": 0.5, "b": 0.5}) == pytest.approx(0.75)
    assert combine_uncertainty({"a": 1.0, "b": 0.1}) == 1.0


# --------------------------------------------------------------------------------------------
# Conditions from a hand-built state
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Flag:
    asset: str
    tag: str = ""


def _estimate(name: str, pump_id: str, **kw: object) -> PumpEstimate:
    est = PumpEstimate(name, pump_id, 1, Estimate(0.0, 0.01), Estimate(0.0, 0.01))
    return replace(est, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def registry():  # noqa: ANN201 - a fixture
    return build_registry(load_network(), 1)


def _state(registry, now: pd.Timestamp, overrides: dict[str, dict[str, object]]) -> TwinState:  # noqa: ANN001
    ran = now - pd.Timedelta(hours=1)
    pumps = {}
    for p in registry.pumps:
        kw: dict[str, object] = {"n_samples": 5000, "running_fraction": 1.0, "last_running_ts": ran}
        kw.update(overrides.get(p.name, {}))
        pumps[p.name] = _estimate(p.name, p.pump_id, **kw)
    cal = TwinCalibration(now, pumps, {}, 10)
    evidence = {p.name: {"impeller_wear": 0.0} for p in registry.pumps}
    evidence["PS01.P1"] = {"impeller_wear": 0.06, "vib_excess_de_mm_s": 0.5}
    health = tuple(assess(name, "pump", ev) for name, ev in evidence.items())
    return TwinState(now, health, (), cal)


def test_conditions_from_a_hand_built_state(registry) -> None:  # noqa: ANN001
    long_ago = NOW - pd.Timedelta(days=400)
    state = _state(
        registry,
        NOW,
        {
            "PS01.P3": {"n_samples": 0, "running_fraction": 0.0, "last_running_ts": None},
            "PS02.P3": {"running_fraction": 0.0, "last_running_ts": NOW - pd.Timedelta(days=90)},
            "PS02.P2": {"seal_leak_l_h": 10.0},
        },
    )
    visits = {p.name: NOW - pd.Timedelta(days=10) for p in registry.pumps}
    visits["PS02.P1"] = long_ago
    cond = conditions_from_state(state, registry, visits, [_Flag("PS02.P1")], NOW).set_index("asset")
    assert list(cond.columns[:7]) == list(CONDITION_COLUMNS[1:])
    # severity from the state: impeller wear 0.06 over the 0.05 alarm
    assert cond.at["PS01.P1", "severity"] == pytest.approx(1.2)
    assert cond.at["PS01.P1", "driver"] == "impeller_wear"
    assert cond.at["PS01.P1", "health_index"] < 0.3
    # seal leak the state's rules leave out: 10 L/h over 5 L/h
    assert cond.at["PS02.P2", "severity"] == pytest.approx(2.0)
    assert cond.at["PS02.P2", "driver"] == "seal_leak_l_h"
    # a pump never seen running is unknown; an idle standby too
    assert cond.at["PS01.P3", "uncertainty"] == pytest.approx(1.0)
    assert cond.at["PS02.P3", "uncertainty"] == pytest.approx(1.0)
    assert cond.at["PS02.P3", "uncertainty_driver"] == "idle"
    # a known, recently visited duty pump is nearly certain
    assert cond.at["PS02.P2", "uncertainty"] < 0.05
    # a flag and an old route visit raise the uncertainty
    assert bool(cond.at["PS02.P1", "sensor_flag"]) and cond.at["PS02.P1", "uncertainty"] == pytest.approx(1.0)
    assert cond.at["PS02.P1", "last_visit"] == long_ago
    # consequence: the line's first station is upstream; every station has a stopped spare except PS02
    assert cond.at["PS01.P1", "consequence"] == pytest.approx(1.25)
    assert cond.at["PS02.P2", "consequence"] == pytest.approx(1.0)
    assert cond.at["PS02.P3", "consequence"] == pytest.approx(1.0)


def test_no_spare_raises_consequence_and_stale_data_raises_uncertainty(registry) -> None:  # noqa: ANN001
    state = _state(registry, NOW - pd.Timedelta(days=3), {})  # every pump running: no spare anywhere
    cond = conditions_from_state(state, registry, {}, [], NOW).set_index("asset")
    assert cond.at["PS02.P1", "consequence"] == pytest.approx(1.5)
    assert cond.at["PS01.P1", "consequence"] == pytest.approx(1.5 * 1.25)
    assert cond.at["PS02.P1", "uncertainty"] == pytest.approx(1.0)  # 72 h old data, never visited
    assert pd.isna(cond.at["PS02.P1", "last_visit"])


def test_flagged_tag_voids_its_evidence_and_winding_drift_uses_the_reference(registry) -> None:  # noqa: ANN001
    ref = _state(registry, NOW - pd.Timedelta(days=28), {"PS02.P1": {"winding": Estimate(60.0, 1.0)}})
    state = _state(registry, NOW, {"PS02.P1": {"winding": Estimate(90.0, 1.0)}})
    cond = conditions_from_state(state, registry, {}, [], NOW, reference=ref).set_index("asset")
    assert cond.at["PS02.P1", "severity"] == pytest.approx(0.5 / PlannerSettings().winding_alarm_drift)
    assert cond.at["PS02.P1", "driver"] == "winding_drift"
    flagged = conditions_from_state(
        state, registry, {}, [_Flag("PS02.P1", "PS02.P1.MOTOR_WINDING_TEMP")], NOW, reference=ref
    ).set_index("asset")
    assert flagged.at["PS02.P1", "severity"] == pytest.approx(0.0)
    assert bool(flagged.at["PS02.P1", "sensor_flag"])
    plan = plan_round(flagged.reset_index(), NOW)
    assert plan.visits.set_index("asset").at["PS02.P1", "reason"].startswith("sensor flag")


# --------------------------------------------------------------------------------------------
# What routes have already seen
# --------------------------------------------------------------------------------------------


def test_news_is_the_growth_over_what_a_route_saw_faded_by_its_half_life() -> None:
    sev = np.array([3.0, 3.0, 4.5, 3.75, 3.0, 3.0])
    seen = np.array([0.0, 3.0, 3.0, 3.0, 3.0, np.nan])
    days = np.array([10.0, 0.0, 0.0, 0.0, 90.0, 10.0])
    news = news_severity(sev, seen, days, escalation=1.5, half_life_days=90.0)
    # nothing seen: whole; unchanged: none; grown by the escalation: whole; half-way: half
    assert news[:4] == pytest.approx([3.0, 0.0, 4.5, 3.75 * 0.5])
    # one half-life later the route saw 1.5, and 3.0 is twice that: whole again; NaN seen is nothing seen
    assert news[4:] == pytest.approx([3.0, 3.0])
    # far in alarm, news is the growth times the capped severity: 10 % more of 20 is not 2 of news
    far = news_severity(np.array([22.0, 40.0]), np.array([20.0, 20.0]), np.zeros(2), 2.0, 90.0, cap=2.0)
    assert far == pytest.approx([0.2, 2.0])


@settings(max_examples=200, deadline=None)
@given(
    sev=st.floats(0.0, 50.0),
    more=st.floats(0.0, 10.0),
    seen=st.floats(0.0, 50.0),
    days=st.floats(0.0, 400.0),
    escalation=st.floats(1.01, 4.0),
)
def test_news_never_exceeds_the_severity_and_grows_with_it(  # noqa: PLR0913 - one draw per argument
    sev: float, more: float, seen: float, days: float, escalation: float
) -> None:
    def news(s: float, d: float = days, base: float = seen) -> float:
        return float(news_severity(np.array([s]), np.array([base]), np.array([d]), escalation, 90.0)[0])

    assert 0.0 <= news(sev) <= sev + 1e-12
    assert news(sev + more) >= news(sev) - 1e-12  # a worse condition is never less news
    assert news(sev, days + 30.0) >= news(sev) - 1e-12  # an older visit reassures less
    assert news(sev, base=seen * 2.0) <= news(sev) + 1e-12  # having seen more leaves less news


def test_a_seen_alarm_is_not_a_must_visit_until_it_grows() -> None:
    cond = _conditions(
        [
            {"asset": "PS01.P1", "station": "PS01", "severity": 3.0, "news": 0.0, "seen_severity": 3.0},
            {"asset": "PS02.P1", "station": "PS02", "severity": 3.0},
        ]
    )
    plan = plan_round(cond, NOW, PlannerSettings(budget_h=0.0))
    assert plan.assets == ["PS02.P1"]
    assert "3.00 when last visited, news 0.00" in plan.covered.set_index("asset").at["PS01.P1", "reason"]
    with pytest.raises(PlannerError, match="news"):
        plan_round(cond.assign(news=[-1.0, 0.0]), NOW)


def test_conditions_count_news_per_piece_of_evidence(registry) -> None:  # noqa: ANN001
    state = _state(registry, NOW, {"PS02.P2": {"seal_leak_l_h": 10.0}})
    visits = {p.name: NOW - pd.Timedelta(days=30) for p in registry.pumps}
    fresh = conditions_from_state(state, registry, visits, [], NOW).set_index("asset")
    assert fresh.at["PS02.P2", "news"] == pytest.approx(2.0)  # nothing seen: the whole severity
    seen = seen_after_round({}, fresh.reset_index(), ["PS02.P2", "PS01.P1"])
    assert seen["PS02.P2"]["seal_leak_l_h"] == pytest.approx(2.0) and "impeller_wear" in seen["PS01.P1"]
    overdue = fresh.reset_index()
    overdue.at[0, "severities"] = {"ttf_s": math.inf, "impeller_wear": 0.5}
    assert seen_after_round({}, overdue, [overdue.at[0, "asset"]])[overdue.at[0, "asset"]] == {"impeller_wear": 0.5}
    again = conditions_from_state(state, registry, visits, [], NOW, seen=seen).set_index("asset")
    # the same leak a route saw 30 days ago is little news: 2.0 over 2.0 faded by 30 days
    defaults = PlannerSettings()
    faded = 2.0 * 0.5 ** (30 / defaults.seen_half_life_days)
    growth = (2.0 / faded - 1.0) / (defaults.escalation - 1.0)
    assert again.at["PS02.P2", "news"] == pytest.approx(2.0 * growth) and growth < 0.5
    assert again.at["PS02.P2", "seen_severity"] == pytest.approx(2.0)
    # a new failure mode on a pump a route saw for another is news at once
    seen_other = {"PS02.P2": {"impeller_wear": 5.0}}
    other = conditions_from_state(state, registry, visits, [], NOW, seen=seen_other).set_index("asset")
    assert other.at["PS02.P2", "news"] == pytest.approx(2.0)
    recent = {**visits, "PS02.P2": NOW - pd.Timedelta(days=1)}
    quiet = conditions_from_state(state, registry, recent, [], NOW, seen=seen).set_index("asset")
    assert quiet.at["PS02.P2", "news"] < 0.1
    assert "PS02.P2" not in plan_round(quiet.reset_index(), NOW, PlannerSettings(budget_h=0.0)).assets


def test_seen_memory_waits_for_the_visit_and_round_trips(registry) -> None:  # noqa: ANN001
    state = _state(registry, NOW, {"PS02.P2": {"seal_leak_l_h": 10.0}})
    cond = conditions_from_state(state, registry, {}, [], NOW)
    plan = plan_round(cond, NOW)
    memory = SeenMemory().after_plan(cond, plan)
    assert set(memory.planned) == set(plan.assets) and not memory.seen
    assert memory.planned["PS02.P2"][1]["seal_leak_l_h"] == pytest.approx(2.0)
    # a visit before the plan confirms nothing; one after it does
    assert memory.confirmed({"PS02.P2": NOW - pd.Timedelta(days=1)}).planned.keys() == memory.planned.keys()
    done = memory.confirmed({"PS02.P2": NOW + pd.Timedelta(hours=14)})
    assert done.seen["PS02.P2"]["seal_leak_l_h"] == pytest.approx(2.0) and "PS02.P2" not in done.planned
    back = SeenMemory.from_dict(json.loads(json.dumps(done.to_dict())))
    assert back == done
    for bad in ({"seen": {"P": {"x": -1.0}}}, {"planned": {"P": {"severities": {}}}}, {"seen": {"P": 3}}):
        with pytest.raises(PlannerError, match="seen-severity memory"):
            SeenMemory.from_dict(bad)
