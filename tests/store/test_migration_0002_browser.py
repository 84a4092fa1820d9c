"""Migration ``0002_browser`` (after ``0002_throttle``) adds ``applications.allowed_origins`` on SQLite and PostgreSQL:
applications created before it get an empty list, and it downgrades cleanly."""

from __future__ import annotations

import secrets
from pathlib import Path

import asyncpg
from alembic import command
from sqlalchemy import inspect, text

from claimflow.store import Database, migrate
from claimflow.store.database import alembic_config
from tests.conftest import PG_SERVER
from tests.conftest import _in_thread as in_thread

INSERT_APP = text(
    "INSERT INTO applications (client_id, name, type, redirect_uris, logout_uris, scopes, "
    "require_organization, created_on) VALUES ('old', 'Old', 'spa', '[]', '[]', '[]', false, "
    "CURRENT_TIMESTAMP)"
)


async def upgrade_keeps_existing_applications(url: str) -> None:
    in_thread(migrate, url, "0001")
    db = Database(url)
    try:
        async with db.transaction() as conn:
            await conn.execute(INSERT_APP)
        in_thread(migrate, url, "0002_browser")
        async with db.connect() as conn:
            row = (await conn.execute(text("SELECT allowed_origins FROM applications"))).one()
        assert row.allowed_origins in ([], "[]")
        in_thread(command.downgrade, alembic_config(url), "0001")
        async with db.connect() as conn:
            names = await conn.run_sync(
                lambda sync: [c["name"] for c in inspect(sync).get_columns("applications")]
            )
        assert "allowed_origins" not in names
    finally:
        await db.dispose()


async def test_upgrade_and_downgrade_on_sqlite(tmp_path: Path) -> None:
    await upgrade_keeps_existing_applications(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")


async def test_upgrade_and_downgrade_on_postgresql() -> None:
    name = f"claimflow_migration_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(f"{PG_SERVER}/postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = f"postgresql+asyncpg://{PG_SERVER.split('://', 1)[1]}/{name}"
        await upgrade_keeps_existing_applications(url)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
