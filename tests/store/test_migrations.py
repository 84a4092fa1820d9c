"""The migrations build exactly the schema ``claimflow/store/tables.py`` declares.

Alembic's autogenerate comparison (``compare_metadata``) runs against a database migrated from
nothing, on SQLite and on PostgreSQL: a table, column, index or type added to ``tables.py``
without its migration (or the reverse) shows up as a difference here, not in a user's upgrade.
"""

from __future__ import annotations

import threading
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from claimflow.store import Database
from claimflow.store.database import alembic_config
from claimflow.store.tables import metadata


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def test_migrated_schema_matches_the_declared_tables(any_db_url: str) -> None:
    db = Database(any_db_url)
    try:
        async with db.connect() as conn:
            differences = await conn.run_sync(_differences)
    finally:
        await db.dispose()
    assert differences == []


def test_migrations_form_one_line_of_history() -> None:
    """One head: migrations written on two branches must be chained before they land."""
    script = ScriptDirectory.from_config(alembic_config("sqlite+aiosqlite://"))
    assert len(script.get_heads()) == 1, script.get_heads()


GRANTS_TABLES = {"apis", "api_scopes", "api_applications", "api_application_scopes"}


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _run_in_thread(fn: Any, *args: Any) -> None:
    """Alembic's commands run their own event loop; keep them off the test's running one."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            fn(*args)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


async def test_grants_migration_downgrades_and_upgrades_again(any_db_url: str) -> None:
    config = alembic_config(any_db_url)
    db = Database(any_db_url)
    try:
        _run_in_thread(command.downgrade, config, "0001")
        async with db.connect() as conn:
            assert not GRANTS_TABLES & await conn.run_sync(_tables)
        _run_in_thread(command.upgrade, config, "head")
        async with db.connect() as conn:
            assert await conn.run_sync(_tables) >= GRANTS_TABLES
            assert await conn.run_sync(_differences) == []
    finally:
        await db.dispose()
