"""``org_billing`` (B2B): the signed-in organization's billing in the access and ID tokens.

Kinde's ``addBillingDetailsToTokensB2BWorkflow`` (design §1) with design §7's fixes: values go in
``params`` (URL-encoded), HTTP status is checked (404 → skip), entitlements and agreements are
fetched in parallel and completely, agreements have one shape, the result is cached per customer,
and the claim comes with compact and reference forms for the size budget (``claimflow.claims``).
"""

from __future__ import annotations

from typing import Any

from claimflow.cache import BillingCache
from claimflow.claims import ORG_BILLING, org_billing_claim
from claimflow.errors import ManagementAPINotFound
from claimflow.workflows.bindings import Bindings
from claimflow.workflows.builtin._billing import (
    BILLING_BINDINGS,
    PreparedForms,
    cached,
    cached_now,
    fetch_customer_billing,
    set_on_both_tokens,
)
from claimflow.workflows.definition import FailurePolicy, WorkflowSettings
from claimflow.workflows.event import TokensGenerationEvent, Trigger

CLAIM = ORG_BILLING

workflow_settings = WorkflowSettings(
    id="org_billing",
    name="Organization billing in tokens (B2B)",
    trigger=Trigger.USER_TOKENS_GENERATION,
    failure_policy=FailurePolicy.STOP,
    bindings=BILLING_BINDINGS,
    management_api_scopes=frozenset(
        {"read:organizations", "read:billing_entitlements", "read:billing_agreements"}
    ),
    claims=frozenset({CLAIM}),
)


async def load_org_billing(bindings: Bindings, org_code: str) -> dict[str, Any] | None:
    """``{customer_id, entitlements, agreements}`` of the organization, or None to skip."""
    api = bindings.management_api
    try:
        org = await api.get("organization", {"code": org_code, "expand": "billing"})
    except ManagementAPINotFound:
        bindings.logger.info(f"organization {org_code!r} not found; no billing claim")
        return None
    billing = org.get("billing")
    customer_id = billing.get("billing_customer_id") if isinstance(billing, dict) else None
    if not isinstance(customer_id, str) or not customer_id:
        bindings.logger.info(f"organization {org_code!r} has no billing customer; no billing claim")
        return None
    entitlements, agreements = await fetch_customer_billing(api, customer_id)
    return org_billing_claim(customer_id, entitlements, agreements)


def applies(event: TokensGenerationEvent) -> bool:
    """A personal sign-in carries no organization's billing: the engine does not run it then."""
    return event.context.organization is not None


def warm(event: TokensGenerationEvent, billing_cache: BillingCache | None) -> PreparedForms | None:
    """The organization's entry if it is current in memory now (``Workflow.warm``)."""
    organization = event.context.organization
    if organization is None:
        return None
    return cached_now(billing_cache, f"org:{organization.code}")


def run_now(_event: TokensGenerationEvent, bindings: Bindings, memo: PreparedForms) -> None:
    """``run`` on the entry ``warm`` found, without awaiting anything."""
    set_on_both_tokens(bindings, CLAIM, memo.forms)


async def run(event: TokensGenerationEvent, bindings: Bindings) -> None:
    organization = event.context.organization
    if organization is None:
        bindings.logger.info("personal sign-in (no organization); no org_billing claim")
        return
    forms = await cached(
        bindings, f"org:{organization.code}", lambda: load_org_billing(bindings, organization.code)
    )
    if forms is None:
        return
    set_on_both_tokens(bindings, CLAIM, forms)
