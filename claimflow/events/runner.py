"""Starts this process's webhook delivery loop from the settings (the app's lifespan calls it).

It takes the parts it needs by argument, not the service container (design §2: only the
composition roots import it).
"""

from __future__ import annotations

import asyncio

from claimflow.events.delivery import RetryPolicy, WebhookDelivery
from claimflow.settings import Settings
from claimflow.store import Database
from claimflow.tokens import KeyManager


def webhook_delivery(
    settings: Settings, db: Database, keys: KeyManager, issuer: str
) -> WebhookDelivery:
    return WebhookDelivery(
        db,
        keys,
        issuer,
        retry=RetryPolicy(
            base_seconds=settings.webhook_retry_base_seconds,
            max_seconds=settings.webhook_retry_max_seconds,
            max_attempts=settings.webhook_max_attempts,
        ),
        timeout_seconds=settings.webhook_timeout_seconds,
        lease_seconds=settings.webhook_lease_seconds,
    )


def start_webhook_delivery(
    settings: Settings, db: Database, keys: KeyManager, issuer: str
) -> asyncio.Task[None] | None:
    if not settings.webhook_delivery_enabled:
        return None
    loop = webhook_delivery(settings, db, keys, issuer).run_forever(
        settings.webhook_poll_interval_seconds
    )
    return asyncio.create_task(loop)
