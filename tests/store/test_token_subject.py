"""``organizations.token_subject`` reads exactly what ``find_user`` and ``memberships_of_user``
read together (the token endpoint's one query for both)."""

from __future__ import annotations

from claimflow.store import Database, organizations, users


async def test_token_subject_matches_the_separate_reads(any_db_url: str) -> None:
    db = Database(any_db_url)
    async with db.transaction() as conn:
        alice = await users.create_user(conn, email="alice@example.com")
        loner = await users.create_user(conn, email="loner@example.com")
        for code in ("org_b", "org_a"):
            await organizations.create_organization(conn, name=code, code=code)
        await organizations.add_member(
            conn, "org_a", alice.id, roles=["admin"], permissions=["read:reports"]
        )
        await organizations.add_member(conn, "org_b", alice.id)
    async with db.connect() as conn:
        for user_id in (alice.id, loner.id):
            user, memberships = await organizations.token_subject(conn, user_id)
            assert user == await users.find_user(conn, user_id)
            assert memberships == await organizations.memberships_of_user(conn, user_id)
        assert await organizations.token_subject(conn, "kp_nobody") == (None, [])
        _, alice_memberships = await organizations.token_subject(conn, alice.id)
    assert [m.org_code for m in alice_memberships] == ["org_a", "org_b"]
    assert alice_memberships[0].roles == ("admin",)
    await db.dispose()
