"""Where workflows come from, which are enabled, and whether they can run together.

Sources, in order: the built-ins (``claimflow/workflows/builtin/``), the ``claimflow.workflows``
entry-point group (how a package ships workflows), and the ``*.py`` files of
``settings.workflows_dir``. A workflow module exports ``workflow_settings`` (a
``WorkflowSettings``) and ``async def run(event, bindings)``. ``settings.workflows_enabled``
enables and orders them; ``settings.workflow_overrides`` adjusts one's failure policy or time
limit without editing its code.

Configuration errors — an unknown enabled id, two workflows with one id, a declared reserved
claim, two enabled workflows of one trigger declaring the same claim — raise
``WorkflowConfigError`` when the registry is built, i.e. at start-up.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
from collections.abc import Iterable, Mapping, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

from claimflow.errors import WorkflowConfigError
from claimflow.tokens.reserved import RESERVED_CLAIMS
from claimflow.workflows.definition import FailurePolicy, Workflow, WorkflowSettings
from claimflow.workflows.event import Trigger

BUILTIN_MODULES = (
    "claimflow.workflows.builtin.org_billing",
    "claimflow.workflows.builtin.user_billing",
)
ENTRY_POINT_GROUP = "claimflow.workflows"


def workflow_from_module(module: ModuleType, source: str) -> Workflow:
    settings = getattr(module, "workflow_settings", None)
    entry = getattr(module, "run", None)
    if not isinstance(settings, WorkflowSettings):
        raise WorkflowConfigError(f"{source}: no 'workflow_settings' of type WorkflowSettings")
    if entry is None or not inspect.iscoroutinefunction(entry):
        raise WorkflowConfigError(f"{source}: no 'async def run(event, bindings)'")
    return Workflow(settings=settings, entry=entry, source=source)


def _load_file(path: Path) -> Workflow:
    name = f"claimflow_user_workflow_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise WorkflowConfigError(f"{path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except (ImportError, SyntaxError) as exc:
        raise WorkflowConfigError(f"{path}: {exc}") from exc
    return workflow_from_module(module, str(path))


def discover(workflows_dir: str | None = None) -> list[Workflow]:
    """Every workflow we can find; the same module reached twice counts once."""
    found: dict[str, Workflow] = {}

    def add(workflow: Workflow, module_name: str) -> None:
        existing = found.get(workflow.id)
        if existing is not None:
            if existing.entry is workflow.entry:
                return
            raise WorkflowConfigError(
                f"two workflows have the id {workflow.id!r}: {existing.source} and {module_name}"
            )
        found[workflow.id] = workflow

    for module_name in BUILTIN_MODULES:
        add(workflow_from_module(importlib.import_module(module_name), module_name), module_name)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        module = ep.load()
        if isinstance(module, ModuleType):
            add(workflow_from_module(module, f"entry point {ep.name}"), ep.value)
    if workflows_dir:
        directory = Path(workflows_dir)
        if not directory.is_dir():
            raise WorkflowConfigError(f"workflows_dir {workflows_dir!r} is not a directory")
        for path in sorted(directory.glob("*.py")):
            if not path.name.startswith("_"):
                add(_load_file(path), str(path))
    return list(found.values())


def apply_override(settings: WorkflowSettings, override: Mapping[str, Any]) -> WorkflowSettings:
    allowed = {"failure_policy", "time_limit_seconds", "name"}
    unknown = set(override) - allowed
    if unknown:
        raise WorkflowConfigError(
            f"workflow {settings.id!r}: unknown override(s) {sorted(unknown)}; "
            f"allowed: {sorted(allowed)}"
        )
    changes = dict(override)
    if "failure_policy" in changes:
        try:
            changes["failure_policy"] = FailurePolicy(changes["failure_policy"])
        except ValueError as exc:
            raise WorkflowConfigError(f"workflow {settings.id!r}: {exc}") from exc
    return dataclasses.replace(settings, **changes)


class WorkflowRegistry:
    """The known workflows and the enabled ones, in the order settings give."""

    def __init__(
        self,
        workflows: Iterable[Workflow],
        enabled: Sequence[str],
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.known: dict[str, Workflow] = {}
        for workflow in workflows:
            if workflow.id in self.known:
                raise WorkflowConfigError(f"two workflows have the id {workflow.id!r}")
            self.known[workflow.id] = workflow
        overrides = overrides or {}
        for workflow_id in overrides:
            if workflow_id not in self.known:
                raise WorkflowConfigError(f"override for unknown workflow {workflow_id!r}")
        self.known = {
            wid: dataclasses.replace(w, settings=apply_override(w.settings, overrides[wid]))
            if wid in overrides
            else w
            for wid, w in self.known.items()
        }
        missing = [wid for wid in enabled if wid not in self.known]
        if missing:
            raise WorkflowConfigError(
                f"enabled workflow(s) {missing} not found; known: {sorted(self.known)}"
            )
        if len(set(enabled)) != len(enabled):
            raise WorkflowConfigError("a workflow is enabled twice")
        self.enabled_ids = list(enabled)
        self._check_claims()

    def _check_claims(self) -> None:
        owners: dict[tuple[Trigger, str], str] = {}
        for workflow in self.enabled():
            reserved = sorted(workflow.settings.claims & RESERVED_CLAIMS)
            if reserved:
                raise WorkflowConfigError(
                    f"workflow {workflow.id!r} declares reserved claim(s) {reserved}"
                )
            for claim in workflow.settings.claims:
                key = (workflow.settings.trigger, claim)
                if key in owners:
                    raise WorkflowConfigError(
                        f"workflows {owners[key]!r} and {workflow.id!r} both set claim {claim!r}"
                    )
                owners[key] = workflow.id

    def enabled(self, trigger: Trigger | None = None) -> list[Workflow]:
        chosen = [self.known[wid] for wid in self.enabled_ids]
        return [w for w in chosen if trigger is None or w.settings.trigger == trigger]

    def get(self, workflow_id: str) -> Workflow:
        try:
            return self.known[workflow_id]
        except KeyError:
            raise WorkflowConfigError(f"no workflow {workflow_id!r}") from None

    @classmethod
    def from_settings(
        cls,
        enabled: Sequence[str],
        workflows_dir: str | None = None,
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> WorkflowRegistry:
        return cls(discover(workflows_dir), enabled, overrides)
