"""``claimflow import FILE``: a whole file in one transaction, or nothing."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import yaml
from sqlalchemy import func, select

from claimflow.crypto import verify_password
from claimflow.domain import PropertyContext
from claimflow.domain.management_scopes import WORKFLOWS_CLIENT_ID
from claimflow.seed import demo_data_path
from claimflow.store import Database, billing, feature_flags, organizations, properties, users
from claimflow.store import tables as t
from tests.cli.conftest import Invoke

DEMO = demo_data_path()


async def row_counts(url: str) -> dict[str, int]:
    db = Database(url)
    try:
        async with db.connect() as conn:
            counts = {}
            for table in (t.features, t.plans, t.organizations, t.users, t.memberships):
                counts[table.name] = (
                    await conn.execute(select(func.count()).select_from(table))
                ).scalar_one()
            for table in (t.billing_customers, t.agreements, t.applications):
                counts[table.name] = (
                    await conn.execute(select(func.count()).select_from(table))
                ).scalar_one()
            return counts
    finally:
        await db.dispose()


async def run(invoke: Invoke, *args: str):  # type: ignore[no-untyped-def]
    return await asyncio.to_thread(invoke, *args)


async def test_import_of_the_demo_file_creates_the_business(
    invoke: Invoke, cli_db_url: str
) -> None:
    result = await run(invoke, "import", str(DEMO))
    assert result.exit_code == 0, result.output
    assert "4 organizations, 5 users" in result.stdout

    db = Database(cli_db_url)
    try:
        async with db.connect() as conn:
            acme = await billing.customer_of_organization(conn, "org_acme")
            assert acme is not None and acme.id == "customer_acme"
            entitled = {e.feature_code for e in await billing.customer_entitlements(conn, acme.id)}
            assert entitled == {"seats", "projects", "audit_log", "api_calls"}
            alice = await users.find_user_by_email(conn, "alice@acme.test")
            assert alice is not None
            stored = await users.get_password_hash(conn, alice.id)
            assert stored is not None and verify_password("claimflow-demo", stored)
            membership = await organizations.find_membership(conn, "org_acme", alice.id)
            assert membership is not None and membership.roles == ("admin",)
            erin = await users.find_user_by_email(conn, "erin@example.test")
            assert erin is not None
            personal = await billing.customer_of_user(conn, erin.id)
            assert personal is not None
            plans = [a.plan_code for a in await billing.customer_agreements(conn, personal.id)]
            assert plans == ["pro"]
    finally:
        await db.dispose()


async def test_import_reads_json_too(invoke: Invoke, cli_db_url: str, workdir: Path) -> None:
    data = {
        "features": [{"code": "seats", "name": "Seats", "kind": "limit"}],
        "plans": [
            {
                "code": "team",
                "name": "Team",
                "prices": [
                    {"feature_code": "seats", "price_name": "Seats", "entitlement_limit_max": 5}
                ],
            }
        ],
        "organizations": [{"name": "Json Org", "billing": {"plan_code": "team"}}],
    }
    path = workdir / "business.json"
    path.write_text(json.dumps(data))
    result = await run(invoke, "import", str(path))
    assert result.exit_code == 0, result.output
    counts = await row_counts(cli_db_url)
    assert (counts["organizations"], counts["agreements"]) == (1, 1)


def broken_demo(workdir: Path, mutate) -> Path:  # type: ignore[no-untyped-def]
    data = yaml.safe_load(DEMO.read_text())
    mutate(data)
    path = workdir / "broken.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


async def assert_nothing_written(cli_db_url: str) -> None:
    assert set((await row_counts(cli_db_url)).values()) == {0}


async def test_unknown_plan_late_in_the_file_writes_nothing(
    invoke: Invoke, cli_db_url: str, workdir: Path
) -> None:
    await run(invoke, "migrate")
    path = broken_demo(workdir, lambda d: d["users"][-1]["billing"].update(plan_code="platinum"))
    result = await run(invoke, "import", str(path))
    assert result.exit_code == 1
    assert "users[4] (erin@example.test): No plan with this code." in result.stderr
    assert "Nothing was imported" in result.stderr
    await assert_nothing_written(cli_db_url)


async def test_duplicate_email_writes_nothing(
    invoke: Invoke, cli_db_url: str, workdir: Path
) -> None:
    await run(invoke, "migrate")

    def duplicate(data: dict) -> None:  # type: ignore[type-arg]
        data["users"].append({"email": "ALICE@acme.test", "password": "x"})

    result = await run(invoke, "import", str(broken_demo(workdir, duplicate)))
    assert result.exit_code == 1
    assert "already exists" in result.stderr
    await assert_nothing_written(cli_db_url)


async def test_the_workflows_client_id_cannot_be_imported(
    invoke: Invoke, cli_db_url: str, workdir: Path
) -> None:
    """Its tokens are minted in-process with their own scopes as grant: no row may claim it."""
    await run(invoke, "migrate")

    def reserved(data: dict) -> None:  # type: ignore[type-arg]
        data["applications"].append({"name": "x", "type": "m2m", "client_id": WORKFLOWS_CLIENT_ID})

    result = await run(invoke, "import", str(broken_demo(workdir, reserved)))
    assert result.exit_code == 1
    assert "is reserved" in result.stderr
    await assert_nothing_written(cli_db_url)


async def test_membership_of_unknown_organization_writes_nothing(
    invoke: Invoke, cli_db_url: str, workdir: Path
) -> None:
    await run(invoke, "migrate")
    path = broken_demo(
        workdir, lambda d: d["users"][0]["memberships"].append({"org_code": "org_nowhere"})
    )
    result = await run(invoke, "import", str(path))
    assert result.exit_code == 1
    assert "No organization with this code" in result.stderr
    await assert_nothing_written(cli_db_url)


async def test_wrong_types_are_reported_with_their_place_before_any_write(
    invoke: Invoke, cli_db_url: str, workdir: Path
) -> None:
    await run(invoke, "migrate")

    def wrong(data: dict) -> None:  # type: ignore[type-arg]
        data["plans"][1]["prices"][0]["entitlement_limit_max"] = "lots"
        data["features"][0]["kind"] = "sometimes"

    result = await run(invoke, "import", str(broken_demo(workdir, wrong)))
    assert result.exit_code == 1
    assert "plans.1.prices.0.entitlement_limit_max" in result.stderr
    assert "features.0.kind" in result.stderr
    await assert_nothing_written(cli_db_url)


async def test_malformed_yaml_and_missing_file_are_clear_errors(
    invoke: Invoke, cli_db_url: str, workdir: Path
) -> None:
    path = workdir / "bad.yaml"
    path.write_text("features: [unclosed\n")
    result = await run(invoke, "import", str(path))
    assert result.exit_code == 1
    assert "not valid YAML/JSON" in result.stderr
    result = await run(invoke, "import", str(workdir / "missing.yaml"))
    assert result.exit_code == 1
    assert "no such file" in result.stderr
    scalar = workdir / "scalar.yaml"
    scalar.write_text("just a string\n")
    result = await run(invoke, "import", str(scalar))
    assert "top level must be a mapping" in result.stderr


async def test_a_second_import_of_the_same_file_conflicts_and_changes_nothing(
    invoke: Invoke, cli_db_url: str
) -> None:
    assert (await run(invoke, "import", str(DEMO))).exit_code == 0
    before = await row_counts(cli_db_url)
    result = await run(invoke, "import", str(DEMO))
    assert result.exit_code == 1
    assert await row_counts(cli_db_url) == before


async def test_a_big_generated_file_imports_in_one_go(
    invoke: Invoke, cli_db_url: str, workdir: Path
) -> None:
    count = 500
    data = {
        "features": [{"code": "seats", "name": "Seats", "kind": "limit"}],
        "plans": [
            {
                "code": "team",
                "name": "Team",
                "prices": [
                    {"feature_code": "seats", "price_name": "Seats", "entitlement_limit_max": 5}
                ],
            }
        ],
        "organizations": [
            {"code": f"org_{i:05d}", "name": f"Org {i}", "billing": {"plan_code": "team"}}
            for i in range(count)
        ],
        "users": [
            {
                "email": f"user{i}@big.test",
                "memberships": [{"org_code": f"org_{i:05d}", "roles": ["admin"]}],
            }
            for i in range(count)
        ],
    }
    path = workdir / "big.json"
    path.write_text(json.dumps(data))
    result = await run(invoke, "import", str(path))
    assert result.exit_code == 0, result.output
    assert f"{2 * count + 2}/{2 * count + 2}" in result.stderr  # the progress bar, finished
    counts = await row_counts(cli_db_url)
    assert counts["organizations"] == counts["users"] == counts["memberships"] == count
    assert counts["billing_customers"] == counts["agreements"] == count


async def test_the_demo_imports_feature_flags_with_their_overrides_and_properties(
    invoke: Invoke, cli_db_url: str
) -> None:
    result = await run(invoke, "import", str(DEMO))
    assert result.exit_code == 0, result.output
    assert "2 feature flags, 2 properties" in result.stdout
    db = Database(cli_db_url)
    try:
        async with db.connect() as conn:
            alice = await users.find_user_by_email(conn, "alice@acme.test")
            assert alice is not None
            seen = {
                r.flag.key: r.value
                for r in await feature_flags.resolved_flags(
                    conn, user_id=alice.id, org_code="org_acme"
                )
            }
            held = await properties.values_of(conn, PropertyContext.USER, alice.id)
    finally:
        await db.dispose()
    assert seen == {"new_reports": True, "theme": "acme-red"}
    assert {h.property.key: h.value for h in held} == {"town": "Springfield"}


async def test_a_flag_override_of_the_wrong_type_writes_nothing(
    invoke: Invoke, cli_db_url: str, workdir: Path
) -> None:
    await run(invoke, "migrate")
    path = broken_demo(
        workdir, lambda d: d["feature_flags"][1]["users"].update({"bob@acme.test": "maybe"})
    )
    result = await run(invoke, "import", str(path))
    assert result.exit_code == 1
    assert "feature_flags[1] (new_reports): Invalid flag value" in result.stderr
    await assert_nothing_written(cli_db_url)
