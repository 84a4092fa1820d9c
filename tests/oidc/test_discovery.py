"""Discovery and JWKS: what standard clients read before anything else."""

from __future__ import annotations

import httpx
import jwt

from claimflow.services import Services


async def test_discovery_names_every_endpoint_under_the_issuer(client: httpx.AsyncClient) -> None:
    response = await client.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    meta = response.json()
    assert meta["issuer"] == "http://claimflow.test"
    for name, path in {
        "authorization_endpoint": "/oauth2/auth",
        "token_endpoint": "/oauth2/token",
        "userinfo_endpoint": "/oauth2/userinfo",
        "jwks_uri": "/.well-known/jwks.json",
        "introspection_endpoint": "/oauth2/introspect",
        "revocation_endpoint": "/oauth2/revoke",
        "end_session_endpoint": "/logout",
    }.items():
        assert meta[name] == "http://claimflow.test" + path
        served = await client.request("GET" if name != "token_endpoint" else "POST", path)
        assert served.status_code != 404, path
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["response_types_supported"] == ["code"]
    assert set(meta["grant_types_supported"]) == {
        "authorization_code",
        "refresh_token",
        "client_credentials",
    }


async def test_jwks_is_served_at_both_paths_and_verifies_our_tokens(
    client: httpx.AsyncClient, services: Services
) -> None:
    one = (await client.get("/.well-known/jwks.json")).json()
    other = (await client.get("/.well-known/jwks")).json()
    assert one == other and len(one["keys"]) == 1
    assert "d" not in one["keys"][0]
    token = await services.keys.sign({"iss": services.issuer, "iat": 0, "exp": 2**40})
    key = jwt.PyJWKSet.from_dict(one)[jwt.get_unverified_header(token)["kid"]]
    assert jwt.decode(token, key, algorithms=[key.algorithm_name])["iss"] == services.issuer


async def test_rotation_keeps_the_old_key_published(
    client: httpx.AsyncClient, services: Services
) -> None:
    before = await services.keys.sign({"iss": services.issuer, "iat": 0, "exp": 2**40})
    await services.keys.rotate("ES256")
    jwks = jwt.PyJWKSet.from_dict((await client.get("/.well-known/jwks.json")).json())
    assert len(jwks.keys) == 2
    old = jwks[jwt.get_unverified_header(before)["kid"]]
    assert jwt.decode(before, old, algorithms=["RS256"])["iss"] == services.issuer
    after = await services.keys.sign({"iss": services.issuer, "iat": 0, "exp": 2**40})
    assert jwt.get_unverified_header(after)["alg"] == "ES256"
