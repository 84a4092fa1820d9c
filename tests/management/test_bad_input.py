"""Hostile and malformed input gets a 4xx with Kinde's error envelope and writes nothing.

Issue 2, "Bad input": codes with ``&``, ``#``, ``/``, ``%00``, unicode or 10 kB strings, wrong
types, missing fields, duplicates, unknown plans, a customer owned twice. Run on SQLite and
PostgreSQL, since PostgreSQL refuses NUL bytes that SQLite would store.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
from sqlalchemy import func, select

from claimflow.services import Services
from claimflow.store import tables as t
from tests.management.catalogue import make_org, make_plan, make_user, ok

HOSTILE_CODES = [
    "a&b",
    "a#b",
    "a/b",
    "a\x00b",
    "zürich",
    "plané",
    "x" * 10_000,
    "",
    " ",
    "a b",
    "%00",
]
HOSTILE_TEXT = ["\x00", "a\x00b", "x" * 10_000, "\ud800", "line\nbreak", ""]
WRONG_TYPES: list[Any] = [1, 1.5, True, None, [], {}, ["a"]]


async def snapshot(services: Services) -> dict[str, int]:
    counted = {}
    async with services.db.connect() as conn:
        for table in (
            t.organizations,
            t.users,
            t.memberships,
            t.applications,
            t.features,
            t.plans,
            t.plan_prices,
            t.billing_customers,
            t.agreements,
            t.meter_usage,
        ):
            counted[table.name] = int(
                (await conn.execute(select(func.count()).select_from(table))).scalar_one()
            )
    return counted


def as_json(body: Any) -> dict[str, Any]:
    """Request arguments sending ``body`` as ASCII JSON, so lone surrogates go out as escapes."""
    return {"content": json.dumps(body).encode(), "headers": {"content-type": "application/json"}}


def refused(response: httpx.Response, *statuses: int) -> None:
    request = f"{response.request.method} {response.request.url}"[:200]
    assert 400 <= response.status_code < 500, (request, response.status_code, response.text[:300])
    if statuses:
        assert response.status_code in statuses, (
            request,
            response.status_code,
            response.text[:300],
        )
    assert response.headers["content-type"] == "application/json"
    errors = response.json()["errors"]
    assert isinstance(errors, list) and errors, request
    assert all(isinstance(e["code"], str) and isinstance(e["message"], str) for e in errors)


async def hostile_requests(api: httpx.AsyncClient, org: str, customer: str, user: str) -> None:
    for code in HOSTILE_CODES:
        raw = quote(code, safe="")
        refused(await api.get("/api/v1/organization", params={"code": code}))
        refused(await api.get("/api/v1/user", params={"id": code}))
        refused(await api.get("/api/v1/billing/entitlements", params={"customer_id": code}))
        refused(
            await api.get(
                "/api/v1/billing/entitlements",
                params={"customer_id": customer, "starting_after": code},
            )
        )
        if raw:  # an empty path segment is a different route (FastAPI redirects the slash)
            refused(await api.get("/api/v1/billing/plans/" + raw))
            refused(await api.delete("/api/v1/organization/" + raw))
            refused(await api.patch("/api/v1/organization/" + raw, json={"name": "x"}))
        refused(
            await api.post(
                "/api/v1/billing/features", json={"code": code, "name": "n", "kind": "boolean"}
            ),
            400,
        )
        refused(await api.post("/api/v1/billing/plans", json={"code": code, "name": "n"}), 400)
        refused(
            await api.post(
                "/api/v1/billing/agreements", json={"customer_id": customer, "plan_code": code}
            )
        )
        refused(
            await api.post(
                "/api/v1/billing/customers", json={"org_code": code, "email": "a@b.test"}
            )
        )
        refused(
            await api.post(f"/api/v1/organizations/{org}/users", json={"users": [{"id": code}]})
        )
        if code.strip():
            refused(await api.get("/api/v1/users", params={"user_id": code + ",kp_x"}))
    for text in HOSTILE_TEXT:
        identity = {"identities": [{"type": "email", "details": {"email": text}}]}
        feature = {"code": "ok", "name": text, "kind": "limit"}
        refused(await api.post("/api/v1/organization", **as_json({"name": text})), 400)
        refused(
            await api.patch("/api/v1/user", params={"id": user}, **as_json({"given_name": text})),
            400,
        )
        refused(await api.post("/api/v1/billing/features", **as_json(feature)), 400)
        refused(await api.post("/api/v1/user", **as_json(identity)), 400)
        if text.isascii():
            refused(await api.get("/api/v1/users", params={"email": text + "@x.test"}))
    for value in WRONG_TYPES:
        refused(await api.post("/api/v1/organization", json={"name": value}), 400)
        refused(
            await api.post(
                "/api/v1/organization",
                json={
                    "name": "A",
                    "is_create_billing_customer": "true" if value is True else value or "yes",
                },
            ),
            400,
        )
        refused(
            await api.post(
                "/api/v1/billing/features", json={"code": "f", "name": "F", "kind": value}
            ),
            400,
        )
        refused(
            await api.post(
                "/api/v1/billing/plans", json={"code": "p", "name": "P", "prices": value or "x"}
            ),
            400,
        )
        refused(
            await api.post(
                "/api/v1/billing/agreements", json={"customer_id": customer, "plan_code": value}
            ),
            400,
        )
        if value != 1:
            refused(await api.get("/api/v1/organizations", params={"page_size": str(value)}), 400)
    bodies: list[Any] = [[], "text", 1, None, {"unexpected": True}]
    for body in bodies:
        refused(await api.post("/api/v1/billing/plans", json=body), 400)
        refused(await api.post("/api/v1/billing/agreements", json=body), 400)
        refused(await api.post("/api/v1/applications", json=body), 400)
    refused(
        await api.post(
            "/api/v1/organization",
            content=b"{not json",
            headers={"content-type": "application/json"},
        ),
        400,
    )
    refused(
        await api.post(
            "/api/v1/organization",
            content=b"\xff\xfe",
            headers={"content-type": "application/json"},
        ),
        400,
    )
    refused(await api.get("/api/v1/billing/plans/a/b"), 404)
    refused(await api.get("/api/v1/organizations", params={"page_size": "0"}), 400)
    refused(
        await api.get("/api/v1/organizations", params={"page_size": "99999999999999999999"}), 400
    )
    refused(
        await api.get(
            "/api/v1/billing/entitlements", params={"customer_id": customer, "max_value": "-5"}
        ),
        400,
    )
    refused(
        await api.get(
            "/api/v1/billing/entitlements", params={"customer_id": customer, "expand": "billing"}
        ),
        400,
    )
    refused(await api.get("/api/v1/user", params={"id": user, "expand": "secrets"}), 400)
    refused(
        await api.post(
            "/api/v1/billing/plans",
            json={
                "code": "p",
                "name": "P",
                "prices": [{"feature_code": "seats", "price_name": "S", "fixed_charge": 10**30}],
            },
        ),
        400,
    )
    refused(
        await api.post(
            "/api/v1/billing/features", json={"code": "seats", "name": "Dup", "kind": "limit"}
        ),
        409,
    )
    refused(await api.post("/api/v1/billing/plans", json={"code": "free", "name": "Dup"}), 409)
    refused(
        await api.post(
            "/api/v1/user",
            json={"identities": [{"type": "email", "details": {"email": "taken@example.com"}}]},
        ),
        409,
    )
    refused(
        await api.post("/api/v1/billing/customers", json={"org_code": org, "email": "a@b.test"}),
        409,
    )
    refused(
        await api.post(
            "/api/v1/billing/agreements", json={"customer_id": customer, "plan_code": "unknown"}
        ),
        404,
    )


async def test_hostile_input_is_refused_with_the_envelope_and_writes_nothing(
    any_api: httpx.AsyncClient, any_services: Services
) -> None:
    await make_plan(any_api, "free", {"seats": 1})
    org = await make_org(any_api, "free")
    user = await make_user(any_api, "taken@example.com", org["code"])
    before = await snapshot(any_services)
    await hostile_requests(any_api, org["code"], org["billing_customer_id"], user)
    assert await snapshot(any_services) == before
    entitlements = await ok(
        await any_api.get(
            "/api/v1/billing/entitlements", params={"customer_id": org["billing_customer_id"]}
        )
    )
    assert [e["entitlement_limit_max"] for e in entitlements["entitlements"]] == [1]
