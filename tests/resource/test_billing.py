"""Reading ``org_billing`` / ``billingDetails`` in the forms the billing workflows write."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from claimflow.resource import BillingClaim, FeatureLimit, ResourceAccessDenied, parse_billing_claim
from tests.resource.conftest import TokenFactory


async def test_full_and_compact_forms_state_the_same_features_and_plans(
    tokens: TokenFactory,
) -> None:
    full = parse_billing_claim(await tokens.billing_claim("customer_globex", "full"))
    compact = parse_billing_claim(await tokens.billing_claim("customer_globex", "compact"))
    assert (full.form, compact.form) == ("full", "compact")
    assert full.features == compact.features
    assert full.plans == compact.plans == ("enterprise",)
    assert full.limit_of("seats") == FeatureLimit("seats", 10, None)
    assert full.has_feature("sso") and not full.has_feature("teleport")
    assert compact.version is not None


async def test_reference_form_names_customer_and_plans_but_must_be_resolved(
    tokens: TokenFactory,
) -> None:
    reference = parse_billing_claim(await tokens.billing_claim("customer_initech", "reference"))
    assert (reference.form, reference.customer_id, reference.plans) == (
        "reference",
        "customer_initech",
        ("free",),
    )
    assert not reference.is_resolved
    with pytest.raises(ValueError, match="resolved"):
        reference.has_feature("seats")


def test_a_feature_priced_by_two_agreements_gets_the_larger_allowance() -> None:
    claim = parse_billing_claim(
        {
            "customer_id": "customer_x",
            "entitlements": [
                {"feature_code": "seats", "entitlement_limit_min": 1, "entitlement_limit_max": 5},
                {"feature_code": "seats", "entitlement_limit_min": 2, "entitlement_limit_max": 9},
            ],
            "agreements": [{"id": "a1", "plan_code": "base"}, {"id": "a2", "plan_code": "addon"}],
        }
    )
    assert claim.limit_of("seats") == FeatureLimit("seats", 1, 9)
    assert claim.plans == ("base", "addon")


@pytest.mark.parametrize(
    "claim",
    [
        None,
        [],
        {"entitlements": [], "agreements": []},
        {"customer_id": "c", "entitlements": {}, "agreements": []},
        {"customer_id": "c", "entitlements": [{"feature_code": 3}], "agreements": []},
        {
            "customer_id": "c",
            "entitlements": [{"feature_code": "s", "entitlement_limit_max": "9"}],
            "agreements": [],
        },
        {"customer_id": "c", "entitlements": [], "agreements": [{"id": "a"}]},
        {"customer_id": "c", "form": "compact", "plans": [], "features": {"s": [1]}},
        {"customer_id": "c", "form": "compact", "plans": [], "features": {"s": [True, 2]}},
        {"customer_id": "c", "form": "reference", "plans": "pro"},
        {"customer_id": "c", "form": "tiny"},
    ],
)
def test_malformed_claims_are_invalid_tokens(claim: Any) -> None:
    with pytest.raises(ResourceAccessDenied) as caught:
        parse_billing_claim(claim)
    assert (caught.value.status_code, caught.value.error) == (401, "invalid_token")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
claim_like = st.fixed_dictionaries(
    {"customer_id": st.text(max_size=8) | st.integers()},
    optional={
        "form": st.sampled_from(["full", "compact", "reference"]) | st.text(max_size=5),
        "entitlements": json_values,
        "agreements": json_values,
        "features": st.dictionaries(st.text(max_size=5), json_values, max_size=3),
        "plans": json_values,
        "v": json_values,
    },
)


@given(claim_like | json_values)
def test_any_json_is_a_billing_claim_or_an_invalid_token(raw: Any) -> None:
    try:
        parsed = parse_billing_claim(raw)
    except ResourceAccessDenied as exc:
        assert exc.status_code == 401
    else:
        assert isinstance(parsed, BillingClaim)
        if parsed.is_resolved:
            for code in parsed.features or {}:
                assert parsed.limit_of(code) is not None
