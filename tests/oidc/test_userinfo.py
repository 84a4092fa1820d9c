"""Userinfo (OIDC Core §5.3) and Kinde's ``/oauth2/v2/user_profile``."""

from __future__ import annotations

import httpx
import pytest

from claimflow.services import Services
from tests.helpers import create_m2m_app, m2m_token
from tests.oidc.flow import Business, exchange, seed_business, sign_in_for_code


@pytest.fixture
async def biz(services: Services) -> Business:
    return await seed_business(services)


async def access_token(client: httpx.AsyncClient, biz: Business, scope: str) -> str:
    callback = await sign_in_for_code(client, biz, scope=scope)
    token: str = (await exchange(client, biz, callback["code"])).json()["access_token"]
    return token


async def test_userinfo_returns_claims_of_the_granted_scopes(
    client: httpx.AsyncClient, biz: Business
) -> None:
    token = await access_token(client, biz, "openid profile email")
    response = await client.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json() == {
        "sub": biz.user_id,
        "email": "alice@example.com",
        "name": "Alice Liddell",
        "given_name": "Alice",
        "family_name": "Liddell",
    }
    narrow = await access_token(client, biz, "openid")
    minimal = await client.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {narrow}"})
    assert minimal.json() == {"sub": biz.user_id}


async def test_user_profile_has_kindes_shape(client: httpx.AsyncClient, biz: Business) -> None:
    token = await access_token(client, biz, "openid profile email")
    response = await client.get(
        "/oauth2/v2/user_profile", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    assert response.json() == {
        "id": biz.user_id,
        "preferred_email": "alice@example.com",
        "provided_id": None,
        "last_name": "Liddell",
        "first_name": "Alice",
        "picture": None,
        "sub": biz.user_id,
        "name": "Alice Liddell",
        "given_name": "Alice",
        "family_name": "Liddell",
        "email": "alice@example.com",
    }


@pytest.mark.parametrize("path", ["/oauth2/userinfo", "/oauth2/v2/user_profile"])
async def test_missing_invalid_id_and_m2m_tokens_are_refused(
    client: httpx.AsyncClient, services: Services, biz: Business, path: str
) -> None:
    callback = await sign_in_for_code(client, biz)
    id_token = (await exchange(client, biz, callback["code"])).json()["id_token"]
    m2m_id, secret = await create_m2m_app(services)
    m2m = await m2m_token(client, m2m_id, secret)
    for headers in (
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer not.a.jwt"},
        {"Authorization": f"Bearer {id_token}"},
        {"Authorization": f"Bearer {m2m}"},
    ):
        response = await client.get(path, headers=headers)
        assert response.status_code == 401, headers
        assert response.json()["error"] == "invalid_token"
        assert response.headers["www-authenticate"].startswith("Bearer")
