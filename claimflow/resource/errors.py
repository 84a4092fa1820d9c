"""Why a resource server refuses a request, as RFC 6750 §3 wants it said.

``ResourceAccessDenied`` is a ``ClaimflowError`` (the one hierarchy) and also a Starlette
``HTTPException``: an app that forgot ``ResourceServer.install`` still answers 401/403 with the
right ``WWW-Authenticate`` header instead of a 500.
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException

from claimflow.errors import ClaimflowError


def _quoted(value: str) -> str:
    """An RFC 7230 quoted-string: escape backslash and double quote, drop control characters."""
    cleaned = "".join(ch for ch in value if ch >= " " and ch != "\x7f")
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ResourceAccessDenied(ClaimflowError, HTTPException):
    """A refused request: 401 for a missing or invalid token, 403 when it is not enough.

    ``error`` is RFC 6750 §3.1's code (``invalid_request``, ``invalid_token``,
    ``insufficient_scope``) or ``None`` when the request carried no credentials at all (§3.1:
    "the resource server SHOULD NOT include an error code"). ``details`` say what was required.
    """

    def __init__(
        self,
        status_code: int,
        error: str | None,
        description: str,
        *,
        realm: str = "api",
        details: dict[str, Any] | None = None,
    ) -> None:
        self.error = error
        self.description = description
        self.realm = realm
        self.details = details or {}
        ClaimflowError.__init__(self, description)
        HTTPException.__init__(
            self, status_code=status_code, detail=description, headers=self.headers_for()
        )

    def headers_for(self) -> dict[str, str]:
        params = [f"realm={_quoted(self.realm)}"]
        if self.error is not None:
            params.append(f"error={_quoted(self.error)}")
            params.append(f"error_description={_quoted(self.description)}")
        return {"WWW-Authenticate": "Bearer " + ", ".join(params)}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.error or "unauthorized"}
        body["error_description"] = self.description
        body.update(self.details)
        return body


def missing_token(realm: str) -> ResourceAccessDenied:
    return ResourceAccessDenied(401, None, "A bearer access token is required.", realm=realm)


def invalid_token(description: str, realm: str = "api") -> ResourceAccessDenied:
    return ResourceAccessDenied(401, "invalid_token", description, realm=realm)


def insufficient(description: str, realm: str = "api", **details: Any) -> ResourceAccessDenied:
    return ResourceAccessDenied(
        403, "insufficient_scope", description, realm=realm, details=details
    )
