"""The app's lifespan: a running server prunes expired rows periodically and stops on shutdown."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import func, select

from claimflow import app as app_module
from claimflow.app import create_app
from claimflow.services import build_services
from claimflow.store import tables as t
from claimflow.store import users
from claimflow.store.oidc_sessions import create_session
from tests.conftest import ISSUER, make_settings


async def test_running_app_prunes_expired_sessions_until_shutdown(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app_module, "HOUSEKEEPING_INTERVAL_SECONDS", 0.02)
    services = build_services(make_settings(db_url))
    async with services.db.transaction() as conn:
        user = await users.create_user(conn, email="someone@acme.test")
        await create_session(conn, "expired-session", user.id, -60)
    sessions = select(func.count()).select_from(t.sessions)

    app = create_app(services=services)
    async with app.router.lifespan_context(app):
        for _ in range(250):
            async with services.db.connect() as conn:
                if (await conn.execute(sessions)).scalar_one() == 0:
                    break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("the expired session was never pruned")
        tasks = {task.get_coro().__name__ for task in asyncio.all_tasks()}  # type: ignore[union-attr]
        assert "_housekeeping" in tasks

    tasks = {task.get_coro().__name__ for task in asyncio.all_tasks()}  # type: ignore[union-attr]
    assert "_housekeeping" not in tasks


async def test_docs_pages_that_load_cdn_scripts_are_off_by_default(
    client: httpx.AsyncClient,
) -> None:
    """Swagger UI and ReDoc pull scripts from a CDN onto the provider's own origin."""
    assert (await client.get("/docs")).status_code == 404
    assert (await client.get("/redoc")).status_code == 404
    assert (await client.get("/openapi.json")).status_code == 200


async def test_docs_pages_are_served_when_the_setting_asks(db_url: str) -> None:
    services = build_services(make_settings(db_url, api_docs_enabled=True))
    transport = httpx.ASGITransport(app=create_app(services=services))
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        assert (await http.get("/docs")).status_code == 200
        assert (await http.get("/redoc")).status_code == 200
    await services.close()
