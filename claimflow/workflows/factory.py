"""Build the engine of a deployment from its settings (called by ``build_services``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from claimflow.cache import build_billing_cache
from claimflow.store.billing_versions import StoreBillingVersions
from claimflow.workflows.engine import WorkflowEngine
from claimflow.workflows.environment import EnvironmentVariables
from claimflow.workflows.management_client import (
    HTTPTransport,
    InProcessTransport,
    ManagementTransport,
)
from claimflow.workflows.registry import WorkflowRegistry
from claimflow.workflows.runlog import RunLog
from claimflow.workflows.runtime.pool import RunnerPools

if TYPE_CHECKING:
    from claimflow.services import Services


def management_transport(services: Services) -> ManagementTransport:
    """HTTP when ``management_api_url`` is set, else this deployment's own API in-process."""
    settings = services.settings
    if settings.management_api_url:
        return HTTPTransport(
            settings.management_api_url, timeout_seconds=settings.management_api_timeout_seconds
        )

    def app_factory() -> Any:
        from claimflow.app import create_app  # the HTTP layer is built on first use only

        return create_app(services=services)

    async def sign(claims: dict[str, Any]) -> str:
        return await services.keys.sign(claims, typ="at+jwt")

    return InProcessTransport(app_factory, sign, services.issuer)


def build_workflow_engine(services: Services) -> WorkflowEngine:
    """Registry (config errors raise here, at start-up), run log, transport, cache, env."""
    settings = services.settings
    registry = WorkflowRegistry.from_settings(
        settings.workflows_enabled,
        settings.workflows_dir,
        settings.workflow_overrides,
        settings.workflows_trusted,
    )
    # Billing read from this deployment's own store is checked against the store's billing
    # versions on every lookup (design §9); billing read from elsewhere relies on the TTL.
    versions = None if settings.management_api_url else StoreBillingVersions(services.db)
    cache = build_billing_cache(
        settings.redis_url,
        settings.billing_cache_ttl_seconds,
        settings.billing_serve_stale,
        settings.billing_stale_max_age_seconds,
        settings.redis_key_prefix(),
        versions=versions,
        redis_timeout_seconds=settings.redis_timeout_seconds,
    )
    if versions is None:
        services.billing_changes.subscribe(cache.invalidate)
    return WorkflowEngine(
        registry,
        run_log=RunLog(services.db, settings.workflow_runs_retention_days),
        management=management_transport(services),
        environment=EnvironmentVariables(services.db, services.box),
        billing_cache=cache,
        default_time_limit_seconds=settings.workflow_time_limit_seconds,
        runners=RunnerPools(
            settings.workflow_runner_pool_size,
            settings.workflow_runner_memory_mb,
            settings.workflow_runner_kill_grace_seconds,
        ),
    )
