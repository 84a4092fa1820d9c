"""The pinned ``fetch`` client over real TLS on loopback: the connection goes to the address
that was checked, while TLS verifies the certificate for the host name, SNI carries the name and
``Host`` is the URL's (RFC 6066 §3, RFC 9110 §7.2); a name that resolves to loopback is refused
unless the workflow allows private addresses."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from claimflow.cli.tls import local_certificate
from claimflow.errors import WorkflowRuntimeError
from claimflow.workflows.fetch import pinned_fetch_client

NAME = "crm.pinned.test"


@dataclass
class TLSServer:
    port: int
    trust: ssl.SSLContext
    server_names: list[str | None] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[TLSServer]:
    pair = local_certificate(tmp_path, NAME)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pair.certfile, pair.keyfile)
    names: list[str | None] = []
    context.sni_callback = lambda _sock, name, _ctx: names.append(name)
    hosts: list[str] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        for line in head.decode("latin-1").split("\r\n"):
            if line.lower().startswith("host:"):
                hosts.append(line.split(":", 1)[1].strip())
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    trust = ssl.create_default_context(cafile=str(pair.certfile))
    yield TLSServer(port, trust, names, hosts)
    server.close()
    await server.wait_closed()


@pytest.fixture
def resolved(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``NAME`` resolves to loopback (the resolver boundary); each lookup of it is recorded."""
    real = socket.getaddrinfo
    lookups: list[str] = []

    def resolve(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name != NAME:
            return real(host, port, *args, **kwargs)
        lookups.append(name)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", int(port)))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    return lookups


async def test_the_pinned_connection_keeps_the_name_for_tls_and_host(
    tls_server: TLSServer, resolved: list[str]
) -> None:
    async with pinned_fetch_client(allow_private=True, verify=tls_server.trust) as client:
        response = await client.get(f"https://{NAME}:{tls_server.port}/status")
    assert (response.status_code, response.text) == (200, "ok")
    assert tls_server.server_names == [NAME]
    assert tls_server.hosts == [f"{NAME}:{tls_server.port}"]
    assert resolved == [NAME]  # resolved once, by the check; the connection used its answer


async def test_a_name_resolving_to_loopback_is_refused_without_allow_private(
    tls_server: TLSServer, resolved: list[str]
) -> None:
    async with pinned_fetch_client(allow_private=False, verify=tls_server.trust) as client:
        with pytest.raises(WorkflowRuntimeError, match="loopback, private or reserved"):
            await client.get(f"https://{NAME}:{tls_server.port}/status")
    assert tls_server.server_names == [] and tls_server.hosts == []
