"""The sign-in workflow examples, through the real login form (HTTP) of a deployment that loads
them from ``examples/workflows/`` and runs them in runner processes, as ``serve`` would.

- ``unpaid_org_gate`` (``user:post_authentication``): a member signing in to an organization
  whose billing customer has no plan sees the workflow's reason on the login page; no session
  and no code exist afterwards, so there is nothing for the token endpoint to exchange.
- ``legacy_password_migration`` (``user:existing_password_provided``): an email claimflow does
  not know but a legacy service on loopback does signs in once, exists afterwards with an
  argon2id hash, and signs in again without the legacy service being called; the password
  never reaches the run log.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from claimflow.app import create_app
from claimflow.oidc.failure_pace import MIGRATION, PACE
from claimflow.services import Services, build_services
from claimflow.store import billing, organizations, users
from claimflow.store import tables as t
from claimflow.workflows.environment import create_variable
from claimflow.workflows.runlog import RunFilter, list_runs
from tests.conftest import ISSUER, make_settings
from tests.helpers import LegacyService, legacy_service, management_client
from tests.oidc.flow import (
    CALLBACK,
    PASSWORD,
    Business,
    exchange,
    redirect_params,
    seed_business,
    submit_login,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "workflows"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) claimflow-test"


@pytest.fixture(autouse=True)
def _own_migration_pace() -> Iterator[None]:
    """The pace is one per process: the migration samples of these tests (a runner and a legacy
    round trip) must not pad the wrong-password answers of every later test."""
    yield
    PACE._durations.pop(MIGRATION, None)


@dataclass
class Deployment:
    services: Services
    client: httpx.AsyncClient
    biz: Business


async def deploy(db_url: str, *workflow_ids: str) -> AsyncIterator[Deployment]:
    services = build_services(
        make_settings(
            db_url,
            workflows_dir=str(EXAMPLES),
            workflows_enabled=["org_billing", "user_billing", *workflow_ids],
            # A loaded test machine must not turn the run into a time-out.
            workflow_overrides={wid: {"time_limit_seconds": 30.0} for wid in workflow_ids},
            login_max_failures=3,
        )
    )
    try:
        await services.workflows.warm_up()  # the app's lifespan does this at start-up
        biz = await seed_business(services)
        transport = httpx.ASGITransport(app=create_app(services=services))
        async with httpx.AsyncClient(
            transport=transport, base_url=ISSUER, headers={"User-Agent": BROWSER}
        ) as client:
            yield Deployment(services, client, biz)
    finally:
        await services.close()


async def login_page(client: httpx.AsyncClient, biz: Business, **extra: str) -> httpx.Response:
    params = {
        "response_type": "code",
        "client_id": biz.web_client_id,
        "redirect_uri": CALLBACK,
        "scope": "openid profile email",
        "state": "st-1",
    } | extra
    page = await client.get("/oauth2/auth", params=params)
    assert page.status_code == 200 and "/oauth2/auth/login" in page.text, page.text
    return page


async def runs_of(services: Services, workflow_id: str) -> list[Any]:
    assert services.workflows.run_log is not None
    await services.workflows.run_log.flush()
    async with services.db.connect() as conn:
        found, _ = await list_runs(conn, RunFilter(workflow_id=workflow_id))
    return found


# -- user:post_authentication ---------------------------------------------------------------


@pytest.fixture
async def gate(any_db_url: str) -> AsyncIterator[Deployment]:
    async for deployment in deploy(any_db_url, "unpaid_org_gate"):
        async with deployment.services.db.transaction() as conn:
            # org_acme is a billing customer without a plan; org_globex has no billing at all.
            await billing.create_customer(conn, org_code=deployment.biz.org_code)
        yield deployment


async def test_post_authentication_denial_shows_its_reason_and_issues_no_code(
    gate: Deployment,
) -> None:
    client, biz = gate.client, gate.biz
    page = await login_page(client, biz, org_code=biz.org_code)
    denied = await submit_login(client, page, biz.email, PASSWORD)

    assert denied.status_code == 403
    assert "location" not in denied.headers  # no redirect, so no code reached the client
    assert "Acme has no active plan" in denied.text
    assert "/oauth2/auth/login" in denied.text  # the sign-in page, to try another account
    assert "claimflow_session" not in denied.headers.get("set-cookie", "")
    async with gate.services.db.connect() as conn:
        codes = await conn.execute(select(func.count()).select_from(t.authorization_codes))
        assert codes.scalar_one() == 0
    # No session either: a silent request cannot get a code instead.
    silent = await client.get(
        "/oauth2/auth",
        params={
            "response_type": "code",
            "client_id": biz.web_client_id,
            "redirect_uri": CALLBACK,
            "scope": "openid",
            "prompt": "none",
            "org_code": biz.org_code,
        },
    )
    assert redirect_params(silent)["error"] == "login_required"
    # And the token endpoint has nothing to exchange.
    refused = await exchange(client, biz, "never-issued")
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"

    (run,) = await runs_of(gate.services, "unpaid_org_gate")
    assert run.trigger == "user:post_authentication"
    assert run.outcome.value == "denied"
    assert (run.user_id, run.org_code) == (biz.user_id, biz.org_code)
    messages = [line["message"] for line in run.log_lines]
    assert f"sign-in of {biz.user_id} from 127.0.0.1 ({BROWSER})" in messages


async def test_post_authentication_lets_an_organization_without_billing_in(
    gate: Deployment,
) -> None:
    client, biz = gate.client, gate.biz
    page = await login_page(client, biz, org_code=biz.other_org_code)
    result = redirect_params(await submit_login(client, page, biz.email, PASSWORD))
    assert "code" in result and result["state"] == "st-1"
    tokens = await exchange(client, biz, result["code"])
    assert tokens.status_code == 200, tokens.text
    (run,) = await runs_of(gate.services, "unpaid_org_gate")
    assert run.outcome.value == "succeeded" and run.org_code == biz.other_org_code


async def test_post_authentication_does_not_run_for_a_wrong_password(gate: Deployment) -> None:
    page = await login_page(gate.client, gate.biz, org_code=gate.biz.org_code)
    wrong = await submit_login(gate.client, page, gate.biz.email, "not the password")
    assert wrong.status_code == 401
    assert "has no active plan" not in wrong.text
    assert await runs_of(gate.services, "unpaid_org_gate") == []


# -- user:existing_password_provided ---------------------------------------------------------


LEGACY_EMAIL = "legacy.lena@example.com"
LEGACY_PASSWORD = "lena's old password 1999"
LEGACY_PROFILE = {"given_name": "Lena", "family_name": "Old"}


@pytest.fixture
def legacy() -> Iterator[LegacyService]:
    with legacy_service({LEGACY_EMAIL: (LEGACY_PASSWORD, LEGACY_PROFILE)}) as service:
        yield service


@pytest.fixture
async def migrating(any_db_url: str, legacy: LegacyService) -> AsyncIterator[Deployment]:
    async for deployment in deploy(any_db_url, "legacy_password_migration"):
        headers = await management_client(deployment.client, deployment.services)
        created = await deployment.client.post(
            "/api/v1/environment_variables",
            json={"key": "LEGACY_AUTH_URL", "value": legacy.url, "is_secret": False},
            headers=headers,
        )
        assert created.status_code == 201, created.text
        yield deployment


async def test_legacy_user_signs_in_once_and_is_migrated(
    migrating: Deployment, legacy: LegacyService
) -> None:
    client, biz, services = migrating.client, migrating.biz, migrating.services
    async with services.db.connect() as conn:
        assert await users.find_user_by_email(conn, LEGACY_EMAIL) is None

    page = await login_page(client, biz)
    first = redirect_params(await submit_login(client, page, LEGACY_EMAIL, LEGACY_PASSWORD))
    assert "code" in first
    assert legacy.calls == [LEGACY_EMAIL]
    tokens = await exchange(client, biz, first["code"])
    assert tokens.status_code == 200, tokens.text

    async with services.db.connect() as conn:
        user = await users.find_user_by_email(conn, LEGACY_EMAIL)
        assert user is not None and user.given_name == "Lena"
        stored = await users.get_password_hash(conn, user.id)
    assert stored is not None and stored.startswith("$argon2id$")
    assert LEGACY_PASSWORD not in stored

    # The second sign-in is claimflow's own: the legacy service is not called again.
    client.cookies.clear()
    page = await login_page(client, biz)
    second = redirect_params(await submit_login(client, page, LEGACY_EMAIL, LEGACY_PASSWORD))
    assert "code" in second
    assert legacy.calls == [LEGACY_EMAIL]

    (run,) = await runs_of(services, "legacy_password_migration")
    assert run.trigger == "user:existing_password_provided"
    assert run.outcome.value == "succeeded"
    recorded = json.dumps(run.as_json())
    assert f"migrated {user.id} from the legacy system" in recorded
    assert LEGACY_PASSWORD not in recorded and stored not in recorded


async def test_wrong_legacy_password_is_a_counted_failure_and_creates_nobody(
    migrating: Deployment, legacy: LegacyService
) -> None:
    client, biz, services = migrating.client, migrating.biz, migrating.services
    statuses = []
    for _ in range(4):
        page = await login_page(client, biz)
        answer = await submit_login(client, page, LEGACY_EMAIL, "a wrong guess")
        statuses.append(answer.status_code)
        if answer.status_code == 401:
            assert "The email or password is incorrect." in answer.text
    # login_max_failures=3: the fourth attempt is refused before the password is looked at.
    assert statuses == [401, 401, 401, 429]
    assert legacy.calls == [LEGACY_EMAIL] * 3
    async with services.db.connect() as conn:
        assert await users.find_user_by_email(conn, LEGACY_EMAIL) is None
    runs = await runs_of(services, "legacy_password_migration")
    assert len(runs) == 3 and all(r.outcome.value == "succeeded" for r in runs)
    assert "a wrong guess" not in json.dumps([r.as_json() for r in runs])


async def test_unknown_email_answers_like_a_wrong_password(
    migrating: Deployment, legacy: LegacyService
) -> None:
    """No enumeration: an email neither system knows, and a known user's wrong password, get
    the same page and status."""
    client, biz = migrating.client, migrating.biz
    page = await login_page(client, biz)
    unknown = await submit_login(client, page, "nobody@example.com", "whatever it is")
    page = await login_page(client, biz)
    wrong = await submit_login(client, page, biz.email, "whatever it is")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.text.replace("nobody@example.com", biz.email) == wrong.text.replace(
        _csrf(wrong.text), _csrf(unknown.text)
    )
    assert legacy.calls == ["nobody@example.com"]  # alice has a password: not the legacy's


def _csrf(page: str) -> str:
    marker = 'name="csrf_token" value="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)]


async def test_a_user_without_a_password_is_migrated_onto_their_record(
    migrating: Deployment, legacy: LegacyService
) -> None:
    """An email imported without a password (Kinde's drip-feed set-up imports emails first)
    keeps its user id and memberships: the workflow sets the password on that record."""
    client, biz, services = migrating.client, migrating.biz, migrating.services
    async with services.db.transaction() as conn:
        imported = await users.create_user(conn, email=LEGACY_EMAIL)
        await organizations.add_member(conn, biz.org_code, imported.id)
    page = await login_page(client, biz)
    result = redirect_params(await submit_login(client, page, LEGACY_EMAIL, LEGACY_PASSWORD))
    assert "code" in result
    async with services.db.connect() as conn:
        after = await users.find_user_by_email(conn, LEGACY_EMAIL)
        stored = await users.get_password_hash(conn, imported.id)
    assert after is not None and after.id == imported.id
    assert stored is not None and stored.startswith("$argon2id$")


async def test_a_migrated_user_is_new_to_the_post_authentication_workflow(
    db_url: str, legacy: LegacyService
) -> None:
    """Both triggers on one sign-in: the migration creates the user, then post-authentication
    sees ``is_new_user_record_created`` (Kinde's ``isNewUserRecordCreated``) — and only then."""
    async for deployment in deploy(db_url, "legacy_password_migration", "unpaid_org_gate"):
        client, biz, services = deployment.client, deployment.biz, deployment.services
        async with services.db.transaction() as conn:
            await create_variable(conn, services.box, key="LEGACY_AUTH_URL", value=legacy.url)
        for _ in range(2):
            client.cookies.clear()
            page = await login_page(client, biz)
            answer = await submit_login(client, page, LEGACY_EMAIL, LEGACY_PASSWORD)
            assert "code" in redirect_params(answer)
        runs = await runs_of(services, "unpaid_org_gate")
        lines = sorted(
            line["message"] for r in runs for line in r.log_lines if "sign-in" in line["message"]
        )
        assert len(lines) == 2
        assert sum("(new user)" in line for line in lines) == 1
