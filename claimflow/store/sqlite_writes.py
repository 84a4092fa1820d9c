"""A short write transaction of a SQLite file in one thread hop, on ``sqlite3`` directly.

Through aiosqlite each statement of a transaction is a hop to the connection's thread and back
(the checkout, ``BEGIN``, each statement, ``COMMIT``, the return's rollback), and this process's
write turn (``Database``'s writer lock) is held across all of them, event-loop turns included:
the next writer waits for the hops too. A hot write that is a few statements known in advance
(the refresh token's rotation: spend, then insert the successor) runs here instead as one
function in the writer's own thread: ``BEGIN IMMEDIATE``, the statements, ``COMMIT``, in one
hop, still inside the write turn, so the turn lasts as long as the write itself.

The statements are the store's own SQLAlchemy statements compiled once by the SQLite dialect,
their parameters encoded by the columns' own bind processors (dates, JSON) exactly as on the
engine (``PreparedWrite``). The connection is set up as the engine's are (foreign keys, WAL,
a busy timeout that still arbitrates between processes). One thread owns it, so a caller that
is cancelled while its work runs cannot let the next one in on the same connection early: the
next work queues behind it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.expression import ClauseElement

from claimflow.store.compiled_statements import SQLITE_DIALECT, CompiledStatement

_T = TypeVar("_T")


class PreparedWrite(CompiledStatement):
    """A DML statement compiled once for SQLite, its parameters encoded by their types."""

    def __init__(
        self, statement: ClauseElement, *, column_keys: Sequence[str] | None = None
    ) -> None:
        super().__init__(statement, SQLITE_DIALECT, column_keys=column_keys)


class SqliteWriter:
    """One read-write connection to a SQLite file, owned by one thread of its own."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._connection: sqlite3.Connection | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="claimflow-sqlite")

    async def transaction(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """``work`` inside ``BEGIN IMMEDIATE`` ... ``COMMIT`` in the writer's thread, one hop;
        rolled back when it raises. The caller holds the database's write turn.

        A ``sqlite3`` error is raised as SQLAlchemy's wrapper of it, as the engine raises it
        (a file locked past the busy timeout is an ``OperationalError``: a 503, as before)."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._thread, self._in_transaction, work)
        except sqlite3.Error as exc:
            raise DBAPIError.instance(None, None, exc, sqlite3.Error) from exc

    def _in_transaction(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        connection = self._connect()
        connection.execute("BEGIN IMMEDIATE")
        try:
            result = work(connection)
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        return result

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            connection = sqlite3.connect(
                str(self._path), isolation_level=None, check_same_thread=False
            )
            # As ``database._enable_sqlite_foreign_keys`` sets up the engine's connections.
            connection.execute("PRAGMA foreign_keys=ON")
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA busy_timeout=5000")
            self._connection = connection
        return self._connection

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._close)
        self._thread.shutdown(wait=False)
