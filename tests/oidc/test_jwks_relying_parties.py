"""Strict relying parties accept our JWKS: ``use`` only, never ``use`` with ``key_ops``.

The failure it reproduces: RSA keys were published with both ``use: sig`` and ``key_ops``
(RFC 7517 §4.3 says they SHOULD NOT be used together), so cryptojwt — the JOSE layer of idpyoidc
— refused the whole key set and could verify no ID token at all.
"""

from __future__ import annotations

import httpx
import pytest
from cryptojwt.jws.jws import JWS
from cryptojwt.key_bundle import KeyBundle
from sqlalchemy import update

from claimflow.app import create_app
from claimflow.services import build_services
from claimflow.store import tables as t
from tests.conftest import ISSUER, make_settings
from tests.oidc.flow import exchange, seed_business, sign_in_for_code


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "EdDSA"])
async def test_cryptojwt_verifies_an_id_token_against_the_jwks(db_url: str, algorithm: str) -> None:
    services = build_services(make_settings(db_url, signing_algorithm=algorithm))
    try:
        biz = await seed_business(services)
        transport = httpx.ASGITransport(app=create_app(services=services))
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
            callback = await sign_in_for_code(client, biz)
            id_token = (await exchange(client, biz, callback["code"])).json()["id_token"]
            jwks = (await client.get("/.well-known/jwks.json")).json()
    finally:
        await services.close()
    for key in jwks["keys"]:
        assert key["use"] == "sig"
        assert "key_ops" not in key
    bundle = KeyBundle(keys=jwks["keys"])
    claims = JWS(alg=algorithm).verify_compact(id_token, keys=bundle.keys())
    assert claims["sub"] == biz.user_id
    assert claims["aud"] == [biz.web_client_id] or claims["aud"] == biz.web_client_id


async def test_keys_stored_with_key_ops_are_published_without_it(db_url: str) -> None:
    """Keys written by earlier versions carry PyJWT's ``key_ops``; the JWKS drops it."""
    services = build_services(make_settings(db_url))
    try:
        key = await services.keys.ensure_active_key()
        async with services.db.transaction() as conn:
            await conn.execute(
                update(t.signing_keys)
                .where(t.signing_keys.c.kid == key.kid)
                .values(public_jwk=key.public_jwk | {"key_ops": ["verify"]})
            )
        await services.keys.rotate()  # a fresh read of the stored keys
        published = (await services.keys.jwks())["keys"]
    finally:
        await services.close()
    assert {k["kid"] for k in published} >= {key.kid}
    assert all("key_ops" not in k and k["use"] == "sig" for k in published)
    KeyBundle(keys=published)
