"""The run log's writer stores every field of a run exactly as SQLAlchemy's own INSERT would
(it hands the driver rows made by the columns' bind processors), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert, select

from claimflow.store import Database
from claimflow.store import tables as t
from claimflow.workflows.runlog import RunOutcome, WorkflowRun, get_run, insert_runs


def _run(run_id: str) -> WorkflowRun:
    return WorkflowRun(
        id=run_id,
        workflow_id="org_billing_m2m",
        trigger="m2m:token_generation",
        user_id=None,
        org_code="org_é",
        started_on=datetime(2026, 12, 3, 10, 0, 0, 123456, tzinfo=UTC),
        duration_ms=0.123456,
        outcome=RunOutcome.TIMED_OUT,
        log_lines=[{"at": "2026-12-03T10:00:00.123Z", "level": "info", "message": 'é "q" \u2028'}],
        claim_sizes={"access_token": {"org_billing": [3012, 800, 64]}, "id_token": {}},
        error="exceeded its time limit of 2 s",
    )


async def test_written_runs_are_stored_as_sqlalchemys_insert_stores_them(any_db_url: str) -> None:
    db = Database(any_db_url)
    try:
        mine, reference = _run("run_writer"), _run("run_reference")
        async with db.transaction() as conn:
            await insert_runs(conn, [mine])
            await conn.execute(
                insert(t.workflow_runs),
                [
                    {
                        "id": reference.id,
                        "workflow_id": reference.workflow_id,
                        "trigger": reference.trigger,
                        "user_id": reference.user_id,
                        "org_code": reference.org_code,
                        "started_on": reference.started_on,
                        "duration_ms": reference.duration_ms,
                        "outcome": reference.outcome.value,
                        "log_lines": reference.log_lines,
                        "claim_sizes": reference.claim_sizes,
                        "error": reference.error,
                    }
                ],
            )
        async with db.connect() as conn:
            rows = (
                await conn.execute(select(t.workflow_runs).order_by(t.workflow_runs.c.id.desc()))
            ).all()
            raw = (await conn.exec_driver_sql("SELECT * FROM workflow_runs ORDER BY id DESC")).all()
            read = await get_run(conn, mine.id)
        assert tuple(rows[0])[1:] == tuple(rows[1])[1:]
        assert tuple(raw[0])[1:] == tuple(raw[1])[1:]  # the stored text, not only its reading
        assert read == mine
    finally:
        await db.dispose()


async def test_a_batch_sharing_values_stores_each_run_as_written_alone(any_db_url: str) -> None:
    """Runs answered from one cache entry share their claim sizes (``SettledRun``); the writer
    encodes a shared value once per batch. Each run must still be stored with its own values:
    shared, distinct, empty and missing ones, in any order."""
    shared_sizes = {"access_token": {"org_billing": [3012, 800, 64]}, "id_token": {}}
    base = _run("run_base")
    runs = [
        WorkflowRun(
            id=f"run_{i}",
            workflow_id=base.workflow_id,
            trigger=base.trigger,
            user_id=None if i % 2 else f"kp_{i}",
            org_code=base.org_code,
            started_on=base.started_on,
            duration_ms=float(i),
            outcome=RunOutcome.SUCCEEDED,
            log_lines=[] if i % 3 else [{"at": "z", "level": "info", "message": f"line {i}"}],
            claim_sizes=shared_sizes if i % 4 else {"access_token": {"x": [i]}},
            error=None,
        )
        for i in range(8)
    ]
    db = Database(any_db_url)
    try:
        async with db.transaction() as conn:
            await insert_runs(conn, runs)
        async with db.connect() as conn:
            stored = [await get_run(conn, run.id) for run in runs]
        assert stored == runs
    finally:
        await db.dispose()
