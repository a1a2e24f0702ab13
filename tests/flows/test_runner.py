"""Task-runner selection from the settings: threads, a Dask cluster by address, or a local Dask cluster."""

from __future__ import annotations

import pytest
from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner
from prefect_dask import DaskTaskRunner

from pumptwin.flows.runner import RunnerError, dask_cluster_kwargs, task_runner, with_runner
from pumptwin.flows.settings import RunnerSettings, Settings


def _settings(**runner: object) -> Settings:
    return Settings(runner=RunnerSettings(**runner))


def test_local_is_a_thread_pool_of_the_configured_size() -> None:
    runner = task_runner(_settings(kind="local", workers=3))
    assert isinstance(runner, ThreadPoolTaskRunner)
    assert runner._max_workers == 3


def test_dask_with_an_address_connects_to_that_cluster() -> None:
    runner = task_runner(_settings(kind="dask", address="tcp://10.0.0.5:8786", workers=4))
    assert isinstance(runner, DaskTaskRunner)
    assert runner.address == "tcp://10.0.0.5:8786"
    assert not runner.cluster_kwargs  # nothing is started locally


def test_dask_without_an_address_starts_a_local_cluster_of_worker_processes() -> None:
    runner = task_runner(_settings(kind="dask", workers=2))
    assert isinstance(runner, DaskTaskRunner)
    assert runner.address is None
    assert runner.cluster_kwargs == {"n_workers": 2, "threads_per_worker": 1, "processes": True}


def test_bad_worker_counts_are_refused() -> None:
    with pytest.raises(RunnerError, match="at least one worker, got 0"):
        dask_cluster_kwargs(0)
    settings = _settings(kind="local")
    bad = settings.model_copy(update={"runner": RunnerSettings.model_construct(kind="local", address=None, workers=0)})
    with pytest.raises(RunnerError, match="got 0"):
        task_runner(bad)
    odd = settings.model_copy(update={"runner": RunnerSettings.model_construct(kind="spark", address=None, workers=1)})
    with pytest.raises(RunnerError, match="'spark'"):
        task_runner(odd)


def test_with_runner_swaps_the_runner_and_keeps_the_flow() -> None:
    @flow(name="runner-probe")
    def probe(x: int) -> int:
        return x + 1

    local = with_runner(probe, _settings(kind="local", workers=5))
    assert isinstance(local.task_runner, ThreadPoolTaskRunner) and local.task_runner._max_workers == 5
    dask = with_runner(probe, _settings(kind="dask", address="tcp://127.0.0.1:1"))
    assert isinstance(dask.task_runner, DaskTaskRunner) and dask.task_runner.address == "tcp://127.0.0.1:1"
    assert local.name == dask.name == "runner-probe" and local.fn is probe.fn
    assert not isinstance(probe.task_runner, DaskTaskRunner)  # the original flow is unchanged
