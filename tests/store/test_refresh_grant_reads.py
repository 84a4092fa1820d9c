"""``refresh_grant_reads.read_refresh_grant`` (PostgreSQL, one statement) and
``read_refresh_grant_on_loop`` (a SQLite file, one snapshot on the event loop) read exactly what
the separate reads of the refresh grant read: the token, the user with memberships and grants,
the feature flags in the token's organization, and the billing version of its subject."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from claimflow.domain import FlagType, OverrideLevel
from claimflow.store import (
    Database,
    billing_versions,
    feature_flags,
    oidc_refresh_tokens,
    organizations,
    roles,
    users,
)
from claimflow.store.billing_versions import StoreBillingVersions
from claimflow.store.refresh_grant_reads import (
    RefreshGrantRead,
    read_refresh_grant,
    read_refresh_grant_on_loop,
)


async def _token(db: Database, raw: str, user_id: str, org_code: str | None) -> None:
    async with db.transaction() as conn:
        await oidc_refresh_tokens.create_refresh_token(
            conn,
            raw,
            family_id=f"fam_{raw}",
            client_id="web",
            user_id=user_id,
            org_code=org_code,
            scope="openid offline",
            audience=["web", "api.example"],
            auth_time=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
            ttl_seconds=3600,
            access_token_jti=f"jti_{raw}",
            access_token_expires_on=datetime(2026, 1, 2, 4, 4, 5, tzinfo=UTC),
        )


Case = tuple[str, str, str | None]
"""A refresh token's value, its user's id and its organization."""


async def _seed(db: Database) -> list[Case]:
    """Members with roles, direct and role permissions and flag overrides, a suspended member, a
    removed member, a user with no membership, a deleted user; one token for each case."""
    async with db.transaction() as conn:
        alice = await users.create_user(conn, email="alice@example.com", given_name="Alice")
        carol = await users.create_user(conn, email="carol@example.com")
        loner = await users.create_user(conn, email="loner@example.com")
        dave = await users.create_user(conn, email="dave@example.com")
        erin = await users.create_user(conn, email="erin@example.com")
        for code in ("org_b", "org_a"):
            await organizations.create_organization(conn, name=code, code=code)
        viewer = await roles.create_role(conn, key="viewer", name="Viewer")
        reports = await roles.create_permission(conn, key="read:reports", name="Reports")
        await roles.grant_to_role(conn, viewer.id, reports.id)
        await organizations.add_member(
            conn, "org_a", alice.id, roles=["admin", "viewer"], permissions=["read:reports"]
        )
        await organizations.add_member(conn, "org_b", alice.id, roles=["viewer"])
        await organizations.add_member(conn, "org_a", carol.id, roles=["admin"])
        await organizations.add_member(conn, "org_b", carol.id)
        await organizations.add_member(conn, "org_a", dave.id, permissions=["read:reports"])
        await organizations.add_member(conn, "org_b", dave.id, roles=["viewer"])
        await organizations.remove_member(conn, "org_b", dave.id)
        await organizations.add_member(conn, "org_a", erin.id, roles=["admin"])
        await users.update_user(conn, carol.id, is_suspended=True)
        for i, flag_type in enumerate((FlagType.BOOLEAN, FlagType.INTEGER, FlagType.STRING)):
            default = {"b": "true", "i": "5", "s": "blue"}[flag_type.claim_code]
            await feature_flags.create_flag(
                conn,
                key=f"flag_{2 - i}",
                name=f"Flag {i}",
                description="why" if i else None,
                flag_type=flag_type,
                allow_override_level=OverrideLevel.USER,
                default_value=default,
            )
        await feature_flags.set_organization_override(conn, "org_a", "flag_0", "red")
        await feature_flags.set_organization_override(conn, "org_a", "flag_1", "7")
        await feature_flags.set_user_override(conn, alice.id, "flag_1", "9")
        await billing_versions.bump_subjects(conn, ["org:org_a", "org:org_a", f"user:{alice.id}"])
        await billing_versions.bump_subjects(conn, ["org:org_a"])
    cases = [
        ("in_org_a", alice.id, "org_a"),
        ("in_org_b", alice.id, "org_b"),
        ("personal", alice.id, None),
        ("suspended", carol.id, "org_a"),
        ("no_membership", loner.id, None),
        ("removed", dave.id, "org_b"),
        ("user_gone", erin.id, "org_a"),
    ]
    for raw, user_id, org_code in cases:
        await _token(db, raw, user_id, org_code)
    async with db.transaction() as conn:
        await users.delete_user(conn, erin.id)
    return cases


async def _assert_reads_as_separately(
    db: Database, cases: list[Case], read: Callable[[str], Awaitable[RefreshGrantRead | None]]
) -> None:
    """Each case read at once equals the separate reads of the engine path (the billing version
    handed over with the request as the one ``StoreBillingVersions`` would read)."""
    async with db.connect() as conn:
        for raw, user_id, org_code in cases:
            found = await read(raw)
            assert found is not None
            assert found.token == await oidc_refresh_tokens.find_refresh_token(conn, raw)
            subject = await organizations.token_subject(conn, user_id)
            assert (found.user, found.memberships) == subject, raw
            flags = await feature_flags.resolved_flags(conn, user_id=user_id, org_code=org_code)
            assert found.flags == flags, raw
            billing = f"org:{org_code}" if org_code else f"user:{user_id}"
            expected = await billing_versions.version_of(conn, billing)
            assert StoreBillingVersions(db).known(billing) == expected, raw
            assert await StoreBillingVersions(db).current(billing) == expected
        assert await read("unknown") is None
    found = await read("in_org_a")
    assert found is not None
    assert [m.org_code for m in found.memberships] == ["org_a", "org_b"]
    assert found.memberships[0].roles == ("admin", "viewer")
    assert found.memberships[0].permissions == ("read:reports",)
    assert found.memberships[1].permissions == ("read:reports",)
    assert [(f.flag.key, f.value) for f in found.flags] == [
        ("flag_0", "red"),
        ("flag_1", 9),
        ("flag_2", True),
    ]
    assert found.token.audience == ("web", "api.example")
    suspended = await read("suspended")
    assert suspended is not None and suspended.user is not None
    assert suspended.user.is_suspended and suspended.memberships == []
    gone = await read("user_gone")
    assert gone is not None and gone.user is None and gone.memberships == []
    removed = await read("removed")
    assert removed is not None and [m.org_code for m in removed.memberships] == ["org_a"]
    personal = await read("personal")
    assert personal is not None and personal.token.org_code is None


async def test_the_one_statement_reads_what_the_separate_reads_do(pg_url: str) -> None:
    db = Database(pg_url)
    direct = db.direct
    assert direct is not None
    cases = await _seed(db)
    await _assert_reads_as_separately(db, cases, lambda raw: read_refresh_grant(direct, raw))
    await db.dispose()


async def test_the_loop_snapshot_reads_what_the_separate_reads_do(db_url: str) -> None:
    """A SQLite file: the same reads on the event-loop reader, in one read transaction."""
    db = Database(db_url)
    reader = db.loop_reader
    assert reader is not None
    cases = await _seed(db)

    async def on_loop(raw: str) -> RefreshGrantRead | None:
        return read_refresh_grant_on_loop(reader, raw)

    await _assert_reads_as_separately(db, cases, on_loop)
    await db.dispose()
