"""The refresh_token grant: rotation on every use, reuse revokes the family, fresh claims."""

from __future__ import annotations

import asyncio

import httpx
import jwt

from claimflow.store import organizations
from tests.oidc.conftest import Deployment
from tests.oidc.flow import Business, exchange, seed_business, sign_in_for_code


async def refresh(
    client: httpx.AsyncClient, biz: Business, token: str, **extra: str
) -> httpx.Response:
    return await client.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": token} | extra,
        auth=(biz.web_client_id, biz.web_secret),
    )


async def active(client: httpx.AsyncClient, biz: Business, token: str) -> bool:
    response = await client.post(
        "/oauth2/introspect", data={"token": token}, auth=(biz.web_client_id, biz.web_secret)
    )
    return bool(response.json()["active"])


async def first_tokens(deployment: Deployment, **extra: str) -> tuple[Business, dict[str, str]]:
    biz = await seed_business(deployment.services)
    callback = await sign_in_for_code(deployment.client, biz, **extra)
    response = await exchange(deployment.client, biz, callback["code"])
    assert response.status_code == 200, response.text
    return biz, response.json()


async def test_refresh_rotates_the_token_on_every_use(deployment: Deployment) -> None:
    client = deployment.client
    biz, tokens = await first_tokens(deployment, org_code="org_acme")
    second = (await refresh(client, biz, tokens["refresh_token"])).json()
    third = (await refresh(client, biz, second["refresh_token"])).json()
    assert len({tokens["refresh_token"], second["refresh_token"], third["refresh_token"]}) == 3
    assert len({tokens["access_token"], second["access_token"], third["access_token"]}) == 3
    claims = jwt.decode(third["access_token"], options={"verify_signature": False})
    assert claims["org_code"] == "org_acme"
    assert "id_token" in third
    assert await active(client, biz, third["refresh_token"])
    assert not await active(client, biz, second["refresh_token"])


async def test_refresh_token_reuse_revokes_family(deployment: Deployment) -> None:
    client = deployment.client
    biz, tokens = await first_tokens(deployment)
    second = (await refresh(client, biz, tokens["refresh_token"])).json()

    reused = await refresh(client, biz, tokens["refresh_token"])
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"

    assert not await active(client, biz, second["refresh_token"])
    assert not await active(client, biz, second["access_token"])
    assert (await refresh(client, biz, second["refresh_token"])).json()["error"] == "invalid_grant"


async def test_concurrent_refreshes_of_one_token_have_one_winner(deployment: Deployment) -> None:
    client = deployment.client
    biz, tokens = await first_tokens(deployment)
    results = await asyncio.gather(
        *(refresh(client, biz, tokens["refresh_token"]) for _ in range(3))
    )
    assert sorted(r.status_code for r in results) == [200, 400, 400]
    # The losers presented a spent token: the family is revoked, the winner's token too.
    winner = next(r for r in results if r.status_code == 200).json()
    assert not await active(client, biz, winner["refresh_token"])


async def test_refresh_may_narrow_scope_but_not_widen_it(deployment: Deployment) -> None:
    client = deployment.client
    biz, tokens = await first_tokens(deployment)
    wider = await refresh(client, biz, tokens["refresh_token"], scope="openid admin")
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"
    narrow = (await refresh(client, biz, tokens["refresh_token"], scope="openid offline")).json()
    assert narrow["scope"] == "openid offline"
    assert "email" not in jwt.decode(narrow["id_token"], options={"verify_signature": False})
    # Narrowing once does not shrink what the family was granted.
    full = (await refresh(client, biz, narrow["refresh_token"])).json()
    assert full["scope"] == "openid profile email offline"


async def test_refresh_after_leaving_the_organization_is_invalid_grant(
    deployment: Deployment,
) -> None:
    client = deployment.client
    biz, tokens = await first_tokens(deployment, org_code="org_acme")
    async with deployment.services.db.transaction() as conn:
        await organizations.remove_member(conn, "org_acme", biz.user_id)
    response = await refresh(client, biz, tokens["refresh_token"])
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


async def test_refresh_token_of_another_client_is_invalid_grant(deployment: Deployment) -> None:
    client = deployment.client
    biz, tokens = await first_tokens(deployment)
    response = await client.post(
        "/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": biz.spa_client_id,
        },
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    assert (await refresh(client, biz, tokens["refresh_token"])).status_code == 200


async def test_unknown_refresh_token_is_invalid_grant(deployment: Deployment) -> None:
    biz = await seed_business(deployment.services)
    response = await refresh(deployment.client, biz, "nope")
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
