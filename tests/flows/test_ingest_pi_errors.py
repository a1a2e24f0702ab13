"""A historian that fails: `pumptwin ingest pi:...` and the Prefect `ingest` flow end with one clear error.

The fake PI Web API of `tests/features/ingest/test_pi_web_api.py` answers with a server error, invalid
or truncated JSON, an HTML page, or refuses the credentials (401, 403). The command exits 2 with one
``error: ...`` line and no traceback; the flow run fails with the same message (after its retries for
transient errors, which the tests make immediate).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from typer.testing import CliRunner

from pumptwin.features.ingest.pi_web_api import (
    PIWebAPIAuthError,
    PIWebAPIClient,
    PIWebAPIError,
    PIWebAPIResponseError,
    PIWebAPITransientError,
    RetryPolicy,
)
from pumptwin.flows.cli import app
from tests.features.ingest.test_pi_web_api import HTML, SERVER, TRUNCATED, FakePI, fake_pi_servers, pi_items

PASSWORD = "s3cret-pw"
WRONG_PASSWORD = "wrong-pw-123"
CLIENT_ATTEMPTS = 2
FLOW_TASK_RUNS = 4  # the read task's first run and its 3 retries
WINDOW = ["--start", "2026-11-01T00:00Z", "--end", "2026-11-01T01:00Z"]
SERVER_ERROR_PAGE = b"<html>\n<body>\n<h1>Internal Server Error</h1>\n</body>\n</html>"

# name: (fake server options, the error the client raises, fragments of its message)
FAILURES: dict[str, tuple[dict[str, Any], type[PIWebAPIError], list[str]]] = {
    "500": ({"raw": (500, "text/html", SERVER_ERROR_PAGE)}, PIWebAPITransientError, ["HTTP 500", "Internal Server"]),
    "invalid JSON": (
        {"raw": (200, "application/json", b"{'Items': nope}")},
        PIWebAPIResponseError,
        ["invalid or truncated JSON", "{'Items': nope}"],
    ),
    "truncated JSON": (
        {"raw": (200, "application/json", TRUNCATED)},
        PIWebAPIResponseError,
        ["invalid or truncated JSON", '{"Items"'],
    ),
    "HTML": ({"raw": (200, "text/html; charset=utf-8", HTML)}, PIWebAPIResponseError, ["answered HTML", "<!DOCTYPE"]),
    "401": ({"auth": ("svc-pumptwin", PASSWORD)}, PIWebAPIAuthError, ["HTTP 401", "PUMPTWIN_HISTORIAN__PASSWORD"]),
    "403": (
        {"auth": ("svc-pumptwin", PASSWORD), "auth_status": 403},
        PIWebAPIAuthError,
        ["HTTP 403", "PUMPTWIN_HISTORIAN__TOKEN"],
    ),
}


@pytest.fixture
def historian(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Callable[..., FakePI]]:
    """Start a fake historian and point the settings at it; returns a factory of fake servers.

    The client the ingest steps build retries at once (no waits), so failures come back quickly.
    """
    monkeypatch.setenv("PUMPTWIN_HOME", str(tmp_path / "home"))
    fast = RetryPolicy(attempts=CLIENT_ATTEMPTS, backoff_s=0.0, jitter=0.0)
    monkeypatch.setattr(
        "pumptwin.flows.ingest_steps.PIWebAPIClient",
        functools.partial(PIWebAPIClient, retry=fast, sleep=lambda _: None),
    )
    with mock.patch.dict(os.environ), fake_pi_servers() as start:

        def serve(**options: Any) -> FakePI:
            fake, url = start(**options)
            monkeypatch.setenv("PUMPTWIN_HISTORIAN__URL", url)
            monkeypatch.setenv("PUMPTWIN_HISTORIAN__DATA_SERVER", SERVER)
            monkeypatch.setenv("PUMPTWIN_HISTORIAN__USERNAME", "svc-pumptwin")
            monkeypatch.setenv("PUMPTWIN_HISTORIAN__PASSWORD", WRONG_PASSWORD)
            return fake

        yield serve


def test_cli_ingests_from_a_working_historian(historian: Callable[..., FakePI]) -> None:
    fake = historian()
    fake.add("W1", "PS01.P1.VIB_DE_RMS", pi_items("2026-11-01T00:00Z", 30, value0=1.0))
    result = CliRunner().invoke(
        app, ["ingest", "pi:PS01.*", "--start", "2026-11-01T00:00", "--end", "2026-11-01T01:00"]
    )
    assert result.exit_code in (0, 1), result.output  # a window without a zone is UTC
    assert "error:" not in result.output


@pytest.mark.parametrize("name", list(FAILURES))
def test_cli_ingest_from_a_failing_historian_exits_2_with_one_line(historian: Callable[..., FakePI], name: str) -> None:
    options, _, fragments = FAILURES[name]
    fake = historian(**options)
    result = CliRunner().invoke(app, ["ingest", "pi:PS01.*", *WINDOW])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: PI Web API "), result.stderr
    for fragment in ["/piwebapi/dataservers", *fragments]:
        assert fragment in lines[0], (fragment, lines[0])
    assert "\x1b" not in result.output
    assert WRONG_PASSWORD not in result.output and PASSWORD not in result.output
    retried = name == "500"
    assert len(fake.headers_seen) == (CLIENT_ATTEMPTS if retried else 1)


@pytest.fixture(scope="module")
def harness() -> Iterator[None]:
    """A temporary Prefect server for the flow runs of this module."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.mark.parametrize("name", list(FAILURES))
def test_ingest_flow_fails_with_the_clear_error(
    harness: None, historian: Callable[..., FakePI], monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    from pumptwin.flows import ingest as ingest_flow

    monkeypatch.setattr(
        ingest_flow, "read_source_task", ingest_flow.read_source_task.with_options(retry_delay_seconds=0)
    )
    options, kind, fragments = FAILURES[name]
    fake = historian(**options)
    state = ingest_flow.ingest(
        source="pi:PS01.*", start="2026-11-01T00:00Z", end="2026-11-01T01:00Z", return_state=True
    )
    assert state.is_failed()
    assert state.message is not None and "/piwebapi/dataservers" in state.message
    for fragment in fragments:
        assert fragment in state.message, (fragment, state.message)
    with pytest.raises(kind) as caught:
        state.result()
    assert "\n" not in str(caught.value) and WRONG_PASSWORD not in str(caught.value)
    retried = kind is PIWebAPITransientError  # the flow retries only what may pass
    assert len(fake.headers_seen) == (FLOW_TASK_RUNS * CLIENT_ATTEMPTS if retried else 1)
