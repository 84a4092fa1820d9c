"""What every grant handler receives and returns."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from claimflow.domain import Application
from claimflow.services import Services


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """An authenticated token request: the client, its parameters, where it came from."""

    client: Application
    params: dict[str, str]
    services: Services
    http: Request

    @property
    def ip(self) -> str | None:
        return self.http.client.host if self.http.client else None

    @property
    def user_agent(self) -> str | None:
        return self.http.headers.get("user-agent")


GrantHandler = Callable[[TokenRequest], Awaitable[dict[str, Any]]]
