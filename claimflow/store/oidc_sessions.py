"""Browser sessions at the provider: a random id in a cookie, its SHA-256 digest in the store.

Storing only the digest means a leaked database cannot be replayed as cookies; keeping sessions
in the store (not in process memory) lets any worker of a scale-out deployment recognise them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow.crypto import digest_secret
from claimflow.store import tables as t
from claimflow.store._rows import required_utc, utcnow


@dataclass(frozen=True, slots=True)
class Session:
    user_id: str
    auth_time: datetime
    expires_on: datetime


async def create_session(
    conn: AsyncConnection, session_id: str, user_id: str, ttl_seconds: int
) -> Session:
    now = utcnow()
    session = Session(user_id, now, now + timedelta(seconds=ttl_seconds))
    await conn.execute(
        insert(t.sessions).values(
            id_hash=digest_secret(session_id),
            user_id=user_id,
            auth_time=session.auth_time,
            expires_on=session.expires_on,
        )
    )
    return session


async def find_session(conn: AsyncConnection, session_id: str) -> Session | None:
    """The live session with this id, or None when unknown or expired."""
    row = (
        await conn.execute(
            select(t.sessions).where(t.sessions.c.id_hash == digest_secret(session_id))
        )
    ).first()
    if row is None:
        return None
    session = Session(row.user_id, required_utc(row.auth_time), required_utc(row.expires_on))
    return session if session.expires_on > utcnow() else None


async def end_session(conn: AsyncConnection, session_id: str) -> None:
    await conn.execute(delete(t.sessions).where(t.sessions.c.id_hash == digest_secret(session_id)))
