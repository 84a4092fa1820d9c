"""Where workflows come from: built-ins, the entry-point group, a directory; order and overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from claimflow.app import create_app
from claimflow.errors import WorkflowConfigError
from claimflow.services import build_services
from claimflow.workflows.definition import FailurePolicy
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
