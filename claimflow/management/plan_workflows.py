"""``user:plan_selection`` and ``user:plan_cancellation_request`` at the Management API.

Kinde fires them before a plan change or a cancellation "is processed", from its self-serve
portal or its Management API (https://docs.kinde.com/workflows/example-workflows/plan-selection-workflow/ ,
https://docs.kinde.com/workflows/example-workflows/plan-cancellation-request-workflow/), and a
workflow refuses with ``kinde.plan.denySelection(reason, suggestions)`` /
``denyCancellation(reason)`` (https://docs.kinde.com/workflows/bindings/plan-binding/); ours are
``bindings.plan.deny_selection`` / ``deny_cancellation``. Here they run before the route's
transaction: a denial answers 403 with one error per reason in Kinde's envelope
(``PLAN_SELECTION_DENIED`` / ``PLAN_CANCELLATION_DENIED``, then a ``PLAN_SUGGESTION`` per
suggested plan) and writes nothing — no agreement, no billing version bump, no webhook event.
A workflow that fails or times out under ``stop`` refuses too (503 ``WORKFLOW_FAILED``, naming
the run); under ``continue`` the change goes ahead.

The route then checks, under the customer's row lock, that the plan the workflows judged is
still the customer's (409 ``PLAN_CHANGED`` otherwise): a decision about a downgrade from
``pro`` must not be applied to a customer a concurrent request has meanwhile moved.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import Request

from claimflow.domain import Agreement, BillingCustomer
from claimflow.errors import Conflict, ManagementAPIError, WorkflowAccessDenied, WorkflowError
from claimflow.management.auth import M2MCaller
from claimflow.services import Services
from claimflow.workflows.event import (
    EventBilling,
    EventDomains,
    EventOrganization,
    EventUser,
    EventWorkflow,
    PlanChangeContext,
    PlanChangeEvent,
    SignInRequest,
    Trigger,
)
from claimflow.workflows.management_client import is_workflows_client


class PlanChangeDenied(ManagementAPIError):
    """403: a workflow refused the change; one error per reason, then the suggested plans."""

    status_code = 403

    def __init__(self, code: str, reasons: Sequence[str], suggestions: Sequence[str]) -> None:
        super().__init__(reasons[0] if reasons else "Refused by a workflow.", code)
        self.errors = (
            *((code, reason) for reason in reasons),
            *(("PLAN_SUGGESTION", plan) for plan in suggestions),
        )


class PlanWorkflowFailed(ManagementAPIError):
    """503: a ``stop`` workflow failed or timed out; nothing changed, the caller may retry."""

    status_code = 503
    default_code = "WORKFLOW_FAILED"


DENIAL_CODES = {
    Trigger.USER_PLAN_SELECTION: "PLAN_SELECTION_DENIED",
    Trigger.USER_PLAN_CANCELLATION_REQUEST: "PLAN_CANCELLATION_DENIED",
}


def current_plan(agreements: Sequence[Agreement]) -> str | None:
    """The plan of the customer's newest active agreement (None without one)."""
    return agreements[-1].plan_code if agreements else None


def plan_change_event(
    trigger: Trigger,
    *,
    issuer: str,
    customer: BillingCustomer,
    current_plan_code: str | None,
    requested_plan_code: str | None = None,
    agreement_id: str | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
) -> PlanChangeEvent:
    """Kinde's event of a plan trigger for ``customer`` (its organization or its user)."""
    return PlanChangeEvent(
        context=PlanChangeContext(
            billing=EventBilling(
                customer_id=customer.id,
                current_plan_code=current_plan_code,
                requested_plan_code=requested_plan_code,
                agreement_id=agreement_id,
            ),
            domains=EventDomains(kinde_domain=issuer),
            workflow=EventWorkflow(trigger),
            user=EventUser(customer.user_id) if customer.user_id else None,
            organization=EventOrganization(customer.org_code) if customer.org_code else None,
        ),
        request=SignInRequest(ip=ip, user_agent=user_agent),
    )


async def check_plan_change(
    services: Services,
    request: Request,
    trigger: Trigger,
    customer: BillingCustomer,
    caller: M2MCaller,
    *,
    current_plan_code: str | None,
    requested_plan_code: str | None = None,
    agreement_id: str | None = None,
) -> bool:
    """Run the trigger's workflows; raise if they refuse. True when any workflow ran.

    A change a workflow makes through the Management API (the workflows' own client) fires
    nothing: a plan workflow that changes a plan would otherwise run itself again."""
    if not services.workflows.enabled(trigger) or is_workflows_client(caller.client_id):
        return False
    event = plan_change_event(
        trigger,
        issuer=services.issuer,
        customer=customer,
        current_plan_code=current_plan_code,
        requested_plan_code=requested_plan_code,
        agreement_id=agreement_id,
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )
    try:
        await services.workflows.run(trigger, event)
    except WorkflowAccessDenied as exc:
        raise PlanChangeDenied(DENIAL_CODES[trigger], exc.reasons, exc.suggestions) from exc
    except WorkflowError as exc:
        raise PlanWorkflowFailed(
            f"Workflow {exc.workflow_id} failed (run {exc.run_id}); nothing was changed."
        ) from exc
    return True


def require_unchanged(judged: Sequence[Agreement], now: Sequence[Agreement]) -> None:
    """409 when the customer's active agreements changed since the workflows judged them."""
    if [a.id for a in judged] != [a.id for a in now]:
        raise Conflict(
            "The customer's plan changed while the plan workflows ran; nothing was changed. Retry.",
            "PLAN_CHANGED",
        )
