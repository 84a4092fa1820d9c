"""The app's lifespan: a running server prunes expired rows periodically and stops on shutdown."""

from __future__ import annotations

import asyncio
import subprocess
import sys

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


def test_a_started_server_freezes_its_start_up_objects_once(db_url: str) -> None:
    """Full garbage collections must not walk the start-up objects (modules, routes, schemas)
    on every pass: a fresh process that starts the app has them in the permanent generation,
    and a second app in the same process freezes nothing more."""
    script = f"""
import asyncio, gc
from claimflow.app import create_app
from claimflow.services import build_services
from tests.conftest import make_settings

async def start_twice():
    counts = []
    for _ in range(2):
        app = create_app(services=build_services(make_settings({db_url!r})))
        async with app.router.lifespan_context(app):
            counts.append(gc.get_freeze_count())
    return counts

before = gc.get_freeze_count()
first, second = asyncio.run(start_twice())
print(before, first, second)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    before, first, second = map(int, done.stdout.split())
    assert before == 0
    assert first > 10_000  # the imported modules alone are tens of thousands of objects
    assert second <= first  # frozen objects may still be freed; nothing new is frozen
