"""Kinde's application routes: the secret shown once, M2M scopes, redirect and logout URLs."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from claimflow.domain.management_scopes import ALL_MANAGEMENT_SCOPES
from claimflow.services import Services
from tests.conftest import ISSUER
from tests.helpers import m2m_token, management_client
from tests.management.catalogue import ok


async def test_m2m_application_secret_is_shown_once_and_works(
    api: httpx.AsyncClient, app: FastAPI
) -> None:
    created = await ok(
        await api.post(
            "/api/v1/applications",
            json={"name": "Backend", "type": "m2m", "scopes": ["read:organizations"]},
        ),
        201,
    )
    application = created["application"]
    assert application["id"] == application["client_id"] and application["client_secret"]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as anonymous:
        token = await m2m_token(anonymous, application["client_id"], application["client_secret"])
    headers = {"Authorization": f"Bearer {token}"}
    assert (await api.get("/api/v1/organizations", headers=headers)).status_code == 200
    response = await api.get("/api/v1/users", headers=headers)
    assert response.status_code == 403

    listed = await ok(await api.get("/api/v1/applications"))
    names = {a["id"]: a for a in listed["applications"]}
    assert names[application["id"]] == {"id": application["id"], "name": "Backend", "type": "m2m"}
    assert "client_secret" not in str(listed)


async def test_spa_has_no_secret_and_bad_types_or_scopes_are_refused(
    api: httpx.AsyncClient,
) -> None:
    spa = await ok(await api.post("/api/v1/applications", json={"name": "SPA", "type": "spa"}), 201)
    assert "client_secret" not in spa["application"]
    for body in (
        {"name": "X", "type": "device"},
        {"name": "X", "type": "tv"},
        {"name": "X", "type": "reg", "scopes": ["read:users"]},
        {"name": "X", "type": "m2m", "scopes": ["root"]},
        {"type": "m2m"},
    ):
        response = await api.post("/api/v1/applications", json=body)
        assert response.status_code == 400, body


async def test_redirect_and_logout_urls(api: httpx.AsyncClient) -> None:
    created = await ok(
        await api.post("/api/v1/applications", json={"name": "Web", "type": "reg"}), 201
    )
    app_id = created["application"]["id"]
    base = f"/api/v1/applications/{app_id}"
    urls = ["https://app.test/callback", "http://localhost:3000/cb"]
    assert (await ok(await api.post(f"{base}/auth_redirect_urls", json={"urls": urls})))[
        "code"
    ] == "OK"
    await ok(await api.post(f"{base}/auth_redirect_urls", json={"urls": urls[:1]}))
    assert (await ok(await api.get(f"{base}/auth_redirect_urls")))["redirect_urls"] == urls
    await ok(await api.post(f"{base}/auth_logout_urls", json={"urls": ["https://app.test/"]}))
    assert (await ok(await api.get(f"{base}/auth_logout_urls")))["logout_urls"] == [
        "https://app.test/"
    ]
    for bad in (["/relative"], ["javascript:alert(1)"], ["https://app.test/#frag"], "nope"):
        response = await api.post(f"{base}/auth_redirect_urls", json={"urls": bad})
        assert response.status_code == 400, bad
    assert (await api.get("/api/v1/applications/unknown/auth_redirect_urls")).status_code == 404


async def test_applications_page_with_next_token(api: httpx.AsyncClient) -> None:
    for i in range(4):
        await ok(
            await api.post("/api/v1/applications", json={"name": f"SPA {i}", "type": "spa"}), 201
        )
    # The api fixture's own M2M application makes five.
    first = await ok(await api.get("/api/v1/applications", params={"page_size": 3}))
    assert len(first["applications"]) == 3
    assert first["next_token"] == first["applications"][-1]["id"]
    second = await ok(
        await api.get(
            "/api/v1/applications", params={"page_size": 3, "next_token": first["next_token"]}
        )
    )
    assert len(second["applications"]) == 2 and "next_token" not in second
    ids = [a["id"] for a in first["applications"] + second["applications"]]
    assert len(set(ids)) == 5


async def test_create_applications_token_cannot_mint_an_all_scopes_m2m_app_and_use_it(
    client: httpx.AsyncClient, services: Services
) -> None:
    """The escalation: a caller holding only ``create:applications`` grants itself everything."""
    headers = await management_client(client, services, ["create:applications"])
    attack = await client.post(
        "/api/v1/applications",
        headers=headers,
        json={"name": "Escalator", "type": "m2m", "scopes": list(ALL_MANAGEMENT_SCOPES)},
    )
    escalated = attack.json().get("application", {})
    if "client_secret" in escalated:
        token = await m2m_token(client, escalated["client_id"], escalated["client_secret"])
        used = await client.get("/api/v1/users", headers={"Authorization": f"Bearer {token}"})
        assert used.status_code == 403, "the application the attacker created reads every user"
    assert attack.status_code == 403, attack.text
    error = attack.json()["errors"][0]
    assert error["code"] == "SCOPES_NOT_HELD"
    assert "read:users" in error["message"]
    admin = await management_client(client, services)
    listed = await ok(await client.get("/api/v1/applications", headers=admin))
    assert "Escalator" not in {a["name"] for a in listed["applications"]}


async def test_create_applications_may_grant_the_scopes_the_caller_holds(
    client: httpx.AsyncClient, services: Services
) -> None:
    held = ["create:applications", "read:organizations"]
    headers = await management_client(client, services, held)
    created = await ok(
        await client.post(
            "/api/v1/applications",
            headers=headers,
            json={"name": "Reader", "type": "m2m", "scopes": ["read:organizations"]},
        ),
        201,
    )
    application = created["application"]
    token = await m2m_token(client, application["client_id"], application["client_secret"])
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/v1/organizations", headers=bearer)).status_code == 200
    assert (await client.get("/api/v1/users", headers=bearer)).status_code == 403
