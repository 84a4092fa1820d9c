"""Starts this process's webhook delivery loop from the settings (the app's lifespan calls it)."""

from __future__ import annotations

import asyncio

from claimflow.events.delivery import RetryPolicy, WebhookDelivery
from claimflow.services import Services


def webhook_delivery(services: Services) -> WebhookDelivery:
    settings = services.settings
    return WebhookDelivery(
        services.db,
        services.keys,
        services.issuer,
        retry=RetryPolicy(
            base_seconds=settings.webhook_retry_base_seconds,
            max_seconds=settings.webhook_retry_max_seconds,
            max_attempts=settings.webhook_max_attempts,
        ),
        timeout_seconds=settings.webhook_timeout_seconds,
        lease_seconds=settings.webhook_lease_seconds,
    )


def start_webhook_delivery(services: Services) -> asyncio.Task[None] | None:
    if not services.settings.webhook_delivery_enabled:
        return None
    loop = webhook_delivery(services).run_forever(services.settings.webhook_poll_interval_seconds)
    return asyncio.create_task(loop)
