"""``store.housekeeping.prune_expired`` on SQLite and PostgreSQL: expired rows go, live ones stay."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow.store import Database, users
from claimflow.store import tables as t
from claimflow.store._rows import utcnow
from claimflow.store.housekeeping import PrunedRows, prune_expired
from claimflow.store.oidc_codes import create_code, find_code, spend_code
from claimflow.store.oidc_login_attempts import (
    AttemptLimit,
    ThrottlePolicy,
    attempts_counted,
    count_attempt,
    record_failure,
)
from claimflow.store.oidc_refresh_tokens import create_refresh_token, find_refresh_token
from claimflow.store.oidc_revocations import is_revoked, revoke_jti
from claimflow.store.oidc_sessions import create_session

LIVE, EXPIRED = 600, -600
THROTTLE = ThrottlePolicy(window_seconds=LIVE, lockout_seconds=LIVE, max_lockout_seconds=LIVE)


async def _code(conn: AsyncConnection, code: str, user_id: str, ttl_seconds: int) -> None:
    await create_code(
        conn,
        code,
        client_id="spa",
        user_id=user_id,
        org_code=None,
        redirect_uri="http://localhost/callback",
        scope="openid",
        audience=(),
        nonce=None,
        code_challenge=None,
        code_challenge_method=None,
        auth_time=utcnow(),
        is_existing_session=False,
        ttl_seconds=ttl_seconds,
    )


async def _refresh_token(
    conn: AsyncConnection, token: str, user_id: str, ttl: int, access_ttl: int | None = None
) -> None:
    await create_refresh_token(
        conn,
        token,
        family_id="family-" + token,
        client_id="spa",
        user_id=user_id,
        org_code=None,
        scope="openid offline",
        audience=(),
        auth_time=utcnow(),
        ttl_seconds=ttl,
        access_token_jti="jti-" + token,
        access_token_expires_on=utcnow() + timedelta(seconds=access_ttl or ttl),
    )


async def _count(conn: AsyncConnection, table: Table) -> int:
    return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def test_prune_expired_deletes_only_rows_past_their_expiry(any_db_url: str) -> None:
    db = Database(any_db_url)
    now = utcnow()
    try:
        async with db.transaction() as conn:
            user = await users.create_user(conn, email="kept@acme.test")
            await _code(conn, "live-code", user.id, LIVE)
            await _code(conn, "expired-code", user.id, EXPIRED)
            await _code(conn, "spent-code", user.id, EXPIRED)
            await spend_code(
                conn,
                "spent-code",
                refresh_family_id="f",
                access_token_jti="jti-of-spent-code",
                access_token_expires_on=now + timedelta(seconds=LIVE),
            )
            await create_session(conn, "live-session", user.id, LIVE)
            await create_session(conn, "expired-session", user.id, EXPIRED)
            # A window opened long ago with a lock still in force, and a window long closed.
            long_ago = now - timedelta(seconds=2 * LIVE)
            locked = AttemptLimit("account:locked", 1)
            assert await count_attempt(conn, [locked], THROTTLE, now=long_ago) is None
            await record_failure(conn, [locked], THROTTLE, now=now - timedelta(seconds=1))
            quiet = AttemptLimit("account:quiet", 5)
            assert await count_attempt(conn, [quiet], THROTTLE, now=long_ago) is None
            await revoke_jti(conn, "live-jti", now + timedelta(seconds=LIVE))
            await revoke_jti(conn, "expired-jti", now + timedelta(seconds=EXPIRED))
            await _refresh_token(conn, "live-refresh", user.id, LIVE)
            await _refresh_token(conn, "expired-refresh", user.id, EXPIRED)
            await _refresh_token(conn, "outlived-refresh", user.id, EXPIRED, access_ttl=LIVE)

        async with db.transaction() as conn:
            pruned = await prune_expired(conn)

        assert pruned == PrunedRows(
            authorization_codes=1, sessions=1, login_attempts=1, revoked_tokens=1, refresh_tokens=1
        )
        assert pruned.total == 5
        async with db.connect() as conn:
            assert await find_code(conn, "live-code") is not None
            assert await find_code(conn, "expired-code") is None
            # Kept while its access token lives, so a replay can still revoke it (§4.1.2).
            assert await find_code(conn, "spent-code") is not None
            assert await _count(conn, t.sessions) == 1
            assert await attempts_counted(conn, "account:locked") == 1
            assert await _count(conn, t.login_attempts) == 1
            assert await is_revoked(conn, "live-jti")
            assert not await is_revoked(conn, "expired-jti")
            assert await find_refresh_token(conn, "live-refresh") is not None
            assert await find_refresh_token(conn, "expired-refresh") is None
            # Its access token still lives: revoking the family must still reach it.
            assert await find_refresh_token(conn, "outlived-refresh") is not None
            assert await _count(conn, t.users) == 1

        async with db.transaction() as conn:
            assert (await prune_expired(conn)).total == 0
    finally:
        await db.dispose()
