"""``refresh_grant_reads.read_refresh_grant`` (PostgreSQL, one statement) reads exactly what the
separate reads of the refresh grant read: the token, the user with memberships and grants, the
feature flags in the token's organization, and the billing version of its subject."""

from __future__ import annotations

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
from claimflow.store.refresh_grant_reads import read_refresh_grant


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


async def test_the_one_statement_reads_what_the_separate_reads_do(pg_url: str) -> None:
    db = Database(pg_url)
    assert db.direct is not None
    async with db.transaction() as conn:
        alice = await users.create_user(conn, email="alice@example.com", given_name="Alice")
        carol = await users.create_user(conn, email="carol@example.com")
        loner = await users.create_user(conn, email="loner@example.com")
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
        ("user_gone", "kp_gone", "org_a"),
    ]
    for raw, user_id, org_code in cases:
        await _token(db, raw, user_id, org_code)
    async with db.connect() as conn:
        for raw, user_id, org_code in cases:
            read = await read_refresh_grant(db.direct, raw)
            assert read is not None
            assert read.token == await oidc_refresh_tokens.find_refresh_token(conn, raw)
            assert (read.user, read.memberships) == await organizations.token_subject(conn, user_id)
            flags = await feature_flags.resolved_flags(conn, user_id=user_id, org_code=org_code)
            assert read.flags == flags, raw
            subject = f"org:{org_code}" if org_code else f"user:{user_id}"
            expected = await billing_versions.version_of(conn, subject)
            assert await StoreBillingVersions(db).current(subject) == expected
        assert await read_refresh_grant(db.direct, "unknown") is None
    read = await read_refresh_grant(db.direct, "in_org_a")
    assert read is not None
    assert [m.org_code for m in read.memberships] == ["org_a", "org_b"]
    assert read.memberships[0].roles == ("admin", "viewer")
    assert read.memberships[0].permissions == ("read:reports",)
    assert read.memberships[1].permissions == ("read:reports",)
    assert [(f.flag.key, f.value) for f in read.flags] == [
        ("flag_0", "red"),
        ("flag_1", 9),
        ("flag_2", True),
    ]
    assert read.token.audience == ("web", "api.example")
    await db.dispose()
