"""Kinde's roles and permissions: the catalogue, what a role grants, what a member holds.

A member of an organization holds roles and permissions granted directly; the permissions a
token carries (the ``permissions`` claim, Kinde's Account API ``/account_api/v1/permissions``,
``GET /organizations/{org_code}/users/{user_id}/permissions``) are both together: the direct
ones and those of every role the member holds. Everything here reads the same tables, so the
token, the Account API and the Management API cannot disagree.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, delete, insert, literal, select, union_all, update
from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow.domain import Permission, Role
from claimflow.domain.ids import new_prefixed_id
from claimflow.errors import Conflict, InvalidRequest, NotFound
from claimflow.store import tables as t
from claimflow.store._rows import IntegrityError, insert_unless_present, utcnow

MemberKey = tuple[str, str]
"""``(org_code, user_id)`` of a membership."""


def _role(row: Any) -> Role:
    return Role(
        id=row.id,
        key=row.key,
        name=row.name,
        description=row.description,
        is_default_role=bool(row.is_default_role),
    )


def _permission(row: Any) -> Permission:
    return Permission(id=row.id, key=row.key, name=row.name, description=row.description)


# The catalogue: roles


async def create_role(
    conn: AsyncConnection,
    *,
    key: str,
    name: str,
    description: str | None = None,
    is_default_role: bool = False,
) -> Role:
    role = Role(
        id=new_prefixed_id("role"),
        key=key,
        name=name,
        description=description,
        is_default_role=is_default_role,
    )
    try:
        await conn.execute(
            insert(t.roles).values(
                id=role.id,
                key=key,
                name=name,
                description=description,
                is_default_role=is_default_role,
                created_on=utcnow(),
            )
        )
    except IntegrityError as exc:
        raise Conflict("A role with this key already exists.", "ROLE_EXISTS") from exc
    return role


async def get_role(conn: AsyncConnection, role_id: str) -> Role:
    row = (await conn.execute(select(t.roles).where(t.roles.c.id == role_id))).first()
    if row is None:
        raise NotFound("No role with this id.", "ROLE_NOT_FOUND")
    return _role(row)


async def list_roles(conn: AsyncConnection) -> list[Role]:
    return [_role(row) for row in await conn.execute(select(t.roles).order_by(t.roles.c.id))]


async def update_role(conn: AsyncConnection, role_id: str, **changes: Any) -> Role:
    await get_role(conn, role_id)
    if changes:
        try:
            await conn.execute(update(t.roles).where(t.roles.c.id == role_id).values(**changes))
        except IntegrityError as exc:
            raise Conflict("A role with this key already exists.", "ROLE_EXISTS") from exc
    return await get_role(conn, role_id)


async def delete_role(conn: AsyncConnection, role_id: str) -> Role:
    """Delete the role; members lose it (and what it granted) at their next token."""
    role = await get_role(conn, role_id)
    await conn.execute(delete(t.role_permissions).where(t.role_permissions.c.role_id == role_id))
    await conn.execute(
        delete(t.organization_user_roles).where(t.organization_user_roles.c.role_id == role_id)
    )
    await conn.execute(delete(t.roles).where(t.roles.c.id == role_id))
    return role


# The catalogue: permissions


async def create_permission(
    conn: AsyncConnection, *, key: str, name: str, description: str | None = None
) -> Permission:
    permission = Permission(id=new_prefixed_id("perm"), key=key, name=name, description=description)
    try:
        await conn.execute(
            insert(t.permissions).values(
                id=permission.id,
                key=key,
                name=name,
                description=description,
                created_on=utcnow(),
            )
        )
    except IntegrityError as exc:
        raise Conflict("A permission with this key already exists.", "PERMISSION_EXISTS") from exc
    return permission


async def get_permission(conn: AsyncConnection, permission_id: str) -> Permission:
    row = (
        await conn.execute(select(t.permissions).where(t.permissions.c.id == permission_id))
    ).first()
    if row is None:
        raise NotFound("No permission with this id.", "PERMISSION_NOT_FOUND")
    return _permission(row)


async def list_permissions(conn: AsyncConnection) -> list[Permission]:
    query = select(t.permissions).order_by(t.permissions.c.id)
    return [_permission(row) for row in await conn.execute(query)]


async def update_permission(conn: AsyncConnection, permission_id: str, **changes: Any) -> None:
    await get_permission(conn, permission_id)
    if changes:
        try:
            await conn.execute(
                update(t.permissions).where(t.permissions.c.id == permission_id).values(**changes)
            )
        except IntegrityError as exc:
            raise Conflict(
                "A permission with this key already exists.", "PERMISSION_EXISTS"
            ) from exc


async def delete_permission(conn: AsyncConnection, permission_id: str) -> None:
    await get_permission(conn, permission_id)
    for table in (t.role_permissions, t.organization_user_permissions):
        await conn.execute(delete(table).where(table.c.permission_id == permission_id))
    await conn.execute(delete(t.permissions).where(t.permissions.c.id == permission_id))


async def _ids_by_key(
    conn: AsyncConnection, table: Any, keys: Iterable[str], *, create_missing: bool, what: str
) -> list[str]:
    wanted = sorted(set(keys))
    if not wanted:
        return []
    rows = await conn.execute(select(table.c.key, table.c.id).where(table.c.key.in_(wanted)))
    found = {row.key: row.id for row in rows}
    missing = [key for key in wanted if key not in found]
    if missing and not create_missing:
        raise InvalidRequest(
            f"Unknown {what} key(s): {', '.join(missing)}.", f"{what.upper()}_INVALID"
        )
    for key in missing:
        if what == "role":
            found[key] = (await create_role(conn, key=key, name=key)).id
        else:
            found[key] = (await create_permission(conn, key=key, name=key)).id
    return [found[key] for key in wanted]


async def role_ids(
    conn: AsyncConnection, keys: Iterable[str], *, create_missing: bool
) -> list[str]:
    """Role ids for ``keys``; unknown keys are created (import) or refused with a 400."""
    return await _ids_by_key(conn, t.roles, keys, create_missing=create_missing, what="role")


async def permission_ids(
    conn: AsyncConnection, keys: Iterable[str], *, create_missing: bool
) -> list[str]:
    """Permission ids for ``keys``; unknown keys are created (import) or refused with a 400."""
    return await _ids_by_key(
        conn, t.permissions, keys, create_missing=create_missing, what="permission"
    )


# What a role grants


async def permissions_of_role(conn: AsyncConnection, role_id: str) -> list[Permission]:
    await get_role(conn, role_id)
    query = (
        select(t.permissions)
        .join(t.role_permissions, t.role_permissions.c.permission_id == t.permissions.c.id)
        .where(t.role_permissions.c.role_id == role_id)
        .order_by(t.permissions.c.id)
    )
    return [_permission(row) for row in await conn.execute(query)]


async def grant_to_role(conn: AsyncConnection, role_id: str, permission_id: str) -> bool:
    """Give the role a permission; False when it already had it."""
    await get_permission(conn, permission_id)
    existing = await conn.execute(
        select(t.role_permissions.c.role_id).where(
            t.role_permissions.c.role_id == role_id,
            t.role_permissions.c.permission_id == permission_id,
        )
    )
    if existing.first() is not None:
        return False
    await conn.execute(
        insert(t.role_permissions).values(role_id=role_id, permission_id=permission_id)
    )
    return True


async def revoke_from_role(conn: AsyncConnection, role_id: str, permission_id: str) -> bool:
    """Take a permission from the role; False when it did not have it."""
    result = await conn.execute(
        delete(t.role_permissions).where(
            t.role_permissions.c.role_id == role_id,
            t.role_permissions.c.permission_id == permission_id,
        )
    )
    return bool(result.rowcount)


# What a member holds


async def set_member_grants(
    conn: AsyncConnection,
    org_code: str,
    user_id: str,
    *,
    role_ids: Sequence[str],
    permission_ids: Sequence[str],
) -> None:
    """Replace the member's roles and direct permissions (the membership must exist)."""
    key = {"org_code": org_code, "user_id": user_id}
    for table in (t.organization_user_roles, t.organization_user_permissions):
        await conn.execute(
            delete(table).where(table.c.org_code == org_code, table.c.user_id == user_id)
        )
    if role_ids:
        await conn.execute(
            insert(t.organization_user_roles), [{**key, "role_id": r} for r in role_ids]
        )
    if permission_ids:
        await conn.execute(
            insert(t.organization_user_permissions),
            [{**key, "permission_id": p} for p in permission_ids],
        )


async def member_roles(conn: AsyncConnection, org_code: str, user_id: str) -> list[Role]:
    query = (
        select(t.roles)
        .join(t.organization_user_roles, t.organization_user_roles.c.role_id == t.roles.c.id)
        .where(
            t.organization_user_roles.c.org_code == org_code,
            t.organization_user_roles.c.user_id == user_id,
        )
        .order_by(t.roles.c.id)
    )
    return [_role(row) for row in await conn.execute(query)]


async def add_member_role(conn: AsyncConnection, org_code: str, user_id: str, role_id: str) -> bool:
    """Give a member a role; False when they already held it."""
    await get_role(conn, role_id)
    return await insert_unless_present(
        conn, t.organization_user_roles, org_code=org_code, user_id=user_id, role_id=role_id
    )


async def remove_member_role(
    conn: AsyncConnection, org_code: str, user_id: str, role_id: str
) -> None:
    result = await conn.execute(
        delete(t.organization_user_roles).where(
            t.organization_user_roles.c.org_code == org_code,
            t.organization_user_roles.c.user_id == user_id,
            t.organization_user_roles.c.role_id == role_id,
        )
    )
    if not result.rowcount:
        raise NotFound("The member does not hold this role.", "ROLE_NOT_FOUND")


async def add_member_permission(
    conn: AsyncConnection, org_code: str, user_id: str, permission_id: str
) -> bool:
    """Grant a member a permission directly; False when it was already granted directly."""
    await get_permission(conn, permission_id)
    return await insert_unless_present(
        conn,
        t.organization_user_permissions,
        org_code=org_code,
        user_id=user_id,
        permission_id=permission_id,
    )


async def remove_member_permission(
    conn: AsyncConnection, org_code: str, user_id: str, permission_id: str
) -> None:
    """Take back a directly granted permission (one held through a role stays with the role)."""
    result = await conn.execute(
        delete(t.organization_user_permissions).where(
            t.organization_user_permissions.c.org_code == org_code,
            t.organization_user_permissions.c.user_id == user_id,
            t.organization_user_permissions.c.permission_id == permission_id,
        )
    )
    if not result.rowcount:
        raise NotFound("The member does not hold this permission directly.", "PERMISSION_NOT_FOUND")


@dataclass(frozen=True, slots=True)
class HeldPermission:
    """A permission a member holds, and the roles it comes through (empty: granted directly)."""

    permission: Permission
    through_roles: tuple[Role, ...]
    direct: bool


async def member_permissions(
    conn: AsyncConnection, org_code: str, user_id: str
) -> list[HeldPermission]:
    """Every permission the member holds, direct or through a role, each once, by id."""
    direct_query = (
        select(t.permissions)
        .join(
            t.organization_user_permissions,
            t.organization_user_permissions.c.permission_id == t.permissions.c.id,
        )
        .where(
            t.organization_user_permissions.c.org_code == org_code,
            t.organization_user_permissions.c.user_id == user_id,
        )
    )
    via_query = (
        select(t.permissions, t.roles.c.id.label("role_id"), t.roles.c.key.label("role_key"))
        .select_from(t.organization_user_roles)
        .join(t.roles, t.roles.c.id == t.organization_user_roles.c.role_id)
        .join(t.role_permissions, t.role_permissions.c.role_id == t.roles.c.id)
        .join(t.permissions, t.permissions.c.id == t.role_permissions.c.permission_id)
        .where(
            t.organization_user_roles.c.org_code == org_code,
            t.organization_user_roles.c.user_id == user_id,
        )
    )
    found: dict[str, tuple[Permission, list[Role], bool]] = {}
    for row in await conn.execute(direct_query):
        found[row.id] = (_permission(row), [], True)
    roles_by_id = {role.id: role for role in await member_roles(conn, org_code, user_id)}
    for row in await conn.execute(via_query):
        permission, through, direct = found.get(row.id, (_permission(row), [], False))
        through.append(roles_by_id[row.role_id])
        found[row.id] = (permission, through, direct)
    return [
        HeldPermission(p, tuple(sorted(rs, key=lambda r: r.id)), direct)
        for p, rs, direct in sorted(found.values(), key=lambda item: item[0].id)
    ]


@dataclass(frozen=True, slots=True)
class MemberGrants:
    """Role keys and effective permission keys of one membership, as the token claims carry."""

    role_keys: tuple[str, ...] = ()
    permission_keys: tuple[str, ...] = ()


def _member_filter(query: Select[Any], table: Any, by_org: bool, by_user: bool) -> Any:
    if by_org:
        query = query.where(table.c.org_code == bindparam("org_code"))
    if by_user:
        query = query.where(table.c.user_id == bindparam("user_id"))
    return query


@functools.cache
def _grants_query(by_org: bool, by_user: bool) -> Any:
    """The grants query for one filter shape, built once (it runs on every token request)."""
    our, oup = t.organization_user_roles, t.organization_user_permissions
    held_roles = select(
        our.c.org_code, our.c.user_id, literal(True).label("is_role"), t.roles.c.key.label("key")
    ).join(t.roles, t.roles.c.id == our.c.role_id)
    direct = select(oup.c.org_code, oup.c.user_id, literal(False), t.permissions.c.key).join(
        t.permissions, t.permissions.c.id == oup.c.permission_id
    )
    through_roles = (
        select(our.c.org_code, our.c.user_id, literal(False), t.permissions.c.key)
        .join(t.role_permissions, t.role_permissions.c.role_id == our.c.role_id)
        .join(t.permissions, t.permissions.c.id == t.role_permissions.c.permission_id)
    )
    return union_all(
        _member_filter(held_roles, our, by_org, by_user),
        _member_filter(direct, oup, by_org, by_user),
        _member_filter(through_roles, our, by_org, by_user),
    )


async def grants_of_members(
    conn: AsyncConnection, *, org_code: str | None = None, user_id: str | None = None
) -> dict[MemberKey, MemberGrants]:
    """Grants of every membership of an organization, or of a user, in one query.

    The roles held, the permissions granted directly and those held through a role are three
    selects joined by ``UNION ALL``: this runs on every token request, one round trip not three.
    """
    rows = await conn.execute(
        _grants_query(org_code is not None, user_id is not None),
        {k: v for k, v in (("org_code", org_code), ("user_id", user_id)) if v is not None},
    )
    return grants_of_rows(rows)


GRANTS_OF_USER = _grants_query(False, True)
"""``grants_of_members(user_id=...)``'s query (every membership of one user), for a reader
that runs it elsewhere (``store.refresh_grant_reads`` on the event loop)."""


def grants_of_rows(rows: Iterable[Any]) -> dict[MemberKey, MemberGrants]:
    """The grants of the grants query's rows (``org_code``, ``user_id``, ``is_role``, ``key``)."""
    return fold_grants((row.org_code, row.user_id, row.is_role, row.key) for row in rows)


def fold_grants(rows: Iterable[tuple[str, str, bool, str]]) -> dict[MemberKey, MemberGrants]:
    """``(org_code, user_id, is_role, key)`` rows of the grants query, per membership: role keys
    and permission keys (direct or through a role) each sorted and without duplicates."""
    roles: dict[MemberKey, set[str]] = {}
    perms: dict[MemberKey, set[str]] = {}
    for org_code, user_id, is_role, key in rows:
        kind = roles if is_role else perms
        kind.setdefault((org_code, user_id), set()).add(key)
    return {
        member: MemberGrants(
            tuple(sorted(roles.get(member, ()))), tuple(sorted(perms.get(member, ())))
        )
        for member in roles.keys() | perms.keys()
    }
