"""``/healthz`` and ``/readyz``: alive vs able to serve, with what is not ready in the body."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from claimflow.app import create_app
from claimflow.services import build_services
from tests.cli.conftest import free_port
from tests.conftest import ISSUER, make_settings


async def test_healthz_answers_without_touching_dependencies(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_ready_with_a_database_and_an_active_key(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await app.state.services.keys.ensure_active_key()
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "signing_key": "ok"},
    }
    assert response.headers["cache-control"] == "no-store"


async def test_readyz_without_a_signing_key_is_not_ready(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["signing_key"] == "no active signing key"


async def test_readyz_names_an_unreachable_database_and_redis(db_url: str) -> None:
    port = free_port()
    services = build_services(
        make_settings(
            f"postgresql+asyncpg://postgres@127.0.0.1:{port}/nothing",
            redis_url=f"redis://127.0.0.1:{free_port()}/0",
        )
    )
    transport = httpx.ASGITransport(app=create_app(services=services))
    try:
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            response = await http.get("/readyz")
            alive = await http.get("/healthz")
    finally:
        await services.close()
    assert alive.status_code == 200
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["database"].startswith("unavailable (")
    assert body["checks"]["redis"].startswith("unavailable (")
    assert body["checks"]["signing_key"] == "unknown (database unavailable)"


async def test_readyz_checks_a_configured_redis(db_url: str) -> None:
    services = build_services(make_settings(db_url, redis_url="redis://127.0.0.1:6379/13"))
    await services.keys.ensure_active_key()
    transport = httpx.ASGITransport(app=create_app(services=services))
    try:
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            response = await http.get("/readyz")
    finally:
        await services.close()
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"database": "ok", "signing_key": "ok", "redis": "ok"}
