"""Discovery (OIDC Discovery 1.0 §3, RFC 8414 §2) and the JWKS (RFC 7517 §5).

Both are public and cacheable for a short while: clients and resource servers fetch the JWKS to
verify tokens offline, and a rotated key is published before it signs (``KeyManager``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from claimflow.services import Services
from claimflow.tokens.keys import SUPPORTED_ALGORITHMS

router = APIRouter(tags=["discovery"])

CACHE = {"Cache-Control": "public, max-age=300"}


def provider_metadata(issuer: str) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth2/auth",
        "token_endpoint": f"{issuer}/oauth2/token",
        "userinfo_endpoint": f"{issuer}/oauth2/userinfo",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "introspection_endpoint": f"{issuer}/oauth2/introspect",
        "revocation_endpoint": f"{issuer}/oauth2/revoke",
        "end_session_endpoint": f"{issuer}/logout",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": list(SUPPORTED_ALGORITHMS),
        "scopes_supported": ["openid", "profile", "email", "offline", "offline_access"],
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "at_hash",
            "email",
            "name",
            "given_name",
            "family_name",
            "org_codes",
        ],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
        ],
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login"],
        "authorization_response_iss_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
    }


@router.get("/.well-known/openid-configuration", summary="OpenID Provider metadata")
async def openid_configuration(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    return JSONResponse(provider_metadata(services.issuer), headers=CACHE)


@router.get("/.well-known/jwks.json", summary="JSON Web Key Set")
@router.get("/.well-known/jwks", summary="JSON Web Key Set (Kinde's path)")
async def jwks(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    return JSONResponse(await services.keys.jwks(), headers=CACHE)
