"""Kinde's roles and permissions drive the ``roles`` and ``permissions`` token claims.

A permission granted to a role reaches every holder's next token (a refresh re-derives the
claims), and taken back it leaves; the Management API refuses role keys it does not know.
"""

from __future__ import annotations

from typing import Any

import httpx
import jwt

from claimflow.services import Services
from tests.management.catalogue import make_org, make_user, ok
from tests.oidc.flow import Business, exchange, seed_business, sign_in_for_code


class Session:
    """Alice signed in to Acme, refreshing her tokens to see the current grants."""

    def __init__(self, client: httpx.AsyncClient, biz: Business, refresh_token: str) -> None:
        self.client, self.biz, self.refresh_token = client, biz, refresh_token

    async def claims(self) -> dict[str, Any]:
        response = await self.client.post(
            "/oauth2/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": self.refresh_token,
                "client_id": self.biz.web_client_id,
                "client_secret": self.biz.web_secret,
            },
        )
        assert response.status_code == 200, response.text
        self.refresh_token = response.json()["refresh_token"]
        claims: dict[str, Any] = jwt.decode(
            response.json()["access_token"], options={"verify_signature": False}
        )
        return claims


async def signed_in(client: httpx.AsyncClient, services: Services) -> Session:
    biz = await seed_business(services)
    callback = await sign_in_for_code(client, biz, org_code=biz.org_code)
    tokens = (await exchange(client, biz, callback["code"])).json()
    return Session(client, biz, tokens["refresh_token"])


async def test_permissions_follow_the_roles_a_member_holds(
    client: httpx.AsyncClient, api: httpx.AsyncClient, services: Services
) -> None:
    session = await signed_in(client, services)
    before = await session.claims()
    assert before["permissions"] == ["read:reports"] and before["roles"] == [{"key": "admin"}]
    roles = (await ok(await api.get("/api/v1/roles")))["roles"]
    admin = next(r["id"] for r in roles if r["key"] == "admin")
    await ok(
        await api.post("/api/v1/permissions", json={"key": "write:reports", "name": "Write"}), 201
    )
    permissions = (await ok(await api.get("/api/v1/permissions")))["permissions"]
    write = next(p["id"] for p in permissions if p["key"] == "write:reports")
    changed = await ok(
        await api.patch(f"/api/v1/roles/{admin}/permissions", json={"permissions": [{"id": write}]})
    )
    assert changed["permissions_added"] == [write]
    assert sorted((await session.claims())["permissions"]) == ["read:reports", "write:reports"]

    await ok(
        await api.patch(
            f"/api/v1/roles/{admin}/permissions",
            json={"permissions": [{"id": write, "operation": "delete"}]},
        )
    )
    assert (await session.claims())["permissions"] == ["read:reports"]

    member = f"/api/v1/organizations/{session.biz.org_code}/users/{session.biz.user_id}"
    await ok(await api.delete(f"{member}/roles/{admin}"))
    after = await session.claims()
    assert after["roles"] == [] and after["permissions"] == ["read:reports"]  # direct grant
    held = await ok(await api.get(f"{member}/permissions", params={"expand": "roles"}))
    assert [(p["key"], p["roles"]) for p in held["permissions"]] == [("read:reports", [])]


async def test_an_unknown_role_key_adds_nobody(api: httpx.AsyncClient) -> None:
    org = (await make_org(api))["code"]
    ada = await make_user(api, "ada@example.com")
    response = await api.post(
        f"/api/v1/organizations/{org}/users", json={"users": [{"id": ada, "roles": ["owner"]}]}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "ROLE_INVALID"
    listed = await ok(await api.get(f"/api/v1/organizations/{org}/users"))
    assert listed["organization_users"] == []


async def test_a_duplicate_role_key_is_a_conflict(api: httpx.AsyncClient) -> None:
    await ok(await api.post("/api/v1/roles", json={"name": "A", "key": "a"}), 201)
    again = await api.post("/api/v1/roles", json={"name": "B", "key": "a"})
    assert again.status_code == 409 and again.json()["errors"][0]["code"] == "ROLE_EXISTS"
