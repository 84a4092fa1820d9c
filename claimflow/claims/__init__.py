"""What a claim is, with no I/O: the billing claim's forms, their JSON Schemas and the parser.

One module for every side of the claim: the built-in billing workflows and user workflows build
it (``org_billing_claim`` / ``billing_details_claim``, then ``billing_claim_forms`` for the
compact and reference fallbacks), the issuer's billing-details endpoint serves its full form,
and the resource kit reads it (``parse_billing_claim``). Imports nothing of claimflow but
``claimflow.errors``, so any service can use it without the server.
"""

from claimflow.claims.billing import (
    BILLING_DETAILS,
    ORG_BILLING,
    BillingClaim,
    BillingClaimForms,
    BillingForm,
    FeatureLimit,
    billing_claim_forms,
    billing_details_claim,
    content_version,
    feature_limits,
    org_billing_claim,
    parse_billing_claim,
    plan_codes,
)
from claimflow.claims.json_schemas import claim_schema, claim_schemas
from claimflow.errors import InvalidBillingClaim

__all__ = [
    "BILLING_DETAILS",
    "ORG_BILLING",
    "BillingClaim",
    "BillingClaimForms",
    "BillingForm",
    "FeatureLimit",
    "InvalidBillingClaim",
    "billing_claim_forms",
    "billing_details_claim",
    "claim_schema",
    "claim_schemas",
    "content_version",
    "feature_limits",
    "org_billing_claim",
    "parse_billing_claim",
    "plan_codes",
]
