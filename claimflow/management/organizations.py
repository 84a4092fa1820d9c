"""Kinde's organization routes: ``/organization``, ``/organizations``, ``/organization/{code}``.

``POST /organization`` honours ``is_create_billing_customer``, ``billing_email`` and
``billing_plan_code`` in one transaction, and ``GET /organization?expand=billing`` returns
``billing.billing_customer_id`` and ``billing.agreements`` — the two calls the B2B billing
workflow makes (design §1).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from claimflow.domain import Organization
from claimflow.errors import InvalidRequest
from claimflow.events import outbox
from claimflow.events.types import EventType
from claimflow.management.auth import require_scope, services_of
from claimflow.management.wire import (
    DEFAULT_PAGE_SIZE,
    OK,
    Code,
    CodePath,
    CodeQuery,
    Cursor,
    Email,
    Name,
    OptionalText,
    PageSize,
    StrictModel,
    expansions,
    iso,
    next_token_page,
)
from claimflow.store import billing, organizations

router = APIRouter(tags=["Organizations"])


class CreateOrganization(BaseModel):
    """Kinde's ``createOrganization`` body; branding fields Kinde accepts are ignored here."""

    model_config = StrictModel

    name: Name
    external_id: OptionalText | None = None
    handle: Code | None = None
    is_auto_membership_enabled: bool = False
    is_create_billing_customer: bool = False
    billing_email: Email | None = None
    billing_plan_code: Code | None = None


class UpdateOrganization(BaseModel):
    model_config = StrictModel

    name: Name | None = None
    external_id: OptionalText | None = None
    handle: Code | None = None
    is_auto_membership_enabled: bool | None = None


def organization_json(org: Organization) -> dict[str, Any]:
    """Kinde's ``get_organization_response`` for what we store."""
    return {
        "code": org.code,
        "name": org.name,
        "handle": org.handle,
        "is_default": False,
        "external_id": org.external_id,
        "is_auto_membership_enabled": org.is_auto_membership_enabled,
        "created_on": iso(org.created_on),
        "is_suspended": False,
        "suspended_on": None,
    }


@router.get("/organization", summary="Get an organization")
async def get_organization(
    request: Request,
    code: CodeQuery,
    expand: Annotated[str | None, Query(max_length=64)] = None,
    _: object = Depends(require_scope("read:organizations")),
) -> dict[str, Any]:
    wanted = expansions(expand, ("billing",))
    async with services_of(request).db.connect() as conn:
        org = await organizations.get_organization(conn, code)
        body = organization_json(org)
        customer = await billing.customer_of_organization(conn, code) if wanted else None
        if customer is not None:
            agreements = await billing.customer_agreements(conn, customer.id)
            body["billing"] = {
                "billing_customer_id": customer.id,
                "agreements": [
                    {"plan_code": a.plan_code, "agreement_id": a.id} for a in agreements
                ],
            }
    return body


@router.post("/organization", summary="Create an organization")
async def create_organization(
    request: Request,
    body: CreateOrganization,
    _: object = Depends(require_scope("create:organizations")),
) -> dict[str, Any]:
    if not body.is_create_billing_customer and (body.billing_email or body.billing_plan_code):
        raise InvalidRequest(
            "billing_email and billing_plan_code need is_create_billing_customer=true.",
            "BILLING_CUSTOMER_REQUIRED",
        )
    services = services_of(request)
    customer_id: str | None = None
    async with services.db.transaction() as conn:
        org = await organizations.create_organization(
            conn,
            name=body.name,
            handle=body.handle,
            external_id=body.external_id,
            is_auto_membership_enabled=body.is_auto_membership_enabled,
        )
        if body.is_create_billing_customer:
            customer = await billing.create_customer(
                conn, org_code=org.code, email=body.billing_email
            )
            customer_id = customer.id
            if body.billing_plan_code is not None:
                agreement = await billing.create_agreement(
                    conn, customer_id=customer.id, plan_code=body.billing_plan_code
                )
                await outbox.agreement_created(conn, agreement)
        await outbox.organization_changed(conn, EventType.ORGANIZATION_CREATED, org.code)
    if customer_id is not None and body.billing_plan_code is not None:
        await services.billing_changes.publish([customer_id])
    created: dict[str, Any] = {"code": org.code}
    if customer_id is not None:
        created["billing_customer_id"] = customer_id
    return {**OK, "organization": created}


@router.get("/organizations", summary="List organizations")
async def list_organizations(
    request: Request,
    page_size: PageSize = None,
    next_token: Cursor = None,
    sort: Annotated[
        str | None, Query(pattern=r"^(name_asc|name_desc|email_asc|email_desc)$")
    ] = None,
    _: object = Depends(require_scope("read:organizations")),
) -> dict[str, Any]:
    """Ordered by code; ``next_token`` is the last code of the page, present only if more exist.

    ``sort`` is accepted for compatibility; pages are always in code order so that the
    ``next_token`` cursor stays stable while organizations are added.
    """
    size = page_size or DEFAULT_PAGE_SIZE
    async with services_of(request).db.connect() as conn:
        rows = await organizations.list_organizations(conn, limit=size + 1, after_code=next_token)
    page, more = next_token_page(rows, size, lambda org: org.code)
    return {
        **OK,
        "organizations": [
            {
                "code": org.code,
                "name": org.name,
                "handle": org.handle,
                "is_default": False,
                "external_id": org.external_id,
                "is_auto_membership_enabled": org.is_auto_membership_enabled,
            }
            for org in page
        ],
        **more,
    }


@router.patch("/organization/{org_code}", summary="Update an organization")
async def update_organization(
    request: Request,
    org_code: CodePath,
    body: UpdateOrganization | None = None,
    _: object = Depends(require_scope("update:organizations")),
) -> dict[str, str]:
    changes = body.model_dump(exclude_unset=True, exclude_none=True) if body else {}
    async with services_of(request).db.transaction() as conn:
        await organizations.update_organization(conn, org_code, **changes)
        await outbox.organization_changed(conn, EventType.ORGANIZATION_UPDATED, org_code)
    return OK


@router.delete("/organization/{org_code}", summary="Delete an organization")
async def delete_organization(
    request: Request,
    org_code: CodePath,
    _: object = Depends(require_scope("delete:organizations")),
) -> dict[str, str]:
    """Deletes the organization, its memberships and its billing customer; caches are told."""
    services = services_of(request)
    async with services.db.transaction() as conn:
        customer = await billing.customer_of_organization(conn, org_code)
        await organizations.delete_organization(conn, org_code)
        await outbox.organization_deleted(conn, org_code)
    if customer is not None:
        await services.billing_changes.publish([customer.id])
    return OK
