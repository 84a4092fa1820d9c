"""The workflow engine: runs the enabled workflows of a trigger and merges their claims.

``run_tokens_generation`` is the seam the token endpoint calls (design §3). Every enabled
``user:tokens_generation`` workflow runs concurrently under its own time limit with fresh
bindings; then, in the order settings enable them, their claims are merged:

- a workflow that failed or timed out under ``continue`` contributes nothing (run logged failed);
- under ``stop`` its failure raises ``WorkflowError(workflow_id, run_id, message)``, so the token
  endpoint issues nothing and answers with an OAuth error naming both;
- ``auth.deny_access(reason)`` raises ``WorkflowAccessDenied`` whatever the policy;
- a claim set by two workflows is a failure of the later one (design §7: several workflows per
  trigger, collisions refused); declared claims make this a start-up error instead.

Every run is recorded in the run log, which writes in the background.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx

from claimflow.domain.ids import new_prefixed_id
from claimflow.errors import WorkflowAccessDenied, WorkflowError, WorkflowRuntimeError
from claimflow.observability import metrics, tracing
from claimflow.store._rows import utcnow
from claimflow.tokens.budget import FitMemo
from claimflow.tokens.reserved import ACCESS_TOKEN_RESERVED, ID_TOKEN_RESERVED
from claimflow.workflows.bindings import Auth, Plan, TokenClaims, WorkflowLogger
from claimflow.workflows.capabilities import RunCapabilities, VariableSource
from claimflow.workflows.definition import Binding, FailurePolicy, RunMemo, Workflow
from claimflow.workflows.event import TokensGenerationEvent, Trigger, WorkflowEvent, event_to_wire
from claimflow.workflows.fetch import pinned_fetch_client
from claimflow.workflows.management_client import InProcessTransport, ManagementTransport
from claimflow.workflows.runlog import RunLog, RunOutcome, WorkflowRun
from claimflow.workflows.runtime.pool import DeadlinePassed, RunnerPools

if TYPE_CHECKING:
    from claimflow.cache import BillingCache
    from claimflow.workflows.registry import WorkflowRegistry

ClaimForms = tuple[Any, ...]
"""A custom claim's values, preferred first: e.g. (full, compact, reference) for org_billing.

The token size budget (``claimflow.tokens.budget``) takes the first form of every claim and steps
the largest claims down to their next form until the token fits."""

log = logging.getLogger("claimflow.workflows")


@dataclass(frozen=True, slots=True)
class TokenCustomClaims:
    """Custom claims the workflows set, per token, each with its fallback forms."""

    access_token: dict[str, ClaimForms] = field(default_factory=dict)
    id_token: dict[str, ClaimForms] = field(default_factory=dict)
    access_token_encoded: dict[str, tuple[bytes, ...]] = field(default_factory=dict)
    """The compact JSON of the forms, as the run encoded them (the budget and signer reuse it);
    a claim missing here is encoded when the token is built."""
    id_token_encoded: dict[str, tuple[bytes, ...]] = field(default_factory=dict)
    access_token_fits: FitMemo | None = None
    """The size budget's decisions for ``access_token``, kept with claims that never change
    (a ``SettledRun``'s, shared by every token answered from its entry); ``None`` otherwise."""


@dataclass(slots=True)
class RunReport:
    """One run's result: what the run log records plus the claims themselves."""

    workflow: Workflow
    run: WorkflowRun
    access_token: dict[str, ClaimForms]
    id_token: dict[str, ClaimForms]
    denied_reason: str | None = None
    denied_reasons: tuple[str, ...] = ()
    suggestions: tuple[str, ...] = ()
    access_token_encoded: dict[str, tuple[bytes, ...]] = field(default_factory=dict)
    id_token_encoded: dict[str, tuple[bytes, ...]] = field(default_factory=dict)
    management_calls: int = 0

    @property
    def ok(self) -> bool:
        return self.run.outcome is RunOutcome.SUCCEEDED


@dataclass(frozen=True, slots=True)
class SettledRun:
    """The outcome of a run made from an in-memory entry (``Workflow.run_now``), kept on that
    entry (``RunMemo.settled``) so later runs on it repeat it without redoing it: the claims
    with their encodings, the claim sizes and the log lines (level, message). Shared by those
    runs' reports and records, so nothing may change it.

    ``claims`` is also what the engine answers when this workflow is the only one that runs
    (every warm organization API key's token), with the memo of the size budget's decisions
    for it, since the same claims meet the same budget on every such token."""

    claims: TokenCustomClaims
    claim_sizes: dict[str, Any]
    log_lines: tuple[tuple[str, str], ...]


def _sizes(encoded: dict[str, tuple[bytes, ...]]) -> dict[str, list[int]]:
    """Encoded JSON size of each form (the encodings ``TokenClaims`` made when it was set)."""
    return {name: [len(text) for text in texts] for name, texts in encoded.items()}


class WorkflowEngine:
    """Runs ``user:tokens_generation`` workflows; with none enabled, tokens get no custom claims."""

    def __init__(
        self,
        registry: WorkflowRegistry | None = None,
        *,
        run_log: RunLog | None = None,
        management: ManagementTransport | None = None,
        environment: VariableSource | None = None,
        billing_cache: BillingCache | None = None,
        default_time_limit_seconds: float = 2.0,
        runners: RunnerPools | None = None,
    ) -> None:
        self.registry = registry
        self.runners = runners or RunnerPools()
        self._http: dict[bool, httpx.AsyncClient] = {}
        self.run_log = run_log
        self.management = management
        self.environment = environment
        self.billing_cache = billing_cache
        self.default_time_limit_seconds = default_time_limit_seconds

    def serve_management_api(self, app: Any) -> None:
        """Hand the in-process Management API transport the app that serves ``/api/v1``.

        The app factory calls this with the app it built, so this package never builds (or
        imports) the HTTP layers itself (design §2)."""
        if isinstance(self.management, InProcessTransport):
            self.management.attach(app)

    def enabled(self, trigger: Trigger | None = Trigger.USER_TOKENS_GENERATION) -> list[Workflow]:
        return [] if self.registry is None else self.registry.enabled(trigger)

    async def run(self, trigger: Trigger, event: WorkflowEvent) -> TokenCustomClaims:
        """Run every enabled workflow of ``trigger`` on ``event`` and merge their claims."""
        workflows = _applicable(self.enabled(trigger), event)
        if not workflows:
            return TokenCustomClaims()
        if len(workflows) == 1:
            return await self._run_alone(workflows[0], event)
        reports = await self.run_workflows(workflows, event)
        return self._merge(reports)

    async def _run_alone(self, workflow: Workflow, event: WorkflowEvent) -> TokenCustomClaims:
        """``run_workflows`` and ``_merge`` for the one workflow that applies to ``event``.

        A warm organization API key's every token comes here, so a run answered from its
        entry's settled outcome skips what cannot happen to it: it succeeded, sets nothing
        another workflow sets and denies nothing, so its claims are the settled ones
        (``SettledRun.claims``), with no report and no merge. It is still timed, counted and
        recorded like any other run (``_settled_run``), and the entry's currency is still
        decided on this event (``_memo``: the billing version read with this request, design
        §9), once: a run that is not answered so is made with the entry found here."""
        started = time.perf_counter()
        memo = self._memo(workflow, event)
        settled = None if memo is None else memo.settled.get(workflow.id)
        if isinstance(settled, SettledRun):
            run = self._settled_run(workflow, event, settled, started)
            if self.run_log is not None:
                self.run_log.record((run,))
            return settled.claims
        report = await self._run_on(workflow, event, memo, started)
        if self.run_log is not None:
            self.run_log.record((report.run,))
        return self._merge([report])

    async def run_tokens_generation(self, event: TokensGenerationEvent) -> TokenCustomClaims:
        """``user:tokens_generation``: the seam the token endpoint calls (design §3)."""
        return await self.run(Trigger.USER_TOKENS_GENERATION, event)

    async def run_workflows(
        self, workflows: Sequence[Workflow], event: WorkflowEvent, *, record: bool = True
    ) -> list[RunReport]:
        if len(workflows) == 1:
            reports = [await self._run(workflows[0], event)]
        else:
            reports = list(await asyncio.gather(*(self._run(w, event) for w in workflows)))
        if len(reports) > 1:
            self._refuse_collisions(reports)
        if record and self.run_log is not None:
            self.run_log.record([r.run for r in reports])
        return reports

    def _refuse_collisions(self, reports: list[RunReport]) -> None:
        owner: dict[tuple[str, str], str] = {}
        for report in reports:
            if not report.ok:
                continue
            for token, claims in (("access", report.access_token), ("id", report.id_token)):
                clash = next((n for n in claims if (token, n) in owner), None)
                if clash is not None:
                    message = (
                        f"claim {clash!r} is also set by workflow {owner[(token, clash)]!r}; "
                        "two workflows may not set one claim"
                    )
                    report.run = _failed(report.run, RunOutcome.FAILED, message)
                    report.access_token, report.id_token = {}, {}
                    report.access_token_encoded, report.id_token_encoded = {}, {}
                    break
            else:
                for token, claims in (("access", report.access_token), ("id", report.id_token)):
                    for name in claims:
                        owner[(token, name)] = report.workflow.id

    def _merge(self, reports: list[RunReport]) -> TokenCustomClaims:
        for report in reports:
            if report.denied_reason is not None:
                raise WorkflowAccessDenied(
                    report.workflow.id,
                    report.run.id,
                    report.denied_reason,
                    report.denied_reasons,
                    report.suggestions,
                )
        for report in reports:
            if not report.ok and report.workflow.settings.failure_policy is FailurePolicy.STOP:
                raise WorkflowError(report.workflow.id, report.run.id, report.run.error or "failed")
        if len(reports) == 1:
            # The report's dicts are its own (copied from the run's bindings): no need to copy.
            (only,) = reports
            if not only.ok:
                return TokenCustomClaims()
            return TokenCustomClaims(
                only.access_token, only.id_token, only.access_token_encoded, only.id_token_encoded
            )
        merged = TokenCustomClaims()
        for report in reports:
            if report.ok:
                merged.access_token.update(report.access_token)
                merged.id_token.update(report.id_token)
                merged.access_token_encoded.update(report.access_token_encoded)
                merged.id_token_encoded.update(report.id_token_encoded)
        return merged

    async def warm_up(self) -> None:
        """Spawn the runners of the enabled untrusted workflows; wait until each can run.

        Called at start-up, so the first sign-in does not pay for starting an interpreter; a
        workflow whose runner cannot load it is a start-up error (``WorkflowConfigError``)."""
        pools = [self.runners.pool(w) for w in self.enabled(None) if not w.trusted]
        await asyncio.gather(*(pool.ready() for pool in pools))

    async def _execute(
        self,
        workflow: Workflow,
        event: WorkflowEvent,
        capabilities: RunCapabilities,
        access: TokenClaims,
        id_token: TokenClaims,
        auth: Auth,
        plan: Plan,
        limit: float,
        memo: RunMemo | None,
    ) -> None:
        """Run the workflow in-process (trusted) or in a runner; raises on failure."""
        if workflow.trusted:
            bindings = capabilities.trusted_bindings(access, id_token, auth, plan)
            if memo is not None and workflow.run_now is not None:
                workflow.run_now(event, bindings, memo)
                return  # done from memory without waiting: no task, no deadline to watch
            await _within_deadline(workflow, workflow.entry(event, bindings), limit)
            return
        logger = capabilities.logger
        done = await self.runners.pool(workflow).run(
            event_to_wire(event),
            capabilities.deadline,
            capabilities.answer,
            lambda level, message: logger.line(level, message),
            await capabilities.declared_values(),
        )
        if done.get("error") is not None:
            raise WorkflowRuntimeError(str(done["error"]))
        # The runner's claims are checked again here: reserved names, owners, JSON (design §8).
        answered = (
            (access, done.get("access_token")),
            (id_token, done.get("id_token")),
            (access, done.get("m2m_token")),
        )
        for claims, wire in answered:
            if not isinstance(wire, dict):
                continue
            for name, forms in wire.items():
                if not isinstance(forms, list) or not forms:
                    raise WorkflowRuntimeError(f"claim {name!r} came back without a value")
                claims.set_custom_claim(name, forms[0], forms[1:])
        denied = done.get("denied")
        if denied is not None:
            auth.deny_access(str(denied))
        plan_denied = done.get("plan_denied")
        if isinstance(plan_denied, dict) and Binding.PLAN in workflow.settings.bindings:
            plan.reasons.extend(str(r) for r in plan_denied.get("reasons") or ())
            plan.suggestions.extend(str(s) for s in plan_denied.get("suggestions") or ())

    def _memo(self, workflow: Workflow, event: WorkflowEvent) -> RunMemo | None:
        """The in-memory entry a trusted workflow's run would read, if current now (``warm``).

        Not for a run whose event carries secrets: its log lines are redacted per run."""
        if workflow.warm is None or not workflow.trusted or event.secrets:
            return None
        cache = self.billing_cache if Binding.BILLING_CACHE in workflow.settings.bindings else None
        return workflow.warm(event, cache)

    def _settled_report(
        self, workflow: Workflow, event: WorkflowEvent, settled: SettledRun, started: float
    ) -> RunReport:
        """The report of a run answered from the outcome kept on its entry (``RunMemo``), among
        other workflows' runs: its record (``_settled_run``) and the settled run's own claim
        dictionaries, which nothing downstream changes (``_merge`` and the size budget read
        them; ``SettledRun``)."""
        return RunReport(
            workflow=workflow,
            run=self._settled_run(workflow, event, settled, started),
            access_token=settled.claims.access_token,
            id_token=settled.claims.id_token,
            access_token_encoded=settled.claims.access_token_encoded,
            id_token_encoded=settled.claims.id_token_encoded,
        )

    def _settled_run(
        self, workflow: Workflow, event: WorkflowEvent, settled: SettledRun, started: float
    ) -> WorkflowRun:
        """The record of a run answered from the outcome kept on its entry: the claim sizes
        and log lines of the run that settled it, recorded as a run of its own (new id, start,
        duration, log line times).

        This is every warm token's path, so it builds only what the record needs: the log lines
        directly (a settled run's lines were redacted when it ran, and its event carried no
        secrets, ``_memo``)."""
        started_on = utcnow()
        lines: list[dict[str, str]] = []
        if settled.log_lines:
            at = started_on.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            lines = [
                {"at": at, "level": level, "message": message}
                for level, message in settled.log_lines
            ]
        duration_ms = (time.perf_counter() - started) * 1000
        metrics.record_workflow_run(workflow.id, RunOutcome.SUCCEEDED.value, duration_ms / 1000)
        return _run_record(
            workflow,
            event,
            started_on,
            duration_ms,
            RunOutcome.SUCCEEDED,
            lines,
            settled.claim_sizes,
        )

    async def _run(self, workflow: Workflow, event: WorkflowEvent) -> RunReport:
        started = time.perf_counter()
        memo = self._memo(workflow, event)
        if memo is not None:
            settled = memo.settled.get(workflow.id)
            if isinstance(settled, SettledRun):
                return self._settled_report(workflow, event, settled, started)
        return await self._run_on(workflow, event, memo, started)

    async def _run_on(
        self, workflow: Workflow, event: WorkflowEvent, memo: RunMemo | None, started: float
    ) -> RunReport:
        """A run made (not answered from a settled outcome), from ``memo`` when the entry it
        reads is in memory and current (``_memo``), else in its task under its deadline."""
        settings = workflow.settings
        logger = WorkflowLogger()
        for secret in event.secrets:
            logger.add_secret(secret)
        encodings: dict[int, bytes] = {}
        declared = settings.claims
        token = "M2M token" if settings.trigger is Trigger.M2M_TOKEN_GENERATION else "access token"
        access = TokenClaims(token, ACCESS_TOKEN_RESERVED, encodings, declared)
        id_token = TokenClaims("ID token", ID_TOKEN_RESERVED, encodings, declared)
        auth = Auth()
        plan = Plan(settings.trigger.value)
        limit = settings.time_limit_seconds or self.default_time_limit_seconds
        capabilities = RunCapabilities(
            workflow,
            logger,
            asyncio.get_running_loop().time() + limit,
            environment=self.environment,
            management=self.management,
            billing_cache=self.billing_cache,
            http=(
                self._fetch_client(settings.allow_private_fetch)
                if Binding.FETCH in settings.bindings
                else None
            ),
        )
        started_on = utcnow()
        outcome, error = RunOutcome.SUCCEEDED, None
        try:
            await tracing.traced(
                f"workflow {workflow.id}",
                self._execute(
                    workflow, event, capabilities, access, id_token, auth, plan, limit, memo
                ),
                {"claimflow.workflow.id": workflow.id},
            )
            _check_declared(workflow, access, id_token)
        except DeadlinePassed:
            outcome, error = RunOutcome.TIMED_OUT, f"exceeded its time limit of {limit:g} s"
        except TimeoutError:
            outcome, error = RunOutcome.FAILED, "TimeoutError raised by the workflow"
        except WorkflowRuntimeError as exc:
            outcome, error = RunOutcome.FAILED, logger.redact(str(exc))
        except Exception as exc:
            outcome, error = RunOutcome.FAILED, logger.redact(f"{type(exc).__name__}: {exc}")
        duration_ms = (time.perf_counter() - started) * 1000
        if outcome is RunOutcome.SUCCEEDED and auth.denied_reason is not None:
            outcome, error = RunOutcome.DENIED, logger.redact(auth.denied_reason)
        if outcome is RunOutcome.SUCCEEDED and plan.reasons:
            outcome, error = RunOutcome.DENIED, logger.redact("; ".join(plan.reasons))
        metrics.record_workflow_run(workflow.id, outcome.value, duration_ms / 1000)
        if error is not None:
            logger.error(error)
            log.warning("workflow %s failed (%s): %s", workflow.id, outcome.value, error)
        ok = outcome is RunOutcome.SUCCEEDED
        access_encoded = access.encoded if ok else {}
        id_encoded = id_token.encoded if ok else {}
        claim_sizes = (
            {"access_token": _sizes(access_encoded), "id_token": _sizes(id_encoded)} if ok else {}
        )
        if ok and memo is not None:
            memo.settled[workflow.id] = SettledRun(
                TokenCustomClaims(
                    access.forms, id_token.forms, access_encoded, id_encoded, FitMemo()
                ),
                claim_sizes,
                tuple((line["level"], line["message"]) for line in logger.lines),
            )
        run = _run_record(
            workflow, event, started_on, duration_ms, outcome, logger.lines, claim_sizes, error
        )
        return RunReport(
            workflow=workflow,
            run=run,
            access_token=access.forms if ok else {},
            id_token=id_token.forms if ok else {},
            denied_reason=error if outcome is RunOutcome.DENIED else None,
            denied_reasons=tuple(map(logger.redact, plan.reasons)) if plan.reasons else (),
            suggestions=tuple(plan.suggestions),
            management_calls=capabilities.management_calls,
            access_token_encoded=access_encoded,
            id_token_encoded=id_encoded,
        )

    def _fetch_client(self, allow_private: bool) -> httpx.AsyncClient:
        """The server's client for ``fetch``, one per address policy (a pooled connection to a
        private address is never handed to a workflow that may not reach it)."""
        client = self._http.get(allow_private)
        if client is None:
            client = self._http[allow_private] = pinned_fetch_client(allow_private)
        return client

    async def aclose(self) -> None:
        await self.runners.aclose()
        for client in self._http.values():
            await client.aclose()
        self._http.clear()
        if self.run_log is not None:
            await self.run_log.aclose()
        if self.management is not None:
            await self.management.aclose()
        if self.billing_cache is not None:
            await self.billing_cache.aclose()


def _run_record(
    workflow: Workflow,
    event: WorkflowEvent,
    started_on: datetime,
    duration_ms: float,
    outcome: RunOutcome,
    log_lines: list[dict[str, str]],
    claim_sizes: dict[str, Any],
    error: str | None = None,
) -> WorkflowRun:
    """The run log's record of one run of ``workflow`` on ``event`` (a new run id)."""
    user_id, org_code = event.subject
    return WorkflowRun(
        id=new_prefixed_id("run"),
        workflow_id=workflow.id,
        trigger=workflow.settings.trigger.value,
        user_id=user_id,
        org_code=org_code,
        started_on=started_on,
        duration_ms=duration_ms,
        outcome=outcome,
        log_lines=log_lines,
        claim_sizes=claim_sizes,
        error=error,
    )


def _applicable(workflows: list[Workflow], event: WorkflowEvent) -> list[Workflow]:
    """The workflows whose precondition holds for ``event`` (``Workflow.applies``).

    A trusted workflow that says it would do nothing on this event (``org_billing_m2m`` for an
    application without an organization, ``user_billing`` on an organization's sign-in) is not
    run: no task, no bindings, no run record, only a count in ``claimflow_workflow_skips``.
    An untrusted workflow's code never runs in the server, so it always runs."""
    if not any(w.applies is not None for w in workflows):
        return workflows
    chosen = []
    for workflow in workflows:
        if workflow.applies is None or not workflow.trusted or workflow.applies(event):
            chosen.append(workflow)
        else:
            metrics.record_workflow_skip(workflow.id)
    return chosen


CANCEL_GRACE_SECONDS = 0.05
"""How long the server waits, after the deadline, for a cancelled workflow to stop."""


async def _within_deadline(workflow: Workflow, run: Awaitable[None], limit: float) -> None:
    """Run ``run`` in its own task; at ``limit`` seconds stop waiting for it, whatever it does.

    ``asyncio.timeout`` around an ``await`` only *asks* the coroutine to stop: a workflow that
    catches ``CancelledError`` and keeps sleeping would hold the token endpoint as long as it
    likes. Here the server owns the clock: the workflow runs in a task of its own, the caller
    waits at most ``limit`` plus a short grace, and a task that ignores its cancellation is left
    behind (cancelled again, logged) while the token endpoint answers. Blocking code still
    blocks the event loop, which is why only trusted workflows run in-process (design §8).
    """
    task = asyncio.ensure_future(run)
    try:
        done, _ = await asyncio.wait({task}, timeout=limit)
    except asyncio.CancelledError:
        task.cancel()  # the token request itself was abandoned: so is its workflow
        raise
    if done:
        task.result()  # its exception, if it raised
        return
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=CANCEL_GRACE_SECONDS)
    if not done:
        log.error(
            "workflow %s ignored its cancellation at the deadline; its task is abandoned",
            workflow.id,
        )
        task.add_done_callback(_collect_orphan)
    raise DeadlinePassed


def _collect_orphan(task: asyncio.Future[None]) -> None:
    """Retrieve an abandoned task's end so asyncio does not warn about a lost exception."""
    if not task.cancelled() and task.exception() is not None:
        log.warning("abandoned workflow task ended with %r", task.exception())


def _check_declared(workflow: Workflow, *tokens: TokenClaims) -> None:
    """A workflow that declares its claims may set only those (the start-up check relies on it)."""
    declared = workflow.settings.claims
    if not declared:
        return
    for token in tokens:
        if token.names() <= declared:
            continue
        extra = sorted(token.names() - declared)
        if extra:
            raise WorkflowRuntimeError(
                f"set undeclared claim(s) {extra} on the {token.token}; declared: {sorted(declared)}"
            )


def _failed(run: WorkflowRun, outcome: RunOutcome, message: str) -> WorkflowRun:
    lines = [
        *run.log_lines,
        {"at": run.started_on.isoformat(), "level": "error", "message": message},
    ]
    return WorkflowRun(
        id=run.id,
        workflow_id=run.workflow_id,
        trigger=run.trigger,
        user_id=run.user_id,
        org_code=run.org_code,
        started_on=run.started_on,
        duration_ms=run.duration_ms,
        outcome=outcome,
        log_lines=lines,
        claim_sizes={},
        error=message,
    )
