"""Migration 0002_kinde carries a membership's free-form roles and permissions into Kinde's model.

A database at revision 0001 with members holding JSON role keys and permission strings is
upgraded; each distinct key becomes one catalogue row and every member keeps exactly what they
held. Runs on SQLite and on a fresh PostgreSQL database.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text

from claimflow.store import Database, migrate, organizations
from tests.conftest import PG_SERVER, _in_thread


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
        return
    name = f"claimflow_mig_{os.getpid()}_{secrets.token_hex(3)}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(f"{PG_SERVER}/postgres")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    _in_thread(asyncio.run, admin(f'CREATE DATABASE "{name}"'))
    yield f"postgresql+asyncpg://{PG_SERVER.split('://', 1)[1]}/{name}"
    _in_thread(asyncio.run, admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def test_upgrade_turns_json_grants_into_catalogue_rows(fresh_url: str) -> None:
    _in_thread(migrate, fresh_url, "0002_browser")
    db = Database(fresh_url)
    async with db.transaction() as conn:
        await conn.execute(
            text(
                "INSERT INTO organizations (code, name, is_auto_membership_enabled, created_on) "
                "VALUES ('org_a', 'A', false, CURRENT_TIMESTAMP)"
            )
        )
        for user_id, roles, permissions in (
            ("kp_1", ["admin", "billing"], ["read:reports", "write:reports"]),
            ("kp_2", ["admin"], ["read:reports"]),
        ):
            await conn.execute(
                text(
                    "INSERT INTO users (id, is_suspended, total_sign_ins, failed_sign_ins, "
                    "created_on) VALUES (:id, false, 0, 0, CURRENT_TIMESTAMP)"
                ),
                {"id": user_id},
            )
            await conn.execute(
                text(
                    "INSERT INTO memberships (org_code, user_id, roles, permissions, joined_on) "
                    "VALUES ('org_a', :user_id, :roles, :permissions, CURRENT_TIMESTAMP)"
                ),
                {
                    "user_id": user_id,
                    "roles": json.dumps(roles),
                    "permissions": json.dumps(permissions),
                },
            )
    await db.dispose()
    _in_thread(migrate, fresh_url)
    db = Database(fresh_url)
    async with db.connect() as conn:
        first = await organizations.find_membership(conn, "org_a", "kp_1")
        second = await organizations.find_membership(conn, "org_a", "kp_2")
        role_count = (await conn.execute(text("SELECT count(*) FROM roles"))).scalar_one()
        permission_count = (
            await conn.execute(text("SELECT count(*) FROM permissions"))
        ).scalar_one()
    await db.dispose()
    assert first is not None and second is not None
    assert first.roles == ("admin", "billing")
    assert first.permissions == ("read:reports", "write:reports")
    assert second.roles == ("admin",) and second.permissions == ("read:reports",)
    assert (role_count, permission_count) == (2, 2)
