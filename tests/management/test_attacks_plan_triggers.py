"""Attacks on the plan triggers at ``POST``/``DELETE /api/v1/billing/agreements``: races.

With ``seat_limit_downgrade`` and ``cancellation_guard`` enabled (runner processes), plan
changes and cancellations of one customer are sent at once, so each request's workflows judge a
plan another request is about to replace. Whatever the interleaving, the customer must end with
at most one active agreement, every answer must be 200 or a 409 ``PLAN_CHANGED`` /
400 ``AGREEMENT_INACTIVE`` (never a 5xx), and the outbox must hold exactly the events of the
changes that answered 200. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio

import httpx

from claimflow.services import Services
from tests.examples.test_plan_workflows import (
    agreements,
    billing_api,
    change_plan,
    ledger,
    tenant_with_members,
)
from tests.management.catalogue import ok

__all__ = ["billing_api"]

REFUSALS = {(409, "PLAN_CHANGED"), (400, "AGREEMENT_INACTIVE")}


def _refused(response: httpx.Response) -> bool:
    return (response.status_code, response.json()["errors"][0]["code"]) in REFUSALS


async def test_concurrent_plan_changes_leave_one_agreement_and_no_stray_events(
    billing_api: tuple[Services, httpx.AsyncClient],
) -> None:
    services, api = billing_api
    org_code, customer_id = await tenant_with_members(api, members=1)
    _, events_before = await ledger(services, org_code)
    wanted = ["small", "enterprise", "team", "small", "enterprise"]
    answers = await asyncio.gather(*(change_plan(api, customer_id, plan) for plan in wanted))
    done = [plan for plan, r in zip(wanted, answers, strict=True) if r.status_code == 200]
    assert all(r.status_code == 200 or _refused(r) for r in answers), [r.text for r in answers]
    assert done, "every concurrent change was refused"
    active = await agreements(api, customer_id)
    assert len(active) == 1 and active[0]["plan_code"] in done
    _, events = await ledger(services, org_code)
    assert events == events_before + 2 * len(done)  # each: created + the replaced one cancelled


async def test_cancel_raced_with_a_plan_change_never_leaves_both_undone_twice(
    billing_api: tuple[Services, httpx.AsyncClient],
) -> None:
    services, api = billing_api
    org_code, customer_id = await tenant_with_members(api, members=1)
    await ok(await change_plan(api, customer_id, "small"))
    (small,) = await agreements(api, customer_id)
    _, events_before = await ledger(services, org_code)
    cancel, cancel_again, change = await asyncio.gather(
        api.delete(f"/api/v1/billing/agreements/{small['id']}"),
        api.delete(f"/api/v1/billing/agreements/{small['id']}"),
        change_plan(api, customer_id, "team"),
    )
    answers = (cancel, cancel_again, change)
    assert all(r.status_code == 200 or _refused(r) for r in answers), [r.text for r in answers]
    assert [cancel.status_code, cancel_again.status_code].count(200) <= 1
    active = [a["plan_code"] for a in await agreements(api, customer_id)]
    assert active == (["team"] if change.status_code == 200 else [])
    cancelled = [cancel.status_code, cancel_again.status_code].count(200)
    _, events = await ledger(services, org_code)
    expected = cancelled + (1 + (0 if cancelled else 1) if change.status_code == 200 else 0)
    assert events == events_before + expected
