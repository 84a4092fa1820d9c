"""Token-generation workflows: what a workflow author needs, and nothing of the engine.

A workflow module exports ``workflow_settings = WorkflowSettings(...)`` and
``async def run(event: TokensGenerationEvent, bindings: Bindings) -> None`` (design §4). The
engine, registry, runner processes and transports live in submodules and may change freely.
"""

from claimflow.errors import (
    BindingNotDeclared,
    ManagementAPICallFailed,
    ManagementAPINotFound,
    ReservedClaim,
    WorkflowRuntimeError,
)
from claimflow.workflows.bindings import (
    Auth,
    Bindings,
    Env,
    EnvironmentVariable,
    TokenClaims,
    WorkflowLogger,
)
from claimflow.workflows.definition import Binding, FailurePolicy, WorkflowSettings
from claimflow.workflows.event import (
    AuthOrigin,
    EventApplication,
    EventAuth,
    EventContext,
    EventDomains,
    EventOrganization,
    EventRequest,
    EventRequestAuth,
    EventUser,
    EventWorkflow,
    TokensGenerationEvent,
    Trigger,
)
from claimflow.workflows.fetch import Fetch, FetchResponse
from claimflow.workflows.management_client import ManagementAPIClient

__all__ = [
    "Auth",
    "AuthOrigin",
    "Binding",
    "BindingNotDeclared",
    "Bindings",
    "Env",
    "EnvironmentVariable",
    "EventApplication",
    "EventAuth",
    "EventContext",
    "EventDomains",
    "EventOrganization",
    "EventRequest",
    "EventRequestAuth",
    "EventUser",
    "EventWorkflow",
    "FailurePolicy",
    "Fetch",
    "FetchResponse",
    "ManagementAPICallFailed",
    "ManagementAPIClient",
    "ManagementAPINotFound",
    "ReservedClaim",
    "TokenClaims",
    "TokensGenerationEvent",
    "Trigger",
    "WorkflowLogger",
    "WorkflowRuntimeError",
    "WorkflowSettings",
]
