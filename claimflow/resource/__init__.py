"""Resource-server kit: verify claimflow tokens offline and enforce plans in your API.

``TokenVerifier`` checks a token against the issuer's JWKS; ``VerifiedToken`` exposes its
organization, permissions and billing (``org_billing`` / ``billingDetails`` in any of their three
forms, as ``BillingClaim``); ``ResourceServer`` turns that into FastAPI/Starlette dependencies
answering 401/403 per RFC 6750.
"""

from claimflow.claims import BillingClaim, FeatureLimit
from claimflow.resource.billing import BillingResolver, parse_billing_claim
from claimflow.resource.dependencies import ResourceServer, access_denied_response
from claimflow.resource.errors import ResourceAccessDenied
from claimflow.resource.jwks import JWKSCache, JWKSUnavailable
from claimflow.resource.verifier import TokenVerifier, VerifiedToken

__all__ = [
    "BillingClaim",
    "BillingResolver",
    "FeatureLimit",
    "JWKSCache",
    "JWKSUnavailable",
    "ResourceAccessDenied",
    "ResourceServer",
    "TokenVerifier",
    "VerifiedToken",
    "access_denied_response",
    "parse_billing_claim",
]
