"""Kinde's properties: the catalogue and the values users and organizations hold, by key.

A property belongs to one context (``usr``, ``org`` or ``app``); only a user property takes a
user's value and only an organization property an organization's, so a key of the wrong context
is refused like an unknown one. Values are Kinde's strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow.domain import Property, PropertyContext, PropertyType, PropertyValue
from claimflow.domain.ids import new_prefixed_id
from claimflow.errors import Conflict, InvalidRequest, NotFound
from claimflow.store import tables as t
from claimflow.store._rows import IntegrityError, dialect_insert, utcnow


def _property(row: Any) -> Property:
    return Property(
        id=row.id,
        key=row.key,
        name=row.name,
        description=row.description,
        type=PropertyType(row.type),
        context=PropertyContext(row.context),
        is_private=bool(row.is_private),
        category_id=row.category_id,
    )


async def create_property(
    conn: AsyncConnection,
    *,
    key: str,
    name: str,
    description: str | None,
    property_type: PropertyType,
    context: PropertyContext,
    is_private: bool,
    category_id: str | None,
) -> Property:
    created = Property(
        id=new_prefixed_id("prop"),
        key=key,
        name=name,
        description=description,
        type=property_type,
        context=context,
        is_private=is_private,
        category_id=category_id,
    )
    try:
        await conn.execute(
            insert(t.properties).values(
                id=created.id,
                key=key,
                name=name,
                description=description,
                type=property_type.value,
                context=context.value,
                is_private=is_private,
                category_id=category_id,
                created_on=utcnow(),
            )
        )
    except IntegrityError as exc:
        raise Conflict("A property with this key already exists.", "PROPERTY_EXISTS") from exc
    return created


async def get_property(conn: AsyncConnection, property_id: str) -> Property:
    row = (await conn.execute(select(t.properties).where(t.properties.c.id == property_id))).first()
    if row is None:
        raise NotFound("No property with this id.", "PROPERTY_NOT_FOUND")
    return _property(row)


async def list_properties(
    conn: AsyncConnection, context: PropertyContext | None = None
) -> list[Property]:
    query = select(t.properties).order_by(t.properties.c.id)
    if context is not None:
        query = query.where(t.properties.c.context == context.value)
    return [_property(row) for row in await conn.execute(query)]


async def update_property(conn: AsyncConnection, property_id: str, **changes: Any) -> None:
    await get_property(conn, property_id)
    await conn.execute(update(t.properties).where(t.properties.c.id == property_id).values(changes))


async def delete_property(conn: AsyncConnection, property_id: str) -> None:
    await get_property(conn, property_id)
    for table in (t.user_property_values, t.organization_property_values):
        await conn.execute(delete(table).where(table.c.property_id == property_id))
    await conn.execute(delete(t.properties).where(t.properties.c.id == property_id))


def _holder(context: PropertyContext) -> tuple[Any, str]:
    if context is PropertyContext.USER:
        return t.user_property_values, "user_id"
    return t.organization_property_values, "org_code"


async def values_of(
    conn: AsyncConnection, context: PropertyContext, holder_id: str
) -> list[PropertyValue]:
    """Every property of ``context`` with the value ``holder_id`` holds (``None`` when unset)."""
    table, column = _holder(context)
    query = (
        select(t.properties, table.c.value.label("held"))
        .select_from(
            t.properties.outerjoin(
                table,
                and_(table.c.property_id == t.properties.c.id, table.c[column] == holder_id),
            )
        )
        .where(t.properties.c.context == context.value)
        .order_by(t.properties.c.id)
    )
    return [PropertyValue(_property(row), row.held) for row in await conn.execute(query)]


async def set_values(
    conn: AsyncConnection, context: PropertyContext, holder_id: str, values: Mapping[str, str]
) -> None:
    """Set each ``key: value``; an unknown key (or one of another context) refuses them all."""
    if not values:
        return
    rows = await conn.execute(
        select(t.properties.c.key, t.properties.c.id).where(
            t.properties.c.key.in_(sorted(values)), t.properties.c.context == context.value
        )
    )
    ids = {row.key: row.id for row in rows}
    unknown = sorted(set(values) - set(ids))
    if unknown:
        raise InvalidRequest(
            f"No {context.value} property with key(s): {', '.join(unknown)}.", "PROPERTY_INVALID"
        )
    table, column = _holder(context)
    for key, value in values.items():
        statement = dialect_insert(conn, table).values(
            {column: holder_id, "property_id": ids[key], "value": value}
        )
        await conn.execute(
            statement.on_conflict_do_update(
                index_elements=[column, "property_id"], set_={"value": statement.excluded.value}
            )
        )
