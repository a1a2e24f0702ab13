"""The implement flow through Prefect's API, as an approver uses it: pause, read the artifact, answer, see the plant.

Each test writes a recommendation the way the recommend flow does (`write_recommendation` on
candidates the recommender judged on the twin's as-built line) and gives the flow a simulated plant
(the ``developing_faults`` scenario half an hour in, every running pump at 0.945 of rated) in the
home's plant file. The flow runs in a thread against the test harness; the test waits until the
run is paused on the request's key, reads the approval artifact and resumes the run with an answer.
"""

from __future__ import annotations

import csv
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from unittest import mock
from uuid import UUID

import pandas as pd
import pytest
from prefect.exceptions import NotPausedError

from pumptwin.agents.recommend import Action, _setpoint_action, refusal_text
from pumptwin.control.approval import FALSE_ALARMS_FILE, request_id
from pumptwin.control.audit import AuditLog
from pumptwin.control.simulated import SimulatedController
from pumptwin.flows import implement_steps as steps
from pumptwin.flows.settings import Settings
from pumptwin.plant.scenario import shipped_scenario
from pumptwin.plant.simulator import Plant
from pumptwin.twin.whatif.spec import BASE_NAME, ScenarioSpec, SpeedChange
from tests.flows.implement_support import (
    RUN_WAIT_S,
    SINCE,
    STATE_TS,
    WORN,
    FlowThread,
    flow_run_state,
    write_recommendation_of,
)

PLANT_WARMUP_S = 1800.0
PAUSE_WAIT_S = 90.0
PLANT_SPEED = 0.945
"""Relative speed of every running pump of the plant fixture (the scenario's 0.95 less its daily swing)."""


@pytest.fixture(scope="module")
def harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="module")
def plant_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated plant half an hour into the demo scenario, saved once for the module."""
    ctl = SimulatedController(Plant(shipped_scenario("developing_faults")))
    ctl.wait(PLANT_WARMUP_S)
    assert ctl.speed_setpoint(WORN) == pytest.approx(PLANT_SPEED)
    path = tmp_path_factory.mktemp("plant") / "plant.pkl"
    ctl.save(path)
    return path


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, plant_file: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    monkeypatch.setenv("PUMPTWIN_HOME", str(home))
    monkeypatch.setenv("PUMPTWIN_CONTROL_APPROVAL_POLL_S", "1")
    (home / "control").mkdir(parents=True)
    shutil.copy(plant_file, home / "control" / "plant.pkl")
    with mock.patch.dict(os.environ):
        yield home


def plant_speed(home: Path, pump: str = WORN) -> float:
    return SimulatedController.load(home / "control" / "plant.pkl").speed_setpoint(pump)


def write_rec(home: Path, action: Callable[[Any], Action]) -> Path:
    """A recommendation of ``action`` on PS02.P2's impeller wear, judged at the scenario's speed."""
    return write_recommendation_of(home, action, PLANT_SPEED)


def setpoint(speeds: Mapping[str, float]) -> Callable[[Any], Action]:
    def make(view: Any) -> Action:
        ids = {p.name: p.pump_id for p in view.pumps}
        return _setpoint_action({ids[k]: v for k, v in speeds.items()}, view)

    return make


def rid(path: Path) -> str:
    rec = steps.load_recommendation(path)
    return request_id(rec.line, rec.recommended_at, rec.chosen.name)


def paused_runs(request: str) -> list[UUID]:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    paused = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])))
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=paused)
    return [r.id for r in runs if r.state is not None and r.state.state_details.pause_key == request]


def wait_paused(request: str, run: FlowThread, n: int = 1) -> list[UUID]:
    deadline = time.monotonic() + PAUSE_WAIT_S
    while time.monotonic() < deadline:
        found = paused_runs(request)
        if len(found) >= n:
            return found
        if not run.thread.is_alive():
            run.join()
            pytest.fail(f"the flow finished without pausing: {run.result}")
        time.sleep(0.5)
    pytest.fail(f"no paused run for {request}")


def artifact(key: str) -> str:
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    assert found, f"no artifact {key}"
    return str(found[-1].data)


def kinds(home: Path, request: str) -> list[str]:
    return [r.kind for r in AuditLog(home / "control" / "audit.jsonl").records(request=request)]


def test_approve_implements_on_the_plant(harness: None, home: Path) -> None:
    target = round(plant_speed(home) - 0.05, 3)
    path = write_rec(home, setpoint({WORN: target}))
    request = rid(path)
    run = FlowThread(recommendation=str(path))
    (run_id,) = wait_paused(request, run)
    assert steps.find_paused_run(request) == run_id
    assert steps.load_recommendation(path).chosen.feasible
    md = artifact(f"approval-{request}")
    assert request in md and "What approving writes" in md and f"| {WORN} | {PLANT_SPEED:.3f} | {target:.3f} |" in md
    assert "exceeds the automatic limit" in md and "# Recommendation for line 1" in md
    steps.answer_request(run_id, {"approve": True, "approver": "j.doe", "comment": "relieve the impeller"})
    out = run.join()
    assert out["status"] == "implemented", out
    assert plant_speed(home) == pytest.approx(target, abs=1e-6)
    seen = kinds(home, request)
    assert seen[0] == "recommendation" and "decision" in seen and "write" in seen and seen[-1] == "done"
    assert "verified" in seen
    decision = AuditLog(home / "control" / "audit.jsonl").records(request=request, kind="decision")[0]
    assert decision.who == "j.doe" and decision.data["decides"] is True
    assert steps.status(Settings(home=home), request) == "implemented"


def test_reject_as_false_alarm_labels_and_writes_nothing(harness: None, home: Path) -> None:
    before = plant_speed(home)
    path = write_rec(home, setpoint({WORN: round(before - 0.06, 3)}))
    request = rid(path)
    run = FlowThread(recommendation=str(path))
    (run_id,) = wait_paused(request, run)
    steps.answer_request(run_id, {"approve": False, "approver": "a.smith", "reason": "false alarm"})
    out = run.join()
    assert out["status"] == "rejected"
    assert plant_speed(home) == before
    assert "write" not in kinds(home, request) and "label" in kinds(home, request)
    with (home / "labels" / FALSE_ALARMS_FILE).open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows == [
        {
            "asset": WORN,
            "ts": SINCE.isoformat(),
            "mode": "impeller_wear",
            "request": request,
            "approver": "a.smith",
            "until": STATE_TS.isoformat(),  # the approver judged the pump healthy up to the state answered
        }
    ]


def test_unanswered_request_expires(harness: None, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUMPTWIN_CONTROL_APPROVAL_TIMEOUT_S", "2")
    before = plant_speed(home)
    path = write_rec(home, setpoint({WORN: round(before - 0.05, 3)}))
    run = FlowThread(recommendation=str(path))
    (run_id,) = wait_paused(rid(path), run)
    out = run.join()
    assert out["status"] == "expired"
    assert flow_run_state(run_id) == "COMPLETED"
    with pytest.raises(NotPausedError):
        steps.answer_request(run_id, {"approve": True, "approver": "late"})
    assert kinds(home, out["request"]) == ["recommendation", "expired"]
    assert plant_speed(home) == before
    again = FlowThread(recommendation=str(path)).join()
    assert again["status"] == "expired" and "already expired" in again["message"]


def test_out_of_range_modified_speed_is_refused(harness: None, home: Path) -> None:
    before = plant_speed(home)
    path = write_rec(home, setpoint({WORN: round(before - 0.05, 3)}))
    request = rid(path)
    run = FlowThread(recommendation=str(path))
    (run_id,) = wait_paused(request, run)
    steps.answer_request(run_id, steps.form_answer(True, "j.doe", speeds={WORN: 1.3}))
    out = run.join()
    assert out["status"] == "refused"
    assert any("outside its range" in r and WORN in r for r in out["reasons"])
    assert plant_speed(home) == before
    assert "write" not in kinds(home, request) and kinds(home, request)[-1] == "refused"


@pytest.mark.slow
def test_modified_speed_that_breaks_a_hard_limit_is_refused(harness: None, home: Path) -> None:
    before = plant_speed(home, "PS01.P1")
    path = write_rec(home, setpoint({WORN: round(plant_speed(home) - 0.05, 3)}))
    request = rid(path)
    run = FlowThread(recommendation=str(path))
    (run_id,) = wait_paused(request, run)
    steps.answer_request(run_id, steps.form_answer(True, "j.doe", speeds={"PS01.P1": 0.87}))
    out = run.join()
    assert out["status"] == "refused"
    assert out["reasons"] and all(r.startswith("twin: ") for r in out["reasons"])
    assert any("NPSH" in r or "SUCTION" in r for r in out["reasons"]), out["reasons"]
    assert plant_speed(home, "PS01.P1") == before


def test_small_speed_change_is_implemented_without_a_pause(harness: None, home: Path) -> None:
    ctl = SimulatedController.load(home / "control" / "plant.pkl")
    target = round(ctl.speed_setpoint(WORN) - 0.02, 3)

    def slow(view: Any) -> Action:
        pid = view.pump(WORN).pump_id
        name = f"{WORN}: speed to {100 * target:.1f} %"
        return Action(name, "speed", ScenarioSpec(name=name, speeds=(SpeedChange(pid, factor=target / PLANT_SPEED),)))

    path = write_rec(home, slow)
    assert steps.load_recommendation(path).chosen.setpoints == {}  # a fixed candidate: speeds from its figures
    out = FlowThread(recommendation=str(path), controller=ctl).join()
    assert out["status"] == "implemented", out
    assert ctl.speed_setpoint(WORN) == pytest.approx(target, abs=1e-6)
    assert plant_speed(home) != pytest.approx(target, abs=1e-6)  # an in-process controller is not saved
    records = AuditLog(home / "control" / "audit.jsonl").records(request=out["request"])
    assert {r.who for r in records if r.kind in ("decision", "write", "done")} == {"auto-implement"}
    assert not paused_runs(out["request"])


@pytest.mark.slow
def test_auto_off_for_the_station_waits_for_a_person(
    harness: None, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUMPTWIN_CONTROL_AUTO_OFF_STATIONS", '["PS02"]')
    before = plant_speed(home)
    path = write_rec(home, setpoint({WORN: round(before - 0.01, 3)}))
    request = rid(path)
    run = FlowThread(recommendation=str(path))
    (run_id,) = wait_paused(request, run)
    assert "automatic implementation is off at station PS02" in artifact(f"approval-{request}")
    steps.answer_request(run_id, {"approve": False, "approver": "j.doe", "reason": "not now"})
    assert run.join()["status"] == "rejected"
    assert not (home / "labels" / FALSE_ALARMS_FILE).exists()


@pytest.mark.slow
def test_a_second_answer_is_recorded_and_refused(harness: None, home: Path) -> None:
    target = round(plant_speed(home) - 0.05, 3)
    path = write_rec(home, setpoint({WORN: target}))
    request = rid(path)
    first = FlowThread(recommendation=str(path))
    wait_paused(request, first)
    second = FlowThread(recommendation=str(path))
    run_a, run_b = wait_paused(request, second, n=2)
    steps.answer_request(run_a, {"approve": True, "approver": "j.doe"})
    deadline = time.monotonic() + RUN_WAIT_S
    while "done" not in kinds(home, request) and time.monotonic() < deadline:
        time.sleep(0.5)
    steps.answer_request(run_b, {"approve": False, "approver": "a.smith", "reason": "false alarm"})
    outs = sorted([first.join(), second.join()], key=lambda o: o["message"])
    assert [o["status"] for o in outs] == ["implemented", "implemented"]
    assert any("a.smith" in o["message"] and "refused" in o["message"] for o in outs)
    decisions = AuditLog(home / "control" / "audit.jsonl").records(request=request, kind="decision")
    assert [(d.who, d.data["decides"]) for d in decisions] == [("j.doe", True), ("a.smith", False)]
    assert not (home / "labels" / FALSE_ALARMS_FILE).exists()
    assert plant_speed(home) == pytest.approx(target, abs=1e-6)
    assert kinds(home, request).count("done") == 1


def test_keep_running_writes_nothing_and_does_not_pause(harness: None, home: Path) -> None:
    name = "keep running, schedule maintenance"
    path = write_rec(home, lambda view: Action(name, "maintenance", ScenarioSpec(name=BASE_NAME)))
    out = FlowThread(recommendation=str(path)).join()
    assert out["status"] == "no_action" and "nothing to write" in out["message"]
    assert kinds(home, out["request"]) == ["recommendation", "no-action"]


@pytest.mark.slow
def test_unanswered_request_escalates(harness: None, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUMPTWIN_CONTROL_APPROVAL_TIMEOUT_S", "2")
    monkeypatch.setenv("PUMPTWIN_CONTROL_ON_TIMEOUT", "escalate")
    monkeypatch.setenv("PUMPTWIN_CONTROL_ESCALATE_TO", "night supervisor")
    path = write_rec(home, setpoint({WORN: round(plant_speed(home) - 0.05, 3)}))
    request = rid(path)
    out = FlowThread(recommendation=str(path)).join()
    assert out["status"] == "escalated" and "night supervisor" in out["message"]
    assert "**night supervisor**" in artifact(f"escalation-{request}")
    (record,) = AuditLog(home / "control" / "audit.jsonl").records(request=request, kind="escalated")
    assert record.data == {"to": "night supervisor"}
    monkeypatch.setenv("PUMPTWIN_CONTROL_APPROVAL_TIMEOUT_S", "60")
    run = FlowThread(recommendation=str(path))  # an escalated request is asked again
    (run_id,) = wait_paused(request, run)
    steps.answer_request(run_id, {"approve": False, "approver": "night supervisor", "reason": "not now"})
    assert run.join()["status"] == "rejected"


def test_the_form_offers_the_requested_and_running_pumps(home: Path) -> None:
    path = write_rec(home, setpoint({WORN: 0.9}))
    prepared = steps.prepare(Settings(home=home), 1, path)
    ctl = SimulatedController.load(home / "control" / "plant.pkl")
    form = steps.approval_form(prepared.request, steps.current_speeds(ctl, prepared.request.pumps))
    speeds = sorted(k for k in form.model_fields if k.startswith(steps.FORM_PREFIX))
    assert speeds == ["speed_ps01_p1", "speed_ps01_p2", "speed_ps02_p1", "speed_ps02_p2"]
    schema = form.model_json_schema()["properties"]
    assert "false alarm" in str(schema["reason"]) and "requested 0.900" in schema["speed_ps02_p2"]["description"]
    answer = form(**steps.form_answer(True, "j.doe", speeds={"PS01.P1": 0.93}))
    decision = steps.decision_from_form(answer, prepared.request)
    assert decision.approve and decision.approver == "j.doe" and decision.setpoints == {"PS01.P1": 0.93}


def test_carry_out_refuses_a_start_and_rolls_back_an_unexpected_response(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pumptwin.control.approval import Decision

    path = write_rec(home, setpoint({WORN: 0.9}))
    settings = Settings(home=home)
    prepared = steps.prepare(settings, 1, path)
    ctl = SimulatedController.load(home / "control" / "plant.pkl")
    started = steps.carry_out(settings, ctl, prepared, Decision(True, "j.doe", setpoints={"PS02.P3": 0.9}), "j.doe")
    assert started.status == "refused" and "PS02.P3: not running" in started.message and not started.wrote
    assert not ctl.running("PS02.P3")
    monkeypatch.setenv("PUMPTWIN_CONTROL_RESPONSE_TOLERANCE", "1e-6")
    strict = Settings(home=home)
    modified = steps.carry_out(strict, ctl, prepared, Decision(True, "j.doe", setpoints={WORN: 0.91}), "j.doe")
    assert modified.status == "rolled_back"
    assert steps.twin_refusals(strict, 1) == []  # the approver's own speeds: nothing held against the action
    out = steps.carry_out(strict, ctl, prepared, Decision(True, "j.doe"), "j.doe")
    assert out.status == "rolled_back" and out.wrote and "did not respond as expected" in out.message
    assert ctl.speed_setpoint(WORN) == pytest.approx(PLANT_SPEED)
    assert steps.status(strict, prepared.request.id) == "rolled_back"
    (undone,) = steps.twin_refusals(strict, 1)  # the recommender holds the action back, as a refusal
    assert undone.action == prepared.request.action and undone.by == "plant"
    assert undone.reason in out.reasons and "did not respond as predicted" in refusal_text(undone)


def test_open_and_close_the_settings_controller(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    saved = home / "control" / "plant.pkl"
    saved.unlink()
    settings = Settings(home=home)
    ctl = steps.open_controller(settings)
    assert isinstance(ctl, SimulatedController) and ctl.plant.scenario.name == "developing_faults"
    steps.close_controller(settings, ctl, save=False)
    assert not saved.exists()
    steps.close_controller(settings, ctl, save=True)
    assert SimulatedController.load(saved).plant.now == ctl.plant.now
    monkeypatch.setenv("PUMPTWIN_CONTROL_BACKEND", "opcua")
    with pytest.raises(steps.ImplementError, match="PUMPTWIN_CONTROL_OPCUA_URL"):
        steps.open_controller(Settings(home=home))


@pytest.mark.slow
def test_auto_implement_over_opc_ua(harness: None, home: Path) -> None:
    from pumptwin.control.opcua import OpcUaController
    from pumptwin.control.opcua_server import NodeLimits, PlantOpcServer

    plant = SimulatedController.load(home / "control" / "plant.pkl")
    pumps = [p.name for p in plant.plant.registry.pumps]
    rated = {p.name: p.rated_speed_rpm for p in plant.plant.registry.pumps}
    limits = {
        p.name: NodeLimits(p.min_speed * p.rated_speed_rpm, p.max_speed * p.rated_speed_rpm)
        for p in plant.plant.registry.pumps
    }
    tags = [f"{p}.{m}" for p in pumps for m in ("FLOW", "DISCH_PRESS")]
    target = round(PLANT_SPEED - 0.02, 3)
    path = write_rec(home, setpoint({WORN: target}))
    with PlantOpcServer(plant, pumps, rated, limits, tags=tags) as server:
        plc = OpcUaController(server.url, rated, timeout_s=5.0, sleep=server.advance)
        try:
            out = FlowThread(recommendation=str(path), controller=plc).join()
            assert out["status"] == "implemented", out
            assert plc.speed_setpoint(WORN) == pytest.approx(target, abs=1e-6)
        finally:
            plc.close()
    assert plant.speed_setpoint(WORN) == pytest.approx(target, abs=1e-6)
    assert "verified" in kinds(home, out["request"])


def test_twin_check_expects_no_discharge_pressure_of_a_pump_that_starts_or_stops(home: Path) -> None:
    settings = Settings(home=home)
    now = {"PS02.P1": PLANT_SPEED, WORN: PLANT_SPEED}
    slowed = steps.twin_check(settings, 1, {WORN: 0.9}, now)
    assert {f"{WORN}.FLOW", f"{WORN}.DISCH_PRESS"} <= set(slowed.after)
    switched = steps.twin_check(settings, 1, {WORN: 0.0, "PS02.P3": PLANT_SPEED}, now)
    assert f"{WORN}.FLOW" in switched.after and "PS02.P3.FLOW" in switched.after
    assert f"{WORN}.DISCH_PRESS" not in switched.after and "PS02.P3.DISCH_PRESS" not in switched.after
    assert switched.after["PS02.P3.FLOW"] > 500.0 > switched.before.get("PS02.P3.FLOW", 0.0)


class _Panel:
    """Running state and setpoints of a few pumps (only what `writes_for` asks)."""

    def __init__(self, speeds: dict[str, float]) -> None:
        self.speeds = speeds

    def running(self, pump: str) -> bool:
        return self.speeds.get(pump, 0.0) > 0

    def speed_setpoint(self, pump: str) -> float:
        return self.speeds.get(pump, 0.0)


def test_a_switch_starts_the_standby_before_it_stops_the_outgoing_pump() -> None:
    from pumptwin.control.interface import Write

    panel = _Panel({"PS01.P1": 0.96, "PS01.P2": 0.95})
    writes = steps.writes_for({"PS01.P1": 0.0, "PS01.P2": 0.97, "PS01.P3": 1.0}, panel)  # type: ignore[arg-type]
    assert writes == [
        Write("PS01.P3", "start"),
        Write("PS01.P3", "speed", 1.0),
        Write("PS01.P2", "speed", 0.97),
        Write("PS01.P1", "stop"),
    ]
    assert steps.writes_for({"PS01.P1": 0.96, "PS01.P3": 0.0}, panel) == []  # type: ignore[arg-type]


def test_an_approved_action_the_twin_refuses_is_held_back_from_the_next_recommendations(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from pumptwin.control.approval import Decision
    from pumptwin.flows.recommend_steps import held_back

    path = write_rec(home, setpoint({"PS01.P1": 0.87}))
    settings = Settings(home=home)
    prepared = steps.prepare(settings, 1, path)
    ctl = SimulatedController.load(home / "control" / "plant.pkl")
    modified = steps.carry_out(settings, ctl, prepared, Decision(True, "j.doe", setpoints={"PS01.P1": 0.86}), "j.doe")
    assert modified.status == "refused" and any(r.startswith("twin: ") for r in modified.reasons)
    assert steps.twin_refusals(settings, 1) == []
    out = steps.carry_out(settings, ctl, prepared, Decision(True, "j.doe"), "j.doe")
    assert out.status == "refused" and not out.wrote
    (refusal,) = steps.twin_refusals(settings, 1)
    assert refusal.action == prepared.request.action
    assert f"twin: {refusal.reason}" in out.reasons
    assert steps.twin_refusals(settings, 2) == []
    hold = pd.Timedelta(seconds=settings.agents.refusal_hold_s)
    assert held_back(settings, 1, refusal.at + hold / 2) == (refusal,)
    assert held_back(settings, 1, refusal.at + hold * 2) == ()
    (home / "control" / "audit.jsonl").write_text("not a record\n", encoding="utf-8")
    assert steps.twin_refusals(settings, 1) == []
    assert "no refused action held back" in caplog.text
