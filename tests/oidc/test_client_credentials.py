"""The client credentials grant (RFC 6749 §4.4) for M2M applications."""

from __future__ import annotations

import base64

import httpx
import jwt

from claimflow.services import Services
from tests.helpers import create_m2m_app


async def test_m2m_token_carries_requested_scopes(
    client: httpx.AsyncClient, services: Services
) -> None:
    client_id, secret = await create_m2m_app(services, ["read:users", "read:organizations"])
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    response = await client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "scope": "read:users"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "read:users"
    claims = await services.keys.verify(body["access_token"], audience=services.management_audience)
    assert claims["scp"] == ["read:users"] and claims["gty"] == ["client_credentials"]
    assert jwt.get_unverified_header(body["access_token"])["typ"] == "at+jwt"


async def test_wrong_secret_is_invalid_client(
    client: httpx.AsyncClient, services: Services
) -> None:
    client_id, _ = await create_m2m_app(services)
    response = await client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": "nope"},
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_scope_not_granted_is_invalid_scope(
    client: httpx.AsyncClient, services: Services
) -> None:
    client_id, secret = await create_m2m_app(services, ["read:users"])
    response = await client.post(
        "/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            "scope": "delete:users",
        },
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


async def test_unknown_grant_and_repeated_parameters(client: httpx.AsyncClient) -> None:
    response = await client.post("/oauth2/token", data={"grant_type": "password"})
    assert response.json()["error"] == "unsupported_grant_type"
    response = await client.post(
        "/oauth2/token",
        content=b"grant_type=client_credentials&grant_type=client_credentials",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    response = await client.post(
        "/oauth2/token",
        content=b"grant_type=\xff\xfe",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
