"""Deleting the provider's short-lived rows once they can no longer matter.

Authorization codes, browser sessions, sign-in throttle windows, revoked ``jti``s and refresh
tokens all carry an expiry; past it a row answers nothing a request could ask, so it is only
weight on every lookup. ``claimflow prune`` and the app's hourly housekeeping task call
``prune_expired``; each deletion is a single set-based ``DELETE`` so it runs the same on SQLite
and PostgreSQL and is safe to run from several workers at once.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from sqlalchemy import Delete, delete, or_
from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow.store import tables as t
from claimflow.store._rows import utcnow
from claimflow.store.oidc_revocations import purge_expired as purge_revoked_jtis


@dataclass(frozen=True, slots=True)
class PrunedRows:
    """How many rows of each kind one pass deleted."""

    authorization_codes: int
    sessions: int
    login_attempts: int
    revoked_tokens: int
    refresh_tokens: int

    @property
    def total(self) -> int:
        return sum(getattr(self, f.name) for f in fields(self))


async def _deleted(conn: AsyncConnection, statement: Delete) -> int:
    result = await conn.execute(statement)
    return int(result.rowcount or 0)


async def prune_expired(conn: AsyncConnection) -> PrunedRows:
    """Delete every expired row.

    A spent authorization code or refresh token is kept until the access token it issued has
    expired too, so a replay inside that time still revokes that access token (RFC 6749
    §4.1.2; a refresh token's lifetime may be set shorter than an access token's). A throttle
    row goes at its ``expires_on``: its window has closed, and its last lock ended long enough
    ago that the lock back-off starts over (``store.oidc_login_attempts``).
    """
    now = utcnow()
    codes = t.authorization_codes.c
    refresh_tokens = t.refresh_tokens.c
    return PrunedRows(
        authorization_codes=await _deleted(
            conn,
            delete(t.authorization_codes).where(
                codes.expires_on < now,
                or_(
                    codes.access_token_expires_on.is_(None),
                    codes.access_token_expires_on < now,
                ),
            ),
        ),
        sessions=await _deleted(conn, delete(t.sessions).where(t.sessions.c.expires_on < now)),
        login_attempts=await _deleted(
            conn, delete(t.login_attempts).where(t.login_attempts.c.expires_on < now)
        ),
        revoked_tokens=await purge_revoked_jtis(conn),
        refresh_tokens=await _deleted(
            conn,
            delete(t.refresh_tokens).where(
                refresh_tokens.expires_on < now,
                or_(
                    refresh_tokens.access_token_expires_on.is_(None),
                    refresh_tokens.access_token_expires_on < now,
                ),
            ),
        ),
    )
