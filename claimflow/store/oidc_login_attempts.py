"""Failed sign-in counters per account and per client address, shared by every worker.

A key (``account:<email>`` or ``address:<ip>``) counts failures inside a window of
``login_lockout_seconds``; reaching ``login_max_failures`` locks it for that long. Counting in
the store rather than in memory is what makes the throttle hold across workers (OWASP ASVS
V2.2.1: anti-automation on authentication).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import case, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow.store import tables as t
from claimflow.store._rows import IntegrityError, as_utc, utcnow


async def locked_until(conn: AsyncConnection, keys: Iterable[str]) -> datetime | None:
    """The latest lock still in force among ``keys``, or None when none is locked."""
    now = utcnow()
    rows = await conn.execute(
        select(t.login_attempts.c.locked_until).where(t.login_attempts.c.key.in_(list(keys)))
    )
    locks = [lock for row in rows if (lock := as_utc(row.locked_until)) and lock > now]
    return max(locks) if locks else None


async def record_failure(
    conn: AsyncConnection, key: str, *, max_failures: int, window_seconds: int
) -> None:
    """Count one failure for ``key``; lock it once the count reaches ``max_failures``."""
    now = utcnow()
    window_opened_after = now - timedelta(seconds=window_seconds)
    stale = t.login_attempts.c.window_start < window_opened_after
    result = await conn.execute(
        update(t.login_attempts)
        .where(t.login_attempts.c.key == key)
        .values(
            failures=case((stale, 1), else_=t.login_attempts.c.failures + 1),
            window_start=case((stale, now), else_=t.login_attempts.c.window_start),
        )
    )
    if result.rowcount == 0:
        try:
            async with conn.begin_nested():
                await conn.execute(
                    insert(t.login_attempts).values(
                        key=key, failures=1, window_start=now, locked_until=None
                    )
                )
        except IntegrityError:
            await conn.execute(
                update(t.login_attempts)
                .where(t.login_attempts.c.key == key)
                .values(failures=t.login_attempts.c.failures + 1)
            )
    await conn.execute(
        update(t.login_attempts)
        .where(t.login_attempts.c.key == key, t.login_attempts.c.failures >= max_failures)
        .values(locked_until=now + timedelta(seconds=window_seconds))
    )


async def clear(conn: AsyncConnection, key: str) -> None:
    await conn.execute(delete(t.login_attempts).where(t.login_attempts.c.key == key))
