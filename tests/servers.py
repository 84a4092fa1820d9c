"""Real deployments in miniature for the multi-process tests: a fresh PostgreSQL database, the
demo business imported by the CLI, ``claimflow serve --workers N`` processes, and private Redis
and PostgreSQL servers a test may pause, stop and restart (never the shared ones).

Which worker serves a request is read from the kernel (the worker process that holds the
accepted socket), so a test can pin an HTTP keep-alive connection to each worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import os
import pwd
import re
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import jwt

from claimflow.cli.demo import DEMO_TLS_DIRECTORY
from claimflow.seed import demo_data_path
from tests.cli.conftest import free_port, wait_until_serving
from tests.conftest import PG_SERVER

CLAIMFLOW = str(Path(sys.executable).with_name("claimflow"))
SECRET_KEY = "scale-out-tests-only-J7mQ2vX9LwB4nKd8RtZ5"
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


@contextlib.contextmanager
def fresh_pg_database(server: str = PG_SERVER) -> Iterator[str]:
    """A new, empty PostgreSQL database on ``server``; dropped afterwards."""
    name = f"claimflow_scale_{os.getpid()}_{secrets.token_hex(3)}"

    def admin(sql: str) -> None:
        async def run() -> None:
            conn = await asyncpg.connect(f"{server}/postgres")
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        asyncio.run(run())

    admin(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+asyncpg://{server.split('://', 1)[1]}/{name}"
    finally:
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_environment(database_url: str, redis_url: str | None) -> dict[str, str]:
    """This process's environment without CLAIMFLOW_* variables, plus the deployment's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMFLOW_")}
    env |= {
        "CLAIMFLOW_DATABASE_URL": database_url,
        "CLAIMFLOW_SECRET_KEY": SECRET_KEY,
        # These tests check behaviour, not speed: a cold billing load on a host shared by many
        # test runs can outlast the default 2 s and fail a sign-in for no reason of its own.
        "CLAIMFLOW_WORKFLOW_TIME_LIMIT_SECONDS": "15",
    }
    if redis_url is not None:
        env["CLAIMFLOW_REDIS_URL"] = redis_url
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


@contextlib.contextmanager
def running_server(
    env: dict[str, str], cwd: Path, workers: int = 2, *, wait_for_startup: bool = True
) -> Iterator[tuple[str, set[int], subprocess.Popen[bytes]]]:
    """``claimflow serve --workers N`` on a free port: its URL, worker pids and master process."""
    port = free_port()
    log_path = cwd / "serve.log"
    log = open(log_path, "wb")  # noqa: SIM115
    server = subprocess.Popen(
        [CLAIMFLOW, "serve", "--workers", str(workers), "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # importing takes long on a loaded host
        while log_path.read_text().count("Application startup complete") < workers:
            assert server.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        pids = {
            int(pid)
            for pid in re.findall(r"Started server process \[(\d+)\]", log_path.read_text())
        }
        assert pids <= children_of(server.pid)
        assert len(pids) == workers, pids
        yield base_url, pids, server
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


@dataclass(frozen=True)
class HttpsDemo:
    """A running ``claimflow demo --https``: its issuer and the certificate to trust."""

    issuer: str
    certfile: Path

    def trusting(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.certfile))


@contextlib.contextmanager
def running_https_demo(directory: Path) -> Iterator[HttpsDemo]:
    """``claimflow demo --https`` as a real process in ``directory`` on a free port."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMFLOW_")}
    env["CLAIMFLOW_SECRET_KEY"] = SECRET_KEY
    log = open(directory / "demo.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [CLAIMFLOW, "demo", "--https", "--host", "127.0.0.1", "--port", str(port)],
        cwd=directory,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    issuer = f"https://127.0.0.1:{port}"
    try:
        wait_until_serving(issuer, process, timeout=90, verify=False)
        yield HttpsDemo(issuer, directory / DEMO_TLS_DIRECTORY / "cert.pem")
    finally:
        process.terminate()
        process.wait(timeout=20)
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


# -- private servers a test may stop (never the shared ones) ---------------------------------


class PrivateRedis:
    """A ``redis-server`` of this test's own on a free port, without persistence."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None, "redis-server is not installed"
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


class PrivatePostgres:
    """A PostgreSQL cluster of this test's own (``initdb`` in a temp dir, trust auth).

    PostgreSQL refuses to run as root: under root the cluster belongs to the ``postgres``
    system user and lives in a directory of its own (pytest's tmp_path is root's alone).
    """

    def __init__(self) -> None:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        assert found, "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin"
        self.bin = found[-1].parent
        self.directory = Path(tempfile.mkdtemp(prefix="claimflow-test-pg-"))
        self._as: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.directory, owner.pw_uid, owner.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self.data = self.directory / "data"
        self.port = free_port()
        self.server = f"postgresql://postgres@127.0.0.1:{self.port}"
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust")

    def _run(self, program: str, *args: str) -> None:
        done = subprocess.run(
            [*self._as, str(self.bin / program), *args], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr

    def start(self) -> None:
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.directory / "log"),
            "-w",
            "-o",
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1",
            "start",
        )

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        subprocess.run(
            [*self._as, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(self.directory, ignore_errors=True)


def _wait_for_port(port: int, timeout: float = 10.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        assert time.monotonic() < deadline, f"nothing listens on {port}"
        time.sleep(0.05)
