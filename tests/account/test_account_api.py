"""Kinde's Account API read with the signed-in user's own access token.

Entitlements are the ``org_billing`` claim's data (the organization's for an organization sign-in,
the user's own for a personal one) on every page; roles and permissions are the member's.
"""

from __future__ import annotations

from typing import Any

import httpx
import jwt
import pytest

from claimflow.services import Services
from claimflow.store import organizations
from tests.account.conftest import ORG_FEATURES, seed_paying_business, user_access_token
from tests.helpers import management_client


async def all_pages(client: httpx.AsyncClient, path: str, token: str, page_size: int) -> list[Any]:
    """Follow ``metadata.next_page_starting_after`` as Kinde's clients do."""
    items: list[Any] = []
    params: dict[str, Any] = {"page_size": page_size}
    while True:
        response = await client.get(
            path, params=params, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        items.append(body["data"])
        if not body["metadata"]["has_more"]:
            return items
        params["starting_after"] = body["metadata"]["next_page_starting_after"]


async def test_organization_sign_in_reads_every_page_of_the_org_billing_claim(
    client: httpx.AsyncClient, services: Services
) -> None:
    paying = await seed_paying_business(services)
    token = await user_access_token(client, paying.biz, paying.biz.org_code)
    claim = jwt.decode(token, options={"verify_signature": False})["org_billing"]
    pages = await all_pages(client, "/account_api/v1/entitlements", token, page_size=5)
    assert len(pages) == 3
    entitlements = [e for page in pages for e in page["entitlements"]]
    assert {p["org_code"] for p in pages} == {paying.biz.org_code}
    assert pages[0]["plans"][0]["key"] == "team" and pages[0]["plans"][0]["name"] == "Team"
    assert sorted(e["feature_key"] for e in entitlements) == ORG_FEATURES
    assert claim["customer_id"] == paying.org_customer_id
    if "entitlements" in claim:  # the full form: the very same items
        assert {e["id"] for e in entitlements} == {e["id"] for e in claim["entitlements"]}
    else:  # compact: the same features and limits
        limits = {e["feature_key"]: e["entitlement_limit_max"] for e in entitlements}
        assert limits == {code: bounds[1] for code, bounds in claim["features"].items()}


async def test_personal_sign_in_reads_the_users_own_billing(
    client: httpx.AsyncClient, services: Services
) -> None:
    paying = await seed_paying_business(services)
    token = await user_access_token(client, paying.biz)
    response = await client.get(
        "/account_api/v1/entitlements", headers={"Authorization": f"Bearer {token}"}
    )
    body = response.json()
    assert "org_code" not in body["data"]
    assert [e["feature_key"] for e in body["data"]["entitlements"]] == ["personal_storage"]
    assert body["data"]["entitlements"][0]["unit_amount"] == 300
    assert body["metadata"] == {"has_more": False}


async def test_one_entitlement_by_feature_key_and_404_for_a_feature_not_on_the_plan(
    client: httpx.AsyncClient, services: Services
) -> None:
    paying = await seed_paying_business(services)
    headers = {
        "Authorization": f"Bearer {await user_access_token(client, paying.biz, paying.biz.org_code)}"
    }
    found = await client.get("/account_api/v1/entitlement/feature_03", headers=headers)
    assert found.status_code == 200
    assert found.json()["data"]["entitlement"]["entitlement_limit_max"] == 4
    assert found.json()["data"]["org_code"] == paying.biz.org_code
    missing = await client.get("/account_api/v1/entitlement/personal_storage", headers=headers)
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["code"] == "ENTITLEMENT_NOT_FOUND"


async def test_roles_and_permissions_are_the_members_in_the_tokens_organization(
    client: httpx.AsyncClient, services: Services
) -> None:
    paying = await seed_paying_business(services)
    headers = {
        "Authorization": f"Bearer {await user_access_token(client, paying.biz, paying.biz.org_code)}"
    }
    roles = (await client.get("/account_api/v1/roles", headers=headers)).json()
    assert [r["key"] for r in roles["data"]["roles"]] == ["admin"]
    assert roles["data"]["org_code"] == paying.biz.org_code
    permissions = (await client.get("/account_api/v1/permissions", headers=headers)).json()
    assert [p["key"] for p in permissions["data"]["permissions"]] == ["read:reports"]
    assert set(permissions["data"]["permissions"][0]) == {"id", "name", "key"}


@pytest.mark.parametrize("path", ["/account_api/v1/entitlements", "/account_api/v1/roles"])
async def test_a_management_token_or_no_token_is_refused(
    client: httpx.AsyncClient, services: Services, path: str
) -> None:
    m2m = await management_client(client, services)
    for headers in ({}, m2m, {"Authorization": "Bearer not-a-jwt"}):
        response = await client.get(path, headers=headers)
        assert response.status_code == 401
        assert response.json()["errors"][0]["code"] in {"TOKEN_REQUIRED", "TOKEN_INVALID"}


async def test_a_member_removed_after_sign_in_reads_nothing_of_the_organization(
    client: httpx.AsyncClient, services: Services
) -> None:
    paying = await seed_paying_business(services)
    token = await user_access_token(client, paying.biz, paying.biz.org_code)
    async with services.db.transaction() as conn:
        await organizations.remove_member(conn, paying.biz.org_code, paying.biz.user_id)
    response = await client.get(
        "/account_api/v1/entitlements", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "NOT_A_MEMBER"


async def test_a_stale_cursor_is_a_400_not_an_empty_page(
    client: httpx.AsyncClient, services: Services
) -> None:
    paying = await seed_paying_business(services)
    token = await user_access_token(client, paying.biz, paying.biz.org_code)
    response = await client.get(
        "/account_api/v1/entitlements",
        params={"starting_after": "entitlement_gone"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "PAGINATION_INVALID"
