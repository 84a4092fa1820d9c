"""Hot primary-key reads of a SQLite file on the event loop, never waiting for a lock.

Through aiosqlite, one read inside a request costs about ten thread hops (checkout, execute,
fetch, the rollback on return), several times the read itself. A SQLite file in WAL mode lets a
reader proceed while another connection writes, so a short read by primary key can run on the
event loop's own thread instead, as ``StoreBillingVersions`` already does for the billing
version: here through SQLAlchemy's synchronous engine, so rows decode exactly as on the async
one (JSON, dates).

The connection is read-only (``PRAGMA query_only``) and in autocommit: every statement takes a
fresh WAL snapshot, so it sees every transaction committed before it began, on any process —
what a read through the async engine sees. ``busy_timeout`` is 0: a read that would have to wait
(a database not in WAL mode yet, WAL recovery after a crash) raises ``LoopReadUnavailable`` at
once and the caller reads through the async engine, so the loop never blocks on a lock.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Executable, Row, StaticPool, create_engine, event
from sqlalchemy.exc import DBAPIError


class LoopReadUnavailable(Exception):
    """The read would have waited for a lock (or the file is not readable): use the engine."""


def _read_only(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only = ON")
    cursor.execute("PRAGMA busy_timeout = 0")
    cursor.close()


class SqliteLoopReader:
    """One read-only autocommit connection to a SQLite file, used on the event loop's thread."""

    def __init__(self, path: Path) -> None:
        self._engine = create_engine(
            f"sqlite:///{path}",
            poolclass=StaticPool,
            isolation_level="AUTOCOMMIT",
            connect_args={"timeout": 0, "check_same_thread": False},
        )
        event.listen(self._engine, "connect", _read_only)

    def first(self, statement: Executable, params: dict[str, Any]) -> Row[Any] | None:
        """The first row of ``statement``; raises ``LoopReadUnavailable`` instead of waiting."""
        try:
            with self._engine.connect() as conn:
                return conn.execute(statement, params).first()
        except (DBAPIError, sqlite3.Error) as exc:
            raise LoopReadUnavailable(str(exc)) from exc

    def close(self) -> None:
        self._engine.dispose()
