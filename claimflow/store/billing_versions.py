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

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy import bindparam, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from claimflow.store import tables as t
from claimflow.store._rows import dialect_insert
from claimflow.store.database import Database, create_engine
from claimflow.store.loop_reads import LoopReadUnavailable, PreparedRead


def organization_subject(org_code: str) -> str:
    return f"org:{org_code}"


SUBJECT_PREFIX_ORG = "org:"

_read_with_request: ContextVar[tuple[str, int] | None] = ContextVar(
    "claimflow_billing_version_read_with_request", default=None
)


def read_with_request(subject: str, version: int) -> None:
    """Hand ``StoreBillingVersions`` a subject's version the request already read in a query
    of its own (the client authentication of an organization's M2M application reads it in the
    same statement), so the billing lookup of this request makes no round trip of its own.

    The value lives in the request's context only (a ``ContextVar``: the request's task and the
    workflow tasks it starts). It was read after the request arrived, so it is at least the
    version of every billing change that answered before — design §9's promise — exactly as a
    read at lookup time is.
    """
    _read_with_request.set((subject, version))


@contextmanager
def request_reads() -> Iterator[None]:
    """Bound what ``read_with_request`` hands over to one request.

    A server runs each request in a context of its own, but an in-process ASGI call (httpx's
    ``ASGITransport``, the workflows' Management API transport) runs in its caller's context: a
    version handed over by one request would otherwise still be "known" to the next, which may
    come after a billing change, and design §9 would not hold.
    """
    token = _read_with_request.set(None)
    try:
        yield
    finally:
        _read_with_request.reset(token)


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


_VERSION = select(t.billing_versions.c.version).where(
    t.billing_versions.c.subject == bindparam("subject")
)
VERSION_ON_LOOP = PreparedRead(_VERSION)
"""The subject's version read on a SQLite file's event-loop reader (``store.loop_reads``)."""


async def version_of(conn: AsyncConnection, subject: str) -> int:
    """The subject's current version; 0 for a subject whose billing never changed."""
    found = await conn.execute(_VERSION, {"subject": subject})
    return int(found.scalar_one_or_none() or 0)


class StoreBillingVersions:
    """The billing cache's version source: one primary-key read per lookup, one round trip.

    Each read sees every change committed before it began (READ COMMITTED on PostgreSQL, a
    fresh WAL snapshot on SQLite). It is on every warm token of a billing workflow, so it skips
    SQLAlchemy's async engine — whose checkout, execute and return cost about 300 µs of CPU on
    SQLite, four times the query (``bench/m2m_workflows_bench.py``) — and reads through the
    driver: the database's loop reader on a SQLite file (``store.loop_reads``: read on the
    event loop, never waiting for a lock), the database's ``asyncpg`` pool on PostgreSQL
    (``store.pg_direct``: prepared once per connection, a dead connection retried once). Other
    URLs (none today) read through an autocommit engine.
    """

    SQL_POSTGRES = "SELECT version FROM billing_versions WHERE subject = $1"

    def __init__(self, db: Database) -> None:
        self._db = db
        self._engine: AsyncEngine | None = None
        if db.direct is not None:
            self._read = self._read_postgres
        else:
            # A SQLite file reads on the loop and falls back to this engine when it would wait.
            self._engine = create_engine(db.url, isolation_level="AUTOCOMMIT", pre_ping=False)
            self._read = self._read_sqlite if db.loop_reader is not None else self._read_engine

    def known(self, subject: str) -> int | None:
        """The subject's version if this request already read it (``read_with_request``)."""
        known = _read_with_request.get()
        return known[1] if known is not None and known[0] == subject else None

    async def current(self, subject: str) -> int:
        known = self.known(subject)
        if known is not None:
            return known
        try:
            return await self._read(subject)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            return await self._read(subject)

    async def _read_sqlite(self, subject: str) -> int:
        """On the event loop (a thread hop would cost ten times the read); a read that would
        wait for a lock goes through aiosqlite's thread instead, so the loop never blocks."""
        assert self._db.loop_reader is not None
        try:
            row = self._db.loop_reader.first(VERSION_ON_LOOP, {"subject": subject})
        except LoopReadUnavailable:
            return await self._read_engine(subject)
        return int(row.version) if row is not None and row.version is not None else 0

    async def _read_postgres(self, subject: str) -> int:
        assert self._db.direct is not None
        found = await self._db.direct.fetchval(self.SQL_POSTGRES, (subject,))
        return int(found or 0)

    async def _read_engine(self, subject: str) -> int:
        assert self._engine is not None
        async with self._engine.connect() as conn:
            found = await conn.execute(_VERSION, {"subject": subject})
            return int(found.scalar_one_or_none() or 0)

    async def aclose(self) -> None:
        """The database's pool is the database's to close; only the fallback engine is ours."""
        if self._engine is not None:
            await self._engine.dispose()
