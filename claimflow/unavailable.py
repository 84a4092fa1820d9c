"""The database down is a 503 in each endpoint's own format, logged once per kind per interval.

When PostgreSQL (or a SQLite file) cannot be reached, every request fails the same way. Clients
get what they can act on — ``503`` with ``Retry-After`` and ``Cache-Control: no-store`` — in the
format they already parse: Kinde's envelope ``{"errors": [{"code", "message"}]}`` under
Kinde's APIs (``speaks_kinde_envelope``) and the OAuth error ``temporarily_unavailable`` (RFC 6749 §4.1.2.1, used here for
every OAuth and OIDC endpoint) elsewhere. The operator gets one log line per kind of failure per
interval instead of a traceback per request. Nothing here holds state about the outage: the
engine's pool (``pool_pre_ping``) reconnects on the first request after the database is back.

The handlers are registered per exception class, not on ``Exception``: Starlette re-raises what
reaches its outermost error middleware, which is the traceback flood this module prevents.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from claimflow.middleware import speaks_kinde_envelope
from claimflow.store.unreachable import STORE_UNAVAILABLE
from claimflow.throttled_log import ThrottledLog
from claimflow.tokens import KeyManager

RETRY_AFTER_SECONDS = 5


log = logging.getLogger("claimflow.unavailable")
_failures = ThrottledLog(log)


def store_unavailable_response(request: Request, exc: BaseException) -> JSONResponse:
    """503 in the format of the endpoint ``request`` reached, after one throttled log line."""
    kind = type(exc).__name__
    _failures.error(
        kind,
        "database unavailable (%s: %s); answering 503 until it is back",
        kind,
        str(exc).splitlines()[0][:200] if str(exc) else "",
    )
    headers = {
        "Retry-After": str(RETRY_AFTER_SECONDS),
        "Cache-Control": "no-store",
        "Pragma": "no-cache",
    }
    message = "The service is temporarily unavailable; retry later."
    if speaks_kinde_envelope(request.url.path):
        body: dict[str, object] = {"errors": [{"code": "SERVICE_UNAVAILABLE", "message": message}]}
    else:
        body = {"error": "temporarily_unavailable", "error_description": message}
    return JSONResponse(body, status_code=503, headers=headers)


async def store_unavailable_handler(request: Request, exc: Exception) -> JSONResponse:
    return store_unavailable_response(request, exc)


def install(app: FastAPI) -> None:
    for error in STORE_UNAVAILABLE:
        app.add_exception_handler(error, store_unavailable_handler)


async def prepare_signing_key(keys: KeyManager) -> None:
    """Make sure a signing key exists at start-up, unless the database cannot be reached.

    A worker that starts (or is restarted by its supervisor) while the database is down must
    still start: it answers 503 until the database is back, and the first token it signs then
    loads or creates the key (``KeyManager.sign`` ensures one on use). Failing the start-up
    instead makes uvicorn's supervisor stop the whole server.
    """
    try:
        await keys.ensure_active_key()
    except STORE_UNAVAILABLE as exc:
        log.warning(
            "database unreachable at start-up (%s: %s); answering 503 until it is back",
            type(exc).__name__,
            exc,
        )
