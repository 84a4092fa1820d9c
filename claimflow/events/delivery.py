"""Webhook delivery: each outbox event POSTed to its webhooks as a JWT, as Kinde sends them.

Kinde's webhooks carry the event as a JSON Web Token signed with the business's keys, verified
against its JWKS (docs.kinde.com "Add and manage webhooks"; ``@kinde/webhooks`` ``decodeWebhook``
fetches ``<domain>/.well-known/jwks.json``); the claims are Kinde's envelope ``{type, event_id,
source, timestamp, data}``. The request body is the JWT, ``Content-Type: application/jwt``.

A 2xx answer is an acknowledgement. Anything else — another status, a refused connection, a
timeout — is retried with growing back-off (``retry_base * 2**(attempt-1)``, capped) until
``max_attempts``, each attempt recorded. A delivery is leased while it is being sent
(``store/webhooks.claim_due``), so at most one worker sends it at a time; a worker killed
mid-send leaves its lease to expire and another worker sends it again: at least once.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.exc import SQLAlchemyError

from claimflow.store import Database
from claimflow.store import webhooks as store
from claimflow.store._rows import utcnow
from claimflow.throttled_log import ThrottledLog
from claimflow.tokens import KeyManager

log = logging.getLogger("claimflow.webhooks")
_outage = ThrottledLog(log)

DATABASE_FAILURES: tuple[type[Exception], ...] = (SQLAlchemyError, ConnectionError, TimeoutError)
"""What a poll meets while the database is down (asyncpg raises refused connections unwrapped)."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_seconds: float = 5.0
    max_seconds: float = 3600.0
    max_attempts: int = 12

    def next_attempt(self, attempts_made: int, now: datetime) -> datetime | None:
        """When to try again after ``attempts_made`` failures; None when it is time to give up."""
        if attempts_made >= self.max_attempts:
            return None
        delay = min(self.base_seconds * 2 ** (attempts_made - 1), self.max_seconds)
        return now + timedelta(seconds=delay)


def iso_z(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


class WebhookDelivery:
    """One worker's delivery loop; any number may run against one database."""

    def __init__(
        self,
        db: Database,
        keys: KeyManager,
        issuer: str,
        *,
        retry: RetryPolicy | None = None,
        timeout_seconds: float = 10.0,
        lease_seconds: float = 60.0,
        batch_size: int = 20,
        clock: Callable[[], datetime] = utcnow,
        worker: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.db = db
        self.keys = keys
        self.issuer = issuer
        self.retry = retry or RetryPolicy()
        self.timeout_seconds = timeout_seconds
        self.lease = timedelta(seconds=lease_seconds)
        self.batch_size = batch_size
        self.clock = clock
        self.worker = worker or "worker_" + secrets.token_hex(8)
        self._transport = transport

    async def payload(self, event: store.Event) -> str:
        claims: dict[str, Any] = {
            "type": event.type,
            "event_id": event.id,
            "source": event.source,
            "timestamp": iso_z(event.created_on),
            "data": event.data,
            "iss": self.issuer,
            "iat": int(event.created_on.timestamp()),
        }
        return await self.keys.sign(claims, typ="JWT")

    async def run_once(self) -> int:
        """Send every delivery due now that no other worker holds; the number attempted."""
        async with self.db.transaction() as conn:
            due = await store.claim_due(
                conn,
                worker=self.worker,
                now=self.clock(),
                lease=self.lease,
                limit=self.batch_size,
            )
        if not due:
            return 0
        async with httpx.AsyncClient(
            timeout=self.timeout_seconds, transport=self._transport, follow_redirects=False
        ) as http:
            for delivery in due:
                await self._send(http, delivery)
        return len(due)

    async def _send(self, http: httpx.AsyncClient, delivery: store.DueDelivery) -> None:
        token = await self.payload(delivery.event)
        status: int | None = None
        error: str | None = None
        try:
            response = await http.post(
                delivery.endpoint, content=token, headers={"Content-Type": "application/jwt"}
            )
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        now = self.clock()
        delivered = status is not None and 200 <= status < 300
        retry_at = None if delivered else self.retry.next_attempt(delivery.attempts + 1, now)
        if error:
            log.warning(
                "webhook %s for event %s failed (%s); %s",
                delivery.id,
                delivery.event.id,
                error,
                f"retrying at {iso_z(retry_at)}" if retry_at else "giving up",
            )
        async with self.db.transaction() as conn:
            await store.finish_attempt(
                conn,
                delivery,
                worker=self.worker,
                now=now,
                status_code=status,
                error=error,
                retry_at=retry_at,
            )

    async def run_forever(self, interval_seconds: float) -> None:
        """Poll until cancelled; a database error is logged and the next poll tries again."""
        while True:
            try:
                while await self.run_once():
                    pass
            except DATABASE_FAILURES as exc:
                # One line per kind of failure per interval, not a traceback per poll.
                _outage.error(
                    type(exc).__name__,
                    "webhook delivery: the database failed (%s); trying again",
                    type(exc).__name__,
                )
            await asyncio.sleep(interval_seconds)
