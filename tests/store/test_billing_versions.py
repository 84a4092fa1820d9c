"""Every billing write bumps the billing version of each subject it changes, in its own
transaction (design §9), on SQLite and PostgreSQL; a write that fails bumps nothing."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from claimflow.domain import FeatureKind
from claimflow.errors import NotFound
from claimflow.store import Database, billing, migrate, organizations, users
from claimflow.store.billing import PriceInput
from claimflow.store.billing_versions import (
    StoreBillingVersions,
    read_with_request,
    request_reads,
    version_of,
)


async def test_each_kind_of_billing_change_bumps_its_subjects(any_db_url: str) -> None:
    db = Database(any_db_url)
    versions = StoreBillingVersions(db)
    try:
        async with db.transaction() as conn:
            await billing.create_feature(conn, code="seats", name="Seats", kind=FeatureKind.LIMIT)
            await billing.create_plan(
                conn, code="pro", name="Pro", prices=[PriceInput("seats", "Seats")]
            )
            await billing.create_plan(conn, code="free", name="Free")
            acme = await organizations.create_organization(conn, name="Acme")
            other = await organizations.create_organization(conn, name="Other")
            user = await users.create_user(conn, email="solo@example.com")
        acme_s, other_s, user_s = f"org:{acme.code}", f"org:{other.code}", f"user:{user.id}"
        seen = {s: await versions.current(s) for s in (acme_s, other_s, user_s)}
        assert seen == {acme_s: 0, other_s: 0, user_s: 0}

        async def bumped(*changed: str) -> None:
            now = {s: await versions.current(s) for s in seen}
            assert {s for s in seen if now[s] > seen[s]} == set(changed)
            seen.update(now)

        async with db.transaction() as conn:
            customer = await billing.create_customer(conn, org_code=acme.code)
            personal = await billing.create_customer(conn, user_id=user.id)
        await bumped(acme_s, user_s)
        async with db.transaction() as conn:
            await billing.create_agreement(conn, customer_id=customer.id, plan_code="pro")
        await bumped(acme_s)
        async with db.transaction() as conn:
            await billing.create_agreement(conn, customer_id=personal.id, plan_code="free")
        await bumped(user_s)
        async with db.transaction() as conn:
            await billing.update_plan(
                conn, "pro", prices=[PriceInput("seats", "Seats", entitlement_limit_max=9)]
            )
        await bumped(acme_s)  # the plan's customers, not the others
        async with db.transaction() as conn:
            await billing.update_feature(conn, "seats", name="Seats (renamed)")
        await bumped(acme_s)
        async with db.transaction() as conn:
            await organizations.delete_organization(conn, acme.code)
        await bumped(acme_s)
    finally:
        await versions.aclose()
        await db.dispose()


async def test_a_failed_change_bumps_nothing(any_db_url: str) -> None:
    db = Database(any_db_url)
    async with db.transaction() as conn:
        org = await organizations.create_organization(conn, name="Acme")
        customer = await billing.create_customer(conn, org_code=org.code)
        before = await version_of(conn, f"org:{org.code}")
    with pytest.raises(NotFound):
        async with db.transaction() as conn:
            await billing.create_agreement(conn, customer_id=customer.id, plan_code="missing")
    async with db.connect() as conn:
        assert await version_of(conn, f"org:{org.code}") == before
    await db.dispose()


async def test_sqlite_version_read_never_waits_for_a_lock_on_the_event_loop(tmp_path: Path) -> None:
    """The SQLite read is made on the loop's thread; when it would have to wait for a lock (here
    a rollback-journal database with a writer's exclusive lock) it takes the asynchronous path,
    so the loop keeps running, and it sees the change once committed."""
    path = tmp_path / "locked.db"
    url = f"sqlite+aiosqlite:///{path}"
    await asyncio.to_thread(migrate, url)
    db = Database(url)
    versions = StoreBillingVersions(db)
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        writer.execute("PRAGMA journal_mode=DELETE")
        assert await versions.current("org:acme") == 0
        writer.execute("BEGIN EXCLUSIVE")
        writer.execute("INSERT INTO billing_versions (subject, version) VALUES ('org:acme', 7)")
        read = asyncio.ensure_future(versions.current("org:acme"))
        ticks = 0
        for _ in range(5):
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks == 5 and not read.done()  # the loop ran while the read waited
        writer.execute("COMMIT")
        assert await asyncio.wait_for(read, 10) == 7
        assert await versions.current("org:acme") == 7
    finally:
        writer.close()
        await versions.aclose()
        await db.dispose()


async def test_a_version_handed_over_by_one_request_is_not_known_to_the_next(db_url: str) -> None:
    """In-process ASGI calls share their caller's context; the hand-over ends with the request."""
    db = Database(db_url)
    versions = StoreBillingVersions(db)
    with request_reads():
        read_with_request("org:org_a", 3)
        assert versions.known("org:org_a") == 3
    assert versions.known("org:org_a") is None
    await versions.aclose()
    await db.dispose()
