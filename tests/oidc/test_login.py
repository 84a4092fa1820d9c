"""Password sign-in: the throttle under attack (parallel guesses, lockout as a weapon, spoofed
proxy headers), hash upgrade, nothing leaked."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import bcrypt
import httpx
import pytest

from claimflow.app import create_app
from claimflow.crypto import is_bcrypt_hash
from claimflow.services import Services, build_services
from claimflow.store import oidc_login_attempts, users
from tests.conftest import ISSUER, make_settings
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


async def login_page(client: httpx.AsyncClient, biz: Business) -> httpx.Response:
    """The login form; one page can be submitted many times, in parallel too."""
    return await client.get(
        "/oauth2/auth",
        params={
            "response_type": "code",
            "client_id": biz.web_client_id,
            "redirect_uri": CALLBACK,
            "state": "s",
        },
    )


async def attempts_counted(services: Services, key: str, at_least: int) -> None:
    """Wait (on the store, not on a clock) until ``key`` has ``at_least`` attempts counted."""
    for _ in range(3000):
        async with services.db.connect() as conn:
            if await oidc_login_attempts.attempts_counted(conn, key) >= at_least:
                return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{key} never reached {at_least} counted attempts")


async def test_parallel_wrong_passwords_are_counted_before_checking(
    deployment: Deployment,
) -> None:
    services = deployment.services
    biz = await seed_business(services)
    async with browser_from(services, "198.51.100.7") as client:
        page = await login_page(client, biz)
        async with asyncio.TaskGroup() as group:
            guesses = [
                group.create_task(submit_login(client, page, biz.email, f"guess-{i}"))
                for i in range(12)
            ]
    statuses = [guess.result().status_code for guess in guesses]
    # 401: the password was checked; 429: refused before any check. The limit is 3.
    assert statuses.count(401) == 3, statuses
    assert statuses.count(429) == 9, statuses


async def test_right_password_among_parallel_guesses_gets_no_code(
    deployment: Deployment,
) -> None:
    services = deployment.services
    biz = await seed_business(services)
    pair = f"pair:198.51.100.8 {biz.email}"
    async with browser_from(services, "198.51.100.8") as client:
        page = await login_page(client, biz)
        async with asyncio.TaskGroup() as group:
            guesses = [
                group.create_task(submit_login(client, page, biz.email, f"guess-{i}"))
                for i in range(19)
            ]
            # The right one goes out while the counted guesses are still being checked.
            await attempts_counted(services, pair, 3)
            right = group.create_task(submit_login(client, page, biz.email, PASSWORD))
    statuses = [guess.result().status_code for guess in guesses]
    assert right.result().status_code == 429, right.result().text
    assert statuses.count(401) == 3, statuses
    assert "claimflow_session" not in right.result().headers.get("set-cookie", "")


async def test_owner_from_another_address_signs_in_while_a_guesser_is_locked(
    deployment: Deployment,
) -> None:
    services = deployment.services
    biz = await seed_business(services)
    async with browser_from(services, "203.0.113.66") as guesser:
        for i in range(3):
            assert (await attempt(guesser, biz, biz.email, f"guess-{i}")).status_code == 401
        locked = await attempt(guesser, biz, biz.email, "guess-3")
        assert locked.status_code == 429
        assert int(locked.headers["retry-after"]) > 0
        assert "Too many failed sign-in attempts" in locked.text
        # Locked means locked: not even the right password is checked from here.
        assert (await attempt(guesser, biz, biz.email, PASSWORD)).status_code == 429
    async with browser_from(services, "192.0.2.10") as owner:
        assert "code" in redirect_params(await attempt(owner, biz, biz.email, PASSWORD))


async def test_guesses_spread_over_addresses_meet_the_account_ceiling(
    deployment: Deployment,
) -> None:
    services = deployment.services
    biz = await seed_business(services)
    # Three addresses, two guesses each: no pair is full, the account's ceiling of 6 is.
    for i in range(6):
        async with browser_from(services, f"10.0.0.{i // 2}") as client:
            assert (await attempt(client, biz, biz.email, f"guess-{i}")).status_code == 401
    async with browser_from(services, "10.0.0.99") as client:
        locked = await attempt(client, biz, biz.email, PASSWORD)
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) > 0
    assert "claimflow_session" not in locked.headers.get("set-cookie", "")


async def test_password_spraying_from_one_address_meets_the_address_ceiling(
    deployment: Deployment,
) -> None:
    services = deployment.services
    biz = await seed_business(services)
    async with browser_from(services, "192.0.2.7") as client:
        for i in range(6):
            assert (await attempt(client, biz, f"guess{i}@example.com", "x")).status_code == 401
        assert (await attempt(client, biz, biz.email, PASSWORD)).status_code == 429
    async with browser_from(services, "192.0.2.8") as client:
        response = await attempt(client, biz, biz.email, PASSWORD)
    assert "code" in redirect_params(response)


async def test_ipv6_guesser_rotating_addresses_inside_its_64_counts_as_one(
    deployment: Deployment,
) -> None:
    services = deployment.services
    biz = await seed_business(services)
    for i in range(3):
        async with browser_from(services, f"2001:db8:1:2::{i + 1:x}") as client:
            assert (await attempt(client, biz, biz.email, f"guess-{i}")).status_code == 401
    async with browser_from(services, "2001:db8:1:2:ffff::9") as client:
        assert (await attempt(client, biz, biz.email, PASSWORD)).status_code == 429
    async with browser_from(services, "2001:db8:1:3::1") as client:
        assert "code" in redirect_params(await attempt(client, biz, biz.email, PASSWORD))


async def test_success_clears_the_pair_counter(deployment: Deployment) -> None:
    services = deployment.services
    biz = await seed_business(services)
    for _ in range(2):  # a fresh browser each round, from the same address
        async with browser_from(services, "10.1.0.1") as client:
            for i in range(2):
                assert (await attempt(client, biz, biz.email, f"typo-{i}")).status_code == 401
            assert "code" in redirect_params(await attempt(client, biz, biz.email, PASSWORD))


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(any_db_url: str) -> None:
    services = build_services(
        make_settings(any_db_url, login_max_failures=3, trusted_proxies=["10.9.0.1"])
    )
    try:
        biz = await seed_business(services)
        async with browser_from(services, "203.0.113.5") as client:
            for i in range(3):
                spoofed = {"X-Forwarded-For": f"198.51.100.{i}"}
                client.headers.update(spoofed)
                assert (await attempt(client, biz, biz.email, f"guess-{i}")).status_code == 401
            client.headers["X-Forwarded-For"] = "198.51.100.200"
            assert (await attempt(client, biz, biz.email, PASSWORD)).status_code == 429
    finally:
        await services.close()


async def test_forwarded_for_from_a_trusted_proxy_names_the_client(any_db_url: str) -> None:
    services = build_services(
        make_settings(any_db_url, login_max_failures=3, trusted_proxies=["10.9.0.0/24"])
    )
    try:
        biz = await seed_business(services)
        async with browser_from(services, "10.9.0.1") as proxy:
            proxy.headers["X-Forwarded-For"] = "198.51.100.1"
            for i in range(3):
                assert (await attempt(proxy, biz, biz.email, f"guess-{i}")).status_code == 401
            assert (await attempt(proxy, biz, biz.email, PASSWORD)).status_code == 429
            # The owner comes through the same proxy from their own address.
            proxy.headers["X-Forwarded-For"] = "192.0.2.44"
            assert "code" in redirect_params(await attempt(proxy, biz, biz.email, PASSWORD))
    finally:
        await services.close()


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
