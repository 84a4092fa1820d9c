"""Strict OAuth parameter parsing (RFC 6749 §3.1): any byte string is a dict or invalid_request."""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from starlette.requests import Request
from starlette.types import Message

from claimflow.errors import OAuthError
from claimflow.oidc import pkce
from claimflow.oidc.params import (
    MAX_PARAM_LENGTH,
    MAX_QUERY_BYTES,
    PENDING_REQUEST_FIELD,
    authorization_form_params,
    parse_query_string,
    single_valued,
)


@given(st.binary(max_size=300))
def test_any_bytes_parse_or_fail_as_invalid_request(raw: bytes) -> None:
    try:
        params = parse_query_string(raw.decode("latin-1"))
    except OAuthError as exc:
        assert exc.error == "invalid_request" and exc.status_code == 400
    else:
        assert all(isinstance(v, str) and "\x00" not in v for v in params.values())


@given(
    st.dictionaries(
        st.text(alphabet="abcdefghij_", min_size=1, max_size=10),
        st.text(max_size=50).filter(lambda v: "\x00" not in v),
        max_size=6,
    )
)
def test_encoded_parameters_round_trip(values: dict[str, str]) -> None:
    assert parse_query_string(urlencode(values)) == values


def test_repeated_long_and_nul_values_are_refused() -> None:
    for pairs in (
        [("a", "1"), ("a", "2")],
        [("a", "x" * (MAX_PARAM_LENGTH + 1))],
        [("a", "x\x00")],
    ):
        with pytest.raises(OAuthError) as caught:
            single_valued(pairs)
        assert caught.value.error == "invalid_request"


@given(
    st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~",
        min_size=43,
        max_size=128,
    )
)
def test_pkce_s256_accepts_its_own_challenge_and_rejects_others(verifier: str) -> None:
    challenge = pkce.s256_challenge(verifier)
    pkce.validate_challenge(challenge, "S256", required=True)
    pkce.verify(verifier, challenge)
    with pytest.raises(OAuthError):
        pkce.verify(verifier + "x" if len(verifier) < 128 else verifier[:-1], challenge)


def test_rfc7636_appendix_b_example() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce.s256_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def form_request(body: bytes) -> Request:
    """A POST with a form body, as the ASGI server hands it to the endpoint."""

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/oauth2/auth/login",
        "query_string": b"",
        "headers": [(b"content-type", b"application/x-www-form-urlencoded")],
    }
    return Request(scope, receive)


no_nul_text = st.text(max_size=MAX_PARAM_LENGTH).filter(lambda v: "\x00" not in v)
worst_case = "\U0001f600" * MAX_PARAM_LENGTH


@settings(max_examples=60, deadline=None)
@given(state=no_nul_text, email=no_nul_text, password=no_nul_text)
@example(state=worst_case, email=worst_case, password=worst_case)
@example(state="%" * MAX_PARAM_LENGTH, email="", password="x")
def test_any_state_the_endpoint_accepts_fits_the_login_form(
    state: str, email: str, password: str
) -> None:
    """The limits agree: a query the authorization endpoint parses, carried in the login form
    with any email and password within their own limits, parses back unchanged."""
    query = urlencode(
        {
            "response_type": "code",
            "client_id": "0123456789abcdef0123456789abcdef",
            "redirect_uri": "https://app.example.com/callback",
            "scope": "openid profile email offline",
            "state": state,
        }
    )
    assert parse_query_string(query)["state"] == state
    assert len(query) <= MAX_QUERY_BYTES
    body = urlencode(
        {
            "csrf_token": "0" * 64,
            PENDING_REQUEST_FIELD: query,
            "email": email,
            "password": password,
        }
    ).encode("ascii")
    form = asyncio.run(authorization_form_params(form_request(body)))
    assert form[PENDING_REQUEST_FIELD] == query
    assert (form["email"], form["password"]) == (email, password)
