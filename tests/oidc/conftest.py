"""OIDC fixtures: the app on SQLite and on PostgreSQL for the tests that race or count."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from claimflow.app import create_app
from claimflow.services import Services, build_services
from tests.conftest import ISSUER, make_settings


@dataclass
class Deployment:
    client: httpx.AsyncClient
    services: Services
    app: FastAPI


@pytest.fixture
async def deployment(any_db_url: str) -> AsyncIterator[Deployment]:
    """The provider on SQLite and on PostgreSQL (``any_db_url``), through ASGITransport."""
    services = build_services(make_settings(any_db_url, login_max_failures=3))
    app = create_app(services=services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
        yield Deployment(client, services, app)
    await services.close()
