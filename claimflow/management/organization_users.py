"""Kinde's membership routes: ``/organizations/{org_code}/users`` and removal of one member.

Membership is what lets a user get a token for an organization, so adding members is
all-or-nothing: one unknown user id and nobody is added.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from claimflow.events import outbox
from claimflow.events.types import EventType
from claimflow.management.auth import require_scope, services_of
from claimflow.management.roles import Key
from claimflow.management.wire import (
    DEFAULT_PAGE_SIZE,
    OK,
    Code,
    CodePath,
    Cursor,
    PageSize,
    StrictModel,
    iso,
    next_token_page,
    without_none,
)
from claimflow.store import organizations, users

router = APIRouter(tags=["Organizations"])


class NewMember(BaseModel):
    model_config = StrictModel

    id: Code
    roles: list[Key] = Field(default_factory=list, max_length=100)
    permissions: list[Key] = Field(default_factory=list, max_length=100)


class AddMembers(BaseModel):
    model_config = StrictModel

    users: list[NewMember] = Field(default_factory=list, max_length=100)


@router.get("/organizations/{org_code}/users", summary="List an organization's members")
async def list_organization_users(
    request: Request,
    org_code: CodePath,
    page_size: PageSize = None,
    next_token: Cursor = None,
    sort: Annotated[str | None, Query(max_length=32)] = None,
    _: object = Depends(require_scope("read:organization_users")),
) -> dict[str, Any]:
    size = page_size or DEFAULT_PAGE_SIZE
    async with services_of(request).db.connect() as conn:
        await organizations.get_organization(conn, org_code)
        rows = await organizations.list_member_users(
            conn, org_code, limit=size + 1, after_user_id=next_token
        )
    page, more = next_token_page(rows, size, lambda member: member[1].id)
    members = []
    for membership, user in page:
        item = {
            "id": user.id,
            "email": user.email,
            "full_name": user.full_name,
            "first_name": user.given_name,
            "last_name": user.family_name,
            "joined_on": iso(membership.joined_on),
            "is_suspended": user.is_suspended,
            "roles": list(membership.roles),
        }
        members.append(without_none(item))
    return {**OK, "organization_users": members, **more}


@router.post("/organizations/{org_code}/users", summary="Add users to an organization")
async def add_organization_users(
    request: Request,
    org_code: CodePath,
    body: AddMembers | None = None,
    _: object = Depends(require_scope("create:organization_users")),
) -> dict[str, Any]:
    """Adding an existing member again replaces their roles and permissions.

    ``roles`` and ``permissions`` are keys of existing roles and permissions (Kinde's
    ``/roles``, ``/permissions``); an unknown key is a 400 and nobody is added.
    """
    members = body.users if body else []
    async with services_of(request).db.transaction() as conn:
        await organizations.get_organization(conn, org_code)
        for member in members:
            await users.get_user(conn, member.id)
            await organizations.add_member(
                conn,
                org_code,
                member.id,
                roles=member.roles,
                permissions=member.permissions,
                create_missing=False,
            )
            await outbox.user_changed(conn, EventType.USER_UPDATED, member.id)
    return {
        "code": "OK",
        "message": "Users successfully added",
        "users_added": [m.id for m in members],
    }


@router.delete(
    "/organizations/{org_code}/users/{user_id}", summary="Remove a user from an organization"
)
async def remove_organization_user(
    request: Request,
    org_code: CodePath,
    user_id: CodePath,
    _: object = Depends(require_scope("delete:organization_users")),
) -> dict[str, str]:
    async with services_of(request).db.transaction() as conn:
        await organizations.get_organization(conn, org_code)
        await organizations.remove_member(conn, org_code, user_id)
        await outbox.user_changed(conn, EventType.USER_UPDATED, user_id)
    return OK
