"""What the authorization-code and refresh-token grants share: who the tokens are for, how
they are issued, the refresh token they store, and the token response (RFC 6749 §5.1, OIDC Core
§3.1.3.3)."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow.domain import Application, Membership, User
from claimflow.domain.feature_flags import feature_flags_claim
from claimflow.errors import OAuthError, TokenTooLarge, WorkflowError
from claimflow.oidc.errors import from_issuance_error
from claimflow.oidc.grants.base import TokenRequest
from claimflow.oidc.grants.feature_flags_claim import feature_flags_claim_of
from claimflow.oidc.resource_indicators import authorize_user_audiences
from claimflow.oidc.workflow_events import tokens_generation_event
from claimflow.services import Services
from claimflow.store import oidc_refresh_tokens, organizations
from claimflow.store.refresh_grant_reads import RefreshGrantRead
from claimflow.tokens.claims import TokenContext
from claimflow.tokens.issue import IssuedTokens, TokenSizeBudget, issue_user_tokens
from claimflow.workflows.event import AuthOrigin

OFFLINE_SCOPES = frozenset({"offline", "offline_access"})
"""Kinde's ``offline`` and OIDC Core §11's ``offline_access`` both ask for a refresh token."""


async def token_context(
    conn: AsyncConnection,
    services: Services,
    client: Application,
    *,
    user_id: str,
    org_code: str | None,
    scope: str,
    audience: tuple[str, ...],
    auth_time: datetime,
    nonce: str | None = None,
) -> TokenContext:
    """The context of a user token; ``invalid_grant`` when the user or membership is gone.

    The audience is checked again here, not only at the authorization endpoint: an API may be
    deleted, or the application deauthorized, between the code and its exchange or between two
    refreshes, and the token must then be refused (``invalid_target``, RFC 8707 §2).
    """
    await authorize_user_audiences(conn, client, audience, services.management_audience)
    user, memberships = await organizations.token_subject(conn, user_id)
    user, membership = _signed_in(user, memberships, org_code)
    return _context(
        services,
        client,
        user,
        memberships,
        membership,
        scope=scope,
        audience=audience,
        auth_time=auth_time,
        nonce=nonce,
        feature_flags=await feature_flags_claim_of(conn, user_id=user_id, org_code=org_code),
    )


async def refresh_context(
    services: Services, client: Application, read: RefreshGrantRead, *, scope: str
) -> TokenContext:
    """``token_context`` of a refresh whose user, memberships and flags came with its token in
    one statement (``store.refresh_grant_reads``, PostgreSQL): the same checks, in the same
    order, on the same values; a connection only for an audience that must be looked up."""
    stored = read.token
    if any(a != client.client_id for a in stored.audience):
        async with services.db.connect() as conn:
            await authorize_user_audiences(
                conn, client, stored.audience, services.management_audience
            )
    user, membership = _signed_in(read.user, read.memberships, stored.org_code)
    return _context(
        services,
        client,
        user,
        read.memberships,
        membership,
        scope=scope,
        audience=stored.audience,
        auth_time=stored.auth_time,
        nonce=None,
        feature_flags=feature_flags_claim(read.flags),
    )


def _signed_in(
    user: User | None, memberships: list[Membership], org_code: str | None
) -> tuple[User, Membership | None]:
    """The user and the membership the token signs in with (None for a personal sign-in);
    ``invalid_grant`` when the user is gone or suspended, or no longer a member of ``org_code``."""
    if user is None or user.is_suspended:
        raise OAuthError("invalid_grant", "The user can no longer sign in.")
    if org_code is None:
        return user, None
    membership = next((m for m in memberships if m.org_code == org_code), None)
    if membership is None:
        raise OAuthError("invalid_grant", "The user is no longer a member of the organization.")
    return user, membership


def _context(
    services: Services,
    client: Application,
    user: User,
    memberships: list[Membership],
    membership: Membership | None,
    *,
    scope: str,
    audience: tuple[str, ...],
    auth_time: datetime,
    nonce: str | None,
    feature_flags: dict[str, Any],
) -> TokenContext:
    return TokenContext(
        issuer=services.issuer,
        user=user,
        client_id=client.client_id,
        scopes=tuple(scope.split()),
        audience=audience or (client.client_id,),
        auth_time=auth_time,
        membership=membership,
        org_codes=tuple(m.org_code for m in memberships),
        nonce=nonce,
        feature_flags=feature_flags,
    )


async def store_refresh_token(
    conn: AsyncConnection,
    request: TokenRequest,
    refresh_token: str,
    *,
    family_id: str,
    ctx: TokenContext,
    granted_scope: str,
    tokens: IssuedTokens,
) -> None:
    """Store a refresh token for ``ctx`` that remembers the access token issued with it.

    ``granted_scope`` is the scope of the original grant, not a narrowed refresh scope: RFC
    6749 §6 keeps a rotated refresh token's scope identical to the one it replaces.
    """
    settings = request.services.settings
    await oidc_refresh_tokens.create_refresh_token(
        conn,
        refresh_token,
        family_id=family_id,
        client_id=request.client.client_id,
        user_id=ctx.user.id,
        org_code=ctx.org_code,
        scope=granted_scope,
        audience=ctx.audience,
        auth_time=ctx.auth_time,
        ttl_seconds=request.client.refresh_token_ttl_seconds or settings.refresh_token_ttl_seconds,
        access_token_jti=tokens.access_token_jti,
        access_token_expires_on=tokens.access_token_expires_on,
    )


def successor_token(
    request: TokenRequest,
    refresh_token: str,
    *,
    ctx: TokenContext,
    granted_scope: str,
    tokens: IssuedTokens,
) -> oidc_refresh_tokens.Successor:
    """The row ``store_refresh_token`` would store, for a rotation that stores it with the spend."""
    settings = request.services.settings
    return oidc_refresh_tokens.Successor(
        token=refresh_token,
        client_id=request.client.client_id,
        user_id=ctx.user.id,
        org_code=ctx.org_code,
        scope=granted_scope,
        audience=ctx.audience,
        auth_time=ctx.auth_time,
        ttl_seconds=request.client.refresh_token_ttl_seconds or settings.refresh_token_ttl_seconds,
        access_token_jti=tokens.access_token_jti,
        access_token_expires_on=tokens.access_token_expires_on,
    )


async def issue(
    request: TokenRequest, ctx: TokenContext, origin: AuthOrigin, *, is_existing_session: bool
) -> IssuedTokens:
    """Run the workflows, then sign; workflow and budget failures become OAuth errors."""
    services, client = request.services, request.client
    settings = services.settings
    # Workflows may take their time limit: hold no pooled connection meanwhile.
    await services.db.release()
    event = tokens_generation_event(
        issuer=ctx.issuer,
        user_id=ctx.user.id,
        client_id=ctx.client_id,
        org_code=ctx.org_code,
        origin=origin,
        is_existing_session=is_existing_session,
        ip=request.ip,
        user_agent=request.user_agent,
        audience=ctx.audience,
    )
    try:
        custom = await services.workflows.run_tokens_generation(event)
        return await issue_user_tokens(
            services.keys,
            ctx,
            custom,
            budget=TokenSizeBudget(settings.access_token_max_bytes, settings.id_token_max_bytes),
            access_ttl=client.access_token_ttl_seconds or settings.access_token_ttl_seconds,
            id_ttl=client.id_token_ttl_seconds or settings.id_token_ttl_seconds,
            with_id_token="openid" in ctx.scopes,
        )
    except (WorkflowError, TokenTooLarge) as exc:
        raise from_issuance_error(exc) from exc


def wants_refresh_token(ctx: TokenContext) -> bool:
    return bool(OFFLINE_SCOPES.intersection(ctx.scopes))


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def token_response(
    tokens: IssuedTokens, ctx: TokenContext, refresh_token: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "access_token": tokens.access_token,
        "token_type": "Bearer",
        "expires_in": tokens.expires_in,
        "scope": " ".join(ctx.scopes),
    }
    if tokens.id_token is not None:
        body["id_token"] = tokens.id_token
    if refresh_token is not None:
        body["refresh_token"] = refresh_token
    return body
