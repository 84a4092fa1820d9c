"""``m2m:token_generation`` at the client-credentials grant: workflows, then the size budget.

Kinde fires the trigger "when an M2M token is generated"
(https://docs.kinde.com/workflows/example-workflows/m2m-token-generation-workflow/); the claims
workflows set with ``m2m_token.set_custom_claim`` join the token, reserved ones refused (the
provider's, and Kinde's M2M list ``gty jti scp`` with the common ones), then the token is fitted
to ``m2m_token_max_bytes`` and signed. The workflows' own Management API token never fires it:
the in-process transport mints that token without the grant, and a request from the
workflows' client (``WORKFLOWS_CLIENT_ID``, or the ``KINDE_WF_M2M_CLIENT_ID`` the HTTP transport
uses against this server) is issued without workflows, so a workflow's Management API call
cannot start another run of itself. A failure under ``stop`` answers ``503 workflow_failed``
and issues nothing, as for user tokens.
"""

from __future__ import annotations

from typing import Any

from claimflow.domain import Application
from claimflow.errors import TokenTooLarge, WorkflowError
from claimflow.oidc.errors import from_issuance_error
from claimflow.oidc.grants.base import TokenRequest
from claimflow.oidc.workflow_events import m2m_token_generation_event
from claimflow.tokens.issue import ACCESS_TOKEN_TYP, issue_m2m_access_token
from claimflow.workflows.event import Trigger
from claimflow.workflows.management_client import is_workflows_client


def fires_for(client: Application) -> bool:
    """Whether this client's tokens run the trigger: every client but the workflows' own."""
    return not is_workflows_client(client.client_id)


async def sign_m2m_token(
    request: TokenRequest, claims: dict[str, Any], audience: str, scopes: list[str]
) -> str:
    """The signed token: with the trigger's claims when workflows are enabled on it."""
    services, client = request.services, request.client
    if not services.workflows.enabled(Trigger.M2M_TOKEN_GENERATION) or not fires_for(client):
        return await services.keys.sign(claims, typ=ACCESS_TOKEN_TYP)
    event = m2m_token_generation_event(
        issuer=services.issuer,
        client_id=client.client_id,
        application_name=client.name,
        org_code=client.org_code,
        audience=(audience,),
        scope=tuple(scopes),
        ip=request.ip,
        user_agent=request.user_agent,
    )
    try:
        custom = await services.workflows.run(Trigger.M2M_TOKEN_GENERATION, event)
        if not custom.access_token:
            return await services.keys.sign(claims, typ=ACCESS_TOKEN_TYP)
        return await issue_m2m_access_token(
            services.keys,
            claims,
            custom.access_token,
            custom.access_token_encoded,
            max_bytes=services.settings.m2m_token_max_bytes,
            fits=custom.access_token_fits,
        )
    except (WorkflowError, TokenTooLarge) as exc:
        raise from_issuance_error(exc) from exc
