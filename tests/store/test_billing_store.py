"""The store's billing rules, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from claimflow.domain import FeatureKind
from claimflow.errors import Conflict, InvalidRequest, NotFound
from claimflow.store import Database, billing, organizations, users
from claimflow.store.billing import PriceInput


async def _catalogue(db: Database) -> None:
    async with db.transaction() as conn:
        await billing.create_feature(conn, code="seats", name="Seats", kind=FeatureKind.LIMIT)
        await billing.create_feature(conn, code="sso", name="SSO", kind=FeatureKind.BOOLEAN)
        await billing.create_plan(
            conn,
            code="free",
            name="Free",
            prices=[PriceInput("seats", "Seats", 0, None, 1, 3)],
        )
        await billing.create_plan(
            conn,
            code="pro",
            name="Pro",
            prices=[PriceInput("seats", "Seats", 0, 5, 1, 50), PriceInput("sso", "SSO", 1000)],
        )


async def test_plan_change_replaces_entitlements_at_once(any_db_url: str) -> None:
    db = Database(any_db_url)
    await _catalogue(db)
    async with db.transaction() as conn:
        org = await organizations.create_organization(conn, name="Acme")
        customer = await billing.create_customer(conn, org_code=org.code, email="b@acme.test")
        await billing.create_agreement(conn, customer_id=customer.id, plan_code="free")
    async with db.connect() as conn:
        free = await billing.customer_entitlements(conn, customer.id)
    assert [(e.feature_code, e.entitlement_limit_max) for e in free] == [("seats", 3)]

    async with db.transaction() as conn:
        await billing.create_agreement(conn, customer_id=customer.id, plan_code="pro")
    async with db.connect() as conn:
        pro = await billing.customer_entitlements(conn, customer.id)
        active = await billing.customer_agreements(conn, customer.id)
    assert [(e.feature_code, e.entitlement_limit_max) for e in pro] == [
        ("seats", 50),
        ("sso", None),
    ]
    assert [a.plan_code for a in active] == ["pro"]
    await db.dispose()


async def test_customer_has_exactly_one_owner(any_db_url: str) -> None:
    db = Database(any_db_url)
    async with db.transaction() as conn:
        org = await organizations.create_organization(conn, name="Acme")
        user = await users.create_user(conn, email="Ann@Example.test")
        await billing.create_customer(conn, org_code=org.code)
    with pytest.raises(InvalidRequest):
        async with db.transaction() as conn:
            await billing.create_customer(conn, org_code=org.code, user_id=user.id)
    with pytest.raises(Conflict):
        async with db.transaction() as conn:
            await billing.create_customer(conn, org_code=org.code)
    with pytest.raises(NotFound):
        async with db.transaction() as conn:
            await billing.create_customer(conn, org_code="org_missing")
    async with db.connect() as conn:
        assert len(await billing.list_customers(conn)) == 1
        found = await users.find_user_by_email(conn, "ann@example.test")
    assert found is not None and found.id == user.id
    await db.dispose()


async def test_failed_unit_of_work_writes_nothing(any_db_url: str) -> None:
    db = Database(any_db_url)
    await _catalogue(db)
    with pytest.raises(InvalidRequest):
        async with db.transaction() as conn:
            await billing.create_plan(
                conn, code="bad", name="Bad", prices=[PriceInput("unknown", "X")]
            )
    async with db.connect() as conn:
        assert [p.code for p in await billing.list_plans(conn)] == ["free", "pro"]
    await db.dispose()


async def test_deleting_an_owner_deletes_only_its_customer_and_agreements(any_db_url: str) -> None:
    db = Database(any_db_url)
    await _catalogue(db)
    async with db.transaction() as conn:
        org = await organizations.create_organization(conn, name="Acme")
        user = await users.create_user(conn, email="ann@acme.test")
        await organizations.add_member(conn, org.code, user.id)
        org_customer = await billing.create_customer(conn, org_code=org.code)
        user_customer = await billing.create_customer(conn, user_id=user.id)
        for customer in (org_customer, user_customer):
            agreement = await billing.create_agreement(
                conn, customer_id=customer.id, plan_code="pro"
            )
            await billing.record_usage(
                conn, customer_agreement_id=agreement.id, feature_code="seats", quantity=2
            )

    async with db.transaction() as conn:
        await users.delete_user(conn, user.id)
    async with db.connect() as conn:
        assert await billing.find_customer(conn, user_customer.id) is None
        assert await billing.customer_agreements(conn, user_customer.id) == []
        assert await billing.find_customer(conn, org_customer.id) is not None
        assert [a.plan_code for a in await billing.customer_agreements(conn, org_customer.id)] == [
            "pro"
        ]

    async with db.transaction() as conn:
        await organizations.delete_organization(conn, org.code)
    async with db.connect() as conn:
        assert await billing.list_customers(conn) == []
        assert await billing.customer_agreements(conn, org_customer.id) == []
    await db.dispose()
