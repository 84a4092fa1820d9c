"""``claimflow workflows list``, ``runs`` and ``test`` against a real SQLite database."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from claimflow.app import create_app
from claimflow.domain import ApplicationType, FeatureKind
from claimflow.services import build_services
from claimflow.settings import Settings
from claimflow.store import applications, billing, migrate, users
from claimflow.store.billing import PriceInput
from claimflow.workflows.environment import create_variable
from tests.cli.conftest import Invoke
from tests.helpers import legacy_service
from tests.workflows.conftest import BillingWorld, build_world, make_event


def seed(db_url: str, sign_in: bool = False) -> BillingWorld:
    migrate(db_url)

    async def run() -> BillingWorld:
        services = build_services(Settings(database_url=db_url))
        create_app(services=services)  # serves the in-process Management API
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


EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "workflows"
LEGACY_PASSWORD = "lena's old password 1999"


def _enable(monkeypatch: pytest.MonkeyPatch, workflow_id: str) -> None:
    monkeypatch.setenv("CLAIMFLOW_WORKFLOWS_DIR", str(EXAMPLES))
    monkeypatch.setenv("CLAIMFLOW_WORKFLOWS_ENABLED", json.dumps(["org_billing", workflow_id]))
    monkeypatch.setenv(
        "CLAIMFLOW_WORKFLOW_OVERRIDES", json.dumps({workflow_id: {"time_limit_seconds": 30}})
    )


def test_test_runs_a_post_authentication_workflow_with_the_browser_of_the_flags(
    invoke: Invoke, cli_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = seed(cli_db_url)

    async def unpaid() -> None:
        services = build_services(Settings(database_url=cli_db_url))
        try:
            async with services.db.transaction() as conn:
                await billing.create_customer(conn, org_code=world.plain_org_code)
        finally:
            await services.close()

    asyncio.run(unpaid())
    _enable(monkeypatch, "unpaid_org_gate")
    result = invoke(
        "workflows",
        "test",
        "unpaid_org_gate",
        "--user",
        world.member_id,
        "--org",
        world.plain_org_code,
        "--ip",
        "203.0.113.9",
        "--user-agent",
        "TestBrowser/1.0",
    )
    assert result.exit_code == 0, result.output
    assert "workflow unpaid_org_gate: denied" in result.stdout
    assert "denied: No billing has no active plan." in result.stdout
    assert f"sign-in of {world.member_id} from 203.0.113.9 (TestBrowser/1.0)" in result.stdout
    assert invoke("workflows", "runs").stdout.strip() == "no runs"


def test_test_runs_a_migration_without_writing_unless_told(
    invoke: Invoke, cli_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(cli_db_url)
    with legacy_service({"lena@example.com": (LEGACY_PASSWORD, {"given_name": "Lena"})}) as old:

        async def configure() -> None:
            services = build_services(Settings(database_url=cli_db_url))
            try:
                async with services.db.transaction() as conn:
                    await create_variable(conn, services.box, key="LEGACY_AUTH_URL", value=old.url)
            finally:
                await services.close()

        asyncio.run(configure())
        _enable(monkeypatch, "legacy_password_migration")
        monkeypatch.setenv("CLAIMFLOW_WORKFLOW_TEST_PASSWORD", LEGACY_PASSWORD)
        args = ("workflows", "test", "legacy_password_migration", "--email", "lena@example.com")

        dry = invoke(*args)
        assert dry.exit_code == 0, dry.output
        assert "not performed (dry run): POST user" in dry.stdout
        assert LEGACY_PASSWORD not in dry.output
        assert old.calls == ["lena@example.com"]

        written = invoke(*args, "--allow-writes")
        assert written.exit_code == 0, written.output
        assert "workflow legacy_password_migration: succeeded" in written.stdout
        assert "migrated kp_" in written.stdout
        assert LEGACY_PASSWORD not in written.output

    async def stored_hash() -> str | None:
        services = build_services(Settings(database_url=cli_db_url))
        try:
            async with services.db.connect() as conn:
                user = await users.find_user_by_email(conn, "lena@example.com")
                assert user is not None
                return await users.get_password_hash(conn, user.id)
        finally:
            await services.close()

    stored = asyncio.run(stored_hash())
    assert stored is not None and stored.startswith("$argon2id$")


def _store(db_url: str, world: BillingWorld) -> str:
    """A ``tiny`` plan with no seat, the variable naming ``pro`` a contract plan, and an API key
    of the world's organization; returns the key's client id."""

    async def run() -> str:
        services = build_services(Settings(database_url=db_url))
        try:
            async with services.db.transaction() as conn:
                await billing.create_feature(
                    conn, code="seats", name="Seats", kind=FeatureKind.LIMIT
                )
                await billing.create_plan(
                    conn,
                    code="tiny",
                    name="Tiny",
                    prices=[PriceInput("seats", "Tiny seats", entitlement_limit_max=0)],
                )
                await create_variable(
                    conn, services.box, key="CANCELLATION_GUARD_PLANS", value="pro"
                )
                app, _ = await applications.create_application(
                    conn, name="Acme key", type=ApplicationType.M2M, org_code=world.org_code
                )
            return app.client_id
        finally:
            await services.close()

    return asyncio.run(run())


def test_test_runs_the_plan_and_m2m_triggers_without_changing_anything(
    invoke: Invoke, cli_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = seed(cli_db_url)
    key = _store(cli_db_url, world)

    _enable(monkeypatch, "seat_limit_downgrade")
    result = invoke(
        "workflows", "test", "seat_limit_downgrade", "--org", world.org_code, "--plan", "tiny"
    )
    assert result.exit_code == 0, result.output
    assert "workflow seat_limit_downgrade: denied" in result.stdout
    assert f"denied: {world.org_code} has 1 members but plan tiny allows 0 seats" in result.stdout
    assert "suggested plan: pro" in result.stdout

    _enable(monkeypatch, "cancellation_guard")
    result = invoke("workflows", "test", "cancellation_guard", "--org", world.org_code)
    assert result.exit_code == 0, result.output
    assert "denied: The pro plan is a contract" in result.stdout
    result = invoke("workflows", "test", "cancellation_guard", "--user", world.personal_user_id)
    assert "workflow cancellation_guard: succeeded" in result.stdout

    _enable(monkeypatch, "api_rate_limit")
    result = invoke("workflows", "test", "api_rate_limit", "--client", key)
    assert result.exit_code == 0, result.output
    assert 'M2M token claim api_rate_limit = {"requests_per_minute": 60}' in result.stdout
    assert f"Acme key of {world.org_code}: 60/min" in result.stdout
    assert invoke("workflows", "runs").stdout.strip() == "no runs"
