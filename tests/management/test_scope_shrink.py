"""Scopes shrink: narrowing or deleting an application binds the tokens it already holds.

An M2M access token carries the scopes its application held when it was issued. The Management
API authorizes each request against those *and* the application's current grants, so the attacks
below (keep using a token after the application was narrowed or deleted, or use the narrowed
token to widen the application again) are refused at the next request, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from claimflow.app import create_app
from claimflow.domain.management_scopes import WORKFLOWS_CLIENT_ID
from claimflow.services import Services
from tests.conftest import ISSUER
from tests.helpers import m2m_token, management_client

READ_AND_WRITE = ["read:organizations", "create:organizations"]


@dataclass(frozen=True)
class Clients:
    """Two clients of one app: ``admin`` carries an every-scope token, ``anonymous`` none."""

    admin: httpx.AsyncClient
    anonymous: httpx.AsyncClient


@pytest.fixture
async def clients(any_services: Services) -> AsyncIterator[Clients]:
    transport = httpx.ASGITransport(app=create_app(services=any_services))
    async with (
        httpx.AsyncClient(transport=transport, base_url=ISSUER) as admin,
        httpx.AsyncClient(transport=transport, base_url=ISSUER) as anonymous,
    ):
        admin.headers.update(await management_client(anonymous, any_services))
        yield Clients(admin, anonymous)


async def _app_with(clients: Clients, scopes: list[str]) -> tuple[str, dict[str, str]]:
    """An M2M application created through the API with ``scopes``, and a token of it."""
    created = await clients.admin.post(
        "/api/v1/applications", json={"name": "narrowed", "type": "m2m", "scopes": scopes}
    )
    assert created.status_code == 201, created.text
    app = created.json()["application"]
    token = await m2m_token(clients.anonymous, app["client_id"], app["client_secret"])
    return app["client_id"], {"Authorization": f"Bearer {token}"}


def _create_org(name: str) -> dict[str, str]:
    return {"name": name}


async def test_narrowed_application_keeps_writing_with_its_old_token(
    clients: Clients,
) -> None:
    client_id, old = await _app_with(clients, READ_AND_WRITE)
    wrote = await clients.admin.post(
        "/api/v1/organization", json=_create_org("Before"), headers=old
    )
    assert wrote.status_code == 200, wrote.text

    narrowed = await clients.admin.patch(
        f"/api/v1/applications/{client_id}", json={"scopes": ["read:organizations"]}
    )
    assert narrowed.status_code == 200, narrowed.text

    attack = await clients.admin.post(
        "/api/v1/organization", json=_create_org("After"), headers=old
    )
    assert attack.status_code == 403, "the old token still writes after the scope was removed"
    assert attack.json()["errors"][0]["code"] == "SCOPE_MISSING"
    assert (await clients.admin.get("/api/v1/organizations", headers=old)).status_code == 200
    names = {
        org["name"]
        for org in (await clients.admin.get("/api/v1/organizations")).json()["organizations"]
    }
    assert "After" not in names


async def test_deleted_application_token_is_refused(clients: Clients) -> None:
    client_id, old = await _app_with(clients, READ_AND_WRITE)
    assert (await clients.admin.get("/api/v1/organizations", headers=old)).status_code == 200

    deleted = await clients.admin.delete(f"/api/v1/applications/{client_id}")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"code": "OK", "message": "Application successfully deleted"}

    attack = await clients.admin.get("/api/v1/organizations", headers=old)
    assert attack.status_code == 401, "a deleted application's token still reads"
    assert attack.json()["errors"][0]["code"] == "TOKEN_INVALID"
    assert attack.headers["www-authenticate"] == "Bearer"
    again = await clients.admin.delete(f"/api/v1/applications/{client_id}")
    assert again.status_code == 404


async def test_deleted_application_cannot_get_a_new_token(clients: Clients) -> None:
    created = await clients.admin.post(
        "/api/v1/applications", json={"name": "gone", "type": "m2m", "scopes": READ_AND_WRITE}
    )
    app = created.json()["application"]
    assert (
        await clients.admin.delete(f"/api/v1/applications/{app['client_id']}")
    ).status_code == 200
    response = await clients.anonymous.post(
        "/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
            "audience": str(clients.admin.base_url).rstrip("/") + "/api",
        },
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_narrowed_token_cannot_widen_its_own_application_again(
    clients: Clients,
) -> None:
    scopes = ["update:applications", "create:organizations"]
    client_id, old = await _app_with(clients, scopes)
    narrowed = await clients.admin.patch(
        f"/api/v1/applications/{client_id}", json={"scopes": ["update:applications"]}
    )
    assert narrowed.status_code == 200, narrowed.text

    attack = await clients.admin.patch(
        f"/api/v1/applications/{client_id}", json={"scopes": scopes}, headers=old
    )
    assert attack.status_code == 403, attack.text
    assert attack.json()["errors"][0]["code"] == "SCOPES_NOT_HELD"
    wrote = await clients.admin.post(
        "/api/v1/organization", json=_create_org("Widened"), headers=old
    )
    assert wrote.status_code == 403


async def test_patch_scopes_grants_only_what_the_caller_holds(clients: Clients) -> None:
    target, _ = await _app_with(clients, ["read:organizations"])
    _, caller = await _app_with(clients, ["update:applications", "read:organizations"])

    attack = await clients.admin.patch(
        f"/api/v1/applications/{target}", json={"scopes": ["read:users"]}, headers=caller
    )
    assert attack.status_code == 403
    assert attack.json()["errors"][0]["code"] == "SCOPES_NOT_HELD"

    allowed = await clients.admin.patch(
        f"/api/v1/applications/{target}", json={"scopes": ["read:organizations"]}, headers=caller
    )
    assert allowed.status_code == 200, allowed.text


async def test_patch_scopes_refuses_unknown_scopes_and_browser_applications(
    clients: Clients,
) -> None:
    target, _ = await _app_with(clients, ["read:organizations"])
    unknown = await clients.admin.patch(
        f"/api/v1/applications/{target}", json={"scopes": ["read:everything"]}
    )
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["code"] == "SCOPES_INVALID"

    spa = await clients.admin.post("/api/v1/applications", json={"name": "web", "type": "spa"})
    spa_id = spa.json()["application"]["client_id"]
    refused = await clients.admin.patch(
        f"/api/v1/applications/{spa_id}", json={"scopes": ["read:organizations"]}
    )
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["code"] == "SCOPES_INVALID"
    missing = await clients.admin.patch("/api/v1/applications/nope", json={"scopes": []})
    assert missing.status_code == 404


async def test_workflows_client_cannot_be_changed_or_deleted(clients: Clients) -> None:
    url = f"/api/v1/applications/{WORKFLOWS_CLIENT_ID}"
    for response in (
        await clients.admin.patch(url, json={"scopes": []}),
        await clients.admin.delete(url),
    ):
        assert response.status_code == 403, response.text
        assert response.json()["errors"][0]["code"] == "APPLICATION_RESERVED"
