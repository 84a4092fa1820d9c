"""Per-subject billing versions: what makes a cached billing claim provably current (design §9).

Every write that changes what an organization or a user is billed for (an agreement, a plan's
prices, a feature, the customer itself) bumps the version of each affected *subject*
(``org:<code>`` or ``user:<id>``, the billing cache's keys) **in the same transaction** as the
change. A cache entry remembers the version it was loaded at; a worker that reads a newer version
reloads. Because the bump commits with the change, any token request that starts after the change
answered 2xx reads the new version, on any worker, with or without Redis.

Versions are keyed by subject rather than by customer so that the version is known *before* the
load (a sign-in knows its organization, not yet its customer) and so that a change of ownership
(a customer created or deleted for an organization) is a change of the same subject.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import bindparam, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow.store import tables as t
from claimflow.store._rows import dialect_insert
from claimflow.store.database import Database, create_engine


def organization_subject(org_code: str) -> str:
    return f"org:{org_code}"


def user_subject(user_id: str) -> str:
    return f"user:{user_id}"


async def bump_subjects(conn: AsyncConnection, subjects: Iterable[str]) -> None:
    """Increment each subject's version (creating it at 1), in sorted order.

    Sorted, so two transactions bumping overlapping sets lock rows in one order and cannot
    deadlock on PostgreSQL.
    """
    for subject in sorted(set(subjects)):
        statement = dialect_insert(conn, t.billing_versions).values(subject=subject, version=1)
        await conn.execute(
            statement.on_conflict_do_update(
                index_elements=[t.billing_versions.c.subject],
                set_={"version": t.billing_versions.c.version + 1},
            )
        )


async def bump_customers(conn: AsyncConnection, customer_ids: Iterable[str]) -> None:
    """Bump the subjects that own these billing customers."""
    ids = sorted(set(customer_ids))
    if not ids:
        return
    rows = await conn.execute(
        select(t.billing_customers.c.org_code, t.billing_customers.c.user_id).where(
            t.billing_customers.c.id.in_(ids)
        )
    )
    await bump_subjects(
        conn,
        [
            organization_subject(row.org_code) if row.org_code else user_subject(row.user_id)
            for row in rows
        ],
    )


async def version_of(conn: AsyncConnection, subject: str) -> int:
    """The subject's current version; 0 for a subject whose billing never changed."""
    found = await conn.execute(
        select(t.billing_versions.c.version).where(t.billing_versions.c.subject == subject)
    )
    return int(found.scalar_one_or_none() or 0)


class StoreBillingVersions:
    """The billing cache's version source: one primary-key read per lookup, one round trip.

    Each read sees every change committed before it began (READ COMMITTED on PostgreSQL, a
    fresh WAL snapshot on SQLite). It runs on an engine of its own in autocommit mode without
    a pre-ping: the store's engine would add ``BEGIN``, ``ROLLBACK`` and a ping to every token
    request (measured in ``bench/billing_versions_bench.py``). A pooled connection that died
    with a database restart is detected by the read itself, which is retried once on a new one.
    """

    def __init__(self, db: Database) -> None:
        self._engine = create_engine(db.url, isolation_level="AUTOCOMMIT", pre_ping=False)
        self._query = select(t.billing_versions.c.version).where(
            t.billing_versions.c.subject == bindparam("subject")
        )

    async def current(self, subject: str) -> int:
        try:
            return await self._read(subject)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            return await self._read(subject)

    async def _read(self, subject: str) -> int:
        async with self._engine.connect() as conn:
            found = await conn.execute(self._query, {"subject": subject})
            return int(found.scalar_one_or_none() or 0)

    async def aclose(self) -> None:
        await self._engine.dispose()
