"""Kinde's own webhook decoder (``@kinde/webhooks`` on npm) accepts claimflow's webhooks.

claimflow runs in uvicorn on loopback with its delivery loop; a webhook is registered through
the Management API, an organization is created, and the JWT the receiver gets is handed to
``decodeWebhook(token, domain)``, which fetches ``<domain>/.well-known/jwks.json`` over HTTP and
verifies the signature. A token whose payload was altered is refused (``null``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from claimflow.app import create_app
from claimflow.services import build_services
from tests.conftest import make_settings
from tests.events.conftest import Receiver
from tests.helpers import create_m2m_app, free_port, m2m_token, serving

NODE_PROJECT = Path(__file__).parent / "node"

pytestmark = pytest.mark.skipif(shutil.which("npm") is None, reason="Node.js/npm is not installed")


@pytest.fixture(scope="session")
def decoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Node project with ``@kinde/webhooks`` installed from the npm registry (pinned)."""
    target = tmp_path_factory.mktemp("kinde-webhooks")
    for name in ("package.json", "decode.mjs"):
        shutil.copy(NODE_PROJECT / name, target / name)
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--silent"],
        cwd=target,
        check=True,
        timeout=300,
    )
    return target


def decode(decoder_dir: Path, token: str, domain: str) -> Any:
    done = subprocess.run(
        ["node", "decode.mjs", token, domain],
        cwd=decoder_dir,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return json.loads(done.stdout)


def tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["data"]["organization"]["name"] = "Mallory Inc"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


async def test_kindes_decoder_verifies_a_claimflow_webhook(
    db_url: str, receiver: Receiver, decoder_dir: Path
) -> None:
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    settings = make_settings(db_url, issuer=issuer, webhook_poll_interval_seconds=0.2)
    app = create_app(settings=settings)
    with serving(app, port):
        async with httpx.AsyncClient(base_url=issuer) as http:
            setup = build_services(settings)  # this loop's own connections, not the server's
            try:
                client_id, secret = await create_m2m_app(setup)
            finally:
                await setup.close()
            http.headers["Authorization"] = f"Bearer {await m2m_token(http, client_id, secret)}"
            created = await http.post(
                "/api/v1/webhooks",
                json={
                    "endpoint": receiver.url,
                    "name": "kinde decoder",
                    "event_types": ["organization.created"],
                },
            )
            assert created.status_code == 200, created.text
            org = await http.post("/api/v1/organization", json={"name": "Acme"})
            code = org.json()["organization"]["code"]
            for _ in range(600):  # the server's own loop delivers; wait for the receiver
                if receiver.received:
                    break
                await asyncio.sleep(0.05)
        [(_, token)] = receiver.received
        decoded = await asyncio.to_thread(decode, decoder_dir, token, issuer)
        forged = await asyncio.to_thread(decode, decoder_dir, tampered(token), issuer)
    assert decoded["type"] == "organization.created"
    assert decoded["data"]["organization"] == {
        "code": code,
        "name": "Acme",
        "handle": None,
        "external_id": None,
    }
    assert forged is None
