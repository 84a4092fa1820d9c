"""What a Management API token may do *now*: its application's current scopes, and revocation.

An M2M access token is a self-contained JWT carrying the scopes its application held when it was
issued. Narrowing an application's scopes, or deleting the application, must bind the tokens
already out, not only the next ones (docs/decisions.md, "Scopes shrink"). So every Management API
request reads the application's current grants and whether the token's ``jti`` was revoked
(RFC 7009 §2), in one round trip: the per-request cost stays that of the revocation check alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow.store import tables as t


@dataclass(frozen=True, slots=True)
class CurrentGrant:
    """An application's Management API scopes as stored now, and whether the token was revoked."""

    scopes: frozenset[str]
    revoked: bool


async def current_grant(conn: AsyncConnection, client_id: str, jti: str) -> CurrentGrant | None:
    """The grant of ``client_id`` for the token ``jti``; ``None`` when the application is gone."""
    revoked = select(t.revoked_tokens.c.jti).where(t.revoked_tokens.c.jti == jti).exists()
    row = (
        await conn.execute(
            select(t.applications.c.scopes, revoked.label("revoked")).where(
                t.applications.c.client_id == client_id
            )
        )
    ).first()
    if row is None:
        return None
    return CurrentGrant(scopes=frozenset(map(str, row.scopes or ())), revoked=bool(row.revoked))
