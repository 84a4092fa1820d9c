"""``store.pg_direct``: the token endpoint's statements on asyncpg directly survive a connection
the server killed, and a server that is not there is a ``ConnectionError`` (503 upstream)."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest

from claimflow.crypto import digest_secret
from claimflow.domain import ApplicationType
from claimflow.store import Database, applications, oidc_refresh_tokens, refresh_grant_reads
from claimflow.store.pg_direct import DirectPool
from tests.helpers import free_port, refresh_successor


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


def _scanned_tables(plan: dict[str, Any]) -> set[str]:
    """Tables a PostgreSQL JSON plan reads with a sequential scan."""
    scanned = {plan["Relation Name"]} if plan["Node Type"] == "Seq Scan" else set()
    for child in plan.get("Plans", []):
        scanned |= _scanned_tables(child)
    return scanned


async def test_a_plan_made_while_the_tables_are_small_reads_by_key(pg_url: str) -> None:
    """A connection keeps a statement's generic plan; made on a near-empty table (a new
    deployment), a sequential scan was the cheaper plan and stayed as the table grew. The
    pool's plans for a refresh's read and its rotation look rows up by key even then."""
    db = Database(pg_url)
    assert db.direct is not None
    await db.direct.fetchval("SET plan_cache_mode = force_generic_plan", ())
    rotation = oidc_refresh_tokens._ROTATE_DIRECT
    rotation_args = rotation.parameters(
        oidc_refresh_tokens._rotate_params(
            "presented", "family", refresh_successor("next"), b"sealed"
        )
    )
    read_args = (digest_secret("presented"), "user:", "org:")
    for sql, args in [(refresh_grant_reads._SQL, read_args), (rotation.sql, rotation_args)]:
        plan = await db.direct.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", args)
        document = json.loads(plan) if isinstance(plan, str) else plan
        scanned = _scanned_tables(document[0]["Plan"])
        assert not scanned & {"refresh_tokens", "users", "billing_versions"}, scanned
    await db.dispose()
