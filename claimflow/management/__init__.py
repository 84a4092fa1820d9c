"""The Management API: Kinde-compatible paths under ``/api/v1`` guarded by M2M scopes."""

from fastapi import APIRouter
from fastapi.routing import APIRoute

from claimflow.management import (
    apis,
    applications,
    billing,
    catalogue,
    environment_variables,
    feature_flags,
    kinde_webhooks,
    organization_user_access,
    organization_users,
    organizations,
    properties,
    roles,
    users,
    webhooks,
    workflow_runs,
)
from claimflow.management.auth import ScopeGuard

router = APIRouter(prefix="/api/v1")
router.include_router(organizations.router)
router.include_router(organization_users.router)
router.include_router(users.router)
router.include_router(applications.router)
router.include_router(apis.router)
router.include_router(billing.router)
router.include_router(catalogue.router)
router.include_router(environment_variables.router)
router.include_router(workflow_runs.router)
router.include_router(roles.router)
router.include_router(organization_user_access.router)
router.include_router(webhooks.router)
router.include_router(feature_flags.router)
router.include_router(properties.router)


def _publish_scopes(api: APIRouter) -> None:
    """Each operation's OpenAPI entry names its scope as ``x-scope``, as Kinde's spec does."""
    for route in api.routes:
        included = getattr(route, "original_router", None)
        if isinstance(included, APIRouter):
            _publish_scopes(included)
        if not isinstance(route, APIRoute):
            continue
        for dependency in route.dependant.dependencies:
            if isinstance(dependency.call, ScopeGuard):
                extra = route.openapi_extra or {}
                route.openapi_extra = {**extra, "x-scope": dependency.call.scope}


_publish_scopes(router)

kinde_webhooks_router = kinde_webhooks.router
"""``POST /webhooks/kinde`` (not under ``/api/v1``: Kinde calls it, not a Management API client)."""

__all__ = ["kinde_webhooks_router", "router"]
