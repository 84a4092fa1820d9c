"""What oversized request bodies cost a real server's memory, with and without the body limit.

    .venv/bin/python bench/body_limit_bench.py [--bodies 4] [--mib 50]

Starts ``claimflow serve`` (one process, a temporary SQLite file) twice — once with the default
``CLAIMFLOW_MAX_BODY_BYTES`` (1 MiB) and once with the limit raised to 1 GiB, which is what
reading every body whole used to be — sends ``--bodies`` concurrent POSTs of ``--mib`` MiB to
the token endpoint (half with ``Content-Length``, half chunked), and prints the server's peak
resident memory (``VmHWM`` from ``/proc``) before and after, and the statuses it answered.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

CLAIMFLOW = str(Path(__file__).parents[1] / ".venv" / "bin" / "claimflow")
MIB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


async def chunks(total: int) -> AsyncIterator[bytes]:
    chunk = b"a=" + b"x" * (MIB - 2)
    for _ in range(total // MIB):
        yield chunk


async def send(http: httpx.AsyncClient, url: str, size: int, chunked: bool) -> str:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    try:
        if chunked:
            response = await http.post(url, content=chunks(size), headers=headers)
        else:
            response = await http.post(url, content=b"a=" + b"x" * (size - 2), headers=headers)
    except httpx.TransportError as exc:
        return type(exc).__name__
    return str(response.status_code)


def start_server(port: int, max_body_bytes: int) -> subprocess.Popen[bytes]:
    workdir = tempfile.mkdtemp(prefix="claimflow-bench-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMFLOW_")} | {
        "CLAIMFLOW_SECRET_KEY": "bench",
        "CLAIMFLOW_MAX_BODY_BYTES": str(max_body_bytes),
    }
    return subprocess.Popen(
        [CLAIMFLOW, "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_server(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    server.wait(timeout=30)


async def run(max_body_bytes: int, bodies: int, size: int) -> tuple[float, float, list[str]]:
    port = free_port()
    server = start_server(port, max_body_bytes)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=120) as http:
            deadline = time.monotonic() + 90
            while True:
                try:
                    await http.get(base + "/.well-known/openid-configuration")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "server did not start"
                    await asyncio.sleep(0.2)
            before = peak_rss_mib(server.pid)
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(send(http, base + "/oauth2/token", size, i % 2 == 1))
                    for i in range(bodies)
                ]
            after = peak_rss_mib(server.pid)
    finally:
        stop_server(server)
    return before, after, [task.result() for task in tasks]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bodies", type=int, default=4)
    parser.add_argument("--mib", type=int, default=50)
    args = parser.parse_args()
    size = args.mib * MIB
    print(f"{args.bodies} concurrent POST /oauth2/token of {args.mib} MiB (half chunked)")
    print(f"{'limit':>12} | {'peak RSS before':>15} | {'peak RSS after':>14} | statuses")
    for limit in (MIB, 1024 * MIB):
        before, after, statuses = await run(limit, args.bodies, size)
        label = f"{limit // MIB} MiB"
        print(
            f"{label:>12} | {before:>12.0f} MiB | {after:>11.0f} MiB | {' '.join(sorted(statuses))}"
        )


if __name__ == "__main__":
    asyncio.run(main())
