"""Hostile workflows, each run in a real runner process, each contained (design §8).

Every test writes one workflow file into a workflows directory, builds the deployment's services
from settings as ``claimflow serve`` does, and runs the workflow through the engine. The same
workflows, run in-process as before runner processes existed, stalled the event loop, held the
deadline, or read what they were not given.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from claimflow.app import create_app
from claimflow.errors import WorkflowConfigError
from claimflow.oidc.workflow_events import existing_password_provided_event
from claimflow.services import Services, build_services
from claimflow.workflows.engine import RunReport
from claimflow.workflows.environment import create_variable
from claimflow.workflows.event import ExistingPasswordProvidedEvent
from claimflow.workflows.runlog import RunOutcome
from tests.conftest import ISSUER, make_settings
from tests.workflows.conftest import FakeKinde, make_event

HEADER = """
import asyncio, gc, json, os, time
from claimflow.workflows import Binding, FailurePolicy, Trigger, WorkflowSettings

TOKENS = frozenset({Binding.ACCESS_TOKEN, Binding.ID_TOKEN})
"""

SECRET_KEY = "sk-" + secrets.token_hex(16)
"""The deployment's secret key in these tests: random, so no source file holds it."""

Deploy = Callable[..., "asyncio.Future[Services]"]


@pytest.fixture
async def deploy(tmp_path: Path, db_url: str) -> AsyncIterator[Callable[..., object]]:
    """Write workflow sources, build services with them enabled and their runners warm."""
    built: list[Services] = []

    async def make(sources: dict[str, str], **settings: object) -> Services:
        for name, body in sources.items():
            (tmp_path / f"{name}.py").write_text(HEADER + textwrap.dedent(body))
        services = build_services(
            make_settings(
                db_url,
                secret_key=SECRET_KEY,
                workflows_dir=str(tmp_path),
                workflows_enabled=list(sources),
                workflow_runner_pool_size=1,
                **settings,
            )
        )
        built.append(services)
        create_app(services=services)  # serves the in-process Management API, as a server does
        await services.workflows.warm_up()
        return services

    yield make
    for services in built:
        await services.close()


def workflow_source(wid: str, body: str, **settings: str) -> str:
    extra = "".join(f"    {k}={v},\n" for k, v in settings.items())
    return (
        f"workflow_settings = WorkflowSettings(\n    id={wid!r},\n    name={wid!r},\n{extra})\n\n"
        f"async def run(event, bindings):\n{textwrap.indent(textwrap.dedent(body), '    ')}"
    )


async def run_one(services: Services, wid: str, org: str | None = None) -> RunReport:
    assert services.workflows.registry is not None
    workflow = services.workflows.registry.get(wid)
    (report,) = await services.workflows.run_workflows(
        [workflow], make_event("kp_1", org), record=False
    )
    return report


async def wait_replaced(services: Services, wid: str) -> None:
    assert services.workflows.registry is not None
    pool = services.workflows.runners.pool(services.workflows.registry.get(wid))
    async with asyncio.timeout(30):
        await pool.runner_replaced.wait()


BLOCKING = {
    "blocks": "time.sleep(30)",
    "busy_loop": "while True:\n    pass",
    "swallows_cancel": (
        "try:\n    await asyncio.sleep(30)\nexcept asyncio.CancelledError:\n    time.sleep(30)"
    ),
}


@pytest.mark.parametrize("wid", sorted(BLOCKING))
async def test_blocking_code_fails_only_its_own_run_and_its_runner_is_replaced(
    deploy: Callable[..., object], wid: str
) -> None:
    source = workflow_source(
        wid,
        BLOCKING[wid],
        bindings="TOKENS",
        time_limit_seconds="0.3",
        failure_policy="FailurePolicy.CONTINUE",
    )
    services: Services = await deploy({wid: source})  # type: ignore[misc]
    app = create_app(services=services)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER) as web:
        run = asyncio.create_task(run_one(services, wid))
        discovery = await web.get("/.well-known/openid-configuration")
        # Discovery was answered while the workflow still blocked its runner: the server's
        # event loop never waited on it.
        assert discovery.status_code == 200
        assert not run.done()
        report = await run
    assert report.run.outcome is RunOutcome.TIMED_OUT
    await wait_replaced(services, wid)
    # The replacement runner serves the next run (which times out the same way, no worse).
    again = await run_one(services, wid)
    assert again.run.outcome is RunOutcome.TIMED_OUT


async def test_a_secret_of_another_workflow_cannot_be_read(
    deploy: Callable[..., object], db_url: str
) -> None:
    owner = workflow_source(
        "crm", "pass", bindings="frozenset({Binding.ENV})", env_vars='frozenset({"CRM_KEY"})'
    )
    thief = workflow_source(
        "thief",
        """
        found = await bindings.env.get_environment_variable("CRM_KEY")
        bindings.access_token.set_custom_claim("stolen", found.value)
        """,
        bindings="TOKENS | {Binding.ENV}",
        env_vars='frozenset({"MY_OWN"})',
    )
    services: Services = await deploy({"crm": owner, "thief": thief})  # type: ignore[misc]
    async with services.db.transaction() as conn:
        await create_variable(conn, services.box, key="CRM_KEY", value="crm-s3cret", is_secret=True)
    report = await run_one(services, "thief")
    assert report.run.outcome is RunOutcome.FAILED
    assert "'CRM_KEY' is not declared by workflow 'thief'" in (report.run.error or "")
    assert "crm-s3cret" not in json.dumps(report.run.log_lines) + (report.run.error or "")


async def test_a_declared_secret_is_redacted_from_the_run_log_and_error(
    deploy: Callable[..., object],
) -> None:
    leaky = workflow_source(
        "leaky",
        """
        key = (await bindings.env.get_environment_variable("CRM_KEY")).value
        bindings.logger.info(f"using {key}")
        raise RuntimeError(f"CRM refused {key}")
        """,
        bindings="frozenset({Binding.ENV})",
        env_vars='frozenset({"CRM_KEY"})',
        failure_policy="FailurePolicy.CONTINUE",
    )
    services: Services = await deploy({"leaky": leaky})  # type: ignore[misc]
    async with services.db.transaction() as conn:
        await create_variable(conn, services.box, key="CRM_KEY", value="crm-s3cret", is_secret=True)
    report = await run_one(services, "leaky")
    text = json.dumps(report.run.log_lines) + (report.run.error or "")
    assert "crm-s3cret" not in text
    assert "using [REDACTED]" in text and "CRM refused [REDACTED]" in text


SNOOP = """
found = {"environ": sorted(k for k in os.environ if k.startswith(("CLAIMFLOW", "KINDE"))),
         "gc": []}
for obj in gc.get_objects():
    if type(obj).__name__ in {"Settings", "SecretBox", "Database", "KeyManager"}:
        found["gc"].append(repr(vars(obj)) if hasattr(obj, "__dict__") else repr(obj))
try:
    with open("/proc/self/environ", "rb") as environ:
        found["proc"] = [v.decode() for v in environ.read().split(b"\\0") if b"CLAIMFLOW" in v]
except PermissionError:  # a runner that switched user from root is not dumpable
    found["proc"] = "unreadable"
bindings.access_token.set_custom_claim("snooped", found)
"""


async def test_the_process_environment_and_memory_hold_no_secret_key(
    deploy: Callable[..., object],
) -> None:
    snoop = workflow_source("snoop", SNOOP, bindings="TOKENS")
    services: Services = await deploy({"snoop": snoop})  # type: ignore[misc]
    report = await run_one(services, "snoop")
    assert report.ok, report.run.error
    (snooped,) = report.access_token["snooped"]
    assert snooped["proc"] in ([], "unreadable")
    assert snooped == {"environ": [], "gc": [], "proc": snooped["proc"]}
    assert SECRET_KEY not in json.dumps(snooped)


async def test_an_undeclared_binding_is_refused_by_the_server_even_around_the_proxy(
    deploy: Callable[..., object],
) -> None:
    # It finds the runner's channel through gc and sends a Management API call itself.
    sneaky = workflow_source(
        "sneaky",
        """
        try:
            bindings.management_api
        except Exception as exc:
            bindings.logger.info(f"proxy: {exc}")
        channel = next(o for o in gc.get_objects() if type(o).__name__ == "_Channel")
        answer = await channel.call(1, "management_api",
                                    {"method": "GET", "path": "users", "params": {}, "body": None})
        bindings.access_token.set_custom_claim("users", answer)
        """,
        bindings="TOKENS",
        failure_policy="FailurePolicy.CONTINUE",
    )
    services: Services = await deploy({"sneaky": sneaky})  # type: ignore[misc]
    report = await run_one(services, "sneaky")
    assert report.run.outcome is RunOutcome.FAILED
    assert "'management_api' is not declared" in (report.run.error or "")
    assert "proxy: the binding 'management_api' is not declared" in json.dumps(report.run.log_lines)


async def test_management_api_calls_carry_only_the_declared_scopes_writes_included(
    deploy: Callable[..., object],
) -> None:
    body = """
    created = await bindings.management_api.post("user", {"profile": {"given_name": "W"},
        "identities": [{"type": "email", "details": {"email": event.context.user.id + "@w.test"}}]})
    bindings.access_token.set_custom_claim("created", created["id"])
    """
    reader = workflow_source(
        "reader",
        body,
        bindings="TOKENS | {Binding.MANAGEMENT_API}",
        management_api_scopes='frozenset({"read:users"})',
        failure_policy="FailurePolicy.CONTINUE",
    )
    writer = workflow_source(
        "writer",
        body,
        bindings="TOKENS | {Binding.MANAGEMENT_API}",
        management_api_scopes='frozenset({"create:users"})',
    )
    services: Services = await deploy({"reader": reader, "writer": writer})  # type: ignore[misc]
    refused = await run_one(services, "reader")
    assert refused.run.outcome is RunOutcome.FAILED
    assert "403" in (refused.run.error or "") or "scope" in (refused.run.error or "")
    created = await run_one(services, "writer")
    assert created.ok, created.run.error
    assert str(created.access_token["created"][0]).startswith("kp_")


@pytest.mark.parametrize(
    "claim",
    ["org_billing", "billingDetails", "ORG_BILLING", "gty", "GTY", " sub", "cnf", "v", "email"],
)
async def test_a_runner_cannot_set_built_in_or_reserved_claims(
    deploy: Callable[..., object], claim: str
) -> None:
    forger = workflow_source(
        "forger",
        # The ID token first: it reserves what the user's profile says (email, name, ...).
        f"bindings.id_token.set_custom_claim({claim!r}, {{'plans': ['enterprise']}})\n"
        f"bindings.access_token.set_custom_claim({claim!r}, {{'plans': ['enterprise']}})",
        bindings="TOKENS",
    )
    services: Services = await deploy({"forger": forger})  # type: ignore[misc]
    report = await run_one(services, "forger")
    assert report.run.outcome is RunOutcome.FAILED
    assert report.access_token == {} and report.id_token == {}


async def test_memory_beyond_the_limit_fails_the_run_not_the_server(
    deploy: Callable[..., object],
) -> None:
    hog = workflow_source(
        "hog",
        "hoard = bytearray(2 * 1024 * 1024 * 1024)\nbindings.access_token.set_custom_claim('n', 1)",
        bindings="TOKENS",
        failure_policy="FailurePolicy.CONTINUE",
    )
    services: Services = await deploy({"hog": hog}, workflow_runner_memory_mb=256)  # type: ignore[misc]
    report = await run_one(services, "hog")
    assert report.run.outcome is RunOutcome.FAILED
    assert "MemoryError" in (report.run.error or "")


async def test_a_workflow_on_a_trigger_claimflow_does_not_fire_is_a_start_up_error(
    tmp_path: Path, db_url: str
) -> None:
    source = workflow_source("mfa", "pass", trigger="Trigger.USER_PRE_MFA")
    (tmp_path / "mfa.py").write_text(HEADER + source)
    settings = make_settings(db_url, workflows_dir=str(tmp_path), workflows_enabled=["mfa"])
    with pytest.raises(WorkflowConfigError, match="'user:pre_mfa', which claimflow does not fire"):
        build_services(settings)


async def test_fetch_goes_only_to_declared_hosts_and_refuses_private_addresses(
    deploy: Callable[..., object], kinde: FakeKinde
) -> None:
    host = kinde.base_url.removeprefix("http://")
    url = f"{kinde.base_url}/api/v1/organization?code=org_1&api_key=k3y"
    body = f"""
    answer = await bindings.fetch({url!r})
    bindings.access_token.set_custom_claim("status", answer.status)
    """
    allowed = workflow_source(
        "allowed",
        body,
        bindings="TOKENS | {Binding.FETCH}",
        fetch_hosts=f"frozenset({{{host!r}}})",
        allow_private_fetch="True",
    )
    private = workflow_source(
        "private",
        body,
        bindings="TOKENS | {Binding.FETCH}",
        fetch_hosts=f"frozenset({{{host!r}}})",
        failure_policy="FailurePolicy.CONTINUE",
    )
    elsewhere = workflow_source(
        "elsewhere",
        body,
        bindings="TOKENS | {Binding.FETCH}",
        fetch_hosts='frozenset({"crm.example.com"})',
        allow_private_fetch="True",
        failure_policy="FailurePolicy.CONTINUE",
    )
    services: Services = await deploy(  # type: ignore[misc]
        {"allowed": allowed, "private": private, "elsewhere": elsewhere}
    )
    done = await run_one(services, "allowed")
    assert done.ok, done.run.error
    assert done.access_token["status"] == (200,)
    (line,) = [entry["message"] for entry in done.run.log_lines if "fetch" in entry["message"]]
    assert line.startswith(f"fetch GET {kinde.base_url}/api/v1/organization -> 200")
    assert "k3y" not in line  # the query, which may hold keys, is not logged
    refused = await run_one(services, "private")
    assert "loopback, private or reserved address" in (refused.run.error or "")
    undeclared = await run_one(services, "elsewhere")
    assert "is not in the workflow's fetch_hosts" in (undeclared.run.error or "")
    assert len(kinde.requests) == 1


async def test_fetch_connects_to_the_address_it_checked_not_to_a_rebound_name(
    deploy: Callable[..., object], kinde: FakeKinde, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name answers a public address first, loopback afterwards. Checking
    one answer and connecting by name (a second resolution) reached the real server on loopback;
    the pinned fetch resolves once and connects to the checked address, never to loopback."""
    port = int(kinde.base_url.rsplit(":", 1)[1])
    real = socket.getaddrinfo
    answers: list[str] = []

    def rebinding(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host  # anyio passes IDNA bytes
        if name != "crm.rebind.test":
            return real(host, *args, **kwargs)
        address = "93.184.215.14" if not answers else "127.0.0.1"
        answers.append(address)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    body = f"""
    answer = await bindings.fetch("http://crm.rebind.test:{port}/api/v1/organization?code=org_1")
    bindings.access_token.set_custom_claim("status", answer.status)
    """
    source = workflow_source(
        "rebind",
        body,
        bindings="TOKENS | {Binding.FETCH}",
        fetch_hosts='frozenset({"crm.rebind.test"})',
        failure_policy="FailurePolicy.CONTINUE",
        time_limit_seconds="1",
    )
    services: Services = await deploy({"rebind": source})  # type: ignore[misc]
    await run_one(services, "rebind")
    assert answers == ["93.184.215.14"]  # resolved once; what was checked is what was dialled
    assert kinde.requests == []  # nothing reached the server on loopback


TYPED_PASSWORD = "typed-Pa55word-" + secrets.token_hex(4)


def _password_event() -> ExistingPasswordProvidedEvent:
    return existing_password_provided_event(
        issuer="http://claimflow.test",
        client_id="app_test",
        email="someone@example.com",
        password=TYPED_PASSWORD,
        hashed_password="$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
    )


async def test_the_typed_password_never_reaches_the_run_log_or_the_servers_stderr(
    deploy: Callable[..., object], capfd: pytest.CaptureFixture[str]
) -> None:
    """Kinde: "Any attempt to log the password out to the console in this workflow will be
    redacted". A runner's log lines, its ``print`` and its error text all pass the password."""
    leaky = workflow_source(
        "leaky_migration",
        """
        password = event.context.auth.password
        bindings.logger.info(f"checking {event.context.auth.provided_email} with {password}")
        bindings.logger.info(f"hash {event.context.auth.hashed_password}")
        print("printed:", password)
        print("repr:", repr(event))
        raise RuntimeError(f"legacy refused {password}")
        """,
        trigger="Trigger.USER_EXISTING_PASSWORD_PROVIDED",
        bindings="frozenset({Binding.LOGGER})",
        failure_policy="FailurePolicy.CONTINUE",
    )
    services: Services = await deploy({"leaky_migration": leaky})  # type: ignore[misc]
    assert services.workflows.registry is not None
    workflow = services.workflows.registry.get("leaky_migration")
    (report,) = await services.workflows.run_workflows([workflow], _password_event())
    assert report.run.outcome is RunOutcome.FAILED
    recorded = json.dumps(report.run.as_json())
    assert TYPED_PASSWORD not in recorded and "aGFzaGhhc2hoYXNoaGFzaA" not in recorded
    assert "checking someone@example.com with [REDACTED]" in recorded
    assert "legacy refused [REDACTED]" in recorded
    out, err = capfd.readouterr()
    assert "printed: [REDACTED]" in err + out
    assert TYPED_PASSWORD not in err + out


def test_a_sign_in_workflow_may_not_declare_token_bindings(tmp_path: Path, db_url: str) -> None:
    """No token exists at post-authentication: Kinde gives the token bindings on
    ``user:tokens_generation`` only, so declaring them is refused at start-up."""
    source = workflow_source(
        "early_claims",
        "bindings.access_token.set_custom_claim('x', 1)",
        trigger="Trigger.USER_POST_AUTHENTICATION",
        bindings="TOKENS",
    )
    (tmp_path / "early_claims.py").write_text(HEADER + source)
    settings = make_settings(
        db_url, workflows_dir=str(tmp_path), workflows_enabled=["early_claims"]
    )
    with pytest.raises(WorkflowConfigError, match="no token exists yet"):
        build_services(settings)
