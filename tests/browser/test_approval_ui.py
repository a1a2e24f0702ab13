"""An approver approves a paused ``implement`` run in the real Prefect UI, in headless Chromium.

A real ``prefect server start`` serves the UI (its default, the React "V2" UI). The implement flow
runs in a thread against that server, with automatic implementation off and an in-process
simulated plant, and pauses on a recommendation to slow the worn pump PS02.P2. The browser then
does what a person does: opens the UI, goes to Runs, opens the paused run, reads the approval
artifact (the action, what approving writes), opens the resume form from the run's menu, switches
Approve on, types a name and a comment and submits. The API, the audit log and the plant then
show the decision and the write.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from pumptwin.control.approval import request_id
from pumptwin.control.audit import AuditLog
from pumptwin.flows import implement_steps as steps
from pumptwin.flows.settings import Settings
from tests.flows.implement_support import FlowThread, flow_run_state

from .conftest import RUN_WAIT_S, WORN, PrefectServer, write_slowdown

pytestmark = pytest.mark.browser

UI_WAIT_S = 60.0
"""Longest wait for a page element (the UI polls the API every few seconds)."""
PAUSE_WAIT_S = 120.0
APPROVER = "j.doe"
COMMENT = "relieve the worn impeller before the night tariff"


def wait_paused(request: str, run: FlowThread) -> UUID:
    """The id of the run paused on ``request``, once the API shows it."""
    deadline = time.monotonic() + PAUSE_WAIT_S
    while time.monotonic() < deadline:
        found = steps.find_paused_run(request)
        if found is not None:
            return found
        if not run.thread.is_alive():
            pytest.fail(f"the flow finished without pausing: {run.join()}")
        time.sleep(0.5)
    pytest.fail(f"no run paused for request {request} within {PAUSE_WAIT_S:g} s")


class UI:
    """The few moves a person makes in the Prefect UI, each behind an explicit wait."""

    def __init__(self, driver: Any) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver = driver
        self.wait = WebDriverWait(driver, UI_WAIT_S)

    def until(self, condition: Callable[[Any], Any], what: str) -> Any:  # noqa: ANN401 - a Selenium result
        """Wait for ``condition``; on timeout, fail naming ``what`` and the page's URL."""
        from selenium.common.exceptions import TimeoutException

        try:
            return self.wait.until(condition)
        except TimeoutException:
            pytest.fail(f"the UI did not show {what} within {UI_WAIT_S:g} s (at {self.driver.current_url})")

    def clickable(self, xpath: str, what: str) -> Any:  # noqa: ANN401 - a WebElement
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        return self.until(ec.element_to_be_clickable((By.XPATH, xpath)), what)

    def click(self, xpath: str, what: str) -> None:
        """Click the element at ``xpath`` once it is clickable (scrolled into view first)."""
        element = self.clickable(xpath, what)
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
        element.click()

    def text_shown(self, text: str) -> None:
        """Wait until ``text`` is part of the page's visible text."""
        from selenium.webdriver.common.by import By

        self.until(lambda d: text in d.find_element(By.TAG_NAME, "body").text, repr(text))

    def state_shown(self, state: str) -> None:
        """Wait until the run's state badge reads ``state`` (the page polls the API; no reload)."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        badge = f"//*[@data-slot='badge' and normalize-space(.)='{state}']"
        self.until(ec.visibility_of_element_located((By.XPATH, badge)), f"the state badge {state!r}")

    def form_field(self, dialog: Any, title: str) -> Any:  # noqa: ANN401 - a WebElement
        """The control of the form field titled ``title`` (its label reads ``title`` or ``title (Optional)``)."""
        from selenium.webdriver.common.by import By

        def find(_: Any) -> Any:  # noqa: ANN401
            for label in dialog.find_elements(By.TAG_NAME, "label"):
                text = label.text.strip()
                if (text == title or text.startswith(f"{title} (")) and label.get_attribute("for"):
                    return self.driver.find_element(By.ID, label.get_attribute("for"))
            return False

        return self.until(find, f"the form field {title!r}")

    def open_run_from_the_runs_list(self, url: str, run_id: UUID) -> None:
        """Open the UI's root, go to Runs and open the run, as a person does."""
        from selenium.webdriver.support import expected_conditions as ec

        self.driver.get(f"{url}/")
        self.click("//nav//a[normalize-space(.)='Runs'] | //a[normalize-space(.)='Runs']", "the Runs link")
        self.click(f"//a[contains(@href, '/runs/flow-run/{run_id}')]", "the paused run in the runs list")
        self.until(ec.url_contains(str(run_id)), "the run's page")

    def open_artifact(self, key: str) -> None:
        """From a run's page: its Artifacts tab, then the artifact ``key``."""
        self.click("//*[@role='tab' and normalize-space(.)='Artifacts']", "the Artifacts tab")
        self.click(f"//a[contains(@href, '/artifacts/') and contains(., '{key}')]", f"the artifact {key}")

    def table_row(self, first_cell: str) -> list[str]:
        """The words of the table row whose first cell reads ``first_cell``."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        xpath = f"//tr[td[1][normalize-space(.)='{first_cell}']]"
        return self.until(ec.visibility_of_element_located((By.XPATH, xpath)), f"the row of {first_cell}").text.split()

    def answer_from_the_run_menu(self, run_id: UUID, approve: bool, approver: str, comment: str) -> None:
        """Back to the run (the link on the artifact's page), Resume from its menu, fill the form and submit it."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        self.click(f"//a[contains(@href, '/runs/flow-run/{run_id}')]", "the link back to the run")
        self.until(ec.url_contains(str(run_id)), "the run's page")
        self.click("//main//button[@aria-haspopup='menu' and normalize-space(.)='Open menu']", "the run's menu")
        self.click("//*[@role='menuitem' and normalize-space(.)='Resume']", "Resume in the run's menu")
        form = "//*[@role='dialog'][.//button[normalize-space(.)='Resume']]"
        dialog = self.until(ec.visibility_of_element_located((By.XPATH, form)), "the resume form")
        switch = self.form_field(dialog, "Approve")
        assert switch.get_attribute("role") == "switch" and switch.get_attribute("aria-checked") == "false"
        if approve:
            switch.click()
            self.until(lambda _: switch.get_attribute("aria-checked") == "true", "Approve switched on")
        self.form_field(dialog, "Approver").send_keys(approver)
        self.form_field(dialog, "Comment").send_keys(comment)
        self.click(f"{form}//button[normalize-space(.)='Resume']", "the form's Resume button")
        self.until(ec.invisibility_of_element(dialog), "the resume form closing")


def test_approver_approves_a_paused_run_in_the_prefect_ui(
    prefect_api: PrefectServer, chrome: Any, home: Path, controller: Any
) -> None:
    plant_speed = controller.speed_setpoint(WORN)
    target = round(plant_speed - 0.05, 3)
    path = write_slowdown(home, target, plant_speed)
    rec = steps.load_recommendation(path)
    request = request_id(rec.line, rec.recommended_at, rec.chosen.name)
    run = FlowThread(recommendation=str(path), controller=controller)
    run_id = wait_paused(request, run)
    ui = UI(chrome)

    # The approver finds the paused run under Runs and reads the approval artifact.
    ui.open_run_from_the_runs_list(prefect_api.url, run_id)
    ui.state_shown("Paused")
    ui.open_artifact(f"approval-{request}")
    ui.text_shown(f"Approval request {request}")
    ui.text_shown(f"action: {rec.chosen.name}")
    ui.text_shown("What approving writes")
    assert ui.table_row(WORN) == [WORN, f"{plant_speed:.3f}", f"{target:.3f}"]
    ui.text_shown("exceeds the automatic limit")

    # Approves in the run's resume form.
    ui.answer_from_the_run_menu(run_id, approve=True, approver=APPROVER, comment=COMMENT)

    # The run completes: in the API, in the UI, on the plant and in the audit log.
    out = run.join(RUN_WAIT_S)
    assert out["status"] == "implemented", out
    assert flow_run_state(run_id) == "COMPLETED"
    ui.state_shown("Completed")
    assert controller.speed_setpoint(WORN) == pytest.approx(target, abs=1e-6)
    records = AuditLog(home / "control" / "audit.jsonl").records(request=request)
    kinds = [r.kind for r in records]
    assert kinds[0] == "recommendation" and kinds[-1] == "done" and "verified" in kinds
    (decision,) = [r for r in records if r.kind == "decision"]
    assert (decision.who, decision.what, decision.why) == (APPROVER, "approve", COMMENT)
    assert decision.data["decides"] is True
    writes = [r for r in records if r.kind == "write"]
    assert writes and {r.who for r in writes} == {APPROVER}
    assert steps.status(Settings(home=home), request) == "implemented"
