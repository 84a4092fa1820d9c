"""Kinde's billing routes: entitlements paging, agreements, plan changes, metered usage."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from claimflow.services import Services
from tests.management.catalogue import make_org, make_plan, ok


async def entitlements(api: httpx.AsyncClient, customer_id: str, **params: str) -> Any:
    return await ok(
        await api.get("/api/v1/billing/entitlements", params={"customer_id": customer_id, **params})
    )


async def test_entitlements_page_through_every_feature(api: httpx.AsyncClient) -> None:
    await make_plan(api, "big", {f"feature_{i:02d}": i for i in range(23)})
    customer = (await make_org(api, "big"))["billing_customer_id"]

    first = await entitlements(api, customer)
    assert len(first["entitlements"]) == 10 and first["has_more"] is True
    seen = list(first["entitlements"])
    while (
        seen
        and (page := await entitlements(api, customer, starting_after=seen[-1]["id"]))[
            "entitlements"
        ]
    ):
        seen += page["entitlements"]
        if not page["has_more"]:
            break
    assert sorted(e["feature_code"] for e in seen) == [f"feature_{i:02d}" for i in range(23)]
    assert len({e["id"] for e in seen}) == 23

    back = await entitlements(api, customer, ending_before=seen[12]["id"], page_size="5")
    assert [e["id"] for e in back["entitlements"]] == [e["id"] for e in seen[7:12]]
    assert back["has_more"] is True
    big = await entitlements(api, customer, page_size="500")
    assert len(big["entitlements"]) == 23 and big["has_more"] is False


async def test_expand_plans_and_max_value(api: httpx.AsyncClient) -> None:
    await make_plan(api, "pro", {"seats": None, "projects": 5})
    customer = (await make_org(api, "pro"))["billing_customer_id"]
    body = await entitlements(api, customer, expand="plans", max_value="1000")
    limits = {e["feature_code"]: e["entitlement_limit_max"] for e in body["entitlements"]}
    assert limits == {"seats": 1000, "projects": 5}
    assert [p["code"] for p in body["plans"]] == ["pro"]
    assert body["plans"][0]["subscribed_on"].endswith("Z")
    plain = await entitlements(api, customer)
    assert "plans" not in plain
    assert (
        "entitlement_limit_max"
        not in {e["feature_code"]: e for e in plain["entitlements"]}["seats"]
    )


async def test_plan_change_through_agreements_changes_entitlements_at_once(
    any_api: httpx.AsyncClient, any_services: Services
) -> None:
    api = any_api
    heard: list[frozenset[str]] = []

    async def listener(ids: frozenset[str]) -> None:
        heard.append(ids)

    any_services.billing_changes.subscribe(listener)
    await make_plan(api, "free", {"seats": 1})
    await make_plan(api, "pro", {"seats": 50, "sso": None})
    customer = (await make_org(api, "free"))["billing_customer_id"]
    assert heard == [frozenset({customer})]
    before = await entitlements(api, customer)
    assert [(e["feature_code"], e["entitlement_limit_max"]) for e in before["entitlements"]] == [
        ("seats", 1)
    ]

    await ok(
        await api.post(
            "/api/v1/billing/agreements", json={"customer_id": customer, "plan_code": "pro"}
        )
    )
    assert heard[-1] == frozenset({customer})
    after = await entitlements(api, customer)
    assert sorted(e["feature_code"] for e in after["entitlements"]) == ["seats", "sso"]
    agreements = await ok(
        await api.get("/api/v1/billing/agreements", params={"customer_id": customer})
    )
    assert [a["plan_code"] for a in agreements["agreements"]] == ["pro"]
    assert agreements["has_more"] is False
    assert {e["feature_code"] for e in agreements["agreements"][0]["entitlements"]} == {
        "seats",
        "sso",
    }


async def test_agreement_for_unknown_plan_or_customer_writes_nothing(
    any_api: httpx.AsyncClient,
) -> None:
    api = any_api
    await make_plan(api, "free", {"seats": 1})
    customer = (await make_org(api, "free"))["billing_customer_id"]
    response = await api.post(
        "/api/v1/billing/agreements", json={"customer_id": customer, "plan_code": "nope"}
    )
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "PLAN_INVALID"
    response = await api.post(
        "/api/v1/billing/agreements", json={"customer_id": "customer_x", "plan_code": "free"}
    )
    assert response.status_code == 404
    agreements = await ok(
        await api.get("/api/v1/billing/agreements", params={"customer_id": customer})
    )
    assert [a["plan_code"] for a in agreements["agreements"]] == ["free"]


async def test_feature_filter_on_agreements_and_unknown_cursor(api: httpx.AsyncClient) -> None:
    await make_plan(api, "pro", {"seats": 5})
    customer = (await make_org(api, "pro"))["billing_customer_id"]
    params = {"customer_id": customer, "feature_code": "other"}
    assert (await ok(await api.get("/api/v1/billing/agreements", params=params)))[
        "agreements"
    ] == []
    response = await api.get(
        "/api/v1/billing/entitlements",
        params={"customer_id": customer, "starting_after": "entitlement_nope"},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "PAGINATION_INVALID"


async def test_meter_usage_needs_an_entitled_feature(api: httpx.AsyncClient) -> None:
    await make_plan(api, "metered", {"api_calls": None}, kind="metered")
    customer = (await make_org(api, "metered"))["billing_customer_id"]
    agreements = await ok(
        await api.get("/api/v1/billing/agreements", params={"customer_id": customer})
    )
    agreement_id = agreements["agreements"][0]["id"]
    body = {
        "customer_agreement_id": agreement_id,
        "billing_feature_code": "api_calls",
        "meter_value": "42",
        "meter_usage_timestamp": "2026-11-25T10:00:00+02:00",
    }
    assert await ok(await api.post("/api/v1/billing/meter_usage", json=body)) == {
        "code": "OK",
        "message": "Success",
    }
    response = await api.post(
        "/api/v1/billing/meter_usage", json={**body, "billing_feature_code": "seats"}
    )
    assert response.status_code == 400
    response = await api.post("/api/v1/billing/meter_usage", json={**body, "meter_value": "-1"})
    assert response.status_code == 400
    response = await api.post(
        "/api/v1/billing/meter_usage", json={**body, "meter_usage_timestamp": "2026-11-25T10:00:00"}
    )
    assert response.status_code == 400


async def test_concurrent_plan_changes_leave_exactly_one_active_agreement(
    any_api: httpx.AsyncClient,
) -> None:
    api = any_api
    for plan in ("a", "b", "c", "d"):
        await make_plan(api, plan, {"seats": 1})
    customer = (await make_org(api, "a"))["billing_customer_id"]
    responses = await asyncio.gather(
        *(
            api.post("/api/v1/billing/agreements", json={"customer_id": customer, "plan_code": p})
            for p in ("b", "c", "d", "b", "c", "d")
        )
    )
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    agreements = await ok(
        await api.get("/api/v1/billing/agreements", params={"customer_id": customer})
    )
    assert len(agreements["agreements"]) == 1
