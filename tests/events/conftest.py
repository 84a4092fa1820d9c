"""Fixtures of the webhook tests: a real HTTP receiver on loopback and a clock the test moves."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.helpers import free_port, serving


@dataclass
class Receiver:
    """Answers each POST with the next scripted status (then 200) and keeps what it received."""

    port: int
    statuses: list[int] = field(default_factory=list)
    received: list[tuple[str, str]] = field(default_factory=list)
    """``(content type, body)`` of every request, acknowledged or not."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/kinde/webhooks"

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            self.received.append(
                (request.headers.get("content-type", ""), (await request.body()).decode())
            )
            status = self.statuses.pop(0) if self.statuses else 200
            return Response(status_code=status)

        return Starlette(routes=[Route("/kinde/webhooks", hook, methods=["POST"])])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver(free_port())
    with serving(running.app(), running.port):
        yield running


@pytest.fixture
def receiver_port() -> int:
    """A loopback port with nothing listening yet: a receiver that is down."""
    return free_port()


class Clock:
    """The delivery loop's clock; tests move it instead of sleeping."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


from tests.management.conftest import api  # noqa: E402

__all__ = ["Clock", "Receiver", "api"]
