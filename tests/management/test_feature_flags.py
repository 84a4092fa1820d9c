"""Kinde's feature flags through the Management API, on SQLite and PostgreSQL.

A flag's value is parsed by its type when written; overrides go only where the flag's
``allow_override_level`` allows; a write after which some token's ``feature_flags`` claim could
exceed its bound is refused and leaves nothing behind.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import func, select

from claimflow.domain import FeatureFlag, FlagType, OverrideLevel
from claimflow.domain.feature_flags import FEATURE_FLAGS_CLAIM_MAX_BYTES, worst_case_claim_bytes
from claimflow.services import Services
from claimflow.store import tables as t
from tests.management.catalogue import make_org, make_user, ok


async def create_flag(
    api: httpx.AsyncClient, key: str, flag_type: str, default: str, **extra: Any
) -> None:
    body = {"name": key.title(), "key": key, "type": flag_type, "default_value": default, **extra}
    await ok(await api.post("/api/v1/feature_flags", json=body), 201)


async def org_flags(api: httpx.AsyncClient, org_code: str) -> dict[str, Any]:
    body = await ok(await api.get(f"/api/v1/organizations/{org_code}/feature_flags"))
    flags: dict[str, Any] = body["feature_flags"]
    return flags


def error_code(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    code: str = response.json()["errors"][0]["code"]
    return code


async def test_organization_overrides_replace_the_default_where_the_flag_allows(
    any_api: httpx.AsyncClient,
) -> None:
    org = (await make_org(any_api))["code"]
    await create_flag(any_api, "dark_mode", "bool", "false", allow_override_level="usr")
    await create_flag(any_api, "max_projects", "int", "5", allow_override_level="org")
    await create_flag(any_api, "theme", "str", "blue")
    assert await org_flags(any_api, org) == {
        "dark_mode": {"type": "bool", "value": "false"},
        "max_projects": {"type": "int", "value": "5"},
        "theme": {"type": "str", "value": "blue"},
    }
    base = f"/api/v1/organizations/{org}/feature_flags"
    await ok(await any_api.patch(f"{base}/dark_mode", params={"value": "TRUE"}))
    await ok(await any_api.patch(f"{base}/max_projects", params={"value": "20"}))
    refused = await any_api.patch(f"{base}/theme", params={"value": "red"})
    assert error_code(refused, 400) == "FLAG_OVERRIDE_NOT_ALLOWED"
    not_a_number = await any_api.patch(f"{base}/max_projects", params={"value": "lots"})
    assert error_code(not_a_number, 400) == "FLAG_VALUE_INVALID"
    flags = await org_flags(any_api, org)
    assert flags["dark_mode"]["value"] == "true" and flags["max_projects"]["value"] == "20"
    assert flags["theme"]["value"] == "blue"

    await ok(await any_api.delete(f"{base}/max_projects"))
    assert (await org_flags(any_api, org))["max_projects"]["value"] == "5"
    await ok(await any_api.delete(base))
    assert (await org_flags(any_api, org))["dark_mode"]["value"] == "false"

    missing = await any_api.patch(f"{base}/nope", params={"value": "1"})
    assert error_code(missing, 404) == "FLAG_NOT_FOUND"
    no_org = await any_api.get("/api/v1/organizations/org_none/feature_flags")
    assert no_org.status_code == 404


async def test_user_overrides_need_the_user_level(any_api: httpx.AsyncClient) -> None:
    user = await make_user(any_api, "ada@example.com")
    await create_flag(any_api, "beta", "bool", "false", allow_override_level="usr")
    await create_flag(any_api, "limit", "int", "1", allow_override_level="org")
    await ok(
        await any_api.patch(f"/api/v1/users/{user}/feature_flags/beta", params={"value": "true"})
    )
    refused = await any_api.patch(
        f"/api/v1/users/{user}/feature_flags/limit", params={"value": "2"}
    )
    assert error_code(refused, 400) == "FLAG_OVERRIDE_NOT_ALLOWED"
    unknown = await any_api.patch(
        "/api/v1/users/kp_none/feature_flags/beta", params={"value": "true"}
    )
    assert unknown.status_code == 404


async def test_replacing_a_flag_drops_the_overrides_its_new_type_or_level_rules_out(
    any_api: httpx.AsyncClient,
) -> None:
    org = (await make_org(any_api))["code"]
    await create_flag(any_api, "seats", "int", "3", allow_override_level="org")
    await create_flag(any_api, "plan_badge", "str", "none", allow_override_level="org")
    base = f"/api/v1/organizations/{org}/feature_flags"
    await ok(await any_api.patch(f"{base}/seats", params={"value": "9"}))
    await ok(await any_api.patch(f"{base}/plan_badge", params={"value": "gold"}))

    replace = {"name": "Seats", "description": "d", "allow_override_level": "org"}
    await ok(
        await any_api.put(
            "/api/v1/feature_flags/seats",
            params={**replace, "type": "bool", "default_value": "true"},
        )
    )
    replace_badge = {**replace, "name": "Badge", "type": "str", "default_value": "silver"}
    await ok(
        await any_api.put(
            "/api/v1/feature_flags/plan_badge",
            params={**replace_badge, "allow_override_level": "env"},
        )
    )
    flags = await org_flags(any_api, org)
    assert flags["seats"] == {"type": "bool", "value": "true"}
    assert flags["plan_badge"] == {"type": "str", "value": "silver"}

    bad_default = await any_api.put(
        "/api/v1/feature_flags/seats", params={**replace, "type": "int", "default_value": "x"}
    )
    assert error_code(bad_default, 400) == "FLAG_VALUE_INVALID"
    assert (await org_flags(any_api, org))["seats"] == {"type": "bool", "value": "true"}
    await ok(await any_api.delete("/api/v1/feature_flags/seats"))
    assert "seats" not in await org_flags(any_api, org)
    gone = await any_api.delete("/api/v1/feature_flags/seats")
    assert error_code(gone, 404) == "FLAG_NOT_FOUND"


async def test_a_duplicate_key_or_a_default_of_the_wrong_type_is_refused(
    any_api: httpx.AsyncClient,
) -> None:
    await create_flag(any_api, "beta", "bool", "false")
    duplicate = await any_api.post(
        "/api/v1/feature_flags",
        json={"name": "Beta", "key": "beta", "type": "str", "default_value": "x"},
    )
    assert error_code(duplicate, 409) == "FLAG_EXISTS"
    wrong = await any_api.post(
        "/api/v1/feature_flags",
        json={"name": "N", "key": "n", "type": "int", "default_value": "1.5"},
    )
    assert error_code(wrong, 400) == "FLAG_VALUE_INVALID"
    huge = await any_api.post(
        "/api/v1/feature_flags",
        json={"name": "N", "key": "n", "type": "int", "default_value": str(2**60)},
    )
    assert error_code(huge, 400) == "FLAG_VALUE_INVALID"


async def test_a_write_that_could_overflow_the_claim_is_refused_and_writes_nothing(
    any_api: httpx.AsyncClient,
) -> None:
    """Flags are a base claim the size budget cannot shrink: their bound is kept at write time,
    counting the longest value any user could get (a default or any override)."""
    org = (await make_org(any_api))["code"]
    created = 0
    while True:
        body = {
            "name": f"Banner {created}",
            "key": f"banner_{created}",
            "type": "str",
            "default_value": "x" * 60,
            "allow_override_level": "org",
        }
        response = await any_api.post("/api/v1/feature_flags", json=body)
        if response.status_code != 201:
            break
        created += 1
    assert error_code(response, 400) == "FEATURE_FLAGS_TOO_LARGE"
    assert 5 < created < FEATURE_FLAGS_CLAIM_MAX_BYTES // 60
    flags = await org_flags(any_api, org)
    assert f"banner_{created}" not in flags and len(flags) == created
    refused = await any_api.patch(
        f"/api/v1/organizations/{org}/feature_flags/banner_0", params={"value": "y" * 255}
    )
    assert error_code(refused, 400) == "FEATURE_FLAGS_TOO_LARGE"
    assert (await org_flags(any_api, org))["banner_0"]["value"] == "x" * 60
    shorter = await any_api.patch(
        f"/api/v1/organizations/{org}/feature_flags/banner_0", params={"value": "y" * 30}
    )
    assert shorter.status_code == 200, shorter.text


async def test_control_characters_are_refused_not_stored(any_api: httpx.AsyncClient) -> None:
    """PostgreSQL refuses NUL bytes: each must be a 400 before the database sees it."""
    await create_flag(any_api, "theme", "str", "blue", allow_override_level="org")
    org = (await make_org(any_api))["code"]
    replace = {"type": "str", "allow_override_level": "org", "default_value": "x"}
    for params in ({"name": "a\x00b"}, {"name": "ok", "description": "d\x00"}):
        response = await any_api.put("/api/v1/feature_flags/theme", params={**replace, **params})
        assert response.status_code == 400, response.text
    override = await any_api.patch(
        f"/api/v1/organizations/{org}/feature_flags/theme", params={"value": "a\x00"}
    )
    assert error_code(override, 400) == "FLAG_VALUE_INVALID"
    assert (await org_flags(any_api, org))["theme"]["value"] == "blue"


async def test_deleting_an_organization_or_user_deletes_their_overrides(
    any_api: httpx.AsyncClient, any_services: Services
) -> None:
    await create_flag(any_api, "theme", "str", "blue", allow_override_level="usr")
    org = (await make_org(any_api))["code"]
    user = await make_user(any_api, "ada@example.com", org)
    await ok(
        await any_api.patch(
            f"/api/v1/organizations/{org}/feature_flags/theme", params={"value": "red"}
        )
    )
    await ok(
        await any_api.patch(f"/api/v1/users/{user}/feature_flags/theme", params={"value": "x"})
    )
    await ok(await any_api.delete("/api/v1/user", params={"id": user}))
    await ok(await any_api.delete(f"/api/v1/organization/{org}"))
    async with any_services.db.connect() as conn:
        for table in (t.organization_feature_flags, t.user_feature_flags):
            count = (await conn.execute(select(func.count()).select_from(table))).scalar_one()
            assert count == 0, table.name


def _claim_size(values: dict[str, str]) -> int:
    flags = [
        FeatureFlag(
            id=f"flag_{key}",
            key=key,
            name=key,
            type=FlagType.STRING,
            default_value=value,
            allow_override_level=OverrideLevel.ORGANIZATION,
        )
        for key, value in values.items()
    ]
    return worst_case_claim_bytes((f, f.default_value) for f in flags)


async def test_concurrent_overrides_cannot_together_overflow_the_claim(
    any_api: httpx.AsyncClient,
) -> None:
    """Each override fits alone, not both: whichever commits second must see the first."""
    org = (await make_org(any_api))["code"]
    values = {"left": "", "right": ""}
    filler = 0
    while (
        _claim_size(values | {"left": "x" * 255, "right": "x" * 255})
        <= FEATURE_FLAGS_CLAIM_MAX_BYTES
    ):
        values[f"filler_{filler}"] = "f" * 120
        filler += 1
    while _claim_size(values | {"left": "x" * 255}) > FEATURE_FLAGS_CLAIM_MAX_BYTES:
        last = f"filler_{filler - 1}"
        values[last] = values[last][:-1]
    for key, value in values.items():
        await create_flag(any_api, key, "str", value or "-", allow_override_level="org")
    base = f"/api/v1/organizations/{org}/feature_flags"
    answers = await asyncio.gather(
        any_api.patch(f"{base}/left", params={"value": "x" * 255}),
        any_api.patch(f"{base}/right", params={"value": "x" * 255}),
    )
    assert sorted(r.status_code for r in answers) == [200, 400], [r.text for r in answers]
    refused = next(r for r in answers if r.status_code == 400)
    assert refused.json()["errors"][0]["code"] == "FEATURE_FLAGS_TOO_LARGE"
