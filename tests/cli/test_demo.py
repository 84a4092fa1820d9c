"""``claimflow demo``: a real server with the demo business, idempotent across restarts."""

from __future__ import annotations

from pathlib import Path

import httpx

from claimflow.cli.demo import DEMO_M2M_CLIENT_ID, seed_once, what_to_try
from claimflow.cli.options import DEMO_DATABASE_URL
from claimflow.seed import demo_data_path, load_business_file
from claimflow.store import Database, organizations

DEMO_M2M_SECRET = "demo-m2m-secret-not-for-production"


def m2m_token(base_url: str) -> str:
    response = httpx.post(
        base_url + "/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": DEMO_M2M_CLIENT_ID,
            "client_secret": DEMO_M2M_SECRET,
            "audience": base_url + "/api",
        },
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def test_seeding_twice_seeds_once(db_url: str) -> None:
    data = load_business_file(demo_data_path())
    assert await seed_once(db_url, data) is True
    assert await seed_once(db_url, data) is False
    db = Database(db_url)
    try:
        async with db.connect() as conn:
            assert await organizations.count_organizations(conn) == len(data.organizations)
    finally:
        await db.dispose()


def test_what_to_try_uses_the_demo_values_and_escapes_the_query() -> None:
    steps = dict(what_to_try("http://127.0.0.1:9999", load_business_file(demo_data_path())))
    commands = "\n".join(steps.values())
    assert "client_id=demo-m2m" in commands
    assert "customer_id=customer_acme" in commands
    sign_in = next(v for k, v in steps.items() if k.startswith("Sign in"))
    assert sign_in.startswith("http://127.0.0.1:9999/oauth2/auth?")
    assert "redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcallback" in sign_in
    assert "org_code=org_acme" in sign_in


def test_demo_serves_the_seeded_business_and_restarts_without_reseeding(
    start_server, workdir: Path
) -> None:  # type: ignore[no-untyped-def]
    base_url, process = start_server("demo")
    token = m2m_token(base_url)
    response = httpx.get(
        base_url + "/api/v1/organization",
        params={"code": "org_acme", "expand": "billing"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["billing"]["billing_customer_id"] == "customer_acme"
    response = httpx.get(
        base_url + "/api/v1/billing/entitlements",
        params={"customer_id": "customer_globex", "expand": "plans"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [p["code"] for p in body["plans"]] == ["enterprise"]
    assert "sso" in {e["feature_code"] for e in body["entitlements"]}
    process.terminate()
    process.wait(timeout=10)

    base_url, _process = start_server("demo")
    assert m2m_token(base_url)
    logs = sorted(workdir.glob("server-*.log"), key=lambda p: p.stat().st_mtime)
    assert ", seeded)" in logs[0].read_text()
    assert "already seeded, kept" in logs[1].read_text()
    assert (workdir / "claimflow-demo.db").is_file()


def test_commands_after_the_demo_use_the_demo_database(invoke, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    """``make demo`` then ``claimflow keys list`` in the same directory: the demo's keys."""
    assert invoke("migrate", "--database-url", DEMO_DATABASE_URL).exit_code == 0
    result = invoke("keys", "list")
    assert result.exit_code == 0, result.stderr
    assert "using the demo's database ./claimflow-demo.db" in result.stderr
    assert not (workdir / "claimflow.db").exists()


def test_a_configured_database_is_never_replaced_by_the_demo_one(  # type: ignore[no-untyped-def]
    invoke, cli_db_url: str, workdir: Path
) -> None:
    assert invoke("migrate", "--database-url", DEMO_DATABASE_URL).exit_code == 0
    result = invoke("keys", "list")
    assert result.exit_code == 0, result.stderr
    assert "demo" not in result.stderr
    assert (workdir / "cli.db").is_file()
