"""The token endpoint's hot statements on the asyncpg driver directly (PostgreSQL).

Through SQLAlchemy's async engine a warm refresh paid, per statement, the pool's checkout with
its pre-ping (a round trip of its own), the execution context and result processing, and the
reset on return; the statements themselves are primary-key reads and one write. The hot ones —
client authentication, the refresh grant's read, the rotation, the billing version — run here
instead, on a small ``asyncpg`` pool of the same database:

- **Prepared once per connection**: asyncpg's statement cache keys on the SQL text, so after a
  connection's first use a statement is one ``Bind``/``Execute`` exchange.
- **No pre-ping and no reset round trip**: asyncpg's pool sees a connection the server closed
  (a restart, an idle timeout) when it is acquired and opens a new one, without a round trip; a
  connection found dead by its statement is closed and the statement runs once more on a fresh
  one, if it never left (``_NOT_SENT``) or is a read. The reset on
  release sends nothing unless a transaction was left open (never here: every statement runs
  in autocommit, atomic on its own).
- **The same SQL and values as the engine**: a SQLAlchemy statement is compiled once by the
  asyncpg dialect (``PgStatement``), its parameters pass through each type's bind processor, and
  the connections decode ``json`` as the dialect's connections do, so a row reads the same here
  as through the engine.

A failure to reach the server is raised as ``StoreUnreachable`` (a ``ConnectionError``, so the
HTTP layer answers 503 in the endpoint's format; ``claimflow.unavailable``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import make_url
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.sql.expression import ClauseElement

from claimflow.store.compiled_statements import CompiledStatement
from claimflow.store.unreachable import StoreUnreachable

_DIALECT = asyncpg_dialect.dialect()  # type: ignore[no-untyped-call]
_T = TypeVar("_T")

_NOT_SENT: tuple[type[Exception], ...] = (asyncpg.InternalClientError, asyncpg.InterfaceError)
"""The connection refused the statement before sending it: closed, or in a state left by the
server's ``FATAL`` (a restart, ``pg_terminate_backend``) that asyncpg has read but not yet acted
on. Safe to retry, writes included."""

_DIED: tuple[type[Exception], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    ConnectionResetError,
)
"""The connection died under a statement that may have reached the server."""


def uses_driver(url: str) -> bool:
    """Whether ``url`` is PostgreSQL through asyncpg, the one case this module serves."""
    parsed = make_url(url)
    return parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() == "asyncpg"


class PgStatement(CompiledStatement):
    """A SQLAlchemy statement compiled once by the asyncpg dialect, with its bind processors.

    ``parameters`` orders a dict of values as the compiled ``$n`` placeholders expect and passes
    each through its type's bind processor (``JSON`` serializes, as on the engine); rows come
    back as asyncpg records, whose columns the connection's codecs already decoded (the dialect
    has no result processing of its own for the types used here).
    """

    def __init__(self, statement: ClauseElement) -> None:
        super().__init__(statement, _DIALECT)


class Row(asyncpg.Record):  # type: ignore[misc]
    """A record whose columns read as attributes too (``row.client_id``), as SQLAlchemy's rows
    do, so the store's row mappers serve both. A column named like a method of ``Record``
    (``get``, ``keys``, ``values``, ``items``) reads by subscript only: alias it."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


async def _json_codecs(connection: asyncpg.Connection) -> None:
    """Decode ``json`` and ``jsonb`` as SQLAlchemy's asyncpg dialect does on its connections
    (``setup_asyncpg_json_codec``): binary format, ``jsonb`` behind its version byte."""
    await connection.set_type_codec(
        "json",
        encoder=str.encode,
        decoder=lambda raw: json.loads(raw.decode()),
        schema="pg_catalog",
        format="binary",
    )
    await connection.set_type_codec(
        "jsonb",
        encoder=lambda text: b"\x01" + text.encode(),
        decoder=lambda raw: json.loads(raw[1:].decode()),
        schema="pg_catalog",
        format="binary",
    )


async def _no_reset(_connection: asyncpg.Connection) -> None:
    """Nothing to reset: statements here leave no session state (asyncpg still rolls back a
    transaction left open before calling this)."""


KEYED_PLANS = {"enable_seqscan": "off"}
"""The pool's connections plan no sequential scan where an index serves.

Every statement here reads or writes rows by key, and each connection caches a statement's
generic plan after its fifth run (PostgreSQL's ``plan_cache_mode = auto``) until an ``ANALYZE``
invalidates it. Planned while a table is a few pages (a new deployment, a test, the first
refreshes of a benchmark), a scan is cheaper than an index and is kept: the spend of a refresh
token then scanned the whole table on every refresh as it grew, 5,000 rows by the fourth
benchmark round, until autovacuum's next ``ANALYZE`` (a minute or more). With sequential scans
priced out, a plan made on a small table is the plan for a large one. The one read of a whole
table (all feature flags, in the refresh's read) walks its primary key's index instead: the same
rows in key order."""


class DirectPool:
    """A small asyncpg pool of the database, opened on first use."""

    MAX_SIZE = 16

    def __init__(self, url: str) -> None:
        self._dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def _opened(self) -> asyncpg.Pool:
        pool = self._pool
        if pool is None:
            async with self._opening:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        self._dsn,
                        min_size=0,
                        max_size=self.MAX_SIZE,
                        init=_json_codecs,
                        reset=_no_reset,
                        record_class=Row,
                        server_settings=KEYED_PLANS,
                    )
                pool = self._pool
        return pool

    async def _run(
        self, use: Callable[[asyncpg.Connection], Awaitable[_T]], *, may_repeat: bool
    ) -> _T:
        """``use`` on a pooled connection; once more on a fresh one if the first was dead.

        A dead connection is closed before it goes back, so the pool replaces it. A statement
        that may have reached the server is repeated only if ``may_repeat`` (a read).
        """
        for attempt in (1, 2):
            try:
                pool = await self._opened()
                async with pool.acquire() as connection:
                    try:
                        return await use(connection)
                    except _NOT_SENT + _DIED:
                        connection.terminate()
                        raise
            except _NOT_SENT:
                if attempt == 2:
                    raise
            except _DIED:
                if attempt == 2 or not may_repeat:
                    raise
            except OSError as exc:
                if isinstance(exc, ConnectionError):
                    raise
                raise StoreUnreachable(str(exc)) from exc
        raise AssertionError("unreachable")

    async def fetchrow(self, statement: PgStatement | str, params: Any) -> Any:
        """The first row of a read (a record, columns by name) or None."""
        sql, args = _sql(statement, params)
        return await self._run(lambda c: c.fetchrow(sql, *args), may_repeat=True)

    async def fetchval(self, statement: PgStatement | str, params: Any) -> Any:
        sql, args = _sql(statement, params)
        return await self._run(lambda c: c.fetchval(sql, *args), may_repeat=True)

    async def write_fetchrow(self, statement: PgStatement | str, params: Any) -> Any:
        """A write in one statement (atomic on its own, autocommit): repeated only if the dead
        connection never sent it, since one that died under it leaves unknown whether it
        committed (the client's retry then meets the refresh token's reuse grace)."""
        sql, args = _sql(statement, params)
        return await self._run(lambda c: c.fetchrow(sql, *args), may_repeat=False)

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pool.close(), timeout=5)
            pool.terminate()


def _sql(statement: PgStatement | str, params: Any) -> tuple[str, tuple[Any, ...]]:
    """A compiled statement takes a dict of named values; raw SQL a tuple of positional ones."""
    if isinstance(statement, PgStatement):
        return statement.sql, statement.parameters(params)
    return statement, tuple(params)
