"""Hot primary-key reads of a SQLite file on the event loop, never waiting for a lock.

Through aiosqlite, one read inside a request costs about ten thread hops (checkout, execute,
fetch, the rollback on return), several times the read itself. A SQLite file in WAL mode lets a
reader proceed while another connection writes, so a short read by primary key can run on the
event loop's own thread instead (client authentication and the billing version read here):
on ``sqlite3`` directly, with the statement compiled by SQLAlchemy's SQLite dialect and
the rows decoded by the columns' types (``PreparedRead``), exactly as on the engine.

The connection is read-only (``PRAGMA query_only``) and in autocommit: every statement takes a
fresh WAL snapshot, so it sees every transaction committed before it began, on any process —
what a read through the async engine sees. ``busy_timeout`` is 0: a read that would have to wait
(a database not in WAL mode yet, WAL recovery after a crash) raises ``LoopReadUnavailable`` at
once and the caller reads through the async engine, so the loop never blocks on a lock.

Several reads that must agree (the refresh grant's token, user, memberships, flags and billing
version) run inside ``snapshot()``: one deferred read transaction, whose first read takes the
WAL snapshot every later one sees, as one statement would.
"""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import CompoundSelect, Select

from claimflow.store.compiled_statements import SQLITE_DIALECT, CompiledStatement

_T = TypeVar("_T")


class LoopReadUnavailable(Exception):
    """The read would have waited for a lock (or the file is not readable): use the engine."""


class PreparedRead(CompiledStatement):
    """A ``SELECT`` compiled once for SQLite, its rows decoded by the columns' own types.

    SQLAlchemy's synchronous ``execute`` still cost about 150 µs per read here (connection
    events, the execution context, the result's metadata) for a 15 µs query; this keeps what
    matters — the dialect's SQL and each column type's ``result_processor`` (JSON, dates,
    booleans decode exactly as on the engine) — and runs the SQL on ``sqlite3`` directly."""

    def __init__(self, statement: Select[Any] | CompoundSelect[Any]) -> None:
        super().__init__(statement, SQLITE_DIALECT)
        columns = list(statement.selected_columns)
        self._row: Callable[..., Any] = namedtuple("LoopRow", [c.key for c in columns])  # type: ignore[misc]
        # The dialect's implementation of each type decodes as the engine does (SQLite's
        # DATETIME parses its text; the generic DateTime would hand the text back).
        self._results = tuple(
            c.type.dialect_impl(SQLITE_DIALECT).result_processor(SQLITE_DIALECT, None)
            for c in columns
        )

    def row(self, raw: tuple[Any, ...]) -> Any:
        return self._row(
            *(
                v if p is None or v is None else p(v)
                for p, v in zip(self._results, raw, strict=True)
            )
        )


class SqliteLoopReader:
    """One read-only autocommit connection to a SQLite file, used on the event loop's thread."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._connection: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        connection = self._connection
        if connection is None:
            connection = sqlite3.connect(
                str(self._path), timeout=0, isolation_level=None, check_same_thread=False
            )
            connection.execute("PRAGMA query_only = ON")
            connection.execute("PRAGMA busy_timeout = 0")
            self._connection = connection
        return connection

    def first(self, read: PreparedRead, params: dict[str, Any]) -> Any:
        """The first row of ``read`` (attributes by column key) or None; raises
        ``LoopReadUnavailable`` instead of waiting for a lock."""
        raw = self._run(read.sql, read.parameters(params), sqlite3.Cursor.fetchone)
        return None if raw is None else read.row(raw)

    def all(self, read: PreparedRead, params: dict[str, Any]) -> list[Any]:
        """Every row of ``read``, as ``first`` gives one."""
        rows = self._run(read.sql, read.parameters(params), sqlite3.Cursor.fetchall)
        return [read.row(raw) for raw in rows]

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """The reads inside see one snapshot of the file, as one statement would.

        ``BEGIN`` is deferred, so the first read takes the snapshot (a fresh one: it sees every
        transaction committed before it) and ``COMMIT`` lets it go. The block must not await:
        the connection is the loop's, and another task's read would otherwise land inside this
        transaction. A failed read has already dropped the connection (and the transaction
        with it); any other exception rolls back before it propagates.
        """
        self._run("BEGIN", (), sqlite3.Cursor.close)
        try:
            yield
        except BaseException:
            if self._connection is not None:
                try:
                    self._connection.execute("ROLLBACK")
                except sqlite3.Error:
                    self.close()
            raise
        self._run("COMMIT", (), sqlite3.Cursor.close)

    def _run(
        self, sql: str, parameters: tuple[Any, ...], fetch: Callable[[sqlite3.Cursor], _T]
    ) -> _T:
        try:
            return fetch(self._connect().execute(sql, parameters))
        except sqlite3.Error as exc:
            self.close()  # a broken connection is reopened by the next read
            raise LoopReadUnavailable(str(exc)) from exc

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
