"""The billing cache, in-process and on the real Redis at 127.0.0.1:6379: TTL, invalidation by
customer (also across workers), single flight, in-flight loads not storing stale data, and
serve-stale."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis

from claimflow.cache import BillingCache, InProcessBillingCache, Loaded, RedisBillingCache
from claimflow.workflows.bindings import WorkflowLogger

REDIS_URL = "redis://127.0.0.1:6379/0"


class Source:
    """A billing source that counts loads and can be slowed or broken."""

    def __init__(self) -> None:
        self.calls = 0
        self.value = "v1"
        self.delay = 0.0
        self.broken = False

    async def load(self) -> Loaded:
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.broken:
            raise ConnectionError("billing down")
        return Loaded({"plan": self.value}, frozenset({"cust_1"}))


CacheFactory = Callable[..., BillingCache]


@pytest.fixture(params=["in_process", "redis"])
async def make_cache(request: pytest.FixtureRequest) -> AsyncIterator[CacheFactory]:
    prefix = f"test:{secrets.token_hex(6)}"
    made: list[BillingCache] = []

    def build(ttl: float = 60.0, **kwargs: object) -> BillingCache:
        cache: BillingCache
        if request.param == "redis":
            cache = RedisBillingCache.from_url(REDIS_URL, ttl_seconds=ttl, prefix=prefix, **kwargs)
        else:
            cache = InProcessBillingCache(ttl, **kwargs)  # type: ignore[arg-type]
        made.append(cache)
        return cache

    yield build
    if request.param == "redis":
        redis = Redis.from_url(REDIS_URL)
        keys = [k async for k in redis.scan_iter(f"{prefix}:*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
    for cache in made:
        await cache.aclose()


async def test_a_fresh_value_is_served_without_loading(make_cache: CacheFactory) -> None:
    cache, source = make_cache(), Source()
    assert await cache.get_or_load("org:a", source.load) == {"plan": "v1"}
    assert await cache.get_or_load("org:a", source.load) == {"plan": "v1"}
    assert source.calls == 1


async def test_ttl_expiry_reloads(make_cache: CacheFactory) -> None:
    cache, source = make_cache(ttl=0.05), Source()
    await cache.get_or_load("org:a", source.load)
    await asyncio.sleep(0.08)
    source.value = "v2"
    assert await cache.get_or_load("org:a", source.load) == {"plan": "v2"}
    assert source.calls == 2


async def test_invalidation_by_customer_reloads_at_once(make_cache: CacheFactory) -> None:
    cache, source = make_cache(), Source()
    await cache.get_or_load("org:a", source.load)
    source.value = "v2"
    await cache.invalidate(["cust_other"])
    assert await cache.get_or_load("org:a", source.load) == {"plan": "v1"}
    await cache.invalidate(["cust_1"])
    assert await cache.get_or_load("org:a", source.load) == {"plan": "v2"}


async def test_concurrent_lookups_of_one_key_share_one_load(make_cache: CacheFactory) -> None:
    cache, source = make_cache(), Source()
    source.delay = 0.05
    results = await asyncio.gather(*(cache.get_or_load("org:a", source.load) for _ in range(200)))
    assert source.calls == 1
    assert all(r == {"plan": "v1"} for r in results)


async def test_a_load_racing_an_invalidation_is_not_stored(make_cache: CacheFactory) -> None:
    cache, source = make_cache(), Source()
    source.delay = 0.05
    racing = asyncio.create_task(cache.get_or_load("org:a", source.load))
    await asyncio.sleep(0.01)
    await cache.invalidate(["cust_1"])  # the change lands while the old value is being read
    assert await racing == {"plan": "v1"}
    source.delay, source.value = 0.0, "v2"
    assert await cache.get_or_load("org:a", source.load) == {"plan": "v2"}


async def test_none_is_not_cached(make_cache: CacheFactory) -> None:
    cache, calls = make_cache(), []

    async def nothing() -> Loaded:
        calls.append(1)
        return Loaded(None, frozenset())

    assert await cache.get_or_load("org:a", nothing) is None
    assert await cache.get_or_load("org:a", nothing) is None
    assert len(calls) == 2


async def test_serve_stale_returns_the_last_good_value_and_logs(make_cache: CacheFactory) -> None:
    cache, source = make_cache(serve_stale=True, stale_max_age_seconds=60.0), Source()
    await cache.get_or_load("org:a", source.load)
    await cache.invalidate(["cust_1"])
    source.broken = True
    logger = WorkflowLogger()
    assert await cache.get_or_load("org:a", source.load, logger) == {"plan": "v1"}
    assert "served the last good value for org:a" in logger.lines[0]["message"]


async def test_serve_stale_respects_the_maximum_age(make_cache: CacheFactory) -> None:
    cache = make_cache(ttl=0.01, serve_stale=True, stale_max_age_seconds=0.05)
    source = Source()
    await cache.get_or_load("org:a", source.load)
    await asyncio.sleep(0.08)
    source.broken = True
    with pytest.raises(ConnectionError):
        await cache.get_or_load("org:a", source.load)


async def test_without_serve_stale_the_error_propagates(make_cache: CacheFactory) -> None:
    cache, source = make_cache(), Source()
    await cache.get_or_load("org:a", source.load)
    await cache.invalidate(["cust_1"])
    source.broken = True
    with pytest.raises(ConnectionError):
        await cache.get_or_load("org:a", source.load)


async def test_a_cancelled_caller_does_not_cancel_the_shared_load(
    make_cache: CacheFactory,
) -> None:
    cache, source = make_cache(), Source()
    source.delay = 0.1
    first = asyncio.create_task(cache.get_or_load("org:a", source.load))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(cache.get_or_load("org:a", source.load))
    await asyncio.sleep(0.01)
    first.cancel()
    assert await second == {"plan": "v1"}
    assert source.calls == 1


async def test_redis_workers_share_values_and_invalidation() -> None:
    prefix = f"test:{secrets.token_hex(6)}"
    worker_a = RedisBillingCache.from_url(REDIS_URL, ttl_seconds=60.0, prefix=prefix)
    worker_b = RedisBillingCache.from_url(REDIS_URL, ttl_seconds=60.0, prefix=prefix)
    source = Source()
    try:
        await worker_a.get_or_load("org:a", source.load)
        assert await worker_b.get_or_load("org:a", source.load) == {"plan": "v1"}
        assert source.calls == 1
        source.value = "v2"
        await worker_a.invalidate(["cust_1"])  # the Management API write hit worker A
        assert await worker_b.get_or_load("org:a", source.load) == {"plan": "v2"}
    finally:
        redis = Redis.from_url(REDIS_URL)
        keys = [k async for k in redis.scan_iter(f"{prefix}:*")]
        await redis.delete(*keys)
        await redis.aclose()
        await worker_a.aclose()
        await worker_b.aclose()


async def test_redis_single_flight_spans_workers() -> None:
    prefix = f"test:{secrets.token_hex(6)}"
    workers = [
        RedisBillingCache.from_url(REDIS_URL, ttl_seconds=60.0, prefix=prefix) for _ in range(4)
    ]
    source = Source()
    source.delay = 0.1
    try:
        results = await asyncio.gather(
            *(w.get_or_load("org:a", source.load) for w in workers for _ in range(25))
        )
        assert source.calls == 1
        assert len(results) == 100
    finally:
        redis = Redis.from_url(REDIS_URL)
        keys = [k async for k in redis.scan_iter(f"{prefix}:*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
        for w in workers:
            await w.aclose()
