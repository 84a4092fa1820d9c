"""A tiny API that trusts claimflow tokens and enforces the caller's plan, offline.

Run it next to ``claimflow demo`` (issuer http://127.0.0.1:8000):

    python examples/resource_server.py          # serves on http://127.0.0.1:8001

then call it with an access token from a sign-in whose ``audience`` was ``http://127.0.0.1:8001``
(add ``&audience=http://127.0.0.1:8001`` to the demo's authorization URL):

    curl -H "Authorization: Bearer $ACCESS_TOKEN" http://127.0.0.1:8001/me
    curl -H "Authorization: Bearer $ACCESS_TOKEN" http://127.0.0.1:8001/sso/settings   # enterprise only
    curl -X POST -H "Authorization: Bearer $ACCESS_TOKEN" http://127.0.0.1:8001/seats -d ''

Nothing here calls claimflow per request: the JWKS is fetched once (and again after a key
rotation) and the plan is read from the token's ``org_billing`` claim.
"""

import os
from collections import defaultdict
from typing import Annotated, Any

import httpx
import uvicorn
from fastapi import Depends, FastAPI

from claimflow.resource import (
    BillingClaim,
    FeatureLimit,
    ResourceServer,
    TokenVerifier,
    VerifiedToken,
)


def create_api(issuer: str, audience: str, http: httpx.AsyncClient | None = None) -> FastAPI:
    """The example API; ``http`` lets a test hand in its own client for the JWKS fetch."""
    guard = ResourceServer(TokenVerifier(issuer, audience, http=http), realm="example-api")
    app = FastAPI(title="Example API protected by claimflow tokens")
    guard.install(app)
    seats: dict[str, list[str]] = defaultdict(list)
    Token = Annotated[VerifiedToken, Depends(guard.token)]

    def organization_seats(token: Token) -> int:
        return len(seats[token.org_code or token.subject])

    @app.get("/me")
    async def me(
        token: Token, billing: Annotated[BillingClaim, Depends(guard.billing)]
    ) -> dict[str, Any]:
        """Who is calling, for which organization, on which plan, with which features."""
        return {
            "sub": token.subject,
            "org_code": token.org_code,
            "permissions": sorted(token.permissions),
            "billing_form": billing.form,
            "customer_id": billing.customer_id,
            "plans": list(billing.plans),
            "features": {
                code: {"min": f.minimum, "max": f.maximum}
                for code, f in sorted((billing.features or {}).items())
            },
        }

    @app.get("/sso/settings", dependencies=[Depends(guard.require_feature("sso"))])
    async def sso_settings() -> dict[str, Any]:
        return {"sso": "enabled for your organization"}

    @app.get("/reports", dependencies=[Depends(guard.require_permission("read:reports"))])
    async def reports() -> dict[str, Any]:
        return {"reports": ["usage-2026-10", "usage-2026-11"]}

    @app.get("/projects/limit")
    async def projects_limit(
        limit: Annotated[FeatureLimit, Depends(guard.limit_of("projects"))],
    ) -> dict[str, Any]:
        return {"feature": limit.code, "max": limit.maximum}

    @app.post("/seats", status_code=201)
    async def add_seat(
        token: Token,
        limit: Annotated[
            FeatureLimit, Depends(guard.require_limit("seats", used=organization_seats))
        ],
    ) -> dict[str, Any]:
        owner = seats[token.org_code or token.subject]
        owner.append(f"seat-{len(owner) + 1}")
        return {"seats_in_use": len(owner), "max": limit.maximum}

    return app


if __name__ == "__main__":
    issuer = os.environ.get("CLAIMFLOW_ISSUER", "http://127.0.0.1:8000")
    audience = os.environ.get("EXAMPLE_API_AUDIENCE", "http://127.0.0.1:8001")
    uvicorn.run(create_api(issuer, audience), host="127.0.0.1", port=8001)
