"""``/logout`` (RP-Initiated Logout 1.0): ends the session only for the session's user or after
a confirmation, and returns only to registered logout URLs."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from claimflow.services import Services
from claimflow.store import tables as t
from tests.oidc.flow import (
    CALLBACK,
    LOGOUT_URL,
    Business,
    exchange,
    hidden_fields,
    seed_business,
    sign_in_for_code,
)


@pytest.fixture
async def biz(services: Services) -> Business:
    return await seed_business(services)


async def sessions(services: Services) -> int:
    async with services.db.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(t.sessions))).scalar_one())


async def signed_in_id_token(client: httpx.AsyncClient, biz: Business) -> str:
    callback = await sign_in_for_code(client, biz)
    token: str = (await exchange(client, biz, callback["code"])).json()["id_token"]
    return token


async def test_logout_with_id_token_hint_ends_the_session_and_redirects_to_a_registered_url(
    client: httpx.AsyncClient, services: Services, biz: Business
) -> None:
    hint = await signed_in_id_token(client, biz)
    assert await sessions(services) == 1
    response = await client.get("/logout", params={"redirect": LOGOUT_URL, "id_token_hint": hint})
    assert response.status_code == 302
    assert response.headers["location"] == LOGOUT_URL
    assert 'claimflow_session=""' in response.headers["set-cookie"]
    assert await sessions(services) == 0
    page = await client.get(
        "/oauth2/auth",
        params={
            "response_type": "code",
            "client_id": biz.web_client_id,
            "redirect_uri": CALLBACK,
        },
    )
    assert page.status_code == 200 and "/oauth2/auth/login" in page.text


@pytest.mark.parametrize(
    "redirect", ["https://evil.example/", CALLBACK, LOGOUT_URL + "/x", "//evil.example"]
)
async def test_unregistered_logout_redirect_is_refused(
    client: httpx.AsyncClient, services: Services, biz: Business, redirect: str
) -> None:
    await sign_in_for_code(client, biz)
    response = await client.get("/logout", params={"redirect": redirect})
    assert response.status_code == 400
    assert "location" not in response.headers
    assert await sessions(services) == 1


async def test_logout_checks_the_named_clients_urls(
    client: httpx.AsyncClient, biz: Business
) -> None:
    ok = await client.get(
        "/logout", params={"redirect": LOGOUT_URL, "client_id": biz.web_client_id}
    )
    assert ok.status_code == 302
    other = await client.get(
        "/logout", params={"redirect": LOGOUT_URL, "client_id": biz.spa_client_id}
    )
    assert other.status_code == 400


async def test_logout_without_redirect_shows_a_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/logout")
    assert response.status_code == 200
    assert "signed out" in response.text


async def test_logout_by_a_stranger_without_id_token_hint_does_not_end_the_session(
    client: httpx.AsyncClient, services: Services, biz: Business
) -> None:
    """A link or image on another site makes the browser GET /logout: the user must confirm."""
    await sign_in_for_code(client, biz)
    response = await client.get(
        "/logout",
        params={"redirect": LOGOUT_URL},
        headers={"Referer": "https://evil.example/", "Sec-Fetch-Site": "cross-site"},
    )
    assert response.status_code == 200
    assert 'action="/logout"' in response.text
    assert "set-cookie" not in response.headers or "claimflow_session" not in str(
        response.headers.get_list("set-cookie")
    )
    assert await sessions(services) == 1


async def test_confirmed_logout_ends_the_session_and_redirects(
    client: httpx.AsyncClient, services: Services, biz: Business
) -> None:
    await sign_in_for_code(client, biz)
    page = await client.get("/logout", params={"redirect": LOGOUT_URL})
    confirmed = await client.post("/logout", data=hidden_fields(page.text))
    assert confirmed.status_code == 302
    assert confirmed.headers["location"] == LOGOUT_URL
    assert await sessions(services) == 0


async def test_logout_confirmation_without_its_csrf_token_is_refused(
    client: httpx.AsyncClient, services: Services, biz: Business
) -> None:
    await sign_in_for_code(client, biz)
    page = await client.get("/logout", params={"redirect": LOGOUT_URL})
    forged = hidden_fields(page.text) | {"csrf_token": "0" * 64}
    response = await client.post("/logout", data=forged)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert await sessions(services) == 1


async def test_id_token_hint_of_another_user_asks_for_confirmation(
    client: httpx.AsyncClient, services: Services, biz: Business
) -> None:
    await sign_in_for_code(client, biz)
    someone_else = await services.keys.sign(
        {
            "iss": services.issuer,
            "sub": "kp_someone_else",
            "aud": biz.web_client_id,
            "iat": int(time.time()),
            "exp": int(time.time()) + 60,
        }
    )
    response = await client.get(
        "/logout", params={"redirect": LOGOUT_URL, "id_token_hint": someone_else}
    )
    assert response.status_code == 200 and 'action="/logout"' in response.text
    assert await sessions(services) == 1


async def test_forged_id_token_hint_is_refused(
    client: httpx.AsyncClient, services: Services, biz: Business
) -> None:
    hint = await signed_in_id_token(client, biz)
    header, payload, signature = hint.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    response = await client.get("/logout", params={"id_token_hint": forged})
    assert response.status_code == 400
    assert await sessions(services) == 1


async def test_expired_id_token_hint_of_the_session_user_still_ends_the_session(
    client: httpx.AsyncClient, services: Services, biz: Business
) -> None:
    await sign_in_for_code(client, biz)
    expired = await services.keys.sign(
        {
            "iss": services.issuer,
            "sub": biz.user_id,
            "aud": biz.web_client_id,
            "iat": int(time.time()) - 7200,
            "exp": int(time.time()) - 3600,
        }
    )
    response = await client.get("/logout", params={"id_token_hint": expired})
    assert response.status_code == 200 and "signed out" in response.text
    assert await sessions(services) == 0


async def test_post_logout_redirect_uri_gets_the_state_back(
    client: httpx.AsyncClient, biz: Business
) -> None:
    hint = await signed_in_id_token(client, biz)
    response = await client.get(
        "/logout",
        params={"post_logout_redirect_uri": LOGOUT_URL, "state": "s 1", "id_token_hint": hint},
    )
    location = response.headers["location"]
    assert location.startswith(LOGOUT_URL + "?")
    assert parse_qs(urlsplit(location).query) == {"state": ["s 1"]}


async def test_kinde_python_sdk_redirect_uri_is_an_alias_of_post_logout_redirect_uri(
    client: httpx.AsyncClient, biz: Business
) -> None:
    """Kinde's Python SDK logs out with ``redirect_uri``; it is checked like the others."""
    ok = await client.get("/logout", params={"redirect_uri": LOGOUT_URL})
    assert ok.status_code == 302 and ok.headers["location"] == LOGOUT_URL
    hint = await signed_in_id_token(client, biz)
    with_state = await client.get(
        "/logout", params={"redirect_uri": LOGOUT_URL, "state": "s 2", "id_token_hint": hint}
    )
    assert with_state.headers["location"] == LOGOUT_URL + "?state=s+2"
    refused = await client.get("/logout", params={"redirect_uri": "https://evil.example/"})
    assert refused.status_code == 400
    assert "location" not in refused.headers


async def test_conflicting_logout_redirects_are_refused(
    client: httpx.AsyncClient, biz: Business
) -> None:
    response = await client.get(
        "/logout", params={"redirect": LOGOUT_URL, "redirect_uri": "https://evil.example/"}
    )
    assert response.status_code == 400
