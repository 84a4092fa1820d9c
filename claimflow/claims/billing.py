"""The billing claims ``org_billing`` (B2B) and ``billingDetails`` (B2C), in their three forms.

A token carries one of three forms, richest first, whichever keeps it under its size budget
(``claimflow/tokens/budget.py``); JSON Schemas in ``claimflow/claims/schemas/``:

- **full**: exactly Kinde's claim — ``{customer_id, entitlements, agreements}`` for
  ``org_billing`` (``billingDetails`` adds ``user_billing``) — with entitlements as
  ``GET /api/v1/billing/entitlements`` returns them and agreements as
  ``GET /api/v1/billing/agreements`` returns them. It carries no ``form`` member: code written
  for Kinde's claim keeps working, and "no ``form``" is how a reader knows it holds the full form.
- **compact**: ``{form: "compact", v, customer_id, plans, features: {code: [min, max]}}``.
- **reference**: ``{form: "reference", v, customer_id, plans}``; a holder of the token fetches the
  full form from the issuer's ``GET /oauth2/billing/{customer_id}``.

``v`` is a digest of the full form's content: two tokens with one ``v`` carry the same billing,
and a service can tell whether the full form it fetched is the one the token refers to.

Writers (the built-in workflows and any user workflow) build the full form with
``org_billing_claim`` / ``billing_details_claim`` and its fallbacks with ``billing_claim_forms``;
readers (the resource kit, any service) turn any form into a ``BillingClaim`` with
``parse_billing_claim``. Both sides read entitlements with one function, so a compact form states
exactly the features its full form does. Pure functions: no I/O, no framework.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from claimflow.errors import InvalidBillingClaim

ORG_BILLING = "org_billing"
"""The claim of an organization sign-in (Kinde's ``addBillingDetailsToTokensB2BWorkflow``)."""
BILLING_DETAILS = "billingDetails"
"""The claim of a personal sign-in (Kinde's ``addBillingDetailsToTokensB2C``)."""

BillingForm = Literal["full", "compact", "reference"]
_LIMITS = ("entitlement_limit_min", "entitlement_limit_max")


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


class BillingClaimForms(NamedTuple):
    """A claim's forms, richest first: ``set_custom_claim(name, forms.full, forms.fallbacks)``."""

    full: dict[str, Any]
    compact: dict[str, Any]
    reference: dict[str, Any]

    @property
    def fallbacks(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The smaller forms the size budget may use instead of the full one, in order."""
        return self.compact, self.reference


# -- reading entitlements and agreements (shared by writers and readers) -------------------


def _int_or_none(value: Any, part: str, what: str) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise InvalidBillingClaim(part, f"the {what} is not an integer")


def _customer_id(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidBillingClaim("customer_id", "the billing claim has no customer_id")
    return value


def feature_limits(entitlements: Any) -> dict[str, FeatureLimit]:
    """The features Kinde's entitlement items grant, by code.

    Two agreements may price one feature: the customer gets the larger allowance (the lower
    minimum, the higher maximum, no maximum if either has none).
    """
    if not isinstance(entitlements, list):
        raise InvalidBillingClaim("entitlements", "the entitlements are not a list")
    features: dict[str, FeatureLimit] = {}
    for item in entitlements:
        code = item.get("feature_code") if isinstance(item, dict) else None
        if not isinstance(code, str) or not code:
            raise InvalidBillingClaim("entitlements", "an entitlement has no feature_code")
        minimum, maximum = (
            _int_or_none(item.get(name), "entitlements", f"{code!r} entitlement limit")
            for name in _LIMITS
        )
        features[code] = _widest(features.get(code), FeatureLimit(code, minimum, maximum))
    return features


def _widest(current: FeatureLimit | None, new: FeatureLimit) -> FeatureLimit:
    if current is None:
        return new
    maximum = (
        None
        if current.maximum is None or new.maximum is None
        else max(current.maximum, new.maximum)
    )
    minimum = min((m for m in (current.minimum, new.minimum) if m is not None), default=None)
    return FeatureLimit(new.code, minimum, maximum)


def plan_codes(agreements: Any) -> tuple[str, ...]:
    """The plans of Kinde's agreement items, each once, in order."""
    if not isinstance(agreements, list):
        raise InvalidBillingClaim("agreements", "the agreements are not a list")
    plans: dict[str, None] = {}
    for agreement in agreements:
        plan = agreement.get("plan_code") if isinstance(agreement, dict) else None
        if not isinstance(plan, str):
            raise InvalidBillingClaim("agreements", "an agreement has no plan_code")
        plans[plan] = None
    return tuple(plans)


# -- writing: the full form and its fallbacks ------------------------------------------------


def org_billing_claim(
    customer_id: str, entitlements: Sequence[Any], agreements: Sequence[Any]
) -> dict[str, Any]:
    """``org_billing``'s full form from the Management API's answers, checked.

    ``entitlements`` are the items of ``GET /api/v1/billing/entitlements?customer_id=..``
    (every page), ``agreements`` those of ``GET /api/v1/billing/agreements?customer_id=..``.
    Raises ``InvalidBillingClaim`` (its ``part`` names the faulty member) for an item without
    a ``feature_code``, a non-integer limit, or an agreement without ``id`` and ``plan_code``.
    """
    full = {
        "customer_id": customer_id,
        "entitlements": list(entitlements),
        "agreements": list(agreements),
    }
    _check_full(full)
    return full


def billing_details_claim(
    customer_id: str,
    user_billing: Mapping[str, Any],
    entitlements: Sequence[Any],
    agreements: Sequence[Any],
) -> dict[str, Any]:
    """``billingDetails``' full form: ``user_billing`` is the user's ``billing`` object as
    ``GET /api/v1/user?id=..&expand=billing`` returns it; the rest as ``org_billing_claim``."""
    full = {
        "customer_id": customer_id,
        "user_billing": dict(user_billing),
        "entitlements": list(entitlements),
        "agreements": list(agreements),
    }
    _check_full(full)
    return full


def _check_full(full: Mapping[str, Any]) -> None:
    _customer_id(full["customer_id"])
    feature_limits(full["entitlements"])
    plan_codes(full["agreements"])
    if not all(isinstance(agreement.get("id"), str) for agreement in full["agreements"]):
        raise InvalidBillingClaim("agreements", "an agreement has no id")


def content_version(full: Mapping[str, Any]) -> str:
    """``v``: 16 hex digits of SHA-256 over the full form's canonical JSON."""
    canonical = json.dumps(full, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def billing_claim_forms(full: dict[str, Any]) -> BillingClaimForms:
    """(full, compact, reference) of a full form built by ``org_billing_claim`` or
    ``billing_details_claim``; compute it once per load, not per sign-in."""
    version = content_version(full)
    plans = list(plan_codes(full["agreements"]))
    features = {
        code: [limit.minimum, limit.maximum]
        for code, limit in feature_limits(full["entitlements"]).items()
    }
    customer_id = _customer_id(full["customer_id"])
    reference = {"form": "reference", "v": version, "customer_id": customer_id, "plans": plans}
    compact = {**reference, "form": "compact", "features": features}
    return BillingClaimForms(full, compact, reference)


# -- reading: any form -----------------------------------------------------------------------


def parse_billing_claim(raw: Any) -> BillingClaim:
    """Any form of ``org_billing`` / ``billingDetails`` as a ``BillingClaim``.

    Raises ``InvalidBillingClaim`` for a malformed claim. Reading is lenient where Kinde's own
    claim is: an agreement needs only its ``plan_code``.
    """
    if not isinstance(raw, dict):
        raise InvalidBillingClaim("claim", "the billing claim is not an object")
    customer_id = _customer_id(raw.get("customer_id"))
    form = raw.get("form", "full")
    version = raw.get("v")
    if version is not None and not isinstance(version, str):
        raise InvalidBillingClaim("v", "the billing claim's version is not a string")
    if form == "full":
        features = feature_limits(raw.get("entitlements"))
        plans = plan_codes(raw.get("agreements"))
        return BillingClaim("full", customer_id, plans, features, version, full=raw)
    if form not in ("compact", "reference"):
        raise InvalidBillingClaim("form", f"unknown billing claim form {form!r}")
    listed = raw.get("plans")
    if not isinstance(listed, list) or not all(isinstance(p, str) for p in listed):
        raise InvalidBillingClaim("plans", "the billing claim's plans are not a list of codes")
    if form == "reference":
        return BillingClaim("reference", customer_id, tuple(listed), None, version)
    return BillingClaim("compact", customer_id, tuple(listed), _compact_features(raw), version)


def _compact_features(raw: dict[str, Any]) -> dict[str, FeatureLimit]:
    features_raw = raw.get("features")
    if not isinstance(features_raw, dict):
        raise InvalidBillingClaim("features", "the compact billing claim has no features object")
    features: dict[str, FeatureLimit] = {}
    for code, limits in features_raw.items():
        if not isinstance(limits, list) or len(limits) != 2:
            raise InvalidBillingClaim("features", f"the limits of {code!r} are not [min, max]")
        minimum, maximum = (
            _int_or_none(value, "features", f"{code!r} {end} limit")
            for value, end in zip(limits, ("minimum", "maximum"), strict=True)
        )
        features[code] = FeatureLimit(code, minimum, maximum)
    return features
