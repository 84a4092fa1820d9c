"""Scale-out: ``claimflow serve --workers 2`` on PostgreSQL and Redis behaves as one service.

A real deployment in miniature: a fresh PostgreSQL database with the demo business imported by
the CLI, Redis for the billing cache, two uvicorn worker processes behind one port. Which worker
serves a request is read from the kernel (the worker process that holds the accepted socket), so
the test can pin an HTTP keep-alive connection to each worker and show that:

- an M2M token issued by one worker is accepted by both, over many requests;
- after ``claimflow keys rotate`` (run while the server is up) tokens signed before and after the
  rotation verify on every worker, and both workers publish the new key;
- a plan change made through worker B reaches the ``org_billing`` claim that worker A issues
  next (the billing cache and its invalidation live in Redis, not in one worker's memory).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from claimflow.services import build_services
from tests.conftest import make_settings
from tests.servers import (
    ACME,
    ACME_CUSTOMER,
    M2M,
    SECRET_KEY,
    PinnedConnections,
    claimflow,
    demo_for_this_run,
    fresh_pg_database,
    m2m_token,
    running_server,
    server_environment,
    sign_in,
)

REDIS_URL = os.environ.get("CLAIMFLOW_TEST_REDIS", "redis://127.0.0.1:6379/13")


@pytest.fixture
def environment(tmp_path: Path) -> Iterator[dict[str, str]]:
    with fresh_pg_database() as database_url:
        yield server_environment(database_url, REDIS_URL)


@pytest.fixture
def two_workers(environment: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, set[int]]]:
    claimflow(environment, tmp_path, "import", str(demo_for_this_run(tmp_path)))
    with running_server(environment, tmp_path) as (base_url, workers, _server):
        yield base_url, workers


def test_two_workers_share_tokens_keys_and_billing_cache(
    two_workers: tuple[str, set[int]], environment: dict[str, str], tmp_path: Path
) -> None:
    base_url, workers = two_workers
    port = int(base_url.rsplit(":", 1)[1])
    pinned = PinnedConnections(base_url, port, workers)
    pid_a, pid_b = sorted(workers)

    def on(pid: int, response: httpx.Response) -> httpx.Response:
        assert pinned.served_by(response) == pid
        return response

    # An M2M token from worker A works on both, across many requests on fresh connections too.
    token = m2m_token(pinned.to(pid_a), base_url)
    headers = {"Authorization": f"Bearer {token}"}
    served_by = set()
    for _ in range(40):
        with httpx.Client(base_url=base_url) as fresh:
            response = fresh.get("/api/v1/organizations", headers=headers)
            assert response.status_code == 200, response.text
            served_by.add(pinned.served_by(response))
    assert served_by == workers
    for pid in (pid_a, pid_b):
        assert on(pid, pinned.to(pid).get("/api/v1/organizations", headers=headers)).is_success

    # Rotate the signing key through the CLI while both workers run.
    old_kid = jwt.get_unverified_header(token)["kid"]
    output = claimflow(environment, tmp_path, "keys", "rotate")
    new_kid = output.split("new active key ")[1].split()[0]
    assert new_kid != old_kid
    signed_after = asyncio.run(_sign_with_current_key(environment, base_url))
    assert jwt.get_unverified_header(signed_after)["kid"] == new_kid
    for pid in (pid_a, pid_b):
        for bearer in (token, signed_after):
            response = pinned.to(pid).get(
                "/api/v1/organizations", headers={"Authorization": f"Bearer {bearer}"}
            )
            assert on(pid, response).status_code == 200, response.text
        jwks = on(pid, pinned.to(pid).get("/.well-known/jwks.json")).json()
        assert {old_kid, new_kid} <= {k["kid"] for k in jwks["keys"]}

    # Billing: worker A caches Acme's billing in Redis; a plan change through worker B must
    # show in the next token worker A issues.
    claims, issued = sign_in(pinned.to(pid_a), ACME)
    on(pid_a, issued)
    assert [a["plan_code"] for a in claims["org_billing"]["agreements"]] == ["pro"]
    changed = pinned.to(pid_b).post(
        "/api/v1/billing/agreements",
        json={"customer_id": ACME_CUSTOMER, "plan_code": "enterprise"},
        headers=headers,
    )
    assert on(pid_b, changed).status_code == 200, changed.text
    claims, issued = sign_in(pinned.to(pid_a), ACME)
    on(pid_a, issued)
    assert [a["plan_code"] for a in claims["org_billing"]["agreements"]] == ["enterprise"]
    assert "sso" in {e["feature_code"] for e in claims["org_billing"]["entitlements"]}
    pinned.close()


async def _sign_with_current_key(environment: dict[str, str], issuer: str) -> str:
    """A token signed by the key that is active in the shared database now (KeyManager)."""
    services = build_services(
        make_settings(environment["CLAIMFLOW_DATABASE_URL"], secret_key=SECRET_KEY, issuer=issuer)
    )
    try:
        now = int(time.time())
        claims = {
            "iss": issuer,
            "sub": M2M[0],
            "aud": [issuer + "/api"],
            "azp": M2M[0],
            "client_id": M2M[0],
            "iat": now,
            "exp": now + 300,
            "jti": secrets.token_hex(8),
            "gty": ["client_credentials"],
            "scp": ["read:organizations"],
        }
        return await services.keys.sign(claims, typ="at+jwt")
    finally:
        await services.close()


def _token_requests_issued(metrics_text: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
        if sample.name == "claimflow_token_requests_total"
        and sample.labels == {"grant": "client_credentials", "outcome": "issued"}
    )


def test_metrics_of_any_worker_count_the_requests_of_every_worker(
    two_workers: tuple[str, set[int]],
) -> None:
    """``serve --workers 2`` runs prometheus_client in multiprocess mode: a scrape is the server."""
    base_url, workers = two_workers
    pinned = PinnedConnections(base_url, int(base_url.rsplit(":", 1)[1]), workers)
    pid_a, pid_b = sorted(workers)
    for _ in range(3):
        m2m_token(pinned.to(pid_a), base_url)
    for pid in (pid_b, pid_a):
        scrape = pinned.to(pid).get("/metrics")
        assert pinned.served_by(scrape) == pid
        assert _token_requests_issued(scrape.text) == 3, scrape.text
    pinned.close()


def test_narrowed_application_old_token_is_refused_by_the_other_worker_at_once(
    two_workers: tuple[str, set[int]],
) -> None:
    """Narrow an application through worker A; its old token writes nothing through worker B.

    Each request reads the application's current grants from PostgreSQL, so no worker keeps a
    stale copy: the very next request on the other worker sees the narrowing, and the deletion.
    """
    base_url, workers = two_workers
    pinned = PinnedConnections(base_url, int(base_url.rsplit(":", 1)[1]), workers)
    pid_a, pid_b = sorted(workers)
    admin = {"Authorization": f"Bearer {m2m_token(pinned.to(pid_a), base_url)}"}

    created = pinned.to(pid_a).post(
        "/api/v1/applications",
        json={
            "name": "narrowed",
            "type": "m2m",
            "scopes": ["read:organizations", "create:organizations"],
        },
        headers=admin,
    )
    assert created.status_code == 201, created.text
    app = created.json()["application"]
    issued = pinned.to(pid_b).post(
        "/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
            "audience": base_url + "/api",
        },
    )
    old = {"Authorization": f"Bearer {issued.json()['access_token']}"}
    wrote = pinned.to(pid_b).post("/api/v1/organization", json={"name": "Before"}, headers=old)
    assert wrote.status_code == 200, wrote.text

    narrowed = pinned.to(pid_a).patch(
        f"/api/v1/applications/{app['client_id']}",
        json={"scopes": ["read:organizations"]},
        headers=admin,
    )
    assert pinned.served_by(narrowed) == pid_a and narrowed.status_code == 200, narrowed.text
    attack = pinned.to(pid_b).post("/api/v1/organization", json={"name": "After"}, headers=old)
    assert pinned.served_by(attack) == pid_b
    assert attack.status_code == 403, "worker B let the narrowed token write"
    assert pinned.to(pid_b).get("/api/v1/organizations", headers=old).status_code == 200

    deleted = pinned.to(pid_a).delete(f"/api/v1/applications/{app['client_id']}", headers=admin)
    assert pinned.served_by(deleted) == pid_a and deleted.status_code == 200, deleted.text
    refused = pinned.to(pid_b).get("/api/v1/organizations", headers=old)
    assert pinned.served_by(refused) == pid_b
    assert refused.status_code == 401, "worker B still accepts a deleted application's token"
    pinned.close()


def test_an_organization_api_key_follows_a_plan_change_made_on_the_other_worker(
    two_workers: tuple[str, set[int]],
) -> None:
    """An organization's M2M token (its billing version read with its client authentication)
    carries the plan a change through the other worker set, both ways."""
    base_url, workers = two_workers
    port = int(base_url.rsplit(":", 1)[1])
    pinned = PinnedConnections(base_url, port, workers)
    pid_a, pid_b = sorted(workers)
    headers = {"Authorization": f"Bearer {m2m_token(pinned.to(pid_a), base_url)}"}
    created = pinned.to(pid_b).post(
        "/api/v1/applications",
        json={"name": "Acme API key", "type": "m2m", "org_code": ACME},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    key = created.json()["application"]

    def plans_in_token(pid: int) -> list[str]:
        response = pinned.to(pid).post(
            "/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": key["client_id"],
                "client_secret": key["client_secret"],
            },
        )
        assert response.status_code == 200, response.text
        assert pinned.served_by(response) == pid
        claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
        assert claims["org_code"] == ACME
        return [a["plan_code"] for a in claims["org_billing"]["agreements"]]

    assert plans_in_token(pid_a) == plans_in_token(pid_b) == ["pro"]
    for changer, issuer, plan in ((pid_b, pid_a, "enterprise"), (pid_a, pid_b, "free")):
        changed = pinned.to(changer).post(
            "/api/v1/billing/agreements",
            json={"customer_id": ACME_CUSTOMER, "plan_code": plan},
            headers=headers,
        )
        assert changed.status_code == 200, changed.text
        assert plans_in_token(issuer) == [plan]
    pinned.close()
