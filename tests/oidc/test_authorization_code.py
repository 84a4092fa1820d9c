"""The authorization_code grant: RFC 6749 §4.1.3 checks, PKCE, replay and concurrency."""

from __future__ import annotations

import asyncio
import base64
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import update

from claimflow.crypto import digest_secret
from claimflow.services import Services
from claimflow.store import applications
from claimflow.store import tables as t
from claimflow.store._rows import utcnow
from tests.oidc.conftest import Deployment
from tests.oidc.flow import CALLBACK, Business, exchange, pkce_pair, seed_business, sign_in_for_code


@pytest.fixture
async def biz(services: Services) -> Business:
    return await seed_business(services)


async def introspect(client: httpx.AsyncClient, biz: Business, token: str) -> dict[str, object]:
    response = await client.post(
        "/oauth2/introspect",
        data={"token": token},
        auth=(biz.web_client_id, biz.web_secret),
    )
    assert response.status_code == 200
    body: dict[str, object] = response.json()
    return body


def assert_oauth_error(response: httpx.Response, error: str, status: int = 400) -> None:
    """RFC 6749 §5.2: JSON body with ``error``, no-store caching."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["error"] == error
    assert set(body) <= {"error", "error_description", "error_uri"}
    assert "access_token" not in response.text


async def test_wrong_code_is_invalid_grant(client: httpx.AsyncClient, biz: Business) -> None:
    assert_oauth_error(await exchange(client, biz, "not-a-code"), "invalid_grant")


async def test_code_used_twice_is_refused_and_revokes_what_it_issued(
    client: httpx.AsyncClient, biz: Business
) -> None:
    callback = await sign_in_for_code(client, biz)
    first = (await exchange(client, biz, callback["code"])).json()
    assert (await introspect(client, biz, first["access_token"]))["active"] is True
    assert (await introspect(client, biz, first["refresh_token"]))["active"] is True

    assert_oauth_error(await exchange(client, biz, callback["code"]), "invalid_grant")

    assert (await introspect(client, biz, first["access_token"]))["active"] is False
    assert (await introspect(client, biz, first["refresh_token"]))["active"] is False
    refreshed = await client.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        auth=(biz.web_client_id, biz.web_secret),
    )
    assert_oauth_error(refreshed, "invalid_grant")


async def test_concurrent_exchanges_of_one_code_have_one_winner(deployment: Deployment) -> None:
    client = deployment.client
    biz = await seed_business(deployment.services)
    callback = await sign_in_for_code(client, biz)
    responses = await asyncio.gather(*(exchange(client, biz, callback["code"]) for _ in range(4)))
    assert sorted(r.status_code for r in responses) == [200, 400, 400, 400]
    winner = next(r for r in responses if r.status_code == 200).json()
    assert (await introspect(client, biz, winner["access_token"]))["active"] is False


async def test_code_of_another_client_is_invalid_grant(
    client: httpx.AsyncClient, services: Services, biz: Business
) -> None:
    callback = await sign_in_for_code(client, biz)
    async with services.db.transaction() as conn:
        other, secret = await applications.create_application(
            conn, name="Other", type=biz_type(), redirect_uris=[CALLBACK]
        )
    response = await exchange(
        client, biz, callback["code"], client_id=other.client_id, client_secret=secret or ""
    )
    assert_oauth_error(response, "invalid_grant")
    # The rightful client can still use it: a foreign attempt does not burn the code.
    assert (await exchange(client, biz, callback["code"])).status_code == 200


def biz_type() -> object:
    from claimflow.domain import ApplicationType

    return ApplicationType.REGULAR


async def test_redirect_uri_must_match_the_authorization_request(
    client: httpx.AsyncClient, biz: Business
) -> None:
    callback = await sign_in_for_code(client, biz)
    response = await exchange(client, biz, callback["code"], redirect_uri=CALLBACK + "/other")
    assert_oauth_error(response, "invalid_grant")
    missing = await client.post(
        "/oauth2/token",
        data={"grant_type": "authorization_code", "code": callback["code"]},
        auth=(biz.web_client_id, biz.web_secret),
    )
    assert_oauth_error(missing, "invalid_request")


async def test_expired_code_is_invalid_grant(
    client: httpx.AsyncClient, services: Services, biz: Business
) -> None:
    callback = await sign_in_for_code(client, biz)
    async with services.db.transaction() as conn:
        await conn.execute(
            update(t.authorization_codes)
            .where(t.authorization_codes.c.code_hash == digest_secret(callback["code"]))
            .values(expires_on=utcnow() - timedelta(seconds=1))
        )
    assert_oauth_error(await exchange(client, biz, callback["code"]), "invalid_grant")


async def test_pkce_mismatch_and_missing_verifier_are_refused(
    client: httpx.AsyncClient, biz: Business
) -> None:
    verifier, challenge = pkce_pair()
    callback = await sign_in_for_code(client, biz, client_id=biz.spa_client_id, challenge=challenge)
    base = {
        "grant_type": "authorization_code",
        "code": callback["code"],
        "redirect_uri": CALLBACK,
        "client_id": biz.spa_client_id,
    }
    wrong = await client.post("/oauth2/token", data=base | {"code_verifier": pkce_pair()[0]})
    assert_oauth_error(wrong, "invalid_grant")
    missing = await client.post("/oauth2/token", data=base)
    assert_oauth_error(missing, "invalid_request")
    malformed = await client.post("/oauth2/token", data=base | {"code_verifier": "short"})
    assert_oauth_error(malformed, "invalid_grant")
    right = await client.post("/oauth2/token", data=base | {"code_verifier": verifier})
    assert right.status_code == 200


async def test_verifier_without_a_challenge_is_refused(
    client: httpx.AsyncClient, biz: Business
) -> None:
    callback = await sign_in_for_code(client, biz)
    response = await exchange(client, biz, callback["code"], code_verifier=pkce_pair()[0])
    assert_oauth_error(response, "invalid_grant")


@pytest.mark.parametrize("method", ["basic", "post"])
async def test_confidential_client_authenticates_by_basic_or_post(
    client: httpx.AsyncClient, biz: Business, method: str
) -> None:
    callback = await sign_in_for_code(client, biz)
    data = {"grant_type": "authorization_code", "code": callback["code"], "redirect_uri": CALLBACK}
    if method == "basic":
        response = await client.post(
            "/oauth2/token", data=data, auth=(biz.web_client_id, biz.web_secret)
        )
    else:
        data |= {"client_id": biz.web_client_id, "client_secret": biz.web_secret}
        response = await client.post("/oauth2/token", data=data)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"


async def test_wrong_client_secret_is_invalid_client_with_challenge(
    client: httpx.AsyncClient, biz: Business
) -> None:
    callback = await sign_in_for_code(client, biz)
    response = await exchange(client, biz, callback["code"], client_secret="wrong")
    assert_oauth_error(response, "invalid_client", 401)
    assert response.headers["www-authenticate"].startswith("Basic")
    garbage = await client.post(
        "/oauth2/token",
        data={"grant_type": "authorization_code", "code": callback["code"]},
        headers={"Authorization": "Basic " + base64.b64encode(b"\xff\xfe").decode()},
    )
    assert_oauth_error(garbage, "invalid_client", 401)
    # A failed client authentication does not spend the code.
    assert (await exchange(client, biz, callback["code"])).status_code == 200


async def test_confidential_client_cannot_skip_its_secret(
    client: httpx.AsyncClient, biz: Business
) -> None:
    callback = await sign_in_for_code(client, biz)
    response = await client.post(
        "/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": callback["code"],
            "redirect_uri": CALLBACK,
            "client_id": biz.web_client_id,
        },
    )
    assert_oauth_error(response, "invalid_client", 401)


async def test_per_application_lifetimes_apply(
    client: httpx.AsyncClient, services: Services, biz: Business
) -> None:
    async with services.db.transaction() as conn:
        await applications.update_application(
            conn, biz.web_client_id, access_token_ttl_seconds=120, id_token_ttl_seconds=60
        )
    callback = await sign_in_for_code(client, biz)
    body = (await exchange(client, biz, callback["code"])).json()
    import jwt

    access = jwt.decode(body["access_token"], options={"verify_signature": False})
    id_token = jwt.decode(body["id_token"], options={"verify_signature": False})
    assert body["expires_in"] == 120
    assert access["exp"] - access["iat"] == 120
    assert id_token["exp"] - id_token["iat"] == 60


async def test_without_offline_scope_there_is_no_refresh_token(
    client: httpx.AsyncClient, biz: Business
) -> None:
    callback = await sign_in_for_code(client, biz, scope="openid email")
    body = (await exchange(client, biz, callback["code"])).json()
    assert "refresh_token" not in body
    assert body["scope"] == "openid email"


async def test_long_and_non_utf8_token_parameters_are_invalid_request(
    client: httpx.AsyncClient, biz: Business
) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    for body in (
        b"grant_type=authorization_code&code=%ff%fe",
        b"grant_type=authorization_code&code=\xff",
        b"grant_type=authorization_code&code=" + b"a" * 5000,
        b"grant_type=authorization_code&code=a&code=b",
        b"grant_type=authorization_code&code=%00",
    ):
        response = await client.post("/oauth2/token", content=body, headers=headers)
        assert_oauth_error(response, "invalid_request")
    json_body = await client.post("/oauth2/token", json={"grant_type": "authorization_code"})
    assert_oauth_error(json_body, "invalid_request")
