"""``/logout?redirect=<url>`` (Kinde's path; the ``end_session_endpoint`` of discovery).

The session ends in the store and the cookie is cleared. The browser is sent on only to a URL
some application registered as a logout URL (narrowed to one application when ``client_id`` is
given); any other ``redirect`` gets an error page, so this endpoint is no open redirector.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from claimflow.errors import OAuthError
from claimflow.oidc.browser import SESSION_COOKIE, clear_session_cookie, error_page, render
from claimflow.oidc.params import query_params
from claimflow.services import Services
from claimflow.store import applications, oidc_sessions

router = APIRouter(tags=["oauth2"])


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


@router.get("/logout", summary="End the session and return to a registered logout URL")
async def logout(request: Request) -> Response:
    services: Services = request.app.state.services
    try:
        params = query_params(request)
    except OAuthError as exc:
        return error_page(request, services, exc.error, exc.description)
    redirect = params.get("redirect") or params.get("post_logout_redirect_uri")
    if redirect and not await _is_registered_logout_url(
        services, redirect, params.get("client_id")
    ):
        return error_page(
            request, services, "invalid_request", "The redirect is not a registered logout URL."
        )
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        async with services.db.transaction() as conn:
            await oidc_sessions.end_session(conn, session_id)
    response: Response
    if redirect:
        response = RedirectResponse(redirect, status_code=302)
    else:
        response = render(request, services, "signed_out.html", {})
    clear_session_cookie(response, services)
    return response
