"""The body limit and the Host check through a real uvicorn server on loopback.

The attack: bodies of 50 MiB sent to the token endpoint were read whole into a worker's memory
before any check. Through a real socket, the server must answer 413 without waiting for a
declared-too-large body, and stop a chunked one at the limit.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from tests.oidc.conftest import LiveServer

MIB = 1024 * 1024
DEFAULT_LIMIT = MIB
"""The default ``CLAIMFLOW_MAX_BODY_BYTES`` the live server runs with."""


def connect(server: LiveServer) -> socket.socket:
    parts = urlsplit(server.issuer)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=20)
    return sock


def status_of(sock: socket.socket) -> int:
    head = b""
    while b"\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return int(head.split(b" ", 2)[1])


def test_declared_50_mib_body_is_refused_before_it_is_sent(live_server: LiveServer) -> None:
    host = urlsplit(live_server.issuer).netloc
    with connect(live_server) as sock:
        sock.sendall(
            b"POST /oauth2/token HTTP/1.1\r\nHost: " + host.encode() + b"\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: " + str(50 * MIB).encode() + b"\r\n\r\n"
        )
        assert status_of(sock) == 413


def test_chunked_body_is_answered_once_past_the_limit(live_server: LiveServer) -> None:
    """Just past the limit, with the body still open, the answer is already 413: the server
    does not wait for (or buffer) the rest."""
    host = urlsplit(live_server.issuer).netloc
    chunk = b"a" * (64 * 1024)
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    with connect(live_server) as sock:
        sock.sendall(
            b"POST /oauth2/token HTTP/1.1\r\nHost: " + host.encode() + b"\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        for _ in range(DEFAULT_LIMIT // len(chunk) + 2):
            sock.sendall(framed)
        assert status_of(sock) == 413


def test_foreign_host_gets_400_from_the_real_server(live_server: LiveServer) -> None:
    with connect(live_server) as sock:
        sock.sendall(b"GET /oauth2/token/ HTTP/1.1\r\nHost: evil.test\r\n\r\n")
        assert status_of(sock) == 400
