"""HTTP routes of the billing claims: their JSON Schemas and the reference form's full content.

- ``GET /schemas/claims`` and ``GET /schemas/claims/{name}.json`` publish the JSON Schema of each
  claim form (``claimflow/tokens/schemas/``), so services can validate what they read.
- ``GET /oauth2/billing/{customer_id}`` gives the full form a reference-form claim points to. The
  credential is the access token carrying the claim (RFC 6750 bearer); the customer must be the
  token's own: the organization's for an organization sign-in, else the user's. The content comes
  from running the same workflow through the same cache, so it is exactly what a token would
  carry, and ``ETag`` is its version ``v``.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from claimflow.errors import WorkflowConfigError, WorkflowError
from claimflow.oidc.access_tokens import bearer_token, verify_access_token
from claimflow.services import Services
from claimflow.store import billing
from claimflow.workflows.builtin._billing import content_version
from claimflow.workflows.event import (
    AuthOrigin,
    EventApplication,
    EventAuth,
    EventContext,
    EventDomains,
    EventOrganization,
    EventUser,
    TokensGenerationEvent,
)

SCHEMAS_DIR = Path(__file__).resolve().parent.parent / "tokens" / "schemas"

router = APIRouter(tags=["Billing claims"])


@cache
def claim_schemas() -> dict[str, dict[str, Any]]:
    return {
        path.name.removesuffix(".json"): json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(SCHEMAS_DIR.glob("*.json"))
    }


@router.get("/schemas/claims", summary="List the JSON Schemas of the billing claim forms")
async def list_claim_schemas() -> dict[str, Any]:
    return {"schemas": [f"/schemas/claims/{name}.json" for name in claim_schemas()]}


@router.get("/schemas/claims/{name}.json", summary="The JSON Schema of one billing claim form")
async def get_claim_schema(name: str) -> JSONResponse:
    schema = claim_schemas().get(name)
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
    user_id, org_code = str(claims.get("sub", "")), claims.get("org_code")
    async with services.db.connect() as conn:
        owned = (
            await billing.customer_of_organization(conn, org_code)
            if isinstance(org_code, str)
            else await billing.customer_of_user(conn, user_id)
        )
    if owned is None or owned.id != customer_id:
        return _bearer_error(403, "insufficient_scope", "This token does not cover that customer.")
    workflow_id, claim = (
        ("org_billing", "org_billing") if org_code else ("user_billing", "billingDetails")
    )
    event = TokensGenerationEvent(
        context=EventContext(
            user=EventUser(id=user_id),
            application=EventApplication(client_id=str(claims.get("client_id", ""))),
            auth=EventAuth(origin=AuthOrigin.REFRESH_TOKEN_REQUEST, is_existing_session=True),
            domains=EventDomains(kinde_domain=services.issuer),
            organization=EventOrganization(code=org_code) if isinstance(org_code, str) else None,
        )
    )
    try:
        workflow = (
            services.workflows.registry.get(workflow_id) if services.workflows.registry else None
        )
    except WorkflowConfigError:
        workflow = None
    if workflow is None:
        return JSONResponse(
            {"error": "not_found", "error_description": f"{workflow_id} is not installed."}, 404
        )
    (report,) = await services.workflows.run_workflows([workflow], event, record=False)
    forms = report.access_token.get(claim)
    if not report.ok or forms is None:
        error = WorkflowError(workflow_id, report.run.id, report.run.error or "no billing")
        return JSONResponse(
            {"error": "temporarily_unavailable", "error_description": str(error)}, status_code=503
        )
    full = forms[0]
    return JSONResponse(
        full, headers={"ETag": f'"{content_version(full)}"', "Cache-Control": "private, no-store"}
    )
