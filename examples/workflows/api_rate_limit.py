"""Example workflow (``m2m:token_generation``): an organization's API key carries its rate limit.

An organization-scoped M2M application is the organization's API key (Kinde:
https://docs.kinde.com/machine-to-machine-applications/organization-scoped-m2m-apps/m2m-applications-for-organizations/).
On each client-credentials token (Kinde's trigger, "fires when an M2M token is generated",
https://docs.kinde.com/workflows/example-workflows/m2m-token-generation-workflow/) this reads the
organization's billing customer and entitlements through the Management API and sets
``api_rate_limit`` — requests per minute, the ``entitlement_limit_max`` of the plan's
``api_rate_limit`` feature (``API_RATE_LIMIT_FEATURE`` names another), or
``API_RATE_LIMIT_DEFAULT`` (60) when the plan does not price it — with ``m2m_token`` (Kinde's
``kinde.m2mToken.setCustomClaim``, https://docs.kinde.com/workflows/bindings/m2m-token-binding/).
Your API's gateway enforces the claim without a billing call. An application of no
organization gets no claim.

Enable it with ``CLAIMFLOW_WORKFLOWS_DIR=examples/workflows`` and
``CLAIMFLOW_WORKFLOWS_ENABLED='["org_billing", "user_billing", "org_billing_m2m", "api_rate_limit"]'``.
"""

from __future__ import annotations

from claimflow.workflows import (
    Binding,
    Bindings,
    FailurePolicy,
    M2MTokenGenerationEvent,
    ManagementAPINotFound,
    Trigger,
    WorkflowSettings,
)

CLAIM = "api_rate_limit"

workflow_settings = WorkflowSettings(
    id="api_rate_limit",
    name="The organization's API rate limit in its M2M tokens",
    trigger=Trigger.M2M_TOKEN_GENERATION,
    failure_policy=FailurePolicy.STOP,
    time_limit_seconds=1.0,
    bindings=frozenset({Binding.M2M_TOKEN, Binding.MANAGEMENT_API, Binding.ENV, Binding.LOGGER}),
    management_api_scopes=frozenset({"read:organizations", "read:billing_entitlements"}),
    claims=frozenset({CLAIM}),
    env_vars=frozenset({"API_RATE_LIMIT_FEATURE", "API_RATE_LIMIT_DEFAULT"}),
)


async def _setting(bindings: Bindings, key: str, default: str) -> str:
    variable = await bindings.env.get_environment_variable(key)
    return variable.value if variable is not None and variable.value else default


async def run(event: M2MTokenGenerationEvent, bindings: Bindings) -> None:
    organization = event.context.organization
    application = event.context.application
    if organization is None:
        bindings.logger.info(f"{application.client_id} belongs to no organization; no rate limit")
        return
    feature = await _setting(bindings, "API_RATE_LIMIT_FEATURE", CLAIM)
    limit = int(await _setting(bindings, "API_RATE_LIMIT_DEFAULT", "60"))
    api = bindings.management_api
    try:
        org = await api.get("organization", {"code": organization.code, "expand": "billing"})
    except ManagementAPINotFound:
        bindings.logger.warning(f"organization {organization.code} not found")
        return
    customer_id = (org.get("billing") or {}).get("billing_customer_id")
    if customer_id:
        entitlements, _ = await api.get_all(
            "billing/entitlements", "entitlements", {"customer_id": customer_id}
        )
        priced = [e for e in entitlements if e.get("feature_code") == feature]
        limits = [e["entitlement_limit_max"] for e in priced if "entitlement_limit_max" in e]
        if limits:
            limit = max(int(value) for value in limits)
    bindings.logger.info(
        f"{application.name or application.client_id} of {organization.code}: {limit}/min"
    )
    bindings.m2m_token.set_custom_claim(CLAIM, {"requests_per_minute": limit})
