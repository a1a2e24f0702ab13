"""The demo's closed loop: its automatic approver, its settings for the implement run, and the whole demo (slow)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from unittest import mock
from uuid import uuid4

import pytest

from pumptwin.control.audit import AuditLog
from pumptwin.flows import demo, demo_loop
from pumptwin.flows.settings import Settings


def test_environment_sets_the_control_settings_for_the_block_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUMPTWIN_CONTROL_AUTO_IMPLEMENT", "true")
    monkeypatch.delenv("PUMPTWIN_CONTROL_APPROVAL_POLL_S", raising=False)
    with demo_loop.environment(demo_loop.DEMO_CONTROL_ENV):
        control = Settings().control
        assert control.auto_implement is False and control.approval_poll_s == 1
    assert os.environ["PUMPTWIN_CONTROL_AUTO_IMPLEMENT"] == "true"
    assert "PUMPTWIN_CONTROL_APPROVAL_POLL_S" not in os.environ
    assert Settings().control.auto_implement is True


def test_automatic_approver_answers_the_paused_run_once_it_is_found() -> None:
    run_id = uuid4()
    found = iter([None, None, run_id])
    answers: list[tuple[object, dict[str, object]]] = []
    with (
        mock.patch("pumptwin.flows.implement_steps.find_paused_run", side_effect=lambda _: next(found)),
        mock.patch("pumptwin.flows.implement_steps.answer_request", side_effect=lambda r, a: answers.append((r, a))),
        mock.patch.object(demo_loop, "POLL_S", 0.01),
    ):
        approver = demo_loop.AutoApprover("line1-x", {"approve": True, "approver": demo_loop.APPROVER})
        approver.start()
        deadline = time.monotonic() + 10
        while approver.run_id is None and time.monotonic() < deadline:
            time.sleep(0.01)
        approver.stop()
    assert approver.run_id == run_id and not approver.error
    assert answers == [(run_id, {"approve": True, "approver": demo_loop.APPROVER})]


def test_automatic_approver_reports_when_no_run_pauses() -> None:
    with (
        mock.patch("pumptwin.flows.implement_steps.find_paused_run", return_value=None),
        mock.patch("pumptwin.flows.implement_steps.answer_request") as answer,
        mock.patch.object(demo_loop, "POLL_S", 0.01),
    ):
        approver = demo_loop.AutoApprover("line1-y", {}, timeout_s=0.05)
        approver.start()
        approver._thread.join(5)  # type: ignore[union-attr]
        approver.stop()
    assert approver.run_id is None and "no paused run for request line1-y" in approver.error
    answer.assert_not_called()


def test_automatic_approver_stops_when_the_flow_ends_without_pausing() -> None:
    with (
        mock.patch("pumptwin.flows.implement_steps.find_paused_run", return_value=None),
        mock.patch.object(demo_loop, "POLL_S", 0.01),
    ):
        approver = demo_loop.AutoApprover("line1-z", {}, timeout_s=60)
        approver.start()
        t0 = time.monotonic()
        approver.stop()
    assert time.monotonic() - t0 < 5
    assert approver.run_id is None and approver.error == ""


def test_automatic_approver_reports_a_refused_answer() -> None:
    with (
        mock.patch("pumptwin.flows.implement_steps.find_paused_run", return_value=uuid4()),
        mock.patch("pumptwin.flows.implement_steps.answer_request", side_effect=RuntimeError("input refused")),
    ):
        approver = demo_loop.AutoApprover("line1-w", {})
        approver.start()
        approver._thread.join(5)  # type: ignore[union-attr]
    assert approver.run_id is None and approver.error == "RuntimeError: input refused"


def test_audit_summary_counts_and_verifies_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    assert demo_loop.audit_summary(path) == "no records yet"
    log = AuditLog(path)
    log.append("recommendation", "line1-a", "recommend", "PS01.P1: switch to standby")
    log.append("decision", "line1-a", "j.doe", "approved")
    assert demo_loop.audit_summary(path) == "2 records, hash chain verified"
    path.write_text(path.read_text(encoding="utf-8").replace("j.doe", "x.doe"), encoding="utf-8")
    assert "does NOT verify" in demo_loop.audit_summary(path)


@pytest.mark.slow
def test_the_demo_runs_the_whole_closed_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("PUMPTWIN_HOME", str(home))
    monkeypatch.setenv("PREFECT_HOME", str(home / "prefect"))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with mock.patch.dict(os.environ):
        code = demo.run(Settings(home=home))
    out, err = capfd.readouterr()
    assert code == 0, out
    for step in (
        "1. plant",
        "2. features",
        "3. models",
        "4. twin",
        "5. agent",
        "6. approve",
        "7. implement",
        "8. learn",
    ):
        assert step in out
    assert demo_loop.DEMO_MODE_NOTE in out
    assert "approved by 'demo approver'" in out and "trend" in out and "gate:" in out
    assert not re.search(r"\d\.?\d*e[+-]\d", out), "a number printed with an exponent"
    assert not re.search(r"\bPS\d-P\d\b", out), "a network pump id on screen"
    assert "Flow run" not in out and "Warning" not in out
    assert err == ""
    assert (home / demo.LOG_FILE).is_file() and "Flow run" in (home / demo.LOG_FILE).read_text(encoding="utf-8")
    assert "hash chain verified" in out and "pumptwin approve REQUEST_ID --approver NAME" in out


def test_interlock_messages_show_readings_in_units() -> None:
    text = "rolled back: PS01.P1.DISCH_PRESS read 0.93, expected 26.9153 ± 2.69726 (and 2 more)"
    assert demo_loop.for_people(text) == (
        "rolled back: PS01.P1.DISCH_PRESS read 0.93 bar, the twin expected 26.9 bar ± 2.70 bar (and 2 more)"
    )
    assert demo_loop.for_people("PS01.P1.FLOW read -2.6, expected -5.85707 ± 0.585707") == (
        "PS01.P1.FLOW read -2.60 m3/h, the twin expected -5.86 m3/h ± 0.59 m3/h"
    )
    assert demo_loop.for_people("nothing to write") == "nothing to write"
