"""Example workflow: put the organization's support tier in the access token.

Load it with ``CLAIMFLOW_WORKFLOWS_DIR=examples/workflows`` and enable it beside the built-ins with
``CLAIMFLOW_WORKFLOWS_ENABLED='["org_billing", "user_billing", "support_tier"]'``. The tier comes
from the environment variable ``SUPPORT_TIER_<ORG_CODE>`` (managed with
``POST /api/v1/environment_variables``), else ``standard``. Its failure policy is ``continue``:
a missing tier must never block a sign-in.
"""

from __future__ import annotations

from claimflow.workflows import (
    Binding,
    Bindings,
    FailurePolicy,
    TokensGenerationEvent,
    WorkflowSettings,
)

workflow_settings = WorkflowSettings(
    id="support_tier",
    name="Support tier in the access token",
    failure_policy=FailurePolicy.CONTINUE,
    time_limit_seconds=0.5,
    bindings=frozenset({Binding.ACCESS_TOKEN, Binding.ENV, Binding.LOGGER}),
    claims=frozenset({"support_tier"}),
    env_vars=frozenset({"SUPPORT_TIER_*"}),
)


async def run(event: TokensGenerationEvent, bindings: Bindings) -> None:
    organization = event.context.organization
    if organization is None:
        bindings.logger.info("personal sign-in; no support tier")
        return
    variable = await bindings.env.get_environment_variable(
        f"SUPPORT_TIER_{organization.code.upper()}"
    )
    tier = variable.value if variable is not None and variable.value else "standard"
    bindings.access_token.set_custom_claim("support_tier", tier)
