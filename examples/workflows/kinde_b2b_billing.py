"""Example workflow: Kinde's B2B billing example, ported, with the claim's smaller forms.

A port of Kinde's ``addBillingDetailsToTokensB2BWorkflow`` (``kinde-starter-kits/
workflow-examples``): the organization's billing customer, its entitlements and its agreements
in an ``org_billing`` claim on both tokens. Ported line for line it puts the whole payload in
the token, which outgrows the 4 KB size budget at about a dozen features (``503
token_too_large``). Here the claim is built with ``claimflow.claims`` — the same builders as
the built-in ``org_billing`` — and set with its compact and reference forms as fallbacks, so
the size budget steps down instead of failing, and ``GET /oauth2/billing/{customer_id}`` serves
the full form behind a reference.

Load it with ``CLAIMFLOW_WORKFLOWS_DIR=examples/workflows`` and enable it instead of the
built-in (both set ``org_billing``): ``CLAIMFLOW_WORKFLOWS_ENABLED='["kinde_b2b_billing",
"user_billing"]'``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from claimflow.claims import ORG_BILLING, billing_claim_forms, org_billing_claim
from claimflow.workflows import (
    Binding,
    Bindings,
    FailurePolicy,
    TokensGenerationEvent,
    WorkflowSettings,
)

workflow_settings = WorkflowSettings(
    id="kinde_b2b_billing",
    name="Organization billing in tokens (Kinde's B2B example, ported)",
    failure_policy=FailurePolicy.STOP,
    bindings=frozenset(
        {Binding.ACCESS_TOKEN, Binding.ID_TOKEN, Binding.MANAGEMENT_API, Binding.LOGGER}
    ),
    claims=frozenset({ORG_BILLING}),
    management_api_scopes=frozenset(
        {"read:organizations", "read:billing_entitlements", "read:billing_agreements"}
    ),
)


async def load_org_billing(bindings: Bindings, org_code: str) -> dict[str, Any] | None:
    """The full claim, as Kinde's example reads it (every page), or ``None`` to add nothing."""
    api = bindings.management_api
    organization = await api.get("organization", {"code": org_code, "expand": "billing"})
    billing = organization.get("billing") or {}
    customer_id = billing.get("billing_customer_id")
    if not customer_id:
        bindings.logger.info(f"organization {org_code} has no billing customer")
        return None
    params = {"customer_id": customer_id}
    async with asyncio.TaskGroup() as calls:
        entitlements = calls.create_task(
            api.get_all("billing/entitlements", "entitlements", params)
        )
        agreements = calls.create_task(api.get_all("billing/agreements", "agreements", params))
    return org_billing_claim(customer_id, entitlements.result()[0], agreements.result()[0])


async def run(event: TokensGenerationEvent, bindings: Bindings) -> None:
    organization = event.context.organization
    if organization is None:
        bindings.logger.info("personal sign-in; no org_billing claim")
        return
    full = await load_org_billing(bindings, organization.code)
    if full is None:
        return
    forms = billing_claim_forms(full)
    bindings.access_token.set_custom_claim(ORG_BILLING, forms.full, forms.fallbacks)
    bindings.id_token.set_custom_claim(ORG_BILLING, forms.full, forms.fallbacks)
