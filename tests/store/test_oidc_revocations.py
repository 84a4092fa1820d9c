"""``store.oidc_revocations`` on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from claimflow.store import Database
from claimflow.store._rows import utcnow
from claimflow.store.oidc_revocations import is_revoked, revoke_jti


async def test_revoking_one_jti_concurrently_twice_is_not_an_error(any_db_url: str) -> None:
    """Two replays of one code, or two revocations of one token, race to insert the same jti."""
    db = Database(any_db_url)
    expires_on = utcnow() + timedelta(minutes=5)

    async def revoke() -> None:
        async with db.transaction() as conn:
            await revoke_jti(conn, "same-jti", expires_on)
            await asyncio.sleep(0.05)  # hold the transaction open while the other inserts

    try:
        await asyncio.gather(revoke(), revoke())
        async with db.transaction() as conn:
            await revoke_jti(conn, "same-jti", expires_on)
        async with db.connect() as conn:
            assert await is_revoked(conn, "same-jti")
            assert not await is_revoked(conn, "other-jti")
    finally:
        await db.dispose()
