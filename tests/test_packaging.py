"""A new user's first hour: the built wheel, installed into a fresh venv, runs ``claimflow demo``.

The wheel is built from a copy of the source tree (so the checkout gets no ``build/``), installed
with ``--no-deps`` into a new venv that reaches the project venv's dependencies through a ``.pth``
line (no download, and the project's editable install stays invisible: a path line does not run
that directory's own ``.pth`` hooks). The demo then runs from an empty directory, so everything
it needs — the demo data, migrations, templates, claim schemas — must have come from the wheel.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import venv
from pathlib import Path

import httpx
import pytest

from tests.cli.conftest import SECRET_KEY, free_port, wait_until_serving

ROOT = Path(__file__).resolve().parents[1]
SKIPPED = shutil.ignore_patterns(
    ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", "*_cache", ".hypothesis", "*.db*"
)

pytestmark = pytest.mark.packaging


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with only the built wheel of claimflow installed; its ``bin`` directory."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"
    shutil.copytree(ROOT, source, ignore=SKIPPED)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(base / "dist"),
            str(source),
        ],
        check=True,
        timeout=300,
    )
    (wheel,) = (base / "dist").glob("claimflow-*.whl")
    target = base / "venv"
    venv.create(target, with_pip=False)
    (site_packages,) = target.glob("lib/python*/site-packages")
    (site_packages / "project-dependencies.pth").write_text(
        "\n".join(site.getsitepackages()) + "\n", encoding="utf-8"
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(target / "bin" / "python"),
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
        timeout=300,
    )
    return target / "bin"


def test_the_wheel_holds_the_package_and_not_the_checkout(installed: Path, tmp_path: Path) -> None:
    where = subprocess.run(
        [str(installed / "python"), "-c", "import claimflow.seed as s; print(s.demo_data_path())"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert where.startswith(str(installed.parent)), where
    assert Path(where).is_file()


def test_claimflow_demo_from_the_wheel_serves_the_demo_business(
    installed: Path, tmp_path: Path
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMFLOW_")}
    env["CLAIMFLOW_SECRET_KEY"] = SECRET_KEY
    log = tmp_path / "demo.log"
    with log.open("wb") as output:
        demo = subprocess.Popen(
            [str(installed / "claimflow"), "demo", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            wait_until_serving(base_url, demo)
            token = httpx.post(
                base_url + "/oauth2/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": "demo-m2m",
                    "client_secret": "demo-m2m-secret-not-for-production",
                    "audience": base_url + "/api",
                },
            )
            assert token.status_code == 200, token.text
            page = httpx.get(
                base_url + "/oauth2/auth",
                params={
                    "response_type": "code",
                    "client_id": "demo-web",
                    "redirect_uri": "http://127.0.0.1:8765/callback",
                    "scope": "openid",
                    "state": "s",
                    "nonce": "n",
                },
            )
            assert page.status_code == 200 and "password" in page.text  # the packaged template
            ready = httpx.get(base_url + "/readyz")
            assert ready.status_code == 200, ready.text
        finally:
            demo.terminate()
            demo.wait(timeout=30)
    assert "claimflow demo at" in log.read_text()
    assert (tmp_path / "claimflow-demo.db").is_file()
