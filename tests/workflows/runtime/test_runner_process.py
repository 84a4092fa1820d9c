"""The runner process itself: what it imports and what its environment holds."""

from __future__ import annotations

import os
import subprocess
import sys

from claimflow.workflows.runtime.pool import runner_environment

SERVER_MODULES = ("fastapi", "sqlalchemy", "redis", "claimflow.app", "claimflow.store")


def test_the_runner_module_loads_none_of_the_server() -> None:
    probe = (
        "import sys, claimflow.workflows.runtime.runner\n"
        f"print(','.join(m for m in {SERVER_MODULES!r} if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe],
        env=runner_environment(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert loaded == ""


def test_the_runner_environment_passes_on_no_claimflow_or_kinde_variable() -> None:
    os.environ["CLAIMFLOW_SECRET_KEY_PROBE"] = "must-not-travel"
    os.environ["KINDE_WF_M2M_CLIENT_SECRET_PROBE"] = "must-not-travel"
    try:
        environment = runner_environment()
    finally:
        del os.environ["CLAIMFLOW_SECRET_KEY_PROBE"], os.environ["KINDE_WF_M2M_CLIENT_SECRET_PROBE"]
    assert sorted(environment) == [
        "LANG",
        "PATH",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONNOUSERSITE",
        "PYTHONPATH",
    ]
    assert "must-not-travel" not in "".join(environment.values())
