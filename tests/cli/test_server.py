"""``claimflow serve`` as a real process: the issue's "Done means" script over HTTP.

``claimflow init --json`` gives the credentials; everything else is plain HTTP with httpx, as a
user's own script would do it: an M2M token, a plan with features, an organization with a
billing customer on that plan, a user in it, and its entitlements and agreements read back.
"""

from __future__ import annotations

import json

import httpx

from tests.cli.conftest import Invoke


def test_serve_answers_the_management_quickstart_over_http(
    invoke: Invoke, cli_db_url: str, start_server
) -> None:  # type: ignore[no-untyped-def]
    init = invoke("init", "--json")
    assert init.exit_code == 0, init.output
    credentials = json.loads(init.stdout)
    base_url, _process = start_server("serve")

    with httpx.Client(base_url=base_url) as http:
        token = http.post(
            "/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": credentials["client_id"],
                "client_secret": credentials["client_secret"],
                "audience": base_url + "/api",
            },
        )
        assert token.status_code == 200, token.text
        http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

        for feature in (
            {"code": "sso", "name": "Single sign-on", "kind": "boolean"},
            {"code": "seats", "name": "Seats", "kind": "limit"},
        ):
            assert http.post("/api/v1/billing/features", json=feature).status_code == 201
        plan = {
            "code": "pro",
            "name": "Pro",
            "prices": [
                {"feature_code": "sso", "price_name": "SSO", "fixed_charge": 4900},
                {
                    "feature_code": "seats",
                    "price_name": "Seats",
                    "unit_amount": 1200,
                    "entitlement_limit_max": 25,
                },
            ],
        }
        assert http.post("/api/v1/billing/plans", json=plan).status_code == 201

        created = http.post(
            "/api/v1/organization",
            json={
                "name": "Quickstart Ltd",
                "is_create_billing_customer": True,
                "billing_email": "billing@quickstart.test",
                "billing_plan_code": "pro",
            },
        )
        assert created.status_code == 200, created.text
        org_code = created.json()["organization"]["code"]

        user = http.post(
            "/api/v1/user",
            json={
                "profile": {"given_name": "Quinn", "family_name": "Start"},
                "organization_code": org_code,
                "identities": [{"type": "email", "details": {"email": "quinn@quickstart.test"}}],
            },
        )
        assert user.status_code == 200, user.text
        members = http.get(f"/api/v1/organizations/{org_code}/users")
        assert user.json()["id"] in {m["id"] for m in members.json()["organization_users"]}

        org = http.get("/api/v1/organization", params={"code": org_code, "expand": "billing"})
        customer_id = org.json()["billing"]["billing_customer_id"]
        entitlements = http.get(
            "/api/v1/billing/entitlements", params={"customer_id": customer_id, "expand": "plans"}
        ).json()
        assert {e["feature_code"] for e in entitlements["entitlements"]} == {"sso", "seats"}
        assert [p["code"] for p in entitlements["plans"]] == ["pro"]
        agreements = http.get("/api/v1/billing/agreements", params={"customer_id": customer_id})
        assert [a["plan_code"] for a in agreements.json()["agreements"]] == ["pro"]


def test_serve_refuses_several_workers_on_sqlite(invoke: Invoke, cli_db_url: str) -> None:
    result = invoke("serve", "--workers", "2")
    assert result.exit_code == 2
    assert "PostgreSQL" in result.stderr
