"""``max_age`` (OIDC Core §3.1.2.1): past it, the provider MUST authenticate the user again.

The attack: someone at a signed-in browser (a shared computer) starts a sign-in to an
application that asks for a recent authentication (``max_age=0`` before a payment, say); without
the check the old session answers with a code and no password is asked.
"""

from __future__ import annotations

from datetime import timedelta

import httpx
import jwt
import pytest
from sqlalchemy import update

from claimflow.services import Services
from claimflow.store import tables as t
from claimflow.store._rows import utcnow
from tests.oidc.flow import (
    CALLBACK,
    PASSWORD,
    Business,
    exchange,
    hidden_fields,
    redirect_params,
    seed_business,
    sign_in_for_code,
    submit_login,
)


@pytest.fixture
async def biz(services: Services) -> Business:
    return await seed_business(services)


def auth_params(biz: Business, **extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": biz.web_client_id,
        "redirect_uri": CALLBACK,
        "scope": "openid profile email offline",
        "state": "xyz",
    } | extra


def is_login_page(response: httpx.Response) -> bool:
    return response.status_code == 200 and 'action="/oauth2/auth/login"' in response.text


async def age_sessions(services: Services, seconds: int) -> int:
    """Move every session's authentication ``seconds`` into the past; the new ``auth_time``."""
    auth_time = utcnow() - timedelta(seconds=seconds)
    async with services.db.transaction() as conn:
        await conn.execute(update(t.sessions).values(auth_time=auth_time))
    return int(auth_time.timestamp())


async def id_token_auth_time(client: httpx.AsyncClient, biz: Business, code: str) -> int:
    tokens = (await exchange(client, biz, code)).json()
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    auth_time: int = claims["auth_time"]
    return auth_time


async def test_max_age_zero_with_a_session_asks_for_the_password_again(
    client: httpx.AsyncClient, services: Services, biz: Business
) -> None:
    await sign_in_for_code(client, biz)
    old_auth_time = await age_sessions(services, 5)

    page = await client.get("/oauth2/auth", params=auth_params(biz, max_age="0"))
    assert is_login_page(page), page.text

    callback = redirect_params(await submit_login(client, page, biz.email, PASSWORD))
    assert await id_token_auth_time(client, biz, callback["code"]) > old_auth_time


async def test_session_older_than_max_age_asks_for_the_password_again(
    client: httpx.AsyncClient, services: Services, biz: Business
) -> None:
    await sign_in_for_code(client, biz)
    await age_sessions(services, 7200)
    page = await client.get("/oauth2/auth", params=auth_params(biz, max_age="3600"))
    assert is_login_page(page), page.text


async def test_session_younger_than_max_age_is_reused_and_auth_time_stays_true(
    client: httpx.AsyncClient, services: Services, biz: Business
) -> None:
    await sign_in_for_code(client, biz)
    auth_time = await age_sessions(services, 7200)
    callback = redirect_params(
        await client.get("/oauth2/auth", params=auth_params(biz, max_age="10800"))
    )
    assert await id_token_auth_time(client, biz, callback["code"]) == auth_time


async def test_prompt_none_past_max_age_is_login_required(
    client: httpx.AsyncClient, services: Services, biz: Business
) -> None:
    await sign_in_for_code(client, biz)
    await age_sessions(services, 60)
    response = await client.get(
        "/oauth2/auth", params=auth_params(biz, max_age="30", prompt="none")
    )
    assert redirect_params(response)["error"] == "login_required"


@pytest.mark.parametrize("value", ["-1", "ten", "1.5", "", "99999999999"])
async def test_malformed_max_age_is_invalid_request(
    client: httpx.AsyncClient, biz: Business, value: str
) -> None:
    response = await client.get("/oauth2/auth", params=auth_params(biz, max_age=value))
    assert redirect_params(response)["error"] == "invalid_request"


async def test_max_age_cannot_be_bypassed_through_the_organization_picker(
    client: httpx.AsyncClient, services: Services
) -> None:
    """The picker step must not accept an old session for a request that asked for max_age=0."""
    biz = await seed_business(services, require_organization=True)
    first = await client.get("/oauth2/auth", params=auth_params(biz))
    picker = await submit_login(client, first, biz.email, PASSWORD)
    assert "Choose an organization" in picker.text
    await age_sessions(services, 5)

    page = await client.get("/oauth2/auth", params=auth_params(biz, max_age="0"))
    assert is_login_page(page)
    forged = hidden_fields(page.text) | {"org_code": biz.org_code, "fresh_login": ""}
    response = await client.post("/oauth2/auth/organization", data=forged)
    assert is_login_page(response), response.text

    picker = await submit_login(client, page, biz.email, PASSWORD)
    assert "Choose an organization" in picker.text
    # max_age=0 is already exceeded by the time the user chooses: the picker carries the proof
    # that this password sign-in was made for this very request.
    chosen = hidden_fields(picker.text) | {"org_code": biz.org_code}
    callback = redirect_params(await client.post("/oauth2/auth/organization", data=chosen))
    assert "code" in callback
