"""The billing cache, in-process and on the real Redis at 127.0.0.1:6379: TTL, invalidation by
customer (also across workers), single flight, in-flight loads not storing stale data,
serve-stale, prepared values, one Redis shared by several deployments (key prefix), and a
Management API write that still succeeds while Redis is down."""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from redis.asyncio import Redis

from claimflow.app import create_app
from claimflow.cache import (
    BillingCache,
    InProcessBillingCache,
    Loaded,
    RedisBillingCache,
    build_billing_cache,
)
from claimflow.services import build_services
from claimflow.settings import Settings
from claimflow.store import Database, billing, billing_versions, organizations
from claimflow.store.billing_versions import StoreBillingVersions, version_of
from claimflow.workflows.bindings import WorkflowLogger
from tests.conftest import ISSUER, make_settings
from tests.helpers import management_client
from tests.management.catalogue import make_org, make_plan, ok

REDIS_URL = "redis://127.0.0.1:6379/0"


class Source:
    """A billing source that counts loads and can be slowed or broken."""

    def __init__(self) -> None:
        self.calls = 0
        self.value = "v1"
        self.delay = 0.0
        self.broken = False
        self.gate: asyncio.Event | None = None
        self.started = asyncio.Event()

    async def load(self) -> Loaded:
        self.calls += 1
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
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
    source.gate = asyncio.Event()
    racing = asyncio.create_task(cache.get_or_load("org:a", source.load))
    await source.started.wait()
    await cache.invalidate(["cust_1"])  # the change lands while the old value is being read
    source.gate.set()
    assert await racing == {"plan": "v1"}
    source.gate, source.value = None, "v2"
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


async def test_prepare_runs_once_per_load_in_process_and_on_every_read_from_redis(
    make_cache: CacheFactory, request: pytest.FixtureRequest
) -> None:
    cache, source, prepared = make_cache(), Source(), []

    def prepare(value: dict[str, str]) -> tuple[str, ...]:
        prepared.append(value)
        return tuple(value.values())

    for _ in range(3):
        assert await cache.get_or_load("org:a", source.load, None, prepare) == ("v1",)
    assert source.calls == 1
    in_process = request.node.callspec.params["make_cache"] == "in_process"
    assert len(prepared) == (1 if in_process else 3)
    await cache.invalidate(["cust_1"])
    source.value = "v2"
    assert await cache.get_or_load("org:a", source.load, None, prepare) == ("v2",)


# -- one Redis, several deployments ---------------------------------------------------------


async def _drop_keys(prefix: str) -> None:
    redis = Redis.from_url(REDIS_URL)
    keys = [k async for k in redis.scan_iter(f"{prefix}:*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


def _deployment(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "issuer": "https://id.acme.test",
        "redis_url": REDIS_URL,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def _cache(settings: Settings) -> BillingCache:
    assert settings.redis_url is not None
    return build_billing_cache(
        settings.redis_url,
        settings.billing_cache_ttl_seconds,
        settings.billing_serve_stale,
        settings.billing_stale_max_age_seconds,
        settings.redis_key_prefix(),
    )


async def test_deployments_sharing_a_redis_never_answer_from_each_others_cache() -> None:
    run = secrets.token_hex(4)
    blue = _deployment(f"postgresql+asyncpg://claimflow:s3cret@db/blue_{run}")
    green = _deployment(f"postgresql+asyncpg://claimflow:s3cret@db/green_{run}")
    blue_workers = [_cache(blue), _cache(_deployment(blue.database_url))]
    green_worker = _cache(green)
    blue_source, green_source = Source(), Source()
    green_source.value = "green"
    try:
        assert await blue_workers[0].get_or_load("org:a", blue_source.load) == {"plan": "v1"}
        # Same key, other deployment: its own load, not blue's entry.
        assert await green_worker.get_or_load("org:a", green_source.load) == {"plan": "green"}
        # Workers of one deployment share the entry and its invalidation.
        assert await blue_workers[1].get_or_load("org:a", blue_source.load) == {"plan": "v1"}
        assert (blue_source.calls, green_source.calls) == (1, 1)
        blue_source.value = "v2"
        await green_worker.invalidate(["cust_1"])  # green's change is not blue's
        assert await blue_workers[1].get_or_load("org:a", blue_source.load) == {"plan": "v1"}
        await blue_workers[0].invalidate(["cust_1"])
        assert await blue_workers[1].get_or_load("org:a", blue_source.load) == {"plan": "v2"}
    finally:
        for settings in (blue, green):
            await _drop_keys(settings.redis_key_prefix())
        for cache in (*blue_workers, green_worker):
            await cache.aclose()


def test_the_default_redis_prefix_is_derived_from_issuer_and_database_not_their_text() -> None:
    blue = _deployment("postgresql+asyncpg://claimflow:s3cret@db/blue")
    prefix = blue.redis_key_prefix()
    assert prefix.startswith("claimflow:")
    assert "s3cret" not in prefix and "blue" not in prefix
    assert _deployment(blue.database_url).redis_key_prefix() == prefix
    assert _deployment(blue.database_url, issuer="https://id.other.test").redis_key_prefix() != (
        prefix
    )
    assert _deployment(blue.database_url, redis_prefix="acme:prod").redis_key_prefix() == (
        "acme:prod"
    )


async def test_the_redis_prefix_setting_names_the_keys_in_redis(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prefix = f"test:{secrets.token_hex(6)}"
    monkeypatch.setenv("CLAIMFLOW_REDIS_PREFIX", prefix)
    cache = _cache(_deployment("sqlite+aiosqlite:///./unused.db"))
    try:
        await cache.get_or_load("org:a", Source().load)
        redis = Redis.from_url(REDIS_URL)
        keys = sorted([k.decode() async for k in redis.scan_iter(f"{prefix}:*")])
        await redis.aclose()
        assert keys == [f"{prefix}:billing:entry:org:a"]
    finally:
        await _drop_keys(prefix)
        await cache.aclose()


# -- Redis down when a billing change is published ------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens once the socket is closed


async def test_a_billing_write_answers_2xx_when_redis_is_down(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    services = build_services(
        make_settings(db_url, redis_url=f"redis://127.0.0.1:{_closed_port()}/0")
    )
    transport = httpx.ASGITransport(app=create_app(services=services))
    try:
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as api:
            api.headers.update(await management_client(api, services))
            await make_plan(api, "free", {"seats": 1})
            await make_plan(api, "pro", {"seats": 50})
            org = await make_org(api, "free")
            customer, org_code = org["billing_customer_id"], org["code"]
            with caplog.at_level(logging.ERROR, logger="claimflow.cache"):
                response = await api.post(
                    "/api/v1/billing/agreements",
                    json={"customer_id": customer, "plan_code": "pro"},
                )
            assert response.status_code == 200, response.text
            agreements = await ok(
                await api.get("/api/v1/billing/agreements", params={"customer_id": customer})
            )
            assert [a["plan_code"] for a in agreements["agreements"]] == ["pro"]
        # The write no longer waits for Redis: the billing version it bumped in its own
        # transaction is what every worker checks (design §9).
        assert "billing cache invalidation" not in caplog.text
        cache = services.workflows.billing_cache
        assert isinstance(cache, RedisBillingCache)
        assert cache.invalidation_errors == 0
        async with services.db.connect() as conn:
            assert await billing_versions.version_of(conn, f"org:{org_code}") == 3
    finally:
        await services.close()


async def test_hit_now_serves_only_what_get_or_load_would_serve_without_waiting(
    any_db_url: str,
) -> None:
    """``hit_now`` answers from memory only for a version the request already read (design §9):
    a billing change that answered 2xx makes the next request's lookup miss and reload."""
    db = Database(any_db_url)
    versions = StoreBillingVersions(db)
    cache = InProcessBillingCache(60.0, versions=versions)
    source = Source()
    try:
        async with db.transaction() as conn:
            await billing.create_plan(conn, code="free", name="Free")
            org = await organizations.create_organization(conn, name="Acme")
            customer = await billing.create_customer(conn, org_code=org.code)
        key = f"org:{org.code}"

        async def request() -> tuple[object, object]:
            """One token request: its authentication read the version, then the lookup."""
            async with db.connect() as conn:
                billing_versions.read_with_request(key, await version_of(conn, key))
            now = cache.hit_now(key)
            return now, await cache.get_or_load(key, source.load)

        # Each request runs in a task of its own, as the server runs each request.
        assert await asyncio.create_task(request()) == (None, {"plan": "v1"})  # cold
        assert await asyncio.create_task(request()) == ({"plan": "v1"}, {"plan": "v1"})
        assert cache.hit_now(key) is None  # no version read here: it cannot tell without I/O

        async with db.transaction() as conn:
            await billing.create_agreement(conn, customer_id=customer.id, plan_code="free")
        source.value = "v2"
        assert await asyncio.create_task(request()) == (None, {"plan": "v2"})
        assert await asyncio.create_task(request()) == ({"plan": "v2"}, {"plan": "v2"})
        assert source.calls == 2
    finally:
        await cache.aclose()
        await db.dispose()


async def test_hit_now_never_answers_from_redis() -> None:
    prefix = f"test:{secrets.token_hex(6)}"
    cache = RedisBillingCache.from_url(REDIS_URL, ttl_seconds=60.0, prefix=prefix)
    source = Source()
    try:
        await cache.get_or_load("org:a", source.load)
        assert await cache.get_or_load("org:a", source.load) == {"plan": "v1"}
        assert cache.hit_now("org:a") is None  # Redis is I/O: ``get_or_load`` decides
    finally:
        redis = Redis.from_url(REDIS_URL)
        await redis.delete(*[k async for k in redis.scan_iter(f"{prefix}:*")])
        await redis.aclose()
        await cache.aclose()
