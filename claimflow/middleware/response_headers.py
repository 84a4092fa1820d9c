"""Default response headers: nothing is cached or content-sniffed unless a route says otherwise.

Token responses and Management API documents hold credentials and customer data: RFC 6749 §5.1
requires ``Cache-Control: no-store`` on tokens, and a shared cache must never keep a Management
API answer either. ``X-Content-Type-Options: nosniff`` stops a browser from reading a JSON body
as a script or a page. A route that wants caching (discovery, the JWKS) sets its own
``Cache-Control`` and keeps it; every other response gets ``no-store``.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class DefaultResponseHeaders:
    """A pure ASGI layer adding ``no-store`` and ``nosniff`` where the response has none."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_defaults(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Cache-Control", "no-store")
                headers.setdefault("X-Content-Type-Options", "nosniff")
            await send(message)

        await self.app(scope, receive, send_with_defaults)
