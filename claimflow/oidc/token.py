"""The token endpoint ``POST /oauth2/token`` (RFC 6749 §3.2): authenticate, then dispatch."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from claimflow.errors import OAuthError
from claimflow.oidc.client_auth import authenticate_client
from claimflow.oidc.errors import NO_STORE
from claimflow.oidc.grants import GRANT_HANDLERS, TokenRequest
from claimflow.oidc.params import form_params, require
from claimflow.services import Services
from claimflow.store import billing_versions

router = APIRouter()


@router.post("/oauth2/token", tags=["oauth2"], summary="Token endpoint (RFC 6749 §3.2)")
async def token_endpoint(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    params = await form_params(request)
    grant_type = require(params, "grant_type")
    handler = GRANT_HANDLERS.get(grant_type)
    if handler is None:
        raise OAuthError("unsupported_grant_type", f"Grant type '{grant_type}' is not supported.")
    # One pooled connection for the request's reads and its write (``Database.request_scope``).
    with billing_versions.request_reads():
        async with services.db.request_scope():
            client = await authenticate_client(request, params, services.db)
            body = await handler(
                TokenRequest(client=client, params=params, services=services, http=request)
            )
    return JSONResponse(body, headers=NO_STORE)
