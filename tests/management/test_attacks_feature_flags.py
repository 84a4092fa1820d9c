"""Attacks on the ``feature_flags`` claim's size bound: concurrent writers, overrides.

Every flag write checks the largest claim any user could get against 1,024 bytes; the attack
sends many writes at once, each within the bound alone but not together (new flags, and
organization and user overrides that each lengthen one flag), then signs in. On SQLite and
PostgreSQL (where the writers must take turns for the check to hold).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest

from claimflow.app import create_app
from claimflow.domain.feature_flags import FEATURE_FLAGS_CLAIM_MAX_BYTES
from claimflow.services import Services
from tests.account.conftest import user_access_token
from tests.conftest import ISSUER
from tests.helpers import management_client
from tests.oidc.flow import Business, seed_business


@pytest.fixture
async def world(
    any_services: Services,
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str], Business]]:
    transport = httpx.ASGITransport(app=create_app(services=any_services))
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        biz = await seed_business(any_services)
        yield http, await management_client(http, any_services), biz


async def test_concurrent_flag_writes_overflow_the_feature_flags_claim(
    world: tuple[httpx.AsyncClient, dict[str, str], Business],
) -> None:
    http, api, biz = world

    def flag(i: int) -> dict[str, str]:
        return {
            "name": f"Flag {i}",
            "key": f"flag_{i}",
            "type": "str",
            "default_value": "x",
            "allow_override_level": "usr",
        }

    made = await asyncio.gather(
        *(http.post("/api/v1/feature_flags", json=flag(i), headers=api) for i in range(12))
    )
    assert all(r.status_code == 201 for r in made), [r.text for r in made]
    long_value = "v" * 200
    writes = [
        http.patch(
            f"/api/v1/organizations/{biz.org_code}/feature_flags/flag_{i}",
            params={"value": long_value},
            headers=api,
        )
        for i in range(0, 12, 2)
    ] + [
        http.patch(
            f"/api/v1/users/{biz.user_id}/feature_flags/flag_{i}",
            params={"value": long_value},
            headers=api,
        )
        for i in range(1, 12, 2)
    ]
    answers = await asyncio.gather(*writes)
    for answer in answers:
        assert answer.status_code in (200, 400), answer.text
        if answer.status_code == 400:
            assert answer.json()["errors"][0]["code"] == "FEATURE_FLAGS_TOO_LARGE"
    assert any(a.status_code == 400 for a in answers), "12 x 200 bytes fit in 1,024?"
    token = await user_access_token(http, biz, biz.org_code)
    claim = jwt.decode(token, options={"verify_signature": False})["feature_flags"]
    size = len(json.dumps(claim, separators=(",", ":")).encode())
    assert size <= FEATURE_FLAGS_CLAIM_MAX_BYTES, size


async def test_override_written_while_its_organization_is_deleted_is_a_5xx(
    world: tuple[httpx.AsyncClient, dict[str, str], Business],
) -> None:
    """An organization's flag override and property values written at the moment the
    organization is deleted: each answers 200 (written first, then deleted with it) or 404,
    never a 5xx from the foreign key. Before the fix most answered 500 on PostgreSQL."""
    http, api, _ = world
    flag = {"name": "F", "key": "f1", "type": "str", "default_value": "a"}
    made = await http.post(
        "/api/v1/feature_flags", json={**flag, "allow_override_level": "org"}, headers=api
    )
    assert made.status_code == 201, made.text
    prop = {"name": "P", "key": "p1", "type": "single_line_text", "context": "org"}
    made = await http.post(
        "/api/v1/properties",
        json={**prop, "is_private": False, "category_id": "cat_1"},
        headers=api,
    )
    assert made.status_code == 201, made.text
    for i in range(20):
        created = await http.post("/api/v1/organization", json={"name": f"O{i}"}, headers=api)
        org = created.json()["organization"]["code"]
        answers = await asyncio.gather(
            http.patch(
                f"/api/v1/organizations/{org}/feature_flags/f1",
                params={"value": "b"},
                headers=api,
            ),
            http.patch(
                f"/api/v1/organizations/{org}/properties",
                json={"properties": {"p1": "v"}},
                headers=api,
            ),
            http.put(
                f"/api/v1/organizations/{org}/properties/p1", params={"value": "w"}, headers=api
            ),
            http.delete(f"/api/v1/organization/{org}", headers=api),
        )
        for r in answers:
            assert r.status_code in (200, 404), (r.request.url, r.status_code, r.text)
            if r.status_code == 404:
                assert r.json()["errors"][0]["code"] == "ORGANIZATION_INVALID"


async def test_override_written_while_its_user_is_deleted_is_a_5xx(
    world: tuple[httpx.AsyncClient, dict[str, str], Business],
) -> None:
    """The same race against ``DELETE /api/v1/user``: 200 or 404 ``USER_INVALID``, never 5xx."""
    http, api, _ = world
    flag = {"name": "F", "key": "u1", "type": "str", "default_value": "a"}
    made = await http.post(
        "/api/v1/feature_flags", json={**flag, "allow_override_level": "usr"}, headers=api
    )
    assert made.status_code == 201, made.text
    prop = {"name": "P", "key": "up1", "type": "single_line_text", "context": "usr"}
    made = await http.post(
        "/api/v1/properties",
        json={**prop, "is_private": False, "category_id": "cat_1"},
        headers=api,
    )
    assert made.status_code == 201, made.text
    for i in range(30):
        created = await http.post(
            "/api/v1/user", json={"profile": {"given_name": f"U{i}"}}, headers=api
        )
        user_id = created.json()["id"]
        answers = await asyncio.gather(
            http.patch(
                f"/api/v1/users/{user_id}/feature_flags/u1", params={"value": "b"}, headers=api
            ),
            http.patch(
                f"/api/v1/users/{user_id}/properties",
                json={"properties": {"up1": "v"}},
                headers=api,
            ),
            http.put(f"/api/v1/users/{user_id}/properties/up1", params={"value": "w"}, headers=api),
            http.delete("/api/v1/user", params={"id": user_id}, headers=api),
        )
        for r in answers:
            assert r.status_code in (200, 404), (r.request.url, r.status_code, r.text)
            if r.status_code == 404:
                assert r.json()["errors"][0]["code"] == "USER_INVALID"
