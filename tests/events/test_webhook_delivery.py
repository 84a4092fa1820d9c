"""Webhooks as Kinde sends them: the outbox, the JWT, retries, a receiver down, leases.

A real receiver listens on loopback; the delivery loop's clock is moved by the test, so back-off
is checked without sleeping. Every payload is verified against claimflow's JWKS.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest

from claimflow.events.delivery import RetryPolicy, WebhookDelivery
from claimflow.services import Services, build_services
from claimflow.store import Database
from claimflow.store import webhooks as store
from tests.conftest import make_settings
from tests.events.conftest import Clock, Receiver
from tests.helpers import serving
from tests.management.catalogue import ok


async def subscribe(api: httpx.AsyncClient, url: str, *types: str) -> str:
    body = {
        "endpoint": url,
        "name": "receiver",
        "event_types": list(types or ["organization.created"]),
    }
    created = await ok(await api.post("/api/v1/webhooks", json=body))
    webhook_id: str = created["webhook"]["id"]
    return webhook_id


async def verified(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    """The payload, verified against claimflow's published JWKS as a receiver would."""
    jwks = jwt.PyJWKSet.from_dict((await client.get("/.well-known/jwks.json")).json())
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwks.keys if k.key_id == kid)
    claims: dict[str, Any] = jwt.decode(token, key.key, algorithms=[key.algorithm_name])
    return claims


def delivery(services: Services, clock: Clock, worker: str = "worker_a") -> WebhookDelivery:
    return WebhookDelivery(
        services.db,
        services.keys,
        services.issuer,
        retry=RetryPolicy(base_seconds=5, max_seconds=60, max_attempts=4),
        clock=clock,
        worker=worker,
        lease_seconds=30,
    )


async def test_an_organization_created_arrives_as_a_jwt_verifiable_against_the_jwks(
    client: httpx.AsyncClient, api: httpx.AsyncClient, services: Services, receiver: Receiver
) -> None:
    await subscribe(api, receiver.url)
    org = await ok(await api.post("/api/v1/organization", json={"name": "Acme"}))
    code = org["organization"]["code"]
    assert await delivery(services, Clock()).run_once() == 1
    [(content_type, token)] = receiver.received
    assert content_type == "application/jwt"
    claims = await verified(client, token)
    assert claims["type"] == "organization.created" and claims["source"] == "api"
    assert claims["data"]["organization"]["code"] == code
    assert claims["timestamp"].endswith("Z")
    event = await ok(await api.get(f"/api/v1/events/{claims['event_id']}"))
    assert event["event"]["data"] == claims["data"]


async def test_a_receiver_answering_500_gets_retries_with_growing_back_off(
    api: httpx.AsyncClient, services: Services, receiver: Receiver
) -> None:
    await subscribe(api, receiver.url)
    receiver.statuses = [500, 500]
    await ok(await api.post("/api/v1/organization", json={"name": "Acme"}))
    clock = Clock()
    worker = delivery(services, clock)
    assert await worker.run_once() == 1  # 500
    assert await worker.run_once() == 0  # not due before the back-off
    clock.advance(5)
    assert await worker.run_once() == 1  # 500 again; next back-off is 10 s
    clock.advance(9)
    assert await worker.run_once() == 0
    clock.advance(1)
    assert await worker.run_once() == 1  # 200
    clock.advance(3600)
    assert await worker.run_once() == 0  # acknowledged: never sent again
    event_ids = {
        jwt.decode(t, options={"verify_signature": False})["event_id"] for _, t in receiver.received
    }
    assert len(receiver.received) == 3 and len(event_ids) == 1
    async with services.db.connect() as conn:
        assert await store.attempts_of_event(conn, event_ids.pop()) == [
            (500, "worker_a"),
            (500, "worker_a"),
            (200, "worker_a"),
        ]


async def test_a_receiver_down_for_a_while_gets_the_event_once_it_is_back(
    api: httpx.AsyncClient, services: Services, receiver_port: int
) -> None:
    down = Receiver(receiver_port)
    await subscribe(api, down.url, "user.created")
    user = await ok(await api.post("/api/v1/user", json={"profile": {"given_name": "Ada"}}))
    clock = Clock()
    worker = delivery(services, clock)
    assert await worker.run_once() == 1  # connection refused
    clock.advance(5)
    assert await worker.run_once() == 1  # still down
    with serving(down.app(), receiver_port):
        clock.advance(10)
        assert await worker.run_once() == 1
    [(_, token)] = down.received
    assert (
        jwt.decode(token, options={"verify_signature": False})["data"]["user"]["id"] == user["id"]
    )


async def test_a_receiver_that_never_answers_2xx_is_given_up_after_max_attempts(
    api: httpx.AsyncClient, services: Services, receiver: Receiver
) -> None:
    await subscribe(api, receiver.url)
    receiver.statuses = [503] * 10
    await ok(await api.post("/api/v1/organization", json={"name": "Acme"}))
    clock = Clock()
    worker = delivery(services, clock)
    for _ in range(6):
        await worker.run_once()
        clock.advance(120)
    assert len(receiver.received) == 4
    event_id = jwt.decode(receiver.received[0][1], options={"verify_signature": False})["event_id"]
    async with services.db.connect() as conn:
        [state] = await store.deliveries_of_event(conn, event_id)
    assert (state.status, state.attempts) == ("failed", 4)


async def test_a_leased_delivery_is_not_sent_by_another_worker_until_the_lease_expires(
    api: httpx.AsyncClient, services: Services, receiver: Receiver
) -> None:
    """Worker A leases the delivery and dies before sending; B waits out the lease, then sends."""
    await subscribe(api, receiver.url)
    await ok(await api.post("/api/v1/organization", json={"name": "Acme"}))
    clock = Clock()
    async with services.db.transaction() as conn:
        [held] = await store.claim_due(
            conn, worker="worker_dead", now=clock(), lease=delivery(services, clock).lease, limit=5
        )
    survivor = delivery(services, clock, worker="worker_b")
    assert await survivor.run_once() == 0 and receiver.received == []
    clock.advance(31)
    assert await survivor.run_once() == 1 and len(receiver.received) == 1
    async with services.db.transaction() as conn:  # the dead worker's late report changes nothing
        await store.finish_attempt(
            conn,
            held,
            worker="worker_dead",
            now=clock(),
            status_code=500,
            error="late",
            retry_at=clock(),
        )
        assert await store.attempts_of_event(conn, held.event.id) == [(200, "worker_b")]


async def test_deliveries_survive_a_restart(
    db_url: str, api: httpx.AsyncClient, services: Services, receiver: Receiver
) -> None:
    """Events written before a restart are delivered by the new process's loop."""
    await subscribe(api, receiver.url)
    await ok(await api.post("/api/v1/organization", json={"name": "Acme"}))
    restarted = build_services(make_settings(db_url))
    try:
        assert await delivery(restarted, Clock()).run_once() == 1
    finally:
        await restarted.close()
    assert len(receiver.received) == 1


async def test_a_failed_change_writes_no_event(
    api: httpx.AsyncClient, services: Services, receiver: Receiver
) -> None:
    await subscribe(api, receiver.url)
    await ok(await api.post("/api/v1/organization", json={"name": "A", "handle": "acme"}))
    refused = await api.post("/api/v1/organization", json={"name": "B", "handle": "acme"})
    assert refused.status_code == 409
    assert await delivery(services, Clock()).run_once() == 1
    assert len(receiver.received) == 1


async def test_two_workers_on_postgresql_never_send_the_same_event_twice(
    pg_url: str, receiver: Receiver
) -> None:
    """Two loops with their own connection pools drain one outbox in parallel (SKIP LOCKED)."""
    services = build_services(make_settings(pg_url))
    try:
        async with services.db.transaction() as conn:
            await store.create_webhook(
                conn, name="r", endpoint=receiver.url, event_types=["organization.deleted"]
            )
            for i in range(40):
                await store.record_event(
                    conn, "organization.deleted", {"organization": {"code": f"org_{i}"}}
                )
        await services.keys.ensure_active_key()
        second_db = Database(pg_url)
        clock = Clock()
        workers = [
            WebhookDelivery(
                services.db, services.keys, services.issuer, clock=clock, worker="w1", batch_size=3
            ),
            WebhookDelivery(
                second_db, services.keys, services.issuer, clock=clock, worker="w2", batch_size=3
            ),
        ]

        async def drain(worker: WebhookDelivery) -> int:
            sent = 0
            while attempted := await worker.run_once():
                sent += attempted
            return sent

        counts = await asyncio.gather(*(drain(w) for w in workers))
        await second_db.dispose()
    finally:
        await services.close()
    codes = [
        jwt.decode(t, options={"verify_signature": False})["data"]["organization"]["code"]
        for _, t in receiver.received
    ]
    assert sorted(codes) == sorted(f"org_{i}" for i in range(40))
    assert sum(counts) == 40


@pytest.mark.parametrize(
    "endpoint", ["ftp://127.0.0.1/x", "http://user:pw@127.0.0.1/x", "not a url"]
)
async def test_a_webhook_endpoint_must_be_an_http_url(
    api: httpx.AsyncClient, endpoint: str
) -> None:
    response = await api.post(
        "/api/v1/webhooks",
        json={"endpoint": endpoint, "name": "x", "event_types": ["user.created"]},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "INVALID_REQUEST"


async def test_a_second_worker_never_claims_a_delivery_another_worker_is_claiming(
    pg_url: str,
) -> None:
    """Worker A has leased every due delivery but not committed yet; worker B claims meanwhile.

    B must come back with nothing, whether it looks before A commits (the rows are locked:
    SKIP LOCKED passes them by) or after (they are leased). Without the row lock B would wait for
    A's commit and then lease the same rows again.
    """
    services = build_services(make_settings(pg_url))
    lease = timedelta(seconds=30)
    try:
        async with services.db.transaction() as conn:
            await store.create_webhook(
                conn, name="r", endpoint="http://127.0.0.1:9/x", event_types=["user.deleted"]
            )
            for i in range(5):
                await store.record_event(conn, "user.deleted", {"user": {"id": f"kp_{i}"}})
        clock = Clock()
        async with services.db.transaction() as first:
            claimed_by_a = await store.claim_due(
                first, worker="a", now=clock(), lease=lease, limit=10
            )

            async def claim_b() -> list[store.DueDelivery]:
                async with services.db.transaction() as conn:
                    return await store.claim_due(
                        conn, worker="b", now=clock(), lease=lease, limit=10
                    )

            second = asyncio.create_task(claim_b())
            while not second.done():  # until B has answered, or is blocked on A's row locks
                async with services.db.connect() as probe:
                    waiting = (
                        await probe.exec_driver_sql(
                            "SELECT count(*) FROM pg_stat_activity "
                            "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                        )
                    ).scalar_one()
                if waiting:
                    break
                await asyncio.sleep(0.01)
        claimed_by_b = await second
    finally:
        await services.close()
    assert len(claimed_by_a) == 5
    assert claimed_by_b == []
