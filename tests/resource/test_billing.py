"""Reading ``org_billing`` / ``billingDetails`` in the forms the billing workflows write."""

from __future__ import annotations

from typing import Any

import pytest

from claimflow.resource import FeatureLimit, ResourceAccessDenied, parse_billing_claim
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


@pytest.mark.parametrize(
    "claim",
    [None, {"customer_id": "c", "form": "tiny"}, {"customer_id": 7, "form": "reference"}],
)
def test_a_malformed_claim_makes_the_token_invalid(claim: Any) -> None:
    """``claimflow.claims`` refuses the claim; the kit answers RFC 6750's ``invalid_token``."""
    with pytest.raises(ResourceAccessDenied) as caught:
        parse_billing_claim(claim)
    assert (caught.value.status_code, caught.value.error) == (401, "invalid_token")
    assert "malformed" in caught.value.description
