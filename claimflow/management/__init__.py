"""The Management API: Kinde-compatible paths under ``/api/v1`` guarded by M2M scopes."""

from fastapi import APIRouter

from claimflow.management import (
    applications,
    billing,
    catalogue,
    environment_variables,
    organization_users,
    organizations,
    users,
    workflow_runs,
)

router = APIRouter(prefix="/api/v1")
router.include_router(organizations.router)
router.include_router(organization_users.router)
router.include_router(users.router)
router.include_router(applications.router)
router.include_router(billing.router)
router.include_router(catalogue.router)
router.include_router(environment_variables.router)
router.include_router(workflow_runs.router)

__all__ = ["router"]
