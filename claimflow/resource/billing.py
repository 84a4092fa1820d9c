"""Reading ``org_billing`` and ``billingDetails`` in an API, whatever form the token carried.

The forms and their parser live in ``claimflow.claims`` (shared with the workflows that write
them); here a malformed claim becomes RFC 6750's ``invalid_token``, and ``BillingResolver``
fetches the full form behind a reference-form claim from the issuer's
``GET /oauth2/billing/{customer_id}``, with the token itself as the credential.

``BillingClaim`` is what all three forms become, so an API asks ``has_feature("sso")`` or
``limit_of("seats")`` without caring which form the token carried.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import quote

import httpx

from claimflow.claims import BillingClaim, InvalidBillingClaim
from claimflow.claims import parse_billing_claim as parse_claim
from claimflow.resource.errors import ResourceAccessDenied, invalid_token


def parse_billing_claim(raw: Any) -> BillingClaim:
    """``claimflow.claims.parse_billing_claim``; a malformed claim makes the token invalid (401)."""
    try:
        return parse_claim(raw)
    except InvalidBillingClaim as exc:
        raise invalid_token(f"The billing claim is malformed: {exc.message}.") from exc


class BillingResolver:
    """Fetches the full form a reference-form claim points to, cached by ``(customer, v)``.

    The version ``v`` is a digest of the full form's content, so a cached full form is reused
    exactly as long as tokens refer to the same billing, and a changed plan (new ``v``) is
    fetched afresh.
    """

    def __init__(
        self, issuer: str, *, http: httpx.AsyncClient | None = None, max_entries: int = 1024
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self._http = http
        self._owns_http = http is None
        self._cache: dict[tuple[str, str | None], BillingClaim] = {}
        self._max_entries = max_entries

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=5.0)
        return self._http

    async def aclose(self) -> None:
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    async def resolve(self, claim: BillingClaim, token: str) -> BillingClaim:
        if claim.is_resolved:
            return claim
        key = (claim.customer_id, claim.version)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        url = f"{self.issuer}/oauth2/billing/{quote(claim.customer_id, safe='')}"
        try:
            response = await self._client().get(
                url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"}
            )
        except httpx.HTTPError as exc:
            raise ResourceAccessDenied(
                503, "temporarily_unavailable", f"Cannot fetch the billing details: {exc}"
            ) from exc
        if response.status_code == 401:
            raise invalid_token("The issuer refused the token (revoked or expired).")
        if response.status_code == 403:
            raise ResourceAccessDenied(
                403, "insufficient_scope", "The token does not cover this billing customer."
            )
        if response.status_code != 200:
            raise ResourceAccessDenied(
                503,
                "temporarily_unavailable",
                f"The issuer answered {response.status_code} for the billing details.",
            )
        try:
            body = response.json()
        except ValueError as exc:
            raise ResourceAccessDenied(
                503, "temporarily_unavailable", "The billing details are not JSON."
            ) from exc
        resolved = parse_billing_claim(body)
        if resolved.customer_id != claim.customer_id:
            raise invalid_token("The billing details belong to another customer.")
        resolved = replace(resolved, form="reference", version=claim.version)
        if len(self._cache) >= self._max_entries:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = resolved
        return resolved
