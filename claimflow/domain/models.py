"""Entities of the business claimflow serves, as frozen dataclasses with no I/O.

The store maps its rows to these; the Management API maps these to Kinde's JSON shapes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class FeatureKind(enum.StrEnum):
    """How a feature is sold: on/off, with a limit, or metered by usage."""

    BOOLEAN = "boolean"
    LIMIT = "limit"
    METERED = "metered"


class ApplicationType(enum.StrEnum):
    """Kinde's application types: regular web (confidential), single-page (public), M2M."""

    REGULAR = "reg"
    SPA = "spa"
    M2M = "m2m"


@dataclass(frozen=True, slots=True)
class Organization:
    code: str
    name: str
    handle: str | None
    external_id: str | None
    is_auto_membership_enabled: bool
    created_on: datetime


@dataclass(frozen=True, slots=True)
class User:
    id: str
    email: str | None
    given_name: str | None
    family_name: str | None
    created_on: datetime
    is_suspended: bool = False
    total_sign_ins: int = 0
    failed_sign_ins: int = 0
    last_signed_in: datetime | None = None

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.given_name, self.family_name) if part)


@dataclass(frozen=True, slots=True)
class Membership:
    org_code: str
    user_id: str
    roles: tuple[str, ...] = ()
    permissions: tuple[str, ...] = ()
    joined_on: datetime | None = None


@dataclass(frozen=True, slots=True)
class Permission:
    """A permission of Kinde's catalogue; ``key`` is what the ``permissions`` claim carries."""

    id: str
    key: str
    name: str
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Role:
    """A role of Kinde's catalogue; a member holding it holds the permissions it grants."""

    id: str
    key: str
    name: str
    description: str | None = None
    is_default_role: bool = False


@dataclass(frozen=True, slots=True)
class Application:
    client_id: str
    name: str
    type: ApplicationType
    has_client_secret: bool
    redirect_uris: tuple[str, ...] = ()
    logout_uris: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    require_organization: bool = False
    access_token_ttl_seconds: int | None = None
    id_token_ttl_seconds: int | None = None
    refresh_token_ttl_seconds: int | None = None
    allowed_origins: tuple[str, ...] = ()
    """Browser origins allowed to call the token endpoint (CORS), besides a public client's
    redirect URI origins."""
    org_code: str | None = None
    """The organization an M2M application belongs to (Kinde's organization-scoped M2M apps):
    its client-credentials tokens carry this ``org_code``, which the caller cannot change."""

    @property
    def is_public(self) -> bool:
        """A public client (RFC 6749 §2.1) cannot keep a secret and must use PKCE."""
        return not self.has_client_secret


@dataclass(frozen=True, slots=True)
class Feature:
    code: str
    name: str
    kind: FeatureKind


@dataclass(frozen=True, slots=True)
class PlanPrice:
    id: str
    feature_code: str
    price_name: str
    fixed_charge: int | None
    unit_amount: int | None
    entitlement_limit_min: int | None
    entitlement_limit_max: int | None


@dataclass(frozen=True, slots=True)
class Plan:
    code: str
    name: str
    prices: tuple[PlanPrice, ...] = ()
    created_on: datetime | None = None


@dataclass(frozen=True, slots=True)
class BillingCustomer:
    """A billing customer, owned by exactly one organization or one user."""

    id: str
    email: str | None
    org_code: str | None
    user_id: str | None
    created_on: datetime


@dataclass(frozen=True, slots=True)
class Agreement:
    id: str
    customer_id: str
    plan_code: str
    started_on: datetime
    expires_on: datetime | None = None
    cancelled_on: datetime | None = None
    billing_group_id: str | None = None

    def is_active(self, now: datetime) -> bool:
        if self.cancelled_on is not None and self.cancelled_on <= now:
            return False
        return self.expires_on is None or self.expires_on > now


@dataclass(frozen=True, slots=True)
class Entitlement:
    """What a customer may use, derived from one active agreement and one plan price."""

    id: str
    agreement_id: str
    plan_code: str
    feature_code: str
    feature_name: str
    price_name: str
    fixed_charge: int | None
    unit_amount: int | None
    entitlement_limit_min: int | None
    entitlement_limit_max: int | None


@dataclass(frozen=True, slots=True)
class MeterUsageRecord:
    id: str
    customer_id: str
    agreement_id: str
    feature_code: str
    quantity: int
    recorded_on: datetime
