"""Fixtures of the browser tests: a real Prefect server, headless Chromium, a plant and a recommendation.

The server is ``prefect server start`` on a free loopback port, with its own ``PREFECT_HOME`` and
SQLite database under a temporary folder, analytics off; it is stopped (its whole process group)
when the module's tests are done. The test process's Prefect client points at it through
``temporary_settings`` (``PREFECT_API_URL``), which threads started with a copy of the context
inherit. Chromium and its driver are Debian's (``apt-get install chromium chromium-driver``), found
on ``PATH`` and handed to Selenium directly, so Selenium's driver manager never goes online.

Browser tests are opt-in: they run only when the ``-m`` expression names ``browser``
(``pytest -m browser``, ``scripts/browser_ci.sh``) and skip with the reason otherwise, or when
Chromium, its driver or Selenium is missing.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.flows.implement_support import WORN, write_recommendation_of

SERVER_START_S = 180.0
"""Longest wait for the server's health endpoint (about 14 s on an idle 2-core machine)."""
SERVER_STOP_S = 20.0
RUN_WAIT_S = 180.0
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
PLANT_WARMUP_S = 1800.0


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``browser`` marker (also declared in pyproject.toml; a second entry is harmless)."""
    config.addinivalue_line("markers", "browser: drives the Prefect UI in headless Chromium (run with -m browser)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip browser tests unless the ``-m`` expression asks for them: they start a server and a browser."""
    if "browser" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="browser test: opt in with `pytest -m browser` (scripts/browser_ci.sh)")
    for item in items:
        if item.get_closest_marker("browser") is not None:
            item.add_marker(skip)


# ---------------------------------------------------------------------------------------- tools


@dataclass(frozen=True)
class BrowserTools:
    """Where Chromium and its driver are."""

    chromium: str
    chromedriver: str


def find_browser_tools() -> BrowserTools | str:
    """Chromium and chromedriver on PATH, with Selenium importable; otherwise why not (one line)."""
    missing = []
    chromium = next((p for p in (shutil.which(n) for n in CHROMIUM_NAMES) if p), None)
    driver = shutil.which("chromedriver")
    if chromium is None:
        missing.append("chromium (apt-get install chromium)")
    if driver is None:
        missing.append("chromedriver (apt-get install chromium-driver)")
    if importlib.util.find_spec("selenium") is None:
        missing.append("selenium (pip install selenium)")
    if missing:
        return "browser test needs " + ", ".join(missing) + "; scripts/browser_ci.sh installs them"
    assert chromium is not None and driver is not None
    return BrowserTools(chromium, driver)


@pytest.fixture(scope="module")
def browser_tools() -> BrowserTools:
    """The browser and driver, or a skip naming what is missing."""
    found = find_browser_tools()
    if isinstance(found, str):
        pytest.skip(found)
    return found


@pytest.fixture
def chrome(browser_tools: BrowserTools, tmp_path: Path) -> Iterator[Any]:
    """A headless Chromium driven by Selenium, closed after the test; a screenshot is kept in tmp_path."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser_tools.chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=browser_tools.chromedriver))
    try:
        yield driver
    finally:
        try:
            driver.save_screenshot(str(tmp_path / "last-page.png"))
        finally:
            driver.quit()


# ---------------------------------------------------------------------------------------- Prefect server


@dataclass(frozen=True)
class PrefectServer:
    """A running ``prefect server start``.

    Attributes:
        url: The UI's root, ``http://127.0.0.1:<port>``.
        api_url: The API, ``<url>/api``.
        log: The server's output.
    """

    url: str
    api_url: str
    log: Path


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def healthy(api_url: str) -> bool:
    """Whether the API answers its health check."""
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server's process group: SIGTERM, then SIGKILL if it does not exit in time."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(SERVER_STOP_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(SERVER_STOP_S)


@pytest.fixture(scope="module")
def prefect_server(browser_tools: BrowserTools, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """``prefect server start`` on a free port with a temporary home and SQLite database, stopped at the end."""
    root = tmp_path_factory.mktemp("prefect-server")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {
        "PREFECT_HOME": str(root / "home"),
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{root / 'prefect.db'}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
        "PREFECT_API_URL": f"{url}/api",
        "PREFECT_UI_API_URL": f"{url}/api",
        "DO_NOT_TRACK": "1",
    }
    log = root / "server.log"
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while not healthy(f"{url}/api"):
            if process.poll() is not None:
                pytest.fail(f"prefect server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"prefect server not healthy within {SERVER_START_S:g} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield PrefectServer(url, f"{url}/api", log)
    finally:
        stop(process)


@pytest.fixture
def prefect_api(prefect_server: PrefectServer) -> Iterator[PrefectServer]:
    """The test's Prefect client (and flows it starts in threads with a copy of the context) on the server."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}):
        try:
            yield prefect_server
        finally:
            drain_to_server()


def drain_to_server() -> None:
    """Send the logs and events still queued in this process while the server runs (as Prefect's test harness does).

    Without it the log worker retries a stopped server at interpreter exit, for a minute or more.
    """
    import inspect

    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def drain() -> None:
        for result in (APILogWorker.drain_all(), EventsWorker.drain_all()):
            if inspect.isawaitable(result):
                await result

    run_coro_as_sync(drain())


# ---------------------------------------------------------------------------------------- plant and flow


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A pumptwin home with automatic implementation off: every request waits for a person."""
    home = tmp_path / "home"
    (home / "control").mkdir(parents=True)
    monkeypatch.setenv("PUMPTWIN_HOME", str(home))
    monkeypatch.setenv("PUMPTWIN_CONTROL_AUTO_IMPLEMENT", "false")
    monkeypatch.setenv("PUMPTWIN_CONTROL_APPROVAL_POLL_S", "1")
    monkeypatch.setenv("PUMPTWIN_CONTROL_APPROVAL_TIMEOUT_S", "600")
    return home


@pytest.fixture
def controller() -> Any:  # noqa: ANN401 - a SimulatedController
    """The simulated plant half an hour into the ``developing_faults`` scenario (every running pump at 0.945)."""
    from pumptwin.control.simulated import SimulatedController
    from pumptwin.plant.scenario import shipped_scenario
    from pumptwin.plant.simulator import Plant

    ctl = SimulatedController(Plant(shipped_scenario("developing_faults")))
    ctl.wait(PLANT_WARMUP_S)
    return ctl


def write_slowdown(home: Path, speed: float, plant_speed: float) -> Path:
    """A recommendation to set the worn pump to ``speed`` (relative), written as the recommend flow writes it.

    The candidate is judged on the twin's line with every pump at ``plant_speed``, as the plant runs.
    """
    from pumptwin.agents.recommend import _setpoint_action

    def slowdown(view: Any) -> Any:  # noqa: ANN401 - a TwinView in, an Action out
        pump = view.pump(WORN)
        assert pump is not None, f"{WORN} is not a pump of line 1"
        return _setpoint_action({pump.pump_id: speed}, view)

    return write_recommendation_of(home, slowdown, plant_speed)
