"""A request id per HTTP request: taken from ``X-Request-Id`` when sane, else generated.

Every log line written while the request is handled carries it (``logs.JsonFormatter``), and
the response echoes it in ``X-Request-Id``, so an operator can go from a client's report to the
server's lines for that request. An incoming id is kept only if it is short and plain, so a
client cannot inject text into the logs through it.
"""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID_HEADER_BYTES = REQUEST_ID_HEADER.encode()
_ACCEPTED = re.compile(r"[A-Za-z0-9._:-]{1,128}")

current_request_id: ContextVar[str | None] = ContextVar("claimflow_request_id", default=None)


def _incoming(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == _REQUEST_ID_HEADER_BYTES:
            text = value.decode("latin-1")
            return text if _ACCEPTED.fullmatch(text) else None
    return None


class RequestIdMiddleware:
    """Pure ASGI middleware: sets ``current_request_id`` and echoes ``X-Request-Id``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming(scope) or secrets.token_hex(16)
        token = current_request_id.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            current_request_id.reset(token)
