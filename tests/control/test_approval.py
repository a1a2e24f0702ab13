"""Tests for `control.approval`: request ids, the automatic policy, decision checks, request status and labels."""

from __future__ import annotations

import csv
import math
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from pumptwin.agents.evidence import Candidate
from pumptwin.control.approval import (
    AUTO_KINDS,
    FALSE_ALARM,
    ApprovalError,
    ApprovalRequest,
    AutoPolicy,
    Decision,
    Requests,
    alert_labels,
    append_labels,
    auto_verdict,
    candidate_from_dict,
    false_alarm_rows,
    final_setpoints,
    like_for_like,
    new_request,
    request_id,
    response_expectations,
    target_speeds,
    validate_decision,
)
from pumptwin.control.audit import AuditLog
from pumptwin.control.interlocks import SpeedRange

T0 = pd.Timestamp("2026-03-01T12:00:00Z")
PUMPS = ("PS01.P1", "PS01.P2", "PS01.P3", "PS02.P1", "PS02.P2", "PS02.P3")
RANGES = {p: SpeedRange(0.7, 1.05) for p in PUMPS}
NOW = {"PS01.P1": 0.95, "PS01.P2": 0.95, "PS01.P3": 0.0, "PS02.P1": 0.95, "PS02.P2": 0.95, "PS02.P3": 0.0}
SITUATION = (
    "WARNING PS02.P2 impeller_wear = 0.04 - (alarm at 0.05) since 2026-03-01T08:00:00+00:00 [physics-1]",
    "ALARM PS02.P2 p_impeller_wear = 0.9 - (alarm at 0.5) since 2026-03-01T09:00:00+00:00 [m-3]",
    "ALARM LINE01 friction_multiplier = 1.2 - (alarm at 1.1) since 2026-03-01T10:00:00+00:00 [physics-1]",
)


def speeds_numbers(speeds: dict[str, float]) -> dict[str, float]:
    return {f"{p} speed %": 100 * s for p, s in speeds.items()} | {"throughput m3/h": 1900.0}


BASE = Candidate("no change", "base", numbers=speeds_numbers(NOW))


def slow(pump: str, to: float, kind: str = "speed", rejected: tuple[str, ...] = ()) -> Candidate:
    """A fixed speed candidate: its effect only in its figures, as the recommender records it."""
    return Candidate(f"{pump}: speed to {to}", kind, rejected=rejected, numbers=speeds_numbers({**NOW, pump: to}))


def request_for(cand: Candidate, timeout_s: float = 3600.0) -> ApprovalRequest:
    return new_request(1, T0, cand, BASE, ["PS02.P2"], T0 + pd.Timedelta(minutes=5), timeout_s)


# ---------------------------------------------------------------------------- requests


def test_request_id_is_stable_and_a_valid_key() -> None:
    a = request_id(1, T0, "PS02.P2: speed -5 %")
    assert a == request_id(1, T0.tz_convert("Europe/Oslo"), "PS02.P2: speed -5 %")
    assert a.startswith("line1-20260301t120000000000z-")
    assert all(c.islower() or c.isdigit() or c == "-" for c in a)
    assert a != request_id(2, T0, "PS02.P2: speed -5 %")
    assert a != request_id(1, T0 + pd.Timedelta(microseconds=1), "PS02.P2: speed -5 %")
    assert a != request_id(1, T0, "PS02.P2: speed -10 %")


def test_target_speeds_of_a_fixed_candidate_are_the_pumps_it_changes() -> None:
    assert target_speeds(slow("PS02.P2", 0.9), BASE) == {"PS02.P2": pytest.approx(0.9)}
    stop = Candidate("PS02.P2: stop", "stop", numbers=speeds_numbers({**NOW, "PS02.P2": 0.0}))
    assert target_speeds(stop, BASE) == {"PS02.P2": 0.0}
    searched = Candidate("setpoints", "setpoint", numbers=BASE.numbers, setpoints={"PS01.P1": 0.93})
    assert target_speeds(searched, BASE) == {"PS01.P1": 0.93}
    assert set(target_speeds(slow("PS02.P2", 0.9), None)) == set(PUMPS)


def test_new_request_round_trips_and_expires_after_the_timeout() -> None:
    req = request_for(slow("PS02.P2", 0.9), timeout_s=600)
    assert req.pumps == tuple(sorted(PUMPS)) and req.setpoints == {"PS02.P2": pytest.approx(0.9)}
    assert req.expires - req.created == pd.Timedelta(seconds=600)
    assert ApprovalRequest.from_dict(req.to_dict()) == req
    with pytest.raises(ApprovalError, match="timeout_s"):
        request_for(slow("PS02.P2", 0.9), timeout_s=-1)
    with pytest.raises(ApprovalError, match="expires"):
        ApprovalRequest("r", 1, "a", "speed", {}, {}, (), (), T0, T0 - pd.Timedelta(seconds=1))


def test_candidate_from_dict_reads_the_recommend_record() -> None:
    data = {
        "name": "setpoints: PS01.P1 93.0 %",
        "kind": "setpoint",
        "feasible": False,
        "rejected": ["NPSH PS2-P1: -0.3 m margin (limit 1)"],
        "score": 1.0,
        "terms": [{"name": "risk reduction", "value": 0.5, "weight": 10.0, "unit": "severity"}],
        "numbers": {"PS01.P1 speed %": 93.0},
        "setpoints": {"PS01.P1": 0.93},
    }
    c = candidate_from_dict(data)
    assert c.kind == "setpoint" and not c.feasible and c.score == 5.0 and c.setpoints == {"PS01.P1": 0.93}


# ---------------------------------------------------------------------------- automatic policy


def with_targets(c: Candidate) -> Candidate:
    return Candidate(c.name, c.kind, rejected=c.rejected, numbers=c.numbers, setpoints=target_speeds(c, BASE))


def test_a_small_feasible_speed_change_is_allowed() -> None:
    assert auto_verdict(with_targets(slow("PS02.P2", 0.93)), NOW, AutoPolicy()) == (True, [])
    assert auto_verdict(with_targets(slow("PS02.P2", 0.92)), NOW, AutoPolicy())[0]  # exactly the limit


@pytest.mark.parametrize(
    ("cand", "policy", "words"),
    [
        (slow("PS02.P2", 0.90), AutoPolicy(), "exceeds the automatic limit of 0.03"),
        (slow("PS02.P2", 0.93), AutoPolicy(enabled=False), "automatic implementation is off"),
        (slow("PS02.P2", 0.93), AutoPolicy(off_stations=frozenset({"PS02"})), "off at station PS02"),
        (slow("PS02.P2", 0.93, rejected=("POR PS2-P2: 62 %",)), AutoPolicy(), "hard limits broken: POR"),
        (slow("PS02.P2", 0.93, kind="throughput"), AutoPolicy(), "'throughput' actions always wait"),
        (slow("PS02.P2", 0.0, kind="stop"), AutoPolicy(), "a stop always waits"),
        (slow("PS02.P3", 0.95, kind="standby"), AutoPolicy(), "'standby' actions always wait"),
        (BASE, AutoPolicy(), "writes no speed setpoint"),
    ],
)
def test_refusals_each_have_a_reason(cand: Candidate, policy: AutoPolicy, words: str) -> None:
    allowed, reasons = auto_verdict(with_targets(cand), NOW, policy)
    assert not allowed
    assert any(words in r for r in reasons), reasons


def test_unknown_current_speed_is_refused() -> None:
    allowed, reasons = auto_verdict(with_targets(slow("PS02.P2", 0.93)), {}, AutoPolicy())
    assert not allowed and "not both known" in reasons[0]


def test_policy_never_allows_other_kinds() -> None:
    assert AUTO_KINDS == ("speed", "setpoint")
    with pytest.raises(ApprovalError, match="shutdown"):
        AutoPolicy(kinds=("speed", "shutdown"))
    with pytest.raises(ApprovalError, match="max_speed_change"):
        AutoPolicy(max_speed_change=math.nan)


# ---------------------------------------------------------------------------- decisions


def test_a_plain_approval_is_valid() -> None:
    req = request_for(slow("PS02.P2", 0.9))
    assert validate_decision(Decision(True, "j.doe"), req, RANGES) == []
    assert final_setpoints(req, Decision(True, "j.doe"), {"PS02.P2": 0.95}) == req.setpoints


@pytest.mark.parametrize(
    ("decision", "words"),
    [
        (Decision(True, "  "), "approver must be named"),
        (Decision(False, ""), "approver must be named"),
        (Decision(True, "j", reason="bored"), "reason 'bored'"),
        (Decision(True, "j", setpoints={"PS01.P1": 1.2}), "outside its range 0.7-1.05"),
        (Decision(True, "j", setpoints={"PS01.P1": 0.5}), "outside its range"),
        (Decision(True, "j", setpoints={"PS01.P1": math.nan}), "not a finite number"),
        (Decision(True, "j", setpoints={"PS01.P1": math.inf}), "not a finite number"),
        (Decision(True, "j", setpoints={"PS03.P1": 0.9}), "not a pump of line 1"),
    ],
)
def test_bad_answers_are_caught_in_code(decision: Decision, words: str) -> None:
    problems = validate_decision(decision, request_for(slow("PS02.P2", 0.9)), RANGES)
    assert any(words in p for p in problems), problems


def test_modified_speeds_replace_the_requested_ones_and_need_a_range() -> None:
    req = request_for(slow("PS02.P2", 0.9))
    d = Decision(True, "j", setpoints={"PS02.P2": 0.92, "PS01.P1": 0.96})
    assert validate_decision(d, req, RANGES) == []
    assert final_setpoints(req, d, {}) == {"PS02.P2": 0.92, "PS01.P1": 0.96}
    missing = {k: v for k, v in RANGES.items() if k != "PS01.P1"}
    assert "gives no speed range" in validate_decision(d, req, missing)[0]
    assert validate_decision(Decision(False, "j", setpoints={"PS01.P1": 9.0}), req, RANGES) == []


def test_a_switch_to_standby_hands_over_the_running_pumps_speed_now() -> None:
    asked = {"PS02.P1": 0.0, "PS02.P3": 1.0}
    assert like_for_like("standby", asked, {"PS02.P1": 0.9, "PS02.P2": 0.9}) == {"PS02.P1": 0.0, "PS02.P3": 0.9}
    assert like_for_like("standby", asked, {"PS02.P2": 0.9}) == asked  # its pump stopped meanwhile
    assert like_for_like("standby", asked, {"PS02.P1": 0.9, "PS02.P3": 0.95}) == asked  # the standby runs already
    assert like_for_like("setpoint", asked, {"PS02.P1": 0.9}) == asked


# ---------------------------------------------------------------------------- status and answers


def clock(start: datetime = datetime(2026, 3, 1, 12, tzinfo=UTC)):  # noqa: ANN201 - a test clock
    t = [start]

    def now() -> datetime:
        t[0] += timedelta(seconds=1)
        return t[0]

    return now


def proposed(tmp_path: Path) -> tuple[Requests, ApprovalRequest]:
    audit = AuditLog(tmp_path / "audit.jsonl", clock=clock())
    req = request_for(slow("PS02.P2", 0.9))
    audit.append("recommendation", req.id, "recommend", req.action, data=req.to_dict())
    return Requests(audit), req


def test_status_follows_the_log(tmp_path: Path) -> None:
    requests, req = proposed(tmp_path)
    assert requests.status("other") == ""
    assert requests.status(req.id) == "proposed"
    assert requests.decide(req, Decision(True, "j.doe"))
    assert requests.status(req.id) == "approved"
    requests.audit.append("write", req.id, "j.doe", "speed 0.93 for PS02.P2")
    assert requests.status(req.id) == "approved"
    requests.audit.append("done", req.id, "j.doe", "done", data={"status": "done"})
    assert requests.status(req.id) == "implemented"
    assert requests.audit.verify() == 4


@pytest.mark.parametrize(("kind", "status"), [("rolled_back", "rolled_back"), ("unconfirmed", "unconfirmed")])
def test_implementation_results_set_the_status(tmp_path: Path, kind: str, status: str) -> None:
    requests, req = proposed(tmp_path)
    requests.decide(req, Decision(True, "j.doe"))
    requests.audit.append(kind, req.id, "j.doe", kind)
    assert requests.status(req.id) == status


def test_a_refused_approval(tmp_path: Path) -> None:
    requests, req = proposed(tmp_path)
    requests.decide(req, Decision(True, "j.doe"))
    requests.audit.append("refused", req.id, "j.doe", "not implemented")
    assert requests.status(req.id) == "refused"


def test_the_first_answer_decides_and_a_second_is_recorded_and_refused(tmp_path: Path) -> None:
    requests, req = proposed(tmp_path)
    assert requests.decide(req, Decision(False, "a.smith", reason=FALSE_ALARM))
    assert not requests.decide(req, Decision(True, "j.doe"))
    assert requests.status(req.id) == "rejected"
    first, second = requests.audit.records(request=req.id, kind="decision")
    assert (first.who, first.data["decides"], second.who, second.data["decides"]) == ("a.smith", True, "j.doe", False)
    assert "already rejected by a.smith" in second.why
    decider = requests.decider(req.id)
    assert decider is not None and decider.seq == first.seq


def test_expired_and_escalated(tmp_path: Path) -> None:
    requests, req = proposed(tmp_path)
    requests.audit.append("escalated", req.id, "implement", "escalated to the shift supervisor")
    assert requests.status(req.id) == "escalated"
    assert requests.decide(req, Decision(True, "supervisor"))  # an escalated request can still be answered
    requests2, req2 = proposed(tmp_path / "b")
    requests2.audit.append("expired", req2.id, "implement", "expired")
    assert not requests2.decide(req2, Decision(True, "late"))
    assert requests2.status(req2.id) == "expired"


def test_answers_at_the_same_time_decide_once(tmp_path: Path) -> None:
    requests, req = proposed(tmp_path)
    results: list[bool] = []
    barrier = threading.Barrier(4)

    def answer(i: int) -> None:
        mine = Requests(AuditLog(requests.audit.path))
        barrier.wait()
        results.append(mine.decide(req, Decision(i % 2 == 0, f"person{i}")))

    threads = [threading.Thread(target=answer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, False, False, True]
    assert requests.status(req.id) in ("approved", "rejected")
    decider = requests.decider(req.id)
    assert decider is not None
    assert requests.status(req.id) == ("approved" if decider.data["approve"] else "rejected")


# ---------------------------------------------------------------------------- response and labels


def test_expectations_move_the_reading_by_the_predicted_change() -> None:
    (flow,) = response_expectations(
        {"PS02.P2.FLOW": 980.0}, {"PS02.P2.FLOW": 1000.0}, {"PS02.P2.FLOW": 900.0, "X.FLOW": 5.0}, 0.1
    )
    assert flow.tag == "PS02.P2.FLOW" and flow.value == pytest.approx(880.0)
    assert flow.tolerance == pytest.approx(90.0)
    assert flow.met_by(875.0) and not flow.met_by(979.0)


def test_a_false_alarm_becomes_label_rows(tmp_path: Path) -> None:
    assert alert_labels(SITUATION) == [
        ("LINE01", "leak", pd.Timestamp("2026-03-01T10:00:00Z")),
        ("PS02.P2", "impeller_wear", pd.Timestamp("2026-03-01T08:00:00Z")),
    ]
    req = request_for(slow("PS02.P2", 0.9))
    rows = false_alarm_rows(req, Decision(False, "a.smith", reason=FALSE_ALARM), SITUATION)
    assert [(r["asset"], r["mode"], r["request"], r["approver"]) for r in rows] == [
        ("LINE01", "leak", req.id, "a.smith"),
        ("PS02.P2", "impeller_wear", req.id, "a.smith"),
    ]
    assert false_alarm_rows(req, Decision(False, "a", reason="not now"), SITUATION) == []
    assert false_alarm_rows(req, Decision(True, "a", reason=FALSE_ALARM), SITUATION) == []
    path = tmp_path / "labels" / "false_alarms.csv"
    assert append_labels(path, rows) == 2 and append_labels(path, rows[:1]) == 1 and append_labels(path, []) == 0
    with path.open(encoding="utf-8") as f:
        back = list(csv.DictReader(f))
    assert len(back) == 3 and back[0] == rows[0]
    assert set(back[0]) == {"asset", "ts", "mode", "request", "approver", "until"}
    assert all(r["until"] == "" for r in back)  # the state judged is not known
    assert pd.read_csv(path)["ts"].map(pd.Timestamp).min() == pd.Timestamp("2026-03-01T08:00:00Z")


def test_a_false_alarm_label_says_until_when_the_approver_saw_the_asset() -> None:
    req = request_for(slow("PS02.P2", 0.9))
    no = Decision(False, "a.smith", reason=FALSE_ALARM)
    seen = pd.Timestamp("2026-03-01T09:00:00Z")  # after the pump's alert began, before the line's
    rows = {r["asset"]: r for r in false_alarm_rows(req, no, SITUATION, seen)}
    assert pd.Timestamp(rows["PS02.P2"]["until"]) == seen
    assert pd.Timestamp(rows["LINE01"]["until"]) == pd.Timestamp(rows["LINE01"]["ts"])  # never before the start


def test_labels_appended_to_a_file_of_fewer_columns_widen_it(tmp_path: Path) -> None:
    path = tmp_path / "false_alarms.csv"
    path.write_text("asset,ts,mode,request,approver\nPS01.P1,2026-03-01T08:00:00+00:00,seal_failure,R1,ana\n")
    row = {"asset": "PS01.P2", "ts": "2026-03-02T08:00:00+00:00", "mode": "", "request": "R2", "approver": "bo"}
    assert append_labels(path, [{**row, "until": "2026-03-02T12:00:00+00:00"}]) == 1
    with path.open(encoding="utf-8") as f:
        back = list(csv.DictReader(f))
    assert [(r["request"], r["until"]) for r in back] == [("R1", ""), ("R2", "2026-03-02T12:00:00+00:00")]
    assert back[0]["approver"] == "ana" and back[1]["approver"] == "bo"
    assert not path.with_name(path.name + ".tmp").exists()


def test_a_pump_being_stopped_must_cover_most_of_its_fall() -> None:
    (flow,) = response_expectations({"PS01.P1.FLOW": 990.0}, {"PS01.P1.FLOW": 1000.0}, {"PS01.P1.FLOW": -6.0}, 0.1)
    assert flow.value == pytest.approx(-16.0)
    assert flow.tolerance == pytest.approx(0.25 * 1006.0)
    assert flow.met_by(0.4) and flow.met_by(200.0)
    assert not flow.met_by(990.0) and not flow.met_by(500.0)
