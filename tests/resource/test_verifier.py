"""``TokenVerifier``: claimflow tokens verified offline against the issuer's JWKS."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from typing import Any

import httpx
import jwt
import pytest

from claimflow.app import create_app
from claimflow.resource import ResourceAccessDenied, TokenVerifier
from tests.cli.conftest import free_port
from tests.conftest import ISSUER, make_settings
from tests.resource.conftest import API_AUDIENCE, TokenFactory
from tests.resource.test_end_to_end import serve_in_thread


def b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def verifier(http: httpx.AsyncClient, **options: object) -> TokenVerifier:
    return TokenVerifier(ISSUER, API_AUDIENCE, http=http, **options)  # type: ignore[arg-type]


async def refused(verify: TokenVerifier, token: str) -> ResourceAccessDenied:
    with pytest.raises(ResourceAccessDenied) as caught:
        await verify.verify(token)
    return caught.value


async def test_claimflow_token_verifies_offline_after_one_jwks_fetch(
    tokens: TokenFactory, issuer_http: httpx.AsyncClient
) -> None:
    verify = verifier(issuer_http)
    for _ in range(5):
        token = await tokens.token(org_code="org_acme", permissions=["read:reports"])
        verified = await verify.verify(token)
    assert verified.org_code == "org_acme"
    assert verified.permissions == frozenset({"read:reports"})
    assert verified.roles == frozenset({"member"})
    assert verify.jwks.fetch_count == 1


async def test_expired_token_is_invalid_token_401(
    tokens: TokenFactory, issuer_http: httpx.AsyncClient
) -> None:
    error = await refused(verifier(issuer_http), await tokens.token(expires_in=-120))
    assert (error.status_code, error.error) == (401, "invalid_token")
    assert "expired" in error.description


async def test_expiry_within_the_leeway_is_accepted(
    tokens: TokenFactory, issuer_http: httpx.AsyncClient
) -> None:
    verified = await verifier(issuer_http, leeway_seconds=60).verify(
        await tokens.token(expires_in=-5)
    )
    assert verified.subject == "kp_demo"


async def test_token_for_another_api_is_refused(
    tokens: TokenFactory, issuer_http: httpx.AsyncClient
) -> None:
    error = await refused(
        verifier(issuer_http), await tokens.token(audience="https://other.example.test")
    )
    assert "audience" in error.description


async def test_token_from_another_issuer_is_refused(
    tokens: TokenFactory, issuer_http: httpx.AsyncClient
) -> None:
    error = await refused(
        verifier(issuer_http), await tokens.token(issuer="https://evil.example.test")
    )
    assert "issuer" in error.description


async def test_id_token_cannot_be_used_as_access_token(
    tokens: TokenFactory, issuer_http: httpx.AsyncClient
) -> None:
    error = await refused(verifier(issuer_http), await tokens.token(typ="JWT"))
    assert "typ" in error.description


async def test_tampered_payload_is_refused(
    tokens: TokenFactory, issuer_http: httpx.AsyncClient
) -> None:
    header, payload, signature = (await tokens.token(org_code="org_initech")).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["org_code"] = "org_globex"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    error = await refused(verifier(issuer_http), f"{header}.{forged}.{signature}")
    assert error.error == "invalid_token"


async def test_hmac_and_none_algorithms_are_refused(
    tokens: TokenFactory, issuer_http: httpx.AsyncClient
) -> None:
    jwks = (await issuer_http.get("/.well-known/jwks.json")).json()
    kid = jwks["keys"][0]["kid"]
    public_json = json.dumps(jwks["keys"][0])
    claims = {"iss": ISSUER, "sub": "x", "aud": API_AUDIENCE, "iat": 1, "exp": 2**40}
    signing_input = f"{b64({'alg': 'HS256', 'kid': kid, 'typ': 'at+jwt'})}.{b64(claims)}"
    mac = hmac.new(public_json.encode(), signing_input.encode(), hashlib.sha256).digest()
    hmac_forgery = signing_input + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    none_forgery = jwt.encode(claims, None, algorithm="none", headers={"kid": kid, "typ": "at+jwt"})
    verify = verifier(issuer_http)
    for forged in (hmac_forgery, none_forgery):
        assert "algorithm" in (await refused(verify, forged)).description
    with pytest.raises(ValueError, match="asymmetric"):
        TokenVerifier(ISSUER, API_AUDIENCE, algorithms=("RS256", "HS256"))


async def test_garbage_is_invalid_token_not_an_error(issuer_http: httpx.AsyncClient) -> None:
    verify = verifier(issuer_http)
    for garbage in ("", "abc", "a.b.c", "é.é.é", "x" * 10_000):
        assert (await refused(verify, garbage)).status_code == 401


async def test_rotated_key_is_fetched_when_a_token_names_it(
    tokens: TokenFactory, issuer_http: httpx.AsyncClient
) -> None:
    verify = verifier(issuer_http, jwks_min_refetch_seconds=0.0)
    old = await tokens.token()
    await verify.verify(old)
    await tokens.services.keys.rotate()
    new = await tokens.token()
    assert jwt.get_unverified_header(new)["kid"] != jwt.get_unverified_header(old)["kid"]
    await verify.verify(new)
    await verify.verify(old)  # the retired key stays published until its tokens expire
    assert verify.jwks.fetch_count == 2


async def test_made_up_kids_cannot_make_it_hammer_the_issuer(
    tokens: TokenFactory, issuer_http: httpx.AsyncClient
) -> None:
    verify = verifier(issuer_http)
    await verify.verify(await tokens.token())
    _header, payload, signature = (await tokens.token()).split(".")
    results = []
    for n in range(20):
        fake_header = {"alg": "RS256", "typ": "at+jwt", "kid": f"made-up-{n}"}
        encoded = base64.urlsafe_b64encode(json.dumps(fake_header).encode()).rstrip(b"=")
        results.append(verify.verify(f"{encoded.decode()}.{payload}.{signature}"))
    outcomes = await asyncio.gather(*results, return_exceptions=True)
    assert all(isinstance(o, ResourceAccessDenied) for o in outcomes)
    assert verify.jwks.fetch_count == 1


async def test_unreachable_issuer_is_503_not_a_crash() -> None:
    async with httpx.AsyncClient() as http:
        verify = TokenVerifier("http://127.0.0.1:9", API_AUDIENCE, http=http)
        token = jwt.encode(
            {"sub": "x"}, "k" * 32, algorithm="HS256", headers={"kid": "k", "typ": "at+jwt"}
        )
        header = base64.urlsafe_b64encode(
            json.dumps({"alg": "RS256", "typ": "at+jwt", "kid": "k"}).encode()
        ).rstrip(b"=")
        error = await refused(verify, header.decode() + "." + token.split(".", 1)[1])
    assert (error.status_code, error.error) == (503, "temporarily_unavailable")


async def test_last_good_keys_serve_while_the_issuer_is_down_without_a_retry_storm(
    tokens: TokenFactory, db_url: str
) -> None:
    """The JWKS comes from claimflow on a loopback port, which then stops."""
    port = free_port()
    # The issuer is ISSUER; the server is reached by its loopback address, so allow that host.
    settings = make_settings(db_url, allowed_hosts=["127.0.0.1"])
    running = serve_in_thread(create_app(settings), port)
    next(running)
    verify = TokenVerifier(
        ISSUER,
        API_AUDIENCE,
        jwks_url=f"http://127.0.0.1:{port}/.well-known/jwks.json",
        jwks_ttl_seconds=0.0,
        jwks_min_refetch_seconds=0.3,
    )
    token = await tokens.token()
    await verify.verify(token)
    next(running, None)
    await asyncio.sleep(0.35)
    for _ in range(10):
        assert (await verify.verify(token)).subject == "kp_demo"
    assert verify.jwks.fetch_count == 2  # one good fetch, one failed attempt, then the backoff
    await verify.aclose()
