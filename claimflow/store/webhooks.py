"""Webhooks, the event outbox and delivery bookkeeping (design §10).

``record_event`` runs inside the transaction of the change it describes: the event and one
delivery row per subscribed webhook commit or roll back with the change, so a committed change
always has its event and a rolled-back one never does. Deliveries are *leased* before sending:
``claim_due`` selects due rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so concurrent workers
skip each other's rows instead of queueing) and sets ``lease_owner``/``lease_until`` in the same
transaction; a worker that dies mid-send leaves a lease that expires, and the row becomes due
again (at least once). While a lease holds, no other worker can claim the row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow.domain.ids import new_prefixed_id
from claimflow.errors import NotFound
from claimflow.store import tables as t
from claimflow.store._rows import as_utc, required_utc, utcnow

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Webhook:
    id: str
    name: str
    endpoint: str
    description: str | None
    event_types: tuple[str, ...]
    created_on: datetime


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    type: str
    source: str
    data: dict[str, Any]
    created_on: datetime


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """A delivery this worker has leased: send it, then record the outcome."""

    id: str
    attempts: int
    event: Event
    endpoint: str


def _webhook(row: Any) -> Webhook:
    return Webhook(
        id=row.id,
        name=row.name,
        endpoint=row.endpoint,
        description=row.description,
        event_types=tuple(row.event_types or ()),
        created_on=required_utc(row.created_on),
    )


def _event(row: Any) -> Event:
    return Event(
        id=row.id,
        type=row.type,
        source=row.source,
        data=dict(row.data),
        created_on=required_utc(row.created_on),
    )


async def create_webhook(
    conn: AsyncConnection,
    *,
    name: str,
    endpoint: str,
    event_types: Sequence[str],
    description: str | None = None,
) -> Webhook:
    webhook = Webhook(
        id=new_prefixed_id("webhook"),
        name=name,
        endpoint=endpoint,
        description=description,
        event_types=tuple(sorted(set(event_types))),
        created_on=utcnow(),
    )
    await conn.execute(
        insert(t.webhooks).values(
            id=webhook.id,
            name=name,
            endpoint=endpoint,
            description=description,
            event_types=list(webhook.event_types),
            created_on=webhook.created_on,
        )
    )
    return webhook


async def get_webhook(conn: AsyncConnection, webhook_id: str) -> Webhook:
    row = (await conn.execute(select(t.webhooks).where(t.webhooks.c.id == webhook_id))).first()
    if row is None:
        raise NotFound("No webhook with this id.", "WEBHOOK_NOT_FOUND")
    return _webhook(row)


async def list_webhooks(conn: AsyncConnection) -> list[Webhook]:
    query = select(t.webhooks).order_by(t.webhooks.c.created_on, t.webhooks.c.id)
    return [_webhook(row) for row in await conn.execute(query)]


async def update_webhook(conn: AsyncConnection, webhook_id: str, **changes: Any) -> Webhook:
    await get_webhook(conn, webhook_id)
    if "event_types" in changes:
        changes["event_types"] = sorted(set(changes["event_types"]))
    if changes:
        await conn.execute(
            update(t.webhooks).where(t.webhooks.c.id == webhook_id).values(**changes)
        )
    return await get_webhook(conn, webhook_id)


async def delete_webhook(conn: AsyncConnection, webhook_id: str) -> None:
    await get_webhook(conn, webhook_id)
    await conn.execute(delete(t.webhooks).where(t.webhooks.c.id == webhook_id))


async def record_event(
    conn: AsyncConnection, event_type: str, data: dict[str, Any], *, source: str = "api"
) -> Event:
    """Write the event and a pending delivery for each webhook subscribed to its type."""
    event = Event(
        id=new_prefixed_id("event"), type=event_type, source=source, data=data, created_on=utcnow()
    )
    await conn.execute(
        insert(t.events).values(
            id=event.id, type=event.type, source=source, data=data, created_on=event.created_on
        )
    )
    subscribed = [w for w in await list_webhooks(conn) if event_type in w.event_types]
    if subscribed:
        await conn.execute(
            insert(t.webhook_deliveries),
            [
                {
                    "id": new_prefixed_id("delivery"),
                    "event_id": event.id,
                    "webhook_id": webhook.id,
                    "status": PENDING,
                    "attempts": 0,
                    "next_attempt_on": event.created_on,
                }
                for webhook in subscribed
            ],
        )
    return event


async def get_event(conn: AsyncConnection, event_id: str) -> Event:
    row = (await conn.execute(select(t.events).where(t.events.c.id == event_id))).first()
    if row is None:
        raise NotFound("No event with this id.", "EVENT_NOT_FOUND")
    return _event(row)


async def claim_due(
    conn: AsyncConnection, *, worker: str, now: datetime, lease: timedelta, limit: int
) -> list[DueDelivery]:
    """Lease up to ``limit`` due deliveries for ``worker`` (call in a transaction)."""
    d = t.webhook_deliveries
    due = (
        select(d.c.id)
        .where(
            d.c.status == PENDING,
            d.c.next_attempt_on <= now,
            or_(d.c.lease_until.is_(None), d.c.lease_until < now),
        )
        .order_by(d.c.next_attempt_on)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claimed: list[str] = []
    for (delivery_id,) in list(await conn.execute(due)):
        # The guarded UPDATE is the claim on SQLite (one writer at a time); on PostgreSQL the
        # row lock above already keeps every other worker off this row.
        result = await conn.execute(
            update(d)
            .where(
                d.c.id == delivery_id,
                d.c.status == PENDING,
                or_(d.c.lease_until.is_(None), d.c.lease_until < now),
            )
            .values(lease_owner=worker, lease_until=now + lease)
        )
        if result.rowcount:
            claimed.append(delivery_id)
    if not claimed:
        return []
    e = t.events
    rows = await conn.execute(
        select(
            d.c.id.label("delivery_id"),
            d.c.attempts,
            t.webhooks.c.endpoint,
            e.c.id.label("event_id"),
            e.c.type,
            e.c.source,
            e.c.data,
            e.c.created_on,
        )
        .join(t.webhooks, t.webhooks.c.id == d.c.webhook_id)
        .join(e, e.c.id == d.c.event_id)
        .where(d.c.id.in_(claimed))
    )
    return [
        DueDelivery(
            id=row.delivery_id,
            attempts=row.attempts,
            endpoint=row.endpoint,
            event=Event(
                id=row.event_id,
                type=row.type,
                source=row.source,
                data=dict(row.data),
                created_on=required_utc(row.created_on),
            ),
        )
        for row in rows
    ]


async def finish_attempt(
    conn: AsyncConnection,
    delivery: DueDelivery,
    *,
    worker: str,
    now: datetime,
    status_code: int | None,
    error: str | None,
    retry_at: datetime | None,
) -> None:
    """Record one attempt and release the lease: delivered, due again at ``retry_at``, or failed.

    Only the lease holder may record: a worker whose lease expired (and was taken over) changes
    nothing, so a slow worker cannot overwrite the new owner's outcome.
    """
    d = t.webhook_deliveries
    delivered = status_code is not None and 200 <= status_code < 300
    values: dict[str, Any] = {
        "attempts": delivery.attempts + 1,
        "lease_owner": None,
        "lease_until": None,
    }
    if delivered:
        values |= {"status": DELIVERED, "delivered_on": now}
    elif retry_at is None:
        values |= {"status": FAILED}
    else:
        values |= {"next_attempt_on": retry_at}
    result = await conn.execute(
        update(d).where(d.c.id == delivery.id, d.c.lease_owner == worker).values(**values)
    )
    if not result.rowcount:
        return
    await conn.execute(
        insert(t.webhook_attempts).values(
            id=new_prefixed_id("attempt"),
            delivery_id=delivery.id,
            worker=worker,
            attempted_on=now,
            status_code=status_code,
            error=error,
        )
    )


@dataclass(frozen=True, slots=True)
class DeliveryState:
    status: str
    attempts: int
    next_attempt_on: datetime
    delivered_on: datetime | None


async def deliveries_of_event(conn: AsyncConnection, event_id: str) -> list[DeliveryState]:
    d = t.webhook_deliveries
    rows = await conn.execute(select(d).where(d.c.event_id == event_id).order_by(d.c.id))
    return [
        DeliveryState(
            status=row.status,
            attempts=row.attempts,
            next_attempt_on=required_utc(row.next_attempt_on),
            delivered_on=as_utc(row.delivered_on),
        )
        for row in rows
    ]


async def attempts_of_event(conn: AsyncConnection, event_id: str) -> list[tuple[int | None, str]]:
    """``(status_code, worker)`` of every attempt at delivering ``event_id``, oldest first."""
    a, d = t.webhook_attempts, t.webhook_deliveries
    rows = await conn.execute(
        select(a.c.status_code, a.c.worker)
        .join(d, d.c.id == a.c.delivery_id)
        .where(d.c.event_id == event_id)
        .order_by(a.c.attempted_on, a.c.id)
    )
    return [(row.status_code, row.worker) for row in rows]
