"""The refresh token grant (RFC 6749 §6) with rotation and reuse detection.

Every use rotates the token (OAuth 2.0 Security BCP §4.14.2); presenting a spent or revoked
token revokes its whole family, since either the client or an attacker holds a stolen copy. A
refresh always re-runs the workflows and issues new tokens (design §7, "Fresh on refresh"), and
the old token is spent only after they succeed, so a failing workflow leaves it usable.

**Reuse grace** (RFC 9700 §4.14.2 allows it; Ory Hydra and Okta have one): a response that is
lost after the token was rotated (a worker killed, a connection reset) makes the client retry
with the token it still holds. Within ``refresh_reuse_grace_seconds`` of the spend, that retry
by the same client gets the *same* successor refresh token (kept sealed with the deployment's
``SecretBox`` on the spent row, since tokens are stored hashed) with freshly issued access and
ID tokens, once; the access token of the lost response is revoked, as the retry says it never
arrived. A second retry, a retry after the successor was itself used (or revoked, also while
the retry was issuing: its access token is recorded on the successor only if still unused), or
any reuse after the grace revokes the family as before.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from claimflow.errors import OAuthError
from claimflow.oidc.grants.base import TokenRequest
from claimflow.oidc.grants.user_tokens import (
    issue,
    new_refresh_token,
    refresh_context,
    successor_token,
    token_context,
    token_response,
)
from claimflow.oidc.params import require
from claimflow.store import oidc_refresh_tokens, refresh_grant_reads
from claimflow.store._rows import utcnow
from claimflow.store.loop_reads import LoopReadUnavailable
from claimflow.store.oidc_refresh_tokens import RefreshToken, Successor
from claimflow.store.oidc_revocations import revoke_jti
from claimflow.store.refresh_grant_reads import RefreshGrantRead
from claimflow.tokens.claims import TokenContext
from claimflow.tokens.issue import IssuedTokens
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


async def _reused(request: TokenRequest, stored: RefreshToken) -> OAuthError:
    await _revoke_family(request, stored.family_id)
    return OAuthError("invalid_grant", "The refresh token was already used or revoked.")


async def _fresh_tokens(
    request: TokenRequest, stored: RefreshToken, read: RefreshGrantRead | None = None
) -> tuple[TokenContext, IssuedTokens]:
    services = request.services
    scope = _narrowed_scope(request.params.get("scope"), stored.scope)
    if read is not None:
        ctx = await refresh_context(services, request.client, read, scope=scope)
    else:
        async with services.db.connect() as conn:
            ctx = await token_context(
                conn,
                services,
                request.client,
                user_id=stored.user_id,
                org_code=stored.org_code,
                scope=scope,
                audience=stored.audience,
                auth_time=stored.auth_time,
            )
    tokens = await issue(request, ctx, AuthOrigin.REFRESH_TOKEN_REQUEST, is_existing_session=True)
    return ctx, tokens


async def _presented(
    request: TokenRequest, raw_token: str
) -> tuple[RefreshToken | None, RefreshGrantRead | None]:
    """The presented token with its user, memberships, flags and billing version read together
    (``store.refresh_grant_reads``): in one statement on PostgreSQL, in one snapshot on the
    event loop on a SQLite file. Elsewhere, or when that read would wait for a lock, the token
    alone; ``token_context`` reads the rest."""
    db = request.services.db
    if db.direct is not None:
        read = await refresh_grant_reads.read_refresh_grant(db.direct, raw_token)
        return (None, None) if read is None else (read.token, read)
    if db.loop_reader is not None:
        try:
            read = refresh_grant_reads.read_refresh_grant_on_loop(db.loop_reader, raw_token)
        except LoopReadUnavailable:
            pass
        else:
            return (None, None) if read is None else (read.token, read)
    async with db.connect() as conn:
        return await oidc_refresh_tokens.find_refresh_token(conn, raw_token), None


async def _rotate(
    request: TokenRequest, raw_token: str, *, family_id: str, successor: Successor
) -> bool:
    """Spend the presented token and store its successor: one statement on PostgreSQL (on the
    driver directly, in autocommit), the spend then the insert in a transaction on SQLite (a
    file's in one thread hop, ``Database.sqlite_transaction``)."""
    services = request.services
    sealed = (
        services.box.encrypt(successor.token.encode())
        if services.settings.refresh_reuse_grace_seconds > 0
        else None
    )
    if services.db.direct is not None:
        return await oidc_refresh_tokens.rotate_refresh_token_direct(
            services.db.direct,
            raw_token,
            family_id=family_id,
            successor=successor,
            successor_sealed=sealed,
        )
    if services.db.writer is not None:
        return await services.db.sqlite_transaction(
            oidc_refresh_tokens.rotation_on_sqlite(
                raw_token, family_id=family_id, successor=successor, successor_sealed=sealed
            )
        )
    async with services.db.single_statement() as conn:
        return await oidc_refresh_tokens.rotate_refresh_token(
            conn, raw_token, family_id=family_id, successor=successor, successor_sealed=sealed
        )


async def _retry_within_grace(
    request: TokenRequest, raw_token: str, stored: RefreshToken
) -> dict[str, Any]:
    """The same successor for an identical retry within the grace, once; else reuse."""
    services = request.services
    grace = services.settings.refresh_reuse_grace_seconds
    if grace <= 0 or stored.revoked_on is not None:
        raise await _reused(request, stored)
    async with services.db.transaction() as conn:
        sealed = await oidc_refresh_tokens.claim_successor(
            conn, raw_token, utcnow() - timedelta(seconds=grace)
        )
    if sealed is None:
        raise await _reused(request, stored)
    successor = services.box.decrypt(sealed).decode()
    async with services.db.connect() as conn:
        current = await oidc_refresh_tokens.find_refresh_token(conn, successor)
    if current is None or current.used_on is not None or current.revoked_on is not None:
        raise await _reused(request, stored)
    ctx, tokens = await _fresh_tokens(request, stored)
    async with services.db.transaction() as conn:
        lost = await oidc_refresh_tokens.replace_access_token(
            conn,
            successor,
            access_token_jti=tokens.access_token_jti,
            access_token_expires_on=tokens.access_token_expires_on,
        )
        if lost is not None:
            lost_jti, lost_expires_on = lost
            if lost_jti is not None and lost_expires_on is not None and lost_expires_on > utcnow():
                await revoke_jti(conn, lost_jti, lost_expires_on)
    if lost is None:
        # The successor was used (or revoked) while this retry issued: reuse after all.
        raise await _reused(request, stored)
    log.info(
        "refresh token retried by client %s within the %g s grace; same successor handed out",
        request.client.client_id,
        grace,
    )
    return token_response(tokens, ctx, successor)


async def refresh_token_grant(request: TokenRequest) -> dict[str, Any]:
    raw_token = require(request.params, "refresh_token")
    services, client = request.services, request.client
    stored, read = await _presented(request, raw_token)
    if stored is None or stored.client_id != client.client_id:
        raise OAuthError("invalid_grant", "The refresh token is invalid.")
    if stored.used_on is not None or stored.revoked_on is not None:
        return await _retry_within_grace(request, raw_token, stored)
    if stored.expires_on <= utcnow():
        raise OAuthError("invalid_grant", "The refresh token has expired.")
    ctx, tokens = await _fresh_tokens(request, stored, read)

    successor = new_refresh_token()
    won = await _rotate(
        request,
        raw_token,
        family_id=stored.family_id,
        successor=successor_token(
            request, successor, ctx=ctx, granted_scope=stored.scope, tokens=tokens
        ),
    )
    if not won:
        # A concurrent request spent it first: this one is a retry of that one.
        async with services.db.connect() as conn:
            spent = await oidc_refresh_tokens.find_refresh_token(conn, raw_token)
        return await _retry_within_grace(request, raw_token, spent or stored)
    return token_response(tokens, ctx, successor)
