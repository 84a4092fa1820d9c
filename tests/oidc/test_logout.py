"""``/logout``: ends the session, returns only to registered logout URLs."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from claimflow.services import Services
from claimflow.store import tables as t
from tests.oidc.flow import CALLBACK, LOGOUT_URL, Business, seed_business, sign_in_for_code


@pytest.fixture
async def biz(services: Services) -> Business:
    return await seed_business(services)


async def sessions(services: Services) -> int:
    async with services.db.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(t.sessions))).scalar_one())


async def test_logout_ends_the_session_and_redirects_to_a_registered_url(
    client: httpx.AsyncClient, services: Services, biz: Business
) -> None:
    await sign_in_for_code(client, biz)
    assert await sessions(services) == 1
    response = await client.get("/logout", params={"redirect": LOGOUT_URL})
    assert response.status_code == 302
    assert response.headers["location"] == LOGOUT_URL
    assert 'claimflow_session=""' in response.headers["set-cookie"]
    assert await sessions(services) == 0
    page = await client.get(
        "/oauth2/auth",
        params={
            "response_type": "code",
            "client_id": biz.web_client_id,
            "redirect_uri": CALLBACK,
        },
    )
    assert page.status_code == 200 and "/oauth2/auth/login" in page.text


@pytest.mark.parametrize(
    "redirect", ["https://evil.example/", CALLBACK, LOGOUT_URL + "/x", "//evil.example"]
)
async def test_unregistered_logout_redirect_is_refused(
    client: httpx.AsyncClient, services: Services, biz: Business, redirect: str
) -> None:
    await sign_in_for_code(client, biz)
    response = await client.get("/logout", params={"redirect": redirect})
    assert response.status_code == 400
    assert "location" not in response.headers
    assert await sessions(services) == 1


async def test_logout_checks_the_named_clients_urls(
    client: httpx.AsyncClient, biz: Business
) -> None:
    ok = await client.get(
        "/logout", params={"redirect": LOGOUT_URL, "client_id": biz.web_client_id}
    )
    assert ok.status_code == 302
    other = await client.get(
        "/logout", params={"redirect": LOGOUT_URL, "client_id": biz.spa_client_id}
    )
    assert other.status_code == 400


async def test_logout_without_redirect_shows_a_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/logout")
    assert response.status_code == 200
    assert "signed out" in response.text
