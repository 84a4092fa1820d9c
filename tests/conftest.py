"""Shared fixtures: real databases (a SQLite file, a PostgreSQL database), services and apps.

``db_url`` gives SQLite; ``any_db_url`` runs a test on SQLite and on PostgreSQL. PostgreSQL is the
machine's server at 127.0.0.1:5432 (``CLAIMFLOW_TEST_PG``); each test session creates its own
database and each test starts from empty tables.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from claimflow.app import create_app
from claimflow.services import Services, build_services
from claimflow.settings import Settings
from claimflow.store import Database, migrate
from claimflow.store.tables import metadata

PG_SERVER = os.environ.get("CLAIMFLOW_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
ISSUER = "http://claimflow.test"
TEST_SECRET_KEY = "tests-only-9Vd2LqX7rWbN4kPz8sHj3TfY6mC"
"""Long and random-looking enough for the settings' secret-key check; for tests only."""


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    _in_thread(migrate, f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
def db_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "claimflow.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


def _in_thread(fn: object, *args: object) -> None:
    """Run blocking set-up (``asyncio.run``, Alembic) off any running event loop."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            fn(*args)  # type: ignore[operator]
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session, dropped at the end."""
    name = f"claimflow_test_{os.getpid()}_{secrets.token_hex(3)}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(f"{PG_SERVER}/postgres")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    _in_thread(asyncio.run, admin(f'CREATE DATABASE "{name}"'))
    url = f"postgresql+asyncpg://{PG_SERVER.split('://', 1)[1]}/{name}"
    _in_thread(migrate, url)
    yield url
    _in_thread(asyncio.run, admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _truncate(url: str) -> None:
    db = Database(url)
    names = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
    async with db.transaction() as conn:
        await conn.execute(text(f"TRUNCATE {names} CASCADE"))
    await db.dispose()


@pytest.fixture
async def pg_url(pg_database: str) -> str:
    await _truncate(pg_database)
    return pg_database


@pytest.fixture(params=["sqlite", "postgresql"])
async def any_db_url(request: pytest.FixtureRequest, db_url: str) -> str:
    if request.param == "sqlite":
        return db_url
    pg: str = request.getfixturevalue("pg_database")
    await _truncate(pg)
    return pg


def pytest_report_header() -> str:
    """Say up front whether the shared/ folder the contract tests read is there."""
    from tests.helpers import shared_dir

    where = shared_dir()
    state = "found" if where.is_dir() else "MISSING: the Kinde contract tests will fail"
    return f"claimflow shared/ folder: {where} ({state})"


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "issuer": ISSUER,
        "secret_key": TEST_SECRET_KEY,
        # A loaded test machine must not turn a workflow's ordinary run into a time-out; the
        # tests of the time limit set their own.
        "workflow_time_limit_seconds": 30.0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(db_url)


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    built = build_services(settings)
    create_app(services=built)  # attaches the in-process Management API, as a server does
    yield built
    await built.close()


@pytest.fixture
def app(services: Services) -> FastAPI:
    return create_app(services=services)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in-process through ``httpx.ASGITransport``."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        yield http
