"""Engine, transactions and migrations for SQLite (embedded) and PostgreSQL (scale-out).

**Request scope.** ``request_scope()`` gives the current task one pooled connection for a whole
unit of work (a token request), checked out on first use and given back by ``release()`` before
slow work that needs no database (workflows): every ``connect()`` and ``transaction()`` inside it reuses that
connection instead of checking out its own, so a request pays one checkout (one pre-ping on
PostgreSQL) rather than one per statement group. A ``transaction()`` inside a scope still
commits at its end and rolls back on an exception, exactly as outside one; reads before it share
its transaction (one ``BEGIN`` per request), and reads after the last one are rolled back when the
scope ends. The scope belongs to the
task that opened it: tasks it spawns (a shared billing load, the run-log writer) check out their
own connections as before.

**Autocommit reads on PostgreSQL.** A scope's connection comes from a second engine in
``AUTOCOMMIT`` mode: its reads need no ``BEGIN``/``ROLLBACK`` and its pre-ping is one round trip
instead of three (SQLAlchemy's asyncpg ping wraps itself in a transaction otherwise). Under
READ COMMITTED a transaction of reads sees nothing a series of single reads would not. A
``transaction()`` in the scope switches the connection back to the server's isolation level for
its duration, so writes stay atomic. That engine has its own pool (10 + 20 overflow), so a
worker may hold up to 30 more connections than before.

**Hot statements on the driver (PostgreSQL).** The token endpoint's hot statements (client
authentication, the refresh grant's read and rotation, billing versions) do not use the engine
at all: they run on ``Database.direct``, a small asyncpg pool (``store.pg_direct``), so a warm
refresh checks out nothing here.

**SQLite writers.** SQLite lets one writer in at a time and makes the others poll with growing
sleeps (``busy_timeout``), which turns a queue of eight writers into a p99 of a second. Write
transactions of one process therefore take an ``asyncio.Lock`` first, so they wait in arrival
order and each enters SQLite when the previous one has committed; ``busy_timeout`` still
arbitrates between processes.

**Hot SQLite writes in one hop.** A short write the store knows in advance (the refresh token's
rotation) runs as one function in a writer thread of its own (``sqlite_transaction``,
``store.sqlite_writes``), so this process's write turn lasts as long as the write, not as the
several aiosqlite hops and event-loop turns of a transaction through the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import event, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from claimflow.store.loop_reads import SqliteLoopReader
from claimflow.store.pg_direct import DirectPool, uses_driver
from claimflow.store.sqlite_writes import SqliteWriter

_T = TypeVar("_T")
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _enable_sqlite_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for PostgreSQL, in-memory or URI databases."""
    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in {"", ":memory:"}:
        return None
    if database.startswith("file:"):
        return None
    return Path(database)


def keep_private(url: str) -> None:
    """Make a SQLite database file readable by its owner only (mode 600), creating it so.

    The file holds encrypted keys, hashed passwords and every user's data; a workflow runner
    that switched to an unprivileged user (design §8) must not be able to open it. SQLite gives
    its ``-wal`` and ``-shm`` files the database file's mode.
    """
    path = sqlite_file(url)
    if path is None:
        return
    if not path.exists():
        with contextlib.suppress(FileNotFoundError):  # a missing directory: SQLite will say
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return
    if path.stat().st_uid == os.geteuid() and path.stat().st_mode & 0o077:
        path.chmod(0o600)


def create_engine(url: str, *, pre_ping: bool = True, **options: Any) -> AsyncEngine:
    """An async engine; SQLite gets foreign keys, WAL and a busy timeout, and a private file."""
    if url.startswith("sqlite"):
        keep_private(url)
        engine = create_async_engine(url, **options)
        event.listen(engine.sync_engine, "connect", _enable_sqlite_foreign_keys)
        return engine
    return create_async_engine(
        url, pool_size=10, max_overflow=20, pool_pre_ping=pre_ping, **options
    )


@dataclass(slots=True)
class _Scope:
    """The connection of one request scope, usable by the task that opened it only."""

    database: Database
    task: asyncio.Task[Any] | None
    conn: AsyncConnection | None = None
    writing: bool = False
    """A ``transaction()`` of the scope is open: a nested one gets its own connection, as
    outside a scope, so it cannot commit or roll back the outer one's work."""


_scope: contextvars.ContextVar[_Scope | None] = contextvars.ContextVar(
    "claimflow_request_scope", default=None
)
_writing: contextvars.ContextVar[tuple[Database, asyncio.Task[Any] | None] | None] = (
    contextvars.ContextVar("claimflow_sqlite_writer", default=None)
)
"""The database whose write turn the current task holds, and that task: a task created inside
the turn inherits the context variable but not the turn, so it must not skip the queue."""


class Database:
    """Owns the engine; ``transaction()`` gives one atomic unit of work."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)
        self.is_sqlite = url.startswith("sqlite")
        file = sqlite_file(url)
        self.loop_reader = None if file is None else SqliteLoopReader(file)
        """Hot reads on the event loop (a SQLite file only; see ``store.loop_reads``)."""
        self.writer = None if file is None else SqliteWriter(file)
        """Hot short writes in one thread hop (a SQLite file only; ``sqlite_transaction``)."""
        self.direct = DirectPool(url) if uses_driver(url) else None
        """Hot statements on the driver (PostgreSQL through asyncpg; see ``store.pg_direct``)."""
        self._writer = asyncio.Lock()
        # PostgreSQL: request scopes read in autocommit (see the module's docstring).
        self._scope_engine = (
            self.engine if self.is_sqlite else create_engine(url, isolation_level="AUTOCOMMIT")
        )

    @property
    def engines(self) -> tuple[AsyncEngine, ...]:
        """Every engine this database runs statements on (tracing instruments each)."""
        if self._scope_engine is self.engine:
            return (self.engine,)
        return (self.engine, self._scope_engine)

    def _current_scope(self) -> _Scope | None:
        scope = _scope.get()
        if scope is None or scope.database is not self:
            return None
        return scope if scope.task is asyncio.current_task() else None

    async def _scoped(self) -> AsyncConnection | None:
        """The scope's connection, checked out on first use; None outside a scope."""
        scope = self._current_scope()
        if scope is None:
            return None
        if scope.conn is None:
            scope.conn = await self._scope_engine.connect()
        return scope.conn

    @asynccontextmanager
    async def request_scope(self) -> AsyncIterator[None]:
        """One connection for every ``connect()``/``transaction()`` of this task until exit."""
        if self._current_scope() is not None:
            yield
            return
        token = _scope.set(_Scope(self, asyncio.current_task()))
        try:
            yield
        finally:
            await self.release()
            _scope.reset(token)

    async def release(self) -> None:
        """Give the scope's connection back to the pool, ending what it read.

        Called before work that does not need the database and may take long (workflows), so
        a scope never holds a pooled connection that other work (a billing load) waits for;
        the next use inside the scope checks one out again.
        """
        scope = self._current_scope()
        if scope is not None and scope.conn is not None:
            conn, scope.conn = scope.conn, None
            await conn.close()

    @asynccontextmanager
    async def _write_turn(self) -> AsyncIterator[None]:
        """On SQLite, wait for this process's previous writer to commit (arrival order)."""
        if not self.is_sqlite or _writing.get() == (self, asyncio.current_task()):
            yield
            return
        async with self._writer:
            token = _writing.set((self, asyncio.current_task()))
            try:
                yield
            finally:
                _writing.reset(token)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        async with self._write_turn():
            scope = self._current_scope()
            if scope is None or scope.writing:
                async with self.engine.begin() as conn:
                    yield conn
                return
            scoped = await self._scoped()
            assert scoped is not None
            if not self.is_sqlite:
                # Leave autocommit for a real transaction (no round trip: asyncpg sends BEGIN
                # with the first statement); the pool restores autocommit on check-in.
                if scoped.in_transaction():
                    await scoped.rollback()
                await scoped.execution_options(isolation_level=self._transaction_isolation())
            # On SQLite the scope's earlier reads share the transaction (pysqlite begins it
            # at the first write); what they read is only what a separate read would have seen.
            scope.writing = True
            try:
                yield scoped
            except BaseException:
                await scoped.rollback()
                raise
            finally:
                scope.writing = False
            await scoped.commit()
            if not self.is_sqlite:
                await scoped.execution_options(isolation_level="AUTOCOMMIT")

    @asynccontextmanager
    async def single_statement(self) -> AsyncIterator[AsyncConnection]:
        """A connection for a write the store does in one statement on PostgreSQL.

        In a PostgreSQL request scope it is the scope's autocommit connection: the statement is
        atomic and commits as it runs, with no ``BEGIN`` or ``COMMIT`` round trip. Everywhere
        else it is ``transaction()``, so the store may use several statements there (SQLite)
        and they commit together.
        """
        scope = self._current_scope()
        if self.is_sqlite or scope is None or scope.writing:
            async with self.transaction() as conn:
                yield conn
            return
        scoped = await self._scoped()
        assert scoped is not None
        if scoped.in_transaction():
            await scoped.rollback()  # the scope's reads; in autocommit nothing is sent
        await scoped.execution_options(isolation_level="AUTOCOMMIT")
        scope.writing = True
        try:
            yield scoped
        finally:
            scope.writing = False

    async def sqlite_transaction(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """``work`` as one write transaction of the SQLite file in one thread hop
        (``store.sqlite_writes``), in this process's write turn like ``transaction()``.

        Not inside a ``transaction()`` of the same task: that one's connection may hold the
        file's write lock, which this would wait for."""
        assert self.writer is not None, "a SQLite file only"
        assert _writing.get() != (self, asyncio.current_task()), "not inside a transaction()"
        async with self._write_turn():
            return await self.writer.transaction(work)

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        conn = await self._scoped()
        if conn is not None:
            yield conn
            return
        async with self.engine.connect() as conn:
            yield conn

    def _transaction_isolation(self) -> str:
        """The isolation level ``transaction()`` has outside a scope (the server's default)."""
        # Detected by the dialect when the scope's engine first connected.
        level = getattr(self._scope_engine.dialect, "default_isolation_level", None)
        return str(level or "READ COMMITTED")

    async def dispose(self) -> None:
        if self.loop_reader is not None:
            self.loop_reader.close()
        if self.writer is not None:
            await self.writer.aclose()
        if self.direct is not None:
            await self.direct.aclose()
        await self.engine.dispose()
        if self._scope_engine is not self.engine:
            await self._scope_engine.dispose()


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str, revision: str = "head") -> None:
    """Apply Alembic migrations up to ``revision`` (synchronous; call from a thread if async)."""
    keep_private(url)
    command.upgrade(alembic_config(url), revision)
