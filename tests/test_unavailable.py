"""The database down: the app starts, and every endpoint answers 503 in its own format.

In-process against a PostgreSQL URL where nothing listens (a closed loopback port); the
multi-process outage (a private cluster stopped and started under ``serve --workers 2``) is
``tests/test_store_outage.py``.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from claimflow.app import create_app
from claimflow.services import build_services
from tests.conftest import ISSUER, make_settings


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
async def api_without_database() -> AsyncIterator[httpx.AsyncClient]:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{_closed_port()}/claimflow"
    services = build_services(make_settings(url))
    app = create_app(services=services)
    async with app.router.lifespan_context(app):  # must not raise: the worker has to start
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            yield http


def _unverifiable_token() -> str:
    """A well-formed JWT whose key id must be looked up in the store to verify it."""
    header = base64.urlsafe_b64encode(json.dumps({"alg": "RS256", "kid": "k1"}).encode())
    payload = base64.urlsafe_b64encode(json.dumps({"sub": "u"}).encode())
    return b".".join((header.rstrip(b"="), payload.rstrip(b"="), b"c2ln")).decode()


BEARER = {"Authorization": f"Bearer {_unverifiable_token()}"}


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"].isdigit()
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [
        ("POST", "/oauth2/token", {"grant_type": "client_credentials", "client_id": "c"}),
        ("POST", "/oauth2/token", {"grant_type": "refresh_token", "refresh_token": "r"}),
        ("POST", "/oauth2/introspect", {"token": "t"}),
        ("GET", "/.well-known/jwks.json", None),
    ],
)
async def test_oauth_endpoints_answer_temporarily_unavailable(
    api_without_database: httpx.AsyncClient, method: str, path: str, data: dict[str, str] | None
) -> None:
    response = await api_without_database.request(method, path, data=data, auth=("c", "s"))
    assert_unavailable(response)
    assert response.json()["error"] == "temporarily_unavailable"


async def test_management_api_answers_kindes_envelope(
    api_without_database: httpx.AsyncClient,
) -> None:
    response = await api_without_database.get("/api/v1/organizations", headers=BEARER)
    assert_unavailable(response)
    assert response.json()["errors"][0]["code"] == "SERVICE_UNAVAILABLE"


async def test_an_outage_logs_one_line_per_kind_not_a_traceback_per_request(
    api_without_database: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        for _ in range(30):
            assert_unavailable(
                await api_without_database.post(
                    "/oauth2/token", data={"grant_type": "client_credentials"}, auth=("c", "s")
                )
            )
    outage_lines = [r for r in caplog.records if r.name == "claimflow.unavailable"]
    assert len(outage_lines) <= 1
    assert not any(r.exc_info for r in caplog.records)
