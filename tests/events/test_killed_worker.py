"""A worker killed while delivering a webhook: another ``claimflow serve`` process delivers it.

Two real server processes on one PostgreSQL database. The receiver holds the first request open;
while it hangs, the process sending it is killed with SIGKILL (no cleanup, its lease stays).
A second process takes the delivery over once the lease expires and the receiver acknowledges
it: the event arrived twice (one unacknowledged, one acknowledged), and only the attempt that
finished is recorded.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from claimflow.services import Services, build_services
from claimflow.store import webhooks as store
from tests.cli.conftest import CLAIMFLOW, wait_until_serving
from tests.conftest import make_settings
from tests.helpers import free_port, serving


class HangingReceiver:
    """Holds the first request until released (or 60 s), acknowledges every later one."""

    def __init__(self) -> None:
        self.port = free_port()
        self.bodies: list[str] = []
        self.release = threading.Event()

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            self.bodies.append((await request.body()).decode())
            if len(self.bodies) == 1:
                await asyncio.to_thread(self.release.wait, 60)
                return Response(status_code=500)
            return Response(status_code=200)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


@pytest.fixture
def hanging_receiver() -> Iterator[HangingReceiver]:
    receiver = HangingReceiver()
    with serving(receiver.app(), receiver.port):
        yield receiver
        receiver.release.set()


def start_serve(pg_url: str, workdir: Path) -> subprocess.Popen[bytes]:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CLAIMFLOW_")},
        "CLAIMFLOW_DATABASE_URL": pg_url,
        "CLAIMFLOW_SECRET_KEY": "killed-worker-tests-only-Qm7Zx2Lp9Vw4Rt8N",
        "CLAIMFLOW_WEBHOOK_POLL_INTERVAL_SECONDS": "0.2",
        "CLAIMFLOW_WEBHOOK_LEASE_SECONDS": "3",
        "CLAIMFLOW_WEBHOOK_TIMEOUT_SECONDS": "120",
    }
    log = open(workdir / f"serve-{port}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [CLAIMFLOW, "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    wait_until_serving(f"http://127.0.0.1:{port}", process, timeout=120)
    return process


def wait_for(condition: object, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


async def test_a_delivery_survives_its_worker_being_killed_mid_send(
    pg_url: str, tmp_path: Path, hanging_receiver: HangingReceiver
) -> None:
    services = build_services(make_settings(pg_url))
    try:
        async with services.db.transaction() as conn:
            await store.create_webhook(
                conn,
                name="r",
                endpoint=f"http://127.0.0.1:{hanging_receiver.port}/hook",
                event_types=["organization.created"],
            )
            event = await store.record_event(
                conn, "organization.created", {"organization": {"code": "org_a"}}
            )
        first = start_serve(pg_url, tmp_path)
        try:
            await asyncio.to_thread(
                wait_for, lambda: len(hanging_receiver.bodies) == 1, "the first send"
            )
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
        second = start_serve(pg_url, tmp_path)
        try:
            await asyncio.to_thread(
                wait_for, lambda: len(hanging_receiver.bodies) == 2, "the takeover"
            )
            loop = asyncio.get_running_loop()

            def delivered() -> bool:
                state = asyncio.run_coroutine_threadsafe(_states(services, event.id), loop).result()
                return state == ["delivered"]

            await asyncio.to_thread(wait_for, delivered, "the delivery to be recorded")
        finally:
            second.terminate()
            second.wait(timeout=30)
        async with services.db.connect() as conn:
            attempts = await store.attempts_of_event(conn, event.id)
    finally:
        await services.close()
    ids = {
        jwt.decode(b, options={"verify_signature": False})["event_id"]
        for b in hanging_receiver.bodies
    }
    assert ids == {event.id} and len(hanging_receiver.bodies) == 2
    assert [status for status, _ in attempts] == [200]


async def _states(services: Services, event_id: str) -> list[str]:
    async with services.db.connect() as conn:
        return [d.status for d in await store.deliveries_of_event(conn, event_id)]
