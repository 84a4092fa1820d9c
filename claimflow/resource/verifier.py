"""Offline verification of claimflow access tokens (RFC 9068 §4, RFC 7519 §7.2).

A resource server checks, without calling the issuer per request: the signature against the
issuer's JWKS, an algorithm from an allow-list (never ``none`` or an HMAC the attacker could key
with the public key), ``typ`` ``at+jwt`` (so an ID token cannot be replayed as an access token,
RFC 9068 §4), the issuer, the audience, and expiry with a small leeway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

from claimflow.claims import BillingClaim
from claimflow.resource.billing import parse_billing_claim
from claimflow.resource.errors import ResourceAccessDenied, invalid_token
from claimflow.resource.jwks import JWKSCache, JWKSUnavailable

DEFAULT_ALGORITHMS = ("RS256", "ES256", "EdDSA")
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """A verified access token and what an API asks of it."""

    raw: str = field(repr=False)
    claims: dict[str, Any]

    @property
    def subject(self) -> str:
        return str(self.claims["sub"])

    @property
    def org_code(self) -> str | None:
        value = self.claims.get("org_code")
        return value if isinstance(value, str) else None

    @property
    def permissions(self) -> frozenset[str]:
        value = self.claims.get("permissions")
        return (
            frozenset(p for p in value if isinstance(p, str))
            if isinstance(value, list)
            else frozenset()
        )

    @property
    def roles(self) -> frozenset[str]:
        """Role keys; Kinde writes roles as ``[{"key": ..}]``, plain strings are accepted too."""
        value = self.claims.get("roles")
        if not isinstance(value, list):
            return frozenset()
        keys = (r.get("key") if isinstance(r, dict) else r for r in value)
        return frozenset(k for k in keys if isinstance(k, str))

    @property
    def scopes(self) -> frozenset[str]:
        value = self.claims.get("scp")
        if isinstance(value, list):
            return frozenset(s for s in value if isinstance(s, str))
        scope = self.claims.get("scope")
        return frozenset(scope.split()) if isinstance(scope, str) else frozenset()

    @property
    def org_billing(self) -> BillingClaim | None:
        """The organization's billing (B2B sign-in), in whichever form the token carries."""
        raw = self.claims.get("org_billing")
        return None if raw is None else parse_billing_claim(raw)

    @property
    def billing_details(self) -> BillingClaim | None:
        """Personal billing (``billingDetails``, B2C sign-in)."""
        raw = self.claims.get("billingDetails")
        return None if raw is None else parse_billing_claim(raw)

    @property
    def billing(self) -> BillingClaim | None:
        """The billing that applies, chosen by ``org_code`` (which only the provider writes):
        the organization's for a sign-in to an organization, else the user's own.

        A token of a personal sign-in that carries an ``org_billing`` anyway (a forged claim
        next to the real ``billingDetails``) is not believed: the two never mix (design §1).
        """
        if self.org_code is not None:
            return self.org_billing
        return self.billing_details


class TokenVerifier:
    """Verifies access tokens of one issuer for one API (audience)."""

    def __init__(
        self,
        issuer: str,
        audience: str | Sequence[str],
        *,
        jwks_url: str | None = None,
        algorithms: Sequence[str] = DEFAULT_ALGORITHMS,
        leeway_seconds: float = 30.0,
        require_access_token_type: bool = True,
        http: httpx.AsyncClient | None = None,
        jwks_ttl_seconds: float = 300.0,
        jwks_min_refetch_seconds: float = 1.0,
    ) -> None:
        unsafe = {a for a in algorithms if a == "none" or a.startswith("HS")}
        if unsafe:
            raise ValueError(f"refusing algorithms {sorted(unsafe)}: asymmetric algorithms only")
        self.issuer = issuer.rstrip("/")
        self.audience = [audience] if isinstance(audience, str) else list(audience)
        self.algorithms = tuple(algorithms)
        self.leeway = leeway_seconds
        self.require_access_token_type = require_access_token_type
        self.http = http
        """The HTTP client given for calls to the issuer (``None``: each part makes its own)."""
        self.jwks = JWKSCache(
            jwks_url or f"{self.issuer}/.well-known/jwks.json",
            http=http,
            ttl_seconds=jwks_ttl_seconds,
            min_refetch_seconds=jwks_min_refetch_seconds,
        )

    async def aclose(self) -> None:
        await self.jwks.aclose()

    async def verify(self, token: str) -> VerifiedToken:
        """The verified token; raises ``ResourceAccessDenied`` (401 ``invalid_token``) if not."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise invalid_token("The token is not a JWT.") from exc
        algorithm = header.get("alg")
        if algorithm not in self.algorithms:
            raise invalid_token("The token's signing algorithm is not accepted.")
        if self.require_access_token_type and header.get("typ") not in ACCESS_TOKEN_TYPES:
            raise invalid_token("The token is not an access token (typ at+jwt).")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise invalid_token("The token names no signing key (kid).")
        try:
            key = await self.jwks.key(kid)
        except JWKSUnavailable as exc:
            raise ResourceAccessDenied(
                503, "temporarily_unavailable", "The issuer's signing keys are unavailable."
            ) from exc
        if key.algorithm_name != algorithm:
            raise invalid_token("The token's algorithm does not match its key.")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "iss", "sub", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise invalid_token("The token has expired.") from exc
        except jwt.InvalidAudienceError as exc:
            raise invalid_token("The token is not meant for this API (audience).") from exc
        except jwt.InvalidIssuerError as exc:
            raise invalid_token("The token comes from another issuer.") from exc
        except jwt.PyJWTError as exc:
            raise invalid_token(f"The token is invalid: {exc}.") from exc
        return VerifiedToken(raw=token, claims=claims)
