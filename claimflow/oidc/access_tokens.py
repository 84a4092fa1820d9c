"""Checking our own access tokens (RFC 9068 §4): signature, issuer, expiry, type, revocation.

Shared by userinfo and introspection. A token is accepted only with ``typ: at+jwt`` (so an ID
token cannot be used as an access token, RFC 9068 §4 step 2) and a ``jti`` not on the revoked
list (RFC 7009). A user's token also stops being accepted here the moment the user is suspended
or deleted, or the application it was issued to is deleted, so userinfo, the Account API and
introspection never vouch for an account that can no longer sign in through a client that is gone.
Whether a token is a user's or a machine's is decided from what the provider stored (the M2M
application named by the token's reserved ``sub``/``client_id``), never from a claim such as
``gty`` that a token-generation workflow could have written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt
from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow.domain import Application, ApplicationType
from claimflow.services import Services
from claimflow.store import applications, oidc_revocations, users


@dataclass(frozen=True, slots=True)
class VerifiedAccessToken:
    """A valid access token and, for a client-credentials token, the M2M application it is for."""

    claims: dict[str, Any]
    machine_client: Application | None
    """Decided from the store, never from ``gty``: a workflow could write ``gty``."""


async def machine_client_of(conn: AsyncConnection, claims: dict[str, Any]) -> Application | None:
    """The M2M application a client-credentials token was issued to, or None for a user's token.

    Our client-credentials tokens have ``sub`` = ``client_id`` = the application (RFC 9068 §2.2:
    the subject of a token issued to a client for itself is the client); both are reserved
    claims no workflow can set, and the application must be an M2M one that still exists. A user
    token's ``sub`` is a user id and its ``client_id`` a browser application, so it never
    matches, whatever else a workflow wrote into it.
    """
    subject, client_id = claims.get("sub"), claims.get("client_id")
    if not isinstance(subject, str) or subject != client_id:
        return None
    application = await applications.find_application(conn, subject)
    if application is None or application.type is not ApplicationType.M2M:
        return None
    return application


async def verify_access_token_holder(services: Services, token: str) -> VerifiedAccessToken | None:
    """A valid, unrevoked access token we issued, with who holds it (a user's or a machine's)."""
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
        machine = await machine_client_of(conn, claims)
        if machine is None:
            user = await users.find_user(conn, str(claims.get("sub", "")))
            if user is None or user.is_suspended:
                return None
            # The application it was issued to must still exist: a deleted application's
            # tokens end with it, as its refresh tokens and codes do.
            if await applications.find_application(conn, str(claims.get("client_id", ""))) is None:
                return None
    return VerifiedAccessToken(claims=claims, machine_client=machine)


async def verify_access_token(services: Services, token: str) -> dict[str, Any] | None:
    """The claims of a valid, unrevoked access token we issued, or None."""
    verified = await verify_access_token_holder(services, token)
    return None if verified is None else verified.claims


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer`` header (RFC 6750 §2.1)."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
