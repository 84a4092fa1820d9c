"""Validating an authorization request (RFC 6749 §4.1.1, OIDC Core §3.1.2.1).

Validation has two stages because of where errors may go. Until the client and its exact
redirect URI are known, an error is shown to the user and never redirected (§4.1.2.1: the server
"MUST NOT automatically redirect the user-agent to the invalid redirection URI" — otherwise this
endpoint is an open redirector). After that, errors travel back to the client as ``error`` and
``state`` on the redirect URI.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from claimflow.domain import Application, ApplicationType
from claimflow.errors import ClaimflowError, OAuthError
from claimflow.oidc import pkce
from claimflow.oidc.resource_indicators import authorize_user_audiences, requested_audiences
from claimflow.services import Services
from claimflow.store import applications

DEFAULT_SCOPE = "openid profile email offline"
"""What Kinde's SDKs ask for; used when a request names no scope."""

SUPPORTED_SCOPES = frozenset({"openid", "profile", "email", "offline", "offline_access"})
SUPPORTED_PROMPTS = frozenset({"login", "none", "consent", "select_account", "create"})
SUPPORTED_RESPONSE_MODES = frozenset({"query"})
MAX_AGE_DIGITS = 10
"""``max_age`` is seconds; ten digits (over 300 years) is more than any real request needs."""


class UntrustedRedirect(ClaimflowError):
    """An error found before the redirect URI was validated: shown on a page, not redirected."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description


class RedirectedError(ClaimflowError):
    """An error to send back to the client's validated redirect URI (§4.1.2.1)."""

    def __init__(self, request: AuthorizationRequest, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.request = request
        self.error = error
        self.description = description


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    client: Application
    redirect_uri: str
    state: str | None
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    prompt: frozenset[str]
    org_code: str | None
    audience: tuple[str, ...]
    query: str
    max_age: int | None = None
    """Seconds since the user last authenticated beyond which the password is asked again."""
    """The original query string, carried through the login and organization forms."""


def redirect_with(redirect_uri: str, params: dict[str, str]) -> str:
    """``redirect_uri`` with ``params`` added to its query, every value URL-encoded (§4.1.2)."""
    parts = urlsplit(redirect_uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query.extend(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def error_redirect(services: Services, exc: RedirectedError) -> str:
    params = {"error": exc.error, "error_description": exc.description}
    if exc.request.state is not None:
        params["state"] = exc.request.state
    params["iss"] = services.issuer
    return redirect_with(exc.request.redirect_uri, params)


def _max_age(value: str | None) -> int | None:
    """``max_age`` (OIDC Core §3.1.2.1): a non-negative integer of seconds, or None if invalid."""
    if value is None or not value.isascii() or not value.isdigit():
        return None
    if len(value) > MAX_AGE_DIGITS:
        return None
    return int(value)


def _refuse_unsupported_features(request: AuthorizationRequest, params: dict[str, str]) -> None:
    """Say so when the client asks for something we do not do, rather than ignore it.

    Request objects are optional (OIDC Core §6): a provider without them answers
    ``request_not_supported`` / ``request_uri_not_supported`` (§3.1.2.6). An unknown
    ``response_mode`` (OAuth 2.0 Multiple Response Type Encoding Practices §2.1) would otherwise
    be answered in the query anyway, which a client expecting ``form_post`` never reads.
    """
    if "request" in params:
        raise RedirectedError(
            request, "request_not_supported", "Request objects (request) are not supported."
        )
    if "request_uri" in params:
        raise RedirectedError(request, "request_uri_not_supported", "request_uri is not supported.")
    response_mode = params.get("response_mode")
    if response_mode is not None and response_mode not in SUPPORTED_RESPONSE_MODES:
        raise RedirectedError(
            request, "invalid_request", "Unsupported response_mode; only 'query' is supported."
        )


async def validate_authorization_request(
    services: Services, params: dict[str, str], query: str
) -> AuthorizationRequest:
    """The validated request; raises ``UntrustedRedirect`` or ``RedirectedError``."""
    client_id = params.get("client_id", "")
    if not client_id:
        raise UntrustedRedirect("invalid_request", "Missing parameter 'client_id'.")
    async with services.db.connect() as conn:
        client = await applications.find_application(conn, client_id)
    if client is None or client.type is ApplicationType.M2M:
        raise UntrustedRedirect("invalid_client", "Unknown client_id.")
    redirect_uri = params.get("redirect_uri", "")
    if not redirect_uri:
        raise UntrustedRedirect("invalid_request", "Missing parameter 'redirect_uri'.")
    if redirect_uri not in client.redirect_uris:
        raise UntrustedRedirect(
            "invalid_request", "redirect_uri is not registered for this client."
        )

    prompt = frozenset(params.get("prompt", "").split())
    raw_max_age = params.get("max_age")
    max_age = _max_age(raw_max_age)
    request = AuthorizationRequest(
        client=client,
        redirect_uri=redirect_uri,
        state=params.get("state"),
        scope=params.get("scope", "").strip() or DEFAULT_SCOPE,
        nonce=params.get("nonce") or None,
        code_challenge=params.get("code_challenge") or None,
        code_challenge_method=params.get("code_challenge_method") or None,
        prompt=prompt,
        org_code=params.get("org_code") or None,
        audience=tuple(params.get("audience", "").split()),
        query=query,
        max_age=max_age,
    )
    _refuse_unsupported_features(request, params)
    if raw_max_age is not None and max_age is None:
        raise RedirectedError(
            request, "invalid_request", "max_age must be a non-negative number of seconds."
        )
    response_type = params.get("response_type", "")
    if not response_type:
        raise RedirectedError(request, "invalid_request", "Missing parameter 'response_type'.")
    if response_type != "code":
        raise RedirectedError(
            request, "unsupported_response_type", "Only response_type=code is supported."
        )
    unknown = sorted(set(request.scope.split()) - SUPPORTED_SCOPES)
    if unknown:
        raise RedirectedError(request, "invalid_scope", f"Unknown scope: {' '.join(unknown)}.")
    if not prompt <= SUPPORTED_PROMPTS or ("none" in prompt and len(prompt) > 1):
        raise RedirectedError(request, "invalid_request", "Unsupported prompt value.")
    try:
        requested_audiences(params.get("audience"))
        async with services.db.connect() as conn:
            await authorize_user_audiences(
                conn, client, request.audience, services.management_audience
            )
    except OAuthError as exc:
        raise RedirectedError(request, exc.error, exc.description) from exc
    try:
        pkce.validate_challenge(
            request.code_challenge, request.code_challenge_method, required=client.is_public
        )
    except OAuthError as exc:
        raise RedirectedError(request, exc.error, exc.description) from exc
    return request
