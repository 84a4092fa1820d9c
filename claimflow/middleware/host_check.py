"""Refuse requests whose ``Host`` is not this deployment's (the issuer's host or an allowed one).

Anything that builds a URL from the request (a redirect to add a trailing slash, an absolute
link) would otherwise reflect an attacker's ``Host: evil.test`` — the root of host-header
poisoning of caches and password-reset-style links. The issuer is the one name clients use, so
the check is exact: the ``Host`` header's host part (port ignored, case-insensitive) must be the
issuer's, or one named in ``CLAIMFLOW_ALLOWED_HOSTS``. A loopback issuer (the default
``http://127.0.0.1:8000`` of ``claimflow serve`` and ``claimflow demo``) admits every loopback
name, so ``localhost`` keeps working locally. ``*`` in the list turns the check off (for a
proxy that already does it).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from claimflow.middleware._responses import json_error

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

log = logging.getLogger("claimflow")


def host_of(authority: str) -> str:
    """``Host`` header → host name, lowercased, without port or IPv6 brackets."""
    authority = authority.strip().lower()
    if authority.startswith("["):
        return authority[1:].split("]", 1)[0]
    return authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority


def allowed_hosts(issuer: str, extra: Iterable[str]) -> frozenset[str]:
    """The issuer's host, the loopback names for a loopback issuer, and ``extra``."""
    issuer_host = (urlsplit(issuer).hostname or "").lower()
    hosts = {issuer_host, *(host_of(h) for h in extra)}
    if issuer_host in LOOPBACK_HOSTS:
        hosts |= LOOPBACK_HOSTS
    return frozenset(hosts)


class HostCheck:
    """A pure ASGI layer: 400 with a small JSON error for any other ``Host``."""

    def __init__(self, app: ASGIApp, *, issuer: str, extra_hosts: Iterable[str] = ()) -> None:
        self.app = app
        extra = list(extra_hosts)
        self.allow_any = "*" in extra
        self.hosts = allowed_hosts(issuer, [h for h in extra if h != "*"])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self.allow_any:
            await self.app(scope, receive, send)
            return
        values = [v for k, v in scope["headers"] if k == b"host"]
        host = host_of(values[0].decode("latin-1")) if len(values) == 1 else ""
        if host not in self.hosts:
            log.info(
                "refused Host %r: serve it by setting CLAIMFLOW_ISSUER to its URL or adding it "
                "to CLAIMFLOW_ALLOWED_HOSTS",
                host[:100],
            )
            response = json_error(
                scope, 400, "invalid_request", "HOST_INVALID", "Unknown Host header."
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
