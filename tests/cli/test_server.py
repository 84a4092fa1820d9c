"""``claimflow serve`` as a real process, driven by the issue's "Done means" script.

``claimflow init --json`` gives the credentials; ``examples/management_quickstart.py`` (httpx
only, as a user's own script) then gets an M2M token, creates a plan with features, an
organization with a billing customer on that plan and a user in it, and reads back the
organization's entitlements and agreements in Kinde's shapes — over real HTTP.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from tests.cli.conftest import Invoke

QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "management_quickstart.py"


def test_serve_answers_the_management_quickstart_over_http(
    invoke: Invoke, cli_db_url: str, start_server
) -> None:  # type: ignore[no-untyped-def]
    init = invoke("init", "--json")
    assert init.exit_code == 0, init.output
    credentials = json.loads(init.stdout)
    base_url, _process = start_server("serve")

    run = subprocess.run(
        [
            sys.executable,
            str(QUICKSTART),
            f"--base-url={base_url}",
            f"--client-id={credentials['client_id']}",
            # '=' form: a generated secret may start with '-', which argparse reads as a flag.
            f"--client-secret={credentials['client_secret']}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    org_code = result["organization"]["code"]
    assert {e["feature_code"] for e in result["entitlements"]} == {"seats", "sso", "api_calls"}
    assert [a["plan_code"] for a in result["agreements"]] == ["quickstart_pro"]

    token = httpx.post(
        base_url + "/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": credentials["client_id"],
            "client_secret": credentials["client_secret"],
            "audience": base_url + "/api",
        },
    ).json()["access_token"]
    members = httpx.get(
        f"{base_url}/api/v1/organizations/{org_code}/users",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert result["user_id"] in {m["id"] for m in members.json()["organization_users"]}


def test_serve_refuses_several_workers_on_sqlite(invoke: Invoke, cli_db_url: str) -> None:
    result = invoke("serve", "--workers", "2")
    assert result.exit_code == 2
    assert "PostgreSQL" in result.stderr
