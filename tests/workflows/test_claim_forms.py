"""The three forms of the billing claims: each validates against its published JSON Schema, and
the token size budget steps org_billing down to compact, then reference, in real tokens."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema
import jwt
import pytest

from claimflow.app import create_app
from claimflow.claims import claim_schema
from claimflow.services import Services, build_services
from claimflow.tokens.budget import fit_to_budget
from tests.conftest import ISSUER, make_settings
from tests.oidc.flow import exchange, seed_business, sign_in_for_code
from tests.workflows.conftest import BillingWorld, build_world, make_event


def schema(name: str) -> dict[str, Any]:
    published = claim_schema(name)
    assert published is not None
    return published


async def test_every_form_validates_against_its_published_schema(
    services: Services, world: BillingWorld
) -> None:
    org = await services.workflows.run_tokens_generation(
        make_event(world.member_id, world.org_code)
    )
    person = await services.workflows.run_tokens_generation(make_event(world.personal_user_id))
    full, compact, reference = org.access_token["org_billing"]
    jsonschema.validate(full, schema("org_billing.full"))
    jsonschema.validate(compact, schema("billing.compact"))
    jsonschema.validate(reference, schema("billing.reference"))
    details, d_compact, d_reference = person.access_token["billingDetails"]
    jsonschema.validate(details, schema("billingDetails.full"))
    jsonschema.validate(d_compact, schema("billing.compact"))
    jsonschema.validate(d_reference, schema("billing.reference"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(compact, schema("org_billing.full"))


@pytest.mark.parametrize(("budget", "form"), [(2200, "compact"), (1300, "reference")])
async def test_a_tight_budget_steps_the_claim_down_in_issued_tokens(
    db_url: str, budget: int, form: str
) -> None:
    services = build_services(
        make_settings(db_url, access_token_max_bytes=budget, id_token_max_bytes=32768)
    )
    try:
        biz = await seed_business(services)
        world = await build_world(services, features=20)
        async with services.db.transaction() as conn:
            from claimflow.store import billing, organizations

            await organizations.add_member(conn, world.org_code, biz.user_id)
        del billing
        transport = httpx.ASGITransport(app=create_app(services=services))
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
            callback = await sign_in_for_code(client, biz, org_code=world.org_code)
            body = (await exchange(client, biz, callback["code"])).json()
            access = jwt.decode(body["access_token"], options={"verify_signature": False})
            assert len(body["access_token"]) <= budget
            claim = access["org_billing"]
            assert claim["form"] == form
            jsonschema.validate(claim, schema(f"billing.{form}"))
            # The ID token has its own budget (set large here): it keeps the full form.
            id_claims = jwt.decode(body["id_token"], options={"verify_signature": False})
            assert "form" not in id_claims["org_billing"]
            if form == "reference":
                full = await client.get(
                    f"/oauth2/billing/{claim['customer_id']}",
                    headers={"Authorization": f"Bearer {body['access_token']}"},
                )
                assert full.status_code == 200
                assert full.json() == id_claims["org_billing"]
                assert full.headers["etag"] == f'"{claim["v"]}"'
    finally:
        await services.close()


def test_budget_picks_the_richest_form_that_fits() -> None:
    full = {"customer_id": "c", "entitlements": [{"feature_code": "x" * 500}], "agreements": []}
    compact = {"form": "compact", "v": "0" * 16, "customer_id": "c", "plans": [], "features": {}}
    header = {"alg": "RS256", "kid": "k", "typ": "at+jwt"}
    fitted = fit_to_budget(
        "access_token", header, {"sub": "u"}, {"b": (full, compact)}, 600, "RS256"
    )
    assert fitted["b"] == compact
