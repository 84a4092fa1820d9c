"""The small JSON errors the middleware answers with, in the caller's dialect.

A request to Kinde's APIs (the Management API under ``/api/``, the Account API under
``/account_api/``, Kinde's webhooks in at ``/webhooks/kinde``) gets Kinde's envelope
``{"errors": [{"code", "message"}]}``; anything else (the OAuth and OIDC endpoints) gets
RFC 6749 §5.2's ``{"error", "error_description"}``. Both carry ``Cache-Control: no-store``.
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import Scope

NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}

KINDE_ENVELOPE_PATHS = ("/api/", "/account_api/", "/webhooks/kinde")
"""Path prefixes whose errors are Kinde's envelope; their routes raise ``ManagementAPIError``."""


def speaks_kinde_envelope(path: str) -> bool:
    """Whether an error on ``path`` is Kinde's envelope rather than an OAuth error."""
    return path.startswith(KINDE_ENVELOPE_PATHS)


def json_error(
    scope: Scope, status_code: int, oauth_error: str, kinde_code: str, message: str
) -> JSONResponse:
    if speaks_kinde_envelope(scope.get("path", "")):
        body: dict[str, object] = {"errors": [{"code": kinde_code, "message": message}]}
    else:
        body = {"error": oauth_error, "error_description": message}
    return JSONResponse(body, status_code=status_code, headers=NO_STORE)
