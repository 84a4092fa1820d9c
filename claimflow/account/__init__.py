"""Kinde's Account API: the signed-in user's own entitlements, roles, permissions, feature
flags and properties.

Called with the user's access token, under ``/account_api/v1`` as Kinde's; the user's profile is
Kinde's ``/oauth2/v2/user_profile`` (``claimflow/oidc/userinfo.py``).
"""

from fastapi import APIRouter

from claimflow.account import access, billing, flags

router = APIRouter()
router.include_router(billing.router)
router.include_router(access.router)
router.include_router(flags.router)

__all__ = ["router"]
