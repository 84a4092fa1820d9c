"""``claimflow workflows list``, ``runs`` and ``test`` against a real SQLite database."""

from __future__ import annotations

import asyncio
import json

from claimflow.services import build_services
from claimflow.settings import Settings
from claimflow.store import migrate
from tests.cli.conftest import Invoke
from tests.workflows.conftest import BillingWorld, build_world, make_event


def seed(db_url: str, sign_in: bool = False) -> BillingWorld:
    migrate(db_url)

    async def run() -> BillingWorld:
        services = build_services(Settings(database_url=db_url))
        try:
            world = await build_world(services, features=3)
            if sign_in:
                await services.workflows.run_tokens_generation(
                    make_event(world.member_id, world.org_code)
                )
            return world
        finally:
            await services.close()

    return asyncio.run(run())


def test_list_shows_the_enabled_workflows_in_order(invoke: Invoke, cli_db_url: str) -> None:
    result = invoke("workflows", "list")
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.stdout.splitlines()]
    assert lines[1][:5] == ["1", "org_billing", "user:tokens_generation", "stop", "2"]
    assert lines[3][:2] == ["2", "user_billing"]


def test_test_prints_claims_sizes_and_timings_without_issuing(
    invoke: Invoke, cli_db_url: str
) -> None:
    world = seed(cli_db_url)
    result = invoke(
        "workflows", "test", "org_billing", "--user", world.member_id, "--org", world.org_code
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "workflow org_billing: succeeded" in out
    body = out.split("access token claims:\n  org_billing = ", 1)[1].split("\nID token claims:", 1)[
        0
    ]
    claim = json.loads(body)
    assert claim["customer_id"] == world.org_customer
    assert [a["plan_code"] for a in claim["agreements"]] == ["pro"]
    assert "access token: " in out and "of 4096 (org_billing=full" in out
    assert "3 Management API call(s)" in out
    runs = invoke("workflows", "runs")
    assert runs.stdout.strip() == "no runs"  # a dry run records nothing


def test_test_refuses_a_non_member(invoke: Invoke, cli_db_url: str) -> None:
    world = seed(cli_db_url)
    result = invoke(
        "workflows",
        "test",
        "org_billing",
        "--user",
        world.personal_user_id,
        "--org",
        world.org_code,
    )
    assert result.exit_code == 2
    assert "not a member" in result.stderr


def test_runs_lists_recorded_runs_with_log_lines(invoke: Invoke, cli_db_url: str) -> None:
    world = seed(cli_db_url, sign_in=True)
    result = invoke("workflows", "runs", "--workflow", "org_billing", "-v")
    assert result.exit_code == 0, result.output
    assert "org_billing" in result.stdout and "succeeded" in result.stdout
    assert f"org={world.org_code}" in result.stdout
    assert "org_billing set for customer" in result.stdout
    failed = invoke("workflows", "runs", "--outcome", "failed")
    assert failed.stdout.strip() == "no runs"
    pruned = invoke("workflows", "runs", "--prune")
    assert "pruned 0 run(s)" in pruned.stdout
