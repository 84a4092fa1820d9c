"""The refresh token grant (RFC 6749 §6) with rotation and reuse detection.

Every use rotates the token (OAuth 2.0 Security BCP §4.14.2); presenting a spent or revoked
token revokes its whole family, since either the client or an attacker holds a stolen copy. A
refresh always re-runs the workflows and issues new tokens (design §7, "Fresh on refresh"), and
the old token is spent only after they succeed, so a failing workflow leaves it usable.
"""

from __future__ import annotations

import logging
from typing import Any

from claimflow.errors import OAuthError
from claimflow.oidc.grants.base import TokenRequest
from claimflow.oidc.grants.user_tokens import (
    issue,
    new_refresh_token,
    store_refresh_token,
    token_context,
    token_response,
)
from claimflow.oidc.params import require
from claimflow.store import oidc_refresh_tokens
from claimflow.store._rows import utcnow
from claimflow.workflows.event import AuthOrigin

log = logging.getLogger("claimflow.oidc")


async def _revoke_family(request: TokenRequest, family_id: str) -> None:
    log.warning(
        "spent or revoked refresh token presented by client %s; revoking family %s",
        request.client.client_id,
        family_id,
    )
    async with request.services.db.transaction() as conn:
        await oidc_refresh_tokens.revoke_family(conn, family_id)


def _narrowed_scope(requested: str | None, granted: str) -> str:
    """§6: a refresh may ask for fewer scopes than were granted, never more."""
    if not requested:
        return granted
    granted_set = set(granted.split())
    wanted = requested.split()
    if not set(wanted) <= granted_set:
        raise OAuthError("invalid_scope", "The requested scope exceeds the granted scope.")
    return " ".join(s for s in granted.split() if s in set(wanted))


async def refresh_token_grant(request: TokenRequest) -> dict[str, Any]:
    raw_token = require(request.params, "refresh_token")
    services, client = request.services, request.client
    async with services.db.connect() as conn:
        stored = await oidc_refresh_tokens.find_refresh_token(conn, raw_token)
    if stored is None or stored.client_id != client.client_id:
        raise OAuthError("invalid_grant", "The refresh token is invalid.")
    if stored.used_on is not None or stored.revoked_on is not None:
        await _revoke_family(request, stored.family_id)
        raise OAuthError("invalid_grant", "The refresh token was already used or revoked.")
    if stored.expires_on <= utcnow():
        raise OAuthError("invalid_grant", "The refresh token has expired.")
    scope = _narrowed_scope(request.params.get("scope"), stored.scope)

    async with services.db.connect() as conn:
        ctx = await token_context(
            conn,
            services,
            client,
            user_id=stored.user_id,
            org_code=stored.org_code,
            scope=scope,
            audience=stored.audience,
            auth_time=stored.auth_time,
        )
    tokens = await issue(request, ctx, AuthOrigin.REFRESH_TOKEN_REQUEST, is_existing_session=True)

    successor = new_refresh_token()
    async with services.db.transaction() as conn:
        won = await oidc_refresh_tokens.spend_refresh_token(conn, raw_token)
        if won:
            await store_refresh_token(
                conn,
                request,
                successor,
                family_id=stored.family_id,
                ctx=ctx,
                granted_scope=stored.scope,
                tokens=tokens,
            )
    if not won:
        await _revoke_family(request, stored.family_id)
        raise OAuthError("invalid_grant", "The refresh token was already used or revoked.")
    return token_response(tokens, ctx, successor)
