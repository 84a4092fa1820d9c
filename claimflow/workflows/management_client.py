"""The Management API client of the workflows: one interface, two transports (httpx's shape).

``ManagementAPIClient.get/post(endpoint, params)`` is what workflows call. ``params`` are always
sent through httpx's query encoder, never pasted into the URL, so an organization code like
``a&b#c`` reaches the server as data (design §1's first weakness). The client checks what the
reference did not (design §7): the HTTP status, timeouts, that the body is JSON and an object,
and it reads every page of a paged list.

Transports:
- ``InProcessTransport`` calls this deployment's own ``/api/v1`` routes through
  ``httpx.ASGITransport`` with an M2M token minted in-process: the claim is built from exactly
  the JSON our Management API returns, with no socket and no credentials to configure.
- ``HTTPTransport`` calls any Kinde-compatible Management API (``CLAIMFLOW_MANAGEMENT_API_URL``)
  with M2M credentials from ``KINDE_WF_M2M_CLIENT_ID`` / ``KINDE_WF_M2M_CLIENT_SECRET``; the token
  from ``<base>/oauth2/token`` is cached until shortly before it expires, and one pooled
  ``httpx.AsyncClient`` carries every call.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from claimflow.domain.management_scopes import WORKFLOWS_CLIENT_ID
from claimflow.errors import ManagementAPICallFailed, ManagementAPINotFound, WorkflowRuntimeError
from claimflow.observability import tracing
from claimflow.tokens.claims import m2m_access_token_claims
from claimflow.workflows.bindings import WorkflowLogger

ParamValue = str | int | bool
_ENDPOINT = re.compile(r"^[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-{}]+)*$")
MAX_PAGES = 1000
"""A server that keeps saying ``has_more`` is broken; stop instead of looping forever."""
PAGE_SIZE = 100


METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
_PATH = re.compile(r"^[A-Za-z0-9_\-~%]+(/[A-Za-z0-9_\-~%.]+)*$")


def check_path(path: str) -> str:
    """A built path as ``build_path`` makes it: plain segments, no dot segments, no query.

    The server checks it again for a runner's call, which could send any string."""
    if not _PATH.match(path) or any(seg in {".", ".."} for seg in path.split("/")):
        raise WorkflowRuntimeError(f"Management API path {path!r} is not a plain path")
    return path


class ManagementTransport(Protocol):
    """Sends one request to ``/api/v1/<path>`` of some Management API.

    ``scopes`` are the ones the calling workflow declared: the request carries a token with
    those and no other. ``time_left`` is what remains of the run's deadline (design §8)."""

    async def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str],
        body: Any | None,
        *,
        scopes: frozenset[str],
        time_left: float | None = None,
    ) -> httpx.Response: ...

    async def aclose(self) -> None: ...


def _query(params: Mapping[str, ParamValue] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in (params or {}).items():
        if isinstance(value, bool):
            out[name] = "true" if value else "false"
        elif isinstance(value, int | str):
            out[name] = str(value)
        else:
            raise WorkflowRuntimeError(f"parameter {name!r} must be a string, integer or boolean")
    return out


def build_path(endpoint: str, path_params: Mapping[str, str] | None = None) -> str:
    """``organizations/{org_code}/users`` with each ``{name}`` percent-encoded as one segment."""
    if not _ENDPOINT.match(endpoint):
        raise WorkflowRuntimeError(
            f"endpoint {endpoint!r} must be a plain path such as 'billing/entitlements'; "
            "pass query values in params"
        )
    values = path_params or {}

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise WorkflowRuntimeError(f"endpoint {endpoint!r} needs path parameter {name!r}")
        return quote(str(values[name]), safe="")

    return re.sub(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", fill, endpoint)


class ManagementAPIClient:
    """What a workflow's ``management_api`` binding gives: ``get``, ``post``, ``put``,
    ``patch``, ``delete`` and ``get_all``; every call carries the workflow's declared scopes
    and at most the time left before the run's deadline (``deadline``, on the loop's clock)."""

    def __init__(
        self,
        transport: ManagementTransport,
        logger: WorkflowLogger,
        scopes: frozenset[str] = frozenset(),
        deadline: float | None = None,
    ) -> None:
        self._transport = transport
        self._logger = logger
        self._scopes = scopes
        self._deadline = deadline
        self.calls = 0

    async def get(
        self,
        endpoint: str,
        params: Mapping[str, ParamValue] | None = None,
        *,
        path_params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        return await self._call("GET", endpoint, params, None, path_params)

    async def post(
        self,
        endpoint: str,
        params: Mapping[str, Any] | None = None,
        *,
        path_params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """POST ``params`` as the JSON body (Kinde's ``createKindeAPI`` does the same)."""
        return await self._call("POST", endpoint, None, dict(params or {}), path_params)

    async def put(
        self,
        endpoint: str,
        params: Mapping[str, Any] | None = None,
        *,
        path_params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        return await self._call("PUT", endpoint, None, dict(params or {}), path_params)

    async def patch(
        self,
        endpoint: str,
        params: Mapping[str, Any] | None = None,
        *,
        path_params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        return await self._call("PATCH", endpoint, None, dict(params or {}), path_params)

    async def delete(
        self,
        endpoint: str,
        params: Mapping[str, ParamValue] | None = None,
        *,
        path_params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        return await self._call("DELETE", endpoint, params, None, path_params)

    async def get_all(
        self, endpoint: str, items_key: str, params: Mapping[str, ParamValue] | None = None
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Every item of a paged list (``has_more`` / ``starting_after``), and the first page.

        Kinde pages entitlements and agreements 10 at a time; the reference read page one only,
        so a customer with 12 features lost 2 (design §7).
        """
        query: dict[str, ParamValue] = {"page_size": PAGE_SIZE, **(params or {})}
        items: list[dict[str, Any]] = []
        first: dict[str, Any] | None = None
        seen_cursors: set[str] = set()
        for _ in range(MAX_PAGES):
            page = await self.get(endpoint, query)
            first = first or page
            batch = page.get(items_key)
            if not isinstance(batch, list) or not all(isinstance(i, dict) for i in batch):
                raise ManagementAPICallFailed(
                    endpoint, f"'{items_key}' is not a list of objects", 200
                )
            items.extend(batch)
            has_more = page.get("has_more", False)
            if not isinstance(has_more, bool):
                raise ManagementAPICallFailed(endpoint, "'has_more' is not a boolean", 200)
            if not has_more or not batch:
                return items, first
            cursor = batch[-1].get("id")
            if not isinstance(cursor, str) or cursor in seen_cursors:
                raise ManagementAPICallFailed(endpoint, "paging cursor is missing or repeats", 200)
            seen_cursors.add(cursor)
            query["starting_after"] = cursor
        raise ManagementAPICallFailed(endpoint, f"more than {MAX_PAGES} pages", 200)

    async def _call(
        self,
        method: str,
        endpoint: str,
        params: Mapping[str, ParamValue] | None,
        body: dict[str, Any] | None,
        path_params: Mapping[str, str] | None,
    ) -> dict[str, Any]:
        path = build_path(endpoint, path_params)
        query = _query(params)
        started = time.perf_counter()
        self.calls += 1
        timeout = None
        if self._deadline is not None:
            timeout = self._deadline - asyncio.get_running_loop().time()
            if timeout <= 0:
                raise ManagementAPICallFailed(endpoint, "the run's deadline has passed")
        try:
            response = await tracing.traced(
                f"management_api {method} {endpoint}",
                self._transport.request(
                    method, path, query, body, scopes=self._scopes, time_left=timeout
                ),
                {"http.request.method": method, "claimflow.endpoint": endpoint},
            )
        except (httpx.TimeoutException, TimeoutError) as exc:
            self._logger.error(f"{method} {endpoint} timed out")
            raise ManagementAPICallFailed(endpoint, "timed out") from exc
        except httpx.HTTPError as exc:
            self._logger.error(f"{method} {endpoint} failed: {type(exc).__name__}")
            raise ManagementAPICallFailed(endpoint, f"unreachable ({type(exc).__name__})") from exc
        elapsed = (time.perf_counter() - started) * 1000
        self._logger.info(f"{method} {endpoint} -> {response.status_code} in {elapsed:.1f} ms")
        if response.status_code == 404:
            raise ManagementAPINotFound(endpoint, _error_text(response), 404)
        if not 200 <= response.status_code < 300:
            raise ManagementAPICallFailed(endpoint, _error_text(response), response.status_code)
        try:
            data = json.loads(response.content)
        except ValueError as exc:
            raise ManagementAPICallFailed(
                endpoint, "response is not valid JSON", response.status_code
            ) from exc
        if not isinstance(data, dict):
            raise ManagementAPICallFailed(
                endpoint, "response is not a JSON object", response.status_code
            )
        return data


def _error_text(response: httpx.Response) -> str:
    """Kinde's ``{"errors": [{code, message}]}`` (or its 404 object form), else the status."""
    try:
        errors = json.loads(response.content).get("errors")
    except (ValueError, AttributeError):
        return f"HTTP {response.status_code}"
    first = errors[0] if isinstance(errors, list) and errors else errors
    if isinstance(first, dict):
        return f"{first.get('code', '')}: {first.get('message', '')}".strip(": ")
    return f"HTTP {response.status_code}"


# -- transports ------------------------------------------------------------------------------


class _CachedToken:
    """A bearer token reused until ``margin`` seconds before expiry; one refresh at a time."""

    def __init__(self, fetch: Callable[[], Awaitable[tuple[str, float]]]) -> None:
        self._fetch = fetch
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        if self._token is not None and time.monotonic() < self._expires_at:
            return self._token
        async with self._lock:
            if self._token is None or time.monotonic() >= self._expires_at:
                token, lifetime = await self._fetch()
                margin = min(60.0, lifetime / 2)
                self._token, self._expires_at = token, time.monotonic() + lifetime - margin
        assert self._token is not None
        return self._token

    def clear(self) -> None:
        self._token = None


def is_workflows_client(client_id: str) -> bool:
    """Whether ``client_id`` is the workflows' own Management API client: the in-process one,
    or the M2M application the HTTP transport uses (``KINDE_WF_M2M_CLIENT_ID``) when it points
    at this server. What it does fires no trigger, so a workflow cannot run itself again."""
    return client_id == WORKFLOWS_CLIENT_ID or client_id == os.environ.get("KINDE_WF_M2M_CLIENT_ID")


class InProcessTransport:
    """This deployment's ``/api/v1`` through ``httpx.ASGITransport``; no socket, no credentials.

    The M2M token is minted here with exactly the scopes the calling workflow declared (one
    cached token per set of scopes); its audience is ``<issuer>/api`` so the routes' ordinary
    scope checks apply unchanged, writes included.
    """

    TOKEN_SECONDS = 300

    def __init__(
        self,
        sign: Callable[[dict[str, Any]], Awaitable[str]],
        issuer: str,
        app: Any | None = None,
    ) -> None:
        self._app = app
        self._sign = sign
        self._issuer = issuer
        self._client: httpx.AsyncClient | None = None
        self._tokens: dict[frozenset[str], _CachedToken] = {}

    def _token(self, scopes: frozenset[str]) -> _CachedToken:
        token = self._tokens.get(scopes)
        if token is None:
            ordered = tuple(sorted(scopes))
            token = self._tokens[scopes] = _CachedToken(lambda: self._mint(ordered))
        return token

    async def _mint(self, scopes: tuple[str, ...]) -> tuple[str, float]:
        claims = m2m_access_token_claims(
            issuer=self._issuer,
            client_id=WORKFLOWS_CLIENT_ID,
            audience=self._issuer + "/api",
            scopes=scopes,
            jti=secrets.token_hex(16),
            now=int(time.time()),
            ttl=self.TOKEN_SECONDS,
        )
        return await self._sign(claims), float(self.TOKEN_SECONDS)

    def attach(self, app: Any) -> None:
        """Serve calls with ``app`` (the ASGI app the app factory built); the first one stays."""
        if self._app is None:
            self._app = app

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            if self._app is None:
                raise WorkflowRuntimeError(
                    "the in-process Management API has no app yet (create_app attaches it)"
                )
            transport = httpx.ASGITransport(app=self._app)
            self._client = httpx.AsyncClient(transport=transport, base_url=self._issuer)
        return self._client

    async def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str],
        body: Any | None,
        *,
        scopes: frozenset[str],
        time_left: float | None = None,
    ) -> httpx.Response:
        # ASGITransport ignores httpx timeouts: the deadline is applied around the call.
        async with asyncio.timeout(time_left):
            headers = {"authorization": f"Bearer {await self._token(scopes).get()}"}
            return await self._http().request(
                method, f"/api/v1/{path}", params=params, json=body, headers=headers
            )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class HTTPTransport:
    """A Kinde-compatible Management API over HTTP with cached M2M client-credentials tokens."""

    def __init__(
        self,
        base_url: str,
        client_id: str | None = None,
        client_secret: str | None = None,
        timeout_seconds: float = 5.0,
        max_connections: int = 100,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._client_id = client_id or os.environ.get("KINDE_WF_M2M_CLIENT_ID")
        self._client_secret = client_secret or os.environ.get("KINDE_WF_M2M_CLIENT_SECRET")
        self._timeout = timeout_seconds
        self._max_connections = max_connections
        self._client: httpx.AsyncClient | None = None
        self._tokens: dict[frozenset[str], _CachedToken] = {}

    def _token(self, scopes: frozenset[str]) -> _CachedToken:
        token = self._tokens.get(scopes)
        if token is None:
            scope = " ".join(sorted(scopes))
            token = self._tokens[scopes] = _CachedToken(lambda: self._fetch_token(scope))
        return token

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self.base_url,
                timeout=httpx.Timeout(self._timeout),
                limits=httpx.Limits(
                    max_connections=self._max_connections,
                    max_keepalive_connections=self._max_connections,
                ),
                headers={"accept": "application/json"},
            )
        return self._client

    async def _fetch_token(self, scope: str) -> tuple[str, float]:
        """Client credentials (RFC 6749 §4.4.2) asking for the workflow's declared ``scope``."""
        if not self._client_id:
            raise ManagementAPICallFailed("oauth2/token", "M2M client ID not set")
        if not self._client_secret:
            raise ManagementAPICallFailed("oauth2/token", "M2M client secret not set")
        response = await self._http().post(
            "/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": self._client_id,
                "client_secret": self._client_secret,
                "audience": self.base_url + "/api",
                **({"scope": scope} if scope else {}),
            },
        )
        if response.status_code != 200:
            raise ManagementAPICallFailed(
                "oauth2/token", _error_text(response), response.status_code
            )
        try:
            payload = response.json()
            token = payload["access_token"]
            lifetime = float(payload.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError) as exc:
            raise ManagementAPICallFailed("oauth2/token", "no access token returned", 200) from exc
        if not isinstance(token, str):
            raise ManagementAPICallFailed("oauth2/token", "no access token returned", 200)
        return token, lifetime

    async def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str],
        body: Any | None,
        *,
        scopes: frozenset[str],
        time_left: float | None = None,
    ) -> httpx.Response:
        token = self._token(scopes)
        limit = httpx.Timeout(self._timeout if time_left is None else min(time_left, self._timeout))
        async with asyncio.timeout(time_left):
            for attempt in range(2):
                headers = {"authorization": f"Bearer {await token.get()}"}
                response = await self._http().request(
                    method,
                    f"/api/v1/{path}",
                    params=params,
                    json=body,
                    headers=headers,
                    timeout=limit,
                )
                if response.status_code == 401 and attempt == 0:
                    # The server may have rotated keys or revoked the token: fetch a new one once.
                    token.clear()
                    continue
                return response
            return response

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
