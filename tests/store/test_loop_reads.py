"""Client authentication read on the event loop (SQLite file): current, and never waiting.

The token endpoint reads the application through ``Database.loop_reader`` (``store.loop_reads``)
instead of aiosqlite. It must see every change committed before the request (a rotated secret,
a deleted application) at once, and a read that would wait for a lock must not block the loop:
it gives up at once and the request reads through the async engine.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import bindparam, column, select, table

from claimflow.services import Services
from claimflow.store import applications
from claimflow.store.loop_reads import LoopReadUnavailable, PreparedRead, SqliteLoopReader
from tests.helpers import create_m2m_app

TOKEN = "/oauth2/token"


def form(client_id: str, secret: str) -> dict[str, str]:
    return {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}


async def test_a_rotated_secret_and_a_deleted_application_are_refused_at_once(
    client: httpx.AsyncClient, services: Services
) -> None:
    assert services.db.loop_reader is not None
    client_id, secret = await create_m2m_app(services)
    assert (await client.post(TOKEN, data=form(client_id, secret))).status_code == 200

    async with services.db.transaction() as conn:
        await applications.update_application(
            conn, client_id, client_secret_hash=applications.digest_secret("b" * 40)
        )
    refused = await client.post(TOKEN, data=form(client_id, secret))
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    assert (await client.post(TOKEN, data=form(client_id, "b" * 40))).status_code == 200

    async with services.db.transaction() as conn:
        await applications.delete_application(conn, client_id)
    gone = await client.post(TOKEN, data=form(client_id, "b" * 40))
    assert gone.status_code == 401 and gone.json()["error"] == "invalid_client"


def test_a_read_that_would_wait_for_a_lock_gives_up_at_once(tmp_path: Path) -> None:
    """A rollback-journal file (not WAL yet) under another connection's exclusive lock: the
    loop reader raises at once instead of waiting (the token endpoint then reads through the
    async engine, which waits in its thread)."""
    path = tmp_path / "journal.sqlite"
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)")
    setup.execute("INSERT INTO t VALUES ('a', 'b')")
    reader = SqliteLoopReader(path)
    statement = PreparedRead(
        select(column("v")).select_from(table("t")).where(column("k") == bindparam("k"))
    )
    try:
        row = reader.first(statement, {"k": "a"})
        assert row is not None and row.v == "b"
        setup.execute("BEGIN EXCLUSIVE")
        started = time.perf_counter()
        with pytest.raises(LoopReadUnavailable):
            reader.first(statement, {"k": "a"})
        assert time.perf_counter() - started < 0.5
        setup.execute("COMMIT")
        row = reader.first(statement, {"k": "a"})
        assert row is not None and row.v == "b"
    finally:
        reader.close()
        setup.close()
