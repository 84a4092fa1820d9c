"""Kinde's membership routes: list, add (all or nothing), remove."""

from __future__ import annotations

import asyncio

import httpx

from tests.management.catalogue import make_org, make_user, ok


async def test_add_list_and_remove_members(any_api: httpx.AsyncClient) -> None:
    api = any_api
    org = (await make_org(api))["code"]
    ada = await make_user(api, "ada@example.com")
    bob = await make_user(api, "bob@example.com")
    await ok(await api.post("/api/v1/roles", json={"name": "Admin", "key": "admin"}), 201)
    added = await ok(
        await api.post(
            f"/api/v1/organizations/{org}/users",
            json={"users": [{"id": ada, "roles": ["admin"]}, {"id": bob}]},
        )
    )
    assert sorted(added["users_added"]) == sorted([ada, bob])
    listed = await ok(await api.get(f"/api/v1/organizations/{org}/users"))
    members = {m["id"]: m for m in listed["organization_users"]}
    assert members[ada]["roles"] == ["admin"] and members[ada]["full_name"] == "Ada Lovelace"
    assert members[ada]["joined_on"].endswith("Z")

    page = await ok(await api.get(f"/api/v1/organizations/{org}/users", params={"page_size": 1}))
    assert len(page["organization_users"]) == 1 and "next_token" in page

    assert (await ok(await api.delete(f"/api/v1/organizations/{org}/users/{ada}")))["code"] == "OK"
    listed = await ok(await api.get(f"/api/v1/organizations/{org}/users"))
    assert [m["id"] for m in listed["organization_users"]] == [bob]
    assert (await api.delete(f"/api/v1/organizations/{org}/users/{ada}")).status_code == 404


async def test_one_unknown_user_adds_nobody(api: httpx.AsyncClient) -> None:
    org = (await make_org(api))["code"]
    ada = await make_user(api, "ada@example.com")
    response = await api.post(
        f"/api/v1/organizations/{org}/users", json={"users": [{"id": ada}, {"id": "kp_nobody"}]}
    )
    assert response.status_code == 404
    listed = await ok(await api.get(f"/api/v1/organizations/{org}/users"))
    assert listed["organization_users"] == []
    response = await api.get("/api/v1/organizations/org_missing/users")
    assert response.status_code == 404


async def test_concurrent_adds_of_one_member_never_fail_with_5xx(
    any_api: httpx.AsyncClient,
) -> None:
    api = any_api
    org = (await make_org(api))["code"]
    ada = await make_user(api, "ada@example.com")
    responses = await asyncio.gather(
        *(
            api.post(f"/api/v1/organizations/{org}/users", json={"users": [{"id": ada}]})
            for _ in range(8)
        )
    )
    assert {r.status_code for r in responses} <= {200, 409}
    listed = await ok(await api.get(f"/api/v1/organizations/{org}/users"))
    assert [m["id"] for m in listed["organization_users"]] == [ada]
