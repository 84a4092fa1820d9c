"""``claimflow workflows test`` for the sign-in triggers: one run on the event a login would give.

``user:post_authentication`` runs for ``--user`` (optionally ``--org``, ``--new-user``);
``user:existing_password_provided`` for ``--email`` and a password read from
``CLAIMFLOW_WORKFLOW_TEST_PASSWORD`` or a hidden prompt (never a flag: it would stay in the shell
history). ``--ip``, ``--user-agent`` and ``--client`` set where the sign-in comes from.

Nothing is issued and no run is recorded. A migration workflow writes (creates users, sets
passwords): unless ``--allow-writes``, its Management API writes are answered 403 ``DRY_RUN``
and not performed, so a test against a live deployment changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from claimflow import crypto
from claimflow.oidc.workflow_events import (
    existing_password_provided_event,
    post_authentication_event,
)
from claimflow.services import Services
from claimflow.store import users
from claimflow.workflows.definition import Workflow
from claimflow.workflows.engine import RunReport
from claimflow.workflows.event import Trigger, WorkflowEvent
from claimflow.workflows.management_client import ManagementTransport

SIGN_IN_TRIGGERS = frozenset(
    {Trigger.USER_POST_AUTHENTICATION, Trigger.USER_EXISTING_PASSWORD_PROVIDED}
)
CALLBACK_PLACEHOLDER = "http://127.0.0.1/callback"


@dataclass(frozen=True, slots=True)
class SignInOrigin:
    """Where the tested sign-in comes from: ``--client``, ``--ip``, ``--user-agent``."""

    client_id: str
    ip: str | None
    user_agent: str | None


class ReadOnlyManagementAPI:
    """The deployment's Management API with its writes refused (answered, not performed)."""

    def __init__(self, inner: ManagementTransport) -> None:
        self._inner = inner
        self.refused: list[str] = []

    async def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str],
        body: Any | None,
        *,
        scopes: frozenset[str],
        time_left: float | None = None,
    ) -> httpx.Response:
        if method == "GET":
            return await self._inner.request(
                method, path, params, body, scopes=scopes, time_left=time_left
            )
        self.refused.append(f"{method} {path}")
        error = {"code": "DRY_RUN", "message": "not performed; pass --allow-writes"}
        return httpx.Response(403, content=json.dumps({"errors": [error]}).encode("utf-8"))

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass
class SignInDryRun:
    report: RunReport
    elapsed_ms: float
    refused_writes: list[str]


async def _event(
    services: Services,
    workflow: Workflow,
    origin: SignInOrigin,
    user_id: str | None,
    org_code: str | None,
    email: str | None,
    password: str | None,
    new_user: bool,
) -> WorkflowEvent:
    if workflow.settings.trigger is Trigger.USER_POST_AUTHENTICATION:
        if user_id is None:
            raise ValueError("--user is required for a user:post_authentication workflow")
        return post_authentication_event(
            issuer=services.issuer,
            user_id=user_id,
            client_id=origin.client_id,
            redirect_uri=CALLBACK_PLACEHOLDER,
            is_new_user_record_created=new_user,
            org_code=org_code,
            ip=origin.ip,
            user_agent=origin.user_agent,
        )
    if email is None or password is None:
        raise ValueError("--email and a password are required for a password workflow")
    async with services.db.connect() as conn:
        user = await users.find_user_by_email(conn, email)
        stored = await users.get_password_hash(conn, user.id) if user else None
    if stored is not None:
        raise ValueError(f"{email} has a password here; sign-in would not fire this trigger")
    return existing_password_provided_event(
        issuer=services.issuer,
        client_id=origin.client_id,
        email=users.normalize_email(email),
        password=password,
        hashed_password=await asyncio.to_thread(crypto.hash_password, password),
        user_id=user.id if user else None,
        ip=origin.ip,
        user_agent=origin.user_agent,
    )


async def sign_in_dry_run(
    services: Services,
    workflow: Workflow,
    origin: SignInOrigin,
    *,
    user_id: str | None = None,
    org_code: str | None = None,
    email: str | None = None,
    password: str | None = None,
    new_user: bool = False,
    allow_writes: bool = False,
) -> SignInDryRun:
    """One run of ``workflow`` (on a sign-in trigger) on the event the flags describe."""
    event = await _event(services, workflow, origin, user_id, org_code, email, password, new_user)
    engine = services.workflows
    read_only = None
    if not allow_writes and engine.management is not None:
        read_only = ReadOnlyManagementAPI(engine.management)
        engine.management = read_only
    await engine.warm_up()  # an isolated workflow's runner, as `serve` starts it
    started = time.perf_counter()
    (report,) = await engine.run_workflows([workflow], event, record=False)
    elapsed = (time.perf_counter() - started) * 1000
    return SignInDryRun(report, elapsed, read_only.refused if read_only else [])
