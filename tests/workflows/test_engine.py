"""Engine semantics: concurrency, time limits, failure policies, reserved and colliding claims,
undeclared bindings, deny_access, and the run log."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from claimflow.app import create_app
from claimflow.errors import WorkflowAccessDenied, WorkflowConfigError, WorkflowError
from claimflow.services import Services, build_services
from claimflow.settings import Settings
from claimflow.workflows.bindings import Bindings
from claimflow.workflows.definition import Binding, FailurePolicy, Workflow, WorkflowSettings
from claimflow.workflows.engine import WorkflowEngine
from claimflow.workflows.event import TokensGenerationEvent
from claimflow.workflows.registry import WorkflowRegistry
from claimflow.workflows.runlog import RunFilter, RunLog, RunOutcome, list_runs
from tests.workflows.conftest import make_event

TOKENS = frozenset({Binding.ACCESS_TOKEN, Binding.ID_TOKEN})
Entry = Callable[[TokensGenerationEvent, Bindings], Awaitable[None]]


def workflow(
    wid: str,
    entry: Entry,
    *,
    policy: FailurePolicy = FailurePolicy.STOP,
    bindings: frozenset[Binding] = TOKENS,
    claims: frozenset[str] = frozenset(),
    limit: float | None = None,
    env_vars: frozenset[str] = frozenset(),
) -> Workflow:
    settings = WorkflowSettings(
        id=wid,
        name=wid,
        failure_policy=policy,
        bindings=bindings,
        claims=claims,
        time_limit_seconds=limit,
        env_vars=env_vars,
    )
    return Workflow(settings=settings, entry=entry, source="test", trusted=True)


_open: list[WorkflowEngine] = []


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    """The conftest's ``services``, closing the engines a test made first: their run logs
    flush into this database, which must still be open."""
    built = build_services(settings)
    create_app(services=built)
    yield built
    while _open:
        await _open.pop().aclose()
    await built.close()


def engine_of(services: Services, *workflows: Workflow) -> WorkflowEngine:
    registry = WorkflowRegistry(workflows, [w.id for w in workflows])
    engine = WorkflowEngine(registry, run_log=RunLog(services.db, 30))
    _open.append(engine)
    return engine


def setting(name: str, value: object, delay: float = 0.0) -> Entry:
    async def entry(_event: TokensGenerationEvent, bindings: Bindings) -> None:
        await asyncio.sleep(delay)
        bindings.access_token.set_custom_claim(name, value)
        bindings.id_token.set_custom_claim(name, value)

    return entry


async def failing(_event: TokensGenerationEvent, _bindings: Bindings) -> None:
    raise RuntimeError("the billing system said no")


async def runs_of(services: Services, engine: WorkflowEngine, **filters: object):  # type: ignore[no-untyped-def]
    assert engine.run_log is not None
    await engine.run_log.flush()
    async with services.db.connect() as conn:
        runs, _ = await list_runs(conn, RunFilter(**filters), page_size=100)  # type: ignore[arg-type]
    return runs


async def test_enabled_workflows_run_concurrently_and_claims_merge(services: Services) -> None:
    engine = engine_of(
        services,
        workflow("a", setting("a_claim", 1, 0.2)),
        workflow("b", setting("b_claim", 2, 0.2)),
    )
    started = time.perf_counter()
    claims = await engine.run_tokens_generation(make_event("kp_1"))
    elapsed = time.perf_counter() - started
    assert claims.access_token == {"a_claim": (1,), "b_claim": (2,)}
    assert claims.id_token == {"a_claim": (1,), "b_claim": (2,)}
    assert elapsed < 0.35  # 2 x 0.2 s sequentially would be 0.4 s


async def test_no_enabled_workflow_gives_no_custom_claims(services: Services) -> None:
    claims = await WorkflowEngine().run_tokens_generation(make_event("kp_1"))
    assert claims.access_token == {} and claims.id_token == {}


async def test_stop_policy_failure_raises_with_workflow_and_run_id(services: Services) -> None:
    engine = engine_of(services, workflow("ok", setting("x", 1)), workflow("bad", failing))
    with pytest.raises(WorkflowError) as caught:
        await engine.run_tokens_generation(make_event("kp_1", "org_1"))
    assert caught.value.workflow_id == "bad"
    runs = await runs_of(services, engine, workflow_id="bad")
    assert [r.id for r in runs] == [caught.value.run_id]
    assert runs[0].outcome is RunOutcome.FAILED
    assert "the billing system said no" in (runs[0].error or "")
    assert runs[0].org_code == "org_1" and runs[0].user_id == "kp_1"


async def test_continue_policy_failure_drops_only_that_workflows_claims(
    services: Services,
) -> None:
    async def half_then_fail(_e: TokensGenerationEvent, bindings: Bindings) -> None:
        bindings.access_token.set_custom_claim("half", True)
        raise RuntimeError("late failure")

    engine = engine_of(
        services,
        workflow("ok", setting("x", 1)),
        workflow("bad", half_then_fail, policy=FailurePolicy.CONTINUE),
    )
    claims = await engine.run_tokens_generation(make_event("kp_1"))
    assert claims.access_token == {"x": (1,)}
    (bad,) = await runs_of(services, engine, workflow_id="bad")
    assert bad.outcome is RunOutcome.FAILED
    assert bad.log_lines[-1]["message"] == "RuntimeError: late failure"


async def test_time_limit_stops_a_slow_workflow(services: Services) -> None:
    engine = engine_of(
        services,
        workflow("slow", setting("s", 1, delay=5), limit=0.1, policy=FailurePolicy.CONTINUE),
        workflow("fast", setting("f", 1)),
    )
    started = time.perf_counter()
    claims = await engine.run_tokens_generation(make_event("kp_1"))
    assert time.perf_counter() - started < 1
    assert claims.access_token == {"f": (1,)}
    (slow,) = await runs_of(services, engine, workflow_id="slow")
    assert slow.outcome is RunOutcome.TIMED_OUT
    assert "time limit of 0.1 s" in (slow.error or "")


async def test_time_limit_under_stop_refuses_issuance(services: Services) -> None:
    engine = engine_of(services, workflow("slow", setting("s", 1, delay=5), limit=0.05))
    with pytest.raises(WorkflowError, match="time limit"):
        await engine.run_tokens_generation(make_event("kp_1"))


@pytest.mark.parametrize(
    "claim", ["sub", "iss", "aud", "exp", "jti", "scp", "org_code", "permissions", "roles"]
)
async def test_reserved_claims_are_refused_at_run_time(services: Services, claim: str) -> None:
    engine = engine_of(services, workflow("forger", setting(claim, "evil")))
    with pytest.raises(WorkflowError, match=f"'{claim}' is reserved"):
        await engine.run_tokens_generation(make_event("kp_1"))


def test_declared_reserved_claim_is_a_start_up_error() -> None:
    with pytest.raises(WorkflowConfigError, match="reserved"):
        WorkflowRegistry([workflow("w", setting("nonce", 1), claims=frozenset({"nonce"}))], ["w"])


def test_two_workflows_declaring_one_claim_is_a_start_up_error() -> None:
    a = workflow("a", setting("plan", 1), claims=frozenset({"plan"}))
    b = workflow("b", setting("plan", 2), claims=frozenset({"plan"}))
    with pytest.raises(WorkflowConfigError, match="both set claim 'plan'"):
        WorkflowRegistry([a, b], ["a", "b"])


def test_unknown_enabled_workflow_is_a_start_up_error() -> None:
    with pytest.raises(WorkflowConfigError, match="not found"):
        WorkflowRegistry([], ["nope"])


async def test_undeclared_collision_fails_the_later_workflow_at_run_time(
    services: Services,
) -> None:
    engine = engine_of(
        services,
        workflow("first", setting("plan", 1)),
        workflow("second", setting("plan", 2), policy=FailurePolicy.CONTINUE),
    )
    claims = await engine.run_tokens_generation(make_event("kp_1"))
    assert claims.access_token == {"plan": (1,)}
    (second,) = await runs_of(services, engine, workflow_id="second")
    assert "also set by workflow 'first'" in (second.error or "")


async def test_undeclared_binding_is_a_runtime_error(services: Services) -> None:
    async def uses_env(_e: TokensGenerationEvent, bindings: Bindings) -> None:
        await bindings.env.get_environment_variable("X")

    engine = engine_of(services, workflow("w", uses_env))
    with pytest.raises(WorkflowError, match="binding 'env' is not declared"):
        await engine.run_tokens_generation(make_event("kp_1"))


async def test_deny_access_refuses_the_sign_in_with_the_reason(services: Services) -> None:
    async def deny(_e: TokensGenerationEvent, bindings: Bindings) -> None:
        bindings.auth.deny_access("Your trial has ended.")

    engine = engine_of(
        services,
        workflow("gate", deny, policy=FailurePolicy.CONTINUE, bindings=frozenset({Binding.AUTH})),
    )
    with pytest.raises(WorkflowAccessDenied) as caught:
        await engine.run_tokens_generation(make_event("kp_1"))
    assert caught.value.reason == "Your trial has ended."
    (run,) = await runs_of(services, engine)
    assert run.outcome is RunOutcome.DENIED


async def test_setting_an_undeclared_claim_fails_when_claims_are_declared(
    services: Services,
) -> None:
    engine = engine_of(services, workflow("w", setting("other", 1), claims=frozenset({"mine"})))
    with pytest.raises(WorkflowError, match="undeclared claim"):
        await engine.run_tokens_generation(make_event("kp_1"))


async def test_non_json_claim_value_is_refused(services: Services) -> None:
    engine = engine_of(services, workflow("w", setting("x", float("nan"))))
    with pytest.raises(WorkflowError, match="not JSON"):
        await engine.run_tokens_generation(make_event("kp_1"))


async def test_every_run_is_recorded_with_log_lines_and_claim_sizes(services: Services) -> None:
    async def chatty(_e: TokensGenerationEvent, bindings: Bindings) -> None:
        bindings.logger.info("hello from the workflow")
        bindings.access_token.set_custom_claim("c", {"k": "v"}, fallbacks=({"k": 1},))

    engine = engine_of(services, workflow("w", chatty))
    await engine.run_tokens_generation(make_event("kp_9", "org_9"))
    (run,) = await runs_of(services, engine)
    assert run.outcome is RunOutcome.SUCCEEDED
    assert run.trigger == "user:tokens_generation"
    assert run.log_lines[0]["message"] == "hello from the workflow"
    assert run.claim_sizes == {"access_token": {"c": [9, 7]}, "id_token": {}}
    assert run.duration_ms >= 0


async def test_secret_values_are_redacted_in_the_run_log(services: Services) -> None:
    from claimflow.workflows.environment import EnvironmentVariables, create_variable

    async with services.db.transaction() as conn:
        await create_variable(
            conn, services.box, key="API_KEY", value="s3cr3t-v4lue", is_secret=True
        )

    async def leaky(_e: TokensGenerationEvent, bindings: Bindings) -> None:
        variable = await bindings.env.get_environment_variable("API_KEY")
        assert variable is not None and variable.is_secret
        bindings.logger.info(f"calling with key {variable.value}")
        raise RuntimeError(f"bad key {variable.value}")

    registry = WorkflowRegistry(
        [
            workflow(
                "w",
                leaky,
                bindings=frozenset({Binding.ENV}),
                env_vars=frozenset({"API_KEY"}),
                policy=FailurePolicy.CONTINUE,
            )
        ],
        ["w"],
    )
    engine = WorkflowEngine(
        registry,
        run_log=RunLog(services.db, 30),
        environment=EnvironmentVariables(services.db, services.box),
    )
    _open.append(engine)
    await engine.run_tokens_generation(make_event("kp_1"))
    (run,) = await runs_of(services, engine)
    text = str(run.log_lines) + (run.error or "")
    assert "s3cr3t-v4lue" not in text
    assert "calling with key [REDACTED]" in text


def test_a_case_variant_of_a_billing_claim_is_a_start_up_error() -> None:
    with pytest.raises(WorkflowConfigError, match="reserved"):
        WorkflowRegistry(
            [workflow("w", setting("Org_Billing", 1), claims=frozenset({"Org_Billing"}))], ["w"]
        )


async def test_a_billing_claim_is_set_only_by_the_workflow_declaring_it(
    services: Services,
) -> None:
    engine = engine_of(
        services,
        workflow(
            "declares",
            setting("org_billing", {"plans": ["pro"]}),
            claims=frozenset({"org_billing"}),
        ),
        workflow(
            "forger",
            setting("billingDetails", {"plans": ["enterprise"]}),
            policy=FailurePolicy.CONTINUE,
        ),
    )
    claims = await engine.run_tokens_generation(make_event("kp_1"))
    assert claims.access_token == {"org_billing": ({"plans": ["pro"]},)}
    (forger,) = await runs_of(services, engine, workflow_id="forger")
    assert "only a workflow that declares it" in (forger.error or "")
