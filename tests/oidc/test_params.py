"""Strict OAuth parameter parsing (RFC 6749 §3.1): any byte string is a dict or invalid_request."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from claimflow.errors import OAuthError
from claimflow.oidc import pkce
from claimflow.oidc.params import MAX_PARAM_LENGTH, parse_query_string, single_valued


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
