"""Kinde's ``/api/v1/apis``: register APIs, their scopes, and the applications authorized."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.conftest import ISSUER
from tests.management.catalogue import ok


async def register_api(api: httpx.AsyncClient, audience: str, name: str = "Orders") -> str:
    created = await ok(await api.post("/api/v1/apis", json={"name": name, "audience": audience}))
    api_id: str = created["api"]["id"]
    return api_id


async def new_application(api: httpx.AsyncClient, kind: str, name: str = "App") -> dict[str, Any]:
    created = await ok(
        await api.post("/api/v1/applications", json={"name": name, "type": kind}), 201
    )
    application: dict[str, Any] = created["application"]
    return application


async def test_register_an_api_with_scopes_and_authorized_applications(
    any_api: httpx.AsyncClient,
) -> None:
    api = any_api
    api_id = await register_api(api, "https://orders.example.com")
    base = f"/api/v1/apis/{api_id}"
    read = (await ok(await api.post(f"{base}/scopes", json={"key": "read:orders"})))["scope"]["id"]
    write = await ok(
        await api.post(f"{base}/scopes", json={"key": "write:orders", "description": "Write"})
    )
    scopes = (await ok(await api.get(f"{base}/scopes")))["scopes"]
    assert scopes == [
        {"id": read, "key": "read:orders"},
        {"id": write["scope"]["id"], "key": "write:orders", "description": "Write"},
    ]
    await ok(await api.patch(f"{base}/scopes/{read}", json={"description": "Read orders"}))
    scope = (await ok(await api.get(f"{base}/scopes/{read}")))["scope"]
    assert scope == {"id": read, "key": "read:orders", "description": "Read orders"}

    web = await new_application(api, "reg", "Web")
    m2m = await new_application(api, "m2m", "Worker")
    changed = await ok(
        await api.patch(
            f"{base}/applications",
            json={"applications": [{"id": web["id"]}, {"id": m2m["id"]}, {"id": web["id"]}]},
        )
    )
    assert changed["code"] == "API_APPLICATIONS_UPDATED"
    assert changed["applications_connected"] == [web["id"], m2m["id"]]
    await ok(await api.post(f"{base}/applications/{m2m['id']}/scopes/{read}"))
    await ok(await api.post(f"{base}/applications/{m2m['id']}/scopes/{read}"))

    described = (await ok(await api.get(base)))["api"]
    assert described["audience"] == "https://orders.example.com"
    assert described["is_management_api"] is False
    assert {s["key"] for s in described["scopes"]} == {"read:orders", "write:orders"}
    assert {(a["id"], a["type"]) for a in described["applications"]} == {
        (web["id"], "Back-end web"),
        (m2m["id"], "Machine to machine (M2M)"),
    }
    listed = (await ok(await api.get("/api/v1/apis", params={"expand": "scopes"})))["apis"]
    assert [a["id"] for a in listed] == [api_id] and len(listed[0]["scopes"]) == 2
    assert "scopes" not in (await ok(await api.get("/api/v1/apis")))["apis"][0]

    removed = await ok(
        await api.patch(
            f"{base}/applications",
            json={"applications": [{"id": web["id"], "operation": "delete"}]},
        )
    )
    assert removed["applications_disconnected"] == [web["id"]]
    await ok(await api.delete(f"{base}/applications/{m2m['id']}/scopes/{read}"))
    assert (await api.delete(f"{base}/applications/{m2m['id']}/scopes/{read}")).status_code == 404
    await ok(await api.delete(f"{base}/scopes/{read}"))
    assert (await api.get(f"{base}/scopes/{read}")).status_code == 404
    deleted = await ok(await api.delete(base))
    assert deleted == {"message": "API successfully deleted", "code": "API_DELETED"}
    assert (await api.get(base)).status_code == 404
    assert (await ok(await api.get("/api/v1/apis")))["apis"] == []


async def test_bad_api_requests_get_the_error_envelope_and_write_nothing(
    api: httpx.AsyncClient,
) -> None:
    api_id = await register_api(api, "https://orders.example.com")
    base = f"/api/v1/apis/{api_id}"
    for body in (
        {"name": "X", "audience": "has space"},
        {"name": "X", "audience": "x" * 65},
        {"name": "", "audience": "https://a.example"},
        {"audience": "https://a.example"},
        {"name": "X", "audience": 7},
    ):
        response = await api.post("/api/v1/apis", json=body)
        assert response.status_code == 400, body
        assert response.json()["errors"][0]["code"]
    duplicate = await api.post(
        "/api/v1/apis", json={"name": "Y", "audience": "https://orders.example.com"}
    )
    assert duplicate.status_code == 409
    await ok(await api.post(f"{base}/scopes", json={"key": "read:orders"}))
    assert (await api.post(f"{base}/scopes", json={"key": "read:orders"})).status_code == 409
    assert (await api.post(f"{base}/scopes", json={"key": "two words"})).status_code == 400
    assert (await api.get("/api/v1/apis/unknown")).status_code == 404
    assert (await api.get("/api/v1/apis/unknown/scopes")).status_code == 404
    assert (await api.get("/api/v1/apis", params={"expand": "everything"})).status_code == 400

    web = await new_application(api, "reg")
    partly_unknown = await api.patch(
        f"{base}/applications", json={"applications": [{"id": web["id"]}, {"id": "nobody"}]}
    )
    assert partly_unknown.status_code == 404
    assert (await ok(await api.get(base)))["api"]["applications"] == []
    bad_operation = await api.patch(
        f"{base}/applications", json={"applications": [{"id": web["id"], "operation": "drop"}]}
    )
    assert bad_operation.status_code == 400
    scope = (await ok(await api.get(f"{base}/scopes")))["scopes"][0]["id"]
    not_authorized = await api.post(f"{base}/applications/{web['id']}/scopes/{scope}")
    assert not_authorized.status_code == 404


async def test_the_management_api_audience_cannot_be_registered(api: httpx.AsyncClient) -> None:
    """Registering ``<issuer>/api`` would let any authorized app's tokens reach the Management API."""
    for audience in (f"{ISSUER}/api", f"{ISSUER}/api/", ISSUER):
        response = await api.post("/api/v1/apis", json={"name": "Mine", "audience": audience})
        assert response.status_code == 400, audience
        assert response.json()["errors"][0]["code"] == "AUDIENCE_RESERVED"
    assert (await ok(await api.get("/api/v1/apis")))["apis"] == []


async def test_concurrent_authorizations_connect_an_application_once(
    any_api: httpx.AsyncClient,
) -> None:
    api_id = await register_api(any_api, "https://orders.example.com")
    web = await new_application(any_api, "reg")
    base = f"/api/v1/apis/{api_id}"
    scope = (await ok(await any_api.post(f"{base}/scopes", json={"key": "read:orders"})))["scope"]
    body = {"applications": [{"id": web["id"]}]}
    answers = await asyncio.gather(
        *(any_api.patch(f"{base}/applications", json=body) for _ in range(8))
    )
    assert [a.status_code for a in answers] == [200] * 8
    connected = [a.json()["applications_connected"] for a in answers]
    assert connected.count([web["id"]]) == 1 and connected.count([]) == 7
    grant = f"{base}/applications/{web['id']}/scopes/{scope['id']}"
    answers = await asyncio.gather(*(any_api.post(grant) for _ in range(8)))
    assert [a.status_code for a in answers] == [200] * 8
    assert len((await ok(await any_api.get(base)))["api"]["applications"]) == 1
