"""``POST /webhooks/kinde``: Kinde's webhooks in, so a plan change on Kinde reaches the cache.

Configured by ``CLAIMFLOW_KINDE_WEBHOOK_DOMAIN`` (404 without it); point a Kinde webhook for the
billing events at ``<issuer>/webhooks/kinde``. The body is Kinde's webhook JWT
(``Content-Type: application/jwt``), verified as ``claimflow/events/inbound.py`` says; a
verified event that names billing customers publishes them on ``BillingChanges`` (the billing
cache drops their entries). Answers: 200 ``{"code": "OK", ...}`` (acted on, or an ``event_id``
already acted on: Kinde delivers at least once and must not retry it), 400 a body that is no
webhook, 401 a webhook that fails verification, 503 Kinde's key set unreachable (Kinde retries).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from claimflow.errors import NotFound
from claimflow.management.auth import services_of

router = APIRouter(tags=["Kinde webhooks in"])


@router.post("/webhooks/kinde", summary="Receive a webhook from Kinde")
async def receive_kinde_webhook(request: Request) -> dict[str, Any]:
    services = services_of(request)
    receiver = services.kinde_webhooks
    if receiver is None:
        raise NotFound(
            "Kinde webhooks are not received here: set CLAIMFLOW_KINDE_WEBHOOK_DOMAIN.",
            "ROUTE_NOT_FOUND",
        )
    body = await request.body()
    try:
        token = body.decode("ascii").strip()
    except UnicodeDecodeError:
        token = ""
    webhook = await receiver.verifier.verify(token)
    if not receiver.recent.first_time(webhook.event_id):
        return {"code": "OK", "message": "Already received", "event_id": webhook.event_id}
    await services.billing_changes.publish(webhook.customer_ids)
    return {
        "code": "OK",
        "message": "Received",
        "event_id": webhook.event_id,
        "invalidated_customer_ids": sorted(webhook.customer_ids),
    }
