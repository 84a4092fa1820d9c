"""Benchmark of the OIDC provider (issue 3): what one token request costs, measured in one run.

    .venv/bin/python bench/oidc_bench.py [--iterations 200] [--database-url URL]

In process (httpx over ASGITransport, so no network in the figures), no workflow enabled:
1. authorization_code exchange (code lookup, claims, two RS256 signatures, the atomic spend);
2. refresh_token grant (rotation: spend + insert in one transaction, two signatures);
3. /oauth2/auth with a live session (no password) up to the redirect with a code;
4. one password sign-in (argon2id verify: deliberately slow, the price of brute-force resistance).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).parents[1]))

from claimflow.app import create_app
from claimflow.services import build_services
from claimflow.settings import Settings
from claimflow.store import migrate
from tests.oidc.flow import (
    CALLBACK,
    PASSWORD,
    Business,
    seed_business,
    submit_login,
)

ISSUER = "http://bench.claimflow.test"


def auth_params(biz: Business) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": biz.web_client_id,
        "redirect_uri": CALLBACK,
        "scope": "openid profile email offline",
        "state": "bench",
        "org_code": biz.org_code,
    }


def code_of(response: httpx.Response) -> str:
    return parse_qs(urlsplit(response.headers["location"]).query)["code"][0]


async def timed(n: int, step: Callable[[], Awaitable[None]]) -> list[float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        await step()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def row(name: str, samples: list[float]) -> str:
    p50 = statistics.median(samples)
    p95 = statistics.quantiles(samples, n=20)[18] if len(samples) >= 20 else max(samples)
    rate = 1000 / statistics.mean(samples)
    return f"{name:<44} {p50:>8.2f} {p95:>8.2f} {rate:>9.0f}"


async def main(iterations: int, database_url: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite+aiosqlite:///{tmp}/bench.db"
        await asyncio.to_thread(migrate, url)
        settings = Settings(
            database_url=url,
            issuer=ISSUER,
            secret_key="bench-only-Hs8Kq3Lm9Vx2Wd7Pz4NcT6",
            workflows_enabled=[],
        )
        services = build_services(settings)
        app = create_app(services=services)
        await services.keys.ensure_active_key()
        biz = await seed_business(services)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
            page = await client.get("/oauth2/auth", params=auth_params(biz))
            first = await submit_login(client, page, biz.email, PASSWORD)
            auth = (biz.web_client_id, biz.web_secret)

            async def new_code() -> str:
                return code_of(await client.get("/oauth2/auth", params=auth_params(biz)))

            codes = [await new_code() for _ in range(iterations)]

            async def exchange() -> None:
                response = await client.post(
                    "/oauth2/token",
                    data={
                        "grant_type": "authorization_code",
                        "code": codes.pop(),
                        "redirect_uri": CALLBACK,
                    },
                    auth=auth,
                )
                assert response.status_code == 200, response.text
                refresh_tokens.append(response.json()["refresh_token"])

            refresh_tokens: list[str] = []
            exchange_ms = await timed(iterations, exchange)
            current = [refresh_tokens[-1]]

            async def refresh() -> None:
                response = await client.post(
                    "/oauth2/token",
                    data={"grant_type": "refresh_token", "refresh_token": current[0]},
                    auth=auth,
                )
                assert response.status_code == 200, response.text
                current[0] = response.json()["refresh_token"]

            refresh_ms = await timed(iterations, refresh)

            async def authorize_with_session() -> None:
                await new_code()

            session_ms = await timed(iterations, authorize_with_session)

            async def password_sign_in() -> None:
                page = await client.get(
                    "/oauth2/auth", params=auth_params(biz) | {"prompt": "login"}
                )
                response = await submit_login(client, page, biz.email, PASSWORD)
                assert response.status_code == 302

            login_ms = await timed(max(5, iterations // 20), password_sign_in)
            assert first.status_code == 302
        await services.close()

    print(
        f"database: {url.split('@')[-1] if database_url else 'SQLite file'}; "
        f"algorithm {settings.signing_algorithm}; {iterations} iterations; in-process"
    )
    print(f"{'operation':<44} {'p50 ms':>8} {'p95 ms':>8} {'per s':>9}")
    print(row("authorization_code exchange", exchange_ms))
    print(row("refresh_token grant (rotation)", refresh_ms))
    print(row("/oauth2/auth with a session (to the code)", session_ms))
    print(row("password sign-in (argon2id) to the code", login_ms))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    asyncio.run(main(args.iterations, args.database_url))
