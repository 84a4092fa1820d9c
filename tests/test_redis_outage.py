"""Redis down and back: issuance goes on from the store and the cache reconnects by itself.

A private ``redis-server`` (never the shared one) is stopped and started again under a running
app. Design §9: Redis is an accelerator, never the only copy of a fact.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from redis.asyncio import Redis

from claimflow.app import create_app
from claimflow.cache import RedisBillingCache
from claimflow.domain import FeatureKind
from claimflow.services import Services, build_services
from claimflow.store import billing
from tests.conftest import ISSUER, make_settings
from tests.oidc.flow import Business, exchange, seed_business, sign_in_for_code
from tests.servers import PrivateRedis


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    redis = PrivateRedis(tmp_path)
    redis.start()
    yield redis
    redis.stop()


@pytest.fixture
async def deployment(
    db_url: str, private_redis: PrivateRedis
) -> AsyncIterator[tuple[httpx.AsyncClient, Services, Business]]:
    services = build_services(make_settings(db_url, redis_url=private_redis.url))
    biz = await seed_business(services)
    async with services.db.transaction() as conn:
        await billing.create_feature(conn, code="seats", name="Seats", kind=FeatureKind.LIMIT)
        await billing.create_plan(
            conn, code="pro", name="Pro", prices=[billing.PriceInput("seats", "Seats")]
        )
        customer = await billing.create_customer(conn, org_code=biz.org_code)
        await billing.create_agreement(conn, customer_id=customer.id, plan_code="pro")
    transport = httpx.ASGITransport(app=create_app(services=services))
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
        yield client, services, biz
    await services.close()


async def refreshed_plans(
    client: httpx.AsyncClient, biz: Business, refresh_token: str
) -> tuple[list[str], str]:
    response = await client.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=(biz.web_client_id, biz.web_secret),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    return [a["plan_code"] for a in claims["org_billing"]["agreements"]], body["refresh_token"]


async def test_issuance_goes_on_without_redis_and_the_cache_reconnects(
    deployment: tuple[httpx.AsyncClient, Services, Business],
    private_redis: PrivateRedis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client, services, biz = deployment
    cache = services.workflows.billing_cache
    assert isinstance(cache, RedisBillingCache)
    cache.REDIS_RETRY_SECONDS = 0.0  # ask Redis on every lookup: no waiting in the test
    code = (await sign_in_for_code(client, biz, org_code=biz.org_code))["code"]
    token = (await exchange(client, biz, code)).json()["refresh_token"]
    plans, token = await refreshed_plans(client, biz, token)
    assert plans == ["pro"]

    private_redis.stop()
    with caplog.at_level(logging.WARNING, logger="claimflow.cache"):
        for _ in range(5):
            plans, token = await refreshed_plans(client, biz, token)
            assert plans == ["pro"]
    failures = [r for r in caplog.records if "Redis failed" in r.getMessage()]
    assert len(failures) == 1  # once per interval, not once per request
    assert cache.redis_failures >= 5

    private_redis.start()
    failures_while_down = cache.redis_failures
    for _ in range(5):
        plans, token = await refreshed_plans(client, biz, token)
        assert plans == ["pro"]
    # Pooled connections died with the old server: each is retried once on a new connection,
    # so not one lookup failed after the restart, and the entry is cached in Redis again.
    assert cache.redis_failures == failures_while_down
    redis = Redis.from_url(private_redis.url)
    try:
        assert [key async for key in redis.scan_iter("*:entry:org:*")]
    finally:
        await redis.aclose()
