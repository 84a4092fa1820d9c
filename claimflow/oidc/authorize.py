"""The authorization endpoint ``/oauth2/auth`` (RFC 6749 §4.1, OIDC Core §3.1.2), its login
page and its organization picker.

The flow: validate the request → find the browser's session (unless ``prompt=login``) or show
the login page → choose the organization (``org_code``, the picker when the application requires
one, else a personal sign-in) → store a single-use code and redirect with ``code``, ``state`` and
``iss`` (RFC 9207). The pending request travels through each form as its original query string
and is validated again on every step, so no step trusts a value the browser could have changed.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from claimflow.errors import Conflict, OAuthError
from claimflow.oidc.authorization_request import (
    AuthorizationRequest,
    RedirectedError,
    UntrustedRedirect,
    error_redirect,
    redirect_with,
    validate_authorization_request,
)
from claimflow.oidc.browser import (
    SESSION_COOKIE,
    csrf_is_valid,
    error_page,
    mac,
    render,
    set_session_cookie,
)
from claimflow.oidc.login import SignInOutcome, sign_in_with_password
from claimflow.oidc.params import (
    PENDING_REQUEST_FIELD,
    authorization_form_params,
    parse_query_string,
    query_params,
)
from claimflow.oidc.password_migration import PasswordMigration
from claimflow.oidc.post_authentication import check_post_authentication
from claimflow.services import Services
from claimflow.store import oidc_codes, oidc_sessions, organizations, users
from claimflow.store._rows import utcnow

router = APIRouter(tags=["oauth2"])

LOGIN_FAILED = "The email or password is incorrect."
LOCKED_OUT = "Too many failed sign-in attempts. Wait a few minutes and try again."


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})


def _login_page(
    request: Request,
    authz: AuthorizationRequest,
    *,
    error: str | None = None,
    email: str = "",
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    return render(
        request,
        _services(request),
        "login.html",
        {
            "application": authz.client.name,
            "authorization_request": authz.query,
            "error": error,
            "email": email,
        },
        status_code=status_code,
        headers=headers,
    )


async def _issue_code(
    services: Services,
    authz: AuthorizationRequest,
    user_id: str,
    org_code: str | None,
    auth_time: datetime,
    is_existing_session: bool,
) -> Response:
    code = secrets.token_urlsafe(32)
    async with services.db.transaction() as conn:
        await oidc_codes.create_code(
            conn,
            code,
            client_id=authz.client.client_id,
            user_id=user_id,
            org_code=org_code,
            redirect_uri=authz.redirect_uri,
            scope=authz.scope,
            audience=authz.audience,
            nonce=authz.nonce,
            code_challenge=authz.code_challenge,
            code_challenge_method=authz.code_challenge_method,
            auth_time=auth_time,
            is_existing_session=is_existing_session,
            ttl_seconds=services.settings.authorization_code_ttl_seconds,
        )
    params = {"code": code}
    if authz.state is not None:
        params["state"] = authz.state
    params["iss"] = services.issuer
    return _redirect(redirect_with(authz.redirect_uri, params))


async def _ensure_membership(
    services: Services, authz: AuthorizationRequest, org_code: str, user_id: str
) -> None:
    """Admit the user to an auto-membership organization; ``access_denied`` for any other."""
    try:
        async with services.db.transaction() as conn:
            if await organizations.find_membership(conn, org_code, user_id) is not None:
                return
            org = await organizations.find_organization(conn, org_code)
            if org is None or not org.is_auto_membership_enabled:
                raise RedirectedError(
                    authz, "access_denied", "The user is not a member of this organization."
                )
            await organizations.add_member(conn, org.code, user_id)
    except Conflict:
        # A concurrent sign-in (another tab) added the same membership first.
        async with services.db.connect() as conn:
            if await organizations.find_membership(conn, org_code, user_id) is None:
                raise


def _within_max_age(authz: AuthorizationRequest, auth_time: datetime) -> bool:
    """OIDC Core §3.1.2.1: past ``max_age`` seconds the user MUST be authenticated again."""
    if authz.max_age is None:
        return True
    return utcnow() - auth_time <= timedelta(seconds=authz.max_age)


def _fresh_login_proof(
    services: Services, authz: AuthorizationRequest, user_id: str, auth_time: datetime
) -> str:
    """Carried by the organization picker shown right after a password sign-in.

    It tells the picker step that this authentication was made for this very request, so a
    ``max_age`` (even 0) is met although some seconds passed while the user chose.
    """
    return mac(
        services, "fresh-login", f"{user_id}\x00{int(auth_time.timestamp())}\x00{authz.query}"
    )


async def _continue_signed_in(
    request: Request,
    authz: AuthorizationRequest,
    user_id: str,
    auth_time: datetime,
    is_existing_session: bool,
) -> Response:
    """Choose the organization for a signed-in user, then issue the code."""
    services = _services(request)
    org_code: str | None = None
    if authz.org_code is not None:
        await _ensure_membership(services, authz, authz.org_code, user_id)
        org_code = authz.org_code
    elif authz.client.require_organization:
        async with services.db.connect() as conn:
            memberships = await organizations.memberships_of_user(conn, user_id)
            orgs = [await organizations.get_organization(conn, m.org_code) for m in memberships]
        if not orgs:
            raise RedirectedError(
                authz, "access_denied", "This application requires an organization."
            )
        if len(orgs) > 1:
            return render(
                request,
                services,
                "organizations.html",
                {
                    "application": authz.client.name,
                    "authorization_request": authz.query,
                    "organizations": orgs,
                    "fresh_login": ""
                    if is_existing_session
                    else _fresh_login_proof(services, authz, user_id, auth_time),
                },
            )
        org_code = orgs[0].code
    return await _issue_code(services, authz, user_id, org_code, auth_time, is_existing_session)


async def _current_session(request: Request) -> oidc_sessions.Session | None:
    """The browser's live session, if its user may still sign in (not suspended or deleted)."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id:
        return None
    async with _services(request).db.connect() as conn:
        session = await oidc_sessions.find_session(conn, session_id)
        user = await users.find_user(conn, session.user_id) if session else None
    return session if user is not None and not user.is_suspended else None


Step = Callable[[AuthorizationRequest], Awaitable[Response]]


async def _guarded(request: Request, query: str, params: dict[str, str], step: Step) -> Response:
    """Validate the request, run a step of the flow, and turn errors into a page or redirect."""
    services = _services(request)
    try:
        authz = await validate_authorization_request(services, params, query)
        return await step(authz)
    except UntrustedRedirect as exc:
        return error_page(request, services, exc.error, exc.description)
    except RedirectedError as exc:
        return _redirect(error_redirect(services, exc))


async def _start(request: Request, authz: AuthorizationRequest) -> Response:
    session = None if "login" in authz.prompt else await _current_session(request)
    if session is not None and not _within_max_age(authz, session.auth_time):
        session = None
    if session is not None:
        return await _continue_signed_in(request, authz, session.user_id, session.auth_time, True)
    if "none" in authz.prompt:
        raise RedirectedError(authz, "login_required", "The user is not signed in.")
    return _login_page(request, authz)


async def _sign_in(request: Request, authz: AuthorizationRequest, form: dict[str, str]) -> Response:
    services = _services(request)
    email, password = form.get("email", "").strip(), form.get("password", "")
    if not email or not password:
        return _login_page(
            request, authz, error="Enter your email and password.", email=email, status_code=400
        )
    address = request.client.host if request.client else None
    user_agent = request.headers.get("user-agent")
    migration = PasswordMigration(authz.client.client_id, address, user_agent)
    result = await sign_in_with_password(services, email, password, address, migration=migration)
    if result.outcome is SignInOutcome.LOCKED:
        assert result.locked_until is not None
        wait = max(1, int((result.locked_until - utcnow()).total_seconds()))
        return _login_page(
            request,
            authz,
            error=LOCKED_OUT,
            email=email,
            status_code=429,
            headers={"Retry-After": str(wait)},
        )
    if result.user is None:
        return _login_page(request, authz, error=LOGIN_FAILED, email=email, status_code=401)
    denied = await check_post_authentication(
        services,
        authz,
        result.user.id,
        is_new_user_record_created=result.is_new_user_record_created,
        ip=address,
        user_agent=user_agent,
    )
    if denied is not None:
        return _login_page(request, authz, error=denied, email=email, status_code=403)
    session_id = secrets.token_urlsafe(32)
    async with services.db.transaction() as conn:
        old_id = request.cookies.get(SESSION_COOKIE)
        if old_id:
            await oidc_sessions.end_session(conn, old_id)
        session = await oidc_sessions.create_session(
            conn, session_id, result.user.id, services.settings.session_ttl_seconds
        )
    response: Response
    try:
        response = await _continue_signed_in(
            request, authz, result.user.id, session.auth_time, False
        )
    except RedirectedError as exc:
        # Signed in but refused (e.g. not a member): the session still stands.
        response = _redirect(error_redirect(services, exc))
    set_session_cookie(response, services, session_id)
    return response


async def _choose_organization(
    request: Request, authz: AuthorizationRequest, form: dict[str, str]
) -> Response:
    services = _services(request)
    session = await _current_session(request)
    if session is None:
        return _login_page(request, authz)
    if not _within_max_age(authz, session.auth_time):
        proof = _fresh_login_proof(services, authz, session.user_id, session.auth_time)
        if not hmac.compare_digest(proof, form.get("fresh_login", "")):
            return _login_page(request, authz)
    chosen = form.get("org_code", "")
    async with _services(request).db.connect() as conn:
        membership = await organizations.find_membership(conn, chosen, session.user_id)
    if membership is None:
        raise RedirectedError(
            authz, "access_denied", "The user is not a member of this organization."
        )
    return await _issue_code(
        _services(request), authz, session.user_id, chosen, session.auth_time, True
    )


FormStep = Callable[[Request, AuthorizationRequest, dict[str, str]], Awaitable[Response]]


async def _form_step(request: Request, step: FormStep) -> Response:
    services = _services(request)
    try:
        form = await authorization_form_params(request)
        query = form.get(PENDING_REQUEST_FIELD, "")
        params = parse_query_string(query)
    except OAuthError as exc:
        return error_page(request, services, exc.error, exc.description)
    if not csrf_is_valid(request, services, form.get("csrf_token", "")):
        return error_page(
            request, services, "invalid_request", "The form expired. Start signing in again."
        )
    return await _guarded(request, query, params, lambda authz: step(request, authz, form))


@router.get("/oauth2/auth", summary="Authorization endpoint (RFC 6749 §4.1.1)")
async def authorize(request: Request) -> Response:
    try:
        params = query_params(request)
    except OAuthError as exc:
        return error_page(request, _services(request), exc.error, exc.description)
    query: bytes = request.scope.get("query_string", b"")
    return await _guarded(
        request, query.decode("ascii"), params, lambda authz: _start(request, authz)
    )


@router.post("/oauth2/auth/login", summary="Login form of the authorization endpoint")
async def login(request: Request) -> Response:
    return await _form_step(request, _sign_in)


@router.post(
    "/oauth2/auth/organization", summary="Organization picker of the authorization endpoint"
)
async def choose_organization(request: Request) -> Response:
    return await _form_step(request, _choose_organization)
