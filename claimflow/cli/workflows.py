"""``claimflow workflows``: what is active, recent runs, and a dry run against real data.

``test`` runs one workflow exactly as sign-in would (same engine, transport and cache) but issues
nothing and records no run; it prints the claims, the size of the tokens they would produce
under the configured budget (and which form of each claim fits), and where the time went. A
workflow on a sign-in trigger (``user:post_authentication``, ``user:existing_password_provided``)
is run on the event of a login instead (``sign_in_dry_run``): it prints the outcome, the denial
reason and the log lines.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from claimflow.app import create_app
from claimflow.cli.options import DATABASE_URL_OPTION, settings_from_flags
from claimflow.cli.sign_in_dry_run import (
    SIGN_IN_TRIGGERS,
    SignInDryRun,
    SignInOrigin,
    sign_in_dry_run,
)
from claimflow.cli.trigger_dry_run import DRY_RUN_TRIGGERS, trigger_dry_run
from claimflow.errors import ClaimflowError, TokenTooLarge
from claimflow.oidc.grants.feature_flags_claim import feature_flags_claim_of
from claimflow.oidc.workflow_events import tokens_generation_event
from claimflow.services import Services, build_services
from claimflow.settings import Settings
from claimflow.store import migrate as apply_migrations
from claimflow.store import organizations, users
from claimflow.store._rows import utcnow
from claimflow.tokens.budget import encoded_size, fit_to_budget
from claimflow.tokens.claims import TokenContext, access_token_claims, id_token_claims
from claimflow.workflows.engine import RunReport
from claimflow.workflows.event import AuthOrigin, Trigger
from claimflow.workflows.registry import WorkflowRegistry
from claimflow.workflows.runlog import RunFilter, RunOutcome, WorkflowRun, list_runs, prune_runs

app = typer.Typer(no_args_is_help=True)


def _prepare(database_url: str | None) -> Settings:
    settings = settings_from_flags(database_url)
    settings.resolved_secret_key()
    apply_migrations(settings.database_url)
    return settings


@app.command("list")
def list_workflows(database_url: str | None = DATABASE_URL_OPTION) -> None:
    """Every workflow found (built-in, entry points, workflows_dir) and which are enabled, in order."""
    settings = settings_from_flags(database_url)
    registry = WorkflowRegistry.from_settings(
        settings.workflows_enabled, settings.workflows_dir, settings.workflow_overrides
    )
    enabled = registry.enabled_ids
    typer.echo(f"{'#':<3} {'id':<16} {'trigger':<31} {'policy':<9} {'limit':<6} bindings / source")
    ordered = [registry.known[w] for w in enabled] + [
        w for wid, w in sorted(registry.known.items()) if wid not in enabled
    ]
    for workflow in ordered:
        s = workflow.settings
        position = str(enabled.index(workflow.id) + 1) if workflow.id in enabled else "-"
        limit = s.time_limit_seconds or settings.workflow_time_limit_seconds
        bindings = ",".join(sorted(b.value for b in s.bindings))
        typer.echo(
            f"{position:<3} {s.id:<16} {s.trigger.value:<31} {s.failure_policy.value:<9} "
            f"{limit:<6g} {bindings}"
        )
        typer.echo(f"{'':<3} {'':<16} {s.name} ({workflow.source})")


async def _runs(settings: Settings, filters: RunFilter, limit: int, prune: bool) -> Any:
    services = build_services(settings)
    try:
        async with services.db.transaction() as conn:
            pruned = None
            if prune:
                from datetime import timedelta

                cutoff = utcnow() - timedelta(days=settings.workflow_runs_retention_days)
                pruned = await prune_runs(conn, cutoff)
            runs, has_more = await list_runs(conn, filters, page_size=limit)
        return runs, has_more, pruned
    finally:
        await services.close()


def _run_line(run: WorkflowRun) -> str:
    when = run.started_on.strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f"{when} {run.id} {run.workflow_id:<14} {run.outcome.value:<10} "
        f"{run.duration_ms:>8.1f} ms user={run.user_id} org={run.org_code or '-'}"
    )


@app.command()
def runs(
    workflow: Annotated[str | None, typer.Option(help="Only this workflow id.")] = None,
    outcome: Annotated[RunOutcome | None, typer.Option(help="Only this outcome.")] = None,
    user: Annotated[str | None, typer.Option(help="Only this user id.")] = None,
    org: Annotated[str | None, typer.Option(help="Only this organization code.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log lines too.")] = False,
    prune: Annotated[bool, typer.Option(help="Delete runs past the retention first.")] = False,
    database_url: str | None = DATABASE_URL_OPTION,
) -> None:
    """Recent workflow runs, newest first (also GET /api/v1/workflows/runs)."""
    settings = _prepare(database_url)
    filters = RunFilter(workflow_id=workflow, outcome=outcome, user_id=user, org_code=org)
    found, has_more, pruned = asyncio.run(_runs(settings, filters, limit, prune))
    if pruned is not None:
        typer.echo(
            f"pruned {pruned} run(s) older than {settings.workflow_runs_retention_days} days"
        )
    for run in found:
        typer.echo(_run_line(run))
        if run.error:
            typer.echo(f"    error: {run.error}")
        if verbose:
            for line in run.log_lines:
                typer.echo(f"    {line['at']} {line['level']:<7} {line['message']}")
    if not found:
        typer.echo("no runs")
    elif has_more:
        typer.echo(f"... more; raise --limit (now {limit})")


@dataclass
class DryRun:
    report: RunReport
    sizes: dict[str, str]
    elapsed_ms: float


def _size_line(
    token: str,
    header: dict[str, Any],
    base: dict[str, Any],
    custom: dict[str, tuple[Any, ...]],
    budget: int,
    algorithm: str,
) -> str:
    try:
        fitted = fit_to_budget(token, header, base, custom, budget, algorithm)
    except TokenTooLarge as exc:
        return f"{exc.size} bytes: OVER the {budget}-byte budget even with the smallest forms"
    forms = []
    for name, options in custom.items():
        index = next(i for i, form in enumerate(options) if form == fitted[name])
        forms.append(f"{name}={['full', 'compact', 'reference'][index] if index < 3 else index}")
    size = encoded_size(header, fitted, algorithm)
    full_size = encoded_size(header, {**base, **{n: f[0] for n, f in custom.items()}}, algorithm)
    return (
        f"{size} bytes of {budget} ({', '.join(forms) or 'no custom claims'}; "
        f"with every full form: {full_size} bytes)"
    )


async def _dry_run(
    settings: Settings,
    workflow_id: str,
    user_id: str,
    org_code: str | None,
    origin: SignInOrigin,
    auth_origin: AuthOrigin,
) -> DryRun:
    services: Services = build_services(settings)
    create_app(services=services)  # serves the in-process Management API the workflow calls
    try:
        workflow = (
            services.workflows.registry.get(workflow_id) if services.workflows.registry else None
        )
        if workflow is None:
            raise typer.BadParameter(f"no workflow {workflow_id!r}")
        async with services.db.connect() as conn:
            user = await users.find_user(conn, user_id)
            if user is None:
                raise typer.BadParameter(f"no user {user_id!r}")
            memberships = await organizations.memberships_of_user(conn, user_id)
            flags = await feature_flags_claim_of(conn, user_id=user_id, org_code=org_code)
        membership = next((m for m in memberships if m.org_code == org_code), None)
        if org_code is not None and membership is None:
            raise typer.BadParameter(f"user {user_id} is not a member of {org_code}")
        event = tokens_generation_event(
            issuer=services.issuer,
            user_id=user_id,
            client_id=origin.client_id,
            org_code=org_code,
            origin=auth_origin,
            ip=origin.ip,
            user_agent=origin.user_agent,
        )
        await services.workflows.warm_up()  # an isolated workflow's runner, as `serve` starts it
        started = time.perf_counter()
        (report,) = await services.workflows.run_workflows([workflow], event, record=False)
        elapsed = (time.perf_counter() - started) * 1000
        key = await services.keys.ensure_active_key()
        ctx = TokenContext(
            issuer=services.issuer,
            user=user,
            client_id=origin.client_id,
            scopes=("openid", "profile", "email", "offline"),
            audience=(services.issuer + "/api",),
            auth_time=utcnow(),
            membership=membership,
            org_codes=tuple(m.org_code for m in memberships),
            feature_flags=flags,
        )
        now = int(time.time())
        access_base = access_token_claims(
            ctx, jti=secrets.token_hex(16), now=now, ttl=settings.access_token_ttl_seconds
        )
        id_base = id_token_claims(
            ctx,
            jti=secrets.token_hex(16),
            now=now,
            ttl=settings.id_token_ttl_seconds,
            at_hash="A" * 22,
        )
        sizes = {
            "access token": _size_line(
                "access_token",
                {"alg": key.algorithm, "kid": key.kid, "typ": "at+jwt"},
                access_base,
                report.access_token,
                settings.access_token_max_bytes,
                key.algorithm,
            ),
            "ID token": _size_line(
                "id_token",
                {"alg": key.algorithm, "kid": key.kid, "typ": "JWT"},
                id_base,
                report.id_token,
                settings.id_token_max_bytes,
                key.algorithm,
            ),
        }
        return DryRun(report, sizes, elapsed)
    finally:
        await services.close()


PASSWORD_VARIABLE = "CLAIMFLOW_WORKFLOW_TEST_PASSWORD"


def _print_run(report: RunReport) -> None:
    run = report.run
    typer.echo(f"workflow {run.workflow_id}: {run.outcome.value} in {run.duration_ms:.1f} ms")
    if run.error:
        typer.echo(f"error: {run.error}")
    for log_line in run.log_lines:
        typer.echo(f"  {log_line['level']:<7} {log_line['message']}")


async def _sign_in_run(
    settings: Settings,
    workflow_id: str,
    origin: SignInOrigin,
    run: Callable[..., Awaitable[SignInDryRun]] = sign_in_dry_run,
    **flags: Any,
) -> SignInDryRun:
    services: Services = build_services(settings)
    create_app(services=services)  # serves the in-process Management API the workflow calls
    try:
        registry = services.workflows.registry
        if registry is None:
            raise typer.BadParameter(f"no workflow {workflow_id!r}")
        workflow = registry.get(workflow_id)
        try:
            return await run(services, workflow, origin, **flags)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
    finally:
        await services.close()


def _test_sign_in_workflow(
    settings: Settings, workflow_id: str, origin: SignInOrigin, **flags: Any
) -> None:
    try:
        result = asyncio.run(_sign_in_run(settings, workflow_id, origin, **flags))
    except ClaimflowError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    _print_run(result.report)
    for reason in result.report.denied_reasons or (
        (result.report.denied_reason,) if result.report.denied_reason is not None else ()
    ):
        typer.echo(f"denied: {reason}")
    for suggestion in result.report.suggestions:
        typer.echo(f"suggested plan: {suggestion}")
    for token, claims in (("M2M token", result.report.access_token),):
        for name, forms in claims.items():
            typer.echo(f"{token} claim {name} = {json.dumps(forms[0], ensure_ascii=False)}")
    for write in result.refused_writes:
        typer.echo(f"  not performed (dry run): {write}")
    typer.echo(
        f"timings: workflow {result.report.run.duration_ms:.1f} ms, total "
        f"{result.elapsed_ms:.1f} ms, {result.report.management_calls} Management API call(s)"
    )
    if result.refused_writes and result.report.run.outcome is RunOutcome.FAILED:
        typer.echo("the run stopped at a write this dry run refused; --allow-writes performs it")
        return
    if result.report.run.outcome not in (RunOutcome.SUCCEEDED, RunOutcome.DENIED):
        raise typer.Exit(1)


def _trigger_of(settings: Settings, workflow_id: str) -> Trigger | None:
    registry = WorkflowRegistry.from_settings(
        settings.workflows_enabled,
        settings.workflows_dir,
        settings.workflow_overrides,
        settings.workflows_trusted,
    )
    known = registry.known.get(workflow_id)
    return known.settings.trigger if known else None


@app.command("test")
def test_workflow(
    workflow_id: Annotated[str, typer.Argument(help="The workflow to run, e.g. org_billing.")],
    user: Annotated[
        str | None, typer.Option("--user", help="The user id (kp_...) signing in.")
    ] = None,
    org: Annotated[str | None, typer.Option("--org", help="The organization code.")] = None,
    client: Annotated[
        str, typer.Option("--client", help="The application's client_id in the event.")
    ] = "claimflow-cli",
    ip: Annotated[str | None, typer.Option("--ip", help="The browser's address.")] = None,
    user_agent: Annotated[
        str | None, typer.Option("--user-agent", help="The browser's User-Agent.")
    ] = None,
    origin: Annotated[
        AuthOrigin, typer.Option("--origin", help="tokens_generation: the request's origin.")
    ] = AuthOrigin.AUTHORIZATION_REQUEST,
    email: Annotated[
        str | None, typer.Option("--email", help="existing_password_provided: the email typed.")
    ] = None,
    new_user: Annotated[
        bool, typer.Option("--new-user", help="post_authentication: the sign-in created the user.")
    ] = False,
    plan: Annotated[
        str | None, typer.Option("--plan", help="plan_selection: the requested plan code.")
    ] = None,
    current_plan: Annotated[
        str | None,
        typer.Option("--current-plan", help="plan triggers: pretend this is the current plan."),
    ] = None,
    agreement: Annotated[
        str | None,
        typer.Option("--agreement", help="plan_cancellation_request: the agreement to cancel."),
    ] = None,
    audience: Annotated[
        str | None, typer.Option("--audience", help="m2m_token_generation: the token's audience.")
    ] = None,
    allow_writes: Annotated[
        bool,
        typer.Option("--allow-writes", help="Perform the workflow's Management API writes."),
    ] = False,
    database_url: str | None = DATABASE_URL_OPTION,
) -> None:
    """Run one workflow against real data without issuing tokens; print claims, sizes, timings.

    A password workflow reads the password from CLAIMFLOW_WORKFLOW_TEST_PASSWORD or asks for it.
    """
    settings = _prepare(database_url)
    where = SignInOrigin(client, ip, user_agent)
    trigger = _trigger_of(settings, workflow_id)
    if trigger in DRY_RUN_TRIGGERS:
        _test_sign_in_workflow(
            settings,
            workflow_id,
            where,
            run=trigger_dry_run,
            user_id=user,
            org_code=org,
            plan=plan,
            current_plan_code=current_plan,
            agreement_id=agreement,
            audience=audience,
            allow_writes=allow_writes,
        )
        return
    if trigger in SIGN_IN_TRIGGERS:
        password = None
        if trigger is Trigger.USER_EXISTING_PASSWORD_PROVIDED:
            password = os.environ.get(PASSWORD_VARIABLE) or typer.prompt(
                "Password", hide_input=True
            )
        _test_sign_in_workflow(
            settings,
            workflow_id,
            where,
            user_id=user,
            org_code=org,
            email=email,
            password=password,
            new_user=new_user,
            allow_writes=allow_writes,
        )
        return
    if user is None:
        raise typer.BadParameter("--user is required", param_hint="--user")
    try:
        result = asyncio.run(_dry_run(settings, workflow_id, user, org, where, origin))
    except ClaimflowError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    run = result.report.run
    _print_run(result.report)
    for token, claims in (
        ("access token", result.report.access_token),
        ("ID token", result.report.id_token),
    ):
        typer.echo(f"{token} claims:")
        if not claims:
            typer.echo("  (none)")
        for name, forms in claims.items():
            typer.echo(f"  {name} = {json.dumps(forms[0], indent=2, ensure_ascii=False)}")
    typer.echo("token sizes:")
    for token, size in result.sizes.items():
        typer.echo(f"  {token}: {size}")
    typer.echo(
        f"timings: workflow {run.duration_ms:.1f} ms, total {result.elapsed_ms:.1f} ms, "
        f"{result.report.management_calls} Management API call(s)"
    )
    if run.outcome is not RunOutcome.SUCCEEDED:
        raise typer.Exit(1)
