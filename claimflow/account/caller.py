"""Who is calling Kinde's Account API: the signed-in user, by their own access token.

Kinde's Account API (docs.kinde.com, "About Kinde's Account API") is called with the *user's*
access token, so a browser can read its own entitlements, roles and permissions without a
Management API token. The token is checked as RFC 9068 §4 says (``claimflow/oidc/access_tokens``:
signature, issuer, expiry, ``typ: at+jwt``, not revoked, the user not suspended or deleted); a
machine-to-machine token has no user and is refused. The organization is the token's
``org_code``: a sign-in to an organization reads that organization's data, and the user must
still be a member of it, so a member removed after sign-in loses access at once rather than when
the token expires.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from claimflow.errors import Forbidden, Unauthorized
from claimflow.oidc.access_tokens import bearer_token, verify_access_token
from claimflow.services import Services
from claimflow.store import organizations


@dataclass(frozen=True, slots=True)
class AccountCaller:
    """The user behind the access token and the organization it was issued for (if any)."""

    user_id: str
    org_code: str | None


user_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="user_bearer",
    description="The signed-in user's access token (authorization code or refresh grant).",
)


USER_BEARER = Security(user_bearer)
"""Declares the bearer scheme in OpenAPI; ``signed_in_user`` does the checking."""


async def signed_in_user(
    request: Request,
    _credentials: HTTPAuthorizationCredentials | None = USER_BEARER,
) -> AccountCaller:
    """401 without a valid user access token; 403 when the token's organization dropped them."""
    services: Services = request.app.state.services
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise Unauthorized("A bearer access token is required.", "TOKEN_REQUIRED")
    claims = await verify_access_token(services, token)
    if claims is None or "gty" in claims:
        raise Unauthorized("The access token is invalid or expired.", "TOKEN_INVALID")
    user_id = str(claims.get("sub", ""))
    org_code = claims.get("org_code")
    if not isinstance(org_code, str):
        return AccountCaller(user_id=user_id, org_code=None)
    async with services.db.connect() as conn:
        if await organizations.find_membership(conn, org_code, user_id) is None:
            raise Forbidden("The user is no longer a member of this organization.", "NOT_A_MEMBER")
    return AccountCaller(user_id=user_id, org_code=org_code)


SignedInUser = Annotated[AccountCaller, Depends(signed_in_user)]
"""A route parameter: the caller of an Account API route."""
