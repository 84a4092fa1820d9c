"""``claimflow migrate`` and ``claimflow init``."""

from __future__ import annotations

import asyncio
import json

import httpx
from sqlalchemy import inspect

from claimflow.app import create_app
from claimflow.domain.management_scopes import ALL_MANAGEMENT_SCOPES
from claimflow.store import Database, applications
from tests.cli.conftest import SECRET_KEY, Invoke
from tests.conftest import make_settings


async def table_names(url: str) -> set[str]:
    db = Database(url)
    try:
        async with db.connect() as conn:
            return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await db.dispose()


async def test_migrate_creates_the_schema_in_the_configured_database(
    invoke: Invoke, cli_db_url: str
) -> None:
    result = await asyncio.to_thread(invoke, "migrate")
    assert result.exit_code == 0, result.output
    assert "migrated" in result.stdout
    names = await table_names(cli_db_url)
    assert {"organizations", "users", "plans", "agreements", "signing_keys"} <= names


async def test_migrate_twice_is_harmless(invoke: Invoke, cli_db_url: str) -> None:
    assert (await asyncio.to_thread(invoke, "migrate")).exit_code == 0
    assert (await asyncio.to_thread(invoke, "migrate")).exit_code == 0


async def test_init_json_prints_exactly_credentials_that_get_a_management_token(
    invoke: Invoke, cli_db_url: str
) -> None:
    result = await asyncio.to_thread(invoke, "init", "--json")
    assert result.exit_code == 0, result.output
    credentials = json.loads(result.stdout)
    assert set(credentials) == {"client_id", "client_secret"}

    settings = make_settings(cli_db_url, secret_key=SECRET_KEY)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=settings.issuer or "") as http:
            response = await http.post(
                "/oauth2/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": credentials["client_id"],
                    "client_secret": credentials["client_secret"],
                    "audience": f"{settings.issuer}/api",
                },
            )
    assert response.status_code == 200, response.text
    assert set(response.json()["scope"].split()) == set(ALL_MANAGEMENT_SCOPES)


async def test_init_stores_only_a_digest_of_the_secret(invoke: Invoke, cli_db_url: str) -> None:
    result = await asyncio.to_thread(invoke, "init", "--json")
    credentials = json.loads(result.stdout)
    db = Database(cli_db_url)
    try:
        async with db.connect() as conn:
            app = await applications.get_application(conn, credentials["client_id"])
            raw = (await conn.exec_driver_sql("SELECT client_secret_hash FROM applications")).all()
    finally:
        await db.dispose()
    assert app.scopes == tuple(sorted(ALL_MANAGEMENT_SCOPES))
    assert [row[0] for row in raw] != [credentials["client_secret"]]
    assert credentials["client_secret"] not in str(raw)


async def test_init_without_json_prints_the_secret_once_with_a_curl_command(
    invoke: Invoke, cli_db_url: str
) -> None:
    result = await asyncio.to_thread(invoke, "init")
    assert result.exit_code == 0, result.output
    assert "client_secret:" in result.stdout
    assert "grant_type=client_credentials" in result.stdout


async def test_database_url_flag_beats_the_environment(
    invoke: Invoke, cli_db_url: str, workdir
) -> None:  # type: ignore[no-untyped-def]
    flagged = f"sqlite+aiosqlite:///{workdir / 'flagged.db'}"
    result = await asyncio.to_thread(invoke, "migrate", "--database-url", flagged)
    assert result.exit_code == 0, result.output
    assert "organizations" in await table_names(flagged)
    assert not (workdir / "cli.db").exists()
