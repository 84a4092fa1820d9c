"""``/logout`` (Kinde's path; the ``end_session_endpoint`` of discovery), OIDC RP-Initiated
Logout 1.0.

Where the browser is sent afterwards: ``post_logout_redirect_uri`` (§2), Kinde's ``redirect``,
or ``redirect_uri`` (what Kinde's Python SDK sends) — three names for one parameter, only ever a
URL some application registered as a logout URL (narrowed to one application when ``client_id``
or the ``id_token_hint`` names it; §3), so this endpoint is no open redirector. ``state`` is
passed back on the redirect as §3 asks, whichever of the three names carried it (Kinde's Python
SDK sends ``state`` with ``redirect_uri``).

Who may end the session: a ``GET`` is a link any site can make the browser follow, so it ends the
session at once only with a valid ``id_token_hint`` (an ID token we issued to the session's
user; expiry does not matter, §2). Otherwise the user is asked to confirm (§2: "the OP SHOULD
ask the End-User whether to log out"), with a form carrying a CSRF token that ``POST /logout``
checks: a stranger's page cannot sign the user out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from claimflow.errors import OAuthError
from claimflow.oidc.authorization_request import redirect_with
from claimflow.oidc.browser import (
    SESSION_COOKIE,
    clear_session_cookie,
    csrf_is_valid,
    error_page,
    render,
)
from claimflow.oidc.params import authorization_form_params, parse_query_string, query_params
from claimflow.services import Services
from claimflow.store import applications, oidc_sessions

router = APIRouter(tags=["oauth2"])

REDIRECT_PARAMETERS = ("post_logout_redirect_uri", "redirect", "redirect_uri")
"""Accepted names of the return URL: OIDC's, Kinde's, and Kinde's Python SDK's."""

PENDING_LOGOUT_FIELD = "logout_request"
"""The confirmation form's field carrying the original query string."""


class LogoutRefused(OAuthError):
    """A logout request we will not follow; shown on a page, never redirected."""


@dataclass(frozen=True, slots=True)
class LogoutRequest:
    redirect: str | None
    state: str | None
    hinted_user: str | None
    """The ``sub`` of a valid ``id_token_hint``, if one came."""
    query: str
    """The original query string, carried through the confirmation form."""

    def destination(self) -> str | None:
        if self.redirect is None or self.state is None:
            return self.redirect
        return redirect_with(self.redirect, {"state": self.state})


def _redirect_param(params: dict[str, str]) -> str | None:
    given = {params[name] for name in REDIRECT_PARAMETERS if params.get(name)}
    if len(given) > 1:
        raise LogoutRefused("invalid_request", "Conflicting logout redirect parameters.")
    return given.pop() if given else None


async def _id_token_hint(services: Services, hint: str) -> dict[str, Any]:
    """The claims of an ID token we issued (expired or not, §2), or ``LogoutRefused``."""
    try:
        return await services.keys.verify(hint, issuer=services.issuer, allow_expired=True)
    except jwt.PyJWTError as exc:
        raise LogoutRefused("invalid_request", "id_token_hint is not a valid ID token.") from exc


async def _is_registered_logout_url(services: Services, url: str, client_id: str | None) -> bool:
    async with services.db.connect() as conn:
        if client_id:
            app = await applications.find_application(conn, client_id)
            return app is not None and url in app.logout_uris
        after: str | None = None
        while True:
            page = await applications.list_applications(conn, limit=200, after_id=after)
            if any(url in app.logout_uris for app in page):
                return True
            if len(page) < 200:
                return False
            after = page[-1].client_id


async def _logout_request(services: Services, params: dict[str, str], query: str) -> LogoutRequest:
    """The validated request; ``LogoutRefused`` for anything we will not follow."""
    client_id = params.get("client_id") or None
    hinted_user: str | None = None
    if params.get("id_token_hint"):
        claims = await _id_token_hint(services, params["id_token_hint"])
        audience = claims.get("aud")
        audiences: list[Any] = [audience] if isinstance(audience, str) else list(audience or [])
        if client_id and client_id not in audiences:
            raise LogoutRefused("invalid_request", "id_token_hint was not issued to client_id.")
        client_id = client_id or (audiences[0] if len(audiences) == 1 else None)
        sub = claims.get("sub")
        hinted_user = sub if isinstance(sub, str) else None
    redirect = _redirect_param(params)
    if redirect and not await _is_registered_logout_url(services, redirect, client_id):
        raise LogoutRefused("invalid_request", "The redirect is not a registered logout URL.")
    state = params.get("state") if redirect else None
    return LogoutRequest(redirect, state, hinted_user, query)


async def _session_user(services: Services, request: Request) -> str | None:
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id:
        return None
    async with services.db.connect() as conn:
        session = await oidc_sessions.find_session(conn, session_id)
    return session.user_id if session else None


async def _end_session(services: Services, request: Request, logout: LogoutRequest) -> Response:
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        async with services.db.transaction() as conn:
            await oidc_sessions.end_session(conn, session_id)
    destination = logout.destination()
    response: Response
    if destination:
        response = RedirectResponse(destination, status_code=302)
    else:
        response = render(request, services, "signed_out.html", {})
    clear_session_cookie(response, services)
    return response


@router.get("/logout", summary="End the session (RP-Initiated Logout 1.0)")
async def logout(request: Request) -> Response:
    services: Services = request.app.state.services
    try:
        params = query_params(request)
        raw: bytes = request.scope.get("query_string", b"")
        logout_request = await _logout_request(services, params, raw.decode("ascii"))
    except OAuthError as exc:
        return error_page(request, services, exc.error, exc.description)
    user_id = await _session_user(services, request)
    if user_id is None or user_id == logout_request.hinted_user:
        return await _end_session(services, request, logout_request)
    return render(
        request,
        services,
        "logout_confirm.html",
        {"logout_request": logout_request.query},
    )


@router.post("/logout", summary="Confirm ending the session (RP-Initiated Logout 1.0 §2)")
async def confirm_logout(request: Request) -> Response:
    services: Services = request.app.state.services
    try:
        form = await authorization_form_params(request, PENDING_LOGOUT_FIELD)
        query = form.get(PENDING_LOGOUT_FIELD, "")
        logout_request = await _logout_request(services, parse_query_string(query), query)
    except OAuthError as exc:
        return error_page(request, services, exc.error, exc.description)
    if not csrf_is_valid(request, services, form.get("csrf_token", "")):
        return error_page(request, services, "invalid_request", "The form expired. Sign out again.")
    return await _end_session(services, request, logout_request)
