"""The README's example workflow (``examples/workflows/support_tier.py``) runs as documented."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from claimflow.app import create_app
from claimflow.oidc.workflow_events import tokens_generation_event
from claimflow.services import Services, build_services
from claimflow.workflows.event import TokensGenerationEvent
from tests.conftest import ISSUER, make_settings
from tests.helpers import management_client

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "workflows"


def _sign_in(org_code: str | None) -> TokensGenerationEvent:
    return tokens_generation_event(
        issuer=ISSUER, user_id="kp_example", client_id="app_example", org_code=org_code
    )


@pytest.fixture
async def example_services(db_url: str) -> AsyncIterator[Services]:
    settings = make_settings(
        db_url,
        workflows_dir=str(EXAMPLES),
        workflows_enabled=["org_billing", "support_tier"],
        # The example's own 0.5 s limit is for production; a loaded test machine needs more.
        workflow_overrides={"support_tier": {"time_limit_seconds": 30.0}},
    )
    services = build_services(settings)
    await services.workflows.warm_up()  # the app's lifespan does this at start-up
    yield services
    await services.close()


async def test_support_tier_comes_from_an_environment_variable(example_services: Services) -> None:
    app = create_app(services=example_services)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER) as client:
        headers = await management_client(client, example_services)
        created = await client.post(
            "/api/v1/environment_variables",
            json={"key": "SUPPORT_TIER_ORG_ACME", "value": "premium", "is_secret": False},
            headers=headers,
        )
        assert created.status_code == 201, created.text

        claims = await example_services.workflows.run_tokens_generation(_sign_in("org_acme"))
        assert claims.access_token["support_tier"] == ("premium",)
        assert "support_tier" not in claims.id_token

        other = await example_services.workflows.run_tokens_generation(_sign_in("org_other"))
        assert other.access_token["support_tier"] == ("standard",)

        personal = await example_services.workflows.run_tokens_generation(_sign_in(None))
        assert "support_tier" not in personal.access_token
