"""Kinde's properties: ``/properties`` and the values users and organizations hold.

Paths, scopes and bodies are Kinde's Management API's (``kinde-management-api.yml``, tags
Properties, Users and Organizations). Values are strings; ``PATCH .../properties`` sets several
at once (all or nothing), ``PUT .../properties/{property_key}?value=`` one. Property categories
(``/property_categories``) are not implemented: ``category_id`` is kept as given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from claimflow.domain import Property, PropertyContext, PropertyType, PropertyValue
from claimflow.domain.feature_flags import MAX_INTEGER
from claimflow.errors import InvalidRequest
from claimflow.management.auth import require_scope, services_of
from claimflow.management.wire import (
    OK,
    Code,
    CodePath,
    Cursor,
    Name,
    OptionalText,
    PageSize,
    StrictModel,
    cursor_page,
    without_none,
)
from claimflow.store import organizations, properties, users

router = APIRouter()

MAX_VALUE_LENGTH = 2000


def _text(value: str) -> str:
    """Printable, with the line breaks and tabs a ``multi_line_text`` value may hold."""
    if not all(c.isprintable() or c in "\n\r\t" for c in value):
        raise ValueError("must not contain control characters or unpaired surrogates")
    return value


PropertyText = Annotated[str, StringConstraints(max_length=MAX_VALUE_LENGTH), AfterValidator(_text)]
ValueQuery = Annotated[str, Query(max_length=MAX_VALUE_LENGTH)]
PropertyInteger = Annotated[int, Field(ge=-MAX_INTEGER, le=MAX_INTEGER)]
"""A number value is kept as its text: bounded like a flag's integer (±2^53-1, exact in
JavaScript), or a 4,300-digit number would pass the text's length bound."""


def property_json(prop: Property) -> dict[str, Any]:
    """Kinde's ``property``; ours are never Kinde's built-in ones."""
    return without_none(
        {
            "id": prop.id,
            "key": prop.key,
            "name": prop.name,
            "is_private": prop.is_private,
            "description": prop.description,
            "is_kinde_property": False,
        }
    )


def property_value_json(held: PropertyValue) -> dict[str, Any]:
    """Kinde's ``property_value``: ``description`` and ``value`` are nullable there."""
    return {
        "id": held.property.id,
        "name": held.property.name,
        "description": held.property.description,
        "key": held.property.key,
        "value": held.value,
    }


class NewProperty(BaseModel):
    """Kinde's ``CreateProperty`` body."""

    model_config = StrictModel

    name: Name
    description: OptionalText | None = None
    key: Code
    type: Literal["single_line_text", "multi_line_text"]
    context: Literal["org", "usr", "app"]
    is_private: bool
    category_id: Code


class PropertyChanges(BaseModel):
    """Kinde's ``UpdateProperty`` body: key, type and context do not change."""

    model_config = StrictModel

    name: Name
    description: OptionalText | None = None
    is_private: bool
    category_id: Code


class PropertyValues(BaseModel):
    """``{"properties": {"<key>": "<value>"}}``; numbers and booleans are kept as their text."""

    model_config = StrictModel

    properties: dict[Code, PropertyText | bool | PropertyInteger] = Field(max_length=100)


def _texts(values: Mapping[str, str | bool | int]) -> dict[str, str]:
    return {
        key: ("true" if v else "false") if isinstance(v, bool) else str(v)
        for key, v in values.items()
    }


@router.get("/properties", summary="List properties", tags=["Properties"])
async def list_properties(
    request: Request,
    page_size: PageSize = None,
    starting_after: Cursor = None,
    ending_before: Cursor = None,
    context: PropertyContext | None = None,
    _: object = Depends(require_scope("read:properties")),
) -> dict[str, Any]:
    async with services_of(request).db.connect() as conn:
        everything = await properties.list_properties(conn, context)
    page, has_more = cursor_page(
        everything,
        lambda p: p.id,
        page_size=page_size,
        starting_after=starting_after,
        ending_before=ending_before,
    )
    return {**OK, "properties": [property_json(p) for p in page], "has_more": has_more}


@router.post("/properties", status_code=201, summary="Create Property", tags=["Properties"])
async def create_property(
    request: Request, body: NewProperty, _: object = Depends(require_scope("create:properties"))
) -> dict[str, Any]:
    async with services_of(request).db.transaction() as conn:
        created = await properties.create_property(
            conn,
            key=body.key,
            name=body.name,
            description=body.description,
            property_type=PropertyType(body.type),
            context=PropertyContext(body.context),
            is_private=body.is_private,
            category_id=body.category_id,
        )
    return {
        "code": "PROPERTY_CREATED",
        "message": "Property successfully created",
        "property": {"id": created.id},
    }


@router.put("/properties/{property_id}", summary="Update Property", tags=["Properties"])
async def update_property(
    request: Request,
    property_id: CodePath,
    body: PropertyChanges,
    _: object = Depends(require_scope("update:properties")),
) -> dict[str, str]:
    async with services_of(request).db.transaction() as conn:
        await properties.update_property(conn, property_id, **body.model_dump())
    return {"code": "PROPERTY_UPDATED", "message": "Property successfully updated"}


@router.delete("/properties/{property_id}", summary="Delete Property", tags=["Properties"])
async def delete_property(
    request: Request,
    property_id: CodePath,
    _: object = Depends(require_scope("delete:properties")),
) -> dict[str, str]:
    async with services_of(request).db.transaction() as conn:
        await properties.delete_property(conn, property_id)
    return {"code": "PROPERTY_DELETED", "message": "Property successfully deleted"}


@router.get("/users/{user_id}/properties", summary="Get property values", tags=["Users"])
async def get_user_property_values(
    request: Request,
    user_id: CodePath,
    _: object = Depends(require_scope("read:user_properties")),
) -> dict[str, Any]:
    """Every user property, with the user's value or ``null``."""
    async with services_of(request).db.connect() as conn:
        await users.get_user(conn, user_id)
        held = await properties.values_of(conn, PropertyContext.USER, user_id)
    return {**OK, "properties": [property_value_json(h) for h in held]}


@router.patch("/users/{user_id}/properties", summary="Update Property values", tags=["Users"])
async def update_user_properties(
    request: Request,
    user_id: CodePath,
    body: PropertyValues,
    _: object = Depends(require_scope("update:user_properties")),
) -> dict[str, str]:
    async with services_of(request).db.transaction() as conn:
        await users.lock_user(conn, user_id)  # a deletion goes first or after, never between
        await properties.set_values(conn, PropertyContext.USER, user_id, _texts(body.properties))
    return OK


@router.put(
    "/users/{user_id}/properties/{property_key}", summary="Update Property value", tags=["Users"]
)
async def update_user_property(
    request: Request,
    user_id: CodePath,
    property_key: CodePath,
    value: ValueQuery,
    _: object = Depends(require_scope("update:user_properties")),
) -> dict[str, str]:
    async with services_of(request).db.transaction() as conn:
        await users.lock_user(conn, user_id)
        await properties.set_values(
            conn, PropertyContext.USER, user_id, {property_key: _valid(value)}
        )
    return OK


@router.get(
    "/organizations/{org_code}/properties",
    summary="Get Organization Property Values",
    tags=["Organizations"],
)
async def get_organization_property_values(
    request: Request,
    org_code: CodePath,
    _: object = Depends(require_scope("read:organization_properties")),
) -> dict[str, Any]:
    async with services_of(request).db.connect() as conn:
        await organizations.get_organization(conn, org_code)
        held = await properties.values_of(conn, PropertyContext.ORGANIZATION, org_code)
    return {**OK, "properties": [property_value_json(h) for h in held]}


@router.patch(
    "/organizations/{org_code}/properties",
    summary="Update Organization Property values",
    tags=["Organizations"],
)
async def update_organization_properties(
    request: Request,
    org_code: CodePath,
    body: PropertyValues,
    _: object = Depends(require_scope("update:organization_properties")),
) -> dict[str, str]:
    async with services_of(request).db.transaction() as conn:
        # Shared while the organization's deletion takes it exclusive: one goes first, never
        # a value written between (a foreign-key error, 500) on PostgreSQL.
        await organizations.lock_organization(conn, org_code, exclusive=False)
        await properties.set_values(
            conn, PropertyContext.ORGANIZATION, org_code, _texts(body.properties)
        )
    return OK


@router.put(
    "/organizations/{org_code}/properties/{property_key}",
    summary="Update Organization Property value",
    tags=["Organizations"],
)
async def update_organization_property(
    request: Request,
    org_code: CodePath,
    property_key: CodePath,
    value: ValueQuery,
    _: object = Depends(require_scope("update:organization_properties")),
) -> dict[str, str]:
    async with services_of(request).db.transaction() as conn:
        await organizations.lock_organization(conn, org_code, exclusive=False)
        await properties.set_values(
            conn, PropertyContext.ORGANIZATION, org_code, {property_key: _valid(value)}
        )
    return OK


def _valid(value: str) -> str:
    try:
        return _text(value)
    except ValueError as exc:
        raise InvalidRequest(f"Invalid property value: {exc}.", "PROPERTY_VALUE_INVALID") from exc
