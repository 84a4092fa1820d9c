"""The layering of ``shared/design.md`` §2, checked on the import graph of the package.

Dependencies point inward. ``domain`` and ``claims`` import nothing of ours but each other and
``errors``; ``resource`` imports only ``claims`` and ``errors`` (an API that verifies tokens
installs none of the server); nothing imports the HTTP layers or the service container but the
composition roots — the app factory ``claimflow.app``, the ``claimflow`` command, the lazy
package root — and the HTTP layers themselves, which receive the container from ``app.state``.
The graph is read with ``ast`` from the source, every import counted (also those inside a
function or under ``TYPE_CHECKING``), so a violation cannot hide in a lazy import.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "claimflow"

HTTP_LAYERS = ("claimflow.oidc", "claimflow.management", "claimflow.account")
CONTAINER = ("claimflow.services", "claimflow.app")
COMPOSITION_ROOTS = ("claimflow", "claimflow.app", "claimflow.cli")

INNER_ALLOWED = {
    "claimflow.domain": ("claimflow.domain", "claimflow.claims", "claimflow.errors"),
    "claimflow.claims": ("claimflow.claims", "claimflow.domain", "claimflow.errors"),
    "claimflow.resource": ("claimflow.resource", "claimflow.claims", "claimflow.errors"),
}
"""Packages that may import only the listed parts of claimflow."""

KNOWN_EXCEPTIONS: set[tuple[str, str]] = set()
"""Edges the rule forbids that the code still has (none now). An entry is removed when the
code stops having it (the test below fails on a stale entry, so the list only shrinks)."""


def module_name(path: Path, root: Path = PACKAGE.parent) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def imports_of(path: Path, root: Path = PACKAGE.parent) -> Iterator[str]:
    """Every module ``path`` (under ``root``) imports, wherever the import statement stands."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    this = module_name(path, root)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = this.split(".")
                if path.name != "__init__.py":
                    package.pop()
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, base] if base else package)
            yield base
            # ``from claimflow import oidc`` imports the subpackage ``claimflow.oidc``.
            yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph() -> set[tuple[str, str]]:
    edges = set()
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    for path in PACKAGE.rglob("*.py"):
        importer = module_name(path)
        for imported in imports_of(path):
            if imported in modules and imported != importer:
                edges.add((importer, imported))
    return edges


def violations(edges: set[tuple[str, str]]) -> set[tuple[str, str]]:
    found = set()
    for importer, imported in edges:
        for package, allowed in INNER_ALLOWED.items():
            if within(importer, package) and not any(within(imported, a) for a in allowed):
                found.add((importer, imported))
        outer = any(within(imported, p) for p in (*HTTP_LAYERS, *CONTAINER))
        trusted = importer in COMPOSITION_ROOTS or any(
            within(importer, p) for p in ("claimflow.cli", *HTTP_LAYERS)
        )
        if outer and not trusted:
            found.add((importer, imported))
    return found


def test_no_inner_layer_imports_the_http_layers_or_the_service_container() -> None:
    found = violations(import_graph())
    new = sorted(found - KNOWN_EXCEPTIONS)
    assert not new, "imports against design §2:\n" + "\n".join(f"{a} -> {b}" for a, b in new)
    stale = sorted(KNOWN_EXCEPTIONS - found)
    assert not stale, f"remove these from KNOWN_EXCEPTIONS, the code no longer has them: {stale}"


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("claimflow.tokens.issue", "claimflow.services"),
        ("claimflow.workflows.engine", "claimflow.oidc.access_tokens"),
        ("claimflow.store.billing", "claimflow.management.wire"),
        ("claimflow.resource.verifier", "claimflow.tokens.keys"),
        ("claimflow.claims.billing", "claimflow.store"),
        ("claimflow.domain.models", "claimflow.workflows.event"),
    ],
)
def test_the_check_catches_an_edge_against_the_rule(importer: str, imported: str) -> None:
    assert violations({(importer, imported)}) == {(importer, imported)}


def test_the_check_reads_lazy_and_relative_imports(tmp_path: Path) -> None:
    module = tmp_path / "claimflow" / "workflows" / "engine.py"
    module.parent.mkdir(parents=True)
    module.write_text(
        "def f():\n    from claimflow.app import create_app\n"
        "from ..services import Services\nfrom . import event\n",
        encoding="utf-8",
    )
    found = set(imports_of(module, root=tmp_path))
    assert {"claimflow.app", "claimflow.services", "claimflow.workflows.event"} <= found


SERVER_MODULES = ("fastapi", "sqlalchemy", "redis", "asyncpg", "aiosqlite", "alembic")


@pytest.mark.parametrize("light", ["claimflow.resource", "claimflow.claims", "claimflow"])
def test_importing_the_light_parts_loads_none_of_the_server(light: str) -> None:
    """``import claimflow.resource`` in a fresh interpreter loads no FastAPI, SQLAlchemy or Redis."""
    probe = (
        f"import json, sys, {light}\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(json.loads(done.stdout))
    assert loaded.isdisjoint(SERVER_MODULES), sorted(loaded & set(SERVER_MODULES))


def test_the_package_root_still_offers_the_server_on_demand() -> None:
    probe = (
        "import sys, claimflow\n"
        "assert 'fastapi' not in sys.modules\n"
        "from claimflow import Settings, create_app\n"
        "assert callable(create_app) and 'fastapi' in sys.modules\n"
        "assert claimflow.Settings is Settings\n"
        "print(sorted(n for n in claimflow.__all__ if not hasattr(claimflow, n)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
