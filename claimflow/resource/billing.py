"""Reading ``org_billing`` and ``billingDetails`` in their three forms.

The billing workflows (``claimflow/workflows/builtin/_billing.py``, JSON Schemas in
``claimflow/tokens/schemas/``) put one of three forms in the token, richest first, depending on
the token size budget:

- **full** (no ``form`` member; exactly Kinde's claim): ``{customer_id, entitlements: [...],
  agreements: [...]}`` — ``billingDetails`` adds ``user_billing``;
- **compact**: ``{form: "compact", v, customer_id, plans, features: {code: [min, max]}}``;
- **reference**: ``{form: "reference", v, customer_id, plans}`` — the features are not in the
  token; ``BillingResolver`` fetches the full form from the issuer's
  ``GET /oauth2/billing/{customer_id}`` with the token itself as the credential.

``BillingClaim`` is what all three become, so an API asks ``has_feature("sso")`` or
``limit_of("seats")`` without caring which form the token carried.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

import httpx

from claimflow.resource.errors import ResourceAccessDenied, invalid_token

BillingForm = Literal["full", "compact", "reference"]


@dataclass(frozen=True, slots=True)
class FeatureLimit:
    """One entitled feature; ``maximum is None`` means no upper limit (or a boolean feature)."""

    code: str
    minimum: int | None = None
    maximum: int | None = None


@dataclass(frozen=True, slots=True)
class BillingClaim:
    """A customer's billing as a token states it, whatever its form."""

    form: BillingForm
    customer_id: str
    plans: tuple[str, ...]
    features: Mapping[str, FeatureLimit] | None
    """Entitled features by code; ``None`` for an unresolved reference form."""
    version: str | None = None
    full: Mapping[str, Any] | None = field(default=None, repr=False)
    """The full form's JSON (Kinde's shape), when the token carried it or it was resolved."""

    @property
    def is_resolved(self) -> bool:
        return self.features is not None

    def has_feature(self, code: str) -> bool:
        return self._features().get(code) is not None

    def limit_of(self, code: str) -> FeatureLimit | None:
        """The feature's limits, or ``None`` when the customer is not entitled to it."""
        return self._features().get(code)

    def _features(self) -> Mapping[str, FeatureLimit]:
        if self.features is None:
            raise ValueError("a reference-form billing claim must be resolved first")
        return self.features


def _int_or_none(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_token(f"The billing claim's {where} is not an integer.")
    return value


def _plans(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
        raise invalid_token("The billing claim's plans are not a list of codes.")
    return tuple(raw)


def parse_billing_claim(raw: Any) -> BillingClaim:
    """Turn the claim's JSON into a ``BillingClaim``; a malformed claim is an invalid token."""
    if not isinstance(raw, dict):
        raise invalid_token("The billing claim is not an object.")
    customer_id = raw.get("customer_id")
    if not isinstance(customer_id, str) or not customer_id:
        raise invalid_token("The billing claim has no customer_id.")
    form = raw.get("form", "full")
    version = raw.get("v")
    if version is not None and not isinstance(version, str):
        raise invalid_token("The billing claim's version is not a string.")
    if form == "full":
        return _full(raw, customer_id)
    if form == "compact":
        features_raw = raw.get("features")
        if not isinstance(features_raw, dict):
            raise invalid_token("The compact billing claim has no features object.")
        features: dict[str, FeatureLimit] = {}
        for code, limits in features_raw.items():
            if not isinstance(limits, list) or len(limits) != 2:
                raise invalid_token(f"The limits of feature {code!r} are not [min, max].")
            features[code] = FeatureLimit(
                code,
                _int_or_none(limits[0], f"{code} minimum"),
                _int_or_none(limits[1], f"{code} maximum"),
            )
        return BillingClaim("compact", customer_id, _plans(raw.get("plans")), features, version)
    if form == "reference":
        return BillingClaim("reference", customer_id, _plans(raw.get("plans")), None, version)
    raise invalid_token(f"Unknown billing claim form {form!r}.")


def _full(raw: dict[str, Any], customer_id: str) -> BillingClaim:
    entitlements = raw.get("entitlements")
    agreements = raw.get("agreements")
    if not isinstance(entitlements, list) or not isinstance(agreements, list):
        raise invalid_token("The billing claim's entitlements or agreements are not lists.")
    features: dict[str, FeatureLimit] = {}
    for item in entitlements:
        code = item.get("feature_code") if isinstance(item, dict) else None
        if not isinstance(code, str) or not code:
            raise invalid_token("An entitlement in the billing claim has no feature_code.")
        minimum = _int_or_none(item.get("entitlement_limit_min"), f"{code} minimum")
        maximum = _int_or_none(item.get("entitlement_limit_max"), f"{code} maximum")
        features[code] = _widest(features.get(code), FeatureLimit(code, minimum, maximum))
    plans: list[str] = []
    for agreement in agreements:
        plan = agreement.get("plan_code") if isinstance(agreement, dict) else None
        if not isinstance(plan, str):
            raise invalid_token("An agreement in the billing claim has no plan_code.")
        if plan not in plans:
            plans.append(plan)
    return BillingClaim("full", customer_id, tuple(plans), features, raw.get("v"), full=raw)


def _widest(current: FeatureLimit | None, new: FeatureLimit) -> FeatureLimit:
    """Two agreements may price one feature: the customer gets the larger allowance."""
    if current is None:
        return new
    maximum = (
        None
        if current.maximum is None or new.maximum is None
        else max(current.maximum, new.maximum)
    )
    minimum = min((m for m in (current.minimum, new.minimum) if m is not None), default=None)
    return FeatureLimit(new.code, minimum, maximum)


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
        resolved = BillingClaim(
            "reference",
            resolved.customer_id,
            resolved.plans,
            resolved.features,
            claim.version,
            full=resolved.full,
        )
        if len(self._cache) >= self._max_entries:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = resolved
        return resolved
