"""Where workflows come from: built-ins, the entry-point group, a directory; order and overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from claimflow.app import create_app
from claimflow.errors import WorkflowConfigError
from claimflow.services import build_services
from claimflow.workflows.definition import Binding, FailurePolicy, Workflow, WorkflowSettings
from claimflow.workflows.event import Trigger
from claimflow.workflows.registry import WorkflowRegistry, discover
from tests.conftest import make_settings
from tests.workflows.conftest import make_event

USER_WORKFLOW = """
from claimflow.workflows import Binding, WorkflowSettings

workflow_settings = WorkflowSettings(
    id="tier",
    name="Support tier",
    bindings=frozenset({Binding.ACCESS_TOKEN}),
    claims=frozenset({"support_tier"}),
)


async def run(event, bindings):
    bindings.access_token.set_custom_claim("support_tier", "gold")
"""


def test_builtins_are_found_through_the_entry_point_group_once() -> None:
    ids = [w.id for w in discover()]
    assert ids.count("org_billing") == 1 and ids.count("user_billing") == 1


async def test_a_workflow_from_workflows_dir_runs_in_the_enabled_order(
    tmp_path: Path, db_url: str
) -> None:
    (tmp_path / "tier.py").write_text(USER_WORKFLOW)
    (tmp_path / "_helper.py").write_text("raise RuntimeError('helpers are not workflows')")
    services = build_services(
        make_settings(
            db_url, workflows_dir=str(tmp_path), workflows_enabled=["tier", "org_billing"]
        )
    )
    create_app(services=services)
    try:
        assert services.workflows.registry is not None
        assert [w.id for w in services.workflows.registry.enabled()] == ["tier", "org_billing"]
        await services.workflows.warm_up()
        claims = await services.workflows.run_tokens_generation(make_event("kp_x"))
        assert claims.access_token == {"support_tier": ("gold",)}
    finally:
        await services.close()


def test_a_module_without_settings_is_a_start_up_error(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("async def run(event, bindings): ...\n")
    with pytest.raises(WorkflowConfigError, match="workflow_settings"):
        discover(str(tmp_path))


def test_a_second_workflow_with_a_builtin_id_is_refused(tmp_path: Path) -> None:
    (tmp_path / "dup.py").write_text(USER_WORKFLOW.replace('id="tier"', 'id="org_billing"'))
    with pytest.raises(WorkflowConfigError, match="two workflows have the id 'org_billing'"):
        discover(str(tmp_path))


def test_overrides_change_policy_and_time_limit_and_refuse_unknown_keys() -> None:
    registry = WorkflowRegistry.from_settings(
        ["org_billing"],
        overrides={"org_billing": {"failure_policy": "continue", "time_limit_seconds": 0.5}},
    )
    settings = registry.get("org_billing").settings
    assert settings.failure_policy is FailurePolicy.CONTINUE
    assert settings.time_limit_seconds == 0.5
    with pytest.raises(WorkflowConfigError, match="unknown override"):
        WorkflowRegistry.from_settings(["org_billing"], overrides={"org_billing": {"retries": 3}})
    with pytest.raises(WorkflowConfigError, match="'sometimes' is not a valid"):
        WorkflowRegistry.from_settings(
            ["org_billing"], overrides={"org_billing": {"failure_policy": "sometimes"}}
        )


def test_a_bad_configuration_stops_start_up(db_url: str) -> None:
    with pytest.raises(WorkflowConfigError, match="not found"):
        build_services(make_settings(db_url, workflows_enabled=["org_billing", "nope"]))


@pytest.mark.parametrize(
    ("trigger", "binding"),
    [
        (Trigger.M2M_TOKEN_GENERATION, Binding.ACCESS_TOKEN),
        (Trigger.M2M_TOKEN_GENERATION, Binding.AUTH),
        (Trigger.USER_TOKENS_GENERATION, Binding.M2M_TOKEN),
        (Trigger.USER_TOKENS_GENERATION, Binding.PLAN),
        (Trigger.USER_PLAN_SELECTION, Binding.ID_TOKEN),
        (Trigger.USER_PLAN_CANCELLATION_REQUEST, Binding.M2M_TOKEN),
    ],
)
def test_a_binding_its_trigger_does_not_give_is_a_start_up_error(
    trigger: Trigger, binding: Binding
) -> None:
    async def entry(_event: object, _bindings: object) -> None:
        return None

    workflow = Workflow(
        WorkflowSettings(id="w", name="w", trigger=trigger, bindings=frozenset({binding})),
        entry,
        "test",
        trusted=True,
    )
    with pytest.raises(WorkflowConfigError, match=f"binding\\(s\\) \\['{binding.value}'\\]"):
        WorkflowRegistry([workflow], ["w"])


def test_org_billing_m2m_is_built_in_and_enabled_by_default(db_url: str) -> None:
    registry = WorkflowRegistry.from_settings(make_settings(db_url).workflows_enabled)
    (m2m,) = registry.enabled(Trigger.M2M_TOKEN_GENERATION)
    assert m2m.id == "org_billing_m2m" and m2m.trusted
    assert m2m.settings.claims == frozenset({"org_billing"})
