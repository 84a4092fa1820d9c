"""Checking our own access tokens (RFC 9068 §4): signature, issuer, expiry, type, revocation.

Shared by userinfo and introspection. A token is accepted only with ``typ: at+jwt`` (so an ID
token cannot be used as an access token, RFC 9068 §4 step 2) and a ``jti`` not on the revoked
list (RFC 7009). A user's token also stops being accepted here the moment the user is suspended
or deleted, so userinfo and introspection never vouch for an account that can no longer sign in.
"""

from __future__ import annotations

from typing import Any

import jwt

from claimflow.services import Services
from claimflow.store import oidc_revocations, users


async def verify_access_token(services: Services, token: str) -> dict[str, Any] | None:
    """The claims of a valid, unrevoked access token we issued, or None."""
    try:
        header = jwt.get_unverified_header(token)
        if str(header.get("typ", "")).lower() != "at+jwt":
            return None
        claims = await services.keys.verify(token, issuer=services.issuer)
    except jwt.PyJWTError:
        return None
    jti = claims.get("jti")
    if not isinstance(jti, str):
        return None
    async with services.db.connect() as conn:
        if await oidc_revocations.is_revoked(conn, jti):
            return None
        if claims.get("gty") != ["client_credentials"]:
            user = await users.find_user(conn, str(claims.get("sub", "")))
            if user is None or user.is_suspended:
                return None
    return claims


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer`` header (RFC 6750 §2.1)."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
