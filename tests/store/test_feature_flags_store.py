"""The feature_flags claim's write-time bound holds against concurrent writers on PostgreSQL.

Two transactions each add an override that fits alone but not together. The second one's check
must see the first one's row, so it has to wait for the first to commit; without the table lock
both checks pass on their own snapshot and both commit (verified by removing the lock).
"""

from __future__ import annotations

import asyncio

import pytest

from claimflow.domain import FlagType, OverrideLevel
from claimflow.errors import InvalidRequest
from claimflow.store import Database, feature_flags, organizations
from claimflow.store import tables as t

LONG = "x" * 255


async def _business(db: Database) -> None:
    """``left`` and ``right`` overridable by Acme, fillers leaving room for one long override."""
    async with db.transaction() as conn:
        await organizations.create_organization(conn, name="Acme", code="org_acme")
        for key in ("left", "right"):
            await feature_flags.create_flag(
                conn,
                key=key,
                name=key,
                description=None,
                flag_type=FlagType.STRING,
                allow_override_level=OverrideLevel.ORGANIZATION,
                default_value="",
            )
        filler = 0
        while True:
            # 255 more bytes of headroom than one long override needs, less than two.
            await feature_flags.create_flag(
                conn,
                key=f"filler_{filler}",
                name="f",
                description=None,
                flag_type=FlagType.STRING,
                allow_override_level=OverrideLevel.ENVIRONMENT,
                default_value="f" * 100,
            )
            filler += 1
            await feature_flags.set_organization_override(conn, "org_acme", "left", LONG)
            try:
                await feature_flags.set_organization_override(conn, "org_acme", "right", LONG)
            except InvalidRequest:
                await conn.execute(t.organization_feature_flags.delete())
                return
            await conn.execute(t.organization_feature_flags.delete())


async def test_the_second_of_two_concurrent_overrides_waits_and_is_refused(pg_url: str) -> None:
    db = Database(pg_url)
    other = Database(pg_url)
    try:
        await _business(db)

        async def second() -> None:
            async with other.transaction() as conn:
                await feature_flags.set_organization_override(conn, "org_acme", "right", LONG)

        async with db.transaction() as conn:
            await feature_flags.set_organization_override(conn, "org_acme", "left", LONG)
            racing = asyncio.create_task(second())
            await asyncio.sleep(0.5)
            assert not racing.done(), "the second writer did not wait for the first"
        with pytest.raises(InvalidRequest) as refused:
            await racing
        assert refused.value.code == "FEATURE_FLAGS_TOO_LARGE"
        async with db.connect() as conn:
            sizes = await feature_flags.resolved_flags(conn, user_id=None, org_code="org_acme")
        assert {r.flag.key: r.value for r in sizes}["right"] == ""
    finally:
        await db.dispose()
        await other.dispose()
