"""Benchmark of the workflow runtime (design §8): one table, measured in one run.

    .venv/bin/python bench/runtime_bench.py [--iterations 400]

1. What an isolated workflow that sets one claim adds to a token issuance on a warm runner: the
   engine's ``run_tokens_generation`` with that workflow in a runner process, vs the same
   workflow trusted (in-process), vs no workflow. Goal: isolated minus none ≤ 1.5 ms at p50.
   The arm "isolated, await only" turns off the server's short poll for the answer
   (``RunnerPool.poll_seconds`` = 0): the server sleeps in the event loop until the runner
   answers, as it did before the poll.
   Arms alternate in rounds (A-B-C-C-B-A) so load from other processes falls on all of them.
   1b. The same three engines behind ``POST /oauth2/token`` (refresh_token grant through the
   ASGI app, rotation included, SQLite): what the isolated workflow adds to a token request.
2. Discovery latency on the same worker while a workflow blocks for 3 s (``time.sleep(3)``):
   requests to ``/.well-known/openid-configuration`` through the ASGI app, one after another,
   for as long as the run lasts, each timed from when the previous one ended (so the time a
   request would wait for a blocked event loop counts). Goal: p99 < 50 ms when the workflow is isolated; the trusted
   arm shows what the same workflow does in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))

from workflows_bench import refresh_grant

from claimflow.app import create_app
from claimflow.services import Services, build_services
from claimflow.settings import Settings
from claimflow.store import migrate
from claimflow.workflows.event import (
    AuthOrigin,
    EventApplication,
    EventAuth,
    EventContext,
    EventDomains,
    EventUser,
    TokensGenerationEvent,
)

ONE_CLAIM = """
from claimflow.workflows import Binding, FailurePolicy, WorkflowSettings
import time

workflow_settings = WorkflowSettings(
    id={id!r}, name={id!r}, failure_policy=FailurePolicy.CONTINUE, time_limit_seconds=10,
    bindings=frozenset({{Binding.ACCESS_TOKEN}}),
)

async def run(event, bindings):
    {body}
"""

EVENT = TokensGenerationEvent(
    context=EventContext(
        user=EventUser(id="kp_bench"),
        application=EventApplication(client_id="app_bench"),
        auth=EventAuth(origin=AuthOrigin.AUTHORIZATION_REQUEST),
        domains=EventDomains(kinde_domain="http://bench.test"),
    )
)


def deployment(
    directory: Path, enabled: list[str], trusted: list[str], database: str = "bench.db"
) -> Services:
    return build_services(
        Settings(
            database_url=f"sqlite+aiosqlite:///{directory}/{database}",
            issuer="http://bench.test",
            secret_key="bench-only-Hs8Kq3Lm9Vx2Wd7Pz4NcT6",
            workflows_dir=str(directory / "workflows"),
            workflows_enabled=enabled,
            workflows_trusted=trusted,
            workflow_runner_pool_size=1,
        )
    )


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def issuance(directory: Path, iterations: int) -> dict[str, list[float]]:
    arms = {
        "no workflow": deployment(directory, [], []),
        "trusted, one claim": deployment(directory, ["one_claim"], ["one_claim"]),
        "isolated, one claim": deployment(directory, ["one_claim"], []),
        "isolated, await only": deployment(directory, ["one_claim"], []),
    }
    unpolled = arms["isolated, await only"].workflows
    assert unpolled.registry is not None
    unpolled.runners.pool(unpolled.registry.get("one_claim")).poll_seconds = 0
    for services in arms.values():
        await services.workflows.warm_up()
        for _ in range(50):
            await services.workflows.run_tokens_generation(EVENT)
    samples: dict[str, list[float]] = {name: [] for name in arms}
    order = [*arms, *reversed(arms)]
    for _ in range(iterations // len(order) + 1):
        for name in order:
            services = arms[name]
            started = time.perf_counter()
            await services.workflows.run_tokens_generation(EVENT)
            samples[name].append((time.perf_counter() - started) * 1000)
    for services in arms.values():
        await services.close()
    return samples


async def token_requests(directory: Path, iterations: int) -> dict[str, list[float]]:
    """``POST /oauth2/token`` with each arm's engine in the same deployment, rounds A-B-C-C-B-A."""
    await asyncio.to_thread(migrate, f"sqlite+aiosqlite:///{directory}/endpoint.db")
    arms = {
        "no workflow": deployment(directory, [], [], "endpoint.db"),
        "trusted, one claim": deployment(directory, ["one_claim"], ["one_claim"], "endpoint.db"),
        "isolated, one claim": deployment(directory, ["one_claim"], [], "endpoint.db"),
    }
    services = arms["no workflow"]
    engines = {name: arm.workflows for name, arm in arms.items()}
    samples: dict[str, list[float]] = {name: [] for name in arms}
    async with refresh_grant(services) as refresh:
        for engine in engines.values():
            await engine.warm_up()
            services.workflows = engine
            for _ in range(20):
                await refresh()
        order = [*arms, *reversed(arms)]
        for _ in range(iterations // len(order) + 1):
            for name in order:
                services.workflows = engines[name]
                started = time.perf_counter()
                await refresh()
                samples[name].append((time.perf_counter() - started) * 1000)
    services.workflows = engines["no workflow"]
    for arm in arms.values():
        await arm.close()
    return samples


async def discovery_during_block(directory: Path, trusted: bool) -> list[float]:
    services = deployment(directory, ["blocks"], ["blocks"] if trusted else [])
    await services.workflows.warm_up()
    app = create_app(services=services)
    latencies: list[float] = []
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://b"
    ) as web:
        await web.get("/.well-known/openid-configuration")
        run = asyncio.create_task(services.workflows.run_tokens_generation(EVENT))
        await asyncio.sleep(0)
        due = time.perf_counter()
        while not run.done():
            # Each request is due when the previous one ended; its latency counts the wait for
            # the event loop (a blocked loop delays it) as well as its own handling.
            await asyncio.sleep(0)  # an in-memory ASGI request never yields: let the loop run
            await web.get("/.well-known/openid-configuration")
            ended = time.perf_counter()
            latencies.append((ended - due) * 1000)
            due = ended
        await run
    await services.close()
    return latencies


async def main(iterations: int) -> None:
    with tempfile.TemporaryDirectory(dir="/dev/shm") as tmp:
        directory = Path(tmp)
        (directory / "workflows").mkdir()
        sources = {
            "one_claim": "bindings.access_token.set_custom_claim('tier', 'gold')",
            "blocks": "time.sleep(3)",
        }
        for wid, body in sources.items():
            source = ONE_CLAIM.format(id=wid, body=body)
            (directory / "workflows" / f"{wid}.py").write_text(textwrap.dedent(source))
        await asyncio.to_thread(migrate, f"sqlite+aiosqlite:///{directory}/bench.db")
        samples = await issuance(directory, iterations)
        requests = await token_requests(directory, iterations)
        isolated = await discovery_during_block(directory, trusted=False)
        trusted = await discovery_during_block(directory, trusted=True)
    base = statistics.median(samples["no workflow"])
    print(f"1. engine run per token issuance, {iterations} rounds (ms)")
    print(f"   {'arm':<22}{'p50':>8}{'p99':>8}{'p50 - none':>12}")
    for name, values in samples.items():
        p50 = statistics.median(values)
        print(f"   {name:<22}{p50:>8.3f}{percentile(values, 0.99):>8.3f}{p50 - base:>12.3f}")
    print("   goal: isolated p50 - none <= 1.5 ms")
    base = statistics.median(requests["no workflow"])
    print(f"1b. POST /oauth2/token (refresh_token grant, ASGI), {iterations} rounds (ms)")
    print(f"   {'arm':<22}{'p50':>8}{'p99':>8}{'p50 - none':>12}")
    for name, values in requests.items():
        p50 = statistics.median(values)
        print(f"   {name:<22}{p50:>8.3f}{percentile(values, 0.99):>8.3f}{p50 - base:>12.3f}")
    print("2. discovery while a workflow blocks 3 s on the same worker (ms)")
    print(f"   {'workflow':<22}{'requests':>9}{'p50':>9}{'p99':>9}{'max':>9}")
    for name, values in (("isolated", isolated), ("trusted (in-process)", trusted)):
        print(
            f"   {name:<22}{len(values):>9}{statistics.median(values):>9.2f}"
            f"{percentile(values, 0.99):>9.2f}{max(values):>9.2f}"
        )
    print("   goal: isolated p99 < 50 ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=400)
    asyncio.run(main(parser.parse_args().iterations))
