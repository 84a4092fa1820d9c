"""Kinde's Account API for access: ``/account_api/v1/roles``, ``/permissions``, ``/permission/{key}``.

The roles and permissions the signed-in user holds in the token's organization, read with their
own access token (Kinde's js-utils ``getRoles({forceApi: true})`` /
``getPermissions({forceApi: true})``, kinde-python-sdk ``RolesApi`` / ``PermissionsApi``). They
come from the same rows as the token's ``roles`` and ``permissions`` claims and the Management
API's ``/organizations/{org_code}/users/{user_id}/roles`` (``store/roles.py``), but are current
as of the request, not of issuance. A personal sign-in holds no organization roles: empty lists.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from claimflow.account.caller import SignedInUser
from claimflow.account.paging import AccountPageSize, StartingAfter, account_page
from claimflow.domain import Permission, Role
from claimflow.management.wire import without_none
from claimflow.services import Services
from claimflow.store import roles

router = APIRouter(tags=["Account API"])


@router.get("/account_api/v1/roles", summary="The signed-in user's roles")
async def get_roles(
    request: Request,
    caller: SignedInUser,
    page_size: AccountPageSize = None,
    starting_after: StartingAfter = None,
) -> dict[str, Any]:
    services: Services = request.app.state.services
    held: list[Role] = []
    if caller.org_code is not None:
        async with services.db.connect() as conn:
            held = await roles.member_roles(conn, caller.org_code, caller.user_id)
    page, metadata = account_page(
        held, lambda r: r.id, page_size=page_size, starting_after=starting_after
    )
    items = [{"id": r.id, "name": r.name, "key": r.key} for r in page]
    return {
        "data": without_none({"org_code": caller.org_code, "roles": items}),
        "metadata": metadata,
    }


@router.get("/account_api/v1/permissions", summary="The signed-in user's permissions")
async def get_permissions(
    request: Request,
    caller: SignedInUser,
    page_size: AccountPageSize = None,
    starting_after: StartingAfter = None,
) -> dict[str, Any]:
    """Direct permissions and those of the user's roles, each once."""
    services: Services = request.app.state.services
    held: list[Permission] = []
    if caller.org_code is not None:
        async with services.db.connect() as conn:
            held = [
                h.permission
                for h in await roles.member_permissions(conn, caller.org_code, caller.user_id)
            ]
    page, metadata = account_page(
        held, lambda p: p.id, page_size=page_size, starting_after=starting_after
    )
    items = [{"id": p.id, "name": p.name, "key": p.key} for p in page]
    data = {"org_code": caller.org_code, "permissions": items}
    return {"data": without_none(data), "metadata": metadata}


PermissionKey = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:\-]{1,255}$")]
"""A permission key as the catalogue allows it (``management/roles.py``), colon included."""


@router.get("/account_api/v1/permission/{key}", summary="Whether the user holds one permission")
async def get_permission(
    request: Request, key: PermissionKey, caller: SignedInUser
) -> dict[str, Any]:
    """Kinde's SDKs read this body as it comes, without the Account API's ``data`` envelope:
    js-utils 0.32 ``getPermission(key, {forceApi: true})`` returns it as its ``PermissionAccess``
    (``permissionKey``, ``orgCode``, ``isGranted``) and kinde-go's ``GetPermission`` unmarshals it
    into the same fields. Those three come first; ``data`` carries the same facts in the Account
    API's snake_case for clients that unwrap it. A key the user does not hold (or that does not
    exist) is ``isGranted: false``, not a 404, as the token-based check answers.
    """
    services: Services = request.app.state.services
    granted = False
    if caller.org_code is not None:
        async with services.db.connect() as conn:
            held = await roles.member_permissions(conn, caller.org_code, caller.user_id)
        granted = any(h.permission.key == key for h in held)
    return {
        "permissionKey": key,
        "orgCode": caller.org_code,
        "isGranted": granted,
        "data": {"permission_key": key, "org_code": caller.org_code, "is_granted": granted},
        "metadata": {},
    }
