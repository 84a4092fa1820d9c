"""``rotate_refresh_token``: the spend and the successor's insert, as one unit on both stores."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from claimflow.crypto import digest_secret
from claimflow.store import Database
from claimflow.store import oidc_refresh_tokens as rt
from claimflow.store import tables as t
from claimflow.store._rows import utcnow


def _successor(token: str) -> rt.Successor:
    return rt.Successor(
        token=token,
        client_id="client",
        user_id="kp_user",
        org_code=None,
        scope="openid offline",
        audience=("client",),
        auth_time=utcnow(),
        ttl_seconds=3600,
        access_token_jti="jti-" + token,
        access_token_expires_on=utcnow() + timedelta(hours=1),
    )


async def _sealed(db: Database) -> dict[str, bytes | None]:
    async with db.connect() as conn:
        rows = await conn.execute(
            select(t.refresh_tokens.c.token_hash, t.refresh_tokens.c.successor_sealed)
        )
        return {row.token_hash: row.successor_sealed for row in rows}


async def test_rotation_spends_once_and_stores_the_successor_once(any_db_url: str) -> None:
    db = Database(any_db_url)
    first = _successor("first")
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
            successor=_successor("second"),
            successor_sealed=b"s2",
        )
    async with db.request_scope(), db.single_statement() as conn:
        assert await rt.rotate_refresh_token(
            conn,
            "second",
            family_id="family",
            successor=_successor("third"),
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
            conn, "first", family_id="family", successor=_successor("fourth"), successor_sealed=b"x"
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
