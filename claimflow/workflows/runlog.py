"""The run log: every workflow run, recorded without holding up the token response.

A run's record (workflow, trigger, user, organization, start, duration, outcome, log lines, claim
sizes, error) is queued and written by a background task in batches, so issuance pays an
``append`` rather than a database round trip. ``flush()`` waits for the queue (tests, shutdown);
runs older than ``workflow_runs_retention_days`` are pruned by the writer once an hour.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from claimflow.store import Database
from claimflow.store import tables as t
from claimflow.store._rows import required_utc, utcnow
from claimflow.store.unreachable import STORE_UNAVAILABLE
from claimflow.throttled_log import ThrottledLog


class RunOutcome(enum.StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    DENIED = "denied"


@dataclass(frozen=True, slots=True)
class WorkflowRun:
    id: str
    workflow_id: str
    trigger: str
    user_id: str | None
    org_code: str | None
    started_on: datetime
    duration_ms: float
    outcome: RunOutcome
    log_lines: list[dict[str, str]] = field(default_factory=list)
    claim_sizes: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "workflow_id": self.workflow_id,
            "trigger": self.trigger,
            "user_id": self.user_id,
            "org_code": self.org_code,
            "started_on": self.started_on.isoformat().replace("+00:00", "Z"),
            "duration_ms": round(self.duration_ms, 3),
            "outcome": self.outcome.value,
            "log_lines": self.log_lines,
            "claim_sizes": self.claim_sizes,
            "error": self.error,
        }


def _run(row: Any) -> WorkflowRun:
    return WorkflowRun(
        id=row.id,
        workflow_id=row.workflow_id,
        trigger=row.trigger,
        user_id=row.user_id,
        org_code=row.org_code,
        started_on=required_utc(row.started_on),
        duration_ms=float(row.duration_ms),
        outcome=RunOutcome(row.outcome),
        log_lines=list(row.log_lines or []),
        claim_sizes=dict(row.claim_sizes or {}),
        error=row.error,
    )


def _values(run: WorkflowRun) -> tuple[Any, ...]:
    """A run's column values, in the order of ``t.workflow_runs``'s columns."""
    return (
        run.id,
        run.workflow_id,
        run.trigger,
        run.user_id,
        run.org_code,
        run.started_on,
        run.duration_ms,
        run.outcome.value,
        run.log_lines,
        run.claim_sizes,
        run.error,
    )


_COLUMNS = tuple(column.name for column in t.workflow_runs.columns)


class _PreparedInsert:
    """The INSERT of runs, compiled once for a dialect, with each column's bind processor.

    Every token of a workflow writes a run, so the writer skips what ``conn.execute(insert(..),
    [dicts])`` redoes per row (a parameter dict, the compiled statement's parameter assembly):
    it hands the driver tuples made by the same bind processors SQLAlchemy would apply
    (``TypeEngine.bind_processor`` of the dialect's type: JSON text, SQLite's datetime text),
    so the stored values are the same."""

    def __init__(self, dialect: Dialect) -> None:
        compiled = insert(t.workflow_runs).compile(dialect=dialect)
        assert compiled.positiontup is not None
        where = {name: index for index, name in enumerate(_COLUMNS)}
        self.sql = compiled.string
        self.order = tuple(where[name] for name in compiled.positiontup)
        self.processors = tuple(
            dialect.type_descriptor(t.workflow_runs.c[name].type).bind_processor(dialect)
            for name in compiled.positiontup
        )

    def rows(self, runs: Sequence[WorkflowRun]) -> list[tuple[Any, ...]]:
        """The driver's rows. A value object shared by several runs of the batch (the claim
        sizes of runs answered from one cache entry, ``SettledRun``; an empty log) is processed
        once: a bind processor is a pure function of the value, and the batch keeps every
        value alive while ``seen`` is keyed by identity."""
        plan = tuple(zip(self.order, self.processors, strict=True))
        seen: dict[tuple[int, object], Any] = {}
        rows = []
        for run in runs:
            values = _values(run)
            row = []
            for i, process in plan:
                value = values[i]
                if process is None or value is None:
                    row.append(value if process is None else process(value))
                elif isinstance(value, dict | list):
                    key = (i, id(value) if value else type(value))
                    if key not in seen:
                        seen[key] = process(value)
                    row.append(seen[key])
                else:
                    row.append(process(value))
            rows.append(tuple(row))
        return rows


_prepared: weakref.WeakKeyDictionary[Dialect, _PreparedInsert] = weakref.WeakKeyDictionary()


async def insert_runs(conn: AsyncConnection, runs: Sequence[WorkflowRun]) -> None:
    if not runs:
        return
    prepared = _prepared.get(conn.dialect)
    if prepared is None:
        prepared = _prepared[conn.dialect] = _PreparedInsert(conn.dialect)
    await conn.exec_driver_sql(prepared.sql, prepared.rows(runs))


@dataclass(frozen=True, slots=True)
class RunFilter:
    workflow_id: str | None = None
    outcome: RunOutcome | None = None
    user_id: str | None = None
    org_code: str | None = None


async def list_runs(
    conn: AsyncConnection,
    filters: RunFilter = RunFilter(),
    *,
    page_size: int = 20,
    starting_after: str | None = None,
) -> tuple[list[WorkflowRun], bool]:
    """Newest first; ``starting_after`` is the id of the last run of the previous page."""
    table = t.workflow_runs
    query = select(table)
    if filters.workflow_id is not None:
        query = query.where(table.c.workflow_id == filters.workflow_id)
    if filters.outcome is not None:
        query = query.where(table.c.outcome == filters.outcome.value)
    if filters.user_id is not None:
        query = query.where(table.c.user_id == filters.user_id)
    if filters.org_code is not None:
        query = query.where(table.c.org_code == filters.org_code)
    if starting_after is not None:
        cursor = (
            await conn.execute(
                select(table.c.started_on, table.c.id).where(table.c.id == starting_after)
            )
        ).first()
        if cursor is not None:
            query = query.where(
                or_(
                    table.c.started_on < cursor.started_on,
                    and_(table.c.started_on == cursor.started_on, table.c.id < cursor.id),
                )
            )
    rows = (
        await conn.execute(
            query.order_by(table.c.started_on.desc(), table.c.id.desc()).limit(page_size + 1)
        )
    ).all()
    return [_run(r) for r in rows[:page_size]], len(rows) > page_size


async def get_run(conn: AsyncConnection, run_id: str) -> WorkflowRun | None:
    row = (
        await conn.execute(select(t.workflow_runs).where(t.workflow_runs.c.id == run_id))
    ).first()
    return None if row is None else _run(row)


async def prune_runs(conn: AsyncConnection, older_than: datetime) -> int:
    result = await conn.execute(
        delete(t.workflow_runs).where(t.workflow_runs.c.started_on < older_than)
    )
    return int(result.rowcount or 0)


async def count_runs(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(t.workflow_runs))).scalar_one())


_write_failures = ThrottledLog(logging.getLogger("claimflow.workflows"))
_WRITE_FAILURES: tuple[type[Exception], ...] = (SQLAlchemyError, *STORE_UNAVAILABLE)


class RunLog:
    """Queues run records and writes them in the background, in batches."""

    BATCH = 500
    LINGER_SECONDS = 0.25
    """How long the writer gathers runs before a write: one insert per burst, not per sign-in."""
    PRUNE_EVERY_SECONDS = 3600.0
    CLOSE_SECONDS = 10.0

    def __init__(self, db: Database, retention_days: int) -> None:
        self._db = db
        self._retention = timedelta(days=retention_days)
        self._pending: list[WorkflowRun] = []
        self._wakeup = asyncio.Event()
        self._flush_now = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._last_prune = float("-inf")
        self.write_errors = 0

    def record(self, runs: Sequence[WorkflowRun]) -> None:
        if not runs:
            return
        self._pending.extend(runs)
        self._idle.clear()
        self._wakeup.set()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_forever())

    async def _write_forever(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            # asyncio.timeout, not wait_for: wait_for can swallow the cancel that aclose sends.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.LINGER_SECONDS):
                    await self._flush_now.wait()
            self._flush_now.clear()
            # Only what gathered during the linger: runs recorded while this write is under
            # way wait for the next linger. (Writing "while pending" turned steady traffic into
            # one-row transactions, each as costly as a batch of fifty.)
            gathered, self._pending = self._pending, []
            for start in range(0, len(gathered), self.BATCH):
                batch = gathered[start : start + self.BATCH]
                try:
                    async with self._db.transaction() as conn:
                        await insert_runs(conn, batch)
                        if time.monotonic() - self._last_prune > self.PRUNE_EVERY_SECONDS:
                            await prune_runs(conn, utcnow() - self._retention)
                            self._last_prune = time.monotonic()
                except _WRITE_FAILURES as exc:
                    # A lost log batch must not stop issuance; the count shows it happened, and
                    # an outage is one line per interval, not a traceback per batch.
                    self.write_errors += len(batch)
                    _write_failures.log(
                        logging.WARNING,
                        type(exc).__name__,
                        "workflow runs not recorded (%d lost): %s: %s",
                        len(batch),
                        type(exc).__name__,
                        exc,
                    )
            if not self._pending:
                self._idle.set()

    async def flush(self) -> None:
        """Wait until every queued run is written."""
        if self._pending and (self._writer is None or self._writer.done()):
            self._writer = asyncio.get_running_loop().create_task(self._write_forever())
            self._wakeup.set()
        if not self._idle.is_set():
            self._flush_now.set()
        await self._idle.wait()

    async def aclose(self) -> None:
        """Write what is queued, for at most ``CLOSE_SECONDS``: a shutdown never hangs on a
        writer that cannot get the database (what is still queued then is counted lost)."""
        try:
            async with asyncio.timeout(self.CLOSE_SECONDS):
                await self.flush()
        except TimeoutError:
            self.write_errors += len(self._pending)
            _write_failures.log(
                logging.WARNING,
                "close",
                "workflow runs not recorded at shutdown: the run log's writer did not finish "
                "within %.0f s",
                self.CLOSE_SECONDS,
            )
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
