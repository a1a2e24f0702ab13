"""Shared by the implement flow's tests and the browser test: the flow in a thread, a run's state."""

from __future__ import annotations

import contextvars
import threading
from typing import Any
from uuid import UUID

RUN_WAIT_S = 120.0
"""How long a test waits for the implement flow to finish after its answer, s."""


class FlowThread:
    """The ``implement`` flow running in a thread, with the caller's Prefect settings (context copied)."""

    def __init__(self, **kwargs: Any) -> None:
        from pumptwin.flows.implement import implement

        self.result: dict[str, Any] | None = None
        self.error: BaseException | None = None
        ctx = contextvars.copy_context()

        def target() -> None:
            try:
                self.result = implement(**kwargs)
            except BaseException as exc:  # noqa: BLE001 - handed to the test
                self.error = exc

        self.thread = threading.Thread(target=ctx.run, args=(target,), daemon=True)
        self.thread.start()

    def join(self, timeout_s: float = RUN_WAIT_S) -> dict[str, Any]:
        """The flow's result; raises its error, fails the test when it is still running."""
        self.thread.join(timeout_s)
        assert not self.thread.is_alive(), "the implement flow did not finish"
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


def flow_run_state(run_id: UUID) -> str:
    """The type of a flow run's state (``PAUSED``, ``COMPLETED``, ...) from Prefect's API."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(run_id).state
    assert state is not None
    return state.type.value
