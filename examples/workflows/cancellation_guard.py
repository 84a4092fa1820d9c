"""Example workflow (``user:plan_cancellation_request``): contract plans cancel through support.

Kinde's tutorial "Check plan cancellation eligibility" denies cancellations of Enterprise plans,
"ensuring that customers who have signed legal agreements can only cancel by contacting
support" (https://docs.kinde.com/workflows/workflow-tutorials/check-plan-cancellation-eligibility/).
The trigger fires before ``DELETE /api/v1/billing/agreements/{agreement_id}`` cancels anything
(https://docs.kinde.com/workflows/example-workflows/plan-cancellation-request-workflow/); the
plans are named in ``CANCELLATION_GUARD_PLANS`` (comma-separated, default ``enterprise``) and
the reason names ``CANCELLATION_GUARD_CONTACT``. A refusal is ``plan.deny_cancellation``
(Kinde's ``kinde.plan.denyCancellation``, https://docs.kinde.com/workflows/bindings/plan-binding/):
403 ``PLAN_CANCELLATION_DENIED``, the agreement stays active.
"""

from __future__ import annotations

from claimflow.workflows import (
    Binding,
    Bindings,
    FailurePolicy,
    PlanChangeEvent,
    Trigger,
    WorkflowSettings,
)

workflow_settings = WorkflowSettings(
    id="cancellation_guard",
    name="Contract plans are cancelled through support",
    trigger=Trigger.USER_PLAN_CANCELLATION_REQUEST,
    failure_policy=FailurePolicy.STOP,
    time_limit_seconds=1.0,
    bindings=frozenset({Binding.PLAN, Binding.ENV, Binding.LOGGER}),
    env_vars=frozenset({"CANCELLATION_GUARD_PLANS", "CANCELLATION_GUARD_CONTACT"}),
)


async def _variable(bindings: Bindings, key: str, default: str) -> str:
    found = await bindings.env.get_environment_variable(key)
    return found.value if found is not None and found.value else default


async def run(event: PlanChangeEvent, bindings: Bindings) -> None:
    billing = event.context.billing
    guarded = {
        code.strip()
        for code in (await _variable(bindings, "CANCELLATION_GUARD_PLANS", "enterprise")).split(",")
        if code.strip()
    }
    if billing.current_plan_code not in guarded:
        bindings.logger.info(f"{billing.current_plan_code} may be cancelled self-serve")
        return
    contact = await _variable(bindings, "CANCELLATION_GUARD_CONTACT", "your account manager")
    bindings.logger.info(f"cancellation of {billing.agreement_id} refused: contract plan")
    bindings.plan.deny_cancellation(
        f"The {billing.current_plan_code} plan is a contract; contact {contact} to cancel it."
    )
