"""org_billing and user_billing against this deployment's own Management API (in-process),
with real store data: claims equal what the API returns, skips, separation, cache, forms."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
from redis.asyncio import Redis

from claimflow.app import create_app
from claimflow.cache import RedisBillingCache
from claimflow.services import Services, build_services
from claimflow.settings import Settings
from claimflow.workflows.runlog import RunFilter, list_runs
from tests.helpers import management_client
from tests.workflows.conftest import BillingWorld, make_event

REDIS_URL = "redis://127.0.0.1:6379/0"


async def all_pages(
    client: httpx.AsyncClient, headers: dict[str, str], path: str, key: str, **params: str
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    query = dict(params)
    while True:
        page = (await client.get(path, params=query, headers=headers)).json()
        items.extend(page[key])
        if not page["has_more"]:
            return items
        query["starting_after"] = page[key][-1]["id"]


async def expected_billing(
    client: httpx.AsyncClient, services: Services, customer_id: str
) -> dict[str, Any]:
    headers = await management_client(client, services)
    return {
        "customer_id": customer_id,
        "entitlements": await all_pages(
            client,
            headers,
            "/api/v1/billing/entitlements",
            "entitlements",
            customer_id=customer_id,
            expand="plans",
        ),
        "agreements": await all_pages(
            client, headers, "/api/v1/billing/agreements", "agreements", customer_id=customer_id
        ),
    }


async def test_org_sign_in_carries_org_billing_equal_to_the_management_api(
    services: Services, client: httpx.AsyncClient, world: BillingWorld
) -> None:
    claims = await services.workflows.run_tokens_generation(
        make_event(world.member_id, world.org_code)
    )
    expected = await expected_billing(client, services, world.org_customer)
    full, compact, reference = claims.access_token["org_billing"]
    assert full == expected
    assert set(full) == {"customer_id", "entitlements", "agreements"}
    assert len(full["entitlements"]) == 12  # more than Kinde's default page of 10
    assert claims.id_token["org_billing"][0] == expected
    assert "billingDetails" not in claims.access_token
    assert compact["form"] == "compact" and compact["plans"] == ["pro"]
    assert compact["features"]["feat_11"] == [None, 11]
    assert reference == {
        "form": "reference",
        "v": compact["v"],
        "customer_id": world.org_customer,
        "plans": ["pro"],
    }


async def test_personal_sign_in_carries_billing_details_and_never_org_billing(
    services: Services, client: httpx.AsyncClient, world: BillingWorld
) -> None:
    claims = await services.workflows.run_tokens_generation(make_event(world.personal_user_id))
    expected = await expected_billing(client, services, world.personal_customer)
    (full, _compact, _reference) = claims.access_token["billingDetails"]
    assert full == {
        "customer_id": world.personal_customer,
        "user_billing": {"customer_id": world.personal_customer},
        "entitlements": expected["entitlements"],
        "agreements": expected["agreements"],
    }
    assert "org_billing" not in claims.access_token


async def test_member_without_personal_billing_gets_no_claim_on_personal_sign_in(
    services: Services, world: BillingWorld
) -> None:
    claims = await services.workflows.run_tokens_generation(make_event(world.member_id))
    assert claims.access_token == {} and claims.id_token == {}


async def test_organization_without_billing_customer_skips_and_logs_why(
    services: Services, world: BillingWorld
) -> None:
    claims = await services.workflows.run_tokens_generation(
        make_event(world.member_id, world.plain_org_code)
    )
    assert claims.access_token == {}
    assert services.workflows.run_log is not None
    await services.workflows.run_log.flush()
    async with services.db.connect() as conn:
        (run,), _ = await list_runs(conn, RunFilter(workflow_id="org_billing"))
    assert run.outcome.value == "succeeded"
    assert any("has no billing customer" in line["message"] for line in run.log_lines)


async def test_unknown_organization_is_a_logged_skip(
    services: Services, world: BillingWorld
) -> None:
    claims = await services.workflows.run_tokens_generation(
        make_event(world.member_id, "org_does_not_exist")
    )
    assert claims.access_token == {}


async def test_warm_cache_makes_no_call_and_an_agreement_change_shows_at_once(
    services: Services, client: httpx.AsyncClient, world: BillingWorld
) -> None:
    event = make_event(world.member_id, world.org_code)
    engine = services.workflows
    assert engine.billing_cache is not None
    await engine.run_tokens_generation(event)
    loads = engine.billing_cache.loads
    again = await engine.run_tokens_generation(event)
    assert engine.billing_cache.loads == loads
    assert again.access_token["org_billing"][0]["agreements"][0]["plan_code"] == "pro"

    headers = await management_client(client, services)
    changed = await client.post(
        "/api/v1/billing/agreements",
        json={"customer_id": world.org_customer, "plan_code": "basic"},
        headers=headers,
    )
    assert changed.status_code < 300, changed.text
    after = await engine.run_tokens_generation(event)
    assert engine.billing_cache.loads == loads + 1
    full = after.access_token["org_billing"][0]
    assert [a["plan_code"] for a in full["agreements"]] == ["basic"]
    assert [e["feature_code"] for e in full["entitlements"]] == ["feat_00"]


async def test_two_workers_sharing_redis_see_an_agreement_change_made_on_one(
    services: Services, client: httpx.AsyncClient, world: BillingWorld, settings: Settings
) -> None:
    prefix = f"test:{secrets.token_hex(6)}"
    other = build_services(settings)  # a second worker on the same database
    create_app(services=other)
    workers = [services, other]
    try:
        for worker in workers:
            cache = RedisBillingCache.from_url(REDIS_URL, ttl_seconds=60.0, prefix=prefix)
            worker.billing_changes.subscribe(cache.invalidate)
            worker.workflows.billing_cache = cache
        event = make_event(world.member_id, world.org_code)
        for worker in workers:
            await worker.workflows.run_tokens_generation(event)
        loads = [w.workflows.billing_cache.loads for w in workers]  # type: ignore[union-attr]
        assert sum(loads) == 1  # the second worker read the first one's value

        headers = await management_client(client, services)  # the write hits worker 1
        await client.post(
            "/api/v1/billing/agreements",
            json={"customer_id": world.org_customer, "plan_code": "basic"},
            headers=headers,
        )
        on_other = await other.workflows.run_tokens_generation(event)
        assert [a["plan_code"] for a in on_other.access_token["org_billing"][0]["agreements"]] == [
            "basic"
        ]
    finally:
        await other.close()
        redis = Redis.from_url(REDIS_URL)
        keys = [k async for k in redis.scan_iter(f"{prefix}:*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
