"""Audiences (RFC 8707 §2): a token names an API only when it is registered and the application
is authorized for it; anything else is ``invalid_target``. With no audience asked, user tokens
are for the client itself and M2M tokens for the Management API."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import jwt
import pytest

from claimflow.app import create_app
from claimflow.services import Services, build_services
from claimflow.store import apis
from tests.conftest import ISSUER, make_settings
from tests.helpers import create_m2m_app
from tests.oidc.conftest import Deployment
from tests.oidc.flow import (
    CALLBACK,
    Business,
    exchange,
    pkce_pair,
    refresh,
    seed_business,
    sign_in_for_code,
)

ORDERS = "https://orders.example.test"


@pytest.fixture
async def biz(services: Services) -> Business:
    return await seed_business(services)


def audience_of(token: str) -> list[str]:
    aud = jwt.decode(token, options={"verify_signature": False})["aud"]
    return [aud] if isinstance(aud, str) else list(aud)


async def register(services: Services, audience: str, *client_ids: str) -> str:
    async with services.db.transaction() as conn:
        api = await apis.create_api(conn, name="Orders", audience=audience)
        for client_id in client_ids:
            await apis.authorize(conn, api.id, client_id)
    return api.id


async def test_spa_cannot_get_a_token_for_an_audience_nobody_registered(
    client: httpx.AsyncClient, biz: Business
) -> None:
    """The attack: the public SPA names any API as audience and gets a token that API accepts."""
    verifier, challenge = pkce_pair()
    callback = await sign_in_for_code(
        client, biz, client_id=biz.spa_client_id, challenge=challenge, audience=ORDERS
    )
    if "code" in callback:
        response = await client.post(
            "/oauth2/token",
            data={
                "grant_type": "authorization_code",
                "code": callback["code"],
                "redirect_uri": CALLBACK,
                "client_id": biz.spa_client_id,
                "code_verifier": verifier,
            },
        )
        assert ORDERS not in audience_of(response.json()["access_token"]), (
            "the SPA got an access token for an API nobody registered"
        )
    assert callback["error"] == "invalid_target"


async def test_a_registered_api_needs_the_application_authorized(
    client: httpx.AsyncClient, services: Services, biz: Business
) -> None:
    await register(services, ORDERS, biz.web_client_id)
    refused = await sign_in_for_code(client, biz, client_id=biz.spa_client_id, audience=ORDERS)
    assert refused["error"] == "invalid_target"
    callback = await sign_in_for_code(client, biz, audience=ORDERS)
    tokens = (await exchange(client, biz, callback["code"])).json()
    assert audience_of(tokens["access_token"]) == [ORDERS]
    default = await sign_in_for_code(client, biz)
    tokens = (await exchange(client, biz, default["code"])).json()
    assert audience_of(tokens["access_token"]) == [biz.web_client_id]


async def test_the_management_api_is_never_a_user_token_audience(
    client: httpx.AsyncClient, services: Services, biz: Business
) -> None:
    refused = await sign_in_for_code(client, biz, audience=services.management_audience)
    assert refused["error"] == "invalid_target"


@pytest.fixture
async def quiet_deployment(any_db_url: str) -> AsyncIterator[Deployment]:
    """The provider on SQLite and PostgreSQL without the billing workflows (not under test)."""
    services = build_services(make_settings(any_db_url, workflows_enabled=[]))
    app = create_app(services=services)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER) as http:
        yield Deployment(http, services, app)
    await services.close()


async def test_deauthorized_application_cannot_exchange_its_code_or_refresh(
    quiet_deployment: Deployment,
) -> None:
    client, services = quiet_deployment.client, quiet_deployment.services
    biz = await seed_business(services)
    api_id = await register(services, ORDERS, biz.web_client_id)
    first = await sign_in_for_code(client, biz, audience=ORDERS)
    tokens = (await exchange(client, biz, first["code"])).json()
    second = await sign_in_for_code(client, biz, audience=ORDERS)

    async with services.db.transaction() as conn:
        await apis.deauthorize(conn, api_id, biz.web_client_id)
    response = await exchange(client, biz, second["code"])
    assert response.status_code == 400 and response.json()["error"] == "invalid_target"
    refreshed = await refresh(client, biz, tokens["refresh_token"])
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_target"


async def test_m2m_token_for_a_registered_api_carries_the_api_scopes_granted(
    client: httpx.AsyncClient, services: Services
) -> None:
    m2m_id, secret = await create_m2m_app(services, ["read:users"])
    api_id = await register(services, ORDERS, m2m_id)
    async with services.db.transaction() as conn:
        read = await apis.create_scope(conn, api_id, key="read:orders", description=None)
        await apis.create_scope(conn, api_id, key="write:orders", description=None)
        await apis.grant_scope(conn, api_id, m2m_id, read.id)

    async def token(**params: str) -> httpx.Response:
        data = {"grant_type": "client_credentials", "client_id": m2m_id, "client_secret": secret}
        return await client.post("/oauth2/token", data=data | params)

    granted = await token(audience=ORDERS)
    assert granted.status_code == 200, granted.text
    claims = jwt.decode(granted.json()["access_token"], options={"verify_signature": False})
    assert claims["aud"] == [ORDERS] and claims["scp"] == ["read:orders"]
    assert (await token(audience=ORDERS, scope="write:orders")).json()["error"] == "invalid_scope"
    for audience in ("https://nobody.example.test", f"{ORDERS} {services.management_audience}"):
        refused = await token(audience=audience)
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_target"
    management = await token()
    claims = jwt.decode(management.json()["access_token"], options={"verify_signature": False})
    assert claims["aud"] == [services.management_audience] and claims["scp"] == ["read:users"]


async def test_refresh_of_a_default_audience_token_keeps_the_client_as_audience(
    client: httpx.AsyncClient, biz: Business
) -> None:
    callback = await sign_in_for_code(client, biz)
    tokens = (await exchange(client, biz, callback["code"])).json()
    refreshed = await refresh(client, biz, tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    assert audience_of(refreshed.json()["access_token"]) == [biz.web_client_id]
