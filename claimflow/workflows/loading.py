"""Loading a workflow module: from a module name or from the path of a ``*.py`` file.

Shared by the registry (trusted workflows, in the server) and the runner process (the others):
a module exports ``workflow_settings`` (a ``WorkflowSettings``) and ``async def run(event,
bindings)``.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from pathlib import Path
from types import ModuleType

from claimflow.errors import WorkflowConfigError
from claimflow.workflows.definition import Workflow, WorkflowSettings


def workflow_from_module(module: ModuleType, source: str) -> Workflow:
    settings = getattr(module, "workflow_settings", None)
    entry = getattr(module, "run", None)
    if not isinstance(settings, WorkflowSettings):
        raise WorkflowConfigError(f"{source}: no 'workflow_settings' of type WorkflowSettings")
    if entry is None or not inspect.iscoroutinefunction(entry):
        raise WorkflowConfigError(f"{source}: no 'async def run(event, bindings)'")
    applies = getattr(module, "applies", None)
    if applies is not None and (not callable(applies) or inspect.iscoroutinefunction(applies)):
        raise WorkflowConfigError(f"{source}: 'applies' must be a plain 'def applies(event)'")
    warm = getattr(module, "warm", None)
    run_now = getattr(module, "run_now", None)
    for name, hook in (("warm", warm), ("run_now", run_now)):
        if hook is not None and (not callable(hook) or inspect.iscoroutinefunction(hook)):
            raise WorkflowConfigError(f"{source}: '{name}' must be a plain function")
    if (warm is None) != (run_now is None):
        raise WorkflowConfigError(f"{source}: 'warm' and 'run_now' go together")
    return Workflow(
        settings=settings,
        entry=entry,
        source=source,
        applies=applies,
        warm=warm,
        run_now=run_now,
    )


def load_file(path: Path, text: str | None = None) -> Workflow:
    """The workflow of a ``.py`` file; ``text``, when given, is its source as read earlier (a
    runner reads it before it gives up the rights to read the file)."""
    name = f"claimflow_user_workflow_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise WorkflowConfigError(f"{path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    try:
        if text is None:
            spec.loader.exec_module(module)
        else:
            exec(compile(text, str(path), "exec"), module.__dict__)  # noqa: S102 - the workflow
    except (ImportError, SyntaxError) as exc:
        raise WorkflowConfigError(f"{path}: {exc}") from exc
    return workflow_from_module(module, str(path))


def load_workflow(source: str, text: str | None = None) -> Workflow:
    """``source`` as ``Workflow.source`` records it: a ``.py`` path or a module name."""
    if source.endswith(".py"):
        return load_file(Path(source), text)
    module_name = source.split(":", 1)[0]
    return workflow_from_module(importlib.import_module(module_name), source)
