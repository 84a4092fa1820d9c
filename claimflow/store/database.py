"""Engine, transactions and migrations for SQLite (embedded) and PostgreSQL (scale-out)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

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


class Database:
    """Owns the engine; ``transaction()`` gives one atomic unit of work."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn

    async def dispose(self) -> None:
        await self.engine.dispose()


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str, revision: str = "head") -> None:
    """Apply Alembic migrations up to ``revision`` (synchronous; call from a thread if async)."""
    keep_private(url)
    command.upgrade(alembic_config(url), revision)
