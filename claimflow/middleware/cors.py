"""CORS (the Fetch standard's CORS protocol) for the endpoints a single-page app calls.

A browser app (a public client, RFC 6749 §2.1) exchanges its code, refreshes, revokes, reads
userinfo and fetches the JWKS and discovery from its own origin; without CORS headers the browser
hides every answer from it. Only those endpoints answer CORS, and only to the origins the
applications declare (``allowed_origins``: a public client's redirect URI origins plus each
application's explicit list), compared exactly. Everything else — the Management API, the login
pages, introspection — never carries a CORS header, so no other site can read it.

No credentials mode: these endpoints authenticate by parameters or a bearer token, never by
cookie, so ``Access-Control-Allow-Credentials`` is never sent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from claimflow.domain.origins import origin_of

AllowedOrigins = Callable[[], Awaitable[frozenset[str]]]

ALLOWED_HEADERS = frozenset({"authorization", "content-type"})
PREFLIGHT_MAX_AGE_SECONDS = 600
EXPOSED_HEADERS = "WWW-Authenticate, Retry-After"


class Cors:
    """A pure ASGI layer answering CORS for ``paths`` (path → allowed methods) only."""

    def __init__(
        self, app: ASGIApp, *, paths: Mapping[str, frozenset[str]], allowed_origins: AllowedOrigins
    ) -> None:
        self.app = app
        self.paths = dict(paths)
        self.allowed_origins = allowed_origins

    async def _allowed(self, origin: str) -> bool:
        normalized = origin_of(origin)
        return normalized == origin and normalized in await self.allowed_origins()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        methods = self.paths.get(scope.get("path", "")) if scope["type"] == "http" else None
        if methods is None:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        allowed = origin is not None and await self._allowed(origin)
        requested = headers.get("access-control-request-method")
        is_preflight = scope["method"] == "OPTIONS" and requested is not None
        if is_preflight and allowed and self._preflight_ok(requested or "", headers, methods):
            await self._preflight(origin or "", methods)(scope, receive, send)
            return
        if is_preflight:
            allowed = False  # a refused preflight reaches the routes and gets no CORS header

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                response_headers.add_vary_header("Origin")
                if allowed and origin is not None:
                    response_headers["Access-Control-Allow-Origin"] = origin
                    response_headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_cors)

    @staticmethod
    def _preflight_ok(requested: str, headers: Headers, methods: frozenset[str]) -> bool:
        asked = headers.get("access-control-request-headers", "")
        names = {h.strip().lower() for h in asked.split(",") if h.strip()}
        return requested in methods and names <= ALLOWED_HEADERS

    @staticmethod
    def _preflight(origin: str, methods: frozenset[str]) -> Response:
        return Response(
            status_code=204,
            headers={
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": ", ".join(sorted(methods)),
                "Access-Control-Allow-Headers": ", ".join(sorted(ALLOWED_HEADERS)),
                "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_SECONDS),
                "Vary": "Origin",
            },
        )
