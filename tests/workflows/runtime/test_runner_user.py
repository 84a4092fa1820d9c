"""A server running as root runs workflows as an unprivileged user (design §8).

Run as root here: a hostile workflow (in its top-level code, read at start-up, and in its run)
tries to open the SQLite database file and the deployment's secret-key file, both in a directory
anyone may enter. The runner switched to ``nobody`` before the workflow's first line, and both
files are mode 600, so both opens fail; the workflow cannot switch back to root either.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from claimflow.app import create_app
from claimflow.services import build_services
from claimflow.settings import SECRET_KEY_FILE, Settings
from claimflow.store import migrate
from claimflow.workflows.runtime.pool import runner_user
from tests.conftest import ISSUER, make_settings
from tests.workflows.conftest import make_event

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the server must run as root")

HOSTILE = """
import os
from claimflow.workflows import Binding, FailurePolicy, WorkflowSettings

def attempt(path):
    try:
        with open(path, "rb") as handle:
            return "read %d bytes" % len(handle.read())
    except OSError as exc:
        return type(exc).__name__

def escalate():
    try:
        os.setuid(0)
        return "root again"
    except PermissionError:
        return "refused"

AT_START = {{"db": attempt({db!r}), "secret": attempt({secret!r})}}

workflow_settings = WorkflowSettings(
    id="hostile",
    name="hostile",
    bindings=frozenset({{Binding.ACCESS_TOKEN}}),
    failure_policy=FailurePolicy.STOP,
)

async def run(event, bindings):
    seen = {{
        "uid": os.getuid(),
        "at_start": AT_START,
        "db": attempt({db!r}),
        "secret": attempt({secret!r}),
        "setuid": escalate(),
    }}
    bindings.access_token.set_custom_claim("seen", seen)
"""


@pytest.fixture
def shared_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory any user may enter and list (unlike pytest's ``tmp_path``), as a deployment's
    data directory often is; the working directory, so the secret-key file lands in it."""
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        directory.chmod(0o755)
        monkeypatch.chdir(directory)
        yield directory


async def test_a_hostile_workflow_cannot_open_the_database_or_the_secret_key(
    shared_dir: Path, tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{shared_dir / 'claimflow.db'}"
    await asyncio.to_thread(migrate, url)
    settings = Settings(
        database_url=url,
        issuer=ISSUER,
        secret_key=None,
        workflows_dir=str(tmp_path),  # readable by root only: the runner reads it before it drops
        workflows_enabled=["hostile"],
        workflow_runner_pool_size=1,
    )
    settings.resolved_secret_key()  # written to ./.claimflow-secret, as claimflow serve does
    secret = shared_dir / SECRET_KEY_FILE
    database = shared_dir / "claimflow.db"
    (tmp_path / "hostile.py").write_text(
        textwrap.dedent(HOSTILE.format(db=str(database), secret=str(secret)))
    )
    services = build_services(settings)
    create_app(services=services)
    try:
        assert stat.S_IMODE(database.stat().st_mode) == 0o600
        await services.workflows.warm_up()
        assert services.workflows.registry is not None
        workflow = services.workflows.registry.get("hostile")
        (report,) = await services.workflows.run_workflows(
            [workflow], make_event("kp_1", None), record=False
        )
    finally:
        await services.close()
    assert report.ok, report.run.error
    (seen,) = report.access_token["seen"]
    assert seen == {
        "uid": 65534,
        "at_start": {"db": "PermissionError", "secret": "PermissionError"},
        "db": "PermissionError",
        "secret": "PermissionError",
        "setuid": "refused",
    }, json.dumps(seen)


def test_runners_keep_the_servers_user_unless_it_is_root() -> None:
    assert runner_user() == "nobody"
    assert runner_user("claimflow-runner") == "claimflow-runner"
    assert runner_user("root") is None


HELPED = """
import _helper_beside
from claimflow.workflows import Binding, WorkflowSettings

workflow_settings = WorkflowSettings(
    id="helped", name="helped", bindings=frozenset({Binding.ACCESS_TOKEN})
)

async def run(event, bindings):
    bindings.access_token.set_custom_claim("helper_uid", _helper_beside.UID)
"""


async def test_a_module_beside_the_workflow_is_not_imported_before_the_switch(
    shared_dir: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner imports the libraries a workflow names while still root; a module in the
    workflow's own directory (here also on ``sys.path``) is the author's code and must run as
    the runner user like the workflow itself."""
    workflows = shared_dir / "workflows"
    workflows.mkdir(mode=0o755)
    (workflows / "helped.py").write_text(HELPED)
    (workflows / "_helper_beside.py").write_text("import os\nUID = os.getuid()\n")
    for path in workflows.iterdir():
        path.chmod(0o644)
    monkeypatch.syspath_prepend(str(workflows))
    services = build_services(
        make_settings(
            db_url,
            workflows_dir=str(workflows),
            workflows_enabled=["helped"],
            workflow_runner_pool_size=1,
        )
    )
    create_app(services=services)
    try:
        await services.workflows.warm_up()
        assert services.workflows.registry is not None
        workflow = services.workflows.registry.get("helped")
        (report,) = await services.workflows.run_workflows(
            [workflow], make_event("kp_1", None), record=False
        )
    finally:
        await services.close()
    assert report.ok, report.run.error
    assert report.access_token["helper_uid"] == (65534,)
