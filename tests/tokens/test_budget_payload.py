"""The payload the size budget assembles from claim encodings is the one JSON would give.

``fit_payload`` joins the encodings of base claims and chosen forms instead of serialising the
whole claim set again (``claimflow/tokens/budget.py``); the signer signs those bytes. These
properties hold it to ``json.dumps`` of the claims and to the size of the real signed token.
"""

from __future__ import annotations

import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from claimflow.errors import TokenTooLarge
from claimflow.tokens.budget import EncodedJSON, FitMemo, encoded_size, fit_payload

KEY = ec.generate_private_key(ec.SECP256R1())
HEADER = {"alg": "ES256", "kid": "k1", "typ": "at+jwt"}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
claim_sets = st.dictionaries(st.text(min_size=1, max_size=10), json_values, max_size=6)
custom_claims = st.dictionaries(
    st.text(min_size=1, max_size=10), st.lists(json_values, min_size=1, max_size=3), max_size=4
)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


@settings(max_examples=150, deadline=None)
@given(base=claim_sets, custom=custom_claims, max_bytes=st.integers(200, 3000), pre=st.booleans())
def test_the_payload_is_the_json_of_the_fitted_claims_and_signs_to_the_measured_size(
    base: dict[str, Any], custom: dict[str, list[Any]], max_bytes: int, pre: bool
) -> None:
    encoded = {n: [EncodedJSON(f).encoded for f in forms] for n, forms in custom.items()}
    try:
        fitted = fit_payload(
            "access_token", HEADER, base, custom, max_bytes, "ES256", encoded if pre else None
        )
    except TokenTooLarge:
        return
    assert fitted.payload == _dumps(fitted.claims)
    assert {n: v for n, v in fitted.claims.items() if n in base} == base  # base claims win
    token = jwt.api_jws.encode(fitted.payload, KEY, algorithm="ES256", headers=HEADER)
    assert len(token) == fitted.size == encoded_size(HEADER, fitted.claims, "ES256")
    assert fitted.size <= max_bytes


def test_a_custom_claim_named_like_a_base_claim_is_left_out() -> None:
    fitted = fit_payload("id_token", HEADER, {"sub": "kp_1"}, {"sub": ("forged",)}, 4096, "ES256")
    assert fitted.claims == {"sub": "kp_1"}
    assert fitted.payload == b'{"sub":"kp_1"}'


def test_encoded_json_refuses_what_no_verifier_could_read() -> None:
    with pytest.raises(ValueError):
        EncodedJSON({"limit": float("nan")})


@settings(max_examples=150, deadline=None)
@given(
    bases=st.lists(claim_sets, min_size=1, max_size=4),
    custom=custom_claims,
    budgets=st.lists(st.integers(200, 3000), min_size=1, max_size=3),
)
def test_a_memoized_fit_is_the_fit_made_afresh_for_every_base_and_budget(
    bases: list[dict[str, Any]], custom: dict[str, list[Any]], budgets: list[int]
) -> None:
    """One memo serves every token of one claim set (``FitMemo``): whatever base claims and
    budget a token brings, twice over (the second time from the memo), it gets what a fit
    without the memo gives, or the same ``TokenTooLarge``."""
    encoded = {n: [EncodedJSON(f).encoded for f in forms] for n, forms in custom.items()}
    memo = FitMemo()
    for base in bases * 2:
        for max_bytes in budgets:
            try:
                fresh = fit_payload(
                    "access_token", HEADER, base, custom, max_bytes, "ES256", encoded
                )
            except TokenTooLarge:
                with pytest.raises(TokenTooLarge):
                    fit_payload(
                        "access_token", HEADER, base, custom, max_bytes, "ES256", encoded, memo
                    )
                continue
            memoized = fit_payload(
                "access_token", HEADER, base, custom, max_bytes, "ES256", encoded, memo
            )
            assert memoized == fresh


def test_the_memo_refits_when_the_base_claims_grow_past_the_budget() -> None:
    """A token whose base claims are longer (another ``client_id``) is not handed the fit of a
    shorter one: the claim steps down where the fresh fit steps it down."""
    forms = (EncodedJSON({"plan": "x" * 400}), EncodedJSON({"plan": "x"}))
    custom = {"org_billing": forms}
    encoded = {"org_billing": [f.encoded for f in forms]}
    memo = FitMemo()
    short = fit_payload("M2M token", HEADER, {"sub": "a"}, custom, 800, "ES256", encoded, memo)
    long = fit_payload("M2M token", HEADER, {"sub": "a" * 120}, custom, 800, "ES256", encoded, memo)
    assert short.claims["org_billing"] is forms[0]
    assert long.claims["org_billing"] is forms[1]
    assert len(memo) == 2
    again = fit_payload("M2M token", HEADER, {"sub": "b"}, custom, 800, "ES256", encoded, memo)
    assert again.payload == _dumps({"sub": "b", "org_billing": forms[0].value})
    assert len(memo) == 2  # same lengths, same decision: answered from the memo
