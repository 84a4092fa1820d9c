"""Token and Management API answers are never cached nor sniffed; discovery stays cacheable."""

from __future__ import annotations

import httpx

from claimflow.services import Services
from tests.helpers import create_m2m_app, management_client


async def test_token_and_management_json_carry_no_store_and_nosniff(
    client: httpx.AsyncClient, services: Services
) -> None:
    client_id, secret = await create_m2m_app(services)
    token = await client.post(
        "/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            "audience": "http://claimflow.test/api",
        },
    )
    headers = await management_client(client, services)
    listed = await client.get("/api/v1/organizations", headers=headers)
    missing = await client.get("/api/v1/organization?code=org_missing", headers=headers)
    unauthorized = await client.get("/api/v1/organizations")
    for response in (token, listed, missing, unauthorized):
        assert response.headers["cache-control"] == "no-store", response.request.url
        assert response.headers["x-content-type-options"] == "nosniff", response.request.url


async def test_discovery_and_jwks_keep_their_public_cache_header(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/.well-known/openid-configuration", "/.well-known/jwks.json"):
        response = await client.get(path)
        assert response.headers["cache-control"] == "public, max-age=300"
        assert response.headers["x-content-type-options"] == "nosniff"
