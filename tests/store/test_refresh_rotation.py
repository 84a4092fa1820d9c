"""``rotate_refresh_token``: the spend and the successor's insert, as one unit on both stores;
on a SQLite file also in one thread hop (``rotation_on_sqlite``), writing the same rows."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import insert, select

from claimflow.crypto import digest_secret
from claimflow.store import Database
from claimflow.store import oidc_refresh_tokens as rt
from claimflow.store import tables as t
from claimflow.store._rows import utcnow
from claimflow.store.pg_direct import PgStatement
from claimflow.store.sqlite_writes import PreparedWrite
from tests.helpers import refresh_successor


async def _sealed(db: Database) -> dict[str, bytes | None]:
    async with db.connect() as conn:
        rows = await conn.execute(
            select(t.refresh_tokens.c.token_hash, t.refresh_tokens.c.successor_sealed)
        )
        return {row.token_hash: row.successor_sealed for row in rows}


async def test_rotation_spends_once_and_stores_the_successor_once(any_db_url: str) -> None:
    db = Database(any_db_url)
    first = refresh_successor("first")
    async with db.transaction() as conn:
        await rt.create_refresh_token(
            conn,
            "first",
            family_id="family",
            client_id=first.client_id,
            user_id=first.user_id,
            org_code=first.org_code,
            scope=first.scope,
            audience=first.audience,
            auth_time=first.auth_time,
            ttl_seconds=first.ttl_seconds,
            access_token_jti=first.access_token_jti,
            access_token_expires_on=first.access_token_expires_on,
        )
    async with db.request_scope(), db.single_statement() as conn:
        assert await rt.rotate_refresh_token(
            conn,
            "first",
            family_id="family",
            successor=refresh_successor("second"),
            successor_sealed=b"s2",
        )
    async with db.request_scope(), db.single_statement() as conn:
        assert await rt.rotate_refresh_token(
            conn,
            "second",
            family_id="family",
            successor=refresh_successor("third"),
            successor_sealed=b"s3",
        )
    # Spending "second" dropped the successor kept on "first"; it keeps its own.
    assert await _sealed(db) == {
        digest_secret("first"): None,
        digest_secret("second"): b"s3",
        digest_secret("third"): None,
    }
    # A token already spent: nothing is stored and no other row changes.
    async with db.request_scope(), db.single_statement() as conn:
        assert not await rt.rotate_refresh_token(
            conn,
            "first",
            family_id="family",
            successor=refresh_successor("fourth"),
            successor_sealed=b"x",
        )
    assert await _sealed(db) == {
        digest_secret("first"): None,
        digest_secret("second"): b"s3",
        digest_secret("third"): None,
    }
    async with db.connect() as conn:
        third = await rt.find_refresh_token(conn, "third")
    assert third is not None and third.used_on is None and third.family_id == "family"
    await db.dispose()


def _fixed_successor(token: str) -> rt.Successor:
    """A successor whose times are fixed, so two stores write the same bytes for it."""
    at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    return dataclasses.replace(
        refresh_successor(token), auth_time=at, access_token_expires_on=at + timedelta(hours=1)
    )


async def _store(db: Database, token: str, family_id: str) -> None:
    stored = _fixed_successor(token)
    async with db.transaction() as conn:
        await rt.create_refresh_token(
            conn,
            token,
            family_id=family_id,
            client_id=stored.client_id,
            user_id=stored.user_id,
            org_code=stored.org_code,
            scope=stored.scope,
            audience=stored.audience,
            auth_time=stored.auth_time,
            ttl_seconds=stored.ttl_seconds,
            access_token_jti=stored.access_token_jti,
            access_token_expires_on=stored.access_token_expires_on,
        )


def _raw_rows(path: Path) -> list[dict[str, Any]]:
    """The table's rows as SQLite stores them (dates and JSON as the text written)."""
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.row_factory = sqlite3.Row
        rows = connection.execute("SELECT * FROM refresh_tokens ORDER BY token_hash")
        return [dict(row) for row in rows]


async def test_the_one_hop_rotation_writes_what_the_engine_rotation_writes(
    db_url: str, tmp_path: Path
) -> None:
    """SQLite file: ``Database.sqlite_transaction(rotation_on_sqlite(...))`` spends, clears and
    inserts exactly as ``rotate_refresh_token`` through the engine, byte for byte but the
    rotation's own clock (``used_on``, ``created_on``, ``expires_on``)."""
    engine_file = Path(db_url.split("///", 1)[1])
    hop_file = tmp_path / "one_hop.db"
    shutil.copy(engine_file, hop_file)
    by_engine, by_hop = Database(db_url), Database(f"sqlite+aiosqlite:///{hop_file}")
    steps = [("first", "second", b"s2", True), ("second", "third", b"s3", True)]
    steps.append(("first", "fourth", b"x", False))
    for db in (by_engine, by_hop):
        await _store(db, "first", "family")
    for presented, successor, sealed, wins in steps:
        async with by_engine.request_scope(), by_engine.single_statement() as conn:
            won = await rt.rotate_refresh_token(
                conn,
                presented,
                family_id="family",
                successor=_fixed_successor(successor),
                successor_sealed=sealed,
            )
        assert won is wins
        rotation = rt.rotation_on_sqlite(
            presented,
            family_id="family",
            successor=_fixed_successor(successor),
            successor_sealed=sealed,
        )
        assert await by_hop.sqlite_transaction(rotation) is wins
    clock = {"used_on", "created_on", "expires_on"}
    engine_rows, hop_rows = _raw_rows(engine_file), _raw_rows(hop_file)
    assert [{k: v for k, v in r.items() if k not in clock} for r in hop_rows] == [
        {k: v for k, v in r.items() if k not in clock} for r in engine_rows
    ]
    for engine_row, hop_row in zip(engine_rows, hop_rows, strict=True):
        for column in clock:
            engine_value, hop_value = engine_row[column], hop_row[column]
            assert type(hop_value) is type(engine_value), column
            assert hop_value is None or len(hop_value) == len(engine_value), column
    async with by_hop.connect() as conn:
        third = await rt.find_refresh_token(conn, "third")
        second = await rt.find_refresh_token(conn, "second")
    assert third is not None and third.used_on is None
    assert second is not None and second.used_on is not None
    assert abs(second.used_on - utcnow()) < timedelta(minutes=1)
    await by_engine.dispose()
    await by_hop.dispose()


async def test_a_one_hop_rotation_that_fails_leaves_nothing_spent(db_url: str) -> None:
    """The spend and the insert commit together or not at all; a failure is SQLAlchemy's
    error, as through the engine."""
    db = Database(db_url)
    await _store(db, "first", "family")
    await _store(db, "taken", "other")
    clashing = rt.rotation_on_sqlite(
        "first", family_id="family", successor=refresh_successor("taken")
    )
    with pytest.raises(sa_exc.IntegrityError):
        await db.sqlite_transaction(clashing)
    async with db.connect() as conn:
        first = await rt.find_refresh_token(conn, "first")
    assert first is not None and first.used_on is None
    rotation = rt.rotation_on_sqlite(
        "first", family_id="family", successor=refresh_successor("second")
    )
    assert await db.sqlite_transaction(rotation)
    await db.dispose()


_LONG_FAMILY = 2_000


async def _long_family(db: Database) -> str:
    """A family ``_LONG_FAMILY`` refreshes long (a session that lived for weeks): every row
    spent but the last, each naming its predecessor; returns the last token's value."""
    at = utcnow()
    rows = [
        {
            "token_hash": digest_secret(f"t{i}"),
            "family_id": "long",
            "client_id": "client",
            "user_id": "kp_user",
            "org_code": None,
            "scope": "openid offline",
            "audience": ["client"],
            "auth_time": at,
            "created_on": at,
            "expires_on": at + timedelta(days=30),
            "used_on": at if i < _LONG_FAMILY - 1 else None,
            "predecessor_hash": digest_secret(f"t{i - 1}") if i else None,
            "successor_sealed": b"sealed" if i == _LONG_FAMILY - 2 else None,
        }
        for i in range(_LONG_FAMILY)
    ]
    async with db.transaction() as conn:
        await conn.execute(insert(t.refresh_tokens), rows)
        if conn.dialect.name == "postgresql":
            await conn.exec_driver_sql("ANALYZE refresh_tokens")
    return f"t{_LONG_FAMILY - 1}"


def _rows_read(plan: dict[str, Any]) -> int:
    """Rows of ``refresh_tokens`` a PostgreSQL ``EXPLAIN (ANALYZE, FORMAT JSON)`` node and its
    children fetched, kept or filtered out."""
    own = 0
    names = (plan.get("Relation Name", ""), plan.get("Index Name", ""))
    if "Scan" in plan["Node Type"] and any("refresh_tokens" in name for name in names):
        own = int(plan.get("Actual Rows", 0)) * int(plan.get("Actual Loops", 1))
        own += int(plan.get("Rows Removed by Filter", 0))
        own += int(plan.get("Rows Removed by Index Recheck", 0))
    return own + sum(_rows_read(child) for child in plan.get("Plans", []))


async def test_a_spend_reads_the_same_few_rows_however_long_the_family(any_db_url: str) -> None:
    """Spent rows stay until they expire, so a session refreshed every few minutes for weeks
    leaves thousands in its family. The spend (and the predecessor's sealed successor it
    clears) finds its rows by primary key; matched on ``family_id`` it read all of them, and
    every refresh cost more than the last."""
    db = Database(any_db_url)
    presented = await _long_family(db)
    params = rt._spend_params(presented, b"next")
    async with db.transaction() as conn:
        if conn.dialect.name == "postgresql":
            statement = PgStatement(rt._SPEND)
            explained = await conn.exec_driver_sql(
                "EXPLAIN (ANALYZE, FORMAT JSON) " + statement.sql,
                statement.parameters(params),
            )
            plan = explained.scalar_one()
            plan = json.loads(plan) if isinstance(plan, str) else plan
            assert _rows_read(plan[0]["Plan"]) <= 10  # a handful, not the family's 2,000
        else:
            spend = PreparedWrite(rt._SPEND)
            raw = await conn.get_raw_connection()
            steps = raw.driver_connection._conn.execute(  # type: ignore[union-attr]
                "EXPLAIN QUERY PLAN " + spend.sql, spend.parameters(params)
            ).fetchall()
            searches = [step[3] for step in steps if "refresh_tokens" in step[3]]
            assert searches and all("(token_hash=?)" in step for step in searches), steps
        await conn.rollback()
    # And it still spends the presented token and clears its predecessor's sealed successor.
    async with db.request_scope(), db.single_statement() as conn:
        assert await rt.rotate_refresh_token(
            conn,
            presented,
            family_id="long",
            successor=refresh_successor("next"),
            successor_sealed=b"n",
        )
    sealed = await _sealed(db)
    assert sealed[digest_secret(f"t{_LONG_FAMILY - 2}")] is None
    assert sealed[digest_secret(presented)] == b"n"
    assert [token for token, value in sealed.items() if value is not None] == [
        digest_secret(presented)
    ]
    await db.dispose()
