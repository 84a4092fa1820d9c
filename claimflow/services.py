"""The long-lived parts one claimflow process shares, built once from settings.

Handlers reach them through ``request.app.state.services``; tests build them the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from claimflow.crypto import SecretBox
from claimflow.events import BillingChanges
from claimflow.events.inbound import KindeWebhookReceiver
from claimflow.settings import Settings
from claimflow.store import Database
from claimflow.tokens import KeyManager
from claimflow.workflows.engine import WorkflowEngine
from claimflow.workflows.factory import build_workflow_engine


@dataclass
class Services:
    settings: Settings
    db: Database
    box: SecretBox
    keys: KeyManager
    billing_changes: BillingChanges
    workflows: WorkflowEngine
    kinde_webhooks: KindeWebhookReceiver | None = None
    """Verifies Kinde's webhooks in (``CLAIMFLOW_KINDE_WEBHOOK_DOMAIN``); None when unset."""

    @property
    def issuer(self) -> str:
        return self.settings.public_issuer()

    @property
    def management_audience(self) -> str:
        """The audience M2M tokens for the Management API carry (Kinde: ``<issuer>/api``)."""
        return self.issuer + "/api"

    async def close(self) -> None:
        await self.workflows.aclose()
        await self.keys.aclose()
        if self.kinde_webhooks is not None:
            await self.kinde_webhooks.aclose()
        await self.db.dispose()


def build_services(settings: Settings) -> Services:
    db = Database(settings.database_url)
    box = SecretBox(settings.resolved_secret_key())
    longest = max(
        settings.access_token_ttl_seconds,
        settings.id_token_ttl_seconds,
        settings.m2m_token_ttl_seconds,
    )
    keys = KeyManager(db, box, settings.signing_algorithm, longest)
    billing_changes = BillingChanges()
    services = Services(
        settings=settings,
        db=db,
        box=box,
        keys=keys,
        billing_changes=billing_changes,
        workflows=build_workflow_engine(settings, db, box, keys, billing_changes),
    )
    if settings.kinde_webhook_domain:
        services.kinde_webhooks = KindeWebhookReceiver(
            settings.kinde_webhook_domain,
            settings.kinde_webhook_jwks_ttl_seconds,
            settings.kinde_webhook_max_age_seconds,
        )
    return services
