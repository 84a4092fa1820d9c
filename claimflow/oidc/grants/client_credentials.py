"""The client credentials grant for machine-to-machine applications (RFC 6749 §4.4).

The token follows RFC 9068 with Kinde's M2M extras (``gty``, ``scp``, ``scope``, ``v``). The
audience defaults to the Management API (``<issuer>/api``, RFC 8707 ``audience``); ``scope``
narrows the application's granted scopes, and asking for one it lacks is ``invalid_scope``.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from claimflow.domain import ApplicationType
from claimflow.errors import OAuthError
from claimflow.oidc.grants.base import TokenRequest
from claimflow.tokens.claims import m2m_access_token_claims


async def client_credentials_grant(request: TokenRequest) -> dict[str, Any]:
    client, services = request.client, request.services
    if client.type is not ApplicationType.M2M:
        raise OAuthError(
            "unauthorized_client", "Only machine-to-machine applications use client_credentials."
        )
    audience = request.params.get("audience") or services.management_audience
    if audience != services.management_audience:
        raise OAuthError("invalid_target", "Unknown audience.")
    granted = set(client.scopes)
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
    )
    token = await services.keys.sign(claims, typ="at+jwt")
    return {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": " ".join(scopes),
    }
