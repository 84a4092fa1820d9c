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

import sqlite3
from collections.abc import Iterable
from urllib.parse import quote

from sqlalchemy import bindparam, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow.store import tables as t
from claimflow.store._rows import dialect_insert
from claimflow.store.database import Database, create_engine, sqlite_file


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


class _SQLiteVersionReader:
    """The version read on SQLite without leaving the event loop's thread.

    aiosqlite runs every statement on a thread of its own; for a one-row primary-key read the
    two thread hops cost ten times the read (``bench/workflows_bench.py``). In WAL mode (the
    store's engine sets it, and it persists in the file) a reader never waits for a writer, so
    the read is made here, synchronously, on a private connection with ``busy_timeout`` 0: if
    SQLite would have to wait for a lock (a database not in WAL mode yet, WAL recovery) it
    raises at once instead and the caller takes the asynchronous path. Each read is its own
    transaction (autocommit), so it sees every change committed before it began.
    """

    def __init__(self, path: str) -> None:
        self._uri = f"file:{quote(path)}?mode=rw"
        self._conn: sqlite3.Connection | None = None

    def read(self, subject: str) -> int:
        """The version; ``sqlite3.Error`` when it cannot be read without waiting."""
        conn = self._conn
        if conn is None:
            conn = sqlite3.connect(
                self._uri, uri=True, timeout=0, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA busy_timeout=0")
            self._conn = conn
        row = conn.execute(
            "SELECT version FROM billing_versions WHERE subject = ?", (subject,)
        ).fetchone()
        return int(row[0]) if row is not None and row[0] is not None else 0

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class StoreBillingVersions:
    """The billing cache's version source: one primary-key read per lookup, one round trip.

    Each read sees every change committed before it began (READ COMMITTED on PostgreSQL, a
    fresh WAL snapshot on SQLite). It runs on an engine of its own in autocommit mode without
    a pre-ping: the store's engine would add ``BEGIN``, ``ROLLBACK`` and a ping to every token
    request (measured in ``bench/billing_versions_bench.py``). A pooled connection that died
    with a database restart is detected by the read itself, which is retried once on a new one.
    On a SQLite file the read is made on the event loop's thread (``_SQLiteVersionReader``).
    """

    def __init__(self, db: Database) -> None:
        self._engine = create_engine(db.url, isolation_level="AUTOCOMMIT", pre_ping=False)
        self._query = select(t.billing_versions.c.version).where(
            t.billing_versions.c.subject == bindparam("subject")
        )
        path = sqlite_file(db.url)
        self._sqlite = None if path is None else _SQLiteVersionReader(str(path))

    async def current(self, subject: str) -> int:
        if self._sqlite is not None:
            try:
                return self._sqlite.read(subject)
            except sqlite3.Error:
                self._sqlite.close()  # e.g. busy: this read goes the asynchronous way
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
        if self._sqlite is not None:
            self._sqlite.close()
        await self._engine.dispose()
