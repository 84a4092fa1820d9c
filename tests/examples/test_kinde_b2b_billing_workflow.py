"""A user-written org billing workflow (``examples/workflows/kinde_b2b_billing.py``) offers the
claim's compact and reference forms through ``claimflow.claims``: its token fits the size budget
for a 200-feature plan, and the billing-details endpoint serves the full form it set."""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import jwt
import pytest

from claimflow.app import create_app
from claimflow.claims import content_version, parse_billing_claim
from claimflow.services import Services, build_services
from claimflow.store import organizations
from claimflow.workflows import Bindings, TokensGenerationEvent
from claimflow.workflows.definition import Workflow
from claimflow.workflows.registry import WorkflowRegistry
from tests.conftest import ISSUER, make_settings
from tests.oidc.flow import Business, exchange, seed_business, sign_in_for_code
from tests.workflows.conftest import build_world

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "workflows"
BUDGET = 4096


def example_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "kinde_b2b_billing_example", EXAMPLES / "kinde_b2b_billing.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Deployment:
    services: Services
    client: httpx.AsyncClient
    biz: Business
    org_code: str
    customer_id: str


async def deploy(db_url: str, features: int) -> AsyncIterator[Deployment]:
    """The example enabled instead of the built-in ``org_billing``, on a ``features`` plan."""
    services = build_services(
        make_settings(
            db_url,
            workflows_dir=str(EXAMPLES),
            workflows_enabled=["kinde_b2b_billing"],
            access_token_max_bytes=BUDGET,
            workflow_time_limit_seconds=30.0,
        )
    )
    try:
        await services.workflows.warm_up()  # the app's lifespan does this at start-up
        biz = await seed_business(services)
        world = await build_world(services, features=features)
        async with services.db.transaction() as conn:
            await organizations.add_member(conn, world.org_code, biz.user_id)
        transport = httpx.ASGITransport(app=create_app(services=services))
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
            yield Deployment(services, client, biz, world.org_code, world.org_customer)
    finally:
        await services.close()


@pytest.fixture
async def large_plan(db_url: str) -> AsyncIterator[Deployment]:
    async for deployment in deploy(db_url, features=200):
        yield deployment


@pytest.fixture
async def twelve_features(db_url: str) -> AsyncIterator[Deployment]:
    async for deployment in deploy(db_url, features=12):
        yield deployment


async def tokens_for(deployment: Deployment) -> httpx.Response:
    callback = await sign_in_for_code(
        deployment.client, deployment.biz, org_code=deployment.org_code
    )
    return await exchange(deployment.client, deployment.biz, callback["code"])


def decoded(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


async def test_a_faithful_port_without_fallbacks_is_too_large_at_twelve_features(
    twelve_features: Deployment,
) -> None:
    """What the public forms fix: the full claim alone does not fit a 4 KB token."""
    example = example_module()

    async def full_form_only(event: TokensGenerationEvent, bindings: Bindings) -> None:
        assert event.context.organization is not None
        full = await example.load_org_billing(bindings, event.context.organization.code)
        bindings.access_token.set_custom_claim("org_billing", full)
        bindings.id_token.set_custom_claim("org_billing", full)

    # A closure cannot be sent to a runner: this variant of the port runs in-process.
    port = Workflow(
        example.workflow_settings, full_form_only, "test: the port as Kinde wrote it", trusted=True
    )
    twelve_features.services.workflows.registry = WorkflowRegistry([port], [port.id])
    response = await tokens_for(twelve_features)
    assert response.status_code == 503
    assert response.json()["error"] == "token_too_large"


async def test_the_port_with_the_public_forms_fits_a_200_feature_plan(
    large_plan: Deployment,
) -> None:
    response = await tokens_for(large_plan)
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["access_token"]) <= BUDGET
    claim = decoded(body["access_token"])["org_billing"]
    assert claim["form"] == "reference"  # 200 features do not fit even in the compact form
    assert claim["customer_id"] == large_plan.customer_id and claim["plans"] == ["pro"]

    full = await large_plan.client.get(
        f"/oauth2/billing/{large_plan.customer_id}",
        headers={"Authorization": f"Bearer {body['access_token']}"},
    )
    assert full.status_code == 200, full.text
    assert full.headers["etag"] == f'"{claim["v"]}"' == f'"{content_version(full.json())}"'
    resolved = parse_billing_claim(full.json())
    assert len(resolved.features or {}) == 200
    assert resolved.limit_of("feat_199") is not None
