"""Attacks on property values: a JSON number is how a value escapes the length bound.

Text values are bounded (2,000 characters) and refused with control characters; a number is
kept as its text, so an unbounded integer (Python parses up to 4,300 digits) would be stored
beyond that bound. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import httpx


async def _user_with_property(api: httpx.AsyncClient) -> str:
    created = await api.post(
        "/api/v1/properties",
        json={
            "name": "Seats",
            "key": "seats_note",
            "type": "single_line_text",
            "context": "usr",
            "is_private": False,
            "category_id": "cat_1",
        },
    )
    assert created.status_code == 201, created.text
    user = await api.post("/api/v1/user", json={"profile": {"given_name": "Ann"}})
    assert user.status_code == 200, user.text
    user_id: str = user.json()["id"]
    return user_id


async def test_integer_property_value_bypasses_the_length_bound(any_api: httpx.AsyncClient) -> None:
    user_id = await _user_with_property(any_api)
    huge = "9" * 4299
    attack = await any_api.patch(
        f"/api/v1/users/{user_id}/properties",
        content='{"properties": {"seats_note": ' + huge + "}}",
        headers={"content-type": "application/json"},
    )
    assert attack.status_code == 400, "a 4,299-digit number was stored as a property value"
    assert attack.json()["errors"][0]["code"] == "INVALID_REQUEST"
    listed = (await any_api.get(f"/api/v1/users/{user_id}/properties")).json()
    assert huge not in str(listed)

    fine = await any_api.patch(
        f"/api/v1/users/{user_id}/properties",
        json={"properties": {"seats_note": 2**53 - 1}},
    )
    assert fine.status_code == 200, fine.text
    listed = (await any_api.get(f"/api/v1/users/{user_id}/properties")).json()
    assert str(2**53 - 1) in str(listed)
