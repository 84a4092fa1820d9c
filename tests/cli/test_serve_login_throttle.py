"""The sign-in throttle of ``claimflow serve --workers 2`` on PostgreSQL, attacked over HTTP.

Two real worker processes share one port; parallel guesses land on both. Whatever the
concurrency, one (account, address) pair gets no more password checks per window than
``CLAIMFLOW_LOGIN_MAX_FAILURES`` (a 401 is a checked password, a 429 a refused attempt), and the
server believes no ``X-Forwarded-For`` unless ``CLAIMFLOW_TRUSTED_PROXIES`` names the peer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from claimflow.services import Services, build_services
from claimflow.store import oidc_login_attempts, users
from tests.conftest import make_settings
from tests.oidc.flow import CALLBACK, PASSWORD, Business, seed_business, submit_login

StartServer = Callable[..., tuple[str, object]]
LIMIT = 3


async def two_workers(
    start_server: StartServer, workdir: Path, pg_url: str, **settings: str
) -> str:
    """``claimflow serve --workers 2`` on ``pg_url``; returns once both workers have started."""
    env = {"CLAIMFLOW_DATABASE_URL": pg_url, "CLAIMFLOW_LOGIN_MAX_FAILURES": str(LIMIT)}
    env |= {f"CLAIMFLOW_{name.upper()}": value for name, value in settings.items()}
    # Two workers importing the app on a busy machine can take well over the default 30 s.
    base_url, _process = start_server("serve", "--workers", "2", env=env, timeout=180)
    log = workdir / f"server-{base_url.rsplit(':', 1)[1]}.log"
    deadline = time.monotonic() + 180
    while log.read_text().count("Application startup complete") < 2:
        assert time.monotonic() < deadline, log.read_text()
        await asyncio.sleep(0.1)
    return base_url


@pytest.fixture
async def services(pg_url: str) -> AsyncIterator[Services]:
    built = build_services(make_settings(pg_url))
    yield built
    await built.close()


async def login_page(http: httpx.AsyncClient, biz: Business) -> httpx.Response:
    page = await http.get(
        "/oauth2/auth",
        params={
            "response_type": "code",
            "client_id": biz.web_client_id,
            "redirect_uri": CALLBACK,
            "state": "s",
        },
    )
    assert page.status_code == 200, page.text
    return page


async def test_parallel_wrong_passwords_on_two_workers_are_counted_before_checking(
    start_server: StartServer, workdir: Path, pg_url: str, services: Services
) -> None:
    biz = await seed_business(services)
    base_url = await two_workers(start_server, workdir, pg_url)
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        page = await login_page(http, biz)
        async with asyncio.TaskGroup() as group:
            guesses = [
                group.create_task(submit_login(http, page, biz.email, f"guess-{i}"))
                for i in range(20)
            ]
    statuses = [guess.result().status_code for guess in guesses]
    assert statuses.count(401) == LIMIT, statuses
    assert statuses.count(429) == 20 - LIMIT, statuses


async def test_right_password_among_parallel_guesses_on_two_workers_gets_no_code(
    start_server: StartServer, workdir: Path, pg_url: str, services: Services
) -> None:
    biz = await seed_business(services)
    base_url = await two_workers(start_server, workdir, pg_url)
    pair = f"pair:127.0.0.1 {biz.email}"
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        page = await login_page(http, biz)
        async with asyncio.TaskGroup() as group:
            guesses = [
                group.create_task(submit_login(http, page, biz.email, f"guess-{i}"))
                for i in range(19)
            ]
            # Sent while the counted guesses are still being checked by the workers.
            for _ in range(6000):
                async with services.db.connect() as conn:
                    if await oidc_login_attempts.attempts_counted(conn, pair) >= LIMIT:
                        break
                await asyncio.sleep(0.01)
            right = group.create_task(submit_login(http, page, biz.email, PASSWORD))
    statuses = [guess.result().status_code for guess in guesses]
    assert right.result().status_code == 429, right.result().text
    assert statuses.count(401) == LIMIT, statuses


async def test_serve_believes_no_forwarded_for_by_default(
    start_server: StartServer, workdir: Path, pg_url: str, services: Services
) -> None:
    biz = await seed_business(services)
    async with services.db.transaction() as conn:
        for i in range(LIMIT + 1):
            await users.create_user(conn, email=f"sprayed{i}@example.com")
    base_url = await two_workers(start_server, workdir, pg_url, login_address_max_failures="3")
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        page = await login_page(http, biz)
        statuses = []
        for i in range(LIMIT + 1):
            # Password spraying: one guess per account, each claiming another client address.
            http.headers["X-Forwarded-For"] = f"198.51.100.{i}"
            answer = await submit_login(http, page, f"sprayed{i}@example.com", "Summer2026!")
            statuses.append(answer.status_code)
    assert statuses == [401] * LIMIT + [429]
