"""Fixtures of the Account API tests: a business whose organization and user pay for plans.

The signed-in user is the OIDC tests' Alice (``tests/oidc/flow.py``); her organization Acme is
on a plan with more features than one page holds, and she has a personal plan of her own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from claimflow.app import create_app
from claimflow.domain import FeatureKind
from claimflow.services import Services
from claimflow.settings import Settings
from claimflow.store import billing
from claimflow.store.billing import PriceInput
from tests.conftest import make_settings
from tests.helpers import free_port, serving
from tests.oidc.flow import Business, exchange, seed_business, sign_in_for_code

ORG_FEATURES = [f"feature_{i:02d}" for i in range(12)]
"""Twelve features: more than the default page of ten, as design §7 ("All pages") warns."""


@dataclass(frozen=True)
class PayingBusiness:
    biz: Business
    org_customer_id: str
    personal_customer_id: str


async def seed_paying_business(services: Services) -> PayingBusiness:
    biz = await seed_business(services)
    async with services.db.transaction() as conn:
        for code in [*ORG_FEATURES, "personal_storage"]:
            await billing.create_feature(conn, code=code, name=code.title(), kind=FeatureKind.LIMIT)
        await billing.create_plan(
            conn,
            code="team",
            name="Team",
            prices=[
                PriceInput(code, f"Team {code}", fixed_charge=0, entitlement_limit_max=i + 1)
                for i, code in enumerate(ORG_FEATURES)
            ],
        )
        await billing.create_plan(
            conn,
            code="solo",
            name="Solo",
            prices=[PriceInput("personal_storage", "Solo storage", unit_amount=300)],
        )
        org_customer = await billing.create_customer(conn, org_code=biz.org_code)
        await billing.create_agreement(conn, customer_id=org_customer.id, plan_code="team")
        personal = await billing.create_customer(conn, user_id=biz.user_id)
        await billing.create_agreement(conn, customer_id=personal.id, plan_code="solo")
    return PayingBusiness(biz, org_customer.id, personal.id)


async def user_access_token(
    client: httpx.AsyncClient, biz: Business, org_code: str | None = None
) -> str:
    """Alice's access token from a real sign-in (login form, code, token endpoint)."""
    extra = {"org_code": org_code} if org_code else {}
    code = (await sign_in_for_code(client, biz, **extra))["code"]
    response = await exchange(client, biz, code)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


@dataclass(frozen=True)
class LiveServer:
    issuer: str
    settings: Settings


@pytest.fixture
def live_server(db_url: str) -> Iterator[LiveServer]:
    """claimflow in uvicorn on loopback; a generous workflow time limit for a loaded machine."""
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    settings = make_settings(db_url, issuer=issuer, workflow_time_limit_seconds=30.0)
    with serving(create_app(settings=settings), port):
        yield LiveServer(issuer, settings)


@pytest.fixture
def settings(db_url: str) -> Settings:
    """The suite's settings with a workflow time limit a loaded test machine cannot exceed."""
    return make_settings(db_url, workflow_time_limit_seconds=30.0)
