"""``GET /api/v1/workflows/runs``: claimflow's extension listing recorded workflow runs.

Kinde shows runs in its dashboard only; we expose them in the Management API's style (scope
``read:workflow_runs``, snake_case, ``has_more``/``starting_after`` paging, newest first) so an
operator can ask "why did this sign-in get no billing claim?" from a script.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from claimflow.management.auth import require_scope, services_of
from claimflow.management.wire import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, OK
from claimflow.workflows.runlog import RunFilter, RunOutcome, list_runs

router = APIRouter(tags=["Workflow runs (claimflow extension)"])

Text = Annotated[str | None, Query(max_length=256)]


@router.get(
    "/workflows/runs",
    summary="List workflow runs (claimflow extension)",
    dependencies=[Depends(require_scope("read:workflow_runs"))],
)
async def get_workflow_runs(
    request: Request,
    workflow_id: Text = None,
    outcome: RunOutcome | None = None,
    user_id: Text = None,
    org_code: Text = None,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    starting_after: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_]{1,64}$")] = None,
) -> dict[str, Any]:
    services = services_of(request)
    if services.workflows.run_log is not None:
        await services.workflows.run_log.flush()
    async with services.db.connect() as conn:
        runs, has_more = await list_runs(
            conn,
            RunFilter(workflow_id=workflow_id, outcome=outcome, user_id=user_id, org_code=org_code),
            page_size=page_size,
            starting_after=starting_after,
        )
    return {
        **OK,
        "has_more": has_more,
        "runs": [run.as_json() for run in runs],
    }
