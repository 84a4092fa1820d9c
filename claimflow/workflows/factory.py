"""Build the engine of a deployment from its parts (called by ``build_services``).

It takes what it needs (settings, store, secret box, keys, billing changes) and nothing of the
HTTP layers: the in-process Management API transport is built without an app, and the app
factory hands it the app it built (``WorkflowEngine.serve_management_api``), design §2.
"""

from __future__ import annotations

from typing import Any

from claimflow.cache import build_billing_cache
from claimflow.crypto import SecretBox
from claimflow.events import BillingChanges
from claimflow.settings import Settings
from claimflow.store import Database
from claimflow.store.billing_versions import StoreBillingVersions
from claimflow.tokens import KeyManager
from claimflow.workflows.engine import WorkflowEngine
from claimflow.workflows.environment import EnvironmentVariables
from claimflow.workflows.management_client import (
    HTTPTransport,
    InProcessTransport,
    ManagementTransport,
)
from claimflow.workflows.registry import WorkflowRegistry
from claimflow.workflows.runlog import RunLog
from claimflow.workflows.runtime.pool import RunnerPools, describe, runner_user


def management_transport(settings: Settings, keys: KeyManager) -> ManagementTransport:
    """HTTP when ``management_api_url`` is set, else this deployment's own API in-process
    (served once the app factory attaches its app)."""
    if settings.management_api_url:
        return HTTPTransport(
            settings.management_api_url, timeout_seconds=settings.management_api_timeout_seconds
        )

    async def sign(claims: dict[str, Any]) -> str:
        return await keys.sign(claims, typ="at+jwt")

    return InProcessTransport(sign, settings.public_issuer())


def build_workflow_engine(
    settings: Settings,
    db: Database,
    box: SecretBox,
    keys: KeyManager,
    billing_changes: BillingChanges,
) -> WorkflowEngine:
    """Registry (config errors raise here, at start-up), run log, transport, cache, env."""
    user = runner_user(settings.workflow_runner_user)
    registry = WorkflowRegistry.from_settings(
        settings.workflows_enabled,
        settings.workflows_dir,
        settings.workflow_overrides,
        settings.workflows_trusted,
        lambda sources: describe(sources, memory_mb=0, user=user),
    )
    # Billing read from this deployment's own store is checked against the store's billing
    # versions on every lookup (design §9); billing read from elsewhere relies on the TTL.
    versions = None if settings.management_api_url else StoreBillingVersions(db)
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
        billing_changes.subscribe(cache.invalidate)
    return WorkflowEngine(
        registry,
        run_log=RunLog(db, settings.workflow_runs_retention_days),
        management=management_transport(settings, keys),
        environment=EnvironmentVariables(db, box),
        billing_cache=cache,
        default_time_limit_seconds=settings.workflow_time_limit_seconds,
        runners=RunnerPools(
            settings.workflow_runner_pool_size,
            settings.workflow_runner_memory_mb,
            settings.workflow_runner_kill_grace_seconds,
            user,
        ),
    )
