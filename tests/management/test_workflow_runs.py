"""``GET /api/v1/workflows/runs`` (claimflow extension): paged, filtered, scoped."""

from __future__ import annotations

import httpx

from claimflow.services import Services
from tests.helpers import management_client
from tests.workflows.conftest import BillingWorld, build_world, make_event

RUNS = "/api/v1/workflows/runs"


async def sign_ins(services: Services) -> BillingWorld:
    world = await build_world(services, features=2)
    engine = services.workflows
    await engine.run_tokens_generation(make_event(world.member_id, world.org_code))
    await engine.run_tokens_generation(make_event(world.member_id, world.plain_org_code))
    await engine.run_tokens_generation(make_event(world.personal_user_id))
    return world


async def test_runs_are_listed_newest_first_with_filters(
    api: httpx.AsyncClient, services: Services
) -> None:
    world = await sign_ins(services)
    everything = (await api.get(RUNS, params={"page_size": 100})).json()
    user_runs = [r for r in everything["runs"] if r["trigger"] == "user:tokens_generation"]
    # one run per sign-in: the engine does not start a built-in whose precondition fails
    # (org_billing on a personal sign-in, user_billing on an organization's), nor
    # org_billing_m2m on the test's own Management API token (no organization)
    assert len(user_runs) == 3
    assert len(everything["runs"]) == 3
    started = [r["started_on"] for r in everything["runs"]]
    assert started == sorted(started, reverse=True)

    org_runs = (await api.get(RUNS, params={"org_code": world.org_code})).json()["runs"]
    assert {r["workflow_id"] for r in org_runs} == {"org_billing"}
    (org_billing,) = [r for r in org_runs if r["workflow_id"] == "org_billing"]
    assert org_billing["outcome"] == "succeeded"
    assert org_billing["claim_sizes"]["access_token"]["org_billing"][0] > 0
    assert org_billing["user_id"] == world.member_id

    mine = (
        await api.get(
            RUNS, params={"user_id": world.personal_user_id, "workflow_id": "user_billing"}
        )
    ).json()["runs"]
    assert len(mine) == 1 and mine[0]["org_code"] is None
    failed = (await api.get(RUNS, params={"outcome": "failed"})).json()["runs"]
    assert failed == []


async def test_runs_page_with_starting_after(api: httpx.AsyncClient, services: Services) -> None:
    await sign_ins(services)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"page_size": 2}
        if cursor:
            params["starting_after"] = cursor
        page = (await api.get(RUNS, params=params)).json()
        seen.extend(r["id"] for r in page["runs"])
        if not page["has_more"]:
            break
        cursor = page["runs"][-1]["id"]
    assert len(seen) == len(set(seen)) == 3  # one run per sign-in, over two pages


async def test_runs_need_the_read_workflow_runs_scope(
    client: httpx.AsyncClient, services: Services
) -> None:
    headers = await management_client(client, services, scopes=["read:organizations"])
    response = await client.get(RUNS, headers=headers)
    assert response.status_code == 403
    assert "read:workflow_runs" in response.json()["errors"][0]["message"]


async def test_bad_filters_are_a_400(api: httpx.AsyncClient) -> None:
    for params in ({"outcome": "exploded"}, {"page_size": 0}, {"starting_after": "a&b"}):
        response = await api.get(RUNS, params=params)
        assert response.status_code == 400, params
        assert response.json()["errors"][0]["code"] == "INVALID_REQUEST"
