"""Metrics of the token endpoint and the Management API, taken at the ASGI boundary.

Measuring here keeps the grants and the Management API routes free of instrumentation: the
grant type is read from the form body as it streams past (RFC 6749 §3.2: ``grant_type`` is a
form parameter), the outcome from the status and, for an error, from the RFC 6749 §5.2 ``error``
member of the JSON body; a Management API request is counted under its route template
(``/api/v1/organizations/{org_code}/users``), never its raw path, so ids do not become labels.
"""

from __future__ import annotations

import json
import time
from urllib.parse import unquote_plus

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from claimflow.observability.metrics import record_management_api_request, record_token_request

TOKEN_PATH = "/oauth2/token"
MANAGEMENT_API_PREFIX = "/api/"
_MAX_CAPTURED_BYTES = 16 * 1024
"""A token request or error body is far smaller; past this, stop copying."""

KNOWN_GRANTS = frozenset({"authorization_code", "refresh_token", "client_credentials"})
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Label values a client chooses are kept only from these sets (anything else is ``other``):
every distinct label value is a new time series held in memory until the process ends, so a
client sending random grant types or methods would otherwise grow the server without bound."""


def grant_label(body: bytes) -> str:
    """The first non-empty ``grant_type`` as ``parse_qs`` reads it (a field without ``=`` or
    with an empty value skipped, names and values percent- and ``+``-decoded), decoding only
    the names up to it and its value rather than the whole form."""
    for field in body.decode("latin-1").split("&"):
        name, sep, value = field.partition("=")
        if sep and value and unquote_plus(name) == "grant_type":
            grant = unquote_plus(value)
            return grant if grant in KNOWN_GRANTS else "other"
    return "none"


def _outcome(status: int, body: bytes) -> str:
    if status == 200:
        return "issued"
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        error = None
    return error if isinstance(error, str) and len(error) <= 64 else f"http_{status}"


def route_template(scope: Scope) -> str:
    """The matched route's template with its router's prefix, or ``unmatched``.

    An included router's route knows only its own part (``/organizations/{org_code}/users``);
    the prefix (``/api/v1``) is the part of the path in front of what the route matched.
    """
    route = scope.get("route")
    template = getattr(route, "path", None)
    pattern = getattr(route, "path_regex", None)
    if template is None or pattern is None:
        return "unmatched"
    path: str = scope.get("path", "")
    for cut in (i for i, char in enumerate(path) if char == "/"):
        if pattern.match(path[cut:]):
            return path[:cut] + str(template)
    return str(template)


class HTTPMetricsMiddleware:
    """Pure ASGI middleware recording token requests and Management API requests."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == TOKEN_PATH:
            await self._token_request(scope, receive, send)
        elif path.startswith(MANAGEMENT_API_PREFIX):
            await self._management_request(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _token_request(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request_body = bytearray()
        response_body = bytearray()
        status = 500

        async def receive_and_copy() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(request_body) < _MAX_CAPTURED_BYTES:
                request_body.extend(message.get("body", b""))
            return message

        async def send_and_copy(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif (
                message["type"] == "http.response.body"
                and status != 200
                and len(response_body) < _MAX_CAPTURED_BYTES
            ):
                response_body.extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive_and_copy, send_and_copy)
        finally:
            record_token_request(
                grant_label(bytes(request_body)),
                _outcome(status, bytes(response_body)),
                time.perf_counter() - started,
            )

    async def _management_request(self, scope: Scope, receive: Receive, send: Send) -> None:
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            template = route_template(scope)
            method = scope.get("method", "GET")
            record_management_api_request(
                method if method in KNOWN_METHODS else "other", template, status
            )
