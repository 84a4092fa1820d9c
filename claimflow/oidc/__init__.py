"""The OpenID Connect provider: one module per standard, as Authlib lays them out."""

from fastapi import APIRouter

from claimflow.oidc import token

router = APIRouter()
router.include_router(token.router)

__all__ = ["router"]
