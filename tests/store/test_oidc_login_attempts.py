"""``store.oidc_login_attempts`` on SQLite and PostgreSQL: counted before the check, atomically;
locks that double; a refusal counts nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest

from claimflow.store import Database
from claimflow.store._rows import utcnow
from claimflow.store.oidc_login_attempts import (
    AttemptLimit,
    ThrottlePolicy,
    attempts_counted,
    count_attempt,
    record_failure,
)

POLICY = ThrottlePolicy(window_seconds=60, lockout_seconds=60, max_lockout_seconds=200)
PAIR = AttemptLimit("pair:192.0.2.1 alice@example.com", 3)


@pytest.fixture
async def db(any_db_url: str) -> AsyncIterator[Database]:
    database = Database(any_db_url)
    yield database
    await database.dispose()


async def fail_until_locked(db: Database, limit: AttemptLimit, now: datetime) -> datetime:
    """Spend every attempt of a window on wrong passwords; the time the lock ends."""
    for _ in range(limit.limit):
        async with db.transaction() as conn:
            assert await count_attempt(conn, [limit], POLICY, now=now) is None
            await record_failure(conn, [limit], POLICY, now=now)
    async with db.transaction() as conn:
        reopens_at = await count_attempt(conn, [limit], POLICY, now=now)
    assert reopens_at is not None
    return reopens_at


async def test_concurrent_attempts_beyond_the_limit_are_refused(db: Database) -> None:
    async def one_attempt() -> bool:
        async with db.transaction() as conn:
            return await count_attempt(conn, [PAIR], POLICY) is None

    async with asyncio.TaskGroup() as group:
        attempts = [group.create_task(one_attempt()) for _ in range(20)]
    assert sum(attempt.result() for attempt in attempts) == PAIR.limit
    async with db.connect() as conn:
        assert await attempts_counted(conn, PAIR.key) == PAIR.limit


async def test_each_lock_lasts_twice_as_long_as_the_one_before(db: Database) -> None:
    now = utcnow()
    durations = []
    for _ in range(4):
        reopens_at = await fail_until_locked(db, PAIR, now)
        durations.append(round((reopens_at - now).total_seconds()))
        now = reopens_at + timedelta(seconds=1)
    assert durations == [60, 120, 200, 200]  # doubling, capped at max_lockout_seconds


async def test_a_key_forgets_its_locks_after_a_quiet_spell(db: Database) -> None:
    now = utcnow()
    first = await fail_until_locked(db, PAIR, now)
    # Quiet for as long as the lock lasted, after it ended: the next lock is a first one again.
    later = first + (first - now) + timedelta(seconds=1)
    assert await fail_until_locked(db, PAIR, later) - later == timedelta(seconds=60)


async def test_a_refused_attempt_counts_on_no_key(db: Database) -> None:
    account = AttemptLimit("account:alice@example.com", 1)
    now = utcnow()
    async with db.transaction() as conn:
        assert await count_attempt(conn, [PAIR, account], POLICY, now=now) is None
    async with db.transaction() as conn:
        reopens_at = await count_attempt(conn, [PAIR, account], POLICY, now=now)
    assert reopens_at == now + timedelta(seconds=POLICY.window_seconds)
    async with db.connect() as conn:
        assert await attempts_counted(conn, PAIR.key) == 1
        assert await attempts_counted(conn, account.key) == 1


async def test_a_new_window_grants_attempts_again(db: Database) -> None:
    now = utcnow()
    for _ in range(PAIR.limit):
        async with db.transaction() as conn:
            assert await count_attempt(conn, [PAIR], POLICY, now=now) is None
    later = now + timedelta(seconds=POLICY.window_seconds)
    async with db.transaction() as conn:
        assert await count_attempt(conn, [PAIR], POLICY, now=later - timedelta(seconds=1))
        assert await count_attempt(conn, [PAIR], POLICY, now=later) is None
    async with db.connect() as conn:
        assert await attempts_counted(conn, PAIR.key) == 1
