"""``claimflow.workflows.testing``: an author tests a workflow module in one call."""

from __future__ import annotations

from pathlib import Path

from claimflow.workflows.testing import for_sign_in, run_workflow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "workflows" / "support_tier.py"


async def test_the_example_workflow_reads_its_declared_variable() -> None:
    result = await run_workflow(
        EXAMPLE, for_sign_in("kp_1", org_code="org_acme"), env={"SUPPORT_TIER_ORG_ACME": "premium"}
    )
    assert result.outcome == "succeeded"
    assert result.access_token == {"support_tier": "premium"}


async def test_a_personal_sign_in_gets_no_claim_and_says_why() -> None:
    result = await run_workflow(EXAMPLE, for_sign_in("kp_1"))
    assert result.access_token == {}
    assert result.log_lines == ["personal sign-in; no support tier"]


async def test_recorded_management_api_answers_feed_the_built_in_org_billing() -> None:
    entitlement = {"id": "ent_1", "feature_code": "sso", "entitlement_limit_max": None}
    agreement = {"id": "agr_1", "plan_code": "pro"}
    result = await run_workflow(
        "claimflow.workflows.builtin.org_billing",
        for_sign_in("kp_1", org_code="org_acme"),
        management_api={
            "GET organization": {"code": "org_acme", "billing": {"billing_customer_id": "c_1"}},
            "GET billing/entitlements": {"entitlements": [entitlement], "has_more": False},
            "GET billing/agreements": {"agreements": [agreement], "has_more": False},
        },
    )
    assert result.outcome == "succeeded", result.error
    assert result.access_token["org_billing"]["customer_id"] == "c_1"
    assert result.access_token["org_billing"]["agreements"] == [agreement]
    assert "GET organization?code=org_acme&expand=billing" in result.management_calls
