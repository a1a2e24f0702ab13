"""Every deployment in prefect.yaml points at a real Prefect flow of the same name."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def _deployments() -> list[dict]:
    return yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]


@pytest.mark.parametrize("deployment", _deployments(), ids=lambda d: d["name"])
def test_entrypoint_is_a_flow_named_like_its_deployment(deployment: dict) -> None:
    from prefect import Flow

    path, attribute = deployment["entrypoint"].split(":")
    spec = importlib.util.spec_from_file_location(f"deployment_{deployment['name']}", REPO / path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    flow = getattr(module, attribute)
    assert isinstance(flow, Flow)
    assert flow.name == deployment["name"]
    assert deployment["work_pool"]["name"] == "local-process"


def test_scheduled_flows_use_valid_cron_expressions() -> None:
    from prefect.client.schemas.schedules import CronSchedule

    crons = [s["cron"] for d in _deployments() for s in d.get("schedules", [])]
    assert len(crons) >= 4
    for cron in crons:
        CronSchedule(cron=cron)  # raises on an invalid expression


def test_ingest_runs_one_at_a_time() -> None:
    from prefect.cli.deploy._models import PrefectYamlModel

    (ingest,) = [d for d in _deployments() if d["name"] == "ingest"]
    assert ingest["concurrency_limit"]["limit"] == 1
    parsed = PrefectYamlModel.model_validate(yaml.safe_load((REPO / "prefect.yaml").read_text()))
    (model,) = [d for d in parsed.deployments if d.name == "ingest"]
    assert model.concurrency_limit.limit == 1  # Prefect reads the limit as written
    assert model.concurrency_limit.collision_strategy == "ENQUEUE"
