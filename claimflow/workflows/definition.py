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
from typing import TYPE_CHECKING, Any, Protocol

from claimflow.workflows.event import Trigger

if TYPE_CHECKING:
    from claimflow.cache import BillingCache
    from claimflow.workflows.bindings import Bindings


class FailurePolicy(enum.StrEnum):
    """Kinde's ``failurePolicy.action``: ``stop`` refuses the sign-in, ``continue`` drops claims."""

    STOP = "stop"
    CONTINUE = "continue"


class Binding(enum.StrEnum):
    """What a workflow may use; using one it did not declare is a runtime error (Kinde's rule)."""

    ACCESS_TOKEN = "access_token"
    ID_TOKEN = "id_token"
    M2M_TOKEN = "m2m_token"
    """Kinde's ``kinde.m2mToken``: claims of a client-credentials token (``m2m:token_generation``)."""
    PLAN = "plan"
    """Kinde's ``kinde.plan``: refuse a plan change or cancellation (the plan triggers)."""
    MANAGEMENT_API = "management_api"
    ENV = "env"
    AUTH = "auth"
    LOGGER = "logger"
    FETCH = "fetch"
    BILLING_CACHE = "billing_cache"
    """The server's billing cache: trusted workflows only."""


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
    env_vars: frozenset[str] = field(default_factory=frozenset)
    """Environment variables and secrets (by key) the ``env`` binding may read, no other; a
    name ending in ``*`` declares a prefix (``SUPPORT_TIER_*``)."""
    management_api_scopes: frozenset[str] = field(default_factory=frozenset)
    """The Management API scopes (``read:organizations``, ``create:users``, ...) the
    ``management_api`` binding's calls carry; a route needing another answers 403."""
    fetch_hosts: frozenset[str] = field(default_factory=frozenset)
    """Hosts the ``fetch`` binding may call (``api.example.com`` or ``api.example.com:8443``)."""
    allow_private_fetch: bool = False
    """Let ``fetch`` reach loopback and private addresses (refused by default: SSRF)."""

    def to_wire(self) -> dict[str, Any]:
        """JSON for the runner protocol (a runner describes the module it loaded)."""
        return {
            "id": self.id,
            "name": self.name,
            "trigger": self.trigger.value,
            "failure_policy": self.failure_policy.value,
            "time_limit_seconds": self.time_limit_seconds,
            "bindings": sorted(b.value for b in self.bindings),
            "claims": sorted(self.claims),
            "env_vars": sorted(self.env_vars),
            "management_api_scopes": sorted(self.management_api_scopes),
            "fetch_hosts": sorted(self.fetch_hosts),
            "allow_private_fetch": self.allow_private_fetch,
        }

    @classmethod
    def from_wire(cls, wire: dict[str, Any]) -> WorkflowSettings:
        limit = wire.get("time_limit_seconds")
        return cls(
            id=str(wire["id"]),
            name=str(wire["name"]),
            trigger=Trigger(wire["trigger"]),
            failure_policy=FailurePolicy(wire["failure_policy"]),
            time_limit_seconds=None if limit is None else float(limit),
            bindings=frozenset(Binding(b) for b in wire["bindings"]),
            claims=frozenset(map(str, wire["claims"])),
            env_vars=frozenset(map(str, wire["env_vars"])),
            management_api_scopes=frozenset(map(str, wire["management_api_scopes"])),
            fetch_hosts=frozenset(map(str, wire["fetch_hosts"])),
            allow_private_fetch=bool(wire["allow_private_fetch"]),
        )


WorkflowEntry = Callable[[Any, "Bindings"], Awaitable[None]]
"""``run(event, bindings)``: the event is the ``WorkflowEvent`` of the workflow's trigger."""

WorkflowPrecondition = Callable[[Any], bool]
"""``applies(event)``: whether a run on this event could do anything at all."""


class RunMemo(Protocol):
    """What a warm run reads, held in memory: a billing cache entry's prepared value.

    ``settled`` keeps, per workflow id, the outcome of the first run made from it (the
    engine's ``SettledRun``); it lives and dies with the entry, so a billing change that makes
    the entry stale leaves the memo behind with it."""

    @property
    def settled(self) -> dict[str, Any]: ...


WorkflowMemory = Callable[[Any, "BillingCache | None"], RunMemo | None]
"""``warm(event, billing_cache)``: the entry ``run`` would read, if it is in memory, fresh and
current *now* (``BillingCache.hit_now``), else ``None``. ``billing_cache`` is ``None`` unless the
workflow declares it and the server has one."""

WorkflowShortcut = Callable[[Any, "Bindings", Any], None]
"""``run_now(event, bindings, memo)``: what ``run`` does, from the ``memo`` ``warm`` returned,
synchronously (the same bindings, so the same checks)."""


@dataclass(frozen=True, slots=True)
class Workflow:
    """A loaded workflow: its settings, its entry point and where it came from."""

    settings: WorkflowSettings
    entry: WorkflowEntry
    source: str
    """Where it was loaded from: a module name, or the path of a ``*.py`` file."""
    trusted: bool = False
    """Trusted workflows run in the server's event loop; the others in runner processes
    (design §8). The built-ins are trusted, and any workflow a deployment names in
    ``settings.workflows_trusted``."""
    applies: WorkflowPrecondition | None = None
    """A trusted module's optional ``applies(event)``: ``False`` means the run would add nothing
    (``org_billing_m2m`` for an application without an organization), so the engine starts no
    run and records none (``claimflow_workflow_skips`` counts it). Read from the module only
    when it runs in the server; an isolated workflow always runs."""
    warm: WorkflowMemory | None = None
    """A trusted module's optional ``warm(event, billing_cache)``, with ``run_now``: when
    ``warm`` finds the entry ``run`` would read current in memory, the engine runs ``run_now``
    on it instead of ``run`` (no task: nothing waits, so no deadline can be overrun), once per
    entry and workflow, and answers later runs on that entry from the outcome it kept
    (``RunMemo.settled``). Every run is recorded all the same. Read, like ``applies``, only for
    a workflow that runs in the server."""
    run_now: WorkflowShortcut | None = None

    @property
    def id(self) -> str:
        return self.settings.id
