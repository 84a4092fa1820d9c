"""Scale-out: ``claimflow serve --workers 2`` on PostgreSQL and Redis behaves as one service.

A real deployment in miniature: a fresh PostgreSQL database with the demo business imported by
the CLI, Redis for the billing cache, two uvicorn worker processes behind one port. Which worker
serves a request is read from the kernel (the worker process that holds the accepted socket), so
the test can pin an HTTP keep-alive connection to each worker and show that:

- an M2M token issued by one worker is accepted by both, over many requests;
- after ``claimflow keys rotate`` (run while the server is up) tokens signed before and after the
  rotation verify on every worker, and both workers publish the new key;
- a plan change made through worker B reaches the ``org_billing`` claim that worker A issues
  next (the billing cache and its invalidation live in Redis, not in one worker's memory).
"""

from __future__ import annotations

import asyncio
import html
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import jwt
import pytest

from claimflow.seed import demo_data_path
from claimflow.services import build_services
from tests.cli.conftest import free_port
from tests.conftest import PG_SERVER, make_settings

CLAIMFLOW = str(Path(sys.executable).with_name("claimflow"))
SECRET_KEY = "scale-out-tests-only-J7mQ2vX9LwB4nKd8RtZ5"
REDIS_URL = os.environ.get("CLAIMFLOW_TEST_REDIS", "redis://127.0.0.1:6379/13")
M2M = ("demo-m2m", "demo-m2m-secret-not-for-production")
WEB = ("demo-web", "demo-web-secret-not-for-production")
CALLBACK = "http://127.0.0.1:8765/callback"


def _admin(sql: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(f"{PG_SERVER}/postgres")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.fixture
def pg_database() -> Iterator[str]:
    name = f"claimflow_scale_{os.getpid()}_{secrets.token_hex(3)}"
    _admin(f'CREATE DATABASE "{name}"')
    yield f"postgresql+asyncpg://{PG_SERVER.split('://', 1)[1]}/{name}"
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def environment(pg_database: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMFLOW_")}
    env |= {
        "CLAIMFLOW_DATABASE_URL": pg_database,
        "CLAIMFLOW_REDIS_URL": REDIS_URL,
        "CLAIMFLOW_SECRET_KEY": SECRET_KEY,
    }
    return env


def claimflow(env: dict[str, str], cwd: Path, *args: str) -> str:
    done = subprocess.run(
        [CLAIMFLOW, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def children_of(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _socket_inode(server_port: int, client_port: int) -> str | None:
    """The inode of the server-side socket of the loopback connection from ``client_port``."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if (local_port, remote_port) == (server_port, client_port):
                return fields[9]
    return None


def serving_worker(response: httpx.Response, server_port: int, workers: set[int]) -> int:
    """The worker process that holds the connection this response came over."""
    stream = response.extensions["network_stream"]
    client_port = stream.get_extra_info("client_addr")[1]
    inode = _socket_inode(server_port, client_port)
    assert inode is not None
    for pid in workers:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    raise AssertionError("no worker holds the connection")


def m2m_token(http: httpx.Client, base_url: str) -> str:
    response = http.post(
        "/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": M2M[0],
            "client_secret": M2M[1],
            "audience": base_url + "/api",
        },
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def sign_in(http: httpx.Client, org_code: str) -> tuple[dict[str, Any], httpx.Response]:
    """Alice signs in to ``org_code`` with the demo web app: the access token's claims and the
    token endpoint's response (to tell which worker issued it)."""
    page = http.get(
        "/oauth2/auth",
        params={
            "response_type": "code",
            "client_id": WEB[0],
            "redirect_uri": CALLBACK,
            "scope": "openid profile email",
            "state": "s",
            "nonce": "n",
            "org_code": org_code,
            "prompt": "login",
        },
    )
    fields = re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">', page.text)
    form = {name: html.unescape(value) for name, value in fields}
    login = http.post(
        "/oauth2/auth/login",
        data=form | {"email": "alice@acme.test", "password": "claimflow-demo"},
    )
    assert login.status_code == 302, login.text
    code = parse_qs(urlsplit(login.headers["location"]).query)["code"][0]
    tokens = http.post(
        "/oauth2/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK},
        auth=WEB,
    )
    assert tokens.status_code == 200, tokens.text
    claims: dict[str, Any] = jwt.decode(
        tokens.json()["access_token"], options={"verify_signature": False}
    )
    return claims, tokens


RUN = secrets.token_hex(4)
ACME, ACME_CUSTOMER = f"org_acme_{RUN}", f"customer_acme_{RUN}"


def demo_for_this_run(directory: Path) -> Path:
    """The demo business with organization codes and customer ids unique to this test run.

    The billing cache lives in Redis, which outlives the test database: with the demo's fixed
    codes, an earlier (or a concurrent) run's cached ``org:org_acme`` entry would answer ours.
    """
    text = demo_data_path().read_text(encoding="utf-8")
    text = re.sub(r"\b(org|customer)_(acme|globex|initech|hooli|erin)\b", rf"\1_\2_{RUN}", text)
    path = directory / "demo.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def two_workers(environment: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, set[int]]]:
    claimflow(environment, tmp_path, "import", str(demo_for_this_run(tmp_path)))
    port = free_port()
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115
    server = subprocess.Popen(
        [CLAIMFLOW, "serve", "--workers", "2", "--host", "127.0.0.1", "--port", str(port)],
        env=environment,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while (tmp_path / "serve.log").read_text().count("Application startup complete") < 2:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.1)
        log_text = (tmp_path / "serve.log").read_text()
        workers = {int(pid) for pid in re.findall(r"Started server process \[(\d+)\]", log_text)}
        assert workers <= children_of(server.pid)
        assert len(workers) == 2, workers
        yield base_url, workers
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


class PinnedConnections:
    """A keep-alive connection to each worker, re-established if the server closed it.

    uvicorn closes idle keep-alive connections after 5 s; on a loaded machine a step may idle
    longer, and httpx would silently reconnect to whichever worker the kernel picks. ``to(pid)``
    checks where the client's connection lands and opens new ones until it is ``pid`` again.
    """

    def __init__(self, base_url: str, port: int, workers: set[int]) -> None:
        self.base_url, self.port, self.workers = base_url, port, workers
        self._clients: dict[int, httpx.Client] = {}
        for _ in range(200):
            self._connect()
            if set(self._clients) == workers:
                return
        raise AssertionError("the kernel never gave a connection to one of the workers")

    def _connect(self) -> int:
        http = httpx.Client(base_url=self.base_url, limits=httpx.Limits(max_connections=1))
        pid = self.served_by(http.get("/.well-known/openid-configuration"))
        if pid in self._clients:
            http.close()
        else:
            self._clients[pid] = http
        return pid

    def served_by(self, response: httpx.Response) -> int:
        return serving_worker(response, self.port, self.workers)

    def to(self, pid: int) -> httpx.Client:
        http = self._clients.pop(pid)
        if self.served_by(http.get("/.well-known/openid-configuration")) == pid:
            self._clients[pid] = http
            return http
        http.close()
        for _ in range(200):
            if self._connect() == pid:
                return self._clients[pid]
        raise AssertionError(f"no new connection reached worker {pid}")

    def close(self) -> None:
        for http in self._clients.values():
            http.close()


def test_two_workers_share_tokens_keys_and_billing_cache(
    two_workers: tuple[str, set[int]], environment: dict[str, str], tmp_path: Path
) -> None:
    base_url, workers = two_workers
    port = int(base_url.rsplit(":", 1)[1])
    pinned = PinnedConnections(base_url, port, workers)
    pid_a, pid_b = sorted(workers)

    def on(pid: int, response: httpx.Response) -> httpx.Response:
        assert pinned.served_by(response) == pid
        return response

    # An M2M token from worker A works on both, across many requests on fresh connections too.
    token = m2m_token(pinned.to(pid_a), base_url)
    headers = {"Authorization": f"Bearer {token}"}
    served_by = set()
    for _ in range(40):
        with httpx.Client(base_url=base_url) as fresh:
            response = fresh.get("/api/v1/organizations", headers=headers)
            assert response.status_code == 200, response.text
            served_by.add(pinned.served_by(response))
    assert served_by == workers
    for pid in (pid_a, pid_b):
        assert on(pid, pinned.to(pid).get("/api/v1/organizations", headers=headers)).is_success

    # Rotate the signing key through the CLI while both workers run.
    old_kid = jwt.get_unverified_header(token)["kid"]
    output = claimflow(environment, tmp_path, "keys", "rotate")
    new_kid = output.split("new active key ")[1].split()[0]
    assert new_kid != old_kid
    signed_after = asyncio.run(_sign_with_current_key(environment, base_url))
    assert jwt.get_unverified_header(signed_after)["kid"] == new_kid
    for pid in (pid_a, pid_b):
        for bearer in (token, signed_after):
            response = pinned.to(pid).get(
                "/api/v1/organizations", headers={"Authorization": f"Bearer {bearer}"}
            )
            assert on(pid, response).status_code == 200, response.text
        jwks = on(pid, pinned.to(pid).get("/.well-known/jwks.json")).json()
        assert {old_kid, new_kid} <= {k["kid"] for k in jwks["keys"]}

    # Billing: worker A caches Acme's billing in Redis; a plan change through worker B must
    # show in the next token worker A issues.
    claims, issued = sign_in(pinned.to(pid_a), ACME)
    on(pid_a, issued)
    assert [a["plan_code"] for a in claims["org_billing"]["agreements"]] == ["pro"]
    changed = pinned.to(pid_b).post(
        "/api/v1/billing/agreements",
        json={"customer_id": ACME_CUSTOMER, "plan_code": "enterprise"},
        headers=headers,
    )
    assert on(pid_b, changed).status_code == 200, changed.text
    claims, issued = sign_in(pinned.to(pid_a), ACME)
    on(pid_a, issued)
    assert [a["plan_code"] for a in claims["org_billing"]["agreements"]] == ["enterprise"]
    assert "sso" in {e["feature_code"] for e in claims["org_billing"]["entitlements"]}
    pinned.close()


async def _sign_with_current_key(environment: dict[str, str], issuer: str) -> str:
    """A token signed by the key that is active in the shared database now (KeyManager)."""
    services = build_services(
        make_settings(environment["CLAIMFLOW_DATABASE_URL"], secret_key=SECRET_KEY, issuer=issuer)
    )
    try:
        now = int(time.time())
        claims = {
            "iss": issuer,
            "sub": M2M[0],
            "aud": [issuer + "/api"],
            "azp": M2M[0],
            "client_id": M2M[0],
            "iat": now,
            "exp": now + 300,
            "jti": secrets.token_hex(8),
            "gty": ["client_credentials"],
            "scp": ["read:organizations"],
        }
        return await services.keys.sign(claims, typ="at+jwt")
    finally:
        await services.close()


def _token_requests_issued(metrics_text: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
        if sample.name == "claimflow_token_requests_total"
        and sample.labels == {"grant": "client_credentials", "outcome": "issued"}
    )


def test_metrics_of_any_worker_count_the_requests_of_every_worker(
    two_workers: tuple[str, set[int]],
) -> None:
    """``serve --workers 2`` runs prometheus_client in multiprocess mode: a scrape is the server."""
    base_url, workers = two_workers
    pinned = PinnedConnections(base_url, int(base_url.rsplit(":", 1)[1]), workers)
    pid_a, pid_b = sorted(workers)
    for _ in range(3):
        m2m_token(pinned.to(pid_a), base_url)
    for pid in (pid_b, pid_a):
        scrape = pinned.to(pid).get("/metrics")
        assert pinned.served_by(scrape) == pid
        assert _token_requests_issued(scrape.text) == 3, scrape.text
    pinned.close()
