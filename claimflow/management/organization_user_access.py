"""Kinde's routes for what an organization member holds: their roles and permissions.

``/organizations/{org_code}/users/{user_id}/roles`` and ``/permissions`` with Kinde's scopes
(``read:organization_user_roles``, ``create:organization_user_permissions``, ...). The member's
permissions list what they hold directly and through their roles, each with the roles it comes
through (Kinde's ``organization_user_permission.roles``); removing a permission takes back only
a direct grant.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow.errors import NotFound
from claimflow.events import outbox
from claimflow.events.types import EventType
from claimflow.management.auth import require_scope, services_of
from claimflow.management.wire import OK, Code, CodePath, StrictModel, without_none
from claimflow.store import organizations, roles

router = APIRouter(tags=["Organizations"])


class RoleGrant(BaseModel):
    model_config = StrictModel

    role_id: Code


class PermissionGrant(BaseModel):
    model_config = StrictModel

    permission_id: Code


async def _require_member(conn: AsyncConnection, org_code: str, user_id: str) -> None:
    await organizations.get_organization(conn, org_code)
    if await organizations.find_membership(conn, org_code, user_id) is None:
        raise NotFound("The user is not a member of this organization.", "MEMBER_NOT_FOUND")


async def _change_member(
    request: Request,
    org_code: str,
    user_id: str,
    change: Callable[[AsyncConnection], Awaitable[object]],
) -> None:
    """One transaction: the member must exist, the change is made, and ``user.updated`` is
    written to the outbox (Kinde sends membership changes as the user's update)."""
    async with services_of(request).db.transaction() as conn:
        await _require_member(conn, org_code, user_id)
        await change(conn)
        await outbox.user_changed(conn, EventType.USER_UPDATED, user_id)


@router.get(
    "/organizations/{org_code}/users/{user_id}/roles", summary="List organization user roles"
)
async def list_member_roles(
    request: Request,
    org_code: CodePath,
    user_id: CodePath,
    _: object = Depends(require_scope("read:organization_user_roles")),
) -> dict[str, Any]:
    async with services_of(request).db.connect() as conn:
        await _require_member(conn, org_code, user_id)
        held = await roles.member_roles(conn, org_code, user_id)
    return {**OK, "roles": [{"id": r.id, "key": r.key, "name": r.name} for r in held]}


@router.post(
    "/organizations/{org_code}/users/{user_id}/roles", summary="Add organization user role"
)
async def add_member_role(
    request: Request,
    org_code: CodePath,
    user_id: CodePath,
    body: RoleGrant,
    _: object = Depends(require_scope("create:organization_user_roles")),
) -> dict[str, str]:
    await _change_member(
        request,
        org_code,
        user_id,
        lambda conn: roles.add_member_role(conn, org_code, user_id, body.role_id),
    )
    return {"code": "OK", "message": "Role successfully added"}


@router.delete(
    "/organizations/{org_code}/users/{user_id}/roles/{role_id}",
    summary="Delete organization user role",
)
async def remove_member_role(
    request: Request,
    org_code: CodePath,
    user_id: CodePath,
    role_id: CodePath,
    _: object = Depends(require_scope("delete:organization_user_roles")),
) -> dict[str, str]:
    await _change_member(
        request,
        org_code,
        user_id,
        lambda conn: roles.remove_member_role(conn, org_code, user_id, role_id),
    )
    return OK


@router.get(
    "/organizations/{org_code}/users/{user_id}/permissions",
    summary="List organization user permissions",
)
async def list_member_permissions(
    request: Request,
    org_code: CodePath,
    user_id: CodePath,
    expand: Annotated[Literal["roles"] | None, Query()] = None,
    _: object = Depends(require_scope("read:organization_user_permissions")),
) -> dict[str, Any]:
    """Every permission held; ``expand=roles`` names the roles each comes through."""
    async with services_of(request).db.connect() as conn:
        await _require_member(conn, org_code, user_id)
        held = await roles.member_permissions(conn, org_code, user_id)
    items = []
    for h in held:
        item: dict[str, Any] = {
            "id": h.permission.id,
            "key": h.permission.key,
            "name": h.permission.name,
            "description": h.permission.description,
        }
        if expand == "roles":
            item["roles"] = [{"id": r.id, "key": r.key} for r in h.through_roles]
        items.append(without_none(item))
    return {**OK, "permissions": items}


@router.post(
    "/organizations/{org_code}/users/{user_id}/permissions",
    summary="Add organization user permission",
)
async def add_member_permission(
    request: Request,
    org_code: CodePath,
    user_id: CodePath,
    body: PermissionGrant,
    _: object = Depends(require_scope("create:organization_user_permissions")),
) -> dict[str, str]:
    await _change_member(
        request,
        org_code,
        user_id,
        lambda conn: roles.add_member_permission(conn, org_code, user_id, body.permission_id),
    )
    return {"code": "OK", "message": "Permission successfully updated"}


@router.delete(
    "/organizations/{org_code}/users/{user_id}/permissions/{permission_id}",
    summary="Delete organization user permission",
)
async def remove_member_permission(
    request: Request,
    org_code: CodePath,
    user_id: CodePath,
    permission_id: CodePath,
    _: object = Depends(require_scope("delete:organization_user_permissions")),
) -> dict[str, str]:
    await _change_member(
        request,
        org_code,
        user_id,
        lambda conn: roles.remove_member_permission(conn, org_code, user_id, permission_id),
    )
    return OK
