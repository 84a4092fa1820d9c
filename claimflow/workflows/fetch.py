"""The ``fetch`` binding (Kinde's ``kinde.fetch``): outbound HTTP the server makes for a workflow.

A workflow calling a CRM should not need a raw HTTP client (in a runner it has no network
credentials to hide anyway). The server performs each call under the run's deadline, only to the
hosts the workflow declared (``WorkflowSettings.fetch_hosts``), refuses loopback, private,
link-local and reserved addresses unless the workflow says ``allow_private_fetch`` (SSRF: a
workflow must not reach the database or the cloud metadata endpoint through us), and writes each
call in the run log: method, URL without its query (which may hold keys), status and time.

The address check and the connection are one step (``pinned_fetch_client``): the host is
resolved once, every address it resolves to is checked, and the connection goes to exactly the
address checked. Checking, then letting the HTTP client resolve the name again, would let a DNS
answer that changes between the two (DNS rebinding) send the request to loopback.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from claimflow.errors import WorkflowRuntimeError

MAX_RESPONSE_BYTES = 1024 * 1024
FETCH_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"})


@dataclass(frozen=True, slots=True)
class FetchRequest:
    url: str
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "method": self.method,
            "headers": dict(self.headers),
            "body": self.body,
        }

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> FetchRequest:
        headers = wire.get("headers") or {}
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise WorkflowRuntimeError("fetch headers must map strings to strings")
        body = wire.get("body")
        if body is not None and not isinstance(body, str):
            raise WorkflowRuntimeError("a fetch body must be a string")
        return cls(str(wire["url"]), str(wire.get("method", "GET")).upper(), headers, body)


@dataclass(frozen=True, slots=True)
class FetchResponse:
    """The answer: status, headers (lower-case names) and the body as text."""

    status: int
    headers: Mapping[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)

    def to_wire(self) -> dict[str, Any]:
        return {"status": self.status, "headers": dict(self.headers), "text": self.text}

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> FetchResponse:
        return cls(int(wire["status"]), dict(wire["headers"]), str(wire["text"]))


FetchPerformer = Callable[[FetchRequest], Awaitable[FetchResponse]]


class Fetch:
    """What the workflow calls: ``await bindings.fetch("https://crm.example/api", method=...)``."""

    def __init__(self, perform: FetchPerformer) -> None:
        self._perform = perform

    async def __call__(
        self,
        url: str,
        *,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        body: str | None = None,
        json_body: Any = None,
    ) -> FetchResponse:
        sent_headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body, separators=(",", ":"))
            sent_headers.setdefault("content-type", "application/json")
        return await self._perform(FetchRequest(url, method.upper(), sent_headers, body))


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return ip.is_global and not ip.is_multicast


async def checked_address(host: str, port: int, allow_private: bool) -> str:
    """The one address to connect to: ``host`` resolved once, every address checked.

    Unless ``allow_private``, a name with any loopback, private, link-local or reserved address
    is refused (a name that also resolves to a public address is no safer: which one a client
    picks is not ours to decide)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise WorkflowRuntimeError(f"fetch: cannot resolve {host!r}") from exc
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise WorkflowRuntimeError(f"fetch: cannot resolve {host!r}")
    if not allow_private and not all(_public(address) for address in addresses):
        raise WorkflowRuntimeError(
            f"fetch: {host!r} resolves to a loopback, private or reserved address; "
            "set allow_private_fetch to allow it"
        )
    return addresses[0]


def pinned_fetch_client(allow_private: bool, verify: ssl.SSLContext | None = None) -> Any:
    """An ``httpx.AsyncClient`` whose every connection goes to an address ``checked_address``
    returned for the URL's host; TLS still verifies and sends SNI for the host name, and the
    ``Host`` header is the URL's. No proxy or other setting is read from the environment.
    ``verify`` replaces the system's certificate authorities (a test's own)."""
    import httpcore
    import httpx

    class CheckedAddressBackend(httpcore.AsyncNetworkBackend):
        """httpcore's network seam: resolve and check here, connect to that IP literal."""

        def __init__(self) -> None:
            self._inner = httpcore.AnyIOBackend()

        async def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
            local_address: str | None = None,
            socket_options: Any = None,
        ) -> httpcore.AsyncNetworkStream:
            address = await checked_address(host, port, allow_private)
            return await self._inner.connect_tcp(
                address, port, timeout, local_address, socket_options
            )

        async def connect_unix_socket(
            self,
            path: str,
            timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
            socket_options: Any = None,
        ) -> httpcore.AsyncNetworkStream:
            raise WorkflowRuntimeError("fetch: Unix sockets are not reachable")

        async def sleep(self, seconds: float) -> None:
            await self._inner.sleep(seconds)

    class PinnedTransport(httpx.AsyncHTTPTransport):
        def __init__(self) -> None:
            super().__init__(trust_env=False)
            # httpx takes no network backend of its own; its pool is rebuilt with ours.
            self._pool = httpcore.AsyncConnectionPool(
                ssl_context=verify or httpx.create_ssl_context(trust_env=False),
                network_backend=CheckedAddressBackend(),
            )

    return httpx.AsyncClient(transport=PinnedTransport(), trust_env=False)


def _host_key(host: str, port: int | None, scheme: str) -> tuple[str, str]:
    default = 443 if scheme == "https" else 80
    return host.lower(), f"{host.lower()}:{port or default}"


class ServerFetch:
    """The server's side of ``fetch`` for one workflow: checks, performs and logs each call."""

    def __init__(
        self,
        allowed_hosts: frozenset[str],
        log: Callable[[str], None],
        remaining: Callable[[], float],
        client_factory: Callable[[], Any],
    ) -> None:
        """``client_factory`` gives a ``pinned_fetch_client(allow_private)``: it checks the
        addresses it connects to."""
        self._allowed = frozenset(h.lower() for h in allowed_hosts)
        self._log = log
        self._remaining = remaining
        self._client_factory = client_factory

    async def __call__(self, request: FetchRequest) -> FetchResponse:
        parts = urlsplit(request.url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise WorkflowRuntimeError("fetch: the URL must be http(s)://host/...")
        if request.method not in FETCH_METHODS:
            raise WorkflowRuntimeError(f"fetch: method {request.method!r} is not allowed")
        try:
            port = parts.port
        except ValueError as exc:
            raise WorkflowRuntimeError("fetch: the URL's port is not a number") from exc
        host, host_port = _host_key(parts.hostname, port, parts.scheme)
        if host not in self._allowed and host_port not in self._allowed:
            raise WorkflowRuntimeError(f"fetch: host {host!r} is not in the workflow's fetch_hosts")
        timeout = self._remaining()
        if timeout <= 0:
            raise WorkflowRuntimeError("fetch: the run's deadline has passed")
        shown = f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}{parts.path}"
        started = time.perf_counter()
        import httpx  # the server's HTTP client; loaded when a workflow first fetches

        try:
            async with asyncio.timeout(timeout):
                client: httpx.AsyncClient = self._client_factory()
                async with client.stream(
                    request.method,
                    request.url,
                    headers=dict(request.headers),
                    content=request.body,
                    timeout=timeout,
                    follow_redirects=False,
                ) as response:
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > MAX_RESPONSE_BYTES:
                            raise WorkflowRuntimeError(
                                f"fetch: the response exceeds {MAX_RESPONSE_BYTES} bytes"
                            )
        except (TimeoutError, httpx.TimeoutException) as exc:
            self._log(f"fetch {request.method} {shown} timed out")
            raise WorkflowRuntimeError(f"fetch {request.method} {shown} timed out") from exc
        except httpx.HTTPError as exc:
            self._log(f"fetch {request.method} {shown} failed: {type(exc).__name__}")
            raise WorkflowRuntimeError(f"fetch {request.method} {shown} failed") from exc
        elapsed = (time.perf_counter() - started) * 1000
        self._log(f"fetch {request.method} {shown} -> {response.status_code} in {elapsed:.1f} ms")
        return FetchResponse(
            response.status_code,
            {k.lower(): v for k, v in response.headers.items()},
            body.decode(response.encoding or "utf-8", errors="replace"),
        )
