"""The recommender on the reference pipeline: known situations, hard limits, ranking, evidence."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pumptwin.agents.evidence import Passage
from pumptwin.agents.recommend import (
    Objective,
    RecommendError,
    Refusal,
    Situation,
    check_speeds,
    failure_mode,
    fixed_actions,
    held_refusals,
    rank,
    recommend,
    rejections,
    relief,
    situations,
)
from pumptwin.agents.twin_view import TwinView
from pumptwin.twin.assets import build_registry
from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.health.state import Alert, AssetHealth, TwinState
from pumptwin.twin.hydraulic.io import load_network
from pumptwin.twin.whatif.limits import Limits
from pumptwin.twin.whatif.spec import ScenarioSpec, SpeedChange

TS = pd.Timestamp("2026-11-01T06:00", tz="UTC")


def _state(*alerts: tuple[str, str, float]) -> TwinState:
    """A twin state with one alert per (asset, source, severity)."""
    rows, health = [], []
    for asset, source, severity in alerts:
        level = "alarm" if severity >= 1 else "warning"
        rows.append(Alert(asset, source, "physics", level, 0.3, 0.25, "-", severity, TS, TS, "physics"))
        kind = "line" if asset.startswith("LINE") else "pump"
        health.append(AssetHealth(asset, kind, 0.4, level, severity, source, {source: 0.3}, {source: severity}))
    return TwinState(TS, tuple(health), tuple(rows))


@pytest.fixture(scope="module")
def view() -> TwinView:
    net = load_network(None)
    reg = build_registry(net)
    return TwinView(net, reg, rated_speed_rpm={p.pump_id: p.rated_speed_rpm for p in reg.pumps})


class FakeKnowledge:
    """A knowledge base over a handful of passages: search ranks by shared words, filters by metadata."""

    def __init__(self, passages: Sequence[Passage]) -> None:
        self.passages = list(passages)

    def _match(self, p: Passage, doc_types, assets, failure_modes) -> bool:
        if doc_types and p.doc_type not in doc_types:
            return False
        if assets and not set(assets) & set(p.meta.get("assets", [])):
            return False
        return not (failure_modes and not set(failure_modes) & set(p.meta.get("failure_modes", [])))

    def search(self, query, *, top_k=5, doc_types=None, assets=None, failure_modes=None, **_):
        words = set(query.lower().split())
        hits = [p for p in self.passages if self._match(p, doc_types, assets, failure_modes)]
        hits.sort(key=lambda p: (-len(words & set(p.text.lower().split())), p.id))
        return hits[:top_k]

    def lookup(self, *, doc_types=None, assets=None, failure_modes=None, limit=50):
        hits = [p for p in self.passages if self._match(p, doc_types, assets, failure_modes)]
        return sorted(hits, key=lambda p: p.meta.get("date", ""), reverse=True)[:limit]


def _p(pid: str, doc_type: str, text: str, assets=(), modes=(), date="2025-01-01", closed=None) -> Passage:
    title = pid.split("#", maxsplit=1)[0]
    meta = {"doc_type": doc_type, "title": title, "assets": list(assets), "failure_modes": list(modes), "date": date}
    return Passage(pid, text, meta if closed is None else {**meta, "closed": closed})


KB = FakeKnowledge(
    [
        _p(
            "SOP-106#step-2",
            "procedure",
            "high bearing temperature: reduce speed of the affected pump",
            (),
            ["bearing_wear"],
        ),
        _p("SOP-110#step-1", "procedure", "suspected pipeline leak flow imbalance: reduce line pressure", (), ["leak"]),
        _p("SOP-104#step-1", "procedure", "switch to the standby pump changeover: start the standby first"),
        _p("SOP-103#step-1", "procedure", "change pump speed VFD setpoint in steps of 2 %"),
        _p(
            "WO-24001",
            "work_order",
            "PS01.P1 bearing replaced, outcome good",
            ["PS01.P1"],
            ["bearing_wear"],
            "2024-05-02",
        ),
        _p("INS-401#ps01-p1", "inspection", "PS01.P1 bearing housing 71 C inspection finding", ["PS01.P1"]),
    ]
)


def test_failure_mode_of_evidence() -> None:
    assert failure_mode("p_seal_failure") == "seal_failure"
    assert failure_mode("thermal_drift_de") == "bearing_wear"
    assert failure_mode("seal_leak_l_h") == "seal_failure"
    assert failure_mode("strainer_drift") == "strainer_clog"
    assert failure_mode("winding_drift") == "motor_overheating"
    assert failure_mode("meter_bias_fraction") == "leak"
    assert failure_mode("something_else") == ""


def test_no_alert_means_no_change(view: TwinView) -> None:
    run = recommend(TwinState(TS, ()), view, search=True)
    rec = run.recommendation
    assert rec.chosen.kind == "base"
    assert rec.chosen.name == "no change"
    assert rec.situation == ()


def test_hot_bearing_relieves_that_pump_and_cites_the_procedure(view: TwinView) -> None:
    run = recommend(_state(("PS01.P1", "thermal_drift_de", 1.3)), view, kb=KB)
    rec = run.recommendation
    assert rec.chosen.feasible
    assert rec.chosen.kind in ("speed", "standby", "setpoint", "stop")
    base = next(c for c in rec.alternatives if c.kind == "maintenance")
    after = rec.chosen.numbers.get("PS01.P1 shaft power kW", 0.0)
    assert after < base.numbers["PS01.P1 shaft power kW"]
    assert rec.chosen.score > base.score
    ids = {p.id for p in rec.evidence.passages}
    assert "SOP-106#step-2" in ids
    assert "WO-24001" in ids
    assert "[SOP-106#step-2]" in rec.text or "[SOP-106#step-2]" in rec.text.replace(" ", "")
    assert rec.check.ok


def test_suspected_leak_lowers_line_pressure_and_cites_leak_procedure(view: TwinView) -> None:
    run = recommend(_state(("LINE01", "meter_bias_fraction", 1.5)), view, kb=KB)
    rec = run.recommendation
    assert rec.chosen.feasible
    base = next(c for c in rec.alternatives if c.kind == "maintenance")
    assert rec.chosen.numbers["max pressure MPa"] < base.numbers["max pressure MPa"]
    assert "SOP-110#step-1" in {p.id for p in rec.evidence.procedures}


def test_candidates_exceeding_maop_are_never_recommended(view: TwinView) -> None:
    # With MAOP derated to 75 %, the base case and any speed-up break it.
    tight = replace(view, limits=Limits(max_maop_use=0.75))
    rec = recommend(_state(("PS01.P1", "thermal_drift_de", 1.2)), tight).recommendation
    assert rec.chosen.feasible
    assert not any(r.startswith("MAOP") for r in rec.chosen.rejected)
    rejected_for_maop = [c for c in rec.alternatives if any(r.startswith("MAOP") for r in c.rejected)]
    assert rejected_for_maop, "the derated MAOP must reject some candidates"
    assert all(not c.feasible for c in rejected_for_maop)


def test_rejections_keep_preexisting_faults_on_other_assets_but_not_on_the_asset_at_risk(view: TwinView) -> None:
    report = view.simulate([])
    base = report.outcomes[0]
    # Build a violation on another pump present in the base: unchanged, it does not reject.
    from pumptwin.twin.whatif.report import Violation

    v = Violation("POR", "PS2-P1", 65.0, 70.0, "% of BEP")
    with_v = replace(base, violations=(v,))
    assert rejections(with_v, with_v, at_risk=["PS1-P1"]) == ()
    assert rejections(with_v, with_v, at_risk=["PS2-P1"]) != ()
    worse = replace(base, violations=(replace(v, value=60.0),))
    assert rejections(worse, with_v, at_risk=["PS1-P1"]) != ()
    maop = replace(base, violations=(Violation("MAOP", "L000-005", 3.2, 3.1, "MPa"),))
    assert rejections(maop, maop, at_risk=[]) != ()


@pytest.mark.parametrize("limit", ["SUCTION", "NPSH"])
def test_a_low_limit_already_broken_is_worse_only_when_lower(view: TwinView, limit: str) -> None:
    """Suction and NPSH margins are limits from below: a little more of them than before is no new harm."""
    from pumptwin.twin.whatif.report import Violation

    base = view.simulate([]).outcomes[0]
    before = replace(base, violations=(Violation(limit, "PS2-S", 0.57, 0.6, "bar g"),))
    higher = replace(base, violations=(Violation(limit, "PS2-S", 0.58, 0.6, "bar g"),))
    lower = replace(base, violations=(Violation(limit, "PS2-S", 0.50, 0.6, "bar g"),))
    assert rejections(higher, before, at_risk=[]) == ()
    assert rejections(lower, before, at_risk=[]) != ()


def test_relief_is_one_for_a_stopped_pump_and_zero_for_no_change(view: TwinView) -> None:
    report = view.simulate([])
    base = report.outcomes[0]
    sit = Situation("PS01.P1", "bearing_wear", 1.0, "alarm", "PS1-P1", ())
    assert relief(sit, base, base, 25.0) == 0.0
    stopped = replace(base, pumps=tuple(replace(p, running=False) if p.pump == "PS1-P1" else p for p in base.pumps))
    assert relief(sit, stopped, base, 25.0) == 1.0


def test_fixed_actions_cover_the_operator_list(view: TwinView) -> None:
    sits = situations(_state(("PS01.P1", "thermal_drift_de", 1.2)), view)
    names = [a.name for a in fixed_actions(sits, view)]
    assert "PS01.P1: speed -5 %" in names
    assert "PS01.P1: switch to standby" in names
    assert "PS01.P1: stop" in names
    assert "LINE01: throughput -10 %" in names
    assert "LINE01: controlled shut-down" in names
    assert any(", sisters +" in n for n in names)


def test_setpoint_search_is_feasible_and_reproducible(view: TwinView) -> None:
    state = _state(("PS01.P1", "thermal_drift_de", 1.2))
    a = recommend(state, view, seed=3)
    b = recommend(state, view, seed=3)
    assert a.searched is not None and a.searched.feasible
    assert a.searched.name == b.searched.name
    assert a.evaluated > 100
    speeds = a.searched.setpoints
    for p in view.pumps:
        if p.name in speeds:
            assert p.min_speed - 1e-9 <= speeds[p.name] <= p.max_speed + 1e-9


def test_rank_puts_feasible_first_by_score(view: TwinView) -> None:
    rec = recommend(_state(("PS01.P1", "thermal_drift_de", 1.2)), view, search=False).recommendation
    ranked = [rec.chosen, *rec.alternatives]
    assert ranked == rank(ranked)
    feasible = [c.score for c in ranked if c.feasible]
    assert feasible == sorted(feasible, reverse=True)
    assert all(math.isfinite(c.score) for c in ranked)


class BrokenKnowledge:
    def search(self, *args, **kwargs):
        raise PumptwinError("knowledge store http://127.0.0.1:9 cannot be reached")

    lookup = search


def test_unreachable_store_still_gives_the_twin_numbers(view: TwinView) -> None:
    rec = recommend(_state(("PS01.P1", "thermal_drift_de", 1.2)), view, kb=BrokenKnowledge(), search=False)
    r = rec.recommendation
    assert any("knowledge store unavailable" in n for n in r.notes)
    assert r.evidence.passages == ()
    assert r.chosen.numbers["throughput m3/h"] > 0
    assert r.text


def test_weights_change_the_choice(view: TwinView) -> None:
    state = _state(("PS01.P1", "thermal_drift_de", 1.2))
    caring = recommend(state, view, Objective(risk=10.0), search=False).recommendation
    indifferent = recommend(state, view, Objective(risk=0.0), search=False).recommendation
    assert caring.chosen.kind != "maintenance"
    assert indifferent.chosen.kind == "maintenance"


def test_searched_setpoints_keep_a_back_off_from_suction_and_npsh_limits(view: TwinView) -> None:
    from pumptwin.agents.recommend import SEARCH_BACKOFF_BAR, backoff_violations, suction_violations

    base = view.simulate([]).outcomes[0]
    node = view.suction_nodes()["PS2"]
    i = base.profile_nodes.index(node)
    pressure = base.profile_pressure_mpa.copy()
    pressure[i] = (view.min_suction_bar + SEARCH_BACKOFF_BAR / 2) / 10.0  # between the alarm and the back-off
    near = replace(base, profile_pressure_mpa=pressure)
    assert suction_violations(near, view) == ()
    assert [v.where for v in backoff_violations(near, view) if v.limit == "SUCTION"] == [node]


def test_searched_setpoints_keep_a_back_off_below_maop(view: TwinView) -> None:
    from pumptwin.agents.recommend import SEARCH_BACKOFF_MAOP, backoff_violations

    base = view.simulate([]).outcomes[0]
    assert not [v for v in backoff_violations(base, view) if v.limit == "MAOP"]
    node = "PS1-D"  # the first station's discharge, where the line's pressure peaks
    i = base.profile_nodes.index(node)
    pressure = base.profile_pressure_mpa.copy()
    pressure[i] = base.maop_mpa[i] * (1.0 - SEARCH_BACKOFF_MAOP / 2)  # under MAOP, inside the back-off
    near = replace(base, profile_pressure_mpa=pressure)
    assert [(v.limit, v.where) for v in backoff_violations(near, view) if v.limit == "MAOP"] == [("MAOP", node)]


def test_records_written_after_the_situation_are_not_evidence(view: TwinView) -> None:
    early = _state(("PS01.P1", "thermal_drift_de", 1.3))
    early = TwinState(pd.Timestamp("2024-01-01", tz="UTC"), early.health, early.alerts)
    rec = recommend(early, view, kb=KB, search=False).recommendation
    ids = {p.id for p in rec.evidence.passages}
    assert "WO-24001" not in ids  # opened 2024-05-02, after the state
    assert "SOP-106#step-2" in ids  # procedures are the current revision
    open_then = _state(("PS01.P1", "thermal_drift_de", 1.3))
    open_then = TwinState(pd.Timestamp("2025-03-02", tz="UTC"), open_then.health, open_then.alerts)
    ids = {p.id for p in recommend(open_then, view, kb=KB, search=False).recommendation.evidence.passages}
    assert "WO-24001" in ids and "WO-25009" not in ids  # WO-25009 closes 2025-03-05, after the state


def _corroded(view: TwinView, share: float = 0.97) -> TwinView:
    """The view with two assessed features: F-61 (1 km below PS2) at ``share`` of the base pressure there."""
    from pumptwin.twin.integrity.line import integrity_limits, pressure_at_features

    base = view.simulate([]).outcomes[0]
    rows = pd.DataFrame(
        {"feature_id": ["F-30", "F-61"], "chainage_m": [30_200.0, 61_200.0], "safe_pa": [1.0, 1.0], "pipe_id": "L"}
    )
    at = pressure_at_features(integrity_limits(rows), base.chainage_km, base.profile_pressure_mpa)
    rows["safe_pa"] = [2.0 * at[0] * 1e6, at[1] * 1e6 / share]
    return replace(view, integrity=integrity_limits(rows))


def test_the_derating_and_feature_safe_pressures_are_hard_limits(view: TwinView) -> None:
    from pumptwin.agents.recommend import derating_violations

    tight = _corroded(view, 1.03)  # the base case puts F-61 3 % over its safe pressure
    d = tight.derating
    assert d is not None and d.binding_feature == "F-61 (L, 61.2 km)"
    base, less = tight.simulate([ScenarioSpec("throughput -10 %", flow_factor=0.9)]).outcomes
    assert base.throughput_m3h > d.throughput_m3h > less.throughput_m3h and less.status == "ok"
    over = derating_violations(base, tight)
    assert [v.where for v in over] == ["throughput", "PS2 discharge"]
    assert over[0].limit_value == pytest.approx(d.throughput_m3h) and "F-61" in over[0].unit
    assert derating_violations(less, tight) == () and derating_violations(base, view) == ()
    assert any(v.limit == "INTEGRITY" and v.where.startswith("F-61") for v in base.violations)
    assert rejections(base, base, []) and not [r for r in rejections(less, base, []) if "INTEGRITY" in r]


def test_the_recommender_refuses_candidates_above_the_derating(view: TwinView) -> None:
    tight = _corroded(view, 1.03)
    rec = recommend(_state(("PS01.P1", "thermal_drift_de", 1.2)), tight, search=False).recommendation
    keep = next(c for c in (rec.chosen, *rec.alternatives) if c.kind == "maintenance")
    assert not keep.feasible
    assert any(r.startswith("INTEGRITY F-61 (L, 61.2 km)") for r in keep.rejected)
    assert any(r.startswith("DERATING throughput") for r in keep.rejected)
    limit = tight.derating.throughput_m3h  # type: ignore[union-attr]
    feasible = [c for c in (rec.chosen, *rec.alternatives) if c.feasible]
    assert feasible and all(c.numbers["throughput m3/h"] <= limit * 1.001 for c in feasible)
    assert rec.chosen.feasible and any("derated throughput" in n for n in rec.notes)
    # Without the assessment the same situation keeps running.
    loose = recommend(_state(("PS01.P1", "thermal_drift_de", 1.2)), view, search=False).recommendation
    assert next(c for c in (loose.chosen, *loose.alternatives) if c.kind == "maintenance").feasible


PLANT_NOW = {"PS01.P1": 0.9, "PS01.P2": 0.9, "PS02.P1": 0.9, "PS02.P2": 0.9}
"""Relative speeds of the running pumps as the control system reads them."""


def test_an_approved_start_that_would_starve_the_suction_now_is_refused(view: TwinView) -> None:
    """A third pump at the second station draws its suction below vapour on the twin: refused before any write."""
    third = check_speeds(view, None, Objective(), {"PS02.P3": 1.0}, PLANT_NOW)
    assert third.rejected and "PS2-S" in third.rejected[0]
    swap = check_speeds(view, None, Objective(), {"PS02.P1": 0.0, "PS02.P3": 0.9}, PLANT_NOW)
    assert swap.rejected == ()
    assert swap.running == frozenset()  # the stopped and the started pump do not run in both cases


def test_a_small_speed_change_passes_and_keeps_the_pump_in_both_cases(view: TwinView) -> None:
    check = check_speeds(view, None, Objective(), {"PS02.P1": 0.88}, PLANT_NOW)  # draws less at the low suction
    assert check.rejected == ()
    assert check.running == {"PS02.P1"}
    assert check.outcome.throughput_m3h < check.base.throughput_m3h


def test_a_pump_of_another_line_is_named(view: TwinView) -> None:
    with pytest.raises(RecommendError, match="PS09.P1"):
        check_speeds(view, None, Objective(), {"PS09.P1": 1.0}, PLANT_NOW)


def _diagnosed(asset: str, mode: str, probability: float) -> Alert:
    """A model's alarm that ``asset`` has ``mode`` (its probability against an alarm at 0.5)."""
    return Alert(asset, f"p_{mode}", "model", "alarm", probability, 0.5, "-", probability / 0.5, TS, TS, "diag-v3")


def test_a_diagnosed_cavitation_takes_the_npshr_it_shows(view: TwinView) -> None:
    """A pump a model finds cavitating has no margin left now, whatever the datasheet says; it scales from there."""
    from pumptwin.agents.recommend import observed_npshr_factors, with_observed_npshr

    limit = view.limits.min_npsh_margin_m
    base = view.simulate([]).outcomes[0]
    raw = next(p for p in base.pumps if p.pump == "PS1-P1")
    assert raw.npsh_margin_m > limit  # the datasheet sees no cavitation
    sits = situations(TwinState(TS, (), (_diagnosed("PS01.P1", "cavitation", 0.8),)), view)
    assert [(s.asset, s.mode, s.diagnosed) for s in sits] == [("PS01.P1", "cavitation", True)]
    factors = observed_npshr_factors(sits, base)
    assert factors == {"PS1-P1": pytest.approx(raw.npsh_available_m / raw.npsh_required_m)}
    seen = with_observed_npshr(base, factors, limit)
    pt = next(p for p in seen.pumps if p.pump == "PS1-P1")
    assert pt.npsh_margin_m == pytest.approx(0.0, abs=1e-9)
    assert [(v.limit, v.where) for v in seen.violations if v.limit == "NPSH"] == [("NPSH", "PS1-P1")]
    # the same factor at a lower speed: the NPSHr falls with the square of the speed
    slower = view.simulate([ScenarioSpec(name="slow", speeds=(SpeedChange("PS1-P1", rpm=0.9 * raw.speed_rpm),))])
    low = next(p for p in with_observed_npshr(slower.outcomes[1], factors, limit).pumps if p.pump == "PS1-P1")
    raw_low = next(p for p in slower.outcomes[1].pumps if p.pump == "PS1-P1")
    assert low.npsh_required_m == pytest.approx(factors["PS1-P1"] * raw_low.npsh_required_m)
    assert low.npsh_margin_m > pt.npsh_margin_m
    # the twin's own NPSH rule, not a diagnosis: the datasheet stands
    physics = situations(_state(("PS01.P1", "npsh_margin_m", 1.2)), view)
    assert [s.diagnosed for s in physics] == [False]
    assert observed_npshr_factors(physics, base) == {}


def test_a_diagnosed_cavitating_pump_is_not_left_running_as_it_is(view: TwinView) -> None:
    state = TwinState(TS, (), (_diagnosed("PS01.P1", "cavitation", 0.9),))
    rec = recommend(state, view, seed=0).recommendation
    keep = next(c for c in (rec.chosen, *rec.alternatives) if c.kind == "maintenance")
    assert not keep.feasible
    assert any(r.startswith("NPSH PS1-P1") for r in keep.rejected)
    assert rec.chosen.kind != "maintenance"
    assert any("cavitates with margin left on its datasheet NPSHr" in n for n in rec.notes)
    assert rec.check.ok


def test_the_npsh_margin_of_a_station_with_a_diagnosed_cavitation_keeps_the_back_off(view: TwinView) -> None:
    from pumptwin.agents.recommend import SEARCH_BACKOFF_M, doubted_npsh_violations

    base = view.simulate([]).outcomes[0]
    limit = view.limits.min_npsh_margin_m
    near = replace(
        base,
        pumps=tuple(replace(p, npsh_margin_m=limit + SEARCH_BACKOFF_M / 2) if p.running else p for p in base.pumps),
    )
    station = next(p.station for p in base.pumps if p.pump == "PS1-P1")
    flagged = {v.where for v in doubted_npsh_violations(near, view, [station])}
    assert flagged == {p.pump for p in near.pumps if p.running and p.station == station}
    assert flagged
    assert doubted_npsh_violations(base, view, [station]) == ()
    assert doubted_npsh_violations(near, view, []) == ()


def test_a_violation_on_another_asset_moved_below_the_twins_resolution_is_unchanged(view: TwinView) -> None:
    from pumptwin.twin.whatif.report import Violation

    base = view.simulate([]).outcomes[0]
    before = replace(base, violations=(Violation("SUCTION", "PS1-S", 0.5203, 0.6, "bar g"),))
    after = replace(base, violations=(Violation("SUCTION", "PS1-S", 0.5198, 0.6, "bar g"),))
    assert rejections(after, before, at_risk=["PS1-P1"]) == ()


def test_a_warning_on_another_asset_gets_no_evidence_of_its_own() -> None:
    from pumptwin.agents.evidence import Candidate
    from pumptwin.agents.recommend import gather_evidence

    kb = FakeKnowledge(
        [
            _p("SOP-106#step-2", "procedure", "high bearing temperature bearing wear response", (), ["bearing_wear"]),
            _p("SOP-112#step-1", "procedure", "surge pressure transient MAOP response", (), ["surge"]),
            _p("WO-24001", "work_order", "PS01.P1 bearing replaced", ["PS01.P1"], ["bearing_wear"], "2024-05-02"),
            _p("WO-24002", "work_order", "LINE01 surge relief valve set", ["LINE01"], ["surge"], "2024-06-02"),
        ]
    )
    hot = Situation("PS01.P1", "bearing_wear", 1.4, "alarm", "PS1-P1", ())
    surge = Situation("LINE01", "surge", 0.8, "warning", None, ())
    keep = Candidate(name="keep running, schedule maintenance", kind="maintenance")
    ids = {p.id for p in gather_evidence(kb, [hot, surge], keep).passages}
    assert {"SOP-106#step-2", "WO-24001"} <= ids
    assert "WO-24002" not in ids  # the warning's records are not looked up
    both = {p.id for p in gather_evidence(kb, [hot, replace(surge, level="alarm")], keep).passages}
    assert {"SOP-112#step-1", "WO-24002"} <= both


def test_what_earlier_actions_did_on_the_asset_is_evidence_known_by_the_state() -> None:
    from pumptwin.agents.evidence import Candidate
    from pumptwin.agents.recommend import OUTCOMES_SHOWN, gather_evidence

    def outcome(pid: str, asset: str, mode: str, day: str) -> Passage:
        return _p(pid, "outcome", f"Action on {asset}. Verdict: confirmed.", [asset], [mode], day)

    kb = FakeKnowledge(
        [
            outcome("OUT-1#intro", "PS01.P1", "bearing_wear", "2024-03-01"),
            outcome("OUT-2#intro", "PS01.P1", "bearing_wear", "2024-03-02"),
            outcome("OUT-3#intro", "PS01.P1", "bearing_wear", "2024-03-03"),
            outcome("OUT-4#intro", "PS01.P1", "bearing_wear", "2024-03-09"),  # after the state
            outcome("OUT-5#intro", "PS01.P2", "bearing_wear", "2024-03-02"),  # another pump
            outcome("OUT-6#intro", "PS01.P1", "seal_failure", "2024-03-02"),  # another mode
        ]
    )
    hot = Situation("PS01.P1", "bearing_wear", 1.4, "alarm", "PS1-P1", ())
    keep = Candidate(name="keep running, schedule maintenance", kind="maintenance")
    found = gather_evidence(kb, [hot], keep, until="2024-03-05").outcomes
    assert [p.id for p in found] == ["OUT-3#intro", "OUT-2#intro"][:OUTCOMES_SHOWN]
    assert {p.id for p in gather_evidence(kb, [hot], keep).outcomes} == {"OUT-4#intro", "OUT-3#intro"}


def test_only_the_latest_refusal_within_the_hold_is_held() -> None:
    old = Refusal("PS01.P1: switch to standby", TS - pd.Timedelta(hours=13), "SUCTION old")
    new = Refusal("PS01.P1: switch to standby", TS - pd.Timedelta(hours=2), "SUCTION new")
    other = Refusal("PS02.P1: switch to standby", TS - pd.Timedelta(hours=13), "NPSH")
    later = Refusal("PS02.P2: switch to standby", TS + pd.Timedelta(hours=1), "NPSH")
    held = held_refusals([old, other, new, later], TS, 12 * 3600.0)
    assert held == (new,)
    assert held_refusals([old, new], TS, 0.0) == ()


def test_an_action_refused_at_the_recheck_is_not_proposed_again_while_held(view: TwinView) -> None:
    state = _state(("PS01.P1", "thermal_drift_de", 1.3))
    first = recommend(state, view, search=False).recommendation.chosen
    assert first.feasible
    refusal = Refusal(first.name, TS - pd.Timedelta(hours=1), "SUCTION PS1-S: 0.55 bar g (limit 0.6)")
    rec = recommend(state, view, search=False, refused=(refusal,)).recommendation
    assert rec.chosen.name != first.name
    assert rec.chosen.feasible
    held = next(c for c in rec.alternatives if c.name == first.name)
    assert not held.feasible
    assert any("refused by the twin's re-check" in r and "SUCTION PS1-S" in r for r in held.rejected)
    assert any(n.startswith(f"{first.name}: approved, then refused") for n in rec.notes)
    assert rec.check.ok
    unrelated = Refusal("PS09.P9: switch to standby", TS, "NPSH")
    again = recommend(state, view, search=False, refused=(unrelated,)).recommendation
    assert again.chosen.name == first.name
    assert not any("refused" in n for n in again.notes)


def test_a_blocked_switch_to_standby_is_searched_with_the_other_pumps_speeds(view: TwinView) -> None:
    from pumptwin.agents.recommend import base_action, search_switches, simulate

    sits = situations(_state(("PS02.P1", "thermal_drift_de", 1.3)), view)
    actions = [base_action(sits), *fixed_actions(sits, view)]
    base, cands = simulate(actions, sits, view, Objective())
    switch = next(a for a in actions if a.kind == "standby" and a.name.startswith("PS02.P1"))
    plain = next(c for c in cands if c.name == switch.name)
    assert plain.feasible
    assert search_switches(actions, cands, sits, view, Objective(), base) == ([], 0)
    blocked = [replace(c, rejected=("SUCTION PS2-S: 0.55 bar g (limit 0.6)",)) if c is plain else c for c in cands]
    found, n = search_switches(actions, blocked, sits, view, Objective(), base, seed=1)
    assert n > 64
    (best,) = found
    assert best.kind == "standby" and best.feasible
    assert best.name.startswith(f"{switch.name}, setpoints: ")
    names = {p.pump_id: p.name for p in view.pumps}
    outgoing = next(p for p in base.pumps if names[p.pump] == "PS02.P1")
    spare = next(p for p in base.pumps if p.station == outgoing.station and not p.running)
    assert best.setpoints["PS02.P1"] == 0.0
    assert best.setpoints[names[spare.pump]] == pytest.approx(outgoing.speed)
    assert best.numbers[f"{names[spare.pump]} speed %"] == pytest.approx(100 * outgoing.speed, abs=1e-6)
    assert best.numbers["PS02.P1 speed %"] == 0.0
    for p in view.pumps:
        if p.name in best.setpoints and p.name not in ("PS02.P1", names[spare.pump]):
            assert p.min_speed - 1e-9 <= best.setpoints[p.name] <= p.max_speed + 1e-9
    held = Refusal(switch.name, TS, "SUCTION PS2-S: 0.55 bar g (limit 0.6)")
    rec = recommend(_state(("PS02.P1", "thermal_drift_de", 1.3)), view, refused=(held,), seed=1).recommendation
    offered = [c for c in (rec.chosen, *rec.alternatives) if c.name.startswith(f"{switch.name}, setpoints: ")]
    assert len(offered) == 1 and offered[0].feasible


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["PS01.P1: switch to standby", "PS02.P2: switch to standby", "setpoints: PS01.P1 95.0 %"]),
            st.integers(min_value=-48, max_value=6),
            st.sampled_from(["SUCTION PS2-S: 0.55 bar g (limit 0.6)", "twin, plant as now: negative pressure"]),
        ),
        max_size=12,
    ),
    st.floats(min_value=0.0, max_value=36 * 3600.0),
)
def test_held_refusals_are_the_latest_of_each_action_within_the_hold(
    rows: list[tuple[str, int, str]], hold_s: float
) -> None:
    refusals = [Refusal(a, TS + pd.Timedelta(hours=h), reason) for a, h, reason in rows]
    held = held_refusals(refusals, TS, hold_s)
    assert len({r.action for r in held}) == len(held)
    for r in held:
        assert 0.0 <= (TS - r.at).total_seconds() <= hold_s
        assert not r.reason.startswith("twin, plant as now")
        rivals = [x for x in refusals if x.action == r.action and not x.reason.startswith("twin, plant as now")]
        assert r.at == max(x.at for x in rivals if x.at <= TS)
    counted = {
        r.action for r in refusals if 0 <= (TS - r.at).total_seconds() <= hold_s and "plant as now" not in r.reason
    }
    assert {r.action for r in held} == counted
