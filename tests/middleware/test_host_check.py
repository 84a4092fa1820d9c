"""Only the issuer's host (and the configured extra hosts) is served; any other ``Host`` is 400.

The attack: ``GET /docs/`` (or any path the router redirects) with ``Host: evil.test`` answered
a 307 to ``http://evil.test/...`` — a host-header reflection a cache or a link could carry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from claimflow.app import create_app
from claimflow.middleware.host_check import allowed_hosts, host_of
from claimflow.services import build_services
from tests.conftest import ISSUER, make_settings


@pytest.fixture
async def raw_client(db_url: str) -> AsyncIterator[httpx.AsyncClient]:
    services = build_services(make_settings(db_url, allowed_hosts=["internal.lb"]))
    transport = httpx.ASGITransport(app=create_app(services=services))
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
        yield client
    await services.close()


@pytest.mark.parametrize("path", ["/oauth2/token/", "/.well-known/openid-configuration", "/"])
async def test_foreign_host_header_is_refused_not_reflected(
    raw_client: httpx.AsyncClient, path: str
) -> None:
    response = await raw_client.get(path, headers={"Host": "evil.test"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "location" not in response.headers
    assert "evil.test" not in response.text


@pytest.mark.parametrize(
    "path", ["/api/v1/organizations", "/account_api/v1/roles", "/webhooks/kinde"]
)
async def test_foreign_host_on_kindes_apis_gets_kindes_envelope(
    raw_client: httpx.AsyncClient, path: str
) -> None:
    response = await raw_client.get(path, headers={"Host": "evil.test"})
    assert response.status_code == 400
    assert response.json() == {
        "errors": [{"code": "HOST_INVALID", "message": "Unknown Host header."}]
    }


@pytest.mark.parametrize(
    "host", ["claimflow.test", "CLAIMFLOW.test", "claimflow.test:443", "internal.lb:8080"]
)
async def test_issuer_host_and_allowed_hosts_are_served(
    raw_client: httpx.AsyncClient, host: str
) -> None:
    response = await raw_client.get("/.well-known/openid-configuration", headers={"Host": host})
    assert response.status_code == 200
    assert response.json()["issuer"] == ISSUER


def test_a_loopback_issuer_admits_every_loopback_name() -> None:
    hosts = allowed_hosts("http://127.0.0.1:8000", [])
    assert {"127.0.0.1", "localhost", "::1"} <= hosts
    assert "evil.test" not in hosts
    assert allowed_hosts("https://id.example.com", []) == {"id.example.com"}


@pytest.mark.parametrize(
    ("header", "host"),
    [
        ("Example.COM:8443", "example.com"),
        ("[::1]:8000", "::1"),
        ("127.0.0.1", "127.0.0.1"),
        ("evil.test:80:80", "evil.test:80:80"),
    ],
)
def test_host_header_parsing(header: str, host: str) -> None:
    assert host_of(header) == host


async def test_star_turns_the_check_off(db_url: str) -> None:
    services = build_services(make_settings(db_url, allowed_hosts=["*"]))
    transport = httpx.ASGITransport(app=create_app(services=services))
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
        response = await client.get("/.well-known/jwks.json", headers={"Host": "anything"})
    await services.close()
    assert response.status_code == 200
