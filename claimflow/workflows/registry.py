"""Where workflows come from, which are enabled, and whether they can run together.

Sources, in order: the built-ins (``claimflow/workflows/builtin/``), the ``claimflow.workflows``
entry-point group (how a package ships workflows), and the ``*.py`` files of
``settings.workflows_dir``. A workflow module exports ``workflow_settings`` (a
``WorkflowSettings``) and ``async def run(event, bindings)``. ``settings.workflows_enabled``
enables and orders them; ``settings.workflow_overrides`` adjusts one's failure policy or time
limit without editing its code.

Configuration errors — an unknown enabled id, two workflows with one id, a declared reserved
or built-in claim, two enabled workflows of one trigger declaring the same claim, a workflow on a
trigger claimflow never fires — raise ``WorkflowConfigError`` when the registry is built, i.e.
at start-up.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from claimflow.errors import WorkflowConfigError, WorkflowRuntimeError
from claimflow.tokens.reserved import BUILTIN_CLAIMS, builtin_claim_owner, is_reserved
from claimflow.workflows.definition import Binding, FailurePolicy, Workflow, WorkflowSettings
from claimflow.workflows.event import Trigger, WorkflowEvent
from claimflow.workflows.loading import load_file, workflow_from_module

if TYPE_CHECKING:
    from claimflow.workflows.bindings import Bindings

BUILTIN_MODULES = (
    "claimflow.workflows.builtin.org_billing",
    "claimflow.workflows.builtin.user_billing",
    "claimflow.workflows.builtin.org_billing_m2m",
)
ENTRY_POINT_GROUP = "claimflow.workflows"
FIRED_TRIGGERS = frozenset(
    {
        Trigger.USER_TOKENS_GENERATION,
        Trigger.USER_POST_AUTHENTICATION,
        Trigger.USER_EXISTING_PASSWORD_PROVIDED,
        Trigger.M2M_TOKEN_GENERATION,
        Trigger.USER_PLAN_SELECTION,
        Trigger.USER_PLAN_CANCELLATION_REQUEST,
    }
)
"""The triggers claimflow fires today; a workflow enabled on another would never run."""
TOKEN_BINDINGS = frozenset({Binding.ACCESS_TOKEN, Binding.ID_TOKEN})
TRIGGER_ONLY_BINDINGS = {
    Binding.ACCESS_TOKEN: frozenset({Trigger.USER_TOKENS_GENERATION}),
    Binding.ID_TOKEN: frozenset({Trigger.USER_TOKENS_GENERATION}),
    Binding.M2M_TOKEN: frozenset({Trigger.M2M_TOKEN_GENERATION}),
    Binding.PLAN: frozenset({Trigger.USER_PLAN_SELECTION, Trigger.USER_PLAN_CANCELLATION_REQUEST}),
    Binding.AUTH: frozenset(
        {
            Trigger.USER_TOKENS_GENERATION,
            Trigger.USER_POST_AUTHENTICATION,
            Trigger.USER_EXISTING_PASSWORD_PROVIDED,
        }
    ),
}
"""Bindings that exist on some triggers only: Kinde gives ``kinde.accessToken`` and
``kinde.idToken`` on ``user:tokens_generation``, ``kinde.m2mToken`` on ``m2m:token_generation``
and ``kinde.plan`` on the plan triggers
(https://docs.kinde.com/workflows/bindings/m2m-token-binding/ ,
https://docs.kinde.com/workflows/bindings/plan-binding/). A workflow declaring one elsewhere is
refused at start-up rather than silently losing what it sets."""
SIGN_IN_TRIGGERS = frozenset(
    {Trigger.USER_POST_AUTHENTICATION, Trigger.USER_EXISTING_PASSWORD_PROVIDED}
)
"""Triggers fired before any token exists: Kinde gives ``kinde.accessToken`` and
``kinde.idToken`` on ``user:tokens_generation`` only
(https://docs.kinde.com/workflows/bindings/access-token-binding/), so a sign-in workflow
declaring them is refused at start-up rather than silently losing its claims."""


async def _isolated_entry(_event: WorkflowEvent, _bindings: Bindings) -> None:
    raise WorkflowRuntimeError("an untrusted workflow runs in a runner process, not here")


def _described(path: Path, wire: dict[str, Any]) -> Workflow:
    if "error" in wire:
        raise WorkflowConfigError(f"{path}: {wire['error']}")
    return Workflow(
        settings=WorkflowSettings.from_wire(wire["settings"]),
        entry=_isolated_entry,
        source=str(path),
    )


def discover(
    workflows_dir: str | None = None,
    trusted: Collection[str] = (),
    describe: Callable[[list[str]], list[dict[str, Any]]] | None = None,
) -> list[Workflow]:
    """Every workflow we can find; the same module reached twice counts once.

    The built-ins are trusted. The ``*.py`` files of ``workflows_dir`` are untrusted code: their
    declarations are read in a runner process (``describe``), so no line of theirs runs in the
    server unless the deployment names the workflow in ``trusted``. Entry-point packages are
    installed into the server's environment (already code the server can import); they are
    trusted only when named too, else they run in runners like the files.
    """
    found: dict[str, Workflow] = {}

    def add(workflow: Workflow, module_name: str) -> None:
        existing = found.get(workflow.id)
        if existing is not None:
            if existing.source == workflow.source:
                return
            raise WorkflowConfigError(
                f"two workflows have the id {workflow.id!r}: {existing.source} and {module_name}"
            )
        found[workflow.id] = workflow

    for module_name in BUILTIN_MODULES:
        builtin = workflow_from_module(importlib.import_module(module_name), module_name)
        add(dataclasses.replace(builtin, trusted=True), module_name)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        module = ep.load()
        if isinstance(module, ModuleType):
            loaded = workflow_from_module(module, module.__name__)
            add(dataclasses.replace(loaded, trusted=loaded.id in trusted), ep.value)
    if workflows_dir:
        directory = Path(workflows_dir)
        if not directory.is_dir():
            raise WorkflowConfigError(f"workflows_dir {workflows_dir!r} is not a directory")
        paths = [p for p in sorted(directory.glob("*.py")) if not p.name.startswith("_")]
        described = (describe or _describe_in_runner)([str(p) for p in paths]) if paths else []
        for path, wire in zip(paths, described, strict=True):
            workflow = _described(path, wire)
            if workflow.id in trusted:
                workflow = dataclasses.replace(load_file(path), trusted=True)
            add(workflow, str(path))
    return list(found.values())


def _describe_in_runner(sources: list[str]) -> list[dict[str, Any]]:
    from claimflow.workflows.runtime.pool import describe

    return describe(sources, memory_mb=0)


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
        self._check_runnable()

    def _check_runnable(self) -> None:
        for workflow in self.enabled():
            trigger = workflow.settings.trigger
            if trigger not in FIRED_TRIGGERS:
                raise WorkflowConfigError(
                    f"workflow {workflow.id!r} is on trigger {trigger.value!r}, which claimflow "
                    f"does not fire (fired: {sorted(t.value for t in FIRED_TRIGGERS)}); "
                    "disable it or move it to a fired trigger"
                )
            if trigger in SIGN_IN_TRIGGERS and workflow.settings.bindings & TOKEN_BINDINGS:
                raise WorkflowConfigError(
                    f"workflow {workflow.id!r} is on trigger {trigger.value!r}, where no token "
                    "exists yet; it may not declare the access_token or id_token binding"
                )
            misplaced = sorted(
                b.value
                for b in workflow.settings.bindings
                if trigger not in TRIGGER_ONLY_BINDINGS.get(b, frozenset({trigger}))
            )
            if misplaced:
                raise WorkflowConfigError(
                    f"workflow {workflow.id!r} declares binding(s) {misplaced}, which trigger "
                    f"{trigger.value!r} does not give"
                )
            if not workflow.trusted and Binding.BILLING_CACHE in workflow.settings.bindings:
                raise WorkflowConfigError(
                    f"workflow {workflow.id!r} declares the billing_cache binding, which only "
                    "trusted workflows have (settings.workflows_trusted)"
                )

    def _check_claims(self) -> None:
        owners: dict[tuple[Trigger, str], str] = {}
        for workflow in self.enabled():
            reserved = sorted(
                c
                for c in workflow.settings.claims
                if is_reserved(c) or (builtin_claim_owner(c) and c not in BUILTIN_CLAIMS)
            )
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
        trusted: Collection[str] = (),
        describe: Callable[[list[str]], list[dict[str, Any]]] | None = None,
    ) -> WorkflowRegistry:
        workflows = discover(workflows_dir, trusted, describe)
        unknown = sorted(set(trusted) - {w.id for w in workflows})
        if unknown:
            raise WorkflowConfigError(f"workflows_trusted names unknown workflow(s) {unknown}")
        return cls(workflows, enabled, overrides)
