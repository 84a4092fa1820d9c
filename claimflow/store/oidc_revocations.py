"""Revoked access tokens, by ``jti`` (RFC 7009 §2; honoured by introspection and userinfo).

An access token is a self-contained JWT, so revoking one means remembering its ``jti`` until it
would have expired anyway; after that the row is useless and may be purged.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow.store import tables as t
from claimflow.store._rows import IntegrityError, utcnow


async def revoke_jti(conn: AsyncConnection, jti: str, expires_on: datetime) -> None:
    """Remember ``jti`` as revoked; revoking it again, even concurrently, is a no-op.

    The insert runs in a savepoint: when a concurrent request (two replays of one code, two
    revocations of one token) inserted the same ``jti`` first, its primary key refuses ours
    and only the savepoint is rolled back, not the caller's transaction.
    """
    if await is_revoked(conn, jti):
        return
    with contextlib.suppress(IntegrityError):
        async with conn.begin_nested():
            await conn.execute(insert(t.revoked_tokens).values(jti=jti, expires_on=expires_on))


async def is_revoked(conn: AsyncConnection, jti: str) -> bool:
    row = (
        await conn.execute(select(t.revoked_tokens.c.jti).where(t.revoked_tokens.c.jti == jti))
    ).first()
    return row is not None


async def purge_expired(conn: AsyncConnection) -> int:
    result = await conn.execute(
        delete(t.revoked_tokens).where(t.revoked_tokens.c.expires_on < utcnow())
    )
    return int(result.rowcount or 0)
