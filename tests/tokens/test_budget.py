"""The token size budget steps large claims down to their compact forms."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claimflow.crypto import SecretBox
from claimflow.errors import TokenTooLarge
from claimflow.store import Database
from claimflow.tokens import KeyManager
from claimflow.tokens.budget import encoded_size, fit_to_budget

BASE = {"iss": "http://claimflow.test", "sub": "kp_1", "exp": 2_000_000_000, "iat": 1}


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "EdDSA"])
async def test_encoded_size_matches_a_real_signature(db_url: str, algorithm: str) -> None:
    keys = KeyManager(Database(db_url), SecretBox("k"), algorithm, 3600)
    claims = {**BASE, "org_billing": {"x": "é" * 50, "n": [1, 2, 3]}}
    token = await keys.sign(claims)
    key = await keys.ensure_active_key()
    header = {"alg": algorithm, "kid": key.kid, "typ": "JWT"}
    assert encoded_size(header, claims, algorithm) == len(token)


def test_largest_claim_steps_down_until_it_fits() -> None:
    header = {"alg": "RS256", "kid": "k", "typ": "JWT"}
    full = {"entitlements": ["x" * 100] * 40}
    compact = {"f": ["x"] * 5}
    claims = fit_to_budget(
        "access_token",
        header,
        BASE,
        {"org_billing": (full, compact), "small": ("s",)},
        1024,
        "RS256",
    )
    assert claims["org_billing"] == compact and claims["small"] == "s"
    assert encoded_size(header, claims, "RS256") <= 1024


def test_nothing_fits_raises() -> None:
    with pytest.raises(TokenTooLarge):
        fit_to_budget("access_token", {"alg": "RS256"}, BASE, {"c": ("x" * 5000,)}, 1024, "RS256")


@settings(max_examples=50)
@given(st.lists(st.text(max_size=80), max_size=60), st.integers(min_value=700, max_value=5000))
def test_fitted_claims_never_exceed_budget(values: list[str], budget: int) -> None:
    header = {"alg": "ES256", "kid": "k", "typ": "JWT"}
    try:
        claims = fit_to_budget(
            "access_token", header, BASE, {"c": (values, values[:3], None)}, budget, "ES256"
        )
    except TokenTooLarge:
        return
    assert encoded_size(header, claims, "ES256") <= budget
