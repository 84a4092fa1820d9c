"""Revocation (RFC 7009): refresh tokens take their family with them; access tokens by jti."""

from __future__ import annotations

import httpx
import pytest

from claimflow.services import Services
from tests.oidc.flow import Business, exchange, seed_business, sign_in_for_code


@pytest.fixture
async def biz(services: Services) -> Business:
    return await seed_business(services)


async def signed_in(client: httpx.AsyncClient, biz: Business) -> dict[str, str]:
    callback = await sign_in_for_code(client, biz)
    tokens: dict[str, str] = (await exchange(client, biz, callback["code"])).json()
    return tokens


async def revoke(
    client: httpx.AsyncClient, biz: Business, token: str, **extra: str
) -> httpx.Response:
    return await client.post(
        "/oauth2/revoke",
        data={"token": token} | extra,
        auth=(biz.web_client_id, biz.web_secret),
    )


async def is_active(client: httpx.AsyncClient, biz: Business, token: str) -> bool:
    response = await client.post(
        "/oauth2/introspect", data={"token": token}, auth=(biz.web_client_id, biz.web_secret)
    )
    return bool(response.json()["active"])


async def test_revoking_a_refresh_token_revokes_its_family_and_access_tokens(
    client: httpx.AsyncClient, biz: Business
) -> None:
    tokens = await signed_in(client, biz)
    response = await revoke(client, biz, tokens["refresh_token"], token_type_hint="refresh_token")
    assert response.status_code == 200
    assert not await is_active(client, biz, tokens["refresh_token"])
    assert not await is_active(client, biz, tokens["access_token"])
    refreshed = await client.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=(biz.web_client_id, biz.web_secret),
    )
    assert refreshed.json()["error"] == "invalid_grant"


async def test_revoked_access_token_is_refused_by_userinfo_and_introspection(
    client: httpx.AsyncClient, biz: Business
) -> None:
    tokens = await signed_in(client, biz)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await client.get("/oauth2/userinfo", headers=bearer)).status_code == 200
    assert (await revoke(client, biz, tokens["access_token"])).status_code == 200
    assert not await is_active(client, biz, tokens["access_token"])
    refused = await client.get("/oauth2/userinfo", headers=bearer)
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    assert await is_active(client, biz, tokens["refresh_token"])


async def test_unknown_token_and_other_clients_tokens_answer_200_and_change_nothing(
    client: httpx.AsyncClient, biz: Business
) -> None:
    tokens = await signed_in(client, biz)
    assert (await revoke(client, biz, "unknown")).status_code == 200
    foreign = await client.post(
        "/oauth2/revoke", data={"token": tokens["refresh_token"], "client_id": biz.spa_client_id}
    )
    assert foreign.status_code == 200
    assert await is_active(client, biz, tokens["refresh_token"])
    assert await is_active(client, biz, tokens["access_token"])


async def test_revocation_needs_client_authentication(
    client: httpx.AsyncClient, biz: Business
) -> None:
    tokens = await signed_in(client, biz)
    response = await client.post("/oauth2/revoke", data={"token": tokens["refresh_token"]})
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    missing = await client.post("/oauth2/revoke", data={}, auth=(biz.web_client_id, biz.web_secret))
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
