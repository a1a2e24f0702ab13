"""The hourly ``cycle`` flow on a one-line fleet: same data as the fleet-wide steps, idempotent, picklable, resilient.

The module's fixture simulates one line of the reference pipeline (54 h of history and the cycle's
hour at 60 s steps, a bearing wearing on PS01.P1), ingests and features the history, trains the
anomaly family and synchronises the twin; the cycle's hour is exported per station. Each test runs
on its own copy of that home. The fixture takes about a minute: the tests that use it are marked
``slow`` (those on a Dask cluster ``integration``).
"""

from __future__ import annotations

import os
import pickle
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from distributed import WorkerPlugin
from prefect.task_runners import ThreadPoolTaskRunner

from benchmarks.fleet_setup import export_per_station
from pumptwin.features.ingest.rawstore import RawStore
from pumptwin.features.store import offline_path
from pumptwin.flows import cycle_steps
from pumptwin.flows.build_features_steps import compute_features, store_features
from pumptwin.flows.ingest_steps import read_source, store_source, write_fault_labels
from pumptwin.flows.score_steps import HISTORY_FILE, read_latest_scores, score_fleet
from pumptwin.flows.settings import ModelSettings, RunnerSettings, Settings
from pumptwin.flows.train_steps import train_family
from pumptwin.flows.twin_store import load_twin, state_paths
from pumptwin.flows.twin_sync_steps import sync_twin
from pumptwin.plant.scenario import scenario_from_dict
from pumptwin.plant.simulator import Plant

START = pd.Timestamp("2024-03-01T00:00:00Z")
HISTORY_H = 54
CYCLE_START = START + pd.Timedelta(hours=HISTORY_H)
CYCLE_END = CYCLE_START + pd.Timedelta(hours=1)
NOW = pd.Timestamp("2026-01-01T00:00:00Z")
SCENARIO = {
    "version": 1,
    "name": "cycle",
    "start": START.isoformat(),
    "duration": f"{HISTORY_H + 1}h",
    "step": "60s",
    "seed": 3,
    "fleet": {"network": "reference", "lines": 1},
    "operations": {"speed": 0.95, "daily_swing": 0.03},
    "faults": [{"mode": "bearing_wear", "target": "PS01.P1", "onset": "4h", "failure": "40h"}],
}


def _settings(home: Path, **runner: Any) -> Settings:
    return Settings(
        home=home, models=ModelSettings(autoencoder=False, target_far=0.01), runner=RunnerSettings(**runner)
    )


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with the history ingested, featured, trained and synchronised; the hour exported per station."""
    home = tmp_path_factory.mktemp("cycle-base")
    settings = _settings(home)
    plant = Plant(scenario_from_dict(SCENARIO))
    plant.advance(HISTORY_H * 3600.0)
    history = home / "history.parquet"
    plant.read_tags().to_parquet(history, index=False)
    store_source(read_source(str(history), settings), settings, now=NOW)
    write_fault_labels(plant.ground_truth().labels, "cycle", settings)
    plant.advance(3600.0)
    export_per_station(plant.read_tags(), home / "export")
    store_features(settings, compute_features(settings))
    assert train_family(settings, "anomaly").status == "trained"
    sync_twin(settings, now=CYCLE_START)
    return home


def _copy(prepared: Path, tmp_path: Path, name: str) -> Path:
    home = tmp_path / name
    shutil.copytree(prepared, home)
    return home


@pytest.fixture(scope="module")
def harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def _run_flow(home: Path, runner: Any = None, **kw: Any) -> dict[str, Any]:  # noqa: ANN401 - a Prefect task runner
    from pumptwin.flows.cycle import cycle
    from pumptwin.flows.runner import with_runner

    settings = _settings(home, kind="local", workers=2)
    flow_obj = with_runner(cycle, settings) if runner is None else cycle.with_options(task_runner=runner)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PUMPTWIN_HOME", str(home))
        mp.setenv("PUMPTWIN_MODELS_AUTOENCODER", "false")
        mp.setenv("PUMPTWIN_MODELS_TARGET_FAR", "0.01")
        return flow_obj(source=str(home / "export"), start=CYCLE_START.to_pydatetime(), end=CYCLE_END.to_pydatetime())


def _direct(home: Path) -> None:
    """The same hour through the fleet-wide steps (ingest, build-features, score, twin-sync)."""
    settings = _settings(home)
    store_source(read_source(str(home / "export"), settings, CYCLE_START, CYCLE_END), settings, now=NOW)
    store_features(settings, compute_features(settings, CYCLE_START, CYCLE_END))
    score_fleet(settings, now=CYCLE_END)
    sync_twin(settings, now=CYCLE_END)


def _raw(home: Path) -> pd.DataFrame:
    frame = RawStore(home / "raw").read(None, None, None)
    return frame.sort_values(["tag", "ts"], kind="stable").reset_index(drop=True)


def _features(home: Path) -> pd.DataFrame:
    frame = pd.read_parquet(offline_path(home / "feast"))
    return frame.sort_values(["pump_id", "event_timestamp"], kind="stable").reset_index(drop=True)


def _scores(home: Path) -> pd.DataFrame:
    scores = read_latest_scores(_settings(home))
    assert scores is not None
    return scores.sort_values("asset", kind="stable").reset_index(drop=True)


def _assert_same_data(a: Path, b: Path) -> None:
    pd.testing.assert_frame_equal(_raw(a), _raw(b))
    pd.testing.assert_frame_equal(_features(a), _features(b))
    sa, sb = _scores(a), _scores(b)
    assert list(sa.columns) == list(sb.columns)
    pd.testing.assert_frame_equal(sa, sb)
    history = [pd.read_parquet(h / "scores" / HISTORY_FILE) for h in (a, b)]
    assert len(history[0]) == len(history[1])
    (_, state_a), (_, state_b) = load_twin(_settings(a)), load_twin(_settings(b))
    assert state_a is not None and state_b is not None
    assert state_a.ts == state_b.ts
    assert [x.message() for x in state_a.alerts] == [x.message() for x in state_b.alerts]


@pytest.mark.integration
@pytest.mark.slow
def test_the_cycle_stores_what_the_fleet_wide_steps_store(prepared: Path, tmp_path: Path, harness: None) -> None:
    direct, flowed = _copy(prepared, tmp_path, "direct"), _copy(prepared, tmp_path, "flow")
    _direct(direct)
    summary = _run_flow(flowed)
    assert summary["ingest"]["rows_in"] > 0 and summary["ingest"]["stored"] > 0
    assert summary["features"]["pumps"] == 6 and summary["score"]["pumps"] == 6
    assert summary["twin"]["updated"] and set(summary["seconds"]) >= {"ingest", "features", "total"}
    _assert_same_data(direct, flowed)
    assert _features(flowed)["event_timestamp"].max() < CYCLE_END

    # a re-run of the window is a no-op: the completed cycle is found and nothing is written
    raw, features = _raw(flowed), _features(flowed)
    scores = (flowed / "scores" / HISTORY_FILE).read_bytes()
    again = _run_flow(flowed)
    assert again["skipped"] is True and again["window"] == summary["window"]
    pd.testing.assert_frame_equal(_raw(flowed), raw)
    pd.testing.assert_frame_equal(_features(flowed), features)
    assert (flowed / "scores" / HISTORY_FILE).read_bytes() == scores


@pytest.mark.integration
@pytest.mark.slow
def test_a_forced_rerun_doubles_nothing(prepared: Path, tmp_path: Path, harness: None) -> None:
    home = _copy(prepared, tmp_path, "rerun")
    first = _run_flow(home)
    raw, features = _raw(home), _features(home)
    history = pd.read_parquet(home / "scores" / HISTORY_FILE)
    state_file = state_paths(_settings(home))["state"]
    state_before = state_file.read_bytes()
    from pumptwin.flows.cycle import cycle

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PUMPTWIN_HOME", str(home))
        mp.setenv("PUMPTWIN_MODELS_AUTOENCODER", "false")
        mp.setenv("PUMPTWIN_MODELS_TARGET_FAR", "0.01")
        forced = cycle.with_options(task_runner=ThreadPoolTaskRunner(max_workers=2))(
            source=str(home / "export"), start=CYCLE_START.to_pydatetime(), end=CYCLE_END.to_pydatetime(), force=True
        )
    assert forced["skipped"] is False
    assert forced["ingest"]["stored"] == 0 and forced["ingest"]["duplicates"] == first["ingest"]["stored"]
    assert not forced["twin"]["updated"]  # already folded up to the window's end
    pd.testing.assert_frame_equal(_raw(home), raw)
    pd.testing.assert_frame_equal(_features(home), features)
    assert len(pd.read_parquet(home / "scores" / HISTORY_FILE)) == len(history)
    assert state_file.read_bytes() == state_before
    assert forced["twin"]["assets_on_alert"] == first["twin"]["assets_on_alert"]


@pytest.mark.slow
def test_a_lines_responses_are_done_once_per_window(prepared: Path, tmp_path: Path) -> None:
    home = _copy(prepared, tmp_path, "respond")
    settings = _settings(home)
    key = cycle_steps.window_key(CYCLE_START, CYCLE_END)
    first = cycle_steps.line_scenarios(settings, 1, key)
    assert first["skipped"] is False and first["scenarios"] >= 1
    folder = Path(first["folder"])
    files = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    second = cycle_steps.line_scenarios(settings, 1, key)
    assert second["skipped"] is True and second["scenarios"] == first["scenarios"]
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == files
    assert len(list(folder.parent.iterdir())) == 1


class PicklingRunner(ThreadPoolTaskRunner):
    """A thread runner that pickles every task's arguments first (with the standard pickle, not cloudpickle)."""

    submitted: list[str]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.submitted = []

    def duplicate(self) -> PicklingRunner:
        return self

    def submit(self, task: Any, parameters: dict[str, Any], *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        pickle.loads(pickle.dumps(parameters))
        self.submitted.append(task.name)
        return super().submit(task, parameters, *args, **kwargs)


@pytest.mark.slow
def test_every_task_argument_pickles(prepared: Path, tmp_path: Path, harness: None) -> None:
    home = _copy(prepared, tmp_path, "pickle")
    runner = PicklingRunner(max_workers=2)
    _run_flow(home, runner=runner)
    assert {"ingest-stations", "station-features", "store-features", "score-pumps", "write-scores", "sync-twin"} <= set(
        runner.submitted
    )


def test_windows_sources_and_groups() -> None:
    assert cycle_steps.window_key("2024-03-02T01:00Z", "2024-03-02T02:00Z") == "20240302T010000Z-20240302T020000Z"
    with pytest.raises(cycle_steps.CycleError, match="must end after it starts"):
        cycle_steps.window_key("2024-03-02T02:00Z", "2024-03-02T02:00Z")
    assert cycle_steps.split(list("abcde"), 2) == [["a", "b", "c"], ["d", "e"]] or cycle_steps.split(
        list("abcde"), 2
    ) == [["a", "b"], ["c", "d", "e"]]
    assert cycle_steps.split(list("ab"), 8) == [["a"], ["b"]]
    assert cycle_steps.split([], 3) == []
    assert sum(cycle_steps.split(list(range(10)), 3), []) == list(range(10))
    with pytest.raises(cycle_steps.CycleError, match="got 0"):
        cycle_steps.split([1], 0)


def test_station_sources_of_a_folder_and_of_other_sources(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    (tmp_path / "export").mkdir()
    for name in ("PS02.parquet", "PS01.csv", ".hidden.csv", "notes.txt"):
        (tmp_path / "export" / name).write_text("x")
    assert [Path(s).name for s in cycle_steps.station_sources(str(tmp_path / "export"), settings)] == [
        "PS01.csv",
        "PS02.parquet",
    ]
    assert cycle_steps.station_sources("simulator:fleet_month", settings) == ["simulator:fleet_month"]
    assert cycle_steps.station_sources("pi:PS01.*", settings) == ["pi:PS01.*"]
    assert cycle_steps.station_sources("pi:", settings) == []  # an empty raw store has no stations
    (tmp_path / "empty").mkdir()
    with pytest.raises(cycle_steps.CycleError, match="holds no"):
        cycle_steps.station_sources(str(tmp_path / "empty"), settings)


# ---------------------------------------------------------------------------- Dask (integration)


class KillOnce(WorkerPlugin):
    """A Dask worker plugin: the first task whose key starts with ``prefix`` kills its worker (marker file)."""

    name = "kill-once"

    def __init__(self, prefix: str, marker: str) -> None:
        self.prefix = prefix
        self.marker = marker

    def setup(self, worker: Any) -> None:  # noqa: ANN401 - distributed.Worker
        """Nothing to set up."""

    def teardown(self, worker: Any) -> None:  # noqa: ANN401 - distributed.Worker
        """Nothing to tear down."""

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:  # noqa: ANN401 - a Dask key
        """Kill this worker process when the first matching task starts executing."""
        if finish == "executing" and str(key).startswith(self.prefix) and not os.path.exists(self.marker):
            Path(self.marker).write_text(str(key))
            os._exit(1)


@pytest.fixture(scope="module")
def dask_cluster() -> Iterator[Any]:
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    try:
        yield cluster, client
    finally:
        client.close()
        cluster.close()


@pytest.mark.integration
@pytest.mark.slow
def test_a_worker_dying_mid_cycle_loses_and_doubles_nothing(
    prepared: Path, tmp_path: Path, harness: None, dask_cluster: Any
) -> None:
    import cloudpickle
    from prefect_dask import DaskTaskRunner

    this = sys.modules[__name__]  # pickled by value: the workers cannot import the test module
    cluster, client = dask_cluster
    direct, home = _copy(prepared, tmp_path, "direct"), _copy(prepared, tmp_path, "dask")
    _direct(direct)
    marker = tmp_path / "killed"
    cloudpickle.register_pickle_by_value(this)
    try:
        client.register_plugin(KillOnce("ingest_stations", str(marker)))
        summary = _run_flow(home, runner=DaskTaskRunner(address=cluster.scheduler_address))
    finally:
        client.unregister_worker_plugin(KillOnce.name)
        cloudpickle.unregister_pickle_by_value(this)
    assert marker.is_file()  # a worker did die mid-cycle
    assert summary["skipped"] is False and summary["score"]["pumps"] == 6
    _assert_same_data(direct, home)


@pytest.mark.integration
@pytest.mark.slow
def test_the_dask_runner_stores_what_the_local_runner_stores(
    prepared: Path, tmp_path: Path, harness: None, dask_cluster: Any
) -> None:
    from prefect_dask import DaskTaskRunner

    cluster, _ = dask_cluster
    local, dask = _copy(prepared, tmp_path, "local"), _copy(prepared, tmp_path, "dask")
    _run_flow(local)
    summary = _run_flow(dask, runner=DaskTaskRunner(address=cluster.scheduler_address))
    assert summary["features"]["pumps"] == 6
    _assert_same_data(local, dask)
    assert np.isfinite(summary["seconds"]["total"])


def test_pumps_are_grouped_by_whole_stations() -> None:
    pumps = ["PS02.P1", "PS01.P2", "PS01.P1", "PS03.P1", "PS02.P3", "PS01.P3"]
    groups = cycle_steps.pumps_by_station(pumps, 2)
    assert sorted(p for g in groups for p in g) == sorted(pumps)
    for group in groups:
        for station in {cycle_steps.station_of(p) for p in group}:
            assert {p for p in pumps if p.startswith(station)} <= set(group)
    assert cycle_steps.pumps_by_station(pumps, 10) == [
        ["PS01.P1", "PS01.P2", "PS01.P3"],
        ["PS02.P1", "PS02.P3"],
        ["PS03.P1"],
    ]


def test_the_last_full_hour() -> None:
    from pumptwin.flows.cycle import last_full_hour

    assert last_full_hour(pd.Timestamp("2024-03-02T05:42:10Z")) == (
        pd.Timestamp("2024-03-02T04:00Z"),
        pd.Timestamp("2024-03-02T05:00Z"),
    )
    assert last_full_hour("2024-03-02T05:00:00Z")[1] == pd.Timestamp("2024-03-02T05:00Z")
