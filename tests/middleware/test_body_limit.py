"""Bodies over ``max_body_bytes`` are refused with 413 while they stream in.

The attack: four 50 MiB bodies doubled a worker's memory, because the framework read each one
whole before any size check. Here the body is a generator the test counts: the server must stop
pulling from it right after the limit, and never read a declared-too-large body at all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from claimflow.app import create_app
from claimflow.services import build_services
from tests.conftest import ISSUER, make_settings

LIMIT = 512 * 1024
CHUNK = 64 * 1024


@pytest.fixture
async def client(db_url: str) -> AsyncIterator[httpx.AsyncClient]:
    services = build_services(make_settings(db_url, max_body_bytes=LIMIT))
    transport = httpx.ASGITransport(app=create_app(services=services))
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        yield http
    await services.close()


class CountingBody:
    """A request body of ``total`` bytes that records how much of it the server pulled."""

    def __init__(self, total: int, chunk: bytes = b"a=" + b"x" * (CHUNK - 2)) -> None:
        self.total = total
        self.chunk = chunk
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.pulled < self.total:
            self.pulled += len(self.chunk)
            yield self.chunk


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/oauth2/token", "application/x-www-form-urlencoded"),
        ("/oauth2/auth/login", "application/x-www-form-urlencoded"),
        ("/api/v1/organization", "application/json"),
    ],
)
async def test_huge_streamed_body_is_cut_off_at_the_limit(
    client: httpx.AsyncClient, path: str, content_type: str
) -> None:
    body = CountingBody(50 * 1024 * 1024)
    response = await client.post(path, content=body, headers={"Content-Type": content_type})
    assert response.status_code == 413
    assert body.pulled <= LIMIT + CHUNK
    assert response.headers["cache-control"] == "no-store"


async def test_declared_content_length_over_the_limit_is_refused_before_reading(
    client: httpx.AsyncClient,
) -> None:
    body = CountingBody(LIMIT + 1)
    response = await client.post(
        "/oauth2/token",
        content=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Content-Length": str(50 * 1024 * 1024),
        },
    )
    assert response.status_code == 413
    assert response.json()["error"] == "invalid_request"
    assert body.pulled == 0


async def test_management_api_413_uses_kindes_envelope(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/organization",
        content=b"{" + b" " * LIMIT + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["code"] == "PAYLOAD_TOO_LARGE"


async def test_body_under_the_limit_reaches_the_endpoint(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/oauth2/token", data={"grant_type": "password", "pad": "x" * (LIMIT // 2)}
    )
    assert response.status_code == 400
    assert response.json()["error"] in {"invalid_request", "unsupported_grant_type"}
