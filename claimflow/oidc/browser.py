"""What the browser-facing pages share: templates, the session cookie and CSRF tokens.

The session cookie holds a random id whose digest is stored (``store.oidc_sessions``); it is
``HttpOnly``, ``SameSite=Lax`` (sent on the top-level navigation an authorization request is)
and ``Secure`` whenever the issuer is https. Forms carry a CSRF token that is an HMAC of a
separate random cookie (the "signed double-submit cookie" of OWASP's CSRF cheat sheet), so no
server-side state is needed before sign-in.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from claimflow.services import Services

SESSION_COOKIE = "claimflow_session"
CSRF_COOKIE = "claimflow_csrf"

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def _secure(services: Services) -> bool:
    return services.issuer.startswith("https://")


def _csrf_for(services: Services, nonce: str) -> str:
    key = services.settings.resolved_secret_key().encode("utf-8")
    return hmac.new(key, b"csrf\x00" + nonce.encode("utf-8"), hashlib.sha256).hexdigest()


def csrf_is_valid(request: Request, services: Services, token: str) -> bool:
    nonce = request.cookies.get(CSRF_COOKIE)
    if not nonce or not token:
        return False
    return hmac.compare_digest(_csrf_for(services, nonce), token)


def render(
    request: Request,
    services: Services,
    template: str,
    context: dict[str, Any],
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """A page; forms on it get a CSRF token bound to the browser's CSRF cookie."""
    nonce = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
    response = templates.TemplateResponse(
        request,
        template,
        {**context, "csrf_token": _csrf_for(services, nonce)},
        status_code=status_code,
        headers={**PAGE_HEADERS, **(headers or {})},
    )
    if request.cookies.get(CSRF_COOKIE) != nonce:
        response.set_cookie(
            CSRF_COOKIE, nonce, httponly=True, samesite="lax", secure=_secure(services), path="/"
        )
    return response


def error_page(
    request: Request, services: Services, error: str, description: str, status_code: int = 400
) -> HTMLResponse:
    return render(
        request,
        services,
        "error.html",
        {"error": error, "description": description},
        status_code=status_code,
    )


def set_session_cookie(response: Response, services: Services, session_id: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=services.settings.session_ttl_seconds,
        httponly=True,
        samesite="lax",
        secure=_secure(services),
        path="/",
    )


def clear_session_cookie(response: Response, services: Services) -> None:
    response.delete_cookie(
        SESSION_COOKIE, httponly=True, samesite="lax", secure=_secure(services), path="/"
    )
