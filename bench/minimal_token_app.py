"""The floor of bench/token_endpoint_bench.py: the least a Python token endpoint can do.

A FastAPI app that parses the form, checks the client secret in constant time and signs one
RS256 JWT access token carrying the same 5-entitlement ``org_billing`` claim claimflow issues.
Whatever claimflow spends beyond this is its own request path, not Python or the framework.

    .venv/bin/python bench/minimal_token_app.py PORT
"""

from __future__ import annotations

import hmac
import secrets
import sys
import time
from typing import Annotated, Any

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Form
from fastapi.responses import JSONResponse

CLIENT_ID = "bench"
CLIENT_SECRET = "bench-minimal-secret-0123456789abcdef0123456789"
ORG_BILLING: dict[str, Any] = {
    "customer_id": "customer_bench",
    "entitlements": [
        {
            "id": f"entitlement_{i}",
            "fixed_charge": 10,
            "price_name": f"Pro {i}",
            "feature_code": f"feat_{i}",
            "feature_name": f"Feature {i}",
            "entitlement_limit_max": i,
        }
        for i in range(5)
    ],
    "agreements": [
        {"id": "agreement_1", "plan_code": "pro", "billing_group_id": "sbg_1", "entitlements": []}
    ],
}


def build_app() -> FastAPI:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    app = FastAPI()

    @app.post("/oauth2/token")
    async def token(
        grant_type: Annotated[str, Form()],
        client_id: Annotated[str, Form()],
        client_secret: Annotated[str, Form()],
    ) -> JSONResponse:
        if grant_type != "client_credentials" or client_id != CLIENT_ID:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if not hmac.compare_digest(client_secret.encode(), CLIENT_SECRET.encode()):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        now = int(time.time())
        claims = {
            "iss": "http://bench",
            "sub": client_id,
            "aud": ["https://api.bench"],
            "iat": now,
            "exp": now + 3600,
            "jti": secrets.token_hex(16),
            "client_id": client_id,
            "org_code": "org_bench",
            "org_billing": ORG_BILLING,
        }
        signed = jwt.encode(claims, key, algorithm="RS256", headers={"typ": "at+jwt"})
        return JSONResponse(
            {"access_token": signed, "token_type": "Bearer", "expires_in": 3600},
            headers={"Cache-Control": "no-store"},
        )

    return app


if __name__ == "__main__":
    uvicorn.run(build_app(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
