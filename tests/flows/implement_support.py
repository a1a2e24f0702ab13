"""Shared by the implement flow's tests and the browser test: a recommendation, the flow in a thread, a run's state."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from uuid import UUID

import pandas as pd

WORN = "PS02.P2"
"""The pump whose impeller wear the recommendations relieve."""
SINCE = pd.Timestamp("2024-03-01T00:10:00Z")
STATE_TS = SINCE + pd.Timedelta(hours=6)
"""When the twin state the written recommendations answer was taken."""
"""When the alert on the worn pump began."""

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


def write_recommendation_of(home: Path, action: Callable[[Any], Any], plant_speed: float) -> Path:
    """A recommendation of ``action(view)`` on the worn pump, written as the recommend flow writes it.

    The candidate is judged on the twin's line 1 with every pump at ``plant_speed``, as the plant runs.
    """
    from pumptwin.agents.evidence import Evidence, Recommendation
    from pumptwin.agents.recommend import Objective, RecommendRun, base_action, simulate
    from pumptwin.flows.recommend_steps import LineRecommendation, twin_view, write_recommendation
    from pumptwin.flows.settings import Settings
    from pumptwin.flows.what_if_steps import new_run_folder
    from pumptwin.twin.health.state import Alert

    settings = Settings(home=home)
    view = twin_view(settings, None, 1)
    net = view.network
    view = replace(view, network=replace(net, pumps=tuple(replace(p, speed=plant_speed) for p in net.pumps)))
    _, (base, chosen) = simulate([base_action([]), action(view)], [], view, Objective())
    alert = Alert(WORN, "impeller_wear", "physics", "warning", 0.04, 0.05, "-", 0.8, SINCE, SINCE, "physics-1")
    rec = Recommendation(
        situation=(alert.message(),),
        assets=(WORN,),
        chosen=chosen,
        alternatives=(base,),
        evidence=Evidence(),
        text=f"Slow {WORN} to relieve its worn impeller.",
    )
    item = LineRecommendation(1, RecommendRun(rec, 2, 0.1, None, None, STATE_TS))
    folder = new_run_folder(settings.recommend_dir) / "line1"
    return write_recommendation(item, view, folder, plots=False)["json"]
