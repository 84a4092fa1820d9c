"""Token revocation (RFC 7009).

A refresh token revokes its whole family and the access tokens it issued (§2.1: revoking a
refresh token SHOULD also invalidate the access tokens of the same grant); an access token is
added to the revoked ``jti`` list. A client may revoke only its own tokens; an unknown or
foreign token still gets 200 (§2.2), so the endpoint does not confirm what exists.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from claimflow.oidc.access_tokens import verify_access_token
from claimflow.oidc.client_auth import authenticate_client
from claimflow.oidc.errors import NO_STORE
from claimflow.oidc.params import require, token_form_params
from claimflow.services import Services
from claimflow.store import oidc_refresh_tokens, oidc_revocations

router = APIRouter(tags=["oauth2"])


@router.post("/oauth2/revoke", summary="Token revocation (RFC 7009)")
async def revoke(request: Request) -> Response:
    services: Services = request.app.state.services
    params = await token_form_params(request)
    client = await authenticate_client(request, params, services.db)
    token = require(params, "token")
    async with services.db.connect() as conn:
        stored = await oidc_refresh_tokens.find_refresh_token(conn, token)
    if stored is not None:
        if stored.client_id == client.client_id:
            async with services.db.transaction() as conn:
                await oidc_refresh_tokens.revoke_family(conn, stored.family_id)
        return Response(status_code=200, headers=NO_STORE)
    claims = await verify_access_token(services, token)
    if claims is not None and claims.get("client_id") == client.client_id:
        expires_on = datetime.fromtimestamp(int(claims["exp"]), UTC)
        async with services.db.transaction() as conn:
            await oidc_revocations.revoke_jti(conn, str(claims["jti"]), expires_on)
    return Response(status_code=200, headers=NO_STORE)
