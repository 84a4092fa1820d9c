"""Benchmark of the token workflows (issue 4): one table, measured in one run.

    .venv/bin/python bench/workflows_bench.py [--iterations 300]

1. Token issuance with ``org_billing`` on a warm cache vs with no workflow enabled. Goal: under
   10 % slower. Measured twice, and both arms do the same work apart from the workflow:
   a. what the grants do to issue: ``WorkflowEngine.run_tokens_generation`` then
      ``claimflow.tokens.issue.issue_user_tokens``; the baseline is the workflow seam with
      nothing enabled, base claims, size budget and signing an RS256 access
      token and ID token (SQLite store, keys cached);
   b. ``POST /oauth2/token`` with the refresh_token grant through the ASGI app: the baseline adds
      client authentication, reading the refresh token and its user and membership, rotating
      the refresh token (SQLite writes) and the JSON response.
   What the function still pays on a warm cache (measured with pyinstrument and perf_counter,
   2026-11-25): about 20 us to sign and hash two tokens that are 4 KB larger (base64, SHA-256,
   at_hash), and about 40 us of engine per run (time limit, bindings, the cache lookup, one run
   log line, the run record). No Management API call, no JSON serialisation of the claim: its
   forms are encoded once per cache load.
2. The cold path against a Kinde-compatible Management API over HTTP that adds 50 ms to each
   call: our parallel fetch vs the same calls made one after another. Goal: about two round
   trips, not three.
3. 200 concurrent sign-ins to one organization on a cold cache. Goal: exactly one billing lookup
   (counted by the cache and by the API server), in-process and across 4 workers sharing Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import re
import secrets
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import uvicorn
from sqlalchemy import update
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from claimflow.app import create_app
from claimflow.cache import InProcessBillingCache, RedisBillingCache
from claimflow.crypto import hash_password
from claimflow.domain import ApplicationType, FeatureKind
from claimflow.oidc.workflow_events import tokens_generation_event
from claimflow.services import Services, build_services
from claimflow.settings import Settings
from claimflow.store import applications, billing, migrate, organizations, users
from claimflow.store import tables as t
from claimflow.store._rows import utcnow
from claimflow.store.billing import PriceInput
from claimflow.tokens.claims import TokenContext
from claimflow.tokens.issue import TokenSizeBudget, issue_user_tokens
from claimflow.workflows.bindings import WorkflowLogger
from claimflow.workflows.builtin._billing import AGREEMENTS, ENTITLEMENTS
from claimflow.workflows.engine import WorkflowEngine
from claimflow.workflows.event import TokensGenerationEvent
from claimflow.workflows.management_client import HTTPTransport, ManagementAPIClient
from claimflow.workflows.registry import WorkflowRegistry

LATENCY = 0.050
REDIS_URL = "redis://127.0.0.1:6379/0"


# -- a Kinde-compatible Management API that adds 50 ms to every call -----------------------


class SlowKinde:
    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.base_url = ""

    def app(self) -> Starlette:
        entitlements = [
            {
                "id": f"entitlement_{i:02d}",
                "fixed_charge": 35,
                "price_name": f"Price {i}",
                "feature_code": f"feat_{i:02d}",
                "feature_name": f"Feature {i}",
                "entitlement_limit_max": i,
            }
            for i in range(8)
        ]
        agreement = {"id": "agreement_1", "plan_code": "pro", "billing_group_id": "sbg_1"}

        async def slow(request: Request) -> None:
            self.calls[request.url.path] = self.calls.get(request.url.path, 0) + 1
            await asyncio.sleep(LATENCY)

        async def token(_request: Request) -> JSONResponse:
            return JSONResponse({"access_token": "t", "expires_in": 3600})

        async def organization(request: Request) -> JSONResponse:
            await slow(request)
            code = request.query_params["code"]
            return JSONResponse({"code": code, "billing": {"billing_customer_id": f"cus_{code}"}})

        async def ents(request: Request) -> JSONResponse:
            await slow(request)
            return JSONResponse({"code": "OK", "has_more": False, "entitlements": entitlements})

        async def agreements(request: Request) -> JSONResponse:
            await slow(request)
            return JSONResponse({"code": "OK", "has_more": False, "agreements": [agreement]})

        return Starlette(
            routes=[
                Route("/oauth2/token", token, methods=["POST"]),
                Route("/api/v1/organization", organization),
                Route("/api/v1/billing/entitlements", ents),
                Route("/api/v1/billing/agreements", agreements),
            ]
        )

    async def start(self) -> tuple[uvicorn.Server, asyncio.Task[None]]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        server = uvicorn.Server(
            uvicorn.Config(self.app(), host="127.0.0.1", port=port, log_level="warning")
        )
        serving = asyncio.get_running_loop().create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.01)
        self.base_url = f"http://127.0.0.1:{port}"
        return server, serving


def event(user_id: str, org_code: str) -> TokensGenerationEvent:
    return tokens_generation_event(
        issuer="http://bench", user_id=user_id, client_id="bench", org_code=org_code
    )


# -- 1. issuance with vs without org_billing on a warm cache --------------------------------


async def seed(services: Services) -> tuple[TokenContext, str]:
    async with services.db.transaction() as conn:
        prices = []
        for i in range(8):
            await billing.create_feature(
                conn, code=f"feat_{i}", name=f"Feature {i}", kind=FeatureKind.LIMIT
            )
            prices.append(
                PriceInput(f"feat_{i}", f"Pro {i}", fixed_charge=10, entitlement_limit_max=i)
            )
        await billing.create_plan(conn, code="pro", name="Pro", prices=prices)
        org = await organizations.create_organization(conn, name="Acme")
        user = await users.create_user(conn, email="bench@acme.test", given_name="Bench")
        membership = await organizations.add_member(conn, org.code, user.id, roles=["admin"])
        customer = await billing.create_customer(conn, org_code=org.code)
        await billing.create_agreement(conn, customer_id=customer.id, plan_code="pro")
    ctx = TokenContext(
        issuer=services.issuer,
        user=user,
        client_id="bench",
        scopes=("openid", "profile", "email", "offline"),
        audience=("https://api.bench",),
        auth_time=utcnow(),
        membership=membership,
        org_codes=(org.code,),
    )
    return ctx, org.code


async def per_op_ms(fn: Callable[[], Awaitable[Any]], iterations: int) -> float:
    samples = []
    for _ in range(iterations):
        started = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


ROUNDS = 20


@dataclass(frozen=True)
class Comparison:
    """Median per-operation times of both arms, and the median of their per-round ratios.

    Each round measures both arms back to back, so load from other processes, which changes
    slowly, hits both alike and cancels in that round's ratio."""

    with_ms: float
    without_ms: float
    ratio: float


def compare(samples: dict[str, list[float]]) -> Comparison:
    with_, without = samples["with"], samples["without"]
    return Comparison(
        statistics.median(with_),
        statistics.median(without),
        statistics.median(w / wo for w, wo in zip(with_, without, strict=True)),
    )


COLD_TIME_LIMIT_SECONDS = 30.0
"""The warm-up run builds the in-process app and loads the cache; on a loaded machine that can
take longer than the default 2 s limit, and it is not what the table measures."""


async def interleaved(
    services: Services,
    arms: dict[str, WorkflowEngine],
    fn: Callable[[], Awaitable[Any]],
    iterations: int,
) -> dict[str, list[float]]:
    """Per-round medians of each arm, rounds alternating A B B A so drift cancels out."""
    samples: dict[str, list[float]] = {name: [] for name in arms}
    names = list(arms)
    for round_ in range(ROUNDS):
        for name in names if round_ % 2 == 0 else reversed(names):
            services.workflows = arms[name]
            samples[name].append(await per_op_ms(fn, max(1, iterations // ROUNDS)))
    return samples


async def issuance(iterations: int, workdir: Path) -> tuple[Comparison, int]:
    url = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    await asyncio.to_thread(migrate, url)  # Alembic runs its own event loop
    services = build_services(
        Settings(
            database_url=url,
            issuer="http://bench",
            secret_key="bench-only-Hs8Kq3Lm9Vx2Wd7Pz4NcT6",
            workflows_enabled=["org_billing"],
            workflow_time_limit_seconds=COLD_TIME_LIMIT_SECONDS,
        )
    )
    create_app(services=services)  # serves the in-process Management API of the cold load
    try:
        ctx, _ = await seed(services)
        with_engine = services.workflows
        without_engine = WorkflowEngine()
        event = tokens_generation_event(
            issuer=ctx.issuer,
            user_id=ctx.user.id,
            client_id=ctx.client_id,
            org_code=ctx.org_code,
            ip="127.0.0.1",
            user_agent="bench",
        )
        budget = TokenSizeBudget(
            services.settings.access_token_max_bytes, services.settings.id_token_max_bytes
        )

        async def issue() -> Any:
            custom = await services.workflows.run_tokens_generation(event)
            return await issue_user_tokens(
                services.keys,
                ctx,
                custom,
                budget=budget,
                access_ttl=3600,
                id_ttl=3600,
                with_id_token=True,
            )

        await issue()  # warm the cache, the keys and the in-process API
        tokens = await issue()
        arms = {"with": with_engine, "without": without_engine}
        samples = await interleaved(services, arms, issue, iterations)
        services.workflows = with_engine
        return compare(samples), len(tokens.access_token)
    finally:
        await services.close()


# -- 1b. the same through the real token endpoint (refresh_token grant) ----------------------

CALLBACK = "http://127.0.0.1:9/callback"
PASSWORD = "bench password 123"


@asynccontextmanager
async def refresh_grant(services: Services) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """A signed-in user of an organization with a plan (``seed``) and a function that makes one
    ``POST /oauth2/token`` refresh_token request through the ASGI app (rotation included)."""
    ctx, org_code = await seed(services)
    async with services.db.transaction() as conn:
        await conn.execute(
            update(t.users)
            .where(t.users.c.id == ctx.user.id)
            .values(password_hash=hash_password(PASSWORD))
        )
        web, secret = await applications.create_application(
            conn, name="Bench", type=ApplicationType.REGULAR, redirect_uris=[CALLBACK]
        )
    assert secret is not None
    transport = httpx.ASGITransport(app=create_app(services=services))
    async with httpx.AsyncClient(transport=transport, base_url=services.issuer) as http:
        page = await http.get(
            "/oauth2/auth",
            params={
                "response_type": "code",
                "client_id": web.client_id,
                "redirect_uri": CALLBACK,
                "scope": "openid profile email offline",
                "state": "s",
                "org_code": org_code,
            },
        )
        fields = dict(
            re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">', page.text)
        )
        fields = {k: html.unescape(v) for k, v in fields.items()}
        done = await http.post(
            "/oauth2/auth/login",
            data=fields | {"email": ctx.user.email or "", "password": PASSWORD},
        )
        code = parse_qs(urlsplit(done.headers["location"]).query)["code"][0]
        first = await http.post(
            "/oauth2/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": CALLBACK,
                "client_id": web.client_id,
                "client_secret": secret,
            },
        )
        state = {"refresh": first.json()["refresh_token"]}

        async def refresh() -> None:
            response = await http.post(
                "/oauth2/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": state["refresh"],
                    "client_id": web.client_id,
                    "client_secret": secret,
                },
            )
            state["refresh"] = response.json()["refresh_token"]

        yield refresh


async def endpoint(iterations: int, workdir: Path) -> Comparison:
    """Median ``POST /oauth2/token`` (refresh_token grant, rotation included) via ASGI."""
    url = f"sqlite+aiosqlite:///{workdir / 'endpoint.db'}"
    await asyncio.to_thread(migrate, url)
    services = build_services(
        Settings(
            database_url=url,
            issuer="http://bench",
            secret_key="bench-only-Hs8Kq3Lm9Vx2Wd7Pz4NcT6",
            workflows_enabled=["org_billing"],
            workflow_time_limit_seconds=COLD_TIME_LIMIT_SECONDS,
            login_max_failures=10_000,
        )
    )
    try:
        async with refresh_grant(services) as refresh:
            with_engine, without_engine = services.workflows, WorkflowEngine()
            await refresh()
            arms = {"with": with_engine, "without": without_engine}
            samples = await interleaved(services, arms, refresh, iterations)
            services.workflows = with_engine
        return compare(samples)
    finally:
        await services.close()


# -- 2. cold path, parallel vs sequential ---------------------------------------------------


async def cold_path(kinde: SlowKinde, iterations: int) -> tuple[float, float]:
    registry = WorkflowRegistry.from_settings(["org_billing"])
    transport = HTTPTransport(kinde.base_url, "bench", "bench", timeout_seconds=5)
    engine = WorkflowEngine(registry, management=transport)  # no cache: every run is cold
    await engine.run_tokens_generation(event("kp_1", "org_warmup"))  # token + connections

    async def parallel() -> None:
        claims = await engine.run_tokens_generation(event("kp_1", "org_cold"))
        assert "org_billing" in claims.access_token

    client = ManagementAPIClient(transport, WorkflowLogger())

    async def sequential() -> None:
        org = await client.get("organization", {"code": "org_cold", "expand": "billing"})
        customer = org["billing"]["billing_customer_id"]
        await client.get_all(
            ENTITLEMENTS, "entitlements", {"customer_id": customer, "expand": "plans"}
        )
        await client.get_all(AGREEMENTS, "agreements", {"customer_id": customer})

    par = await per_op_ms(parallel, iterations)
    seq = await per_op_ms(sequential, iterations)
    await engine.aclose()
    return par, seq


# -- 3. 200 concurrent sign-ins on a cold cache ---------------------------------------------


async def stampede(kinde: SlowKinde, workers: int, redis: bool) -> tuple[int, int, float]:
    prefix = f"bench:{secrets.token_hex(4)}"
    engines = []
    for _ in range(workers):
        cache = (
            RedisBillingCache.from_url(REDIS_URL, ttl_seconds=60.0, prefix=prefix)
            if redis
            else InProcessBillingCache(60.0)
        )
        engines.append(
            WorkflowEngine(
                WorkflowRegistry.from_settings(["org_billing"]),
                management=HTTPTransport(kinde.base_url, "bench", "bench"),
                billing_cache=cache,
            )
        )
    for engine in engines:  # M2M token and connection set-up are not billing lookups
        assert engine.management is not None and engine.registry is not None
        scopes = engine.registry.get("org_billing").settings.management_api_scopes
        await engine.management.request(
            "GET", "organization", {"code": "warm"}, None, scopes=scopes
        )
    code = f"org_{prefix}"
    before = kinde.calls.get("/api/v1/organization", 0)
    started = time.perf_counter()
    await asyncio.gather(
        *(engines[i % workers].run_tokens_generation(event(f"kp_{i}", code)) for i in range(200))
    )
    elapsed = (time.perf_counter() - started) * 1000
    lookups = sum(e.billing_cache.loads for e in engines if e.billing_cache is not None)
    org_calls = kinde.calls.get("/api/v1/organization", 0) - before
    for engine in engines:
        await engine.aclose()
    return lookups, org_calls, elapsed


def scratch_dir() -> Path | None:
    """In memory when the host has /dev/shm: the refresh grant's commits then cost CPU, not
    disk flushes whose jitter would drown a difference of a few per cent."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() else None


async def main(iterations: int) -> None:
    with tempfile.TemporaryDirectory(dir=scratch_dir()) as tmp:
        fn, size = await issuance(iterations, Path(tmp))
        ep = await endpoint(iterations, Path(tmp))
    kinde = SlowKinde()
    server, serving = await kinde.start()
    par, seq = await cold_path(kinde, max(10, iterations // 20))
    lookups, org_calls, elapsed = await stampede(kinde, 1, redis=False)
    r_lookups, r_org_calls, r_elapsed = await stampede(kinde, 4, redis=True)
    server.should_exit = True
    await serving  # a clean shutdown, not a lifespan cancelled with the loop

    def ratio(c: Comparison) -> str:
        return f"x{c.ratio:.3f} = {(c.ratio - 1) * 100:+.1f} % (goal < +10 %; median of rounds)"

    rows = [
        (
            "issue_user_tokens, no workflow (median)",
            f"{fn.without_ms:.2f} ms",
            "baseline: seam + base claims + budget + sign access and ID token (RS256)",
        ),
        (
            "issue_user_tokens, org_billing warm cache",
            f"{fn.with_ms:.2f} ms",
            f"{ratio(fn)}; access token {size} B",
        ),
        (
            "POST /oauth2/token refresh, no workflow",
            f"{ep.without_ms:.2f} ms",
            "baseline: the above + client auth, refresh rotation (SQLite), HTTP",
        ),
        (
            "POST /oauth2/token refresh, org_billing warm",
            f"{ep.with_ms:.2f} ms",
            ratio(ep),
        ),
        (
            "cold org_billing, parallel fetch",
            f"{par:.1f} ms",
            f"{par / (LATENCY * 1000):.2f} round trips of 50 ms (goal ~2)",
        ),
        (
            "cold org_billing, sequential fetch",
            f"{seq:.1f} ms",
            f"{seq / (LATENCY * 1000):.2f} round trips of 50 ms",
        ),
        (
            "200 sign-ins, one org, cold, 1 worker",
            f"{elapsed:.0f} ms",
            f"{lookups} billing lookup(s), {org_calls} GET organization (goal 1)",
        ),
        (
            "200 sign-ins, one org, cold, 4 workers + Redis",
            f"{r_elapsed:.0f} ms",
            f"{r_lookups} billing lookup(s), {r_org_calls} GET organization (goal 1)",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'time':>10}  notes")
    print("-" * (width + 70))
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>10}  {note}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--iterations", type=int, default=300)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.iterations)))
