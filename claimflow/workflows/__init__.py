"""Workflows: what a workflow author needs, and nothing of the engine.

A workflow module exports ``workflow_settings = WorkflowSettings(...)`` and
``async def run(event, bindings: Bindings) -> None`` (design §4), where ``event`` is the event of
its trigger: ``TokensGenerationEvent``, ``PostAuthenticationEvent`` or
``ExistingPasswordProvidedEvent``. The engine, registry, runner processes and transports live
in submodules and may change freely.
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
    AuthUrlParams,
    EventApplication,
    EventAuth,
    EventContext,
    EventDomains,
    EventOrganization,
    EventRequest,
    EventRequestAuth,
    EventUser,
    EventWorkflow,
    ExistingPasswordAuth,
    ExistingPasswordProvidedEvent,
    PostAuthenticationAuth,
    PostAuthenticationEvent,
    SignInRequest,
    TokensGenerationEvent,
    Trigger,
    WorkflowEvent,
)
from claimflow.workflows.fetch import Fetch, FetchResponse
from claimflow.workflows.management_client import ManagementAPIClient

__all__ = [
    "Auth",
    "AuthOrigin",
    "AuthUrlParams",
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
    "ExistingPasswordAuth",
    "ExistingPasswordProvidedEvent",
    "FailurePolicy",
    "Fetch",
    "FetchResponse",
    "ManagementAPICallFailed",
    "ManagementAPIClient",
    "ManagementAPINotFound",
    "PostAuthenticationAuth",
    "PostAuthenticationEvent",
    "ReservedClaim",
    "SignInRequest",
    "TokenClaims",
    "TokensGenerationEvent",
    "Trigger",
    "WorkflowEvent",
    "WorkflowLogger",
    "WorkflowRuntimeError",
    "WorkflowSettings",
]
