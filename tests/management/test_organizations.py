"""Kinde's organization routes, with the billing fields of ``POST`` and ``expand=billing``."""

from __future__ import annotations

import httpx

from claimflow.services import Services
from claimflow.store import billing
from tests.management.catalogue import make_org, make_plan, ok


async def test_create_with_billing_customer_and_read_back_with_expand_billing(
    any_api: httpx.AsyncClient,
) -> None:
    api = any_api
    await make_plan(api, "pro", {"seats": 10})
    created = await ok(
        await api.post(
            "/api/v1/organization",
            json={
                "name": "Acme Corp",
                "handle": "acme_corp",
                "external_id": "ext-1",
                "is_create_billing_customer": True,
                "billing_email": "billing@acme.test",
                "billing_plan_code": "pro",
            },
        )
    )
    assert created["code"] == "OK"
    code = created["organization"]["code"]
    customer_id = created["organization"]["billing_customer_id"]
    assert code.startswith("org_") and customer_id.startswith("customer_")

    org = await ok(
        await api.get("/api/v1/organization", params={"code": code, "expand": "billing"})
    )
    assert org["name"] == "Acme Corp" and org["handle"] == "acme_corp"
    assert org["created_on"].endswith("Z")
    agreements = org["billing"]["agreements"]
    assert org["billing"]["billing_customer_id"] == customer_id
    assert [a["plan_code"] for a in agreements] == ["pro"]
    assert agreements[0]["agreement_id"].startswith("agreement_")

    without = await ok(await api.get("/api/v1/organization", params={"code": code}))
    assert "billing" not in without


async def test_organization_without_customer_has_no_billing(api: httpx.AsyncClient) -> None:
    created = await ok(await api.post("/api/v1/organization", json={"name": "Solo"}))
    assert "billing_customer_id" not in created["organization"]
    org = await ok(
        await api.get(
            "/api/v1/organization",
            params={"code": created["organization"]["code"], "expand": "billing"},
        )
    )
    assert "billing" not in org


async def test_plan_code_without_customer_and_unknown_plan_write_nothing(
    api: httpx.AsyncClient, services: Services
) -> None:
    response = await api.post(
        "/api/v1/organization", json={"name": "A", "billing_plan_code": "pro"}
    )
    assert response.status_code == 400
    response = await api.post(
        "/api/v1/organization",
        json={"name": "A", "is_create_billing_customer": True, "billing_plan_code": "nope"},
    )
    assert response.status_code == 404
    assert (await ok(await api.get("/api/v1/organizations")))["organizations"] == []
    async with services.db.connect() as conn:
        assert await billing.list_customers(conn) == []


async def test_organizations_page_with_next_token(api: httpx.AsyncClient) -> None:
    for i in range(7):
        await ok(await api.post("/api/v1/organization", json={"name": f"Org {i}"}))
    first = await ok(await api.get("/api/v1/organizations", params={"page_size": 5}))
    assert len(first["organizations"]) == 5 and "next_token" in first
    second = await ok(
        await api.get(
            "/api/v1/organizations", params={"page_size": 5, "next_token": first["next_token"]}
        )
    )
    assert len(second["organizations"]) == 2 and "next_token" not in second
    codes = [o["code"] for o in first["organizations"] + second["organizations"]]
    assert len(set(codes)) == 7


async def test_update_and_delete(api: httpx.AsyncClient, services: Services) -> None:
    heard: list[frozenset[str]] = []

    async def listener(ids: frozenset[str]) -> None:
        heard.append(ids)

    services.billing_changes.subscribe(listener)
    await make_plan(api, "pro", {"seats": 3})
    org = await make_org(api, "pro")
    code = org["code"]
    response = await api.patch(f"/api/v1/organization/{code}", json={"name": "Renamed"})
    assert await ok(response) == {"code": "OK", "message": "Success"}
    assert (await ok(await api.get("/api/v1/organization", params={"code": code})))[
        "name"
    ] == "Renamed"

    heard.clear()
    assert (await ok(await api.delete(f"/api/v1/organization/{code}")))["code"] == "OK"
    assert heard == [frozenset({org["billing_customer_id"]})]
    response = await api.get("/api/v1/organization", params={"code": code})
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "ORGANIZATION_INVALID"
    assert (await api.delete(f"/api/v1/organization/{code}")).status_code == 404


async def test_duplicate_handle_is_a_conflict(api: httpx.AsyncClient) -> None:
    await ok(await api.post("/api/v1/organization", json={"name": "A", "handle": "acme"}))
    response = await api.post("/api/v1/organization", json={"name": "B", "handle": "acme"})
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "ORGANIZATION_EXISTS"
