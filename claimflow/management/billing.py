"""Kinde's billing routes: ``/billing/entitlements``, ``/billing/agreements``, ``/billing/meter_usage``.

Entitlements are derived from the customer's active agreements at read time, so a plan change
through ``POST /billing/agreements`` (which cancels the customer's other agreements, as Kinde's
spec says) shows in ``GET /billing/entitlements`` at once; caches hear of it after the commit.
Both lists page with Kinde's ``page_size``/``starting_after``/``ending_before`` and ``has_more``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from claimflow.domain import Entitlement
from claimflow.errors import InvalidRequest
from claimflow.events import outbox
from claimflow.management.auth import M2MCaller, require_scope, services_of
from claimflow.management.plan_workflows import (
    check_plan_change,
    current_plan,
    require_unchanged,
)
from claimflow.management.wire import (
    MAX_AMOUNT,
    OK,
    Code,
    CodePath,
    CodeQuery,
    Cursor,
    OptionalCodeQuery,
    PageSize,
    StrictModel,
    cursor_page,
    iso,
    without_none,
)
from claimflow.store import billing
from claimflow.workflows.event import Trigger

router = APIRouter(tags=["Billing"])


class CreateAgreement(BaseModel):
    model_config = StrictModel

    customer_id: Code
    plan_code: Code
    is_invoice_now: bool | None = None
    is_prorate: bool | None = None


class MeterUsage(BaseModel):
    """Kinde's ``createMeterUsageRecord`` body; ``meter_value`` is a decimal string."""

    model_config = StrictModel

    customer_agreement_id: Code
    billing_feature_code: Code
    meter_value: Annotated[str, Field(pattern=r"^[0-9]{1,15}$")]
    meter_usage_timestamp: Annotated[datetime | None, Field(strict=False)] = None
    meter_type_code: Literal["absolute", "delta"] = "delta"


def entitlement_json(entitlement: Entitlement, max_value: int | None) -> dict[str, Any]:
    """One item of ``get_billing_entitlements_response``.

    Kinde's schema declares the amounts and limits as non-nullable integers, so an absent one is
    omitted; ``max_value`` stands in for an absent ``entitlement_limit_max`` as the spec says.
    """
    limit_max = entitlement.entitlement_limit_max
    return without_none(
        {
            "id": entitlement.id,
            "fixed_charge": entitlement.fixed_charge,
            "price_name": entitlement.price_name,
            "unit_amount": entitlement.unit_amount,
            "feature_code": entitlement.feature_code,
            "feature_name": entitlement.feature_name,
            "entitlement_limit_max": max_value if limit_max is None else limit_max,
            "entitlement_limit_min": entitlement.entitlement_limit_min,
        }
    )


def _max_value(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or int(raw) > MAX_AMOUNT:
        raise InvalidRequest("max_value must be a non-negative integer.", "MAX_VALUE_INVALID")
    return int(raw)


@router.get("/billing/entitlements", summary="Get a billing customer's entitlements")
async def get_entitlements(
    request: Request,
    customer_id: CodeQuery,
    page_size: PageSize = None,
    starting_after: Cursor = None,
    ending_before: Cursor = None,
    max_value: Annotated[str | None, Query(max_length=16)] = None,
    expand: Annotated[Literal["plans"] | None, Query()] = None,
    _: object = Depends(require_scope("read:billing_entitlements")),
) -> dict[str, Any]:
    limit_max = _max_value(max_value)
    async with services_of(request).db.connect() as conn:
        await billing.get_customer(conn, customer_id)
        agreements = await billing.customer_agreements(conn, customer_id)
        entitlements = await billing.customer_entitlements(conn, customer_id)
    page, has_more = cursor_page(
        entitlements,
        lambda e: e.id,
        page_size=page_size,
        starting_after=starting_after,
        ending_before=ending_before,
    )
    body: dict[str, Any] = {
        **OK,
        "has_more": has_more,
        "entitlements": [entitlement_json(e, limit_max) for e in page],
    }
    if expand == "plans":
        body["plans"] = [
            {"code": a.plan_code, "subscribed_on": iso(a.started_on)} for a in agreements
        ]
    return body


@router.get("/billing/agreements", summary="Get a billing customer's agreements")
async def get_agreements(
    request: Request,
    customer_id: CodeQuery,
    page_size: PageSize = None,
    starting_after: Cursor = None,
    ending_before: Cursor = None,
    feature_code: OptionalCodeQuery = None,
    _: object = Depends(require_scope("read:billing_agreements")),
) -> dict[str, Any]:
    """The customer's active agreements, each with the entitlements it grants."""
    async with services_of(request).db.connect() as conn:
        await billing.get_customer(conn, customer_id)
        agreements = await billing.customer_agreements(conn, customer_id)
        entitlements = await billing.customer_entitlements(conn, customer_id)
    granted: dict[str, list[dict[str, str]]] = {a.id: [] for a in agreements}
    for e in entitlements:
        granted.setdefault(e.agreement_id, []).append(
            {"feature_code": e.feature_code, "entitlement_id": e.id}
        )
    if feature_code is not None:
        agreements = [
            a for a in agreements if any(g["feature_code"] == feature_code for g in granted[a.id])
        ]
    page, has_more = cursor_page(
        agreements,
        lambda a: a.id,
        page_size=page_size,
        starting_after=starting_after,
        ending_before=ending_before,
    )
    items = [
        without_none(
            {
                "id": a.id,
                "plan_code": a.plan_code,
                "expires_on": iso(a.expires_on),
                "billing_group_id": a.billing_group_id,
                "entitlements": granted[a.id],
            }
        )
        for a in page
    ]
    return {**OK, "has_more": has_more, "agreements": items}


@router.post("/billing/agreements", summary="Put a billing customer on a plan")
async def create_agreement(
    request: Request,
    body: CreateAgreement,
    caller: Annotated[M2MCaller, Depends(require_scope("create:billing_agreements"))],
) -> dict[str, str]:
    """Creates the agreement and cancels the customer's other agreements (Kinde's contract),
    once the ``user:plan_selection`` workflows allow it (``plan_workflows``)."""
    services = services_of(request)
    async with services.db.connect() as conn:
        customer = await billing.get_customer(conn, body.customer_id)
        await billing.get_plan(conn, body.plan_code)
        judged = await billing.customer_agreements(conn, body.customer_id)
    checked = await check_plan_change(
        services,
        request,
        Trigger.USER_PLAN_SELECTION,
        customer,
        caller,
        current_plan_code=current_plan(judged),
        requested_plan_code=body.plan_code,
    )
    async with services.db.transaction() as conn:
        await billing.lock_customer(conn, body.customer_id)
        replaced = await billing.customer_agreements(conn, body.customer_id)
        if checked:
            require_unchanged(judged, replaced)
        agreement = await billing.create_agreement(
            conn, customer_id=body.customer_id, plan_code=body.plan_code
        )
        await outbox.agreement_created(conn, agreement, replaced)
    await services.billing_changes.publish([body.customer_id])
    return OK


async def _cancel_agreement(
    request: Request, agreement_id: str, caller: M2MCaller
) -> dict[str, str]:
    services = services_of(request)
    async with services.db.connect() as conn:
        agreement = await billing.get_agreement(conn, agreement_id)
        customer = await billing.get_customer(conn, agreement.customer_id)
        judged = await billing.customer_agreements(conn, customer.id)
    if agreement.id not in {a.id for a in judged}:
        raise InvalidRequest("The agreement is not active.", "AGREEMENT_INACTIVE")
    checked = await check_plan_change(
        services,
        request,
        Trigger.USER_PLAN_CANCELLATION_REQUEST,
        customer,
        caller,
        current_plan_code=agreement.plan_code,
        agreement_id=agreement.id,
    )
    async with services.db.transaction() as conn:
        await billing.lock_customer(conn, customer.id)
        if checked:
            require_unchanged(judged, await billing.customer_agreements(conn, customer.id))
        cancelled = await billing.cancel_agreement(conn, agreement_id)
        await outbox.agreement_cancelled(conn, cancelled)
    await services.billing_changes.publish([customer.id])
    return OK


@router.delete(
    "/billing/agreements/{agreement_id}",
    summary="Cancel a billing agreement (claimflow's path)",
)
async def cancel_agreement(
    request: Request,
    agreement_id: CodePath,
    caller: Annotated[M2MCaller, Depends(require_scope("delete:billing_agreements"))],
) -> dict[str, str]:
    """Cancels one active agreement, once the ``user:plan_cancellation_request`` workflows
    allow it. Kinde documents the cancellation as ``DELETE /api/v1/billing/agreements`` with
    the ``agreement_id`` (https://docs.kinde.com/billing/manage-plans/cancel-plans/) but its
    OpenAPI document has no such operation; this path and its scope are ours."""
    return await _cancel_agreement(request, agreement_id, caller)


@router.post("/billing/meter_usage", summary="Record metered usage")
async def create_meter_usage(
    request: Request,
    body: MeterUsage,
    _: object = Depends(require_scope("create:meter_usage")),
) -> dict[str, str]:
    recorded_on = body.meter_usage_timestamp
    if recorded_on is not None and (
        recorded_on.tzinfo is None or not 1970 <= recorded_on.year <= 9000
    ):
        raise InvalidRequest(
            "meter_usage_timestamp must be a date-time after 1970 with an offset (Z or ±HH:MM).",
            "TIMESTAMP_INVALID",
        )
    async with services_of(request).db.transaction() as conn:
        await billing.record_usage(
            conn,
            customer_agreement_id=body.customer_agreement_id,
            feature_code=body.billing_feature_code,
            quantity=int(body.meter_value),
            recorded_on=recorded_on,
        )
    return OK
