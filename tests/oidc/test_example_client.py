"""``examples/oidc_client.py`` signs in against a real server and prints verified tokens."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx
import jwt

from claimflow.services import build_services
from claimflow.store import apis, applications
from tests.oidc.conftest import LiveServer, free_port
from tests.oidc.flow import PASSWORD, Business, submit_login

EXAMPLE = Path(__file__).parents[2] / "examples" / "oidc_client.py"


async def run_example_client(live_server: LiveServer, business: Business, *extra: str) -> str:
    """Run the example against the live server, sign in as the browser would; its stdout."""
    port = free_port()
    callback = f"http://127.0.0.1:{port}/callback"
    services = build_services(live_server.settings)
    try:
        async with services.db.transaction() as conn:
            await applications.update_application(
                conn, business.spa_client_id, redirect_uris=[callback]
            )
    finally:
        await services.close()

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        "--issuer",
        live_server.issuer,
        "--client-id",
        business.spa_client_id,
        "--org-code",
        business.org_code,
        "--port",
        str(port),
        "--no-browser",
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        await asyncio.wait_for(process.stdout.readline(), 20)
        url = (await asyncio.wait_for(process.stdout.readline(), 20)).decode().strip()
        assert url.startswith(live_server.issuer + "/oauth2/auth?")

        async with httpx.AsyncClient() as browser:
            page = await browser.get(url)
            landed = await submit_login(browser, page, business.email, PASSWORD)
            location = landed.headers["location"]
            assert location.startswith(callback)
            assert (await browser.get(location)).status_code == 200

        out, err = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_example_client_runs_the_browser_flow(
    live_server: LiveServer, business: Business
) -> None:
    text = await run_example_client(live_server, business)
    assert "access_token (verified against" in text
    assert "id_token (verified against" in text
    assert f'"org_code": "{business.org_code}"' in text
    assert "refresh_token: received" in text
    assert "export AT=" not in text


async def test_example_client_gets_a_token_for_an_api_and_prints_it_raw(
    live_server: LiveServer, business: Business
) -> None:
    api = "http://127.0.0.1:8001"
    services = build_services(live_server.settings)
    try:
        async with services.db.transaction() as conn:
            registered = await apis.create_api(conn, name="Example API", audience=api)
            await apis.authorize(conn, registered.id, business.spa_client_id)
    finally:
        await services.close()
    text = await run_example_client(live_server, business, "--audience", api, "--print-tokens")
    exports = dict(
        line.removeprefix("export ").split("=", 1)
        for line in text.splitlines()
        if line.startswith("export ")
    )
    assert set(exports) == {"AT", "ID_TOKEN", "REFRESH_TOKEN"}
    claims = jwt.decode(exports["AT"], options={"verify_signature": False})
    assert api in ([claims["aud"]] if isinstance(claims["aud"], str) else claims["aud"])
