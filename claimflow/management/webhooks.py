"""Kinde's webhook routes: ``/webhooks``, ``/event_types``, ``/events/{event_id}``.

Paths, scopes and bodies follow Kinde's Management API (tag Webhooks). A webhook subscribes an
endpoint to event types (``GET /event_types`` lists those claimflow sends); every event is kept
in the outbox and can be read back by the ``event_id`` its webhook carried. Endpoints are
``https`` URLs, or ``http`` for a loopback or private test receiver; the delivery loop
(``claimflow/events/delivery.py``) does not follow redirects.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from pydantic import AfterValidator, BaseModel, Field

from claimflow.events.types import EVENT_TYPE_NAMES, EventType
from claimflow.management.auth import require_scope, services_of
from claimflow.management.wire import OK, CodePath, Name, OptionalText, StrictModel, iso
from claimflow.store import webhooks

router = APIRouter(tags=["Webhooks"])


def _endpoint(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.username:
        raise ValueError("must be an http(s) URL with a host and no credentials")
    return value


def _event_type(value: str) -> str:
    if value not in EventType.__members__.values():
        raise ValueError(f"is not one of the event types of GET /event_types: {value!r}")
    return value


Endpoint = Annotated[str, Field(max_length=2000), AfterValidator(_endpoint)]
EventTypes = Annotated[
    list[Annotated[str, AfterValidator(_event_type)]],
    Field(min_length=1, max_length=len(EventType)),
]


class NewWebhook(BaseModel):
    model_config = StrictModel

    endpoint: Endpoint
    event_types: EventTypes
    name: Name
    description: OptionalText | None = None


class WebhookChanges(BaseModel):
    model_config = StrictModel

    event_types: EventTypes | None = None
    name: Name | None = None
    description: OptionalText | None = None


def webhook_json(webhook: webhooks.Webhook) -> dict[str, Any]:
    body = {
        "id": webhook.id,
        "name": webhook.name,
        "endpoint": webhook.endpoint,
        "event_types": list(webhook.event_types),
        "created_on": iso(webhook.created_on),
    }
    if webhook.description is not None:
        body["description"] = webhook.description
    return body


@router.post("/webhooks", summary="Create a webhook")
async def create_webhook(
    request: Request, body: NewWebhook, _: object = Depends(require_scope("create:webhooks"))
) -> dict[str, Any]:
    async with services_of(request).db.transaction() as conn:
        webhook = await webhooks.create_webhook(
            conn,
            name=body.name,
            endpoint=body.endpoint,
            event_types=body.event_types,
            description=body.description,
        )
    return {**OK, "webhook": {"id": webhook.id, "endpoint": webhook.endpoint}}


@router.get("/webhooks", summary="List webhooks")
async def list_webhooks(
    request: Request, _: object = Depends(require_scope("read:webhooks"))
) -> dict[str, Any]:
    async with services_of(request).db.connect() as conn:
        found = await webhooks.list_webhooks(conn)
    return {**OK, "webhooks": [webhook_json(w) for w in found]}


@router.patch("/webhooks/{webhook_id}", summary="Update a webhook")
async def update_webhook(
    request: Request,
    webhook_id: CodePath,
    body: WebhookChanges,
    _: object = Depends(require_scope("update:webhooks")),
) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    async with services_of(request).db.transaction() as conn:
        webhook = await webhooks.update_webhook(conn, webhook_id, **changes)
    return {**OK, "webhook": {"id": webhook.id}}


@router.delete("/webhooks/{webhook_id}", summary="Delete a webhook")
async def delete_webhook(
    request: Request,
    webhook_id: CodePath,
    _: object = Depends(require_scope("delete:webhooks")),
) -> dict[str, str]:
    """Deleting a webhook also drops its pending deliveries."""
    async with services_of(request).db.transaction() as conn:
        await webhooks.delete_webhook(conn, webhook_id)
    return {"code": "WEBHOOK_DELETED", "message": "Webhook successfully deleted"}


@router.get("/event_types", summary="List event types")
async def list_event_types(
    _: object = Depends(require_scope("read:event_types")),
) -> dict[str, Any]:
    items: list[dict[str, Any]] = [
        {
            "id": event.value,
            "code": event.value,
            "name": EVENT_TYPE_NAMES[event],
            "origin": "kinde" if not event.value.startswith("customer.") else "billing",
            "schema": {},
        }
        for event in EventType
    ]
    return {**OK, "event_types": items}


@router.get("/events/{event_id}", summary="Get an event")
async def get_event(
    request: Request, event_id: CodePath, _: object = Depends(require_scope("read:events"))
) -> dict[str, Any]:
    async with services_of(request).db.connect() as conn:
        event = await webhooks.get_event(conn, event_id)
    return {
        **OK,
        "event": {
            "type": event.type,
            "source": event.source,
            "event_id": event.id,
            "timestamp": int(event.created_on.timestamp()),
            "data": event.data,
        },
    }
