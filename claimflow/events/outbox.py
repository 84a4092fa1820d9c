"""What the Management API calls, inside its transaction, to put a change's event in the outbox.

One function per kind of change, each a single call beside the store call it describes; the
``data`` shapes are Kinde's webhook payloads (``@kinde/webhooks`` types: ``{"organization":
{code, name, handle, external_id}}``, ``{"user": {id, email, first_name, last_name,
is_suspended, organizations: [{code, roles, permissions}]}}``, ``{"role": {...}}``, ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow.domain import Agreement, Permission, Role
from claimflow.events.types import EventType
from claimflow.store import billing, organizations, roles, users
from claimflow.store.webhooks import record_event


async def organization_changed(conn: AsyncConnection, event: EventType, org_code: str) -> None:
    """``organization.created`` / ``organization.updated`` with the organization as it is now."""
    org = await organizations.get_organization(conn, org_code)
    data = {
        "code": org.code,
        "name": org.name,
        "handle": org.handle,
        "external_id": org.external_id,
    }
    await record_event(conn, event, {"organization": data})


async def organization_deleted(conn: AsyncConnection, org_code: str) -> None:
    await record_event(conn, EventType.ORGANIZATION_DELETED, {"organization": {"code": org_code}})


async def user_changed(conn: AsyncConnection, event: EventType, user_id: str) -> None:
    """``user.created`` / ``user.updated``: the user with every organization, role, permission."""
    user = await users.get_user(conn, user_id)
    memberships = []
    for membership in await organizations.memberships_of_user(conn, user_id):
        held = await roles.member_permissions(conn, membership.org_code, user_id)
        memberships.append(
            {
                "code": membership.org_code,
                "roles": list(membership.roles),
                "permissions": [{"id": h.permission.id, "key": h.permission.key} for h in held],
            }
        )
    data: dict[str, Any] = {
        "id": user.id,
        "email": user.email,
        "first_name": user.given_name,
        "last_name": user.family_name,
        "is_suspended": user.is_suspended,
        "is_password_reset_requested": False,
        "phone": None,
        "username": None,
        "organizations": memberships,
    }
    await record_event(conn, event, {"user": data})


async def user_deleted(conn: AsyncConnection, user_id: str) -> None:
    await record_event(conn, EventType.USER_DELETED, {"user": {"id": user_id}})


async def role_changed(conn: AsyncConnection, event: EventType, role: Role) -> None:
    data = {
        "id": role.id,
        "key": role.key,
        "name": role.name,
        "description": role.description,
        "is_default_role": role.is_default_role,
    }
    await record_event(conn, event, {"role": data})


async def role_deleted(conn: AsyncConnection, role_id: str) -> None:
    await record_event(conn, EventType.ROLE_DELETED, {"role": {"id": role_id}})


async def permission_changed(
    conn: AsyncConnection, event: EventType, permission: Permission
) -> None:
    data = {
        "id": permission.id,
        "key": permission.key,
        "name": permission.name,
        "description": permission.description,
    }
    await record_event(conn, event, {"permission": data})


async def permission_deleted(conn: AsyncConnection, permission_id: str) -> None:
    await record_event(conn, EventType.PERMISSION_DELETED, {"permission": {"id": permission_id}})


def _agreement(agreement: Agreement) -> dict[str, Any]:
    return {
        "id": agreement.id,
        "customer_id": agreement.customer_id,
        "plan_code": agreement.plan_code,
    }


async def agreement_created(
    conn: AsyncConnection, agreement: Agreement, replaced: Sequence[Agreement] = ()
) -> None:
    """``customer.agreement_created``, and ``customer.agreement_cancelled`` for each replaced one."""
    customer = await billing.get_customer(conn, agreement.customer_id)
    owner = {"org_code": customer.org_code, "user_id": customer.user_id}
    for old in replaced:
        if old.id != agreement.id:
            await record_event(
                conn, EventType.AGREEMENT_CANCELLED, {"agreement": _agreement(old), **owner}
            )
    await record_event(
        conn, EventType.AGREEMENT_CREATED, {"agreement": _agreement(agreement), **owner}
    )


async def agreement_cancelled(conn: AsyncConnection, agreement: Agreement) -> None:
    """``customer.agreement_cancelled`` for an agreement cancelled on its own (no successor)."""
    customer = await billing.get_customer(conn, agreement.customer_id)
    owner = {"org_code": customer.org_code, "user_id": customer.user_id}
    await record_event(
        conn, EventType.AGREEMENT_CANCELLED, {"agreement": _agreement(agreement), **owner}
    )
