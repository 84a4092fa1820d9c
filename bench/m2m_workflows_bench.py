"""What ``m2m:token_generation`` costs an organization's API key: one run, one table.

    .venv/bin/python bench/m2m_workflows_bench.py [--iterations 600]

A client-credentials token for an organization-scoped M2M application, through the real token
endpoint (``POST /oauth2/token`` over ``httpx.ASGITransport``: client authentication, grant,
workflows, size budget, signature), on a warm billing cache. Arms, measured in alternating
rounds so that load from other processes cancels out in each round's ratio:

- ``workflows``: the default deployment (``org_billing_m2m`` sets the organization's
  ``org_billing``, checked against the store's billing version on every token, design §9);
- ``unchecked``: the same without the version read (``versions = None``; not a safe setting,
  shown to split the cost);
- ``no workflows``: the same request with no workflow enabled (the token has ``org_code`` only).

On SQLite (a scratch file) and PostgreSQL (the server at 127.0.0.1:5432, a scratch database).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))

from stores import on_both_stores
from workflows_bench import seed

from claimflow.app import create_app
from claimflow.cache import InProcessBillingCache
from claimflow.domain import ApplicationType
from claimflow.services import Services, build_services
from claimflow.settings import Settings
from claimflow.store import applications, migrate
from claimflow.workflows.engine import WorkflowEngine

ISSUER = "http://bench"
ROUNDS = 20


async def measure(url: str, iterations: int) -> dict[str, float]:
    await asyncio.to_thread(migrate, url)
    services: Services = build_services(
        Settings(
            database_url=url,
            issuer=ISSUER,
            secret_key="bench-only-Hs8Kq3Lm9Vx2Wd7Pz4NcT6",
            workflow_time_limit_seconds=30,  # the first (cold) load on a busy host
        )
    )
    try:
        _, org_code = await seed(services)
        async with services.db.transaction() as conn:
            app, secret = await applications.create_application(
                conn, name="API key", type=ApplicationType.M2M, org_code=org_code
            )
        assert secret is not None
        cache = services.workflows.billing_cache
        assert isinstance(cache, InProcessBillingCache) and cache.versions is not None
        versions = cache.versions
        with_engine, without_engine = services.workflows, WorkflowEngine()
        form = {
            "grant_type": "client_credentials",
            "client_id": app.client_id,
            "client_secret": secret,
        }
        transport = httpx.ASGITransport(app=create_app(services=services))
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:

            async def token() -> Any:
                response = await http.post("/oauth2/token", data=form)
                assert response.status_code == 200, response.text
                return response

            def workflows() -> None:
                services.workflows, cache.versions = with_engine, versions

            def unchecked() -> None:
                services.workflows, cache.versions = with_engine, None

            def no_workflows() -> None:
                services.workflows = without_engine

            for arm in (workflows, no_workflows):
                arm()
                for _ in range(20):
                    await token()  # warm: cache, key, pools
            arms = {"workflows": workflows, "unchecked": unchecked, "no_workflows": no_workflows}
            samples: dict[str, list[float]] = {name: [] for name in arms}
            cpu: dict[str, list[float]] = {name: [] for name in arms}
            names = list(arms)
            per_round = max(1, iterations // ROUNDS)
            for round_ in range(ROUNDS):
                for name in names if round_ % 2 == 0 else list(reversed(names)):
                    arms[name]()
                    timings = []
                    cpu_started = time.process_time()
                    for _ in range(per_round):
                        started = time.perf_counter()
                        await token()
                        timings.append((time.perf_counter() - started) * 1e6)
                    cpu[name].append((time.process_time() - cpu_started) / per_round * 1e6)
                    samples[name].append(statistics.median(timings))
            workflows()
            claims = await services.keys.verify(
                (await token()).json()["access_token"], audience=services.management_audience
            )
            assert claims["org_code"] == org_code and "org_billing" in claims
        ratio = statistics.median(
            w / n for w, n in zip(samples["workflows"], samples["no_workflows"], strict=True)
        )
        cpu_ratio = statistics.median(
            w / n for w, n in zip(cpu["workflows"], cpu["no_workflows"], strict=True)
        )
        return {name: statistics.median(s) for name, s in samples.items()} | {
            "ratio": ratio,
            "cpu_workflows": statistics.median(cpu["workflows"]),
            "cpu_no_workflows": statistics.median(cpu["no_workflows"]),
            "cpu_ratio": cpu_ratio,
        }
    finally:
        services.workflows = with_engine
        await services.close()


async def main(iterations: int) -> None:
    rows = await on_both_stores(measure, iterations)
    print(
        f"{'store':<11} {'no workflows':>13} {'unchecked':>10} {'workflows':>10} {'ratio':>6}"
        f" {'cpu none':>9} {'cpu wf':>8} {'cpu ratio':>9}"
    )
    print("-" * 83)
    for store, r in rows:
        print(
            f"{store:<11} {r['no_workflows']:>11.0f}us {r['unchecked']:>8.0f}us "
            f"{r['workflows']:>8.0f}us {r['ratio']:>6.2f} {r['cpu_no_workflows']:>7.0f}us "
            f"{r['cpu_workflows']:>6.0f}us {r['cpu_ratio']:>9.2f}"
        )
    print(
        "ratio = workflows / no workflows, median of per-round ratios of the median request "
        "time (client-credentials token of an organization's application, warm cache); cpu = "
        "this process's CPU time per request (includes the run log's background writes)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=600)
    asyncio.run(main(parser.parse_args().iterations))
