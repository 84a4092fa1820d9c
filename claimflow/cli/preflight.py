"""Checks ``serve`` and ``demo`` make before they print a banner or start workers.

Each turns a failure that would otherwise surface as a traceback inside a uvicorn worker (or
after the demo's banner) into a ``ConfigurationError`` or a database error that
``claimflow.cli.problems`` prints as one line.
"""

from __future__ import annotations

import asyncio
import errno
import socket

from claimflow.errors import ConfigurationError
from claimflow.services import build_services
from claimflow.settings import Settings


def ensure_port_free(host: str, port: int) -> None:
    """Bind ``host:port`` the way uvicorn will (``SO_REUSEADDR``) and let go at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigurationError(
                    f"port {port} on {host} is already in use: stop what listens there "
                    "or choose another port with --port (CLAIMFLOW_PORT)."
                ) from None
            raise ConfigurationError(
                f"cannot listen on {host}:{port} ({exc.strerror}): choose another --host or --port."
            ) from None


async def _check_deployment(settings: Settings) -> None:
    services = build_services(settings)
    try:
        await services.keys.ensure_active_key()
    finally:
        await services.close()


def check_deployment(settings: Settings) -> None:
    """The enabled workflows load, the database answers and the secret key decrypts its keys."""
    asyncio.run(_check_deployment(settings))
