"""``user:post_authentication`` at the login form: after the password, before any session or code.

Kinde fires it "after the user has completed single factor authentication", before
organization access is checked
(https://docs.kinde.com/workflows/example-workflows/workflow-user-post-auth/), and a workflow
refuses the sign-in with ``kinde.auth.denyAccess(reason)`` — "Prevent the user from accessing
the application" (https://docs.kinde.com/workflows/bindings/auth-binding/); ours is
``bindings.auth.deny_access(reason)``. A refusal here creates no session and issues no code:
the login page shows the reason. A workflow that fails under ``stop`` refuses too, with a
generic message (Kinde's error 1706, "Post-authentication workflow failed to complete and the
policy is set to stop", https://docs.kinde.com/get-started/guides/error-codes/); its error stays
in the run log.

It fires on a password sign-in only: a browser returning with a live session authenticated
nothing new (Kinde's trigger follows an authentication, not every authorization request).
"""

from __future__ import annotations

import logging

from claimflow.errors import WorkflowAccessDenied, WorkflowError
from claimflow.oidc.authorization_request import AuthorizationRequest
from claimflow.oidc.workflow_events import post_authentication_event
from claimflow.services import Services
from claimflow.workflows.event import Trigger

log = logging.getLogger("claimflow.oidc")

POST_AUTHENTICATION_FAILED = "Sign-in could not be completed. Try again in a moment."


async def check_post_authentication(
    services: Services,
    authz: AuthorizationRequest,
    user_id: str,
    *,
    is_new_user_record_created: bool,
    ip: str | None,
    user_agent: str | None,
) -> str | None:
    """Run the trigger's workflows: None lets the sign-in go on, else what the user is told."""
    if not services.workflows.enabled(Trigger.USER_POST_AUTHENTICATION):
        return None
    event = post_authentication_event(
        issuer=services.issuer,
        user_id=user_id,
        client_id=authz.client.client_id,
        redirect_uri=authz.redirect_uri,
        is_new_user_record_created=is_new_user_record_created,
        org_code=authz.org_code,
        state=authz.state,
        scope=authz.scope,
        audience=authz.audience,
        prompt=" ".join(sorted(authz.prompt)) or None,
        ip=ip,
        user_agent=user_agent,
    )
    try:
        await services.workflows.run(Trigger.USER_POST_AUTHENTICATION, event)
    except WorkflowAccessDenied as exc:
        log.info(
            "sign-in of %s denied by workflow %s (run %s)", user_id, exc.workflow_id, exc.run_id
        )
        return exc.reason
    except WorkflowError as exc:
        log.warning(
            "sign-in of %s stopped: workflow %s failed (run %s)",
            user_id,
            exc.workflow_id,
            exc.run_id,
        )
        return POST_AUTHENTICATION_FAILED
    return None
