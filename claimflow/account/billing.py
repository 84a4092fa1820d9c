"""Kinde's Account API for billing: ``/account_api/v1/entitlements`` and ``/entitlement/{key}``.

What the signed-in user's plan includes, read with their own access token, so a frontend can
check a feature without a Management API token (Kinde's js-utils ``getEntitlements()`` /
``getEntitlement(key)``, kinde-python-sdk ``Entitlements.get_all_entitlements()``). The data is
the ``org_billing`` claim's: a token issued for an organization reads that organization's
billing customer, a personal sign-in the user's own (the ``billingDetails`` claim), both derived
by the same store query the token workflows read (``store.billing.customer_entitlements``), every
page of it. Field names are the Account API's: ``feature_key`` (not the Management API's
``feature_code``) and plans as ``{key, name, subscribed_on}``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow.account.caller import AccountCaller, SignedInUser
from claimflow.account.paging import AccountPageSize, StartingAfter, account_page
from claimflow.domain import BillingCustomer, Entitlement
from claimflow.errors import NotFound
from claimflow.management.wire import CODE_PATTERN, iso, without_none
from claimflow.services import Services
from claimflow.store import billing

router = APIRouter(tags=["Account API"])

FeatureKey = Annotated[str, Path(pattern=CODE_PATTERN, max_length=64)]


def entitlement_json(entitlement: Entitlement) -> dict[str, Any]:
    """Kinde's Account API entitlement; absent amounts and limits are omitted, not null."""
    return without_none(
        {
            "id": entitlement.id,
            "fixed_charge": entitlement.fixed_charge,
            "price_name": entitlement.price_name,
            "unit_amount": entitlement.unit_amount,
            "feature_key": entitlement.feature_code,
            "feature_name": entitlement.feature_name,
            "entitlement_limit_max": entitlement.entitlement_limit_max,
            "entitlement_limit_min": entitlement.entitlement_limit_min,
        }
    )


async def _customer(conn: AsyncConnection, caller: AccountCaller) -> BillingCustomer | None:
    if caller.org_code is not None:
        return await billing.customer_of_organization(conn, caller.org_code)
    return await billing.customer_of_user(conn, caller.user_id)


@router.get("/account_api/v1/entitlements", summary="The signed-in user's entitlements")
async def get_entitlements(
    request: Request,
    caller: SignedInUser,
    page_size: AccountPageSize = None,
    starting_after: StartingAfter = None,
) -> dict[str, Any]:
    """Without a billing customer the lists are empty: nothing is paid for, nothing is wrong."""
    services: Services = request.app.state.services
    async with services.db.connect() as conn:
        customer = await _customer(conn, caller)
        if customer is None:
            agreements, entitlements = [], []
        else:
            agreements = await billing.customer_agreements(conn, customer.id)
            entitlements = await billing.customer_entitlements(conn, customer.id)
        plans = [
            {
                "key": agreement.plan_code,
                "name": (await billing.get_plan(conn, agreement.plan_code)).name,
                "subscribed_on": iso(agreement.started_on),
            }
            for agreement in agreements
        ]
    page, metadata = account_page(
        entitlements, lambda e: e.id, page_size=page_size, starting_after=starting_after
    )
    data = {
        "org_code": caller.org_code,
        "plans": plans,
        "entitlements": [entitlement_json(e) for e in page],
    }
    return {"data": without_none(data), "metadata": metadata}


@router.get("/account_api/v1/entitlement/{key}", summary="One entitlement, by feature key")
async def get_entitlement(
    request: Request,
    key: FeatureKey,
    caller: SignedInUser,
) -> dict[str, Any]:
    """404 ``ENTITLEMENT_NOT_FOUND`` when the plan does not include the feature."""
    services: Services = request.app.state.services
    async with services.db.connect() as conn:
        customer = await _customer(conn, caller)
        entitlements = (
            [] if customer is None else await billing.customer_entitlements(conn, customer.id)
        )
    found = next((e for e in entitlements if e.feature_code == key), None)
    if found is None:
        raise NotFound("The plan does not include this feature.", "ENTITLEMENT_NOT_FOUND")
    data = {"org_code": caller.org_code, "entitlement": entitlement_json(found)}
    return {"data": without_none(data), "metadata": {}}
