"""Bearer-token guard of the Management API: an M2M access token with the route's scope.

Tokens come from ``POST /oauth2/token`` (``client_credentials``) with ``audience`` =
``<issuer>/api``, as Kinde's; each route names the scope Kinde's spec gives it
(``x-scope``) and gets 403 with the missing scope named when the token lacks it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import jwt
from fastapi import Request

from claimflow.errors import Forbidden, Unauthorized
from claimflow.services import Services


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
    if claims.get("gty") != ["client_credentials"]:
        raise Forbidden("The Management API takes machine-to-machine tokens only.", "TOKEN_INVALID")
    scopes = claims.get("scp") or []
    return M2MCaller(client_id=str(claims.get("azp", "")), scopes=frozenset(map(str, scopes)))


def require_scope(scope: str) -> Callable[[Request], Awaitable[M2MCaller]]:
    """A FastAPI dependency: the caller, if its token carries ``scope``."""

    async def dependency(request: Request) -> M2MCaller:
        caller = await authenticate(request)
        if scope not in caller.scopes:
            raise Forbidden(f"The token is missing the scope '{scope}'.", "SCOPE_MISSING")
        return caller

    return dependency
