"""A SQLAlchemy statement compiled once for one dialect, run on that dialect's driver directly.

The hot statements that skip SQLAlchemy's execution (``store.pg_direct`` on asyncpg,
``store.sqlite_writes`` on ``sqlite3``) keep what matters of it: the dialect's SQL and each
bound value's type processor (JSON serializes, SQLite's dates become text), so the values the
driver receives are the ones the engine would send.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

SQLITE_DIALECT = sqlite.dialect(paramstyle="qmark")
"""The dialect of the statements run on ``sqlite3`` directly (its ``?`` placeholders)."""


class CompiledStatement:
    """``statement`` compiled by ``dialect``, with the bind processor of each placeholder."""

    def __init__(
        self,
        statement: ClauseElement,
        dialect: Dialect,
        *,
        column_keys: Sequence[str] | None = None,
    ) -> None:
        """``column_keys``: the columns an ``INSERT`` without values sets, as the engine
        compiles it for a row with exactly those keys."""
        compiled = statement.compile(
            dialect=dialect, column_keys=None if column_keys is None else list(column_keys)
        )
        assert isinstance(compiled, SQLCompiler)
        self.sql = str(compiled)
        self._defaults = dict(compiled.params)
        self._order = tuple(compiled.positiontup or ())
        self._processors = tuple(
            compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            for name in self._order
        )

    def parameters(self, params: dict[str, Any]) -> tuple[Any, ...]:
        """``params`` (with the statement's own defaults) in placeholder order, processed."""
        values = self._defaults | params
        return tuple(
            v if p is None or v is None else p(v)
            for p, v in zip(self._processors, (values[name] for name in self._order), strict=True)
        )
