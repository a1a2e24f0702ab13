"""prefect.yaml: every deployment points at a real Prefect flow, and its schedules, parameters and triggers parse.

Nothing is deployed: the file is read with Prefect's own models (the deploy command's project model,
its trigger adapter, the server's automation schema) and the triggers are evaluated on events built
here, shaped as the server and the client emit them.
"""

from __future__ import annotations

import copy
import importlib.util
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CLOSED_LOOP = ("ingest", "build-features", "train", "score", "twin-sync", "recommend", "implement", "feedback")


def _deployments() -> list[dict]:
    return yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]


def _deployment(name: str) -> dict:
    (found,) = [d for d in _deployments() if d["name"] == name]
    return found


def _flow(deployment: dict) -> Any:
    path, attribute = deployment["entrypoint"].split(":")
    spec = importlib.util.spec_from_file_location(f"deployment_{deployment['name'].replace('-', '_')}", REPO / path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, attribute)


@pytest.mark.parametrize("deployment", _deployments(), ids=lambda d: d["name"])
def test_entrypoint_is_a_flow_named_like_its_deployment(deployment: dict) -> None:
    from prefect import Flow

    flow = _flow(deployment)
    assert isinstance(flow, Flow)
    assert flow.name == deployment["name"]
    assert flow.fn.__name__ == deployment["entrypoint"].split(":")[1]
    assert deployment["work_pool"]["name"] == "local-process"
    assert deployment["description"].strip()


def test_the_closed_loop_is_deployed() -> None:
    names = [d["name"] for d in _deployments()]
    assert set(CLOSED_LOOP) <= set(names)
    assert len(names) == len(set(names))
    assert _deployment("feedback")["entrypoint"] == "flows/feedback.py:feedback"


def test_the_project_file_parses_with_prefects_deploy_model() -> None:
    from prefect.cli.deploy._models import PrefectYamlModel

    parsed = PrefectYamlModel.model_validate(yaml.safe_load((REPO / "prefect.yaml").read_text()))
    assert [d.name for d in parsed.deployments] == [d["name"] for d in _deployments()]


def test_scheduled_flows_use_valid_cron_expressions() -> None:
    from prefect.client.schemas.schedules import CronSchedule

    crons = {d["name"]: [s["cron"] for s in d.get("schedules", [])] for d in _deployments()}
    for cron in [c for cs in crons.values() for c in cs]:
        CronSchedule(cron=cron)  # raises on an invalid expression
    assert crons["ingest"] == ["*/5 * * * *"]
    assert crons["twin-sync"] and crons["feedback"]
    assert not crons["recommend"] and not crons["implement"]  # triggered, not scheduled


def test_ingest_runs_one_at_a_time() -> None:
    from prefect.cli.deploy._models import ConcurrencyLimitSpec, PrefectYamlModel

    ingest = _deployment("ingest")
    assert ingest["concurrency_limit"]["limit"] == 1
    parsed = PrefectYamlModel.model_validate(yaml.safe_load((REPO / "prefect.yaml").read_text()))
    (model,) = [d for d in parsed.deployments if d.name == "ingest"]
    assert isinstance(model.concurrency_limit, ConcurrencyLimitSpec)
    assert model.concurrency_limit.limit == 1  # Prefect reads the limit as written
    assert model.concurrency_limit.collision_strategy == "ENQUEUE"


@pytest.mark.parametrize("deployment", [d for d in _deployments() if d.get("parameters")], ids=lambda d: d["name"])
def test_parameters_match_the_flow_signature(deployment: dict) -> None:
    flow = _flow(deployment)
    params = deployment["parameters"]
    assert set(params) <= set(flow.parameters.properties)
    validated = flow.validate_parameters(dict(params))
    assert {k: validated[k] for k in params} == params


def test_twin_sync_leaves_recommending_to_the_recommend_deployment() -> None:
    assert _deployment("twin-sync")["parameters"] == {"recommend": False}
    assert _deployment("implement")["parameters"] == {"line": 1}


# ---------------------------------------------------------------------------------------- triggers


def _automation(name: str) -> Any:
    """The deployment's one trigger as the server's automation (parsed by the deploy command, then by the server)."""
    from prefect.cli.deploy._triggers import _initialize_deployment_triggers
    from prefect.events import DeploymentEventTrigger
    from prefect.server.events.schemas.automations import AutomationCore

    (trigger,) = _initialize_deployment_triggers(name, copy.deepcopy(_deployment(name)["triggers"]))
    assert isinstance(trigger, DeploymentEventTrigger)
    trigger.set_deployment_id(uuid4())
    return AutomationCore.model_validate(trigger.as_automation().model_dump(mode="json"))


def _event(event: str, resource: dict[str, str], related: list[dict[str, str]]) -> Any:
    from prefect.server.events.schemas.events import ReceivedEvent

    return ReceivedEvent(occurred=datetime.now(UTC), event=event, resource=resource, related=related, id=uuid4())


def _related(role: str, name: str) -> dict[str, str]:
    resource_id = f"prefect.{role}.{uuid4()}"
    return {"prefect.resource.id": resource_id, "prefect.resource.role": role, "prefect.resource.name": name}


def _flow_run_event(state: str, flow: str, deployment: str | None) -> Any:
    """A flow run's state change, related as the server relates it (flow, deployment when there is one)."""
    related = [_related("flow", flow)] + ([_related("deployment", deployment)] if deployment else [])
    resource = {"prefect.resource.id": f"prefect.flow-run.{uuid4()}", "prefect.state-type": state.upper()}
    return _event(f"prefect.flow-run.{state}", resource, related)


def _artifact_event(key: str, flow: str) -> Any:
    """An artifact created in a flow run, related as the client relates it (flow run, flow)."""
    resource = {"prefect.resource.id": f"prefect.artifact.{uuid4()}", "prefect.resource.name": key}
    return _event("prefect.artifact.created", resource, [_related("flow-run", "run"), _related("flow", flow)])


def _rendered_parameters(automation: Any, event: Any) -> dict[str, Any]:
    """The run-deployment action's parameters rendered for ``event``, as the server renders them."""
    from prefect.server.events.actions import RunDeployment
    from prefect.utilities.schema_tools.hydration import HydrationContext, hydrate

    (action,) = automation.actions
    assert isinstance(action, RunDeployment) and action.source == "selected"
    params = copy.deepcopy(action.parameters or {})
    RunDeployment._upgrade_v1_templates(params)
    return hydrate(params, HydrationContext(render_jinja=True, raise_on_error=True, jinja_context={"event": event}))


def test_recommend_follows_each_completed_twin_sync_deployment_run() -> None:
    automation = _automation("recommend")
    trigger = automation.trigger
    assert trigger.posture == "Reactive" and trigger.threshold == 1
    assert trigger.covers(_flow_run_event("Completed", "twin-sync", "twin-sync"))
    assert not trigger.covers(_flow_run_event("Failed", "twin-sync", "twin-sync"))
    assert not trigger.covers(_flow_run_event("Completed", "twin-sync", None))  # inside feedback: recalibration only
    assert not trigger.covers(_flow_run_event("Completed", "recommend", "recommend"))
    assert not trigger.covers(_flow_run_event("Completed", "score", "twin-sync"))
    assert _rendered_parameters(automation, _flow_run_event("Completed", "twin-sync", "twin-sync")) == {}


@pytest.mark.parametrize("line", [1, 2, 12])
def test_implement_follows_each_recommendation_for_its_line(line: int) -> None:
    automation = _automation("implement")
    event = _artifact_event(f"recommendation-line{line}", "recommend")
    assert automation.trigger.covers(event)
    params = _rendered_parameters(automation, event)
    assert params == {"line": line}
    assert _flow(_deployment("implement")).validate_parameters(params)["line"] == line


@pytest.mark.parametrize(
    ("key", "flow"),
    [("twin-state", "twin-sync"), ("approval-line1-x", "implement"), ("recommendation-line1", "what-if")],
)
def test_implement_ignores_other_artifacts(key: str, flow: str) -> None:
    assert not _automation("implement").trigger.covers(_artifact_event(key, flow))


def test_inspection_and_integrity_are_scheduled() -> None:
    crons = {d["name"]: [s["cron"] for s in d.get("schedules", [])] for d in _deployments()}
    assert crons["rounds"] == ["0 5 * * 1"]  # the week's round, Monday morning
    assert crons["integrity"] and crons["inspection-ingest"]
