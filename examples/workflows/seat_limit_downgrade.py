"""Example workflow (``user:plan_selection``): refuse a downgrade below the seats in use.

Kinde's use case for the trigger: "if they are trying to downgrade to a plan with a lower usage
allowance than their current plan but they are already breaching the limits"
(https://docs.kinde.com/workflows/example-workflows/plan-selection-workflow/). Before
``POST /api/v1/billing/agreements`` changes an organization's plan, this reads the requested
plan's ``seats`` limit (our catalogue, ``GET /api/v1/billing/plans/{code}``) and counts the
organization's members (``GET /api/v1/organizations/{org_code}/users``, every page), through
the declared Management API scopes only. Too many members: ``plan.deny_selection`` (Kinde's
``kinde.plan.denySelection(reason, suggestions)``,
https://docs.kinde.com/workflows/bindings/plan-binding/) with the current plan as suggestion;
the route answers 403 ``PLAN_SELECTION_DENIED`` and the agreement stays as it was. A personal
customer, a plan without a seat limit, or a plan that fits goes through.

Enable it with ``CLAIMFLOW_WORKFLOWS_DIR=examples/workflows`` and add ``seat_limit_downgrade``
to ``CLAIMFLOW_WORKFLOWS_ENABLED``. Its failure policy is ``stop``: when the seats cannot be
counted, the change waits rather than risk a plan the organization does not fit.
"""

from __future__ import annotations

from typing import Any

from claimflow.workflows import (
    Binding,
    Bindings,
    FailurePolicy,
    PlanChangeEvent,
    Trigger,
    WorkflowSettings,
)

SEATS = "seats"
MAX_PAGES = 100

workflow_settings = WorkflowSettings(
    id="seat_limit_downgrade",
    name="Refuse a plan whose seat limit is below the seats in use",
    trigger=Trigger.USER_PLAN_SELECTION,
    failure_policy=FailurePolicy.STOP,
    time_limit_seconds=2.0,
    bindings=frozenset({Binding.PLAN, Binding.MANAGEMENT_API, Binding.LOGGER}),
    management_api_scopes=frozenset({"read:billing", "read:organization_users"}),
)


def seat_limit(plan: dict[str, Any]) -> int | None:
    """The plan's ``seats`` allowance (``entitlement_limit_max``); None when unlimited."""
    limits = [
        p.get("entitlement_limit_max")
        for p in plan.get("prices", [])
        if p.get("feature_code") == SEATS
    ]
    bounded = [int(v) for v in limits if v is not None]
    return max(bounded) if bounded and len(bounded) == len(limits) else None


async def seats_in_use(bindings: Bindings, org_code: str) -> int:
    """Active (not suspended) members of the organization, counted over every page."""
    count, params = 0, {"page_size": "100"}
    for _ in range(MAX_PAGES):
        page = await bindings.management_api.get(
            "organizations/{org_code}/users", params, path_params={"org_code": org_code}
        )
        members = page.get("organization_users") or []
        count += sum(1 for m in members if not m.get("is_suspended"))
        if not page.get("next_token"):
            return count
        params = {"page_size": "100", "next_token": str(page["next_token"])}
    raise RuntimeError(f"{org_code} has more than {MAX_PAGES} pages of members")


async def run(event: PlanChangeEvent, bindings: Bindings) -> None:
    billing, organization = event.context.billing, event.context.organization
    if organization is None or billing.requested_plan_code is None:
        bindings.logger.info("not an organization's plan change; no seat check")
        return
    plan = await bindings.management_api.get(
        "billing/plans/{code}", path_params={"code": billing.requested_plan_code}
    )
    limit = seat_limit(plan.get("plan") or {})
    if limit is None:
        bindings.logger.info(f"{billing.requested_plan_code} has no seat limit")
        return
    used = await seats_in_use(bindings, organization.code)
    bindings.logger.info(
        f"{organization.code}: {used} seats in use, {billing.requested_plan_code} allows {limit}"
    )
    if used > limit:
        bindings.plan.deny_selection(
            f"{organization.code} has {used} members but plan {billing.requested_plan_code} "
            f"allows {limit} seats; remove {used - limit} member(s) first.",
            [billing.current_plan_code] if billing.current_plan_code else [],
        )
