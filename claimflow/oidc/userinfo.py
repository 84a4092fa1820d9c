"""The user's profile for a bearer access token: OIDC Core §5.3 ``/oauth2/userinfo`` and
Kinde's ``/oauth2/v2/user_profile``.

Errors follow RFC 6750 §3: 401 with ``WWW-Authenticate: Bearer error="invalid_token"``. Only user
tokens are accepted (an M2M token has no user), and revoked tokens are refused.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from claimflow.domain import User
from claimflow.oidc.access_tokens import bearer_token, verify_access_token_holder
from claimflow.oidc.errors import NO_STORE
from claimflow.services import Services
from claimflow.store import users

router = APIRouter(tags=["oauth2"])


def _invalid_token(description: str) -> JSONResponse:
    headers = {
        **NO_STORE,
        "WWW-Authenticate": f'Bearer error="invalid_token", error_description="{description}"',
    }
    return JSONResponse(
        {"error": "invalid_token", "error_description": description},
        status_code=401,
        headers=headers,
    )


async def _user_and_scopes(request: Request) -> tuple[User, list[str]] | JSONResponse:
    services: Services = request.app.state.services
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        return _invalid_token("A bearer access token is required.")
    verified = await verify_access_token_holder(services, token)
    if verified is None or verified.machine_client is not None:
        return _invalid_token("The access token is not valid.")
    claims = verified.claims
    async with services.db.connect() as conn:
        user = await users.find_user(conn, str(claims.get("sub", "")))
    if user is None:
        return _invalid_token("The user no longer exists.")
    scp = claims.get("scp")
    return user, [str(s) for s in scp] if isinstance(scp, list) else []


@router.get("/oauth2/userinfo", summary="UserInfo endpoint (OIDC Core §5.3)")
@router.post("/oauth2/userinfo", summary="UserInfo endpoint (OIDC Core §5.3)")
async def userinfo(request: Request) -> JSONResponse:
    found = await _user_and_scopes(request)
    if isinstance(found, JSONResponse):
        return found
    user, scopes = found
    body: dict[str, Any] = {"sub": user.id}
    if "email" in scopes and user.email:
        body["email"] = user.email
    if "profile" in scopes:
        body.update(
            {
                k: v
                for k, v in (
                    ("name", user.full_name or None),
                    ("given_name", user.given_name),
                    ("family_name", user.family_name),
                )
                if v
            }
        )
    return JSONResponse(body, headers=NO_STORE)


@router.get("/oauth2/v2/user_profile", summary="The signed-in user's profile (Kinde)")
async def user_profile(request: Request) -> JSONResponse:
    found = await _user_and_scopes(request)
    if isinstance(found, JSONResponse):
        return found
    user, _ = found
    body: dict[str, Any] = {
        "id": user.id,
        "preferred_email": user.email,
        "provided_id": None,
        "last_name": user.family_name,
        "first_name": user.given_name,
        "picture": None,
    }
    # The OIDC-style members of Kinde's ``UserProfileV2`` (kinde-python-sdk
    # ``frontend/models/user_profile_v2.py``), beside the legacy ones above.
    body |= {
        "sub": user.id,
        "name": user.full_name or None,
        "given_name": user.given_name,
        "family_name": user.family_name,
        "email": user.email,
    }
    return JSONResponse(body, headers=NO_STORE)
