"""Prometheus metrics at ``/metrics``: what an operator graphs and alerts on.

Counters are process-wide, so each test reads them before and after what it does and checks
the difference, through the ``/metrics`` text a Prometheus server would scrape.
"""

from __future__ import annotations

from urllib.parse import parse_qs

import httpx
from fastapi import FastAPI
from hypothesis import example, given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from claimflow.cache import InProcessBillingCache, Loaded
from claimflow.observability.http_metrics import KNOWN_GRANTS, grant_label
from claimflow.services import Services
from tests.helpers import create_m2m_app, m2m_token, management_client
from tests.oidc.flow import PASSWORD, exchange, seed_business, sign_in_for_code, submit_login


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_token_requests_are_counted_by_grant_and_outcome_with_latency(
    client: httpx.AsyncClient, services: Services
) -> None:
    client_id, secret = await create_m2m_app(services)
    before = await scrape(client)
    await m2m_token(client, client_id, secret)
    refused = await client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": "no"},
    )
    assert refused.status_code == 401
    after = await scrape(client)
    grant = "client_credentials"
    issued = ("claimflow_token_requests_total", {"grant": grant, "outcome": "issued"})
    invalid = ("claimflow_token_requests_total", {"grant": grant, "outcome": "invalid_client"})
    for name, labels in (issued, invalid):
        assert value(after, name, **labels) - value(before, name, **labels) == 1
    timed = ("claimflow_token_request_seconds_count", {"grant": grant})
    assert value(after, timed[0], **timed[1]) - value(before, timed[0], **timed[1]) == 2


async def test_workflow_runs_are_counted_by_workflow_and_outcome_with_duration(
    client: httpx.AsyncClient, services: Services
) -> None:
    biz = await seed_business(services, require_organization=True)
    before = await scrape(client)
    for _ in range(2):
        result = await sign_in_for_code(client, biz, org_code=biz.org_code)
        response = await exchange(client, biz, result["code"])
        assert response.status_code == 200, response.text
    after = await scrape(client)
    labels = {"workflow": "org_billing", "outcome": "succeeded"}
    name = "claimflow_workflow_runs_total"
    assert value(after, name, **labels) - value(before, name, **labels) == 2
    name = "claimflow_workflow_run_seconds_count"
    assert (
        value(after, name, workflow="org_billing") - value(before, name, workflow="org_billing")
        == 2
    )
    # user_billing does not apply to an organization's sign-in: counted as skipped, not run
    for name in ("claimflow_workflow_runs_total", "claimflow_workflow_run_seconds_count"):
        runs = [
            v
            for (n, labels), v in after.items()
            if n == name and ("workflow", "user_billing") in labels
        ]
        before_runs = [
            v
            for (n, labels), v in before.items()
            if n == name and ("workflow", "user_billing") in labels
        ]
        assert sum(runs) == sum(before_runs)
    skips = "claimflow_workflow_skips_total"
    skipped = value(after, skips, workflow="user_billing") - value(
        before, skips, workflow="user_billing"
    )
    assert skipped == 2


async def test_billing_cache_hits_misses_loads_and_stale_serves_are_counted(
    client: httpx.AsyncClient,
) -> None:
    cache = InProcessBillingCache(ttl_seconds=0.0, serve_stale=True, stale_max_age_seconds=3600)
    fresh = InProcessBillingCache(ttl_seconds=3600.0, serve_stale=False, stale_max_age_seconds=0)
    source_up = True

    async def load() -> Loaded:
        if not source_up:
            raise ConnectionError("billing source down")
        return Loaded({"plan": "pro"}, frozenset({"customer_a"}))

    before = await scrape(client)
    assert await fresh.get_or_load("a", load) == {"plan": "pro"}  # miss, load
    assert await fresh.get_or_load("a", load) == {"plan": "pro"}  # hit
    assert await cache.get_or_load("a", load) == {"plan": "pro"}  # miss, load
    source_up = False
    assert await cache.get_or_load("a", load) == {"plan": "pro"}  # miss (expired), stale serve
    after = await scrape(client)

    def delta(event: str) -> float:
        name = "claimflow_billing_cache_total"
        return value(after, name, event=event) - value(before, name, event=event)

    assert (delta("hit"), delta("miss"), delta("load"), delta("stale_serve")) == (1, 3, 3, 1)


async def test_billing_cache_invalidations_are_counted(
    client: httpx.AsyncClient, services: Services
) -> None:
    before = await scrape(client)
    await services.billing_changes.publish(["customer_a", "customer_b"])
    after = await scrape(client)
    name = "claimflow_billing_cache_total"
    assert value(after, name, event="invalidation") - value(before, name, event="invalidation") == 2


async def test_management_api_requests_are_counted_by_route_template_and_status(
    client: httpx.AsyncClient, services: Services
) -> None:
    headers = await management_client(client, services)
    before = await scrape(client)
    assert (
        await client.get("/api/v1/organizations/org_nope/users", headers=headers)
    ).status_code == 404
    assert (await client.get("/api/v1/organizations")).status_code == 401
    after = await scrape(client)
    name = "claimflow_management_api_requests_total"
    template = {"method": "GET", "route": "/api/v1/organizations/{org_code}/users", "status": "404"}
    assert value(after, name, **template) - value(before, name, **template) == 1
    listing = {"method": "GET", "route": "/api/v1/organizations", "status": "401"}
    assert value(after, name, **listing) - value(before, name, **listing) == 1
    assert not any("org_nope" in str(labels) for _name, labels in after)


async def test_sign_in_failures_and_locks_are_counted(
    client: httpx.AsyncClient, services: Services, app: FastAPI
) -> None:
    biz = await seed_business(services)
    before = await scrape(client)
    for _ in range(services.settings.login_max_failures + 1):
        page = await client.get(
            "/oauth2/auth",
            params={
                "response_type": "code",
                "client_id": biz.web_client_id,
                "redirect_uri": "http://127.0.0.1:9/callback",
                "scope": "openid",
                "state": "s",
                "nonce": "n",
            },
        )
        await submit_login(client, page, biz.email, PASSWORD + "-wrong")
    after = await scrape(client)
    failures = value(after, "claimflow_sign_in_failures_total") - value(
        before, "claimflow_sign_in_failures_total"
    )
    locked = value(after, "claimflow_sign_in_locked_total") - value(
        before, "claimflow_sign_in_locked_total"
    )
    assert failures == services.settings.login_max_failures
    assert locked == 1


async def test_client_chosen_labels_cannot_grow_the_metrics_without_bound(
    client: httpx.AsyncClient,
) -> None:
    """Random grant types and methods all land in one ``other`` series each."""
    for n in range(5):
        await client.post("/oauth2/token", data={"grant_type": f"urn:attack:{n}"})
        await client.request(f"ATTACK{n}", "/api/v1/organizations")
    samples = await scrape(client)
    labels = {value for _name, pairs in samples for _key, value in pairs}
    assert not any("attack" in value.lower() for value in labels)
    assert (
        value(
            samples,
            "claimflow_token_requests_total",
            grant="other",
            outcome="unsupported_grant_type",
        )
        >= 5
    )


_FORM_TEXT = st.text(alphabet="grant_ype=&+%2F5a0client_credentials;é ", max_size=60)


@given(st.one_of(_FORM_TEXT, st.binary(max_size=60)))
@example("grant%5Ftype=refresh%5Ftoken")
@example("grant_type=&grant_type=authorization_code")
@example("grant+type=client_credentials&grant_type=x")
def test_the_grant_label_is_the_grant_type_parse_qs_reads(body: str | bytes) -> None:
    raw = body.encode("utf-8") if isinstance(body, str) else body
    values = parse_qs(raw.decode("latin-1")).get("grant_type")
    expected = "none" if not values else values[0] if values[0] in KNOWN_GRANTS else "other"
    assert grant_label(raw) == expected
