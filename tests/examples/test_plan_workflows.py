"""The plan workflow examples through the real Management API routes, run in runner processes.

- ``seat_limit_downgrade`` (``user:plan_selection``): a downgrade to a plan with fewer seats
  than the organization's members answers 403 with the reason and the suggested plan, and
  changes nothing — the agreement, the billing version and the webhook outbox are as before, and
  the organization's API key still carries the old plan; an upgrade goes through and shows in
  the next token.
- ``cancellation_guard`` (``user:plan_cancellation_request``): ``DELETE
  /api/v1/billing/agreements/{agreement_id}`` of a contract plan is refused; of another plan it
  cancels the agreement and records ``customer.agreement_cancelled``.
- A plan workflow's failure follows its failure policy: ``stop`` refuses (503, nothing changed),
  ``continue`` lets the change through.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from claimflow.services import Services
from claimflow.store import tables as t
from claimflow.store.billing_versions import version_of
from claimflow.workflows.runlog import RunFilter, list_runs
from tests.helpers import management_client
from tests.management.catalogue import make_plan, ok
from tests.oidc.test_m2m_organizations import (
    anonymous,
    api_key,
    deploy,
    organization_on,
    token_claims,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "workflows"
PLAN_WORKFLOWS = ["seat_limit_downgrade", "cancellation_guard"]


@pytest.fixture
async def billing_api(any_db_url: str) -> AsyncIterator[tuple[Services, httpx.AsyncClient]]:
    async for pair in deploy(
        any_db_url,
        workflows_dir=str(EXAMPLES),
        workflows_enabled=["org_billing", "user_billing", "org_billing_m2m", *PLAN_WORKFLOWS],
        workflow_overrides={wid: {"time_limit_seconds": 30.0} for wid in PLAN_WORKFLOWS},
    ):
        yield pair


async def tenant_with_members(api: httpx.AsyncClient, members: int) -> tuple[str, str]:
    await make_plan(api, "team", {"seats": 10})
    await make_plan(api, "small", {"seats": 2})
    await make_plan(api, "enterprise", {"seats": 100, "sso": None})
    org_code, customer_id = await organization_on(api, "team")
    for i in range(members):
        await ok(
            await api.post(
                "/api/v1/user",
                json={
                    "profile": {"given_name": f"Member {i}"},
                    "organization_code": org_code,
                    "identities": [{"type": "email", "details": {"email": f"m{i}@t.test"}}],
                },
            )
        )
    return org_code, customer_id


async def agreements(api: httpx.AsyncClient, customer_id: str) -> list[dict[str, Any]]:
    body = await ok(
        await api.get("/api/v1/billing/agreements", params={"customer_id": customer_id})
    )
    found: list[dict[str, Any]] = body["agreements"]
    return found


async def ledger(services: Services, org_code: str) -> tuple[int, int]:
    """The organization's billing version and the number of outbox events."""
    async with services.db.connect() as conn:
        version = await version_of(conn, f"org:{org_code}")
        events = (await conn.execute(select(func.count()).select_from(t.events))).scalar_one()
    return version, int(events)


async def change_plan(api: httpx.AsyncClient, customer_id: str, plan: str) -> httpx.Response:
    return await api.post(
        "/api/v1/billing/agreements", json={"customer_id": customer_id, "plan_code": plan}
    )


async def test_a_downgrade_below_the_seats_in_use_is_denied_and_changes_nothing(
    billing_api: tuple[Services, httpx.AsyncClient],
) -> None:
    services, api = billing_api
    org_code, customer_id = await tenant_with_members(api, members=3)
    key_id, key_secret = await api_key(api, org_code)
    assert [
        a["plan_code"]
        for a in (await token_claims(api, key_id, key_secret))["org_billing"]["agreements"]
    ] == ["team"]
    before_agreements = await agreements(api, customer_id)
    before = await ledger(services, org_code)

    denied = await change_plan(api, customer_id, "small")
    assert denied.status_code == 403, denied.text
    errors = denied.json()["errors"]
    assert errors[0]["code"] == "PLAN_SELECTION_DENIED"
    assert "3 members" in errors[0]["message"] and "allows 2 seats" in errors[0]["message"]
    assert errors[1:] == [{"code": "PLAN_SUGGESTION", "message": "team"}]
    assert await agreements(api, customer_id) == before_agreements
    assert await ledger(services, org_code) == before
    claims = await token_claims(api, key_id, key_secret)
    assert [a["plan_code"] for a in claims["org_billing"]["agreements"]] == ["team"]

    allowed = await change_plan(api, customer_id, "enterprise")
    assert allowed.status_code == 200, allowed.text
    assert [a["plan_code"] for a in await agreements(api, customer_id)] == ["enterprise"]
    version, events = await ledger(services, org_code)
    assert version > before[0] and events == before[1] + 2  # created + the replaced one cancelled
    claims = await token_claims(api, key_id, key_secret)
    assert [a["plan_code"] for a in claims["org_billing"]["agreements"]] == ["enterprise"]


async def test_a_contract_plan_cancellation_is_denied_and_another_plan_cancels(
    billing_api: tuple[Services, httpx.AsyncClient],
) -> None:
    services, api = billing_api
    org_code, customer_id = await tenant_with_members(api, members=1)
    await ok(await change_plan(api, customer_id, "enterprise"))
    (enterprise,) = await agreements(api, customer_id)
    before = await ledger(services, org_code)

    denied = await api.delete(f"/api/v1/billing/agreements/{enterprise['id']}")
    assert denied.status_code == 403, denied.text
    assert denied.json()["errors"] == [
        {
            "code": "PLAN_CANCELLATION_DENIED",
            "message": "The enterprise plan is a contract; contact your account manager to "
            "cancel it.",
        }
    ]
    assert await agreements(api, customer_id) == [enterprise]
    assert await ledger(services, org_code) == before

    await ok(await change_plan(api, customer_id, "team"))
    (team,) = await agreements(api, customer_id)
    version, events = await ledger(services, org_code)
    await ok(await api.delete(f"/api/v1/billing/agreements/{team['id']}"))
    assert await agreements(api, customer_id) == []
    assert await ledger(services, org_code) == (version + 1, events + 1)
    async with services.db.connect() as conn:
        last = (
            await conn.execute(select(t.events.c.type).order_by(t.events.c.created_on.desc()))
        ).first()
    assert last is not None and last.type == "customer.agreement_cancelled"

    again = await api.delete(f"/api/v1/billing/agreements/{team['id']}")
    assert again.status_code == 400 and again.json()["errors"][0]["code"] == "AGREEMENT_INACTIVE"
    unknown = await api.delete("/api/v1/billing/agreements/agreement_nope")
    assert unknown.status_code == 404


async def test_cancelling_needs_the_delete_billing_agreements_scope(
    billing_api: tuple[Services, httpx.AsyncClient],
) -> None:
    services, api = billing_api
    _, customer_id = await tenant_with_members(api, members=0)
    (team,) = await agreements(api, customer_id)
    headers = await management_client(anonymous(api), services, ["read:billing_agreements"])
    response = await anonymous(api).delete(
        f"/api/v1/billing/agreements/{team['id']}", headers=headers
    )
    assert response.status_code == 403
    assert "delete:billing_agreements" in response.json()["errors"][0]["message"]


FAILING = """
from claimflow.workflows import Binding, FailurePolicy, Trigger, WorkflowSettings

workflow_settings = WorkflowSettings(
    id="broken_plan_check",
    name="test",
    trigger=Trigger.USER_PLAN_SELECTION,
    failure_policy=FailurePolicy.{policy},
    bindings=frozenset({{Binding.PLAN}}),
)


async def run(event, bindings):
    raise RuntimeError("billing system unreachable")
"""


@pytest.mark.parametrize(("policy", "status"), [("STOP", 503), ("CONTINUE", 200)])
async def test_a_failing_plan_workflow_follows_its_failure_policy(
    db_url: str, tmp_path: Path, policy: str, status: int
) -> None:
    (tmp_path / "broken_plan_check.py").write_text(FAILING.format(policy=policy))
    async for services, api in deploy(
        db_url,
        workflows_dir=str(tmp_path),
        workflows_enabled=["org_billing", "user_billing", "broken_plan_check"],
    ):
        org_code, customer_id = await tenant_with_members(api, members=0)
        before = await ledger(services, org_code)
        response = await change_plan(api, customer_id, "small")
        assert response.status_code == status, response.text
        plans = [a["plan_code"] for a in await agreements(api, customer_id)]
        if status == 503:
            assert response.json()["errors"][0]["code"] == "WORKFLOW_FAILED"
            assert plans == ["team"] and await ledger(services, org_code) == before
        else:
            assert plans == ["small"]


MEDDLER = """
from claimflow.workflows import Binding, FailurePolicy, Trigger, WorkflowSettings

workflow_settings = WorkflowSettings(
    id="meddler",
    name="test",
    trigger=Trigger.USER_PLAN_SELECTION,
    failure_policy=FailurePolicy.STOP,
    bindings=frozenset({Binding.PLAN, Binding.MANAGEMENT_API, Binding.LOGGER}),
    management_api_scopes=frozenset({"create:billing_agreements"}),
)


async def run(event, bindings):
    bindings.logger.info(f"asked for {event.context.billing.requested_plan_code}")
    await bindings.management_api.post(
        "billing/agreements",
        {"customer_id": event.context.billing.customer_id, "plan_code": "enterprise"},
    )
"""


async def test_a_plan_changed_while_the_workflows_ran_is_a_conflict_and_never_recursion(
    db_url: str, tmp_path: Path
) -> None:
    """A workflow moving the customer itself fires no plan workflow (its own client), and the
    route, finding the plan it judged gone, refuses with 409 rather than overwrite it."""
    (tmp_path / "meddler.py").write_text(MEDDLER)
    async for services, api in deploy(
        db_url,
        workflows_dir=str(tmp_path),
        workflows_enabled=["org_billing", "user_billing", "meddler"],
    ):
        _, customer_id = await tenant_with_members(api, members=0)
        response = await change_plan(api, customer_id, "small")
        assert response.status_code == 409, response.text
        assert response.json()["errors"][0]["code"] == "PLAN_CHANGED"
        assert [a["plan_code"] for a in await agreements(api, customer_id)] == ["enterprise"]
        assert services.workflows.run_log is not None
        await services.workflows.run_log.flush()
        async with services.db.connect() as conn:
            runs, _ = await list_runs(conn, RunFilter(workflow_id="meddler"))
        assert len(runs) == 1 and runs[0].outcome.value == "succeeded"
