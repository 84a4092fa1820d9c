"""What the browser-facing pages share: templates, the session cookie and CSRF tokens.

The session cookie holds a random id whose digest is stored (``store.oidc_sessions``); it is
``HttpOnly``, ``SameSite=Lax`` (sent on the top-level navigation an authorization request is)
and ``Secure`` whenever the issuer is https. Forms carry a CSRF token that is an HMAC of a
separate random cookie (the "signed double-submit cookie" of OWASP's CSRF cheat sheet), so no
server-side state is needed before sign-in. The cookie itself is ``<nonce>.<HMAC of the nonce>``:
a value the server did not issue (planted by a sibling subdomain, say) is never adopted — the
page replaces it and a form bound to it is refused.
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


def mac(services: Services, purpose: str, message: str) -> str:
    """An HMAC-SHA256 of ``message`` under the deployment's secret key, separated by purpose."""
    key = services.settings.resolved_secret_key().encode("utf-8")
    data = purpose.encode("utf-8") + b"\x00" + message.encode("utf-8")
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def _csrf_for(services: Services, nonce: str) -> str:
    return mac(services, "csrf", nonce)


def _issued_csrf_cookie(request: Request, services: Services) -> str | None:
    """The browser's CSRF cookie if this deployment issued it (its signature holds), else None."""
    value = request.cookies.get(CSRF_COOKIE, "")
    nonce, _, signature = value.rpartition(".")
    if not nonce or not hmac.compare_digest(mac(services, "csrf-cookie", nonce), signature):
        return None
    return value


def _new_csrf_cookie(services: Services) -> str:
    nonce = secrets.token_urlsafe(32)
    return f"{nonce}.{mac(services, 'csrf-cookie', nonce)}"


def csrf_is_valid(request: Request, services: Services, token: str) -> bool:
    cookie = _issued_csrf_cookie(request, services)
    if cookie is None or not token:
        return False
    return hmac.compare_digest(_csrf_for(services, cookie), token)


def render(
    request: Request,
    services: Services,
    template: str,
    context: dict[str, Any],
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """A page; forms on it get a CSRF token bound to the browser's CSRF cookie."""
    cookie = _issued_csrf_cookie(request, services) or _new_csrf_cookie(services)
    response = templates.TemplateResponse(
        request,
        template,
        {**context, "csrf_token": _csrf_for(services, cookie)},
        status_code=status_code,
        headers={**PAGE_HEADERS, **(headers or {})},
    )
    if request.cookies.get(CSRF_COOKIE) != cookie:
        response.set_cookie(
            CSRF_COOKIE, cookie, httponly=True, samesite="lax", secure=_secure(services), path="/"
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
