"""Tokens of every supported algorithm verify against the JWKS, with a matching ``at_hash``."""

from __future__ import annotations

import base64
import hashlib

import httpx
import jwt
import pytest

from claimflow.app import create_app
from claimflow.services import build_services
from tests.conftest import ISSUER, make_settings
from tests.oidc.flow import exchange, seed_business, sign_in_for_code


@pytest.mark.parametrize(("algorithm", "hash_name"), [("ES256", "sha256"), ("EdDSA", "sha512")])
async def test_user_tokens_with_each_algorithm_verify_against_the_jwks(
    db_url: str, algorithm: str, hash_name: str
) -> None:
    services = build_services(make_settings(db_url, signing_algorithm=algorithm))
    try:
        biz = await seed_business(services)
        transport = httpx.ASGITransport(app=create_app(services=services))
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
            callback = await sign_in_for_code(client, biz)
            tokens = (await exchange(client, biz, callback["code"])).json()
            jwks = jwt.PyJWKSet.from_dict((await client.get("/.well-known/jwks.json")).json())
    finally:
        await services.close()
    for name in ("access_token", "id_token"):
        header = jwt.get_unverified_header(tokens[name])
        assert header["alg"] == algorithm
        key = jwks[header["kid"]]
        jwt.decode(tokens[name], key, algorithms=[algorithm], audience=biz.web_client_id)
    id_token = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    digest = hashlib.new(hash_name, tokens["access_token"].encode()).digest()
    expected = base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()
    assert id_token["at_hash"] == expected
