"""Attacks on the applications routes: ``PATCH`` with ``scopes``, ``DELETE``, org applications.

An organization's M2M application is handed to that organization; our Management API is not
confined to a token's ``org_code``, so creating one refuses Management API scopes
(docs/decisions.md, "An organization's M2M application takes no Management API scopes"). The
attacks below try to reach the same thing by the other door, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from claimflow.app import create_app
from claimflow.domain.management_scopes import WORKFLOWS_CLIENT_ID
from claimflow.services import Services
from tests.conftest import ISSUER
from tests.helpers import m2m_token, management_client


@pytest.fixture
async def admin(any_services: Services) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(services=any_services))
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        http.headers.update(await management_client(http, any_services))
        yield http


async def _org_app(admin: httpx.AsyncClient, name: str) -> dict[str, str]:
    made = await admin.post("/api/v1/organization", json={"name": name})
    assert made.status_code == 200, made.text
    org_code = made.json()["organization"]["code"]
    created = await admin.post(
        "/api/v1/applications", json={"name": "key", "type": "m2m", "org_code": org_code}
    )
    assert created.status_code == 201, created.text
    app: dict[str, str] = created.json()["application"]
    return app


async def test_patch_grants_management_scopes_to_an_organization_application(
    admin: httpx.AsyncClient,
) -> None:
    app = await _org_app(admin, "org_victim_a")
    attack = await admin.patch(
        f"/api/v1/applications/{app['client_id']}", json={"scopes": ["read:organizations"]}
    )
    assert attack.status_code == 400, "an organization's application took Management API scopes"
    assert attack.json()["errors"][0]["code"] == "SCOPES_INVALID"

    async with httpx.AsyncClient(transport=admin._transport, base_url=ISSUER) as anonymous:
        token = await m2m_token(anonymous, app["client_id"], app["client_secret"])
        listed = await anonymous.get(
            "/api/v1/organizations", headers={"Authorization": f"Bearer {token}"}
        )
    assert listed.status_code == 403, "the organization's key lists every organization"


async def test_patch_with_no_scopes_on_an_organization_application_is_allowed(
    admin: httpx.AsyncClient,
) -> None:
    app = await _org_app(admin, "org_victim_b")
    renamed = await admin.patch(
        f"/api/v1/applications/{app['client_id']}", json={"name": "renamed", "scopes": []}
    )
    assert renamed.status_code == 200, renamed.text
    got = await admin.get(f"/api/v1/applications/{app['client_id']}")
    assert got.json()["application"]["org_code"] == app["org_code"]


async def test_organization_key_created_while_the_organization_is_deleted_survives_it(
    admin: httpx.AsyncClient,
) -> None:
    """Deleting an organization deletes its API keys; a key created at the same moment must
    not outlive it (on PostgreSQL the two transactions interleave unless they take turns on
    the organization's row). Forty rounds: before the fix some keys survived on PostgreSQL."""
    survivors = []
    for i in range(40):
        made = await admin.post("/api/v1/organization", json={"name": f"Doomed {i}"})
        org_code = made.json()["organization"]["code"]
        created, removed = await asyncio.gather(
            admin.post(
                "/api/v1/applications", json={"name": "key", "type": "m2m", "org_code": org_code}
            ),
            admin.delete(f"/api/v1/organization/{org_code}"),
        )
        assert removed.status_code == 200, removed.text
        assert created.status_code in (201, 404), created.text
        if created.status_code == 201:
            client_id = created.json()["application"]["client_id"]
            if (await admin.get(f"/api/v1/applications/{client_id}")).status_code != 404:
                survivors.append(org_code)
    assert survivors == [], f"API keys of deleted organizations: {survivors}"


async def test_workflows_client_is_altered_through_the_api(admin: httpx.AsyncClient) -> None:
    """The workflows' in-process client names no stored application: no route may change it,
    create URLs for it, or find it under another spelling."""
    reserved = WORKFLOWS_CLIENT_ID
    patched = await admin.patch(f"/api/v1/applications/{reserved}", json={"scopes": []})
    deleted = await admin.delete(f"/api/v1/applications/{reserved}")
    assert (patched.status_code, deleted.status_code) == (403, 403)
    assert patched.json()["errors"][0]["code"] == "APPLICATION_RESERVED"
    url = {"urls": ["https://evil.test/cb"]}
    for path in ("auth_redirect_urls", "auth_logout_urls"):
        added = await admin.post(f"/api/v1/applications/{reserved}/{path}", json=url)
        assert added.status_code == 404, added.text
    for variant in (reserved.upper(), reserved.title()):
        assert (await admin.delete(f"/api/v1/applications/{variant}")).status_code == 404
    made = await admin.post(
        "/api/v1/applications", json={"name": reserved, "type": "m2m", "scopes": []}
    )
    assert made.json()["application"]["client_id"] != reserved
