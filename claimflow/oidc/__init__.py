"""The OpenID Connect provider: one module per standard, as Authlib lays them out."""

from fastapi import APIRouter

from claimflow.oidc import (
    authorize,
    billing_claims,
    discovery,
    introspection,
    logout,
    revocation,
    token,
    userinfo,
)

router = APIRouter()
for _module in (
    discovery,
    authorize,
    token,
    userinfo,
    introspection,
    revocation,
    logout,
    billing_claims,
):
    router.include_router(_module.router)

__all__ = ["router"]
