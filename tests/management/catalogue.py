"""Set-up steps the Management API tests share, done through the public API itself."""

from __future__ import annotations

from typing import Any

import httpx


async def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


async def make_plan(
    api: httpx.AsyncClient, code: str, features: dict[str, int | None], kind: str = "limit"
) -> None:
    """A plan pricing each feature (created if new) with ``entitlement_limit_max`` = value."""
    for feature in features:
        response = await api.get(f"/api/v1/billing/features/{feature}")
        if response.status_code == 404:
            await ok(
                await api.post(
                    "/api/v1/billing/features",
                    json={"code": feature, "name": feature.title(), "kind": kind},
                ),
                201,
            )
    prices = [
        {
            "feature_code": f,
            "price_name": f"{code} {f}",
            "fixed_charge": 0,
            "entitlement_limit_max": m,
        }
        for f, m in features.items()
    ]
    await ok(
        await api.post(
            "/api/v1/billing/plans", json={"code": code, "name": code, "prices": prices}
        ),
        201,
    )


async def make_org(
    api: httpx.AsyncClient, plan_code: str | None = None, **extra: Any
) -> dict[str, Any]:
    """An organization with a billing customer (on ``plan_code`` if given)."""
    body: dict[str, Any] = {
        "name": "Acme",
        "is_create_billing_customer": True,
        "billing_email": "billing@acme.test",
    }
    if plan_code:
        body["billing_plan_code"] = plan_code
    body.update(extra)
    created = await ok(await api.post("/api/v1/organization", json=body))
    organization: dict[str, Any] = created["organization"]
    return organization


async def make_user(api: httpx.AsyncClient, email: str, org_code: str | None = None) -> str:
    body: dict[str, Any] = {
        "profile": {"given_name": "Ada", "family_name": "Lovelace"},
        "identities": [{"type": "email", "is_verified": True, "details": {"email": email}}],
    }
    if org_code:
        body["organization_code"] = org_code
    created = await ok(await api.post("/api/v1/user", json=body))
    user_id: str = created["id"]
    return user_id
