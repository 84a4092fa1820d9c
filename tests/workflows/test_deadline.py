"""The server owns the clock (design §8): at the time limit a run fails, whatever the workflow
does with its cancellation, and the token endpoint answers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from claimflow.errors import WorkflowError
from claimflow.services import Services, build_services
from claimflow.settings import Settings
from claimflow.workflows.bindings import Bindings
from claimflow.workflows.definition import FailurePolicy, Workflow, WorkflowSettings
from claimflow.workflows.engine import WorkflowEngine
from claimflow.workflows.event import TokensGenerationEvent
from claimflow.workflows.registry import WorkflowRegistry
from tests.workflows.conftest import make_event


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    built = build_services(settings)
    yield built
    await built.close()


class SwallowsCancellation:
    """A trusted workflow that catches ``CancelledError`` and keeps going (issue seen in the wild)."""

    def __init__(self) -> None:
        self.cancelled = asyncio.Event()
        self.finished = asyncio.Event()

    async def __call__(self, _event: TokensGenerationEvent, _bindings: Bindings) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.cancelled.set()
            # Swallow it and sleep on: an ``asyncio.timeout`` around this await would wait.
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(3600)
        self.finished.set()


def engine_with(workflow_entry: SwallowsCancellation, policy: FailurePolicy) -> WorkflowEngine:
    settings = WorkflowSettings(
        id="stubborn", name="stubborn", failure_policy=policy, time_limit_seconds=0.05
    )
    workflow = Workflow(settings=settings, entry=workflow_entry, source="test", trusted=True)
    return WorkflowEngine(WorkflowRegistry([workflow], ["stubborn"]))


async def test_swallowed_cancellation_does_not_hold_the_run_past_its_deadline() -> None:
    stubborn = SwallowsCancellation()
    engine = engine_with(stubborn, FailurePolicy.STOP)
    with pytest.raises(WorkflowError, match=r"time limit of 0\.05 s"):
        await engine.run_tokens_generation(make_event("kp_1"))
    # The engine answered although the workflow, cancelled, is still running.
    assert stubborn.cancelled.is_set()
    assert not stubborn.finished.is_set()


async def test_swallowed_cancellation_under_continue_drops_only_its_claims() -> None:
    stubborn = SwallowsCancellation()
    engine = engine_with(stubborn, FailurePolicy.CONTINUE)
    claims = await engine.run_tokens_generation(make_event("kp_1"))
    assert claims.access_token == {}
    assert not stubborn.finished.is_set()
