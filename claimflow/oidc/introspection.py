"""Token introspection (RFC 7662).

The caller must authenticate as a confidential client (§2.1). An access token is active when
its signature, issuer, expiry and type check out, its ``jti`` is not revoked, its user can
still sign in (or its M2M application still exists), and the caller may know about it (§4):
the client it was issued to, or a client authorized for one of its audiences. A refresh token
is active when unspent, unrevoked, unexpired and issued to the caller. Anything else — expired,
tampered, unknown, someone else's — is just ``{"active": false}`` (§2.2), which tells the
caller nothing.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from claimflow.domain import Application
from claimflow.errors import OAuthError
from claimflow.oidc.access_tokens import verify_access_token_holder
from claimflow.oidc.client_auth import authenticate_client
from claimflow.oidc.errors import NO_STORE
from claimflow.oidc.params import require, token_form_params
from claimflow.services import Services
from claimflow.store import apis, oidc_refresh_tokens
from claimflow.store._rows import utcnow

router = APIRouter(tags=["oauth2"])

_ACCESS_TOKEN_MEMBERS = (
    "scope",
    "client_id",
    "sub",
    "aud",
    "iss",
    "exp",
    "iat",
    "jti",
    "org_code",
)


async def _introspect_refresh_token(
    services: Services, token: str, client_id: str
) -> dict[str, Any] | None:
    async with services.db.connect() as conn:
        stored = await oidc_refresh_tokens.find_refresh_token(conn, token)
    if (
        stored is None
        or stored.client_id != client_id
        or stored.used_on is not None
        or stored.revoked_on is not None
        or stored.expires_on <= utcnow()
    ):
        return None
    body: dict[str, Any] = {
        "active": True,
        "token_type": "refresh_token",
        "client_id": stored.client_id,
        "sub": stored.user_id,
        "scope": stored.scope,
        "exp": int(stored.expires_on.timestamp()),
        "iat": int(stored.created_on.timestamp()),
        "iss": services.issuer,
    }
    if stored.org_code:
        body["org_code"] = stored.org_code
    return body


async def _may_introspect(services: Services, caller: Application, claims: dict[str, Any]) -> bool:
    """§4: tell a token's state only to a client entitled to know it.

    That is the client the token was issued to (its reserved ``client_id``), or a client
    authorized for one of the token's audiences, a registered API (a resource server checking
    tokens sent to it). Any other client learns nothing: ``{"active": false}``.
    """
    if claims.get("client_id") == caller.client_id:
        return True
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list):
        return False
    async with services.db.connect() as conn:
        return await apis.is_authorized_for_any(conn, caller.client_id, [str(a) for a in audiences])


@router.post("/oauth2/introspect", summary="Token introspection (RFC 7662)")
async def introspect(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    params = await token_form_params(request)
    client = await authenticate_client(request, params, services.db)
    if client.is_public:
        raise OAuthError("invalid_client", "Introspection needs client credentials.", 401)
    token = require(params, "token")
    hint = params.get("token_type_hint")
    body: dict[str, Any] | None = None
    if hint != "refresh_token":
        verified = await verify_access_token_holder(services, token)
        if verified is not None and await _may_introspect(services, client, verified.claims):
            claims = verified.claims
            body = {"active": True, "token_type": "access_token"}
            body.update({k: claims[k] for k in _ACCESS_TOKEN_MEMBERS if k in claims})
    if body is None:
        body = await _introspect_refresh_token(services, token, client.client_id)
    return JSONResponse(body or {"active": False}, headers=NO_STORE)
