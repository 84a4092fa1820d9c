"""The billing catalogue extension: features, plans with prices, customers."""

from __future__ import annotations

import httpx

from claimflow.services import Services
from tests.helpers import management_client
from tests.management.catalogue import make_org, make_plan, make_user, ok


async def test_features_create_read_update(any_api: httpx.AsyncClient) -> None:
    api = any_api
    created = await ok(
        await api.post(
            "/api/v1/billing/features", json={"code": "sso", "name": "SSO", "kind": "boolean"}
        ),
        201,
    )
    assert created == {"feature": {"code": "sso", "name": "SSO", "kind": "boolean"}}
    response = await api.post(
        "/api/v1/billing/features", json={"code": "sso", "name": "Again", "kind": "boolean"}
    )
    assert response.status_code == 409
    updated = await ok(
        await api.patch("/api/v1/billing/features/sso", json={"name": "Single sign-on"})
    )
    assert updated["feature"]["name"] == "Single sign-on"
    listed = await ok(await api.get("/api/v1/billing/features"))
    assert [f["code"] for f in listed["features"]] == ["sso"]
    assert (await api.get("/api/v1/billing/features/nope")).status_code == 404


async def test_plan_prices_change_entitlements_and_notify_customers(
    api: httpx.AsyncClient, services: Services
) -> None:
    heard: list[frozenset[str]] = []

    async def listener(ids: frozenset[str]) -> None:
        heard.append(ids)

    services.billing_changes.subscribe(listener)
    await make_plan(api, "pro", {"seats": 5})
    plan = await ok(await api.get("/api/v1/billing/plans/pro"))
    assert plan["plan"]["prices"][0]["entitlement_limit_max"] == 5
    customer = (await make_org(api, "pro"))["billing_customer_id"]
    heard.clear()
    prices = [{"feature_code": "seats", "price_name": "Seats", "entitlement_limit_max": 25}]
    updated = await ok(await api.patch("/api/v1/billing/plans/pro", json={"prices": prices}))
    assert updated["plan"]["prices"][0]["entitlement_limit_max"] == 25
    assert heard == [frozenset({customer})]
    entitlements = await ok(
        await api.get("/api/v1/billing/entitlements", params={"customer_id": customer})
    )
    assert entitlements["entitlements"][0]["entitlement_limit_max"] == 25

    await ok(await api.patch("/api/v1/billing/features/seats", json={"name": "Team seats"}))
    assert heard[-1] == frozenset({customer})
    assert [p["code"] for p in (await ok(await api.get("/api/v1/billing/plans")))["plans"]] == [
        "pro"
    ]


async def test_plan_refuses_unknown_features_and_bad_limits(api: httpx.AsyncClient) -> None:
    await make_plan(api, "base", {"seats": 1})
    for prices in (
        [{"feature_code": "nope", "price_name": "x"}],
        [
            {
                "feature_code": "seats",
                "price_name": "x",
                "entitlement_limit_min": 5,
                "entitlement_limit_max": 1,
            }
        ],
        [
            {"feature_code": "seats", "price_name": "x"},
            {"feature_code": "seats", "price_name": "y"},
        ],
        [{"feature_code": "seats", "price_name": "x", "fixed_charge": -1}],
        [{"feature_code": "seats", "price_name": "x", "fixed_charge": "10"}],
        [{"feature_code": "seats", "price_name": "x", "fixed_charge": 1.5}],
    ):
        response = await api.post(
            "/api/v1/billing/plans", json={"code": "new", "name": "New", "prices": prices}
        )
        assert response.status_code == 400, prices
    assert (await api.get("/api/v1/billing/plans/new")).status_code == 404


async def test_customer_is_owned_exactly_once(api: httpx.AsyncClient) -> None:
    org = await ok(await api.post("/api/v1/organization", json={"name": "Acme"}))
    code = org["organization"]["code"]
    created = await ok(
        await api.post(
            "/api/v1/billing/customers", json={"org_code": code, "email": "b@acme.test"}
        ),
        201,
    )
    customer_id = created["customer"]["id"]
    again = await api.post(
        "/api/v1/billing/customers", json={"org_code": code, "email": "b@acme.test"}
    )
    assert again.status_code == 409 and again.json()["errors"][0]["code"] == "CUSTOMER_EXISTS"
    user_id = await make_user(api, "ada@example.com")
    both = await api.post(
        "/api/v1/billing/customers",
        json={"org_code": code, "user_id": user_id, "email": "x@y.test"},
    )
    assert both.status_code == 400
    unknown = await api.post(
        "/api/v1/billing/customers", json={"org_code": "org_none", "email": "x@y.test"}
    )
    assert unknown.status_code == 404
    fetched = await ok(await api.get(f"/api/v1/billing/customers/{customer_id}"))
    assert fetched["customer"]["org_code"] == code and fetched["customer"]["created_on"].endswith(
        "Z"
    )


async def test_catalogue_needs_billing_scopes(
    api: httpx.AsyncClient, client: httpx.AsyncClient, services: Services
) -> None:
    reader = await management_client(client, services, ["read:billing"])
    assert (await api.get("/api/v1/billing/plans", headers=reader)).status_code == 200
    response = await api.post(
        "/api/v1/billing/plans", json={"code": "x", "name": "x"}, headers=reader
    )
    assert response.status_code == 403
    assert "write:billing" in response.json()["errors"][0]["message"]


async def test_catalogue_is_documented_as_our_extension(api: httpx.AsyncClient) -> None:
    spec = await ok(await api.get("/openapi.json"))
    tags = spec["paths"]["/api/v1/billing/plans"]["post"]["tags"]
    assert tags == ["claimflow extension"]
    assert spec["paths"]["/api/v1/billing/entitlements"]["get"]["tags"] != ["claimflow extension"]
