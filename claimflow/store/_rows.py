"""Small helpers shared by the repositories: clock, UTC normalisation, integrity errors."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError

__all__ = ["IntegrityError", "as_utc", "utcnow"]


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
