"""The billing catalogue (features, plans, prices), customers, agreements and metered usage.

Entitlements are not stored: ``customer_entitlements`` derives them from the customer's active
agreements and the current plan prices, so a change of either is visible at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow.domain import (
    Agreement,
    BillingCustomer,
    Entitlement,
    Feature,
    FeatureKind,
    MeterUsageRecord,
    Plan,
    PlanPrice,
    derive_entitlements,
)
from claimflow.domain.ids import new_agreement_id, new_customer_id, new_prefixed_id
from claimflow.errors import Conflict, InvalidRequest, NotFound
from claimflow.store import tables as t
from claimflow.store._rows import IntegrityError, as_utc, required_utc, utcnow
from claimflow.store.billing_versions import (
    bump_customers,
    bump_subjects,
    organization_subject,
    user_subject,
)


@dataclass(frozen=True, slots=True)
class PriceInput:
    """One price of a plan as the catalogue API receives it."""

    feature_code: str
    price_name: str
    fixed_charge: int | None = None
    unit_amount: int | None = None
    entitlement_limit_min: int | None = None
    entitlement_limit_max: int | None = None


# -- features -------------------------------------------------------------------------------


def _feature(row: Any) -> Feature:
    return Feature(code=row.code, name=row.name, kind=FeatureKind(row.kind))


async def create_feature(
    conn: AsyncConnection, *, code: str, name: str, kind: FeatureKind
) -> Feature:
    try:
        await conn.execute(
            insert(t.features).values(code=code, name=name, kind=kind.value, created_on=utcnow())
        )
    except IntegrityError as exc:
        raise Conflict("A feature with this code already exists.", "FEATURE_EXISTS") from exc
    return Feature(code=code, name=name, kind=kind)


async def get_feature(conn: AsyncConnection, code: str) -> Feature:
    row = (await conn.execute(select(t.features).where(t.features.c.code == code))).first()
    if row is None:
        raise NotFound("No feature with this code.", "FEATURE_INVALID")
    return _feature(row)


async def list_features(conn: AsyncConnection) -> list[Feature]:
    rows = await conn.execute(select(t.features).order_by(t.features.c.code))
    return [_feature(row) for row in rows]


async def update_feature(
    conn: AsyncConnection, code: str, *, name: str | None = None, kind: FeatureKind | None = None
) -> Feature:
    await get_feature(conn, code)
    changes: dict[str, Any] = {}
    if name is not None:
        changes["name"] = name
    if kind is not None:
        changes["kind"] = kind.value
    if changes:
        await conn.execute(update(t.features).where(t.features.c.code == code).values(**changes))
        await bump_customers(conn, await customers_with_feature(conn, code))
    return await get_feature(conn, code)


# -- plans ----------------------------------------------------------------------------------


def _price(row: Any) -> PlanPrice:
    return PlanPrice(
        id=row.id,
        feature_code=row.feature_code,
        price_name=row.price_name,
        fixed_charge=row.fixed_charge,
        unit_amount=row.unit_amount,
        entitlement_limit_min=row.entitlement_limit_min,
        entitlement_limit_max=row.entitlement_limit_max,
    )


async def _write_prices(
    conn: AsyncConnection, plan_code: str, prices: Sequence[PriceInput]
) -> None:
    codes = [p.feature_code for p in prices]
    if len(codes) != len(set(codes)):
        raise InvalidRequest("A plan can price each feature once.", "DUPLICATE_FEATURE")
    known = {f.code for f in await list_features(conn)}
    for price in prices:
        if price.feature_code not in known:
            raise InvalidRequest(f"Unknown feature code {price.feature_code!r}.", "FEATURE_INVALID")
        low, high = price.entitlement_limit_min, price.entitlement_limit_max
        if low is not None and high is not None and low > high:
            raise InvalidRequest(
                "entitlement_limit_min is greater than entitlement_limit_max.", "LIMIT_INVALID"
            )
    await conn.execute(delete(t.plan_prices).where(t.plan_prices.c.plan_code == plan_code))
    for price in prices:
        await conn.execute(
            insert(t.plan_prices).values(
                id=new_prefixed_id("price"),
                plan_code=plan_code,
                feature_code=price.feature_code,
                price_name=price.price_name,
                fixed_charge=price.fixed_charge,
                unit_amount=price.unit_amount,
                entitlement_limit_min=price.entitlement_limit_min,
                entitlement_limit_max=price.entitlement_limit_max,
            )
        )


async def create_plan(
    conn: AsyncConnection, *, code: str, name: str, prices: Sequence[PriceInput] = ()
) -> Plan:
    try:
        await conn.execute(insert(t.plans).values(code=code, name=name, created_on=utcnow()))
    except IntegrityError as exc:
        raise Conflict("A plan with this code already exists.", "PLAN_EXISTS") from exc
    await _write_prices(conn, code, prices)
    return await get_plan(conn, code)


async def get_plan(conn: AsyncConnection, code: str) -> Plan:
    row = (await conn.execute(select(t.plans).where(t.plans.c.code == code))).first()
    if row is None:
        raise NotFound("No plan with this code.", "PLAN_INVALID")
    prices = await conn.execute(
        select(t.plan_prices)
        .where(t.plan_prices.c.plan_code == code)
        .order_by(t.plan_prices.c.feature_code)
    )
    return Plan(
        code=row.code,
        name=row.name,
        prices=tuple(_price(p) for p in prices),
        created_on=as_utc(row.created_on),
    )


async def list_plans(conn: AsyncConnection) -> list[Plan]:
    codes = (await conn.execute(select(t.plans.c.code).order_by(t.plans.c.code))).scalars().all()
    return [await get_plan(conn, code) for code in codes]


async def update_plan(
    conn: AsyncConnection,
    code: str,
    *,
    name: str | None = None,
    prices: Sequence[PriceInput] | None = None,
) -> Plan:
    await get_plan(conn, code)
    if name is not None:
        await conn.execute(update(t.plans).where(t.plans.c.code == code).values(name=name))
    if prices is not None:
        await _write_prices(conn, code, prices)
    if name is not None or prices is not None:
        await bump_customers(conn, await customers_on_plan(conn, code))
    return await get_plan(conn, code)


async def customers_on_plan(conn: AsyncConnection, plan_code: str) -> list[str]:
    """Customer ids with any agreement on the plan (for cache invalidation)."""
    rows = await conn.execute(
        select(t.agreements.c.customer_id).where(t.agreements.c.plan_code == plan_code).distinct()
    )
    return [r for r in rows.scalars()]


async def customers_with_feature(conn: AsyncConnection, feature_code: str) -> list[str]:
    plan_codes = select(t.plan_prices.c.plan_code).where(
        t.plan_prices.c.feature_code == feature_code
    )
    rows = await conn.execute(
        select(t.agreements.c.customer_id)
        .where(t.agreements.c.plan_code.in_(plan_codes))
        .distinct()
    )
    return [r for r in rows.scalars()]


# -- customers ------------------------------------------------------------------------------


def _customer(row: Any) -> BillingCustomer:
    return BillingCustomer(
        id=row.id,
        email=row.email,
        org_code=row.org_code,
        user_id=row.user_id,
        created_on=required_utc(row.created_on),
    )


async def create_customer(
    conn: AsyncConnection,
    *,
    org_code: str | None = None,
    user_id: str | None = None,
    email: str | None = None,
    customer_id: str | None = None,
) -> BillingCustomer:
    """Create a billing customer owned by exactly one organization or one user."""
    if (org_code is None) == (user_id is None):
        raise InvalidRequest(
            "A customer is owned by exactly one of org_code or user_id.", "OWNER_INVALID"
        )
    if org_code is not None:
        owner = await conn.execute(
            select(t.organizations.c.code).where(t.organizations.c.code == org_code)
        )
        if owner.first() is None:
            raise NotFound("No organization with this code.", "ORGANIZATION_INVALID")
    if user_id is not None:
        owner = await conn.execute(select(t.users.c.id).where(t.users.c.id == user_id))
        if owner.first() is None:
            raise NotFound("No user with this id.", "USER_INVALID")
    customer = BillingCustomer(
        id=customer_id or new_customer_id(),
        email=email,
        org_code=org_code,
        user_id=user_id,
        created_on=utcnow(),
    )
    try:
        await conn.execute(
            insert(t.billing_customers).values(
                id=customer.id,
                email=email,
                org_code=org_code,
                user_id=user_id,
                created_on=customer.created_on,
            )
        )
    except IntegrityError as exc:
        raise Conflict("This owner already has a billing customer.", "CUSTOMER_EXISTS") from exc
    await bump_subjects(
        conn, [organization_subject(org_code) if org_code else user_subject(str(user_id))]
    )
    return customer


async def find_customer(conn: AsyncConnection, customer_id: str) -> BillingCustomer | None:
    row = (
        await conn.execute(
            select(t.billing_customers).where(t.billing_customers.c.id == customer_id)
        )
    ).first()
    return None if row is None else _customer(row)


async def get_customer(conn: AsyncConnection, customer_id: str) -> BillingCustomer:
    customer = await find_customer(conn, customer_id)
    if customer is None:
        raise NotFound("No billing customer with this id.", "CUSTOMER_INVALID")
    return customer


async def customer_of_organization(conn: AsyncConnection, org_code: str) -> BillingCustomer | None:
    row = (
        await conn.execute(
            select(t.billing_customers).where(t.billing_customers.c.org_code == org_code)
        )
    ).first()
    return None if row is None else _customer(row)


async def customer_of_user(conn: AsyncConnection, user_id: str) -> BillingCustomer | None:
    row = (
        await conn.execute(
            select(t.billing_customers).where(t.billing_customers.c.user_id == user_id)
        )
    ).first()
    return None if row is None else _customer(row)


async def delete_customer_of(
    conn: AsyncConnection, *, org_code: str | None = None, user_id: str | None = None
) -> None:
    """Delete the billing customer of an organization or a user, with its agreements and usage.

    Called inside the owner's deletion: a customer never outlives what it bills.
    """
    owner = t.billing_customers.c
    owned = owner.org_code == org_code if org_code is not None else owner.user_id == user_id
    customer_ids = select(owner.id).where(owned)
    await bump_subjects(
        conn,
        [organization_subject(org_code) if org_code is not None else user_subject(str(user_id))],
    )
    await conn.execute(delete(t.meter_usage).where(t.meter_usage.c.customer_id.in_(customer_ids)))
    await conn.execute(delete(t.agreements).where(t.agreements.c.customer_id.in_(customer_ids)))
    await conn.execute(delete(t.billing_customers).where(owned))


async def list_customers(conn: AsyncConnection) -> list[BillingCustomer]:
    rows = await conn.execute(select(t.billing_customers).order_by(t.billing_customers.c.id))
    return [_customer(row) for row in rows]


# -- agreements -----------------------------------------------------------------------------


def _agreement(row: Any) -> Agreement:
    return Agreement(
        id=row.id,
        customer_id=row.customer_id,
        plan_code=row.plan_code,
        started_on=required_utc(row.started_on),
        expires_on=as_utc(row.expires_on),
        cancelled_on=as_utc(row.cancelled_on),
        billing_group_id=row.billing_group_id,
    )


async def lock_customer(conn: AsyncConnection, customer_id: str) -> BillingCustomer:
    """Lock the customer row for the rest of the transaction (``FOR UPDATE`` on PostgreSQL;
    SQLite serialises writers anyway): plan changes of one customer queue up behind it."""
    await conn.execute(
        select(t.billing_customers.c.id)
        .where(t.billing_customers.c.id == customer_id)
        .with_for_update()
    )
    return await get_customer(conn, customer_id)


async def cancel_agreement(conn: AsyncConnection, agreement_id: str) -> Agreement:
    """Cancel one active agreement (Kinde's ``DELETE /billing/agreements``), bumping its
    owner's billing version; an agreement already cancelled or expired is a 400."""
    agreement = await get_agreement(conn, agreement_id)
    await lock_customer(conn, agreement.customer_id)
    now = utcnow()
    result = await conn.execute(
        update(t.agreements)
        .where(t.agreements.c.id == agreement_id, t.agreements.c.cancelled_on.is_(None))
        .values(cancelled_on=now)
    )
    if not result.rowcount or not agreement.is_active(now):
        raise InvalidRequest("The agreement is not active.", "AGREEMENT_INACTIVE")
    await bump_customers(conn, [agreement.customer_id])
    return await get_agreement(conn, agreement_id)


async def create_agreement(
    conn: AsyncConnection,
    *,
    customer_id: str,
    plan_code: str,
    expires_on: datetime | None = None,
    cancel_others: bool = True,
) -> Agreement:
    """Put a customer on a plan; by default cancels the customer's other active agreements.

    Kinde's ``POST /billing/agreements`` says the customer's existing agreements are cancelled
    when a new one is created, so a plan change is one call. The customer row is locked first
    (``FOR UPDATE`` on PostgreSQL; SQLite serialises writers anyway), so concurrent plan
    changes queue up and leave exactly one active agreement.
    """
    await conn.execute(
        select(t.billing_customers.c.id)
        .where(t.billing_customers.c.id == customer_id)
        .with_for_update()
    )
    await get_customer(conn, customer_id)
    await get_plan(conn, plan_code)
    now = utcnow()
    if cancel_others:
        await conn.execute(
            update(t.agreements)
            .where(t.agreements.c.customer_id == customer_id, t.agreements.c.cancelled_on.is_(None))
            .values(cancelled_on=now)
        )
    agreement = Agreement(
        id=new_agreement_id(),
        customer_id=customer_id,
        plan_code=plan_code,
        started_on=now,
        expires_on=expires_on,
        billing_group_id=new_prefixed_id("sbg"),
    )
    await conn.execute(
        insert(t.agreements).values(
            id=agreement.id,
            customer_id=customer_id,
            plan_code=plan_code,
            billing_group_id=agreement.billing_group_id,
            started_on=now,
            expires_on=expires_on,
        )
    )
    await bump_customers(conn, [customer_id])
    return agreement


async def customer_agreements(
    conn: AsyncConnection, customer_id: str, *, active_only: bool = True
) -> list[Agreement]:
    rows = await conn.execute(
        select(t.agreements)
        .where(t.agreements.c.customer_id == customer_id)
        .order_by(t.agreements.c.started_on, t.agreements.c.id)
    )
    result = [_agreement(row) for row in rows]
    if active_only:
        now = utcnow()
        result = [a for a in result if a.is_active(now)]
    return result


async def get_agreement(conn: AsyncConnection, agreement_id: str) -> Agreement:
    row = (
        await conn.execute(select(t.agreements).where(t.agreements.c.id == agreement_id))
    ).first()
    if row is None:
        raise NotFound("No agreement with this id.", "AGREEMENT_INVALID")
    return _agreement(row)


# -- entitlements ---------------------------------------------------------------------------


async def customer_entitlements(conn: AsyncConnection, customer_id: str) -> list[Entitlement]:
    agreements = await customer_agreements(conn, customer_id)
    plans = {code: await get_plan(conn, code) for code in {a.plan_code for a in agreements}}
    features = {f.code: f for f in await list_features(conn)}
    return derive_entitlements(agreements, plans, features, utcnow())


# -- metered usage --------------------------------------------------------------------------


async def record_usage(
    conn: AsyncConnection,
    *,
    customer_agreement_id: str,
    feature_code: str,
    quantity: int,
    recorded_on: datetime | None = None,
) -> MeterUsageRecord:
    agreement = await get_agreement(conn, customer_agreement_id)
    entitled = {e.feature_code for e in await customer_entitlements(conn, agreement.customer_id)}
    if feature_code not in entitled:
        raise InvalidRequest("The agreement does not include this feature.", "FEATURE_INVALID")
    record = MeterUsageRecord(
        id=new_prefixed_id("usage"),
        customer_id=agreement.customer_id,
        agreement_id=agreement.id,
        feature_code=feature_code,
        quantity=quantity,
        recorded_on=recorded_on or utcnow(),
    )
    await conn.execute(
        insert(t.meter_usage).values(
            id=record.id,
            customer_id=record.customer_id,
            agreement_id=record.agreement_id,
            feature_code=feature_code,
            quantity=quantity,
            recorded_on=record.recorded_on,
        )
    )
    return record
