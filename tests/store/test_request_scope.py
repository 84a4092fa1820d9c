"""``Database.request_scope``: one connection per request, with the same commit semantics as
without it, and never shared with the tasks the request spawns."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from claimflow.store import Database, organizations
from claimflow.store import tables as t


async def _count(db: Database) -> int:
    async with db.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(t.organizations))).one()[0])


async def test_a_scope_reuses_one_connection_and_commits_each_transaction(any_db_url: str) -> None:
    db = Database(any_db_url)
    with pytest.raises(RuntimeError):
        async with db.request_scope():
            async with db.connect() as first, db.connect() as second:
                assert first is second
            async with db.transaction() as conn:
                assert conn is first
                await organizations.create_organization(conn, name="kept", code="org_kept")
            # A later failure of the request does not undo what a transaction committed.
            raise RuntimeError("the request fails after its write")
    assert await _count(db) == 1
    with pytest.raises(RuntimeError):
        async with db.request_scope(), db.transaction() as conn:
            await organizations.create_organization(conn, name="lost", code="org_lost")
            raise RuntimeError("the transaction fails")
    assert await _count(db) == 1
    await db.dispose()


async def test_tasks_spawned_in_a_scope_take_their_own_connection(any_db_url: str) -> None:
    db = Database(any_db_url)

    async def spawned() -> object:
        async with db.connect() as conn:
            return conn

    async with db.request_scope(), db.connect() as mine:
        theirs = await asyncio.create_task(spawned())
        assert theirs is not mine
    await db.dispose()


async def test_concurrent_sqlite_writers_all_commit(db_url: str) -> None:
    """Writers of one process wait their turn rather than fail with "database is locked"."""
    db = Database(db_url)

    async def write(i: int) -> None:
        async with db.request_scope():
            async with db.connect() as conn:
                await conn.execute(select(t.organizations.c.code))
            async with db.transaction() as conn:
                await organizations.create_organization(conn, name=str(i), code=f"org_{i}")

    await asyncio.gather(*(write(i) for i in range(32)))
    assert await _count(db) == 32
    await db.dispose()


async def test_a_nested_transaction_in_a_scope_is_its_own(pg_url: str) -> None:
    """As outside a scope, a transaction opened inside another commits on its own, and the
    outer one's rollback does not undo it (nor does the inner one commit the outer's work)."""
    db = Database(pg_url)
    with pytest.raises(RuntimeError):
        async with db.request_scope(), db.transaction() as outer:
            await organizations.create_organization(outer, name="outer", code="org_outer")
            async with db.transaction() as inner:
                assert inner is not outer
                await organizations.create_organization(inner, name="inner", code="org_inner")
            raise RuntimeError("the outer transaction fails")
    async with db.connect() as conn:
        codes = (await conn.execute(select(t.organizations.c.code))).scalars().all()
    assert codes == ["org_inner"]
    await db.dispose()


async def test_a_task_spawned_in_a_write_waits_its_own_turn_later(db_url: str) -> None:
    """A task created inside a SQLite write transaction inherits its context, but not its turn:
    when it writes after that transaction committed, it queues behind the current writer."""
    db = Database(db_url)
    holder_in = asyncio.Event()
    order: list[str] = []

    async def spawned() -> None:
        await holder_in.wait()
        async with db.transaction() as conn:
            order.append("spawned writes")
            await organizations.create_organization(conn, name="later", code="org_later")

    async with db.transaction() as conn:
        await organizations.create_organization(conn, name="first", code="org_first")
        task = asyncio.create_task(spawned())

    async def holder() -> None:
        async with db.transaction() as conn:
            await organizations.create_organization(conn, name="held", code="org_held")
            holder_in.set()
            await asyncio.sleep(0.2)
            order.append("holder commits")

    await asyncio.gather(holder(), task)
    assert order == ["holder commits", "spawned writes"]
    assert await _count(db) == 3
    await db.dispose()
