"""``store.pg_direct``: the token endpoint's statements on asyncpg directly survive a connection
the server killed, and a server that is not there is a ``ConnectionError`` (503 upstream)."""

from __future__ import annotations

import asyncpg
import pytest

from claimflow.domain import ApplicationType
from claimflow.store import Database, applications
from claimflow.store.pg_direct import DirectPool
from tests.helpers import free_port


async def test_a_connection_killed_by_the_server_is_replaced_without_a_failed_read(
    pg_url: str,
) -> None:
    db = Database(pg_url)
    assert db.direct is not None
    async with db.transaction() as conn:
        app, secret = await applications.create_application(
            conn, name="Web", type=ApplicationType.REGULAR
        )
    assert secret is not None
    await _kill_the_pooled_connection(db.direct, pg_url)
    found = await applications.authenticate_client_direct(db.direct, app.client_id, secret)
    assert found == app
    assert await applications.authenticate_client_direct(db.direct, app.client_id, "wrong") is None
    # A write that the dead connection refused before sending it is sent on a fresh one.
    await _kill_the_pooled_connection(db.direct, pg_url)
    assert await db.direct.write_fetchrow("SELECT 1 AS one", ()) == (1,)
    await db.dispose()


async def _kill_the_pooled_connection(pool: DirectPool, pg_url: str) -> None:
    """What a restart of the server does to an idle pooled connection."""
    pid = await pool.fetchval("SELECT pg_backend_pid()", ())
    admin = await asyncpg.connect(pg_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


async def test_an_unreachable_server_is_a_connection_error() -> None:
    pool = DirectPool(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nowhere")
    with pytest.raises(ConnectionError):
        await pool.fetchval("SELECT 1", ())
    await pool.aclose()


async def test_json_and_jsonb_read_as_through_the_engine(pg_url: str) -> None:
    db = Database(pg_url)
    assert db.direct is not None
    for kind in ("json", "jsonb"):
        sql = f'SELECT CAST(\'{{"a": [1, "b"]}}\' AS {kind})'
        direct = await db.direct.fetchval(sql, ())
        async with db.connect() as conn:
            through_engine = (await conn.exec_driver_sql(sql)).scalar()
        assert direct == through_engine == {"a": [1, "b"]}
    await db.dispose()
