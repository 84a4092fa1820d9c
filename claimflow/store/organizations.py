"""Organizations and their memberships."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow.domain import Membership, Organization, User
from claimflow.domain.ids import new_org_code
from claimflow.errors import Conflict, NotFound
from claimflow.store import roles as roles_store
from claimflow.store import tables as t
from claimflow.store._rows import IntegrityError, as_utc, required_utc, utcnow
from claimflow.store.billing import delete_customer_of
from claimflow.store.users import user_from_row


def _org(row: Any) -> Organization:
    return Organization(
        code=row.code,
        name=row.name,
        handle=row.handle,
        external_id=row.external_id,
        is_auto_membership_enabled=bool(row.is_auto_membership_enabled),
        created_on=required_utc(row.created_on),
    )


def _membership(
    row: Any, grants: dict[roles_store.MemberKey, roles_store.MemberGrants]
) -> Membership:
    """A membership with its role keys and effective permission keys (``store/roles.py``)."""
    held = grants.get((row.org_code, row.user_id), roles_store.MemberGrants())
    return Membership(
        org_code=row.org_code,
        user_id=row.user_id,
        roles=held.role_keys,
        permissions=held.permission_keys,
        joined_on=as_utc(row.joined_on),
    )


async def create_organization(
    conn: AsyncConnection,
    *,
    name: str,
    code: str | None = None,
    handle: str | None = None,
    external_id: str | None = None,
    is_auto_membership_enabled: bool = False,
) -> Organization:
    org = Organization(
        code=code or new_org_code(),
        name=name,
        handle=handle,
        external_id=external_id,
        is_auto_membership_enabled=is_auto_membership_enabled,
        created_on=utcnow(),
    )
    try:
        await conn.execute(
            insert(t.organizations).values(
                code=org.code,
                name=org.name,
                handle=org.handle,
                external_id=org.external_id,
                is_auto_membership_enabled=org.is_auto_membership_enabled,
                created_on=org.created_on,
            )
        )
    except IntegrityError as exc:
        raise Conflict(
            "An organization with this code, handle or external_id already exists.",
            "ORGANIZATION_EXISTS",
        ) from exc
    return org


async def get_organization(conn: AsyncConnection, code: str) -> Organization:
    row = (
        await conn.execute(select(t.organizations).where(t.organizations.c.code == code))
    ).first()
    if row is None:
        raise NotFound("No organization with this code.", "ORGANIZATION_INVALID")
    return _org(row)


async def find_organization(conn: AsyncConnection, code: str) -> Organization | None:
    row = (
        await conn.execute(select(t.organizations).where(t.organizations.c.code == code))
    ).first()
    return None if row is None else _org(row)


async def list_organizations(
    conn: AsyncConnection, *, limit: int, after_code: str | None = None
) -> list[Organization]:
    query = select(t.organizations).order_by(t.organizations.c.code).limit(limit)
    if after_code is not None:
        query = query.where(t.organizations.c.code > after_code)
    return [_org(row) for row in await conn.execute(query)]


async def update_organization(conn: AsyncConnection, code: str, **changes: Any) -> Organization:
    await get_organization(conn, code)
    if changes:
        try:
            await conn.execute(
                update(t.organizations).where(t.organizations.c.code == code).values(**changes)
            )
        except IntegrityError as exc:
            raise Conflict("The handle or external_id is taken.", "ORGANIZATION_EXISTS") from exc
    return await get_organization(conn, code)


async def lock_organization(conn: AsyncConnection, code: str, *, exclusive: bool) -> None:
    """Lock the organization's row for the transaction (404 when it is gone).

    Creating an organization's M2M application takes it shared, deleting the organization
    exclusive, so on PostgreSQL (``FOR SHARE`` / ``FOR UPDATE``) they take turns and the deletion
    finds every application created before it; SQLite serialises writers anyway.
    """
    row = (
        await conn.execute(
            select(t.organizations.c.code)
            .where(t.organizations.c.code == code)
            .with_for_update(read=not exclusive)
        )
    ).first()
    if row is None:
        raise NotFound("No organization with this code.", "ORGANIZATION_INVALID")


async def delete_organization(conn: AsyncConnection, code: str) -> None:
    await lock_organization(conn, code, exclusive=True)
    await delete_customer_of(conn, org_code=code)
    await conn.execute(delete(t.memberships).where(t.memberships.c.org_code == code))
    # An organization's M2M applications go with it: their tokens would name a missing org.
    await conn.execute(delete(t.applications).where(t.applications.c.org_code == code))
    await conn.execute(delete(t.organizations).where(t.organizations.c.code == code))


async def add_member(
    conn: AsyncConnection,
    org_code: str,
    user_id: str,
    roles: Sequence[str] = (),
    permissions: Sequence[str] = (),
    *,
    create_missing: bool = True,
) -> Membership:
    """Add a user to an organization; adding an existing member replaces their grants.

    ``roles`` and ``permissions`` are keys of Kinde's catalogue (``store/roles.py``); keys not in
    it are created (imports written before the catalogue existed) or, with
    ``create_missing=False`` (the Management API), refused with a 400 before anything is written.
    """
    role_ids = await roles_store.role_ids(conn, roles, create_missing=create_missing)
    permission_ids = await roles_store.permission_ids(
        conn, permissions, create_missing=create_missing
    )
    existing = await find_membership(conn, org_code, user_id)
    if existing is None:
        try:
            await conn.execute(
                insert(t.memberships).values(org_code=org_code, user_id=user_id, joined_on=utcnow())
            )
        except IntegrityError as exc:
            # A concurrent request added (or deleted) the same member first.
            raise Conflict(
                "The membership changed concurrently; retry.", "MEMBER_CONFLICT"
            ) from exc
    await roles_store.set_member_grants(
        conn, org_code, user_id, role_ids=role_ids, permission_ids=permission_ids
    )
    found = await find_membership(conn, org_code, user_id)
    assert found is not None
    return found


async def remove_member(conn: AsyncConnection, org_code: str, user_id: str) -> None:
    result = await conn.execute(
        delete(t.memberships).where(
            t.memberships.c.org_code == org_code, t.memberships.c.user_id == user_id
        )
    )
    if result.rowcount == 0:
        raise NotFound("The user is not a member of this organization.", "MEMBER_NOT_FOUND")


async def find_membership(conn: AsyncConnection, org_code: str, user_id: str) -> Membership | None:
    row = (
        await conn.execute(
            select(t.memberships).where(
                t.memberships.c.org_code == org_code, t.memberships.c.user_id == user_id
            )
        )
    ).first()
    if row is None:
        return None
    grants = await roles_store.grants_of_members(conn, org_code=org_code, user_id=user_id)
    return _membership(row, grants)


async def memberships_of_user(conn: AsyncConnection, user_id: str) -> list[Membership]:
    query = (
        select(t.memberships)
        .where(t.memberships.c.user_id == user_id)
        .order_by(t.memberships.c.org_code)
    )
    rows = list(await conn.execute(query))
    grants = await roles_store.grants_of_members(conn, user_id=user_id) if rows else {}
    return [_membership(row, grants) for row in rows]


TOKEN_SUBJECT = (
    select(t.users, t.memberships.c.org_code, t.memberships.c.joined_on)
    .outerjoin(t.memberships, t.memberships.c.user_id == t.users.c.id)
    .where(t.users.c.id == bindparam("user_id"))
    .order_by(t.memberships.c.org_code)
)
"""The user row with their memberships (a left join, one row per membership), by ``user_id``;
built once, it runs on every user token (``token_subject``, and on the loop in
``store.refresh_grant_reads``)."""


async def token_subject(
    conn: AsyncConnection, user_id: str
) -> tuple[User | None, list[Membership]]:
    """The user and their memberships with grants, for a token: two queries, not three.

    The user row comes with its memberships (a left join, one row per membership); the grants
    of them all follow in one query, and only when the user may still sign in.
    """
    user, joined = token_subject_rows(list(await conn.execute(TOKEN_SUBJECT, {"user_id": user_id})))
    if user is None or not joined:
        return user, []
    grants = await roles_store.grants_of_members(conn, user_id=user_id)
    return user, memberships_of(user_id, joined, grants)


def token_subject_rows(rows: Sequence[Any]) -> tuple[User | None, list[tuple[str, Any]]]:
    """The user of ``TOKEN_SUBJECT``'s rows (None: no such user) and the ``(org_code,
    joined_on)`` of the memberships whose grants the token needs: none for a suspended user."""
    if not rows:
        return None, []
    user = user_from_row(rows[0])
    if user.is_suspended:
        return user, []
    return user, [(row.org_code, row.joined_on) for row in rows if row.org_code is not None]


def memberships_of(
    user_id: str,
    joined: Sequence[tuple[str, Any]],
    grants: dict[roles_store.MemberKey, roles_store.MemberGrants],
) -> list[Membership]:
    """The user's memberships from ``(org_code, joined_on)`` pairs and their grants."""
    memberships = []
    for org_code, joined_on in joined:
        held = grants.get((org_code, user_id), roles_store.MemberGrants())
        memberships.append(
            Membership(
                org_code=org_code,
                user_id=user_id,
                roles=held.role_keys,
                permissions=held.permission_keys,
                joined_on=as_utc(joined_on),
            )
        )
    return memberships


async def count_organizations(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(t.organizations))).scalar_one())


async def list_member_users(
    conn: AsyncConnection, org_code: str, *, limit: int, after_user_id: str | None = None
) -> list[tuple[Membership, User]]:
    """Members with their user records in one query (``GET /organizations/{code}/users``)."""
    query = (
        select(t.memberships, t.users)
        .join(t.users, t.users.c.id == t.memberships.c.user_id)
        .where(t.memberships.c.org_code == org_code)
        .order_by(t.memberships.c.user_id)
        .limit(limit)
    )
    if after_user_id is not None:
        query = query.where(t.memberships.c.user_id > after_user_id)
    rows = list(await conn.execute(query))
    grants = await roles_store.grants_of_members(conn, org_code=org_code) if rows else {}
    return [(_membership(row, grants), user_from_row(row)) for row in rows]
