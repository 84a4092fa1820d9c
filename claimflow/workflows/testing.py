"""Test a workflow module without a server: ``run_workflow(path, for_sign_in("kp_1", "org_a"))``.

The workflow runs in-process through the engine's own checks (declared bindings, variables
declared by name, reserved and built-in claims, the deadline), with the environment values you
give and Management API answers you recorded, and you get back its claims and log lines::

    result = await run_workflow(
        "workflows/support_tier.py",
        for_sign_in("kp_1", org_code="org_acme"),
        env={"SUPPORT_TIER_ORG_ACME": "premium"},
    )
    assert result.access_token == {"support_tier": "premium"}

Recorded answers are keyed ``"GET organization"`` (any query) or ``"GET
organization?code=org_acme"`` (exact query, parameters sorted); a value is the JSON body of a
200, or ``(status, body)``. A call with no recorded answer is a 404, as a missing record would be.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from claimflow.workflows.engine import WorkflowEngine
from claimflow.workflows.event import (
    AuthOrigin,
    EventApplication,
    EventAuth,
    EventContext,
    EventDomains,
    EventOrganization,
    EventUser,
    TokensGenerationEvent,
    WorkflowEvent,
)
from claimflow.workflows.loading import load_workflow
from claimflow.workflows.registry import WorkflowRegistry

__all__ = ["RecordedManagementAPI", "WorkflowResult", "for_sign_in", "run_workflow"]


def for_sign_in(
    user_id: str,
    org_code: str | None = None,
    *,
    client_id: str = "app_test",
    issuer: str = "https://claimflow.test",
    origin: AuthOrigin = AuthOrigin.AUTHORIZATION_REQUEST,
) -> TokensGenerationEvent:
    """The ``user:tokens_generation`` event of a sign-in (to ``org_code``, or personal)."""
    return TokensGenerationEvent(
        context=EventContext(
            user=EventUser(id=user_id),
            application=EventApplication(client_id=client_id),
            auth=EventAuth(origin=origin),
            domains=EventDomains(kinde_domain=issuer),
            organization=EventOrganization(code=org_code) if org_code else None,
        )
    )


class RecordedManagementAPI:
    """A ``ManagementTransport`` answering from recorded responses; it keeps the calls made."""

    def __init__(self, answers: Mapping[str, Any]) -> None:
        self._answers = dict(answers)
        self.calls: list[str] = []

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
        exact = f"{method} {path}" + (f"?{urlencode(sorted(params.items()))}" if params else "")
        self.calls.append(exact)
        answer = self._answers.get(exact, self._answers.get(f"{method} {path}"))
        if answer is None:
            status, payload = 404, {"errors": [{"code": "NOT_FOUND", "message": exact}]}
        elif isinstance(answer, tuple):
            status, payload = answer
        else:
            status, payload = 200, answer
        return httpx.Response(status, content=json.dumps(payload).encode("utf-8"))

    async def aclose(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class _Variable:
    value: str
    is_secret: bool


class _GivenVariables:
    """The environment the test gives, in place of the deployment's encrypted store."""

    def __init__(self, env: Mapping[str, str], secrets: Mapping[str, str]) -> None:
        self._values = {k: _Variable(v, False) for k, v in env.items()}
        self._values.update({k: _Variable(v, True) for k, v in secrets.items()})

    async def get(self, key: str) -> _Variable | None:
        return self._values.get(key)

    def invalidate(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class WorkflowResult:
    """What the run produced: each claim's preferred form, log lines, outcome."""

    access_token: dict[str, Any]
    id_token: dict[str, Any]
    log_lines: list[str]
    outcome: str
    error: str | None
    denied_reason: str | None
    management_calls: list[str]


async def run_workflow(
    module: str | Path,
    event: WorkflowEvent,
    *,
    env: Mapping[str, str] | None = None,
    secrets: Mapping[str, str] | None = None,
    management_api: Mapping[str, Any] | None = None,
    time_limit_seconds: float = 2.0,
) -> WorkflowResult:
    """Run the workflow at ``module`` (a ``.py`` path or a module name) once on ``event``."""
    workflow = dataclasses.replace(load_workflow(str(module)), trusted=True)
    recorded = RecordedManagementAPI(management_api or {})
    engine = WorkflowEngine(
        WorkflowRegistry([workflow], [workflow.id]),
        management=recorded,
        environment=_GivenVariables(env or {}, secrets or {}),
        default_time_limit_seconds=time_limit_seconds,
    )
    try:
        (report,) = await engine.run_workflows([workflow], event, record=False)
    finally:
        await engine.aclose()
    return WorkflowResult(
        access_token={name: forms[0] for name, forms in report.access_token.items()},
        id_token={name: forms[0] for name, forms in report.id_token.items()},
        log_lines=[line["message"] for line in report.run.log_lines],
        outcome=report.run.outcome.value,
        error=report.run.error,
        denied_reason=report.denied_reason,
        management_calls=recorded.calls,
    )
