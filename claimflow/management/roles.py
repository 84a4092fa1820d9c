"""Kinde's roles and permissions: ``/roles``, ``/roles/{role_id}/permissions``, ``/permissions``.

Paths, scopes and bodies are Kinde's Management API's (``kinde-management-api.yml``, tags Roles
and Permissions). The ``roles`` and ``permissions`` claims of a member's tokens derive from these
rows (``store/roles.py``), so a permission granted to a role reaches every holder's next token.
Lists page with Kinde's ``page_size``/``next_token`` and sort by ``sort`` (``name_asc`` ...).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from claimflow.domain import Permission, Role
from claimflow.errors import InvalidRequest
from claimflow.events import outbox
from claimflow.events.types import EventType
from claimflow.management.auth import require_scope, services_of
from claimflow.management.wire import (
    DEFAULT_PAGE_SIZE,
    OK,
    Code,
    CodePath,
    Cursor,
    Name,
    OptionalText,
    PageSize,
    StrictModel,
    without_none,
)
from claimflow.store import roles

router = APIRouter()

Key = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:\-]{1,255}$")]
"""A role or permission key as code uses it (``read:reports``): colon allowed, no spaces."""

Sort = Annotated[Literal["name_asc", "name_desc", "id_asc", "id_desc"] | None, Query()]

Item = TypeVar("Item", Role, Permission)


def _sorted_page(
    items: Sequence[Item], sort: str | None, page_size: int | None, next_token: str | None
) -> tuple[list[Item], dict[str, str]]:
    field, _, direction = (sort or "id_asc").partition("_")
    key: Callable[[Item], tuple[str, str]] = (
        (lambda i: (i.name, i.id)) if field == "name" else (lambda i: (i.id, i.id))
    )
    ordered = sorted(items, key=key, reverse=direction == "desc")
    ids = [i.id for i in ordered]
    start = 0
    if next_token is not None:
        if next_token not in ids:
            raise InvalidRequest("next_token is not an id in this list.", "PAGINATION_INVALID")
        start = ids.index(next_token) + 1
    size = page_size or DEFAULT_PAGE_SIZE
    page = ordered[start : start + size]
    more = {"next_token": page[-1].id} if start + size < len(ordered) else {}
    return page, more


def role_json(role: Role) -> dict[str, Any]:
    return {
        "id": role.id,
        "key": role.key,
        "name": role.name,
        "description": role.description,
        "is_default_role": role.is_default_role,
    }


def permission_json(permission: Permission) -> dict[str, Any]:
    return without_none(
        {
            "id": permission.id,
            "key": permission.key,
            "name": permission.name,
            "description": permission.description,
        }
    )


class NewRole(BaseModel):
    model_config = StrictModel

    name: Name
    key: Key
    description: OptionalText | None = None
    is_default_role: bool = False
    assignment_permission_id: Code | None = None


class RoleChanges(BaseModel):
    """Kinde's ``UpdateRoles`` body: ``name`` and ``key`` are required."""

    model_config = StrictModel

    name: Name
    key: Key
    description: OptionalText | None = None
    is_default_role: bool | None = None
    assignment_permission_id: Code | None = None


class PermissionFields(BaseModel):
    model_config = StrictModel

    name: Name | None = None
    key: Key | None = None
    description: OptionalText | None = None


class RolePermissionChange(BaseModel):
    model_config = StrictModel

    id: Code
    operation: Literal["delete"] | None = None


class RolePermissionChanges(BaseModel):
    model_config = StrictModel

    permissions: list[RolePermissionChange] = Field(default_factory=list, max_length=100)


@router.get("/roles", summary="List roles", tags=["Roles"])
async def list_roles(
    request: Request,
    sort: Sort = None,
    page_size: PageSize = None,
    next_token: Cursor = None,
    _: object = Depends(require_scope("read:roles")),
) -> dict[str, Any]:
    async with services_of(request).db.connect() as conn:
        everything = await roles.list_roles(conn)
    page, more = _sorted_page(everything, sort, page_size, next_token)
    return {**OK, "roles": [role_json(r) for r in page], **more}


@router.post("/roles", status_code=201, summary="Create role", tags=["Roles"])
async def create_role(
    request: Request, body: NewRole, _: object = Depends(require_scope("create:roles"))
) -> dict[str, Any]:
    async with services_of(request).db.transaction() as conn:
        role = await roles.create_role(
            conn,
            key=body.key,
            name=body.name,
            description=body.description,
            is_default_role=body.is_default_role,
        )
        await outbox.role_changed(conn, EventType.ROLE_CREATED, role)
    return {"code": "ROLE_CREATED", "message": "Role successfully created", "role": {"id": role.id}}


@router.get("/roles/{role_id}", summary="Get role", tags=["Roles"])
async def get_role(
    request: Request, role_id: CodePath, _: object = Depends(require_scope("read:roles"))
) -> dict[str, Any]:
    async with services_of(request).db.connect() as conn:
        role = await roles.get_role(conn, role_id)
    return {**OK, "role": without_none(role_json(role))}


@router.patch("/roles/{role_id}", status_code=201, summary="Update role", tags=["Roles"])
async def update_role(
    request: Request,
    role_id: CodePath,
    body: RoleChanges,
    _: object = Depends(require_scope("update:roles")),
) -> dict[str, str]:
    changes = body.model_dump(exclude_unset=True, exclude={"assignment_permission_id"})
    async with services_of(request).db.transaction() as conn:
        role = await roles.update_role(conn, role_id, **changes)
        await outbox.role_changed(conn, EventType.ROLE_UPDATED, role)
    return {"code": "ROLE_UPDATED", "message": "Role successfully updated"}


@router.delete("/roles/{role_id}", summary="Delete role", tags=["Roles"])
async def delete_role(
    request: Request, role_id: CodePath, _: object = Depends(require_scope("delete:roles"))
) -> dict[str, str]:
    async with services_of(request).db.transaction() as conn:
        await roles.delete_role(conn, role_id)
        await outbox.role_deleted(conn, role_id)
    return {"code": "ROLE_DELETED", "message": "Role successfully deleted"}


@router.get("/roles/{role_id}/permissions", summary="Get role permissions", tags=["Roles"])
async def get_role_permissions(
    request: Request,
    role_id: CodePath,
    sort: Sort = None,
    page_size: PageSize = None,
    next_token: Cursor = None,
    _: object = Depends(require_scope("read:role_permissions")),
) -> dict[str, Any]:
    async with services_of(request).db.connect() as conn:
        granted = await roles.permissions_of_role(conn, role_id)
    page, more = _sorted_page(granted, sort, page_size, next_token)
    return {**OK, "permissions": [permission_json(p) for p in page], **more}


@router.patch("/roles/{role_id}/permissions", summary="Update role permissions", tags=["Roles"])
async def update_role_permissions(
    request: Request,
    role_id: CodePath,
    body: RolePermissionChanges,
    _: object = Depends(require_scope("update:role_permissions")),
) -> dict[str, Any]:
    """Adds each listed permission, or removes it with ``operation: delete``; all or nothing."""
    added: list[str] = []
    removed: list[str] = []
    async with services_of(request).db.transaction() as conn:
        await roles.get_role(conn, role_id)
        for change in body.permissions:
            if change.operation == "delete":
                if await roles.revoke_from_role(conn, role_id, change.id):
                    removed.append(change.id)
            elif await roles.grant_to_role(conn, role_id, change.id):
                added.append(change.id)
    return {
        **OK,
        "message": "Permissions updated",
        "permissions_added": added,
        "permissions_removed": removed,
    }


@router.delete(
    "/roles/{role_id}/permissions/{permission_id}",
    summary="Remove role permission",
    tags=["Roles"],
)
async def remove_role_permission(
    request: Request,
    role_id: CodePath,
    permission_id: CodePath,
    _: object = Depends(require_scope("delete:role_permissions")),
) -> dict[str, str]:
    async with services_of(request).db.transaction() as conn:
        await roles.get_role(conn, role_id)
        await roles.get_permission(conn, permission_id)
        await roles.revoke_from_role(conn, role_id, permission_id)
    return OK


@router.get("/permissions", summary="List permissions", tags=["Permissions"])
async def list_permissions(
    request: Request,
    sort: Sort = None,
    page_size: PageSize = None,
    next_token: Cursor = None,
    _: object = Depends(require_scope("read:permissions")),
) -> dict[str, Any]:
    async with services_of(request).db.connect() as conn:
        everything = await roles.list_permissions(conn)
    page, more = _sorted_page(everything, sort, page_size, next_token)
    return {**OK, "permissions": [permission_json(p) for p in page], **more}


@router.post("/permissions", status_code=201, summary="Create permission", tags=["Permissions"])
async def create_permission(
    request: Request,
    body: PermissionFields,
    _: object = Depends(require_scope("create:permissions")),
) -> dict[str, str]:
    if body.key is None or body.name is None:
        raise InvalidRequest("A permission needs a key and a name.", "PERMISSION_INVALID")
    async with services_of(request).db.transaction() as conn:
        permission = await roles.create_permission(
            conn, key=body.key, name=body.name, description=body.description
        )
        await outbox.permission_changed(conn, EventType.PERMISSION_CREATED, permission)
    return {"code": "PERMISSION_CREATED", "message": "Permission successfully created"}


@router.patch("/permissions/{permission_id}", summary="Update permission", tags=["Permissions"])
async def update_permission(
    request: Request,
    permission_id: CodePath,
    body: PermissionFields,
    _: object = Depends(require_scope("update:permissions")),
) -> dict[str, str]:
    async with services_of(request).db.transaction() as conn:
        await roles.update_permission(conn, permission_id, **body.model_dump(exclude_unset=True))
        permission = await roles.get_permission(conn, permission_id)
        await outbox.permission_changed(conn, EventType.PERMISSION_UPDATED, permission)
    return {"code": "PERMISSION_UPDATED", "message": "Permission successfully updated"}


@router.delete("/permissions/{permission_id}", summary="Delete permission", tags=["Permissions"])
async def delete_permission(
    request: Request,
    permission_id: CodePath,
    _: object = Depends(require_scope("delete:permissions")),
) -> dict[str, str]:
    async with services_of(request).db.transaction() as conn:
        await roles.delete_permission(conn, permission_id)
        await outbox.permission_deleted(conn, permission_id)
    return {"code": "PERMISSION_DELETED", "message": "Permission successfully deleted"}
