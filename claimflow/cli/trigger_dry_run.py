"""``claimflow workflows test`` for ``m2m:token_generation`` and the plan triggers.

The event is built from the store as the token endpoint or the Management API would build it:
an M2M workflow gets the application named by ``--client`` (its name and organization, or
``--org`` for an application that does not exist yet); a plan workflow gets the billing customer
of ``--org`` or ``--user``, its current plan (``--current-plan`` to pretend another), the
requested ``--plan`` (selection) or the ``--agreement`` to cancel. Nothing is issued or changed:
the workflow's Management API writes are refused unless ``--allow-writes``, and a denial is
printed, not applied.
"""

from __future__ import annotations

import time

from claimflow.cli.sign_in_dry_run import ReadOnlyManagementAPI, SignInDryRun, SignInOrigin
from claimflow.management.plan_workflows import current_plan, plan_change_event
from claimflow.oidc.workflow_events import m2m_token_generation_event
from claimflow.services import Services
from claimflow.store import applications, billing
from claimflow.workflows.definition import Workflow
from claimflow.workflows.event import PLAN_TRIGGERS, Trigger, WorkflowEvent

DRY_RUN_TRIGGERS = PLAN_TRIGGERS | {Trigger.M2M_TOKEN_GENERATION}


async def _m2m_event(
    services: Services, origin: SignInOrigin, org_code: str | None, audience: str | None
) -> WorkflowEvent:
    async with services.db.connect() as conn:
        app = await applications.find_application(conn, origin.client_id)
    if app is not None and org_code is not None and app.org_code != org_code:
        raise ValueError(f"application {app.client_id} belongs to {app.org_code}, not {org_code}")
    return m2m_token_generation_event(
        issuer=services.issuer,
        client_id=origin.client_id,
        application_name=app.name if app else None,
        org_code=app.org_code if app else org_code,
        audience=(audience or services.management_audience,),
        scope=app.scopes if app else (),
        ip=origin.ip,
        user_agent=origin.user_agent,
    )


async def _plan_event(
    services: Services,
    trigger: Trigger,
    origin: SignInOrigin,
    *,
    user_id: str | None,
    org_code: str | None,
    plan: str | None,
    current: str | None,
    agreement_id: str | None,
) -> WorkflowEvent:
    if (user_id is None) == (org_code is None):
        raise ValueError("give the customer's owner: --org or --user")
    async with services.db.connect() as conn:
        customer = (
            await billing.customer_of_organization(conn, org_code)
            if org_code is not None
            else await billing.customer_of_user(conn, str(user_id))
        )
        if customer is None:
            raise ValueError(f"{org_code or user_id} has no billing customer")
        active = await billing.customer_agreements(conn, customer.id)
    if trigger is Trigger.USER_PLAN_SELECTION and plan is None:
        raise ValueError("--plan (the requested plan) is required for user:plan_selection")
    if trigger is Trigger.USER_PLAN_CANCELLATION_REQUEST:
        chosen = next((a for a in active if a.id == agreement_id), active[-1] if active else None)
        if chosen is None:
            raise ValueError("the customer has no active agreement to cancel")
        agreement_id, current = chosen.id, current or chosen.plan_code
    return plan_change_event(
        trigger,
        issuer=services.issuer,
        customer=customer,
        current_plan_code=current or current_plan(active),
        requested_plan_code=plan if trigger is Trigger.USER_PLAN_SELECTION else None,
        agreement_id=agreement_id,
        ip=origin.ip,
        user_agent=origin.user_agent,
    )


async def trigger_dry_run(
    services: Services,
    workflow: Workflow,
    origin: SignInOrigin,
    *,
    user_id: str | None = None,
    org_code: str | None = None,
    plan: str | None = None,
    current_plan_code: str | None = None,
    agreement_id: str | None = None,
    audience: str | None = None,
    allow_writes: bool = False,
) -> SignInDryRun:
    """One run of ``workflow`` (M2M or plan trigger) on the event the flags describe."""
    trigger = workflow.settings.trigger
    if trigger is Trigger.M2M_TOKEN_GENERATION:
        event = await _m2m_event(services, origin, org_code, audience)
    else:
        event = await _plan_event(
            services,
            trigger,
            origin,
            user_id=user_id,
            org_code=org_code,
            plan=plan,
            current=current_plan_code,
            agreement_id=agreement_id,
        )
    engine = services.workflows
    read_only = None
    if not allow_writes and engine.management is not None:
        read_only = ReadOnlyManagementAPI(engine.management)
        engine.management = read_only
    await engine.warm_up()
    started = time.perf_counter()
    (report,) = await engine.run_workflows([workflow], event, record=False)
    elapsed = (time.perf_counter() - started) * 1000
    return SignInDryRun(report, elapsed, read_only.refused if read_only else [])
