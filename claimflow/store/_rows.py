"""Small helpers shared by the repositories: clock, UTC normalisation, integrity errors, and the
dialect's own ``INSERT`` (for ``ON CONFLICT``, which SQLite and PostgreSQL both spell alike)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["IntegrityError", "as_utc", "dialect_insert", "insert_unless_present", "utcnow"]


def dialect_insert(conn: AsyncConnection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """``INSERT`` into ``table`` with the dialect's ``on_conflict_do_nothing/do_update``."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


async def insert_unless_present(conn: AsyncConnection, table: Table, **values: Any) -> bool:
    """Insert a row unless its primary key exists; True when this call inserted it.

    ``ON CONFLICT DO NOTHING`` rather than a select first or a savepoint: two concurrent grants
    both succeed, and on SQLite a savepoint opened before any other write would commit on
    release, outside the caller's transaction.
    """
    result = await conn.execute(
        dialect_insert(conn, table).values(**values).on_conflict_do_nothing()
    )
    return bool(result.rowcount)


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; every datetime leaving the store is aware UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def required_utc(value: datetime) -> datetime:
    result = as_utc(value)
    assert result is not None
    return result
