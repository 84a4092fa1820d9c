"""OIDC fixtures: the app on SQLite and on PostgreSQL for the tests that race or count, and a
real uvicorn server on loopback with a seeded business for the browser and example tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from claimflow.app import create_app
from claimflow.services import Services, build_services
from claimflow.settings import Settings
from tests.conftest import ISSUER, make_settings
from tests.oidc.flow import Business, seed_business


@dataclass
class Deployment:
    client: httpx.AsyncClient
    services: Services
    app: FastAPI


@pytest.fixture
async def deployment(any_db_url: str) -> AsyncIterator[Deployment]:
    """The provider on SQLite and on PostgreSQL (``any_db_url``), through ASGITransport."""
    services = build_services(
        make_settings(
            any_db_url,
            login_max_failures=3,
            login_account_max_failures=6,
            login_address_max_failures=6,
        )
    )
    app = create_app(services=services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
        yield Deployment(client, services, app)
    await services.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LiveServer:
    issuer: str
    settings: Settings


@pytest.fixture
def live_server(db_url: str) -> Iterator[LiveServer]:
    """claimflow served by uvicorn in a thread; its services live in the server's event loop."""
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    settings = make_settings(db_url, issuer=issuer)
    config = uvicorn.Config(
        create_app(settings=settings), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield LiveServer(issuer, settings)
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
async def business(live_server: LiveServer) -> AsyncIterator[Business]:
    services = build_services(live_server.settings)
    try:
        yield await seed_business(services)
    finally:
        await services.close()
