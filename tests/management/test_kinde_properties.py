"""Kinde's properties through the Management API, on SQLite and PostgreSQL.

A property belongs to users, organizations or applications; a user or organization holds values
of the properties of its own kind, set several at once (all or nothing) or one by one.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.management.catalogue import make_org, make_user, ok


async def create_property(api: httpx.AsyncClient, key: str, context: str, **extra: Any) -> str:
    body = {
        "name": key.title(),
        "key": key,
        "type": "single_line_text",
        "context": context,
        "is_private": False,
        "category_id": "cat_profile",
        **extra,
    }
    created = await ok(await api.post("/api/v1/properties", json=body), 201)
    property_id: str = created["property"]["id"]
    return property_id


def values(body: dict[str, Any]) -> dict[str, Any]:
    return {p["key"]: p["value"] for p in body["properties"]}


async def test_users_and_organizations_hold_values_of_their_own_properties(
    any_api: httpx.AsyncClient,
) -> None:
    org = (await make_org(any_api))["code"]
    user = await make_user(any_api, "ada@example.com", org)
    town = await create_property(any_api, "town", "usr", description="Where they live")
    await create_property(any_api, "industry", "org")
    await create_property(any_api, "kp_app_theme", "app")

    user_props = f"/api/v1/users/{user}/properties"
    assert values(await ok(await any_api.get(user_props))) == {"town": None}
    await ok(await any_api.patch(user_props, json={"properties": {"town": "Staines"}}))
    listed = (await ok(await any_api.get(user_props)))["properties"]
    assert listed == [
        {
            "id": town,
            "name": "Town",
            "description": "Where they live",
            "key": "town",
            "value": "Staines",
        }
    ]
    await ok(await any_api.put(f"{user_props}/town", params={"value": "Slough"}))
    assert values(await ok(await any_api.get(user_props))) == {"town": "Slough"}

    org_props = f"/api/v1/organizations/{org}/properties"
    await ok(await any_api.patch(org_props, json={"properties": {"industry": "Retail"}}))
    await ok(await any_api.put(f"{org_props}/industry", params={"value": "Media"}))
    assert values(await ok(await any_api.get(org_props))) == {"industry": "Media"}

    # A key of another context is unknown here, and the whole request is refused.
    mixed = await any_api.patch(
        user_props, json={"properties": {"town": "Reading", "industry": "Retail"}}
    )
    assert mixed.status_code == 400
    assert mixed.json()["errors"][0]["code"] == "PROPERTY_INVALID"
    assert values(await ok(await any_api.get(user_props))) == {"town": "Slough"}
    unknown = await any_api.put(f"{org_props}/town", params={"value": "x"})
    assert unknown.status_code == 400

    await ok(await any_api.delete(f"/api/v1/properties/{town}"))
    assert values(await ok(await any_api.get(user_props))) == {}
    missing = await any_api.get("/api/v1/users/kp_none/properties")
    assert missing.status_code == 404


async def test_the_catalogue_lists_pages_filters_and_updates(any_api: httpx.AsyncClient) -> None:
    ids = [await create_property(any_api, f"prop_{i}", "usr") for i in range(3)]
    await create_property(any_api, "org_prop", "org")
    first = await ok(await any_api.get("/api/v1/properties", params={"page_size": 2}))
    assert first["has_more"] is True and len(first["properties"]) == 2
    rest = await ok(
        await any_api.get(
            "/api/v1/properties",
            params={"page_size": 2, "starting_after": first["properties"][-1]["id"]},
        )
    )
    assert rest["has_more"] is False
    assert len(first["properties"]) + len(rest["properties"]) == 4
    users_only = await ok(await any_api.get("/api/v1/properties", params={"context": "usr"}))
    assert sorted(p["id"] for p in users_only["properties"]) == sorted(ids)
    assert all(p["is_kinde_property"] is False for p in users_only["properties"])

    await ok(
        await any_api.put(
            f"/api/v1/properties/{ids[0]}",
            json={"name": "Renamed", "is_private": True, "category_id": "cat_other"},
        )
    )
    renamed = next(
        p
        for p in (await ok(await any_api.get("/api/v1/properties")))["properties"]
        if p["id"] == ids[0]
    )
    assert renamed["name"] == "Renamed" and renamed["is_private"] is True
    duplicate = await any_api.post(
        "/api/v1/properties",
        json={
            "name": "Again",
            "key": "prop_0",
            "type": "multi_line_text",
            "context": "usr",
            "is_private": False,
            "category_id": "c",
        },
    )
    assert duplicate.status_code == 409
    assert (await any_api.delete("/api/v1/properties/prop_none")).status_code == 404
