"""Kinde's user routes: profile and email identities, expand, filters, password import."""

from __future__ import annotations

import bcrypt
import httpx

from claimflow.crypto import hash_password, verify_password
from claimflow.services import Services
from claimflow.store import users
from tests.management.catalogue import make_org, make_plan, make_user, ok


async def test_create_user_with_profile_identity_and_organization(
    any_api: httpx.AsyncClient,
) -> None:
    api = any_api
    org = await make_org(api)
    created = await ok(
        await api.post(
            "/api/v1/user",
            json={
                "profile": {"given_name": "Ada", "family_name": "Lovelace"},
                "organization_code": org["code"],
                "identities": [
                    {"type": "email", "is_verified": True, "details": {"email": "Ada@Example.com"}}
                ],
            },
        )
    )
    assert created["created"] is True and created["id"].startswith("kp_")
    assert created["identities"] == [{"type": "email", "result": {"created": True}}]

    user = await ok(
        await api.get(
            "/api/v1/user", params={"id": created["id"], "expand": "organizations,identities"}
        )
    )
    assert user["preferred_email"] == "ada@example.com"
    assert (user["first_name"], user["last_name"]) == ("Ada", "Lovelace")
    assert user["organizations"] == [org["code"]]
    assert user["identities"] == [{"type": "email", "identity": "ada@example.com"}]
    assert user["created_on"].endswith("Z") and user["total_sign_ins"] == 0


async def test_expand_billing_gives_personal_customer_id(api: httpx.AsyncClient) -> None:
    await make_plan(api, "personal", {"storage": 5})
    user_id = await make_user(api, "solo@example.com")
    plain = await ok(await api.get("/api/v1/user", params={"id": user_id, "expand": "billing"}))
    assert "billing" not in plain
    customer = await ok(
        await api.post(
            "/api/v1/billing/customers",
            json={"user_id": user_id, "email": "solo@example.com", "plan_code": "personal"},
        ),
        201,
    )
    user = await ok(await api.get("/api/v1/user", params={"id": user_id, "expand": "billing"}))
    assert user["billing"] == {"customer_id": customer["customer"]["id"]}


async def test_duplicate_email_is_a_conflict_and_unsupported_identities_are_refused(
    api: httpx.AsyncClient,
) -> None:
    await make_user(api, "ada@example.com")
    response = await api.post(
        "/api/v1/user",
        json={"identities": [{"type": "email", "details": {"email": "ADA@example.com"}}]},
    )
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "USER_EXISTS"
    response = await api.post(
        "/api/v1/user", json={"identities": [{"type": "phone", "details": {"phone": "+1"}}]}
    )
    assert response.status_code == 400
    users_page = await ok(await api.get("/api/v1/users"))
    assert len(users_page["users"]) == 1


async def test_update_and_delete_user(api: httpx.AsyncClient) -> None:
    user_id = await make_user(api, "ada@example.com")
    updated = await ok(
        await api.patch(
            "/api/v1/user",
            params={"id": user_id},
            json={"given_name": "Augusta", "is_suspended": True},
        )
    )
    assert updated["given_name"] == "Augusta" and updated["is_suspended"] is True
    assert updated["email"] == "ada@example.com"
    assert (await ok(await api.delete("/api/v1/user", params={"id": user_id})))["code"] == "OK"
    assert (await api.get("/api/v1/user", params={"id": user_id})).status_code == 404


async def test_list_users_filters_and_pages(api: httpx.AsyncClient) -> None:
    ids = [await make_user(api, f"user{i}@example.com") for i in range(4)]
    page = await ok(await api.get("/api/v1/users", params={"page_size": 3}))
    assert len(page["users"]) == 3 and "next_token" in page
    rest = await ok(
        await api.get("/api/v1/users", params={"page_size": 3, "next_token": page["next_token"]})
    )
    assert len(rest["users"]) == 1 and "next_token" not in rest
    by_email = await ok(
        await api.get("/api/v1/users", params={"email": "user1@example.com,USER2@example.com"})
    )
    assert sorted(u["email"] for u in by_email["users"]) == [
        "user1@example.com",
        "user2@example.com",
    ]
    by_id = await ok(
        await api.get("/api/v1/users", params={"user_id": ids[3], "expand": "billing"})
    )
    assert [u["id"] for u in by_id["users"]] == [ids[3]]


async def test_bcrypt_hash_import_lets_the_user_sign_in_with_their_password(
    api: httpx.AsyncClient, services: Services
) -> None:
    user_id = await make_user(api, "migrated@example.com")
    legacy = bcrypt.hashpw(b"correct horse", bcrypt.gensalt(rounds=4)).decode()
    response = await api.put(
        f"/api/v1/users/{user_id}/password",
        json={"hashed_password": legacy, "hashing_method": "bcrypt"},
    )
    assert await ok(response) == {"code": "OK", "message": "Success"}
    async with services.db.connect() as conn:
        stored = await users.get_password_hash(conn, user_id)
    assert stored is not None
    assert verify_password("correct horse", stored) and not verify_password("wrong", stored)


async def test_password_import_refuses_what_it_cannot_verify(api: httpx.AsyncClient) -> None:
    user_id = await make_user(api, "migrated@example.com")
    for body in (
        {"hashed_password": "5f4dcc3b5aa765d61d8327deb882cf99", "hashing_method": "md5"},
        {"hashed_password": "not-a-hash", "hashing_method": "bcrypt"},
        {"hashing_method": "bcrypt"},
        {"hashed_password": 12, "hashing_method": "bcrypt"},
    ):
        response = await api.put(f"/api/v1/users/{user_id}/password", json=body)
        assert response.status_code == 400, body
        assert response.json()["errors"][0]["code"]
    legacy = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    response = await api.put("/api/v1/users/kp_unknown/password", json={"hashed_password": legacy})
    assert response.status_code == 404


async def test_an_argon2id_hash_is_stored_as_kindes_drip_feed_example_sends_it(
    api: httpx.AsyncClient, services: Services
) -> None:
    """Kinde's drip-feed workflow sends ``{"hashed_password": <the event's hash>}`` with no
    ``hashing_method``; an argon2id PHC string is taken as such (``argon2id`` is ours)."""
    user_id = await make_user(api, "dripped@example.com")
    hashed = hash_password("correct horse")
    response = await api.put(f"/api/v1/users/{user_id}/password", json={"hashed_password": hashed})
    assert await ok(response) == {"code": "OK", "message": "Success"}
    explicit = await api.put(
        f"/api/v1/users/{user_id}/password",
        json={"hashed_password": hashed, "hashing_method": "argon2id"},
    )
    assert explicit.status_code == 200
    async with services.db.connect() as conn:
        assert await users.get_password_hash(conn, user_id) == hashed


async def test_an_argon2id_hash_with_a_ruinous_cost_is_refused(api: httpx.AsyncClient) -> None:
    """Its cost is paid at every sign-in: gigabytes of memory or minutes of time are a DoS."""
    user_id = await make_user(api, "dripped@example.com")
    salt_and_hash = "c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA"
    for params in ("m=4194304,t=3,p=4", "m=65536,t=500,p=4", "m=65536,t=3,p=99"):
        response = await api.put(
            f"/api/v1/users/{user_id}/password",
            json={"hashed_password": f"$argon2id$v=19${params}${salt_and_hash}"},
        )
        assert response.status_code == 400, params
        assert response.json()["errors"][0]["code"] == "HASHED_PASSWORD_INVALID"
    bcrypt_labelled = await api.put(
        f"/api/v1/users/{user_id}/password",
        json={"hashed_password": hash_password("x"), "hashing_method": "bcrypt"},
    )
    assert bcrypt_labelled.status_code == 400
