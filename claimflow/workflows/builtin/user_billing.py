"""``user_billing`` (B2C): a personal sign-in's own billing as ``billingDetails``.

Kinde's ``addBillingDetailsToTokensB2C`` (design §1): ``GET user?id=..&expand=billing`` gives
``billing.customer_id``; entitlements and agreements are fetched in parallel and completely; the
claim is ``{customer_id, user_billing, entitlements, agreements}`` where ``user_billing`` is the
user's ``billing`` object as the Management API returns it. An organization sign-in never
carries personal billing, so the engine does not run this workflow when the event names an
organization (``applies``).
"""

from __future__ import annotations

from typing import Any

from claimflow.cache import BillingCache
from claimflow.claims import BILLING_DETAILS, billing_details_claim
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

CLAIM = BILLING_DETAILS

workflow_settings = WorkflowSettings(
    id="user_billing",
    name="Personal billing in tokens (B2C)",
    trigger=Trigger.USER_TOKENS_GENERATION,
    failure_policy=FailurePolicy.STOP,
    bindings=BILLING_BINDINGS,
    management_api_scopes=frozenset(
        {"read:users", "read:billing_entitlements", "read:billing_agreements"}
    ),
    claims=frozenset({CLAIM}),
)


async def load_user_billing(bindings: Bindings, user_id: str) -> dict[str, Any] | None:
    api = bindings.management_api
    try:
        user = await api.get("user", {"id": user_id, "expand": "billing"})
    except ManagementAPINotFound:
        bindings.logger.info(f"user {user_id!r} not found; no billing claim")
        return None
    billing = user.get("billing")
    customer_id = billing.get("customer_id") if isinstance(billing, dict) else None
    if not isinstance(billing, dict) or not isinstance(customer_id, str) or not customer_id:
        bindings.logger.info(f"user {user_id!r} has no billing customer; no billing claim")
        return None
    entitlements, agreements = await fetch_customer_billing(api, customer_id)
    return billing_details_claim(customer_id, billing, entitlements, agreements)


def applies(event: TokensGenerationEvent) -> bool:
    """Personal sign-ins only: an organization's sign-in starts no run of this workflow."""
    return event.context.organization is None


def warm(event: TokensGenerationEvent, billing_cache: BillingCache | None) -> PreparedForms | None:
    """The user's entry if it is current in memory now (``Workflow.warm``)."""
    if event.context.organization is not None:
        return None
    return cached_now(billing_cache, f"user:{event.context.user.id}")


def run_now(_event: TokensGenerationEvent, bindings: Bindings, memo: PreparedForms) -> None:
    """``run`` on the entry ``warm`` found, without awaiting anything."""
    set_on_both_tokens(bindings, CLAIM, memo.forms)


async def run(event: TokensGenerationEvent, bindings: Bindings) -> None:
    if event.context.organization is not None:
        bindings.logger.info("organization sign-in; personal billing is not added")
        return
    user_id = event.context.user.id
    forms = await cached(bindings, f"user:{user_id}", lambda: load_user_billing(bindings, user_id))
    if forms is None:
        return
    set_on_both_tokens(bindings, CLAIM, forms)
