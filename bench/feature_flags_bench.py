"""What Kinde's ``feature_flags`` claim costs a token request, measured in one run.

    .venv/bin/python bench/feature_flags_bench.py [--iterations 300] [--rounds 3]
                                                  [--database-url URL]

In process (httpx over ASGITransport), no workflow enabled: the refresh_token grant of Alice
signed in to Acme, alternately with no flag defined (A) and with ten flags, Acme overriding
five and Alice two (B), in A-B-B-A rounds so that drift in the machine's load falls on both.
The difference is the claim's one query (``store/feature_flags.resolved_flags``) and its bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parents[1]))

from bench.oidc_bench import ISSUER, auth_params, code_of, timed
from claimflow.app import create_app
from claimflow.domain import FlagType, OverrideLevel
from claimflow.services import Services, build_services
from claimflow.settings import Settings
from claimflow.store import feature_flags, migrate
from tests.oidc.flow import CALLBACK, PASSWORD, Business, seed_business, submit_login

FLAGS = 10


async def define_flags(services: Services, biz: Business) -> None:
    async with services.db.transaction() as conn:
        for i in range(FLAGS):
            flag_type = list(FlagType)[i % 3]
            default = {"str": "blue", "int": "5", "bool": "false"}[flag_type.value]
            await feature_flags.create_flag(
                conn,
                key=f"flag_{i}",
                name=f"Flag {i}",
                description=None,
                flag_type=flag_type,
                allow_override_level=OverrideLevel.USER,
                default_value=default,
            )
            if i < 5:
                await feature_flags.set_organization_override(
                    conn, biz.org_code, f"flag_{i}", default
                )
            if i < 2:
                await feature_flags.set_user_override(conn, biz.user_id, f"flag_{i}", default)


async def remove_flags(services: Services) -> None:
    async with services.db.transaction() as conn:
        for flag in await feature_flags.list_flags(conn):
            await feature_flags.delete_flag(conn, flag.key)


async def main(iterations: int, rounds: int, database_url: str | None) -> None:
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
        await services.keys.ensure_active_key()
        biz = await seed_business(services)
        samples: dict[str, list[float]] = {"A": [], "B": []}
        transport = httpx.ASGITransport(app=create_app(services=services))
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
            page = await client.get("/oauth2/auth", params=auth_params(biz))
            await submit_login(client, page, biz.email, PASSWORD)
            code = code_of(await client.get("/oauth2/auth", params=auth_params(biz)))
            auth = (biz.web_client_id, biz.web_secret)
            first = await client.post(
                "/oauth2/token",
                data={"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK},
                auth=auth,
            )
            current = [first.json()["refresh_token"]]
            sizes: dict[str, int] = {}

            async def refresh(label: str) -> None:
                response = await client.post(
                    "/oauth2/token",
                    data={"grant_type": "refresh_token", "refresh_token": current[0]},
                    auth=auth,
                )
                assert response.status_code == 200, response.text
                current[0] = response.json()["refresh_token"]
                sizes[label] = len(response.json()["access_token"])

            for _ in range(rounds):
                for label in ("A", "B", "B", "A"):
                    async with services.db.connect() as conn:
                        defined = bool(await feature_flags.list_flags(conn))
                    if label == "B" and not defined:
                        await define_flags(services, biz)
                    if label == "A" and defined:
                        await remove_flags(services)
                    samples[label] += await timed(iterations, lambda label=label: refresh(label))
        await services.close()

    a, b = statistics.median(samples["A"]), statistics.median(samples["B"])
    print(
        f"database: {url.split('@')[-1] if database_url else 'SQLite file'}; "
        f"{iterations} refreshes x {rounds} A-B-B-A rounds; in-process"
    )
    print(f"{'refresh_token grant':<44} {'p50 ms':>8} {'token bytes':>12}")
    print(f"{'A: no feature flag':<44} {a:>8.2f} {sizes['A']:>12}")
    print(f"{'B: 10 flags (5 org, 2 user overrides)':<44} {b:>8.2f} {sizes['B']:>12}")
    print(f"{'ratio B/A':<44} {b / a:>8.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    asyncio.run(main(args.iterations, args.rounds, args.database_url))
