"""``org_billing_m2m``: an organization's billing in its M2M applications' tokens.

An organization-scoped M2M application is the organization's API key (Kinde:
https://docs.kinde.com/machine-to-machine-applications/organization-scoped-m2m-apps/m2m-applications-for-organizations/),
so its client-credentials token carries the same ``org_billing`` claim a member's sign-in does:
the same load (``org_billing.load_org_billing``), the same per-organization cache entry (key
``org:<code>``, checked against the billing version on every lookup, design §9), the same forms
(full, compact, reference) for the M2M token's size budget. An application without an
organization gets nothing. It runs on ``m2m:token_generation`` and sets ``m2m_token`` (Kinde's
``kinde.m2mToken``, https://docs.kinde.com/workflows/bindings/m2m-token-binding/).
"""

from __future__ import annotations

from claimflow.cache import BillingCache
from claimflow.claims import ORG_BILLING
from claimflow.workflows.bindings import Bindings
from claimflow.workflows.builtin._billing import (
    EncodedClaimForms,
    PreparedForms,
    cached,
    cached_now,
)
from claimflow.workflows.builtin.org_billing import load_org_billing
from claimflow.workflows.builtin.org_billing import workflow_settings as user_settings
from claimflow.workflows.definition import Binding, FailurePolicy, WorkflowSettings
from claimflow.workflows.event import M2MTokenGenerationEvent, Trigger

workflow_settings = WorkflowSettings(
    id="org_billing_m2m",
    name="Organization billing in organization M2M tokens",
    trigger=Trigger.M2M_TOKEN_GENERATION,
    failure_policy=FailurePolicy.STOP,
    bindings=frozenset({Binding.M2M_TOKEN, Binding.MANAGEMENT_API, Binding.BILLING_CACHE}),
    management_api_scopes=user_settings.management_api_scopes,
    claims=frozenset({ORG_BILLING}),
)


def applies(event: M2MTokenGenerationEvent) -> bool:
    """Only an organization's application gets the claim: the engine runs nothing for the others
    (every other client-credentials token, the Management API's included)."""
    return event.context.organization is not None


def warm(
    event: M2MTokenGenerationEvent, billing_cache: BillingCache | None
) -> PreparedForms | None:
    """The organization's entry if it is current in memory now (``Workflow.warm``): for the
    version read with the client's authentication (design §9)."""
    organization = event.context.organization
    if organization is None:
        return None
    return cached_now(billing_cache, f"org:{organization.code}")


def run_now(_event: M2MTokenGenerationEvent, bindings: Bindings, memo: PreparedForms) -> None:
    """``run`` on the entry ``warm`` found, without awaiting anything."""
    _set(bindings, memo.forms)


async def run(event: M2MTokenGenerationEvent, bindings: Bindings) -> None:
    organization = event.context.organization
    if organization is None:
        return  # not an organization's application: nothing to add (and nothing to log)
    forms = await cached(
        bindings, f"org:{organization.code}", lambda: load_org_billing(bindings, organization.code)
    )
    if forms is None:
        return
    _set(bindings, forms)


def _set(bindings: Bindings, forms: EncodedClaimForms) -> None:
    full, *fallbacks = forms
    bindings.m2m_token.set_custom_claim(ORG_BILLING, full, fallbacks)
