"""The authorization code grant at the token endpoint (RFC 6749 §4.1.3, RFC 7636 §4.6).

Checks happen in the order the RFC lists them, then the workflows run, and only then is the
code spent, in the same transaction that stores the refresh token: a workflow failure leaves the
code usable, and of two concurrent exchanges exactly one wins. A code presented after it was
spent revokes what it issued (§4.1.2: "SHOULD revoke (when possible) all tokens previously
issued based on that authorization code").
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from claimflow.errors import OAuthError
from claimflow.oidc import pkce
from claimflow.oidc.grants.base import TokenRequest
from claimflow.oidc.grants.user_tokens import (
    issue,
    new_refresh_token,
    store_refresh_token,
    token_context,
    token_response,
    wants_refresh_token,
)
from claimflow.oidc.params import require
from claimflow.store import oidc_codes, oidc_refresh_tokens, oidc_revocations
from claimflow.store._rows import utcnow
from claimflow.workflows.event import AuthOrigin

log = logging.getLogger("claimflow.oidc")


async def _revoke_issued(request: TokenRequest, code: oidc_codes.AuthorizationCode) -> None:
    log.warning(
        "authorization code replayed by client %s for user %s; revoking what it issued",
        code.client_id,
        code.user_id,
    )
    async with request.services.db.transaction() as conn:
        if code.refresh_family_id:
            await oidc_refresh_tokens.revoke_family(conn, code.refresh_family_id)
        if code.access_token_jti and code.access_token_expires_on:
            await oidc_revocations.revoke_jti(
                conn, code.access_token_jti, code.access_token_expires_on
            )


async def authorization_code_grant(request: TokenRequest) -> dict[str, Any]:
    raw_code = require(request.params, "code")
    redirect_uri = require(request.params, "redirect_uri")
    services, client = request.services, request.client
    async with services.db.connect() as conn:
        code = await oidc_codes.find_code(conn, raw_code)
    if code is None or code.client_id != client.client_id:
        raise OAuthError("invalid_grant", "The authorization code is invalid.")
    if code.used_on is not None:
        await _revoke_issued(request, code)
        raise OAuthError("invalid_grant", "The authorization code was already used.")
    if code.expires_on <= utcnow():
        raise OAuthError("invalid_grant", "The authorization code has expired.")
    if redirect_uri != code.redirect_uri:
        raise OAuthError("invalid_grant", "redirect_uri does not match the authorization request.")
    pkce.verify(request.params.get("code_verifier"), code.code_challenge)

    async with services.db.connect() as conn:
        ctx = await token_context(
            conn,
            services,
            client,
            user_id=code.user_id,
            org_code=code.org_code,
            scope=code.scope,
            audience=code.audience,
            auth_time=code.auth_time,
            nonce=code.nonce,
        )
    tokens = await issue(
        request,
        ctx,
        AuthOrigin.AUTHORIZATION_REQUEST,
        is_existing_session=code.is_existing_session,
    )

    family_id = secrets.token_hex(16)
    refresh_token = new_refresh_token() if wants_refresh_token(ctx) else None
    async with services.db.transaction() as conn:
        won = await oidc_codes.spend_code(
            conn,
            raw_code,
            refresh_family_id=family_id,
            access_token_jti=tokens.access_token_jti,
            access_token_expires_on=tokens.access_token_expires_on,
        )
        if won and refresh_token is not None:
            await store_refresh_token(
                conn,
                request,
                refresh_token,
                family_id=family_id,
                ctx=ctx,
                granted_scope=code.scope,
                tokens=tokens,
            )
    if not won:
        async with services.db.connect() as conn:
            spent = await oidc_codes.find_code(conn, raw_code)
        if spent is not None:
            await _revoke_issued(request, spent)
        raise OAuthError("invalid_grant", "The authorization code was already used.")
    return token_response(tokens, ctx, refresh_token)
