"""Password sign-in: throttling per account and per address, hash upgrade, nothing leaked."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import bcrypt
import httpx
import pytest

from claimflow.app import create_app
from claimflow.crypto import is_bcrypt_hash
from claimflow.services import Services
from claimflow.store import users
from tests.conftest import ISSUER
from tests.oidc.conftest import Deployment
from tests.oidc.flow import (
    CALLBACK,
    PASSWORD,
    Business,
    redirect_params,
    seed_business,
    submit_login,
)


@asynccontextmanager
async def browser_from(services: Services, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose requests come from ``address`` (the ASGI ``client`` of the scope)."""
    transport = httpx.ASGITransport(app=create_app(services=services), client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
        yield client


async def attempt(
    client: httpx.AsyncClient, biz: Business, email: str, password: str
) -> httpx.Response:
    page = await client.get(
        "/oauth2/auth",
        params={
            "response_type": "code",
            "client_id": biz.web_client_id,
            "redirect_uri": CALLBACK,
            "state": "s",
        },
    )
    return await submit_login(client, page, email, password)


async def test_wrong_password_and_unknown_email_read_the_same(deployment: Deployment) -> None:
    biz = await seed_business(deployment.services)
    wrong = await attempt(deployment.client, biz, biz.email, "nope")
    unknown = await attempt(deployment.client, biz, "nobody@example.com", "nope")
    assert wrong.status_code == unknown.status_code == 401
    assert "The email or password is incorrect." in wrong.text
    assert "The email or password is incorrect." in unknown.text
    assert 'role="alert"' in wrong.text


async def test_account_is_throttled_across_addresses(deployment: Deployment) -> None:
    services = deployment.services
    biz = await seed_business(services)
    for i in range(3):
        async with browser_from(services, f"10.0.0.{i}") as client:
            assert (await attempt(client, biz, biz.email, "wrong")).status_code == 401
    async with browser_from(services, "10.0.0.99") as client:
        locked = await attempt(client, biz, biz.email, PASSWORD)
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) > 0
    assert "Too many failed sign-in attempts" in locked.text
    assert "claimflow_session" not in locked.headers.get("set-cookie", "")


async def test_address_is_throttled_across_accounts(deployment: Deployment) -> None:
    services = deployment.services
    biz = await seed_business(services)
    async with browser_from(services, "192.0.2.7") as client:
        for i in range(3):
            assert (await attempt(client, biz, f"guess{i}@example.com", "x")).status_code == 401
        assert (await attempt(client, biz, biz.email, PASSWORD)).status_code == 429
    async with browser_from(services, "192.0.2.8") as client:
        response = await attempt(client, biz, biz.email, PASSWORD)
    assert "code" in redirect_params(response)


async def test_success_clears_the_account_counter(deployment: Deployment) -> None:
    services = deployment.services
    biz = await seed_business(services)
    for i in range(2):
        async with browser_from(services, f"10.1.0.{i}") as client:
            await attempt(client, biz, biz.email, "wrong")
    async with browser_from(services, "10.1.0.50") as client:
        assert "code" in redirect_params(await attempt(client, biz, biz.email, PASSWORD))
    for i in range(2):
        async with browser_from(services, f"10.1.1.{i}") as client:
            assert (await attempt(client, biz, biz.email, "wrong")).status_code == 401
    async with browser_from(services, "10.1.1.50") as client:
        assert "code" in redirect_params(await attempt(client, biz, biz.email, PASSWORD))


async def test_imported_bcrypt_hash_is_upgraded_to_argon2_on_sign_in(
    client: httpx.AsyncClient, services: Services
) -> None:
    biz = await seed_business(services)
    imported = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    async with services.db.transaction() as conn:
        await users.set_password_hash(conn, biz.user_id, imported)
    response = await attempt(client, biz, biz.email, PASSWORD)
    assert "code" in redirect_params(response)
    async with services.db.connect() as conn:
        stored = await users.get_password_hash(conn, biz.user_id)
    assert stored is not None and stored.startswith("$argon2id$")
    assert not is_bcrypt_hash(stored)


async def test_suspended_user_cannot_sign_in(client: httpx.AsyncClient, services: Services) -> None:
    biz = await seed_business(services)
    async with services.db.transaction() as conn:
        await users.update_user(conn, biz.user_id, is_suspended=True)
    assert (await attempt(client, biz, biz.email, PASSWORD)).status_code == 401


async def test_passwords_and_client_secrets_are_never_logged_or_echoed(
    client: httpx.AsyncClient, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.oidc.flow import exchange

    caplog.set_level(logging.DEBUG)
    biz = await seed_business(services)
    failed = await attempt(client, biz, biz.email, "hunter2-secret-guess")
    assert "hunter2-secret-guess" not in failed.text
    assert biz.email in failed.text  # the email is kept in the form, the password is not
    ok = await attempt(client, biz, biz.email, PASSWORD)
    tokens = await exchange(client, biz, redirect_params(ok)["code"])
    wrong_secret = await exchange(client, biz, "x", client_secret=biz.web_secret[:-1] + "Z")
    for text in (failed.text, ok.text, tokens.text, wrong_secret.text, caplog.text):
        assert PASSWORD not in text
        assert "hunter2-secret-guess" not in text
        assert biz.web_secret not in text
