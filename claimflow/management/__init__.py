"""The Management API: Kinde-compatible paths under ``/api/v1`` guarded by M2M scopes."""

from fastapi import APIRouter

from claimflow.management import (
    applications,
    billing,
    catalogue,
    organization_users,
    organizations,
    users,
)

router = APIRouter(prefix="/api/v1")
router.include_router(organizations.router)
router.include_router(organization_users.router)
router.include_router(users.router)
router.include_router(applications.router)
router.include_router(billing.router)
router.include_router(catalogue.router)

__all__ = ["router"]
