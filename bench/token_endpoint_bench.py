"""Token endpoint speed against a peer, measured in one run: one table of ratios.

    .venv/bin/python bench/token_endpoint_bench.py [--seconds 10] [--rounds 3] [--chains 8]
        [--only refresh-sqlite,refresh-postgresql,client-credentials] [--baseline SOURCE_TREE]

Three servers run side by side on loopback, each a real process:
- **claimflow** (`claimflow serve`, one worker), seeded through its own Management API: a plan
  of 5 features, an organization on that plan, a member, a web application; the built-in
  `org_billing` workflow puts the plan in every access token and ID token;
- **the peer**, panva's oidc-provider 9.13.3 (Node, OpenID Certified) with its default in-memory
  adapter (an advantage to it), issuing the same JWT access token with the same 5-entitlement
  `org_billing`-like claim (`bench/peer/server.mjs`, installed with npm on first run);
- **the floor**, `bench/minimal_token_app.py`: FastAPI parsing the form and signing one RS256 JWT.

A Node load client (`bench/peer/load.mjs`) drives each: `refresh_token` as N chains (each uses
the refresh token the previous answer rotated to), `client_credentials` on N connections. Rounds
run A-B-B-A so slow drift in the machine's load hits both sides alike. Server CPU per request is
read from `/proc` (the server's process tree, plus the PostgreSQL backends of claimflow's
database). The table gives medians over rounds with their spread (min-max).

``--baseline DIR`` adds, to the client_credentials scenario, a second `claimflow serve` run from
another source tree (``DIR`` on ``PYTHONPATH``, e.g. a ``git archive`` export of the base
commit) in the same rounds, so a change is measured against its base in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import json
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import bcrypt
import httpx
from stores import PG_SERVER

BENCH = Path(__file__).resolve().parent
PEER = BENCH / "peer"
VENV_BIN = Path(sys.executable).parent
CALLBACK = "http://127.0.0.1:9/callback"
PASSWORD = "bench password 123"
FEATURES = 5
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- CPU time from /proc --------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of a live process, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS


def _processes() -> Iterator[tuple[int, str]]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                yield int(entry.name), (entry / "cmdline").read_bytes().decode(errors="replace")


def cpu_seconds(root: int, database: str | None) -> float:
    """CPU of ``root`` and its descendants, plus PostgreSQL backends serving ``database``."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    backends = 0.0
    for pid, cmdline in _processes():
        stat = _stat(pid)
        if stat is None:
            continue
        parents[pid], cpu[pid] = stat
        if database and cmdline.startswith("postgres:") and f" {database} " in cmdline:
            backends += stat[1]
    total = 0.0
    for pid in cpu:
        walk = pid
        while walk not in (0, 1) and walk != root:
            walk = parents.get(walk, 0)
        if walk == root:
            total += cpu[pid]
    return total + backends


# -- the servers ----------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    process: subprocess.Popen[str]
    url: str
    form: dict[str, str]
    refresh_tokens: list[str] = field(default_factory=list)
    database: str | None = None
    per_grant: dict[str, dict[str, str]] = field(default_factory=dict)
    """Form fields of one grant only, replacing ``form``'s (e.g. another client)."""

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def wait_for(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code < 500:
                return
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {seconds:g} s")


def start_peer(chains: int) -> Server:
    if not (PEER / "node_modules" / "oidc-provider").is_dir():
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=PEER, check=True
        )
    port = free_port()
    process = subprocess.Popen(
        ["node", "server.mjs", str(port), str(chains)],
        cwd=PEER,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    ready = json.loads(process.stdout.readline())
    client = ready["client"]
    return Server(
        "oidc-provider",
        process,
        f"http://127.0.0.1:{port}/token",
        {"client_id": client["id"], "client_secret": client["secret"]},
        list(ready["refresh_tokens"]),
        per_grant={"client_credentials": {"scope": "read"}},
    )


def start_floor() -> Server:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(BENCH / "minimal_token_app.py"), str(port)], text=True
    )
    url = f"http://127.0.0.1:{port}/oauth2/token"
    wait_for(f"http://127.0.0.1:{port}/docs")
    return Server(
        "minimal FastAPI",
        process,
        url,
        {"client_id": "bench", "client_secret": "bench-minimal-secret-0123456789abcdef0123456789"},
    )


async def _ok(response: httpx.Response) -> Any:
    if response.status_code >= 300:
        raise SystemExit(f"{response.request.url}: {response.status_code} {response.text[:300]}")
    return response.json()


async def seed_claimflow(
    issuer: str, admin: dict[str, str], chains: int, features: int = FEATURES
) -> dict[str, Any]:
    """The business, through claimflow's own Management API; refresh tokens by real sign-ins."""
    async with httpx.AsyncClient(base_url=issuer, timeout=30) as http:
        token = await _ok(
            await http.post(
                "/oauth2/token",
                data={"grant_type": "client_credentials", "audience": issuer + "/api"} | admin,
            )
        )
        api = {"Authorization": f"Bearer {token['access_token']}"}
        prices = []
        for i in range(features):
            feature = {"code": f"feat_{i}", "name": f"Feature {i}", "kind": "limit"}
            await _ok(await http.post("/api/v1/billing/features", json=feature, headers=api))
            prices.append(
                {
                    "feature_code": f"feat_{i}",
                    "price_name": f"Pro {i}",
                    "fixed_charge": 10,
                    "entitlement_limit_max": i + 1,
                }
            )
        plan = {"code": "pro", "name": "Pro", "prices": prices}
        await _ok(await http.post("/api/v1/billing/plans", json=plan, headers=api))
        org = await _ok(
            await http.post(
                "/api/v1/organization",
                json={
                    "name": "Acme",
                    "is_create_billing_customer": True,
                    "billing_email": "billing@acme.test",
                    "billing_plan_code": "pro",
                },
                headers=api,
            )
        )
        org_code = org["organization"]["code"]
        email = "bench@acme.test"
        user = await _ok(
            await http.post(
                "/api/v1/user",
                json={
                    "profile": {"given_name": "Bench", "family_name": "User"},
                    "identities": [
                        {"type": "email", "is_verified": True, "details": {"email": email}}
                    ],
                    "organization_code": org_code,
                },
                headers=api,
            )
        )
        hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(10)).decode()
        await _ok(
            await http.put(
                f"/api/v1/users/{user['id']}/password",
                json={"hashed_password": hashed, "hashing_method": "bcrypt"},
                headers=api,
            )
        )
        web = (
            await _ok(
                await http.post(
                    "/api/v1/applications", json={"name": "Web", "type": "reg"}, headers=api
                )
            )
        )["application"]
        await _ok(
            await http.post(
                f"/api/v1/applications/{web['id']}/auth_redirect_urls",
                json={"urls": [CALLBACK]},
                headers=api,
            )
        )
        m2m = (
            await _ok(
                await http.post(
                    "/api/v1/applications", json={"name": "M2M", "type": "m2m"}, headers=api
                )
            )
        )["application"]
        client = {"client_id": web["client_id"], "client_secret": web["client_secret"]}
        refresh_tokens = [await sign_in(http, client, org_code, email) for _ in range(chains)]
    return {
        "web": client,
        "m2m": {"client_id": m2m["client_id"], "client_secret": m2m["client_secret"]},
        "refresh_tokens": refresh_tokens,
    }


async def sign_in(
    http: httpx.AsyncClient, client: dict[str, str], org_code: str, email: str
) -> str:
    """The authorization code flow through the login page, as a browser does it."""
    http.cookies.clear()
    page = await http.get(
        "/oauth2/auth",
        params={
            "response_type": "code",
            "client_id": client["client_id"],
            "redirect_uri": CALLBACK,
            "scope": "openid profile email offline",
            "state": secrets.token_urlsafe(8),
            "org_code": org_code,
        },
    )
    fields = {
        name: html.unescape(value)
        for name, value in re.findall(
            r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">', page.text
        )
    }
    done = await http.post(
        "/oauth2/auth/login", data=fields | {"email": email, "password": PASSWORD}
    )
    if "location" not in done.headers:
        raise SystemExit(f"sign-in failed: {done.status_code} {done.text[:300]}")
    code = parse_qs(urlsplit(done.headers["location"]).query)["code"][0]
    tokens = await _ok(
        await http.post(
            "/oauth2/token",
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}
            | client,
        )
    )
    refresh_token: str = tokens["refresh_token"]
    return refresh_token


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    name = f"claimflow_bench_{secrets.token_hex(4)}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(f"{PG_SERVER}/postgres")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield name
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def start_claimflow(
    workdir: Path,
    database_url: str,
    chains: int,
    database: str | None,
    features: int = FEATURES,
    source: Path | None = None,
    name: str = "claimflow",
) -> Server:
    """``claimflow serve`` seeded for the bench; ``source`` runs another tree's code."""
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    env = os.environ | ({"PYTHONPATH": str(source)} if source is not None else {})
    env = env | {
        "CLAIMFLOW_DATABASE_URL": database_url,
        "CLAIMFLOW_ISSUER": issuer,
        "CLAIMFLOW_SECRET_KEY": secrets.token_urlsafe(32),
        "CLAIMFLOW_WORKFLOWS_ENABLED": '["org_billing", "user_billing"]',
    }
    claimflow = str(VENV_BIN / "claimflow")
    init = subprocess.run(
        [claimflow, "init", "--json"], env=env, cwd=workdir, capture_output=True, text=True
    )
    if init.returncode != 0:
        raise SystemExit(f"claimflow init failed: {init.stderr.strip()[-500:]}")
    admin = json.loads(init.stdout)
    process = subprocess.Popen(
        [claimflow, "serve", "--port", str(port)],
        env=env,
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    wait_for(issuer + "/.well-known/openid-configuration")
    seeded = asyncio.run(seed_claimflow(issuer, admin, chains, features))
    return Server(
        name,
        process,
        issuer + "/oauth2/token",
        seeded["web"],
        seeded["refresh_tokens"],
        database,
        per_grant={"client_credentials": seeded["m2m"]},
    )


# -- measuring ------------------------------------------------------------------------------


@dataclass
class Round:
    throughput: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float


def measure(server: Server, mode: str, concurrency: int, seconds: float) -> Round:
    form = server.form | server.per_grant.get(mode, {}) | {"grant_type": mode}
    job = {
        "url": server.url,
        "mode": mode,
        "concurrency": concurrency,
        "seconds": seconds,
        "form": form,
        "refresh_tokens": server.refresh_tokens[:concurrency],
    }
    before = cpu_seconds(server.process.pid, server.database)
    done = subprocess.run(
        ["node", str(PEER / "load.mjs")],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        check=True,
    )
    after = cpu_seconds(server.process.pid, server.database)
    result = json.loads(done.stdout)
    if result["errors"]:
        raise SystemExit(f"{server.name} {mode}: errors {result['statuses']}")
    if mode == "refresh_token":
        server.refresh_tokens = result["refresh_tokens"]
    requests = max(1, result["requests"])
    return Round(
        requests / result["seconds"],
        result["p50_ms"],
        result["p99_ms"],
        (after - before) * 1000 / requests,
    )


def rounds(
    a: Server, b: Server, mode: str, concurrency: int, seconds: float, count: int
) -> dict[str, list[Round]]:
    """``count`` rounds, A-B then B-A alternately."""
    return rounds_of([a, b], mode, concurrency, seconds, count)


def rounds_of(
    servers: list[Server], mode: str, concurrency: int, seconds: float, count: int
) -> dict[str, list[Round]]:
    """``count`` rounds over ``servers``, in order then in reverse order alternately."""
    measured: dict[str, list[Round]] = {server.name: [] for server in servers}
    for i in range(count):
        for server in servers if i % 2 == 0 else servers[::-1]:
            measured[server.name].append(measure(server, mode, concurrency, seconds))
    return measured


def summary(samples: list[Round], attribute: str) -> str:
    values = [getattr(r, attribute) for r in samples]
    middle = statistics.median(values)
    fmt = "{:,.0f}" if attribute == "throughput" else "{:.1f}"
    spread = f" ({fmt.format(min(values))}-{fmt.format(max(values))})" if len(values) > 1 else ""
    return fmt.format(middle) + spread


def row(scenario: str, ours: list[Round], theirs: list[Round], peer: str) -> str:
    ratio = statistics.median(
        o.throughput / t.throughput for o, t in zip(ours, theirs, strict=True)
    )
    cpu = statistics.median(o.cpu_ms / t.cpu_ms for o, t in zip(ours, theirs, strict=True))
    return (
        f"| {scenario} | {summary(ours, 'throughput')} req/s, p50 {summary(ours, 'p50_ms')} ms, "
        f"p99 {summary(ours, 'p99_ms')} ms, {summary(ours, 'cpu_ms')} CPU-ms "
        f"| {peer}: {summary(theirs, 'throughput')} req/s, p50 {summary(theirs, 'p50_ms')} ms, "
        f"p99 {summary(theirs, 'p99_ms')} ms, {summary(theirs, 'cpu_ms')} CPU-ms "
        f"| {ratio:.2f}x | {cpu:.1f}x |"
    )


def client_credentials(workdir: Path, peer: Server, args: argparse.Namespace) -> list[str]:
    """The client_credentials rows: claimflow (and the baseline's) vs the floor, vs the peer."""
    servers = [
        start_claimflow(workdir, f"sqlite+aiosqlite:///{workdir / 'cc.db'}", args.chains, None)
    ]
    if args.baseline is not None:
        url = f"sqlite+aiosqlite:///{workdir / 'cc_baseline.db'}"
        name = f"claimflow ({args.baseline})"
        servers.append(
            start_claimflow(workdir, url, args.chains, None, source=args.baseline, name=name)
        )
    floor = start_floor()
    try:
        measured = rounds_of(
            [*servers, floor], "client_credentials", args.chains, args.seconds, args.rounds
        )
        versus_peer = rounds_of(
            [*servers, peer], "client_credentials", args.chains, args.seconds, args.rounds
        )
    finally:
        for server in [*servers, floor]:
            server.stop()
    lines = []
    for server in servers:
        scenario = f"client_credentials, SQLite, {args.chains} connections: {server.name}"
        lines.append(row(scenario, measured[server.name], measured[floor.name], "floor"))
        print(lines[-1], flush=True)
        lines.append(
            row(scenario, versus_peer[server.name], versus_peer[peer.name], "oidc-provider")
        )
        print(lines[-1], flush=True)
    if len(servers) == 2:
        ours, base = servers
        lines.append(
            row(
                f"client_credentials, SQLite, {args.chains} connections: this tree vs the baseline",
                measured[ours.name],
                measured[base.name],
                "baseline",
            )
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chains", type=int, default=8)
    parser.add_argument("--only", default="refresh-sqlite,refresh-postgresql,client-credentials")
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="another source tree whose claimflow joins the client_credentials rounds",
    )
    args = parser.parse_args()
    if shutil.which("node") is None:
        raise SystemExit("the peer and the load client need Node.js (node) on PATH")
    wanted = set(args.only.split(","))
    lines = [
        "| scenario | claimflow | peer | throughput ratio | CPU per request ratio |",
        "|---|---|---|---|---|",
    ]
    peer = start_peer(args.chains * (args.rounds + 1))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            if "refresh-sqlite" in wanted:
                ours = start_claimflow(
                    workdir, f"sqlite+aiosqlite:///{workdir / 'bench.db'}", args.chains, None
                )
                try:
                    measured = rounds(
                        ours, peer, "refresh_token", args.chains, args.seconds, args.rounds
                    )
                finally:
                    ours.stop()
                lines.append(
                    row(
                        f"refresh_token, SQLite, {args.chains} chains",
                        measured["claimflow"],
                        measured["oidc-provider"],
                        "oidc-provider",
                    )
                )
                print(lines[-1], flush=True)
            if "refresh-postgresql" in wanted:
                with postgres_database() as name:
                    url = f"postgresql+asyncpg://{PG_SERVER.split('://', 1)[1]}/{name}"
                    ours = start_claimflow(workdir, url, args.chains, name)
                    try:
                        measured = rounds(
                            ours, peer, "refresh_token", args.chains, args.seconds, args.rounds
                        )
                    finally:
                        ours.stop()
                lines.append(
                    row(
                        f"refresh_token, PostgreSQL, {args.chains} chains",
                        measured["claimflow"],
                        measured["oidc-provider"],
                        "oidc-provider",
                    )
                )
                print(lines[-1], flush=True)
            if "client-credentials" in wanted:
                lines.extend(client_credentials(workdir, peer, args))
    finally:
        peer.stop()
    print()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
