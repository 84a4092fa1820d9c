"""What reading the application's current grants costs a Management API GET: one table, one run.

    .venv/bin/python bench/management_auth_bench.py [--iterations 600]

Every Management API request authorizes against the token's scopes *and* its application's
current grants (``claimflow/store/management_grants.py``), so narrowing or deleting an
application binds the tokens already out. Before, a request read only whether its ``jti`` was
revoked. Arms, measured in alternating rounds so that load from other processes cancels out in
each round's ratio, on SQLite and on PostgreSQL (the shared server at 127.0.0.1:5432, a scratch
database):

- ``GET /api/v1/organizations?page_size=1`` through ``httpx.ASGITransport`` with an M2M token,
  *now* (the grant query) vs *before* (``current_grant`` swapped for the revocation check alone,
  which trusts the token's scopes as the code did);
- the store call alone: ``current_grant`` vs ``oidc_revocations.is_revoked``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).parent))

from stores import on_both_stores

from claimflow.app import create_app
from claimflow.domain import ApplicationType
from claimflow.domain.management_scopes import ALL_MANAGEMENT_SCOPES
from claimflow.services import build_services
from claimflow.settings import Settings
from claimflow.store import applications, management_grants, migrate, oidc_revocations

ISSUER = "http://bench.test"
ROUNDS = 20
NOW = management_grants.current_grant


async def revocation_only(
    conn: AsyncConnection, client_id: str, jti: str
) -> management_grants.CurrentGrant:
    """What the check was before: the token's own scopes are trusted, only revocation is read."""
    return management_grants.CurrentGrant(
        frozenset(ALL_MANAGEMENT_SCOPES), await oidc_revocations.is_revoked(conn, jti)
    )


async def per_op_us(fn: Callable[[], Awaitable[Any]], iterations: int) -> float:
    samples = []
    for _ in range(iterations):
        started = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - started) * 1e6)
    return statistics.median(samples)


async def measure(url: str, iterations: int) -> dict[str, float]:
    await asyncio.to_thread(migrate, url)
    services = build_services(
        Settings(database_url=url, issuer=ISSUER, secret_key="bench-only-Hs8Kq3Lm9Vx2Wd7Pz4NcT6")
    )
    app = create_app(services=services)
    try:
        async with services.db.transaction() as conn:
            client, secret = await applications.create_application(
                conn, name="bench", type=ApplicationType.M2M, scopes=ALL_MANAGEMENT_SCOPES
            )
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=ISSUER
        ) as http:
            issued = await http.post(
                "/oauth2/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": client.client_id,
                    "client_secret": secret,
                    "audience": ISSUER + "/api",
                },
            )
            http.headers["Authorization"] = f"Bearer {issued.json()['access_token']}"
            await http.post("/api/v1/organization", json={"name": "Bench"})

            async def get() -> None:
                response = await http.get("/api/v1/organizations", params={"page_size": 1})
                assert response.status_code == 200, response.text

            async def grant_query() -> None:
                async with services.db.connect() as conn:
                    await NOW(conn, client.client_id, "jti")

            async def revocation_query() -> None:
                async with services.db.connect() as conn:
                    await oidc_revocations.is_revoked(conn, "jti")

            def now() -> None:
                management_grants.current_grant = NOW  # type: ignore[assignment]

            def before() -> None:
                management_grants.current_grant = revocation_only  # type: ignore[assignment]

            arms: dict[str, tuple[Callable[[], None], Callable[[], Awaitable[None]]]] = {
                "get_now": (now, get),
                "get_before": (before, get),
                "query_now": (now, grant_query),
                "query_before": (now, revocation_query),
            }
            await get()
            samples: dict[str, list[float]] = {name: [] for name in arms}
            names = list(arms)
            for round_ in range(ROUNDS):
                for name in names if round_ % 2 == 0 else list(reversed(names)):
                    arrange, operation = arms[name]
                    arrange()
                    samples[name].append(await per_op_us(operation, max(1, iterations // ROUNDS)))
            now()
    finally:
        management_grants.current_grant = NOW  # type: ignore[assignment]
        await services.close()

    def ratio(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(samples[a], samples[b], strict=True))

    return {name: statistics.median(s) for name, s in samples.items()} | {
        "get_ratio": ratio("get_now", "get_before"),
        "query_ratio": ratio("query_now", "query_before"),
    }


async def main(iterations: int) -> None:
    rows = await on_both_stores(measure, iterations)
    print(
        f"{'store':<11} {'GET before':>11} {'GET now':>9} {'ratio':>6} "
        f"{'query before':>13} {'query now':>10} {'ratio':>6}"
    )
    print("-" * 72)
    for store, r in rows:
        print(
            f"{store:<11} {r['get_before']:>9.0f}us {r['get_now']:>7.0f}us {r['get_ratio']:>6.2f} "
            f"{r['query_before']:>11.0f}us {r['query_now']:>8.0f}us {r['query_ratio']:>6.2f}"
        )
    print(
        "GET = GET /api/v1/organizations?page_size=1 in-process; before = revocation check only, "
        "now = revocation + current grants in one query; ratio = now / before, median of "
        "per-round ratios"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--iterations", type=int, default=600)
    asyncio.run(main(parser.parse_args().iterations))
