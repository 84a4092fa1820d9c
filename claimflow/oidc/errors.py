"""OAuth error responses (RFC 6749 §5.2): ``{"error", "error_description"}`` with no-store.

Two errors of ours extend §5.2 (which allows new codes, §8.5) when a user token cannot be
issued for a reason on the server's side; both are 503 so clients and proxies treat them as
temporary, and in both cases nothing was issued (the code stays unspent, the refresh token is
not rotated), so the same request may simply be retried:

- ``workflow_failed``: a token-generation workflow failed under the ``stop`` policy. The body adds
  ``workflow_id`` and ``run_id`` (look the run up with ``claimflow workflows runs``) and the
  response carries ``Retry-After``.
- ``token_too_large``: even the smallest forms of the custom claims do not fit the token size
  budget (``access_token_max_bytes`` / ``id_token_max_bytes``).

A workflow that denies access (``auth.deny_access(reason)``) yields ``access_denied`` (400)
with the reason as ``error_description``.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from claimflow.errors import OAuthError, TokenTooLarge, WorkflowAccessDenied, WorkflowError

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

WORKFLOW_RETRY_AFTER_SECONDS = 5


class DetailedOAuthError(OAuthError):
    """An OAuth error whose body carries extra members and whose response extra headers."""

    def __init__(
        self,
        error: str,
        description: str,
        status_code: int,
        *,
        details: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(error, description, status_code)
        self.details = dict(details or {})
        self.headers = dict(headers or {})


def from_issuance_error(exc: WorkflowError | TokenTooLarge) -> OAuthError:
    """The OAuth error a client sees when workflows or the size budget stop issuance."""
    if isinstance(exc, WorkflowAccessDenied):
        return OAuthError("access_denied", exc.reason, 400)
    if isinstance(exc, WorkflowError):
        return DetailedOAuthError(
            "workflow_failed",
            "A token-generation workflow failed; nothing was issued. Retry later.",
            503,
            details={"workflow_id": exc.workflow_id, "run_id": exc.run_id},
            headers={"Retry-After": str(WORKFLOW_RETRY_AFTER_SECONDS)},
        )
    return DetailedOAuthError(
        "token_too_large",
        f"The {exc.token.replace('_', ' ')} would exceed its size budget; nothing was issued.",
        503,
    )


def oauth_error_response(exc: OAuthError) -> JSONResponse:
    body = {"error": exc.error}
    if exc.description:
        body["error_description"] = exc.description
    headers = dict(NO_STORE)
    if isinstance(exc, DetailedOAuthError):
        body.update(exc.details)
        headers.update(exc.headers)
    if exc.status_code == 401:
        headers["WWW-Authenticate"] = 'Basic realm="claimflow"'
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


async def oauth_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OAuthError)
    return oauth_error_response(exc)


def install(app: FastAPI) -> None:
    app.add_exception_handler(OAuthError, oauth_error_handler)
