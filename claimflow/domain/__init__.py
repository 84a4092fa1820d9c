"""Entities and rules of claimflow's business data. Imports nothing else of ours."""

from claimflow.domain.apis import Api, ApiAuthorization, ApiScope
from claimflow.domain.entitlements import derive_entitlements, entitlement_id
from claimflow.domain.models import (
    Agreement,
    Application,
    ApplicationType,
    BillingCustomer,
    Entitlement,
    Feature,
    FeatureKind,
    Membership,
    MeterUsageRecord,
    Organization,
    Permission,
    Plan,
    PlanPrice,
    Role,
    User,
)

__all__ = [
    "Agreement",
    "Api",
    "ApiAuthorization",
    "ApiScope",
    "Application",
    "ApplicationType",
    "BillingCustomer",
    "Entitlement",
    "Feature",
    "FeatureKind",
    "Membership",
    "MeterUsageRecord",
    "Organization",
    "Permission",
    "Plan",
    "PlanPrice",
    "Role",
    "User",
    "derive_entitlements",
    "entitlement_id",
]
