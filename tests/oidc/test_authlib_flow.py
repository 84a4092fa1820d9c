"""The whole flow driven by an independent OAuth client library (Authlib), tokens verified by
PyJWT against the published JWKS, then refreshed — on SQLite and on PostgreSQL."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import jwt
from authlib.integrations.httpx_client import AsyncOAuth2Client

from tests.conftest import ISSUER
from tests.oidc.conftest import Deployment
from tests.oidc.flow import CALLBACK, PASSWORD, seed_business, submit_login


def verify(token: str, jwks: jwt.PyJWKSet, audience: str, issuer: str) -> dict[str, Any]:
    key = jwks[jwt.get_unverified_header(token)["kid"]]
    claims: dict[str, Any] = jwt.decode(
        token,
        key,
        algorithms=[key.algorithm_name],
        audience=audience,
        issuer=issuer,
        options={"require": ["exp", "iat", "iss", "sub", "aud"]},
    )
    return claims


async def test_authlib_client_signs_in_verifies_and_refreshes(deployment: Deployment) -> None:
    biz = await seed_business(deployment.services)
    transport = httpx.ASGITransport(app=deployment.app)
    meta = (await deployment.client.get("/.well-known/openid-configuration")).json()

    async with AsyncOAuth2Client(
        client_id=biz.web_client_id,
        client_secret=biz.web_secret,
        scope="openid profile email offline",
        redirect_uri=CALLBACK,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
        transport=transport,
        base_url=ISSUER,
    ) as oauth:
        verifier = secrets.token_urlsafe(48)
        nonce = secrets.token_urlsafe(8)
        url, state = oauth.create_authorization_url(
            meta["authorization_endpoint"],
            code_verifier=verifier,
            nonce=nonce,
            org_code=biz.org_code,
        )

        # The user's browser: follows the URL, fills in the login form, lands on the callback.
        page = await deployment.client.get(url)
        landed = await submit_login(deployment.client, page, biz.email, PASSWORD)
        assert landed.status_code == 302

        token = await oauth.fetch_token(
            meta["token_endpoint"],
            authorization_response=landed.headers["location"],
            state=state,
            code_verifier=verifier,
        )
        jwks = jwt.PyJWKSet.from_dict((await oauth.get(meta["jwks_uri"])).json())
        access = verify(token["access_token"], jwks, biz.web_client_id, meta["issuer"])
        id_token = verify(token["id_token"], jwks, biz.web_client_id, meta["issuer"])
        assert jwt.get_unverified_header(token["access_token"])["typ"] == "at+jwt"
        assert access["org_code"] == biz.org_code and access["sub"] == biz.user_id
        assert set(access) >= {"iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scp"}
        assert id_token["nonce"] == nonce
        assert id_token["email"] == biz.email
        assert id_token["org_codes"] == [biz.org_code, biz.other_org_code]

        profile = await oauth.get(meta["userinfo_endpoint"])
        assert profile.json()["sub"] == biz.user_id

        refreshed = await oauth.refresh_token(
            meta["token_endpoint"], refresh_token=token["refresh_token"]
        )
        assert refreshed["refresh_token"] != token["refresh_token"]
        again = verify(refreshed["access_token"], jwks, biz.web_client_id, meta["issuer"])
        assert again["jti"] != access["jti"] and again["org_code"] == biz.org_code
