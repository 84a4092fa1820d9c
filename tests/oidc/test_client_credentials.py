"""The client credentials grant (RFC 6749 §4.4) for M2M applications."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import jwt

from claimflow.app import create_app
from claimflow.services import Services
from claimflow.workflows.management_client import InProcessTransport
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


async def test_the_workflows_internal_token_has_the_grants_shape(
    client: httpx.AsyncClient, services: Services
) -> None:
    """The in-process Management API token of the workflows and a client-credentials token are
    built by one function: same claims, same ``gty``/``v``, and the API accepts both."""
    client_id, secret = await create_m2m_app(services, ["read:organizations"])
    granted = await client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    grant_claims = jwt.decode(granted.json()["access_token"], options={"verify_signature": False})

    minted: list[dict[str, Any]] = []

    async def sign(claims: dict[str, Any]) -> str:
        minted.append(claims)
        return await services.keys.sign(claims, typ="at+jwt")

    app = create_app(services=services)
    transport = InProcessTransport(sign, services.issuer, app)
    try:
        answer = await transport.request(
            "GET", "organizations", {}, None, scopes=frozenset({"read:organizations"})
        )
    finally:
        await transport.aclose()
    assert answer.status_code == 200, answer.text
    (internal,) = minted
    assert set(internal) == set(grant_claims)
    for same in ("iss", "aud", "gty", "v"):
        assert internal[same] == grant_claims[same]
    assert internal["sub"] == internal["azp"] == internal["client_id"]
    assert internal["scope"] == " ".join(internal["scp"])
