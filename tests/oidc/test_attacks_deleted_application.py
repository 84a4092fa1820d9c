"""Attack: keep using a user's access token after its application was deleted.

``DELETE /api/v1/applications/{id}`` (Kinde's) ends the application: its refresh tokens and
codes are deleted and it gets no new token. The access tokens it already handed out must not
outlive it either: introspection (RFC 7662 §2.2, ``active`` only while the token is usable),
userinfo and the Account API refuse them at the next request, as they refuse a suspended
user's. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from claimflow.app import create_app
from claimflow.services import Services, build_services
from claimflow.store import apis
from tests.conftest import ISSUER, make_settings
from tests.helpers import create_m2m_app, management_client
from tests.oidc.flow import exchange, refresh, seed_business, sign_in_for_code


@pytest.fixture
async def any_services(any_db_url: str) -> AsyncIterator[Services]:
    built = build_services(make_settings(any_db_url))
    yield built
    await built.close()


async def test_deleted_applications_user_token_stays_active(any_services: Services) -> None:
    services = any_services
    biz = await seed_business(services)
    resource_id, resource_secret = await create_m2m_app(services, scopes=())
    async with services.db.transaction() as conn:
        orders = await apis.create_api(conn, name="Orders", audience="https://orders.test")
        await apis.authorize(conn, orders.id, biz.web_client_id)
        await apis.authorize(conn, orders.id, resource_id)
    transport = httpx.ASGITransport(app=create_app(services=services))
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
        admin = await management_client(client, services)
        callback = await sign_in_for_code(
            client, biz, org_code=biz.org_code, audience="https://orders.test"
        )
        tokens = (await exchange(client, biz, callback["code"])).json()
        access = tokens["access_token"]
        bearer = {"Authorization": f"Bearer {access}"}

        async def introspected() -> object:
            response = await client.post(
                "/oauth2/introspect", data={"token": access}, auth=(resource_id, resource_secret)
            )
            return response.json()["active"]

        assert await introspected() is True
        assert (await client.get("/oauth2/userinfo", headers=bearer)).status_code == 200
        flags = await client.get("/account_api/v1/feature_flags", headers=bearer)
        assert flags.status_code == 200, flags.text

        deleted = await client.delete(f"/api/v1/applications/{biz.web_client_id}", headers=admin)
        assert deleted.status_code == 200, deleted.text

        assert await introspected() is False, "a deleted application's token is still active"
        assert (await client.get("/oauth2/userinfo", headers=bearer)).status_code == 401
        for path in ("/account_api/v1/feature_flags", "/account_api/v1/permission/read:reports"):
            response = await client.get(path, headers=bearer)
            assert response.status_code == 401, (path, response.text)
        refreshed = await refresh(client, biz, tokens["refresh_token"])
        assert refreshed.status_code in (400, 401), refreshed.text
        assert refreshed.json()["error"] in ("invalid_client", "invalid_grant")
