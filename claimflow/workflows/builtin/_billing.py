"""What both billing workflows share: the parallel, all-pages fetch, the cache, the two tokens.

The claim's forms (full, compact, reference), their schemas and their parser are public in
``claimflow.claims``, so a user workflow builds the very same claim and fallbacks as these.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from claimflow.cache import BillingCache, Loaded
from claimflow.claims import BillingClaimForms, InvalidBillingClaim, billing_claim_forms
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
    return entitlements, agreements


EncodedClaimForms = tuple[EncodedJSON, EncodedJSON, EncodedJSON]
"""The forms with their JSON encoding, made once per cache load (see ``tokens.budget``)."""


class PreparedForms:
    """A billing cache entry's claim forms, encoded, and what warm runs settled from them.

    The in-process cache prepares one instance per load and hands it to every hit, so the
    engine keeps the first warm run's outcome here (``settled``, per workflow: a
    ``RunMemo``): it is derived once per (subject, load) and is gone with the entry, so it
    follows the cache's invalidation exactly (design §9). Redis prepares each read anew, so
    nothing is reused there.
    """

    __slots__ = ("forms", "settled")

    def __init__(self, forms: EncodedClaimForms) -> None:
        self.forms = forms
        self.settled: dict[str, Any] = {}


def encode_forms(value: Any) -> PreparedForms:
    """The cache's ``prepare``: the stored ``[full, compact, reference]``, encoded."""
    full, compact, reference = value
    return PreparedForms((EncodedJSON(full), EncodedJSON(compact), EncodedJSON(reference)))


async def _checked(
    load: Callable[[], Awaitable[dict[str, Any] | None]],
) -> BillingClaimForms | None:
    """The forms of the full claim ``load`` builds; a malformed answer fails its call (design §7)."""
    try:
        full = await load()
        return None if full is None else billing_claim_forms(full)
    except InvalidBillingClaim as exc:
        raise ManagementAPICallFailed(f"billing/{exc.part}", exc.message, 200) from exc


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


def cached_now(cache: BillingCache | None, key: str) -> PreparedForms | None:
    """The entry of ``key`` if the billing cache holds it current and fresh *now*
    (``BillingCache.hit_now``: no I/O, the version already read with the request), else
    ``None``: then ``cached`` decides, after its reads, exactly as this would have."""
    if cache is None:
        return None
    prepared = cache.hit_now(key)
    return prepared if isinstance(prepared, PreparedForms) else None


async def cached(
    bindings: Bindings, key: str, load: Callable[[], Awaitable[dict[str, Any] | None]]
) -> EncodedClaimForms | None:
    """The claim forms for ``key`` from the billing cache, loading them when needed.

    ``None`` (nothing to add) is not cached, so a customer created a moment later shows up.
    """

    async def loader() -> Loaded:
        forms = await _checked(load)
        if forms is None:
            return Loaded(None, frozenset())
        return Loaded(list(forms), frozenset([forms.full["customer_id"]]))

    if not bindings.has(Binding.BILLING_CACHE):
        forms = await _checked(load)
        return None if forms is None else encode_forms(forms).forms
    cache = bindings.billing_cache
    prepared: PreparedForms | None = await cache.get_or_load(
        key, loader, bindings.logger, encode_forms
    )
    return None if prepared is None else prepared.forms
