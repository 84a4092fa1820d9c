"""No stale plans across workers (design §9): once a billing change has answered 2xx, no token
any worker issues afterwards carries the old billing.

Two real ``claimflow serve --workers 2`` processes on PostgreSQL, in the three configurations a
deployment can be in: without Redis (each worker caches in its own memory), with Redis, and with
Redis paused (``SIGSTOP`` on a private ``redis-server``) while the change is made and tokens are
issued. Both workers have the old plan cached before each change; the change goes through one
worker and the next sign-ins on both must carry the new billing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import (
    ACME,
    ACME_CUSTOMER,
    PinnedConnections,
    PrivateRedis,
    claimflow,
    demo_for_this_run,
    fresh_pg_database,
    m2m_token,
    running_server,
    server_environment,
    sign_in,
)

CONFIGURATIONS = ["postgresql", "postgresql+redis", "redis_paused"]


def plans_of(claims: dict[str, Any]) -> list[str]:
    return [a["plan_code"] for a in claims["org_billing"]["agreements"]]


def seat_limit(claims: dict[str, Any]) -> int | None:
    seats = [e for e in claims["org_billing"]["entitlements"] if e["feature_code"] == "seats"]
    limit: int | None = seats[0].get("entitlement_limit_max")
    return limit


@pytest.fixture
def redis(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PrivateRedis | None]:
    if request.param == "postgresql":
        yield None
        return
    private = PrivateRedis(tmp_path)
    private.start()
    try:
        yield private
    finally:
        private.stop()


@pytest.mark.parametrize("redis", CONFIGURATIONS, indirect=True)
def test_no_worker_issues_the_old_plan_after_a_change_answered(
    redis: PrivateRedis | None, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    paused = request.node.callspec.params["redis"] == "redis_paused"
    with fresh_pg_database() as database_url:
        env = server_environment(database_url, None if redis is None else redis.url)
        claimflow(env, tmp_path, "import", str(demo_for_this_run(tmp_path)))
        with running_server(env, tmp_path) as (base_url, workers, _server):
            port = int(base_url.rsplit(":", 1)[1])
            pinned = PinnedConnections(base_url, port, workers)
            pid_a, pid_b = sorted(workers)
            api = {"Authorization": f"Bearer {m2m_token(pinned.to(pid_a), base_url)}"}

            def sign_in_on(pid: int) -> dict[str, Any]:
                claims, response = sign_in(pinned.to(pid), ACME)
                assert pinned.served_by(response) == pid
                return claims

            def warm_both() -> None:
                for pid in (pid_a, pid_b, pid_a, pid_b):
                    sign_in_on(pid)

            warm_both()
            assert plans_of(sign_in_on(pid_a)) == plans_of(sign_in_on(pid_b)) == ["pro"]
            if paused:
                assert redis is not None
                redis.pause()

            # A plan change through worker B: both workers' next tokens carry the new plan.
            changed = pinned.to(pid_b).post(
                "/api/v1/billing/agreements",
                json={"customer_id": ACME_CUSTOMER, "plan_code": "enterprise"},
                headers=api,
            )
            assert changed.status_code == 200, changed.text
            for pid in (pid_a, pid_b, pid_a, pid_b):
                assert plans_of(sign_in_on(pid)) == ["enterprise"]

            # A price change of the plan through worker A (both workers hold the old limits).
            warm_both()
            assert seat_limit(sign_in_on(pid_b)) is None
            repriced = pinned.to(pid_a).patch(
                "/api/v1/billing/plans/enterprise",
                json={
                    "prices": [
                        {
                            "feature_code": "seats",
                            "price_name": "Enterprise seats",
                            "unit_amount": 2500,
                            "entitlement_limit_max": 500,
                        }
                    ]
                },
                headers=api,
            )
            assert repriced.status_code == 200, repriced.text
            for pid in (pid_b, pid_a, pid_b, pid_a):
                assert seat_limit(sign_in_on(pid)) == 500

            if paused:
                # Redis comes back holding entries cached before both changes: never served.
                assert redis is not None
                redis.resume()
                for pid in (pid_a, pid_b, pid_a, pid_b):
                    claims = sign_in_on(pid)
                    assert plans_of(claims) == ["enterprise"]
                    assert seat_limit(claims) == 500
            pinned.close()
