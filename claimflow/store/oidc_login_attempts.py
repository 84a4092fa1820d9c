"""Sign-in attempt counters shared by every worker: one password check is one counted attempt.

Each key (an account, a client address, or the pair of both) counts the password checks made in
a fixed window of ``window_seconds``. An attempt is counted *before* its password is checked, by
a single conditional insert-or-increment (``INSERT … ON CONFLICT DO UPDATE … WHERE … RETURNING``,
the same statement on SQLite and PostgreSQL): the row lock the statement takes serialises
concurrent attempts, so however many requests race, no more than ``limit`` of them are granted a
check per window. Reading a lock first and writing it after the check (what this module replaced)
let forty parallel guesses through.

A key whose window is full and whose last granted attempt failed is locked; each lock lasts
twice as long as the one before (``lockout_seconds``, doubling, capped at
``max_lockout_seconds``). A key remembers its locks for as long as its last lock lasted after it
ended; then it starts over. ``expires_on`` says when a row means nothing any more, so housekeeping
deletes it with one comparison. OWASP ASVS V2.2.1 (anti-automation), NIST SP 800-63B §5.2.2
(rate limiting: slow the attacker, not the subscriber).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, delete, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow.store import tables as t
from claimflow.store._rows import as_utc, dialect_insert, required_utc, utcnow

__all__ = [
    "AttemptLimit",
    "ThrottlePolicy",
    "attempts_counted",
    "count_attempt",
    "forget",
    "lockout_duration",
    "record_failure",
    "refund",
]


@dataclass(frozen=True, slots=True)
class AttemptLimit:
    """At most ``limit`` password checks per window for ``key``."""

    key: str
    limit: int


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """The counting window and the lock back-off, from the ``login_*`` settings."""

    window_seconds: int
    lockout_seconds: int
    max_lockout_seconds: int


def lockout_duration(policy: ThrottlePolicy, lockouts: int) -> timedelta:
    """The ``lockouts``-th lock (1-based) lasts ``lockout_seconds * 2**(lockouts - 1)``, capped."""
    doublings = min(max(lockouts - 1, 0), 32)
    seconds = min(policy.lockout_seconds * 2**doublings, policy.max_lockout_seconds)
    return timedelta(seconds=max(seconds, policy.lockout_seconds))


async def _count_one(
    conn: AsyncConnection, limit: AttemptLimit, policy: ThrottlePolicy, now: datetime
) -> bool:
    """Count one attempt for ``limit.key`` if its window has room and no lock is in force."""
    c = t.login_attempts.c
    window_end = now + timedelta(seconds=policy.window_seconds)
    stale = c.window_start <= now - timedelta(seconds=policy.window_seconds)
    insert = dialect_insert(conn, t.login_attempts).values(
        key=limit.key,
        attempts=1,
        window_start=now,
        locked_until=None,
        lockouts=0,
        expires_on=window_end,
    )
    upsert = insert.on_conflict_do_update(
        index_elements=[c.key],
        set_={
            "attempts": case((stale, 1), else_=c.attempts + 1),
            "window_start": case((stale, literal(now)), else_=c.window_start),
            "lockouts": case((c.expires_on <= now, 0), else_=c.lockouts),
            "expires_on": case(
                (and_(stale, c.expires_on < window_end), literal(window_end)),
                else_=c.expires_on,
            ),
        },
        where=and_(
            or_(c.locked_until.is_(None), c.locked_until <= now),
            or_(stale, c.attempts < limit.limit),
        ),
    ).returning(c.attempts)
    return (await conn.execute(upsert)).first() is not None


async def _reopens_at(
    conn: AsyncConnection, key: str, policy: ThrottlePolicy, now: datetime
) -> datetime:
    c = t.login_attempts.c
    row = (await conn.execute(select(c.window_start, c.locked_until).where(c.key == key))).one()
    window_closes = required_utc(row.window_start) + timedelta(seconds=policy.window_seconds)
    lock = as_utc(row.locked_until)
    return max(window_closes, lock or now)


async def count_attempt(
    conn: AsyncConnection,
    limits: Sequence[AttemptLimit],
    policy: ThrottlePolicy,
    *,
    now: datetime | None = None,
) -> datetime | None:
    """Count one attempt on every key, or on none: None when the password may be checked.

    When a key refuses, the attempts already counted on the keys before it are given back and
    the time that key opens again is returned (for ``Retry-After``). Keys are always taken in
    the caller's order, so two attempts never wait on each other's rows in a cycle.
    """
    now = now or utcnow()
    counted: list[AttemptLimit] = []
    for limit in limits:
        if not await _count_one(conn, limit, policy, now):
            for earlier in counted:
                await refund(conn, earlier.key)
            return await _reopens_at(conn, limit.key, policy, now)
        counted.append(limit)
    return None


async def record_failure(
    conn: AsyncConnection,
    limits: Sequence[AttemptLimit],
    policy: ThrottlePolicy,
    *,
    now: datetime | None = None,
) -> None:
    """After a failed check: lock each key whose window is full, for longer than last time."""
    now = now or utcnow()
    c = t.login_attempts.c
    for limit in limits:
        locked = (
            await conn.execute(
                update(t.login_attempts)
                .where(
                    c.key == limit.key,
                    c.attempts >= limit.limit,
                    or_(c.locked_until.is_(None), c.locked_until <= now),
                )
                .values(lockouts=c.lockouts + 1)
                .returning(c.lockouts)
            )
        ).first()
        if locked is None:
            continue
        duration = lockout_duration(policy, locked.lockouts)
        await conn.execute(
            update(t.login_attempts)
            .where(c.key == limit.key)
            .values(locked_until=now + duration, expires_on=now + 2 * duration)
        )


async def refund(conn: AsyncConnection, key: str) -> None:
    """Give back one counted attempt (it succeeded, or another key refused it)."""
    c = t.login_attempts.c
    await conn.execute(
        update(t.login_attempts).where(c.key == key, c.attempts > 0).values(attempts=c.attempts - 1)
    )


async def forget(conn: AsyncConnection, key: str) -> None:
    """Drop a key's count and lock history (the pair's owner proved the password)."""
    await conn.execute(delete(t.login_attempts).where(t.login_attempts.c.key == key))


async def attempts_counted(conn: AsyncConnection, key: str) -> int:
    """Attempts counted for ``key`` in its current window (0 for an unknown key)."""
    c = t.login_attempts.c
    value = (await conn.execute(select(c.attempts).where(c.key == key))).scalar_one_or_none()
    return int(value or 0)
