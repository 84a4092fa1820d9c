"""Registered APIs, their scopes, the applications authorized for them and the scopes granted.

The token endpoint reads ``authorization_for`` (may this client get a token for this audience,
and with which API scopes); introspection reads ``is_authorized_for_any``. Authorizing and
granting are idempotent, also when two requests do it at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow.domain import Api, ApiAuthorization, ApiScope, Application
from claimflow.domain.ids import new_api_id, new_api_scope_id
from claimflow.errors import Conflict, NotFound
from claimflow.store import tables as t
from claimflow.store._rows import IntegrityError, insert_unless_present, required_utc, utcnow
from claimflow.store.applications import application_from_row


def _scope(row: Any) -> ApiScope:
    return ApiScope(id=row.id, api_id=row.api_id, key=row.key, description=row.description)


async def _scopes_of(conn: AsyncConnection, api_ids: Sequence[str]) -> dict[str, list[ApiScope]]:
    by_api: dict[str, list[ApiScope]] = {api_id: [] for api_id in api_ids}
    if not api_ids:
        return by_api
    rows = await conn.execute(
        select(t.api_scopes).where(t.api_scopes.c.api_id.in_(api_ids)).order_by(t.api_scopes.c.key)
    )
    for row in rows:
        by_api[row.api_id].append(_scope(row))
    return by_api


async def _apis(conn: AsyncConnection, rows: Sequence[Any]) -> list[Api]:
    scopes = await _scopes_of(conn, [row.id for row in rows])
    return [
        Api(
            id=row.id,
            name=row.name,
            audience=row.audience,
            created_on=required_utc(row.created_on),
            scopes=tuple(scopes[row.id]),
        )
        for row in rows
    ]


async def create_api(
    conn: AsyncConnection, *, name: str, audience: str, api_id: str | None = None
) -> Api:
    values = {
        "id": api_id or new_api_id(),
        "name": name,
        "audience": audience,
        "created_on": utcnow(),
    }
    try:
        await conn.execute(insert(t.apis).values(**values))
    except IntegrityError as exc:
        raise Conflict("An API with this audience or id already exists.", "API_EXISTS") from exc
    return await get_api(conn, str(values["id"]))


async def list_apis(conn: AsyncConnection) -> list[Api]:
    """Every registered API, sorted by name (Kinde: "The APIs are returned sorted by name")."""
    rows = (await conn.execute(select(t.apis).order_by(t.apis.c.name, t.apis.c.id))).all()
    return await _apis(conn, rows)


async def find_api(conn: AsyncConnection, api_id: str) -> Api | None:
    rows = (await conn.execute(select(t.apis).where(t.apis.c.id == api_id))).all()
    found = await _apis(conn, rows)
    return found[0] if found else None


async def get_api(conn: AsyncConnection, api_id: str) -> Api:
    api = await find_api(conn, api_id)
    if api is None:
        raise NotFound("No API with this id.", "API_INVALID")
    return api


async def delete_api(conn: AsyncConnection, api_id: str) -> None:
    """Delete an API; its scopes and authorizations go with it (foreign-key cascade)."""
    await get_api(conn, api_id)
    await conn.execute(delete(t.apis).where(t.apis.c.id == api_id))


async def create_scope(
    conn: AsyncConnection, api_id: str, *, key: str, description: str | None
) -> ApiScope:
    await get_api(conn, api_id)
    scope = ApiScope(id=new_api_scope_id(), api_id=api_id, key=key, description=description)
    try:
        await conn.execute(
            insert(t.api_scopes).values(
                id=scope.id, api_id=api_id, key=key, description=description, created_on=utcnow()
            )
        )
    except IntegrityError as exc:
        raise Conflict("The API already has a scope with this key.", "API_SCOPE_EXISTS") from exc
    return scope


async def get_scope(conn: AsyncConnection, api_id: str, scope_id: str) -> ApiScope:
    await get_api(conn, api_id)
    row = (
        await conn.execute(
            select(t.api_scopes).where(
                t.api_scopes.c.api_id == api_id, t.api_scopes.c.id == scope_id
            )
        )
    ).first()
    if row is None:
        raise NotFound("No scope with this id on this API.", "API_SCOPE_INVALID")
    return _scope(row)


async def update_scope(
    conn: AsyncConnection, api_id: str, scope_id: str, *, description: str | None
) -> ApiScope:
    await get_scope(conn, api_id, scope_id)
    await conn.execute(
        update(t.api_scopes).where(t.api_scopes.c.id == scope_id).values(description=description)
    )
    return await get_scope(conn, api_id, scope_id)


async def delete_scope(conn: AsyncConnection, api_id: str, scope_id: str) -> None:
    """Delete a scope; grants of it to applications go with it (foreign-key cascade)."""
    await get_scope(conn, api_id, scope_id)
    await conn.execute(delete(t.api_scopes).where(t.api_scopes.c.id == scope_id))


async def authorized_applications(conn: AsyncConnection, api_id: str) -> list[Application]:
    rows = await conn.execute(
        select(t.applications)
        .join(t.api_applications, t.api_applications.c.client_id == t.applications.c.client_id)
        .where(t.api_applications.c.api_id == api_id)
        .order_by(t.applications.c.client_id)
    )
    return [application_from_row(row) for row in rows]


async def authorize(conn: AsyncConnection, api_id: str, client_id: str) -> bool:
    """Authorize ``client_id`` for the API; False when it already was (even concurrently)."""
    return await insert_unless_present(
        conn, t.api_applications, api_id=api_id, client_id=client_id, created_on=utcnow()
    )


async def deauthorize(conn: AsyncConnection, api_id: str, client_id: str) -> bool:
    """Withdraw the authorization and the scopes granted with it; False when there was none."""
    result = await conn.execute(
        delete(t.api_applications).where(
            t.api_applications.c.api_id == api_id, t.api_applications.c.client_id == client_id
        )
    )
    return bool(result.rowcount)


async def _is_authorized(conn: AsyncConnection, api_id: str, client_id: str) -> bool:
    row = (
        await conn.execute(
            select(t.api_applications.c.api_id).where(
                t.api_applications.c.api_id == api_id,
                t.api_applications.c.client_id == client_id,
            )
        )
    ).first()
    return row is not None


async def grant_scope(conn: AsyncConnection, api_id: str, client_id: str, scope_id: str) -> None:
    """Grant an API scope to an application authorized for the API (idempotent)."""
    await get_scope(conn, api_id, scope_id)
    if not await _is_authorized(conn, api_id, client_id):
        raise NotFound("The application is not authorized for this API.", "APPLICATION_INVALID")
    await insert_unless_present(
        conn, t.api_application_scopes, api_id=api_id, client_id=client_id, scope_id=scope_id
    )


async def revoke_scope(conn: AsyncConnection, api_id: str, client_id: str, scope_id: str) -> None:
    await get_scope(conn, api_id, scope_id)
    result = await conn.execute(
        delete(t.api_application_scopes).where(
            t.api_application_scopes.c.api_id == api_id,
            t.api_application_scopes.c.client_id == client_id,
            t.api_application_scopes.c.scope_id == scope_id,
        )
    )
    if not result.rowcount:
        raise NotFound("The application does not hold this scope.", "API_SCOPE_INVALID")


async def authorization_for(
    conn: AsyncConnection, audience: str, client_id: str
) -> ApiAuthorization | None:
    """The client's authorization for the API registered under ``audience``, or None."""
    row = (
        await conn.execute(
            select(t.apis)
            .join(t.api_applications, t.api_applications.c.api_id == t.apis.c.id)
            .where(t.apis.c.audience == audience, t.api_applications.c.client_id == client_id)
        )
    ).first()
    if row is None:
        return None
    (api,) = await _apis(conn, [row])
    keys = await conn.execute(
        select(t.api_scopes.c.key)
        .join(
            t.api_application_scopes,
            and_(
                t.api_application_scopes.c.scope_id == t.api_scopes.c.id,
                t.api_application_scopes.c.client_id == client_id,
            ),
        )
        .where(t.api_scopes.c.api_id == api.id)
        .order_by(t.api_scopes.c.key)
    )
    return ApiAuthorization(api=api, client_id=client_id, scope_keys=tuple(keys.scalars()))


async def is_authorized_for_any(
    conn: AsyncConnection, client_id: str, audiences: Sequence[str]
) -> bool:
    """Whether ``client_id`` is authorized for a registered API among ``audiences``."""
    if not audiences:
        return False
    row = (
        await conn.execute(
            select(t.apis.c.id)
            .join(t.api_applications, t.api_applications.c.api_id == t.apis.c.id)
            .where(
                t.apis.c.audience.in_(list(audiences)), t.api_applications.c.client_id == client_id
            )
            .limit(1)
        )
    ).first()
    return row is not None
