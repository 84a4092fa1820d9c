"""Kinde's ``/api/v1/environment_variables``: shapes per the spec, secrets unreadable, values
encrypted at rest, scopes, bad input, and workflows reading them through ``env``."""

from __future__ import annotations

import httpx
import jsonschema
import pytest
from sqlalchemy import select

from claimflow.services import Services
from claimflow.store import tables as t
from tests.helpers import management_client
from tests.management.test_kinde_spec_conformance import response_schema

BASE = "/api/v1/environment_variables"


def conforms(method: str, path: str, response: httpx.Response) -> None:
    jsonschema.validate(response.json(), response_schema(method, path, response.status_code))


async def test_create_read_update_delete_follow_kindes_shapes(api: httpx.AsyncClient) -> None:
    created = await api.post(BASE, json={"key": "PLAN_API_URL", "value": "https://x.test"})
    assert created.status_code == 201
    conforms("POST", BASE, created)
    variable_id = created.json()["environment_variable"]["id"]

    listed = await api.get(BASE)
    conforms("GET", BASE, listed)
    (item,) = listed.json()["environment_variables"]
    assert item["key"] == "PLAN_API_URL" and item["value"] == "https://x.test"
    assert item["created_on"].endswith("Z")

    path = BASE + "/{variable_id}"
    one = await api.get(f"{BASE}/{variable_id}")
    conforms("GET", path, one)
    updated = await api.patch(f"{BASE}/{variable_id}", json={"value": "https://y.test"})
    conforms("PATCH", path, updated)
    assert (await api.get(f"{BASE}/{variable_id}")).json()["environment_variable"]["value"] == (
        "https://y.test"
    )
    deleted = await api.delete(f"{BASE}/{variable_id}")
    conforms("DELETE", path, deleted)
    assert (await api.get(f"{BASE}/{variable_id}")).status_code == 404


async def test_secrets_are_never_returned_and_stored_encrypted(
    api: httpx.AsyncClient, services: Services
) -> None:
    created = await api.post(
        BASE, json={"key": "STRIPE_KEY", "value": "sk_live_1", "is_secret": True}
    )
    variable_id = created.json()["environment_variable"]["id"]
    assert (await api.get(f"{BASE}/{variable_id}")).json()["environment_variable"]["value"] is None
    assert (await api.get(BASE)).json()["environment_variables"][0]["value"] is None
    async with services.db.connect() as conn:
        raw = (await conn.execute(select(t.environment_variables.c.value_encrypted))).scalar_one()
    assert b"sk_live_1" not in raw
    refused = await api.patch(f"{BASE}/{variable_id}", json={"is_secret": False})
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["code"] == "SECRET_IMMUTABLE"


@pytest.mark.parametrize(
    "body",
    [
        {"key": "", "value": "x"},
        {"key": "A B", "value": "x"},
        {"key": "K&x", "value": "x"},
        {"key": "K" * 129, "value": "x"},
        {"key": "K", "value": "x" * 2049},
        {"key": "K", "value": 5},
        {"value": "x"},
    ],
)
async def test_bad_input_is_a_400_with_kindes_error_body(
    api: httpx.AsyncClient, body: dict[str, object]
) -> None:
    response = await api.post(BASE, json=body)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"]


async def test_duplicate_key_is_a_409(api: httpx.AsyncClient) -> None:
    await api.post(BASE, json={"key": "K", "value": "1"})
    response = await api.post(BASE, json={"key": "K", "value": "2"})
    assert response.status_code == 409


async def test_each_route_checks_its_scope(client: httpx.AsyncClient, services: Services) -> None:
    headers = await management_client(client, services, scopes=["read:environment_variables"])
    assert (await client.get(BASE, headers=headers)).status_code == 200
    response = await client.post(BASE, json={"key": "K", "value": "v"}, headers=headers)
    assert response.status_code == 403
    assert "create:environment_variables" in response.json()["errors"][0]["message"]


async def test_a_workflow_reads_a_new_value_at_once(
    api: httpx.AsyncClient, services: Services
) -> None:
    environment = services.workflows.environment
    assert environment is not None
    assert await environment.get("GREETING") is None
    await api.post(BASE, json={"key": "GREETING", "value": "hello"})
    found = await environment.get("GREETING")
    assert found is not None and found.value == "hello" and not found.is_secret
