"""Attacks on the Account API's flags, properties and single permissions.

The Account API answers the browser with the signed-in user's access token. The attacks: read a
property its definition keeps private (Kinde's ``is_private``: "whether the property can be
included in id and access tokens", so the browser must not get it by another door), keep
reading an organization's flags and permissions after leaving it, and ask with odd keys. On
SQLite and PostgreSQL.
"""

from __future__ import annotations

from tests.account.test_feature_flags_and_properties import Flagged, any_services, flagged

__all__ = ["any_services", "flagged"]


async def _user_property(flagged: Flagged, key: str, *, private: bool) -> None:
    await flagged.manage(
        "POST",
        "/api/v1/properties",
        json={
            "name": key.title(),
            "key": key,
            "type": "single_line_text",
            "context": "usr",
            "is_private": private,
            "category_id": "cat_1",
        },
    )


async def test_account_api_exposes_a_private_property(flagged: Flagged) -> None:
    await _user_property(flagged, "risk_score", private=True)
    await _user_property(flagged, "town", private=False)
    await flagged.manage(
        "PATCH",
        f"/api/v1/users/{flagged.biz.user_id}/properties",
        json={"properties": {"risk_score": "fraud-suspect", "town": "Staines"}},
    )
    token = await flagged.token(flagged.biz.org_code)
    response = await flagged.account("/account_api/v1/properties", token)
    assert response.status_code == 200, response.text
    shown = {p["key"]: p["value"] for p in response.json()["data"]["properties"]}
    assert "risk_score" not in shown, "a private property reached the browser"
    assert "fraud-suspect" not in response.text
    assert shown == {"town": "Staines"}


async def test_removed_member_keeps_reading_the_organizations_flags(flagged: Flagged) -> None:
    token = await flagged.token(flagged.biz.org_code)
    for path in ("/account_api/v1/feature_flags", "/account_api/v1/permission/read:reports"):
        assert (await flagged.account(path, token)).status_code == 200
    await flagged.manage(
        "DELETE", f"/api/v1/organizations/{flagged.biz.org_code}/users/{flagged.biz.user_id}"
    )
    for path in (
        "/account_api/v1/feature_flags",
        "/account_api/v1/properties",
        "/account_api/v1/permission/read:reports",
    ):
        response = await flagged.account(path, token)
        assert response.status_code == 403, (path, response.text)
        assert response.json()["errors"][0]["code"] == "NOT_A_MEMBER"


async def test_account_api_odd_keys_and_parameters_are_4xx(flagged: Flagged) -> None:
    token = await flagged.token(flagged.biz.org_code)
    for path, params in (
        ("/account_api/v1/permission/" + "a" * 256, {}),
        ("/account_api/v1/permission/a%00b", {}),
        ("/account_api/v1/permission/%E2%80%AEx", {}),
        ("/account_api/v1/feature_flags", {"page_size": "-1"}),
        ("/account_api/v1/feature_flags", {"page_size": "9" * 30}),
        ("/account_api/v1/feature_flags", {"starting_after": "x\x00"}),
        ("/account_api/v1/properties", {"starting_after": "a" * 5000}),
        ("/account_api/v1/properties", {"page_size": "1e3"}),
    ):
        response = await flagged.account(path, token, **params)
        assert 400 <= response.status_code < 500, (path, params, response.text)
        assert "errors" in response.json() or "error" in response.json()
