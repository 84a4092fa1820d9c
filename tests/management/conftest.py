"""Fixtures of the Management API tests: authorised clients on SQLite, and on both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from claimflow.app import create_app
from claimflow.services import Services, build_services
from tests.conftest import ISSUER, make_settings
from tests.helpers import management_client


@pytest.fixture
async def api(
    client: httpx.AsyncClient, app: FastAPI, services: Services
) -> AsyncIterator[httpx.AsyncClient]:
    """A second client of the test app, carrying an M2M token with every management scope."""
    headers = await management_client(client, services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER, headers=headers) as http:
        yield http


@pytest.fixture
async def any_services(any_db_url: str) -> AsyncIterator[Services]:
    built = build_services(make_settings(any_db_url))
    yield built
    await built.close()


@pytest.fixture
async def any_api(any_services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """An authorised client of an app on SQLite, then on PostgreSQL."""
    transport = httpx.ASGITransport(app=create_app(services=any_services))
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        http.headers.update(await management_client(http, any_services))
        yield http
