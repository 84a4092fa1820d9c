"""The login page in a real headless browser (Debian's chromium driven by Playwright), against
a real uvicorn server on loopback: from the authorization request to the callback with a code."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.oidc.conftest import LiveServer
from tests.oidc.flow import CALLBACK, PASSWORD, Business, pkce_pair

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium"
)


async def test_browser_signs_in_through_the_login_page_to_the_callback(
    live_server: LiveServer, business: Business
) -> None:
    from playwright.async_api import Route, async_playwright

    verifier, challenge = pkce_pair()
    query = {
        "response_type": "code",
        "client_id": business.spa_client_id,
        "redirect_uri": CALLBACK,
        "scope": "openid profile email offline",
        "state": "browser-state",
        "nonce": "browser-nonce",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "org_code": business.org_code,
    }
    callbacks: list[str] = []
    reached = asyncio.Event()

    async def catch_callback(route: Route) -> None:
        callbacks.append(route.request.url)
        reached.set()
        await route.fulfill(status=200, content_type="text/plain", body="callback reached")

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page()
            await page.route("http://127.0.0.1:9/**", catch_callback)
            await page.goto(f"{live_server.issuer}/oauth2/auth?{urlencode(query)}")
            assert await page.title() == "Sign in to Acme SPA · claimflow"

            await page.get_by_label("Email").fill(business.email)
            await page.get_by_label("Password").fill("not the password")
            await page.get_by_role("button", name="Sign in").click()
            alert = page.get_by_role("alert")
            await alert.wait_for()
            assert "incorrect" in (await alert.inner_text())
            assert await page.get_by_label("Email").input_value() == business.email

            await page.get_by_label("Password").fill(PASSWORD)
            await page.get_by_role("button", name="Sign in").click()
            await asyncio.wait_for(reached.wait(), timeout=10)
            cookies = {c["name"]: c for c in await page.context.cookies()}
        finally:
            await browser.close()

    assert len(callbacks) == 1
    params = {k: v[0] for k, v in parse_qs(urlsplit(callbacks[0]).query).items()}
    assert params["state"] == "browser-state"
    assert params["iss"] == live_server.issuer
    session = cookies["claimflow_session"]
    assert session["httpOnly"] and session["sameSite"] == "Lax"

    async with httpx.AsyncClient(base_url=live_server.issuer) as http:
        response = await http.post(
            "/oauth2/token",
            data={
                "grant_type": "authorization_code",
                "code": params["code"],
                "redirect_uri": CALLBACK,
                "client_id": business.spa_client_id,
                "code_verifier": verifier,
            },
        )
    assert response.status_code == 200, response.text
    assert {"access_token", "id_token", "refresh_token"} <= set(response.json())
