"""What the authorization endpoint accepts, refuses out loud, and carries through its forms."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from claimflow.oidc.browser import CSRF_COOKIE
from claimflow.oidc.params import MAX_PARAM_LENGTH
from claimflow.services import Services
from claimflow.store import tables as t
from tests.oidc.flow import (
    CALLBACK,
    PASSWORD,
    Business,
    hidden_fields,
    redirect_params,
    seed_business,
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


@pytest.mark.parametrize(
    ("parameter", "error"),
    [
        ("request", "request_not_supported"),
        ("request_uri", "request_uri_not_supported"),
    ],
)
async def test_request_objects_are_refused_not_silently_ignored(
    client: httpx.AsyncClient, biz: Business, parameter: str, error: str
) -> None:
    """OIDC Core §6 / §3.1.2.6: a signed request object must not be dropped on the floor."""
    value = "eyJhbGciOiJub25lIn0.eyJtYXhfYWdlIjowfQ." if parameter == "request" else "urn:x"
    response = await client.get("/oauth2/auth", params=auth_params(biz, **{parameter: value}))
    callback = redirect_params(response)
    assert callback["error"] == error
    assert callback["state"] == "xyz"


@pytest.mark.parametrize("mode", ["form_post", "fragment", "web_message"])
async def test_unsupported_response_mode_is_an_error_not_silence(
    client: httpx.AsyncClient, biz: Business, mode: str
) -> None:
    response = await client.get("/oauth2/auth", params=auth_params(biz, response_mode=mode))
    assert redirect_params(response)["error"] == "invalid_request"


async def test_response_mode_query_is_accepted(client: httpx.AsyncClient, biz: Business) -> None:
    page = await client.get("/oauth2/auth", params=auth_params(biz, response_mode="query"))
    assert page.status_code == 200 and "/oauth2/auth/login" in page.text


@pytest.mark.parametrize(
    "state",
    [
        "s" * 4050,
        "😀" * MAX_PARAM_LENGTH,
        "%&=+" * (MAX_PARAM_LENGTH // 4),
    ],
    ids=["ascii-4050", "emoji-4096", "reserved-characters-4096"],
)
async def test_long_state_accepted_by_the_endpoint_finishes_the_login(
    client: httpx.AsyncClient, biz: Business, state: str
) -> None:
    """A state the authorization endpoint takes must survive the login form's round trip."""
    page = await client.get("/oauth2/auth", params=auth_params(biz, state=state))
    assert page.status_code == 200 and "/oauth2/auth/login" in page.text
    callback = redirect_params(await submit_login(client, page, biz.email, PASSWORD))
    assert callback["state"] == state
    assert "code" in callback


async def test_csrf_cookie_chosen_by_an_attacker_is_not_adopted(
    client: httpx.AsyncClient, services: Services, biz: Business
) -> None:
    """A planted cookie value (cookie tossing) is replaced, and a form bound to it is refused."""
    planted = "attacker-chosen-value"
    client.cookies.set(CSRF_COOKIE, planted)
    page = await client.get("/oauth2/auth", params=auth_params(biz))
    issued = page.cookies.get(CSRF_COOKIE)
    assert issued is not None and issued != planted

    client.cookies.clear()
    client.cookies.set(CSRF_COOKIE, planted)
    data = hidden_fields(page.text) | {"email": biz.email, "password": PASSWORD}
    response = await client.post("/oauth2/auth/login", data=data)
    assert response.status_code == 400
    async with services.db.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(t.sessions))).scalar_one() == 0
