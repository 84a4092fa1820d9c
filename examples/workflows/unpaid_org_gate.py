"""Example workflow (``user:post_authentication``): refuse sign-in to an organization that has a
billing customer but no active plan.

It runs after the password is proven and before any session or code exists (Kinde: "after the
user has completed single factor authentication",
https://docs.kinde.com/workflows/example-workflows/workflow-user-post-auth/). The organization is
the one the authorization request names (``org_code``, Kinde's ``authUrlParams.orgCode``); a
personal sign-in, an organization without billing, or one on a plan goes on. Refusing is Kinde's
``kinde.auth.denyAccess(reason)`` (https://docs.kinde.com/workflows/bindings/auth-binding/): the
login page shows the reason and no code is issued.

Enable it with ``CLAIMFLOW_WORKFLOWS_DIR=examples/workflows`` and
``CLAIMFLOW_WORKFLOWS_ENABLED='["org_billing", "user_billing", "unpaid_org_gate"]'``. Its
failure policy is ``continue``: a billing outage should not lock every member out.
"""

from __future__ import annotations

from claimflow.workflows import (
    Binding,
    Bindings,
    FailurePolicy,
    ManagementAPINotFound,
    PostAuthenticationEvent,
    Trigger,
    WorkflowSettings,
)

workflow_settings = WorkflowSettings(
    id="unpaid_org_gate",
    name="Refuse sign-in to an organization without an active plan",
    trigger=Trigger.USER_POST_AUTHENTICATION,
    failure_policy=FailurePolicy.CONTINUE,
    time_limit_seconds=1.0,
    bindings=frozenset({Binding.AUTH, Binding.MANAGEMENT_API, Binding.LOGGER}),
    management_api_scopes=frozenset({"read:organizations"}),
)


async def run(event: PostAuthenticationEvent, bindings: Bindings) -> None:
    request = event.request
    new = " (new user)" if event.context.auth.is_new_user_record_created else ""
    bindings.logger.info(
        f"sign-in of {event.context.user.id}{new} from {request.ip} ({request.user_agent})"
    )
    params = request.auth_url_params
    org_code = params.org_code if params is not None else None
    if org_code is None:
        bindings.logger.info("no organization requested; nothing to check")
        return
    try:
        organization = await bindings.management_api.get(
            "organization", {"code": org_code, "expand": "billing"}
        )
    except ManagementAPINotFound:
        bindings.logger.info(f"organization {org_code} not found; membership check decides")
        return
    billing = organization.get("billing")
    if not billing:
        bindings.logger.info(f"{org_code} has no billing customer; free organization")
        return
    if billing.get("agreements"):
        bindings.logger.info(f"{org_code} is on a plan")
        return
    bindings.logger.warning(f"{org_code} has no active plan; sign-in refused")
    bindings.auth.deny_access(
        f"{organization.get('name', org_code)} has no active plan. "
        "Ask an administrator of your organization to choose one."
    )
