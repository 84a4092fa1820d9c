"""Send the hottest endpoints straight to their handler, past FastAPI's router.

FastAPI's router matches a request against every included router's routes in turn, then its
request handler resolves dependencies and wraps the endpoint in two more exception layers; for
``POST /oauth2/token`` that framework work cost about as much CPU as the rest of the request
bar the signature (``bench/README.md``). A direct route is an exact ``(method, path)`` pair
served by a plain ``Request → Response`` function. It sits innermost, under every other layer
(request id, metrics, default headers, ``Host`` check, body limit, CORS), so what those add to a
response is unchanged; errors are translated by the application's own exception handlers
(``app.exception_handlers``, looked up by the exception's class hierarchy as Starlette's
``ExceptionMiddleware`` does), and what none handles propagates to the server-error layer as
before. The FastAPI route of the same endpoint stays registered: it documents the endpoint in
the OpenAPI schema and answers every other method (``405``) and path form (a trailing slash).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Response]]


def exception_handler(handlers: Mapping[Any, Any], exc: Exception) -> Any:
    """The handler ``ExceptionMiddleware`` would pick for ``exc`` among an app's ``handlers``:
    an ``HTTPException``'s status first, then the exception's class or its nearest base class.
    ``Exception`` and ``500`` belong to the server-error layer, never to this one."""
    if isinstance(exc, HTTPException) and exc.status_code in handlers:
        return handlers[exc.status_code]
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        if cls in handlers:
            return handlers[cls]
    return None


class DirectRoutes:
    """A pure ASGI layer serving ``routes`` (``(method, path)`` → endpoint) itself."""

    def __init__(self, app: ASGIApp, *, routes: Mapping[tuple[str, str], Endpoint]) -> None:
        self.app = app
        self.routes = dict(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = (
            self.routes.get((scope["method"], scope["path"]))
            if scope["type"] == "http" and not scope.get("root_path")
            else None
        )
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        try:
            response = await endpoint(request)
        except Exception as exc:
            handler = exception_handler(scope["app"].exception_handlers, exc)
            if handler is None:
                raise
            if inspect.iscoroutinefunction(handler):
                response = await handler(request, exc)
            else:
                response = await run_in_threadpool(handler, request, exc)
            # Reused exception instances would accumulate tracebacks across requests.
            exc.__traceback__ = None
        await response(scope, receive, send)
