"""The token endpoint's seam to the workflow engine (design §3): custom claims, failures, deny.

A ``WorkflowEngine`` subclass stands in for the engine here because the point is the contract
the token endpoint keeps with *any* engine: what it sends (the event) and what it does with each
possible answer. The engine's own behaviour is tested under ``tests/workflows``.
"""

from __future__ import annotations

from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import select

from claimflow.errors import WorkflowAccessDenied, WorkflowError
from claimflow.services import Services
from claimflow.store import tables as t
from claimflow.workflows.engine import TokenCustomClaims, WorkflowEngine
from claimflow.workflows.event import AuthOrigin, TokensGenerationEvent
from tests.oidc.flow import Business, exchange, seed_business, sign_in_for_code


class ScriptedEngine(WorkflowEngine):
    """Answers with claims, a failure or a denial, and records every event it was sent."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[TokensGenerationEvent] = []
        self.claims = TokenCustomClaims()
        self.failure: WorkflowError | None = None

    async def run_tokens_generation(self, event: TokensGenerationEvent) -> TokenCustomClaims:
        self.events.append(event)
        if self.failure is not None:
            raise self.failure
        return self.claims


@pytest.fixture
def engine(services: Services) -> ScriptedEngine:
    scripted = ScriptedEngine()
    services.workflows = scripted
    return scripted


@pytest.fixture
async def biz(services: Services) -> Business:
    return await seed_business(services)


def decode(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


async def refresh(client: httpx.AsyncClient, biz: Business, token: str) -> httpx.Response:
    return await client.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": token},
        auth=(biz.web_client_id, biz.web_secret),
        headers={"User-Agent": "seam-test/1.0"},
    )


async def test_custom_claims_land_in_both_tokens_and_base_claims_win(
    client: httpx.AsyncClient, biz: Business, engine: ScriptedEngine
) -> None:
    billing = {"customer_id": "customer_1", "entitlements": [{"feature_code": "seats"}]}
    engine.claims = TokenCustomClaims(
        access_token={
            "org_billing": (billing, {"customer_id": "customer_1"}),
            "org_code": ("org_forged",),
            "sub": ("kp_forged",),
            "permissions": (["admin:all"],),
        },
        id_token={"org_billing": (billing,), "email": ("forged@example.com",), "nonce": ("x",)},
    )
    callback = await sign_in_for_code(client, biz, org_code=biz.org_code, nonce="real-nonce")
    body = (await exchange(client, biz, callback["code"])).json()
    access, id_token = decode(body["access_token"]), decode(body["id_token"])
    assert access["org_billing"] == billing
    assert id_token["org_billing"] == billing
    assert access["org_code"] == biz.org_code
    assert access["sub"] == biz.user_id
    assert access["permissions"] == ["read:reports"]
    assert id_token["email"] == "alice@example.com"
    assert id_token["nonce"] == "real-nonce"


async def test_event_describes_the_sign_in_and_the_refresh(
    client: httpx.AsyncClient, biz: Business, engine: ScriptedEngine
) -> None:
    callback = await sign_in_for_code(client, biz, org_code=biz.org_code)
    body = (await exchange(client, biz, callback["code"])).json()
    await refresh(client, biz, body["refresh_token"])
    sign_in, refreshed = engine.events
    assert sign_in.context.user.id == biz.user_id
    assert sign_in.context.organization is not None
    assert sign_in.context.organization.code == biz.org_code
    assert sign_in.context.application.client_id == biz.web_client_id
    assert sign_in.context.auth.origin is AuthOrigin.AUTHORIZATION_REQUEST
    assert sign_in.context.auth.is_existing_session is False
    assert sign_in.context.domains.kinde_domain == "http://claimflow.test"
    assert sign_in.request.ip == "127.0.0.1"
    assert sign_in.request.auth.audience == (biz.web_client_id,)
    assert refreshed.context.auth.origin is AuthOrigin.REFRESH_TOKEN_REQUEST
    assert refreshed.request.user_agent == "seam-test/1.0"


async def test_personal_sign_in_sends_no_organization(
    client: httpx.AsyncClient, biz: Business, engine: ScriptedEngine
) -> None:
    callback = await sign_in_for_code(client, biz)
    await exchange(client, biz, callback["code"])
    assert engine.events[0].context.organization is None


async def test_failing_workflow_is_workflow_failed_and_the_code_stays_usable(
    client: httpx.AsyncClient, services: Services, biz: Business, engine: ScriptedEngine
) -> None:
    engine.failure = WorkflowError("org_billing", "run_123", "billing API timed out")
    callback = await sign_in_for_code(client, biz, org_code=biz.org_code)
    failed = await exchange(client, biz, callback["code"])
    assert failed.status_code == 503
    assert failed.headers["retry-after"] == "5"
    assert failed.headers["cache-control"] == "no-store"
    assert failed.json() == {
        "error": "workflow_failed",
        "error_description": "A token-generation workflow failed; nothing was issued. Retry later.",
        "workflow_id": "org_billing",
        "run_id": "run_123",
    }
    async with services.db.connect() as conn:
        code_row = (await conn.execute(select(t.authorization_codes.c.used_on))).one()
        refresh_rows = (await conn.execute(select(t.refresh_tokens))).all()
    assert code_row.used_on is None and refresh_rows == []

    engine.failure = None
    assert (await exchange(client, biz, callback["code"])).status_code == 200


async def test_failing_workflow_on_refresh_leaves_the_refresh_token_unrotated(
    client: httpx.AsyncClient, biz: Business, engine: ScriptedEngine
) -> None:
    callback = await sign_in_for_code(client, biz)
    body = (await exchange(client, biz, callback["code"])).json()
    engine.failure = WorkflowError("org_billing", "run_9", "boom")
    failed = await refresh(client, biz, body["refresh_token"])
    assert failed.status_code == 503 and failed.json()["error"] == "workflow_failed"
    engine.failure = None
    again = await refresh(client, biz, body["refresh_token"])
    assert again.status_code == 200, again.text


async def test_denying_workflow_is_access_denied_and_nothing_issued(
    client: httpx.AsyncClient, services: Services, biz: Business, engine: ScriptedEngine
) -> None:
    engine.failure = WorkflowAccessDenied("gatekeeper", "run_1", "Your plan has ended.")
    callback = await sign_in_for_code(client, biz, org_code=biz.org_code)
    denied = await exchange(client, biz, callback["code"])
    assert denied.status_code == 400
    assert denied.json() == {"error": "access_denied", "error_description": "Your plan has ended."}
    async with services.db.connect() as conn:
        assert (await conn.execute(select(t.refresh_tokens))).all() == []


async def test_claims_over_budget_step_down_then_fail_as_token_too_large(
    client: httpx.AsyncClient, services: Services, biz: Business, engine: ScriptedEngine
) -> None:
    huge = {"entitlements": ["x" * 100] * 60}
    engine.claims = TokenCustomClaims(access_token={"org_billing": (huge, {"ref": "customer_1"})})
    callback = await sign_in_for_code(client, biz)
    body = (await exchange(client, biz, callback["code"])).json()
    assert decode(body["access_token"])["org_billing"] == {"ref": "customer_1"}
    assert len(body["access_token"]) <= services.settings.access_token_max_bytes

    engine.claims = TokenCustomClaims(access_token={"org_billing": (huge,)})
    callback = await sign_in_for_code(client, biz)
    too_large = await exchange(client, biz, callback["code"])
    assert too_large.status_code == 503
    assert too_large.json()["error"] == "token_too_large"
    engine.claims = TokenCustomClaims()
    assert (await exchange(client, biz, callback["code"])).status_code == 200
