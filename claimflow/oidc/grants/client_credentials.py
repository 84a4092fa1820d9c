"""The client credentials grant for machine-to-machine applications (RFC 6749 §4.4).

The token follows RFC 9068 with Kinde's M2M extras (``gty``, ``scp``, ``scope``, ``v``). The
audience (RFC 8707, Kinde's ``audience``) defaults to the Management API (``<issuer>/api``),
whose scopes are the application's ``scopes``; any other audience must be a registered API the
application is authorized for, and the token then carries the API scopes granted to it there
(``invalid_target`` otherwise). One audience per token, so one API's scopes never reach another.
``scope`` narrows the granted scopes, and asking for one not granted is ``invalid_scope``.
An organization's application gets ``org_code``; ``m2m:token_generation`` workflows may add
claims (``claimflow.oidc.m2m_workflows``).
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from claimflow.domain import ApplicationType
from claimflow.errors import OAuthError
from claimflow.oidc.grants.base import TokenRequest
from claimflow.oidc.m2m_workflows import sign_m2m_token
from claimflow.oidc.resource_indicators import authorize_m2m_audience, requested_audiences
from claimflow.tokens.claims import m2m_access_token_claims


async def client_credentials_grant(request: TokenRequest) -> dict[str, Any]:
    client, services = request.client, request.services
    if client.type is not ApplicationType.M2M:
        raise OAuthError(
            "unauthorized_client", "Only machine-to-machine applications use client_credentials."
        )
    audiences = requested_audiences(request.params.get("audience"))
    if len(audiences) > 1:
        raise OAuthError("invalid_target", "Ask for one audience per machine-to-machine token.")
    audience = audiences[0] if audiences else services.management_audience
    if audience == services.management_audience:
        granted = set(client.scopes)
    else:
        async with services.db.connect() as conn:
            authorization = await authorize_m2m_audience(conn, client, audience)
        granted = set(authorization.scope_keys)
    requested = request.params.get("scope", "").split()
    if requested:
        missing = sorted(set(requested) - granted)
        if missing:
            raise OAuthError("invalid_scope", f"Scope not granted: {' '.join(missing)}.")
        scopes = sorted(set(requested))
    else:
        scopes = sorted(granted)
    ttl = client.access_token_ttl_seconds or services.settings.m2m_token_ttl_seconds
    claims = m2m_access_token_claims(
        issuer=services.issuer,
        client_id=client.client_id,
        audience=audience,
        scopes=scopes,
        jti=secrets.token_hex(16),
        now=int(time.time()),
        ttl=ttl,
        org_code=client.org_code,
    )
    # The m2m:token_generation workflows may take their time limit: hold no pooled connection.
    await services.db.release()
    token = await sign_m2m_token(request, claims, audience, scopes)
    return {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": " ".join(scopes),
    }
