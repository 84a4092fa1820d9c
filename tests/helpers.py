"""Helpers tests share: create applications and fetch tokens through the public endpoints."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import uvicorn

from claimflow.domain import ApplicationType
from claimflow.domain.management_scopes import ALL_MANAGEMENT_SCOPES
from claimflow.services import Services
from claimflow.store import applications, oidc_refresh_tokens
from claimflow.store._rows import utcnow


async def create_m2m_app(
    services: Services, scopes: Sequence[str] = ALL_MANAGEMENT_SCOPES
) -> tuple[str, str]:
    async with services.db.transaction() as conn:
        app, secret = await applications.create_application(
            conn, name="tests", type=ApplicationType.M2M, scopes=scopes
        )
    assert secret is not None
    return app.client_id, secret


async def m2m_token(
    client: httpx.AsyncClient, client_id: str, secret: str, scope: str | None = None
) -> str:
    data = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": secret,
        "audience": str(client.base_url).rstrip("/") + "/api",
    }
    if scope is not None:
        data["scope"] = scope
    response = await client.post("/oauth2/token", data=data)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def management_client(
    client: httpx.AsyncClient, services: Services, scopes: Sequence[str] = ALL_MANAGEMENT_SCOPES
) -> dict[str, str]:
    """Authorization headers of an M2M token with ``scopes``."""
    client_id, secret = await create_m2m_app(services, scopes)
    return {"Authorization": f"Bearer {await m2m_token(client, client_id, secret)}"}


SHARED_DIR_VARIABLE = "CLAIMFLOW_SHARED_DIR"


def shared_dir() -> Path:
    """The project's ``shared/`` folder: CLAIMFLOW_SHARED_DIR, else the nearest ``shared/``
    beside the checkout or beside one of its parents (a git worktree lives one level deeper)."""
    named = os.environ.get(SHARED_DIR_VARIABLE)
    if named:
        return Path(named)
    checkout = Path(__file__).resolve().parents[1]
    for directory in checkout.parents:
        if (directory / "shared").is_dir():
            return directory / "shared"
    return checkout.parent / "shared"


def shared_file(relative: str) -> Path:
    """A file of ``shared/`` a test needs; its absence is an error that says where to put it.

    A contract test (Kinde's OpenAPI document) that skipped quietly would let the suite pass
    without checking the contract at all.
    """
    path = shared_dir() / relative
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: this test needs the project's shared/ folder beside the "
            f"checkout (../shared), or set {SHARED_DIR_VARIABLE} to where it is."
        )
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serving(app: object, port: int) -> Iterator[None]:
    """Serve ``app`` with uvicorn on a loopback port in a thread until the block ends."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass
class LegacyService:
    """A legacy user store on loopback: ``POST /check`` with ``{email, password}`` answers 200
    with the profile or 401; ``calls`` lists the emails it was asked about."""

    url: str = ""
    accounts: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    delay_seconds: float = 0.0
    """How long each answer takes (a legacy system is rarely on the same machine)."""


@contextmanager
def legacy_service(accounts: dict[str, tuple[str, dict[str, str]]]) -> Iterator[LegacyService]:
    """A real HTTP server (stdlib, its own thread) for the password-migration workflows."""
    service = LegacyService(accounts=dict(accounts))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            service.calls.append(body["email"])
            time.sleep(service.delay_seconds)
            account = service.accounts.get(body["email"])
            ok = account is not None and account[0] == body["password"]
            payload = json.dumps(account[1] if ok and account else {"error": "invalid"}).encode()
            self.send_response(200 if ok else 401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    service.url = f"http://127.0.0.1:{server.server_address[1]}/check"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield service
    finally:
        server.shutdown()
        server.server_close()


def refresh_successor(token: str) -> oidc_refresh_tokens.Successor:
    """A refresh token's successor as a rotation stores it (client ``client``, user
    ``kp_user``, no organization), for the store's rotation tests."""
    return oidc_refresh_tokens.Successor(
        token=token,
        client_id="client",
        user_id="kp_user",
        org_code=None,
        scope="openid offline",
        audience=("client",),
        auth_time=utcnow(),
        ttl_seconds=3600,
        access_token_jti="jti-" + token,
        access_token_expires_on=utcnow() + timedelta(hours=1),
    )
