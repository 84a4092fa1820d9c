"""The small JSON errors the middleware answers with, in the caller's dialect.

A request to the Management API (``/api/``) gets Kinde's envelope
``{"errors": [{"code", "message"}]}``; anything else (the OAuth and OIDC endpoints) gets
RFC 6749 §5.2's ``{"error", "error_description"}``. Both carry ``Cache-Control: no-store``.
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import Scope

NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def json_error(
    scope: Scope, status_code: int, oauth_error: str, kinde_code: str, message: str
) -> JSONResponse:
    path: str = scope.get("path", "")
    if path.startswith("/api/"):
        body: dict[str, object] = {"errors": [{"code": kinde_code, "message": message}]}
    else:
        body = {"error": oauth_error, "error_description": message}
    return JSONResponse(body, status_code=status_code, headers=NO_STORE)
