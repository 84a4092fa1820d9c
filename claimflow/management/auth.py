"""Bearer-token guard of the Management API: an M2M access token with the route's scope.

Tokens come from ``POST /oauth2/token`` (``client_credentials``) with ``audience`` =
``<issuer>/api``, as Kinde's; each route names the scope Kinde's spec gives it
(``x-scope``) and gets 403 with the missing scope named when the token lacks it. A token its
client revoked (RFC 7009, ``POST /oauth2/revoke``) is refused like an expired one.

A token's scopes are what its application held when the token was issued; the request is
authorized against the intersection of those and what the application holds *now* (read from the
store on every request), so narrowing an application's scopes takes effect at once on the tokens
already out, and a deleted application's tokens are refused (401) on every worker at the next
request. The workflows' in-process token names no stored application
(``WORKFLOWS_CLIENT_ID``): the server minted it for five minutes with the scopes the running
workflow declared, so its own scopes are its grant.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import jwt
from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from claimflow.domain.management_scopes import WORKFLOWS_CLIENT_ID
from claimflow.errors import Forbidden, Unauthorized
from claimflow.services import Services
from claimflow.store import management_grants, oidc_revocations


@dataclass(frozen=True, slots=True)
class M2MCaller:
    client_id: str
    scopes: frozenset[str]


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def authenticate(request: Request) -> M2MCaller:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("A bearer token is required.", "TOKEN_REQUIRED")
    services = services_of(request)
    try:
        claims = await services.keys.verify(
            token.strip(), audience=services.management_audience, issuer=services.issuer
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized("The bearer token is invalid or expired.", "TOKEN_INVALID") from exc
    if claims.get("sub") != claims.get("client_id"):
        # A client's token for itself has sub = client_id (RFC 9068 §2.2); both are reserved
        # claims, unlike ``gty``, which a token-generation workflow could have written.
        raise Forbidden("The Management API takes machine-to-machine tokens only.", "TOKEN_INVALID")
    client_id = str(claims.get("client_id", ""))
    jti = str(claims.get("jti", ""))
    token_scopes = frozenset(map(str, claims.get("scp") or []))
    grant: management_grants.CurrentGrant | None
    async with services.db.connect() as conn:
        if client_id == WORKFLOWS_CLIENT_ID:
            revoked = await oidc_revocations.is_revoked(conn, jti)
            grant = management_grants.CurrentGrant(token_scopes, revoked)
        else:
            grant = await management_grants.current_grant(conn, client_id, jti)
    if grant is None or grant.revoked:
        raise Unauthorized("The bearer token is invalid or expired.", "TOKEN_INVALID")
    return M2MCaller(client_id=client_id, scopes=token_scopes & grant.scopes)


bearer = HTTPBearer(
    auto_error=False,
    scheme_name="m2m_bearer",
    description="An access token from POST /oauth2/token (client_credentials, audience <issuer>/api).",
)

BEARER_SECURITY = Security(bearer)
"""Declares the bearer scheme in OpenAPI; ``authenticate`` does the checking."""


class ScopeGuard:
    """A FastAPI dependency: the caller, if its token carries ``scope``.

    A class rather than a closure so the API can read the scope back and publish it as the
    operation's ``x-scope``, the way Kinde's spec names each operation's scope.
    """

    def __init__(self, scope: str) -> None:
        self.scope = scope

    async def __call__(
        self,
        request: Request,
        _credentials: HTTPAuthorizationCredentials | None = BEARER_SECURITY,
    ) -> M2MCaller:
        caller = await authenticate(request)
        if self.scope not in caller.scopes:
            raise Forbidden(f"The token is missing the scope '{self.scope}'.", "SCOPE_MISSING")
        return caller


def require_held(caller: M2MCaller, granted: Iterable[str]) -> None:
    """Refuse to grant what the caller's own token does not hold (403, nothing written).

    A token that may create applications must not mint one that can do more than the token
    itself: granting is bounded by holding, or ``create:applications`` alone is every scope.
    Callers pass only known scope names, so the list in the message is bounded.
    """
    missing = sorted(set(granted) - caller.scopes)
    if missing:
        raise Forbidden(
            f"The token cannot grant scopes it does not hold: {', '.join(missing)}.",
            "SCOPES_NOT_HELD",
        )


def require_scope(scope: str) -> ScopeGuard:
    """The dependency guarding a route with ``scope``: 401 without a valid token, 403 without it."""
    return ScopeGuard(scope)
