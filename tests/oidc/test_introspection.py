"""Introspection (RFC 7662): active tokens described, anything else ``{"active": false}``."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest

from claimflow.services import Services
from claimflow.store import apis, users
from tests.helpers import create_m2m_app, m2m_token
from tests.oidc.flow import Business, exchange, seed_business, sign_in_for_code


@pytest.fixture
async def biz(services: Services) -> Business:
    return await seed_business(services)


async def introspect(client: httpx.AsyncClient, biz: Business, token: str) -> dict[str, object]:
    response = await client.post(
        "/oauth2/introspect", data={"token": token}, auth=(biz.web_client_id, biz.web_secret)
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, object] = response.json()
    return body


async def signed_in(client: httpx.AsyncClient, biz: Business) -> dict[str, str]:
    callback = await sign_in_for_code(client, biz, org_code=biz.org_code)
    tokens: dict[str, str] = (await exchange(client, biz, callback["code"])).json()
    return tokens


async def test_active_access_token_is_described(client: httpx.AsyncClient, biz: Business) -> None:
    tokens = await signed_in(client, biz)
    body = await introspect(client, biz, tokens["access_token"])
    assert body["active"] is True
    assert body["token_type"] == "access_token"
    assert body["sub"] == biz.user_id
    assert body["client_id"] == biz.web_client_id
    assert body["org_code"] == biz.org_code
    assert body["scope"] == "openid profile email offline"
    refresh = await introspect(client, biz, tokens["refresh_token"])
    assert refresh["active"] is True and refresh["token_type"] == "refresh_token"


async def test_expired_access_token_is_inactive(
    client: httpx.AsyncClient, services: Services, biz: Business
) -> None:
    now = int(time.time())
    expired = await services.keys.sign(
        {
            "iss": services.issuer,
            "sub": biz.user_id,
            "aud": [biz.web_client_id],
            "iat": now - 7200,
            "exp": now - 3600,
            "jti": "expired-jti",
            "client_id": biz.web_client_id,
        },
        typ="at+jwt",
    )
    assert await introspect(client, biz, expired) == {"active": False}


@pytest.mark.parametrize("part", [0, 1, 2])
async def test_tampered_access_token_is_inactive(
    client: httpx.AsyncClient, biz: Business, part: int
) -> None:
    tokens = await signed_in(client, biz)
    pieces = tokens["access_token"].split(".")
    if part == 1:
        claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
        claims["org_code"] = biz.stranger_org_code
        forged = jwt.encode(claims, "k" * 32, algorithm="HS256").split(".")[1]
        pieces[1] = forged
    else:
        pieces[part] = pieces[part][:-4] + ("AAAA" if pieces[part][-4:] != "AAAA" else "BBBB")
    assert await introspect(client, biz, ".".join(pieces)) == {"active": False}


async def test_id_token_and_foreign_tokens_are_inactive(
    client: httpx.AsyncClient, biz: Business
) -> None:
    tokens = await signed_in(client, biz)
    assert await introspect(client, biz, tokens["id_token"]) == {"active": False}
    foreign = jwt.encode({"sub": "x", "exp": time.time() + 60}, "secret-" * 6, algorithm="HS256")
    assert await introspect(client, biz, foreign) == {"active": False}
    assert await introspect(client, biz, "garbage") == {"active": False}


async def test_introspection_needs_a_confidential_client(
    client: httpx.AsyncClient, services: Services, biz: Business
) -> None:
    tokens = await signed_in(client, biz)
    anonymous = await client.post("/oauth2/introspect", data={"token": tokens["access_token"]})
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "invalid_client"
    public = await client.post(
        "/oauth2/introspect",
        data={"token": tokens["access_token"], "client_id": biz.spa_client_id},
    )
    assert public.status_code == 401 and public.json()["error"] == "invalid_client"
    wrong = await client.post(
        "/oauth2/introspect",
        data={"token": tokens["access_token"]},
        auth=(biz.web_client_id, "wrong"),
    )
    assert wrong.status_code == 401


async def test_m2m_token_introspects_as_active_to_its_own_client_only(
    client: httpx.AsyncClient, services: Services, biz: Business
) -> None:
    m2m_id, secret = await create_m2m_app(services)
    token = await m2m_token(client, m2m_id, secret)
    response = await client.post("/oauth2/introspect", data={"token": token}, auth=(m2m_id, secret))
    body = response.json()
    assert body["active"] is True and body["client_id"] == m2m_id
    assert await introspect(client, biz, token) == {"active": False}


async def test_another_client_cannot_introspect_a_users_access_token(
    client: httpx.AsyncClient, services: Services, biz: Business
) -> None:
    """The attack: any confidential client asks about tokens issued to someone else (§4)."""
    tokens = await signed_in(client, biz)
    stranger_id, stranger_secret = await create_m2m_app(services, scopes=())
    for token in (tokens["access_token"], tokens["refresh_token"]):
        response = await client.post(
            "/oauth2/introspect", data={"token": token}, auth=(stranger_id, stranger_secret)
        )
        assert response.status_code == 200
        assert response.json() == {"active": False}
    assert (await introspect(client, biz, tokens["access_token"]))["active"] is True


async def test_a_resource_server_authorized_for_the_audience_may_introspect(
    client: httpx.AsyncClient, services: Services, biz: Business
) -> None:
    resource_id, resource_secret = await create_m2m_app(services, scopes=())
    async with services.db.transaction() as conn:
        orders = await apis.create_api(conn, name="Orders", audience="https://orders.test")
        await apis.authorize(conn, orders.id, biz.web_client_id)
        await apis.authorize(conn, orders.id, resource_id)
    callback = await sign_in_for_code(
        client, biz, org_code=biz.org_code, audience="https://orders.test"
    )
    tokens = (await exchange(client, biz, callback["code"])).json()
    response = await client.post(
        "/oauth2/introspect",
        data={"token": tokens["access_token"]},
        auth=(resource_id, resource_secret),
    )
    body = response.json()
    assert body["active"] is True and body["aud"] == ["https://orders.test"]
    async with services.db.transaction() as conn:
        await apis.deauthorize(conn, orders.id, resource_id)
    response = await client.post(
        "/oauth2/introspect",
        data={"token": tokens["access_token"]},
        auth=(resource_id, resource_secret),
    )
    assert response.json() == {"active": False}


async def test_a_gty_claim_on_a_users_token_does_not_hide_the_user_is_suspended(
    client: httpx.AsyncClient, services: Services, biz: Business
) -> None:
    """The attack: a workflow wrote ``gty: ["client_credentials"]`` into a user's access token,
    and introspection took it for a machine token and skipped the suspended-user check."""
    now = int(time.time())
    claims = {
        "iss": services.issuer,
        "sub": biz.user_id,
        "aud": [biz.web_client_id],
        "azp": biz.web_client_id,
        "client_id": biz.web_client_id,
        "iat": now,
        "exp": now + 600,
        "jti": "user-token-with-gty",
        "scp": ["openid"],
        "gty": ["client_credentials"],
    }
    token = await services.keys.sign(claims, typ="at+jwt")
    assert (await introspect(client, biz, token))["active"] is True
    async with services.db.transaction() as conn:
        await users.update_user(conn, biz.user_id, is_suspended=True)
    assert await introspect(client, biz, token) == {"active": False}
    userinfo = await client.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert userinfo.status_code == 401


async def test_token_of_a_suspended_user_is_inactive_and_refused_by_userinfo(
    client: httpx.AsyncClient, services: Services, biz: Business
) -> None:
    tokens = await signed_in(client, biz)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await client.get("/oauth2/userinfo", headers=headers)).status_code == 200
    async with services.db.transaction() as conn:
        await users.update_user(conn, biz.user_id, is_suspended=True)
    assert (await introspect(client, biz, tokens["access_token"]))["active"] is False
    assert (await client.get("/oauth2/userinfo", headers=headers)).status_code == 401
