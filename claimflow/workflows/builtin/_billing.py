"""What both billing workflows share: the parallel, all-pages fetch and the claim's forms.

Forms (JSON Schemas in ``claimflow/tokens/schemas/``), richest first, for the size budget:

- **full**: exactly Kinde's claim — ``{customer_id, entitlements, agreements}`` for
  ``org_billing`` (plus ``user_billing`` for ``billingDetails``) — with entitlements as
  ``/billing/entitlements`` returns them and agreements as ``/billing/agreements`` returns them.
  It carries no ``form`` member: code written for Kinde's claim keeps working, and "no ``form``"
  is how a reader knows it holds the full form.
- **compact**: ``{form: "compact", v, customer_id, plans, features: {code: [min, max]}}``.
- **reference**: ``{form: "reference", v, customer_id, plans}``; a holder of the token fetches the
  full form from ``GET /oauth2/billing/{customer_id}``.

``v`` is a digest of the full form's content: two tokens with one ``v`` carry the same billing,
and a service can tell whether the full form it fetched is the one the token refers to.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from claimflow.cache import Loaded
from claimflow.errors import ManagementAPICallFailed
from claimflow.tokens.budget import EncodedJSON
from claimflow.workflows.bindings import Bindings
from claimflow.workflows.definition import Binding
from claimflow.workflows.management_client import ManagementAPIClient

T = TypeVar("T")

BILLING_BINDINGS = frozenset(
    {Binding.ACCESS_TOKEN, Binding.ID_TOKEN, Binding.MANAGEMENT_API, Binding.BILLING_CACHE}
)
"""What both billing workflows use: the two tokens, the Management API and the billing cache."""

ENTITLEMENTS = "billing/entitlements"
AGREEMENTS = "billing/agreements"
_LIMITS = ("entitlement_limit_min", "entitlement_limit_max")


def _is_int_or_none(value: Any) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool))


def check_entitlements(items: list[dict[str, Any]]) -> None:
    for item in items:
        if not isinstance(item.get("feature_code"), str) or not item["feature_code"]:
            raise ManagementAPICallFailed(ENTITLEMENTS, "an entitlement has no feature_code", 200)
        if not all(_is_int_or_none(item.get(name)) for name in _LIMITS):
            raise ManagementAPICallFailed(
                ENTITLEMENTS, "an entitlement limit is not an integer", 200
            )


def check_agreements(items: list[dict[str, Any]]) -> None:
    for item in items:
        if not isinstance(item.get("id"), str) or not isinstance(item.get("plan_code"), str):
            raise ManagementAPICallFailed(AGREEMENTS, "an agreement has no id or plan_code", 200)


async def _both(first: Awaitable[T], second: Awaitable[Any]) -> tuple[T, Any]:
    """Run two calls concurrently; when one fails, cancel the other and raise its error."""
    tasks = [asyncio.ensure_future(first), asyncio.ensure_future(second)]
    try:
        a, b = await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return a, b


async def fetch_customer_billing(
    api: ManagementAPIClient, customer_id: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Entitlements (``expand=plans``) and agreements of ``customer_id``: two parallel, paged reads.

    Design §7: agreements always come from ``/billing/agreements`` (one shape), every page is read.
    """
    (entitlements, _), (agreements, _) = await _both(
        api.get_all(ENTITLEMENTS, "entitlements", {"customer_id": customer_id, "expand": "plans"}),
        api.get_all(AGREEMENTS, "agreements", {"customer_id": customer_id}),
    )
    check_entitlements(entitlements)
    check_agreements(agreements)
    return entitlements, agreements


def content_version(full: dict[str, Any]) -> str:
    canonical = json.dumps(full, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def plan_codes(agreements: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(str(a["plan_code"]) for a in agreements))


def compact_form(full: dict[str, Any]) -> dict[str, Any]:
    return claim_forms(full)[1]


def reference_form(full: dict[str, Any]) -> dict[str, Any]:
    return claim_forms(full)[2]


ClaimFormSet = tuple[dict[str, Any], dict[str, Any], dict[str, Any]]


def claim_forms(full: dict[str, Any]) -> ClaimFormSet:
    """(full, compact, reference), computed once per cache load rather than per sign-in."""
    version = content_version(full)
    plans = plan_codes(full["agreements"])
    features = {
        item["feature_code"]: [item.get(name) for name in _LIMITS] for item in full["entitlements"]
    }
    compact = {
        "form": "compact",
        "v": version,
        "customer_id": full["customer_id"],
        "plans": plans,
        "features": features,
    }
    reference = {
        "form": "reference",
        "v": version,
        "customer_id": full["customer_id"],
        "plans": plans,
    }
    return full, compact, reference


EncodedClaimForms = tuple[EncodedJSON, EncodedJSON, EncodedJSON]
"""The forms with their JSON encoding, made once per cache load (see ``tokens.budget``)."""


def encode_forms(value: Any) -> EncodedClaimForms:
    """The cache's ``prepare``: the stored ``[full, compact, reference]``, encoded."""
    full, compact, reference = value
    return EncodedJSON(full), EncodedJSON(compact), EncodedJSON(reference)


def set_on_both_tokens(bindings: Bindings, claim: str, forms: EncodedClaimForms) -> None:
    """Set the claim (with its fallback forms) on both tokens and log what it carries."""
    full, *fallbacks = forms
    bindings.access_token.set_custom_claim(claim, full, fallbacks)
    bindings.id_token.set_custom_claim(claim, full, fallbacks)
    content = full.value
    bindings.logger.info(
        f"{claim} set for customer {content['customer_id']}: "
        f"{len(content['entitlements'])} entitlements, {len(content['agreements'])} agreements"
    )


async def cached(
    bindings: Bindings, key: str, load: Callable[[], Awaitable[dict[str, Any] | None]]
) -> EncodedClaimForms | None:
    """The claim forms for ``key`` from the billing cache, loading them when needed.

    ``None`` (nothing to add) is not cached, so a customer created a moment later shows up.
    """

    async def loader() -> Loaded:
        full = await load()
        if full is None:
            return Loaded(None, frozenset())
        return Loaded(list(claim_forms(full)), frozenset([full["customer_id"]]))

    cache = bindings.billing_cache_binding
    if cache is None:
        full = await load()
        return None if full is None else encode_forms(claim_forms(full))
    forms: EncodedClaimForms | None = await cache.get_or_load(
        key, loader, bindings.logger, encode_forms
    )
    return forms
