"""Which Prefect task runner spreads per-station work and scenario fan-out: threads here, or Dask.

The flows are written once; the runner is chosen by the settings (``PUMPTWIN_RUNNER_*``) when a
flow is started from the CLI or a deployment:

- ``kind = "local"``: Prefect's `ThreadPoolTaskRunner` with ``workers`` threads in the flow's process;
- ``kind = "dask"`` with an ``address``: Prefect's Dask task runner on that running cluster
  (``tcp://scheduler:8786`` in production);
- ``kind = "dask"`` without one: a temporary local Dask cluster of ``workers`` single-threaded worker
  processes, started with the flow run and closed after it.

Nothing unpicklable may cross into a task: the flows pass the settings (a pydantic model), strings,
timestamps and DataFrames, and every step opens its own store, registry or OPC UA client.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

from prefect import Flow
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from pumptwin.flows.settings import Settings
from pumptwin.twin.errors import PumptwinError

F = TypeVar("F", bound=Flow[Any, Any])

LOCAL = "local"
DASK = "dask"


class RunnerError(PumptwinError, ValueError):
    """A runner kind or worker count the settings cannot be run with; the message names it."""


def dask_cluster_kwargs(workers: int) -> dict[str, Any]:
    """Keyword arguments of a temporary local Dask cluster: ``workers`` processes of one thread each.

    Args:
        workers: Worker processes (>= 1).

    Returns:
        ``n_workers``, ``threads_per_worker`` and ``processes`` for `distributed.LocalCluster`.
    """
    if workers < 1:
        raise RunnerError(f"a Dask cluster needs at least one worker, got {workers}")
    return {"n_workers": workers, "threads_per_worker": 1, "processes": True}


def task_runner(settings: Settings) -> TaskRunner[Any]:
    """The task runner the settings name (no cluster is started here; the flow run starts it).

    Args:
        settings: ``settings.runner.kind``, ``.address`` and ``.workers`` are read.

    Returns:
        A `ThreadPoolTaskRunner` (``local``) or a `prefect_dask.DaskTaskRunner` (``dask``).

    Raises:
        RunnerError: An unknown kind or a worker count below 1.
    """
    runner = settings.runner
    if runner.workers < 1:
        raise RunnerError(f"runner workers must be >= 1, got {runner.workers}")
    if runner.kind == LOCAL:
        return ThreadPoolTaskRunner(max_workers=runner.workers)
    if runner.kind == DASK:
        from prefect_dask import DaskTaskRunner

        if runner.address:
            return DaskTaskRunner(address=runner.address)
        return DaskTaskRunner(cluster_kwargs=dask_cluster_kwargs(runner.workers))
    raise RunnerError(f"unknown task runner kind {runner.kind!r}; choose {LOCAL!r} or {DASK!r}")


def with_runner(flow_obj: F, settings: Settings) -> F:
    """The flow with the task runner of the settings (the flow's own code is unchanged).

    Args:
        flow_obj: A Prefect flow.
        settings: Where the runner is chosen.

    Returns:
        A copy of the flow (`Flow.with_options`) that runs its tasks on that runner.
    """
    return cast(F, flow_obj.with_options(task_runner=task_runner(settings)))
