"""CORS for a single-page app: on the token, userinfo, revocation, JWKS and discovery endpoints,
for the origins the applications declare, and nowhere else.

The failure it reproduces: an SPA at its registered origin could not exchange its code — the
preflight of ``POST /oauth2/token`` got a 405 without CORS headers, so the browser blocked it.
"""

from __future__ import annotations

import httpx
import pytest

from claimflow.domain import ApplicationType
from claimflow.domain.origins import origin_of
from claimflow.services import Services
from claimflow.store import applications
from tests.helpers import management_client
from tests.oidc.flow import CALLBACK, Business, pkce_pair, seed_business, sign_in_for_code

SPA_ORIGIN = "http://127.0.0.1:9"
"""The origin of the seeded SPA's registered redirect URI."""

CORS_ENDPOINTS = [
    ("GET", "/.well-known/jwks.json"),
    ("GET", "/.well-known/jwks"),
    ("GET", "/.well-known/openid-configuration"),
    ("GET", "/oauth2/userinfo"),
    ("POST", "/oauth2/userinfo"),
    ("POST", "/oauth2/revoke"),
    ("POST", "/oauth2/token"),
]


@pytest.fixture
async def biz(services: Services) -> Business:
    return await seed_business(services)


def preflight(origin: str, method: str, headers: str = "content-type") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }


async def test_spa_origin_preflight_and_code_exchange_get_cors_headers(
    client: httpx.AsyncClient, biz: Business
) -> None:
    allowed = await client.options("/oauth2/token", headers=preflight(SPA_ORIGIN, "POST"))
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == SPA_ORIGIN
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "content-type" in allowed.headers["access-control-allow-headers"]
    assert "access-control-allow-credentials" not in allowed.headers

    verifier, challenge = pkce_pair()
    callback = await sign_in_for_code(client, biz, client_id=biz.spa_client_id, challenge=challenge)
    tokens = await client.post(
        "/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": callback["code"],
            "redirect_uri": CALLBACK,
            "client_id": biz.spa_client_id,
            "code_verifier": verifier,
        },
        headers={"Origin": SPA_ORIGIN},
    )
    assert tokens.status_code == 200
    assert tokens.headers["access-control-allow-origin"] == SPA_ORIGIN
    assert "Origin" in tokens.headers["vary"]


@pytest.mark.parametrize(("method", "path"), CORS_ENDPOINTS)
async def test_each_browser_endpoint_answers_cors_for_an_allowed_origin(
    client: httpx.AsyncClient, biz: Business, method: str, path: str
) -> None:
    pre = await client.options(path, headers=preflight(SPA_ORIGIN, method, "authorization"))
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == SPA_ORIGIN
    actual = await client.request(method, path, headers={"Origin": SPA_ORIGIN})
    assert actual.headers["access-control-allow-origin"] == SPA_ORIGIN


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://127.0.0.1:9.evil.example",
        "http://127.0.0.1:90",
        "https://127.0.0.1:9",
        "null",
        SPA_ORIGIN + "/",
    ],
)
async def test_other_origins_get_no_cors_headers(
    client: httpx.AsyncClient, biz: Business, origin: str
) -> None:
    pre = await client.options("/oauth2/token", headers=preflight(origin, "POST"))
    assert "access-control-allow-origin" not in pre.headers
    actual = await client.get("/.well-known/jwks.json", headers={"Origin": origin})
    assert actual.status_code == 200
    assert "access-control-allow-origin" not in actual.headers


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/organizations"),
        ("POST", "/oauth2/introspect"),
        ("GET", "/oauth2/auth"),
        ("POST", "/oauth2/auth/login"),
        ("GET", "/logout"),
        ("GET", "/openapi.json"),
    ],
)
async def test_other_endpoints_get_no_cors_headers_even_for_an_allowed_origin(
    client: httpx.AsyncClient, biz: Business, method: str, path: str
) -> None:
    pre = await client.options(path, headers=preflight(SPA_ORIGIN, method))
    assert "access-control-allow-origin" not in pre.headers
    actual = await client.request(method, path, headers={"Origin": SPA_ORIGIN})
    assert "access-control-allow-origin" not in actual.headers


async def test_preflight_asking_for_an_unlisted_method_or_header_is_not_allowed(
    client: httpx.AsyncClient, biz: Business
) -> None:
    for headers in (
        preflight(SPA_ORIGIN, "DELETE"),
        preflight(SPA_ORIGIN, "POST", "content-type, x-secret"),
    ):
        response = await client.options("/oauth2/token", headers=headers)
        assert "access-control-allow-origin" not in response.headers


async def test_a_confidential_clients_redirect_origin_is_not_allowed(
    client: httpx.AsyncClient, services: Services
) -> None:
    async with services.db.transaction() as conn:
        await applications.create_application(
            conn,
            name="Server-side web",
            type=ApplicationType.REGULAR,
            redirect_uris=["https://web.example/callback"],
        )
    response = await client.options(
        "/oauth2/token", headers=preflight("https://web.example", "POST")
    )
    assert "access-control-allow-origin" not in response.headers


async def test_explicit_allowed_origins_set_through_the_management_api(
    client: httpx.AsyncClient, services: Services
) -> None:
    headers = await management_client(client, services)
    created = await client.post(
        "/api/v1/applications",
        json={"name": "Dashboard", "type": "reg", "allowed_origins": ["https://app.example"]},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    response = await client.get(
        "/.well-known/openid-configuration", headers={"Origin": "https://app.example"}
    )
    assert response.headers["access-control-allow-origin"] == "https://app.example"


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "type": "spa", "allowed_origins": ["https://app.example/path"]},
        {"name": "x", "type": "spa", "allowed_origins": ["*"]},
        {"name": "x", "type": "spa", "allowed_origins": ["HTTPS://APP.example"]},
        {"name": "x", "type": "m2m", "allowed_origins": ["https://app.example"]},
    ],
)
async def test_management_api_refuses_what_is_not_an_exact_origin(
    client: httpx.AsyncClient, services: Services, body: dict[str, object]
) -> None:
    headers = await management_client(client, services)
    response = await client.post("/api/v1/applications", json=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] in {"INVALID_REQUEST", "ALLOWED_ORIGINS_INVALID"}


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("http://127.0.0.1:9/callback", "http://127.0.0.1:9"),
        ("https://App.Example:443/cb?x=1", "https://app.example"),
        ("http://[::1]:8080/cb", "http://[::1]:8080"),
        ("com.example.app:/callback", ""),
        ("https://bad:port/", ""),
    ],
)
def test_origin_of_a_redirect_uri(url: str, origin: str) -> None:
    assert origin_of(url) == origin


async def test_allowed_origins_changed_through_update_application_hold_at_once(
    client: httpx.AsyncClient, services: Services
) -> None:
    headers = await management_client(client, services)
    created = await client.post(
        "/api/v1/applications", json={"name": "Dashboard", "type": "spa"}, headers=headers
    )
    app_id = created.json()["application"]["id"]
    origin = {"Origin": "https://app.example"}

    added = await client.patch(
        f"/api/v1/applications/{app_id}",
        json={"allowed_origins": ["https://app.example"], "name": "Dashboard 2"},
        headers=headers,
    )
    assert added.status_code == 200, added.text
    jwks = await client.get("/.well-known/jwks.json", headers=origin)
    assert jwks.headers["access-control-allow-origin"] == "https://app.example"

    removed = await client.patch(
        f"/api/v1/applications/{app_id}", json={"allowed_origins": []}, headers=headers
    )
    assert removed.status_code == 200
    jwks = await client.get("/.well-known/jwks.json", headers=origin)
    assert "access-control-allow-origin" not in jwks.headers


async def test_update_application_refuses_bad_origins_and_unknown_applications(
    client: httpx.AsyncClient, services: Services
) -> None:
    headers = await management_client(client, services)
    created = await client.post(
        "/api/v1/applications", json={"name": "Worker", "type": "m2m"}, headers=headers
    )
    app_id = created.json()["application"]["id"]
    for body in ({"allowed_origins": ["https://app.example/x"]}, {"redirect_uris": ["nope"]}):
        response = await client.patch(f"/api/v1/applications/{app_id}", json=body, headers=headers)
        assert response.status_code == 400
    m2m = await client.patch(
        f"/api/v1/applications/{app_id}",
        json={"allowed_origins": ["https://app.example"]},
        headers=headers,
    )
    assert m2m.status_code == 400
    assert m2m.json()["errors"][0]["code"] == "ALLOWED_ORIGINS_INVALID"
    missing = await client.patch(
        "/api/v1/applications/0123456789abcdef", json={"name": "x"}, headers=headers
    )
    assert missing.status_code == 404
