"""The kit against a live claimflow: a real sign-in, the JWKS over loopback TCP, the example API.

claimflow runs in uvicorn on a free loopback port with the demo business; Alice signs in to an
organization through the authorization endpoint asking for the example API as audience; the
example API verifies the access token offline and enforces the plan in its ``org_billing``. Smaller
token budgets make the billing workflow fall back to the compact and the reference form; the kit
enforces them just the same (for a reference it fetches the full form from the issuer).
"""

from __future__ import annotations

import html
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
import uvicorn

from claimflow.app import create_app
from claimflow.seed import BusinessData, import_business_data
from claimflow.store import Database
from tests.cli.conftest import free_port
from tests.conftest import make_settings
from tests.resource.conftest import API_AUDIENCE
from tests.resource.test_dependencies import load_example

CALLBACK = "http://127.0.0.1:8765/callback"


def serve_in_thread(app: object, port: int) -> Iterator[None]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline
        time.sleep(0.02)
    yield
    server.should_exit = True
    thread.join(timeout=10)


BUDGETS = {"full": 4096, "compact": 2000, "reference": 1300}
"""Access-token budgets that make Globex's org_billing come out in each form (full: ~3 kB)."""


@pytest.fixture(params=sorted(BUDGETS))
async def live_issuer(
    request: pytest.FixtureRequest, db_url: str, demo_data: BusinessData
) -> AsyncIterator[tuple[str, str]]:
    """claimflow on a loopback port with the demo business, and the form its budget forces."""
    db = Database(db_url)
    await import_business_data(db, demo_data)
    example_api = {
        "name": "Test API",
        "audience": API_AUDIENCE,
        "applications": [{"client_id": "demo-web"}],
    }
    await import_business_data(db, BusinessData.model_validate({"apis": [example_api]}))
    await db.dispose()
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    settings = make_settings(db_url, issuer=issuer, access_token_max_bytes=BUDGETS[request.param])
    running = serve_in_thread(create_app(settings), port)
    next(running)
    yield issuer, request.param
    next(running, None)


async def sign_in(issuer: str, org_code: str, email: str) -> str:
    """The access token of a browser-style sign-in (login form, code, token endpoint)."""
    async with httpx.AsyncClient(base_url=issuer) as http:
        page = await http.get(
            "/oauth2/auth",
            params={
                "response_type": "code",
                "client_id": "demo-web",
                "redirect_uri": CALLBACK,
                "scope": "openid profile email",
                "state": "s",
                "org_code": org_code,
                "audience": API_AUDIENCE,
            },
        )
        fields = re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">', page.text)
        form = {name: html.unescape(value) for name, value in fields}
        login = await http.post(
            "/oauth2/auth/login", data=form | {"email": email, "password": "claimflow-demo"}
        )
        assert login.status_code == 302, login.text
        code = parse_qs(urlsplit(login.headers["location"]).query)["code"][0]
        response = await http.post(
            "/oauth2/token",
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK},
            auth=("demo-web", "demo-web-secret-not-for-production"),
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token


async def test_signed_in_tokens_are_enforced_by_the_example_api(
    live_issuer: tuple[str, str],
) -> None:
    issuer, expected_form = live_issuer
    app = load_example().create_api(issuer, API_AUDIENCE)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as api:
        carol = await sign_in(issuer, "org_globex", "carol@globex.test")
        claim = jwt.decode(carol, options={"verify_signature": False})["org_billing"]
        assert claim.get("form", "full") == expected_form
        me = (await api.get("/me", headers={"Authorization": f"Bearer {carol}"})).json()
        assert me["billing_form"] == expected_form
        assert (me["org_code"], me["plans"]) == ("org_globex", ["enterprise"])
        sso = await api.get("/sso/settings", headers={"Authorization": f"Bearer {carol}"})
        assert sso.status_code == 200

        bob = await sign_in(issuer, "org_acme", "bob@acme.test")
        sso = await api.get("/sso/settings", headers={"Authorization": f"Bearer {bob}"})
        assert sso.status_code == 403
        assert sso.json()["plans"] == ["pro"]
        reports = await api.get("/reports", headers={"Authorization": f"Bearer {bob}"})
        assert reports.status_code == 200
