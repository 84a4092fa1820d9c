"""The billing claims' HTTP surface: published JSON Schemas, and the billing-details endpoint
(``claimflow/oidc/billing_claims.py``) that answers from whichever workflow sets the claim."""

from __future__ import annotations

import secrets
import time

import httpx
from sqlalchemy import update

from claimflow.app import create_app
from claimflow.claims import claim_schema
from claimflow.services import build_services
from claimflow.store import billing, organizations
from claimflow.store import tables as t
from tests.conftest import ISSUER, make_settings
from tests.oidc.flow import exchange, seed_business, sign_in_for_code


async def test_claim_schemas_are_published(client: httpx.AsyncClient) -> None:
    listed = (await client.get("/schemas/claims")).json()["schemas"]
    assert "/schemas/claims/billing.compact.json" in listed
    served = await client.get("/schemas/claims/billing.compact.json")
    assert served.headers["content-type"] == "application/schema+json"
    assert served.json() == claim_schema("billing.compact")
    assert (await client.get("/schemas/claims/nope.json")).status_code == 404


async def test_with_no_workflow_setting_the_claim_the_endpoint_says_which_is_missing(
    db_url: str,
) -> None:
    services = build_services(make_settings(db_url, workflows_enabled=["user_billing"]))
    try:
        biz = await seed_business(services)
        transport = httpx.ASGITransport(app=create_app(services=services))
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
            callback = await sign_in_for_code(client, biz, org_code=biz.org_code)
            token = (await exchange(client, biz, callback["code"])).json()["access_token"]
            response = await client.get(
                "/oauth2/billing/customer_any", headers={"Authorization": f"Bearer {token}"}
            )
    finally:
        await services.close()
    assert response.status_code == 404
    assert response.json() == {
        "error": "not_found",
        "error_description": "No enabled workflow sets org_billing.",
    }


async def test_a_suspended_users_token_claiming_to_be_a_machine_token_gets_no_billing(
    db_url: str,
) -> None:
    """``gty`` is the provider's claim, but the endpoint decides from the store: a token whose
    subject is a suspended user is refused even if it says it was a client-credentials token."""
    services = build_services(make_settings(db_url))
    try:
        biz = await seed_business(services)
        async with services.db.transaction() as conn:
            await conn.execute(
                update(t.users).where(t.users.c.id == biz.user_id).values(is_suspended=True)
            )
        now = int(time.time())
        token = await services.keys.sign(
            {
                "iss": ISSUER,
                "sub": biz.user_id,
                "aud": [],
                "iat": now,
                "exp": now + 300,
                "jti": secrets.token_hex(16),
                "gty": ["client_credentials"],
                "org_code": biz.org_code,
            },
            typ="at+jwt",
        )
        transport = httpx.ASGITransport(app=create_app(services=services))
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
            response = await client.get(
                "/oauth2/billing/customer_any", headers={"Authorization": f"Bearer {token}"}
            )
    finally:
        await services.close()
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


async def test_a_member_removed_from_the_organization_gets_no_billing_with_an_old_token(
    db_url: str,
) -> None:
    """The token still says ``org_code``, but the store says the user left: the organization's
    full billing is no longer theirs to read."""
    services = build_services(make_settings(db_url))
    try:
        biz = await seed_business(services)
        async with services.db.transaction() as conn:
            customer = await billing.create_customer(conn, org_code=biz.org_code)
            await billing.create_plan(conn, code="team", name="Team")
            await billing.create_agreement(conn, customer_id=customer.id, plan_code="team")
        now = int(time.time())
        token = await services.keys.sign(
            {
                "iss": ISSUER,
                "sub": biz.user_id,
                "client_id": biz.web_client_id,
                "aud": [],
                "iat": now,
                "exp": now + 300,
                "jti": secrets.token_hex(16),
                "org_code": biz.org_code,
            },
            typ="at+jwt",
        )
        headers = {"Authorization": f"Bearer {token}"}
        transport = httpx.ASGITransport(app=create_app(services=services))
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
            url = f"/oauth2/billing/{customer.id}"
            while_member = await client.get(url, headers=headers)
            async with services.db.transaction() as conn:
                await organizations.remove_member(conn, biz.org_code, biz.user_id)
            after_leaving = await client.get(url, headers=headers)
    finally:
        await services.close()
    assert while_member.status_code == 200, while_member.text
    assert while_member.json()["customer_id"] == customer.id
    assert after_leaving.status_code == 401
    assert after_leaving.json()["error"] == "invalid_token"
