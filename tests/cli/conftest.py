"""CLI fixtures: an empty working directory, a clean environment and a way to run commands."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from claimflow.cli import app as cli_app

SECRET_KEY = "cli-tests-only-R4nW8qLz2XbV7kTd5PjH9sMf"
CLAIMFLOW = str(Path(sys.executable).with_name("claimflow"))

Invoke = Callable[..., Result]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory, no CLAIMFLOW_* variables but a fixed secret key."""
    for name in list(os.environ):
        if name.startswith("CLAIMFLOW_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CLAIMFLOW_SECRET_KEY", SECRET_KEY)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def cli_db_url(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{workdir / 'cli.db'}"
    monkeypatch.setenv("CLAIMFLOW_DATABASE_URL", url)
    return url


@pytest.fixture
def invoke(workdir: Path) -> Invoke:
    """Run ``claimflow ARGS`` in-process (typer's CliRunner); stdout and stderr kept apart."""
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(cli_app, list(args), catch_exceptions=False)

    return run


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_serving(
    base_url: str,
    process: subprocess.Popen[bytes],
    timeout: float = 90,
    verify: bool = True,
) -> None:
    """Poll the JWKS-free token endpoint path until the server answers (any HTTP status)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}")
        try:
            httpx.get(base_url + "/openapi.json", timeout=1.0, verify=verify)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"server at {base_url} did not answer within {timeout} s")


@pytest.fixture
def start_server(workdir: Path) -> Iterator[Callable[..., tuple[str, subprocess.Popen[bytes]]]]:
    """Start ``claimflow ARGS --port <free>`` as a real process; stopped after the test.

    ``https`` means the server speaks TLS: the URL is ``https://`` and start-up is awaited
    without checking the certificate (the test checks it, with the trust it means to test).
    """
    started: list[subprocess.Popen[bytes]] = []

    def start(
        *args: str,
        env: dict[str, str] | None = None,
        timeout: float = 30,
        https: bool = False,
    ) -> tuple[str, subprocess.Popen[bytes]]:
        port = free_port()
        log = open(workdir / f"server-{port}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            [CLAIMFLOW, *args, "--host", "127.0.0.1", "--port", str(port)],
            cwd=workdir,
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        base_url = f"{'https' if https else 'http'}://127.0.0.1:{port}"
        try:
            wait_until_serving(base_url, process, timeout, verify=not https)
        except AssertionError:
            process.terminate()
            process.wait(timeout=10)
            raise AssertionError(
                f"exit {process.returncode}: " + (workdir / f"server-{port}.log").read_text()
            ) from None
        return base_url, process

    yield start
    for process in started:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
