"""Organization-scoped M2M applications and ``m2m:token_generation`` at the token endpoint.

An organization's API key: ``POST /api/v1/applications`` with ``org_code`` (Kinde's field), a
client-credentials token that carries that ``org_code`` and the organization's ``org_billing``
(the built-in ``org_billing_m2m``), verified against the published JWKS like any API would; a
plan change through the Management API shows in the next token. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema  # type: ignore[import-untyped]
import pytest
from prometheus_client.parser import text_string_to_metric_families

from claimflow.app import create_app
from claimflow.services import Services, build_services
from claimflow.workflows.runlog import RunFilter, list_runs
from tests.conftest import ISSUER, make_settings
from tests.helpers import management_client
from tests.management.catalogue import make_plan, ok
from tests.management.test_kinde_spec_conformance import response_schema
from tests.workflows.test_end_to_end import verified


async def deploy(
    db_url: str, **overrides: Any
) -> AsyncIterator[tuple[Services, httpx.AsyncClient]]:
    """The services and a client whose requests carry a Management API token; the token
    endpoint and the JWKS are called by ``anonymous(api)`` without it."""
    services = build_services(make_settings(db_url, **overrides))
    try:
        await services.workflows.warm_up()
        transport = httpx.ASGITransport(app=create_app(services=services))
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as client:
            headers = await management_client(client, services)
            async with httpx.AsyncClient(
                transport=transport, base_url=ISSUER, headers=headers
            ) as api:
                ANONYMOUS[id(api)] = client
                yield services, api
                del ANONYMOUS[id(api)]
    finally:
        await services.close()


ANONYMOUS: dict[int, httpx.AsyncClient] = {}


def anonymous(api: httpx.AsyncClient) -> httpx.AsyncClient:
    """The deployment's client without the Management API token (token endpoint, JWKS)."""
    return ANONYMOUS[id(api)]


@pytest.fixture
async def deployment(any_db_url: str) -> AsyncIterator[tuple[Services, httpx.AsyncClient]]:
    async for pair in deploy(any_db_url):
        yield pair


async def organization_on(api: httpx.AsyncClient, plan: str) -> tuple[str, str]:
    created = await ok(
        await api.post(
            "/api/v1/organization",
            json={"name": "Tenant", "is_create_billing_customer": True, "billing_plan_code": plan},
        )
    )
    return created["organization"]["code"], created["organization"]["billing_customer_id"]


async def api_key(api: httpx.AsyncClient, org_code: str | None) -> tuple[str, str]:
    body: dict[str, Any] = {"name": "Tenant API key", "type": "m2m"}
    if org_code is not None:
        body["org_code"] = org_code
    created = await ok(await api.post("/api/v1/applications", json=body), 201)
    return created["application"]["client_id"], created["application"]["client_secret"]


async def client_credentials(
    client: httpx.AsyncClient, client_id: str, secret: str, **extra: str
) -> httpx.Response:
    return await anonymous(client).post(
        "/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            **extra,
        },
    )


async def token_claims(client: httpx.AsyncClient, client_id: str, secret: str) -> dict[str, Any]:
    response = await client_credentials(client, client_id, secret)
    assert response.status_code == 200, response.text
    return await verified(anonymous(client), response.json()["access_token"], ISSUER)


def plans_of(claims: dict[str, Any]) -> list[str]:
    return [a["plan_code"] for a in claims["org_billing"]["agreements"]]


async def test_organization_api_key_carries_org_code_and_billing_and_follows_plan_changes(
    deployment: tuple[Services, httpx.AsyncClient],
) -> None:
    services, api = deployment
    await make_plan(api, "starter", {"seats": 5})
    await make_plan(api, "scale", {"seats": 50, "sso": None})
    org_code, customer_id = await organization_on(api, "starter")
    client_id, secret = await api_key(api, org_code)

    claims = await token_claims(api, client_id, secret)
    assert claims["org_code"] == org_code and claims["sub"] == client_id
    assert claims["gty"] == ["client_credentials"]
    billing = claims["org_billing"]
    assert billing["customer_id"] == customer_id and plans_of(claims) == ["starter"]
    assert {e["feature_code"] for e in billing["entitlements"]} == {"seats"}

    assert claims == await token_claims(api, client_id, secret) | {
        k: claims[k] for k in ("iat", "exp", "jti")
    }  # warm: the same billing from the cache

    await ok(
        await api.post(
            "/api/v1/billing/agreements", json={"customer_id": customer_id, "plan_code": "scale"}
        )
    )
    after = await token_claims(api, client_id, secret)
    assert plans_of(after) == ["scale"]
    assert {e["feature_code"] for e in after["org_billing"]["entitlements"]} == {"seats", "sso"}

    assert services.workflows.run_log is not None
    await services.workflows.run_log.flush()
    async with services.db.connect() as conn:
        runs, _ = await list_runs(conn, RunFilter(workflow_id="org_billing_m2m"))
    # The Management API token (no organization) fires the trigger too, but org_billing_m2m
    # does not apply to it: the engine starts no run and records none.
    assert [r.org_code for r in runs].count(None) == 0
    tenant = [r for r in runs if r.org_code == org_code]
    assert len(tenant) == 3
    assert {(r.trigger, r.outcome.value) for r in tenant} == {("m2m:token_generation", "succeeded")}


async def test_an_application_of_no_organization_gets_no_org_claims(
    deployment: tuple[Services, httpx.AsyncClient],
) -> None:
    _, api = deployment
    client_id, secret = await api_key(api, None)
    claims = await token_claims(api, client_id, secret)
    assert "org_code" not in claims and "org_billing" not in claims


async def test_the_caller_cannot_choose_another_org_code(
    deployment: tuple[Services, httpx.AsyncClient],
) -> None:
    _, api = deployment
    await make_plan(api, "starter", {"seats": 5})
    mine, _ = await organization_on(api, "starter")
    other, _ = await organization_on(api, "starter")
    client_id, secret = await api_key(api, mine)
    response = await client_credentials(api, client_id, secret, org_code=other)
    assert response.status_code == 200
    claims = await verified(anonymous(api), response.json()["access_token"], ISSUER)
    assert claims["org_code"] == mine


async def test_get_application_and_listing_show_the_organization_in_kindes_shape(
    deployment: tuple[Services, httpx.AsyncClient],
) -> None:
    _, api = deployment
    await make_plan(api, "starter", {"seats": 5})
    org_code, _ = await organization_on(api, "starter")
    client_id, _ = await api_key(api, org_code)
    plain_id, _ = await api_key(api, None)

    body = await ok(await api.get(f"/api/v1/applications/{client_id}"))
    jsonschema.validate(
        body,
        response_schema("GET", "/api/v1/applications/{application_id}", 200),
        cls=jsonschema.Draft202012Validator,
    )
    assert body["application"] == {
        "id": client_id,
        "client_id": client_id,
        "name": "Tenant API key",
        "type": "m2m",
        "org_code": org_code,
    }
    assert (
        "org_code"
        not in (await ok(await api.get(f"/api/v1/applications/{plain_id}")))["application"]
    )
    listed = (await ok(await api.get("/api/v1/applications", params={"page_size": 100})))[
        "applications"
    ]
    assert {a["id"]: a.get("org_code") for a in listed}[client_id] == org_code
    missing = await api.get("/api/v1/applications/nope")
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["code"] == "APPLICATION_INVALID"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"name": "k", "type": "m2m", "org_code": "org_nowhere"}, 404, "ORGANIZATION_INVALID"),
        ({"name": "k", "type": "reg", "org_code": "ORG"}, 400, "ORG_CODE_INVALID"),
        (
            {"name": "k", "type": "m2m", "org_code": "ORG", "scopes": ["read:users"]},
            400,
            "SCOPES_INVALID",
        ),
    ],
)
async def test_bad_org_code_is_refused_in_kindes_envelope_and_creates_nothing(
    deployment: tuple[Services, httpx.AsyncClient],
    body: dict[str, Any],
    status: int,
    code: str,
) -> None:
    _, api = deployment
    await make_plan(api, "starter", {"seats": 5})
    org_code, _ = await organization_on(api, "starter")
    if body["org_code"] == "ORG":
        body = {**body, "org_code": org_code}
    before = (await ok(await api.get("/api/v1/applications", params={"page_size": 100})))[
        "applications"
    ]
    response = await api.post("/api/v1/applications", json=body)
    assert response.status_code == status, response.text
    assert response.json()["errors"][0]["code"] == code
    after = (await ok(await api.get("/api/v1/applications", params={"page_size": 100})))[
        "applications"
    ]
    assert after == before


async def test_deleting_the_organization_deletes_its_api_keys(
    deployment: tuple[Services, httpx.AsyncClient],
) -> None:
    _, api = deployment
    await make_plan(api, "starter", {"seats": 5})
    org_code, _ = await organization_on(api, "starter")
    client_id, secret = await api_key(api, org_code)
    await ok(await api.delete(f"/api/v1/organization/{org_code}"))
    response = await client_credentials(api, client_id, secret)
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


TENANT_CLAIM = """
from claimflow.workflows import Binding, FailurePolicy, Trigger, WorkflowSettings

workflow_settings = WorkflowSettings(
    id="tenant_claims",
    name="test",
    trigger=Trigger.M2M_TOKEN_GENERATION,
    failure_policy=FailurePolicy.{policy},
    bindings=frozenset({{Binding.M2M_TOKEN, Binding.MANAGEMENT_API}}),
    management_api_scopes=frozenset({{"read:organizations"}}),
)


async def run(event, bindings):
    if event.context.organization is None:
        return  # the test's own Management API token
    await bindings.management_api.get("organization", {{"code": event.context.organization.code}})
    bindings.m2m_token.set_custom_claim("app_name", event.context.application.name)
    bindings.m2m_token.set_custom_claim("audience", list(event.request.auth.audience))
    bindings.m2m_token.set_custom_claim("{claim}", "forged")
"""


@pytest.fixture
async def isolated(
    db_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Services, httpx.AsyncClient]]:
    policy, claim = request.param
    (tmp_path / "tenant_claims.py").write_text(TENANT_CLAIM.format(policy=policy, claim=claim))
    async for pair in deploy(
        db_url,
        workflows_dir=str(tmp_path),
        workflows_enabled=["org_billing", "user_billing", "org_billing_m2m", "tenant_claims"],
    ):
        yield pair


@pytest.mark.parametrize("isolated", [("CONTINUE", "tenant_note")], indirect=True)
async def test_an_isolated_m2m_workflow_sets_claims_and_its_own_api_calls_fire_nothing(
    isolated: tuple[Services, httpx.AsyncClient],
) -> None:
    services, api = isolated
    await make_plan(api, "starter", {"seats": 5})
    org_code, _ = await organization_on(api, "starter")
    client_id, secret = await api_key(api, org_code)
    claims = await token_claims(api, client_id, secret)
    assert claims["app_name"] == "Tenant API key" and claims["tenant_note"] == "forged"
    assert claims["audience"] == [ISSUER + "/api"] and plans_of(claims) == ["starter"]
    assert services.workflows.run_log is not None
    await services.workflows.run_log.flush()
    async with services.db.connect() as conn:
        runs, _ = await list_runs(conn, RunFilter(workflow_id="tenant_claims"))
    # The workflow's Management API call used the workflows' own token: no second run.
    assert [(r.outcome.value, r.org_code) for r in runs if r.org_code] == [("succeeded", org_code)]


@pytest.mark.parametrize(
    "isolated", [("STOP", "org_code"), ("STOP", "gty"), ("STOP", "Scp")], indirect=True
)
async def test_a_reserved_claim_from_an_m2m_workflow_fails_it_and_issues_nothing(
    isolated: tuple[Services, httpx.AsyncClient],
) -> None:
    _, api = isolated
    await make_plan(api, "starter", {"seats": 5})
    org_code, _ = await organization_on(api, "starter")
    client_id, secret = await api_key(api, org_code)
    response = await client_credentials(api, client_id, secret)
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "workflow_failed"
    assert response.json()["workflow_id"] == "tenant_claims"


@pytest.mark.parametrize("isolated", [("STOP", "tenant_note")], indirect=True)
async def test_the_workflows_own_client_does_not_fire_the_trigger(
    isolated: tuple[Services, httpx.AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The HTTP transport's client (``KINDE_WF_M2M_CLIENT_ID``) pointed at this server gets a
    token without the workflows: its calls cannot run the trigger on themselves."""
    services, api = isolated
    await make_plan(api, "starter", {"seats": 5})
    org_code, _ = await organization_on(api, "starter")
    client_id, secret = await api_key(api, org_code)
    monkeypatch.setenv("KINDE_WF_M2M_CLIENT_ID", client_id)
    claims = await token_claims(api, client_id, secret)
    assert claims["org_code"] == org_code
    assert "tenant_note" not in claims and "org_billing" not in claims
    assert services.workflows.run_log is not None
    await services.workflows.run_log.flush()
    async with services.db.connect() as conn:
        runs, _ = await list_runs(conn, RunFilter(), page_size=100)
    assert [r for r in runs if r.org_code == org_code] == []


async def test_a_small_budget_steps_the_claim_down_and_the_key_reads_the_full_form(
    db_url: str,
) -> None:
    """The M2M budget steps ``org_billing`` down to its reference form; the token itself
    fetches the full form at ``/oauth2/billing/{customer_id}``, for its own customer only."""
    async for _, api in deploy(db_url, m2m_token_max_bytes=1100):
        await make_plan(api, "big", {f"feature_{i:02d}": i for i in range(12)})
        org_code, customer_id = await organization_on(api, "big")
        other_org, other_customer = await organization_on(api, "big")
        client_id, secret = await api_key(api, org_code)
        response = await client_credentials(api, client_id, secret)
        assert response.status_code == 200, response.text
        token = response.json()["access_token"]
        assert len(token) <= 1100
        claims = await verified(anonymous(api), token, ISSUER)
        assert claims["org_billing"]["form"] == "reference"
        assert claims["org_billing"]["customer_id"] == customer_id
        full = await anonymous(api).get(
            f"/oauth2/billing/{customer_id}", headers={"Authorization": f"Bearer {token}"}
        )
        assert full.status_code == 200, full.text
        assert len(full.json()["entitlements"]) == 12
        assert full.json()["customer_id"] == customer_id
        other = await anonymous(api).get(
            f"/oauth2/billing/{other_customer}", headers={"Authorization": f"Bearer {token}"}
        )
        assert other.status_code == 403
        assert other_org != org_code
        await ok(await api.delete(f"/api/v1/organization/{org_code}"))
        gone = await anonymous(api).get(
            f"/oauth2/billing/{customer_id}", headers={"Authorization": f"Bearer {token}"}
        )
        assert gone.status_code == 401


BUDGET = 1700
"""Bytes: the full ``org_billing`` of one feature fits, the full form of twelve does not."""


async def test_warm_tokens_of_a_key_fit_as_the_first_each_is_a_run_and_a_plan_change_refits(
    db_url: str,
) -> None:
    """Warm tokens are answered from the cache entry's settled run, fitted from its memo of the
    budget's decisions: each carries the form the first carried and is a run of its own; a plan
    change brings a new entry, fitted afresh (here down to the compact form)."""
    async for services, api in deploy(db_url, m2m_token_max_bytes=BUDGET):
        await make_plan(api, "small", {"seats": 5})
        await make_plan(api, "big", {f"feature_{i:02d}": i for i in range(12)})
        org_code, customer_id = await organization_on(api, "small")
        client_id, secret = await api_key(api, org_code)
        tokens = []
        for _ in range(4):
            response = await client_credentials(api, client_id, secret)
            assert response.status_code == 200, response.text
            tokens.append(response.json()["access_token"])
        warm = [await verified(anonymous(api), token, ISSUER) for token in tokens]
        assert all(len(token) <= BUDGET for token in tokens)
        assert {c["org_billing"].get("form", "full") for c in warm} == {"full"}
        assert all(c["org_billing"] == warm[0]["org_billing"] for c in warm)
        assert len({c["jti"] for c in warm}) == 4

        await ok(
            await api.post(
                "/api/v1/billing/agreements", json={"customer_id": customer_id, "plan_code": "big"}
            )
        )
        for _ in range(2):
            response = await client_credentials(api, client_id, secret)
            assert response.status_code == 200, response.text
            assert len(response.json()["access_token"]) <= BUDGET
            after = await verified(anonymous(api), response.json()["access_token"], ISSUER)
            assert after["org_billing"]["form"] == "compact"
            assert after["org_billing"]["customer_id"] == customer_id

        assert services.workflows.run_log is not None
        await services.workflows.run_log.flush()
        async with services.db.connect() as conn:
            runs, _ = await list_runs(
                conn, RunFilter(workflow_id="org_billing_m2m", org_code=org_code)
            )
        assert len(runs) == 6 and len({r.id for r in runs}) == 6
        assert {r.outcome.value for r in runs} == {"succeeded"}


async def test_each_warm_token_is_one_counted_run_and_one_cache_lookup(
    deployment: tuple[Services, httpx.AsyncClient],
) -> None:
    """The first token loads the organization's entry, the second settles a run on it, the
    others are answered from that run: each is one run in ``claimflow_workflow_runs_total`` and
    one lookup in ``claimflow_billing_cache_total`` (a miss and a load, then a hit each)."""
    _, api = deployment
    await make_plan(api, "starter", {"seats": 5})
    org_code, _ = await organization_on(api, "starter")
    client_id, secret = await api_key(api, org_code)

    async def counts() -> dict[str, float]:
        text = (await anonymous(api).get("/metrics")).text
        wanted = {
            ("claimflow_workflow_runs_total", "workflow", "org_billing_m2m"): "runs",
            ("claimflow_billing_cache_total", "event", "hit"): "hit",
            ("claimflow_billing_cache_total", "event", "miss"): "miss",
            ("claimflow_billing_cache_total", "event", "load"): "load",
        }
        found = dict.fromkeys(wanted.values(), 0.0)
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                for (name, label, label_value), key in wanted.items():
                    if sample.name == name and sample.labels.get(label) == label_value:
                        found[key] += sample.value
        return found

    before = await counts()
    for _ in range(4):
        response = await client_credentials(api, client_id, secret)
        assert response.status_code == 200, response.text
    after = await counts()
    assert {k: after[k] - before[k] for k in after} == {"runs": 4, "hit": 3, "miss": 1, "load": 1}


async def test_warm_keys_of_two_organizations_each_get_their_own_claims_whatever_they_ask(
    any_db_url: str,
) -> None:
    """The settled run and its fit memo are per organization's cache entry, shared by every key
    of it and by every audience and scope: tokens asked for in turn by two keys of one
    organization (scopes of the same length, so the memo's key matches and only the bytes
    differ) and a key of another carry their own ``client_id``, ``aud``, ``scp`` and
    ``org_code`` and their organization's billing, stepped down only where it must be. A
    deleted key gets nothing while its sibling is still served; one organization's plan change
    leaves the other's tokens as they were."""
    async for _, api in deploy(any_db_url, m2m_token_max_bytes=BUDGET):
        await make_plan(api, "small", {"seats": 5})
        await make_plan(api, "big", {f"feature_{i:02d}": i for i in range(12)})
        big_org, big_customer = await organization_on(api, "big")
        small_org, small_customer = await organization_on(api, "small")
        first, first_secret = await api_key(api, big_org)
        second, second_secret = await api_key(api, big_org)
        other, other_secret = await api_key(api, small_org)
        audience = "https://orders.example.com"
        created = await ok(await api.post("/api/v1/apis", json={"name": "O", "audience": audience}))
        base = f"/api/v1/apis/{created['api']['id']}"
        scopes = {}
        for key in ("read:orders", "edit:orders"):
            scopes[key] = (await ok(await api.post(f"{base}/scopes", json={"key": key})))["scope"]
        apps = [{"id": first}, {"id": second}]
        await ok(await api.patch(f"{base}/applications", json={"applications": apps}))
        for app in (first, second):
            for scope in scopes.values():
                await ok(await api.post(f"{base}/applications/{app}/scopes/{scope['id']}"))

        asks: list[tuple[str, str, dict[str, str], str, str, str]] = [
            (first, first_secret, {}, f"{ISSUER}/api", big_org, big_customer),
            (first, first_secret, {"audience": audience, "scope": "read:orders"}, audience,
             big_org, big_customer),
            (second, second_secret, {"audience": audience, "scope": "edit:orders"}, audience,
             big_org, big_customer),
            (second, second_secret, {"audience": audience}, audience, big_org, big_customer),
            (other, other_secret, {}, f"{ISSUER}/api", small_org, small_customer),
        ]  # fmt: skip
        billing: dict[str, dict[str, Any]] = {}
        for _ in range(3):
            for client_id, secret, extra, aud, org_code, customer_id in asks:
                response = await client_credentials(api, client_id, secret, **extra)
                assert response.status_code == 200, response.text
                token = response.json()["access_token"]
                assert len(token) <= BUDGET
                claims = await verified(anonymous(api), token, ISSUER)
                assert (claims["client_id"], claims["azp"], claims["sub"]) == (client_id,) * 3
                assert claims["aud"] == [aud] and claims["org_code"] == org_code
                assert claims["scp"] == sorted(extra.get("scope", "").split()) or (
                    "scope" not in extra and claims["scope"] == " ".join(claims["scp"])
                )
                assert claims["org_billing"]["customer_id"] == customer_id
                assert billing.setdefault(org_code, claims["org_billing"]) == claims["org_billing"]
        assert billing[big_org]["form"] == "compact"
        assert "form" not in billing[small_org]  # the full form
        assert plans_of({"org_billing": billing[small_org]}) == ["small"]

        await ok(await api.delete(f"/api/v1/applications/{first}"))
        gone = await client_credentials(api, first, first_secret)
        assert gone.status_code == 401 and gone.json()["error"] == "invalid_client"
        kept = await token_claims(api, second, second_secret)
        assert kept["org_billing"] == billing[big_org]

        await ok(
            await api.post(
                "/api/v1/billing/agreements",
                json={"customer_id": small_customer, "plan_code": "big"},
            )
        )
        changed = (await token_claims(api, other, other_secret))["org_billing"]
        assert changed["form"] == "compact" and changed["customer_id"] == small_customer
        assert (await token_claims(api, second, second_secret))["org_billing"] == billing[big_org]
