"""The billing workflows against a real Kinde-shaped HTTP server on loopback: hostile codes
arrive as data, and every fault (slow, down, 4xx/5xx, invalid JSON, wrong shape, nulls) is
handled by the failure policy with a clear run log and no half-built claim."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from claimflow.cache import InProcessBillingCache
from claimflow.errors import WorkflowError
from claimflow.services import Services
from claimflow.workflows.engine import WorkflowEngine
from claimflow.workflows.management_client import HTTPTransport
from claimflow.workflows.registry import WorkflowRegistry
from claimflow.workflows.runlog import RunFilter, RunLog, RunOutcome, WorkflowRun, list_runs
from tests.workflows.conftest import AGREEMENT, ENTITLEMENT_COUNT, FakeKinde, free_port, make_event


@pytest.fixture
async def make_engine(services: Services, kinde: FakeKinde) -> AsyncIterator[object]:
    engines: list[WorkflowEngine] = []

    def build(
        policy: str = "stop", limit: float = 2.0, base_url: str | None = None, **cache: object
    ) -> WorkflowEngine:
        registry = WorkflowRegistry.from_settings(
            ["org_billing", "user_billing"],
            overrides={
                "org_billing": {"failure_policy": policy, "time_limit_seconds": limit},
                "user_billing": {"failure_policy": policy, "time_limit_seconds": limit},
            },
        )
        engine = WorkflowEngine(
            registry,
            run_log=RunLog(services.db, 30),
            management=HTTPTransport(
                base_url or kinde.base_url, "wf-client", "wf-secret", timeout_seconds=1.0
            ),
            billing_cache=InProcessBillingCache(60.0, **cache),  # type: ignore[arg-type]
        )
        engines.append(engine)
        return engine

    yield build
    for engine in engines:
        await engine.aclose()


async def last_run(
    services: Services, engine: WorkflowEngine, workflow_id: str = "org_billing"
) -> WorkflowRun:
    assert engine.run_log is not None
    await engine.run_log.flush()
    async with services.db.connect() as conn:
        runs, _ = await list_runs(conn, RunFilter(workflow_id=workflow_id))
    return runs[0]


HOSTILE_CODES = [
    "org_a&code=org_b",
    "org#fragment",
    "org?x=1",
    "org/../../users",
    "org%20%26",
    "org with spaces",
    "örg_ünïcødé_日本",
    "org+plus",
]


@pytest.mark.parametrize("code", HOSTILE_CODES)
async def test_hostile_org_codes_reach_the_api_as_data(
    make_engine: object, kinde: FakeKinde, code: str
) -> None:
    engine = make_engine()  # type: ignore[operator]
    claims = await engine.run_tokens_generation(make_event("kp_1", code))
    (org_query,) = kinde.received("/api/v1/organization")
    assert org_query == {"code": [code], "expand": ["billing"]}
    customer = kinde.customer_id(code)
    for path in ("/api/v1/billing/entitlements", "/api/v1/billing/agreements"):
        assert {q["customer_id"][0] for q in kinde.received(path)} == {customer}
    assert claims.access_token["org_billing"][0]["customer_id"] == customer


async def test_hostile_user_id_reaches_the_api_as_data(
    make_engine: object, kinde: FakeKinde
) -> None:
    engine = make_engine()  # type: ignore[operator]
    user_id = "kp_1&id=kp_2#x"
    claims = await engine.run_tokens_generation(make_event(user_id))
    assert kinde.received("/api/v1/user") == [{"id": [user_id], "expand": ["billing"]}]
    assert claims.access_token["billingDetails"][0]["customer_id"] == f"customer_of_{user_id}"


async def test_every_page_is_read_and_agreements_are_the_full_items(
    make_engine: object, kinde: FakeKinde
) -> None:
    engine = make_engine()  # type: ignore[operator]
    claims = await engine.run_tokens_generation(make_event("kp_1", "org_1"))
    full = claims.access_token["org_billing"][0]
    assert len(full["entitlements"]) == ENTITLEMENT_COUNT
    assert full["agreements"] == [AGREEMENT]
    assert kinde.token_requests == 1  # the M2M token is cached


async def test_token_is_cached_across_sign_ins(make_engine: object, kinde: FakeKinde) -> None:
    engine = make_engine()  # type: ignore[operator]
    for org in ("org_1", "org_2", "org_3"):
        await engine.run_tokens_generation(make_event("kp_1", org))
    assert kinde.token_requests == 1


FAULTS = [
    ("organization", "500", "(500): INTERNAL: boom"),
    ("organization", "400", "(400): BAD_REQUEST: nope"),
    ("organization", "403", "(403): FORBIDDEN"),
    ("organization", "invalid_json", "not valid JSON"),
    ("organization", "not_object", "not a JSON object"),
    ("entitlements", "500", "(500)"),
    ("entitlements", "wrong_shape", "'entitlements' is not a list"),
    ("entitlements", "null", "'entitlements' is not a list"),
    ("entitlements", "null_item", "'entitlements' is not a list of objects"),
    ("entitlements", "string_limit", "limit is not an integer"),
    ("entitlements", "invalid_json", "not valid JSON"),
    ("agreements", "400", "(400)"),
    ("agreements", "invalid_json", "not valid JSON"),
]


@pytest.mark.parametrize(("path", "mode", "message"), FAULTS)
async def test_faults_under_stop_refuse_issuance_with_a_clear_run_log(
    services: Services, make_engine: object, kinde: FakeKinde, path: str, mode: str, message: str
) -> None:
    kinde.modes[path] = mode
    engine = make_engine("stop")  # type: ignore[operator]
    with pytest.raises(WorkflowError) as caught:
        await engine.run_tokens_generation(make_event("kp_1", "org_1"))
    assert caught.value.workflow_id == "org_billing"
    assert message in caught.value.message
    run = await last_run(services, engine)
    assert run.id == caught.value.run_id and run.outcome is RunOutcome.FAILED


@pytest.mark.parametrize(("path", "mode", "message"), FAULTS)
async def test_faults_under_continue_issue_without_the_claim(
    services: Services, make_engine: object, kinde: FakeKinde, path: str, mode: str, message: str
) -> None:
    kinde.modes[path] = mode
    engine = make_engine("continue")  # type: ignore[operator]
    claims = await engine.run_tokens_generation(make_event("kp_1", "org_1"))
    assert claims.access_token == {} and claims.id_token == {}
    run = await last_run(services, engine)
    assert run.outcome is RunOutcome.FAILED and message in (run.error or "")


async def test_404_for_the_organization_is_a_logged_skip(
    services: Services, make_engine: object, kinde: FakeKinde
) -> None:
    kinde.modes["organization"] = "404"
    engine = make_engine("stop")  # type: ignore[operator]
    claims = await engine.run_tokens_generation(make_event("kp_1", "org_gone"))
    assert claims.access_token == {}
    run = await last_run(services, engine)
    assert run.outcome is RunOutcome.SUCCEEDED
    assert any("not found" in line["message"] for line in run.log_lines)


async def test_organization_with_null_billing_is_a_logged_skip(
    make_engine: object, kinde: FakeKinde
) -> None:
    kinde.modes["organization"] = "no_customer"
    engine = make_engine("stop")  # type: ignore[operator]
    claims = await engine.run_tokens_generation(make_event("kp_1", "org_1"))
    assert claims.access_token == {}
    assert kinde.received("/api/v1/billing/entitlements") == []


async def test_slow_api_hits_the_time_limit(
    services: Services, make_engine: object, kinde: FakeKinde
) -> None:
    kinde.delay_seconds = 1.5
    engine = make_engine("continue", limit=0.3)  # type: ignore[operator]
    claims = await engine.run_tokens_generation(make_event("kp_1", "org_1"))
    assert claims.access_token == {}
    run = await last_run(services, engine)
    assert run.outcome is RunOutcome.TIMED_OUT


async def test_slow_api_hits_the_http_timeout(
    services: Services, make_engine: object, kinde: FakeKinde
) -> None:
    kinde.delay_seconds = 1.5  # the transport's timeout is 1 s, the workflow's limit 2 s
    engine = make_engine("stop")  # type: ignore[operator]
    with pytest.raises(WorkflowError, match="timed out"):
        await engine.run_tokens_generation(make_event("kp_1", "org_1"))


async def test_api_down_is_a_failure_not_a_crash(make_engine: object) -> None:
    engine = make_engine("stop", base_url=f"http://127.0.0.1:{free_port()}")  # type: ignore[operator]
    with pytest.raises(WorkflowError, match="unreachable"):
        await engine.run_tokens_generation(make_event("kp_1", "org_1"))


async def test_serve_stale_uses_the_last_good_value_and_logs_it(
    services: Services, make_engine: object, kinde: FakeKinde
) -> None:
    engine = make_engine("stop", serve_stale=True, stale_max_age_seconds=3600.0)  # type: ignore[operator]
    good = await engine.run_tokens_generation(make_event("kp_1", "org_1"))
    assert engine.billing_cache is not None
    await engine.billing_cache.invalidate([kinde.customer_id("org_1")])
    kinde.modes["entitlements"] = "500"
    stale = await engine.run_tokens_generation(make_event("kp_1", "org_1"))
    assert stale.access_token == good.access_token
    run = await last_run(services, engine)
    assert any("served the last good value" in line["message"] for line in run.log_lines)


async def test_without_serve_stale_a_failure_after_invalidation_is_a_failure(
    make_engine: object, kinde: FakeKinde
) -> None:
    engine = make_engine("stop")  # type: ignore[operator]
    await engine.run_tokens_generation(make_event("kp_1", "org_1"))
    assert engine.billing_cache is not None
    await engine.billing_cache.invalidate([kinde.customer_id("org_1")])
    kinde.modes["entitlements"] = "500"
    with pytest.raises(WorkflowError):
        await engine.run_tokens_generation(make_event("kp_1", "org_1"))


async def test_wrong_m2m_secret_is_a_clear_failure(services: Services, kinde: FakeKinde) -> None:
    registry = WorkflowRegistry.from_settings(["org_billing"])
    engine = WorkflowEngine(
        registry, management=HTTPTransport(kinde.base_url, "wf-client", "wrong")
    )
    with pytest.raises(WorkflowError, match=r"oauth2/token \(401\)"):
        await engine.run_tokens_generation(make_event("kp_1", "org_1"))
    await engine.aclose()


async def test_a_warm_run_is_recorded_like_the_run_that_loaded(
    services: Services, make_engine: object, kinde: FakeKinde
) -> None:
    engine = make_engine()  # type: ignore[operator]
    loaded = await engine.run_tokens_generation(make_event("kp_1", "org_1"))
    first = await last_run(services, engine)
    warm = await engine.run_tokens_generation(make_event("kp_1", "org_1"))
    second = await last_run(services, engine)
    assert warm.access_token == loaded.access_token and warm.id_token == loaded.id_token
    assert kinde.received("/api/v1/billing/entitlements") != []
    assert second.id != first.id and second.outcome is RunOutcome.SUCCEEDED
    assert (second.org_code, second.user_id, second.claim_sizes) == (
        first.org_code,
        first.user_id,
        first.claim_sizes,
    )
    assert [line["message"] for line in second.log_lines] == [
        line["message"] for line in first.log_lines if "set for customer" in line["message"]
    ]


async def test_an_invalidated_entry_reloads_under_the_time_limit(
    services: Services, make_engine: object, kinde: FakeKinde
) -> None:
    engine = make_engine("continue", limit=0.3)  # type: ignore[operator]
    assert (await engine.run_tokens_generation(make_event("kp_1", "org_1"))).access_token
    assert engine.billing_cache is not None
    await engine.billing_cache.invalidate([kinde.customer_id("org_1")])
    kinde.delay_seconds = 1.5
    claims = await engine.run_tokens_generation(make_event("kp_1", "org_1"))
    assert claims.access_token == {}  # not the warm value: the entry is no longer current
    assert (await last_run(services, engine)).outcome is RunOutcome.TIMED_OUT
