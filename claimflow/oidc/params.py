"""Reading OAuth request parameters strictly (RFC 6749 §3.1, §3.2).

Parameters must not repeat, must be valid UTF-8 and have a bounded size; anything else is an
``invalid_request`` rather than a server error.

The limits are chosen so that whatever the authorization endpoint accepts, its login and
organization forms accept too: the pending request travels through them as one field holding the
whole original query string (up to ``MAX_QUERY_BYTES``, not ``MAX_PARAM_LENGTH``), and a form body
may hold that field percent-encoded once more (each byte at most three) plus the other fields.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl

from fastapi import Request

from claimflow.errors import OAuthError

MAX_PARAM_LENGTH = 4096
MAX_TOKEN_PARAM_LENGTH = 16 * 1024
"""The ``token`` sent to introspection or revocation (RFC 7662 §2.1, RFC 7009 §2.1): an M2M
token carrying every Management API scope (``scp`` and ``scope``) is over 4 KB."""
MAX_BODY_BYTES = 64 * 1024
MAX_QUERY_BYTES = MAX_BODY_BYTES
"""The longest authorization request query string; also the limit of the field carrying it."""

PENDING_REQUEST_FIELD = "authorization_request"
"""The form field of the login and organization forms that carries the original query string."""

MAX_FORM_FIELDS = 4
"""Besides the pending request, a form has at most csrf_token, email, password, and one more."""

MAX_AUTHORIZATION_FORM_BYTES = 3 * MAX_QUERY_BYTES + MAX_FORM_FIELDS * 12 * MAX_PARAM_LENGTH + 1024
"""A login, organization or logout form: the pending request percent-encoded again (ASCII, so at
most three bytes a byte), the other fields (a character is at most four UTF-8 bytes, each at most
three when percent-encoded), and 1 KiB for names and separators."""


def single_valued(
    items: Iterable[tuple[str, str]], long_fields: dict[str, int] | None = None
) -> dict[str, str]:
    """The parameters as a dict; ``long_fields`` names fields with their own length limit."""
    params: dict[str, str] = {}
    for key, value in items:
        if key in params:
            raise OAuthError("invalid_request", f"Parameter '{key}' is repeated.")
        if len(value) > (long_fields or {}).get(key, MAX_PARAM_LENGTH):
            raise OAuthError("invalid_request", f"Parameter '{key}' is too long.")
        if "\x00" in value:
            raise OAuthError("invalid_request", f"Parameter '{key}' contains a NUL character.")
        params[key] = value
    return params


async def form_params(
    request: Request, long_fields: dict[str, int] | None = None
) -> dict[str, str]:
    """The ``application/x-www-form-urlencoded`` body of a POST, validated; ``long_fields``
    names fields with their own length limit."""
    return _parse(await _form_body(request), MAX_BODY_BYTES, "request body", long_fields)


async def token_form_params(request: Request) -> dict[str, str]:
    """The form of introspection and revocation, whose ``token`` may be a long JWT."""
    return await form_params(request, long_fields={"token": MAX_TOKEN_PARAM_LENGTH})


async def authorization_form_params(
    request: Request, pending_field: str = PENDING_REQUEST_FIELD
) -> dict[str, str]:
    """A form carrying a pending request's query string in ``pending_field`` (the login,
    organization and logout confirmation forms): ``form_params`` with room for that field."""
    return _parse(
        await _form_body(request),
        MAX_AUTHORIZATION_FORM_BYTES,
        "request body",
        long_fields={pending_field: MAX_QUERY_BYTES},
    )


async def _form_body(request: Request) -> bytes:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "The body must be application/x-www-form-urlencoded.")
    return await request.body()


def _parse(
    raw: bytes, limit: int, what: str, long_fields: dict[str, int] | None = None
) -> dict[str, str]:
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
    return single_valued(pairs, long_fields)


def query_params(request: Request) -> dict[str, str]:
    """The query string of a GET (the authorization request, RFC 6749 §4.1.1), validated."""
    raw: bytes = request.scope.get("query_string", b"")
    return _parse(raw, MAX_QUERY_BYTES, "query string")


def parse_query_string(query: str) -> dict[str, str]:
    """A query string carried through a form (the pending authorization request), validated."""
    return _parse(query.encode("utf-8"), MAX_QUERY_BYTES, "authorization request")


def require(params: dict[str, str], name: str) -> str:
    value = params.get(name, "")
    if not value:
        raise OAuthError("invalid_request", f"Missing parameter '{name}'.")
    return value
