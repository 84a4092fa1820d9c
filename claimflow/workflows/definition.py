"""What a workflow is: declared settings plus one async entry point (design §4).

Kinde's ``workflowSettings`` (id, name, trigger, failurePolicy, bindings) become a frozen
``WorkflowSettings``; we add what Kinde leaves undocumented — a time limit and the custom claims a
workflow sets, so a collision between two workflows is found at start-up rather than on a
customer's sign-in.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from claimflow.workflows.event import TokensGenerationEvent, Trigger

if TYPE_CHECKING:
    from claimflow.workflows.bindings import Bindings


class FailurePolicy(enum.StrEnum):
    """Kinde's ``failurePolicy.action``: ``stop`` refuses the sign-in, ``continue`` drops claims."""

    STOP = "stop"
    CONTINUE = "continue"


class Binding(enum.StrEnum):
    """What a workflow may use; using one it did not declare is a runtime error (Kinde's rule)."""

    ACCESS_TOKEN = "access_token"
    ID_TOKEN = "id_token"
    MANAGEMENT_API = "management_api"
    ENV = "env"
    AUTH = "auth"
    LOGGER = "logger"
    BILLING_CACHE = "billing_cache"


@dataclass(frozen=True, slots=True)
class WorkflowSettings:
    """A workflow's declaration; a module exports it as ``workflow_settings``."""

    id: str
    name: str
    trigger: Trigger = Trigger.USER_TOKENS_GENERATION
    failure_policy: FailurePolicy = FailurePolicy.STOP
    time_limit_seconds: float | None = None
    """``None`` takes ``settings.workflow_time_limit_seconds`` (default 2 s)."""
    bindings: frozenset[Binding] = field(default_factory=frozenset)
    claims: frozenset[str] = field(default_factory=frozenset)
    """Custom claim names the workflow sets; declared ones are checked for collisions at start-up."""


WorkflowEntry = Callable[[TokensGenerationEvent, "Bindings"], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Workflow:
    """A loaded workflow: its settings, its entry point and where it came from."""

    settings: WorkflowSettings
    entry: WorkflowEntry
    source: str

    @property
    def id(self) -> str:
        return self.settings.id
