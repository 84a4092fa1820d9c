"""Billing-change notifications: the Management API publishes, caches subscribe.

A write that changes what a customer is entitled to (an agreement, a plan price, a feature)
publishes the affected customer ids after its transaction commits. Keeping this a tiny in-process
bus means the Management API does not know which caches exist; a cache that spans workers
(Redis) fans the invalidation out itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from claimflow.observability import metrics

BillingChangeListener = Callable[[frozenset[str]], Awaitable[None]]


class BillingChanges:
    """Publish-subscribe for "these customers' billing changed"."""

    def __init__(self) -> None:
        self._listeners: list[BillingChangeListener] = []

    def subscribe(self, listener: BillingChangeListener) -> None:
        self._listeners.append(listener)

    async def publish(self, customer_ids: Iterable[str]) -> None:
        ids = frozenset(customer_ids)
        if not ids:
            return
        # Counted here, not in a cache: with billing versions (design §9) no cache subscribes,
        # the version bump in the change's transaction is the invalidation.
        metrics.record_billing_cache("invalidation", len(ids))
        for listener in self._listeners:
            await listener(ids)
