"""End to end: plans, an organization with a billing customer on a plan and a
member, set up through the Management API; sign in through the authorization code flow with
``org_code``; the access and ID tokens carry ``org_billing`` equal to what the Management API
returns; the agreement changes; a refresh carries the new plan. The same for ``billingDetails``
on a personal sign-in. Also: the reference form's endpoint, and a ``stop`` failure as an OAuth
error naming the workflow and run."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema
import jwt
import pytest

from claimflow.claims import billing_claim_forms, claim_schema
from claimflow.services import Services
from tests.helpers import management_client
from tests.management.catalogue import make_plan
from tests.oidc.flow import Business, exchange, seed_business, sign_in_for_code
from tests.oidc.flow import refresh as refresh_grant
from tests.workflows.test_billing_workflows import expected_billing


async def verified(client: httpx.AsyncClient, token: str, issuer: str) -> dict[str, Any]:
    """Verify like any relying party would: signature against the published JWKS."""
    jwks = jwt.PyJWKSet.from_dict((await client.get("/.well-known/jwks.json")).json())
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwks.keys if k.key_id == kid)
    claims: dict[str, Any] = jwt.decode(
        token,
        key.key,
        algorithms=[key.algorithm_name],
        issuer=issuer,
        options={"verify_aud": False},
    )
    return claims


async def refresh(client: httpx.AsyncClient, biz: Business, refresh_token: str) -> dict[str, Any]:
    response = await refresh_grant(client, biz, refresh_token)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
async def shop(
    client: httpx.AsyncClient, services: Services
) -> tuple[Business, dict[str, str], str, str]:
    """alice in org_acme (customer on ``starter``) with personal billing on ``solo``."""
    biz = await seed_business(services)
    api = await management_client(client, services)
    client.headers.update(api)
    await make_plan(client, "starter", {"seats": 5, "projects": 3})
    await make_plan(client, "scale", {"seats": 50, "projects": None, "sso": None})
    await make_plan(client, "solo", {"projects": 1})
    org_customer = await client.post(
        "/api/v1/billing/customers",
        json={"org_code": biz.org_code, "email": "billing@acme.test", "plan_code": "starter"},
    )
    personal = await client.post(
        "/api/v1/billing/customers",
        json={"user_id": biz.user_id, "email": biz.email, "plan_code": "solo"},
    )
    for header in api:
        del client.headers[header]
    assert org_customer.status_code == 201 and personal.status_code == 201
    return biz, api, org_customer.json()["customer"]["id"], personal.json()["customer"]["id"]


async def test_org_sign_in_and_refresh_follow_the_agreement(
    client: httpx.AsyncClient, services: Services, shop: tuple[Business, dict[str, str], str, str]
) -> None:
    biz, api, customer_id, _ = shop
    callback = await sign_in_for_code(client, biz, org_code=biz.org_code)
    tokens = await exchange(client, biz, callback["code"])
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    access = await verified(client, body["access_token"], services.issuer)
    id_claims = await verified(client, body["id_token"], services.issuer)

    expected = await expected_billing(client, services, customer_id)
    assert access["org_code"] == biz.org_code
    assert access["org_billing"] == expected
    assert id_claims["org_billing"] == expected
    assert "billingDetails" not in access and "billingDetails" not in id_claims
    assert [a["plan_code"] for a in access["org_billing"]["agreements"]] == ["starter"]
    jsonschema.validate(access["org_billing"], claim_schema("org_billing.full"))

    changed = await client.post(
        "/api/v1/billing/agreements",
        json={"customer_id": customer_id, "plan_code": "scale"},
        headers=api,
    )
    assert changed.status_code < 300, changed.text

    refreshed = await refresh(client, biz, body["refresh_token"])
    new_access = await verified(client, refreshed["access_token"], services.issuer)
    new_id = await verified(client, refreshed["id_token"], services.issuer)
    new_expected = await expected_billing(client, services, customer_id)
    assert [a["plan_code"] for a in new_expected["agreements"]] == ["scale"]
    assert new_access["org_billing"] == new_expected
    assert new_id["org_billing"] == new_expected
    assert {e["feature_code"] for e in new_access["org_billing"]["entitlements"]} == {
        "seats",
        "projects",
        "sso",
    }


async def test_personal_sign_in_and_refresh_follow_the_agreement(
    client: httpx.AsyncClient, services: Services, shop: tuple[Business, dict[str, str], str, str]
) -> None:
    biz, api, _, personal_id = shop
    callback = await sign_in_for_code(client, biz)
    body = (await exchange(client, biz, callback["code"])).json()
    access = await verified(client, body["access_token"], services.issuer)
    id_claims = await verified(client, body["id_token"], services.issuer)
    expected = await expected_billing(client, services, personal_id)
    details = {
        "customer_id": personal_id,
        "user_billing": {"customer_id": personal_id},
        "entitlements": expected["entitlements"],
        "agreements": expected["agreements"],
    }
    assert "org_code" not in access
    assert access["billingDetails"] == details
    assert id_claims["billingDetails"] == details
    assert "org_billing" not in access and "org_billing" not in id_claims
    jsonschema.validate(access["billingDetails"], claim_schema("billingDetails.full"))

    await client.post(
        "/api/v1/billing/agreements",
        json={"customer_id": personal_id, "plan_code": "starter"},
        headers=api,
    )
    refreshed = await refresh(client, biz, body["refresh_token"])
    new_access = await verified(client, refreshed["access_token"], services.issuer)
    assert [a["plan_code"] for a in new_access["billingDetails"]["agreements"]] == ["starter"]


async def test_reference_endpoint_serves_the_full_form_to_the_tokens_holder_only(
    client: httpx.AsyncClient, services: Services, shop: tuple[Business, dict[str, str], str, str]
) -> None:
    biz, _, customer_id, personal_id = shop
    callback = await sign_in_for_code(client, biz, org_code=biz.org_code)
    access_token = (await exchange(client, biz, callback["code"])).json()["access_token"]
    auth = {"Authorization": f"Bearer {access_token}"}

    response = await client.get(f"/oauth2/billing/{customer_id}", headers=auth)
    assert response.status_code == 200
    assert response.json() == await expected_billing(client, services, customer_id)
    reference = billing_claim_forms(response.json()).reference
    assert response.headers["etag"] == f'"{reference["v"]}"'

    other = await client.get(f"/oauth2/billing/{personal_id}", headers=auth)
    assert other.status_code == 403 and other.json()["error"] == "insufficient_scope"
    missing = await client.get(f"/oauth2/billing/{customer_id}")
    assert missing.status_code == 401 and "Bearer" in missing.headers["www-authenticate"]
    forged = await client.get(
        f"/oauth2/billing/{customer_id}", headers={"Authorization": "Bearer x.y.z"}
    )
    assert forged.status_code == 401 and forged.json()["error"] == "invalid_token"


async def test_a_stop_failure_is_an_oauth_error_naming_workflow_and_run(
    client: httpx.AsyncClient, services: Services, shop: tuple[Business, dict[str, str], str, str]
) -> None:
    biz, _, _, _ = shop

    async def broken(*_args: object) -> httpx.Response:
        raise httpx.ConnectError("billing is down")

    assert services.workflows.management is not None
    services.workflows.management.request = broken  # type: ignore[method-assign,assignment]
    callback = await sign_in_for_code(client, biz, org_code=biz.org_code)
    response = await exchange(client, biz, callback["code"])
    assert response.status_code >= 400
    text = response.text
    assert "org_billing" in text and "run_" in text
    assert "access_token" not in response.json()
