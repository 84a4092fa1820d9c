"""Feature flags in the access token and Kinde's Account API; properties and single permissions.

Alice belongs to Acme and Globex. Flags are set through the Management API; her tokens carry
Kinde's ``feature_flags`` claim with the value she gets where she signed in (her own override,
else her organization's, else the default), and the Account API answers the same, current as of
the request. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest

from claimflow.app import create_app
from claimflow.services import Services, build_services
from claimflow.tokens.reserved import ACCESS_TOKEN_RESERVED, is_reserved
from tests.account.conftest import user_access_token
from tests.conftest import ISSUER, make_settings
from tests.helpers import management_client
from tests.oidc.flow import Business, exchange, seed_business, sign_in_for_code


@dataclass(frozen=True)
class Flagged:
    http: httpx.AsyncClient
    api_headers: dict[str, str]
    biz: Business

    async def manage(self, method: str, url: str, **kwargs: Any) -> Any:
        response = await self.http.request(method, url, headers=self.api_headers, **kwargs)
        assert response.status_code in (200, 201), response.text
        return response.json()

    async def token(self, org_code: str | None) -> str:
        return await user_access_token(self.http, self.biz, org_code)

    async def account(self, path: str, token: str, **params: Any) -> httpx.Response:
        return await self.http.get(
            path, params=params, headers={"Authorization": f"Bearer {token}"}
        )


@pytest.fixture
async def any_services(any_db_url: str) -> AsyncIterator[Services]:
    built = build_services(make_settings(any_db_url, workflow_time_limit_seconds=30.0))
    yield built
    await built.close()


@pytest.fixture
async def flagged(any_services: Services) -> AsyncIterator[Flagged]:
    """Alice's business with three flags: Acme overrides two, Alice herself one."""
    transport = httpx.ASGITransport(app=create_app(services=any_services))
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        biz = await seed_business(any_services)
        world = Flagged(http, await management_client(http, any_services), biz)
        for key, flag_type, default, level in (
            ("dark_mode", "bool", "false", "usr"),
            ("max_projects", "int", "3", "org"),
            ("theme", "str", "blue", "usr"),
        ):
            body = {
                "name": key.replace("_", " ").title(),
                "key": key,
                "type": flag_type,
                "default_value": default,
                "allow_override_level": level,
            }
            await world.manage("POST", "/api/v1/feature_flags", json=body)
        acme = f"/api/v1/organizations/{biz.org_code}/feature_flags"
        await world.manage("PATCH", f"{acme}/max_projects", params={"value": "25"})
        await world.manage("PATCH", f"{acme}/theme", params={"value": "pink"})
        await world.manage(
            "PATCH",
            f"/api/v1/users/{biz.user_id}/feature_flags/dark_mode",
            params={"value": "true"},
        )
        yield world


def claims_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


async def test_the_access_token_carries_kindes_feature_flags_claim(flagged: Flagged) -> None:
    acme = claims_of(await flagged.token(flagged.biz.org_code))["feature_flags"]
    assert acme == {
        "dark_mode": {"t": "b", "v": True},
        "max_projects": {"t": "i", "v": 25},
        "theme": {"t": "s", "v": "pink"},
    }
    globex = claims_of(await flagged.token(flagged.biz.other_org_code))["feature_flags"]
    assert globex == {
        "dark_mode": {"t": "b", "v": True},
        "max_projects": {"t": "i", "v": 3},
        "theme": {"t": "s", "v": "blue"},
    }
    personal = claims_of(await flagged.token(None))["feature_flags"]
    assert personal["dark_mode"]["v"] is True and personal["max_projects"]["v"] == 3


async def test_a_refresh_carries_flags_changed_since_sign_in(flagged: Flagged) -> None:
    code = (await sign_in_for_code(flagged.http, flagged.biz, org_code=flagged.biz.org_code))[
        "code"
    ]
    tokens = (await exchange(flagged.http, flagged.biz, code)).json()
    await flagged.manage(
        "PATCH",
        f"/api/v1/organizations/{flagged.biz.org_code}/feature_flags/max_projects",
        params={"value": "40"},
    )
    refreshed = await flagged.http.post(
        "/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": flagged.biz.web_client_id,
            "client_secret": flagged.biz.web_secret,
        },
    )
    assert refreshed.status_code == 200, refreshed.text
    claim = claims_of(refreshed.json()["access_token"])["feature_flags"]
    assert claim["max_projects"] == {"t": "i", "v": 40}


async def test_the_account_api_lists_the_same_flags_on_every_page(flagged: Flagged) -> None:
    token = await flagged.token(flagged.biz.org_code)
    claim = claims_of(token)["feature_flags"]
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"page_size": 2}
    while True:
        response = await flagged.account("/account_api/v1/feature_flags", token, **params)
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["data"]["feature_flags"]
        if not body["metadata"]["has_more"]:
            break
        params["starting_after"] = body["metadata"]["next_page_starting_after"]
    by_key = {item["key"]: item for item in items}
    assert {key: item["value"] for key, item in by_key.items()} == {
        key: entry["v"] for key, entry in claim.items()
    }
    assert by_key["dark_mode"]["type"] == "boolean" and by_key["max_projects"]["type"] == "integer"
    assert by_key["theme"] == {
        "id": by_key["theme"]["id"],
        "name": "Theme",
        "key": "theme",
        "type": "string",
        "value": "pink",
    }


async def test_the_account_api_sees_a_change_before_the_token_does(flagged: Flagged) -> None:
    token = await flagged.token(flagged.biz.org_code)
    await flagged.manage("DELETE", f"/api/v1/organizations/{flagged.biz.org_code}/feature_flags")
    body = (await flagged.account("/account_api/v1/feature_flags", token)).json()
    values = {f["key"]: f["value"] for f in body["data"]["feature_flags"]}
    assert values == {"dark_mode": True, "max_projects": 3, "theme": "blue"}
    assert claims_of(token)["feature_flags"]["theme"]["v"] == "pink"


def test_a_workflow_cannot_forge_the_feature_flags_claim() -> None:
    assert is_reserved("feature_flags", ACCESS_TOKEN_RESERVED)
    assert is_reserved("Feature_Flags ", ACCESS_TOKEN_RESERVED)


async def test_the_account_api_lists_the_users_properties(flagged: Flagged) -> None:
    for key, context in (("town", "usr"), ("nickname", "usr"), ("industry", "org")):
        await flagged.manage(
            "POST",
            "/api/v1/properties",
            json={
                "name": key.title(),
                "key": key,
                "type": "single_line_text",
                "context": context,
                "is_private": False,
                "category_id": "cat_1",
            },
        )
    await flagged.manage(
        "PATCH",
        f"/api/v1/users/{flagged.biz.user_id}/properties",
        json={"properties": {"town": "Staines"}},
    )
    token = await flagged.token(flagged.biz.org_code)
    response = await flagged.account("/account_api/v1/properties", token)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["metadata"] == {"has_more": False}
    assert {p["key"]: p["value"] for p in body["data"]["properties"]} == {
        "town": "Staines",
        "nickname": None,
    }


async def test_one_permission_is_checked_in_the_tokens_organization(flagged: Flagged) -> None:
    acme = await flagged.token(flagged.biz.org_code)
    granted = (await flagged.account("/account_api/v1/permission/read:reports", acme)).json()
    assert granted["permissionKey"] == "read:reports" and granted["isGranted"] is True
    assert granted["orgCode"] == flagged.biz.org_code
    assert granted["data"] == {
        "permission_key": "read:reports",
        "org_code": flagged.biz.org_code,
        "is_granted": True,
    }
    other = (await flagged.account("/account_api/v1/permission/write:reports", acme)).json()
    assert other["isGranted"] is False
    globex = await flagged.token(flagged.biz.other_org_code)
    elsewhere = (await flagged.account("/account_api/v1/permission/read:reports", globex)).json()
    assert elsewhere["isGranted"] is False and elsewhere["orgCode"] == flagged.biz.other_org_code
    personal = await flagged.token(None)
    alone = (await flagged.account("/account_api/v1/permission/read:reports", personal)).json()
    assert alone["isGranted"] is False and alone["orgCode"] is None
    anonymous = await flagged.http.get("/account_api/v1/permission/read:reports")
    assert anonymous.status_code == 401
    bad_key = await flagged.account("/account_api/v1/permission/has space", acme)
    assert bad_key.status_code == 400
