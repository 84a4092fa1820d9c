"""Reading OAuth request parameters strictly (RFC 6749 §3.1, §3.2).

Parameters must not repeat, must be valid UTF-8 and have a bounded size; anything else is an
``invalid_request`` rather than a server error.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl

from fastapi import Request

from claimflow.errors import OAuthError

MAX_PARAM_LENGTH = 16 * 1024
"""Large enough for a token sent to introspection or revocation: an M2M token carrying every
Management API scope (``scp`` and ``scope``) is over 4 KB."""
MAX_BODY_BYTES = 64 * 1024


def single_valued(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    params: dict[str, str] = {}
    for key, value in items:
        if key in params:
            raise OAuthError("invalid_request", f"Parameter '{key}' is repeated.")
        if len(value) > MAX_PARAM_LENGTH:
            raise OAuthError("invalid_request", f"Parameter '{key}' is too long.")
        if "\x00" in value:
            raise OAuthError("invalid_request", f"Parameter '{key}' contains a NUL character.")
        params[key] = value
    return params


async def form_params(request: Request) -> dict[str, str]:
    """The ``application/x-www-form-urlencoded`` body of a POST, validated."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "The body must be application/x-www-form-urlencoded.")
    return _parse(await request.body(), MAX_BODY_BYTES, "request body")


def _parse(raw: bytes, limit: int, what: str) -> dict[str, str]:
    if len(raw) > limit:
        raise OAuthError("invalid_request", f"The {what} is too large.")
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise OAuthError("invalid_request", f"The {what} must be URL-encoded ASCII.") from exc
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False, errors="strict")
    except UnicodeDecodeError as exc:
        raise OAuthError("invalid_request", "A parameter is not valid UTF-8.") from exc
    return single_valued(pairs)


def query_params(request: Request) -> dict[str, str]:
    """The query string of a GET (the authorization request, RFC 6749 §4.1.1), validated."""
    raw: bytes = request.scope.get("query_string", b"")
    return _parse(raw, MAX_BODY_BYTES, "query string")


def parse_query_string(query: str) -> dict[str, str]:
    """A query string carried through a form (the pending authorization request), validated."""
    return _parse(query.encode("utf-8"), MAX_BODY_BYTES, "authorization request")


def require(params: dict[str, str], name: str) -> str:
    value = params.get(name, "")
    if not value:
        raise OAuthError("invalid_request", f"Missing parameter '{name}'.")
    return value
