"""``ResourceServer`` dependencies, through the example API (``examples/resource_server.py``).

The example API verifies tokens against the claimflow app's JWKS and enforces the demo plans:
Acme is on ``pro`` (no SSO, 25 seats), Globex on ``enterprise`` (SSO, unlimited projects),
Initech on ``free`` (3 seats), Erin pays for ``pro`` personally.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from tests.conftest import ISSUER
from tests.resource.conftest import API_AUDIENCE, TokenFactory

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "resource_server.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_resource_server", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
async def api(issuer_http: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the example API, whose JWKS fetches go to the claimflow app."""
    app = load_example().create_api(ISSUER, API_AUDIENCE, http=issuer_http)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as http:
        yield http


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def org_token(tokens: TokenFactory, org: str, form: str = "full", **extra: object) -> str:
    customer = f"customer_{org.removeprefix('org_')}"
    claim = await tokens.billing_claim(customer, form)
    return await tokens.token(org_code=org, org_billing=claim, **extra)  # type: ignore[arg-type]


async def test_no_token_is_401_with_a_bare_bearer_challenge(api: httpx.AsyncClient) -> None:
    response = await api.get("/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="example-api"'
    assert response.json()["error_description"] == "A bearer access token is required."


async def test_invalid_token_is_401_invalid_token_in_header_and_body(
    api: httpx.AsyncClient,
) -> None:
    response = await api.get("/me", headers=bearer("not-a-jwt"))
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="example-api", error="invalid_token"')
    assert response.json()["error"] == "invalid_token"
    assert response.headers["cache-control"] == "no-store"


async def test_other_authorization_schemes_are_400_invalid_request(
    api: httpx.AsyncClient,
) -> None:
    response = await api.get("/me", headers={"Authorization": "Basic YTpi"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize("form", ["full", "compact", "reference"])
async def test_feature_outside_the_plan_is_403_naming_feature_and_plan(
    api: httpx.AsyncClient, tokens: TokenFactory, form: str
) -> None:
    response = await api.get(
        "/sso/settings", headers=bearer(await org_token(tokens, "org_acme", form))
    )
    assert response.status_code == 403
    body = response.json()
    assert body["error"] == "insufficient_scope"
    assert (body["feature"], body["plans"]) == ("sso", ["pro"])
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


@pytest.mark.parametrize("form", ["full", "compact", "reference"])
async def test_feature_in_the_plan_passes(
    api: httpx.AsyncClient, tokens: TokenFactory, form: str
) -> None:
    token = await org_token(tokens, "org_globex", form)
    response = await api.get("/sso/settings", headers=bearer(token))
    assert response.status_code == 200
    projects = await api.get("/projects/limit", headers=bearer(token))
    assert projects.json() == {"feature": "projects", "max": None}


async def test_me_shows_the_plan_and_limits_from_the_token(
    api: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    response = await api.get("/me", headers=bearer(await org_token(tokens, "org_acme")))
    body = response.json()
    assert body["org_code"] == "org_acme"
    assert body["billing_form"] == "full"
    assert body["customer_id"] == "customer_acme"
    assert body["plans"] == ["pro"]
    assert body["features"]["seats"] == {"min": 1, "max": 25}
    assert set(body["features"]) == {"seats", "projects", "audit_log", "api_calls"}


@pytest.mark.parametrize("form", ["full", "compact", "reference"])
async def test_limit_allows_up_to_the_plan_maximum_then_403(
    api: httpx.AsyncClient, tokens: TokenFactory, form: str
) -> None:
    token = await org_token(tokens, "org_initech", form)
    for n in (1, 2, 3):
        response = await api.post("/seats", headers=bearer(token))
        assert response.status_code == 201
        assert response.json() == {"seats_in_use": n, "max": 3}
    response = await api.post("/seats", headers=bearer(token))
    assert response.status_code == 403
    body = response.json()
    assert (body["feature"], body["limit"], body["used"]) == ("seats", 3, 3)


async def test_permission_is_required_per_route(
    api: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    reader = await org_token(tokens, "org_acme", permissions=["read:reports"])
    assert (await api.get("/reports", headers=bearer(reader))).status_code == 200
    outsider = await org_token(tokens, "org_acme", permissions=[])
    response = await api.get("/reports", headers=bearer(outsider))
    assert response.status_code == 403
    assert response.json()["permission"] == "read:reports"


async def test_personal_billing_applies_to_a_personal_sign_in(
    api: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    personal = await tokens.billing_claim("customer_erin", "full")
    personal["user_billing"] = {"has_payment_details": True}
    token = await tokens.token(sub="kp_erin", billing_details=personal)
    body = (await api.get("/me", headers=bearer(token))).json()
    assert (body["org_code"], body["plans"]) == (None, ["pro"])


async def test_a_forged_org_billing_on_a_personal_sign_in_is_not_believed(
    api: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    """A personal sign-in (no ``org_code``) carrying an ``org_billing`` next to the real
    ``billingDetails``: the kit reads the personal billing, never the forged claim."""
    personal = await tokens.billing_claim("customer_erin", "full")
    personal["user_billing"] = {"has_payment_details": True}
    forged = await tokens.billing_claim("customer_globex", "full")
    token = await tokens.token(sub="kp_erin", billing_details=personal, org_billing=forged)
    body = (await api.get("/me", headers=bearer(token))).json()
    assert (body["org_code"], body["plans"]) == (None, ["pro"])
    assert (await api.get("/sso/settings", headers=bearer(token))).status_code == 403


async def test_a_token_without_billing_is_403_on_plan_routes(
    api: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    token = await tokens.token(org_code="org_hooli")
    response = await api.get("/sso/settings", headers=bearer(token))
    assert response.status_code == 403
    assert "no billing" in response.json()["error_description"]


async def test_a_malformed_billing_claim_is_401_not_500(
    api: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    token = await tokens.token(
        org_code="org_acme", org_billing={"customer_id": "c", "form": "compact", "features": 3}
    )
    response = await api.get("/sso/settings", headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


async def test_reference_of_another_customer_is_refused_by_the_issuer(
    api: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    """A token for Initech whose reference claim names Globex's customer gets nothing."""
    globex = await tokens.billing_claim("customer_globex", "reference")
    token = await tokens.token(org_code="org_initech", org_billing=globex)
    response = await api.get("/sso/settings", headers=bearer(token))
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"


async def test_plain_starlette_apps_use_authenticate_and_install(
    issuer_http: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from claimflow.resource import ResourceServer, TokenVerifier

    guard = ResourceServer(TokenVerifier(ISSUER, API_AUDIENCE, http=issuer_http))

    async def whoami(request: Request) -> JSONResponse:
        token = await guard.authenticate(request)
        return JSONResponse({"org_code": token.org_code})

    app = Starlette(routes=[Route("/whoami", whoami)])
    guard.install(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as http:
        assert (await http.get("/whoami")).status_code == 401
        token = await tokens.token(org_code="org_acme")
        response = await http.get("/whoami", headers=bearer(token))
        assert response.json() == {"org_code": "org_acme"}
