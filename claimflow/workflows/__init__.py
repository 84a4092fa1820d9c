"""Token-generation workflows: declare settings, get bindings, set claims (design §4).

A workflow module exports ``workflow_settings = WorkflowSettings(...)`` and
``async def run(event: TokensGenerationEvent, bindings: Bindings) -> None``.
"""

from claimflow.workflows.bindings import Bindings, EnvironmentVariable, TokenClaims, WorkflowLogger
from claimflow.workflows.definition import Binding, FailurePolicy, Workflow, WorkflowSettings
from claimflow.workflows.engine import ClaimForms, RunReport, TokenCustomClaims, WorkflowEngine
from claimflow.workflows.event import TokensGenerationEvent, Trigger
from claimflow.workflows.management_client import (
    HTTPTransport,
    InProcessTransport,
    ManagementAPIClient,
    ManagementTransport,
)
from claimflow.workflows.registry import WorkflowRegistry
from claimflow.workflows.runlog import RunOutcome, WorkflowRun

__all__ = [
    "Binding",
    "Bindings",
    "ClaimForms",
    "EnvironmentVariable",
    "FailurePolicy",
    "HTTPTransport",
    "InProcessTransport",
    "ManagementAPIClient",
    "ManagementTransport",
    "RunOutcome",
    "RunReport",
    "TokenClaims",
    "TokenCustomClaims",
    "TokensGenerationEvent",
    "Trigger",
    "Workflow",
    "WorkflowEngine",
    "WorkflowLogger",
    "WorkflowRegistry",
    "WorkflowRun",
    "WorkflowSettings",
]
