"""What the billing-version check (design §9) costs a warm token issuance: one table, one run.

    .venv/bin/python bench/billing_versions_bench.py [--iterations 400]

The check reads the subject's billing version from the store before serving a cached billing
claim, which is what makes a plan change visible on every worker at once. Arms, measured in
alternating rounds so that load from other processes cancels out in each round's ratio:

- ``issue_user_tokens`` with ``org_billing`` on a warm in-process cache, with the version
  check vs without it (the same cache with ``versions = None``), on SQLite and on PostgreSQL
  (the shared server at 127.0.0.1:5432, a scratch database);
- the same with no workflow enabled, for scale.
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

sys.path.insert(0, str(Path(__file__).parent))

from stores import on_both_stores
from workflows_bench import seed

from claimflow.app import create_app
from claimflow.cache import InProcessBillingCache
from claimflow.oidc.workflow_events import tokens_generation_event
from claimflow.services import Services, build_services
from claimflow.settings import Settings
from claimflow.store import migrate
from claimflow.tokens.issue import TokenSizeBudget, issue_user_tokens
from claimflow.workflows.engine import WorkflowEngine

ROUNDS = 20


async def per_op_us(fn: Callable[[], Awaitable[Any]], iterations: int) -> float:
    samples = []
    for _ in range(iterations):
        started = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - started) * 1e6)
    return statistics.median(samples)


async def measure(url: str, iterations: int) -> dict[str, float]:
    await asyncio.to_thread(migrate, url)
    services: Services = build_services(
        Settings(
            database_url=url,
            issuer="http://bench",
            secret_key="bench-only-Hs8Kq3Lm9Vx2Wd7Pz4NcT6",
            workflows_enabled=["org_billing"],
            workflow_time_limit_seconds=30,  # the first (cold) load on a busy host
        )
    )
    create_app(services=services)  # serves the in-process Management API of the cold load
    try:
        ctx, _ = await seed(services)
        cache = services.workflows.billing_cache
        assert isinstance(cache, InProcessBillingCache) and cache.versions is not None
        versions = cache.versions
        with_engine, without_engine = services.workflows, WorkflowEngine()
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

        def checked() -> None:
            services.workflows, cache.versions = with_engine, versions

        def unchecked() -> None:
            services.workflows, cache.versions = with_engine, None

        def no_workflow() -> None:
            services.workflows = without_engine

        await issue()
        arms = {"checked": checked, "unchecked": unchecked, "no_workflow": no_workflow}
        samples: dict[str, list[float]] = {name: [] for name in arms}
        names = list(arms)
        for round_ in range(ROUNDS):
            for name in names if round_ % 2 == 0 else list(reversed(names)):
                arms[name]()
                samples[name].append(await per_op_us(issue, max(1, iterations // ROUNDS)))
        checked()
        ratio = statistics.median(
            c / u for c, u in zip(samples["checked"], samples["unchecked"], strict=True)
        )
        return {name: statistics.median(s) for name, s in samples.items()} | {"ratio": ratio}
    finally:
        await services.close()


async def main(iterations: int) -> None:
    rows = await on_both_stores(measure, iterations)
    print(f"{'store':<11} {'no workflow':>12} {'unchecked':>10} {'checked':>10} {'ratio':>6}")
    print("-" * 53)
    for store, r in rows:
        print(
            f"{store:<11} {r['no_workflow']:>10.0f}us {r['unchecked']:>8.0f}us "
            f"{r['checked']:>8.0f}us {r['ratio']:>6.2f}"
        )
    print("ratio = checked / unchecked, median of per-round ratios (warm org_billing issuance)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=400)
    asyncio.run(main(parser.parse_args().iterations))
