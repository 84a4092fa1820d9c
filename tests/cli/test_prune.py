"""``claimflow prune``: expired sessions and revoked tokens are deleted, live ones kept."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from claimflow.store import Database, migrate, users
from claimflow.store import tables as t
from claimflow.store._rows import utcnow
from claimflow.store.oidc_revocations import revoke_jti
from claimflow.store.oidc_sessions import create_session
from tests.cli.conftest import Invoke


async def _seed(url: str) -> None:
    db = Database(url)
    try:
        async with db.transaction() as conn:
            user = await users.create_user(conn, email="someone@acme.test")
            await create_session(conn, "live-session", user.id, 600)
            await create_session(conn, "expired-session", user.id, -600)
            await revoke_jti(conn, "expired-jti", utcnow() - timedelta(minutes=1))
    finally:
        await db.dispose()


async def _revoked_jtis(url: str) -> list[str]:
    db = Database(url)
    try:
        async with db.connect() as conn:
            return list((await conn.execute(select(t.revoked_tokens.c.jti))).scalars())
    finally:
        await db.dispose()


def test_prune_deletes_expired_rows_and_reports_what_it_deleted(
    invoke: Invoke, cli_db_url: str
) -> None:
    migrate(cli_db_url)
    asyncio.run(_seed(cli_db_url))

    result = invoke("prune")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("pruned 2 rows: 0 authorization codes, 1 sessions,")
    assert "1 revoked access tokens" in result.stdout
    assert asyncio.run(_revoked_jtis(cli_db_url)) == []

    again = invoke("prune")
    assert again.stdout.startswith("pruned 0 rows")


def test_prune_creates_the_schema_of_a_new_database(invoke: Invoke, cli_db_url: str) -> None:
    result = invoke("prune")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("pruned 0 rows")
