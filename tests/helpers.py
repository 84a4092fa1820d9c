"""Helpers tests share: create applications and fetch tokens through the public endpoints."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from claimflow.domain import ApplicationType
from claimflow.domain.management_scopes import ALL_MANAGEMENT_SCOPES
from claimflow.services import Services
from claimflow.store import applications


async def create_m2m_app(
    services: Services, scopes: Sequence[str] = ALL_MANAGEMENT_SCOPES
) -> tuple[str, str]:
    async with services.db.transaction() as conn:
        app, secret = await applications.create_application(
            conn, name="tests", type=ApplicationType.M2M, scopes=scopes
        )
    assert secret is not None
    return app.client_id, secret


async def m2m_token(
    client: httpx.AsyncClient, client_id: str, secret: str, scope: str | None = None
) -> str:
    data = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": secret,
        "audience": str(client.base_url).rstrip("/") + "/api",
    }
    if scope is not None:
        data["scope"] = scope
    response = await client.post("/oauth2/token", data=data)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def management_client(
    client: httpx.AsyncClient, services: Services, scopes: Sequence[str] = ALL_MANAGEMENT_SCOPES
) -> dict[str, str]:
    """Authorization headers of an M2M token with ``scopes``."""
    client_id, secret = await create_m2m_app(services, scopes)
    return {"Authorization": f"Bearer {await m2m_token(client, client_id, secret)}"}
