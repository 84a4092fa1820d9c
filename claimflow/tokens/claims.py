"""Base claims of tokens: a user's access token (RFC 9068 §2.2) and ID token (OIDC Core §2), and
a machine's access token (RFC 9068 with Kinde's M2M extras).

Pure functions of a ``TokenContext``: no I/O, so they are easy to property-test and the token
endpoint's grants only decide *who* and *what*, never *how a claim looks*. Kinde's extras
(``org_code``, ``permissions``, ``roles`` on the access token, ``org_codes`` on the ID token)
appear only for a sign-in to an organization, as Kinde omits them otherwise.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from claimflow.domain import Membership, User
from claimflow.tokens.reserved import is_reserved


@dataclass(frozen=True, slots=True)
class TokenContext:
    """Who the tokens are for, to what, through which client: the input of claim assembly."""

    issuer: str
    user: User
    client_id: str
    scopes: tuple[str, ...]
    audience: tuple[str, ...]
    auth_time: datetime
    membership: Membership | None = None
    org_codes: tuple[str, ...] = ()
    nonce: str | None = None
    feature_flags: Mapping[str, Any] | None = None
    """Kinde's ``feature_flags`` claim as the store resolved it for this user; none if empty."""

    @property
    def org_code(self) -> str | None:
        return self.membership.org_code if self.membership else None


def access_token_claims(ctx: TokenContext, *, jti: str, now: int, ttl: int) -> dict[str, Any]:
    """RFC 9068 §2.2 claims plus ``azp`` and ``scp`` (Kinde), and the organization's grants."""
    claims: dict[str, Any] = {
        "iss": ctx.issuer,
        "sub": ctx.user.id,
        "aud": list(ctx.audience),
        "azp": ctx.client_id,
        "client_id": ctx.client_id,
        "iat": now,
        "exp": now + ttl,
        "jti": jti,
        "scp": list(ctx.scopes),
        "scope": " ".join(ctx.scopes),
        "auth_time": int(ctx.auth_time.timestamp()),
    }
    if ctx.membership is not None:
        claims["org_code"] = ctx.membership.org_code
        claims["permissions"] = list(ctx.membership.permissions)
        claims["roles"] = [{"key": role} for role in ctx.membership.roles]
    if ctx.feature_flags:
        claims["feature_flags"] = dict(ctx.feature_flags)
    return claims


def m2m_access_token_claims(
    *,
    issuer: str,
    client_id: str,
    audience: str,
    scopes: Sequence[str],
    jti: str,
    now: int,
    ttl: int,
    org_code: str | None = None,
) -> dict[str, Any]:
    """A client-credentials access token (RFC 6749 §4.4, RFC 9068 §2.2) as Kinde shapes it.

    The subject is the client itself; Kinde adds ``gty: ["client_credentials"]``, ``scp`` (the
    scopes as a list) beside ``scope`` and ``v: "2"``. The token endpoint's grant and the
    workflows' in-process Management API token both come from here, so the Management API's
    checks see one shape. An organization's M2M application gets ``org_code``, "enforced at token
    issuance time and cannot be modified by the caller" (Kinde,
    https://docs.kinde.com/machine-to-machine-applications/organization-scoped-m2m-apps/m2m-applications-for-organizations/).
    """
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": client_id,
        "aud": [audience],
        "azp": client_id,
        "client_id": client_id,
        "iat": now,
        "exp": now + ttl,
        "jti": jti,
        "gty": ["client_credentials"],
        "scp": list(scopes),
        "scope": " ".join(scopes),
        "v": "2",
    }
    if org_code is not None:
        claims["org_code"] = org_code
    return claims


def token_hash(token: str, algorithm: str) -> str:
    """``at_hash`` (OIDC Core §3.1.3.6): left half of the hash the signing algorithm uses.

    EdDSA (Ed25519) pairs with SHA-512, as OpenID Connect's errata set prescribes.
    """
    digest = (hashlib.sha512 if algorithm == "EdDSA" else hashlib.sha256)(token.encode("ascii"))
    half = digest.digest()[: digest.digest_size // 2]
    return base64.urlsafe_b64encode(half).rstrip(b"=").decode("ascii")


def id_token_claims(
    ctx: TokenContext, *, jti: str, now: int, ttl: int, at_hash: str | None
) -> dict[str, Any]:
    """OIDC Core §2 and §5.1 claims; profile and email claims only for their scopes (§5.4)."""
    claims: dict[str, Any] = {
        "iss": ctx.issuer,
        "sub": ctx.user.id,
        "aud": [ctx.client_id],
        "azp": ctx.client_id,
        "iat": now,
        "exp": now + ttl,
        "jti": jti,
        "auth_time": int(ctx.auth_time.timestamp()),
    }
    if ctx.nonce:
        claims["nonce"] = ctx.nonce
    if at_hash:
        claims["at_hash"] = at_hash
    if "email" in ctx.scopes and ctx.user.email:
        claims["email"] = ctx.user.email
    if "profile" in ctx.scopes:
        if ctx.user.full_name:
            claims["name"] = ctx.user.full_name
        if ctx.user.given_name:
            claims["given_name"] = ctx.user.given_name
        if ctx.user.family_name:
            claims["family_name"] = ctx.user.family_name
    if ctx.org_codes:
        claims["org_codes"] = list(ctx.org_codes)
    if ctx.org_code:
        claims["org_code"] = ctx.org_code
    return claims


def mergeable(
    custom: Mapping[str, tuple[Any, ...]], base: Mapping[str, Any], reserved: frozenset[str]
) -> dict[str, tuple[Any, ...]]:
    """The custom claims that may join ``base``: base and reserved claims always win."""
    return {
        name: forms
        for name, forms in custom.items()
        if forms and name not in base and not is_reserved(name, reserved)
    }
