"""OAuth error responses (RFC 6749 §5.2): ``{"error", "error_description"}`` with no-store."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from claimflow.errors import OAuthError

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def oauth_error_response(exc: OAuthError) -> JSONResponse:
    body = {"error": exc.error}
    if exc.description:
        body["error_description"] = exc.description
    headers = dict(NO_STORE)
    if exc.status_code == 401:
        headers["WWW-Authenticate"] = 'Basic realm="claimflow"'
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


async def oauth_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OAuthError)
    return oauth_error_response(exc)


def install(app: FastAPI) -> None:
    app.add_exception_handler(OAuthError, oauth_error_handler)
