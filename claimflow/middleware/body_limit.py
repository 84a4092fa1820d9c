"""Refuse request bodies over a size limit while they stream in, before they reach memory.

Every endpoint reads small bodies (a form, a JSON document); without a bound, a few bodies of
tens of megabytes each are buffered whole by the framework and exhaust a worker. The check is
in two places, both before the application sees a byte: a declared ``Content-Length`` over the
limit is answered at once, and a body without one (chunked) is counted as it is received and cut
off at the first chunk past the limit. Either way the answer is ``413`` with a small JSON error.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from claimflow.middleware._responses import json_error


class _BodyTooLarge(Exception):
    """Raised into the application when it reads past the limit, so it stops reading."""


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else -1
    return None


class BodyLimit:
    """A pure ASGI layer: at most ``max_bytes`` of request body, else 413."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"The request body is larger than {self.max_bytes} bytes."
        response = json_error(scope, 413, "invalid_request", "PAYLOAD_TOO_LARGE", message)
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared < 0:
            response = json_error(
                scope, 400, "invalid_request", "INVALID_REQUEST", "Invalid Content-Length."
            )
            await response(scope, receive, send)
            return
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
            return

        received = 0
        refused = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    if not started and not refused:
                        refused = True
                        await self._refuse(scope, receive, send)
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 is already sent; whatever the app makes of the error is dropped
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _BodyTooLarge:
            if not refused:
                raise
