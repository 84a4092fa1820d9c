"""``api_rate_limit`` (``m2m:token_generation``) through the real token endpoint, in a runner:
an organization's API key carries the rate limit its plan prices, beside ``org_billing``; a plan
that does not price it gets the default; an application of no organization gets nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from claimflow.services import Services
from tests.management.catalogue import make_plan, ok
from tests.oidc.test_m2m_organizations import api_key, deploy, organization_on, token_claims

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "workflows"


@pytest.fixture
async def deployment(any_db_url: str) -> AsyncIterator[tuple[Services, httpx.AsyncClient]]:
    async for pair in deploy(
        any_db_url,
        workflows_dir=str(EXAMPLES),
        workflows_enabled=["org_billing", "user_billing", "org_billing_m2m", "api_rate_limit"],
        workflow_overrides={"api_rate_limit": {"time_limit_seconds": 30.0}},
    ):
        yield pair


async def test_an_api_key_carries_its_plans_rate_limit_and_follows_a_plan_change(
    deployment: tuple[Services, httpx.AsyncClient],
) -> None:
    _, api = deployment
    await make_plan(api, "scale", {"api_rate_limit": 600, "seats": 50})
    await make_plan(api, "starter", {"seats": 5})
    org_code, customer_id = await organization_on(api, "scale")
    client_id, secret = await api_key(api, org_code)

    claims = await token_claims(api, client_id, secret)
    assert claims["api_rate_limit"] == {"requests_per_minute": 600}
    assert claims["org_code"] == org_code and "org_billing" in claims

    await ok(
        await api.post(
            "/api/v1/billing/agreements", json={"customer_id": customer_id, "plan_code": "starter"}
        )
    )
    assert (await token_claims(api, client_id, secret))["api_rate_limit"] == {
        "requests_per_minute": 60
    }

    plain_id, plain_secret = await api_key(api, None)
    assert "api_rate_limit" not in await token_claims(api, plain_id, plain_secret)
