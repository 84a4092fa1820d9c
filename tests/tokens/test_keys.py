"""Signing-key rotation: a retired key stays published until its tokens can no longer be valid."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import jwt
from sqlalchemy import select

from claimflow.crypto import SecretBox
from claimflow.domain import ApplicationType
from claimflow.store import Database, applications
from claimflow.store import tables as t
from claimflow.tokens import KeyManager


async def _retired_expiry_seconds(db: Database) -> float:
    async with db.connect() as conn:
        row = (
            await conn.execute(
                select(t.signing_keys).where(t.signing_keys.c.retired_on.is_not(None))
            )
        ).one()
    return float((row.expires_on - row.retired_on).total_seconds())


async def test_retired_key_outlives_the_longest_configured_lifetime(any_db_url: str) -> None:
    db = Database(any_db_url)
    keys = KeyManager(db, SecretBox("k"), "RS256", max_token_ttl=3600)
    old = await keys.ensure_active_key()
    new = await keys.rotate()
    assert new.kid != old.kid
    assert await _retired_expiry_seconds(db) == timedelta(hours=1).total_seconds()
    published = {k["kid"] for k in (await keys.jwks())["keys"]}
    assert published == {old.kid, new.kid}
    await db.dispose()


async def test_retired_key_outlives_an_application_with_a_longer_token_lifetime(
    db_url: str,
) -> None:
    db = Database(db_url)
    async with db.transaction() as conn:
        await applications.create_application(conn, name="long", type=ApplicationType.REGULAR)
        app, _ = await applications.create_application(
            conn, name="longer", type=ApplicationType.REGULAR
        )
        await applications.update_application(conn, app.client_id, access_token_ttl_seconds=86400)
    keys = KeyManager(db, SecretBox("k"), "ES256", max_token_ttl=3600)
    await keys.ensure_active_key()
    await keys.rotate()
    assert await _retired_expiry_seconds(db) == 86400
    await db.dispose()


async def test_token_signed_by_a_retired_key_still_verifies(db_url: str) -> None:
    db = Database(db_url)
    keys = KeyManager(db, SecretBox("k"), "EdDSA", max_token_ttl=3600)
    token = await keys.sign({"iss": "i", "iat": 1, "exp": 9_999_999_999})
    await keys.rotate()
    assert (await keys.verify(token, issuer="i"))["iss"] == "i"
    await db.dispose()


async def test_a_rotation_elsewhere_is_picked_up_beside_the_requests(any_db_url: str) -> None:
    """Past ``REFRESH_SECONDS`` a worker reloads its keys in the background: the request that
    notices signs with the key it has (still published), and the rotation shows soon after."""
    db = Database(any_db_url)
    here = KeyManager(db, SecretBox("k"), "ES256", max_token_ttl=3600)
    elsewhere = KeyManager(db, SecretBox("k"), "ES256", max_token_ttl=3600)
    old = await here.ensure_active_key()
    new = await elsewhere.rotate()
    here.REFRESH_SECONDS = 0.0
    claims = {"iss": "i", "iat": 1, "exp": 9_999_999_999}
    first = await here.sign(claims)
    assert jwt.get_unverified_header(first)["kid"] == old.kid
    for _ in range(200):
        header = jwt.get_unverified_header(await here.sign(claims))
        if header["kid"] == new.kid:
            break
        await asyncio.sleep(0.01)
    assert header["kid"] == new.kid
    assert (await elsewhere.verify(first, issuer="i"))["iss"] == "i"
    await here.aclose()
    await db.dispose()
