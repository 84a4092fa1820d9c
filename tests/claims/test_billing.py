"""The billing claim's forms: built from the Management API's answers, fallbacks that state the
same billing, each valid against its published JSON Schema, and a parser that reads any form
and refuses anything else with ``InvalidBillingClaim``."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claimflow.claims import (
    BillingClaim,
    FeatureLimit,
    InvalidBillingClaim,
    billing_claim_forms,
    billing_details_claim,
    claim_schema,
    content_version,
    org_billing_claim,
    parse_billing_claim,
)

limits = st.none() | st.integers(min_value=0, max_value=10**6)
entitlement_items = st.lists(
    st.fixed_dictionaries(
        {
            "id": st.from_regex(r"entitlement_[a-z0-9]{4}", fullmatch=True),
            "feature_code": st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True),
            "entitlement_limit_min": limits,
            "entitlement_limit_max": limits,
        },
        optional={"price_name": st.text(max_size=8), "fixed_charge": limits},
    ),
    max_size=12,
)
agreement_items = st.lists(
    st.fixed_dictionaries(
        {
            "id": st.from_regex(r"agreement_[a-z0-9]{4}", fullmatch=True),
            "plan_code": st.from_regex(r"[a-z]{1,8}", fullmatch=True),
        }
    ),
    max_size=4,
)
customer_ids = st.from_regex(r"customer_[a-z0-9]{1,12}", fullmatch=True)


def schema(name: str) -> dict[str, Any]:
    published = claim_schema(name)
    assert published is not None, name
    return published


@settings(deadline=None)  # behaviour only: a loaded machine must not fail it
@given(customer_ids, entitlement_items, agreement_items)
def test_every_form_states_the_same_billing_and_matches_its_schema(
    customer_id: str, entitlements: list[dict[str, Any]], agreements: list[dict[str, Any]]
) -> None:
    forms = billing_claim_forms(org_billing_claim(customer_id, entitlements, agreements))
    jsonschema.validate(forms.full, schema("org_billing.full"))
    jsonschema.validate(forms.compact, schema("billing.compact"))
    jsonschema.validate(forms.reference, schema("billing.reference"))
    full, compact, reference = (parse_billing_claim(form) for form in forms)
    assert (full.form, compact.form, reference.form) == ("full", "compact", "reference")
    assert full.features == compact.features
    assert full.plans == compact.plans == reference.plans
    assert compact.version == reference.version == content_version(forms.full)
    assert forms.fallbacks == (forms.compact, forms.reference)


def test_billing_details_keeps_the_users_billing_object_and_has_its_own_schema() -> None:
    full = billing_details_claim(
        "customer_1",
        {"customer_id": "customer_1"},
        [{"feature_code": "seats", "entitlement_limit_max": 3}],
        [{"id": "agreement_1", "plan_code": "solo"}],
    )
    jsonschema.validate(full, schema("billingDetails.full"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(full, schema("org_billing.full"))
    assert parse_billing_claim(full).limit_of("seats") == FeatureLimit("seats", None, 3)


def test_the_version_follows_the_content_not_the_key_order() -> None:
    one = org_billing_claim("c", [{"feature_code": "a", "entitlement_limit_max": 1}], [])
    same = {"agreements": [], "entitlements": one["entitlements"], "customer_id": "c"}
    other = org_billing_claim("c", [{"feature_code": "a", "entitlement_limit_max": 2}], [])
    assert content_version(one) == content_version(same) != content_version(other)


def test_a_feature_priced_by_two_agreements_gets_the_larger_allowance_in_every_form() -> None:
    forms = billing_claim_forms(
        org_billing_claim(
            "customer_x",
            [
                {"feature_code": "seats", "entitlement_limit_min": 1, "entitlement_limit_max": 5},
                {"feature_code": "seats", "entitlement_limit_min": 2, "entitlement_limit_max": 9},
                {"feature_code": "sso", "entitlement_limit_max": 1},
                {"feature_code": "sso"},
            ],
            [{"id": "a1", "plan_code": "base"}, {"id": "a2", "plan_code": "addon"}],
        )
    )
    assert forms.compact["features"] == {"seats": [1, 9], "sso": [None, None]}
    claim = parse_billing_claim(forms.full)
    assert claim.limit_of("seats") == FeatureLimit("seats", 1, 9)
    assert claim.plans == ("base", "addon")


@pytest.mark.parametrize(
    ("entitlements", "agreements", "part"),
    [
        ([{"feature_code": ""}], [], "entitlements"),
        ([None], [], "entitlements"),
        ([{"feature_code": "s", "entitlement_limit_max": "10"}], [], "entitlements"),
        ([{"feature_code": "s", "entitlement_limit_min": True}], [], "entitlements"),
        ([], [{"plan_code": "pro"}], "agreements"),
        ([], [{"id": "a"}], "agreements"),
        ([], [{"id": 7, "plan_code": "pro"}], "agreements"),
    ],
)
def test_the_builder_refuses_what_no_form_could_state(
    entitlements: list[Any], agreements: list[Any], part: str
) -> None:
    with pytest.raises(InvalidBillingClaim) as caught:
        org_billing_claim("customer_1", entitlements, agreements)
    assert caught.value.part == part


def test_reading_is_as_lenient_as_kindes_own_claim_an_agreement_needs_only_its_plan() -> None:
    claim = parse_billing_claim(
        {
            "customer_id": "customer_1",
            "entitlements": [],
            "agreements": [{"plan_code": "pro", "agreement_id": "agreement_1"}],
        }
    )
    assert claim.plans == ("pro",)


def test_a_reference_form_must_be_resolved_before_it_answers_about_features() -> None:
    reference = billing_claim_forms(org_billing_claim("customer_1", [], [])).reference
    claim = parse_billing_claim(reference)
    assert not claim.is_resolved
    with pytest.raises(ValueError, match="resolved"):
        claim.has_feature("seats")


@pytest.mark.parametrize(
    "claim",
    [
        None,
        [],
        {"entitlements": [], "agreements": []},
        {"customer_id": "c", "entitlements": {}, "agreements": []},
        {"customer_id": "c", "entitlements": [{"feature_code": 3}], "agreements": []},
        {"customer_id": "c", "entitlements": [], "agreements": [{"id": "a"}]},
        {"customer_id": "c", "form": "compact", "plans": [], "features": {"s": [1]}},
        {"customer_id": "c", "form": "compact", "plans": [], "features": {"s": [True, 2]}},
        {"customer_id": "c", "form": "compact", "plans": []},
        {"customer_id": "c", "form": "reference", "plans": "pro"},
        {"customer_id": "c", "form": "reference", "plans": [], "v": 7},
        {"customer_id": "c", "form": "tiny"},
    ],
)
def test_malformed_claims_are_refused(claim: Any) -> None:
    with pytest.raises(InvalidBillingClaim):
        parse_billing_claim(claim)


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


@settings(deadline=None)
@given(claim_like | json_values)
def test_any_json_is_a_billing_claim_or_refused(raw: Any) -> None:
    try:
        parsed = parse_billing_claim(raw)
    except InvalidBillingClaim as exc:
        assert exc.part and exc.message
    else:
        assert isinstance(parsed, BillingClaim)
        if parsed.is_resolved:
            for code in parsed.features or {}:
                assert parsed.limit_of(code) is not None
