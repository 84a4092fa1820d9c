"""HTTP routes of the billing claims: their JSON Schemas and the reference form's full content.

- ``GET /schemas/claims`` and ``GET /schemas/claims/{name}.json`` publish the JSON Schema of each
  claim form (``claimflow.claims``), so services can validate what they read.
- ``GET /oauth2/billing/{customer_id}`` gives the full form a reference-form claim points to. The
  credential is the access token carrying the claim (RFC 6750 bearer). The content is what the
  enabled workflow declaring the claim — the built-in or the deployment's own — produces for the
  token's sign-in, through the same cache (``org_billing`` for an organization sign-in, else
  ``billingDetails``; for an organization's M2M token, the ``m2m:token_generation`` workflow
  declaring ``org_billing``), so it is exactly what a token would carry. The token covers the customer
  that claim names and no other; ``ETag`` is the claim's version ``v``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from claimflow.claims import (
    BILLING_DETAILS,
    ORG_BILLING,
    claim_schema,
    claim_schemas,
    content_version,
)
from claimflow.domain import ApplicationType
from claimflow.errors import WorkflowError
from claimflow.oidc.access_tokens import bearer_token, verify_access_token
from claimflow.oidc.workflow_events import m2m_token_generation_event, tokens_generation_event
from claimflow.services import Services
from claimflow.store import applications, organizations, users
from claimflow.workflows.event import AuthOrigin, Trigger, WorkflowEvent

router = APIRouter(tags=["Billing claims"])


@router.get("/schemas/claims", summary="List the JSON Schemas of the billing claim forms")
async def list_claim_schemas() -> dict[str, Any]:
    return {"schemas": [f"/schemas/claims/{name}.json" for name in claim_schemas()]}


@router.get("/schemas/claims/{name}.json", summary="The JSON Schema of one billing claim form")
async def get_claim_schema(name: str) -> JSONResponse:
    schema = claim_schema(name)
    if schema is None:
        return JSONResponse({"error": "not_found"}, status_code=404)
    return JSONResponse(schema, media_type="application/schema+json")


def _bearer_error(status: int, error: str, description: str) -> JSONResponse:
    """RFC 6750 §3: the error in the body and in ``WWW-Authenticate``."""
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={"WWW-Authenticate": f'Bearer error="{error}", error_description="{description}"'},
    )


async def _event_for(
    services: Services, claims: dict[str, Any]
) -> tuple[Trigger, str, WorkflowEvent] | None:
    """The trigger, claim and event whose workflow made the token's billing claim; None when
    the store no longer backs the token's subject.

    Billing is a user's (or their organization's): the subject must be an active user as the
    store says, still a member of the token's organization, whatever claims (``gty``) the
    token carries — or, for a client-credentials token with ``org_code``, an M2M application
    that still belongs to that organization (its ``org_billing`` comes from
    ``m2m:token_generation``).
    """
    subject = str(claims.get("sub", ""))
    org_code = claims.get("org_code")
    org_code = org_code if isinstance(org_code, str) else None
    async with services.db.connect() as conn:
        user = await users.find_user(conn, subject)
        app = None if user is not None else await applications.find_application(conn, subject)
        member = (
            user is not None
            and org_code is not None
            and await organizations.find_membership(conn, org_code, subject) is not None
        )
    if user is not None and org_code is not None and not member:
        return None  # removed from the organization since: its billing is no longer theirs
    if user is not None and not user.is_suspended:
        event: WorkflowEvent = tokens_generation_event(
            issuer=services.issuer,
            user_id=subject,
            client_id=str(claims.get("client_id", "")),
            org_code=org_code,
            origin=AuthOrigin.REFRESH_TOKEN_REQUEST,
            is_existing_session=True,
        )
        return Trigger.USER_TOKENS_GENERATION, ORG_BILLING if org_code else BILLING_DETAILS, event
    if app is None or app.type is not ApplicationType.M2M or app.org_code is None:
        return None
    if org_code != app.org_code:
        return None
    event = m2m_token_generation_event(
        issuer=services.issuer,
        client_id=app.client_id,
        application_name=app.name,
        org_code=app.org_code,
    )
    return Trigger.M2M_TOKEN_GENERATION, ORG_BILLING, event


@router.get("/oauth2/billing/{customer_id}", summary="Full billing behind a reference-form claim")
async def get_billing_details(
    request: Request, customer_id: str, authorization: str | None = Header(default=None)
) -> JSONResponse:
    services: Services = request.app.state.services
    token = bearer_token(authorization)
    if token is None:
        return _bearer_error(401, "invalid_request", "A bearer access token is required.")
    claims = await verify_access_token(services, token)
    if claims is None:
        return _bearer_error(401, "invalid_token", "The access token is invalid or expired.")
    chosen = await _event_for(services, claims)
    if chosen is None:
        return _bearer_error(401, "invalid_token", "The access token is invalid or expired.")
    trigger, claim, event = chosen
    workflows = [w for w in services.workflows.enabled(trigger) if claim in w.settings.claims]
    if not workflows:
        return JSONResponse(
            {"error": "not_found", "error_description": f"No enabled workflow sets {claim}."}, 404
        )
    (report,) = await services.workflows.run_workflows(workflows[:1], event, record=False)
    if not report.ok:
        error = WorkflowError(report.workflow.id, report.run.id, report.run.error or "failed")
        return JSONResponse(
            {"error": "temporarily_unavailable", "error_description": str(error)}, status_code=503
        )
    forms = report.access_token.get(claim) or report.id_token.get(claim)
    full = forms[0] if forms else None
    if not isinstance(full, dict) or full.get("customer_id") != customer_id:
        return _bearer_error(403, "insufficient_scope", "This token does not cover that customer.")
    return JSONResponse(
        full, headers={"ETag": f'"{content_version(full)}"', "Cache-Control": "private, no-store"}
    )
